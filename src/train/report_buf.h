/*
 * report_buf.h - a growable text buffer with a cap, for building the HTML report and other
 * generated files in memory. An append past the cap (or out of memory) marks the buffer
 * failed and later appends do nothing; the writer checks `failed` once at the end.
 */
#ifndef TRAIN_REPORT_BUF_H
#define TRAIN_REPORT_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct rbuf {
    char *data;
    size_t len, cap, max;
    bool failed;
};

void rbuf_init(struct rbuf *b, size_t max);
void rbuf_free(struct rbuf *b);
void rbuf_append(struct rbuf *b, const void *data, size_t n);
void rbuf_puts(struct rbuf *b, const char *s);
void rbuf_printf(struct rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with & < > " ' as HTML entities (safe in text and in quoted attributes). */
void rbuf_html(struct rbuf *b, const char *s);
/* s as the inside of a JSON string. */
void rbuf_json_string(struct rbuf *b, const char *s);
void rbuf_base64(struct rbuf *b, const unsigned char *data, size_t n);

#endif
