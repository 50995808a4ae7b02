/*
 * codecs.c - the default input_fn and output_fn: request bodies into model batches, class
 * probabilities into response bodies.
 *
 * Inputs (Content-Type):
 *   image/jpeg, image/png, application/x-image (sniffed)     one image
 *   application/x-npy   a NumPy array [N,3,H,W] or [3,H,W] of pixels: any integer dtype
 *                       holding 0..255 (NumpySerializer sends a list as int64), float32/64
 *   application/json    a nested list of pixels shaped as above (what the seeds' Lambda sends),
 *                       {"url": "https://..."} (fetched under url_fetch.h's rules), or
 *                       {"instances": [...]} whose items are such lists, URLs or base64 images
 *   application/jsonlines  one of the JSON forms per line (batch transform, SplitType=Line)
 * Pixel arrays hold values 0..255; float arrays whose values all lie in [0, 1] are taken as
 * 0..1 and scaled. Every image then gets the training's evaluation transform
 * (image_eval_transform) under the model's resize_mode (crop, squash or auto), so what was
 * validated is what is served.
 *
 * Outputs (Accept, negotiated by accept.c): application/json (also with no Accept, or the
 * wildcards), application/x-npy (float32 [N,K]), application/jsonlines (one line per JSON
 * Lines input line, so that batch transform can join input and output; one line per image
 * for the other inputs; no trailing newline). Each in one of three shapes (accept.h): this
 * project's default, the built-in image-classification algorithm's, or the PyTorch
 * container's raw logits. X-Amzn-SageMaker-Custom-Attributes may say top_k=N and
 * threshold=P (default shape).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "common/error.h"
#include "image/decode.h"
#include "image/transform.h"
#include "serve/accept.h"
#include "serve/serve.h"
#include "serve/url_fetch.h"

#define MAX_BATCH_IMAGES 1024
#define MAX_PIXEL_SIDE 4096
/* A request's model input is capped in bytes, not only in images: a 3 KB body of 1x1 images
 * must not turn into gigabytes of 224x224 tensors. */
#define MAX_BATCH_BYTES ((size_t)256 << 20)
/* Each URL may take the whole fetch timeout: a request naming many would hold a connection
 * for minutes. */
#define MAX_URLS 16

/* ---- batches ---- */

/* How many preprocessed images one request may hold. */
static size_t max_images(const struct sm_context *ctx)
{
    size_t per = 3 * (size_t)ctx->image_size * (size_t)ctx->image_size * sizeof(float);
    size_t limit = MAX_BATCH_BYTES / per;
    return limit < MAX_BATCH_IMAGES ? limit : MAX_BATCH_IMAGES;
}

static int batch_alloc(const struct sm_context *ctx, int64_t n, struct sm_batch *out,
                       struct sm_error *err)
{
    size_t per = 3 * (size_t)ctx->image_size * (size_t)ctx->image_size;
    size_t limit = max_images(ctx);
    if (n < 1 || (size_t)n > limit)
        return serve_fail(err, 400, "a request may hold 1 to %zu images of %dx%d, this one holds %lld",
                    limit, ctx->image_size, ctx->image_size, (long long)n);
    out->data = malloc((size_t)n * per * sizeof(float));
    if (!out->data)
        return serve_fail(err, 500, "out of memory for %lld images", (long long)n);
    out->n = n;
    out->height = out->width = ctx->image_size;
    return 0;
}

static float *batch_item(const struct sm_context *ctx, struct sm_batch *b, int64_t i)
{
    return b->data + (size_t)i * 3 * (size_t)ctx->image_size * (size_t)ctx->image_size;
}

static int transform_into(const struct sm_context *ctx, const struct image *img, float *out,
                          struct sm_error *err)
{
    if (image_eval_transform(img, (enum image_resize_mode)ctx->resize_mode,
                             ctx->resize_size, ctx->image_size, ctx->mean, ctx->std, out) < 0)
        return serve_fail(err, 400, "cannot preprocess the image: %s", err_msg());
    return 0;
}

