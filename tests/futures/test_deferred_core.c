/*  tests/futures/test_deferred_core.c - Deferred after Twisted's test_defer.py: firing,
 * callback/errback paths, firing twice, re-entrancy, pause, succeed/fail/maybe_deferred, lifetime
 * and ownership, edges and the deliberate differences from Twisted.
 *
 *  The fixture and the links that record into its log are in deferred_fixture.h.  */
#include "deferred_fixture.h"

/* ---------------------------------------------------------------------------------------------
 * Firing and the callback/errback paths */

static void
test_deferred_callback_runs_callbacks_in_order_passing_results(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_false(zt_deferred_is_called(d));
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("a", 1)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("b", 10)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_log, STEP("c")), 0);
    assert_string_equal(fx->log, "");
    assert_int_equal(zt_deferred_callback(d, zt_ok_int(5)), 0);
    assert_true(zt_deferred_is_called(d));
    assert_string_equal(fx->log, "a=5 b=6 c=16 ");
    assert_string_equal(s_peek(fx, d), "x=16 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_errback_runs_errbacks_and_skips_callbacks(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_log, STEP("cb"));
    zt_deferred_add_errback(d, s_log, STEP("eb1"));
    zt_deferred_add_callback(d, s_log, STEP("cb2"));
    zt_deferred_add_errback(d, s_recover, STEP_N("eb2", 7));
    zt_deferred_add_errback(d, s_log, STEP("eb3"));
    zt_deferred_add_callback(d, s_log, STEP("cb3"));
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_TIMEOUT_ERROR, "slow")), 0);
    assert_string_equal(fx->log, "eb1=!TimeoutError eb2=!TimeoutError cb3=7 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_callback_skips_errbacks(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_log, STEP("eb"));
    zt_deferred_add_callback(d, s_log, STEP("cb"));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "cb=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_returning_failure_switches_to_errback_path(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_fail, STEP("a"));
    zt_deferred_add_callback(d, s_log, STEP("b"));
    zt_deferred_add_errback(d, s_recover, STEP_N("c", 3));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "a=1 c=!Error ");
    assert_string_equal(s_peek(fx, d), "x=3 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_errback_returning_value_recovers_to_callback_path(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP_N("e", 42));
    zt_deferred_add_errback(d, s_log, STEP("skipped"));
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "x"));
    assert_string_equal(fx->log, "e=!Error c=42 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_add_callbacks_errback_never_sees_own_callback_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callbacks(d, s_fail, s_log, STEP("pair"));
    zt_deferred_add_callbacks(d, s_log, s_recover, STEP_N("next", 9));
    zt_deferred_callback(d, zt_ok_int(1));
    /* The pair's errback does not run; the failure goes to the next pair's errback. */
    assert_string_equal(fx->log, "pair=1 next=!Error ");
    assert_string_equal(s_peek(fx, d), "x=9 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_add_callbacks_runs_errback_half_on_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callbacks(d, s_log, s_recover, STEP_N("p", 4));
    zt_deferred_add_callbacks(d, s_add, s_log, STEP_N("q", 1));
    zt_deferred_errback(d, zt_failure_new(ZT_CANCELLED_ERROR, NULL));
    assert_string_equal(fx->log, "p=!CancelledError q=4 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_add_both_runs_for_value_and_for_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *ok = zt_deferred_new();
    zt_deferred_t *bad = zt_deferred_new();
    zt_deferred_add_both(ok, s_log, STEP("ok"));
    zt_deferred_add_both(bad, s_recover, STEP_N("bad", 0));
    zt_deferred_callback(ok, zt_ok_int(2));
    zt_deferred_errback(bad, zt_failure_new(ZT_ERROR, "e"));
    assert_string_equal(fx->log, "ok=2 bad=!Error ");
    zt_deferred_unref(&ok);
    zt_deferred_unref(&bad);
}

static void
test_deferred_add_with_no_function_returns_einval(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_callbacks(d, NULL, NULL, NULL), ZT_EINVAL);
    assert_int_equal(zt_deferred_add_callback(d, NULL, NULL), ZT_EINVAL);
    assert_int_equal(zt_deferred_add_errback(d, NULL, NULL), ZT_EINVAL);
    assert_int_equal(zt_deferred_add_both(d, NULL, NULL), ZT_EINVAL);
    zt_deferred_add_callback(d, s_log, STEP("only"));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "only=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_link_added_after_fire_runs_before_add_returns(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_callback(d, zt_ok_int(8));
    assert_string_equal(fx->log, "");
    zt_deferred_add_callback(d, s_add, STEP_N("late", 1));
    assert_string_equal(fx->log, "late=8 ");
    zt_deferred_add_errback(d, s_log, STEP("eb"));
    zt_deferred_add_callback(d, s_log, STEP("later"));
    assert_string_equal(fx->log, "late=8 later=9 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_with_failure_result_takes_errback_path(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callbacks(d, s_log, s_recover, STEP("p"));
    assert_int_equal(zt_deferred_callback(d, zt_err(zt_failure_new(ZT_TIMEOUT_ERROR, "t"))), 0);
    assert_string_equal(fx->log, "p=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_arg_reaches_every_link(void **state)
{
    fx_t *fx = *state;
    step_t shared = {.fx = fx, .name = "s", .n = 2};
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_add, &shared);
    zt_deferred_add_callbacks(d, s_add, s_log, &shared);
    zt_deferred_add_both(d, s_log, &shared);
    zt_deferred_callback(d, zt_ok_int(0));
    assert_string_equal(fx->log, "s=0 s=2 s=4 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_peek_is_null_before_fire_and_shows_result_after(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_null(zt_deferred_peek(d));
    zt_deferred_callback(d, zt_ok_int(3));
    assert_non_null(zt_deferred_peek(d));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 3);
    zt_deferred_add_callback(d, s_fail, STEP("f"));
    assert_true(zt_is_err(*zt_deferred_peek(d)));
    zt_deferred_add_errback(d, s_recover, STEP_N("r", 1));
    zt_deferred_unref(&d);
}

static void
test_deferred_many_links_grow_storage_and_keep_order(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t step = {.fx = fx, .name = "i", .n = 1};
    for (int i = 0; i < 1000; i++) {
        if (i % 3 == 0)
            zt_deferred_add_callbacks(d, s_add, s_log, &step); /* a two-slot pair */
        else
            zt_deferred_add_callback(d, s_add, &step);
    }
    zt_deferred_callback(d, zt_ok_int(0));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 1000);
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * Firing twice */

static void
test_deferred_callback_twice_returns_ealready_and_frees_second_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 1)), 0);
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 2)), ZT_EALREADY);
    assert_int_equal(fx->frees, 1);                /* the rejected value */
    assert_string_equal(s_peek(fx, d), "x=obj1 "); /* nothing changed */
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 2);
}

