/*
 * failure.h - SageMaker's failure file: on failure a program writes one paragraph saying
 * why to /opt/ml/output/failure (SageMaker shows its first 1024 characters as the job's
 * FailureReason) and exits non-zero.
 */
#ifndef COMMON_FAILURE_H
#define COMMON_FAILURE_H

/* Writes `reason` (atomically; the directory is created) and logs it. */
void failure_write(const char *failure_path, const char *reason);

#endif
