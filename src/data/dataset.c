/*
 * dataset.c - indexing a channel: class folders (walked with common/dir_walk.c), .lst
 * manifests, CIFAR binaries, RecordIO files (see dataset.h). Every input is bounded: file
 * sizes, item and class counts, line lengths, label ranges, path lengths (a path that does not
 * fit is an error naming it, never a shortened name). Listing and indexing give up at a stop
 * signal (common/stop_flag.h), so that a job stopped during set-up ends promptly.
 *
 * Over 500 lines, kept whole for now: the natural seam is one file per format (they share only
 * the item and name lists below), but tests/fuzz/CMakeLists.txt builds this file by name, so the
 * split waits for that list to name the new files too.
 */
#define _DEFAULT_SOURCE
#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/dir_walk.h"
#include "common/error.h"
#include "common/rng.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/opt_ml.h"
#include "common/stop_flag.h"
#include "data/recordio.h"

#define CIFAR_PIXELS 3072
#define MAX_ITEMS (50u * 1000 * 1000)

/* ---- small growable lists ---- */

struct strings {
    char **v;
    size_t n, cap;
};

static int strings_push(struct strings *s, const char *str)
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

static void strings_free(struct strings *s)
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

static int push_item(struct dataset *d, size_t *cap, char *path, int32_t label, uint32_t record)
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

static bool has_image_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                   strcasecmp(dot, ".png") == 0);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Sorted names of the visible entries of dir; dirs_only keeps subdirectories. */
static int list_dir(const char *dir, bool dirs_only, struct strings *out)
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
        rc = strings_push(out, e->d_name);
    }
    closedir(d);
    if (rc == 0 && out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return rc;
}

struct class_walk {
    struct dataset *d;
    size_t *cap;
    int32_t label;
};

/* dir_walk's visitor for one class folder: every image file becomes an item of the class. The
 * walk (common/dir_walk.h) goes in sorted order, a folder's own images before its
 * subfolders', does not follow links to folders below the class folder, keeps to its depth and
 * entry budgets and gives up at a stop signal. */
static int visit_image(void *arg, const char *path, const char *name, const struct stat *st,
                       int depth)
{
    (void)depth;
    struct class_walk *w = arg;
    if (!S_ISREG(st->st_mode) || !has_image_extension(name))
        return 0;
    char *copy = strdup(path);
    if (!copy)
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory listing %s", path);
    return push_item(w->d, w->cap, copy, w->label, 0);
}

static int set_class_names(struct dataset *d, char *const *names, int n)
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

static int find_class(char *const *classes, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(classes[i], name) == 0)
            return i;
    return -1;
}

static int open_class_folders(struct dataset *d, char *const *classes, int num_classes)
{
    struct strings folders = {0};
    size_t cap = 0;
    int rc = list_dir(d->dir, true, &folders);
    if (rc == 0 && folders.n > DATASET_MAX_CLASSES)
        rc = err_set("%s has %zu class folders, more than %d", d->dir, folders.n, DATASET_MAX_CLASSES);
    if (rc == 0)
        rc = classes ? set_class_names(d, classes, num_classes)
                     : set_class_names(d, folders.v, (int)folders.n);
    char path[4096];
    for (size_t i = 0; rc == 0 && i < folders.n; i++) {
        int label = find_class(d->class_names, d->num_classes, folders.v[i]);
        if (label < 0) {
            rc = err_set("%s has a class folder \"%s\" that the train channel does not have",
                         d->dir, folders.v[i]);
            break;
        }
        rc = opt_ml_join(path, sizeof path, d->dir, folders.v[i]);
        struct class_walk walk = {d, &cap, label};
        if (rc == 0)
            rc = dir_walk(path, visit_image, &walk) < 0 ? -1 : 0;
    }
    snprintf(d->format, sizeof d->format, "class folders");
    strings_free(&folders);
    return rc;
}

/* The first *.lst file directly in dir, or "" */
static int find_lst(const char *dir, char *out, size_t len)
{
    struct strings files = {0};
    out[0] = '\0';
    if (list_dir(dir, false, &files) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < files.n; i++) {
        const char *dot = strrchr(files.v[i], '.');
        if (dot && strcasecmp(dot, ".lst") == 0) {
            rc = opt_ml_join(out, len, dir, files.v[i]);
            break;
        }
    }
    strings_free(&files);
    return rc;
}

static int set_index_class_names(struct dataset *d, int n);

