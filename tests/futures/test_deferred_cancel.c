/*  tests/futures/test_deferred_cancel.c - Deferred after Twisted's test_defer.py: cancellation and
 * cancellers, and timeouts on the test clock (Twisted's addTimeout).
 *
 *  The fixture and the links that record into its log are in deferred_fixture.h.  */
#include "deferred_fixture.h"

/* ---------------------------------------------------------------------------------------------
 * Cancellation */

static void
s_canceller_errbacks(zt_deferred_t *d, void *arg)
{
    fx_t *fx = arg;
    fx->canceller_calls++;
    zt_deferred_errback(d, zt_failure_from_code(ZT_ECONNLOST, "stopped"));
}

static void
s_canceller_callbacks(zt_deferred_t *d, void *arg)
{
    fx_t *fx = arg;
    fx->canceller_calls++;
    zt_deferred_callback(d, s_tracked(fx, 77));
}

static void
s_canceller_drops(zt_deferred_t *d, void *arg)
{
    /* The producer gives up its reference from inside the canceller. */
    zt_deferred_t **producer_ref = arg;
    assert_ptr_equal(*producer_ref, d);
    zt_deferred_unref(producer_ref);
}

static void
test_deferred_cancel_without_canceller_fails_with_cancelled_error(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_log, STEP("e"));
    zt_deferred_cancel(d);
    assert_true(zt_deferred_is_called(d));
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 1); /* nobody trapped the CancelledError */
    assert_non_null(strstr(fx->unhandled.text, "CancelledError"));
}

static void
test_deferred_cancel_without_canceller_swallows_one_late_callback(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 1)), 0); /* swallowed */
    assert_int_equal(fx->frees, 1);
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 2)), ZT_EALREADY);
    assert_int_equal(fx->frees, 2);
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_cancel_without_canceller_swallows_one_late_errback(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "late")), 0);
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "later")), ZT_EALREADY);
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 0); /* swallowed and refused failures are not reported */
}

static void
test_deferred_cancel_twice_without_canceller_fires_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    zt_deferred_cancel(d);
    assert_string_equal(fx->log, "e=!CancelledError ");
    assert_int_equal(zt_deferred_callback(d, zt_ok_int(1)), 0); /* still swallowed once */
    zt_deferred_unref(&d);
}

static void
test_deferred_cancel_with_canceller_that_does_not_fire_then_fire_returns_ealready(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_int_equal(fx->canceller_calls, 1);
    assert_string_equal(fx->log, "e=!CancelledError ");
    /* As Twisted: with a canceller, a late fire is a programming error, not swallowed. */
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 1)), ZT_EALREADY);
    assert_int_equal(fx->frees, 1);
    zt_deferred_unref(&d);
}

