/*  tests/futures/test_test_clock.c - the manual test clock (Twisted's task.Clock and its tests)
 *
 *  Each call records its tag and the clock's time in the fixture's log, so a test reads as "what
 * ran, in which order, at what time".  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/test_clock.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MAX 32

typedef struct fixture fixture_t;

/* One scheduled call: what it records, and what it does besides. */
typedef struct event {
    fixture_t *fx;             /* the fixture whose log it writes */
    char tag;                  /* what it records */
    double advance_by;         /* > 0: advance the clock by this much from inside the call */
    struct event *schedule;    /* not NULL: schedule this event from inside the call */
    double schedule_delay;     /* ... after this delay */
    zt_delayed_call_t *cancel; /* not NULL: cancel this handle from inside the call (borrowed) */
} event_t;

struct fixture {
    zt_test_clock_t *clock;  /* the clock under test */
    const zt_clock_t *iface; /* its interface */
    char tags[LOG_MAX + 1];  /* the tags of the calls that ran, in order */
    double times[LOG_MAX];   /* the clock's time when each ran */
    size_t count;            /* how many ran */
};

static void
record(void *arg)
{
    event_t *ev = arg;
    fixture_t *fx = ev->fx;
    assert_true(fx->count < LOG_MAX);
    fx->tags[fx->count] = ev->tag;
    fx->times[fx->count] = zt_test_clock_seconds(fx->clock);
    fx->count++;
    if (ev->cancel)
        assert_int_equal(zt_delayed_call_cancel(ev->cancel), 0);
    if (ev->schedule)
        assert_int_equal(
            zt_clock_call_later(fx->iface, ev->schedule_delay, record, ev->schedule, NULL), 0);
    if (ev->advance_by > 0)
        assert_int_equal(zt_test_clock_advance(fx->clock, ev->advance_by), 0);
}

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->clock = zt_test_clock_new();
    assert_non_null(fx->clock);
    fx->iface = zt_test_clock_clock(fx->clock);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_test_clock_destroy(&fx->clock);
    assert_null(fx->clock);
    free(fx);
    return 0;
}

static void
test_test_clock_new_starts_at_zero_with_nothing_pending(void **state)
{
    fixture_t *fx = *state;
    assert_true(zt_test_clock_seconds(fx->clock) == 0.0);
    assert_true(zt_clock_seconds(fx->iface) == 0.0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    double when = -1;
    assert_false(zt_test_clock_next_due(fx->clock, &when));
    assert_true(when == -1);
}

static void
test_test_clock_advance_moves_time_seen_through_interface(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_test_clock_advance(fx->clock, 1.5), 0);
    assert_int_equal(zt_test_clock_advance(fx->clock, 0.25), 0);
    assert_true(zt_test_clock_seconds(fx->clock) == 1.75);
    assert_true(zt_clock_seconds(fx->iface) == 1.75);
}

static void
test_test_clock_call_runs_only_when_due(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'};
    zt_delayed_call_t *handle = NULL;
    assert_int_equal(zt_clock_call_later(fx->iface, 2, record, &a, &handle), 0);
    assert_non_null(handle);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->count, 0);
    zt_test_clock_advance(fx->clock, 1);
    assert_string_equal(fx->tags, "a");
    assert_true(fx->times[0] == 2.0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_true(zt_delayed_call_is_called(handle));
    zt_delayed_call_release(&handle);
}

