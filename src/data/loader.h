/*
 * loader.h - the threaded batch loader: worker threads read, decode and transform images
 * into ready float batches ahead of the training step, through a bounded ring of slots.
 *
 * Life of one epoch:
 *     struct loader *l;
 *     loader_start(&l, dataset, &config, epoch, first_batch);
 *     struct batch *b;
 *     while (loader_next(l, &b) > 0) { ...use b->images [n,3,S,S], b->labels [n]...;
 *                                       loader_release(l, b); }
 *     struct loader_stats stats = {0};
 *     loader_stop(l, &stats); // what was delivered and skipped, added to stats
 *
 * Order and augmentation depend only on (seed, epoch, sample index): the same whatever the
 * thread count, timing or pixel format, so a resumed job sees the same batches. With
 * world_size > 1 each rank gets a disjoint shard, padded as DistributedSampler pads it.
 * Memory is bounded by
 * (workers + 2) batches whatever the dataset size. Images that cannot be read or decoded are
 * skipped (the batch is then smaller) and counted.
 */
#ifndef DATA_LOADER_H
#define DATA_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "image/transform.h"

/* What a batch's images are made into:
 *   LOADER_FLOAT_CHW  normalised floats [n,3,S,S], ready for the model: the workers do all of
 *                     the preprocessing (the CPU's way: it spreads the work over the threads);
 *   LOADER_UINT8_HWC  the transformed bytes [n,S,S,3] (crop, resize, flip and jitter done),
 *                     a quarter of the size: normalised on the training device, after a copy
 *                     of a quarter of the bytes (a GPU's way). */
enum loader_pixels { LOADER_FLOAT_CHW = 0, LOADER_UINT8_HWC };

/* Where the slots' image and label memory comes from (NULL: malloc and free). The training
 * feed gives page-locked memory for a GPU (tc_host_alloc), so that copies from it overlap. */
struct loader_memory {
    void *(*alloc)(size_t bytes, void *ctx);
    void (*release)(void *p, void *ctx);
    void *ctx;
};

struct loader_config {
    int batch_size;
    int image_size;     /* output side S */
    int resize_size;    /* shorter side before the crop: evaluation, and augmentation_type's
                           random crops (augment=true's RandomResizedCrop does not use it) */
    enum image_resize_mode resize_mode; /* crop, squash or auto (image/transform.h): the same */
    bool train;         /* shuffle, and augment */
    enum image_augment augment;
    double min_crop_scale;
    float mean[3], std[3];
    enum loader_pixels pixels;
    struct loader_memory memory;
    int threads;        /* >= 1 */
    uint64_t seed;
    int rank, world_size;
};

struct batch {
    float *images;   /* LOADER_FLOAT_CHW: [n,3,S,S], owned by the loader; else NULL */
    uint8_t *pixels; /* LOADER_UINT8_HWC: [n,S,S,3], owned by the loader; else NULL */
    int64_t *labels; /* [n] */
    int n;           /* may be < batch_size: last batch, skipped images */
    size_t index;    /* batch number within the epoch */
};

struct loader_stats {
    size_t images;  /* delivered */
    size_t skipped; /* unreadable or undecodable */
    char first_bad[3][512]; /* messages for the first few skipped images */
};

struct loader;

/* Batches this rank will see in one epoch. */
size_t loader_batch_count(size_t dataset_size, const struct loader_config *c);
/* Starts the workers at batch `first_batch` (0, or where an interrupted epoch stopped). */
int loader_start(struct loader **out, const struct dataset *d, const struct loader_config *c,
                 int epoch, size_t first_batch);
/* 1: *out is the next batch; 0: the epoch is over. */
int loader_next(struct loader *l, struct batch **out);
/* Gives a batch's slot back. A consumer may hold a few batches at once (the training feed
 * holds two: one computing, one being copied), and releases them in the order received. */
void loader_release(struct loader *l, struct batch *b);
/* Stops and joins the workers (also mid-epoch); adds this epoch's counts to *stats. */
void loader_stop(struct loader *l, struct loader_stats *stats);

#endif
