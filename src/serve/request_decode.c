/*
 * request_decode.c - the default input_fn: a request body into a model batch.
 *
 * Inputs (Content-Type, media_types.h):
 *   image/jpeg, image/png, application/x-image (sniffed)     one image, raw or base64 text
 *   application/octet-stream, binary/octet-stream, file-path/raw-bytes, none
 *                       told by the bytes (sniff_body)
 *   application/x-npy, tensor/pt
 *                       a NumPy array of pixels (npy.h), PIXEL_LAYOUTS_TEXT below: any integer
 *                       dtype holding 0..255 (NumpySerializer sends a list as int64),
 *                       float32/64
 *   application/json    a nested list of pixels shaped as above (what the seeds' Lambda sends),
 *                       {"url": "https://..."} (fetched under url_fetch.h's rules), or
 *                       {"instances": [...]} (or "inputs") whose items are such lists, URLs or
 *                       base64 images
 *   application/jsonlines  one of the JSON forms per line (batch transform, SplitType=Line)
 * Pixel arrays hold values 0..255; float arrays whose values all lie in [0, 1] are taken as
 * 0..1 and scaled. Every image then gets the training's evaluation transform
 * (image_eval_transform) under the model's resize_mode (crop, squash or auto), so what was
 * validated is what is served. An array with values below 0 is not pixels but a model input
 * the client normalised: it goes to the model as it is (model_input_to_batch). Limits: MAX_*
 * below, each refused with a 400 naming it.
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

#include "common/base64.h"
#include "common/error.h"
#include "image/decode.h"
#include "image/transform.h"
#include "serve/media_types.h"
#include "serve/npy.h"
#include "serve/request_decode.h"
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
    /* Full size unless asked: Pillow's pixels, so the answer is the Python handler's. */
    int needed = ctx->resize_mode == IMAGE_RESIZE_SQUASH ? ctx->image_size : ctx->resize_size;
    if ((ctx->jpeg_dct_scaling ? image_decode(data, len, needed, &img)
                               : image_decode_full(data, len, needed, &img)) < 0)
        return serve_fail(err, 400, "the image cannot be decoded: %s", err_msg());
    int rc = transform_into(ctx, &img, out, err);
    image_free(&img);
    return rc;
}

/* ---- images sent as base64 text ---- */

/* s[0..n) read as a base64 image: blanks and one pair of surrounding quotes ignored, and a
 * "data:image/png;base64," prefix (what browsers and canvas.toDataURL give) skipped. The bytes
 * (malloc'd, *len set), or NULL when the text is not base64 or memory ran out. */
static uint8_t *base64_text_decode(const char *s, size_t n, size_t *len)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        /* A JSON string (json.dumps of the text): its escapes (\/, \n) undone by cJSON. */
        cJSON *str = cJSON_ParseWithLength(s, n);
        uint8_t *bytes = cJSON_IsString(str) ? base64_text_decode(str->valuestring,
                                                                  strlen(str->valuestring), len)
                                             : NULL;
        cJSON_Delete(str);
        return bytes;
    }
    if (n > 5 && strncasecmp(s, "data:", 5) == 0) {
        const char *comma = memchr(s, ',', n);
        if (!comma || comma - s < 12 || strncasecmp(comma - 7, ";base64", 7) != 0)
            return NULL;
        n -= (size_t)(comma + 1 - s);
        s = comma + 1;
    }
    if (n == 0 || memchr(s, '\0', n))
        return NULL;
    char *text = strndup(s, n);
    if (!text)
        return NULL;
    uint8_t *bytes = base64_decode(text, len);
    free(text);
    return bytes;
}

/* A body sent as an image that holds one base64-encoded instead (the AWS CLI's
 * invoke-endpoint --body with --cli-binary-format raw-in-base64-out, a Lambda that forwards
 * the base64 string it got): the decoded JPEG or PNG, or NULL. */