/* An encoded image (JPEG/PNG) into item i. */
static int decode_image_into(const struct sm_context *ctx, const uint8_t *data, size_t len,
                             float *out, struct sm_error *err)
{
    struct image img = {0};
    if (image_decode(data, len, ctx->resize_mode == IMAGE_RESIZE_SQUASH ? ctx->image_size : ctx->resize_size, &img) < 0)
        return serve_fail(err, 400, "the image cannot be decoded: %s", err_msg());
    int rc = transform_into(ctx, &img, out, err);
    image_free(&img);
    return rc;
}

/* ---- pixel arrays (from NPY or JSON) ---- */

struct pixels {
    int64_t n, h, w;
    double *v; /* n*3*h*w values, CHW per image */
    bool integers; /* uint8 data or whole numbers: 0..255 as they are, never rescaled */
};

static int pixels_to_batch(const struct sm_context *ctx, const struct pixels *p,
                           struct sm_batch *out, struct sm_error *err)
{
    if (p->h < 1 || p->w < 1 || p->h > MAX_PIXEL_SIDE || p->w > MAX_PIXEL_SIDE)
        return serve_fail(err, 400, "images must be 1 to %d pixels a side, got %lldx%lld",
                    MAX_PIXEL_SIDE, (long long)p->h, (long long)p->w);
    size_t total = (size_t)(p->n * 3 * p->h * p->w);
    double max = 0;
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(p->v[i]))
            return serve_fail(err, 400, "pixel values must be finite numbers");
        if (p->v[i] > max)
            max = p->v[i];
    }
    double scale = !p->integers && max <= 1.0 ? 255.0 : 1.0; /* 0..1 floats, as ToTensor gives */
    int rc = batch_alloc(ctx, p->n, out, err);
    struct image img = {malloc((size_t)(p->h * p->w * 3)), (int)p->w, (int)p->h};
    if (rc == 0 && !img.pixels)
        rc = serve_fail(err, 500, "out of memory");
    size_t plane = (size_t)(p->h * p->w);
    for (int64_t i = 0; rc == 0 && i < p->n; i++) {
        const double *src = p->v + (size_t)i * 3 * plane;
        for (size_t k = 0; k < plane; k++)
            for (int c = 0; c < 3; c++) {
                double v = src[c * plane + k] * scale + 0.5;
                img.pixels[k * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        rc = transform_into(ctx, &img, batch_item(ctx, out, i), err);
    }
    image_free(&img);
    if (rc) {
        free(out->data);
        out->data = NULL;
    }
    return rc;
}

/* shape [N,3,H,W] or [3,H,W] -> n, h, w */
static int check_shape(const int64_t *dims, int ndim, struct pixels *p, struct sm_error *err)
{
    if (ndim == 3 && dims[0] == 3) {
        p->n = 1, p->h = dims[1], p->w = dims[2];
        return 0;
    }
    if (ndim == 4 && dims[1] == 3) {
        p->n = dims[0], p->h = dims[2], p->w = dims[3];
        return 0;
    }
    return serve_fail(err, 400, "arrays must be shaped [N,3,H,W] or [3,H,W] (RGB, channels first)");
}

/* ---- NPY ---- */

/* Finds "'key': value" in the header dict; returns the value's start or NULL. */
static const char *npy_field(const char *header, const char *key)
{
    char pattern[32];
    snprintf(pattern, sizeof pattern, "'%s':", key);
    const char *p = strstr(header, pattern);
    if (!p)
        return NULL;
    p += strlen(pattern);
    while (*p == ' ')
        p++;
    return p;
}

/* A dtype string such as '<i8' or '|u1': byte order, kind (u, i, f) and size. */
struct npy_dtype {
    bool big_endian;
    char kind;
    size_t size;
};

static int npy_parse_dtype(const char *descr, struct npy_dtype *t, struct sm_error *err)
{
    char text[16] = "";
    const char *end = *descr == '\'' ? strchr(descr + 1, '\'') : NULL;
    if (end && (size_t)(end - descr - 1) < sizeof text)
        memcpy(text, descr + 1, (size_t)(end - descr - 1));
    const char *q = text;
    t->big_endian = *q == '>';
    if (*q == '<' || *q == '>' || *q == '|' || *q == '=')
        q++;
    t->kind = q[0];
    t->size = q[0] && q[1] >= '1' && q[1] <= '8' && !q[2] ? (size_t)(q[1] - '0') : 0;
    bool integer = (t->kind == 'u' || t->kind == 'i') &&
                   (t->size == 1 || t->size == 2 || t->size == 4 || t->size == 8);
    bool real = t->kind == 'f' && (t->size == 4 || t->size == 8);
    if (!integer && !real)
        return serve_fail(err, 400, "The .npy array's dtype '%s' is not accepted: send pixels as an "
                              "integer type (uint8, int8 to int64, uint16 to uint64) holding 0 to "
                              "255, or as float32 or float64.",
                    text);
    if (t->size == 1)
        t->big_endian = false;
    return 0;
}

/* Element i of d as a double (the bytes in the array's byte order). */
static double npy_element(const uint8_t *d, size_t i, const struct npy_dtype *t)
{
    uint8_t b[8];
    const uint8_t *src = d + i * t->size;
    for (size_t k = 0; k < t->size; k++) /* to little-endian */
        b[k] = t->big_endian ? src[t->size - 1 - k] : src[k];
    uint64_t u = 0;
    for (size_t k = t->size; k-- > 0;)
        u = u << 8 | b[k];
    if (t->kind == 'u')
        return (double)u;
    if (t->kind == 'i') {
        unsigned bits = 8 * (unsigned)t->size;
        if (bits < 64 && (u >> (bits - 1)) & 1)
            u |= ~(uint64_t)0 << bits; /* sign-extend */
        return (double)(int64_t)u;
    }
    if (t->size == 4) {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static int npy_decode(const uint8_t *body, size_t len, struct pixels *p, struct sm_error *err)
{
    if (len < 10 || memcmp(body, "\x93NUMPY", 6) != 0)
        return serve_fail(err, 400, "The body is not a NumPy .npy array: it does not start with the "
                              "\\x93NUMPY magic.");
    size_t hlen, start;
    if (body[6] == 1) {
        hlen = (size_t)body[8] | (size_t)body[9] << 8;
        start = 10;
    } else if ((body[6] == 2 || body[6] == 3) && len >= 12) {
        hlen = (size_t)body[8] | (size_t)body[9] << 8 | (size_t)body[10] << 16 | (size_t)body[11] << 24;
        start = 12;
    } else {
        return serve_fail(err, 400, "The .npy format version %d is not supported: send version 1, 2 or 3.",
                    body[6]);
    }
    if (hlen > 65536 || start + hlen > len)
        return serve_fail(err, 400, "The .npy header is truncated or longer than 64 KiB.");
    char header[65537];
    memcpy(header, body + start, hlen);
    header[hlen] = '\0';
    const char *descr = npy_field(header, "descr"), *fortran = npy_field(header, "fortran_order"),
               *shape = npy_field(header, "shape");
    if (!descr || !fortran || !shape)
        return serve_fail(err, 400, "The .npy header lacks descr, fortran_order or shape.");
    if (strncmp(fortran, "False", 5) != 0)
        return serve_fail(err, 400, "Fortran-ordered .npy arrays are not accepted: send C order.");
    struct npy_dtype type;
    if (npy_parse_dtype(descr, &type, err))
        return 400;
    if (*shape != '(')
        return serve_fail(err, 400, "The .npy shape is malformed: expected a tuple such as (1, 3, 224, 224).");
    int64_t dims[8];
    int ndim = 0;
    const char *q = shape + 1;
    while (*q && *q != ')') {
        char *end;
        long long d = strtoll(q, &end, 10);
        if (end == q)
            break;
        if (ndim == 8)
            return serve_fail(err, 400, "The .npy array has more than 8 dimensions: send [N,3,H,W] or [3,H,W].");
        /* Each dimension is bounded here, before any product of them is formed. */
        if (d < 0 || d > MAX_PIXEL_SIDE * (long long)MAX_BATCH_IMAGES)
            return serve_fail(err, 400, "The .npy dimension %lld is impossible for an image batch.", d);
        dims[ndim++] = d;
        q = end;
        while (*q == ',' || *q == ' ')
            q++;
    }
    if (check_shape(dims, ndim, p, err))
        return 400;
    if (p->n < 1 || p->n > MAX_BATCH_IMAGES || p->h < 1 || p->w < 1 || p->h > MAX_PIXEL_SIDE ||
        p->w > MAX_PIXEL_SIDE)
        return serve_fail(err, 400, "The .npy array is shaped [%lld,3,%lld,%lld]: send at most %d images "
                              "(at least 1) of 1 to %d pixels a side.",
                    (long long)p->n, (long long)p->h, (long long)p->w, MAX_BATCH_IMAGES, MAX_PIXEL_SIDE);
    size_t count, bytes;
    if (__builtin_mul_overflow((size_t)p->n * 3, (size_t)p->h, &count) ||
        __builtin_mul_overflow(count, (size_t)p->w, &count) ||
        __builtin_mul_overflow(count, type.size, &bytes))
        return serve_fail(err, 400, "The .npy array is too large.");
    size_t data_len = len - start - hlen;
    if (data_len != bytes)
        return serve_fail(err, 400, "The .npy data holds %zu bytes, but its header promises %zu.",
                    data_len, bytes);
    p->v = malloc(count * sizeof *p->v + 1);
    if (!p->v)
        return serve_fail(err, 500, "Out of memory decoding the .npy array.");
    const uint8_t *d = body + start + hlen;
    p->integers = type.kind != 'f';
    for (size_t i = 0; i < count; i++) {
        p->v[i] = npy_element(d, i, &type);
        if (p->integers && (p->v[i] < 0 || p->v[i] > 255)) {
            double bad = p->v[i];
            free(p->v);
            p->v = NULL;
            return serve_fail(err, 400, "The .npy array holds the integer %.0f at element %zu: integer "
                                  "pixels must lie in 0 to 255.",
                        bad, i);
        }
    }
    return 0;
}

/* ---- JSON ---- */

static int json_shape(const cJSON *a, int64_t *dims, int *ndim)
{
    *ndim = 0;
    while (cJSON_IsArray(a) && *ndim < 8) {
        dims[(*ndim)++] = cJSON_GetArraySize(a);
        a = a->child;
    }
    return 0;
}

static int json_fill(const cJSON *a, int depth, const int64_t *dims, int ndim, double *out,
                     size_t *pos, size_t cap)
{
    if (depth == ndim) {
        if (!cJSON_IsNumber(a) || *pos >= cap)
            return -1;
        out[(*pos)++] = a->valuedouble;
        return 0;
    }
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != dims[depth])
        return -1;
    for (const cJSON *c = a->child; c; c = c->next)
        if (json_fill(c, depth + 1, dims, ndim, out, pos, cap) < 0)
            return -1;
    return 0;
}

/* body_len bounds the count: every number takes at least two bytes ("0,"). */
static int json_pixels(const cJSON *a, size_t body_len, struct pixels *p, struct sm_error *err)
{
    int64_t dims[8];
    int ndim;
    json_shape(a, dims, &ndim);
    if (check_shape(dims, ndim, p, err))
        return 400;
    if (p->n > MAX_BATCH_IMAGES || p->h > MAX_PIXEL_SIDE || p->w > MAX_PIXEL_SIDE)
        return serve_fail(err, 400, "the array is too large");
    size_t cap = (size_t)(p->n * 3 * p->h * p->w), pos = 0;
    if (cap > body_len / 2 + 1)
        return serve_fail(err, 400, "the JSON array is ragged: its first rows promise %zu values, more "
                              "than the body holds", cap);
    p->v = malloc(cap * sizeof *p->v + 1);
    if (!p->v)
        return serve_fail(err, 500, "out of memory");
    if (json_fill(a, 0, dims, ndim, p->v, &pos, cap) < 0 || pos != cap)
        return serve_fail(err, 400, "the JSON array is ragged or holds non-numbers: expected a "
                              "[N,3,H,W] or [3,H,W] nested list of pixel values");
    p->integers = true;
    for (size_t i = 0; p->integers && i < cap; i++)
        p->integers = p->v[i] == floor(p->v[i]);
    return 0;
}

static int base64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Standard or URL-safe base64, padding optional, whitespace ignored. */
static uint8_t *base64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    uint8_t *out = malloc(n / 4 * 3 + 4);
    if (!out)
        return NULL;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '=' || isspace((unsigned char)*p))
            continue;
        int v = base64_value((unsigned char)*p);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *len = o;
    return out;
}