static void
test_test_clock_advance_runs_calls_in_time_order(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'}, b = {.fx = fx, .tag = 'b'}, c = {.fx = fx, .tag = 'c'};
    zt_clock_call_later(fx->iface, 3, record, &c, NULL);
    zt_clock_call_later(fx->iface, 1, record, &a, NULL);
    zt_clock_call_later(fx->iface, 2, record, &b, NULL);
    zt_clock_call_later(fx->iface, 10, record, &c, NULL);
    zt_test_clock_advance(fx->clock, 5);
    assert_string_equal(fx->tags, "abc");
    /* Time moves first, then the due calls run: each sees the advance's end, as in Twisted. */
    assert_true(fx->times[0] == 5.0 && fx->times[2] == 5.0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
}

static void
test_test_clock_calls_due_together_run_in_scheduling_order(void **state)
{
    fixture_t *fx = *state;
    event_t ev[4] = {{.fx = fx, .tag = 'w'},
                     {.fx = fx, .tag = 'x'},
                     {.fx = fx, .tag = 'y'},
                     {.fx = fx, .tag = 'z'}};
    zt_clock_call_later(fx->iface, 1, record, &ev[0], NULL);
    zt_clock_call_later(fx->iface, 1, record, &ev[1], NULL);
    zt_clock_call_later(fx->iface, 0.5, record, &ev[2], NULL);
    zt_clock_call_later(fx->iface, 1, record, &ev[3], NULL);
    zt_test_clock_advance(fx->clock, 1);
    assert_string_equal(fx->tags, "ywxz");
}

static void
test_test_clock_zero_delay_waits_for_next_advance(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'};
    zt_clock_call_later(fx->iface, 0, record, &a, NULL);
    assert_int_equal(fx->count, 0);
    zt_test_clock_advance(fx->clock, 0);
    assert_string_equal(fx->tags, "a");
    assert_true(fx->times[0] == 0.0);
}

static void
test_test_clock_negative_delay_counts_as_zero_and_nan_is_einval(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'}, b = {.fx = fx, .tag = 'b'}, c = {.fx = fx, .tag = 'c'};
    zt_test_clock_advance(fx->clock, 4);
    zt_clock_call_later(fx->iface, 0.5, record, &c, NULL);
    zt_clock_call_later(fx->iface, -3, record, &a, NULL);
    zt_clock_call_later(fx->iface, -1, record, &b, NULL);
    /* As on the reactor: a delay that is not a number is refused, and fn never runs. */
    assert_int_equal(zt_clock_call_later(fx->iface, NAN, record, &c, NULL), ZT_EINVAL);
    assert_int_equal(zt_clock_call_later(fx->iface, 1, NULL, &c, NULL), ZT_EINVAL);
    double when = 0;
    assert_true(zt_test_clock_next_due(fx->clock, &when));
    assert_true(when == 4.0);
    zt_test_clock_advance(fx->clock, 0);
    assert_string_equal(fx->tags, "ab");
}

static void
test_test_clock_call_scheduled_while_advancing_runs_when_due_within_advance(void **state)
{
    fixture_t *fx = *state;
    event_t in_time = {.fx = fx, .tag = 'i'}, too_late = {.fx = fx, .tag = 'l'};
    event_t first = {.fx = fx, .tag = 'f', .schedule = &in_time, .schedule_delay = 1};
    event_t second = {.fx = fx, .tag = 's', .schedule = &too_late, .schedule_delay = 1};
    zt_clock_call_later(fx->iface, 1, record, &first, NULL);
    zt_test_clock_advance(fx->clock, 2);
    /* first ran at 2 (time moves first) and scheduled in_time for 3: beyond this advance. */
    assert_string_equal(fx->tags, "f");
    zt_clock_call_later(fx->iface, 0, record, &second, NULL);
    zt_test_clock_advance(fx->clock, 1);
    /* At 3: in_time is due, and second (scheduled earlier for 2) too; second's call is due at 4. */
    assert_string_equal(fx->tags, "fsi");
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
    zt_test_clock_advance(fx->clock, 1);
    assert_string_equal(fx->tags, "fsil");
}

static void
test_test_clock_zero_delay_from_a_call_runs_in_same_advance(void **state)
{
    fixture_t *fx = *state;
    event_t b = {.fx = fx, .tag = 'b'};
    event_t a = {.fx = fx, .tag = 'a', .schedule = &b, .schedule_delay = 0};
    zt_clock_call_later(fx->iface, 1, record, &a, NULL);
    zt_test_clock_advance(fx->clock, 1);
    assert_string_equal(fx->tags, "ab");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

static void
test_test_clock_cancel_prevents_call(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'}, b = {.fx = fx, .tag = 'b'};
    zt_delayed_call_t *ha = NULL, *hb = NULL;
    assert_int_equal(zt_clock_call_later(fx->iface, 1, record, &a, &ha), 0);
    assert_int_equal(zt_clock_call_later(fx->iface, 1, record, &b, &hb), 0);
    assert_ptr_not_equal(ha, hb);
    assert_int_equal(zt_delayed_call_cancel(ha), 0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
    zt_test_clock_advance(fx->clock, 5);
    assert_string_equal(fx->tags, "b");
    /* A held handle tells what became of its call, and refuses a second cancel. */
    assert_int_equal(zt_delayed_call_cancel(ha), ZT_ECANCELLED);
    assert_int_equal(zt_delayed_call_cancel(hb), ZT_EALREADY);
    assert_true(zt_delayed_call_is_cancelled(ha) && !zt_delayed_call_is_active(ha));
    assert_true(zt_delayed_call_is_called(hb) && !zt_delayed_call_is_active(hb));
    zt_delayed_call_release(&ha);
    zt_delayed_call_release(&hb);
    assert_null(ha);
}

static void
test_test_clock_call_cancels_another_due_in_same_advance(void **state)
{
    fixture_t *fx = *state;
    event_t victim = {.fx = fx, .tag = 'v'};
    event_t killer = {.fx = fx, .tag = 'k'};
    zt_clock_call_later(fx->iface, 1, record, &killer, NULL);
    assert_int_equal(zt_clock_call_later(fx->iface, 2, record, &victim, &killer.cancel), 0);
    zt_test_clock_advance(fx->clock, 3);
    assert_string_equal(fx->tags, "k");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    zt_delayed_call_release(&killer.cancel);
}

static void
test_test_clock_call_that_advances_runs_calls_due_meanwhile(void **state)
{
    fixture_t *fx = *state;
    event_t inner = {.fx = fx, .tag = 'i'}, later = {.fx = fx, .tag = 'l'};
    event_t slow = {.fx = fx, .tag = 's', .advance_by = 2};
    zt_clock_call_later(fx->iface, 1, record, &slow, NULL);
    zt_clock_call_later(fx->iface, 2, record, &inner, NULL);
    zt_clock_call_later(fx->iface, 4, record, &later, NULL);
    zt_test_clock_advance(fx->clock, 1);
    /* slow ran at 1 and advanced to 3: inner (due at 2) ran inside it; later waits. */
    assert_string_equal(fx->tags, "si");
    assert_true(fx->times[1] == 3.0);
    assert_true(zt_test_clock_seconds(fx->clock) == 3.0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
}

/* Twisted's test_callLaterResetInsideCallKeepsCallsOrdered, with reset written as cancel and
 * schedule again (test_test_clock_reset_inside_call_keeps_order uses reset itself). */
static void
test_test_clock_reschedule_inside_call_keeps_order(void **state)
{
    fixture_t *fx = *state;
    event_t b = {.fx = fx, .tag = 'b'}, c = {.fx = fx, .tag = 'c'};
    event_t a = {.fx = fx, .tag = 'a', .schedule = &b, .schedule_delay = 3};
    assert_int_equal(zt_clock_call_later(fx->iface, 2, record, &b, &a.cancel), 0);
    zt_clock_call_later(fx->iface, 1, record, &a, NULL);
    zt_clock_call_later(fx->iface, 3, record, &c, NULL);
    double steps[10];
    for (size_t i = 0; i < 10; i++)
        steps[i] = 0.5;
    assert_int_equal(zt_test_clock_pump(fx->clock, steps, 10), 0);
    assert_string_equal(fx->tags, "acb");
    assert_true(fx->times[1] == 3.0);
    assert_true(fx->times[2] == 4.0);
    zt_delayed_call_release(&a.cancel);
}

static void
test_test_clock_pump_advances_step_by_step(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'}, b = {.fx = fx, .tag = 'b'};
    zt_clock_call_later(fx->iface, 0.1, record, &a, NULL);
    zt_clock_call_later(fx->iface, 0.3, record, &b, NULL);
    const double steps[] = {0.25, 0.25, 0.5};
    assert_int_equal(zt_test_clock_pump(fx->clock, steps, 3), 0);
    assert_string_equal(fx->tags, "ab");
    assert_true(fx->times[0] == 0.25);
    assert_true(fx->times[1] == 0.5);
    assert_true(zt_test_clock_seconds(fx->clock) == 1.0);
    assert_int_equal(zt_test_clock_pump(fx->clock, NULL, 0), 0);
}

static void
test_test_clock_bad_advance_returns_einval_and_changes_nothing(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'};
    zt_clock_call_later(fx->iface, 0, record, &a, NULL);
    assert_int_equal(zt_test_clock_advance(fx->clock, -1), ZT_EINVAL);
    assert_int_equal(zt_test_clock_advance(fx->clock, NAN), ZT_EINVAL);
    const double steps[] = {1, -0.5};
    assert_int_equal(zt_test_clock_pump(fx->clock, steps, 2), ZT_EINVAL);
    assert_int_equal(fx->count, 0);
    assert_true(zt_test_clock_seconds(fx->clock) == 0.0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
}

static void
test_test_clock_next_due_reports_earliest_pending_call(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'};
    zt_test_clock_advance(fx->clock, 1);
    zt_clock_call_later(fx->iface, 7, record, &a, NULL);
    zt_delayed_call_t *h = NULL;
    assert_int_equal(zt_clock_call_later(fx->iface, 2.5, record, &a, &h), 0);
    double when = 0;
    assert_true(zt_test_clock_next_due(fx->clock, &when));
    assert_true(when == 3.5);
    assert_true(zt_test_clock_next_due(fx->clock, NULL));
    assert_int_equal(zt_delayed_call_cancel(h), 0);
    zt_delayed_call_release(&h);
    assert_true(zt_test_clock_next_due(fx->clock, &when));
    assert_true(when == 8.0);
}

static void
test_test_clock_destroy_drops_pending_calls_unrun(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'};
    zt_test_clock_t *other = zt_test_clock_new();
    assert_non_null(other);
    zt_clock_call_later(zt_test_clock_clock(other), 1, record, &a, NULL);
    zt_clock_call_later(zt_test_clock_clock(other), 2, record, &a, NULL);
    zt_test_clock_destroy(&other);
    assert_null(other);
    assert_int_equal(fx->count, 0);
    zt_test_clock_destroy(&other); /* a NULL clock: nothing */
    zt_test_clock_destroy(NULL);
}

/* The handle's resetter: reset the handle in the event's cancel field to 3 s from now. */
static void
resetter(void *arg)
{
    event_t *ev = arg;
    zt_delayed_call_t *h = ev->cancel;
    ev->cancel = NULL; /* record must not cancel it */
    record(ev);
    assert_int_equal(zt_delayed_call_reset(h, 3), 0);
}

/* Twisted's test_callLaterResetInsideCallKeepsCallsOrdered, with reset itself. */
static void
test_test_clock_reset_inside_call_keeps_order(void **state)
{
    fixture_t *fx = *state;
    event_t b = {.fx = fx, .tag = 'b'}, c = {.fx = fx, .tag = 'c'};
    zt_delayed_call_t *hb = NULL;
    assert_int_equal(zt_clock_call_later(fx->iface, 2, record, &b, &hb), 0);
    event_t a = {.fx = fx, .tag = 'a', .cancel = hb};
    zt_clock_call_later(fx->iface, 1, resetter, &a, NULL);
    zt_clock_call_later(fx->iface, 3, record, &c, NULL);
    double steps[10];
    for (size_t i = 0; i < 10; i++)
        steps[i] = 0.5;
    assert_int_equal(zt_test_clock_pump(fx->clock, steps, 10), 0);
    assert_string_equal(fx->tags, "acb");
    assert_true(fx->times[2] == 4.0);
    assert_true(zt_delayed_call_get_time(hb) == 4.0);
    zt_delayed_call_release(&hb);
}

static void
test_test_clock_reset_and_delay_move_a_pending_call(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'};
    zt_delayed_call_t *h = NULL;
    assert_int_equal(zt_clock_call_later(fx->iface, 10, record, &a, &h), 0);
    assert_true(zt_delayed_call_get_time(h) == 10.0);
    zt_test_clock_advance(fx->clock, 4);
    assert_int_equal(zt_delayed_call_reset(h, 10), 0); /* from now: due at 14 */
    assert_true(zt_delayed_call_get_time(h) == 14.0);
    assert_int_equal(zt_delayed_call_delay(h, 2), 0);  /* later than scheduled: 16 */
    assert_int_equal(zt_delayed_call_delay(h, -6), 0); /* earlier: 10 */
    assert_true(zt_delayed_call_get_time(h) == 10.0);
    assert_int_equal(zt_delayed_call_reset(h, NAN), ZT_EINVAL);
    assert_int_equal(zt_delayed_call_delay(h, NAN), ZT_EINVAL);
    zt_test_clock_advance(fx->clock, 5.5);
    assert_int_equal(fx->count, 0);
    assert_true(zt_delayed_call_is_active(h));
    zt_test_clock_advance(fx->clock, 0.5);
    assert_string_equal(fx->tags, "a");
    assert_true(fx->times[0] == 10.0);
    assert_int_equal(zt_delayed_call_reset(h, 1), ZT_EALREADY);
    assert_int_equal(zt_delayed_call_delay(h, 1), ZT_EALREADY);
    zt_delayed_call_release(&h);
    zt_delayed_call_release(&h); /* NULL: nothing */
}

static void
test_test_clock_delayed_calls_lists_due_times_earliest_first(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'};
    const zt_clock_t *clock = fx->iface;
    assert_int_equal(zt_clock_delayed_calls(clock, NULL, 0), 0);
    zt_clock_call_later(clock, 3, record, &a, NULL);
    zt_clock_call_later(clock, 1, record, &a, NULL);
    zt_delayed_call_t *h = NULL;
    assert_int_equal(zt_clock_call_later(clock, 2, record, &a, &h), 0);
    double times[4] = {0};
    assert_int_equal(zt_clock_delayed_calls(clock, times, 4), 3);
    assert_true(times[0] == 1.0 && times[1] == 2.0 && times[2] == 3.0);
    assert_int_equal(zt_clock_delayed_calls(clock, times, 1), 3); /* the count, and one time */
    assert_int_equal(zt_delayed_call_cancel(h), 0);
    assert_int_equal(zt_clock_delayed_calls(clock, times, 4), 2);
    assert_true(times[0] == 1.0 && times[1] == 3.0);
    zt_delayed_call_release(&h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_test_clock_new_starts_at_zero_with_nothing_pending,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_advance_moves_time_seen_through_interface,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_call_runs_only_when_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_advance_runs_calls_in_time_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_calls_due_together_run_in_scheduling_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_zero_delay_waits_for_next_advance, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_test_clock_negative_delay_counts_as_zero_and_nan_is_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_test_clock_call_scheduled_while_advancing_runs_when_due_within_advance, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_zero_delay_from_a_call_runs_in_same_advance,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_cancel_prevents_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_call_cancels_another_due_in_same_advance,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_call_that_advances_runs_calls_due_meanwhile,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_reschedule_inside_call_keeps_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_pump_advances_step_by_step, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_test_clock_bad_advance_returns_einval_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_next_due_reports_earliest_pending_call,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_destroy_drops_pending_calls_unrun, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_reset_inside_call_keeps_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_test_clock_reset_and_delay_move_a_pending_call, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_test_clock_delayed_calls_lists_due_times_earliest_first, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
