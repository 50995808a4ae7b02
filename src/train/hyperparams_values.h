/*
 * hyperparams_values.h - the string forms hyperparameter values arrive in, parsed strictly
 * (hyperparams_values.c): SageMaker sends every value as a string, often JSON-encoded a
 * second time by the Python SDK ("\"256\""), and integers written as floats ("32.0"). Each
 * parser returns false for anything it does not accept whole; the caller names the key.
 */
#ifndef TRAIN_HYPERPARAMS_VALUES_H
#define TRAIN_HYPERPARAMS_VALUES_H

#include <stdbool.h>
#include <stddef.h>

/* true/1/yes/on, false/0/no/off, any case. */
bool hyperparams_parse_bool(const char *v, bool *out);
/* An integer, also written as a float ("32.0", "3e2"), up to 9e15 in magnitude. */
bool hyperparams_parse_long(const char *v, long long *out);
/* A finite number. */
bool hyperparams_parse_double(const char *v, double *out);
/* "10,20" -> {10, 20}: integers in [min, max], strictly ascending, at most max_count of them
 * (a longer value is refused, not cut). */
bool hyperparams_parse_steps(const char *v, double min, double max, int *steps, int *count,
                             int max_count);
/* "0.5", "0.485,0.456,0.406" or "[0.485, 0.456, 0.406]" -> float[3], each in [min, max]. */
bool hyperparams_parse_triple(const char *v, double min, double max, float *out);
/* "\"256\"" -> "256" (surrounding blanks removed too). Fails when the value does not fit in
 * len bytes. */
int hyperparams_unwrap_value(const char *raw, char *out, size_t len);

#endif
