/*
 * error.c - the thread-local error message and reason (see error.h).
 */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char message[ERR_MSG_MAX];
static _Thread_local enum err_reason reason_now;

static const char *const reason_names[ERR_REASON_COUNT] = {
    [ERR_REASON_NONE] = "internal",
    [ERR_REASON_CONFIG] = "config",
    [ERR_REASON_DATA] = "data",
    [ERR_REASON_MODEL] = "model",
    [ERR_REASON_OUT_OF_MEMORY] = "out_of_memory",
    [ERR_REASON_IO] = "io",
    [ERR_REASON_DIVERGED] = "diverged",
    [ERR_REASON_PEER_FAILED] = "peer_failed",
    [ERR_REASON_STOPPED] = "stopped",
    [ERR_REASON_KILLED] = "killed",
    [ERR_REASON_INTERNAL] = "internal",
};

int err_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    reason_now = ERR_REASON_NONE;
    return -1;
}

int err_set_reason(enum err_reason reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    reason_now = reason;
    return -1;
}

int err_prefix(const char *fmt, ...)
{
    char old[ERR_MSG_MAX];
    memcpy(old, message, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof message) {
        size_t len = strnlen(old, sizeof message - (size_t)n - 1);
        memcpy(message + n, old, len);
        message[(size_t)n + len] = '\0';
    }
    return -1;
}

int err_default_reason(enum err_reason reason)
{
    if (reason_now == ERR_REASON_NONE)
        reason_now = reason;
    return -1;
}

const char *err_msg(void)
{
    return message;
}

enum err_reason err_reason(void)
{
    return reason_now;
}

void err_clear(void)
{
    message[0] = '\0';
    reason_now = ERR_REASON_NONE;
}

const char *err_reason_name(enum err_reason reason)
{
    return (unsigned)reason < ERR_REASON_COUNT ? reason_names[reason] : "internal";
}

enum err_reason err_reason_from_name(const char *name)
{
    for (int r = ERR_REASON_CONFIG; r < ERR_REASON_COUNT; r++)
        if (strcmp(reason_names[r], name) == 0)
            return (enum err_reason)r;
    return ERR_REASON_NONE;
}
