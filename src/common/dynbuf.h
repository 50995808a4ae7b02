/*
 * dynbuf.h - the project's one growable buffer: bytes or text appended in memory up to a cap
 * fixed at init, always NUL-terminated. An append past the cap (or out of memory) marks the
 * buffer failed; later appends do nothing, so a writer appends freely and checks `failed`
 * (or the -1 of an append) where it must tell "too large" from "done".
 *
 *     struct dynbuf b;
 *     dynbuf_init(&b, 16 << 20);
 *     dynbuf_printf(&b, "{\"epoch\": %d}\n", e);
 *     if (b.failed) ... else use b.data, b.len; dynbuf_free(&b);
 */
#ifndef COMMON_DYNBUF_H
#define COMMON_DYNBUF_H

#include <stdbool.h>
#include <stddef.h>

struct dynbuf {
    char *data; /* NULL until the first append; then NUL-terminated at len */
    size_t len, cap, max;
    bool failed, too_large; /* too_large: the failure was the cap, not memory */
};

void dynbuf_init(struct dynbuf *b, size_t max);
void dynbuf_free(struct dynbuf *b);
/* 0, or -1 when the buffer has failed (now or before). */
int dynbuf_append(struct dynbuf *b, const void *data, size_t n);
int dynbuf_puts(struct dynbuf *b, const char *s);
int dynbuf_printf(struct dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The contents (malloc'd, NUL-terminated, an empty string for an empty buffer), the buffer
 * left empty; NULL when it failed or memory ran out. */
char *dynbuf_take(struct dynbuf *b, size_t *len);

/* Generated text: s with & < > " ' as HTML entities (safe in text and in quoted attributes);
 * s as the inside of a JSON string; bytes as standard padded base64. */
int dynbuf_html(struct dynbuf *b, const char *s);
int dynbuf_json_string(struct dynbuf *b, const char *s);
int dynbuf_base64(struct dynbuf *b, const unsigned char *data, size_t n);

#endif
