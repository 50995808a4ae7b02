/*
 * multi_model.h - `serve` as a SageMaker multi-model endpoint (SAGEMAKER_MULTI_MODEL=true):
 * the routes of the multi-model container contract (multi_model_routes.c) over the model
 * registry (model_registry.c), and what main() runs in that mode.
 *
 *   POST   /models  {"model_name": N, "url": DIR}   load (400, 409, 507, 500)
 *   GET    /models?limit=L&next_page_token=T        {"models": [...], "nextPageToken"?}
 *   GET    /models/N                                {"modelName", "modelUrl"} (404)
 *   DELETE /models/N                                unload (404)
 *   POST   /models/N/invoke                         as /invocations, on model N (404)
 *   POST   /invocations                             on the model X-Amzn-SageMaker-Target-Model
 *                                                   names
 */
#ifndef SERVE_MULTI_MODEL_H
#define SERVE_MULTI_MODEL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "serve/server.h"

/* An answer for server.c to send. */
struct http_reply {
    int status;
    char *body; /* malloc'd; server.c's send_body takes it */
    size_t len;
    char content_type[64];
    const char *attributes; /* custom attributes to echo, or NULL; lives as long as the request */
};

/* One complete request (body read, under the server's cap), as server.c copied it off the
 * connection: the routes run on the pipeline's workers, never on the connections' event loops,
 * so a model that loads for seconds or a busy model holds up no other connection. */
struct multi_model_request {
    const char *method, *url;
    const char *content_type;          /* media type, lower case, no parameters */
    const char *accept, *attributes;   /* "" when absent */
    const char *target_model;          /* X-Amzn-SageMaker-Target-Model, "" when absent */
    const char *page_token, *limit;    /* GET /models query arguments, NULL when absent */
    const char *body;
    size_t len;
};

/* Answers one request on a multi-model path or /invocations (blocking: a worker's call). */
void multi_model_answer(struct server *srv, const struct multi_model_request *req,
                        struct http_reply *out);
/* main() in multi-model mode once the server listens: sets up the registry, says 200 to
 * /ping, waits for SIGTERM/SIGINT (in stop), drains and frees. Returns the exit status. */
int multi_model_run(struct server *srv, const sigset_t *stop);

#endif
