/*  tests/runtime/test_coro.c - coroutines over Deferreds: zt_coro_start and zt_await
 *
 *  Twisted's cases for inlineCallbacks and ensureDeferred (test_defgen.py, test_defer.py's
 * ensureDeferred tests, internet/test/test_inlinecb.py's CancellationTests) ported to C, the
 * reactor-teardown rule, and awaits of the Deferreds other parts of ztwist return.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist.h>

#include <fenv.h>
#include <stdlib.h>
#include <string.h>

ZT_FAILURE_TYPE(untranslated_error, "UntranslatedError", ZT_ERROR);
ZT_FAILURE_TYPE(translated_error, "TranslatedError", ZT_ERROR);
ZT_FAILURE_TYPE(dont_fail, "DontFail", ZT_ERROR);

enum { MAX_PENDING = 8 };

typedef struct fixture {
    zt_reactor_t *r;                     /* the reactor */
    zt_deferred_t *pending[MAX_PENDING]; /* Deferreds the tests fire by hand (our references) */
    size_t npending;                     /* how many */
    zt_deferred_t *child;      /* what the sample coroutine awaits (a reference), or NULL */
    int steps;                 /* progress marks set by coroutines */
    int unwound;               /* coroutines that ran their clean-up */
    zt_result_t seen;          /* Owned: what an await returned, kept for the test */
    uint64_t unhandled_before; /* zt_deferred_unhandled_count at setup */
    int reported;              /* unhandled failures seen by the handler */
} fixture_t;

static void
on_unhandled(const zt_failure_t *failure, void *arg)
{
    (void)failure;
    fixture_t *fx = arg;
    fx->reported++;
}

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->r = zt_reactor_new();
    assert_non_null(fx->r);
    fx->unhandled_before = zt_deferred_unhandled_count();
    zt_deferred_set_unhandled_handler(on_unhandled, fx);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    for (size_t i = 0; i < fx->npending; i++)
        zt_deferred_unref(&fx->pending[i]);
    zt_deferred_unref(&fx->child);
    zt_result_release(&fx->seen);
    zt_reactor_destroy(&fx->r);
    zt_deferred_set_unhandled_handler(NULL, NULL);
    free(fx);
    return 0;
}

/* A Deferred the test fires by hand later; the coroutine gets its own reference. */
static zt_deferred_t *
get_pending(fixture_t *fx)
{
    assert_true(fx->npending < MAX_PENDING);
    zt_deferred_t *d = zt_deferred_new();
    fx->pending[fx->npending++] = zt_deferred_ref(d);
    return d;
}

/* Run reactor passes until *flag is set or 2000 passes went by. */
static void
run_until(fixture_t *fx, const int *flag)
{
    for (int i = 0; i < 2000 && !*flag; i++)
        zt_reactor_iterate(fx->r, 0.01);
}

static intptr_t
value_of(zt_deferred_t *d)
{
    const zt_result_t *res = zt_deferred_peek(d);
    assert_non_null(res);
    assert_false(zt_is_err(*res));
    return zt_result_int(*res);
}

static const zt_failure_type_t *
failure_of(zt_deferred_t *d)
{
    const zt_result_t *res = zt_deferred_peek(d);
    assert_non_null(res);
    assert_true(zt_is_err(*res));
    return zt_failure_type(zt_result_failure(*res));
}

/* Take a fired Deferred's failure so that it is not reported, and drop our reference. */
static zt_result_t
swallow(zt_result_t result, void *arg)
{
    (void)arg;
    zt_result_release(&result);
    return zt_ok_none();
}

static void
unref_handled(zt_deferred_t **d)
{
    zt_deferred_add_errback(*d, swallow, NULL);
    zt_deferred_unref(d);
}

/* --- start and finish -------------------------------------------------------------------- */

static zt_result_t
return_42(void *arg)
{
    fixture_t *fx = arg;
    fx->steps++;
    return zt_ok_int(42);
}

/* testNothing / testReturnValue / ensureDeferred of a coroutine that never waits. */
static void
test_coro_start_without_await_fires_before_returning(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, return_42, fx);
    assert_non_null(d);
    assert_int_equal(fx->steps, 1);
    assert_true(zt_deferred_is_called(d));
    assert_int_equal(value_of(d), 42);
    assert_false(zt_coro_is_inside());
    zt_deferred_unref(&d);
}