static uint8_t *base64_image_body(const uint8_t *body, size_t len, size_t *out_len)
{
    if (image_sniff(body, len) != IMAGE_FORMAT_UNKNOWN)
        return NULL;
    size_t n = 0;
    uint8_t *bytes = base64_text_decode((const char *)body, len, &n);
    if (bytes && image_sniff(bytes, n) == IMAGE_FORMAT_UNKNOWN) {
        free(bytes);
        return NULL;
    }
    if (bytes)
        *out_len = n;
    return bytes;
}

/* ---- pixel arrays (from NPY or JSON) ---- */

struct pixels {
    int64_t n, h, w;
    int channels;  /* 3, or 1 for gray (given to each of R, G, B, as PIL's convert("RGB")) */
    bool last;     /* channels last (HWC: np.asarray(Image.open(f))), else first (CHW) */
    double *v;     /* n*channels*h*w values */
    bool integers; /* uint8 data or whole numbers: 0..255 as they are, never rescaled */
};

static size_t pixel_count(const struct pixels *p)
{
    return (size_t)p->n * (size_t)p->channels * (size_t)p->h * (size_t)p->w;
}

/* Image i's value for channel c (0..2) at position k (y * w + x), whatever the layout. */
static double pixel_value(const struct pixels *p, int64_t i, int c, size_t k)
{
    size_t plane = (size_t)p->h * (size_t)p->w, ch = (size_t)p->channels;
    const double *img = p->v + (size_t)i * ch * plane;
    size_t cc = ch == 1 ? 0 : (size_t)c;
    return p->last ? img[k * ch + cc] : img[cc * plane + k];
}

/* What a client-normalised array looks like: its smallest value below -NORMALISED_BELOW (a
 * pixel darker than the mean by a tenth of the deviation: nearly every photo has one), its
 * largest at most NORMALISED_MAX (ImageNet's statistics give -2.1 to 2.6). */
#define NORMALISED_BELOW 0.1
#define NORMALISED_MAX 10.0

/* Floats clearly below 0 are not pixels: the array is a model input normalised on the client
 * (torchvision's ToTensor + Normalize, sent through PyTorchPredictor's NumpySerializer or as
 * JSON), which the PyTorch container's default input_fn hands to the model as it is. So do we,
 * when it has the model's size: an array of another size cannot be resized without knowing
 * the normalisation it went through. */
static int model_input_to_batch(const struct sm_context *ctx, const struct pixels *p,
                                struct sm_batch *out, struct sm_error *err)
{
    if (p->h != ctx->image_size || p->w != ctx->image_size)
        return serve_fail(err, 400, "The array holds values below 0, so it is read as a model input "
                                    "already normalised, which must be %dx%d (the model's "
                                    "image_size); it is %lldx%lld. Send pixels (0 to 255, or 0 to 1 "
                                    "floats) to have them resized and normalised here.",
                          ctx->image_size, ctx->image_size, (long long)p->h, (long long)p->w);
    if (p->channels != 3)
        return serve_fail(err, 400, "The array holds values below 0, so it is read as a model input "
                                    "already normalised, which must have 3 channels; it has %d.",
                          p->channels);
    int rc = batch_alloc(ctx, p->n, out, err);
    size_t plane = (size_t)p->h * (size_t)p->w;
    for (int64_t i = 0; rc == 0 && i < p->n; i++) {
        float *dst = batch_item(ctx, out, i);
        for (int c = 0; c < 3; c++)
            for (size_t k = 0; k < plane; k++)
                dst[(size_t)c * plane + k] = (float)pixel_value(p, i, c, k);
    }
    return rc;
}

