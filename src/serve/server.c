/*
 * server.c - the HTTP side of `serve`, on libmicrohttpd: routes, capped request bodies, the
 * invocation pipeline, JSON errors with the right status, access logs and a draining stop.
 *
 * Request life cycle (libmicrohttpd's): the first callback makes a request_state and may
 * answer at once (unknown path 404, wrong method 405, a Content-Length over the limit 413:
 * the body is then never read); later callbacks append the body under its cap (a chunked body
 * that outgrows it is discarded as it arrives, never held); the last one runs the pipeline;
 * the completion callback logs the request and frees its state, also when a client went away.
 *
 * Connection model: a small pool of epoll event loops (libmicrohttpd's thread pool) reads and
 * writes every connection and never blocks on the model: a complete /invocations request is
 * suspended and queued for the pipeline's workers (max_inflight threads), and the worker that
 * ran it resumes it with its answer. An idle or slow connection costs a socket and a little
 * memory, not a thread, so the connection limit follows the open-file limit. Each connection
 * has deadlines that trickled bytes do not extend: its request headers must be complete within
 * header_timeout_s of connecting (or of its previous answer), and its body within
 * body_timeout_s of the headers; a reaper thread shuts down those that miss them.
 */
#define _GNU_SOURCE
#include "serve/server.h"

#include <ctype.h>
#include <stdint.h>
#include <microhttpd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/clock.h"
#include "common/dynbuf.h"
#include "common/error.h"
#include "common/log.h"
#include "serve/media_types.h"
#include "serve/multi_model.h"
#include "serve/server_conns.h"

enum route { ROUTE_PING, ROUTE_INVOCATIONS, ROUTE_EXECUTION_PARAMETERS, ROUTE_MULTI_MODEL, ROUTE_NONE };

struct request_state {
    enum route route;
    double start;
    struct dynbuf body; /* capped at the payload limit */
    bool too_large;
    bool answered;
    int status;
    size_t bytes_out;
    char method[16];
    char path[128];
    /* For the pipeline's worker: copies of the headers it needs, the suspended connection,
     * and the answer it leaves behind (done) before resuming the connection. */
    struct MHD_Connection *conn;
    char *content_type, *accept, *attributes;
    char *url, *target_model, *page_token, *limit; /* multi-model routes only */
    bool echo_attributes; /* the answer echoes the custom attributes */
    struct request_state *next;
    bool queued, done;
    int result_status;
    char *result_body;
    size_t result_len;
    char result_type[128];
};