/* Appends one JSON record (pixels or a base64 image) to a growing list of batches. */
static int json_record_into(const struct sm_context *ctx, const cJSON *rec, size_t body_len,
                            struct sm_batch *parts, int *nparts, struct sm_error *err);

/* One record, counted against the request's image budget as soon as it is decoded. */
static int json_record(const struct sm_context *ctx, const cJSON *rec, size_t body_len,
                       struct sm_batch *parts, int *nparts, size_t *images, struct sm_error *err)
{
    int rc = json_record_into(ctx, rec, body_len, parts, nparts, err);
    if (rc == 0)
        *images += (size_t)parts[*nparts - 1].n;
    if (rc == 0 && *images > max_images(ctx))
        rc = serve_fail(err, 400, "a request may hold at most %zu images of %dx%d", max_images(ctx),
                  ctx->image_size, ctx->image_size);
    return rc;
}

/* {"url": "https://..."}: the image fetched (url_fetch.h says under which rules). */
static int url_record(const struct sm_context *ctx, const cJSON *url, struct sm_batch *b,
                      struct sm_error *err)
{
    if (!cJSON_IsString(url) || !*url->valuestring)
        return serve_fail(err, 400, "\"url\" must be a string holding the image's https URL.");
    struct url_fetch_options o;
    if (url_fetch_options_from_env(&o, err->message, sizeof err->message) < 0)
        return 500;
    uint8_t *bytes;
    size_t len;
    int rc = url_fetch(url->valuestring, &o, &bytes, &len, err->message, sizeof err->message);
    if (rc == 0)
        rc = batch_alloc(ctx, 1, b, err);
    if (rc == 0)
        rc = decode_image_into(ctx, bytes, len, b->data, err);
    free(bytes);
    return rc;
}

