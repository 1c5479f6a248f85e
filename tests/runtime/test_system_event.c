/*  tests/runtime/test_system_event.c - the reactor's three-phase system events, after Twisted's
 * SystemEventTestCase (test_internet.py) and the startup/shutdown tests of test_core.py  */
#include <ztwist.h>

#include "support/support.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct {
    zt_reactor_t *reactor; /* the reactor under test */
    char events[32][32];   /* what ran, in order */
    int count;             /* entries in events */
    support_log_t log;     /* what was logged */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    support_log_install(&fx->log);
    fx->reactor = zt_reactor_new();
    assert_non_null(fx->reactor);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_reactor_destroy(&fx->reactor);
    support_log_remove(&fx->log);
    free(fx);
    return 0;
}

static void
s_note(fixture_t *fx, const char *what)
{
    snprintf(fx->events[fx->count++], sizeof fx->events[0], "%s", what);
}

/* A trigger that records its name, and optionally returns a Deferred or a failure. */
typedef struct {
    fixture_t *fx;          /* Borrowed */
    const char *name;       /* recorded when it runs */
    zt_deferred_t *wait;    /* returned (a new reference) when not NULL */
    bool fail;              /* return a failure */
    zt_trigger_id_t victim; /* a trigger to remove when it runs, or 0 */
    int remove_rc;          /* what that removal returned */
} trig_t;

static zt_result_t
s_trigger(void *arg)
{
    trig_t *t = arg;
    s_note(t->fx, t->name);
    if (t->victim)
        t->remove_rc = zt_reactor_remove_system_event_trigger(t->fx->reactor, t->victim);
    if (t->fail)
        return zt_err(zt_failure_new(ZT_ERROR, "trigger %s broke", t->name));
    if (t->wait)
        return zt_wait_for(zt_deferred_ref(t->wait));
    return zt_ok_none();
}

static void
s_add(fixture_t *fx, zt_event_phase_t phase, const char *event, trig_t *t, zt_trigger_id_t *id)
{
    assert_int_equal(
        zt_reactor_add_system_event_trigger(fx->reactor, phase, event, s_trigger, t, id), 0);
}

static void
test_system_event_phases_run_before_during_after(void **state)
{
    fixture_t *fx = *state;
    trig_t a = {.fx = fx, .name = "after"}, d = {.fx = fx, .name = "during"},
           b = {.fx = fx, .name = "before"};
    s_add(fx, ZT_PHASE_AFTER, "test", &a, NULL);
    s_add(fx, ZT_PHASE_DURING, "test", &d, NULL);
    s_add(fx, ZT_PHASE_BEFORE, "test", &b, NULL);
    assert_int_equal(fx->count, 0);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 3);
    assert_string_equal(fx->events[0], "before");
    assert_string_equal(fx->events[1], "during");
    assert_string_equal(fx->events[2], "after");
}

static void
test_system_event_triggers_of_a_phase_run_in_order_added(void **state)
{
    fixture_t *fx = *state;
    trig_t t1 = {.fx = fx, .name = "1"}, t2 = {.fx = fx, .name = "2"}, t3 = {.fx = fx, .name = "3"};
    s_add(fx, ZT_PHASE_DURING, "test", &t1, NULL);
    s_add(fx, ZT_PHASE_DURING, "test", &t2, NULL);
    s_add(fx, ZT_PHASE_DURING, "test", &t3, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 3);
    assert_string_equal(fx->events[0], "1");
    assert_string_equal(fx->events[2], "3");
}

static void
test_system_event_triggers_run_once(void **state)
{
    fixture_t *fx = *state;
    trig_t b = {.fx = fx, .name = "before"};
    s_add(fx, ZT_PHASE_BEFORE, "test", &b, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 1);
}

static void
test_system_event_other_events_are_not_fired(void **state)
{
    fixture_t *fx = *state;
    trig_t b = {.fx = fx, .name = "other"};
    s_add(fx, ZT_PHASE_BEFORE, "other", &b, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 0);
}

