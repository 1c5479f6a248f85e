/*  ztwist/looping_call.h - call a function every interval seconds (Twisted's task.LoopingCall)
 *
 *  A LoopingCall calls fn(arg) every interval seconds on a clock (the reactor's, zt_reactor_clock,
 * or a test clock, zt_test_clock_clock), from the moment it is started until it is stopped or fn
 * fails. fn is a zt_maybe_fn: it returns a value (ignored), a failure (the loop stops and the
 * Deferred returned by start fails with it) or zt_wait_for(d), and then the next call waits until
 * d has fired (a failure of d stops the loop as a failure of fn does).
 *
 *      static zt_result_t tick(void *arg) {
 *          struct app *app = arg;
 *          app->ticks++;
 *          return zt_ok_none();
 *      }
 *      zt_looping_call_t *loop = zt_looping_call_new(clock, tick, &app);
 *      zt_deferred_t *done = NULL;
 *      zt_looping_call_start(loop, 0.5, true, &done);   // tick now, then every 0.5 s
 *      zt_deferred_add_callbacks(done, on_stopped, on_failed, &app);
 *      zt_deferred_unref(&done);
 *      ...
 *      zt_looping_call_stop(loop);                       // on_stopped runs
 *      zt_looping_call_destroy(&loop);
 *
 *  Timing, as Twisted: the calls are due at start + k * interval. When a call comes late, or fn
 * (or the Deferred it returned) takes longer than an interval, the calls missed in between are
 * not made in a burst: the next call is at the next multiple of the interval still in the future,
 * and the number of intervals that elapsed is counted (zt_looping_call_count inside fn, like the
 * count Twisted's LoopingCall.withCount passes; zt_looping_call_missed for the total).
 *
 *  Threads: every function here is for the thread that runs the clock (the reactor thread).  */
#ifndef ZTWIST_LOOPING_CALL_H
#define ZTWIST_LOOPING_CALL_H

#include <ztwist/clock.h>
#include <ztwist/common.h>
#include <ztwist/deferred.h>

typedef struct zt_looping_call zt_looping_call_t;

/**
 *  Create a LoopingCall that is not running.
 *  @param clock  the clock to schedule on; borrowed, must outlive the LoopingCall
 *  @param fn     called each interval with arg; must not be NULL
 *  @param arg    given to fn; borrowed, never freed by ztwist
 *  @return a new LoopingCall the caller owns, or NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_looping_call_t *zt_looping_call_new(const zt_clock_t *clock,
                                                              zt_maybe_fn *fn, void *arg);

/**
 *  Destroy the LoopingCall and NULL the pointer. A running loop is stopped first: its timer is
 * cancelled and the Deferred returned by start fires with no value, as for zt_looping_call_stop,
 * before this returns -- even when fn's Deferred is still pending (that Deferred is left alone,
 * and its result, when it comes, is dropped). Destroying the loop from inside fn is a caller bug
 * (an assertion); destroying it from a callback of the Deferred returned by start is allowed.
 *  @param self_p  NULL or a NULL LoopingCall does nothing
 */
ZT_EXPORT void zt_looping_call_destroy(zt_looping_call_t **self_p);

/**
 *  Start calling fn every interval seconds (Twisted's LoopingCall.start).
 *  @param interval    seconds between calls, >= 0 and finite; 0 calls fn again at once each time
 * (on the reactor, once per turn of the loop; on a test clock, within the same advance)
 *  @param now         true: call fn before this returns; false: first call after one interval
 *  @param deferred_p  when not NULL, set to a new reference (the caller owns it) to a Deferred that
 * fires with no value when the loop is stopped, or fails with fn's failure when fn fails (the loop
 * stops then). With now, it may have fired already when this returns. Untouched on error. NULL:
 * the LoopingCall keeps the only reference, and a failure of fn is reported as unhandled.
 *  @return 0; ZT_EINVAL for a bad interval; ZT_ESTATE when the loop is running, or was stopped
 * while fn's Deferred is still pending (the previous start's Deferred has not fired yet);
 * ZT_ENOMEM. fn is not called on error.
 */
ZT_EXPORT int zt_looping_call_start(zt_looping_call_t *self, double interval, bool now,
                                    zt_deferred_t **deferred_p);

/**
 *  Stop the loop (Twisted's LoopingCall.stop): fn is not called again. When no call of fn is in
 * progress, the Deferred returned by start fires with no value before this returns; from inside fn,
 * or while fn's Deferred is pending, it fires when fn returns or that Deferred fires (failing
 * instead when fn or that Deferred fails).
 *  @return 0; ZT_ESTATE when the loop is not running
 */
ZT_EXPORT int zt_looping_call_stop(zt_looping_call_t *self);

/**
 *  Skip the pending call and restart the timer from now (Twisted's LoopingCall.reset): the next
 * call is one interval from now, and the intervals count from now. While a call of fn is in
 * progress (or its Deferred is pending) there is no pending call, and nothing changes.
 *  @return 0; ZT_ESTATE when the loop is not running; ZT_ENOMEM (the loop fails as for a failure of
 * fn)
 */
ZT_EXPORT int zt_looping_call_reset(zt_looping_call_t *self);

/** Whether the loop is running: true from start until stop, or until fn fails. */
ZT_EXPORT bool zt_looping_call_is_running(const zt_looping_call_t *self);

/** The interval given to the latest start, in seconds; 0 before the first start. */
ZT_EXPORT double zt_looping_call_interval(const zt_looping_call_t *self);

/**
 *  The count of the latest call of fn, as Twisted's LoopingCall.withCount passes it: the number of
 * intervals that elapsed since the call before (1 when on time, n when n - 1 calls were missed;
 * always 1 with an interval of 0). Read it inside fn. 0 before the first call.
 */
ZT_EXPORT uint64_t zt_looping_call_count(const zt_looping_call_t *self);

/** The number of calls missed (intervals skipped, not made up) since the latest start: the sum of
 * count - 1 over the calls made. */
ZT_EXPORT uint64_t zt_looping_call_missed(const zt_looping_call_t *self);

#endif