static int json_record_into(const struct sm_context *ctx, const cJSON *rec, size_t body_len,
                            struct sm_batch *parts, int *nparts, struct sm_error *err)
{
    if (*nparts >= MAX_BATCH_IMAGES)
        return serve_fail(err, 400, "too many records in one request (at most %d)", MAX_BATCH_IMAGES);
    struct sm_batch *b = &parts[(*nparts)++];
    const cJSON *b64 = rec;
    const cJSON *url = cJSON_IsObject(rec) ? cJSON_GetObjectItemCaseSensitive(rec, "url") : NULL;
    if (url)
        return url_record(ctx, url, b, err);
    if (cJSON_IsObject(rec)) {
        b64 = cJSON_GetObjectItemCaseSensitive(rec, "b64");
        if (!b64)
            b64 = cJSON_GetObjectItemCaseSensitive(rec, "image");
        if (!b64)
            b64 = cJSON_GetObjectItemCaseSensitive(rec, "data");
    }
    if (cJSON_IsString(b64)) {
        size_t len;
        uint8_t *bytes = base64_decode(b64->valuestring, &len);
        if (!bytes)
            return serve_fail(err, 400, "an image string is not valid base64");
        int rc = batch_alloc(ctx, 1, b, err);
        if (rc == 0)
            rc = decode_image_into(ctx, bytes, len, b->data, err);
        free(bytes);
        return rc;
    }
    if (!cJSON_IsArray(rec))
        return serve_fail(err, 400, "Each record must be a nested list of pixels, a base64 image (a "
                              "string, or an object with \"b64\") or an object with \"url\".");
    struct pixels p = {0};
    int rc = json_pixels(rec, body_len, &p, err);
    if (rc == 0)
        rc = pixels_to_batch(ctx, &p, b, err);
    free(p.v);
    return rc;
}

