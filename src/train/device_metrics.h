/*
 * device_metrics.h - an epoch's running loss sum and correct count kept on the training
 * device (device_metrics.c), read back into the job's progress every `every` steps and at the
 * epoch's end.
 */
#ifndef TRAIN_DEVICE_METRICS_H
#define TRAIN_DEVICE_METRICS_H

#include "torchc.h"
#include "train/progress.h"

/* The epoch's running loss sum and correct count, accumulated on the device and read back
 * every `every` steps (and at the epoch's end): on a GPU a read-back each step would make the
 * host wait for the GPU at every step. Each window starts from the host's sums, so the
 * additions happen in the same order and in the same precision (float64, int64) as summing
 * on the host: the printed numbers do not depend on `every`. */
struct device_metrics {
    tc_tensor *loss_sum, *correct; /* [] float64 and int64 on the job's device */
    int pending, every;
};

/* Starts from the progress's partial sums (a resumed epoch goes on from them). */
int device_metrics_start(struct device_metrics *m, const struct train_progress *p,
                         tc_device device);
/* Adds one step: loss (a scalar, mean over n images), logits [n,classes], y [n]. */
int device_metrics_add(struct device_metrics *m, const tc_tensor *loss, const tc_tensor *logits,
                       const tc_tensor *y, int n);
/* Reads the sums back into p->partial_loss_sum and p->partial_correct (a sync with the
 * device); nothing to do when no step was added since the last read-back. */
int device_metrics_flush(struct device_metrics *m, struct train_progress *p);
void device_metrics_free(struct device_metrics *m);

#endif
