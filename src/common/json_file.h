/*
 * json_file.h - reading a JSON file from outside (SageMaker's config files, metadata) with a
 * size cap, into cJSON; errors name the file and where parsing stopped.
 */
#ifndef COMMON_JSON_FILE_H
#define COMMON_JSON_FILE_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* *out is owned by the caller (cJSON_Delete). */
int json_read_file(const char *path, size_t max_bytes, cJSON **out);
/* obj[key] if it is a number, else 0: for files this program wrote itself. */
double json_number(const cJSON *obj, const char *key);
/* Serialises `json` (formatted) to path atomically. */
int json_write_file(const char *path, const cJSON *json);

#endif
