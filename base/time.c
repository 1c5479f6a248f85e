/*  base/time.c - the monotonic clock
 *
 *  CLOCK_MONOTONIC, read through the vDSO (no system call where the kernel's clock source allows
 * it, as kvm-clock and tsc do). Every zt_reactor_call_later reads it once, so its cost is part of
 * each schedule: about 26 ns on the 2-vCPU KVM machine of 2026-11. CLOCK_MONOTONIC_COARSE costs
 * 3 ns there but ticks every 4 ms, which would let a call run up to 4 ms before it is due.  */
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
