/*
 * env.h - whole numbers from environment variables, checked against a range, read the same way
 * by every setting that takes one.
 */
#ifndef COMMON_ENV_H
#define COMMON_ENV_H

#include <stdbool.h>

enum env_whole { ENV_ABSENT, ENV_VALID, ENV_INVALID };

/* name's value as a whole number from min to max into *out: ENV_ABSENT when unset or empty,
 * ENV_INVALID (nothing said: the caller words it) when it is not such a number. */
enum env_whole env_whole(const char *name, long min, long max, long *out);

/* The same with fallback for an absent or invalid value; an invalid one is warned about
 * ("NAME="x" is not a number from MIN to MAX; using FALLBACK"). */
long env_long(const char *name, long fallback, long min, long max);

/* Whether name is set to something non-empty. */
bool env_given(const char *name);

#endif
