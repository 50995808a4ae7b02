/*
 * serve.h - the parts of `serve` and how they meet: the default handlers (model_dir.c,
 * codecs.c, handlers.c), the dynamic batcher (batcher.c) and the HTTP server (server.c).
 *
 * A request's path: server.c reads the body (capped) -> input_fn decodes it into a batch ->
 * the batcher gathers batches of concurrent requests into one predict_fn call -> output_fn
 * encodes this request's share -> server.c answers and logs it.
 */
#ifndef SERVE_SERVE_H
#define SERVE_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "models/model.h"
#include "sm_handlers.h"
#include "torchc.h"

/* What the default model_fn loads (sm_context.model). */
struct serve_model {
    char arch[32];
    int num_classes;
    char **class_names;
    int image_size, resize_size;
    int resize_mode; /* metadata.json's eval_resize: 0 crop, 1 squash */
    float mean[3], std[3];
    struct model *net;
    tc_device device;
    bool channels_last;
};

/* model_dir.c */
int serve_model_fn(const char *model_dir, struct sm_context *ctx, struct sm_error *err);
void serve_model_free(struct serve_model *sm);
int model_dir_extract(const char *tarball, const char *dir);
/* Extracts <dir>/model.tar.gz when there is no model.pth beside it (before custom handlers in
 * its code/ folder are looked for). */
int model_dir_prepare(const char *dir);
int model_dir_infer_arch(const tc_state_dict *sd, char *arch, size_t len, int *num_classes);

/* codecs.c: the default input_fn and output_fn, and the NPY format */
int serve_input_fn(const struct sm_context *ctx, const struct sm_request *req,
                   struct sm_batch *out, struct sm_error *err);
int serve_output_fn(const struct sm_context *ctx, const struct sm_scores *scores,
                    const struct sm_request *req, struct sm_response *out, struct sm_error *err);
/* 0 if the Accept header names a type output_fn can write (or none / any). */
bool serve_accept_supported(const char *accept);

/* handlers.c */
int serve_predict_fn(const struct sm_context *ctx, const struct sm_batch *in,
                     struct sm_scores *out, struct sm_error *err);
void serve_default_handlers(struct sm_handlers *h);
/* Loads the shared objects in <model_dir>/code, if any, and lets them replace handlers. */
int serve_load_custom_handlers(const char *model_dir, struct sm_handlers *h);

/* batcher.c */
struct batcher;
int batcher_start(struct batcher **out, const struct sm_context *ctx, sm_predict_fn predict,
                  int max_batch, int max_delay_us);
/* A request is about to decode its input (+1), or gave up before submitting (-1): the
 * batcher waits for announced requests only. */
void batcher_expect(struct batcher *b, int delta);
/* Submits a request announced with batcher_expect(b, 1).
 * Blocks until in's predictions are in out (out->probs malloc'd); returns 0 or an HTTP status. */
int batcher_submit(struct batcher *b, const struct sm_batch *in, struct sm_scores *out,
                   struct sm_error *err);
void batcher_stop(struct batcher *b);

#endif
