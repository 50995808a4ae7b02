/*
 * accept.c - Accept header negotiation (see accept.h): media ranges with their q-values and
 * our two parameters, format= and verbose=, read in place without copying the header.
 */
#define _GNU_SOURCE
#include "serve/accept.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "serve/media_types.h"

/* Does [s, s+len) equal word, ignoring case? */
static bool token_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

int serve_shape_parse(const char *name, size_t len, enum serve_shape *out)
{
    if (token_is(name, len, "default"))
        *out = SERVE_SHAPE_DEFAULT;
    else if (token_is(name, len, "builtin") || token_is(name, len, "image-classification"))
        *out = SERVE_SHAPE_BUILTIN;
    else if (token_is(name, len, "pytorch") || token_is(name, len, "logits"))
        *out = SERVE_SHAPE_PYTORCH;
    else
        return -1;
    return 0;
}

/* The loaded model's own shape (metadata.json's response_format), or -1. */
static int model_shape = -1;

void serve_shape_set_model_default(int shape)
{
    __atomic_store_n(&model_shape, shape, __ATOMIC_RELEASE);
}

int serve_shape_from_env(enum serve_shape *out, char *msg, size_t msg_len)
{
    const char *v = getenv("SERVE_RESPONSE_FORMAT");
    *out = SERVE_SHAPE_DEFAULT;
    if (!v || !*v) {
        /* PyTorchModel(entry_point=...) and Model(entry_point=...) set SAGEMAKER_PROGRAM: the
         * endpoint was deployed as a PyTorch container's, whose clients parse its default
         * output_fn's answer, the logits. */
        const char *program = getenv("SAGEMAKER_PROGRAM");
        int from_model = __atomic_load_n(&model_shape, __ATOMIC_ACQUIRE);
        if (program && *program)
            *out = SERVE_SHAPE_PYTORCH;
        else if (from_model >= 0)
            *out = (enum serve_shape)from_model;
        return 0;
    }
    if (serve_shape_parse(v, strlen(v), out) == 0)
        return 0;
    snprintf(msg, msg_len,
             "SERVE_RESPONSE_FORMAT is \"%.64s\"; set it to default, builtin (the built-in "
             "image-classification algorithm's answers) or pytorch (the PyTorch container's "
             "logits), or leave it unset.",
             v);
    return -1;
}

enum serve_shape serve_accept_shape(const struct serve_accept *a, enum serve_shape endpoint)
{
    if (a->shape_given)
        return a->shape;
    return a->verbose ? SERVE_SHAPE_BUILTIN : endpoint;
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* [s, e) without surrounding blanks and, for a value, one pair of double quotes. */
static void trim(const char **s, const char **e)
{
    *s = skip_space(*s, *e);
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
    if (*e - *s >= 2 && **s == '"' && (*e)[-1] == '"')
        (*s)++, (*e)--;
}

/* The type a media range names, or -1 for one we cannot write. */
static int range_type(const char *s, size_t len)
{
    if (token_is(s, len, "*/*") || token_is(s, len, "application/*"))
        return SERVE_OUT_JSON;
    switch (media_kind_of(s, len)) {
    case MEDIA_KIND_JSON: return SERVE_OUT_JSON;
    case MEDIA_KIND_NPY: return SERVE_OUT_NPY;
    case MEDIA_KIND_JSONLINES: return SERVE_OUT_JSONLINES;
    default: return -1;
    }
}

/* One media range [s, e): its type, parameters and weight. Returns the weight (0..1), or -1
 * when the range is unusable (a type or format we cannot write, a malformed q). */
static double range_parse(const char *s, const char *e, struct serve_accept *out)
{
    const char *semi = memchr(s, ';', (size_t)(e - s));
    const char *type_end = semi ? semi : e, *type_start = s;
    trim(&type_start, &type_end);
    int type = range_type(type_start, (size_t)(type_end - type_start));
    if (type < 0)
        return -1;
    memset(out, 0, sizeof *out);
    out->type = (enum serve_out_type)type;
    double q = 1.0;
    for (const char *p = semi; p && p < e;) {
        const char *next = memchr(p + 1, ';', (size_t)(e - p - 1));
        const char *pe = next ? next : e, *ps = p + 1;
        const char *eq = memchr(ps, '=', (size_t)(pe - ps));
        p = next;
        if (!eq)
            continue;
        const char *ns = ps, *ne = eq, *vs = eq + 1, *ve = pe;
        trim(&ns, &ne);
        trim(&vs, &ve);
        size_t nlen = (size_t)(ne - ns), vlen = (size_t)(ve - vs);
        if (token_is(ns, nlen, "q")) {
            char num[16];
            if (vlen == 0 || vlen >= sizeof num)
                return -1;
            memcpy(num, vs, vlen);
            num[vlen] = '\0';
            char *end;
            q = strtod(num, &end);
            if (*end || !(q >= 0 && q <= 1))
                return -1;
        } else if (token_is(ns, nlen, "format")) {
            if (serve_shape_parse(vs, vlen, &out->shape) < 0)
                return -1;
            out->shape_given = true;
        } else if (token_is(ns, nlen, "verbose")) {
            out->verbose = token_is(vs, vlen, "true") || token_is(vs, vlen, "1");
        }
    }
    return q;
}

int serve_accept_parse(const char *accept, struct serve_accept *out)
{
    memset(out, 0, sizeof *out);
    if (!accept || !*skip_space(accept, accept + strlen(accept)))
        return 0; /* no preference: JSON */
    const char *p = accept, *end = accept + strlen(accept);
    double best = 0;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        struct serve_accept candidate;
        double q = range_parse(p, e, &candidate);
        if (q > best) { /* strictly greater: the first range wins a tie */
            best = q;
            *out = candidate;
        }
        p = e + 1;
    }
    return best > 0 ? 0 : -1;
}
