/*
 * serve_error.h - how the serve side states a failure (serve_error.c).
 */
#ifndef SERVE_SERVE_ERROR_H
#define SERVE_SERVE_ERROR_H

#include <stddef.h>

#include "sm_handlers.h"

/* serve_fail writes the sentence into
 * err and returns status (`return serve_fail(err, 400, "...", ...)`); serve_error_json makes
 * an error answer's body, {"error": message, "status": status} (malloc'd, NULL when out of
 * memory). */
int serve_fail(struct sm_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *serve_error_json(int status, const char *message, size_t *len);

#endif
