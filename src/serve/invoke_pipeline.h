/*
 * invoke_pipeline.h - one /invocations request through the handlers (invoke_pipeline.c).
 */
#ifndef SERVE_INVOKE_PIPELINE_H
#define SERVE_INVOKE_PIPELINE_H

#include "serve/batcher.h"
#include "sm_handlers.h"

/* The Accept check, input_fn, the batcher and output_fn for one request.
 * 0 with resp filled (resp->body malloc'd), or an HTTP status with err filled in. */
int serve_invoke(const struct sm_handlers *h, const struct sm_context *ctx, struct batcher *b,
                 const struct sm_request *req, struct sm_response *resp, struct sm_error *err);

#endif
