/*  ztwist/time.h - the monotonic clock
 *
 *  All of ztwist's deadlines, timers and measurements use one monotonic clock (CLOCK_MONOTONIC): it
 * never jumps when the wall clock is set. Times are seconds as a double, as in Twisted, or
 * nanoseconds where precision matters.
 *
 *  Threads: safe from any thread.  */
#ifndef ZTWIST_TIME_H
#define ZTWIST_TIME_H

#include <ztwist/common.h>

/**
 *  The monotonic clock in seconds, from an arbitrary fixed origin.
 *  @return seconds, with nanosecond resolution where the system has it
 */
ZT_EXPORT double zt_time_now(void);

/**
 *  The monotonic clock in nanoseconds, from the same origin as zt_time_now.
 *  @return nanoseconds
 */
ZT_EXPORT int64_t zt_time_now_ns(void);

#endif
