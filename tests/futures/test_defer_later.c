/*  tests/futures/test_defer_later.c - zt_defer_later on the test clock (Twisted's DeferLaterTests)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/defer_later.h>
#include <ztwist/deferred.h>
#include <ztwist/test_clock.h>

#include <stdlib.h>
#include <string.h>

ZT_FAILURE_TYPE(test_error, "TestException", ZT_ERROR);

typedef struct fixture {
    zt_test_clock_t *clock;       /* the manual clock */
    const zt_clock_t *iface;      /* its interface */
    zt_deferred_t *d;             /* the Deferred under test (our reference) */
    int input;                    /* what fn multiplies */
    int calls;                    /* how many times fn ran */
    double called_at;             /* clock time of fn's latest call */
    zt_deferred_t *inner;         /* the Deferred fn returns, when not NULL (our reference) */
    bool fail;                    /* fn fails */
    bool cancel_in_fn;            /* fn cancels fx->d */
    int values;                   /* results received by on_value */
    intptr_t value;               /* the latest of them */
    int failures;                 /* failures received by on_failure */
    const zt_failure_type_t *why; /* the type of the latest */
    uint64_t unhandled_before;    /* zt_deferred_unhandled_count at setup */
} fixture_t;

static zt_result_t
times_three(void *arg)
{
    fixture_t *fx = arg;
    fx->calls++;
    fx->called_at = zt_test_clock_seconds(fx->clock);
    if (fx->cancel_in_fn)
        zt_deferred_cancel(fx->d);
    if (fx->fail)
        return zt_err(zt_failure_new(&test_error, "no %d for you", fx->input));
    if (fx->inner)
        return zt_wait_for(zt_deferred_ref(fx->inner));
    return zt_ok_int(fx->input * 3);
}

static zt_result_t
on_value(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    fx->values++;
    fx->value = zt_result_int(result);
    return result;
}

static zt_result_t
on_failure(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    fx->failures++;
    fx->why = zt_failure_type(zt_result_failure(result));
    zt_result_release(&result);
    return zt_ok_none();
}

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->clock = zt_test_clock_new();
    assert_non_null(fx->clock);
    fx->iface = zt_test_clock_clock(fx->clock);
    fx->input = 3;
    fx->unhandled_before = zt_deferred_unhandled_count();
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_unref(&fx->d);
    zt_deferred_unref(&fx->inner);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_int_equal(zt_deferred_unhandled_count(), fx->unhandled_before);
    zt_test_clock_destroy(&fx->clock);
    free(fx);
    return 0;
}

static void
later(fixture_t *fx, double delay, zt_maybe_fn *fn)
{
    fx->d = zt_defer_later(fx->iface, delay, fn, fx);
    assert_non_null(fx->d);
    assert_int_equal(zt_deferred_add_callbacks(fx->d, on_value, on_failure, fx), 0);
}

/* Twisted's test_callback. */
static void
test_defer_later_fires_with_fn_result_after_delay(void **state)
{
    fixture_t *fx = *state;
    later(fx, 3, times_three);
    assert_false(zt_deferred_is_called(fx->d));
    zt_test_clock_advance(fx->clock, 2);
    assert_int_equal(fx->calls, 0);
    assert_int_equal(fx->values, 0);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 1);
    assert_true(fx->called_at == 3);
    assert_int_equal(fx->values, 1);
    assert_int_equal(fx->value, 9);
}

/* Twisted's test_errback. */
static void
test_defer_later_fn_failure_fails_deferred(void **state)
{
    fixture_t *fx = *state;
    fx->fail = true;
    later(fx, 1, times_three);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->failures, 1);
    assert_ptr_equal(fx->why, &test_error);
    assert_int_equal(fx->values, 0);
}

/* Twisted's test_cancel. */
static void
test_defer_later_cancel_stops_timer_and_fails_with_cancelled(void **state)
{
    fixture_t *fx = *state;
    later(fx, 1, times_three);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
    zt_deferred_cancel(fx->d);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_int_equal(fx->failures, 1);
    assert_ptr_equal(fx->why, ZT_CANCELLED_ERROR);
    zt_test_clock_advance(fx->clock, 5);
    assert_int_equal(fx->calls, 0);
}

