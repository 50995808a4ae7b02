/*
 * sm_handlers.h - the serving handlers, the C analogues of SageMaker's Python model_fn,
 * input_fn, predict_fn and output_fn. `serve` has defaults for image classification built in;
 * a user replaces any of them with their own C code, as `code/inference.py` does for Python
 * users: build a shared object that exports
 *
 *     int sm_handlers_init(struct sm_handlers *h);
 *
 * and ship it in the model archive as code/<anything>.so. At start `serve` loads it and calls
 * sm_handlers_init with the defaults filled in; the function replaces the members it wants
 * (keeping the default's pointer to call it, if it likes) and returns 0. Example, a custom
 * output_fn that answers only the top class name:
 *
 *     static sm_output_fn default_output;
 *     static int my_output(const struct sm_context *ctx, const struct sm_scores *s,
 *                          const struct sm_request *req, struct sm_response *out) {
 *         ... write JSON into out->body (malloc'd), set out->content_type ...
 *     }
 *     int sm_handlers_init(struct sm_handlers *h) {
 *         default_output = h->output_fn;
 *         h->output_fn = my_output;
 *         return 0;
 *     }
 *
 * Each handler returns 0, or an HTTP status (400, 406, 415, 500...) after writing a message
 * into err (the server answers it as {"error": message}). Handlers other than model_fn run on
 * many threads at once, except predict_fn, which a replica's batcher calls from one thread.
 *
 * Replicas (SERVE_REPLICAS; by default one per GPU when predict_fn is the default, else one):
 * model_fn runs once per replica, each time with its own context whose device_index names the
 * replica's GPU; each replica has its own batcher thread calling predict_fn with its context.
 */
#ifndef SM_HANDLERS_H
#define SM_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SM_ERROR_MAX 512

struct sm_error {
    char message[SM_ERROR_MAX];
};

/* What model_fn loaded, shared read-only by all requests. */
/* The server allocates each context and hands handlers pointers to it. Fields are only ever
 * added at the end: a handler built against an older header works as long as it does not copy
 * a context by value (its copy would lack the newer fields that the default handlers read);
 * rebuild handlers against the header of the image they run in. */
struct sm_context {
    void *model;                 /* the default model_fn's network (opaque) */
    const char *const *class_names; /* num_classes names, index order */
    int num_classes;
    int image_size, resize_size; /* the eval transform: resize shorter side, centre crop */
    float mean[3], std[3];
    void *user;                  /* free for custom handlers */
    int squash;                  /* 1: resize both sides to image_size (torchvision
                                    Resize((size, size)), resize_mode "squash"), no crop;
                                    kept for handlers built before resize_mode existed */
    int resize_mode;             /* the metadata's resize_mode: 0 "crop" (shorter side to
                                    resize_size, centre crop), 1 "squash" (both sides to
                                    image_size, no crop), 2 "auto" (as crop, but an image
                                    already image_size on its shorter side is not resized) */
    int device_index;            /* set before model_fn runs: on a GPU host, the CUDA device
                                    (cuda:<device_index % GPUs>) this replica's model belongs on;
                                    the default model_fn puts it there */
    int jpeg_dct_scaling;        /* 1 (SERVE_JPEG_DCT_SCALING=true, set by the default model_fn):
                                    the default input_fn may decode a large JPEG at a reduced DCT
                                    scale, faster but not Pillow's pixels; 0: full size, as PIL's
                                    Image.open gives it */
};

struct sm_request {
    const uint8_t *body;
    size_t body_len;
    const char *content_type;       /* lower case, parameters removed; "" if none */
    const char *accept;             /* as sent; "" if none */
    const char *custom_attributes;  /* X-Amzn-SageMaker-Custom-Attributes, or "" */
};

/* Model input: a batch of preprocessed images, float32 [n,3,size,size], malloc'd.
 * records (optional, malloc'd; the server frees it): how many consecutive images each input
 * record gave, n_records entries summing to n, so that output_fn can answer one record per
 * record (a JSON Lines line holding several instances is answered by one line). NULL: every
 * image is a record of its own. */
struct sm_batch {
    float *data;
    int64_t n, height, width;
    int64_t *records;
    int64_t n_records;
};

/* Model output: class probabilities [n,k], malloc'd; records as the input batch's.
 * logits (optional, malloc'd, [n,k]): the network's raw output before the softmax, for
 * answers in the PyTorch container's shape; NULL when predict_fn gives only probabilities
 * (output_fn then answers log-probabilities, which differ from the logits by a constant per
 * row). The server frees both. */
struct sm_scores {
    float *probs;
    int64_t n, k;
    const int64_t *records;
    int64_t n_records;
    float *logits;
};

struct sm_response {
    uint8_t *body; /* malloc'd; the server frees it */
    size_t len;
    char content_type[64];
};

typedef int (*sm_model_fn)(const char *model_dir, struct sm_context *ctx, struct sm_error *err);
typedef int (*sm_input_fn)(const struct sm_context *ctx, const struct sm_request *req,
                           struct sm_batch *out, struct sm_error *err);
typedef int (*sm_predict_fn)(const struct sm_context *ctx, const struct sm_batch *in,
                             struct sm_scores *out, struct sm_error *err);
typedef int (*sm_output_fn)(const struct sm_context *ctx, const struct sm_scores *scores,
                            const struct sm_request *req, struct sm_response *out,
                            struct sm_error *err);

struct sm_handlers {
    sm_model_fn model_fn;
    sm_input_fn input_fn;
    sm_predict_fn predict_fn;
    sm_output_fn output_fn;
};

/* What a custom handler library exports. */
typedef int (*sm_handlers_init_fn)(struct sm_handlers *h);

#ifdef __cplusplus
}
#endif
#endif