static void
test_deferred_errback_after_callback_returns_ealready(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_callback(d, zt_ok_int(1));
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "late")), ZT_EALREADY);
    assert_string_equal(s_peek(fx, d), "x=1 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 0); /* the rejected failure is freed, not reported */
}

static void
test_deferred_errback_twice_returns_ealready(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_errback(d, zt_failure_new(ZT_TIMEOUT_ERROR, "first"));
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "second")), ZT_EALREADY);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_after_errback_returns_ealready(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "first"));
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 5)), ZT_EALREADY);
    assert_int_equal(fx->frees, 1);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_callback_with_wait_for_returns_einval_and_releases_it(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_t *other = zt_deferred_new();
    assert_int_equal(zt_deferred_callback(d, zt_wait_for(zt_deferred_ref(other))), ZT_EINVAL);
    assert_false(zt_deferred_is_called(d));
    assert_int_equal(zt_deferred_callback(d, zt_ok_int(1)), 0);
    assert_string_equal(s_peek(fx, d), "x=1 ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&other); /* LSan: the reference given to zt_wait_for was dropped */
}

static void
test_deferred_errback_null_becomes_out_of_memory_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_errback(d, NULL);
    const zt_result_t *r = zt_deferred_peek(d);
    assert_true(zt_is_err(*r));
    assert_int_equal(zt_failure_code(zt_result_failure(*r)), ZT_ENOMEM);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_returning_null_failure_becomes_out_of_memory(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_recover, STEP("c"));
    zt_deferred_callback(d, zt_err(NULL));
    assert_int_equal(zt_failure_code(zt_result_failure(*zt_deferred_peek(d))), ZT_ENOMEM);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * Re-entrancy: links added while the chain runs */

static zt_result_t
s_add_link_to_other(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_deferred_add_callback(step->other, s_log, step->extra);
    s_note(step->fx, "%s-returns ", step->name);
    return r;
}

static void
test_deferred_callback_added_during_callback_runs_at_end_of_chain(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t added = {.fx = fx, .name = "added"};
    zt_deferred_add_callback(d, s_add_link_to_other,
                             &(step_t){.fx = fx, .name = "one", .other = d, .extra = &added});
    zt_deferred_add_callback(d, s_log, STEP("two"));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "one=1 one-returns two=1 added=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_added_during_callback_is_not_run_nested(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t added = {.fx = fx, .name = "added"};
    zt_deferred_add_callback(d, s_add_link_to_other,
                             &(step_t){.fx = fx, .name = "one", .other = d, .extra = &added});
    zt_deferred_callback(d, zt_ok_int(1));
    /* "added" comes after "one-returns": it ran after the callback that added it returned. */
    assert_string_equal(fx->log, "one=1 one-returns added=1 ");
    zt_deferred_unref(&d);
}

static zt_result_t
s_add_failing_link(zt_result_t r, void *arg)
{
    step_t *step = arg;
    zt_deferred_add_callback(step->other, s_fail, step->extra);
    return r;
}

static void
test_deferred_failure_from_link_added_during_callback_reaches_errback(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t inner = {.fx = fx, .name = "inner"};
    zt_deferred_add_callback(d, s_add_failing_link,
                             &(step_t){.fx = fx, .name = "one", .other = d, .extra = &inner});
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "inner=1 ");
    assert_true(zt_is_err(*zt_deferred_peek(d)));
    zt_deferred_add_errback(d, s_log, STEP("e"));
    zt_deferred_add_errback(d, s_recover, STEP("r"));
    assert_string_equal(fx->log, "inner=1 e=!Error r=!Error ");
    zt_deferred_unref(&d);
}

