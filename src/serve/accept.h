/*
 * accept.h - content negotiation for /invocations answers: which media type (JSON, NPY,
 * JSON Lines) and which response shape a request's Accept header asks for.
 *
 * Shapes, so that client code written for another container parses our answers unchanged:
 *   default  this project's own: {"predictions": [{"probabilities": [...], "top_k": ...}]}
 *   builtin  SageMaker's built-in image-classification algorithm: a flat JSON list of class
 *            probabilities, JSON Lines {"prediction": [...]} (with "labels" and
 *            "predicted_label" when verbose=true)
 *   pytorch  the PyTorch framework container's default output_fn: the network's raw output
 *            (logits), [N,K], as nested JSON lists or NPY
 * The endpoint's shape comes from SERVE_RESPONSE_FORMAT; a request may pick another with a
 * media-type parameter: "application/json; format=pytorch". "verbose=true" (the built-in
 * algorithm's own parameter) selects the built-in shape's verbose variant.
 *
 * Accept is weighed as RFC 9110 says: the supported range with the highest q wins (the first
 * on ties), q=0 means "not acceptable". Not here: writing the answers (response_encode.c).
 */
#ifndef SERVE_ACCEPT_H
#define SERVE_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>

enum serve_out_type { SERVE_OUT_JSON, SERVE_OUT_NPY, SERVE_OUT_JSONLINES };
enum serve_shape { SERVE_SHAPE_DEFAULT, SERVE_SHAPE_BUILTIN, SERVE_SHAPE_PYTORCH };

struct serve_accept {
    enum serve_out_type type;
    bool shape_given; /* a format= parameter chose shape; otherwise the endpoint's applies */
    enum serve_shape shape;
    bool verbose;     /* verbose=true */
};

/* The best acceptable answer for an Accept header (NULL or "" = JSON). Returns 0, or -1
 * when no range names a type and format we can write (the caller answers 406). */
int serve_accept_parse(const char *accept, struct serve_accept *out);

/* "default", "builtin" (or "image-classification"), "pytorch" (or "logits"), any case.
 * Returns 0, or -1 for another name. */
int serve_shape_parse(const char *name, size_t len, enum serve_shape *out);

/* The endpoint's shape from SERVE_RESPONSE_FORMAT (unset or empty: pytorch when
 * SAGEMAKER_PROGRAM is set, as PyTorchModel(entry_point=...) deploys, else the model's own
 * (serve_shape_set_model_default), else default). Returns 0, or
 * -1 with a sentence for the user in msg when the variable holds another value. */
int serve_shape_from_env(enum serve_shape *out, char *msg, size_t msg_len);

/* The single model's metadata.json response_format (an enum serve_shape, or -1 for none):
 * what serve_shape_from_env gives when neither variable says. Set once, before serving. */
void serve_shape_set_model_default(int shape);

/* The shape a request gets: its format= parameter, else the built-in one when it asked for
 * verbose=true, else the endpoint's. */
enum serve_shape serve_accept_shape(const struct serve_accept *a, enum serve_shape endpoint);

#endif
