/*
 * multi_model_routes.c - the HTTP side of a multi-model endpoint (routes in multi_model.h):
 * requests parsed and checked, the registry asked, answers as JSON with SageMaker's statuses.
 * server.c reads the bodies (under its cap) and sends what this file answers; invocations go
 * through the same pipeline and in-flight limit as /invocations in single-model mode.
 */
#define _GNU_SOURCE
#include "serve/multi_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/error.h"
#include "common/log.h"
#include "serve/model_registry.h"

#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 1000

static void reply_json(struct http_reply *out, int status, cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    out->status = text ? status : 500;
    out->body = text ? text : strdup("{\"error\":\"out of memory\",\"status\":500}");
    out->len = out->body ? strlen(out->body) : 0;
    snprintf(out->content_type, sizeof out->content_type, "application/json");
}

static void reply_error(struct http_reply *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(struct http_reply *out, int status, const char *fmt, ...)
{
    char message[SM_ERROR_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    out->status = status;
    out->body = serve_error_json(status, message, &out->len);
    snprintf(out->content_type, sizeof out->content_type, "application/json");
}

static void reply_status(struct http_reply *out, int status, const char *fmt, const char *name)
{
    char message[MODEL_NAME_MAX + 64];
    snprintf(message, sizeof message, fmt, name);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", message);
    reply_json(out, status, j);
}

static void load(struct server *srv, const char *body, size_t len, struct http_reply *out)
{
    cJSON *j = cJSON_ParseWithLength(body ? body : "", len);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "model_name");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(j, "url");
    if (!cJSON_IsObject(j) || !cJSON_IsString(name) || !cJSON_IsString(url)) {
        cJSON_Delete(j);
        return reply_error(out, 400, "the body must be a JSON object {\"model_name\": \"...\", "
                                     "\"url\": \"/opt/ml/models/<name>/model\"}");
    }
    struct sm_error err = {{0}};
    int status = model_registry_load(srv->registry, name->valuestring, url->valuestring, &err);
    if (status)
        reply_error(out, status, "%s", err.message);
    else
        reply_status(out, 200, "model %s loaded", name->valuestring);
    if (status >= 500)
        log_warn("POST /models %s: %s", name->valuestring, err.message);
    cJSON_Delete(j);
}

static void add_model(void *arg, const char *name, const char *url)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "modelName", name);
    cJSON_AddStringToObject(m, "modelUrl", url);
    cJSON_AddItemToArray(arg, m);
}

static void list(struct server *srv, const struct multi_model_request *req, struct http_reply *out)
{
    const char *token = req->page_token;
    const char *limit_arg = req->limit;
    long limit = LIST_DEFAULT_LIMIT;
    if (limit_arg) {
        char *end;
        limit = strtol(limit_arg, &end, 10);
        if (*end || end == limit_arg || limit < 1 || limit > LIST_MAX_LIMIT)
            return reply_error(out, 400, "limit must be a number from 1 to %d", LIST_MAX_LIMIT);
    }
    if (token && *token && !model_registry_valid_name(token))
        return reply_error(out, 400, "next_page_token is not one this server gave");
    cJSON *j = cJSON_CreateObject();
    cJSON *models = cJSON_AddArrayToObject(j, "models");
    char next[MODEL_NAME_MAX + 1];
    model_registry_list(srv->registry, token, (int)limit, add_model, models, next, sizeof next);
    if (next[0])
        cJSON_AddStringToObject(j, "nextPageToken", next);
    reply_json(out, 200, j);
}

static void describe(struct server *srv, const char *name, struct http_reply *out)
{
    char url[MODEL_URL_MAX + 1];
    if (model_registry_describe(srv->registry, name, url, sizeof url) != 0)
        return reply_error(out, 404, "model %s is not loaded", name);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "modelName", name);
    cJSON_AddStringToObject(j, "modelUrl", url);
    reply_json(out, 200, j);
}

static void unload(struct server *srv, const char *name, struct http_reply *out)
{
    if (model_registry_unload(srv->registry, name) != 0)
        return reply_error(out, 404, "model %s is not loaded", name);
    log_info("model %s unloaded", name);
    reply_status(out, 200, "model %s unloaded", name);
}

/* Runs on one of the pipeline's workers, which already bound how many requests decode and
 * predict at once. */
