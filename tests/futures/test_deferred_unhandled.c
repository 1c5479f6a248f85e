/*  tests/futures/test_deferred_unhandled.c - Deferred after Twisted's test_defer.py: unhandled
 * failures (the handler, the log, strict mode) and the collector: abandoned wait chains and
 * Deferreds waiting on each other in a circle are freed.
 *
 *  The fixture and the links that record into its log are in deferred_fixture.h.  */
#include "deferred_fixture.h"

/* ---------------------------------------------------------------------------------------------
 * Unhandled failures */

static void
test_deferred_unhandled_failure_reported_once_at_last_unref(void **state)
{
    fx_t *fx = *state;
    uint64_t before = zt_deferred_unhandled_count();
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_t *extra = zt_deferred_ref(d);
    zt_deferred_errback(d, zt_failure_new(ZT_QUEUE_UNDERFLOW, "nobody listens"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 0); /* a reference remains */
    zt_deferred_unref(&extra);
    assert_int_equal(fx->unhandled.count, 1);
    assert_string_equal(fx->unhandled.text, "QueueUnderflow: nobody listens");
    assert_int_equal(zt_deferred_unhandled_count(), before + 1);
}

static void
test_deferred_never_fired_is_not_reported(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_log, STEP("e"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 0);
    assert_string_equal(fx->log, "");
}

static void
test_deferred_handled_failure_is_not_reported(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "handled"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_failure_returned_by_last_callback_is_reported(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_fail, STEP("last"));
    zt_deferred_callback(d, zt_ok_int(1));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled.count, 1);
    assert_string_equal(fx->unhandled.text, "Error: last failed");
}

static void
test_deferred_failure_cleared_by_chaining_to_unfired_is_not_reported(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *bad = zt_deferred_fail(zt_failure_new(ZT_ERROR, "oh no"));
    zt_deferred_t *good = zt_deferred_new();
    zt_deferred_add_errback(bad, s_wait, STEP_D("w", good));
    zt_deferred_unref(&bad);
    assert_int_equal(fx->unhandled.count, 0);
    zt_deferred_callback(good, zt_ok_int(1)); /* the waiting chain ends, and frees bad */
    zt_deferred_unref(&good);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_default_handler_logs_error_with_origin_and_causes(void **state)
{
    fx_t *fx = *state;
    zt_deferred_set_unhandled_handler(NULL, NULL);
    support_log_install(&fx->logged);
    zt_failure_t *cause = zt_failure_from_code(ZT_ECONNLOST, "peer went away");
    zt_failure_t *f = zt_failure_new(ZT_ERROR, "request 7 failed");
    int line = __LINE__ - 1;
    zt_failure_set_cause(f, &cause);
    zt_deferred_t *d = zt_deferred_fail(f);
    zt_deferred_unref(&d);
    support_log_remove(&fx->logged);
    support_unhandled_install(&fx->unhandled);
    assert_int_equal(fx->logged.errors, 1);
    char origin[128];
    snprintf(origin, sizeof origin, "Error: request 7 failed (test_deferred_unhandled.c:%d in %s)",
             line, __func__);
    assert_non_null(strstr(fx->logged.last_error, origin));
    assert_non_null(strstr(fx->logged.last_error, "caused by: SystemError"));
    assert_non_null(strstr(fx->logged.last_error, "peer went away"));
}

/* Run scenario in a child process and return how it ended: the signal, or 0 for a normal exit. */
static int
s_child_signal(void (*scenario)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Silence the child's diagnostics; the parent checks how it ended. */
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        scenario(arg);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void
s_strict_scenario(void *arg)
{
    (void)arg;
    zt_deferred_set_strict(true);
    zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "strict"));
    zt_deferred_unref(&d); /* reported, then abort() */
}

static void
s_lenient_scenario(void *arg)
{
    (void)arg;
    zt_deferred_set_strict(false);
    zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "lenient"));
    zt_deferred_unref(&d);
}

static void
test_deferred_strict_mode_aborts_after_unhandled_failure(void **state)
{
    (void)state;
    assert_int_equal(s_child_signal(s_strict_scenario, NULL), SIGABRT);
    assert_int_equal(s_child_signal(s_lenient_scenario, NULL), 0);
}

static void
s_strict_env_scenario(void *arg)
{
    (void)arg;
    /* A fresh process, so that nothing has set strict mode explicitly: only the environment. */
    setenv("ZTWIST_STRICT", "1", 1);
    execl("/proc/self/exe", "test_futures_deferred_unhandled", "--strict-env-child", (char *)NULL);
    _exit(4);
}

static void
test_deferred_strict_env_variable_aborts_after_unhandled_failure(void **state)
{
    (void)state;
    assert_int_equal(s_child_signal(s_strict_env_scenario, NULL), SIGABRT);
}

