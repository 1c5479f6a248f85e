/*  tests/futures/test_looping_call.c - LoopingCall on the test clock (Twisted's LoopTests and
 * ReactorLoopTests, run on task.Clock)
 *
 *  Every test runs on a manual clock: no sleeping, and every time is exact. The fixture's fn
 * records the clock time and zt_looping_call_count of each call, and does what the test asks of
 * it (stop the loop, fail, return a Deferred). The start Deferred's outcome is recorded by
 * on_stopped / on_failed.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/deferred.h>
#include <ztwist/looping_call.h>
#include <ztwist/test_clock.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CALLS_MAX 64

ZT_FAILURE_TYPE(test_error, "TestException", ZT_ERROR);

typedef struct fixture {
    zt_test_clock_t *clock;       /* the manual clock */
    const zt_clock_t *iface;      /* its interface */
    zt_looping_call_t *loop;      /* the LoopingCall under test */
    zt_deferred_t *done;          /* the start Deferred (our reference), or NULL */
    double times[CALLS_MAX];      /* clock time of each call of fn */
    uint64_t counts[CALLS_MAX];   /* zt_looping_call_count seen by each call */
    size_t calls;                 /* how many calls of fn */
    double advance_in_fn;         /* > 0: fn advances the clock by this much (a slow fn) */
    size_t stop_after;            /* > 0: fn stops the loop at this call */
    size_t fail_at;               /* > 0: fn fails at this call */
    size_t wait_at;               /* > 0: fn returns `pending` at this call */
    size_t wait_null_at;          /* > 0: fn returns zt_wait_for(NULL) at this call */
    zt_deferred_t *pending;       /* the Deferred fn returns at wait_at (our reference) */
    bool wait_always;             /* fn returns a fresh Deferred, fired 1 s later, each call */
    int code;                     /* the ZT_E* code of its failure */
    int stopped;                  /* how many times the start Deferred fired with a value */
    int failed;                   /* how many times it failed */
    const zt_failure_type_t *why; /* the type of its failure */
    bool destroy_on_stop;         /* on_stopped destroys the loop */
    bool running_in_callback;     /* zt_looping_call_is_running seen by on_stopped/failed */
    uint64_t unhandled_before;    /* zt_deferred_unhandled_count at setup */
} fixture_t;

static void
fire_none(void *arg)
{
    zt_deferred_t *d = arg;
    zt_deferred_callback(d, zt_ok_none());
    zt_deferred_unref(&d);
}

static zt_result_t
fn(void *arg)
{
    fixture_t *fx = arg;
    assert_true(fx->calls < CALLS_MAX);
    fx->times[fx->calls] = zt_test_clock_seconds(fx->clock);
    fx->counts[fx->calls] = zt_looping_call_count(fx->loop);
    size_t n = ++fx->calls;
    if (fx->advance_in_fn > 0)
        zt_test_clock_advance(fx->clock, fx->advance_in_fn);
    if (fx->stop_after == n)
        assert_int_equal(zt_looping_call_stop(fx->loop), 0);
    if (fx->fail_at == n)
        return zt_err(zt_failure_new(&test_error, "call %zu failed", n));
    if (fx->wait_null_at == n)
        return zt_wait_for(NULL); /* what a failed zt_deferred_new gives */
    if (fx->wait_at == n)
        return zt_wait_for(zt_deferred_ref(fx->pending));
    if (fx->wait_always) {
        zt_deferred_t *d = zt_deferred_new();
        assert_non_null(d);
        assert_int_equal(zt_clock_call_later(fx->iface, 1, fire_none, zt_deferred_ref(d), NULL), 0);
        return zt_wait_for(d);
    }
    return zt_ok_int((intptr_t)n); /* a value: ignored by the loop */
}

static zt_result_t
on_stopped(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    assert_null(zt_result_ptr(result)); /* no value */
    fx->stopped++;
    fx->running_in_callback = fx->loop ? zt_looping_call_is_running(fx->loop) : false;
    if (fx->destroy_on_stop)
        zt_looping_call_destroy(&fx->loop);
    return result;
}