static int open_lst(struct dataset *d, const char *lst_path, char *const *classes, int num_classes)
{
    char *text;
    size_t len, cap = 0;
    if (fileio_read_all(lst_path, 1u << 30, &text, &len) < 0)
        return -1;
    int rc = 0, max_label = -1;
    size_t line_no = 0;
    for (char *line = text, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line_no++;
        if (line_no % 4096 == 0 && stop_flag_raised()) {
            rc = err_set_reason(ERR_REASON_STOPPED, "stopped by a signal while reading %s",
                                lst_path);
            break;
        }
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n == 0)
            continue;
        char *f1 = strchr(line, '\t');
        char *f2 = f1 ? strchr(f1 + 1, '\t') : NULL;
        if (!f2) {
            rc = err_set("%s line %zu: expected index<TAB>label<TAB>path", lst_path, line_no);
            break;
        }
        *f2++ = '\0';
        char *end;
        double label = strtod(f1 + 1, &end); /* "3" or "3.000000" */
        /* The range first: casting 1e300 or NaN to int is undefined behaviour. */
        if (end == f1 + 1 || !(label >= 0 && label < DATASET_MAX_CLASSES) || label != (int)label) {
            rc = err_set("%s line %zu: label \"%s\" is not a class index", lst_path, line_no, f1 + 1);
            break;
        }
        if (f2[0] == '/' || strstr(f2, "..")) {
            rc = err_set("%s line %zu: path \"%s\" must stay inside the channel", lst_path, line_no, f2);
            break;
        }
        char path[4096];
        if (opt_ml_join(path, sizeof path, d->dir, f2) < 0) {
            rc = err_prefix("%s line %zu: ", lst_path, line_no);
            break;
        }
        char *copy = strdup(path);
        rc = copy ? push_item(d, &cap, copy, (int32_t)label, 0)
                  : err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory");
        if ((int)label > max_label)
            max_label = (int)label;
    }
    free(text);
    if (rc < 0)
        return rc;
    if (classes) {
        if (max_label >= num_classes)
            return err_set("%s uses label %d but the train channel has %d classes", lst_path,
                           max_label, num_classes);
        rc = set_class_names(d, classes, num_classes);
    } else {
        /* .lst files carry no names: classes are called by their index. */
        rc = set_index_class_names(d, max_label + 1);
    }
    snprintf(d->format, sizeof d->format, ".lst manifest");
    return rc;
}

/* Class names for labels 0..n-1 that have none (.lst, RecordIO): the index itself. */
static int set_index_class_names(struct dataset *d, int n)
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
        rc = set_class_names(d, names, n);
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Every record of one .rec file, appended. A file that ends inside its last record keeps the
 * records before it (with a warning); any other damage refuses the channel. */
static int index_rec_file(struct dataset *d, const char *path, int file_index, size_t *cap,
                          size_t *rec_cap, int *max_label)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set("cannot open %s: %s", path, strerror(errno));
    uint64_t offset = 0, next = 0;
    size_t record = 0;
    int rc = 0;
    for (;; record++, offset = next) {
        if (record % 4096 == 0 && stop_flag_raised()) {
            rc = err_set_reason(ERR_REASON_STOPPED, "stopped by a signal while indexing %s", path);
            break;
        }
        uint8_t *data;
        uint32_t len, image_at, labels;
        bool truncated;
        int got = recordio_read(f, offset, &data, &len, &next, &truncated);
        if (got == 0)
            break;
        if (got < 0 && truncated && record > 0) {
            log_warn("%s: %s; the %zu records before it are used", path, err_msg(), record);
            break;
        }
        if (got < 0) {
            rc = err_prefix("%s record %zu: ", path, record);
            break;
        }
        double label;
        rc = recordio_parse(data, len, &label, &image_at, &labels);
        free(data);
        if (rc < 0) {
            rc = err_prefix("%s record %zu: ", path, record);
            break;
        }
        if (!(label >= 0 && label < DATASET_MAX_CLASSES) || label != (int)label) {
            rc = err_set("%s record %zu: label %g is not a class index", path, record, label);
            break;
        }
        if (d->records == *rec_cap) {
            size_t n = *rec_cap ? *rec_cap * 2 : 1024;
            uint64_t *o = realloc(d->rec_offset, n * sizeof *o);
            if (o)
                d->rec_offset = o;
            uint16_t *fi = o ? realloc(d->rec_file, n * sizeof *fi) : NULL;
            if (!fi) {
                rc = err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory indexing %s", path);
                break;
            }
            d->rec_file = fi;
            *rec_cap = n;
        }
        d->rec_offset[d->records] = offset;
        d->rec_file[d->records] = (uint16_t)file_index;
        if ((rc = push_item(d, cap, NULL, (int32_t)label, (uint32_t)d->records)) < 0)
            break;
        d->records++;
        if ((int)label > *max_label)
            *max_label = (int)label;
    }
    fclose(f);
    return rc;
}

