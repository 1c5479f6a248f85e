/*  tests/futures/test_cooperator.c - Cooperator: steps in passes, round robin, pause, resume and
 *  stop, steps that return Deferreds or failures, the end reported once, and (on a real reactor)
 *  a task that never ends does not starve the reactor's timers
 *
 *  Passes are scheduled 1 s apart on a test clock and run by zt_test_clock_advance(tc, 1); each is
 * bounded by steps (zt_cooperator_set_max_steps) so that no test depends on timing.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/cooperator.h>
#include <ztwist/reactor.h>
#include <ztwist/test_clock.h>

#include <stdlib.h>
#include <string.h>

typedef struct counter {
    int n;                            /* steps taken */
    int limit;                        /* done after this many; < 0 never */
    char name;                        /* its letter in the fixture's trace */
    char *trace;                      /* Borrowed: the fixture's trace, or NULL */
    zt_deferred_t *wait;              /* a Deferred to return once, at step wait_at (then NULL) */
    int wait_at;                      /* which step returns it */
    bool fail_at_limit;               /* return a failure instead of finishing */
    int freed;                        /* free_fn calls */
    zt_cooperative_task_t *self_task; /* stop this task at step stop_at */
    int stop_at;                      /* which step stops its own task (0: none) */
} counter_t;

typedef struct fixture {
    zt_test_clock_t *tc;                /* the clock */
    zt_cooperator_t *coop;              /* the cooperator under test */
    char trace[256];                    /* the letters of the steps, in order */
    int fired;                          /* when_done callbacks */
    bool ok;                            /* the last one had a value */
    const zt_failure_type_t *fail_type; /* or its failure's type */
} fixture_t;

static zt_result_t
step(bool *done, void *arg)
{
    counter_t *c = arg;
    c->n++;
    if (c->trace) {
        size_t len = strlen(c->trace);
        c->trace[len] = c->name;
        c->trace[len + 1] = '\0';
    }
    if (c->stop_at && c->n == c->stop_at)
        assert_int_equal(zt_cooperative_task_stop(c->self_task), 0);
    if (c->wait && c->n == c->wait_at) {
        zt_deferred_t *d = c->wait;
        c->wait = NULL;
        return zt_wait_for(d);
    }
    if (c->limit >= 0 && c->n >= c->limit) {
        if (c->fail_at_limit)
            return zt_err(zt_failure_new(ZT_ERROR, "step %d failed", c->n));
        *done = true;
    }
    return zt_ok_int(c->n);
}

static void
counter_free(void *arg)
{
    counter_t *c = arg;
    c->freed++;
}

static zt_result_t
on_done(zt_result_t r, void *arg)
{
    fixture_t *fx = arg;
    fx->fired++;
    fx->ok = !zt_is_err(r);
    fx->fail_type = zt_is_err(r) ? zt_failure_type(zt_result_failure(r)) : NULL;
    zt_result_release(&r);
    return zt_ok_none();
}

static void
watch(fixture_t *fx, zt_deferred_t *d)
{
    assert_non_null(d);
    assert_int_equal(zt_deferred_add_both(d, on_done, fx), 0);
    zt_deferred_unref(&d);
}

static void
pass(fixture_t *fx)
{
    assert_int_equal(zt_test_clock_advance(fx->tc, 1), 0);
}

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->tc = zt_test_clock_new();
    fx->coop = zt_cooperator_new(zt_test_clock_clock(fx->tc), 0);
    assert_true(fx->tc && fx->coop);
    assert_int_equal(zt_cooperator_set_pass_delay(fx->coop, 1), 0); /* one pass per advance(1) */
    assert_int_equal(zt_cooperator_set_pass_delay(fx->coop, -1), ZT_EINVAL);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_cooperator_destroy(&fx->coop);
    zt_test_clock_destroy(&fx->tc);
    free(fx);
    return 0;
}

static void
test_cooperator_coiterate_runs_steps_per_pass_then_fires_once(void **state)
{
    fixture_t *fx = *state;
    zt_cooperator_set_max_steps(fx->coop, 3);
    counter_t c = {.limit = 10};
    watch(fx, zt_coiterate(fx->coop, step, &c, counter_free));
    assert_int_equal(c.n, 0); /* never inside the call */
    pass(fx);
    assert_int_equal(c.n, 3);
    pass(fx);
    assert_int_equal(c.n, 6);
    pass(fx);
    pass(fx);
    assert_int_equal(c.n, 10);
    assert_int_equal(fx->fired, 1);
    assert_true(fx->ok);
    assert_int_equal(c.freed, 1);
    assert_int_equal(zt_cooperator_task_count(fx->coop), 0);
    pass(fx);
    assert_int_equal(c.n, 10);
    assert_int_equal(zt_test_clock_pending(fx->tc), 0); /* nothing left scheduled */
}

