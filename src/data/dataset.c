/*
 * dataset.c - a channel's index: choosing its format (one reader per format: dataset_folders.c,
 * dataset_lst.c, dataset_cifar.c, dataset_recordio.c; see dataset_formats.h), the helpers they
 * share, the validation split, and reading one item back. Every input is bounded: file sizes,
 * item and class counts, line lengths, label ranges, path lengths (a path that does not fit is
 * an error naming it, never a shortened name). Listing and indexing give up at a stop signal.
 */
#define _DEFAULT_SOURCE
#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/rng.h"
#include "common/fileio.h"
#include "common/opt_ml.h"
#include "data/dataset_formats.h"

#define MAX_ITEMS (50u * 1000 * 1000)

/* ---- helpers of the readers (dataset_formats.h) ---- */

int dataset_names_push(struct dataset_names *s, const char *str)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **grown = realloc(s->v, cap * sizeof *grown);
        if (!grown)
            return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory listing files");
        s->v = grown;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(str)))
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory listing files");
    s->n++;
    return 0;
}

void dataset_names_free(struct dataset_names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dataset_push_item(struct dataset *d, size_t *cap, char *path, int32_t label,
                      uint32_t record)
{
    if (d->count >= MAX_ITEMS) {
        free(path);
        return err_set("%s holds more than %u images", d->dir, MAX_ITEMS);
    }
    if (d->count == *cap) {
        size_t n = *cap ? *cap * 2 : 1024;
        struct dataset_item *grown = realloc(d->items, n * sizeof *grown);
        if (!grown) {
            free(path);
            return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory indexing %s", d->dir);
        }
        d->items = grown;
        *cap = n;
    }
    d->items[d->count++] = (struct dataset_item){path, label, record};
    return 0;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Sorted names of the visible entries of dir; dirs_only keeps subdirectories. */
int dataset_list_dir(const char *dir, bool dirs_only, struct dataset_names *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return err_set("cannot read directory %s: %s", dir, strerror(errno));
    struct dirent *e;
    char path[4096];
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if ((rc = opt_ml_join(path, sizeof path, dir, e->d_name)) < 0)
            break;
        if (dirs_only != is_dir(path))
            continue;
        rc = dataset_names_push(out, e->d_name);
    }
    closedir(d);
    if (rc == 0 && out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return rc;
}

int dataset_set_class_names(struct dataset *d, char *const *names, int n)
{
    d->class_names = calloc((size_t)n + 1, sizeof *d->class_names);
    if (!d->class_names)
        return err_set("out of memory");
    for (int i = 0; i < n; i++)
        if (!(d->class_names[i] = strdup(names[i])))
            return err_set("out of memory");
    d->num_classes = n;
    return 0;
}

/* Class names for labels 0..n-1 that have none (.lst, RecordIO): the index itself. */
int dataset_set_index_class_names(struct dataset *d, int n)
{
    char **names = calloc((size_t)n + 1, sizeof *names);
    int rc = names ? 0 : err_set("out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        names[i] = malloc(16);
        if (names[i])
            snprintf(names[i], 16, "%d", i);
        else
            rc = err_set("out of memory");
    }
    if (rc == 0)
        rc = dataset_set_class_names(d, names, n);
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int dataset_open(const char *dir, const char *lst_dir, char *const *classes, int num_classes,
                 struct dataset *out)
{
    memset(out, 0, sizeof *out);
    if (!is_dir(dir))
        return err_set("channel directory %s does not exist", dir);
    if (opt_ml_copy(out->dir, sizeof out->dir, dir) < 0)
        return -1;
    char lst[4096];
    struct dataset_names recs = {0};
    int rc = dataset_find_rec_files(dir, &recs);
    if (rc == 0)
        rc = dataset_find_lst(lst_dir ? lst_dir : dir, lst, sizeof lst);
    bool cifar = false;
    if (rc == 0 && recs.n)
        rc = dataset_open_recordio(out, &recs, classes, num_classes);
    else if (rc == 0 && lst[0])
        rc = dataset_open_lst(out, lst, classes, num_classes);
    else if (rc == 0 && (rc = dataset_try_cifar(out, &cifar, classes, num_classes)) == 0 && !cifar)
        rc = dataset_open_class_folders(out, classes, num_classes);
    dataset_names_free(&recs);
    if (rc == 0 && out->count == 0)
        rc = err_set("channel %s has no images (looked for .jpg/.jpeg/.png under %d class "
                     "folders, a .lst manifest, CIFAR batches and .rec RecordIO files)%s%.256s%s",
                     dir, out->num_classes,
                     out->ignored_images ? "; image files in formats this image does not read "
                                           "(BMP, GIF, TIFF, WebP, PPM/PGM), such as "
                                         : "",
                     out->ignored_images ? out->ignored_example : "",
                     out->ignored_images ? ", are there: convert them to JPEG or PNG" : "");
    if (rc < 0)
        dataset_free(out);
    return rc;
}

void dataset_free(struct dataset *d)
{
    for (size_t i = 0; d->items && i < d->count; i++)
        free(d->items[i].path);
    free(d->items);
    for (int i = 0; d->class_names && i < d->num_classes; i++)
        free(d->class_names[i]);
    free(d->class_names);
    if (!d->borrowed_storage) {
        free(d->pixels);
        for (int i = 0; d->rec_files && i < d->rec_file_count; i++)
            free(d->rec_files[i]);
        free(d->rec_files);
        free(d->rec_offset);
        free(d->rec_file);
    }
    memset(d, 0, sizeof *d);
}

/* A copy of src's header, with no items and no pixels. */
static int clone_empty(const struct dataset *src, struct dataset *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->source = src->source;
    memcpy(dst->format, src->format, sizeof dst->format);
    memcpy(dst->dir, src->dir, sizeof dst->dir);
    return dataset_set_class_names(dst, src->class_names, src->num_classes);
}

int dataset_split(struct dataset *src, double fraction, uint64_t seed, struct dataset *train,
                  struct dataset *val)
{
    size_t n = src->count, held = (size_t)(fraction * (double)n + 0.5);
    if (held < 1 || held >= n)
        return err_set("cannot hold out %.0f%% of %zu images for validation", fraction * 100, n);
    size_t *order = malloc(n * sizeof *order);
    if (!order)
        return err_set("out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    uint64_t s = seed ^ 0x5eed5eedull;
    rng_shuffle(order, n, &s);
    int rc = clone_empty(src, train);
    if (rc == 0)
        rc = clone_empty(src, val);
    size_t cap_t = 0, cap_v = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const struct dataset_item *it = &src->items[order[k]];
        char *path = it->path ? strdup(it->path) : NULL;
        if (it->path && !path)
            rc = err_set("out of memory");
        else if (k < n - held)
            rc = dataset_push_item(train, &cap_t, path, it->label, it->record);
        else
            rc = dataset_push_item(val, &cap_v, path, it->label, it->record);
    }
    free(order);
    if (rc < 0) {
        dataset_free(train);
        dataset_free(val);
        return rc;
    }
    /* The pixels move rather than being copied twice (150 MB for CIFAR-10). */
    train->pixels = val->pixels = src->pixels;
    train->records = val->records = src->records;
    train->rec_files = val->rec_files = src->rec_files;
    train->rec_file_count = val->rec_file_count = src->rec_file_count;
    train->rec_offset = val->rec_offset = src->rec_offset;
    train->rec_file = val->rec_file = src->rec_file;
    val->borrowed_storage = true;
    src->pixels = NULL;
    src->rec_files = NULL;
    src->rec_file_count = 0;
    src->rec_offset = NULL;
    src->rec_file = NULL;
    return 0;
}

int dataset_read_file(const struct dataset *d, size_t i, char **data, size_t *len)
{
    if (d->source == DATASET_RECORDIO)
        return dataset_read_rec_image(d, i, data, len);
    if (d->source != DATASET_FILES)
        return err_set("dataset_read_file: %s holds no files", d->dir);
    return fileio_read_all(d->items[i].path, DATASET_MAX_FILE_BYTES, data, len);
}

int dataset_load_image(const struct dataset *d, size_t i, int min_side, struct image *out)
{
    const struct dataset_item *it = &d->items[i];
    memset(out, 0, sizeof *out); /* budget included: image_free gives back what it says */
    if (d->source == DATASET_CIFAR) {
        out->width = out->height = 32;
        out->pixels = malloc(DATASET_CIFAR_PIXELS);
        if (!out->pixels)
            return err_set("out of memory");
        const uint8_t *planes = d->pixels + (size_t)it->record * DATASET_CIFAR_PIXELS;
        for (int p = 0; p < 1024; p++)
            for (int c = 0; c < 3; c++)
                out->pixels[p * 3 + c] = planes[c * 1024 + p];
        return 0;
    }
    char *data;
    size_t len;
    if (dataset_read_file(d, i, &data, &len) < 0)
        return -1;
    int rc = image_decode((const uint8_t *)data, len, min_side, out);
    free(data);
    if (rc < 0 && d->source == DATASET_RECORDIO)
        return err_prefix("%s record %u: ", d->rec_files[d->rec_file[it->record]], it->record);
    if (rc < 0)
        return err_prefix("%s: ", it->path);
    return 0;
}

