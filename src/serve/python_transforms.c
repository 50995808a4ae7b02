/*
 * python_transforms.c - reading a handler's torchvision pipeline (python_transforms.h).
 *
 * The source is cut into tokens (names with their dots, numbers, punctuation; comments and
 * string literals dropped, so a docstring's example is not read), then every
 * `<...>Compose(` followed by a literal list is read step by step. Counts are capped by the
 * source's size (1 MiB) and nesting by the brackets that match.
 */
#define _DEFAULT_SOURCE
#include "serve/python_transforms.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tok_kind { TOK_NAME, TOK_NUM, TOK_PUNCT };

struct tok {
    enum tok_kind kind;
    const char *p; /* into the NUL-terminated copy */
    size_t len;
    double num;
};

struct toks {
    struct tok *t;
    size_t n, cap;
};

static int push(struct toks *ts, enum tok_kind kind, const char *p, size_t len, double num)
{
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 256;
        struct tok *t = realloc(ts->t, cap * sizeof *t);
        if (!t)
            return -1;
        ts->t = t;
        ts->cap = cap;
    }
    ts->t[ts->n++] = (struct tok){kind, p, len, num};
    return 0;
}

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* After a quote at s[i] (or a triple one), the index just past the string's end. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    char q = s[i];
    if (i + 2 < n && s[i + 1] == q && s[i + 2] == q) {
        for (i += 3; i + 2 < n; i++) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == q && s[i + 1] == q && s[i + 2] == q)
                return i + 3;
        }
        return n;
    }
    for (i++; i < n && s[i] != '\n'; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == q)
            return i + 1;
    }
    return i < n ? i : n;
}

static int tokenize(const char *s, size_t n, struct toks *ts)
{
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '#') {
            while (i < n && s[i] != '\n')
                i++;
        } else if (c == '\'' || c == '"') {
            i = skip_string(s, i, n);
        } else if (isdigit((unsigned char)c) || (c == '.' && i + 1 < n && isdigit((unsigned char)s[i + 1]))) {
            char *end;
            double v = strtod(s + i, &end);
            size_t len = (size_t)(end - (s + i));
            if (len == 0)
                len = 1;
            while (i + len < n && name_char(s[i + len])) /* 1_000, 0x1f, 1j: not a plain number */
                len++, v = NAN;
            if (push(ts, TOK_NUM, s + i, len, v) < 0)
                return -1;
            i += len;
        } else if (isalpha((unsigned char)c) || c == '_') {
            size_t start = i;
            while (i < n && name_char(s[i]))
                i++;
            if (i < n && (s[i] == '\'' || s[i] == '"') && i - start <= 3) { /* r"...", b'...' */
                i = skip_string(s, i, n);
                continue;
            }
            while (i + 1 < n && s[i] == '.' && (isalpha((unsigned char)s[i + 1]) || s[i + 1] == '_'))
                for (i++; i < n && name_char(s[i]); i++)
                    ;
            if (push(ts, TOK_NAME, s + start, i - start, 0) < 0)
                return -1;
        } else if (isspace((unsigned char)c) || c == '\\') {
            i++;
        } else {
            if (push(ts, TOK_PUNCT, s + i, 1, 0) < 0)
                return -1;
            i++;
        }
    }
    return 0;
}

static bool is_punct(const struct toks *ts, size_t i, char c)
{
    return i < ts->n && ts->t[i].kind == TOK_PUNCT && ts->t[i].p[0] == c;
}

/* The index of the bracket closing the one at i, or ts->n. */
static size_t closing(const struct toks *ts, size_t i)
{
    int depth = 0;
    for (; i < ts->n; i++) {
        if (ts->t[i].kind != TOK_PUNCT)
            continue;
        char c = ts->t[i].p[0];
        if (c == '(' || c == '[' || c == '{')
            depth++;
        else if ((c == ')' || c == ']' || c == '}') && --depth == 0)
            return i;
    }
    return ts->n;
}

/* The last dotted component of a name token: "transforms.Resize" -> "Resize". */
static bool last_is(const struct tok *t, const char *want)
{
    size_t w = strlen(want);
    if (t->kind != TOK_NAME || t->len < w || memcmp(t->p + t->len - w, want, w) != 0)
        return false;
    return t->len == w || t->p[t->len - w - 1] == '.';
}

static bool last_starts(const struct tok *t, const char *prefix)
{
    size_t start = t->len;
    while (start > 0 && t->p[start - 1] != '.')
        start--;
    return t->kind == TOK_NAME && t->len - start >= strlen(prefix) &&
           memcmp(t->p + start, prefix, strlen(prefix)) == 0;
}

/* One argument's value: a number, or a tuple/list of up to 3 numbers. */
struct value {
    int count; /* numbers read; -1: not numbers (a name, None...) */
    double v[3];
};

