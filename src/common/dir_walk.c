/*
 * dir_walk.c - the shared, symlink-safe folder walk (see dir_walk.h). Iterative over an
 * explicit stack of pending folders, so a deep tree costs heap, not C stack.
 */
#define _DEFAULT_SOURCE
#include "common/dir_walk.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/opt_ml.h"
#include "common/stop_flag.h"

struct folder {
    char *path;
    int depth;
};

struct walk {
    struct folder *stack;
    size_t n, cap;
    struct { dev_t dev; ino_t ino; } *seen;
    size_t n_seen, cap_seen;
    size_t entries;
    bool warned_link;
};

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap * 2 : 16;
    void *p = realloc(*v, cap2 * size);
    if (!p)
        return err_set("out of memory walking folders");
    *v = p;
    *cap = cap2;
    return 0;
}

/* Records a folder; 1 if it was seen before (a loop through a bind mount or the like). */
static int mark_seen(struct walk *w, const struct stat *st)
{
    for (size_t i = 0; i < w->n_seen; i++)
        if (w->seen[i].dev == st->st_dev && w->seen[i].ino == st->st_ino)
            return 1;
    if (grow((void **)&w->seen, &w->cap_seen, w->n_seen + 1, sizeof *w->seen) < 0)
        return -1;
    w->seen[w->n_seen].dev = st->st_dev;
    w->seen[w->n_seen].ino = st->st_ino;
    w->n_seen++;
    return 0;
}

static int push_folder(struct walk *w, const char *path, int depth)
{
    if (grow((void **)&w->stack, &w->cap, w->n + 1, sizeof *w->stack) < 0)
        return -1;
    char *copy = strdup(path);
    if (!copy)
        return err_set("out of memory walking folders");
    w->stack[w->n].path = copy;
    w->stack[w->n].depth = depth;
    w->n++;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dir_list_names(const char *dir, char ***out, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return err_set("cannot read folder %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if ((rc = grow((void **)&names, &cap, n + 1, sizeof *names)) < 0)
            break;
        if (!(names[n] = strdup(e->d_name)))
            rc = err_set("out of memory walking folders");
        else
            n++;
    }
    closedir(d);
    if (rc < 0) {
        dir_names_free(names, n);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    *count = n;
    return 0;
}

void dir_names_free(char **names, size_t count)
{
    for (size_t i = 0; names && i < count; i++)
        free(names[i]);
    free(names);
}

/* Visits the entries of one folder; pushes its subfolders (in reverse, so they pop sorted). */
static int walk_folder(struct walk *w, const char *dir, int depth, dir_walk_fn visit, void *arg)
{
    char **names = NULL;
    size_t n = 0;
    int rc = dir_list_names(dir, &names, &n);
    if (rc < 0)
        return rc;
    size_t first_sub = w->n;
    char path[4096];
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (stop_flag_raised()) {
            rc = err_set_reason(ERR_REASON_STOPPED, "stopped by a signal while reading %s", dir);
            break;
        }
        if (++w->entries > DIR_WALK_MAX_ENTRIES) {
            rc = err_set("more than %d entries under one channel; stopped reading at %s",
                         DIR_WALK_MAX_ENTRIES, dir);
            break;
        }
        if ((rc = opt_ml_join(path, sizeof path, dir, names[i])) < 0)
            break;
        struct stat lst, st;
        if (lstat(path, &lst) != 0)
            continue; /* gone meanwhile */
        if (S_ISLNK(lst.st_mode)) {
            if (stat(path, &st) != 0)
                continue; /* a dangling link */
            if (S_ISDIR(st.st_mode)) {
                if (!w->warned_link)
                    log_warn("%s is a link to a folder: not followed (links to folders can loop)",
                             path);
                w->warned_link = true;
                continue;
            }
        } else {
            st = lst;
        }
        if (S_ISREG(st.st_mode)) {
            rc = visit(arg, path, names[i], &st, depth);
        } else if (S_ISDIR(st.st_mode)) {
            int seen = mark_seen(w, &st);
            if (seen < 0) {
                rc = -1;
                break;
            }
            if (seen)
                continue;
            rc = visit(arg, path, names[i], &st, depth);
            if (rc == 2) {
                rc = 0;
                continue;
            }
            if (rc == 0) {
                if (depth + 1 >= DIR_WALK_MAX_DEPTH)
                    rc = err_set("%s: folders nested deeper than %d", path, DIR_WALK_MAX_DEPTH);
                else
                    rc = push_folder(w, path, depth + 1);
            }
        }
    }
    dir_names_free(names, n);
    /* Reverse the folders just pushed, so the first in sorted order is walked first. */
    for (size_t a = first_sub, b = w->n; rc == 0 && b > a + 1; a++, b--) {
        struct folder t = w->stack[a];
        w->stack[a] = w->stack[b - 1];
        w->stack[b - 1] = t;
    }
    return rc;
}

int dir_walk(const char *root, dir_walk_fn visit, void *arg)
{
    struct walk w = {0};
    struct stat st;
    if (stat(root, &st) != 0)
        return err_set("cannot read folder %s: %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return err_set("%s is not a folder", root);
    int rc = mark_seen(&w, &st);
    if (rc == 0)
        rc = push_folder(&w, root, 0);
    while (rc == 0 && w.n > 0) {
        struct folder f = w.stack[--w.n];
        rc = walk_folder(&w, f.path, f.depth, visit, arg);
        free(f.path);
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.stack[i].path);
    free(w.stack);
    free(w.seen);
    return rc;
}
