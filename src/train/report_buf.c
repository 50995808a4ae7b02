/*
 * report_buf.c - the capped text buffer behind the report, trace and page writers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/report_buf.h"

void rbuf_init(struct rbuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void rbuf_free(struct rbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static bool reserve(struct rbuf *b, size_t extra)
{
    if (b->failed) return false;
    if (extra > b->max || b->len + extra + 1 > b->max) {
        b->failed = true;
        return false;
    }
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    if (cap > b->max) cap = b->max;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void rbuf_append(struct rbuf *b, const void *data, size_t n)
{
    if (!reserve(b, n)) return;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void rbuf_puts(struct rbuf *b, const char *s)
{
    rbuf_append(b, s, strlen(s));
}

void rbuf_printf(struct rbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        rbuf_append(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void rbuf_html(struct rbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            rbuf_puts(b, "&amp;");
            break;
        case '<':
            rbuf_puts(b, "&lt;");
            break;
        case '>':
            rbuf_puts(b, "&gt;");
            break;
        case '"':
            rbuf_puts(b, "&quot;");
            break;
        case '\'':
            rbuf_puts(b, "&#39;");
            break;
        default:
            rbuf_append(b, s, 1);
        }
    }
}

void rbuf_json_string(struct rbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rbuf_printf(b, "\\%c", c);
        else if (c < 0x20)
            rbuf_printf(b, "\\u%04x", c);
        else
            rbuf_append(b, s, 1);
    }
}

void rbuf_base64(struct rbuf *b, const unsigned char *d, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        char out[4] = {al[v >> 18 & 63], al[v >> 12 & 63], i + 1 < n ? al[v >> 6 & 63] : '=',
                       i + 2 < n ? al[v & 63] : '='};
        rbuf_append(b, out, 4);
    }
}
