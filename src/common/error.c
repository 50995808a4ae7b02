/*
 * error.c - the thread-local error message (see error.h).
 */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char message[ERR_MSG_MAX];

int err_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
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

const char *err_msg(void)
{
    return message;
}

void err_clear(void)
{
    message[0] = '\0';
}
