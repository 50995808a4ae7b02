/*
 * job.h - one training job: its configuration (what the hyperparameters, channels and
 * defaults decide, fixed once set up), its data, model and optimizer, where it runs, its
 * progress (train/progress.h: what checkpoints save) and its results. job.c sets it up;
 * trainer.c runs the epochs (trainer.h), distributed.c is what a rank of several does more
 * (distributed.h), checkpoint.c saves and resumes (checkpoint.h), artifacts.c writes the
 * results (artifacts.h), report.c the report (report.h).
 */
#ifndef TRAIN_JOB_H
#define TRAIN_JOB_H

#include <signal.h>
#include <stdbool.h>

#include "common/opt_ml.h"
#include "data/dataset.h"
#include "models/model.h"
#include "torchc.h"
#include "train/channels.h"
#include "train/cluster.h"
#include "train/hyperparams.h"
#include "train/progress.h"
#include "train/trainer.h"

/* What the configuration decides: set by job_read_hyperparameters and job_setup, read-only
 * after set-up. */
struct train_config {
    struct opt_ml paths;
    struct hyperparams hp;
    struct channel_set channels;
    int image_size, resize_size;
    enum image_resize_mode resize_mode;
    float mean[3], std[3];
    bool amp, channels_last;
    bool device_prefetch; /* batches as bytes, copied ahead, normalised on the device */
    int threads;    /* data loader threads */
    bool local_run; /* not inside a SageMaker job (no TRAINING_JOB_NAME) */
};

struct train_job {
    struct train_config config;
    struct dataset train, val, test;
    bool has_test;
    char val_source[128]; /* "the validation channel" or "10% held out of train" */
    tc_tensor *class_weights; /* use_weighted_loss: [num_classes], else NULL */
    struct model *model;
    tc_optimizer *optimizer;
    tc_device device;
    char host[64];
    struct cluster cluster;
    struct worker_layout layout; /* set before job_setup; world_size 1 without a launcher */
    tc_dist *dist;               /* several processes: the process group */
    tc_grad_sync *grad_sync;

    struct train_progress progress; /* saved in checkpoints */

    size_t skipped_images;
    struct eval_result final_val, final_test;
    volatile sig_atomic_t *stop_requested;
    struct train_report *report; /* rank 0: the training report (report.h); owned */
};

/* Hyperparameters first (the launcher needs them), then everything else; every check that
 * can fail does so in set-up, before the first step. Failures carry a reason (config, data,
 * model...: common/error.h). */
int job_read_hyperparameters(struct train_job *job);
int job_setup(struct train_job *job);
void job_free(struct train_job *job);

#endif