static zt_result_t
await_pending_then_add(void *arg)
{
    fixture_t *fx = arg;
    fx->steps = 1;
    assert_true(zt_coro_is_inside());
    zt_result_t r = zt_await(get_pending(fx));
    fx->steps = 2;
    if (zt_is_err(r))
        return r;
    return zt_ok_int(zt_result_int(r) + 1);
}

/* It runs until the first await of an unfired Deferred; the fire does not resume it inside the
 * zt_deferred_callback call; the next reactor pass does. */
static void
test_coro_await_pending_resumes_from_the_loop(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, await_pending_then_add, fx);
    assert_int_equal(fx->steps, 1);
    assert_false(zt_deferred_is_called(d));
    assert_int_equal(zt_deferred_callback(fx->pending[0], zt_ok_int(6)), 0);
    assert_int_equal(fx->steps, 1); /* not resumed inside the fire */
    zt_reactor_iterate(fx->r, 0);
    assert_int_equal(fx->steps, 2);
    assert_int_equal(value_of(d), 7);
    zt_deferred_unref(&d);
}

static zt_result_t
await_fired_values(void *arg)
{
    fixture_t *fx = arg;
    intptr_t sum = 0;
    for (int i = 1; i <= 3; i++) {
        zt_result_t r = zt_await(zt_deferred_succeed(zt_ok_int(i)));
        sum += zt_result_int(r);
    }
    fx->steps = 3;
    return zt_ok_int(sum);
}

/* testDeferredYielding: awaiting fired Deferreds never suspends. */
static void
test_coro_await_fired_returns_without_suspending(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, await_fired_values, fx);
    assert_int_equal(fx->steps, 3);
    assert_int_equal(value_of(d), 6);
    zt_deferred_unref(&d);
}

static zt_result_t
await_failure_and_recover(void *arg)
{
    fixture_t *fx = arg;
    zt_result_t r = zt_await(zt_deferred_fail(zt_failure_new(&untranslated_error, "boom")));
    if (zt_result_trap(&r, &untranslated_error)) { /* except UntranslatedError: */
        fx->steps = 1;
        return zt_ok_int(-1);
    }
    return r;
}

/* testHandledTerminalFailure: the failure of an awaited Deferred comes back as a failure result. */
static void
test_coro_await_failure_returns_it_to_handle(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, await_failure_and_recover, fx);
    assert_int_equal(fx->steps, 1);
    assert_int_equal(value_of(d), -1);
    zt_deferred_unref(&d);
    assert_int_equal(fx->reported, 0);
}

static zt_result_t
await_pending_and_raise(void *arg)
{
    fixture_t *fx = arg;
    zt_result_t r = zt_await(get_pending(fx));
    zt_result_release(&r);
    return zt_err(zt_failure_new(&translated_error, "raised after an await"));
}

/* testBuggy: a failure the coroutine returns fails its Deferred, and nobody handling it is
 * reported once, as for any Deferred. */
static void
test_coro_unhandled_failure_fails_deferred_and_is_reported(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, await_pending_and_raise, fx);
    zt_deferred_callback(fx->pending[0], zt_ok_none());
    zt_reactor_iterate(fx->r, 0);
    assert_ptr_equal(failure_of(d), &translated_error);
    assert_int_equal(fx->reported, 0);
    zt_deferred_unref(&d);
    assert_int_equal(fx->reported, 1);
    assert_int_equal(zt_deferred_unhandled_count(), fx->unhandled_before + 1);
}

static zt_result_t
await_and_keep(void *arg)
{
    fixture_t *fx = arg;
    fx->seen = zt_await(zt_deferred_ref(fx->child));
    return zt_ok_none();
}

static zt_result_t
record_int(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    fx->steps = 100 + (int)zt_result_int(result);
    return result;
}

/* As in Twisted, the await takes the result: the awaited Deferred's chain goes on with None. */
static void
test_coro_await_takes_the_result_from_the_chain(void **state)
{
    fixture_t *fx = *state;
    fx->child = zt_deferred_succeed(zt_ok_int(9));
    zt_deferred_t *d = zt_coro_start(fx->r, await_and_keep, fx);
    assert_int_equal(zt_result_int(fx->seen), 9);
    zt_deferred_add_callback(fx->child, record_int, fx);
    assert_int_equal(fx->steps, 100); /* None */
    zt_deferred_unref(&d);
}

