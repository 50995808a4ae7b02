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

struct MHD_Connection;

/* An answer for server.c to send. */
struct http_reply {
    int status;
    char *body; /* malloc'd; server.c's send_body takes it */
    size_t len;
    char content_type[64];
    const char *attributes; /* custom attributes to echo, or NULL; lives as long as the request */
};

/* True for the paths the multi-model routes answer (/models, /models/...). */
bool multi_model_path(const char *url);
/* Answers one complete request (body read, under the server's cap) on a multi-model path or
 * /invocations. */
void multi_model_answer(struct server *srv, struct MHD_Connection *c, const char *method,
                        const char *url, const char *body, size_t len, struct http_reply *out);
/* main() in multi-model mode once the server listens: sets up the registry, says 200 to
 * /ping, waits for SIGTERM/SIGINT (in stop), drains and frees. Returns the exit status. */
int multi_model_run(struct server *srv, const sigset_t *stop);

#endif