static void
test_cooperator_tasks_take_turns_across_passes(void **state)
{
    fixture_t *fx = *state;
    zt_cooperator_set_max_steps(fx->coop, 1);
    counter_t a = {.limit = 3, .name = 'a', .trace = fx->trace};
    counter_t b = {.limit = 3, .name = 'b', .trace = fx->trace};
    assert_int_equal(zt_cooperator_cooperate(fx->coop, step, &a, NULL, NULL), 0);
    assert_int_equal(zt_cooperator_cooperate(fx->coop, step, &b, NULL, NULL), 0);
    for (int i = 0; i < 8; i++)
        pass(fx);
    assert_string_equal(fx->trace, "ababab");
    fx->trace[0] = '\0';
    zt_cooperator_set_max_steps(fx->coop, 0);
    counter_t c = {.limit = 2, .name = 'c', .trace = fx->trace};
    counter_t d = {.limit = 3, .name = 'd', .trace = fx->trace};
    assert_int_equal(zt_cooperator_cooperate(fx->coop, step, &c, NULL, NULL), 0);
    assert_int_equal(zt_cooperator_cooperate(fx->coop, step, &d, NULL, NULL), 0);
    pass(fx); /* one pass, rounds of one step each, within the default slice */
    assert_string_equal(fx->trace, "cdcdd");
}

static void
test_cooperator_pause_resume_and_stop(void **state)
{
    fixture_t *fx = *state;
    zt_cooperator_set_max_steps(fx->coop, 1);
    counter_t c = {.limit = -1};
    zt_cooperative_task_t *t = NULL;
    assert_int_equal(zt_cooperator_cooperate(fx->coop, step, &c, counter_free, &t), 0);
    watch(fx, zt_cooperative_task_when_done(t));
    pass(fx);
    assert_int_equal(c.n, 1);
    assert_int_equal(zt_cooperative_task_pause(t), 0);
    assert_int_equal(zt_cooperative_task_pause(t), 0);
    pass(fx);
    assert_int_equal(c.n, 1);
    assert_int_equal(zt_cooperative_task_resume(t), 0);
    pass(fx);
    assert_int_equal(c.n, 1); /* pauses nest */
    assert_int_equal(zt_cooperative_task_resume(t), 0);
    assert_int_equal(zt_cooperative_task_resume(t), ZT_ESTATE);
    pass(fx);
    assert_int_equal(c.n, 2);
    assert_int_equal(zt_cooperative_task_steps(t), 2);
    assert_int_equal(zt_cooperative_task_stop(t), 0);
    assert_true(zt_cooperative_task_is_done(t));
    assert_int_equal(fx->fired, 1);
    assert_ptr_equal(fx->fail_type, ZT_CANCELLED_ERROR);
    assert_int_equal(c.freed, 1);
    assert_int_equal(zt_cooperative_task_stop(t), ZT_ESTATE);
    assert_int_equal(zt_cooperative_task_pause(t), ZT_ESTATE);
    pass(fx);
    assert_int_equal(c.n, 2);
    /* when_done after the end is fired already */
    watch(fx, zt_cooperative_task_when_done(t));
    assert_int_equal(fx->fired, 2);
    assert_ptr_equal(fx->fail_type, ZT_CANCELLED_ERROR);
    zt_cooperative_task_release(&t);
    assert_null(t);
}

static void
test_cooperator_step_deferred_holds_only_its_task(void **state)
{
    fixture_t *fx = *state;
    zt_cooperator_set_max_steps(fx->coop, 1);
    zt_deferred_t *d = zt_deferred_new();
    counter_t a = {
        .limit = 3, .name = 'a', .trace = fx->trace, .wait = zt_deferred_ref(d), .wait_at = 1};
    counter_t b = {.limit = 3, .name = 'b', .trace = fx->trace};
    watch(fx, zt_coiterate(fx->coop, step, &a, NULL));
    assert_int_equal(zt_cooperator_cooperate(fx->coop, step, &b, NULL, NULL), 0);
    for (int i = 0; i < 6; i++)
        pass(fx);
    assert_string_equal(fx->trace, "abbb"); /* a waits, b goes on */
    assert_int_equal(fx->fired, 0);
    assert_int_equal(zt_deferred_callback(d, zt_ok_none()), 0);
    for (int i = 0; i < 4; i++)
        pass(fx);
    assert_string_equal(fx->trace, "abbbaa");
    assert_int_equal(fx->fired, 1);
    assert_true(fx->ok);
    zt_deferred_unref(&d);
}