static zt_result_t
s_fire_other(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note(step->fx, "%s-fires ", step->name);
    zt_deferred_callback(step->other, zt_ok_int(step->n));
    s_note(step->fx, "%s-fired ", step->name);
    return r;
}

static void
test_deferred_callback_firing_another_deferred_runs_that_chain_at_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *a = zt_deferred_new();
    zt_deferred_t *b = zt_deferred_new();
    zt_deferred_add_callback(b, s_log, STEP("b"));
    zt_deferred_add_callback(a, s_fire_other, &(step_t){.fx = fx, .name = "a", .other = b, .n = 7});
    zt_deferred_add_callback(a, s_log, STEP("a2"));
    zt_deferred_callback(a, zt_ok_int(1));
    assert_string_equal(fx->log, "a-fires b=7 a-fired a2=1 ");
    zt_deferred_unref(&a);
    zt_deferred_unref(&b);
}

/* ---------------------------------------------------------------------------------------------
 * pause / unpause */

static void
test_deferred_paused_failure_runs_errback_only_after_unpause(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "fail"));
    zt_deferred_pause(d);
    assert_true(zt_deferred_is_paused(d));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "");
    zt_deferred_unpause(d);
    assert_false(zt_deferred_is_paused(d));
    assert_string_equal(fx->log, "e=!Error ");
    zt_deferred_unref(&d);
}

