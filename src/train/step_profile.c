/*
 * step_profile.c - the training loop's timers, gradient-norm sampler and step trace
 * (see step_profile.h for what is measured and how).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "models/nn.h"
#include "train/step_profile.h"

static const char *const phase_names[PROF_PHASES] = {
    "data wait", "forward", "backward", "sync", "optimizer", "other", "checkpoint", "evaluation",
};

const char *prof_phase_name(enum prof_phase ph)
{
    return ph < PROF_PHASES ? phase_names[ph] : "?";
}

/* What one clock read costs here: laps are charged at this rate in overhead_s. */
static double calibrate_lap_cost(void)
{
    double t0 = clock_now_s(), sink = 0;
    for (int i = 0; i < 1000; i++)
        sink += clock_now_s();
    return sink > 0 ? (clock_now_s() - t0) / 1000.0 : 0;
}

int step_profile_init(struct step_profile *p, tc_device d, const struct model *m, int grad_every,
                      int64_t trace_from, int64_t trace_to)
{
    memset(p, 0, sizeof *p);
    p->device = d;
    p->grad_every = grad_every;
    p->trace_from = trace_from;
    p->trace_to = trace_to;
    p->origin_s = clock_now_s();
    p->lap_cost_s = calibrate_lap_cost();
    if (trace_to >= 0 && !(p->trace = calloc(PROF_TRACE_MAX, sizeof *p->trace)))
        return err_set("out of memory for the step trace");
    size_t n = 0;
    for (size_t i = 0; i < m->params.count; i++)
        n += !m->params.entries[i].is_buffer && tc_requires_grad(m->params.entries[i].tensor);
    p->params = calloc(n ? n : 1, sizeof *p->params);
    p->names = calloc(n ? n : 1, sizeof *p->names);
    p->norms = calloc(n ? n : 1, sizeof *p->norms);
    p->first_norms = calloc(n ? n : 1, sizeof *p->first_norms);
    if (!p->params || !p->names || !p->norms || !p->first_norms)
        return err_set("out of memory for gradient statistics");
    for (size_t i = 0; i < m->params.count; i++) {
        const struct nn_entry *e = &m->params.entries[i];
        if (e->is_buffer || !tc_requires_grad(e->tensor)) continue;
        p->params[p->layers] = e->tensor;
        snprintf(p->names[p->layers], PROF_LAYER_NAME, "%s", e->name);
        p->layers++;
    }
    if (d.type == TC_CUDA &&
        !(p->timer = tc_timer_new(d, sizeof p->slot_phase / sizeof *p->slot_phase))) {
        log_warn("step profile: no CUDA timers (%s); host times only", tc_last_error());
    }
    return 0;
}

void step_profile_free(struct step_profile *p)
{
    tc_timer_free(p->timer);
    free(p->epochs);
    free(p->trace);
    free(p->params);
    free(p->names);
    free(p->norms);
    free(p->first_norms);
    memset(p, 0, sizeof *p);
}

void prof_epoch_begin(struct step_profile *p, int epoch)
{
    if (!p) return;
    double t0 = clock_now_s();
    memset(&p->cur, 0, sizeof p->cur);
    p->cur.epoch = epoch;
    p->cur.grad_norm_min_layer = INFINITY;
    p->cur.gpu_busy_percent = -1;
    proc_sample_take(&p->proc_start);
    p->laps = 0;
    p->loop_start = p->last_lap = clock_now_s();
    p->cur.overhead_s += p->last_lap - t0;
}

static void trace_add(struct step_profile *p, enum prof_phase ph, double start, double dur)
{
    if (p->trace && p->in_trace && p->trace_count < PROF_TRACE_MAX)
        p->trace[p->trace_count++] =
            (struct prof_trace_event){ph, p->step, start - p->origin_s, dur};
}

void prof_lap(struct step_profile *p, enum prof_phase ph)
{
    if (!p) return;
    double t = clock_now_s();
    p->cur.phase_s[ph] += t - p->last_lap;
    trace_add(p, ph, p->last_lap, t - p->last_lap);
    p->last_lap = t;
    p->laps++;
    if (p->timer && p->slots < sizeof p->slot_phase / sizeof *p->slot_phase &&
        tc_timer_record(p->timer, p->slots) == 0)
        p->slot_phase[p->slots++] = ph;
}

void prof_step_begin(struct step_profile *p, int64_t step)
{
    if (!p) return;
    p->step = step;
    p->in_trace = p->trace_to >= 0 && step >= p->trace_from && step <= p->trace_to;
    p->slots = 0;
    prof_lap(p, PROF_DATA);
    p->cur.steps++;
}

/* Device time between consecutive events: what forward, backward and optimizer cost on the
 * GPU (their host laps only measure queueing the work). */
