/*
 * json_file.c - capped JSON file reads and atomic JSON writes (see json_file.h).
 */
#include "common/json_file.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fileio.h"

int json_read_file(const char *path, size_t max_bytes, cJSON **out)
{
    *out = NULL;
    char *text;
    size_t len;
    if (fileio_read_all(path, max_bytes, &text, &len) < 0)
        return -1;
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!json) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        err_set("%s is not valid JSON (parsing stopped at byte %zu)", path, at);
        free(text);
        return -1;
    }
    free(text);
    *out = json;
    return 0;
}

double json_number(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int json_write_file(const char *path, const cJSON *json)
{
    char *text = cJSON_Print(json);
    if (!text)
        return err_set("out of memory serialising %s", path);
    size_t len = strlen(text);
    text[len] = '\n'; /* replace the terminator: the file ends in a newline */
    int rc = fileio_write_atomic(path, text, len + 1);
    free(text);
    return rc;
}