static zt_result_t
on_failed(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    fx->failed++;
    fx->why = zt_failure_type(zt_result_failure(result));
    fx->code = zt_failure_code(zt_result_failure(result));
    fx->running_in_callback = zt_looping_call_is_running(fx->loop);
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
    fx->loop = zt_looping_call_new(fx->iface, fn, fx);
    assert_non_null(fx->loop);
    fx->unhandled_before = zt_deferred_unhandled_count();
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_looping_call_destroy(&fx->loop);
    assert_null(fx->loop);
    zt_deferred_unref(&fx->done);
    zt_deferred_unref(&fx->pending);
    /* Let every timer the test left run, so no Deferred is left behind. */
    zt_test_clock_advance(fx->clock, 1000);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_int_equal(zt_deferred_unhandled_count(), fx->unhandled_before);
    zt_test_clock_destroy(&fx->clock);
    free(fx);
    return 0;
}

/* Start the loop and watch its start Deferred. */
static void
start(fixture_t *fx, double interval, bool now)
{
    assert_int_equal(zt_looping_call_start(fx->loop, interval, now, &fx->done), 0);
    assert_non_null(fx->done);
    assert_int_equal(zt_deferred_add_callbacks(fx->done, on_stopped, on_failed, fx), 0);
}

/* Twisted's testBasicFunction. */
static void
test_looping_call_start_now_calls_at_once_then_every_interval(void **state)
{
    fixture_t *fx = *state;
    start(fx, 0.1, true);
    assert_int_equal(fx->calls, 1);
    assert_true(zt_looping_call_is_running(fx->loop));
    assert_true(zt_looping_call_interval(fx->loop) == 0.1);
    const double timings[] = {0.05, 0.1, 0.1};
    zt_test_clock_pump(fx->clock, timings, 3);
    assert_int_equal(fx->calls, 3);
    assert_int_equal(fx->stopped, 0);
    assert_int_equal(zt_looping_call_stop(fx->loop), 0);
    assert_int_equal(fx->stopped, 1);
    assert_false(fx->running_in_callback);
    assert_false(zt_looping_call_is_running(fx->loop));
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

/* Twisted's testDelayedStart. */
static void
test_looping_call_start_later_waits_one_interval(void **state)
{
    fixture_t *fx = *state;
    start(fx, 0.1, false);
    assert_int_equal(fx->calls, 0);
    const double timings[] = {0.05, 0.1, 0.1};
    zt_test_clock_pump(fx->clock, timings, 3);
    assert_int_equal(fx->calls, 2);
    assert_true(fabs(fx->times[0] - 0.15) < 1e-12);
    assert_int_equal(zt_looping_call_stop(fx->loop), 0);
    assert_int_equal(fx->stopped, 1);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

static void
test_looping_call_calls_fall_on_multiples_of_interval(void **state)
{
    fixture_t *fx = *state;
    zt_test_clock_advance(fx->clock, 10);
    start(fx, 2, true);
    for (int i = 0; i < 5; i++)
        zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 3);
    assert_true(fx->times[0] == 10 && fx->times[1] == 12 && fx->times[2] == 14);
    assert_int_equal(zt_looping_call_missed(fx->loop), 0);
}

/* Twisted's testStopAtOnce and testStoppingBeforeDelayedStart. */
static void
test_looping_call_stop_before_first_call_prevents_every_call(void **state)
{
    fixture_t *fx = *state;
    const double intervals[] = {0, 10};
    for (size_t i = 0; i < 2; i++) {
        start(fx, intervals[i], false);
        assert_int_equal(zt_looping_call_stop(fx->loop), 0);
        assert_int_equal(zt_test_clock_pending(fx->clock), 0);
        zt_test_clock_advance(fx->clock, 20);
        assert_int_equal(fx->calls, 0);
        assert_int_equal(fx->stopped, (int)i + 1);
        zt_deferred_unref(&fx->done);
    }
}

/* Twisted's testEveryIteration and test_withCountIntervalZero: interval 0 on a test clock runs
 * again within the same advance, until stopped. */
static void
test_looping_call_zero_interval_runs_until_fn_stops_it(void **state)
{
    fixture_t *fx = *state;
    fx->stop_after = 5;
    start(fx, 0, false);
    zt_test_clock_advance(fx->clock, 0);
    assert_int_equal(fx->calls, 5);
    assert_int_equal(fx->stopped, 1);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(fx->counts[i], 1);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

static void
test_looping_call_stop_inside_fn_fires_after_fn_returns(void **state)
{
    fixture_t *fx = *state;
    fx->stop_after = 2;
    start(fx, 1, true);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 2);
    assert_int_equal(fx->stopped, 1);
    zt_test_clock_advance(fx->clock, 5);
    assert_int_equal(fx->calls, 2);
}

/* Twisted's testFailure. */
static void
test_looping_call_fn_failure_stops_loop_and_fails_deferred(void **state)
{
    fixture_t *fx = *state;
    fx->fail_at = 3;
    start(fx, 1, true);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->failed, 0);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 3);
    assert_int_equal(fx->failed, 1);
    assert_ptr_equal(fx->why, &test_error);
    assert_false(fx->running_in_callback);
    assert_false(zt_looping_call_is_running(fx->loop));
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_int_equal(zt_looping_call_stop(fx->loop), ZT_ESTATE);
}

