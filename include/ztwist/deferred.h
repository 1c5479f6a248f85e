/*  ztwist/deferred.h - a result that is not ready yet, with Twisted's semantics
 *
 *  A Deferred fires exactly once, with a value (zt_deferred_callback) or a Failure
 * (zt_deferred_errback), then runs its chain of callback/errback pairs in order, each pair
 * receiving the previous pair's result: a value goes to the callback, a Failure to the errback. A
 * callback that returns a failure switches the chain to the errback path; an errback that returns a
 * value recovers it. A callback may return zt_wait_for(other): the chain pauses until `other` fires
 * and then goes on with its result. The runner is iterative, so a chain of a million Deferreds,
 *  each waiting on the next, needs no more stack than a chain of one. The result passed between
 * callbacks is a zt_result_t; <ztwist/result.h> states the ownership rule for it.
 *
 *  Lifetime: reference counting. zt_deferred_new returns one reference, owned by the caller.
 * Whoever must fire the Deferred later and whoever hands it to someone else each hold a reference
 * (zt_deferred_ref) and drop it with zt_deferred_unref when done. The usual pattern:
 *
 *      zt_deferred_t *get_data(void) {            // a producer
 *          zt_deferred_t *d = zt_deferred_new();
 *          remember(zt_deferred_ref(d));          // the producer's reference, to fire d later
 *          return d;                              // the caller's reference
 *      }
 *      zt_deferred_t *d = get_data();             // a consumer
 *      zt_deferred_add_callback(d, on_data, NULL);
 *      zt_deferred_unref(&d);                     // the chain runs when the producer fires;
 * nothing leaks
 *
 *  The chain itself holds references where it must: a Deferred waiting on another keeps that other
 * alive, and the other keeps its waiter alive until it fires, so the rest of the waiter's chain
 * runs even when nobody else holds the waiter. A group of Deferreds joined by waits (chains,
 * circles, several waiters on one Deferred) that nothing outside references any more, and that can
 * therefore never run, is freed when its last outside reference goes, as Python's collector would
 * free it; a Failure it still holds is reported. Limit: references made by
 * zt_deferred_chain_deferred are followed only from the chaining side, so a cycle of
 * chain_deferred calls whose last outside reference is dropped on a Deferred that is only a chain
 * target is not found, and leaks. Fire or cancel such Deferreds instead of abandoning them.
 *
 *  Unhandled failures: when the last reference to a Deferred goes and its result is still a
 * Failure, the failure was handled by nobody. It is reported exactly once through the handler set
 * with zt_deferred_set_unhandled_handler (by default: logged at ZT_LOG_ERROR with its origin and
 * causes). A Deferred that never fired is not reported. C has no garbage collector, so the report
 * comes when the last reference is dropped, not at some later collection.
 *
 *  Differences from Twisted, by design: a callback receives and returns a zt_result_t instead of
 * raising; the Deferred takes ownership of whatever it is fired with, even when the fire is
 * refused; reference counting replaces the garbage collector; a callback may not return its own
 * Deferred (an assertion, where Twisted warns). A result has one owner, so while a Deferred runs a
 * callback it holds no result of its own: waiting on it from inside that callback gets no value,
 * where Twisted would share the one being worked on. A Failure held by a paused Deferred is
 * reported when the last reference goes; Twisted only reports a Failure its runner finished with.
 *
 *  Threads: every function here is for the thread that owns the Deferred (the reactor thread):
 * Deferreds are not thread-safe. Every build records the thread that created each Deferred and
 * aborts, naming the call and both threads, when another thread touches it. Workers hand results
 * back through the reactor (zt_reactor_call_from_thread) or the pool, which fire the Deferred on
 * its own thread.  */
#ifndef ZTWIST_DEFERRED_H
#define ZTWIST_DEFERRED_H

#include <ztwist/clock.h>
#include <ztwist/common.h>
#include <ztwist/failure.h>
#include <ztwist/result.h>

/**
 *  A link in a chain. Receives the chain's current result, which it owns, and returns the new
 * result, which goes back to the chain (return `result` to pass it on unchanged).
 *  @param arg  the arg given when the link was added
 */
typedef zt_result_t zt_deferred_fn(zt_result_t result, void *arg);

/**
 *  A canceller: called by zt_deferred_cancel on a Deferred that has not fired, to stop the work
 * behind it. It may fire the Deferred (with any result); if it does not, the Deferred fails with
 * ZT_CANCELLED_ERROR afterwards.
 */
