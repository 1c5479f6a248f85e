/*  tests/runtime/test_reactor_clock.c - a reactor made on a test clock (Twisted's
 * MemoryReactorClock)
 *
 *  zt_reactor_new_with_clock: the reactor's timed calls, its zt_clock_t (Deferred timeouts,
 * LoopingCall), zt_reactor_seconds and the shutdown deadline all follow the test clock, run inside
 * zt_test_clock_advance, and never make the loop wait. The last test runs one piece of code written
 * against zt_clock_t on both a real reactor and a test clock.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist.h>
#include <ztwist/test_clock.h>

#include <math.h>
#include <stdlib.h>

typedef struct fixture {
    zt_test_clock_t *clock; /* the reactor's clock */
    zt_reactor_t *reactor;  /* made on it */
    int ran;                /* calls of count() */
    double ran_at;          /* zt_reactor_seconds when count() last ran */
    int cancelled;          /* Deferreds that failed with a CancelledError */
    zt_deferred_t *held;    /* Owned reference: the Deferred the shutdown waits on */
    double advance_by;      /* the step advance_later() moves the clock by */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->clock = zt_test_clock_new();
    assert_non_null(fx->clock);
    fx->reactor = zt_reactor_new_with_clock(fx->clock);
    assert_non_null(fx->reactor);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_reactor_destroy(&fx->reactor);
    zt_test_clock_destroy(&fx->clock); /* after the reactor, as zt_reactor_new_with_clock says */
    zt_deferred_unref(&fx->held);
    free(fx);
    return 0;
}

static void
count(void *arg)
{
    fixture_t *fx = arg;
    fx->ran++;
    fx->ran_at = zt_reactor_seconds(fx->reactor);
}

static void
test_reactor_clock_seconds_and_clock_are_the_test_clocks(void **state)
{
    fixture_t *fx = *state;
    assert_true(zt_reactor_seconds(fx->reactor) == 0.0);
    assert_ptr_equal(zt_reactor_clock(fx->reactor), zt_test_clock_clock(fx->clock));
    assert_int_equal(zt_test_clock_advance(fx->clock, 2.5), 0);
    assert_true(zt_reactor_seconds(fx->reactor) == 2.5);
    assert_true(zt_clock_seconds(zt_reactor_clock(fx->reactor)) == 2.5);
}

static void
test_reactor_clock_call_later_runs_only_when_the_test_clock_advances(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 5, count, fx, NULL), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, count, fx, NULL), 0);
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 2);
    /* Passes of the loop do not run them, not even the one due "now": only an advance does. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->ran, 0);
    assert_int_equal(zt_test_clock_advance(fx->clock, 0), 0);
    assert_int_equal(fx->ran, 1);
    assert_int_equal(zt_test_clock_advance(fx->clock, 4.5), 0);
    assert_int_equal(fx->ran, 1);
    assert_int_equal(zt_test_clock_advance(fx->clock, 0.5), 0); /* inside the advance */
    assert_int_equal(fx->ran, 2);
    assert_true(fx->ran_at == 5.0);
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 0);
}

static void
test_reactor_clock_iterate_does_not_wait_for_a_test_clock_timer(void **state)
{
    fixture_t *fx = *state;
    /* A timer due at once on the test clock: the poll must not treat it as due (it would spin) nor
     * wait for it; with a bounded iterate the pass returns, and the call has not run. */
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, count, fx, NULL), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 3600, count, fx, NULL), 0);
    zt_reactor_stats_t before, after;
    zt_reactor_stats(fx->reactor, &before);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    zt_reactor_stats(fx->reactor, &after);
    assert_int_equal(after.passes, before.passes + 1);
    assert_int_equal(fx->ran, 0);
    assert_int_equal(zt_test_clock_advance(fx->clock, 3600), 0);
    assert_int_equal(fx->ran, 2);
}

