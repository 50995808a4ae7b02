/*
 * dir_walk.h - walks a channel's folder tree the same safe way everywhere: entries in sorted
 * order, links to files followed, links to folders below the root never followed (two links to
 * "." would otherwise make a walk of 2^depth paths), each real folder visited once (by device
 * and inode, which also stops bind-mount loops), a depth and an entry budget, and a stop signal
 * honoured between entries. Not for reading files: the visitor gets paths and stat results.
 */
#ifndef COMMON_DIR_WALK_H
#define COMMON_DIR_WALK_H

#include <stddef.h>
#include <sys/stat.h>

#define DIR_WALK_MAX_DEPTH 32
#define DIR_WALK_MAX_ENTRIES 10000000 /* per walk: far more than any channel SageMaker copies */

/* Called for every regular file (st: the file, after following a link) and every folder before
 * its contents (depth: 0 for the root's entries). Returns 0 to go on, 1 to end the walk early
 * (dir_walk then returns 1), 2 (folders only) to skip that folder, or a negative error. */
typedef int (*dir_walk_fn)(void *arg, const char *path, const char *name, const struct stat *st,
                           int depth);

/* Walks below root. Returns 0 when done, 1 when the visitor ended it, negative on an error (a
 * folder that cannot be read, too deep, too many entries, a stop signal) with err_msg set. */
int dir_walk(const char *root, dir_walk_fn visit, void *arg);

/* The visible names (not starting with '.') in dir, sorted bytewise, so that what a folder holds
 * is read in the same order on every filesystem. Free them with dir_names_free. Returns 0, or
 * negative with err_msg set when dir cannot be read. */
int dir_list_names(const char *dir, char ***out, size_t *count);
void dir_names_free(char **names, size_t count);

#endif
