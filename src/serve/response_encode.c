/*
 * response_encode.c - the default output_fn: class scores into a response body.
 *
 * Outputs (Accept, negotiated by accept.c): application/json (also with no Accept, or the
 * wildcards), application/x-npy (float32 [N,K], npy.h), application/jsonlines (one line per
 * JSON Lines input record, so that batch transform can join input and output; one line per
 * image for the other inputs; no trailing newline). Each in one of three shapes (accept.h):
 * this project's default, the built-in image-classification algorithm's, or the PyTorch
 * container's raw logits. X-Amzn-SageMaker-Custom-Attributes may say top_k=N and
 * threshold=P (default shape).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/dynbuf.h"
#include "common/error.h"
#include "serve/accept.h"
#include "serve/media_types.h"
#include "serve/npy.h"
#include "serve/response_encode.h"
#include "serve/serve.h"

/* Every answer of ours is far below this (1024 images of 1000 classes in JSON: about 30 MB). */
#define RESPONSE_MAX_BYTES ((size_t)1 << 30)

bool serve_accept_supported(const char *accept)
{
    struct serve_accept a;
    return serve_accept_parse(accept, &a) == 0;
}

/* top_k=N and threshold=P from the custom attributes ("top_k=3,threshold=0.5" or with ';'). */
static void parse_attributes(const char *attrs, int *top_k, double *threshold)
{
    char buf[1100];
    snprintf(buf, sizeof buf, "%s", attrs ? attrs : "");
    for (char *save = NULL, *t = strtok_r(buf, ",;", &save); t; t = strtok_r(NULL, ",;", &save)) {
        while (isspace((unsigned char)*t))
            t++;
        if (sscanf(t, "top_k=%d", top_k) == 1 && (*top_k < 1))
            *top_k = 1;
        double th;
        if (sscanf(t, "threshold=%lf", &th) == 1 && th >= 0 && th <= 1)
            *threshold = th;
    }
}

static const char *class_name(const struct sm_context *ctx, int64_t i)
{
    return i >= 0 && i < ctx->num_classes && ctx->class_names ? ctx->class_names[i] : "";
}

static int64_t arg_max(const float *v, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

static cJSON *prediction_json(const struct sm_context *ctx, const float *probs, int64_t k,
                              int top_k, double threshold)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *pa = cJSON_AddArrayToObject(o, "probabilities");
    for (int64_t j = 0; j < k; j++)
        cJSON_AddItemToArray(pa, cJSON_CreateNumber(probs[j]));
    if (top_k > k)
        top_k = (int)k;
    int order[64];
    if (top_k > 64)
        top_k = 64;
    bool *taken = calloc((size_t)k, sizeof *taken);
    for (int r = 0; r < top_k; r++) { /* selection of the top_k largest: O(top_k * k) */
        int best = -1;
        for (int64_t j = 0; taken && j < k; j++)
            if (!taken[j] && (best < 0 || probs[j] > probs[best]))
                best = (int)j;
        order[r] = best < 0 ? 0 : best;
        if (taken && best >= 0)
            taken[best] = true;
    }
    free(taken);
    cJSON *top = cJSON_AddArrayToObject(o, "top_k");
    for (int r = 0; r < top_k; r++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", order[r]);
        cJSON_AddStringToObject(e, "label", class_name(ctx, order[r]));
        cJSON_AddNumberToObject(e, "probability", probs[order[r]]);
        cJSON_AddItemToArray(top, e);
    }
    cJSON_AddStringToObject(o, "predicted_label", class_name(ctx, order[0]));
    cJSON_AddNumberToObject(o, "predicted_index", order[0]);
    if (threshold >= 0)
        cJSON_AddBoolToObject(o, "below_threshold", probs[order[0]] < threshold);
    return o;
}

static cJSON *number_list(const float *v, int64_t k)
{
    cJSON *a = cJSON_CreateArray();
    for (int64_t j = 0; a && j < k; j++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[j]));
    return a;
}

/* What a PyTorch-shaped answer holds: the logits, or log-probabilities when a custom
 * predict_fn gave none (same argmax, same softmax). malloc'd [n,k]. */
