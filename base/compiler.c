/*  base/compiler.c - the scheduling-policy calls of compiler.h
 *
 *  The only source file built with _GNU_SOURCE: SCHED_IDLE is a Linux extension that glibc's
 * <sched.h> declares only under it, and the macro must precede every system header.  */
#if defined(__linux__)
#define _GNU_SOURCE
#endif

#include "base/compiler.h"

#include <sched.h>

#if defined(__linux__) && defined(SCHED_IDLE)
bool
zt__sched_enter_idle(void)
{
    struct sched_param sp = {0};
    return sched_setscheduler(0, SCHED_IDLE, &sp) == 0;
}

bool
zt__sched_leave_idle(void)
{
    struct sched_param sp = {0};
    return sched_setscheduler(0, SCHED_OTHER, &sp) == 0;
}

bool
zt__sched_is_normal(void)
{
    return sched_getscheduler(0) == SCHED_OTHER;
}
#else
bool
zt__sched_enter_idle(void)
{
    return false;
}

bool
zt__sched_leave_idle(void)
{
    return false;
}

bool
zt__sched_is_normal(void)
{
    return true;
}
#endif
