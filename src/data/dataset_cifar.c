/*
 * dataset_cifar.c - a channel of CIFAR-10/100 binary batches (data_batch_*.bin and
 * test_batch.bin, or train.bin and test.bin), held in memory: each record is 1 label byte
 * (CIFAR-10) or a coarse and a fine one (CIFAR-100), then 3072 pixels, planar R, G, B. Class
 * names come from batches.meta.txt / fine_label_names.txt when present. Bounded: record
 * count, file sizes (multiples of the record), labels.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/opt_ml.h"
#include "data/dataset_formats.h"

/* CIFAR binaries: 1 label byte (CIFAR-10) or coarse+fine (CIFAR-100), then 3072 pixels. */
static int open_cifar(struct dataset *d, struct dataset_names *files, int label_bytes,
                      const char *names_file, int default_classes, char *const *classes,
                      int num_classes)
{
    size_t record = (size_t)label_bytes + DATASET_CIFAR_PIXELS, cap = 0;
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
    d->pixels = malloc(total * DATASET_CIFAR_PIXELS + 1);
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
            memcpy(d->pixels + d->records * DATASET_CIFAR_PIXELS, rec + label_bytes, DATASET_CIFAR_PIXELS);
            if (dataset_push_item(d, &cap, NULL, label, (uint32_t)d->records) < 0) {
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
        return dataset_set_class_names(d, classes, num_classes);
    /* Class names from batches.meta.txt / fine_label_names.txt when present. */
    struct dataset_names names = {0};
    char *text = NULL;
    size_t len;
    if (opt_ml_join(path, sizeof path, d->dir, names_file) == 0 &&
        fileio_read_all(path, 1 << 20, &text, &len) == 0) {
        for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n"))
            if (*line && dataset_names_push(&names, line) < 0)
                break;
    }
    free(text);
    if ((int)names.n != default_classes) {
        dataset_names_free(&names);
        for (int i = 0; i < default_classes; i++) {
            char n[16];
            snprintf(n, sizeof n, "%d", i);
            dataset_names_push(&names, n);
        }
    }
    int rc = dataset_set_class_names(d, names.v, (int)names.n);
    dataset_names_free(&names);
    return rc;
}

/* A whole CIFAR download holds the train and the test batches: with others beside it, the
 * test file is dropped from the list (it is used when it is all there is). */
static void drop_test_file(struct dataset_names *files, const char *test_name)
{
    if (files->n < 2)
        return;
    for (size_t i = 0; i < files->n; i++)
        if (strcmp(files->v[i], test_name) == 0) {
            free(files->v[i]);
            files->v[i] = files->v[--files->n];
            return;
        }
}

int dataset_try_cifar(struct dataset *d, bool *found, char *const *classes, int num_classes)
{
    struct dataset_names all = {0}, c10 = {0}, c100 = {0};
    *found = false;
    if (dataset_list_dir(d->dir, false, &all) < 0)
        return -1;
    for (size_t i = 0; i < all.n; i++) {
        const char *n = all.v[i];
        if ((strncmp(n, "data_batch_", 11) == 0 && strstr(n, ".bin")) || strcmp(n, "test_batch.bin") == 0)
            dataset_names_push(&c10, n);
        if (strcmp(n, "train.bin") == 0 || strcmp(n, "test.bin") == 0)
            dataset_names_push(&c100, n);
    }
    drop_test_file(&c10, "test_batch.bin");
    drop_test_file(&c100, "test.bin");
    int rc = 0;
    if (c10.n) {
        *found = true;
        rc = open_cifar(d, &c10, 1, "batches.meta.txt", 10, classes, num_classes);
    } else if (c100.n) {
        *found = true;
        rc = open_cifar(d, &c100, 2, "fine_label_names.txt", 100, classes, num_classes);
    }
    dataset_names_free(&all);
    dataset_names_free(&c10);
    dataset_names_free(&c100);
    return rc;
}