/* Twisted's testFailAndStop: fn stops the loop, then fails: the failure wins. */
static void
test_looping_call_stop_then_fail_inside_fn_fails_deferred(void **state)
{
    fixture_t *fx = *state;
    fx->stop_after = 1;
    fx->fail_at = 1;
    start(fx, 0.1, true);
    assert_int_equal(fx->failed, 1);
    assert_int_equal(fx->stopped, 0);
    assert_ptr_equal(fx->why, &test_error);
}

/* Twisted's testWaitDeferred: the next call waits for fn's Deferred (here fired 1 s later). */
static void
test_looping_call_waits_for_deferred_before_next_call(void **state)
{
    fixture_t *fx = *state;
    fx->wait_always = true;
    start(fx, 0.25, true);
    assert_int_equal(fx->calls, 1);
    zt_test_clock_advance(fx->clock, 0.25);
    zt_test_clock_advance(fx->clock, 0.5);
    assert_int_equal(fx->calls, 1);
    zt_test_clock_advance(fx->clock, 0.25);
    assert_int_equal(fx->calls, 1); /* its Deferred fired at 1.0: the next call is at 1.25 */
    zt_test_clock_advance(fx->clock, 0.25);
    assert_int_equal(fx->calls, 2);
    assert_true(fx->times[1] == 1.25);
    /* 1.25 is index 5: the four intervals at 0.25 .. 1.0 passed while waiting. */
    assert_int_equal(fx->counts[1], 5);
    assert_int_equal(zt_looping_call_missed(fx->loop), 4);
}

