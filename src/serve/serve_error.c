/*
 * serve_error.c - how the serve side states a failure (see serve.h): an sm_error holding a
 * sentence plus the HTTP status to answer with, and the JSON body every error answer carries,
 * {"error": "...", "status": N}. One place, so that /invocations, the multi-model routes and
 * the codecs answer alike.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "serve/serve_error.h"
#include "serve/serve.h"

int serve_fail(struct sm_error *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

char *serve_error_json(int status, const char *message, size_t *len)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "error", message) ||
        !cJSON_AddNumberToObject(j, "status", status)) {
        cJSON_Delete(j);
        return NULL;
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (text)
        *len = strlen(text);
    return text;
}
