/*  tests/runtime/test_test_clock.c - the manual test clock (Twisted's task.Clock and its tests)
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
    fixture_t *fx;          /* the fixture whose log it writes */
    char tag;               /* what it records */
    double advance_by;      /* > 0: advance the clock by this much from inside the call */
    struct event *schedule; /* not NULL: schedule this event from inside the call */
    double schedule_delay;  /* ... after this delay */
    void *cancel;           /* not NULL: cancel this handle from inside the call */
} event_t;

struct fixture {
    zt_test_clock_t *clock;  /* the clock under test */
    const zt_clock_t *iface; /* its interface */
    char tags[LOG_MAX + 1];  /* the tags of the calls that ran, in order */
    double times[LOG_MAX];   /* the clock's time when each ran */
    size_t count;            /* how many ran */
    void *scheduled_handle;  /* the handle an event got when it scheduled another */
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
        zt_clock_cancel(fx->iface, ev->cancel);
    if (ev->schedule)
        fx->scheduled_handle =
            zt_clock_call_later(fx->iface, ev->schedule_delay, record, ev->schedule);
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
    void *handle = zt_clock_call_later(fx->iface, 2, record, &a);
    assert_non_null(handle);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
    zt_test_clock_advance(fx->clock, 1);
    assert_int_equal(fx->count, 0);
    zt_test_clock_advance(fx->clock, 1);
    assert_string_equal(fx->tags, "a");
    assert_true(fx->times[0] == 2.0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

static void
test_test_clock_advance_runs_calls_in_time_order(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'}, b = {.fx = fx, .tag = 'b'}, c = {.fx = fx, .tag = 'c'};
    zt_clock_call_later(fx->iface, 3, record, &c);
    zt_clock_call_later(fx->iface, 1, record, &a);
    zt_clock_call_later(fx->iface, 2, record, &b);
    zt_clock_call_later(fx->iface, 10, record, &c);
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
    zt_clock_call_later(fx->iface, 1, record, &ev[0]);
    zt_clock_call_later(fx->iface, 1, record, &ev[1]);
    zt_clock_call_later(fx->iface, 0.5, record, &ev[2]);
    zt_clock_call_later(fx->iface, 1, record, &ev[3]);
    zt_test_clock_advance(fx->clock, 1);
    assert_string_equal(fx->tags, "ywxz");
}

static void
test_test_clock_zero_delay_waits_for_next_advance(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'};
    zt_clock_call_later(fx->iface, 0, record, &a);
    assert_int_equal(fx->count, 0);
    zt_test_clock_advance(fx->clock, 0);
    assert_string_equal(fx->tags, "a");
    assert_true(fx->times[0] == 0.0);
}

static void
test_test_clock_negative_or_nan_delay_counts_as_zero(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'}, b = {.fx = fx, .tag = 'b'}, c = {.fx = fx, .tag = 'c'};
    zt_test_clock_advance(fx->clock, 4);
    zt_clock_call_later(fx->iface, 0.5, record, &c);
    zt_clock_call_later(fx->iface, -3, record, &a);
    zt_clock_call_later(fx->iface, NAN, record, &b);
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
    zt_clock_call_later(fx->iface, 1, record, &first);
    zt_test_clock_advance(fx->clock, 2);
    /* first ran at 2 (time moves first) and scheduled in_time for 3: beyond this advance. */
    assert_string_equal(fx->tags, "f");
    zt_clock_call_later(fx->iface, 0, record, &second);
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
    zt_clock_call_later(fx->iface, 1, record, &a);
    zt_test_clock_advance(fx->clock, 1);
    assert_string_equal(fx->tags, "ab");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

static void
test_test_clock_cancel_prevents_call(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'}, b = {.fx = fx, .tag = 'b'};
    void *ha = zt_clock_call_later(fx->iface, 1, record, &a);
    void *hb = zt_clock_call_later(fx->iface, 1, record, &b);
    assert_ptr_not_equal(ha, hb);
    zt_clock_cancel(fx->iface, ha);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
    zt_test_clock_advance(fx->clock, 5);
    assert_string_equal(fx->tags, "b");
}

static void
test_test_clock_call_cancels_another_due_in_same_advance(void **state)
{
    fixture_t *fx = *state;
    event_t victim = {.fx = fx, .tag = 'v'};
    event_t killer = {.fx = fx, .tag = 'k'};
    zt_clock_call_later(fx->iface, 1, record, &killer);
    killer.cancel = zt_clock_call_later(fx->iface, 2, record, &victim);
    zt_test_clock_advance(fx->clock, 3);
    assert_string_equal(fx->tags, "k");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
}

static void
test_test_clock_call_that_advances_runs_calls_due_meanwhile(void **state)
{
    fixture_t *fx = *state;
    event_t inner = {.fx = fx, .tag = 'i'}, later = {.fx = fx, .tag = 'l'};
    event_t slow = {.fx = fx, .tag = 's', .advance_by = 2};
    zt_clock_call_later(fx->iface, 1, record, &slow);
    zt_clock_call_later(fx->iface, 2, record, &inner);
    zt_clock_call_later(fx->iface, 4, record, &later);
    zt_test_clock_advance(fx->clock, 1);
    /* slow ran at 1 and advanced to 3: inner (due at 2) ran inside it; later waits. */
    assert_string_equal(fx->tags, "si");
    assert_true(fx->times[1] == 3.0);
    assert_true(zt_test_clock_seconds(fx->clock) == 3.0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
}

/* Twisted's test_callLaterResetInsideCallKeepsCallsOrdered, with reset written as cancel and
 * schedule again (the interface has no reset). */
static void
test_test_clock_reschedule_inside_call_keeps_order(void **state)
{
    fixture_t *fx = *state;
    event_t b = {.fx = fx, .tag = 'b'}, c = {.fx = fx, .tag = 'c'};
    event_t a = {.fx = fx, .tag = 'a', .schedule = &b, .schedule_delay = 3};
    a.cancel = zt_clock_call_later(fx->iface, 2, record, &b);
    zt_clock_call_later(fx->iface, 1, record, &a);
    zt_clock_call_later(fx->iface, 3, record, &c);
    double steps[10];
    for (size_t i = 0; i < 10; i++)
        steps[i] = 0.5;
    assert_int_equal(zt_test_clock_pump(fx->clock, steps, 10), 0);
    assert_string_equal(fx->tags, "acb");
    assert_true(fx->times[1] == 3.0);
    assert_true(fx->times[2] == 4.0);
}

static void
test_test_clock_pump_advances_step_by_step(void **state)
{
    fixture_t *fx = *state;
    event_t a = {.fx = fx, .tag = 'a'}, b = {.fx = fx, .tag = 'b'};
    zt_clock_call_later(fx->iface, 0.1, record, &a);
    zt_clock_call_later(fx->iface, 0.3, record, &b);
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
    zt_clock_call_later(fx->iface, 0, record, &a);
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
    zt_clock_call_later(fx->iface, 7, record, &a);
    void *h = zt_clock_call_later(fx->iface, 2.5, record, &a);
    double when = 0;
    assert_true(zt_test_clock_next_due(fx->clock, &when));
    assert_true(when == 3.5);
    assert_true(zt_test_clock_next_due(fx->clock, NULL));
    zt_clock_cancel(fx->iface, h);
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
    zt_clock_call_later(zt_test_clock_clock(other), 1, record, &a);
    zt_clock_call_later(zt_test_clock_clock(other), 2, record, &a);
    zt_test_clock_destroy(&other);
    assert_null(other);
    assert_int_equal(fx->count, 0);
    zt_test_clock_destroy(&other); /* a NULL clock: nothing */
    zt_test_clock_destroy(NULL);
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
        cmocka_unit_test_setup_teardown(test_test_clock_negative_or_nan_delay_counts_as_zero, setup,
                                        teardown),
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