static enum MHD_Result send_body(struct MHD_Connection *c, struct request_state *st, int status,
                                 void *body, size_t len, const char *type, const char *attributes)
{
    if (!body)
        return MHD_NO; /* out of memory making the answer: drop the connection */
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (attributes && *attributes)
        MHD_add_response_header(r, "X-Amzn-SageMaker-Custom-Attributes", attributes);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
                                st->route == ROUTE_INVOCATIONS ? "POST" : "GET");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    st->answered = true;
    st->status = status;
    st->bytes_out = len;
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, struct request_state *st, int status,
                                 cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    if (!text)
        return MHD_NO;
    return send_body(c, st, status, text, strlen(text), "application/json", NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *c, struct request_state *st, int status,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_error(struct MHD_Connection *c, struct request_state *st, int status,
                                  const char *fmt, ...)
{
    char message[SM_ERROR_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    size_t len = 0;
    char *body = serve_error_json(status, message, &len);
    return send_body(c, st, status, body, len, "application/json", NULL);
}

/* The paths of the multi-model container contract: /models, /models/<name>[/invoke]. */
static bool is_multi_model_path(const char *url)
{
    return strcmp(url, "/models") == 0 || strncmp(url, "/models/", 8) == 0;
}

static enum route route_of(const char *url)
{
    if (strcmp(url, "/ping") == 0)
        return ROUTE_PING;
    if (strcmp(url, "/invocations") == 0)
        return ROUTE_INVOCATIONS;
    if (strcmp(url, "/execution-parameters") == 0)
        return ROUTE_EXECUTION_PARAMETERS;
    return ROUTE_NONE;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "";
}

/* A JSON error body {"error": message, "status": status}, or NULL when out of memory. */
/* A multi-model route for st on a worker thread (a load, an invocation...); leaves the answer
 * in st. */
static void run_multi_model(struct server *srv, struct request_state *st)
{
    struct multi_model_request req = {st->method, st->url, st->content_type, st->accept,
                                      st->attributes, st->target_model, st->page_token,
                                      st->limit, st->body.data, st->body.len};
    struct http_reply r;
    srv->answer_multi_model(srv, &req, &r);
    st->result_status = r.status;
    st->result_body = r.body;
    st->result_len = r.len;
    st->echo_attributes = r.attributes != NULL;
    snprintf(st->result_type, sizeof st->result_type, "%s", r.content_type);
}

/* Runs input_fn, the batcher and output_fn for st on a worker thread; leaves the answer in st. */
static void run_pipeline(struct server *srv, struct request_state *st)
{
    if (st->route == ROUTE_MULTI_MODEL)
        return run_multi_model(srv, st);
    struct sm_request req = {(const uint8_t *)st->body.data, st->body.len, st->content_type, st->accept,
                             st->attributes};
    struct sm_error err = {{0}};
    struct sm_response resp = {0};
    struct replica *replica = replica_set_pick(&srv->replicas);
    int status = serve_invoke(&srv->handlers, &replica->ctx, replica->batcher, &req, &resp, &err);
    if (status == 0) {
        st->result_status = 200;
        st->echo_attributes = true;
        st->result_body = (char *)resp.body;
        st->result_len = resp.len;
        snprintf(st->result_type, sizeof st->result_type, "%s",
                 resp.content_type[0] ? resp.content_type : "application/json");
        return;
    }
    st->result_status = status;
    st->result_body = serve_error_json(status, err.message[0] ? err.message : "request failed",
                                 &st->result_len);
    snprintf(st->result_type, sizeof st->result_type, "application/json");
}

static void *worker_main(void *arg)
{
    struct server *srv = arg;
    pthread_mutex_lock(&srv->inflight_mu);
    for (;;) {
        while (!srv->queue_head && !srv->workers_stopping)
            pthread_cond_wait(&srv->inflight_cv, &srv->inflight_mu);
        struct request_state *st = srv->queue_head;
        if (!st)
            break; /* stopping, and nothing is left */
        srv->queue_head = st->next;
        if (!srv->queue_head)
            srv->queue_tail = NULL;
        bool stopping = srv->workers_stopping;
        srv->inflight++;
        pthread_mutex_unlock(&srv->inflight_mu);
        if (stopping) {
            st->result_status = 503;
            st->result_body = serve_error_json(503, "the server is shutting down", &st->result_len);
            snprintf(st->result_type, sizeof st->result_type, "application/json");
        } else {
            run_pipeline(srv, st);
        }
        struct MHD_Connection *c = st->conn;
        st->done = true;
        /* st belongs to the connection again from here on: it may be freed at once. */
        MHD_resume_connection(c);
        pthread_mutex_lock(&srv->inflight_mu);
        srv->inflight--;
    }
    pthread_mutex_unlock(&srv->inflight_mu);
    return NULL;
}

static char *header_copy(struct MHD_Connection *c, const char *name)
{
    return strdup(header(c, name));
}

/* The answer a worker left in st, once it resumed the connection. */
static enum MHD_Result send_result(struct MHD_Connection *c, struct request_state *st)
{
    char *body = st->result_body;
    st->result_body = NULL;
    if (!body)
        return MHD_NO; /* out of memory: drop the connection rather than answer wrongly */
    return send_body(c, st, st->result_status, body, st->result_len, st->result_type,
                     st->echo_attributes ? st->attributes : NULL);
}

/* Hands a complete request to the pipeline's workers and suspends its connection until the
 * worker that runs it resumes it (on_request then sends its answer). */
static enum MHD_Result queue_for_worker(struct server *srv, struct MHD_Connection *c,
                                        struct request_state *st)
{
    pthread_mutex_lock(&srv->inflight_mu);
    if (srv->workers_stopping) {
        pthread_mutex_unlock(&srv->inflight_mu);
        return send_error(c, st, 503, "the server is shutting down");
    }
    st->conn = c;
    st->queued = true;
    server_set_deadline(c, -1); /* the client has sent everything; the wait is ours */
    MHD_suspend_connection(c);
    if (srv->queue_tail)
        srv->queue_tail->next = st;
    else
        srv->queue_head = st;
    srv->queue_tail = st;
    pthread_cond_signal(&srv->inflight_cv);
    pthread_mutex_unlock(&srv->inflight_mu);
    return MHD_YES;
}

/* A complete multi-model request: what the routes need is copied off the connection, and a
 * worker answers it. */
static enum MHD_Result queue_multi_model(struct server *srv, struct MHD_Connection *c,
                                         struct request_state *st, const char *url)
{
    char content_type[128];
    media_type_bare(header(c, MHD_HTTP_HEADER_CONTENT_TYPE), content_type, sizeof content_type);
    const char *token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "next_page_token");
    const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    st->url = strdup(url);
    st->content_type = strdup(content_type);
    st->accept = header_copy(c, MHD_HTTP_HEADER_ACCEPT);
    const char *attributes = header(c, "X-Amzn-SageMaker-Custom-Attributes");
    st->attributes = strdup(strlen(attributes) > 1024 ? "" : attributes); /* SageMaker's limit */
    st->target_model = header_copy(c, "X-Amzn-SageMaker-Target-Model");
    st->page_token = token ? strdup(token) : NULL;
    st->limit = limit ? strdup(limit) : NULL;
    if (!st->url || !st->content_type || !st->accept || !st->attributes || !st->target_model ||
        (token && !st->page_token) || (limit && !st->limit))
        return send_error(c, st, 500, "out of memory");
    return queue_for_worker(srv, c, st);
}

/* The last callback of an /invocations request: answers what needs no model at once, queues the
 * rest for a worker and suspends the connection until the worker resumes it. */
static enum MHD_Result invoke(struct server *srv, struct MHD_Connection *c, struct request_state *st)
{
    if (!__atomic_load_n(&srv->ready, __ATOMIC_ACQUIRE))
        return send_error(c, st, 503, "the model is still loading");
    char content_type[128];
    media_type_bare(header(c, MHD_HTTP_HEADER_CONTENT_TYPE), content_type, sizeof content_type);
    const char *attributes = header(c, "X-Amzn-SageMaker-Custom-Attributes");
    if (strlen(attributes) > 1024)
        attributes = ""; /* SageMaker's limit: longer ones are not ours to echo */
    const char *accept = header(c, MHD_HTTP_HEADER_ACCEPT);
    if (srv->handlers.output_fn == serve_output_fn && !serve_accept_supported(accept))
        return send_error(c, st, 406, "unsupported Accept \"%s\": ask for application/json, "
                                      "application/x-npy or application/jsonlines", accept);
    st->content_type = strdup(content_type);
    st->accept = header_copy(c, MHD_HTTP_HEADER_ACCEPT);
    st->attributes = strdup(attributes);
    if (!st->content_type || !st->accept || !st->attributes)
        return send_error(c, st, 500, "out of memory");
    return queue_for_worker(srv, c, st);
}

static enum MHD_Result execution_parameters(struct server *srv, struct MHD_Connection *c,
                                            struct request_state *st)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "MaxConcurrentTransforms", srv->config.max_concurrent_transforms);
    cJSON_AddStringToObject(j, "BatchStrategy", srv->config.batch_strategy);
    cJSON_AddNumberToObject(j, "MaxPayloadInMB", (double)(srv->config.max_body_bytes >> 20));
    return send_json(c, st, 200, j);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct server *srv = cls;
    struct request_state *st = *con_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        *con_cls = st;
        dynbuf_init(&st->body, srv->config.max_body_bytes + 1); /* + its NUL */
        server_set_deadline(c, srv->config.body_timeout_s);
        st->start = clock_now_s();
        st->route = route_of(url);
        if (srv->answer_multi_model && (st->route == ROUTE_INVOCATIONS || is_multi_model_path(url)))
            st->route = ROUTE_MULTI_MODEL; /* methods checked by the multi-model routes */
        snprintf(st->method, sizeof st->method, "%s", method);
        snprintf(st->path, sizeof st->path, "%s", url);
        __atomic_add_fetch(&srv->active, 1, __ATOMIC_ACQ_REL);
        bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        bool post = strcmp(method, "POST") == 0;
        if (st->route == ROUTE_NONE)
            return send_error(c, st, 404, "no route %s %s: this server answers GET /ping, "
                                          "POST /invocations and GET /execution-parameters",
                              method, url);
        if (st->route != ROUTE_MULTI_MODEL &&
            ((st->route == ROUTE_INVOCATIONS && !post) || (st->route != ROUTE_INVOCATIONS && !get)))
            return send_error(c, st, 405, "%s is not allowed on %s", method, url);
        const char *length = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if ((post || st->route == ROUTE_MULTI_MODEL) && *length && strtoull(length, NULL, 10) > srv->config.max_body_bytes)
            return send_error(c, st, 413, "the body is %s bytes, over the %zu-byte limit "
                                          "(SAGEMAKER_MAX_PAYLOAD_IN_MB)",
                              length, srv->config.max_body_bytes);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (st->answered || st->too_large)
            return MHD_YES; /* discarded as it arrives */
        if (dynbuf_append(&st->body, upload, n) < 0) {
            if (!st->body.too_large)
                return MHD_NO; /* out of memory: the connection is closed */
            st->too_large = true;
            dynbuf_free(&st->body);
        }
        return MHD_YES;
    }
    if (st->answered || (st->queued && !st->done))
        return MHD_YES;
    if (st->done)
        return send_result(c, st);
    if (st->too_large)
        return send_error(c, st, 413, "the body is over the %zu-byte limit (SAGEMAKER_MAX_PAYLOAD_IN_MB)",
                          srv->config.max_body_bytes);
    switch (st->route) {
    case ROUTE_PING:
        if (__atomic_load_n(&srv->ready, __ATOMIC_ACQUIRE))
            return send_body(c, st, 200, strdup("{}"), 2, "application/json", NULL);
        return send_error(c, st, 503, "the model is still loading");
    case ROUTE_EXECUTION_PARAMETERS:
        return execution_parameters(srv, c, st);
    case ROUTE_MULTI_MODEL:
        return queue_multi_model(srv, c, st, url);
    default:
        return invoke(srv, c, st);
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)c;
    struct server *srv = cls;
    struct request_state *st = *con_cls;
    if (!st)
        return;
    if (st->route != ROUTE_PING || st->status != 200 || srv->config.log_pings)
        log_info("%s %s %d %zu bytes %.1f ms%s", st->method, st->path, st->answered ? st->status : 0,
                 st->bytes_out, (clock_now_s() - st->start) * 1e3,
                 why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (client gone)");
    dynbuf_free(&st->body);
    free(st->content_type);
    free(st->accept);
    free(st->attributes);
    free(st->url);
    free(st->target_model);
    free(st->page_token);
    free(st->limit);
    free(st->result_body);
    free(st);
    *con_cls = NULL;
    if (c)
        server_set_deadline(c, srv->config.header_timeout_s); /* for the connection's next request */
    __atomic_sub_fetch(&srv->active, 1, __ATOMIC_ACQ_REL);
}

