/*
 * serve.h - the parts of `serve` and how they meet, one header each: the default handlers
 * (model_dir.h, request_decode.h, response_encode.h, handlers.h), failures (serve_error.h),
 * the dynamic batcher (batcher.h), the model's replicas, one batcher each (replicas.h), one
 * request's pipeline (invoke_pipeline.h); the HTTP server is server.h. Including this one includes them all.
 *
 * A request's path: server.c reads the body (capped) -> input_fn decodes it into a batch ->
 * the batcher gathers batches of concurrent requests into one predict_fn call -> output_fn
 * encodes this request's share -> server.c answers and logs it.
 */
#ifndef SERVE_SERVE_H
#define SERVE_SERVE_H

#include "serve/batcher.h"
#include "serve/handlers.h"
#include "serve/invoke_pipeline.h"
#include "serve/model_dir.h"
#include "serve/replicas.h"
#include "serve/request_decode.h"
#include "serve/response_encode.h"
#include "serve/serve_error.h"

#endif
