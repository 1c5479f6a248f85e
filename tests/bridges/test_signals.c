/*  tests/bridges/test_signals.c - signal callbacks on the reactor: run on a later pass, several
 *  per signal, removed, dispositions restored, composed with zt_reactor_handle_signals
 *
 *  raise() delivers the signal to the calling thread before it returns, so the handler has
 * written its byte when raise returns; the callbacks run when the test iterates the reactor.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/reactor.h>
#include <ztwist/signals.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    zt_reactor_t *reactor;        /* the reactor under test */
    int usr1_a;                   /* first SIGUSR1 callback's calls */
    int usr1_b;                   /* second's */
    int hup;                      /* SIGHUP callback's calls */
    int term;                     /* SIGTERM callback's calls */
    int last_signum;              /* the signum the last callback got */
    zt_signal_id_t self_removing; /* a callback that removes itself */
} fixture_t;

static int s_test_handler_calls; /* the test's own plain handler (a signal handler's state) */

static void
test_handler(int sig)
{
    (void)sig;
    s_test_handler_calls++;
}

static void
on_usr1_a(zt_reactor_t *r, int signum, void *arg)
{
    (void)r;
    fixture_t *fx = arg;
    fx->usr1_a++;
    fx->last_signum = signum;
}

static void
on_usr1_b(zt_reactor_t *r, int signum, void *arg)
{
    (void)r;
    (void)signum;
    fixture_t *fx = arg;
    fx->usr1_b++;
}

static void
on_hup(zt_reactor_t *r, int signum, void *arg)
{
    (void)signum;
    fixture_t *fx = arg;
    fx->hup++;
    if (fx->self_removing)
        assert_int_equal(zt_signals_remove(r, fx->self_removing), 0);
}

static void
on_term(zt_reactor_t *r, int signum, void *arg)
{
    (void)r;
    (void)signum;
    fixture_t *fx = arg;
    fx->term++;
}

static void
spin(zt_reactor_t *r)
{
    for (int i = 0; i < 5; i++)
        zt_reactor_iterate(r, 0.001);
}

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
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
    free(fx);
    return 0;
}

static void
test_signals_callbacks_run_on_a_later_pass(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_signals_add(fx->reactor, SIGUSR1, on_usr1_a, fx, NULL), 0);
    assert_int_equal(zt_signals_add(fx->reactor, SIGUSR1, on_usr1_b, fx, NULL), 0);
    assert_int_equal(zt_signals_add(fx->reactor, SIGHUP, on_hup, fx, NULL), 0);
    assert_int_equal(zt_signals_count(fx->reactor), 3);
    raise(SIGUSR1);
    assert_int_equal(fx->usr1_a, 0); /* never inside the handler */
    spin(fx->reactor);
    assert_int_equal(fx->usr1_a, 1);
    assert_int_equal(fx->usr1_b, 1);
    assert_int_equal(fx->hup, 0);
    assert_int_equal(fx->last_signum, SIGUSR1);
    raise(SIGHUP);
    spin(fx->reactor);
    assert_int_equal(fx->hup, 1);
    assert_int_equal(fx->usr1_a, 1);
}

static void
test_signals_deliveries_before_a_pass_coalesce(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_signals_add(fx->reactor, SIGUSR1, on_usr1_a, fx, NULL), 0);
    raise(SIGUSR1);
    raise(SIGUSR1);
    spin(fx->reactor);
    assert_int_equal(fx->usr1_a, 1);
    raise(SIGUSR1);
    spin(fx->reactor);
    assert_int_equal(fx->usr1_a, 2);
}

static void
test_signals_remove_restores_the_old_disposition(void **state)
{
    fixture_t *fx = *state;
    struct sigaction mine = {.sa_handler = test_handler}, old, now;
    sigemptyset(&mine.sa_mask);
    assert_int_equal(sigaction(SIGUSR2, &mine, &old), 0);
    zt_signal_id_t a = 0, b = 0;
    assert_int_equal(zt_signals_add(fx->reactor, SIGUSR2, on_usr1_a, fx, &a), 0);
    assert_int_equal(zt_signals_add(fx->reactor, SIGUSR2, on_usr1_b, fx, &b), 0);
    assert_true(a != 0 && b != 0 && a != b);
    s_test_handler_calls = 0;
    raise(SIGUSR2);
    spin(fx->reactor);
    assert_int_equal(fx->usr1_a, 1);
    assert_int_equal(s_test_handler_calls, 1); /* the replaced handler is passed the delivery */
    assert_int_equal(zt_signals_remove(fx->reactor, a), 0);
    assert_int_equal(zt_signals_remove(fx->reactor, a), ZT_ENOTFOUND);
    sigaction(SIGUSR2, NULL, &now);
    assert_ptr_not_equal(now.sa_handler, test_handler); /* b still holds it */
    raise(SIGUSR2);
    spin(fx->reactor);
    assert_int_equal(fx->usr1_a, 1);
    assert_int_equal(fx->usr1_b, 2);
    assert_int_equal(zt_signals_remove(fx->reactor, b), 0);
    sigaction(SIGUSR2, NULL, &now);
    assert_ptr_equal(now.sa_handler, test_handler);
    assert_int_equal(zt_signals_count(fx->reactor), 0);
    sigaction(SIGUSR2, &old, NULL);
}

