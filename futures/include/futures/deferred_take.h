/*  futures/include/futures/deferred_take.h - the futures layer's interface for coroutines
 *
 *  An await (runtime/coro.c) of a Deferred that has fired takes its result, as a link added with
 * zt_deferred_add_both that returns None would, but without adding and running a link. An await of
 * one that has not fired adds a waiter: a link that the runner hands the result to in place, with
 * no call passing and returning results by value.  */
#ifndef ZTWIST_FUTURES_DEFERRED_TAKE_H
#define ZTWIST_FUTURES_DEFERRED_TAKE_H

#include <ztwist/deferred.h>

/* When self has fired, runs no link, is not paused, does not wait on another Deferred and has no
 * pending link: move its result to *out, leave it None, and return true. Otherwise change nothing
 * and return false (add a link instead). Reactor thread (the Deferred's own). */
bool zt__deferred_take_result(zt_deferred_t *self, zt_result_t *out);

typedef struct zt__deferred_waiter zt__deferred_waiter_t;

/* Called when the chain reaches the waiter, right after its result was stored. It runs inside the
 * runner: it must not fire, add to or cancel Deferreds, nor run user code. */
typedef void zt__deferred_wake_fn(zt__deferred_waiter_t *waiter);

/* A waiter, embedded in its owner's record. */
struct zt__deferred_waiter {
    zt_result_t result;         /* Owned by the waiter's owner once stored: the chain's result */
    zt__deferred_wake_fn *wake; /* tells the owner the result is there */
};

/* Append a waiter to self's chain: when the chain reaches it, the result is moved into
 * waiter->result and waiter->wake(waiter) runs; the chain goes on with None, as after a link that
 * returned None. Runs at once when self has fired and is not paused. The waiter must stay valid
 * until it has run or self is destroyed. Returns 0 or ZT_ENOMEM. Reactor thread. */
int zt__deferred_add_waiter(zt_deferred_t *self, zt__deferred_waiter_t *waiter);

#endif
