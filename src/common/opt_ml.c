/*
 * opt_ml.c - the /opt/ml paths (see opt_ml.h).
 */
#define _GNU_SOURCE
#include "common/opt_ml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"

#define PATH_SHOWN_END 300 /* a path too long to fit is named by this much of each end */

int opt_ml_join(char *out, size_t len, const char *dir, const char *name)
{
    return opt_ml_joinf(out, len, "%s/%s", dir, name);
}

int opt_ml_joinf(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < len)
        return 0;
    /* The message names the whole path, not the part that fitted. */
    char *whole = NULL;
    va_start(ap, fmt);
    if (vasprintf(&whole, fmt, ap) < 0)
        whole = NULL;
    va_end(ap);
    if (len > 0)
        out[0] = '\0';
    const char *p = whole ? whole : fmt;
    size_t plen = strlen(p);
    if (plen <= 2 * PATH_SHOWN_END + 16)
        err_set("path too long (%zu characters, at most %zu): %s", plen, len ? len - 1 : 0, p);
    else /* both ends of it, said to be both ends: the message has a cap of its own */
        err_set("path too long (%zu characters, at most %zu): %.*s ... %s (its first and last %d "
                "characters)",
                plen, len ? len - 1 : 0, PATH_SHOWN_END, p, p + plen - PATH_SHOWN_END,
                PATH_SHOWN_END);
    free(whole);
    return -1;
}

int opt_ml_copy(char *out, size_t len, const char *path)
{
    return opt_ml_joinf(out, len, "%s", path);
}

int opt_ml_init(struct opt_ml *p)
{
    memset(p, 0, sizeof *p);
    const char *root = getenv("OPT_ML");
    if (!root || !*root)
        root = "/opt/ml";
    if (strlen(root) > OPT_ML_PATH_MAX - 64)
        return err_set("OPT_ML is too long: %s", root);
    snprintf(p->root, sizeof p->root, "%s", root);
    opt_ml_join(p->config_dir, sizeof p->config_dir, root, "input/config");
    opt_ml_join(p->data_dir, sizeof p->data_dir, root, "input/data");
    opt_ml_join(p->model_dir, sizeof p->model_dir, root, "model");
    opt_ml_join(p->output_dir, sizeof p->output_dir, root, "output");
    opt_ml_join(p->output_data_dir, sizeof p->output_data_dir, root, "output/data");
    opt_ml_join(p->failure_path, sizeof p->failure_path, root, "output/failure");
    opt_ml_join(p->checkpoint_dir, sizeof p->checkpoint_dir, root, "checkpoints");
    return 0;
}

int opt_ml_mkdirs(const char *path)
{
    char buf[OPT_ML_PATH_MAX * 2];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return err_set("path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return err_set("cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return err_set("cannot create directory %s: %s", buf, strerror(errno));
    return 0;
}
