/*  ztwist/clock.h - the clock interface that timeouts, LoopingCall and defer_later schedule on
 *
 *  futures/ is the lowest layer and knows nothing of the reactor, yet Deferred timeouts must
 * schedule a call for later. A zt_clock_t is that need as an interface: the reactor implements it
 * (zt_reactor_clock) and so does the manual test clock (zt_test_clock_clock), and code written
 * against it works on either.
 *
 *  Threads: a clock is used on the thread that runs it (the reactor thread).  */
#ifndef ZTWIST_CLOCK_H
#define ZTWIST_CLOCK_H

#include <ztwist/common.h>

/** A call scheduled on a clock. */
typedef void zt_clock_fn(void *arg);

/** The clock interface: an implementation object and its operations. Built by the clock's owner;
 * users only pass a `const zt_clock_t *` around and call through the zt_clock_* helpers below. */
typedef struct zt_clock {
    void *self; /* Borrowed: the implementation (the reactor, the test clock) */
    /* The clock's current time in seconds. */
    double (*seconds)(void *self);
    /* Schedule fn(arg) after delay seconds (< 0 counts as 0; never runs before this returns).
     * Returns an opaque handle that stays valid until fn has run or the call was cancelled, or NULL
     * when out of memory. */
    void *(*call_later)(void *self, double delay, zt_clock_fn *fn, void *arg);
    /* Cancel a pending call. The handle must be one that has neither run nor been cancelled; after
     * this it is invalid. */
    void (*cancel)(void *self, void *handle);
} zt_clock_t;

/** The clock's current time in seconds. */
static inline double
zt_clock_seconds(const zt_clock_t *clock)
{
    return clock->seconds(clock->self);
}

/** Schedule fn(arg) after delay seconds. @return a handle valid until fn runs or is cancelled, or
 * NULL (out of memory; fn will not run). */
static inline void *
zt_clock_call_later(const zt_clock_t *clock, double delay, zt_clock_fn *fn, void *arg)
{
    return clock->call_later(clock->self, delay, fn, arg);
}

/** Cancel a call that has neither run nor been cancelled. */
static inline void
zt_clock_cancel(const zt_clock_t *clock, void *handle)
{
    clock->cancel(clock->self, handle);
}

#endif
