/*  ztwist/test_clock.h - a manual clock for tests: time moves only when the test says so
 *
 *  Twisted's task.Clock. A test clock implements the clock interface (<ztwist/clock.h>), so code
 * written against a `const zt_clock_t *` (Deferred timeouts, LoopingCall, defer_later) runs on it
 * exactly as on the reactor, and a whole reactor can run on it (zt_reactor_new_with_clock,
 * Twisted's MemoryReactorClock), but deterministically: the clock starts at 0 seconds, and time
 * moves only by zt_test_clock_advance, which runs every call that falls due, in time order (calls
 * due at the same time in the order they were scheduled). No sleeping, no real time, no threads:
 *
 *      zt_test_clock_t *clock = zt_test_clock_new();
 *      zt_deferred_t *d = zt_defer_later(zt_test_clock_clock(clock), 3.0, compute, &input);
 *      zt_test_clock_advance(clock, 2.0);     // nothing yet
 *      zt_test_clock_advance(clock, 1.0);     // compute runs now, d fires
 *      ...
 *      zt_deferred_unref(&d);
 *      zt_test_clock_destroy(&clock);
 *
 *  Semantics, as Twisted's Clock: a call scheduled with delay 0 runs at the next advance (even an
 * advance by 0), never inside the call that scheduled it; a call scheduled by a call while the
 * clock advances runs within that same advance when it falls due by the advance's end; a call may
 * itself advance the clock (a call that "takes time"), and the calls that fall due run inside it.
 *
 *  Threads: a test clock is not thread-safe; use it on one thread.  */
#ifndef ZTWIST_TEST_CLOCK_H
#define ZTWIST_TEST_CLOCK_H

#include <ztwist/clock.h>
#include <ztwist/common.h>

typedef struct zt_test_clock zt_test_clock_t;

/**
 *  Create a test clock at 0 seconds with no pending calls.
 *  @return a new clock the caller owns, or NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_test_clock_t *zt_test_clock_new(void);

/**
 *  Destroy the clock and NULL the pointer. Pending calls are dropped without running; their args
 * are the caller's and are not touched. Destroying the clock from inside one of its calls, or while
 * a zt_delayed_call_t handle on it is not released, is a caller bug (an assertion). A reactor made
 * on the clock must be destroyed first.
 *  @param self_p  NULL or a NULL clock does nothing
 */
ZT_EXPORT void zt_test_clock_destroy(zt_test_clock_t **self_p);

/**
 *  The clock interface of this clock, to hand to code that schedules on a `const zt_clock_t *`
 * (zt_clock_call_later). Its handles are zt_delayed_call_t, as the reactor's: held until released,
 * they answer is_active and get_time, and cancel, reset and delay on one that ran or was cancelled
 * return ZT_EALREADY or ZT_ECANCELLED. A reactor can run on this clock: zt_reactor_new_with_clock.
 *  @return a pointer borrowed from self, valid as long as self
 */
ZT_EXPORT const zt_clock_t *zt_test_clock_clock(zt_test_clock_t *self);

/** The clock's current time in seconds: 0 at creation plus every advance. */
ZT_EXPORT double zt_test_clock_seconds(const zt_test_clock_t *self);

/**
 *  Move time forward by seconds and run every call that falls due, in time order, ties in the order
 * they were scheduled, including calls scheduled while advancing that fall due by the end of the
 * advance. Each call sees zt_test_clock_seconds at the advance's end (as Twisted's Clock: time
 * moves first, then the due calls run). May be called from inside a call.
 *  @param seconds  how far to move; 0 runs the calls already due
 *  @return 0; ZT_EINVAL when seconds is negative or not a number (nothing changes)
 */
ZT_EXPORT int zt_test_clock_advance(zt_test_clock_t *self, double seconds);

/**
 *  Advance by each step in turn (Twisted's Clock.pump): zt_test_clock_advance(steps[0]), then
 * steps[1], and so on.
 *  @param steps  count steps; may be NULL when count is 0
 *  @return 0; ZT_EINVAL when a step is negative or not a number (checked before any advance, so
 * nothing changes)
 */
ZT_EXPORT int zt_test_clock_pump(zt_test_clock_t *self, const double *steps, size_t count);

/** How many calls are scheduled and have neither run nor been cancelled (Twisted's
 * len(getDelayedCalls())). */
ZT_EXPORT size_t zt_test_clock_pending(const zt_test_clock_t *self);

/**
 *  When the earliest pending call is due.
 *  @param when  set to the due time in clock seconds when there is a pending call; may be NULL
 *  @return true when a call is pending, false when none is (when is not touched)
 */
ZT_EXPORT bool zt_test_clock_next_due(const zt_test_clock_t *self, double *when);

#endif
