/*
 * dataset_formats.h - inside the data module: the channel formats dataset_open() chooses
 * between (one reader per file) and the small helpers they share (dataset.c). Not for code
 * outside src/data/: the public interface is dataset.h.
 *
 *   dataset_folders.c   class folders (walked with common/dir_walk.c)
 *   dataset_lst.c       .lst manifests
 *   dataset_cifar.c     CIFAR-10/100 batches, binary or python (pickles: cifar_pickle.c)
 *   dataset_recordio.c  RecordIO (.rec) files, indexed by a scan (data/recordio.h)
 *
 * Each open_* fills a zeroed `struct dataset` whose `dir` is set; classes/num_classes are the
 * train channel's (NULL when discovering them), as in dataset_open. On failure the caller
 * frees the dataset.
 */
#ifndef DATA_DATASET_FORMATS_H
#define DATA_DATASET_FORMATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"

#define DATASET_CIFAR_PIXELS 3072 /* 32 x 32 x 3 */

/* A growable list of malloc'd names. */
struct dataset_names {
    char **v;
    size_t n, cap;
};
int dataset_names_push(struct dataset_names *s, const char *str);
void dataset_names_free(struct dataset_names *s);

/* Sorted names of the visible entries of dir; dirs_only keeps folders (links followed). */
int dataset_list_dir(const char *dir, bool dirs_only, struct dataset_names *out);
/* Appends an item (takes `path`, which may be NULL, even on failure); *cap: items allocated. */
int dataset_push_item(struct dataset *d, size_t *cap, char *path, int32_t label, uint32_t record);
/* Class names: copies of names[0..n-1], or the label indices themselves ("0", "1"...). */
int dataset_set_class_names(struct dataset *d, char *const *names, int n);
int dataset_set_index_class_names(struct dataset *d, int n);

/* dataset_folders.c */
int dataset_open_class_folders(struct dataset *d, char *const *classes, int num_classes);
/* dataset_lst.c: the first *.lst file directly in dir, or "" */
int dataset_find_lst(const char *dir, char *out, size_t len);
int dataset_open_lst(struct dataset *d, const char *lst_path, char *const *classes,
                     int num_classes);
/* dataset_cifar.c: *found says whether the channel holds CIFAR batches at all. */
int dataset_try_cifar(struct dataset *d, bool *found, char *const *classes, int num_classes);
/* dataset_recordio.c */
int dataset_find_rec_files(const char *dir, struct dataset_names *out);
int dataset_open_recordio(struct dataset *d, struct dataset_names *files, char *const *classes,
                          int num_classes);
/* The encoded image of RecordIO item i (its record read again, the header stripped). */
int dataset_read_rec_image(const struct dataset *d, size_t i, char **data, size_t *len);

#endif