/* Joins parts into one batch. */
static int concat(const struct sm_context *ctx, struct sm_batch *parts, int nparts,
                  struct sm_batch *out, struct sm_error *err)
{
    int64_t n = 0;
    for (int i = 0; i < nparts; i++)
        n += parts[i].n;
    int rc = batch_alloc(ctx, n, out, err);
    size_t per = 3 * (size_t)ctx->image_size * (size_t)ctx->image_size;
    for (int i = 0, at = 0; rc == 0 && i < nparts; i++) {
        memcpy(batch_item(ctx, out, at), parts[i].data, (size_t)parts[i].n * per * sizeof(float));
        at += (int)parts[i].n;
    }
    return rc;
}

/* The {"url": ...} records in a document: itself, or the items of its "instances". */
static int count_urls(const cJSON *doc)
{
    const cJSON *instances = cJSON_GetObjectItemCaseSensitive(doc, "instances");
    if (!cJSON_IsArray(instances))
        return cJSON_IsObject(doc) && cJSON_GetObjectItemCaseSensitive(doc, "url") ? 1 : 0;
    int n = 0;
    for (const cJSON *r = instances->child; r; r = r->next)
        n += cJSON_IsObject(r) && cJSON_GetObjectItemCaseSensitive(r, "url") ? 1 : 0;
    return n;
}

