/*
 * base64.c - base64 decoding (base64.h).
 */
#include "common/base64.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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

uint8_t *base64_decode(const char *s, size_t *len)
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