static void
test_deferred_unpause_before_fire_runs_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "");
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unref(&d);
}

/* The first link lives inside the Deferred; links added after the fire reuse that place once
 * it has run, and each still runs once, in order. */
static void
test_deferred_callbacks_added_one_by_one_after_fire_each_run_once_in_order(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_callback(d, zt_ok_int(1)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("a", 1)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("b", 2)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("c", 3)), 0);
    assert_string_equal(fx->log, "a=1 b=2 c=4 ");
    assert_string_equal(s_peek(fx, d), "x=7 ");
    zt_deferred_unref(&d);
}

/* A callback/errback pair added after one pending link moves both out of the Deferred; the pair's
 * two halves stay together, so the errback gets the failure and the callback does not. */
static void
test_deferred_pair_after_one_pending_link_keeps_pair_together(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_callback(d, s_log, STEP("a")), 0);
    assert_int_equal(zt_deferred_add_callbacks(d, s_add, s_recover, STEP_N("p", 9)), 0);
    assert_int_equal(zt_deferred_add_both(d, s_log, STEP("c")), 0);
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "boom")), 0);
    assert_string_equal(fx->log, "p=!Error c=9 ");
    assert_string_equal(s_peek(fx, d), "x=9 ");
    zt_deferred_unref(&d);
}

/* A Deferred whose one link is still pending gets a waiter (its link moves out of the Deferred to
 * make room): its own link runs first, then the waiter resumes with that link's result. */
static void
test_deferred_waiter_on_deferred_with_one_pending_link_resumes_after_that_link(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *outer = zt_deferred_new();
    assert_int_equal(zt_deferred_add_callback(inner, s_add, STEP_N("i", 1)), 0);
    assert_int_equal(zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner)), 0);
    assert_int_equal(zt_deferred_add_callback(outer, s_log, STEP("o")), 0);
    assert_int_equal(zt_deferred_callback(outer, zt_ok_int(0)), 0);
    assert_true(zt_deferred_is_paused(outer));
    assert_int_equal(zt_deferred_callback(inner, zt_ok_int(10)), 0);
    assert_string_equal(fx->log, "w=0 i=10 o=11 ");
    assert_false(zt_deferred_is_paused(outer));
    zt_deferred_unref(&inner);
    zt_deferred_unref(&outer);
}

/* Pauses nest up to 65,535 deep (the depth is 16 bits). */
static void
test_deferred_pauses_nest_65535_deep(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    for (int i = 0; i < 65535; i++)
        zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_callback(d, zt_ok_int(1));
    for (int i = 0; i < 65534; i++)
        zt_deferred_unpause(d);
    assert_string_equal(fx->log, "");
    assert_true(zt_deferred_is_paused(d));
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_pauses_nest(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_pause(d);
    zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_callback(d, zt_ok_int(1));
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "");
    assert_true(zt_deferred_is_paused(d));
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_unpause_when_not_paused_does_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_unpause(d); /* no effect, and the count does not go negative */
    zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "");
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unpause(d);
    assert_false(zt_deferred_is_paused(d));
    zt_deferred_unref(&d);
}

static zt_result_t
s_pause_other(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_deferred_pause(step->other);
    return r;
}

static void
test_deferred_pause_inside_callback_holds_only_links_added_later(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_pause_other, STEP_D("p", d));
    zt_deferred_add_callback(d, s_log, STEP("after"));
    zt_deferred_callback(d, zt_ok_int(1));
    /* As Twisted: the pause is seen when the runner starts, not between links of a run. */
    assert_string_equal(fx->log, "p=1 after=1 ");
    assert_true(zt_deferred_is_paused(d));
    zt_deferred_add_callback(d, s_log, STEP("held"));
    assert_string_equal(fx->log, "p=1 after=1 ");
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "p=1 after=1 held=1 ");
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * succeed, fail, maybe_deferred */