static void
test_signals_destroy_restores_dispositions(void **state)
{
    fixture_t *fx = *state;
    struct sigaction before, now;
    sigaction(SIGHUP, NULL, &before);
    assert_int_equal(zt_signals_add(fx->reactor, SIGHUP, on_hup, fx, NULL), 0);
    sigaction(SIGHUP, NULL, &now);
    assert_ptr_not_equal(now.sa_handler, before.sa_handler);
    zt_reactor_destroy(&fx->reactor);
    sigaction(SIGHUP, NULL, &now);
    assert_ptr_equal(now.sa_handler, before.sa_handler);
    /* A new reactor may take the signals over. */
    fx->reactor = zt_reactor_new();
    assert_int_equal(zt_signals_add(fx->reactor, SIGHUP, on_hup, fx, NULL), 0);
}

static void
test_signals_callback_may_remove_itself(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_signals_add(fx->reactor, SIGHUP, on_hup, fx, &fx->self_removing), 0);
    assert_int_equal(zt_signals_add(fx->reactor, SIGHUP, on_term, fx, NULL), 0);
    raise(SIGHUP);
    spin(fx->reactor);
    assert_int_equal(fx->hup, 1);
    assert_int_equal(fx->term, 1);
    fx->self_removing = 0;
    raise(SIGHUP);
    spin(fx->reactor);
    assert_int_equal(fx->hup, 1);
    assert_int_equal(fx->term, 2);
}

static void
test_signals_bad_arguments_are_refused(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_signals_add(fx->reactor, SIGKILL, on_hup, fx, NULL), ZT_EINVAL);
    assert_int_equal(zt_signals_add(fx->reactor, SIGSTOP, on_hup, fx, NULL), ZT_EINVAL);
    assert_int_equal(zt_signals_add(fx->reactor, SIGSEGV, on_hup, fx, NULL), ZT_EINVAL);
    assert_int_equal(zt_signals_add(fx->reactor, 0, on_hup, fx, NULL), ZT_EINVAL);
    assert_int_equal(zt_signals_add(fx->reactor, 999, on_hup, fx, NULL), ZT_EINVAL);
    assert_int_equal(zt_signals_add(fx->reactor, SIGHUP, NULL, fx, NULL), ZT_EINVAL);
    assert_int_equal(zt_signals_remove(fx->reactor, 12345), ZT_ENOTFOUND);
    /* One reactor at a time. */
    assert_int_equal(zt_signals_add(fx->reactor, SIGHUP, on_hup, fx, NULL), 0);
    zt_reactor_t *other = zt_reactor_new();
    assert_int_equal(zt_signals_add(other, SIGUSR1, on_hup, fx, NULL), ZT_ESTATE);
    zt_reactor_destroy(&other);
}

static void
on_running_raise_term(void *arg)
{
    (void)arg;
    raise(SIGTERM);
}

static void
test_signals_compose_with_handle_signals(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_handle_signals(fx->reactor), 0);
    assert_int_equal(zt_signals_add(fx->reactor, SIGTERM, on_term, fx, NULL), 0);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, on_running_raise_term, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0); /* the reactor's own handler stopped it */
    assert_int_equal(fx->term, 1);                    /* and the callback ran too */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signals_callbacks_run_on_a_later_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_signals_deliveries_before_a_pass_coalesce, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_signals_remove_restores_the_old_disposition, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_signals_destroy_restores_dispositions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_signals_callback_may_remove_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signals_bad_arguments_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signals_compose_with_handle_signals, setup, teardown),
    };
    return cmocka_run_group_tests_name("signals", tests, NULL, NULL);
}