/* A Deferred that has fired but is paused by its owner is waited for until it is unpaused. */
static void
test_coro_await_fired_but_paused_waits_for_unpause(void **state)
{
    fixture_t *fx = *state;
    fx->child = zt_deferred_succeed(zt_ok_int(4));
    zt_deferred_pause(fx->child);
    zt_deferred_t *d = zt_coro_start(fx->r, await_and_keep, fx);
    assert_false(zt_deferred_is_called(d));
    zt_deferred_unpause(fx->child);
    zt_reactor_iterate(fx->r, 0);
    assert_true(zt_deferred_is_called(d));
    assert_int_equal(zt_result_int(fx->seen), 4);
    zt_deferred_unref(&d);
}

/* Awaiting outside a coroutine is an error result, not a crash; NULL is ZT_ENOMEM. */
static void
test_coro_await_outside_coroutine_returns_einval(void **state)
{
    (void)state;
    zt_result_t r = zt_await(zt_deferred_new());
    assert_true(zt_is_err(r));
    assert_int_equal(zt_failure_code(zt_result_failure(r)), ZT_EINVAL);
    assert_non_null(strstr(zt_failure_message(zt_result_failure(r)), "outside a coroutine"));
    zt_result_release(&r);
}

static zt_result_t
await_null(void *arg)
{
    fixture_t *fx = arg;
    fx->seen = zt_await(NULL);
    return zt_ok_none();
}

static void
test_coro_await_null_returns_enomem(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, await_null, fx);
    assert_true(zt_is_err(fx->seen));
    assert_int_equal(zt_failure_code(zt_result_failure(fx->seen)), ZT_ENOMEM);
    zt_deferred_unref(&d);
}

static zt_result_t
return_wait_for(void *arg)
{
    fixture_t *fx = arg;
    return zt_wait_for(get_pending(fx));
}

/* A coroutine that returns zt_wait_for(d) ends with d's result (returning a Deferred). */
static void
test_coro_return_wait_for_ends_with_that_result(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, return_wait_for, fx);
    assert_false(zt_deferred_is_called(d));
    zt_deferred_callback(fx->pending[0], zt_ok_int(5));
    zt_reactor_iterate(fx->r, 0);
    assert_int_equal(value_of(d), 5);
    zt_deferred_unref(&d);
}

/* --- chains of coroutines ---------------------------------------------------------------- */

typedef struct link_arg {
    fixture_t *fx;          /* Borrowed */
    int depth;              /* coroutines still to start below this one */
    struct link_arg *below; /* Borrowed: the next one's arg */
} link_arg_t;

static zt_result_t
nested(void *arg)
{
    link_arg_t *a = arg;
    zt_deferred_t *d =
        a->depth == 0 ? get_pending(a->fx) : zt_coro_start(a->fx->r, nested, a->below);
    zt_result_t r = zt_await(d);
    return zt_ok_int(zt_result_int(r) + 1);
}

/* testStackUsage: 500 coroutines, each awaiting the one it started; the leaf's value climbs back
 * one reactor pass per coroutine, each on the reactor's own stack. */
static void
test_coro_chain_of_coroutines_unwinds_through_the_loop(void **state)
{
    fixture_t *fx = *state;
    enum { DEPTH = 500 };
    link_arg_t *args = calloc(DEPTH + 1, sizeof *args);
    assert_non_null(args);
    for (int i = 0; i <= DEPTH; i++)
        args[i] =
            (link_arg_t){.fx = fx, .depth = DEPTH - i, .below = i < DEPTH ? &args[i + 1] : NULL};
    zt_deferred_t *d = zt_coro_start(fx->r, nested, &args[0]);
    assert_false(zt_deferred_is_called(d));
    zt_deferred_callback(fx->pending[0], zt_ok_int(0));
    for (int i = 0; i < 4 * DEPTH && !zt_deferred_is_called(d); i++)
        zt_reactor_iterate(fx->r, 0);
    assert_int_equal(value_of(d), DEPTH + 1);
    zt_deferred_unref(&d);
    free(args);
}

/* --- cancellation (test_inlinecb.py's CancellationTests) --------------------------------- */

/* sampleInlineCB: await the child; translate UntranslatedError, recover DontFail, add one. */
static zt_result_t
sample_inline_cb(void *arg)
{
    fixture_t *fx = arg;
    zt_deferred_t *child = fx->child ? zt_deferred_ref(fx->child) : get_pending(fx);
    zt_result_t r = zt_await(child);
    if (zt_result_trap(&r, &untranslated_error))
        return zt_err(zt_failure_new(&translated_error, "translated"));
    if (zt_is_err(r) && zt_failure_check(zt_result_failure(r), &dont_fail)) {
        intptr_t actual = zt_failure_detail(zt_result_failure(r));
        zt_result_release(&r);
        r = zt_ok_int(actual - 2);
    }
    if (zt_is_err(r))
        return r;
    return zt_ok_int(zt_result_int(r) + 1);
}