typedef void zt_canceller_fn(zt_deferred_t *d, void *arg);

/**
 *  Create a Deferred that has not fired.
 *  @return a Deferred with one reference, owned by the caller; NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_new(void);

/**
 *  Create a Deferred with a canceller (Twisted's Deferred(canceller)).
 *  @param canceller  called at most once, by zt_deferred_cancel before the Deferred fires; NULL for
 * none
 *  @param arg        passed to the canceller; borrowed
 *  @return a Deferred with one reference, owned by the caller; NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_new_with_canceller(zt_canceller_fn *canceller,
                                                                     void *arg);

/**
 *  Take one more reference.
 *  @return self, for chaining
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_ref(zt_deferred_t *self);

/**
 *  Drop a reference and NULL the pointer. The last reference frees the Deferred, its pending links
 * (their args are the caller's and are not touched) and the result it holds; a result that is a
 * Failure is reported as unhandled. Dropping the last reference from inside one of the Deferred's
 * own callbacks is allowed: the free waits until the chain stops running.
 *  @param self_p  NULL or a NULL Deferred does nothing
 */
ZT_EXPORT void zt_deferred_unref(zt_deferred_t **self_p);

/**
 *  Fire with a result and run the chain. The Deferred takes ownership of result in every case.
 *  @param result  usually zt_ok(...); a zt_err(...) result fires the errback path, as
 * zt_deferred_errback does
 *  @return 0; ZT_EALREADY when the Deferred has fired already (result is freed, nothing changes) --
 * except once after a cancel of a Deferred that has no canceller, when the late fire is swallowed
 * silently and 0 is returned; ZT_EINVAL when result is a zt_wait_for(...) (result is released)
 */
ZT_EXPORT int zt_deferred_callback(zt_deferred_t *self, zt_result_t result);

/**
 *  Fire with a Failure and run the chain. The Deferred takes ownership of failure in every case.
 *  @param failure  the failure; NULL becomes a ZT_ENOMEM system failure (an allocation failed
 * upstream)
 *  @return 0, or ZT_EALREADY as for zt_deferred_callback
 */
ZT_EXPORT int zt_deferred_errback(zt_deferred_t *self, zt_failure_t *failure);

/**
 *  Append a callback/errback pair. If the Deferred has fired and is not paused or waiting, the pair
 * runs before this returns; if a callback of this Deferred is running, the pair runs after it,
 * never nested inside it. In a pair, the errback never sees a failure returned by its own callback:
 * that goes to the next pair.
 *  @param callback  runs when the chain holds a value; NULL passes the value on
 *  @param errback   runs when the chain holds a failure; NULL passes the failure on
 *  @param arg       given to whichever runs; borrowed, must stay valid until the pair has run or
 * the Deferred is freed
 *  @return 0; ZT_EINVAL when both functions are NULL; ZT_ENOMEM (the pair is not added)
 */
ZT_EXPORT int zt_deferred_add_callbacks(zt_deferred_t *self, zt_deferred_fn *callback,
                                        zt_deferred_fn *errback, void *arg);

/** zt_deferred_add_callbacks(self, callback, NULL, arg). */
ZT_EXPORT int zt_deferred_add_callback(zt_deferred_t *self, zt_deferred_fn *callback, void *arg);

/** zt_deferred_add_callbacks(self, NULL, errback, arg). */
ZT_EXPORT int zt_deferred_add_errback(zt_deferred_t *self, zt_deferred_fn *errback, void *arg);

/** zt_deferred_add_callbacks(self, fn, fn, arg): fn runs for a value or a failure. */
ZT_EXPORT int zt_deferred_add_both(zt_deferred_t *self, zt_deferred_fn *fn, void *arg);

/**
 *  Fire other with self's result when it arrives (Twisted's chainDeferred): other gets the value or
 * failure and self's chain goes on with no value (None). self holds a reference to other until
 * then.
 *  @return 0; ZT_EINVAL when other is self; ZT_ENOMEM
 */
ZT_EXPORT int zt_deferred_chain_deferred(zt_deferred_t *self, zt_deferred_t *other);

/** Stop running callbacks until the matching zt_deferred_unpause. Pauses nest, up to 65,535 deep
 * (deeper is a caller bug: an assertion trips). */
ZT_EXPORT void zt_deferred_pause(zt_deferred_t *self);