static int open_recordio(struct dataset *d, struct strings *files, char *const *classes,
                         int num_classes)
{
    if (files->n > 1000)
        return err_set("%s holds %zu .rec files, more than 1000", d->dir, files->n);
    d->source = DATASET_RECORDIO;
    snprintf(d->format, sizeof d->format, "RecordIO");
    d->rec_files = calloc(files->n, sizeof *d->rec_files);
    if (!d->rec_files)
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory");
    size_t cap = 0, rec_cap = 0;
    int max_label = -1, rc = 0;
    char path[4096];
    for (size_t i = 0; rc == 0 && i < files->n; i++) {
        if (opt_ml_join(path, sizeof path, d->dir, files->v[i]) < 0)
            return -1;
        if (!(d->rec_files[i] = strdup(path)))
            return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory");
        d->rec_file_count = (int)i + 1;
        rc = index_rec_file(d, path, (int)i, &cap, &rec_cap, &max_label);
    }
    if (rc < 0)
        return rc;
    if (classes) {
        if (max_label >= num_classes)
            return err_set("%s: RecordIO label %d, but the train channel has %d classes", d->dir,
                           max_label, num_classes);
        return set_class_names(d, classes, num_classes);
    }
    return set_index_class_names(d, max_label + 1);
}

/* Every *.rec file directly in dir, sorted. */
static int find_rec_files(const char *dir, struct strings *out)
{
    struct strings files = {0};
    if (list_dir(dir, false, &files) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < files.n; i++) {
        const char *dot = strrchr(files.v[i], '.');
        if (dot && strcasecmp(dot, ".rec") == 0)
            rc = strings_push(out, files.v[i]);
    }
    strings_free(&files);
    return rc;
}

/* CIFAR binaries: 1 label byte (CIFAR-10) or coarse+fine (CIFAR-100), then 3072 pixels. */
static int open_cifar(struct dataset *d, struct strings *files, int label_bytes,
                      const char *names_file, int default_classes, char *const *classes,
                      int num_classes)
{
    size_t record = (size_t)label_bytes + CIFAR_PIXELS, cap = 0;
    size_t total = 0;
    char path[4096];
    for (size_t i = 0; i < files->n; i++) {
        struct stat st;
        if (opt_ml_join(path, sizeof path, d->dir, files->v[i]) < 0)
            return -1;
        if (stat(path, &st) != 0 || st.st_size % (off_t)record != 0)
            return err_set("%s is not a CIFAR binary batch (size not a multiple of %zu)", path, record);
        total += (size_t)st.st_size / record;
    }
    if (total > 10u * 1000 * 1000)
        return err_set("%s: too many CIFAR records", d->dir);
    d->pixels = malloc(total * CIFAR_PIXELS + 1);
    if (!d->pixels)
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory loading CIFAR from %s",
                              d->dir);
    for (size_t i = 0; i < files->n; i++) {
        char *data;
        size_t len;
        if (opt_ml_join(path, sizeof path, d->dir, files->v[i]) < 0 ||
            fileio_read_all(path, 1u << 30, &data, &len) < 0)
            return -1;
        for (size_t r = 0; r < len / record && d->records < total; r++) {
            const uint8_t *rec = (const uint8_t *)data + r * record;
            int label = rec[label_bytes - 1]; /* CIFAR-100: the fine label */
            int limit = classes ? num_classes : default_classes;
            if (label >= limit) {
                free(data);
                return err_set("%s record %zu has label %d; %s has %d classes", path, r, label,
                               classes ? "the train channel" : d->format[0] ? d->format : "CIFAR",
                               limit);
            }
            memcpy(d->pixels + d->records * CIFAR_PIXELS, rec + label_bytes, CIFAR_PIXELS);
            if (push_item(d, &cap, NULL, label, (uint32_t)d->records) < 0) {
                free(data);
                return -1;
            }
            d->records++;
        }
        free(data);
    }
    d->source = DATASET_CIFAR;
    snprintf(d->format, sizeof d->format, "CIFAR-%d binary", default_classes);
    if (classes)
        return set_class_names(d, classes, num_classes);
    /* Class names from batches.meta.txt / fine_label_names.txt when present. */
    struct strings names = {0};
    char *text = NULL;
    size_t len;
    if (opt_ml_join(path, sizeof path, d->dir, names_file) == 0 &&
        fileio_read_all(path, 1 << 20, &text, &len) == 0) {
        for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n"))
            if (*line && strings_push(&names, line) < 0)
                break;
    }
    free(text);
    if ((int)names.n != default_classes) {
        strings_free(&names);
        for (int i = 0; i < default_classes; i++) {
            char n[16];
            snprintf(n, sizeof n, "%d", i);
            strings_push(&names, n);
        }
    }
    int rc = set_class_names(d, names.v, (int)names.n);
    strings_free(&names);
    return rc;
}

