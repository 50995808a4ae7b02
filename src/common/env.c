/*
 * env.c - whole numbers from environment variables (see env.h).
 */
#include "common/env.h"

#include <stdlib.h>

#include "common/log.h"

bool env_given(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

enum env_whole env_whole(const char *name, long min, long max, long *out)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return ENV_ABSENT;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < min || x > max)
        return ENV_INVALID;
    *out = x;
    return ENV_VALID;
}

long env_long(const char *name, long fallback, long min, long max)
{
    long x = fallback;
    if (env_whole(name, min, max, &x) == ENV_INVALID) {
        log_warn("%s=\"%s\" is not a number from %ld to %ld; using %ld", name, getenv(name), min,
                 max, fallback);
        return fallback;
    }
    return x;
}