static void
test_system_event_invalid_arguments_are_refused(void **state)
{
    fixture_t *fx = *state;
    trig_t b = {.fx = fx, .name = "x"};
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, (zt_event_phase_t)7, "test",
                                                         s_trigger, &b, NULL),
                     ZT_EINVAL);
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, NULL,
                                                         s_trigger, &b, NULL),
                     ZT_EINVAL);
    assert_int_equal(
        zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, "test", NULL, &b, NULL),
        ZT_EINVAL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, NULL), ZT_EINVAL);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, NULL, NULL, NULL), ZT_EINVAL);
}

static void
test_system_event_removed_trigger_does_not_run(void **state)
{
    fixture_t *fx = *state;
    trig_t first = {.fx = fx, .name = "first"}, second = {.fx = fx, .name = "second"};
    zt_trigger_id_t id = 0;
    s_add(fx, ZT_PHASE_BEFORE, "test", &first, NULL);
    s_add(fx, ZT_PHASE_BEFORE, "test", &second, &id);
    assert_true(id != 0);
    assert_int_equal(zt_reactor_remove_system_event_trigger(fx->reactor, id), 0);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 1);
    assert_string_equal(fx->events[0], "first");
}

static void
test_system_event_remove_unknown_or_removed_returns_enotfound(void **state)
{
    fixture_t *fx = *state;
    trig_t t = {.fx = fx, .name = "t"};
    zt_trigger_id_t id = 0;
    s_add(fx, ZT_PHASE_DURING, "test", &t, &id);
    assert_int_equal(zt_reactor_remove_system_event_trigger(fx->reactor, id), 0);
    assert_int_equal(zt_reactor_remove_system_event_trigger(fx->reactor, id), ZT_ENOTFOUND);
    assert_int_equal(zt_reactor_remove_system_event_trigger(fx->reactor, 0), ZT_ENOTFOUND);
    assert_int_equal(zt_reactor_remove_system_event_trigger(fx->reactor, 12345), ZT_ENOTFOUND);
}

static void
test_system_event_remove_after_it_ran_returns_enotfound(void **state)
{
    fixture_t *fx = *state;
    trig_t t = {.fx = fx, .name = "t"};
    zt_trigger_id_t id = 0;
    s_add(fx, ZT_PHASE_DURING, "test", &t, &id);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(zt_reactor_remove_system_event_trigger(fx->reactor, id), ZT_ENOTFOUND);
}

static void
test_system_event_before_deferred_holds_during(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    trig_t b = {.fx = fx, .name = "before", .wait = d}, du = {.fx = fx, .name = "during"},
           a = {.fx = fx, .name = "after"};
    s_add(fx, ZT_PHASE_BEFORE, "test", &b, NULL);
    s_add(fx, ZT_PHASE_DURING, "test", &du, NULL);
    s_add(fx, ZT_PHASE_AFTER, "test", &a, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 1);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), ZT_ESTATE);
    assert_int_equal(zt_deferred_callback(d, zt_ok_none()), 0);
    assert_int_equal(fx->count, 3);
    assert_string_equal(fx->events[1], "during");
    assert_string_equal(fx->events[2], "after");
    zt_deferred_unref(&d);
}

