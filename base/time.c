/*  base/time.c - the monotonic clock  */
#include "base.h"

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
