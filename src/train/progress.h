/*
 * progress.h - how far a training job has come: what a checkpoint saves and a resumed job
 * restores (the next epoch and batch, the running sums of an interrupted epoch, the best
 * epoch, early stopping's count, every finished epoch's metrics), and its JSON form, shared
 * by checkpoints (state.json) and results (metrics.json). Knows nothing of models or files.
 */
#ifndef TRAIN_PROGRESS_H
#define TRAIN_PROGRESS_H

#include <stddef.h>

struct epoch_metrics {
    int epoch; /* 1-based */
    double train_loss, train_acc, val_loss, val_acc, lr, images_per_sec, seconds;
};

struct train_progress {
    int next_epoch;    /* 0-based epoch to run next */
    size_t next_batch; /* batch within next_epoch to start from (resume mid-epoch) */
    double partial_loss_sum, partial_correct, partial_seen; /* of next_epoch so far */
    int best_epoch;    /* 1-based; 0: none yet */
    double best_val_acc;
    int epochs_without_improvement;
    struct epoch_metrics *history; /* one per finished epoch: as many as there are epochs */
    int history_count, history_cap;
};

/* Appends one epoch's results to p->history (grown as needed; no cap but memory). */
int progress_history_add(struct train_progress *p, const struct epoch_metrics *m);
void progress_free(struct train_progress *p);

struct cJSON;
/* One epoch's metrics as JSON, for metrics.json and checkpoints alike. */
struct cJSON *epoch_metrics_to_json(const struct epoch_metrics *m);
struct epoch_metrics epoch_metrics_from_json(const struct cJSON *j);
/* Adds the progress to a checkpoint's state object; reads it back (history included), over
 * what p holds. */
void progress_to_json(const struct train_progress *p, struct cJSON *state);
int progress_from_json(const struct cJSON *state, struct train_progress *p);

#endif
