/*
 * step_profile.h - where a training step's time goes, and how its gradients look.
 *
 * The loop calls prof_lap() at each phase boundary: the time since the previous lap is added
 * to that phase (monotonic clock, about 25 ns a call). On CUDA each lap also records an
 * event, and at the step's end the device time between events replaces the host time for
 * forward, backward and optimizer (the host only queues that work). Every `grad_every` steps
 * the per-layer gradient norms are read in one device round trip. At each epoch's end the
 * figures, with CPU and memory use from /proc, become one small `struct prof_epoch`.
 * A window of steps (profile_steps) is also kept as trace events for trace.json.
 *
 * The profiler measures its own cost (gradient sampling, event queries, /proc reads, plus
 * laps times a calibrated clock read) into overhead_s, so each report states it.
 * All functions accept a NULL profile and then do nothing.
 */
#ifndef TRAIN_STEP_PROFILE_H
#define TRAIN_STEP_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/model.h"
#include "torchc.h"
#include "train/proc_usage.h"

enum prof_phase {
    PROF_DATA,       /* waiting for the loader's next batch */
    PROF_FORWARD,    /* forward pass and loss */
    PROF_BACKWARD,   /* backward pass (with several ranks: overlapped gradient all-reduce) */
    PROF_SYNC,       /* collectives outside backward: the ranks' per-step agreement */
    PROF_OPTIMIZER,  /* optimizer step */
    PROF_OTHER,      /* reading the loss, bookkeeping, releasing the batch */
    PROF_CHECKPOINT, /* checkpoint and best-model saves */
    PROF_EVAL,       /* validation */
    PROF_PHASES
};
const char *prof_phase_name(enum prof_phase ph);

#define PROF_TRACE_MAX 20000
#define PROF_LAYER_NAME 96

struct prof_epoch {
    int epoch; /* 1-based */
    int64_t steps;
    double phase_s[PROF_PHASES];  /* host time */
    double device_s[PROF_PHASES]; /* CUDA: device time of forward, backward, optimizer */
    double train_wall_s;          /* the training loop, from its start to its last step */
    double images_per_sec;
    double cpu_percent; /* of one core, over the training loop */
    double rss_mb, peak_rss_mb, mem_total_mb, mem_available_mb;
    double gpu_busy_percent; /* device time / loop time; -1 without CUDA */
    double gpu_mem_mb, gpu_peak_mem_mb, gpu_reserved_mb;
    int grad_samples;
    double grad_norm_total; /* the epoch's last sample: sqrt(sum of squared layer norms) */
    double grad_norm_min_layer, grad_norm_max_layer; /* over layers and samples */
    bool grad_nonfinite;
    double overhead_s; /* the profiler's own time */
};

struct prof_trace_event {
    int phase;
    int64_t step;
    double start_s, dur_s; /* from the profile's origin */
};

struct step_profile {
    tc_device device;
    tc_timer *timer; /* CUDA only */
    int slot_phase[PROF_PHASES + 2];
    size_t slots;
    double lap_cost_s, last_lap, loop_start, origin_s;
    int64_t laps, step;
    int unread_steps; /* steps since the trainer last read the loss back */
    bool in_trace;
    struct prof_epoch cur;
    struct proc_sample proc_start;
    struct prof_epoch *epochs; /* [epoch_count], grown as epochs end */
    int epoch_count, epoch_cap;

    int grad_every;
    size_t layers;
    tc_tensor **params;             /* [layers], borrowed from the model */
    char (*names)[PROF_LAYER_NAME]; /* [layers] */
    float *norms;                   /* [layers], the latest sample */
    float *first_norms;             /* [layers], the first sample of the run */
    bool have_first_norms;
    double first_loss; /* the run's first step */
    bool have_first_loss;
    double grad_sample_s; /* the run's gradient samples: total time and count */
    int64_t grad_sample_count;
    bool loss_nonfinite;

    int64_t trace_from, trace_to;   /* inclusive; trace_to < 0: no trace */
    struct prof_trace_event *trace; /* [PROF_TRACE_MAX] */
    size_t trace_count;
};

/* Sets up for `model`'s trainable parameters. grad_every: steps between gradient samples
 * (0: never). trace_from..trace_to: global steps to trace (trace_to < 0: none). */
int step_profile_init(struct step_profile *p, tc_device d, const struct model *m, int grad_every,
                      int64_t trace_from, int64_t trace_to);
void step_profile_free(struct step_profile *p);

void prof_epoch_begin(struct step_profile *p, int epoch);
/* Time since the previous lap goes to `ph`. */
void prof_lap(struct step_profile *p, enum prof_phase ph);
/* A batch arrived for global step `step`: closes the data wait. */
void prof_step_begin(struct step_profile *p, int64_t step);
/* After the step. `loss`: the mean loss of the steps read back just now (the device is idle
 * then: device times are taken), or NULL when the trainer read nothing back at this step (on a
 * GPU it reads every few steps, so as not to wait for the device at each). */
void prof_step_end(struct step_profile *p, const double *loss);
/* Closes the epoch's training loop; checkpoint and evaluation are added after. */
void prof_epoch_end(struct step_profile *p, double images_per_sec);
/* Adds time measured by the caller to the last closed epoch. */
void prof_add(struct step_profile *p, enum prof_phase ph, double seconds);
const struct prof_epoch *prof_last_epoch(const struct step_profile *p);

#endif