/* Twisted's test_noCallback. */
static void
test_defer_later_without_fn_fires_with_no_value(void **state)
{
    fixture_t *fx = *state;
    fx->value = -1;
    later(fx, 2, NULL);
    zt_test_clock_advance(fx->clock, 1.5);
    assert_int_equal(fx->values, 0);
    zt_test_clock_advance(fx->clock, 0.5);
    assert_int_equal(fx->values, 1);
    assert_int_equal(fx->value, 0);
    const zt_result_t *r = zt_deferred_peek(fx->d);
    assert_non_null(r);
    assert_null(zt_result_ptr(*r));
}

static void
test_defer_later_zero_and_negative_delay_wait_for_clock(void **state)
{
    fixture_t *fx = *state;
    later(fx, -5, times_three);
    assert_int_equal(fx->calls, 0); /* never before zt_defer_later returns */
    zt_test_clock_advance(fx->clock, 0);
    assert_int_equal(fx->values, 1);
    assert_int_equal(fx->value, 9);
}

static void
test_defer_later_caller_may_drop_reference_before_it_fires(void **state)
{
    fixture_t *fx = *state;
    later(fx, 1, times_three);
    zt_deferred_unref(&fx->d);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->values, 1);
    assert_int_equal(fx->value, 9);
}

static void
test_defer_later_fn_returning_deferred_waits_for_it(void **state)
{
    fixture_t *fx = *state;
    fx->inner = zt_deferred_new();
    later(fx, 1, times_three);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(fx->values, 0);
    assert_int_equal(zt_deferred_callback(fx->inner, zt_ok_int(42)), 0);
    assert_int_equal(fx->values, 1);
    assert_int_equal(fx->value, 42);
}

static void
test_defer_later_cancel_while_waiting_cancels_inner_deferred(void **state)
{
    fixture_t *fx = *state;
    fx->inner = zt_deferred_new();
    later(fx, 1, times_three);
    zt_test_clock_advance(fx->clock, 1);
    zt_deferred_cancel(fx->d);
    assert_true(zt_deferred_is_called(fx->inner));
    assert_int_equal(fx->failures, 1);
    assert_ptr_equal(fx->why, ZT_CANCELLED_ERROR);
}

static void
test_defer_later_cancel_after_firing_changes_nothing(void **state)
{
    fixture_t *fx = *state;
    later(fx, 1, times_three);
    zt_test_clock_advance(fx->clock, 1);
    zt_deferred_cancel(fx->d);
    assert_int_equal(fx->values, 1);
    assert_int_equal(fx->failures, 0);
}

static void
test_defer_later_fn_cancelling_its_own_deferred_fails_it_cancelled(void **state)
{
    fixture_t *fx = *state;
    fx->cancel_in_fn = true;
    later(fx, 1, times_three);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(fx->failures, 1);
    assert_ptr_equal(fx->why, ZT_CANCELLED_ERROR);
    assert_int_equal(fx->values, 0);
}

static void
test_defer_later_calls_run_in_delay_order(void **state)
{
    fixture_t *fx = *state;
    fixture_t second = *fx;
    second.input = 4;
    second.d = zt_defer_later(fx->iface, 2, times_three, &second);
    assert_non_null(second.d);
    later(fx, 3, times_three);
    zt_test_clock_advance(fx->clock, 2);
    assert_int_equal(second.calls, 1);
    assert_int_equal(fx->calls, 0);
    assert_int_equal(zt_result_int(*zt_deferred_peek(second.d)), 12);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->value, 9);
    zt_deferred_unref(&second.d);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defer_later_fires_with_fn_result_after_delay),
        T(test_defer_later_fn_failure_fails_deferred),
        T(test_defer_later_cancel_stops_timer_and_fails_with_cancelled),
        T(test_defer_later_without_fn_fires_with_no_value),
        T(test_defer_later_zero_and_negative_delay_wait_for_clock),
        T(test_defer_later_caller_may_drop_reference_before_it_fires),
        T(test_defer_later_fn_returning_deferred_waits_for_it),
        T(test_defer_later_cancel_while_waiting_cancels_inner_deferred),
        T(test_defer_later_cancel_after_firing_changes_nothing),
        T(test_defer_later_fn_cancelling_its_own_deferred_fails_it_cancelled),
        T(test_defer_later_calls_run_in_delay_order),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