static void
test_system_event_multiple_before_deferreds_all_hold_during(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d1 = zt_deferred_new(), *d2 = zt_deferred_new();
    trig_t b1 = {.fx = fx, .name = "b1", .wait = d1}, b2 = {.fx = fx, .name = "b2", .wait = d2},
           du = {.fx = fx, .name = "during"};
    s_add(fx, ZT_PHASE_BEFORE, "test", &b1, NULL);
    s_add(fx, ZT_PHASE_BEFORE, "test", &b2, NULL);
    s_add(fx, ZT_PHASE_DURING, "test", &du, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(zt_deferred_callback(d1, zt_ok_none()), 0);
    assert_int_equal(fx->count, 2);
    assert_int_equal(zt_deferred_callback(d2, zt_ok_none()), 0);
    assert_int_equal(fx->count, 3);
    assert_string_equal(fx->events[2], "during");
    zt_deferred_unref(&d1);
    zt_deferred_unref(&d2);
}

static zt_result_t
s_fire_earlier(void *arg)
{
    trig_t *t = arg;
    s_note(t->fx, t->name);
    assert_int_equal(zt_deferred_callback(t->wait, zt_ok_none()), 0);
    return zt_ok_none();
}

static void
test_system_event_later_before_trigger_firing_earlier_deferred_still_waits(void **state)
{
    /* Twisted's test_subsequentBeforeTriggerFiresPriorBeforeDeferred. */
    fixture_t *fx = *state;
    zt_deferred_t *d1 = zt_deferred_new(), *d2 = zt_deferred_new();
    trig_t first = {.fx = fx, .name = "first", .wait = d1},
           second = {.fx = fx, .name = "second", .wait = d1},
           third = {.fx = fx, .name = "third", .wait = d2};
    trig_t du = {.fx = fx, .name = "during"};
    s_add(fx, ZT_PHASE_BEFORE, "test", &first, NULL);
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, "test",
                                                         s_fire_earlier, &second, NULL),
                     0);
    s_add(fx, ZT_PHASE_BEFORE, "test", &third, NULL);
    s_add(fx, ZT_PHASE_DURING, "test", &du, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 3);
    assert_int_equal(zt_deferred_callback(d2, zt_ok_none()), 0);
    assert_int_equal(fx->count, 4);
    assert_string_equal(fx->events[3], "during");
    zt_deferred_unref(&d1);
    zt_deferred_unref(&d2);
}

static void
test_system_event_during_deferred_holds_after(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    trig_t du = {.fx = fx, .name = "during", .wait = d}, a = {.fx = fx, .name = "after"};
    s_add(fx, ZT_PHASE_DURING, "test", &du, NULL);
    s_add(fx, ZT_PHASE_AFTER, "test", &a, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 1);
    assert_int_equal(zt_deferred_callback(d, zt_ok_none()), 0);
    assert_int_equal(fx->count, 2);
    zt_deferred_unref(&d);
}

static void
test_system_event_before_removes_pending_during(void **state)
{
    /* Twisted's test_synchronousBeforeRemovesDuring. */
    fixture_t *fx = *state;
    trig_t du = {.fx = fx, .name = "during"};
    zt_trigger_id_t id = 0;
    s_add(fx, ZT_PHASE_DURING, "test", &du, &id);
    trig_t b = {.fx = fx, .name = "before", .victim = id};
    s_add(fx, ZT_PHASE_BEFORE, "test", &b, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(b.remove_rc, 0);
    assert_int_equal(fx->count, 1);
}

static zt_result_t
s_remove_self(void *arg)
{
    trig_t *t = arg;
    s_note(t->fx, t->name);
    t->remove_rc = zt_reactor_remove_system_event_trigger(t->fx->reactor, t->victim);
    return zt_ok_none();
}

static void
test_system_event_trigger_removing_itself(void **state)
{
    /* As in Twisted: a before trigger counts as run once called, so it may remove itself; a
     * during or after trigger was taken off its list before its call, so it is not found. */
    fixture_t *fx = *state;
    trig_t b = {.fx = fx, .name = "before"}, d = {.fx = fx, .name = "during"};
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, "test",
                                                         s_remove_self, &b, &b.victim),
                     0);
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_DURING, "test",
                                                         s_remove_self, &d, &d.victim),
                     0);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 2);
    assert_int_equal(b.remove_rc, 0);
    assert_int_equal(d.remove_rc, ZT_ENOTFOUND);
}

static void
test_system_event_remove_executed_before_while_waiting_succeeds(void **state)
{
    /* Twisted's test_synchronousRemoveAlreadyExecutedBefore: a before trigger that ran while the
     * event still waits may be removed, and the event goes on. */
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    trig_t first = {.fx = fx, .name = "first"};
    zt_trigger_id_t first_id = 0;
    s_add(fx, ZT_PHASE_BEFORE, "test", &first, &first_id);
    trig_t second = {.fx = fx, .name = "second", .wait = d, .victim = first_id};
    trig_t du = {.fx = fx, .name = "during"};
    s_add(fx, ZT_PHASE_BEFORE, "test", &second, NULL);
    s_add(fx, ZT_PHASE_DURING, "test", &du, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(second.remove_rc, 0);
    assert_int_equal(zt_deferred_callback(d, zt_ok_none()), 0);
    assert_int_equal(fx->count, 3);
    assert_string_equal(fx->events[2], "during");
    zt_deferred_unref(&d);
}

static zt_result_t
s_add_same_phase(void *arg)
{
    trig_t *t = arg;
    s_note(t->fx, t->name);
    /* t + 1 is the trigger to add, to the phase that is running. */
    s_add(t->fx, ZT_PHASE_BEFORE, "test", t + 1, NULL);
    return zt_ok_none();
}

static void
test_system_event_trigger_added_to_running_phase_runs_now(void **state)
{
    fixture_t *fx = *state;
    trig_t t[2] = {{.fx = fx, .name = "adder"}, {.fx = fx, .name = "added"}};
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, "test",
                                                         s_add_same_phase, &t[0], NULL),
                     0);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 2);
    assert_string_equal(fx->events[1], "added");
}

