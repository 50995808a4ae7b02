/*
 * npy.h - NumPy's .npy format (versions 1 to 3, C order), both ways: a body's header checked and
 * its elements read as doubles whatever their dtype; a float32 [rows, cols] array written. No
 * knowledge of images here: the request decoder (request_decode.c) checks shapes and values.
 */
#ifndef SERVE_NPY_H
#define SERVE_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 8

struct npy_array {
    int64_t dims[NPY_MAX_DIMS];
    int ndim;
    size_t count;        /* elements: the product of dims */
    char kind;           /* 'u', 'i' (integers of 1, 2, 4 or 8 bytes) or 'f' (4 or 8) */
    size_t item_size;
    bool big_endian;
    const uint8_t *data; /* the bytes after the header, inside the parsed body */
    size_t data_len;
};

/* Checks body's header: magic, version, at most 64 KiB holding descr, fortran_order False and
 * a shape of at most NPY_MAX_DIMS dimensions each in 0..max_dim. The caller may then check
 * the shape against what it expects before npy_check_data (whose "too large" would hide a
 * clearer message). -1 with a message (err.h) written for the client who sent the body. */
int npy_parse_header(const uint8_t *body, size_t len, int64_t max_dim, struct npy_array *a);

/* Sets count and checks that the data holds exactly count * item_size bytes. */
int npy_check_data(struct npy_array *a);

/* Element i (row-major) as a double, converted from the array's dtype and byte order. */
double npy_element(const struct npy_array *a, size_t i);

/* values [rows, cols] as a version 1.0 float32 .npy file, the data 64-byte aligned.
 * malloc'd; NULL when out of memory. */
uint8_t *npy_write_f32(const float *values, int64_t rows, int64_t cols, size_t *len);

#endif