/* This step's device times, standing for `steps` steps (the ones since the last sample). */
static void take_device_times(struct step_profile *p, int steps)
{
    for (size_t i = 1; i < p->slots; i++) {
        int ph = p->slot_phase[i];
        double ms;
        if ((ph == PROF_FORWARD || ph == PROF_BACKWARD || ph == PROF_OPTIMIZER) &&
            tc_timer_elapsed_ms(p->timer, i - 1, i, &ms) == 0)
            p->cur.device_s[ph] += steps * ms / 1000.0;
    }
}

static void sample_gradients(struct step_profile *p)
{
    if (tc_grad_norms(p->params, p->layers, p->norms) < 0) {
        log_warn("gradient norms at step %lld: %s", (long long)p->step, tc_last_error());
        p->grad_every = 0;
        return;
    }
    double sq = 0;
    struct prof_epoch *e = &p->cur;
    for (size_t i = 0; i < p->layers; i++) {
        double v = p->norms[i];
        if (!isfinite(v)) e->grad_nonfinite = true;
        sq += v * v;
        if (v > 0 && v < e->grad_norm_min_layer) e->grad_norm_min_layer = v;
        if (v > e->grad_norm_max_layer || !isfinite(v)) e->grad_norm_max_layer = v;
    }
    e->grad_norm_total = sqrt(sq);
    e->grad_samples++;
    if (!p->have_first_norms) {
        memcpy(p->first_norms, p->norms, p->layers * sizeof *p->norms);
        p->have_first_norms = true;
    }
}

void prof_step_end(struct step_profile *p, const double *loss)
{
    if (!p) return;
    prof_lap(p, PROF_OTHER); /* reading the loss */
    double t0 = clock_now_s();
    p->unread_steps++;
    bool bad = false;
    if (loss) {
        if (!p->have_first_loss) {
            p->first_loss = *loss;
            p->have_first_loss = true;
        }
        bad = !isfinite(*loss);
        p->loss_nonfinite |= bad;
        /* The device is idle only after a read-back: sample its times then, for every step
         * since the previous sample. */
        if (p->timer) take_device_times(p, p->unread_steps);
        p->unread_steps = 0;
    }
    /* Every grad_every steps, and at the step where the loss went bad (the last chance). */
    if (p->layers && p->grad_every > 0 && (p->step % p->grad_every == 0 || bad)) {
        double ts = clock_now_s();
        sample_gradients(p);
        p->grad_sample_s += clock_now_s() - ts;
        p->grad_sample_count++;
    }
    double t1 = clock_now_s();
    p->cur.overhead_s += t1 - t0;
    /* The profiler's own time is not the step's: the next lap starts after it. */
    p->last_lap = t1;
}

void prof_epoch_end(struct step_profile *p, double images_per_sec)
{
    if (!p) return;
    double t0 = clock_now_s();
    struct prof_epoch *e = &p->cur;
    struct proc_sample now;
    proc_sample_take(&now);
    e->train_wall_s = t0 - p->loop_start;
    e->images_per_sec = images_per_sec;
    e->cpu_percent = proc_cpu_percent(&p->proc_start, &now);
    e->rss_mb = now.rss_mb;
    e->peak_rss_mb = now.peak_rss_mb;
    e->mem_total_mb = now.mem_total_mb;
    e->mem_available_mb = now.mem_available_mb;
    if (!isfinite(e->grad_norm_min_layer)) e->grad_norm_min_layer = 0;
    if (p->timer && e->train_wall_s > 0) {
        double busy =
            e->device_s[PROF_FORWARD] + e->device_s[PROF_BACKWARD] + e->device_s[PROF_OPTIMIZER];
        e->gpu_busy_percent = 100.0 * busy / e->train_wall_s;
        double alloc, peak, reserved;
        if (tc_device_memory(p->device, &alloc, &peak, &reserved) == 0) {
            e->gpu_mem_mb = alloc / 1048576.0;
            e->gpu_peak_mem_mb = peak / 1048576.0;
            e->gpu_reserved_mb = reserved / 1048576.0;
        }
    }
    e->overhead_s += (double)p->laps * p->lap_cost_s + (clock_now_s() - t0);
    if (p->epoch_count == p->epoch_cap) { /* grows with the job: every epoch is kept */
        int cap = p->epoch_cap ? 2 * p->epoch_cap : 64;
        struct prof_epoch *grown = realloc(p->epochs, (size_t)cap * sizeof *grown);
        if (!grown) {
            log_warn("out of memory for the step profile: epoch %d is left out of the report",
                     e->epoch);
            return;
        }
        p->epochs = grown;
        p->epoch_cap = cap;
    }
    p->epochs[p->epoch_count++] = *e;
}

void prof_add(struct step_profile *p, enum prof_phase ph, double seconds)
{
    if (p && p->epoch_count > 0) p->epochs[p->epoch_count - 1].phase_s[ph] += seconds;
}

const struct prof_epoch *prof_last_epoch(const struct step_profile *p)
{
    return p && p->epoch_count > 0 ? &p->epochs[p->epoch_count - 1] : NULL;
}