static void
test_system_event_returned_failure_is_logged_and_event_goes_on(void **state)
{
    fixture_t *fx = *state;
    trig_t bad = {.fx = fx, .name = "bad", .fail = true}, next = {.fx = fx, .name = "next"},
           du = {.fx = fx, .name = "during"};
    s_add(fx, ZT_PHASE_BEFORE, "test", &bad, NULL);
    s_add(fx, ZT_PHASE_BEFORE, "test", &next, NULL);
    s_add(fx, ZT_PHASE_DURING, "test", &du, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(fx->count, 3);
    assert_int_equal(fx->log.errors, 1);
    assert_non_null(strstr(fx->log.last_error, "trigger bad broke"));
    assert_non_null(strstr(fx->log.last_error, "test_system_event.c")); /* the origin */
}

static void
test_system_event_failed_deferred_is_logged_and_event_goes_on(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    trig_t b = {.fx = fx, .name = "before", .wait = d}, du = {.fx = fx, .name = "during"};
    s_add(fx, ZT_PHASE_BEFORE, "test", &b, NULL);
    s_add(fx, ZT_PHASE_DURING, "test", &du, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "test"), 0);
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "disk on fire")), 0);
    assert_int_equal(fx->count, 2);
    assert_int_equal(fx->log.errors, 1);
    assert_non_null(strstr(fx->log.last_error, "disk on fire"));
    zt_deferred_unref(&d);
}

static void
test_system_event_different_events_wait_independently(void **state)
{
    /* Twisted's test_interactionBetweenDifferentEvents. */
    fixture_t *fx = *state;
    zt_deferred_t *d1 = zt_deferred_new(), *d2 = zt_deferred_new();
    trig_t b1 = {.fx = fx, .name = "before first", .wait = d1},
           a1 = {.fx = fx, .name = "after first"};
    trig_t b2 = {.fx = fx, .name = "before second", .wait = d2},
           a2 = {.fx = fx, .name = "after second"};
    s_add(fx, ZT_PHASE_BEFORE, "first", &b1, NULL);
    s_add(fx, ZT_PHASE_AFTER, "first", &a1, NULL);
    s_add(fx, ZT_PHASE_BEFORE, "second", &b2, NULL);
    s_add(fx, ZT_PHASE_AFTER, "second", &a2, NULL);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "first"), 0);
    assert_int_equal(zt_reactor_fire_system_event(fx->reactor, "second"), 0);
    assert_int_equal(fx->count, 2);
    assert_int_equal(zt_deferred_callback(d1, zt_ok_none()), 0);
    assert_int_equal(fx->count, 3);
    assert_string_equal(fx->events[2], "after first");
    assert_int_equal(zt_deferred_callback(d2, zt_ok_none()), 0);
    assert_string_equal(fx->events[3], "after second");
    zt_deferred_unref(&d1);
    zt_deferred_unref(&d2);
}

/* --- startup and shutdown with run ---------------------------------------------------- */

static void
s_stop(void *arg)
{
    fixture_t *fx = arg;
    s_note(fx, "stop");
    assert_int_equal(zt_reactor_stop(fx->reactor), 0);
}

static zt_result_t
s_note_running(void *arg)
{
    trig_t *t = arg;
    s_note(t->fx, zt_reactor_is_running(t->fx->reactor) ? "running" : "not running");
    return zt_ok_none();
}

