/*
 * stop_flag.h - the process's "a stop signal came" flag (SIGTERM/SIGINT), set from the signal
 * handler and read by long set-up work (directory walks, data listing) so that a job stopped
 * before training begins ends promptly instead of finishing its set-up first.
 */
#ifndef COMMON_STOP_FLAG_H
#define COMMON_STOP_FLAG_H

#include <signal.h>
#include <stdbool.h>

/* The flag itself, for a signal handler to set and for code that keeps a pointer to it. */
volatile sig_atomic_t *stop_flag(void);
static inline bool stop_flag_raised(void)
{
    return *stop_flag() != 0;
}

#endif
