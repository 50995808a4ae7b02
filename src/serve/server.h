/*
 * server.h - the HTTP server of `serve` (server.c) and what it holds: its configuration,
 * the handlers, the model's replicas (each a context and a batcher), and whether the model is
 * ready.
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
    int header_timeout_s;          /* SERVE_HEADER_TIMEOUT_S: from connect (or the previous
                                      answer) to a request's complete headers */
    int body_timeout_s;            /* SERVE_BODY_TIMEOUT_S: from the headers to the whole body */
    bool multi_model;              /* SAGEMAKER_MULTI_MODEL=true: /models routes (multi_model.h) */
};

struct request_state;
struct conn_track;
struct multi_model_request;
struct http_reply;
struct server;
/* How a multi-model endpoint answers a request on /models... or /invocations (multi_model.h);
 * main() sets it in that mode, so that server.c does not depend on the model registry. */
typedef void (*multi_model_answer_fn)(struct server *srv, const struct multi_model_request *req,
                                      struct http_reply *out);

struct server {
    struct server_config config;
    struct sm_handlers handlers;
    struct replica_set replicas; /* the single model, once per device */
    bool ready;   /* set once every replica's model_fn and warm-up succeeded */
    int active;   /* requests in flight */
    struct MHD_Daemon *daemon;
    /* The pipeline's workers: max_inflight threads take complete requests from a queue, so
     * the connections' event loops never block on the model, and the memory of requests being
     * decoded and predicted is bounded (each may hold up to 256 MiB of model input; the others
     * wait their turn with only their capped body). */
    pthread_mutex_t inflight_mu;
    pthread_cond_t inflight_cv;
    int inflight;                  /* requests a worker is running */
    struct request_state *queue_head, *queue_tail;
    bool workers_stopping;
    pthread_t *workers;
    int n_workers;
    /* Every open connection with its deadline; a reaper thread shuts those past it down. */
    pthread_mutex_t conns_mu;
    struct conn_track *conns;
    bool reaper_stopping;
    pthread_cond_t reaper_cv;
    pthread_t reaper;
    bool reaper_started;
    unsigned connection_limit;
    struct model_registry *registry; /* multi-model mode: the models by name */
    multi_model_answer_fn answer_multi_model; /* multi-model mode, else NULL */
};

/* Starts answering (503 on /ping until srv->ready). */
int server_start(struct server *srv);
/* Stops accepting, waits up to drain_seconds for requests in flight, then stops. */
void server_stop(struct server *srv, double drain_seconds);

#endif
