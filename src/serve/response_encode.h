/*
 * response_encode.h - the default output_fn (response_encode.c): class scores into a response
 * body in the negotiated type and shape.
 */
#ifndef SERVE_RESPONSE_ENCODE_H
#define SERVE_RESPONSE_ENCODE_H

#include <stdbool.h>

#include "sm_handlers.h"

int serve_output_fn(const struct sm_context *ctx, const struct sm_scores *scores,
                    const struct sm_request *req, struct sm_response *out, struct sm_error *err);
/* 0 if the Accept header names a type output_fn can write (or none / any). */
bool serve_accept_supported(const char *accept);

#endif
