/*
 * hyperparams_values.c - parsing the string forms of hyperparameter values (see
 * hyperparams_values.h).
 */
#include "train/hyperparams_values.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "common/error.h"

bool hyperparams_parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "1", "yes", "on"}, *no[] = {"false", "0", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

bool hyperparams_parse_long(const char *v, long long *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end); /* "32.0" happens; "3e2" too */
    if (*v == '\0' || *end != '\0' || errno || !isfinite(d) || d != floor(d) || fabs(d) > 9e15)
        return false;
    *out = (long long)d;
    return true;
}

bool hyperparams_parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(v, &end);
    return *v != '\0' && *end == '\0' && !errno && isfinite(*out);
}

bool hyperparams_parse_steps(const char *v, double min, double max, int *steps, int *count,
                             int max_count)
{
    char buf[512];
    int len = snprintf(buf, sizeof buf, "%s", v);
    if (len < 0 || (size_t)len >= sizeof buf)
        return false;
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long long e;
        while (isspace((unsigned char)*tok))
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (n >= max_count || !hyperparams_parse_long(tok, &e) || e < min || e > max ||
            (n > 0 && e <= steps[n - 1]))
            return false;
        steps[n++] = (int)e;
    }
    *count = n;
    return n > 0;
}

bool hyperparams_parse_triple(const char *v, double min, double max, float *out)
{
    char buf[256];
    int len = snprintf(buf, sizeof buf, "%s", v);
    if (len < 0 || (size_t)len >= sizeof buf)
        return false;
    char *p = buf;
    size_t n = strlen(p);
    if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
        p[n - 1] = '\0';
        p++;
    }
    double d[3];
    int count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (count >= 3 || !hyperparams_parse_double(tok, &d[count]) || d[count] < min ||
            d[count] > max)
            return false;
        count++;
    }
    if (count != 1 && count != 3)
        return false;
    for (int c = 0; c < 3; c++)
        out[c] = (float)d[count == 1 ? 0 : c];
    return true;
}

/* The SDK JSON-encodes values that are already strings. */
int hyperparams_unwrap_value(const char *raw, char *out, size_t len)
{
    while (isspace((unsigned char)*raw))
        raw++;
    int fit = snprintf(out, len, "%s", raw);
    if (fit < 0 || (size_t)fit >= len)
        return err_set("a value of %zu characters, more than %zu", strlen(raw), len - 1);
    size_t n = strlen(out);
    while (n && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
    if (n >= 2 && out[0] == '"' && out[n - 1] == '"') {
        cJSON *s = cJSON_Parse(out);
        if (s && cJSON_IsString(s))
            snprintf(out, len, "%s", s->valuestring);
        cJSON_Delete(s);
    }
    return 0;
}

