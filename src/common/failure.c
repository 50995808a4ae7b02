/*
 * failure.c - the failure file (see failure.h).
 */
#define _GNU_SOURCE
#include "common/failure.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/opt_ml.h"

#define REASON_PREFIX "reason="

void failure_write(const char *failure_path, enum err_reason reason, const char *sentence)
{
    log_error("%s", sentence);
    size_t len = strlen(sentence);
    while (len > 0 && (sentence[len - 1] == '\n' || sentence[len - 1] == ' '))
        len--;
    char *text = NULL;
    char *dir = strdup(failure_path);
    int n = asprintf(&text, "%.*s\n" REASON_PREFIX "%s\n", (int)len, sentence,
                     err_reason_name(reason));
    if (n < 0 || !dir || opt_ml_mkdirs(dirname(dir)) < 0 ||
        fileio_write_atomic(failure_path, text, (size_t)n) < 0)
        log_error("could not write the failure file %s", failure_path);
    if (n >= 0)
        free(text);
    free(dir);
}

int failure_read(const char *failure_path, size_t max_bytes, char **sentence,
                 enum err_reason *reason)
{
    char *text;
    size_t len;
    *sentence = NULL;
    *reason = ERR_REASON_NONE;
    if (fileio_read_all(failure_path, max_bytes, &text, &len) < 0)
        return -1;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r'))
        text[--len] = '\0';
    char *last = strrchr(text, '\n');
    char *line = last ? last + 1 : text;
    if (strncmp(line, REASON_PREFIX, strlen(REASON_PREFIX)) == 0) {
        *reason = err_reason_from_name(line + strlen(REASON_PREFIX));
        *line = '\0';
        len = (size_t)(line - text);
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
            text[--len] = '\0';
    }
    *sentence = text;
    return 0;
}
