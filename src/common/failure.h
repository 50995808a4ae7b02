/*
 * failure.h - SageMaker's failure file: on failure a program writes why to
 * /opt/ml/output/failure (SageMaker shows its first 1024 characters as the job's
 * FailureReason) and exits non-zero.
 *
 * The file holds the sentence a person reads, then a last line a program reads:
 *     rank 1 (local rank 1 on host algo-1) failed: the process was killed by signal 9 (Killed)
 *     reason=killed
 * The reason is one of err_reason_name()'s names (common/error.h). The sentence comes first so
 * that FailureReason reads as before; the reason line is always the file's last line.
 */
#ifndef COMMON_FAILURE_H
#define COMMON_FAILURE_H

#include <stddef.h>

#include "common/error.h"

/* Writes `sentence` and the reason line (atomically; the directory is created) and logs the
 * sentence. ERR_REASON_NONE is written as "internal". */
void failure_write(const char *failure_path, enum err_reason reason, const char *sentence);

/* Reads a failure file back: the sentence (malloc'd, trailing blank lines removed, owned by
 * the caller) and its reason (ERR_REASON_NONE when the file has no reason line). A file over
 * max_bytes, or none, is an error. */
int failure_read(const char *failure_path, size_t max_bytes, char **sentence,
                 enum err_reason *reason);

#endif
