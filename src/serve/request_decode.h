/*
 * request_decode.h - the default input_fn (request_decode.c): a request body into a model
 * batch, under the model's preprocessing.
 */
#ifndef SERVE_REQUEST_DECODE_H
#define SERVE_REQUEST_DECODE_H

#include "sm_handlers.h"

int serve_input_fn(const struct sm_context *ctx, const struct sm_request *req,
                   struct sm_batch *out, struct sm_error *err);

#endif
