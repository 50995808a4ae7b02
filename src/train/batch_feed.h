/*
 * batch_feed.h - the loader's batches as tensors on the training device, for the training
 * epoch and for evaluation.
 *
 * Two paths, chosen by job->config.device_prefetch (hyperparameter device_prefetch, on by
 * default with a GPU):
 *   host path    the loader's threads normalise into float [n,3,S,S]; the batch becomes a
 *                tensor without a copy on the CPU, or is copied to the GPU when the step
 *                asks (the host waits for the copy). The CPU's way.
 *   device path  the loader's threads write the transformed bytes [n,S,S,3] into page-locked
 *                slots; each batch is copied to one of two device staging buffers on a side
 *                stream one batch ahead, a quarter of the float bytes, and normalised there by
 *                a table lookup (bit-identical to the host path's values); a slot goes back to
 *                the loader once its copy's event has passed. The host never waits for a
 *                copy. On the CPU the same code runs with synchronous copies, so the CPU tests
 *                cover it.
 *
 *     struct batch_feed *f;
 *     batch_feed_start(&f, job, &job->train, true, epoch, first_batch);
 *     struct fed_batch fb;
 *     while (batch_feed_next(f, &fb) > 0) {
 *         tc_scope *s = tc_scope_begin();
 *         tc_tensor *x, *y;
 *         batch_feed_tensors(f, &fb, &x, &y);   // owned by s
 *         ...step...
 *         tc_scope_end(s);                      // every use of x, y enqueued and dropped
 *         batch_feed_done(f, &fb);
 *     }
 *     batch_feed_stop(f, &stats);
 */
#ifndef TRAIN_BATCH_FEED_H
#define TRAIN_BATCH_FEED_H

#include <stdbool.h>
#include <stddef.h>

#include "data/loader.h"
#include "torchc.h"

struct train_job;
struct batch_feed;

struct fed_batch {
    struct batch *host; /* the loader's batch: n, index, labels on the host */
    int stage;          /* device path: the staging buffer it was copied to; else -1 */
};

/* Batches this rank sees in an epoch of d. */
size_t batch_feed_batch_count(const struct train_job *job, const struct dataset *d, bool train);
/* Starts the loader for `d` (train: shuffled and augmented) at batch first_batch of epoch. */
int batch_feed_start(struct batch_feed **out, struct train_job *job, const struct dataset *d,
                     bool train, int epoch, size_t first_batch);
/* 1: *b is the next batch (and the one after it is on its way); 0: the epoch is over; -1:
 * an error. */
int batch_feed_next(struct batch_feed *f, struct fed_batch *b);
/* The batch as tensors on the job's device, owned by the current scope: images [n,3,S,S]
 * float (channels-last when the job is), labels [n] int64. */
int batch_feed_tensors(struct batch_feed *f, const struct fed_batch *b, tc_tensor **x,
                       tc_tensor **y);
/* The step has been enqueued and its tensors dropped: the batch's memory can be reused. */
int batch_feed_done(struct batch_feed *f, struct fed_batch *b);
/* Stops the loader (also mid-epoch) and adds its counts to *stats (NULL: not wanted). */
void batch_feed_stop(struct batch_feed *f, struct loader_stats *stats);

#endif