static void
test_system_event_running_flag_across_startup_and_shutdown(void **state)
{
    /* Twisted's test_runningForStartupEvents, and its mirror for shutdown. */
    fixture_t *fx = *state;
    trig_t t[6] = {{.fx = fx}, {.fx = fx}, {.fx = fx}, {.fx = fx}, {.fx = fx}, {.fx = fx}};
    const char *events[2] = {"startup", "shutdown"};
    for (int e = 0; e < 2; e++)
        for (int p = 0; p < 3; p++)
            assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, (zt_event_phase_t)p,
                                                                 events[e], s_note_running,
                                                                 &t[e * 3 + p], NULL),
                             0);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_false(zt_reactor_is_running(fx->reactor));
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_false(zt_reactor_is_running(fx->reactor));
    const char *expected[] = {"not running", "running",     "running",    "stop",
                              "running",     "not running", "not running"};
    assert_int_equal(fx->count, 7);
    for (int i = 0; i < 7; i++)
        assert_string_equal(fx->events[i], expected[i]);
}

static void
s_note_call(void *arg)
{
    trig_t *t = arg;
    s_note(t->fx, t->name);
}

static void
test_system_event_call_when_running_runs_in_order_then_immediately(void **state)
{
    /* Twisted's test_callWhenRunningOrder; once running, the call runs at once. */
    fixture_t *fx = *state;
    trig_t one = {.fx = fx, .name = "one"}, two = {.fx = fx, .name = "two"};
    zt_trigger_id_t id = 0;
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_note_call, &one, &id), 0);
    assert_true(id != 0);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_note_call, &two, NULL), 0);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_string_equal(fx->events[0], "one");
    assert_string_equal(fx->events[1], "two");
    assert_string_equal(fx->events[2], "stop");
}

static void
s_call_when_running_now(void *arg)
{
    trig_t *t = arg;
    zt_trigger_id_t id = 99;
    assert_int_equal(zt_reactor_call_when_running(t->fx->reactor, s_note_call, t + 1, &id), 0);
    assert_int_equal(id, 0);
    assert_int_equal(t->fx->count, 1); /* ran at once */
    assert_int_equal(zt_reactor_stop(t->fx->reactor), 0);
}

static void
test_system_event_call_when_running_while_running_calls_at_once(void **state)
{
    fixture_t *fx = *state;
    trig_t t[2] = {{.fx = fx, .name = "outer"}, {.fx = fx, .name = "inner"}};
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_call_when_running_now, t, NULL),
                     0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_string_equal(fx->events[0], "inner");
}

static void
test_system_event_stop_fires_shutdown_asynchronously(void **state)
{
    /* Twisted's test_shutdownFiresTriggersAsynchronously: stop returns before the triggers. */
    fixture_t *fx = *state;
    trig_t b = {.fx = fx, .name = "before shutdown"};
    s_add(fx, ZT_PHASE_BEFORE, "shutdown", &b, NULL);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->count, 2);
    assert_string_equal(fx->events[0], "stop");
    assert_string_equal(fx->events[1], "before shutdown");
}

static void
s_fire_later(void *arg)
{
    trig_t *t = arg;
    s_note(t->fx, "fired");
    assert_int_equal(zt_deferred_callback(t->wait, zt_ok_none()), 0);
}

static zt_result_t
s_wait_a_bit(void *arg)
{
    trig_t *t = arg;
    s_note(t->fx, t->name);
    assert_int_equal(zt_reactor_call_later(t->fx->reactor, 0.001, s_fire_later, t, NULL), 0);
    return zt_wait_for(zt_deferred_ref(t->wait));
}

static void
test_system_event_asynchronous_before_startup_holds_running(void **state)
{
    /* Twisted's test_runWithAsynchronousBeforeStartupTrigger: the loop runs while it waits. */
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    trig_t b = {.fx = fx, .name = "before startup", .wait = d};
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, "startup",
                                                         s_wait_a_bit, &b, NULL),
                     0);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_string_equal(fx->events[0], "before startup");
    assert_string_equal(fx->events[1], "fired");
    assert_string_equal(fx->events[2], "stop");
    zt_deferred_unref(&d);
}

