/*  futures/clock.c - the clock interface's functions: each one forwards to the clock that owns it
 *
 *  A delayed call's handle object starts with a `const zt_clock_t *` naming its clock (the
 * reactor's timer heap, a test clock), so the zt_delayed_call_* functions need no clock argument
 * and serve zt_reactor_call_later's handles and zt_clock_call_later's alike. The contracts are in
 * <ztwist/clock.h>; each implementation keeps them.  */
#include "base/base.h"

#include <ztwist/clock.h>

#include <string.h>

/* The clock that owns a handle: the first member of every implementation's handle object. */
static const zt_clock_t *
s_clock_of(const zt_delayed_call_t *call)
{
    ZT_ASSERT(call);
    const zt_clock_t *clock = NULL;
    memcpy(&clock, (const void *)call, sizeof clock);
    ZT_ASSERT(clock);
    return clock;
}

double
zt_clock_seconds(const zt_clock_t *clock)
{
    ZT_ASSERT(clock);
    return clock->seconds(clock->self);
}

int
zt_clock_call_later(const zt_clock_t *clock, double seconds, zt_clock_fn *fn, void *arg,
                    zt_delayed_call_t **call_p)
{
    ZT_ASSERT(clock);
    return clock->call_later(clock->self, seconds, fn, arg, call_p);
}

size_t
zt_clock_delayed_calls(const zt_clock_t *clock, double *times, size_t max)
{
    ZT_ASSERT(clock);
    ZT_ASSERT(times || max == 0);
    return clock->delayed_calls(clock->self, times, max);
}

int
zt_delayed_call_cancel(zt_delayed_call_t *self)
{
    const zt_clock_t *clock = s_clock_of(self);
    return clock->cancel(clock->self, self);
}

int
zt_delayed_call_reset(zt_delayed_call_t *self, double seconds)
{
    const zt_clock_t *clock = s_clock_of(self);
    return clock->reset(clock->self, self, seconds);
}

int
zt_delayed_call_delay(zt_delayed_call_t *self, double seconds)
{
    const zt_clock_t *clock = s_clock_of(self);
    return clock->delay(clock->self, self, seconds);
}

double
zt_delayed_call_get_time(const zt_delayed_call_t *self)
{
    const zt_clock_t *clock = s_clock_of(self);
    return clock->get_time(clock->self, self);
}

bool
zt_delayed_call_is_active(const zt_delayed_call_t *self)
{
    const zt_clock_t *clock = s_clock_of(self);
    return clock->state(clock->self, self) == ZT_DELAYED_CALL_PENDING;
}

bool
zt_delayed_call_is_called(const zt_delayed_call_t *self)
{
    const zt_clock_t *clock = s_clock_of(self);
    return clock->state(clock->self, self) == ZT_DELAYED_CALL_CALLED;
}

bool
zt_delayed_call_is_cancelled(const zt_delayed_call_t *self)
{
    const zt_clock_t *clock = s_clock_of(self);
    return clock->state(clock->self, self) == ZT_DELAYED_CALL_CANCELLED;
}

void
zt_delayed_call_release(zt_delayed_call_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_delayed_call_t *call = *self_p;
    *self_p = NULL;
    const zt_clock_t *clock = s_clock_of(call);
    clock->release(clock->self, call);
}