static int json_input(const struct sm_context *ctx, const struct sm_request *req, bool lines,
                      struct sm_batch *out, struct sm_error *err)
{
    struct sm_batch *parts = calloc(MAX_BATCH_IMAGES + 1, sizeof *parts);
    if (!parts)
        return serve_fail(err, 500, "out of memory");
    int nparts = 0, rc = 0, urls = 0;
    size_t images = 0;
    int64_t *records = lines ? calloc(MAX_BATCH_IMAGES + 1, sizeof *records) : NULL;
    int64_t n_records = 0;
    if (lines && !records) {
        free(parts);
        return serve_fail(err, 500, "out of memory");
    }
    const char *p = (const char *)req->body, *end = p + req->body_len;
    while (rc == 0 && p < end) {
        const char *stop = lines ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (!stop)
            stop = end;
        const char *q = p;
        while (q < stop && isspace((unsigned char)*q))
            q++;
        if (q < stop) {
            size_t before = images;
            cJSON *doc = cJSON_ParseWithLength(q, (size_t)(stop - q));
            if (!doc) {
                rc = serve_fail(err, 400, "the body is not valid JSON%s", lines ? " (in a JSON Lines record)" : "");
                break;
            }
            const cJSON *instances = cJSON_GetObjectItemCaseSensitive(doc, "instances");
            urls += count_urls(doc);
            if (urls > MAX_URLS) {
                cJSON_Delete(doc);
                rc = serve_fail(err, 400, "A request may name at most %d image URLs: send the others "
                                    "in further requests.", MAX_URLS);
                break;
            }
            if (cJSON_IsArray(instances)) {
                for (const cJSON *r = instances->child; rc == 0 && r; r = r->next)
                    rc = json_record(ctx, r, req->body_len, parts, &nparts, &images, err);
            } else {
                rc = json_record(ctx, doc, req->body_len, parts, &nparts, &images, err);
            }
            cJSON_Delete(doc);
            if (rc == 0 && records && images == before)
                rc = serve_fail(err, 400, "JSON Lines record %lld holds no image", (long long)n_records + 1);
            /* Each line adds a part, and parts are capped at MAX_BATCH_IMAGES: so are lines. */
            if (rc == 0 && records)
                records[n_records++] = (int64_t)(images - before);
        }
        p = stop + 1;
    }
    if (rc == 0 && nparts == 0)
        rc = serve_fail(err, 400, "the body holds no record");
    if (rc == 0)
        rc = concat(ctx, parts, nparts, out, err);
    for (int i = 0; i < nparts; i++)
        free(parts[i].data);
    free(parts);
    if (rc == 0 && records) {
        out->records = records;
        out->n_records = n_records;
    } else {
        free(records);
    }
    return rc;
}