static void
test_system_event_before_shutdown_deferred_holds_run(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    trig_t b = {.fx = fx, .name = "before shutdown", .wait = d},
           a = {.fx = fx, .name = "after shutdown"};
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, "shutdown",
                                                         s_wait_a_bit, &b, NULL),
                     0);
    s_add(fx, ZT_PHASE_AFTER, "shutdown", &a, NULL);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->count, 4);
    assert_string_equal(fx->events[1], "before shutdown");
    assert_string_equal(fx->events[2], "fired");
    assert_string_equal(fx->events[3], "after shutdown");
    assert_int_equal(fx->log.errors, 0);
    zt_deferred_unref(&d);
}

static void
test_system_event_shutdown_deadline_cancels_a_trigger_that_never_fires(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *never = zt_deferred_new();
    trig_t b = {.fx = fx, .name = "before shutdown", .wait = never},
           a = {.fx = fx, .name = "after shutdown"};
    s_add(fx, ZT_PHASE_BEFORE, "shutdown", &b, NULL);
    s_add(fx, ZT_PHASE_AFTER, "shutdown", &a, NULL);
    assert_int_equal(zt_reactor_set_shutdown_timeout(fx->reactor, 0.01), 0);
    assert_int_equal(zt_reactor_set_shutdown_timeout(fx->reactor, 0), ZT_EINVAL);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_string_equal(fx->events[fx->count - 1], "after shutdown");
    assert_true(fx->log.errors >= 2); /* the deadline, and the cancelled trigger */
    assert_true(zt_deferred_is_called(never));
    zt_deferred_unref(&never);
}

static void
s_crash(void *arg)
{
    assert_int_equal(zt_reactor_crash(arg), 0);
}

static void
test_system_event_crash_skips_shutdown_and_run_may_follow(void **state)
{
    /* Twisted's test_crash and test_runAfterCrash. */
    fixture_t *fx = *state;
    trig_t b = {.fx = fx, .name = "before shutdown"};
    s_add(fx, ZT_PHASE_BEFORE, "shutdown", &b, NULL);
    assert_int_equal(zt_reactor_crash(fx->reactor), ZT_ESTATE); /* not running */
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_crash, fx->reactor, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->count, 0);
    assert_false(zt_reactor_is_running(fx->reactor));
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->count, 2);
    assert_string_equal(fx->events[0], "stop");
    assert_string_equal(fx->events[1], "before shutdown");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_system_event_phases_run_before_during_after),
        T(test_system_event_triggers_of_a_phase_run_in_order_added),
        T(test_system_event_triggers_run_once),
        T(test_system_event_other_events_are_not_fired),
        T(test_system_event_invalid_arguments_are_refused),
        T(test_system_event_removed_trigger_does_not_run),
        T(test_system_event_remove_unknown_or_removed_returns_enotfound),
        T(test_system_event_remove_after_it_ran_returns_enotfound),
        T(test_system_event_before_deferred_holds_during),
        T(test_system_event_multiple_before_deferreds_all_hold_during),
        T(test_system_event_later_before_trigger_firing_earlier_deferred_still_waits),
        T(test_system_event_during_deferred_holds_after),
        T(test_system_event_before_removes_pending_during),
        T(test_system_event_remove_executed_before_while_waiting_succeeds),
        T(test_system_event_trigger_removing_itself),
        T(test_system_event_trigger_added_to_running_phase_runs_now),
        T(test_system_event_returned_failure_is_logged_and_event_goes_on),
        T(test_system_event_failed_deferred_is_logged_and_event_goes_on),
        T(test_system_event_different_events_wait_independently),
        T(test_system_event_running_flag_across_startup_and_shutdown),
        T(test_system_event_call_when_running_runs_in_order_then_immediately),
        T(test_system_event_call_when_running_while_running_calls_at_once),
        T(test_system_event_stop_fires_shutdown_asynchronously),
        T(test_system_event_asynchronous_before_startup_holds_running),
        T(test_system_event_before_shutdown_deferred_holds_run),
        T(test_system_event_shutdown_deadline_cancels_a_trigger_that_never_fires),
        T(test_system_event_crash_skips_shutdown_and_run_may_follow),
#undef T
    };
    return cmocka_run_group_tests_name("system_event", tests, NULL, NULL);
}