static int pixels_to_batch(const struct sm_context *ctx, const struct pixels *p,
                           struct sm_batch *out, struct sm_error *err)
{
    if (p->h < 1 || p->w < 1 || p->h > MAX_PIXEL_SIDE || p->w > MAX_PIXEL_SIDE)
        return serve_fail(err, 400, "images must be 1 to %d pixels a side, got %lldx%lld",
                    MAX_PIXEL_SIDE, (long long)p->h, (long long)p->w);
    size_t total = pixel_count(p);
    double max = 0, min = 0;
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(p->v[i]))
            return serve_fail(err, 400, "pixel values must be finite numbers");
        if (p->v[i] > max)
            max = p->v[i];
        if (p->v[i] < min)
            min = p->v[i];
    }
    /* Clearly below 0 and not on a 0..255 scale: normalised on the client. A float resize of
     * 0..1 or 0..255 pixels overshoots 0 by a little (read as pixels, clipped); whole numbers
     * count too, since JSON cannot tell -1.0 from -1 (a black image under 0.5/0.5). */
    if (min < -NORMALISED_BELOW && max <= NORMALISED_MAX)
        return model_input_to_batch(ctx, p, out, err);
    if (p->integers && max > 255)
        return serve_fail(err, 400, "The array holds the whole number %.0f: integer pixels must lie "
                                    "in 0 to 255.",
                          max);
    double scale = !p->integers && max <= 1.0 ? 255.0 : 1.0; /* 0..1 floats, as ToTensor gives */
    int rc = batch_alloc(ctx, p->n, out, err);
    struct image img = {.pixels = malloc((size_t)(p->h * p->w * 3)), .width = (int)p->w,
                        .height = (int)p->h};
    if (rc == 0 && !img.pixels)
        rc = serve_fail(err, 500, "out of memory");
    size_t plane = (size_t)(p->h * p->w);
    for (int64_t i = 0; rc == 0 && i < p->n; i++) {
        for (size_t k = 0; k < plane; k++)
            for (int c = 0; c < 3; c++) {
                double v = pixel_value(p, i, c, k) * scale + 0.5;
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

/* The layouts an array may have, channels first or last, RGB or gray:
 * [N,3,H,W] [3,H,W] (torchvision's), [N,H,W,3] [H,W,3] (np.asarray of a PIL image),
 * [N,1,H,W] [1,H,W] [N,H,W,1] [H,W,1] (gray). The first reading that fits wins, in that order.
 * A bare [H,W] is refused: as likely a batch of feature vectors as a gray image. */
#define PIXEL_LAYOUTS_TEXT                                                                        \
    "[N,3,H,W], [3,H,W], [N,H,W,3], [H,W,3], or gray [N,1,H,W], [1,H,W], [N,H,W,1], [H,W,1]"

static int check_shape(const int64_t *dims, int ndim, struct pixels *p, struct sm_error *err)
{
    static const struct {
        int ndim, channel_dim, channels;
    } layouts[] = {{4, 1, 3}, {3, 0, 3}, {4, 3, 3}, {3, 2, 3},
                   {4, 1, 1}, {3, 0, 1}, {4, 3, 1}, {3, 2, 1}};
    for (size_t l = 0; l < sizeof layouts / sizeof *layouts; l++) {
        int cd = layouts[l].channel_dim;
        if (ndim != layouts[l].ndim || dims[cd] != layouts[l].channels)
            continue;
        bool last = cd == ndim - 1;
        int first = (ndim == 4 ? 1 : 0) + (last ? 0 : 1); /* where H is */
        p->n = ndim == 4 ? dims[0] : 1;
        p->h = dims[first];
        p->w = dims[first + 1];
        p->channels = layouts[l].channels;
        p->last = last;
        return 0;
    }
    return serve_fail(err, 400, "arrays must be shaped " PIXEL_LAYOUTS_TEXT);
}

/* ---- NPY ---- */

static int npy_pixels(const uint8_t *body, size_t len, struct pixels *p, struct sm_error *err)
{
    struct npy_array a;
    if (npy_parse_header(body, len, MAX_PIXEL_SIDE * (int64_t)MAX_BATCH_IMAGES, &a) < 0)
        return serve_fail(err, 400, "%s", err_msg());
    if (check_shape(a.dims, a.ndim, p, err))
        return 400;
    if (p->n < 1 || p->n > MAX_BATCH_IMAGES || p->h < 1 || p->w < 1 || p->h > MAX_PIXEL_SIDE ||
        p->w > MAX_PIXEL_SIDE)
        return serve_fail(err, 400, "The .npy array is shaped as %lld images of %lldx%lld pixels: "
                                    "send at most %d images (at least 1) of 1 to %d pixels a side.",
                          (long long)p->n, (long long)p->h, (long long)p->w, MAX_BATCH_IMAGES,
                          MAX_PIXEL_SIDE);
    if (npy_check_data(&a) < 0)
        return serve_fail(err, 400, "%s", err_msg());
    p->v = malloc(a.count * sizeof *p->v + 1);
    if (!p->v)
        return serve_fail(err, 500, "Out of memory decoding the .npy array.");
    p->integers = a.kind != 'f';
    for (size_t i = 0; i < a.count; i++) {
        p->v[i] = npy_element(&a, i);
        if (p->integers && (p->v[i] < 0 || p->v[i] > 255)) {
            double bad = p->v[i];
            free(p->v);
            p->v = NULL;
            return serve_fail(err, 400, "The .npy array holds the integer %.0f at element %zu: "
                                        "integer pixels must lie in 0 to 255.",
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
    size_t cap = pixel_count(p), pos = 0;
    if (cap > body_len / 2 + 1)
        return serve_fail(err, 400, "the JSON array is ragged: its first rows promise %zu values, more "
                              "than the body holds", cap);
    p->v = malloc(cap * sizeof *p->v + 1);
    if (!p->v)
        return serve_fail(err, 500, "out of memory");
    if (json_fill(a, 0, dims, ndim, p->v, &pos, cap) < 0 || pos != cap)
        return serve_fail(err, 400, "the JSON array is ragged or holds non-numbers: expected a "
                              "nested list of pixel values shaped " PIXEL_LAYOUTS_TEXT);
    p->integers = true;
    for (size_t i = 0; p->integers && i < cap; i++)
        p->integers = p->v[i] == floor(p->v[i]);
    return 0;
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
        uint8_t *bytes = base64_text_decode(b64->valuestring, strlen(b64->valuestring), &len);
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

/* A document's list of records: "instances" (TensorFlow Serving's and SageMaker's built-in
 * algorithms' form) or "inputs" (Hugging Face's); NULL when it has neither as a list. */
static const cJSON *records_of(const cJSON *doc)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "instances");
    if (!cJSON_IsArray(list))
        list = cJSON_GetObjectItemCaseSensitive(doc, "inputs");
    return cJSON_IsArray(list) ? list : NULL;
}

/* The {"url": ...} records in a document: itself, or the items of its "instances". */
static int count_urls(const cJSON *doc)
{
    const cJSON *instances = records_of(doc);
    if (!instances)
        return cJSON_IsObject(doc) && cJSON_GetObjectItemCaseSensitive(doc, "url") ? 1 : 0;
    int n = 0;
    for (const cJSON *r = instances->child; r; r = r->next)
        n += cJSON_IsObject(r) && cJSON_GetObjectItemCaseSensitive(r, "url") ? 1 : 0;
    return n;
}

/* 3 when text starts with UTF-8's byte order mark (PowerShell's and Notepad's UTF-8 files),
 * else 0. */
static size_t utf8_bom_length(const uint8_t *text, size_t len)
{
    return len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

static bool only_blanks(const char *p, const char *end)
{
    while (p && p < end && isspace((unsigned char)*p))
        p++;
    return !p || p >= end;
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
    p += utf8_bom_length(req->body, req->body_len);
    while (rc == 0 && p < end) {
        const char *stop = lines ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (!stop)
            stop = end;
        const char *q = p;
        while (q < stop && isspace((unsigned char)*q))
            q++;
        if (q < stop) {
            size_t before = images;
            const char *after = NULL;
            cJSON *doc = cJSON_ParseWithLengthOpts(q, (size_t)(stop - q), &after, 0);
            if (!doc) {
                rc = serve_fail(err, 400, "the body is not valid JSON%s", lines ? " (in a JSON Lines record)" : "");
                break;
            }
            if (!only_blanks(after, stop)) {
                cJSON_Delete(doc);
                if (!lines) {
                    /* Documents one after another: JSON Lines sent as JSON (batch transform's
                     * MultiRecord with SplitType=Line joins application/json records by
                     * line), or told by the bytes. Read as such; nothing is decoded yet. */
                    free(parts);
                    return json_input(ctx, req, true, out, err);
                }
                rc = serve_fail(err, 400, "a JSON Lines line holds more than one JSON document: "
                                          "send one per line");
                break;
            }
            const cJSON *instances = records_of(doc);
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

/* What a body sent without a type of its own (application/octet-stream, the SDK's Predictor
 * with no serializer, or none at all) holds, by its first bytes: an image (raw, or as base64
 * text, then decoded into *decoded), a .npy array or JSON (one document, or JSON Lines).
 * MEDIA_KIND_OTHER when it is none of them. */
static enum media_kind sniff_body(const uint8_t *body, size_t len, uint8_t **decoded,
                                  size_t *decoded_len)
{
    if (image_sniff(body, len) != IMAGE_FORMAT_UNKNOWN)
        return MEDIA_KIND_IMAGE;
    if (len >= 6 && memcmp(body, "\x93NUMPY", 6) == 0)
        return MEDIA_KIND_NPY;
    size_t i = utf8_bom_length(body, len);
    while (i < len && isspace(body[i]))
        i++;
    if (i < len && (body[i] == '{' || body[i] == '['))
        return MEDIA_KIND_JSON; /* json_input reads several documents as JSON Lines */
    /* Base64 text of an image (which cannot start with '{' or '['): decoded once, here. */
    *decoded = base64_image_body(body, len, decoded_len);
    return *decoded ? MEDIA_KIND_IMAGE : MEDIA_KIND_OTHER;
}

int serve_input_fn(const struct sm_context *ctx, const struct sm_request *req,
                   struct sm_batch *out, struct sm_error *err)
{
    memset(out, 0, sizeof *out);
    const char *ct = req->content_type;
    if (req->body_len == 0)
        return serve_fail(err, 400, "the request body is empty");
    enum media_kind kind = media_kind_of(ct, strlen(ct));
    uint8_t *decoded = NULL; /* a base64 image's bytes */
    size_t len = req->body_len;
    if (kind == MEDIA_KIND_SNIFF || !*ct)
        kind = sniff_body(req->body, req->body_len, &decoded, &len);
    else if (kind == MEDIA_KIND_IMAGE)
        decoded = base64_image_body(req->body, req->body_len, &len);
    if (kind == MEDIA_KIND_IMAGE) {
        int rc = batch_alloc(ctx, 1, out, err);
        if (rc == 0 && (rc = decode_image_into(ctx, decoded ? decoded : req->body, len, out->data,
                                               err)) != 0) {
            free(out->data);
            out->data = NULL;
        }
        free(decoded);
        return rc;
    }
    if (kind == MEDIA_KIND_NPY) {
        struct pixels p = {0};
        int rc = npy_pixels(req->body, req->body_len, &p, err);
        if (rc == 0)
            rc = pixels_to_batch(ctx, &p, out, err);
        free(p.v);
        return rc;
    }
    if (kind == MEDIA_KIND_JSON || kind == MEDIA_KIND_JSONLINES)
        return json_input(ctx, req, kind == MEDIA_KIND_JSONLINES, out, err);
    if (!*ct || media_kind_of(ct, strlen(ct)) == MEDIA_KIND_SNIFF)
        return serve_fail(err, 415, "the body, sent as %s, is not a JPEG or PNG image, a .npy array "
                                    "or JSON: send one of them, or name its type: " MEDIA_INPUTS_TEXT,
                          *ct ? ct : "no Content-Type");
    return serve_fail(err, 415, "unsupported Content-Type \"%s\": send " MEDIA_INPUTS_TEXT, ct);
}

