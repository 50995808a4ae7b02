/*
 * dataset_folders.c - a channel of class folders (torchvision's ImageFolder layout):
 * <dir>/<class>/.../<name>.jpg|jpeg|png, classes in sorted order of their folder names. Each
 * class folder is walked with the shared symlink-safe walker (common/dir_walk.h): images in
 * sorted order, a folder's own images before its subfolders', links to folders below a class
 * folder not followed, depth and entry budgets, a stop signal honoured between entries.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/dir_walk.h"
#include "common/error.h"
#include "common/opt_ml.h"
#include "data/dataset_formats.h"

static bool has_image_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                   strcasecmp(dot, ".png") == 0);
}

/* What torchvision's ImageFolder also reads (IMG_EXTENSIONS): counted, so that the log can say
 * which files a Python user's job trained on and this one does not. */
static bool has_other_image_extension(const char *name)
{
    static const char *const other[] = {".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof other / sizeof *other; i++)
        if (strcasecmp(dot, other[i]) == 0)
            return true;
    return false;
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
    if (S_ISREG(st->st_mode) && has_other_image_extension(name)) {
        if (w->d->ignored_images++ == 0)
            snprintf(w->d->ignored_example, sizeof w->d->ignored_example, "%s", path);
        return 0;
    }
    if (!S_ISREG(st->st_mode) || !has_image_extension(name))
        return 0;
    char *copy = strdup(path);
    if (!copy)
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory listing %s", path);
    return dataset_push_item(w->d, w->cap, copy, w->label, 0);
}

static int find_class(char *const *classes, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(classes[i], name) == 0)
            return i;
    return -1;
}

int dataset_open_class_folders(struct dataset *d, char *const *classes, int num_classes)
{
    struct dataset_names folders = {0};
    size_t cap = 0;
    int rc = dataset_list_dir(d->dir, true, &folders);
    if (rc == 0 && folders.n > DATASET_MAX_CLASSES)
        rc = err_set("%s has %zu class folders, more than %d", d->dir, folders.n, DATASET_MAX_CLASSES);
    if (rc == 0)
        rc = classes ? dataset_set_class_names(d, classes, num_classes)
                     : dataset_set_class_names(d, folders.v, (int)folders.n);
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
    dataset_names_free(&folders);
    return rc;
}

