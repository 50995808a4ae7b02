/*
 * stop_flag.c - the process's stop flag (see stop_flag.h).
 */
#include "common/stop_flag.h"

static volatile sig_atomic_t flag;

volatile sig_atomic_t *stop_flag(void)
{
    return &flag;
}
