/*
 * server.c - the HTTP side of `serve`, on libmicrohttpd: routes, capped request bodies, the
 * invocation pipeline, JSON errors with the right status, access logs and a draining stop.
 *
 * Request life cycle (libmicrohttpd's): the first callback makes a request_state and may
 * answer at once (unknown path 404, wrong method 405, a Content-Length over the limit 413:
 * the body is then never read); later callbacks append the body under its cap (a chunked body
 * that outgrows it is discarded as it arrives, never held); the last one runs the pipeline;
 * the completion callback logs the request and frees its state, also when a client went away.
 * One thread per connection: the pipeline blocks only its own connection while it waits for
 * the batcher.
 */
#define _GNU_SOURCE
#include "serve/server.h"

#include <ctype.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

enum route { ROUTE_PING, ROUTE_INVOCATIONS, ROUTE_EXECUTION_PARAMETERS, ROUTE_NONE };

struct request_state {
    enum route route;
    double start;
    char *body;
    size_t len, cap;
    bool too_large;
    bool answered;
    int status;
    size_t bytes_out;
    char method[16];
    char path[128];
};

static enum MHD_Result send_body(struct MHD_Connection *c, struct request_state *st, int status,
                                 void *body, size_t len, const char *type, const char *attributes)
{
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
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", message);
    cJSON_AddNumberToObject(j, "status", status);
    return send_json(c, st, status, j);
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

/* "Image/JPEG; charset=x" -> "image/jpeg" */
static void media_type(const char *raw, char *out, size_t len)
{
    size_t n = 0;
    while (*raw && isspace((unsigned char)*raw))
        raw++;
    for (; *raw && *raw != ';' && n + 1 < len; raw++)
        if (!isspace((unsigned char)*raw))
            out[n++] = (char)tolower((unsigned char)*raw);
    out[n] = '\0';
}

static enum MHD_Result invoke(struct server *srv, struct MHD_Connection *c, struct request_state *st)
{
    if (!__atomic_load_n(&srv->ready, __ATOMIC_ACQUIRE))
        return send_error(c, st, 503, "the model is still loading");
    char content_type[128];
    media_type(header(c, MHD_HTTP_HEADER_CONTENT_TYPE), content_type, sizeof content_type);
    const char *attributes = header(c, "X-Amzn-SageMaker-Custom-Attributes");
    if (strlen(attributes) > 1024)
        attributes = ""; /* SageMaker's limit: longer ones are not ours to echo */
    struct sm_request req = {(const uint8_t *)st->body, st->len, content_type,
                             header(c, MHD_HTTP_HEADER_ACCEPT), attributes};
    if (srv->handlers.output_fn == serve_output_fn && !serve_accept_supported(req.accept))
        return send_error(c, st, 406, "unsupported Accept \"%s\": ask for application/json, "
                                      "application/x-npy or application/jsonlines", req.accept);
    struct sm_error err = {{0}};
    struct sm_batch batch = {0};
    struct sm_scores scores = {0};
    struct sm_response resp = {0};
    pthread_mutex_lock(&srv->inflight_mu);
    while (srv->inflight >= srv->config.max_inflight)
        pthread_cond_wait(&srv->inflight_cv, &srv->inflight_mu);
    srv->inflight++;
    pthread_mutex_unlock(&srv->inflight_mu);
    batcher_expect(srv->batcher, 1);
    int status = srv->handlers.input_fn(&srv->ctx, &req, &batch, &err);
    if (status == 0)
        status = batcher_submit(srv->batcher, &batch, &scores, &err);
    else
        batcher_expect(srv->batcher, -1);
    if (status == 0) {
        scores.records = batch.records;
        scores.n_records = batch.records ? batch.n_records : 0;
        status = srv->handlers.output_fn(&srv->ctx, &scores, &req, &resp, &err);
    }
    free(batch.data);
    free(batch.records);
    free(scores.probs);
    free(scores.logits);
    pthread_mutex_lock(&srv->inflight_mu);
    srv->inflight--;
    pthread_cond_signal(&srv->inflight_cv);
    pthread_mutex_unlock(&srv->inflight_mu);
    if (status != 0) {
        free(resp.body);
        if (status < 400 || status > 599)
            status = 500;
        return send_error(c, st, status, "%s", err.message[0] ? err.message : "request failed");
    }
    return send_body(c, st, 200, resp.body, resp.len,
                     resp.content_type[0] ? resp.content_type : "application/json", attributes);
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
        st->start = clock_now_s();
        st->route = route_of(url);
        snprintf(st->method, sizeof st->method, "%s", method);
        snprintf(st->path, sizeof st->path, "%s", url);
        __atomic_add_fetch(&srv->active, 1, __ATOMIC_ACQ_REL);
        bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        bool post = strcmp(method, "POST") == 0;
        if (st->route == ROUTE_NONE)
            return send_error(c, st, 404, "no route %s %s: this server answers GET /ping, "
                                          "POST /invocations and GET /execution-parameters",
                              method, url);
        if ((st->route == ROUTE_INVOCATIONS && !post) || (st->route != ROUTE_INVOCATIONS && !get))
            return send_error(c, st, 405, "%s is not allowed on %s", method, url);
        const char *length = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (post && *length && strtoull(length, NULL, 10) > srv->config.max_body_bytes)
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
        if (st->len + n > srv->config.max_body_bytes) {
            st->too_large = true;
            free(st->body);
            st->body = NULL;
            return MHD_YES;
        }
        if (st->len + n > st->cap) {
            size_t cap = st->cap ? st->cap : 64 * 1024;
            while (cap < st->len + n)
                cap *= 2;
            if (cap > srv->config.max_body_bytes)
                cap = srv->config.max_body_bytes;
            char *grown = realloc(st->body, cap);
            if (!grown)
                return MHD_NO;
            st->body = grown;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload, n);
        st->len += n;
        return MHD_YES;
    }
    if (st->answered)
        return MHD_YES;
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
    free(st->body);
    free(st);
    *con_cls = NULL;
    __atomic_sub_fetch(&srv->active, 1, __ATOMIC_ACQ_REL);
}

int server_start(struct server *srv)
{
    pthread_mutex_init(&srv->inflight_mu, NULL);
    pthread_cond_init(&srv->inflight_cv, NULL);
    srv->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        (uint16_t)srv->config.port, NULL, NULL, &on_request, srv, MHD_OPTION_NOTIFY_COMPLETED,
        &on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)70,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
        MHD_OPTION_END);
    if (!srv->daemon)
        return err_set("cannot listen on port %d (in use, or not allowed?)", srv->config.port);
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
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}