static void
test_deferred_succeed_is_fired_with_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(s_tracked(fx, 4));
    assert_true(zt_deferred_is_called(d));
    zt_deferred_add_callback(d, s_log, STEP("c"));
    assert_string_equal(fx->log, "c=obj4 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_fail_is_failed_and_null_becomes_out_of_memory(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "fail"));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_t *nomem = zt_deferred_fail(NULL);
    assert_int_equal(zt_failure_code(zt_result_failure(*zt_deferred_peek(nomem))), ZT_ENOMEM);
    zt_deferred_add_errback(nomem, s_recover, STEP("n"));
    assert_string_equal(fx->log, "e=!Error n=!SystemError ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&nomem);
}

static zt_result_t
s_maybe_value(void *arg)
{
    fx_t *fx = arg;
    return s_tracked(fx, 8);
}

static zt_result_t
s_maybe_failure(void *arg)
{
    (void)arg;
    return zt_err(zt_failure_new(ZT_TIMEOUT_ERROR, "sync failure"));
}

static zt_result_t
s_maybe_deferred(void *arg)
{
    zt_deferred_t *d = arg;
    return zt_wait_for(zt_deferred_ref(d));
}

static void
test_maybe_deferred_sync_value_gives_fired_deferred(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_maybe_deferred(s_maybe_value, fx);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    assert_string_equal(fx->log, "c=obj8 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
}

static void
test_maybe_deferred_sync_failure_gives_failed_deferred(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_maybe_deferred(s_maybe_failure, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_maybe_deferred_returned_deferred_is_passed_through(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *pending = zt_deferred_new();
    zt_deferred_t *d = zt_maybe_deferred(s_maybe_deferred, pending);
    assert_ptr_equal(d, pending);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_callback(pending, zt_ok_int(2));
    assert_string_equal(fx->log, "c=2 ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&pending);
}

/* ---------------------------------------------------------------------------------------------
 * Lifetime and ownership */

static zt_result_t
s_unref_self(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_deferred_unref(&step->other); /* the last reference, from inside its own callback */
    return r;
}

static void
test_deferred_unref_inside_own_callback_frees_after_chain_stops(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t step = {.fx = fx, .name = "self", .other = d};
    zt_deferred_add_callback(d, s_unref_self, &step);
    zt_deferred_add_callback(d, s_log, STEP("still"));
    zt_deferred_t *firer = d; /* borrowed by the code that fires it */
    d = NULL;
    zt_deferred_callback(firer, s_tracked(fx, 3));
    assert_null(step.other);
    assert_string_equal(fx->log, "self=obj3 still=obj3 ");
    assert_int_equal(fx->frees, 1); /* freed when the chain stopped */
}

static void
test_deferred_unref_null_does_nothing(void **state)
{
    (void)state;
    zt_deferred_unref(NULL);
    zt_deferred_t *d = NULL;
    zt_deferred_unref(&d);
    assert_null(d);
}

static void
test_deferred_ref_keeps_it_alive_until_last_unref(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(s_tracked(fx, 1));
    zt_deferred_t *second = zt_deferred_ref(d);
    assert_ptr_equal(second, d);
    zt_deferred_unref(&d);
    assert_null(d);
    assert_int_equal(fx->frees, 0);
    zt_deferred_unref(&second);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_value_replaced_by_callback_is_freed_by_that_callback(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_return_tracked, STEP_N("a", 2));
    zt_deferred_add_callback(d, s_return_tracked, STEP_N("b", 3));
    zt_deferred_callback(d, s_tracked(fx, 1));
    assert_int_equal(fx->frees, 2); /* obj1 and obj2 were released by the callbacks */
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 3);
}

static void
test_deferred_pending_value_freed_once_at_last_unref(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("never"));
    zt_deferred_callback(d, s_tracked(fx, 1));
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
    assert_string_equal(fx->log, "");
}

static void
test_deferred_value_passed_up_waiting_chain_freed_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_callback(outer, s_tracked(fx, 1)); /* released by s_wait */
    zt_deferred_callback(inner, s_tracked(fx, 2)); /* moves to outer */
    assert_int_equal(fx->frees, 1);
    zt_deferred_unref(&inner);
    assert_int_equal(fx->frees, 1);
    zt_deferred_unref(&outer);
    assert_int_equal(fx->frees, 2);
}

static void
test_deferred_unfired_with_links_frees_without_touching_args(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t *heap_step = malloc(sizeof *heap_step);
    *heap_step = (step_t){.fx = fx, .name = "h"};
    zt_deferred_add_callbacks(d, s_log, s_log, heap_step);
    zt_deferred_add_callback(d, s_log, heap_step);
    zt_deferred_unref(&d);
    assert_string_equal(heap_step->name, "h"); /* still ours */
    free(heap_step);
    assert_string_equal(fx->log, "");
}

static void
test_deferred_succeed_with_failure_is_failed(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(zt_err(zt_failure_new(ZT_CANCELLED_ERROR, NULL)));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * More edges */

static zt_result_t
s_chain_next_link(zt_result_t r, void *arg)
{
    step_t *step = arg;
    intptr_t n = zt_result_int(r);
    if (n < step->n)
        zt_deferred_add_callback(step->other, s_chain_next_link, step); /* runs after this one */
    return zt_ok_int(n + 1);
}

static void
test_deferred_callbacks_adding_callbacks_run_flat_and_in_order(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t step = {.fx = fx, .name = "n", .n = 100000};
    zt_deferred_add_callback(d, s_chain_next_link, &step);
    step.other = d;
    /* Each link adds the next: 100,000 links run one after another, never nested, while the link
     * storage is compacted and grown under the runner. */
    zt_deferred_callback(d, zt_ok_int(0));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 100001);
    zt_deferred_unref(&d);
}

static zt_result_t
s_cancel_other(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_deferred_cancel(step->other);
    return r;
}

static void
test_deferred_cancel_from_own_callback_does_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_add_callback(d, s_cancel_other, STEP_D("c", d));
    zt_deferred_add_callback(d, s_log, STEP("after"));
    zt_deferred_callback(d, zt_ok_int(3));
    assert_string_equal(fx->log, "c=3 after=3 ");
    assert_int_equal(fx->canceller_calls, 0);
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_of_zero_fires_on_next_advance(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_timeout(d, 0, zt_test_clock_clock(fx->clock)), 0);
    assert_false(zt_deferred_is_called(d)); /* never before add_timeout returns */
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_test_clock_advance(fx->clock, 0);
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_added_to_paused_fired_deferred_runs_at_unpause(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(zt_ok_int(2));
    zt_deferred_pause(d);
    zt_deferred_add_timeout(d, 1, zt_test_clock_clock(fx->clock));
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_test_clock_advance(fx->clock, 1); /* the cancel finds d fired: nothing happens */
    assert_string_equal(fx->log, "");
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "c=2 ");
    zt_deferred_unref(&d);
}

typedef struct {
    _Atomic(bool) stop; /* the main thread is done */
    uint64_t last_seen; /* the last count the reader saw */
} count_reader_t;

static void *
s_count_reader(void *arg)
{
    count_reader_t *reader = arg;
    while (!reader->stop)
        reader->last_seen = zt_deferred_unhandled_count();
    reader->last_seen = zt_deferred_unhandled_count();
    return NULL;
}

static void
test_deferred_unhandled_count_is_readable_from_another_thread(void **state)
{
    fx_t *fx = *state;
    count_reader_t reader = {.stop = false};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_count_reader, &reader), 0);
    uint64_t before = zt_deferred_unhandled_count();
    for (int i = 0; i < 100; i++) {
        zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "%d", i));
        zt_deferred_unref(&d);
    }
    reader.stop = true;
    pthread_join(thread, NULL);
    assert_int_equal(fx->unhandled.count, 100);
    assert_int_equal(reader.last_seen, before + 100);
}

