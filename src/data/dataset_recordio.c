/*
 * dataset_recordio.c - a channel of RecordIO files (im2rec's output, data/recordio.h): every
 * *.rec file in the channel, indexed by a scan of its records (the .idx beside it is not
 * trusted), images read back record by record when the loader asks. A channel with .rec files
 * is read as RecordIO even when im2rec's .lst is beside them.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "common/log.h"
#include "common/opt_ml.h"
#include "common/stop_flag.h"
#include "data/dataset_formats.h"
#include "data/recordio.h"

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
        if ((rc = dataset_push_item(d, cap, NULL, (int32_t)label, (uint32_t)d->records)) < 0)
            break;
        d->records++;
        if ((int)label > *max_label)
            *max_label = (int)label;
    }
    fclose(f);
    return rc;
}

int dataset_open_recordio(struct dataset *d, struct dataset_names *files, char *const *classes,
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
        return dataset_set_class_names(d, classes, num_classes);
    }
    return dataset_set_index_class_names(d, max_label + 1);
}

/* Every *.rec file directly in dir, sorted. */
int dataset_find_rec_files(const char *dir, struct dataset_names *out)
{
    struct dataset_names files = {0};
    if (dataset_list_dir(dir, false, &files) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < files.n; i++) {
        const char *dot = strrchr(files.v[i], '.');
        if (dot && strcasecmp(dot, ".rec") == 0)
            rc = dataset_names_push(out, files.v[i]);
    }
    dataset_names_free(&files);
    return rc;
}

/* The encoded image of RecordIO item i: its record read again, the header stripped. */
int dataset_read_rec_image(const struct dataset *d, size_t i, char **data, size_t *len)
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

