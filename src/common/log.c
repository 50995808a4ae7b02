/*
 * log.c - timestamped log lines on stderr, metric lines on stdout (see log.h).
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

/* In a data-parallel job: this process's rank. Rank 0 speaks for the job; the others only
 * warn and fail, and say who they are. */
static int log_rank = 0;

void log_set_rank(int rank)
{
    log_rank = rank;
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s ", level);
    if (log_rank > 0)
        n += snprintf(line + n, sizeof line - (size_t)n, "[rank %d] ", log_rank);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    fprintf(stderr, "%s\n", line); /* one call: lines from threads do not interleave */
}

void log_info(const char *fmt, ...)
{
    if (log_rank > 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line("INFO", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("WARN", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("ERROR", fmt, ap);
    va_end(ap);
}

void log_metric(const char *fmt, ...)
{
    if (log_rank > 0)
        return;
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("%s\n", line);
    fflush(stdout);
}
