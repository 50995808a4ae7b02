/*
 * base64.h - base64 decoding for what clients send: standard or URL-safe alphabet, padding
 * optional, whitespace ignored. (Encoding is dynbuf_base64, for generated text.)
 */
#ifndef COMMON_BASE64_H
#define COMMON_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* The bytes s encodes (malloc'd, *len set), or NULL when s holds a character outside both
 * alphabets or memory ran out. */
uint8_t *base64_decode(const char *s, size_t *len);

#endif