/* ---------------------------------------------------------------------------------------------
 * Deliberate differences from Twisted (see deferred.h) */

static zt_result_t
s_fire_other_then_keep(zt_result_t r, void *arg)
{
    step_t *step = arg;
    zt_result_release(&r);
    zt_deferred_callback(step->other, zt_ok_int(0)); /* its chain waits on the running Deferred */
    return zt_ok_int(9);
}

static void
test_deferred_wait_on_deferred_running_its_callback_gets_no_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *running = zt_deferred_new();
    zt_deferred_t *waiter = zt_deferred_new();
    zt_deferred_add_callback(waiter, s_wait, STEP_D("w", running));
    zt_deferred_add_callback(waiter, s_log, STEP("waiter"));
    zt_deferred_add_callback(running, s_fire_other_then_keep, STEP_D("r", waiter));
    zt_deferred_add_callback(running, s_log, STEP("running"));
    zt_deferred_callback(running, s_tracked(fx, 5));
    /* The running callback owns obj5 (it freed it): the waiter takes what running holds, none. */
    assert_string_equal(fx->log, "w=0 waiter=0 running=9 ");
    assert_int_equal(fx->frees, 1);
    zt_deferred_unref(&running);
    zt_deferred_unref(&waiter);
}

static void
test_deferred_paused_failure_is_reported_at_last_unref(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_pause(d);
    zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "held while paused"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 1);
    assert_string_equal(fx->unhandled.text, "Error: held while paused");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_runs_callbacks_in_order_passing_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_errback_runs_errbacks_and_skips_callbacks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_callback_skips_errbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_returning_failure_switches_to_errback_path, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_errback_returning_value_recovers_to_callback_path, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_add_callbacks_errback_never_sees_own_callback_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_add_callbacks_runs_errback_half_on_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_add_both_runs_for_value_and_for_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_add_with_no_function_returns_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_link_added_after_fire_runs_before_add_returns,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_with_failure_result_takes_errback_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_arg_reaches_every_link, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_peek_is_null_before_fire_and_shows_result_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_many_links_grow_storage_and_keep_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_twice_returns_ealready_and_frees_second_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_errback_after_callback_returns_ealready,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_errback_twice_returns_ealready, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_callback_after_errback_returns_ealready,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_with_wait_for_returns_einval_and_releases_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_errback_null_becomes_out_of_memory_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_returning_null_failure_becomes_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_added_during_callback_runs_at_end_of_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_added_during_callback_is_not_run_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_failure_from_link_added_during_callback_reaches_errback, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_firing_another_deferred_runs_that_chain_at_once, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_paused_failure_runs_errback_only_after_unpause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_unpause_before_fire_runs_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_pauses_nest, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callbacks_added_one_by_one_after_fire_each_run_once_in_order, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_pair_after_one_pending_link_keeps_pair_together, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_waiter_on_deferred_with_one_pending_link_resumes_after_that_link, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_deferred_pauses_nest_65535_deep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_unpause_when_not_paused_does_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_pause_inside_callback_holds_only_links_added_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_succeed_is_fired_with_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_fail_is_failed_and_null_becomes_out_of_memory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_maybe_deferred_sync_value_gives_fired_deferred, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_maybe_deferred_sync_failure_gives_failed_deferred,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_maybe_deferred_returned_deferred_is_passed_through,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_unref_inside_own_callback_frees_after_chain_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_unref_null_does_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_ref_keeps_it_alive_until_last_unref, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_value_replaced_by_callback_is_freed_by_that_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_pending_value_freed_once_at_last_unref, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_value_passed_up_waiting_chain_freed_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_unfired_with_links_frees_without_touching_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_succeed_with_failure_is_failed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callbacks_adding_callbacks_run_flat_and_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_from_own_callback_does_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_of_zero_fires_on_next_advance, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_added_to_paused_fired_deferred_runs_at_unpause, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_unhandled_count_is_readable_from_another_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_wait_on_deferred_running_its_callback_gets_no_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_paused_failure_is_reported_at_last_unref,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("deferred_core", tests, NULL, NULL);
}