static void invoke(struct server *srv, const struct multi_model_request *r, const char *name,
                   struct http_reply *out)
{
    struct loaded_model *m = model_registry_get(srv->registry, name);
    if (!m)
        return reply_error(out, 404, "model %s is not loaded", name);
    const char *attributes = r->attributes;
    if (strlen(attributes) > 1024)
        attributes = ""; /* SageMaker's limit: longer ones are not ours to echo */
    struct sm_request req = {(const uint8_t *)r->body, r->len, r->content_type, r->accept,
                             attributes};
    struct sm_error err = {{0}};
    struct sm_response resp = {0};
    int status = serve_invoke(&m->handlers, &m->ctx, m->batcher, &req, &resp, &err);
    model_registry_put(srv->registry, m);
    if (status != 0)
        return reply_error(out, status, "%s", err.message[0] ? err.message : "request failed");
    out->status = 200;
    out->body = (char *)resp.body;
    out->len = resp.len;
    snprintf(out->content_type, sizeof out->content_type, "%s",
             resp.content_type[0] ? resp.content_type : "application/json");
    out->attributes = attributes;
}

void multi_model_answer(struct server *srv, const struct multi_model_request *req,
                        struct http_reply *out)
{
    const char *method = req->method, *url = req->url;
    memset(out, 0, sizeof *out);
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;
    if (!__atomic_load_n(&srv->registry, __ATOMIC_ACQUIRE))
        return reply_error(out, 503, "the server is starting");
    if (strcmp(url, "/invocations") == 0) {
        const char *target = req->target_model;
        if (!post)
            return reply_error(out, 405, "%s is not allowed on %s", method, url);
        if (!*target)
            return reply_error(out, 400, "this is a multi-model endpoint: POST "
                                         "/models/<name>/invoke, or name the model in "
                                         "X-Amzn-SageMaker-Target-Model");
        if (!model_registry_valid_name(target))
            return reply_error(out, 404, "no loaded model is called \"%.256s\"", target);
        return invoke(srv, req, target, out);
    }
    if (strcmp(url, "/models") == 0) {
        if (post)
            return load(srv, req->body, req->len, out);
        if (get)
            return list(srv, req, out);
        return reply_error(out, 405, "%s is not allowed on /models (GET lists, POST loads)",
                           method);
    }
    const char *name = url + strlen("/models/");
    const char *slash = strchr(name, '/');
    size_t n = slash ? (size_t)(slash - name) : strlen(name);
    const char *rest = slash ? slash : "";
    char model[MODEL_NAME_MAX + 1];
    snprintf(model, sizeof model, "%.*s", (int)(n < sizeof model ? n : sizeof model - 1), name);
    if (n > MODEL_NAME_MAX || !model_registry_valid_name(model))
        return reply_error(out, 400, "\"%.64s\" is not a model name (1 to %d of A-Z a-z 0-9 . _ -)",
                           model, MODEL_NAME_MAX);
    if (!*rest) {
        if (get)
            return describe(srv, model, out);
        if (del)
            return unload(srv, model, out);
        return reply_error(out, 405, "%s is not allowed on %s (GET describes, DELETE unloads)",
                           method, url);
    }
    if (strcmp(rest, "/invoke") == 0) {
        if (post)
            return invoke(srv, req, model, out);
        return reply_error(out, 405, "%s is not allowed on %s (POST invokes)", method, url);
    }
    return reply_error(out, 404, "no route %s %s: a multi-model endpoint answers /models, "
                                 "/models/<name> and /models/<name>/invoke", method, url);
}

int multi_model_run(struct server *srv, const sigset_t *stop)
{
    char source[128];
    struct model_registry_config config = {
        .budget_bytes = model_registry_default_budget(source, sizeof source),
        .max_batch = srv->config.max_batch,
        .batch_delay_us = srv->config.batch_delay_us,
    };
    struct model_registry *registry;
    if (model_registry_init(&registry, &config) < 0) {
        log_error("serve: %s", err_msg());
        server_stop(srv, 0);
        return 1;
    }
    __atomic_store_n(&srv->registry, registry, __ATOMIC_RELEASE);
    __atomic_store_n(&srv->ready, true, __ATOMIC_RELEASE);
    log_info("multi-model endpoint on port %d: model memory budget %.0f MiB (%s); "
             "POST /models loads a model", srv->config.port,
             (double)config.budget_bytes / (1 << 20), source);
    int sig = 0;
    sigwait(stop, &sig);
    log_info("signal %d: draining requests in flight, then stopping", sig);
    server_stop(srv, 25.0);
    int models;
    size_t used, budget;
    model_registry_usage(registry, &models, &used, &budget);
    model_registry_free(registry);
    log_info("stopped (%d models were loaded)", models);
    return 0;
}