/* ---------------------------------------------------------------------------------------------
 * Abandoned wait chains: freed when nothing outside the chain can reach them (LSan checks) */

static void
test_deferred_abandoned_wait_on_unfired_is_freed_and_not_reported(void **state)
{
    fx_t *fx = *state;
    /* Twisted's test_errorClearedByChaining: bad's errback chains it to good, which nobody fires.
     */
    zt_deferred_t *bad = zt_deferred_fail(zt_failure_new(ZT_ERROR, "oh no"));
    zt_deferred_t *good = zt_deferred_new();
    zt_deferred_add_errback(bad, s_wait, STEP_D("w", good));
    zt_deferred_add_callback(bad, s_log, STEP("never"));
    zt_deferred_unref(&good);
    zt_deferred_unref(&bad); /* bad and good only hold each other now */
    assert_string_equal(fx->log, "w=!Error ");
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_abandoned_chain_of_three_is_freed_in_any_drop_order(void **state)
{
    fx_t *fx = *state;
    for (int order = 0; order < 2; order++) {
        zt_deferred_t *c = zt_deferred_succeed(s_tracked(fx, 1));
        zt_deferred_pause(c); /* has a result, but nobody can unpause it once dropped */
        zt_deferred_t *b = zt_deferred_new();
        zt_deferred_t *a = zt_deferred_new();
        zt_deferred_add_callback(b, s_wait, STEP_D("b", c));
        zt_deferred_add_callback(a, s_wait, STEP_D("a", b));
        zt_deferred_callback(b, zt_ok_int(0));
        zt_deferred_callback(a, zt_ok_int(0));
        if (order == 0) {
            zt_deferred_unref(&a);
            zt_deferred_unref(&b);
            assert_int_equal(fx->frees, 0);
            zt_deferred_unref(&c);
        } else {
            zt_deferred_unref(&c);
            zt_deferred_unref(&b);
            assert_int_equal(fx->frees, 1); /* the first round's */
            zt_deferred_unref(&a);
        }
        assert_int_equal(fx->frees, order + 1); /* the value c held, freed with the chain */
    }
}

static void
test_deferred_abandoned_two_waiters_on_one_deferred_are_freed_together(void **state)
{
    fx_t *fx = *state;
    /* a and b both wait on inner, which waits on a paused c holding a value: a graph, not a
     * chain. Once the last outside reference goes nothing can run it, and all four are freed. */
    zt_deferred_t *c = zt_deferred_succeed(s_tracked(fx, 1));
    zt_deferred_pause(c);
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_add_callback(inner, s_wait, STEP_D("i", c));
    zt_deferred_callback(inner, zt_ok_int(0));
    zt_deferred_t *a = zt_deferred_new();
    zt_deferred_t *b = zt_deferred_new();
    zt_deferred_add_callback(a, s_wait, STEP_D("a", inner));
    zt_deferred_add_callback(b, s_wait, STEP_D("b", inner));
    zt_deferred_callback(a, zt_ok_int(0));
    zt_deferred_callback(b, zt_ok_int(0));
    zt_deferred_unref(&c);
    zt_deferred_unref(&inner);
    zt_deferred_unref(&a);
    assert_int_equal(fx->frees, 0); /* b is still held, and through it everything */
    zt_deferred_unref(&b);
    assert_int_equal(fx->frees, 1); /* c's value, freed with the whole graph */
}

static void
test_deferred_abandoned_chain_holding_failure_reports_it_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_fail(zt_failure_new(ZT_TIMEOUT_ERROR, "held"));
    zt_deferred_pause(inner);
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_unref(&inner);
    assert_int_equal(fx->unhandled.count, 0);
    zt_deferred_unref(&outer);
    assert_int_equal(fx->unhandled.count, 1);
    assert_string_equal(fx->unhandled.text, "TimeoutError: held");
}

static void
test_deferred_abandoned_chain_with_pending_timeout_is_kept_until_it_fires(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_add_timeout(inner, 4, zt_test_clock_clock(fx->clock)); /* the timer holds inner */
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_add_errback(outer, s_recover, STEP("e"));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_unref(&inner);
    zt_deferred_unref(&outer);
    zt_test_clock_advance(fx->clock, 4);
    assert_string_equal(fx->log, "w=0 e=!TimeoutError ");
}

static void
test_deferred_wait_chain_reachable_from_producer_is_not_freed(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *producer = zt_deferred_ref(inner);
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_add_callback(outer, s_log, STEP("end"));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_unref(&inner);
    zt_deferred_unref(&outer);
    zt_deferred_callback(producer, zt_ok_int(6));
    assert_string_equal(fx->log, "w=0 end=6 ");
    zt_deferred_unref(&producer);
}