/* Stop while fn's Deferred is pending: the start Deferred fires when that Deferred does. */
static void
test_looping_call_stop_while_waiting_fires_when_deferred_fires(void **state)
{
    fixture_t *fx = *state;
    fx->pending = zt_deferred_new();
    fx->wait_at = 1;
    start(fx, 1, true);
    assert_int_equal(zt_looping_call_stop(fx->loop), 0);
    assert_int_equal(fx->stopped, 0);
    assert_false(zt_looping_call_is_running(fx->loop));
    /* Not running, but busy: a new start is refused until the old one has finished. */
    zt_deferred_t *again = NULL;
    assert_int_equal(zt_looping_call_start(fx->loop, 1, true, &again), ZT_ESTATE);
    assert_null(again);
    assert_int_equal(zt_deferred_callback(fx->pending, zt_ok_none()), 0);
    assert_int_equal(fx->stopped, 1);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

/* Twisted's testFailurePropagation. */
static void
test_looping_call_failure_of_fn_deferred_fails_loop(void **state)
{
    fixture_t *fx = *state;
    fx->pending = zt_deferred_new();
    fx->wait_at = 1;
    start(fx, 1, true);
    assert_int_equal(zt_deferred_errback(fx->pending, zt_failure_new(&test_error, "late")), 0);
    assert_int_equal(fx->failed, 1);
    assert_ptr_equal(fx->why, &test_error);
    assert_false(zt_looping_call_is_running(fx->loop));
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

static void
test_looping_call_deferred_fired_already_goes_on_at_once(void **state)
{
    fixture_t *fx = *state;
    fx->pending = zt_deferred_succeed(zt_ok_int(7));
    assert_non_null(fx->pending);
    fx->wait_at = 1;
    start(fx, 1, true);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 2);
}

static void
test_looping_call_wait_for_null_fails_loop_with_enomem(void **state)
{
    fixture_t *fx = *state;
    fx->wait_null_at = 2;
    start(fx, 1, true);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 2);
    assert_int_equal(fx->failed, 1);
    assert_ptr_equal(fx->why, ZT_SYSTEM_ERROR);
    assert_int_equal(fx->code, ZT_ENOMEM);
    assert_false(zt_looping_call_is_running(fx->loop));
}

/* Twisted's test_reactorTimeSkips and test_reactorTimeCountSkips: a late clock skips the missed
 * calls and counts them. */
static void
test_looping_call_late_clock_skips_and_counts_missed_calls(void **state)
{
    fixture_t *fx = *state;
    start(fx, 0.5, true);
    zt_test_clock_advance(fx->clock, 0.51);
    zt_test_clock_advance(fx->clock, 1.51);
    zt_test_clock_advance(fx->clock, 0);
    assert_int_equal(fx->calls, 3);
    assert_true(fx->times[0] == 0);
    assert_true(fx->times[1] == 0.51);
    assert_true(fx->times[2] == 0.51 + 1.51);
    assert_int_equal(fx->counts[0], 1);
    assert_int_equal(fx->counts[1], 1);
    assert_int_equal(fx->counts[2], 3);
    assert_int_equal(zt_looping_call_missed(fx->loop), 2);
}

/* Twisted's test_callbackTimeSkips: a fn that takes longer than an interval. */
static void
test_looping_call_slow_fn_skips_to_next_future_interval(void **state)
{
    fixture_t *fx = *state;
    fx->advance_in_fn = 2;
    start(fx, 0.5, true);
    assert_int_equal(fx->calls, 1);
    assert_true(zt_test_clock_seconds(fx->clock) == 2);
    zt_test_clock_advance(fx->clock, 0); /* 2 is the present, not the future: skipped */
    assert_int_equal(fx->calls, 1);
    fx->advance_in_fn = 1;
    zt_test_clock_advance(fx->clock, 0.5);
    assert_int_equal(fx->calls, 2);
    assert_true(fx->times[1] == 2.5);
    assert_true(zt_test_clock_seconds(fx->clock) == 3.5);
    zt_test_clock_advance(fx->clock, 0);
    assert_int_equal(fx->calls, 2);
    fx->advance_in_fn = 0;
    zt_test_clock_advance(fx->clock, 0.5);
    assert_int_equal(fx->calls, 3);
    assert_true(fx->times[2] == 4);
    assert_int_equal(fx->counts[1], 5);
    assert_int_equal(fx->counts[2], 3);
}