static void
test_cooperator_failed_deferred_or_step_fails_the_task(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    counter_t a = {.limit = -1, .wait = zt_deferred_ref(d), .wait_at = 2};
    watch(fx, zt_coiterate(fx->coop, step, &a, counter_free));
    pass(fx);
    assert_int_equal(a.n, 2);
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_TIMEOUT_ERROR, "too slow")), 0);
    assert_int_equal(fx->fired, 1);
    assert_ptr_equal(fx->fail_type, ZT_TIMEOUT_ERROR);
    assert_int_equal(a.freed, 1);
    zt_deferred_unref(&d);
    counter_t b = {.limit = 4, .fail_at_limit = true};
    watch(fx, zt_coiterate(fx->coop, step, &b, counter_free));
    pass(fx);
    assert_int_equal(fx->fired, 2);
    assert_false(fx->ok);
    assert_ptr_equal(fx->fail_type, ZT_ERROR);
    assert_int_equal(b.n, 4);
    assert_int_equal(b.freed, 1);
}

static void
test_cooperator_step_may_stop_its_own_task(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {.limit = -1, .stop_at = 3};
    assert_int_equal(zt_cooperator_cooperate(fx->coop, step, &c, counter_free, &c.self_task), 0);
    watch(fx, zt_cooperative_task_when_done(c.self_task));
    pass(fx);
    assert_int_equal(c.n, 3);
    assert_int_equal(fx->fired, 1);
    assert_ptr_equal(fx->fail_type, ZT_CANCELLED_ERROR);
    zt_cooperative_task_release(&c.self_task);
}

static void
test_cooperator_stop_ends_every_task_and_refuses_new_ones(void **state)
{
    fixture_t *fx = *state;
    counter_t a = {.limit = -1}, b = {.limit = -1};
    watch(fx, zt_coiterate(fx->coop, step, &a, counter_free));
    watch(fx, zt_coiterate(fx->coop, step, &b, counter_free));
    assert_int_equal(zt_cooperator_task_count(fx->coop), 2);
    zt_cooperator_stop(fx->coop);
    assert_int_equal(fx->fired, 2);
    assert_ptr_equal(fx->fail_type, ZT_CANCELLED_ERROR);
    assert_int_equal(a.freed + b.freed, 2);
    assert_int_equal(zt_cooperator_cooperate(fx->coop, step, &a, NULL, NULL), ZT_ESHUTDOWN);
    assert_null(zt_coiterate(fx->coop, step, &a, NULL));
    assert_int_equal(zt_cooperator_cooperate(fx->coop, NULL, &a, NULL, NULL), ZT_EINVAL);
    assert_null(zt_cooperator_new(NULL, 0));
}

static void
test_cooperator_destroy_while_a_step_waits(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    counter_t a = {.limit = -1, .wait = zt_deferred_ref(d), .wait_at = 1};
    zt_cooperative_task_t *t = NULL;
    assert_int_equal(zt_cooperator_cooperate(fx->coop, step, &a, counter_free, &t), 0);
    pass(fx);
    zt_cooperator_destroy(&fx->coop);
    assert_true(zt_cooperative_task_is_done(t));
    assert_int_equal(a.freed, 1);
    zt_deferred_callback(d, zt_ok_none()); /* the late fire reaches nothing freed */
    zt_deferred_unref(&d);
    zt_cooperative_task_release(&t);
}

/* --- on a real reactor -------------------------------------------------------------------- */

static void
on_timer(void *arg)
{
    *(bool *)arg = true;
}

static void
test_cooperator_endless_task_does_not_starve_the_reactor(void **state)
{
    (void)state;
    zt_reactor_t *r = zt_reactor_new();
    zt_cooperator_t *coop = zt_cooperator_new(zt_reactor_clock(r), 0.001);
    counter_t c = {.limit = -1};
    fixture_t fx = {0};
    watch(&fx, zt_coiterate(coop, step, &c, NULL));
    bool timer = false;
    assert_int_equal(zt_reactor_call_later(r, 0, on_timer, &timer, NULL), 0);
    for (int i = 0; i < 1000 && !timer; i++)
        zt_reactor_iterate(r, 0.01);
    assert_true(timer); /* the timer ran while the task still had steps to take */
    assert_true(c.n > 0);
    assert_int_equal(fx.fired, 0);
    zt_cooperator_destroy(&coop);
    assert_int_equal(fx.fired, 1);
    assert_ptr_equal(fx.fail_type, ZT_CANCELLED_ERROR);
    zt_reactor_destroy(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_cooperator_coiterate_runs_steps_per_pass_then_fires_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cooperator_tasks_take_turns_across_passes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cooperator_pause_resume_and_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cooperator_step_deferred_holds_only_its_task, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cooperator_failed_deferred_or_step_fails_the_task,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cooperator_step_may_stop_its_own_task, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cooperator_stop_ends_every_task_and_refuses_new_ones,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cooperator_destroy_while_a_step_waits, setup,
                                        teardown),
        cmocka_unit_test(test_cooperator_endless_task_does_not_starve_the_reactor),
    };
    return cmocka_run_group_tests_name("cooperator", tests, NULL, NULL);
}
