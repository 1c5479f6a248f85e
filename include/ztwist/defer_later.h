/*  ztwist/defer_later.h - call a function after a delay and get its result as a Deferred
 *
 *  Twisted's task.deferLater: zt_defer_later(clock, delay, fn, arg) returns a Deferred that fires,
 * delay seconds later, with what fn(arg) returns: its value, its failure, or -- when fn returns
 * zt_wait_for(d) -- d's result. Cancelling the Deferred before the delay is up cancels the timer:
 * fn is never called and the Deferred fails with ZT_CANCELLED_ERROR.
 *
 *      static zt_result_t compute(void *arg) { return zt_ok_int(*(int *)arg * 3); }
 *      zt_deferred_t *d = zt_defer_later(clock, 2.0, compute, &input);
 *      zt_deferred_add_callbacks(d, on_result, on_error, NULL);
 *      zt_deferred_unref(&d);        // the timer keeps the Deferred alive until it fires
 *
 *  The timer holds a reference to the Deferred until it fires or is cancelled, so a timer that
 * never runs (its clock is destroyed with the call pending) leaks that Deferred: let the delay
 * pass or cancel the Deferred before the clock goes.
 *
 *  Threads: for the thread that runs the clock (the reactor thread).  */
#ifndef ZTWIST_DEFER_LATER_H
#define ZTWIST_DEFER_LATER_H

#include <ztwist/clock.h>
#include <ztwist/common.h>
#include <ztwist/deferred.h>

/**
 *  Call fn(arg) after delay seconds on clock, and fire the returned Deferred with its result.
 *  @param clock  the clock (zt_reactor_clock, zt_test_clock_clock); borrowed, must outlive the call
 *  @param delay  seconds; a negative delay (or NaN) counts as 0. Never fires before this returns.
 *  @param fn     called once the delay is up; NULL fires the Deferred with no value
 *  @param arg    given to fn; borrowed, never freed by ztwist
 *  @return a new reference the caller owns, or NULL when out of memory (fn will not be called)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_defer_later(const zt_clock_t *clock, double delay,
                                                     zt_maybe_fn *fn, void *arg);

#endif
