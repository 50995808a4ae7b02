/*
 * fileio.c - atomic writes and capped reads (see fileio.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "common/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

int fileio_temp_path(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    const char *name = slash ? slash + 1 : path;
    int n = snprintf(buf, len, "%.*s.%s.tmp-%ld", dir_len, path, name, (long)getpid());
    if (n < 0 || (size_t)n >= len)
        return err_set("path too long: %s", path);
    return 0;
}

int fileio_remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.' || !strstr(e->d_name, ".tmp-"))
            continue;
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (n < 0 || (size_t)n >= sizeof path || lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int fileio_commit(const char *tmp, const char *path)
{
    if (fsync_path(tmp, O_RDONLY) != 0) {
        err_set("cannot flush %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        err_set("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY); /* best effort: the data is already safe */
    return 0;
}

int fileio_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (fileio_temp_path(path, tmp, sizeof tmp) < 0)
        return -1;
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return err_set("cannot create %s: %s", tmp, strerror(errno));
    size_t written = len ? fwrite(data, 1, len, f) : 0;
    int failed = written != len || fflush(f) != 0 || ferror(f);
    int saved_errno = errno;
    if (fclose(f) != 0)
        failed = 1;
    if (failed) {
        unlink(tmp);
        return err_set("cannot write %s: %s", path, strerror(saved_errno));
    }
    return fileio_commit(tmp, path);
}

int fileio_read_all(const char *path, size_t max_bytes, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set("cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return err_set("%s is not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        fclose(f);
        return err_set("%s is %lld bytes, over the limit of %zu", path, (long long)st.st_size,
                       max_bytes);
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return err_set("out of memory reading %s", path);
    }
    size_t got = fread(buf, 1, size, f);
    int failed = got != size || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return err_set("cannot read %s", path);
    }
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return 0;
}