static zt_result_t
note_cancelled(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    if (zt_is_err(result) && zt_failure_check(zt_result_failure(result), ZT_CANCELLED_ERROR))
        fx->steps = 1;
    return result;
}

/* test_cascadeCancellingOnCancel: cancelling D cancels C at once. */
static void
test_coro_cancel_cancels_the_awaited_deferred(void **state)
{
    fixture_t *fx = *state;
    fx->child = zt_deferred_new();
    zt_deferred_add_errback(fx->child, note_cancelled, fx);
    zt_deferred_t *d = zt_coro_start(fx->r, sample_inline_cb, fx);
    zt_deferred_cancel(d);
    assert_int_equal(fx->steps, 1);
    zt_reactor_iterate(fx->r, 0);
    unref_handled(&d);
}

/* test_errbackCancelledErrorOnCancel: the CancelledError reaches D through the coroutine. */
static void
test_coro_cancel_fails_with_cancelled_error(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, sample_inline_cb, fx);
    zt_deferred_cancel(d);
    zt_reactor_iterate(fx->r, 0);
    assert_ptr_equal(failure_of(d), ZT_CANCELLED_ERROR);
    unref_handled(&d);
    assert_int_equal(fx->reported, 0);
}

static void
errback_untranslated(zt_deferred_t *d, void *arg)
{
    (void)arg;
    zt_deferred_errback(d, zt_failure_new(&untranslated_error, "from the canceller"));
}

/* test_errorToErrorTranslation */
static void
test_coro_cancel_error_is_translated_by_the_coroutine(void **state)
{
    fixture_t *fx = *state;
    fx->child = zt_deferred_new_with_canceller(errback_untranslated, NULL);
    zt_deferred_t *d = zt_coro_start(fx->r, sample_inline_cb, fx);
    zt_deferred_cancel(d);
    zt_reactor_iterate(fx->r, 0);
    assert_ptr_equal(failure_of(d), &translated_error);
    unref_handled(&d);
}

static void
errback_dont_fail(zt_deferred_t *d, void *arg)
{
    (void)arg;
    zt_failure_t *f = zt_failure_new(&dont_fail, "actual value inside");
    zt_failure_set_detail(f, 4321);
    zt_deferred_errback(d, f);
}

/* test_errorToSuccessTranslation: the coroutine recovers; D fires with its value. */
static void
test_coro_cancel_error_may_become_a_value(void **state)
{
    fixture_t *fx = *state;
    fx->child = zt_deferred_new_with_canceller(errback_dont_fail, NULL);
    zt_deferred_t *d = zt_coro_start(fx->r, sample_inline_cb, fx);
    zt_deferred_add_callback(d, record_int, fx);
    zt_deferred_cancel(d);
    zt_reactor_iterate(fx->r, 0);
    assert_int_equal(fx->steps, 100 + 4320);
    zt_deferred_unref(&d);
}

static zt_result_t
trap_and_wait_more(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    if (!zt_result_trap(&result, ZT_CANCELLED_ERROR))
        return result;
    return zt_wait_for(get_pending(fx));
}

/* test_asynchronousCancellation: D waits until C reaches the coroutine's await. */
static void
test_coro_cancel_waits_for_the_coroutine_to_end(void **state)
{
    fixture_t *fx = *state;
    fx->child = zt_deferred_new();
    zt_deferred_add_errback(fx->child, trap_and_wait_more, fx);
    zt_deferred_t *d = zt_coro_start(fx->r, sample_inline_cb, fx);
    zt_deferred_cancel(d);
    zt_reactor_iterate(fx->r, 0);
    assert_false(zt_deferred_peek(d) && !zt_deferred_is_paused(d)); /* no result yet */
    zt_deferred_callback(fx->pending[0], zt_ok_int(6543));
    zt_reactor_iterate(fx->r, 0);
    assert_int_equal(value_of(d), 6544);
    zt_deferred_unref(&d);
}

/* --- the reactor goes ------------------------------------------------------------------- */

static zt_result_t
await_forever_then_unwind(void *arg)
{
    fixture_t *fx = arg;
    char *held = malloc(64); /* what the coroutine must free on its way out */
    zt_result_t r = zt_await(zt_deferred_new());
    if (zt_is_err(r) && zt_failure_check(zt_result_failure(r), ZT_CANCELLED_ERROR))
        fx->unwound++;
    zt_result_release(&r);
    zt_result_t again = zt_await(zt_deferred_new()); /* does not suspend any more */
    if (zt_is_err(again))
        fx->unwound++;
    zt_result_release(&again);
    free(held);
    return zt_ok_int(1);
}

