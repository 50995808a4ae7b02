/*
 * report_thumbs.h - misclassified validation images for the report: the first few an
 * evaluation pass gets wrong, kept as small RGB thumbnails (undoing the normalisation) and
 * encoded as PNG with libpng for inline data URIs.
 */
#ifndef TRAIN_REPORT_THUMBS_H
#define TRAIN_REPORT_THUMBS_H

#include <stddef.h>
#include <stdint.h>

#include "data/loader.h"

#define THUMB_MAX 24
#define THUMB_SIZE 48

struct thumb {
    int truth, pred;
    int size; /* width = height <= THUMB_SIZE */
    unsigned char rgb[THUMB_SIZE * THUMB_SIZE * 3];
};

struct thumbs {
    struct thumb items[THUMB_MAX];
    int count;
};

void thumbs_reset(struct thumbs *t);
/* Keeps the images of the batch (s x s, floats normalised with mean/std or bytes, as the
 * loader made them) whose label differs from pred[i]. */
void thumbs_note(struct thumbs *t, const struct batch *b, const int64_t *pred, int s,
                 const float mean[3], const float std[3]);
/* *png (malloc'd, the caller frees) <- the thumbnail as a PNG file. */
int thumb_png(const struct thumb *t, unsigned char **png, size_t *len);

#endif