/* Twisted's test_countLengthyIntervalCounts: a call late by less than an interval misses none. */
static void
test_looping_call_late_by_less_than_interval_counts_one(void **state)
{
    fixture_t *fx = *state;
    start(fx, 0.5, true);
    zt_test_clock_advance(fx->clock, 0.51);
    zt_test_clock_advance(fx->clock, 0.5 * 1.75);
    zt_test_clock_advance(fx->clock, 0.5 * 0.25);
    assert_int_equal(fx->calls, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(fx->counts[i], 1);
    assert_int_equal(zt_looping_call_missed(fx->loop), 0);
}

/* Twisted's test_withCountFloatingPointBoundary: rounding never yields a count of 0 nor loses
 * one. */
static void
test_looping_call_floating_point_boundary_counts_every_interval(void **state)
{
    fixture_t *fx = *state;
    const size_t n = 10;
    const double interval = 1.0 / (double)n;
    start(fx, interval, false);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        zt_test_clock_advance(fx->clock, interval);
        sum += interval;
    }
    double epsilon = 1.0 - sum;
    assert_true(fabs(epsilon) > 0); /* the case is interesting only when rounding shows */
    zt_test_clock_advance(fx->clock, epsilon > 0 ? epsilon : 0);
    uint64_t total = 0;
    for (size_t i = 0; i < fx->calls; i++) {
        assert_true(fx->counts[i] > 0);
        total += fx->counts[i];
    }
    assert_int_equal(total, n);
}

/* Twisted's test_deferredWithCount. */
static void
test_looping_call_count_includes_intervals_spent_waiting(void **state)
{
    fixture_t *fx = *state;
    fx->pending = zt_deferred_new();
    fx->wait_at = 1;
    start(fx, 0.2, false);
    const double first[] = {0.2, 0.4};
    zt_test_clock_pump(fx->clock, first, 2);
    assert_int_equal(fx->calls, 1);
    zt_deferred_callback(fx->pending, zt_ok_none());
    zt_test_clock_advance(fx->clock, 0.2);
    assert_int_equal(fx->calls, 2);
    assert_int_equal(fx->counts[0], 1);
    assert_int_equal(fx->counts[1], 3);
}

/* Twisted's test_reset. */
static void
test_looping_call_reset_restarts_timer_from_now(void **state)
{
    fixture_t *fx = *state;
    start(fx, 2, false);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(zt_looping_call_reset(fx->loop), 0);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 0);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->calls, 1);
    assert_true(fx->times[0] == 3);
}

static void
test_looping_call_wrong_state_and_bad_interval_return_codes(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = NULL;
    assert_int_equal(zt_looping_call_stop(fx->loop), ZT_ESTATE);
    assert_int_equal(zt_looping_call_reset(fx->loop), ZT_ESTATE);
    assert_int_equal(zt_looping_call_start(fx->loop, -1, true, &d), ZT_EINVAL);
    assert_int_equal(zt_looping_call_start(fx->loop, NAN, true, &d), ZT_EINVAL);
    assert_int_equal(zt_looping_call_start(fx->loop, INFINITY, true, &d), ZT_EINVAL);
    assert_null(d);
    assert_int_equal(fx->calls, 0);
    assert_true(zt_looping_call_interval(fx->loop) == 0);
    assert_int_equal(zt_looping_call_count(fx->loop), 0);
    start(fx, 1, false);
    assert_int_equal(zt_looping_call_start(fx->loop, 1, false, &d), ZT_ESTATE);
    assert_null(d);
    assert_int_equal(zt_looping_call_stop(fx->loop), 0);
    assert_int_equal(zt_looping_call_stop(fx->loop), ZT_ESTATE);
}

static void
test_looping_call_restart_after_stop_runs_again(void **state)
{
    fixture_t *fx = *state;
    start(fx, 1, true);
    zt_looping_call_stop(fx->loop);
    zt_deferred_unref(&fx->done);
    start(fx, 3, true);
    zt_test_clock_advance(fx->clock, 3);
    assert_int_equal(fx->calls, 3);
    assert_true(zt_looping_call_interval(fx->loop) == 3);
    assert_int_equal(fx->stopped, 1);
}