/* A coroutine still suspended when its reactor is destroyed is cancelled, not leaked. */
static void
test_coro_reactor_destroy_cancels_suspended_coroutines(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d1 = zt_coro_start(fx->r, await_forever_then_unwind, fx);
    zt_deferred_t *d2 = zt_coro_start(fx->r, await_forever_then_unwind, fx);
    zt_deferred_t *d3 = zt_coro_start(fx->r, await_pending_then_add, fx); /* resume queued */
    zt_deferred_callback(fx->pending[0], zt_ok_int(1));
    assert_int_equal(fx->unwound, 0);
    zt_reactor_destroy(&fx->r);
    assert_int_equal(fx->unwound, 4);
    assert_int_equal(value_of(d1), 1);
    assert_int_equal(value_of(d2), 1);
    assert_int_equal(value_of(d3), 2);
    zt_deferred_unref(&d1);
    zt_deferred_unref(&d2);
    zt_deferred_unref(&d3);
}

static zt_result_t
await_pending_then_child(void *arg)
{
    fixture_t *fx = arg;
    zt_result_t r = zt_await(get_pending(fx));
    zt_result_release(&r);
    r = zt_await(zt_deferred_ref(fx->child)); /* the test made it this coroutine's own Deferred */
    if (zt_is_err(r) && zt_failure_check(zt_result_failure(r), ZT_CANCELLED_ERROR))
        fx->unwound++;
    zt_result_release(&r);
    return zt_ok_none();
}

/* A coroutine awaiting its own Deferred never ends (as in Twisted); the teardown still unwinds it
 * (the cancel reaches the coroutine's own canceller through the await and stops there). */
static void
test_coro_reactor_destroy_unwinds_coroutine_awaiting_itself(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, await_pending_then_child, fx);
    fx->child = zt_deferred_ref(d);
    zt_deferred_callback(fx->pending[0], zt_ok_none());
    zt_reactor_iterate(fx->r, 0);
    assert_false(zt_deferred_is_called(d));
    zt_reactor_destroy(&fx->r);
    assert_int_equal(fx->unwound, 1);
    zt_deferred_unref(&d);
}

static zt_result_t
await_other_coroutine(void *arg)
{
    fixture_t *fx = arg;
    zt_result_t r = zt_await(zt_coro_start(fx->r, await_forever_then_unwind, fx));
    fx->steps = zt_is_err(r) ? -1 : (int)zt_result_int(r);
    zt_result_release(&r);
    return zt_ok_none();
}

/* A coroutine awaiting another one is woken when the other ends during the teardown. */
static void
test_coro_reactor_destroy_unwinds_coroutines_awaiting_each_other(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_coro_start(fx->r, await_other_coroutine, fx);
    zt_reactor_destroy(&fx->r);
    assert_int_equal(fx->unwound, 2);
    assert_true(zt_deferred_is_called(d));
    zt_deferred_unref(&d);
}

/* --- awaits of what the rest of ztwist returns -------------------------------------------- */

typedef struct io_arg {
    fixture_t *fx;              /* Borrowed */
    zt_deferred_lock_t *lock;   /* Borrowed */
    zt_deferred_queue_t *queue; /* Borrowed */
    int order[4];               /* the order events happened in */
    int norder;                 /* events recorded */
    int done;                   /* the coroutine got to its end */
    uint16_t port;              /* the TCP port to connect to */
    zt_coro_fn *fn;             /* the coroutine start_io starts */
    zt_deferred_t *d;           /* its Deferred (our reference) */
} io_arg_t;

static zt_result_t
work_seven(void *arg)
{
    (void)arg;
    return zt_ok_int(7);
}

/* No cmocka assertion inside a coroutine: a failing one longjmps off the coroutine's stack. The
 * coroutines record what they saw and the test asserts it afterwards. */
