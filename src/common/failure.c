/*
 * failure.c - the failure file (see failure.h).
 */
#include "common/failure.h"

#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/opt_ml.h"

void failure_write(const char *failure_path, const char *reason)
{
    char dir[OPT_ML_PATH_MAX * 2];
    char text[8192];
    snprintf(dir, sizeof dir, "%s", failure_path);
    snprintf(text, sizeof text, "%s\n", reason);
    log_error("%s", reason);
    if (opt_ml_mkdirs(dirname(dir)) < 0 || fileio_write_atomic(failure_path, text, strlen(text)) < 0)
        log_error("could not write the failure file %s", failure_path);
}
