/*
 * serve.h - the parts of `serve` and how they meet: the default handlers (model_dir.c,
 * request_decode.c, response_encode.c, handlers.c), the dynamic batcher (batcher.c) and the
 * HTTP server (server.c).
 *
 * A request's path: server.c reads the body (capped) -> input_fn decodes it into a batch ->
 * the batcher gathers batches of concurrent requests into one predict_fn call -> output_fn
 * encodes this request's share -> server.c answers and logs it.
 */
#ifndef SERVE_SERVE_H
#define SERVE_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "image/transform.h"
#include "models/model.h"
#include "sm_handlers.h"
#include "torchc.h"

/* What the default model_fn loads (sm_context.model). */
struct serve_model {
    char arch[32];
    int num_classes;
    char **class_names;
    int image_size, resize_size;
    float mean[3], std[3];
    enum image_resize_mode resize_mode; /* crop, squash or auto (image/transform.h) */
    struct model *net;
    tc_device device;
    bool channels_last;
};

/* model_dir.c */
int serve_model_fn(const char *model_dir, struct sm_context *ctx, struct sm_error *err);
void serve_model_free(struct serve_model *sm);
/* The model the calling thread's last successful serve_model_fn made, then forgotten (NULL if
 * none): tells whether a custom model_fn's context is the default's, which the caller frees. */
struct serve_model *serve_model_fn_take_last(void);
int model_dir_infer_arch(const tc_state_dict *sd, char *arch, size_t len, int *num_classes);

/* serve_error.c: a failure as the serve side states it. serve_fail writes the sentence into
 * err and returns status (`return serve_fail(err, 400, "...", ...)`); serve_error_json makes
 * an error answer's body, {"error": message, "status": status} (malloc'd, NULL when out of
 * memory). */
int serve_fail(struct sm_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *serve_error_json(int status, const char *message, size_t *len);

/* request_decode.c: the default input_fn; response_encode.c: the default output_fn */
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

/* invoke_pipeline.c: the Accept check, input_fn, the batcher and output_fn for one request.
 * 0 with resp filled (resp->body malloc'd), or an HTTP status with err filled in. */
int serve_invoke(const struct sm_handlers *h, const struct sm_context *ctx, struct batcher *b,
                 const struct sm_request *req, struct sm_response *resp, struct sm_error *err);

#endif