static void
test_deferred_canceller_called_once_on_multiple_cancels(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    zt_deferred_cancel(d);
    assert_int_equal(fx->canceller_calls, 1);
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_canceller_receives_deferred_and_arg(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_ptr_equal(fx->cancelled, d);
    assert_ptr_equal(fx->canceller_arg, fx);
    zt_deferred_unref(&d);
}

static void
test_deferred_cancel_after_callback_does_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_callback(d, zt_ok_int(1));
    zt_deferred_cancel(d);
    assert_int_equal(fx->canceller_calls, 0);
    assert_string_equal(s_peek(fx, d), "x=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_cancel_after_errback_does_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_errback(d, zt_failure_new(ZT_TIMEOUT_ERROR, "t"));
    zt_deferred_cancel(d);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_canceller_that_errbacks_keeps_its_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_errbacks, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_int_equal(fx->canceller_calls, 1);
    assert_string_equal(fx->log, "e=!SystemError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_canceller_that_callbacks_keeps_its_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_callbacks, fx);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_cancel(d);
    assert_string_equal(fx->log, "c=obj77 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_cancel_outer_waiting_cancels_inner(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_cancel(outer);
    zt_deferred_add_callbacks(outer, s_log, s_recover, STEP("result"));
    assert_int_equal(fx->canceller_calls, 1);
    assert_ptr_equal(fx->cancelled, inner);
    assert_string_equal(fx->log, "w=0 result=!CancelledError ");
    zt_deferred_unref(&outer);
    zt_deferred_unref(&inner);
}

static void
test_deferred_cancel_forwards_through_several_waiting_levels(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *innermost = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_t *middle = zt_deferred_new();
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(middle, s_wait, STEP_D("m", innermost));
    zt_deferred_add_callback(outer, s_wait, STEP_D("o", middle));
    zt_deferred_callback(middle, zt_ok_int(0));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_add_errback(outer, s_recover, STEP("e"));
    zt_deferred_cancel(outer);
    assert_ptr_equal(fx->cancelled, innermost);
    assert_string_equal(fx->log, "m=0 o=0 e=!CancelledError ");
    zt_deferred_unref(&outer);
    zt_deferred_unref(&middle);
    zt_deferred_unref(&innermost);
}

static void
test_deferred_canceller_dropping_last_reference_is_safe(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *producer = NULL;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_drops, &producer);
    producer = zt_deferred_ref(d);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_null(producer);
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * Timeouts on the test clock (Twisted's addTimeout) */

static void
test_deferred_timeout_result_before_timeout_keeps_result_and_cancels_timer(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock)), 0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_test_clock_advance(fx->clock, 5);
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "c=1 ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_false(zt_test_clock_next_due(fx->clock, NULL)); /* the timer was cancelled, not run */
    zt_test_clock_advance(fx->clock, 100);
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_failure_before_timeout_keeps_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_errback(d, zt_failure_new(ZT_QUEUE_OVERFLOW, "full"));
    assert_string_equal(fx->log, "e=!QueueOverflow ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_expiry_fails_with_timeout_error_caused_by_cancel(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_test_clock_advance(fx->clock, 9.5);
    assert_false(zt_deferred_is_called(d));
    zt_test_clock_advance(fx->clock, 0.5);
    assert_true(zt_deferred_is_called(d));
    const zt_failure_t *f = zt_result_failure(*zt_deferred_peek(d));
    assert_non_null(f);
    assert_ptr_equal(zt_failure_type(f), ZT_TIMEOUT_ERROR);
    assert_string_equal(zt_failure_message(f), "timed out after 10 seconds");
    assert_int_equal(zt_failure_code(f), ZT_ETIMEDOUT);
    assert_ptr_equal(zt_failure_type(zt_failure_cause(f)), ZT_CANCELLED_ERROR);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_timeout_canceller_firing_value_keeps_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_callbacks, fx);
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_test_clock_advance(fx->clock, 10);
    assert_string_equal(fx->log, "c=obj77 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_timeout_canceller_firing_failure_keeps_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_errbacks, fx);
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_test_clock_advance(fx->clock, 10);
    assert_string_equal(fx->log, "e=!SystemError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_cancel_before_timeout_stays_cancelled_error(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_string_equal(fx->log, "e=!CancelledError ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_errback_added_before_timeout_sees_cancelled_error(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_log, STEP("before"));
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("after"));
    zt_test_clock_advance(fx->clock, 10);
    assert_string_equal(fx->log, "before=!CancelledError after=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_errback_before_timeout_suppressing_cancel_keeps_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP_N("before", 5));
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_callback(d, s_log, STEP("after"));
    zt_test_clock_advance(fx->clock, 10);
    assert_string_equal(fx->log, "before=!CancelledError after=5 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_negative_returns_einval(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_timeout(d, -1, zt_test_clock_clock(fx->clock)), ZT_EINVAL);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_on_fired_deferred_cancels_timer_at_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(zt_ok_int(1));
    assert_int_equal(zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock)), 0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_string_equal(s_peek(fx, d), "x=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_late_fire_after_timeout_is_swallowed(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 1, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_test_clock_advance(fx->clock, 1);
    /* The producer finishes just after the timeout: its fire is eaten once, silently. */
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 1)), 0);
    assert_int_equal(fx->frees, 1);
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_timer_keeps_deferred_alive_until_it_fires(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 3, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d); /* the timer still holds one */
    zt_test_clock_advance(fx->clock, 3);
    assert_string_equal(fx->log, "e=!TimeoutError ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_timeout_on_waiting_deferred_cancels_inner(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_wait, STEP_D("w", inner));
    zt_deferred_add_timeout(d, 2, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_callback(d, zt_ok_int(0));
    zt_test_clock_advance(fx->clock, 2);
    assert_ptr_equal(fx->cancelled, inner);
    assert_string_equal(fx->log, "w=0 e=!TimeoutError ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&inner);
}

static void
test_deferred_two_timeouts_shorter_one_wins(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 5, zt_test_clock_clock(fx->clock));
    zt_deferred_add_timeout(d, 2, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_log, STEP("e"));
    zt_deferred_add_errback(d, s_recover, STEP("r"));
    zt_test_clock_advance(fx->clock, 2);
    assert_string_equal(fx->log, "e=!TimeoutError r=!TimeoutError ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0); /* the 5 s timer was cancelled */
    zt_deferred_unref(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_without_canceller_fails_with_cancelled_error, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_without_canceller_swallows_one_late_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_without_canceller_swallows_one_late_errback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_twice_without_canceller_fires_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_with_canceller_that_does_not_fire_then_fire_returns_ealready,
            setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_called_once_on_multiple_cancels,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_receives_deferred_and_arg, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_after_callback_does_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_after_errback_does_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_that_errbacks_keeps_its_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_that_callbacks_keeps_its_value,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_outer_waiting_cancels_inner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_forwards_through_several_waiting_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_dropping_last_reference_is_safe,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_result_before_timeout_keeps_result_and_cancels_timer, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_failure_before_timeout_keeps_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_expiry_fails_with_timeout_error_caused_by_cancel, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_canceller_firing_value_keeps_value,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_canceller_firing_failure_keeps_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_cancel_before_timeout_stays_cancelled_error, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_errback_added_before_timeout_sees_cancelled_error, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_errback_before_timeout_suppressing_cancel_keeps_value, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_negative_returns_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_on_fired_deferred_cancels_timer_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_late_fire_after_timeout_is_swallowed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_timer_keeps_deferred_alive_until_it_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_on_waiting_deferred_cancels_inner,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_two_timeouts_shorter_one_wins, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("deferred_cancel", tests, NULL, NULL);
}
