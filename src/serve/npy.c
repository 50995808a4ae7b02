/*
 * npy.c - the .npy reader and writer (npy.h).
 */
#include "serve/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* Finds "'key': value" in the header dict; returns the value's start or NULL. */
static const char *header_field(const char *header, const char *key)
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
static int parse_dtype(const char *descr, struct npy_array *a)
{
    char text[16] = "";
    const char *end = *descr == '\'' ? strchr(descr + 1, '\'') : NULL;
    if (end && (size_t)(end - descr - 1) < sizeof text)
        memcpy(text, descr + 1, (size_t)(end - descr - 1));
    const char *q = text;
    a->big_endian = *q == '>';
    if (*q == '<' || *q == '>' || *q == '|' || *q == '=')
        q++;
    a->kind = q[0];
    a->item_size = q[0] && q[1] >= '1' && q[1] <= '8' && !q[2] ? (size_t)(q[1] - '0') : 0;
    size_t s = a->item_size;
    bool integer = (a->kind == 'u' || a->kind == 'i') && (s == 1 || s == 2 || s == 4 || s == 8);
    bool real = a->kind == 'f' && (s == 4 || s == 8);
    if (!integer && !real)
        return err_set("The .npy array's dtype '%s' is not accepted: send pixels as an integer type "
                       "(uint8, int8 to int64, uint16 to uint64) holding 0 to 255, or as float32 "
                       "or float64.",
                       text);
    if (s == 1)
        a->big_endian = false;
    return 0;
}

/* "(1, 3, 224, 224)" into dims, each bounded before any product of them is formed. */
static int parse_shape(const char *shape, int64_t max_dim, struct npy_array *a)
{
    if (*shape != '(')
        return err_set("The .npy shape is malformed: expected a tuple such as (1, 3, 224, 224).");
    a->ndim = 0;
    const char *q = shape + 1;
    while (*q && *q != ')') {
        char *end;
        long long d = strtoll(q, &end, 10);
        if (end == q)
            break;
        if (a->ndim == NPY_MAX_DIMS)
            return err_set("The .npy array has more than %d dimensions: send [N,3,H,W] or [3,H,W].",
                           NPY_MAX_DIMS);
        if (d < 0 || d > max_dim)
            return err_set("The .npy dimension %lld is impossible for an image batch.", d);
        a->dims[a->ndim++] = d;
        q = end;
        while (*q == ',' || *q == ' ')
            q++;
    }
    return 0;
}

int npy_parse_header(const uint8_t *body, size_t len, int64_t max_dim, struct npy_array *a)
{
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(body, "\x93NUMPY", 6) != 0)
        return err_set("The body is not a NumPy .npy array: it does not start with the \\x93NUMPY "
                       "magic.");
    size_t hlen, start;
    if (body[6] == 1) {
        hlen = (size_t)body[8] | (size_t)body[9] << 8;
        start = 10;
    } else if ((body[6] == 2 || body[6] == 3) && len >= 12) {
        hlen = (size_t)body[8] | (size_t)body[9] << 8 | (size_t)body[10] << 16 |
               (size_t)body[11] << 24;
        start = 12;
    } else {
        return err_set("The .npy format version %d is not supported: send version 1, 2 or 3.",
                       body[6]);
    }
    if (hlen > 65536 || start + hlen > len)
        return err_set("The .npy header is truncated or longer than 64 KiB.");
    char *header = malloc(hlen + 1);
    if (!header)
        return err_set("Out of memory decoding the .npy array.");
    memcpy(header, body + start, hlen);
    header[hlen] = '\0';
    const char *descr = header_field(header, "descr"),
               *fortran = header_field(header, "fortran_order"),
               *shape = header_field(header, "shape");
    int rc = 0;
    if (!descr || !fortran || !shape)
        rc = err_set("The .npy header lacks descr, fortran_order or shape.");
    else if (strncmp(fortran, "False", 5) != 0)
        rc = err_set("Fortran-ordered .npy arrays are not accepted: send C order.");
    else if (parse_dtype(descr, a) == 0)
        rc = parse_shape(shape, max_dim, a);
    else
        rc = -1;
    free(header);
    a->data = body + start + hlen;
    a->data_len = len - start - hlen;
    return rc;
}

int npy_check_data(struct npy_array *a)
{
    size_t count = 1, bytes;
    for (int i = 0; i < a->ndim; i++)
        if (__builtin_mul_overflow(count, (size_t)a->dims[i], &count))
            return err_set("The .npy array is too large.");
    if (__builtin_mul_overflow(count, a->item_size, &bytes))
        return err_set("The .npy array is too large.");
    if (a->data_len != bytes)
        return err_set("The .npy data holds %zu bytes, but its header promises %zu.", a->data_len,
                       bytes);
    a->count = count;
    return 0;
}

double npy_element(const struct npy_array *a, size_t i)
{
    uint8_t b[8];
    const uint8_t *src = a->data + i * a->item_size;
    for (size_t k = 0; k < a->item_size; k++) /* to little-endian */
        b[k] = a->big_endian ? src[a->item_size - 1 - k] : src[k];
    uint64_t u = 0;
    for (size_t k = a->item_size; k-- > 0;)
        u = u << 8 | b[k];
    if (a->kind == 'u')
        return (double)u;
    if (a->kind == 'i') {
        unsigned bits = 8 * (unsigned)a->item_size;
        if (bits < 64 && (u >> (bits - 1)) & 1)
            u |= ~(uint64_t)0 << bits; /* sign-extend */
        return (double)(int64_t)u;
    }
    if (a->item_size == 4) {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    double v;
    memcpy(&v, &u, 8);
    return v;
}

uint8_t *npy_write_f32(const float *values, int64_t rows, int64_t cols, size_t *len)
{
    char header[128];
    int n = snprintf(header, sizeof header,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)rows, (long long)cols);
    size_t total_header = 10 + (size_t)n + 1;
    size_t pad = (64 - total_header % 64) % 64; /* the data starts 64-byte aligned */
    size_t hlen = (size_t)n + pad + 1;
    size_t data = (size_t)(rows * cols) * sizeof(float);
    uint8_t *buf = malloc(10 + hlen + data);
    if (!buf)
        return NULL;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, header, (size_t)n);
    memset(buf + 10 + n, ' ', pad);
    buf[10 + hlen - 1] = '\n';
    memcpy(buf + 10 + hlen, values, data);
    *len = 10 + hlen + data;
    return buf;
}
