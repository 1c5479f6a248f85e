/*  base/time.c - the monotonic clock
 *
 *  CLOCK_MONOTONIC, read through the vDSO (no system call where the kernel's clock source allows
 * it, as kvm-clock and tsc do). Every zt_reactor_call_later reads it once, so its cost is part of
 * each schedule. CLOCK_MONOTONIC_COARSE is cheaper but ticks only every few milliseconds, which
 * would let a call run that much before it is due; docs/performance.md has the figures.  */
#include "base/base.h"

#include <time.h>

int64_t
zt_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double
zt_time_now(void)
{
    return (double)zt_time_now_ns() / 1e9;
}
