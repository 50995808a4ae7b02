/*
 * hyperparams.h - the training job's settings, from SageMaker's hyperparameters.json.
 *
 * Every value arrives as a string, often JSON-encoded a second time by the Python SDK
 * ("\"256\"", "0.01", "True"); all of these are accepted. SageMaker's own keys (sagemaker_*,
 * _tuning_objective_metric) are ignored, an unknown key is a warning, and a bad value fails
 * the job before any work with a message naming the key, the value and what is allowed.
 * The names users of the Python containers and of SageMaker's built-in image-classification
 * algorithm know are accepted as aliases (learning_rate, mini_batch_size, image_shape...).
 */
#ifndef TRAIN_HYPERPARAMS_H
#define TRAIN_HYPERPARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/transform.h"

enum optimizer_kind { OPTIMIZER_SGD, OPTIMIZER_ADAM, OPTIMIZER_ADAMW, OPTIMIZER_RMSPROP, OPTIMIZER_NAG };
enum lr_schedule { LR_SCHEDULE_NONE, LR_SCHEDULE_STEP, LR_SCHEDULE_COSINE, LR_SCHEDULE_MULTISTEP };

#define HP_MAX_LR_STEPS 32

struct hyperparams {
    char model[32];            /* architecture, default resnet50 */
    int num_classes;           /* 0: counted from the train channel */
    int epochs;
    int batch_size;            /* per worker process */
    double lr;
    double momentum;
    double weight_decay;
    enum optimizer_kind optimizer;
    enum lr_schedule lr_scheduler;
    int lr_step_size;          /* step schedule: epochs between decays */
    double lr_gamma;           /* step and multistep schedules: decay factor */
    int lr_steps[HP_MAX_LR_STEPS]; /* multistep (lr_scheduler_step "10,20"): epochs, ascending */
    int lr_step_count;
    double beta1, beta2, eps;  /* adam/adamw; eps also rmsprop */
    double rms_gamma;          /* rmsprop: decay of the squared-gradient average */
    int warmup_epochs;         /* lr rises linearly, per step, from about 0 to lr over these */
    double label_smoothing;
    int image_size;            /* 0: the architecture's usual size (224; 32 for lenet) */
    bool freeze_backbone;
    uint64_t seed;
    int num_workers;           /* data loader threads; 0: every core */
    int early_stopping;        /* -1: unset (on when early_stopping_patience > 0), 0, 1 */
    int early_stopping_patience; /* epochs without a better validation accuracy; 0: default */
    int early_stopping_min_epochs; /* -1: default (10 with early_stopping=true, else 0) */
    double early_stopping_tolerance; /* relative gain below which an epoch is no better */
    int amp;                   /* bf16 autocast: -1 auto (on with CUDA), 0 off, 1 on */
    int channels_last;         /* -1 auto (on with CUDA), 0, 1 */
    int device_prefetch;       /* -1 auto (on with CUDA), 0, 1: train/batch_feed.h */
    bool tf32;                 /* CUDA: TF32 for fp32 matrix products and convolutions */
    double validation_fraction; /* held out of train when there is no validation channel */
    double min_crop_scale;     /* RandomResizedCrop's lower scale bound */
    enum image_augment augment; /* training augmentation; none unless asked (hyperparams.c) */
    float mean[3], std[3];     /* normalisation; mean_set/std_set: given by the user */
    bool mean_set, std_set;
    enum image_resize_mode eval_resize;
    int resize;                /* shorter side (or square) before cropping; 0: image_size * 8/7 */
    bool use_weighted_loss;    /* cross entropy weighted by inverse class frequency */
    int precision;             /* precision_dtype: -1 unset, 32 float32, 16 float16 */
    int checkpoint_frequency;  /* epochs between checkpoints */
    int top_k;                 /* 0: off; >= 2: a top-k accuracy line */
    long long num_training_samples; /* 0: not given */
    bool use_pretrained_model;
    char kv_store[32];
    uint64_t given;            /* bit i: fields[i] was set by the user (hyperparams_given) */
    int num_processes;         /* training processes per host; 0: one per GPU (1 on CPU) */
    int master_port;           /* the rendezvous port on the first host */
    double dist_timeout_s;     /* rendezvous and each collective, when several processes */
    int64_t profile_steps_from, profile_steps_to; /* steps traced to trace.json; to < 0: none */
    int grad_norm_interval;    /* steps between per-layer gradient-norm samples; 0: off */
    bool training_report;      /* report.html, TensorBoard scalars, step profile; true */
};

void hyperparams_default(struct hyperparams *hp);
/* Reads `path` over the defaults. A missing file means all defaults. */
int hyperparams_load(const char *path, struct hyperparams *hp);
/* Sets one value from its string form, as the file would (used by the loader and tests). */
int hyperparams_set(struct hyperparams *hp, const char *key, const char *value);
/* Name a of key i of the table (a 0: the key's own name, then its aliases); NULL past the
 * last key or alias. For checks that the documentation lists every name. */
const char *hyperparams_key_name(size_t i, size_t a);
/* Whether the user set the key (any of its aliases). */
bool hyperparams_given(const struct hyperparams *hp, const char *key);
/* The cross-checks once every key is read are hyperparams_finish (hyperparams_rules.h). */
const char *optimizer_name(enum optimizer_kind k);
const char *lr_schedule_name(enum lr_schedule s);

#endif
