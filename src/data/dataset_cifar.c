/*
 * dataset_cifar.c - a channel of CIFAR-10/100 batches, held in memory: the binary version
 * (data_batch_*.bin and test_batch.bin, or train.bin and test.bin: each record is 1 label byte
 * (CIFAR-10) or a coarse and a fine one (CIFAR-100), then 3072 pixels, planar R, G, B; class
 * names from batches.meta.txt / fine_label_names.txt when present) or the python version
 * torchvision downloads (data_batch_1..5 and test_batch with batches.meta, or train and test
 * with meta: pickles read by cifar_pickle.c), in the channel or in one folder of it (the
 * cifar-10-batches-bin/ or cifar-10-batches-py/ a download unpacks to). Bounded: record
 * count, file sizes (multiples of the record), labels.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/opt_ml.h"
#include "data/cifar_pickle.h"
#include "data/dataset_formats.h"

static int cifar_class_names(struct dataset *d, const char *names_file, const char *meta_key,
                             int default_classes, char *const *classes, int num_classes);

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
    return cifar_class_names(d, names_file, NULL, default_classes, classes, num_classes);
}

/* Class names: the train channel's, else from the names file (lines of text, or with
 * meta_key a python meta pickle's list), else the label indices. */
static int cifar_class_names(struct dataset *d, const char *names_file, const char *meta_key,
                             int default_classes, char *const *classes, int num_classes)
{
    if (classes)
        return dataset_set_class_names(d, classes, num_classes);
    struct dataset_names names = {0};
    char *text = NULL, path[4096];
    size_t len;
    if (opt_ml_join(path, sizeof path, d->dir, names_file) == 0 &&
        fileio_read_all(path, 64 << 20, &text, &len) == 0) {
        if (meta_key) {
            char **v;
            int n;
            if (cifar_pickle_names((const uint8_t *)text, len, meta_key, &v, &n) == 0) {
                int rc = 0;
                for (int i = 0; i < n; i++) {
                    if (rc == 0)
                        rc = dataset_names_push(&names, v[i]);
                    free(v[i]);
                }
                free(v);
            } else {
                log_warn("%s is not a class-name list CIFAR's meta file holds (%s): the classes "
                         "are numbered",
                         path, err_msg());
                err_clear();
            }
        } else {
            for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n"))
                if (*line && dataset_names_push(&names, line) < 0)
                    break;
        }
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
static void drop_test_file(struct dataset_names *files, const char *test_name, const char *prefix)
{
    if (files->n < 2)
        return;
    size_t p = strlen(prefix);
    for (size_t i = 0; i < files->n; i++)
        if (strncmp(files->v[i], prefix, p) == 0 && strcmp(files->v[i] + p, test_name) == 0) {
            free(files->v[i]);
            files->v[i] = files->v[--files->n];
            return;
        }
}

/* CIFAR python batches (pickles): labels under label_key, each below default_classes (or
 * the train channel's count). */
static int open_cifar_python(struct dataset *d, struct dataset_names *files, const char *label_key,
                             const char *meta_file, const char *meta_key, int default_classes,
                             char *const *classes, int num_classes)
{
    size_t cap = 0, total = 0;
    char path[4096];
    int limit = classes ? num_classes : default_classes;
    for (size_t i = 0; i < files->n; i++) {
        char *data;
        size_t len;
        struct cifar_pickle_batch b;
        if (opt_ml_join(path, sizeof path, d->dir, files->v[i]) < 0 ||
            fileio_read_all(path, 1u << 30, &data, &len) < 0)
            return -1;
        if (cifar_pickle_batch((const uint8_t *)data, len, label_key, &b) < 0) {
            free(data);
            return err_prefix("%s is not a CIFAR python batch: ", path);
        }
        int rc = 0;
        if (total + b.records > 10u * 1000 * 1000)
            rc = err_set("%s: too many CIFAR records", d->dir);
        uint8_t *grown = rc == 0 ? realloc(d->pixels, (total + b.records) * DATASET_CIFAR_PIXELS + 1) : NULL;
        if (rc == 0 && !grown)
            rc = err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory loading CIFAR from %s", d->dir);
        if (grown)
            d->pixels = grown;
        for (size_t r = 0; rc == 0 && r < b.records; r++) {
            if (b.labels[r] >= limit) {
                rc = err_set("%s record %zu has label %d; %s has %d classes", path, r, b.labels[r],
                             classes ? "the train channel" : "CIFAR", limit);
                break;
            }
            memcpy(d->pixels + total * DATASET_CIFAR_PIXELS, b.pixels + r * DATASET_CIFAR_PIXELS,
                   DATASET_CIFAR_PIXELS);
            if ((rc = dataset_push_item(d, &cap, NULL, b.labels[r], (uint32_t)total)) == 0)
                total++, d->records++;
        }
        cifar_pickle_batch_free(&b);
        free(data);
        if (rc < 0)
            return -1;
    }
    d->source = DATASET_CIFAR;
    snprintf(d->format, sizeof d->format, "CIFAR-%d python", default_classes);
    return cifar_class_names(d, meta_file, meta_key, default_classes, classes, num_classes);
}

/* The CIFAR files among dir's files, each named prefix + name: binary (c10b, c100b) and python
 * (c10p, c100p) batches; the python CIFAR-100's "train"/"test" only beside its "meta". */
static int list_cifar_files(const char *dir, const char *prefix, struct dataset_names lists[4])
{
    struct dataset_names all = {0};
    if (dataset_list_dir(dir, false, &all) < 0)
        return -1;
    bool meta100 = false;
    for (size_t i = 0; i < all.n; i++)
        meta100 |= strcmp(all.v[i], "meta") == 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        const char *n = all.v[i];
        int which = -1;
        if ((strncmp(n, "data_batch_", 11) == 0 && strstr(n, ".bin")) || strcmp(n, "test_batch.bin") == 0)
            which = 0;
        else if (strcmp(n, "train.bin") == 0 || strcmp(n, "test.bin") == 0)
            which = 1;
        else if ((strncmp(n, "data_batch_", 11) == 0 && strspn(n + 11, "0123456789") == strlen(n + 11) &&
                  n[11]) || strcmp(n, "test_batch") == 0)
            which = 2;
        else if (meta100 && (strcmp(n, "train") == 0 || strcmp(n, "test") == 0))
            which = 3;
        if (which >= 0) {
            char name[4096];
            if (snprintf(name, sizeof name, "%s%s", prefix, n) >= (int)sizeof name)
                rc = err_set("%s/%s: path too long", dir, n);
            else
                rc = dataset_names_push(&lists[which], name);
        }
    }
    dataset_names_free(&all);
    return rc;
}

int dataset_try_cifar(struct dataset *d, bool *found, char *const *classes, int num_classes)
{
    struct dataset_names lists[4] = {{0}}, subs = {0};
    char prefix[512] = "";
    *found = false;
    int rc = list_cifar_files(d->dir, "", lists);
    /* None in the channel itself: a folder of it holding them (cifar-10-batches-py/ beside
     * the cifar-10-python.tar.gz it came from, as torchvision leaves a download). */
    bool any = lists[0].n || lists[1].n || lists[2].n || lists[3].n;
    if (rc == 0 && !any)
        rc = dataset_list_dir(d->dir, true, &subs);
    for (size_t i = 0; rc == 0 && !any && i < subs.n; i++) {
        char sub[4096];
        if (strlen(subs.v[i]) + 2 > sizeof prefix || opt_ml_join(sub, sizeof sub, d->dir, subs.v[i]) < 0)
            continue;
        snprintf(prefix, sizeof prefix, "%s/", subs.v[i]);
        rc = list_cifar_files(sub, prefix, lists);
        any = lists[0].n || lists[1].n || lists[2].n || lists[3].n;
    }
    if (!any)
        prefix[0] = '\0';
    drop_test_file(&lists[0], "test_batch.bin", prefix);
    drop_test_file(&lists[1], "test.bin", prefix);
    drop_test_file(&lists[2], "test_batch", prefix);
    drop_test_file(&lists[3], "test", prefix);
    /* Per list: its names file, and for the python version the label and names keys. */
    static const struct {
        const char *names_file, *label_key, *names_key;
        int classes, label_bytes;
    } kinds[4] = {{"batches.meta.txt", NULL, NULL, 10, 1},
                  {"fine_label_names.txt", NULL, NULL, 100, 2},
                  {"batches.meta", "labels", "label_names", 10, 0},
                  {"meta", "fine_labels", "fine_label_names", 100, 0}};
    for (int k = 0; rc == 0 && any && k < 4; k++) {
        if (!lists[k].n)
            continue;
        char names_file[1024];
        snprintf(names_file, sizeof names_file, "%s%s", prefix, kinds[k].names_file);
        *found = true;
        rc = kinds[k].label_key
                 ? open_cifar_python(d, &lists[k], kinds[k].label_key, names_file,
                                     kinds[k].names_key, kinds[k].classes, classes, num_classes)
                 : open_cifar(d, &lists[k], kinds[k].label_bytes, names_file, kinds[k].classes,
                              classes, num_classes);
        break;
    }
    for (int i = 0; i < 4; i++)
        dataset_names_free(&lists[i]);
    dataset_names_free(&subs);
    return rc;
}