static zt_result_t
await_thread_and_timer(void *arg)
{
    io_arg_t *a = arg;
    zt_reactor_t *r = a->fx->r;
    zt_result_t t = zt_await(zt_defer_to_thread(r, work_seven, NULL));
    a->order[a->norder++] = (int)zt_result_int(t);
    zt_result_t l = zt_await(zt_defer_later(zt_reactor_clock(r), 0.001, work_seven, NULL));
    a->order[a->norder++] = (int)zt_result_int(l);
    zt_deferred_t *both[2] = {zt_defer_later(zt_reactor_clock(r), 0.002, work_seven, NULL),
                              zt_defer_to_thread(r, work_seven, NULL)};
    zt_result_t g = zt_await(zt_gather_results(both, 2, true));
    zt_deferred_unref(&both[0]);
    zt_deferred_unref(&both[1]);
    zt_result_list_t *list = zt_result_ptr(g);
    if (list && zt_result_list_size(list) == 2)
        a->order[a->norder++] = (int)(zt_result_list_int(list, 0) + zt_result_list_int(list, 1));
    zt_result_release(&g);
    a->done = 1;
    zt_reactor_stop(r);
    return zt_ok_int(1);
}

static void
start_io(void *arg)
{
    io_arg_t *a = arg;
    a->d = zt_coro_start(a->fx->r, a->fn, a);
}

/* defer_to_thread, defer_later and gatherResults (a DeferredList) awaited in turn. */
static void
test_coro_awaits_threads_timers_and_deferred_lists(void **state)
{
    fixture_t *fx = *state;
    io_arg_t a = {.fx = fx, .fn = await_thread_and_timer};
    zt_reactor_call_when_running(fx->r, start_io, &a, NULL);
    assert_int_equal(zt_reactor_run(fx->r), 0);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.norder, 3);
    int expect[3] = {7, 7, 14};
    assert_memory_equal(a.order, expect, sizeof expect);
    assert_int_equal(value_of(a.d), 1);
    zt_deferred_unref(&a.d);
}

static zt_result_t
locker(void *arg)
{
    io_arg_t *a = arg;
    zt_result_t r = zt_await(zt_deferred_lock_acquire(a->lock));
    zt_result_release(&r);
    a->order[a->norder++] = 1; /* holds the lock */
    zt_result_t item = zt_await(zt_deferred_queue_get(a->queue));
    a->order[a->norder++] = (int)(intptr_t)zt_result_ptr(item);
    zt_result_release(&item);
    zt_deferred_lock_release(a->lock);
    return zt_ok_none();
}

/* Two coroutines take a DeferredLock in turn; each waits on a DeferredQueue inside it. */
static void
test_coro_awaits_lock_and_queue_in_order(void **state)
{
    fixture_t *fx = *state;
    io_arg_t a = {
        .fx = fx,
        .lock = zt_deferred_lock_new(),
        .queue = zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED)};
    zt_deferred_t *first = zt_coro_start(fx->r, locker, &a);
    zt_deferred_t *second = zt_coro_start(fx->r, locker, &a);
    assert_int_equal(a.norder, 1); /* the second waits for the lock */
    zt_deferred_queue_put(a.queue, (void *)(intptr_t)10, NULL);
    zt_reactor_iterate(fx->r, 0);
    zt_reactor_iterate(fx->r, 0);
    assert_int_equal(a.norder, 3);
    zt_deferred_queue_put(a.queue, (void *)(intptr_t)20, NULL);
    for (int i = 0; i < 4; i++)
        zt_reactor_iterate(fx->r, 0);
    assert_int_equal(a.norder, 4);
    int expect[4] = {1, 10, 1, 20};
    assert_memory_equal(a.order, expect, sizeof expect);
    assert_true(zt_deferred_is_called(first) && zt_deferred_is_called(second));
    zt_deferred_unref(&first);
    zt_deferred_unref(&second);
    zt_deferred_queue_destroy(&a.queue);
    zt_deferred_lock_destroy(&a.lock);
}

static zt_protocol_t *
build_quiet(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f;
    (void)addr;
    (void)arg;
    static const zt_protocol_vtable_t vt = {0};
    return zt_protocol_new(&vt, NULL, NULL);
}

static zt_result_t
connector(void *arg)
{
    io_arg_t *a = arg;
    zt_factory_t *factory =
        zt_factory_new(&(zt_factory_vtable_t){.build_protocol = build_quiet}, NULL);
    zt_result_t r = zt_await(zt_connect_tcp(a->fx->r, "127.0.0.1", a->port, factory, 5));
    zt_protocol_t *p = zt_result_ptr(r);
    if (p) {
        a->order[a->norder++] = 1;
        zt_transport_lose_connection(zt_protocol_transport(p));
    }
    zt_result_release(&r);
    zt_result_t pause = zt_await(zt_defer_later(zt_reactor_clock(a->fx->r), 0.01, NULL, NULL));
    zt_result_release(&pause);
    zt_factory_destroy(&factory);
    a->done = 1;
    return zt_ok_none();
}