static struct value read_value(const struct toks *ts, size_t from, size_t to)
{
    struct value out = {0, {0}};
    size_t i = from;
    bool bracketed = is_punct(ts, i, '(') || is_punct(ts, i, '[');
    if (bracketed) {
        if (closing(ts, i) + 1 != to)
            return (struct value){-1, {0}};
        i++;
        to--;
    }
    while (i < to) {
        double sign = 1;
        if (is_punct(ts, i, '-') || is_punct(ts, i, '+'))
            sign = ts->t[i++].p[0] == '-' ? -1 : 1;
        if (i >= to || ts->t[i].kind != TOK_NUM || !isfinite(ts->t[i].num) || out.count == 3)
            return (struct value){-1, {0}};
        out.v[out.count++] = sign * ts->t[i++].num;
        if (i < to && !is_punct(ts, i, ','))
            return (struct value){-1, {0}};
        if (i < to)
            i++;
        if (!bracketed && i < to)
            return (struct value){-1, {0}};
    }
    if (out.count == 0)
        out.count = -1;
    return out;
}

#define MAX_ARGS 8
struct call_args {
    int n;
    const struct tok *key[MAX_ARGS]; /* NULL: positional */
    struct value value[MAX_ARGS];
};

/* The arguments between the parentheses at open and close. -1 when there are too many. */
static int read_args(const struct toks *ts, size_t open, size_t close, struct call_args *a)
{
    a->n = 0;
    size_t i = open + 1;
    while (i < close) {
        size_t end = i;
        while (end < close && !is_punct(ts, end, ',')) {
            bool opens = is_punct(ts, end, '(') || is_punct(ts, end, '[') || is_punct(ts, end, '{');
            end = opens ? closing(ts, end) + 1 : end + 1;
        }
        if (end > close)
            return -1;
        if (a->n == MAX_ARGS)
            return -1;
        const struct tok *key = NULL;
        size_t v = i;
        if (end - i >= 2 && ts->t[i].kind == TOK_NAME && is_punct(ts, i + 1, '=')) {
            key = &ts->t[i];
            v = i + 2;
        }
        a->key[a->n] = key;
        a->value[a->n] = v < end ? read_value(ts, v, end) : (struct value){-1, {0}};
        a->n++;
        i = end + 1;
    }
    return 0;
}

/* Argument `pos` (positional) or `name=`, or NULL. */
static const struct value *arg(const struct call_args *a, int pos, const char *name)
{
    int seen = 0;
    for (int i = 0; i < a->n; i++) {
        if (a->key[i] && a->key[i]->len == strlen(name) && memcmp(a->key[i]->p, name, a->key[i]->len) == 0)
            return &a->value[i];
        if (!a->key[i] && seen++ == pos)
            return &a->value[i];
    }
    return NULL;
}

static bool three(const struct value *v, float out[3])
{
    if (!v || (v->count != 1 && v->count != 3))
        return false;
    for (int c = 0; c < 3; c++) {
        double x = v->v[v->count == 1 ? 0 : c];
        if (!(fabs(x) <= 1e6)) /* a statistic of pixels, even 0-255 ones, and a float */
            return false;
        out[c] = (float)x;
    }
    return true;
}

static bool side(const struct value *v, int *out)
{
    if (!v || v->count < 1 || v->count > 2 || (v->count == 2 && v->v[0] != v->v[1]) ||
        v->v[0] < 1 || v->v[0] > 4096 || v->v[0] != floor(v->v[0]))
        return false;
    *out = (int)v->v[0];
    return true;
}

enum pipeline { PIPE_OK, PIPE_TRAINING, PIPE_NOT_UNDERSTOOD };

/* A training pipeline has a random step or an augmentation anywhere in it. */
static bool augments(const struct toks *ts, size_t open, size_t close)
{
    static const char *const augmentations[] = {"ColorJitter", "RandAugment", "AutoAugment",
                                                "TrivialAugmentWide", "AugMix", "GaussianBlur",
                                                "ElasticTransform"};
    for (size_t i = open + 1; i < close; i++) {
        if (ts->t[i].kind != TOK_NAME)
            continue;
        if (last_starts(&ts->t[i], "Random"))
            return true;
        for (size_t a = 0; a < sizeof augmentations / sizeof *augmentations; a++)
            if (last_is(&ts->t[i], augmentations[a]))
                return true;
    }
    return false;
}