/** Undo one zt_deferred_pause; at zero pauses, run whatever callbacks are due. Unpausing an
 * unpaused Deferred does nothing. */
ZT_EXPORT void zt_deferred_unpause(zt_deferred_t *self);

/**
 *  Cancel, following Twisted's rules. Not yet fired: call the canceller if there is one; if the
 * Deferred is still not fired after that, fail it with ZT_CANCELLED_ERROR. Without a canceller the
 * next fire is then swallowed silently (once); with one that did not fire, a later fire returns
 * ZT_EALREADY, as in Twisted. Fired and waiting on another Deferred: cancel that other one. Fired
 * otherwise: nothing happens.
 */
ZT_EXPORT void zt_deferred_cancel(zt_deferred_t *self);

/**
 *  Time the Deferred out (Twisted's addTimeout): schedule a cancel after seconds on clock, and add
 * a pair that cancels that timer when the Deferred fires first. If the timer wins, the
 * ZT_CANCELLED_ERROR the cancel produces becomes a ZT_TIMEOUT_ERROR "timed out after N seconds" (a
 * canceller that fires with something else keeps its result). The timeout covers the links added
 * before this call and none added after it.
 *  @param clock  the reactor's (zt_reactor_clock) or a test clock; borrowed, must outlive the
 * Deferred
 *  @return 0; ZT_EINVAL when seconds < 0; ZT_ENOMEM (no timeout was added)
 */
ZT_EXPORT int zt_deferred_add_timeout(zt_deferred_t *self, double seconds, const zt_clock_t *clock);

/** Whether the Deferred has been fired (Twisted's `called`). */
ZT_EXPORT bool zt_deferred_is_called(const zt_deferred_t *self);

/** Whether the Deferred is paused (by zt_deferred_pause, or while waiting on another Deferred). */
ZT_EXPORT bool zt_deferred_is_paused(const zt_deferred_t *self);

/**
 *  Peek at the current result: the value or failure at the end of the chain run so far.
 *  @return a pointer borrowed from self, valid until the next call on self; NULL when the Deferred
 * has not fired or its chain is waiting on another Deferred
 */
ZT_EXPORT const zt_result_t *zt_deferred_peek(const zt_deferred_t *self);

/**
 *  A Deferred that has fired with value (Twisted's succeed).
 *  @param value  a value or failure; the Deferred takes ownership. A zt_wait_for(...) result is a
 * caller bug (an assertion): wait inside a callback instead
 *  @return a new reference, or NULL when out of memory (value is released)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_succeed(zt_result_t value);

/**
 *  A Deferred that has failed with failure (Twisted's fail).
 *  @param failure  taken over; NULL becomes a ZT_ENOMEM failure
 *  @return a new reference, or NULL when out of memory (failure is destroyed)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_fail(zt_failure_t *failure);

/** A function whose result may be a value, a failure or a Deferred (zt_wait_for). */
typedef zt_result_t zt_maybe_fn(void *arg);

/**
 *  Call fn(arg) now and always get a Deferred (Twisted's maybeDeferred): fired with fn's value or
 * failure, or, when fn returns zt_wait_for(d), d itself.
 *  @return a new reference, or NULL when out of memory (fn's result is released)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_maybe_deferred(zt_maybe_fn *fn, void *arg);

/**
 *  Called with each unhandled failure: a Deferred's final result when its last reference went.
 *  @param failure  borrowed; destroyed after the handler returns
 *  @param arg      the arg given with the handler
 */
typedef void zt_unhandled_fn(const zt_failure_t *failure, void *arg);

/**
 *  Route unhandled failures to handler. Process-wide; set it at start-up or in a test's setup,
 * while no reactor runs.
 *  @param handler  NULL restores the default, which logs the failure with its origin at
 * ZT_LOG_ERROR
 *  @param arg      passed to handler; borrowed
 */
ZT_EXPORT void zt_deferred_set_unhandled_handler(zt_unhandled_fn *handler, void *arg);

/**
 *  Strict mode, for tests: after an unhandled failure is reported, abort the process so that the
 * test fails. Process-wide; off by default, and on when the environment variable ZTWIST_STRICT is
 * set to 1.
 */
ZT_EXPORT void zt_deferred_set_strict(bool strict);

/** How many unhandled failures have been reported in this process. Safe from any thread. */
ZT_EXPORT uint64_t zt_deferred_unhandled_count(void);

#endif