static void stop_workers(struct server *srv)
{
    pthread_mutex_lock(&srv->inflight_mu);
    srv->workers_stopping = true;
    pthread_cond_broadcast(&srv->inflight_cv);
    pthread_mutex_unlock(&srv->inflight_mu);
    for (int i = 0; i < srv->n_workers; i++)
        pthread_join(srv->workers[i], NULL);
    free(srv->workers);
    srv->workers = NULL;
    srv->n_workers = 0;
}

int server_start(struct server *srv)
{
    pthread_mutex_init(&srv->inflight_mu, NULL);
    pthread_cond_init(&srv->inflight_cv, NULL);
    pthread_mutex_init(&srv->conns_mu, NULL);
    pthread_cond_init(&srv->reaper_cv, NULL);
    if (srv->config.header_timeout_s < 1)
        srv->config.header_timeout_s = 60;
    if (srv->config.body_timeout_s < 1)
        srv->config.body_timeout_s = 60;
    int want = srv->config.max_inflight > 0 ? srv->config.max_inflight : 1;
    srv->workers = calloc((size_t)want, sizeof *srv->workers);
    if (!srv->workers)
        return err_set("out of memory for %d worker threads", want);
    while (srv->n_workers < want &&
           pthread_create(&srv->workers[srv->n_workers], NULL, worker_main, srv) == 0)
        srv->n_workers++;
    if (srv->n_workers == 0) {
        free(srv->workers);
        srv->workers = NULL;
        return err_set("cannot start the request workers");
    }
    if (srv->n_workers < want)
        log_warn("started %d of %d request workers (SERVE_MAX_INFLIGHT)", srv->n_workers, want);
    if (pthread_create(&srv->reaper, NULL, server_reaper_main, srv) != 0) {
        stop_workers(srv);
        return err_set("cannot start the connection reaper thread");
    }
    srv->reaper_started = true;
    srv->connection_limit = server_connection_limit();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned loops = cores < 2 ? 2 : cores > 4 ? 4 : (unsigned)cores;
    srv->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        (uint16_t)srv->config.port, NULL, NULL, &on_request, srv, MHD_OPTION_NOTIFY_COMPLETED,
        &on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, &server_on_connection, srv,
        MHD_OPTION_THREAD_POOL_SIZE, loops,
        /* The deadlines above are what ends slow connections; this only backs them up. */
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(srv->config.header_timeout_s + srv->config.body_timeout_s + 10),
        MHD_OPTION_CONNECTION_LIMIT, srv->connection_limit, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)1024, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (!srv->daemon) {
        server_stop_reaper(srv);
        stop_workers(srv);
        return err_set("cannot listen on port %d (in use, or not allowed?)", srv->config.port);
    }
    return 0;
}

void server_stop(struct server *srv, double drain_seconds)
{
    if (!srv->daemon)
        return;
    MHD_socket listener = MHD_quiesce_daemon(srv->daemon); /* no new connections */
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
    double deadline = clock_now_s() + drain_seconds;
    while (__atomic_load_n(&srv->active, __ATOMIC_ACQUIRE) > 0 && clock_now_s() < deadline)
        usleep(10 * 1000);
    int left = __atomic_load_n(&srv->active, __ATOMIC_ACQUIRE);
    if (left)
        log_warn("stopping with %d request(s) still in flight", left);
    /* Requests still queued are answered 503 and every suspended connection is resumed before
     * the daemon goes (libmicrohttpd must not stop with connections suspended). */
    stop_workers(srv);
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    server_stop_reaper(srv);
}
