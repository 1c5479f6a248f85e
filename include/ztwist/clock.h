/*  ztwist/clock.h - the clock interface: Twisted's IReactorTime and DelayedCall
 *
 *  futures/ is the lowest layer and knows nothing of the reactor, yet Deferred timeouts must
 * schedule a call for later. A zt_clock_t is that need as an interface: the reactor implements it
 * (zt_reactor_clock) and so does the manual test clock (zt_test_clock_clock), and code written
 * against it works on either: the time (zt_clock_seconds), calls for later (zt_clock_call_later)
 * and their handles (zt_delayed_call_t: cancel, reset, delay, get_time, is_active), and the list of
 * pending calls (zt_clock_delayed_calls). zt_reactor_call_later hands out the same handles, so one
 * set of functions serves every timed call in a program.
 *
 *  A handle is owned by whoever asked for it (call_p) and is released with zt_delayed_call_release,
 * which does not cancel. It stays valid after the call ran or was cancelled, so asking whether it
 * is active, or cancelling it, is always safe while it is held. A call scheduled without a handle
 * cannot be cancelled.
 *
 *  Threads: a clock and its handles are used on the thread that runs the clock (the reactor
 * thread, or the test's thread for a test clock).  */
#ifndef ZTWIST_CLOCK_H
#define ZTWIST_CLOCK_H

#include <ztwist/common.h>

/** A call scheduled on a clock. */
typedef void zt_clock_fn(void *arg);

/** A handle on a call scheduled on a clock (Twisted's DelayedCall). Opaque; an implementation's
 * handle object starts with a `const zt_clock_t *` naming the clock that owns it. */
typedef struct zt_delayed_call zt_delayed_call_t;

/** A delayed call's state, as the clock implementations report it. */
typedef enum zt_delayed_call_state {
    ZT_DELAYED_CALL_PENDING = 0,  /* scheduled, will run */
    ZT_DELAYED_CALL_CALLED = 1,   /* ran (or is running) */
    ZT_DELAYED_CALL_CANCELLED = 2 /* cancelled; will never run */
} zt_delayed_call_state_t;

/** The clock interface: an implementation object and its operations. Built by the clock's owner
 * (the reactor, the test clock); users only pass a `const zt_clock_t *` around and call through
 * the zt_clock_* and zt_delayed_call_* functions, which state the contract each operation keeps. */
typedef struct zt_clock {
    void *self; /* Borrowed: the implementation (the reactor, the test clock) */
    /* zt_clock_seconds */
    double (*seconds)(void *self);
    /* zt_clock_call_later */
    int (*call_later)(void *self, double delay, zt_clock_fn *fn, void *arg,
                      zt_delayed_call_t **call_p);
    /* zt_delayed_call_cancel */
    int (*cancel)(void *self, zt_delayed_call_t *call);
    /* zt_delayed_call_reset */
    int (*reset)(void *self, zt_delayed_call_t *call, double seconds);
    /* zt_delayed_call_delay */
    int (*delay)(void *self, zt_delayed_call_t *call, double seconds);
    /* zt_delayed_call_get_time */
    double (*get_time)(void *self, const zt_delayed_call_t *call);
    /* the call's zt_delayed_call_state_t */
    zt_delayed_call_state_t (*state)(void *self, const zt_delayed_call_t *call);
    /* zt_delayed_call_release */
    void (*release)(void *self, zt_delayed_call_t *call);
    /* zt_clock_delayed_calls */
    size_t (*delayed_calls)(void *self, double *times, size_t max);
} zt_clock_t;

/** The clock's current time in seconds (the reactor's monotonic clock, or a test clock's time). */
ZT_EXPORT double zt_clock_seconds(const zt_clock_t *clock);

/**
 *  Call fn(arg) after seconds on the clock (Twisted's callLater). Never runs before this returns,
 * not even with 0; calls due at the same time run in the order they were scheduled.
 *  @param seconds  the delay; negative counts as 0
 *  @param fn       the call; required
 *  @param arg      passed to fn; borrowed
 *  @param call_p   NULL for fire-and-forget; otherwise receives a handle the caller owns and must
 * release with zt_delayed_call_release (which does not cancel)
 *  @return 0; ZT_EINVAL when fn is NULL or seconds is not a number; ZT_ENOMEM. On failure fn never
 * runs and *call_p is left alone.
 */
ZT_EXPORT int zt_clock_call_later(const zt_clock_t *clock, double seconds, zt_clock_fn *fn,
                                  void *arg, zt_delayed_call_t **call_p);

/**
 *  The due times of the pending calls, earliest first (Twisted's getDelayedCalls, as times).
 *  @param times  receives up to max due times in clock seconds; may be NULL when max is 0
 *  @return how many calls are pending (neither run nor cancelled), which may exceed max
 */
ZT_EXPORT size_t zt_clock_delayed_calls(const zt_clock_t *clock, double *times, size_t max);

/**
 *  Cancel a pending call so that it never runs.
 *  @return 0; ZT_EALREADY when it has run already; ZT_ECANCELLED when it was cancelled already
 */
ZT_EXPORT int zt_delayed_call_cancel(zt_delayed_call_t *self);

/**
 *  Reschedule a pending call to run seconds from now (Twisted's reset). It then orders after calls
 * scheduled before the reset for the same time.
 *  @return 0; ZT_EALREADY when it has run; ZT_ECANCELLED when it was cancelled; ZT_EINVAL when
 * seconds is not a number; ZT_ENOMEM
 */
ZT_EXPORT int zt_delayed_call_reset(zt_delayed_call_t *self, double seconds);

/**
 *  Move a pending call seconds later than its scheduled time (Twisted's delay; negative moves it
 * earlier).
 *  @return 0; ZT_EALREADY when it has run; ZT_ECANCELLED when it was cancelled; ZT_EINVAL when
 * seconds is not a number; ZT_ENOMEM
 */
ZT_EXPORT int zt_delayed_call_delay(zt_delayed_call_t *self, double seconds);

/** The time the call is (or was) scheduled for, on its clock's zt_clock_seconds. */
ZT_EXPORT double zt_delayed_call_get_time(const zt_delayed_call_t *self);

/** Whether the call is still pending: neither run nor cancelled (Twisted's active()). */
ZT_EXPORT bool zt_delayed_call_is_active(const zt_delayed_call_t *self);

/** Whether the call has run (Twisted's `called`). */
ZT_EXPORT bool zt_delayed_call_is_called(const zt_delayed_call_t *self);

/** Whether the call was cancelled (Twisted's `cancelled`). */
ZT_EXPORT bool zt_delayed_call_is_cancelled(const zt_delayed_call_t *self);

/**
 *  Release a handle and NULL the pointer. Does not cancel: a pending call still runs.
 *  @param self_p  NULL or a NULL handle does nothing
 */
ZT_EXPORT void zt_delayed_call_release(zt_delayed_call_t **self_p);

#endif
