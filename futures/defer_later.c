/*  futures/defer_later.c - call a function after a delay and get its result as a Deferred
 *
 *  A small record ties the timer to the Deferred: it holds a reference to the Deferred (so the
 * caller may drop theirs) and the timer's handle (so the canceller can cancel it). It lives exactly
 * as long as the timer: freed when the timer has run and fired the Deferred, or by the canceller,
 * which is only ever called before the Deferred fires.
 *
 *  fn's result reaches the Deferred through zt_deferred_callback, which refuses a zt_wait_for: so a
 * Deferred returned by fn travels as a value with a private free function, and the link added at
 * creation turns it back into zt_wait_for, letting the Deferred's own machinery wait on it (and
 * cancel it, when the returned Deferred is cancelled while waiting, as in Twisted).  */
#include "base/base.h"

#include <ztwist/defer_later.h>

#include <stdlib.h>

/* The timer's record. */
typedef struct s_later {
    const zt_clock_t *clock;   /* Borrowed: the clock the timer is on */
    zt_delayed_call_t *handle; /* Owned: the timer's handle while it is pending, else NULL */
    zt_deferred_t *d;          /* Owned reference: the Deferred to fire */
    zt_maybe_fn *fn;           /* the function to call, or NULL for no value */
    void *arg;                 /* Borrowed: given to fn */
    bool fired;                /* the timer has run: the canceller must leave it alone */
} s_later_t;

/* The free function that marks a Deferred carried as a value (see above). */
static void
s_release_deferred(void *value)
{
    zt_deferred_t *d = value;
    zt_deferred_unref(&d);
}

static zt_result_t
s_unwrap(zt_result_t result, void *arg)
{
    (void)arg;
    if (result.kind == ZT_RESULT_VALUE && result.free_fn == s_release_deferred)
        return zt_wait_for(result.ptr);
    return result;
}

static void
s_on_timer(void *arg)
{
    s_later_t *later = arg;
    later->fired = true;
    zt_delayed_call_release(&later->handle);
    zt_result_t result = later->fn ? later->fn(later->arg) : zt_ok_none();
    if (result.kind == ZT_RESULT_DEFERRED)
        result = zt_ok(result.ptr, s_release_deferred);
    /* Fired now (or swallowed, when fn cancelled it): the canceller cannot be called any more. */
    zt_deferred_callback(later->d, result);
    zt_deferred_unref(&later->d);
    free(later);
}

static void
s_cancel(zt_deferred_t *d, void *arg)
{
    (void)d;
    s_later_t *later = arg;
    if (later->fired)
        return; /* fn is running and cancelled its own Deferred; s_on_timer cleans up */
    zt_delayed_call_cancel(later->handle);
    zt_delayed_call_release(&later->handle);
    /* The canceller's caller holds a reference, so dropping ours here is safe. The Deferred then
     * fails with ZT_CANCELLED_ERROR. */
    zt_deferred_unref(&later->d);
    free(later);
}

zt_deferred_t *
zt_defer_later(const zt_clock_t *clock, double delay, zt_maybe_fn *fn, void *arg)
{
    ZT_ASSERT(clock);
    s_later_t *later = calloc(1, sizeof *later);
    if (!later)
        return NULL;
    *later = (s_later_t){.clock = clock, .fn = fn, .arg = arg};
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_cancel, later);
    if (!d || zt_deferred_add_callback(d, s_unwrap, NULL) < 0)
        goto failed;
    later->d = zt_deferred_ref(d);
    if (zt_clock_call_later(clock, delay > 0 ? delay : 0, s_on_timer, later, &later->handle) != 0)
        goto failed;
    return d;
failed:
    zt_deferred_unref(&later->d);
    zt_deferred_unref(&d);
    free(later);
    return NULL;
}
