/*
 * job.h - one training job: everything `train` knows, from the /opt/ml configuration to the
 * metrics of each epoch. job.c sets it up (config, channels, datasets, model, device),
 * trainer.c runs the epochs, checkpoint.c saves and resumes, artifacts.c writes the results.
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

#define CONFUSION_MAX_CLASSES 256 /* larger jobs get per-class accuracy only */

struct eval_result {
    double loss, accuracy;
    double top_k_accuracy; /* when hp.top_k > 0 */
    size_t count;
    int num_classes;
    int64_t *per_class_total, *per_class_correct; /* [num_classes] */
    int64_t *confusion; /* [true][predicted], when num_classes <= CONFUSION_MAX_CLASSES */
};

struct epoch_metrics {
    int epoch; /* 1-based */
    double train_loss, train_acc, val_loss, val_acc, lr, images_per_sec, seconds;
};

struct train_job {
    struct opt_ml paths;
    struct hyperparams hp;
    struct channel_set channels;
    struct dataset train, val, test;
    bool has_test;
    char val_source[128]; /* "the validation channel" or "10% held out of train" */
    int image_size, resize_size;
    enum image_resize_mode resize_mode;
    float mean[3], std[3];
    tc_tensor *class_weights; /* use_weighted_loss: [num_classes], else NULL */
    struct model *model;
    tc_optimizer *optimizer;
    tc_device device;
    bool amp, channels_last;
    int threads;          /* data loader threads */
    char host[64];
    struct cluster cluster;
    struct worker_layout layout; /* set before job_setup; world_size 1 without a launcher */
    tc_dist *dist;               /* several processes: the process group */
    tc_grad_sync *grad_sync;
    bool local_run;       /* not inside a SageMaker job (no TRAINING_JOB_NAME) */

    /* progress, saved in checkpoints */
    int next_epoch;       /* 0-based epoch to run next */
    size_t next_batch;    /* batch within next_epoch to start from (resume mid-epoch) */
    double partial_loss_sum, partial_correct, partial_seen;
    struct epoch_metrics *history; /* one per finished epoch, grown by job_history_add */
    int history_count, history_cap;
    int best_epoch;
    double best_val_acc;
    int epochs_without_improvement;
    size_t skipped_images;

    struct eval_result final_val, final_test;
    volatile sig_atomic_t *stop_requested;
    struct train_report *report; /* rank 0: the training report (report.h); owned */
};

/* job.c: hyperparameters first (the launcher needs them), then everything else. */
int job_read_hyperparameters(struct train_job *job);
int job_setup(struct train_job *job);
void job_free(struct train_job *job);

/* trainer.c: runs the remaining epochs. Returns 1 when stopped by a signal (a checkpoint has
 * been written), 0 when done, < 0 on error. */
int trainer_run(struct train_job *job);
int trainer_evaluate(struct train_job *job, const struct dataset *d, struct eval_result *out);
void eval_result_free(struct eval_result *r);
double trainer_lr_at(const struct hyperparams *hp, double epoch);

/* distributed.c: each is a no-op for a single process. */
/* Joins the other ranks, checks they resumed at the same place, copies rank 0's weights. */
int distributed_start(struct train_job *job);
void distributed_stop(struct train_job *job);
/* Every rank learns whether any rank wants to stop, or cannot use its batch (then no rank
 * trains on this step): collectives stay in step. */
int distributed_agree(struct train_job *job, bool want_stop, bool batch_usable, bool *stop,
                      bool *skip);
/* After this rank failed within an epoch: joins the peers' next agreement to tell them, so
 * that they stop at once (with "rank N failed") instead of at a collective timeout. */
void distributed_report_failure(struct train_job *job);
int distributed_sum(struct train_job *job, double *values, size_t n);
/* Rank 0's batch-norm statistics (as DDP broadcasts them before each forward) or its whole
 * model (after rank 0 reloaded the best one) to every rank. */
int distributed_sync_buffers(struct train_job *job);
int distributed_sync_model(struct train_job *job);
/* Arms gradient averaging for the coming backward pass. */
int distributed_before_backward(struct train_job *job);

/* checkpoint.c */
int checkpoint_save(const struct train_job *job);
/* 1: resumed from a checkpoint, 0: none found, < 0: error */
int checkpoint_resume(struct train_job *job);
/* Appends one epoch's results to job->history (as many as there are epochs). */
int job_history_add(struct train_job *job, const struct epoch_metrics *m);

/* One epoch's metrics as JSON, for metrics.json and checkpoints alike (artifacts.c). */
struct cJSON;
struct cJSON *epoch_metrics_to_json(const struct epoch_metrics *m);
struct epoch_metrics epoch_metrics_from_json(const struct cJSON *j);

/* artifacts.c: model.pth + metadata.json in the model dir, metrics.json in output/data,
 * and for local runs a deployable model.tar.gz in output/. */
int artifacts_save_best_model(const struct train_job *job);
int artifacts_write_final(const struct train_job *job);

#endif
