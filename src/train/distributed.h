/*
 * distributed.h - what a training job does differently when it is one of several processes
 * (distributed.c). Each function is a no-op for a single process, so the trainer has one
 * code path. A failure of a collective has reason peer_failed (common/error.h).
 */
#ifndef TRAIN_DISTRIBUTED_H
#define TRAIN_DISTRIBUTED_H

#include <stdbool.h>
#include <stddef.h>

struct train_job;

/* Joins the other ranks, checks they run the same job and resumed at the same place, copies
 * rank 0's weights, arms gradient averaging. */
int distributed_start(struct train_job *job);
void distributed_stop(struct train_job *job);
/* Every rank learns whether any rank wants to stop, or cannot use its batch (then no rank
 * trains on this step): collectives stay in step. */
int distributed_agree(struct train_job *job, bool want_stop, bool batch_usable, bool *stop,
                      bool *skip);
/* After this rank failed: joins the peers' next agreement to tell them, so that they stop at
 * once ("stopped because rank N failed", reason peer_failed) instead of at a collective
 * timeout. Keeps this rank's message and reason. */
void distributed_report_failure(struct train_job *job);
int distributed_sum(struct train_job *job, double *values, size_t n);
/* Rank 0's batch-norm statistics (as DDP broadcasts them before each forward) or its whole
 * model (after rank 0 reloaded the best one) to every rank. */
int distributed_sync_buffers(struct train_job *job);
int distributed_sync_model(struct train_job *job);
/* Arms gradient averaging for the coming backward pass. */
int distributed_before_backward(struct train_job *job);

#endif