/* ---------------------------------------------------------------------------------------------
 * Deferreds waiting on each other in a circle (a deadlock in the program) */

static void
test_deferred_cancel_on_waiting_circle_logs_and_returns(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *a = zt_deferred_new();
    zt_deferred_t *b = zt_deferred_new();
    zt_deferred_add_callback(a, s_wait, STEP_D("a", b));
    zt_deferred_add_callback(b, s_wait, STEP_D("b", a));
    zt_deferred_callback(a, zt_ok_int(0)); /* a waits on b */
    zt_deferred_callback(b, zt_ok_int(0)); /* b waits on a: neither can ever fire */
    support_log_install(&fx->logged);
    zt_deferred_cancel(a); /* Twisted recurses until RecursionError; this returns */
    support_log_remove(&fx->logged);
    assert_int_equal(fx->logged.errors, 1);
    assert_non_null(strstr(fx->logged.last_error, "circle"));
    assert_true(zt_deferred_is_paused(a));
    assert_true(zt_deferred_is_paused(b));
    zt_deferred_unref(&a);
    zt_deferred_unref(&b); /* LSan: the abandoned circle is freed */
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_abandoned_circle_of_three_is_freed(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d[3];
    for (int i = 0; i < 3; i++)
        d[i] = zt_deferred_new();
    step_t steps[3];
    for (int i = 0; i < 3; i++) {
        steps[i] = (step_t){.fx = fx, .name = "w", .other = d[(i + 1) % 3]};
        zt_deferred_add_callback(d[i], s_wait, &steps[i]);
    }
    for (int i = 0; i < 3; i++)
        zt_deferred_callback(d[i], s_tracked(fx, i)); /* each value is released by s_wait */
    assert_int_equal(fx->frees, 3);
    for (int i = 0; i < 3; i++)
        zt_deferred_unref(&d[i]); /* LSan: freed when the last outside reference goes */
    assert_string_equal(fx->log, "w=obj0 w=obj1 w=obj2 ");
}

#ifndef NDEBUG

typedef struct {
    zt_deferred_t *d; /* Borrowed: created on the main thread */
} foreign_t;

static void *
s_foreign_thread(void *arg)
{
    foreign_t *foreign = arg;
    zt_deferred_callback(foreign->d, zt_ok_int(1)); /* wrong thread: asserts */
    return NULL;
}

static void
s_foreign_scenario(void *arg)
{
    (void)arg;
    foreign_t foreign = {.d = zt_deferred_new()};
    pthread_t thread;
    if (pthread_create(&thread, NULL, s_foreign_thread, &foreign) != 0)
        _exit(5);
    pthread_join(thread, NULL);
}

static void
test_deferred_debug_build_asserts_on_use_from_another_thread(void **state)
{
    (void)state;
    assert_int_equal(s_child_signal(s_foreign_scenario, NULL), SIGABRT);
}

#endif

static zt_result_t
s_return_self(zt_result_t r, void *arg)
{
    zt_result_release(&r);
    return zt_wait_for(zt_deferred_ref(arg));
}

static void
s_return_self_scenario(void *arg)
{
    (void)arg;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_return_self, d);
    zt_deferred_callback(d, zt_ok_int(0));
}

static void
test_deferred_callback_returning_own_deferred_asserts(void **state)
{
    (void)state;
    assert_int_equal(s_child_signal(s_return_self_scenario, NULL), SIGABRT);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--strict-env-child") == 0) {
        zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "strict from env"));
        zt_deferred_unref(&d); /* ZTWIST_STRICT=1: aborts here */
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deferred_unhandled_failure_reported_once_at_last_unref,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_never_fired_is_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_handled_failure_is_not_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_failure_returned_by_last_callback_is_reported,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_failure_cleared_by_chaining_to_unfired_is_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_default_handler_logs_error_with_origin_and_causes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_strict_mode_aborts_after_unhandled_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_strict_env_variable_aborts_after_unhandled_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_wait_on_unfired_is_freed_and_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_chain_of_three_is_freed_in_any_drop_order, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_two_waiters_on_one_deferred_are_freed_together, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_chain_holding_failure_reports_it_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_chain_with_pending_timeout_is_kept_until_it_fires, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_wait_chain_reachable_from_producer_is_not_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_on_waiting_circle_logs_and_returns,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_abandoned_circle_of_three_is_freed, setup,
                                        teardown),
#ifndef NDEBUG
        cmocka_unit_test_setup_teardown(
            test_deferred_debug_build_asserts_on_use_from_another_thread, setup, teardown),
#endif
        cmocka_unit_test_setup_teardown(test_deferred_callback_returning_own_deferred_asserts,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("deferred_unhandled", tests, NULL, NULL);
}