static void
test_reactor_clock_delayed_call_handle_resets_delays_and_cancels(void **state)
{
    fixture_t *fx = *state;
    zt_delayed_call_t *call = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 10, count, fx, &call), 0);
    assert_true(zt_delayed_call_get_time(call) == 10.0);
    assert_int_equal(zt_test_clock_advance(fx->clock, 8), 0);
    assert_int_equal(zt_delayed_call_reset(call, 10), 0); /* due at 18 */
    assert_int_equal(zt_delayed_call_delay(call, 2), 0);  /* due at 20 */
    assert_true(zt_delayed_call_get_time(call) == 20.0);
    assert_int_equal(zt_test_clock_advance(fx->clock, 11.5), 0);
    assert_true(zt_delayed_call_is_active(call));
    assert_int_equal(zt_test_clock_advance(fx->clock, 0.5), 0);
    assert_true(zt_delayed_call_is_called(call));
    assert_true(fx->ran_at == 20.0);
    assert_int_equal(zt_delayed_call_cancel(call), ZT_EALREADY);
    zt_delayed_call_release(&call);

    assert_int_equal(zt_reactor_call_later(fx->reactor, 1, count, fx, &call), 0);
    assert_int_equal(zt_delayed_call_cancel(call), 0);
    assert_int_equal(zt_test_clock_advance(fx->clock, 5), 0);
    assert_int_equal(fx->ran, 1);
    assert_true(zt_delayed_call_is_cancelled(call));
    zt_delayed_call_release(&call);
}

static zt_result_t
trap_timeout(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    if (zt_result_trap(&result, ZT_TIMEOUT_ERROR))
        fx->cancelled++;
    return result;
}

static zt_result_t
tick(void *arg)
{
    count(arg);
    return zt_ok_none();
}

static void
test_reactor_clock_deferred_timeout_and_looping_call_follow_the_test_clock(void **state)
{
    fixture_t *fx = *state;
    const zt_clock_t *clock = zt_reactor_clock(fx->reactor);
    zt_deferred_t *d = zt_deferred_new();
    assert_non_null(d);
    assert_int_equal(zt_deferred_add_timeout(d, 10, clock), 0);
    assert_int_equal(zt_deferred_add_errback(d, trap_timeout, fx), 0);
    zt_looping_call_t *loop = zt_looping_call_new(clock, tick, fx);
    assert_non_null(loop);
    assert_int_equal(zt_looping_call_start(loop, 1, false, NULL), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->ran, 0);
    assert_int_equal(zt_test_clock_advance(fx->clock, 9.5), 0);
    assert_int_equal(fx->ran, 1); /* one advance past nine due calls: the missed ones are skipped */
    assert_int_equal(fx->cancelled, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(zt_test_clock_advance(fx->clock, 0.5), 0);
    assert_int_equal(fx->cancelled, 1); /* timed out at 10 */
    assert_int_equal(fx->ran, 4);       /* and the loop ran at 10, 11, 12 */
    assert_true(fx->ran_at == 12.0);
    zt_looping_call_destroy(&loop);
    zt_deferred_unref(&d);
}

static zt_result_t
trap_cancel(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    if (zt_result_trap(&result, ZT_CANCELLED_ERROR))
        fx->cancelled++;
    return result;
}

/* Runs on the reactor thread while the shutdown waits: the last second of the deadline passes
 * inside this advance, which cuts the shutdown short. */
static void
advance_last_second(void *arg)
{
    fixture_t *fx = arg;
    assert_int_equal(fx->cancelled, 0);
    assert_int_equal(zt_test_clock_advance(fx->clock, 1), 0);
    assert_int_equal(fx->cancelled, 1);
}

/* Runs while the shutdown waits: 3599 s pass and nothing happens; then the last second. */
static void
advance_most(void *arg)
{
    fixture_t *fx = arg;
    assert_int_equal(zt_test_clock_advance(fx->clock, 3599), 0);
    assert_int_equal(fx->cancelled, 0);
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, advance_last_second, fx), 0);
}

/* A before-shutdown trigger that holds the shutdown on a Deferred that never fires. */
static zt_result_t
hold_shutdown(void *arg)
{
    fixture_t *fx = arg;
    fx->held = zt_deferred_new();
    assert_non_null(fx->held);
    assert_int_equal(zt_deferred_add_errback(fx->held, trap_cancel, fx), 0);
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, advance_most, fx), 0);
    return zt_wait_for(zt_deferred_ref(fx->held));
}

static void
stop_now(void *arg)
{
    fixture_t *fx = arg;
    assert_int_equal(zt_reactor_stop(fx->reactor), 0);
}

static void
test_reactor_clock_shutdown_deadline_passes_on_the_test_clock(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_set_shutdown_timeout(fx->reactor, 3600), 0);
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, "shutdown",
                                                         hold_shutdown, fx, NULL),
                     0);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, stop_now, fx, NULL), 0);
    /* An hour of shutdown deadline, over in no real time: run returns once the test clock says. */
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->cancelled, 1);
    assert_true(zt_reactor_seconds(fx->reactor) == 3600.0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0); /* the deadline was given back */
}