static void
test_looping_call_destroy_from_stop_callback_is_safe(void **state)
{
    fixture_t *fx = *state;
    fx->destroy_on_stop = true;
    start(fx, 1, true);
    assert_int_equal(zt_looping_call_stop(fx->loop), 0);
    assert_null(fx->loop);
    assert_int_equal(fx->stopped, 1);
}

static void
test_looping_call_destroy_while_running_fires_deferred_and_cancels_timer(void **state)
{
    fixture_t *fx = *state;
    start(fx, 1, true);
    zt_looping_call_destroy(&fx->loop);
    assert_null(fx->loop);
    assert_int_equal(fx->stopped, 1);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

static void
test_looping_call_destroy_while_waiting_leaves_fn_deferred_alone(void **state)
{
    fixture_t *fx = *state;
    fx->pending = zt_deferred_new();
    fx->wait_at = 1;
    start(fx, 1, true);
    zt_looping_call_destroy(&fx->loop);
    assert_int_equal(fx->stopped, 1);
    /* The loop is gone: firing fn's Deferred later reaches nothing of it. */
    assert_int_equal(zt_deferred_callback(fx->pending, zt_ok_int(5)), 0);
    assert_int_equal(fx->stopped, 1);
    assert_int_equal(fx->calls, 1);
}

static void
count_unhandled(const zt_failure_t *failure, void *arg)
{
    fixture_t *fx = arg;
    fx->failed++;
    fx->why = zt_failure_type(failure);
}

static void
test_looping_call_without_start_deferred_reports_failure_unhandled(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_set_strict(false);
    zt_deferred_set_unhandled_handler(count_unhandled, fx);
    fx->fail_at = 1;
    assert_int_equal(zt_looping_call_start(fx->loop, 1, true, NULL), 0);
    zt_deferred_set_unhandled_handler(NULL, NULL);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(fx->failed, 1);
    assert_ptr_equal(fx->why, &test_error);
    assert_int_equal(zt_deferred_unhandled_count(), fx->unhandled_before + 1);
    fx->unhandled_before++; /* expected: teardown checks there is no other */
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_looping_call_start_now_calls_at_once_then_every_interval),
        T(test_looping_call_start_later_waits_one_interval),
        T(test_looping_call_calls_fall_on_multiples_of_interval),
        T(test_looping_call_stop_before_first_call_prevents_every_call),
        T(test_looping_call_zero_interval_runs_until_fn_stops_it),
        T(test_looping_call_stop_inside_fn_fires_after_fn_returns),
        T(test_looping_call_fn_failure_stops_loop_and_fails_deferred),
        T(test_looping_call_stop_then_fail_inside_fn_fails_deferred),
        T(test_looping_call_waits_for_deferred_before_next_call),
        T(test_looping_call_stop_while_waiting_fires_when_deferred_fires),
        T(test_looping_call_failure_of_fn_deferred_fails_loop),
        T(test_looping_call_deferred_fired_already_goes_on_at_once),
        T(test_looping_call_wait_for_null_fails_loop_with_enomem),
        T(test_looping_call_late_clock_skips_and_counts_missed_calls),
        T(test_looping_call_slow_fn_skips_to_next_future_interval),
        T(test_looping_call_late_by_less_than_interval_counts_one),
        T(test_looping_call_floating_point_boundary_counts_every_interval),
        T(test_looping_call_count_includes_intervals_spent_waiting),
        T(test_looping_call_reset_restarts_timer_from_now),
        T(test_looping_call_wrong_state_and_bad_interval_return_codes),
        T(test_looping_call_restart_after_stop_runs_again),
        T(test_looping_call_destroy_from_stop_callback_is_safe),
        T(test_looping_call_destroy_while_running_fires_deferred_and_cancels_timer),
        T(test_looping_call_destroy_while_waiting_leaves_fn_deferred_alone),
        T(test_looping_call_without_start_deferred_reports_failure_unhandled),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
