/*
 * batcher.h - the dynamic batcher (batcher.c): concurrent requests' batches joined into
 * one predict_fn call.
 */
#ifndef SERVE_BATCHER_H
#define SERVE_BATCHER_H

#include <stdbool.h>
#include <stdint.h>

#include "sm_handlers.h"

/* SERVE_MAX_BATCH's default and limit: images per batched forward pass. */
#define BATCHER_DEFAULT_MAX_BATCH 32
#define BATCHER_MAX_BATCH_LIMIT 1024

/* SERVE_MAX_BATCH as the batcher takes it: a whole number from 1 to BATCHER_MAX_BATCH_LIMIT,
 * else (with a warning when it was set) the default. */
int batcher_max_batch_from_env(void);

struct batcher;
/* pinned_staging: batches are assembled in page-locked memory (the model is on a GPU: the copy
 * to it is then non-blocking); false: ordinary memory, and a lone request's input as it is. */
int batcher_start(struct batcher **out, const struct sm_context *ctx, sm_predict_fn predict,
                  int max_batch, int max_delay_us, bool pinned_staging);
/* A request is about to decode its input (+1), or gave up before submitting (-1): the
 * batcher waits for announced requests only. */
void batcher_expect(struct batcher *b, int delta);
/* Submits a request announced with batcher_expect(b, 1).
 * Blocks until in's predictions are in out (out->probs malloc'd); returns 0 or an HTTP status. */
int batcher_submit(struct batcher *b, const struct sm_batch *in, struct sm_scores *out,
                   struct sm_error *err);
/* Images queued or in the forward pass, plus announced requests still decoding (one each, their
 * size unknown yet): how busy this batcher is, for choosing among replicas. */
int64_t batcher_load(struct batcher *b);
/* What a batcher ran in all. */
struct batcher_stats {
    int64_t requests, images, batches;
};
void batcher_stop(struct batcher *b);
/* batcher_stop, and what it ran in all into *out. */
void batcher_stop_stats(struct batcher *b, struct batcher_stats *out);

#endif
