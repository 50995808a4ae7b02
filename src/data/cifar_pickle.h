/*
 * cifar_pickle.h - the CIFAR-10/100 "python version" batches (what
 * torchvision.datasets.CIFAR10/100(download=True) unpacks: cifar-10-batches-py/data_batch_1..5,
 * test_batch, batches.meta; cifar-100-python/train, test, meta). Each is a pickle of a dict:
 * "data" a numpy uint8 array [N, 3072] (planar R, G, B rows, as the binary batches), the labels
 * a list of N ints ("labels", or "fine_labels" for CIFAR-100), the meta file's class names a
 * list of strings. Read with a small pickle machine of our own: protocols 0-5's binary opcodes,
 * no code run, only the values named here kept (ndarray and dtype are recognised by their
 * global names, nothing is imported); bounded in values, depth and sizes.
 */
#ifndef DATA_CIFAR_PICKLE_H
#define DATA_CIFAR_PICKLE_H

#include <stddef.h>
#include <stdint.h>

struct cifar_pickle_batch {
    const uint8_t *pixels; /* records x 3072 bytes: into the caller's buffer, or into owned */
    size_t records;
    int32_t *labels;       /* malloc'd, records of them */
    uint8_t *owned;        /* the pixels when the pickle held them as Python 3's protocol-2
                              bytes (_codecs.encode(text, "latin1")), decoded here; or NULL */
};

/* Does buf look like a pickle (protocol 2 or later)? */
int cifar_pickle_sniff(const uint8_t *buf, size_t len);

/* A batch: buf holds the whole file; label_key "labels" or "fine_labels". 0, or -1 with an
 * error naming what is wrong (err.h). The pixels point into buf (or into out->owned): keep
 * buf until the batch is freed. */
int cifar_pickle_batch(const uint8_t *buf, size_t len, const char *label_key,
                       struct cifar_pickle_batch *out);
void cifar_pickle_batch_free(struct cifar_pickle_batch *b);

/* The meta file's class names under key ("label_names", "fine_label_names"): *names is a
 * malloc'd array of *n malloc'd strings. */
int cifar_pickle_names(const uint8_t *buf, size_t len, const char *key, char ***names, int *n);

#endif