/* Code written against zt_clock_t alone: a watchdog that must be fed within 10 s. */
typedef struct watchdog {
    const zt_clock_t *clock;  /* Borrowed: where it runs */
    zt_delayed_call_t *timer; /* Owned: the pending bite */
    int bitten;               /* how many times it bit */
} watchdog_t;

static void
bite(void *arg)
{
    ((watchdog_t *)arg)->bitten++;
}

static void
watchdog_feed(watchdog_t *w)
{
    if (w->timer && zt_delayed_call_is_active(w->timer)) {
        assert_int_equal(zt_delayed_call_reset(w->timer, 10), 0);
        return;
    }
    zt_delayed_call_release(&w->timer);
    assert_int_equal(zt_clock_call_later(w->clock, 10, bite, w, &w->timer), 0);
}

static void
watchdog_check(watchdog_t *w)
{
    double now = zt_clock_seconds(w->clock);
    double when = zt_delayed_call_get_time(w->timer);
    assert_true(when >= now + 9.0 && when <= now + 10.0 + 1.0); /* loose: a real clock moves */
    double times[2] = {0};
    assert_int_equal(zt_clock_delayed_calls(w->clock, times, 2), 1);
    assert_true(times[0] == when);
    assert_int_equal(zt_delayed_call_delay(w->timer, 5), 0);
    assert_true(fabs(zt_delayed_call_get_time(w->timer) - (when + 5)) < 1e-6);
    assert_int_equal(zt_delayed_call_cancel(w->timer), 0);
    assert_false(zt_delayed_call_is_active(w->timer));
    assert_int_equal(zt_clock_delayed_calls(w->clock, times, 2), 0);
    zt_delayed_call_release(&w->timer);
}

static void
test_reactor_clock_code_on_zt_clock_runs_on_a_real_reactor_and_a_test_clock(void **state)
{
    fixture_t *fx = *state;
    zt_reactor_t *real = zt_reactor_new();
    assert_non_null(real);
    const zt_clock_t *clocks[] = {zt_reactor_clock(real), zt_reactor_clock(fx->reactor)};
    for (size_t i = 0; i < 2; i++) {
        watchdog_t w = {.clock = clocks[i]};
        watchdog_feed(&w);
        watchdog_feed(&w); /* the second feed resets the same timer */
        assert_non_null(w.timer);
        watchdog_check(&w);
        assert_int_equal(w.bitten, 0);
    }
    /* On the test clock the bite comes exactly 10 s after the last feed. */
    watchdog_t w = {.clock = zt_reactor_clock(fx->reactor)};
    watchdog_feed(&w);
    assert_int_equal(zt_test_clock_advance(fx->clock, 6), 0);
    watchdog_feed(&w);
    assert_int_equal(zt_test_clock_advance(fx->clock, 9.5), 0);
    assert_int_equal(w.bitten, 0);
    assert_int_equal(zt_test_clock_advance(fx->clock, 0.5), 0);
    assert_int_equal(w.bitten, 1);
    watchdog_feed(&w); /* after a bite: a new timer */
    assert_true(zt_delayed_call_get_time(w.timer) == 26.0);
    zt_delayed_call_release(&w.timer); /* releasing does not cancel */
    assert_int_equal(zt_test_clock_advance(fx->clock, 10), 0);
    assert_int_equal(w.bitten, 2);
    zt_reactor_destroy(&real);
}

static void
test_reactor_clock_new_with_clock_reactor_runs_and_stops_like_any(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, stop_now, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0); /* the shutdown deadline was cancelled */
    assert_true(zt_reactor_seconds(fx->reactor) == 0.0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_reactor_clock_seconds_and_clock_are_the_test_clocks),
        T(test_reactor_clock_call_later_runs_only_when_the_test_clock_advances),
        T(test_reactor_clock_iterate_does_not_wait_for_a_test_clock_timer),
        T(test_reactor_clock_delayed_call_handle_resets_delays_and_cancels),
        T(test_reactor_clock_deferred_timeout_and_looping_call_follow_the_test_clock),
        T(test_reactor_clock_shutdown_deadline_passes_on_the_test_clock),
        T(test_reactor_clock_code_on_zt_clock_runs_on_a_real_reactor_and_a_test_clock),
        T(test_reactor_clock_new_with_clock_reactor_runs_and_stops_like_any),
#undef T
    };
    return cmocka_run_group_tests_name("reactor_clock", tests, NULL, NULL);
}
