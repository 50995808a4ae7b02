/*
 * dataset_lst.c - a channel indexed by a .lst manifest, SageMaker's image-classification
 * format: lines "index<TAB>label<TAB>relative/path" (label "3" or "3.000000"), the images
 * under the channel directory. The manifest lies in the channel itself or in a
 * "<channel>_lst" channel beside it. Paths must stay inside the channel; labels are checked
 * before use; the manifest is read whole, at most 1 GiB.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/opt_ml.h"
#include "common/stop_flag.h"
#include "data/dataset_formats.h"

int dataset_find_lst(const char *dir, char *out, size_t len)
{
    struct dataset_names files = {0};
    out[0] = '\0';
    if (dataset_list_dir(dir, false, &files) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < files.n; i++) {
        const char *dot = strrchr(files.v[i], '.');
        if (dot && strcasecmp(dot, ".lst") == 0) {
            rc = opt_ml_join(out, len, dir, files.v[i]);
            break;
        }
    }
    dataset_names_free(&files);
    return rc;
}

int dataset_open_lst(struct dataset *d, const char *lst_path, char *const *classes,
                     int num_classes)
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
        rc = copy ? dataset_push_item(d, &cap, copy, (int32_t)label, 0)
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
        rc = dataset_set_class_names(d, classes, num_classes);
    } else {
        /* .lst files carry no names: classes are called by their index. */
        rc = dataset_set_index_class_names(d, max_label + 1);
    }
    snprintf(d->format, sizeof d->format, ".lst manifest");
    return rc;
}