static float *raw_outputs(const struct sm_scores *s)
{
    size_t count = (size_t)(s->n * s->k);
    float *v = malloc(count * sizeof *v + 1);
    if (!v)
        return NULL;
    for (size_t i = 0; i < count; i++)
        v[i] = s->logits ? s->logits[i] : logf(s->probs[i] > 0 ? s->probs[i] : 1e-45f);
    return v;
}

/* Rows [at, at+size) of v [*,k] as a nested list [[...], ...]. */
static cJSON *rows_json(const float *v, int64_t at, int64_t size, int64_t k)
{
    cJSON *rows = cJSON_CreateArray();
    for (int64_t i = at; rows && i < at + size; i++)
        cJSON_AddItemToArray(rows, number_list(v + i * k, k));
    return rows;
}

/* The built-in algorithm's JSON Lines record: {"prediction": [...]} for one image, with
 * "labels" and "predicted_label" when verbose. A record of several images holds a list per
 * image and a label per image. */
static cJSON *builtin_record(const struct sm_context *ctx, const struct sm_scores *s, int64_t at,
                             int64_t size, bool verbose)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "prediction", size == 1 ? number_list(s->probs + at * s->k, s->k)
                                                     : rows_json(s->probs, at, size, s->k));
    if (verbose) {
        cJSON *labels = cJSON_AddArrayToObject(o, "labels");
        for (int64_t j = 0; labels && j < s->k; j++)
            cJSON_AddItemToArray(labels, cJSON_CreateString(class_name(ctx, j)));
        if (size == 1) {
            cJSON_AddStringToObject(o, "predicted_label",
                                    class_name(ctx, arg_max(s->probs + at * s->k, s->k)));
        } else {
            cJSON *p = cJSON_AddArrayToObject(o, "predicted_label");
            for (int64_t i = at; p && i < at + size; i++)
                cJSON_AddItemToArray(p, cJSON_CreateString(class_name(ctx, arg_max(s->probs + i * s->k, s->k))));
        }
    }
    return o;
}

/* This project's own record: one image's prediction object, or {"predictions": [...]}. */
static cJSON *default_record(const struct sm_context *ctx, const struct sm_scores *s, int64_t at,
                             int64_t size, int top_k, double threshold)
{
    if (size == 1)
        return prediction_json(ctx, s->probs + at * s->k, s->k, top_k, threshold);
    cJSON *o = cJSON_CreateObject();
    cJSON *preds = cJSON_AddArrayToObject(o, "predictions");
    for (int64_t i = at; preds && i < at + size; i++)
        cJSON_AddItemToArray(preds, prediction_json(ctx, s->probs + i * s->k, s->k, top_k, threshold));
    return o;
}

static int set_body(struct sm_response *out, char *text, const char *type, struct sm_error *err)
{
    if (!text)
        return serve_fail(err, 500, "out of memory encoding the response");
    out->body = (uint8_t *)text;
    out->len = strlen(text);
    snprintf(out->content_type, sizeof out->content_type, "%s", type);
    return 0;
}

static int set_json(struct sm_response *out, cJSON *doc, struct sm_error *err)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    return set_body(out, text, MEDIA_JSON, err);
}

/* values [n,k] float32 as a .npy array. */
static int npy_output(const float *values, int64_t rows, int64_t k, struct sm_response *out,
                      struct sm_error *err)
{
    size_t len;
    uint8_t *buf = npy_write_f32(values, rows, k, &len);
    if (!buf)
        return serve_fail(err, 500, "out of memory encoding the response");
    out->body = buf;
    out->len = len;
    snprintf(out->content_type, sizeof out->content_type, "%s", MEDIA_NPY);
    return 0;
}

struct line_style {
    enum serve_shape shape;
    bool verbose;
    int top_k;
    double threshold;
    const float *raw; /* pytorch: the raw outputs [n,k] */
};

static cJSON *record_json(const struct sm_context *ctx, const struct sm_scores *s, int64_t at,
                          int64_t size, const struct line_style *st)
{
    if (st->shape == SERVE_SHAPE_BUILTIN)
        return builtin_record(ctx, s, at, size, st->verbose);
    if (st->shape == SERVE_SHAPE_PYTORCH)
        return rows_json(st->raw, at, size, s->k);
    return default_record(ctx, s, at, size, st->top_k, st->threshold);
}