/* A TCP connect awaited in a coroutine, to a server on 127.0.0.1 this test starts. */
static void
test_coro_awaits_tcp_connect(void **state)
{
    fixture_t *fx = *state;
    zt_factory_t *server =
        zt_factory_new(&(zt_factory_vtable_t){.build_protocol = build_quiet}, NULL);
    zt_tcp_port_t *port = NULL;
    assert_int_equal(zt_listen_tcp(fx->r, 0, server, 0, "127.0.0.1", &port), 0);
    zt_address_t addr;
    assert_int_equal(zt_tcp_port_get_host(port, &addr), 0);
    io_arg_t a = {.fx = fx, .port = addr.port};
    zt_deferred_t *d = zt_coro_start(fx->r, connector, &a);
    run_until(fx, &a.done);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.norder, 1); /* connected */
    zt_deferred_unref(&d);
    zt_tcp_port_lose_connections(port, true);
    for (int i = 0; i < 10; i++)
        zt_reactor_iterate(fx->r, 0);
    zt_tcp_port_destroy(&port);
    zt_factory_destroy(&server);
}

/* --- stacks ------------------------------------------------------------------------------ */

static zt_result_t
use_big_frame(void *arg)
{
    fixture_t *fx = arg;
    volatile char big[256 * 1024];
    for (size_t i = 0; i < sizeof big; i += 4096)
        big[i] = (char)i;
    fx->steps = big[4096] + 1;
    return zt_ok_none();
}

static void
test_coro_stack_size_is_settable_and_checked(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_coro_set_stack_size(fx->r, 1024), ZT_EINVAL);
    assert_int_equal(zt_coro_set_stack_size(fx->r, (size_t)1 << 31), ZT_EINVAL);
    assert_int_equal(zt_coro_set_stack_size(fx->r, 512 * 1024 + 1), 0);
    zt_deferred_t *d = zt_coro_start(fx->r, use_big_frame, fx);
    assert_true(zt_deferred_is_called(d));
    assert_int_equal(fx->steps, 1);
    zt_deferred_unref(&d);
}

/* Finished coroutines give their stacks back: 40,000 in a row is more than the default
 * vm.max_map_count (65,530, two mappings per stack) would let live at once. */
static void
test_coro_many_sequential_coroutines_reuse_stacks(void **state)
{
    fixture_t *fx = *state;
    for (int i = 0; i < 40000; i++) {
        zt_deferred_t *d = zt_coro_start(fx->r, return_42, fx);
        assert_true(zt_deferred_is_called(d));
        zt_deferred_unref(&d);
    }
    assert_int_equal(fx->steps, 40000);
}

/* --- one reactor pass resuming several coroutines ------------------------------------------- */

typedef struct pass pass_t;

typedef struct worker {
    pass_t *p; /* Borrowed */
    int which; /* 0 to 3 */
} worker_t;

struct pass {
    fixture_t *fx;       /* Borrowed */
    char log[32];        /* what the coroutines did, in order */
    size_t len;          /* chars in log */
    zt_deferred_t *w;    /* what W1 awaits second (a reference), fired by W2 during the pass */
    worker_t workers[4]; /* each worker's arg */
};

static void
note(pass_t *p, char c)
{
    assert_true(p->len + 1 < sizeof p->log);
    p->log[p->len++] = c;
}

static zt_result_t
pass_child(void *arg)
{
    pass_t *p = arg;
    note(p, 'x');
    zt_result_t r = zt_await(get_pending(p->fx)); /* never fired: cancelled by the teardown */
    zt_result_release(&r);
    return zt_ok_none();
}

/* W0 ends in the pass; W1 starts a coroutine that suspends (it must come back to W1, not go on
 * with the pass), then awaits p->w; W2 fires p->w (W1 is ready again, but for the next pass only)
 * and suspends; W3 ends. */
static zt_result_t
pass_worker(void *arg)
{
    worker_t *wk = arg;
    pass_t *p = wk->p;
    int which = wk->which;
    zt_result_t r = zt_await(get_pending(p->fx));
    zt_result_release(&r);
    note(p, (char)('a' + which));
    if (which == 1) {
        zt_deferred_t *child = zt_coro_start(p->fx->r, pass_child, p);
        note(p, 'B');
        zt_deferred_unref(&child);
        r = zt_await(zt_deferred_ref(p->w));
        zt_result_release(&r);
        note(p, 'e');
    } else if (which == 2) {
        zt_deferred_callback(p->w, zt_ok_none());
        note(p, 'C');
        r = zt_await(get_pending(p->fx)); /* never fired: cancelled by the teardown */
        zt_result_release(&r);
    }
    return zt_ok_none();
}