/* Reads the Compose list whose bracket is at `open`. */
static enum pipeline read_pipeline(const struct toks *ts, size_t open, struct py_transforms *p,
                                   char *why, size_t why_len)
{
    size_t close = closing(ts, open);
    *p = (struct py_transforms){.mean = {0, 0, 0}, .std = {1, 1, 1}};
    if (augments(ts, open, close))
        return PIPE_TRAINING;
    bool tensor = false;
    for (size_t i = open + 1; i < close;) {
        const struct tok *step = &ts->t[i];
        if (step->kind != TOK_NAME || !is_punct(ts, i + 1, '(')) {
            snprintf(why, why_len, "a step that is not a transforms call (%.*s)",
                     (int)(step->len > 40 ? 40 : step->len), step->p);
            return PIPE_NOT_UNDERSTOOD;
        }
        size_t end = closing(ts, i + 1);
        struct call_args a;
        if (end >= close || read_args(ts, i + 1, end, &a) < 0) {
            snprintf(why, why_len, "arguments of %.*s serve cannot read", (int)step->len, step->p);
            return PIPE_NOT_UNDERSTOOD;
        }
        bool ok = true;
        if (last_is(step, "Resize")) {
            const struct value *size = arg(&a, 0, "size");
            const struct value *max_size = arg(&a, 2, "max_size");
            ok = size && size->count >= 1 && size->count <= 2 && !tensor && p->crop == 0 &&
                 !p->resize && !p->resize_h && (!max_size || max_size->count < 0);
            /* (h, w): both sides; a rectangle (h != w) is refused by side(): serve's inputs
             * are square. */
            if (ok && size->count == 2) {
                ok = side(size, &p->resize_h);
                p->resize_w = p->resize_h;
            } else if (ok) {
                ok = side(size, &p->resize);
            }
        } else if (last_is(step, "CenterCrop")) {
            ok = !tensor && !p->crop && side(arg(&a, 0, "size"), &p->crop);
        } else if (last_is(step, "ToTensor")) {
            tensor = true;
        } else if (last_is(step, "PILToTensor")) {
            tensor = p->pixels_0_255 = true;
        } else if (last_is(step, "ConvertImageDtype")) {
            p->pixels_0_255 = false;
        } else if (last_is(step, "Normalize")) {
            ok = tensor && !p->normalize && three(arg(&a, 0, "mean"), p->mean) &&
                 three(arg(&a, 1, "std"), p->std);
            for (int c = 0; ok && c < 3; c++)
                ok = p->std[c] > 0;
            p->normalize = true;
        } else {
            ok = false;
        }
        if (!ok) {
            snprintf(why, why_len, "%.*s(...) as written there is not a step serve does",
                     (int)(step->len > 60 ? 60 : step->len), step->p);
            return PIPE_NOT_UNDERSTOOD;
        }
        i = end + 1;
        if (is_punct(ts, i, ','))
            i++;
    }
    if (!tensor) {
        snprintf(why, why_len, "a pipeline without ToTensor");
        return PIPE_NOT_UNDERSTOOD;
    }
    return PIPE_OK;
}

static bool same(const struct py_transforms *a, const struct py_transforms *b)
{
    if (a->resize != b->resize || a->resize_h != b->resize_h || a->crop != b->crop ||
        a->pixels_0_255 != b->pixels_0_255)
        return false;
    for (int c = 0; c < 3; c++)
        if (a->mean[c] != b->mean[c] || a->std[c] != b->std[c])
            return false;
    return true;
}

int py_transforms_find(const char *src, size_t len, struct py_transforms *out, char *why,
                       size_t why_len)
{
    snprintf(why, why_len, "no transforms.Compose([...]) in it");
    if (len > PY_SOURCE_MAX) {
        snprintf(why, why_len, "longer than %u bytes, not read", PY_SOURCE_MAX);
        return 0;
    }
    char *copy = malloc(len + 1);
    struct toks ts = {0};
    if (!copy) {
        snprintf(why, why_len, "out of memory");
        return 0;
    }
    memcpy(copy, src, len);
    copy[len] = '\0';
    int found = 0, training = 0;
    if (tokenize(copy, len, &ts) < 0) {
        snprintf(why, why_len, "out of memory");
        found = -1;
    }
    for (size_t i = 0; i + 2 < ts.n && found >= 0; i++) {
        if (!last_is(&ts.t[i], "Compose") || !is_punct(&ts, i + 1, '('))
            continue;
        if (!is_punct(&ts, i + 2, '[') && !is_punct(&ts, i + 2, '(')) {
            snprintf(why, why_len, "a Compose of a list serve cannot see (a variable)");
            found = -1;
            break;
        }
        struct py_transforms p;
        char step_why[160] = "";
        enum pipeline kind = read_pipeline(&ts, i + 2, &p, step_why, sizeof step_why);
        if (kind == PIPE_TRAINING) {
            training++;
        } else if (kind == PIPE_NOT_UNDERSTOOD) {
            snprintf(why, why_len, "a Compose with %s", step_why);
            found = -1;
        } else if (found > 0 && !same(&p, out)) {
            snprintf(why, why_len, "two different inference pipelines");
            found = -1;
        } else {
            *out = p;
            found = 1;
        }
        i = closing(&ts, i + 1);
    }
    if (found == 0 && training > 0)
        snprintf(why, why_len, "only training pipelines (with Random steps)");
    free(ts.t);
    free(copy);
    return found > 0;
}
