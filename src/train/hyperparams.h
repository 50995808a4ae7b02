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
#include <stdint.h>

enum optimizer_kind { OPTIMIZER_SGD, OPTIMIZER_ADAM, OPTIMIZER_ADAMW };
enum lr_schedule { LR_SCHEDULE_NONE, LR_SCHEDULE_STEP, LR_SCHEDULE_COSINE };

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
    double lr_gamma;           /* step schedule: decay factor */
    int warmup_epochs;         /* linear warmup from lr/10... to lr */
    double label_smoothing;
    int image_size;            /* 0: the architecture's usual size (224; 32 for lenet) */
    bool freeze_backbone;
    uint64_t seed;
    int num_workers;           /* data loader threads; 0: every core */
    int early_stopping_patience; /* epochs without a better validation accuracy; 0: off */
    int amp;                   /* bf16 autocast: -1 auto (on with CUDA), 0 off, 1 on */
    int channels_last;         /* -1 auto (on with CUDA), 0, 1 */
    bool tf32;                 /* CUDA: TF32 for fp32 matrix products and convolutions */
    double validation_fraction; /* held out of train when there is no validation channel */
    double min_crop_scale;     /* RandomResizedCrop's lower scale bound */
    bool augment;              /* random crop + flip in training */
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
const char *optimizer_name(enum optimizer_kind k);
const char *lr_schedule_name(enum lr_schedule s);

#endif
