/*
 * opt_ml.h - where SageMaker's /opt/ml tree is. The root is /opt/ml unless the environment
 * variable OPT_ML names another directory (tests and local runs use that).
 */
#ifndef COMMON_OPT_ML_H
#define COMMON_OPT_ML_H

#include <stddef.h>

#define OPT_ML_PATH_MAX 1024

struct opt_ml {
    char root[OPT_ML_PATH_MAX];
    char config_dir[OPT_ML_PATH_MAX];      /* input/config: the three JSON files */
    char data_dir[OPT_ML_PATH_MAX];        /* input/data: one folder per channel */
    char model_dir[OPT_ML_PATH_MAX];       /* model: uploaded as model.tar.gz */
    char output_dir[OPT_ML_PATH_MAX];      /* output: failure file */
    char output_data_dir[OPT_ML_PATH_MAX]; /* output/data: uploaded as output.tar.gz */
    char failure_path[OPT_ML_PATH_MAX];
    char checkpoint_dir[OPT_ML_PATH_MAX];  /* /opt/ml/checkpoints unless checkpointconfig says */
};

int opt_ml_init(struct opt_ml *p);
/* path = dir + "/" + name, failing (with a message naming the whole path) if it does not
 * fit: a path is never silently shortened into another file's name. */
int opt_ml_join(char *out, size_t len, const char *dir, const char *name);
/* The same for a path made by a format ("%s/.%s.tmp-%ld"), and for a path copied as it is. */
int opt_ml_joinf(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int opt_ml_copy(char *out, size_t len, const char *path);
/* mkdir -p */
int opt_ml_mkdirs(const char *path);

#endif
