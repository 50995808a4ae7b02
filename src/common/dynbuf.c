/*
 * dynbuf.c - the capped growable buffer (dynbuf.h).
 */
#include "common/dynbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dynbuf_init(struct dynbuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void dynbuf_free(struct dynbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Room for extra more bytes and the NUL, within max. */
static bool reserve(struct dynbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra >= b->max || b->len + extra + 1 > b->max) {
        b->failed = b->too_large = true;
        return false;
    }
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

int dynbuf_append(struct dynbuf *b, const void *data, size_t n)
{
    if (!reserve(b, n))
        return -1;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int dynbuf_puts(struct dynbuf *b, const char *s)
{
    return dynbuf_append(b, s, strlen(s));
}

int dynbuf_printf(struct dynbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return -1;
    }
    if ((size_t)n < sizeof small)
        return dynbuf_append(b, small, (size_t)n);
    if (!reserve(b, (size_t)n))
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *dynbuf_take(struct dynbuf *b, size_t *len)
{
    if (b->failed || (!b->data && dynbuf_append(b, "", 0) < 0)) {
        dynbuf_free(b);
        return NULL;
    }
    char *data = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return data;
}

int dynbuf_html(struct dynbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': dynbuf_puts(b, "&amp;"); break;
        case '<': dynbuf_puts(b, "&lt;"); break;
        case '>': dynbuf_puts(b, "&gt;"); break;
        case '"': dynbuf_puts(b, "&quot;"); break;
        case '\'': dynbuf_puts(b, "&#39;"); break;
        default: dynbuf_append(b, s, 1);
        }
    }
    return b->failed ? -1 : 0;
}

int dynbuf_json_string(struct dynbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            dynbuf_printf(b, "\\%c", c);
        else if (c < 0x20)
            dynbuf_printf(b, "\\u%04x", c);
        else
            dynbuf_append(b, s, 1);
    }
    return b->failed ? -1 : 0;
}

int dynbuf_base64(struct dynbuf *b, const unsigned char *d, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        char out[4] = {al[v >> 18 & 63], al[v >> 12 & 63], i + 1 < n ? al[v >> 6 & 63] : '=',
                       i + 2 < n ? al[v & 63] : '='};
        dynbuf_append(b, out, 4);
    }
    return b->failed ? -1 : 0;
}