/* One pass resumes exactly the coroutines that were ready when it started, in order; a coroutine
 * started during the pass returns to its starter when it suspends; one made ready during the pass
 * waits for the next. */
static void
test_coro_one_pass_resumes_ready_coroutines_in_order(void **state)
{
    fixture_t *fx = *state;
    pass_t pass = {.fx = fx, .w = zt_deferred_new()};
    pass_t *p = &pass;
    zt_deferred_t *ds[4];
    for (int i = 0; i < 4; i++) {
        p->workers[i] = (worker_t){.p = p, .which = i};
        ds[i] = zt_coro_start(fx->r, pass_worker, &p->workers[i]);
    }
    assert_int_equal(fx->npending, 4);
    for (size_t i = 0; i < 4; i++)
        zt_deferred_callback(fx->pending[i], zt_ok_none());
    assert_int_equal(p->len, 0); /* nothing resumed inside the fires */
    zt_reactor_iterate(fx->r, 0);
    p->log[p->len] = '\0';
    assert_string_equal(p->log, "abxBcCd");
    assert_true(zt_deferred_is_called(ds[0]));
    assert_false(zt_deferred_is_called(ds[1]));
    assert_false(zt_deferred_is_called(ds[2]));
    assert_true(zt_deferred_is_called(ds[3]));
    zt_reactor_iterate(fx->r, 0);
    p->log[p->len] = '\0';
    assert_string_equal(p->log, "abxBcCde");
    assert_true(zt_deferred_is_called(ds[1]));
    for (size_t i = 0; i < 4; i++)
        zt_deferred_unref(&ds[i]);
    zt_deferred_unref(&p->w);
}

static zt_result_t
round_upward_across_an_await(void *arg)
{
    fixture_t *fx = arg;
    fesetround(FE_UPWARD);
    zt_result_t r = zt_await(get_pending(fx));
    zt_result_release(&r);
    fx->steps = fegetround() == FE_UPWARD ? 1 : -1;
    fesetround(FE_TONEAREST);
    return zt_ok_none();
}

/* The floating-point modes are per context, as per thread: the switch saves and restores them. */
static void
test_coro_switch_keeps_each_context_floating_point_mode(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(fegetround(), FE_TONEAREST);
    zt_deferred_t *d = zt_coro_start(fx->r, round_upward_across_an_await, fx);
    assert_int_equal(fegetround(), FE_TONEAREST); /* the coroutine's mode stayed with it */
    zt_deferred_callback(fx->pending[0], zt_ok_none());
    zt_reactor_iterate(fx->r, 0);
    assert_int_equal(fx->steps, 1);
    assert_int_equal(fegetround(), FE_TONEAREST);
    zt_deferred_unref(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_coro_start_without_await_fires_before_returning),
        T(test_coro_await_pending_resumes_from_the_loop),
        T(test_coro_await_fired_returns_without_suspending),
        T(test_coro_await_failure_returns_it_to_handle),
        T(test_coro_unhandled_failure_fails_deferred_and_is_reported),
        T(test_coro_await_takes_the_result_from_the_chain),
        T(test_coro_await_fired_but_paused_waits_for_unpause),
        T(test_coro_await_outside_coroutine_returns_einval),
        T(test_coro_await_null_returns_enomem),
        T(test_coro_return_wait_for_ends_with_that_result),
        T(test_coro_chain_of_coroutines_unwinds_through_the_loop),
        T(test_coro_cancel_cancels_the_awaited_deferred),
        T(test_coro_cancel_fails_with_cancelled_error),
        T(test_coro_cancel_error_is_translated_by_the_coroutine),
        T(test_coro_cancel_error_may_become_a_value),
        T(test_coro_cancel_waits_for_the_coroutine_to_end),
        T(test_coro_reactor_destroy_cancels_suspended_coroutines),
        T(test_coro_reactor_destroy_unwinds_coroutines_awaiting_each_other),
        T(test_coro_reactor_destroy_unwinds_coroutine_awaiting_itself),
        T(test_coro_awaits_threads_timers_and_deferred_lists),
        T(test_coro_awaits_lock_and_queue_in_order),
        T(test_coro_awaits_tcp_connect),
        T(test_coro_stack_size_is_settable_and_checked),
        T(test_coro_many_sequential_coroutines_reuse_stacks),
        T(test_coro_switch_keeps_each_context_floating_point_mode),
        T(test_coro_one_pass_resumes_ready_coroutines_in_order),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
