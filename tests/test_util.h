/*
 * test_util.h - the few helpers our C tests share: checks that print both sides and count
 * failures, and the normalised-error comparison of tensors. Each test is its own process and
 * exits non-zero when any check failed.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torchc.h"

static int test_failures = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);              \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", __FILE__, __LINE__, #a, #b, \
                    va_, vb_);                                                                     \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* The string `haystack` must contain `needle`. */
#define CHECK_CONTAINS(haystack, needle)                                                           \
    do {                                                                                           \
        const char *h_ = (haystack);                                                               \
        if (!h_ || !strstr(h_, (needle))) {                                                        \
            fprintf(stderr, "%s:%d: expected \"%s\" to contain \"%s\"\n", __FILE__, __LINE__,     \
                    h_ ? h_ : "(null)", (needle));                                                 \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* Fails the test if a setup step failed: nothing after it would mean anything. */
#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s: ", __FILE__, __LINE__, #cond);            \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ||a-b||/||b|| <= tol, printed either way so that the margin shows in the log. */
static inline void check_close(const char *what, const tc_tensor *a, const tc_tensor *b, double tol)
{
    double err = -1;
    if (tc_normalised_error(a, b, &err) < 0) {
        fprintf(stderr, "FAIL %s: cannot compare: %s\n", what, tc_last_error());
        test_failures++;
        return;
    }
    if (!(err <= tol)) {
        fprintf(stderr, "FAIL %s: normalised error %.3g > %.1g\n", what, err, tol);
        test_failures++;
    } else {
        printf("ok   %s: normalised error %.3g\n", what, err);
    }
}

static inline int test_finish(const char *name)
{
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
