/*
 * dataset.h - the index of one channel's images: paths (or in-memory pixels, or records) and
 * labels, and reading one image back.
 *
 * Formats, detected per channel directory in this order:
 *   - RecordIO: every *.rec file in the channel (im2rec's output, recordio.h), indexed by a
 *     scan; a channel with .rec files is read as RecordIO even when im2rec's .lst is beside
 *     them;
 *   - .lst manifests (SageMaker's image-classification format): lines
 *     "index<TAB>label<TAB>relative/path", in the channel itself or in a "<channel>_lst"
 *     channel, with the images under the channel directory;
 *   - CIFAR-10/100 binary batches (data_batch_*.bin / test_batch.bin, or train.bin /
 *     test.bin), held in memory;
 *   - class folders: <dir>/<class>/.../<name>.jpg|jpeg|png; classes are the folder names in sorted
 *     order (torchvision's ImageFolder rule), e.g. 001.Affenpinscher; walked with
 *     common/dir_walk.h (links to folders inside a class folder are not followed).
 * Listing and indexing give up at a stop signal (reason stopped, common/error.h). Knows
 * nothing of libtorch: dataset_load_image decodes one item (the loader calls it from its
 * threads).
 */
#ifndef DATA_DATASET_H
#define DATA_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/decode.h"

#define DATASET_MAX_CLASSES 100000
#define DATASET_MAX_FILE_BYTES (64u << 20) /* one image file */

enum dataset_source { DATASET_FILES, DATASET_CIFAR, DATASET_RECORDIO };

struct dataset_item {
    char *path;    /* DATASET_FILES: the image file; NULL for CIFAR and RecordIO */
    int32_t label; /* class index */
    uint32_t record; /* DATASET_CIFAR: record index into pixels; RECORDIO: into rec_* */
};

struct dataset {
    enum dataset_source source;
    char format[48]; /* "class folders", ".lst manifest", "CIFAR-10 binary"... */
    char dir[1024];
    struct dataset_item *items;
    size_t count;
    char **class_names; /* num_classes names, index order */
    int num_classes;
    uint8_t *pixels; /* CIFAR: records x 3072 bytes, planar R,G,B 32x32 */
    size_t records;
    char **rec_files;      /* RECORDIO: the channel's .rec files */
    int rec_file_count;
    uint64_t *rec_offset;  /* RECORDIO: [records] where each record starts */
    uint16_t *rec_file;    /* RECORDIO: [records] in which file */
    bool borrowed_storage; /* a split's validation half reads its train half's CIFAR pixels
                              and RecordIO tables: freed with the train half */
    size_t ignored_images;  /* class folders: files torchvision's ImageFolder reads but this
                               image does not (.bmp .gif .tif .tiff .webp .ppm .pgm) */
    char ignored_example[256]; /* the first of them */
};

/* Indexes `dir`. lst_dir: a separate channel holding the .lst file (or NULL).
 * classes/num_classes: the train channel's classes when indexing validation or test, so that
 * labels agree (a folder unknown to train is an error); NULL to discover them. */
int dataset_open(const char *dir, const char *lst_dir, char *const *classes, int num_classes,
                 struct dataset *out);
void dataset_free(struct dataset *d);

/* Splits off a deterministic, seed-dependent `fraction` of src as validation. On success
 * train takes src's CIFAR pixels and RecordIO tables over (src keeps none) and val borrows
 * them from train, so train must be freed last or together with val; src is still to be
 * freed. */
int dataset_split(struct dataset *src, double fraction, uint64_t seed, struct dataset *train,
                  struct dataset *val);

/* The bytes of item i's file (DATASET_FILES only), malloc'd for the caller. */
int dataset_read_file(const struct dataset *d, size_t i, char **data, size_t *len);
/* Reads and decodes item i into RGB (min_side: see image_decode). */
int dataset_load_image(const struct dataset *d, size_t i, int min_side, struct image *out);

#endif