static int try_cifar(struct dataset *d, bool *found, char *const *classes, int num_classes)
{
    struct strings all = {0}, c10 = {0}, c100 = {0};
    *found = false;
    if (list_dir(d->dir, false, &all) < 0)
        return -1;
    for (size_t i = 0; i < all.n; i++) {
        const char *n = all.v[i];
        if ((strncmp(n, "data_batch_", 11) == 0 && strstr(n, ".bin")) || strcmp(n, "test_batch.bin") == 0)
            strings_push(&c10, n);
        if (strcmp(n, "train.bin") == 0 || strcmp(n, "test.bin") == 0)
            strings_push(&c100, n);
    }
    /* A whole CIFAR download holds the train and the test batches: a channel with both trains
     * on the train batches alone; test_batch.bin is used when it is all there is. */
    if (c10.n > 1)
        for (size_t i = 0; i < c10.n; i++)
            if (strcmp(c10.v[i], "test_batch.bin") == 0) {
                free(c10.v[i]);
                c10.v[i] = c10.v[--c10.n];
                break;
            }
    if (c100.n > 1)
        for (size_t i = 0; i < c100.n; i++)
            if (strcmp(c100.v[i], "test.bin") == 0) {
                free(c100.v[i]);
                c100.v[i] = c100.v[--c100.n];
                break;
            }
    int rc = 0;
    if (c10.n) {
        *found = true;
        rc = open_cifar(d, &c10, 1, "batches.meta.txt", 10, classes, num_classes);
    } else if (c100.n) {
        *found = true;
        rc = open_cifar(d, &c100, 2, "fine_label_names.txt", 100, classes, num_classes);
    }
    strings_free(&all);
    strings_free(&c10);
    strings_free(&c100);
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
    struct strings recs = {0};
    int rc = find_rec_files(dir, &recs);
    if (rc == 0)
        rc = find_lst(lst_dir ? lst_dir : dir, lst, sizeof lst);
    bool cifar = false;
    if (rc == 0 && recs.n)
        rc = open_recordio(out, &recs, classes, num_classes);
    else if (rc == 0 && lst[0])
        rc = open_lst(out, lst, classes, num_classes);
    else if (rc == 0 && (rc = try_cifar(out, &cifar, classes, num_classes)) == 0 && !cifar)
        rc = open_class_folders(out, classes, num_classes);
    strings_free(&recs);
    if (rc == 0 && out->count == 0)
        rc = err_set("channel %s has no images (looked for .jpg/.jpeg/.png under %d class "
                     "folders, a .lst manifest, CIFAR binary batches and .rec RecordIO files)",
                     dir, out->num_classes);
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
    return set_class_names(dst, src->class_names, src->num_classes);
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
            rc = push_item(train, &cap_t, path, it->label, it->record);
        else
            rc = push_item(val, &cap_v, path, it->label, it->record);
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

/* The encoded image of RecordIO item i: its record read again, the header stripped. */
static int read_rec_image(const struct dataset *d, size_t i, char **data, size_t *len)
{
    uint32_t r = d->items[i].record;
    const char *path = d->rec_files[d->rec_file[r]];
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set("cannot open %s: %s", path, strerror(errno));
    uint8_t *rec;
    uint32_t n, image_at, labels;
    uint64_t next;
    bool truncated;
    double label;
    int rc = recordio_read(f, d->rec_offset[r], &rec, &n, &next, &truncated);
    fclose(f);
    if (rc <= 0)
        return err_prefix("%s record at byte %llu: ", path, (unsigned long long)d->rec_offset[r]);
    if (recordio_parse(rec, n, &label, &image_at, &labels) < 0) {
        free(rec);
        return err_prefix("%s: ", path);
    }
    memmove(rec, rec + image_at, n - image_at);
    *data = (char *)rec;
    *len = n - image_at;
    return 0;
}

int dataset_read_file(const struct dataset *d, size_t i, char **data, size_t *len)
{
    if (d->source == DATASET_RECORDIO)
        return read_rec_image(d, i, data, len);
    if (d->source != DATASET_FILES)
        return err_set("dataset_read_file: %s holds no files", d->dir);
    return fileio_read_all(d->items[i].path, DATASET_MAX_FILE_BYTES, data, len);
}

int dataset_load_image(const struct dataset *d, size_t i, int min_side, struct image *out)
{
    const struct dataset_item *it = &d->items[i];
    if (d->source == DATASET_CIFAR) {
        out->width = out->height = 32;
        out->pixels = malloc(CIFAR_PIXELS);
        if (!out->pixels)
            return err_set("out of memory");
        const uint8_t *planes = d->pixels + (size_t)it->record * CIFAR_PIXELS;
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
