/*
 * log.h - what the programs print. Human-readable lines go to stderr with a timestamp and a
 * level; metric lines (the ones tuning jobs parse) go to stdout, one whole line at a time.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A metric line on stdout, flushed at once so that CloudWatch sees it. */
void log_metric(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Ranks above 0 of a data-parallel job print no info or metric lines; their warnings and
 * errors are marked "[rank N]". */
void log_set_rank(int rank);

#endif