int serve_input_fn(const struct sm_context *ctx, const struct sm_request *req,
                   struct sm_batch *out, struct sm_error *err)
{
    memset(out, 0, sizeof *out);
    const char *ct = req->content_type;
    if (req->body_len == 0)
        return serve_fail(err, 400, "the request body is empty");
    if (strcmp(ct, "image/jpeg") == 0 || strcmp(ct, "image/png") == 0 ||
        strcmp(ct, "application/x-image") == 0 || strcmp(ct, "image/jpg") == 0) {
        int rc = batch_alloc(ctx, 1, out, err);
        if (rc == 0 && (rc = decode_image_into(ctx, req->body, req->body_len, out->data, err)) != 0) {
            free(out->data);
            out->data = NULL;
        }
        return rc;
    }
    if (strcmp(ct, "application/x-npy") == 0) {
        struct pixels p = {0};
        int rc = npy_decode(req->body, req->body_len, &p, err);
        if (rc == 0)
            rc = pixels_to_batch(ctx, &p, out, err);
        free(p.v);
        return rc;
    }
    if (strcmp(ct, "application/json") == 0)
        return json_input(ctx, req, false, out, err);
    if (strcmp(ct, "application/jsonlines") == 0 || strcmp(ct, "application/jsonl") == 0 ||
        strcmp(ct, "application/x-jsonlines") == 0)
        return json_input(ctx, req, true, out, err);
    return serve_fail(err, 415, "unsupported Content-Type \"%s\": send image/jpeg, image/png, "
                          "application/x-image, application/x-npy, application/json or "
                          "application/jsonlines",
                ct);
}

/* ---- output ---- */

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
    return set_body(out, text, "application/json", err);
}

/* values [n,k] float32 as a version 1.0 .npy array. */
static int npy_output(const float *values, int64_t rows, int64_t k, struct sm_response *out,
                      struct sm_error *err)
{
    char header[128];
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)rows, (long long)k);
    size_t total_header = 10 + (size_t)n + 1;
    size_t pad = (64 - total_header % 64) % 64; /* the data starts 64-byte aligned */
    size_t hlen = (size_t)n + pad + 1;
    size_t data = (size_t)(rows * k) * sizeof(float);
    uint8_t *buf = malloc(10 + hlen + data);
    if (!buf)
        return serve_fail(err, 500, "out of memory encoding the response");
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, header, (size_t)n);
    memset(buf + 10 + n, ' ', pad);
    buf[10 + hlen - 1] = '\n';
    memcpy(buf + 10 + hlen, values, data);
    out->body = buf;
    out->len = 10 + hlen + data;
    snprintf(out->content_type, sizeof out->content_type, "application/x-npy");
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
    size_t cap = 1024, used = 0;
    char *text = malloc(cap);
    if (text)
        text[0] = '\0';
    for (int64_t r = 0, at = 0; text && r < records; r++) {
        int64_t size = s->records ? s->records[r] : 1;
        cJSON *o = record_json(ctx, s, at, size, st);
        at += size;
        char *line = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        size_t n = line ? strlen(line) : 0;
        while (line && used + n + 2 > cap)
            cap *= 2;
        char *grown = line ? realloc(text, cap) : NULL;
        if (!grown) {
            free(line);
            free(text);
            return serve_fail(err, 500, "out of memory encoding the response");
        }
        text = grown;
        if (r > 0)
            text[used++] = '\n';
        memcpy(text + used, line, n);
        used += n;
        text[used] = '\0';
        free(line);
    }
    return set_body(out, text, "application/jsonlines", err);
}

int serve_output_fn(const struct sm_context *ctx, const struct sm_scores *scores,
                    const struct sm_request *req, struct sm_response *out, struct sm_error *err)
{
    struct serve_accept a;
    if (serve_accept_parse(req->accept, &a) < 0)
        return serve_fail(err, 406, "unsupported Accept \"%.200s\": ask for application/json, "
                              "application/x-npy or application/jsonlines (optionally with "
                              "format=default, builtin or pytorch), with a q above 0",
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