/* One line per input record (one per image without records), so that batch transform can
 * join input line i with output line i. Lines are separated by '\n' and the body does not
 * end with one: SageMaker (and the SDK's local mode) adds a newline after each answer when
 * it assembles with AssembleWith=Line, and a trailing one of ours would become a blank line. */
static int jsonlines_output(const struct sm_context *ctx, const struct sm_scores *s,
                            const struct line_style *st, struct sm_response *out,
                            struct sm_error *err)
{
    int64_t total = 0;
    for (int64_t r = 0; s->records && r < s->n_records; r++) {
        if (s->records[r] < 1 || s->records[r] > s->n - total)
            return serve_fail(err, 500, "input_fn's records do not add up to the batch's %lld images",
                        (long long)s->n);
        total += s->records[r];
    }
    if (s->records && total != s->n)
        return serve_fail(err, 500, "input_fn's records count %lld images, the batch has %lld",
                    (long long)total, (long long)s->n);
    int64_t records = s->records ? s->n_records : s->n;
    struct dynbuf text;
    dynbuf_init(&text, RESPONSE_MAX_BYTES);
    for (int64_t r = 0, at = 0; !text.failed && r < records; r++) {
        int64_t size = s->records ? s->records[r] : 1;
        cJSON *o = record_json(ctx, s, at, size, st);
        at += size;
        char *line = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!line || (r > 0 && dynbuf_puts(&text, "\n") < 0) || dynbuf_puts(&text, line) < 0)
            text.failed = true;
        free(line);
    }
    if (text.too_large) {
        dynbuf_free(&text);
        return serve_fail(err, 500, "the response would be larger than %d MiB",
                          (int)(RESPONSE_MAX_BYTES >> 20));
    }
    return set_body(out, dynbuf_take(&text, NULL), MEDIA_JSONLINES, err);
}

int serve_output_fn(const struct sm_context *ctx, const struct sm_scores *scores,
                    const struct sm_request *req, struct sm_response *out, struct sm_error *err)
{
    struct serve_accept a;
    if (serve_accept_parse(req->accept, &a) < 0)
        return serve_fail(err, 406, "unsupported Accept \"%.200s\": ask for " MEDIA_OUTPUTS_TEXT
                              " (optionally with format=default, builtin or pytorch), with a q "
                              "above 0",
                    req->accept);
    enum serve_shape endpoint;
    if (serve_shape_from_env(&endpoint, err->message, sizeof err->message) < 0)
        return 500;
    struct line_style st = {serve_accept_shape(&a, endpoint), a.verbose, 5, -1, NULL};
    float *raw = NULL;
    if (st.shape == SERVE_SHAPE_PYTORCH && !(raw = raw_outputs(scores)))
        return serve_fail(err, 500, "out of memory encoding the response");
    st.raw = raw;
    int rc;
    if (a.type == SERVE_OUT_NPY) {
        rc = npy_output(raw ? raw : scores->probs, scores->n, scores->k, out, err);
    } else if (a.type == SERVE_OUT_JSONLINES) {
        parse_attributes(req->custom_attributes, &st.top_k, &st.threshold);
        rc = jsonlines_output(ctx, scores, &st, out, err);
    } else if (st.shape == SERVE_SHAPE_PYTORCH) {
        rc = set_json(out, rows_json(raw, 0, scores->n, scores->k), err); /* [N,K] */
    } else if (st.shape == SERVE_SHAPE_BUILTIN) {
        /* The built-in algorithm answers one image with a flat list of probabilities. */
        rc = set_json(out, scores->n == 1 ? number_list(scores->probs, scores->k)
                                          : rows_json(scores->probs, 0, scores->n, scores->k),
                      err);
    } else {
        parse_attributes(req->custom_attributes, &st.top_k, &st.threshold);
        cJSON *root = cJSON_CreateObject();
        cJSON *preds = cJSON_AddArrayToObject(root, "predictions");
        for (int64_t i = 0; preds && i < scores->n; i++)
            cJSON_AddItemToArray(preds, prediction_json(ctx, scores->probs + i * scores->k,
                                                        scores->k, st.top_k, st.threshold));
        rc = set_json(out, root, err);
    }
    free(raw);
    return rc;
}
