/*
 * server.h - the HTTP server of `serve` (server.c) and what it holds: its configuration,
 * the handlers and their context, the batcher, and whether the model is ready.
 */
#ifndef SERVE_SERVER_H
#define SERVE_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "serve/serve.h"

struct server_config {
    int port;                      /* SAGEMAKER_BIND_TO_PORT, else 8080 */
    size_t max_body_bytes;         /* SAGEMAKER_MAX_PAYLOAD_IN_MB, else 6 MiB */
    int max_concurrent_transforms; /* for GET /execution-parameters */
    char batch_strategy[16];
    int max_batch;                 /* SERVE_MAX_BATCH: images per forward pass */
    int batch_delay_us;            /* SERVE_BATCH_DELAY_MS: how long a batch waits to fill */
    bool log_pings;
    int max_inflight;              /* SERVE_MAX_INFLIGHT: requests decoding/predicting at once */
    bool multi_model;              /* SAGEMAKER_MULTI_MODEL=true: /models routes (multi_model.h) */
};

struct server {
    struct server_config config;
    struct sm_handlers handlers;
    struct sm_context ctx;
    struct batcher *batcher;
    bool ready;   /* set once model_fn and the warm-up pass succeeded */
    int active;   /* requests in flight */
    struct MHD_Daemon *daemon;
    /* Bounds the memory of requests being decoded and predicted: each may hold up to 256 MiB
     * of model input; the others wait their turn with only their (capped) body. */
    pthread_mutex_t inflight_mu;
    pthread_cond_t inflight_cv;
    int inflight;
    struct model_registry *registry; /* multi-model mode: the models by name */
};

/* Starts answering (503 on /ping until srv->ready). */
int server_start(struct server *srv);
/* Stops accepting, waits up to drain_seconds for requests in flight, then stops. */
void server_stop(struct server *srv, double drain_seconds);

#endif
