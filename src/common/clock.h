/*
 * clock.h - monotonic time in seconds, for durations, rates and deadlines.
 */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

/* Seconds since an arbitrary fixed point; never jumps with the wall clock. */
double clock_now_s(void);

#endif
