/*
 * fileio.h - files written so that a crash never leaves a half-written artifact (write a
 * temporary beside the target, fsync, rename), and files read with a size cap.
 */
#ifndef COMMON_FILEIO_H
#define COMMON_FILEIO_H

#include <stddef.h>

/* Writes "<dir>/.<name>.tmp-<pid>" for `path` into buf. */
int fileio_temp_path(const char *path, char *buf, size_t len);
/* Makes the finished temporary `tmp` the file `path`: fsync, rename, fsync the directory.
 * On failure the temporary is removed. */
int fileio_commit(const char *tmp, const char *path);
/* Removes the temporaries fileio_temp_path names (".<name>.tmp-<pid>") left directly in dir by
 * a process killed mid-write, so that they are never uploaded with the artifacts. Returns how
 * many were removed; a missing dir is not an error. */
int fileio_remove_temporaries(const char *dir);
/* Writes data to path atomically (temporary + commit). */
int fileio_write_atomic(const char *path, const void *data, size_t len);
/* Reads a whole file of at most max_bytes into a malloc'd, NUL-terminated buffer (*data,
 * owned by the caller). A larger file is an error that names the limit. */
int fileio_read_all(const char *path, size_t max_bytes, char **data, size_t *len);

#endif
