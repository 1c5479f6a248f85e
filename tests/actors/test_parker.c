/*  tests/actors/test_parker.c - the pool worker's parker (actors/parker.c): spin, then sleep,
 * and the handover protocol with the reactor's side
 *
 *  The test plays the reactor: it hands a batch over as dispatch.c does (exchange the signal to
 * WORK, send "B" only when the old value was SLEEP) from a helper thread, over an inproc PAIR.
 * Whether the helper comes while the parker spins or after it went to sleep, the parker must see
 * the batch; the assertions do not depend on which.  */
#define _GNU_SOURCE /* SCHED_IDLE */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "actors/parker.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <zmq.h>

typedef struct fixture {
    void *ctx;               /* Owned: a ZeroMQ context of the test's own */
    void *reactor_end;       /* Owned: the PAIR the "reactor" sends on */
    void *worker_end;        /* Owned: the PAIR the parker sleeps on */
    atomic_int signal;       /* the handover word */
    _Atomic(uint32_t) link;  /* ZT__L_ORPHANED */
    _Atomic(uint64_t) spins; /* the parker's spins */
    char command;            /* what the helper sends when it finds the parker asleep */
    bool wait_for_sleep;     /* the helper first waits until the parker sleeps */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->ctx = zmq_ctx_new();
    fx->reactor_end = zmq_socket(fx->ctx, ZMQ_PAIR);
    fx->worker_end = zmq_socket(fx->ctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(fx->worker_end, "inproc://test-parker"), 0);
    assert_int_equal(zmq_connect(fx->reactor_end, "inproc://test-parker"), 0);
    atomic_init(&fx->signal, ZT__SIG_IDLE);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zmq_close(fx->reactor_end);
    zmq_close(fx->worker_end);
    zmq_ctx_term(fx->ctx);
    free(fx);
    return 0;
}

/* The reactor's side of a handover (or, with command 'T', of an end). */
static void *
s_hand_over(void *arg)
{
    fixture_t *fx = arg;
    if (fx->wait_for_sleep)
        while (atomic_load(&fx->signal) != ZT__SIG_SLEEP)
            sched_yield();
    int old =
        fx->command == 'B' ? atomic_exchange(&fx->signal, ZT__SIG_WORK) : atomic_load(&fx->signal);
    if (old == ZT__SIG_SLEEP)
        zmq_send(fx->reactor_end, &fx->command, 1, 0);
    return NULL;
}

static bool
s_wait_with_helper(fixture_t *fx, bool spin, bool deep)
{
    zt__parker_t pk;
    zt__parker_init(&pk, &fx->signal, &fx->link, &fx->spins, fx->worker_end, spin);
    pthread_t helper;
    assert_int_equal(pthread_create(&helper, NULL, s_hand_over, fx), 0);
    bool got = zt__parker_wait(&pk, deep);
    pthread_join(helper, NULL);
    return got;
}

static void
test_parker_batch_handed_over_during_a_deep_wait_is_seen(void **state)
{
    fixture_t *fx = *state;
    fx->command = 'B';
    assert_true(s_wait_with_helper(fx, true, true));
    assert_int_equal(atomic_load(&fx->signal), ZT__SIG_WORK);
    assert_int_equal(atomic_load(&fx->spins), 1); /* no other parker spins in this process */
}

static void
test_parker_batch_handed_over_to_a_sleeping_parker_wakes_it(void **state)
{
    fixture_t *fx = *state;
    fx->command = 'B';
    fx->wait_for_sleep = true;
    assert_true(s_wait_with_helper(fx, false, true));
    assert_int_equal(atomic_load(&fx->spins), 0); /* spinning off: straight to sleep */
}

static void
test_parker_end_command_while_asleep_returns_false(void **state)
{
    fixture_t *fx = *state;
    fx->command = 'T';
    fx->wait_for_sleep = true;
    assert_false(s_wait_with_helper(fx, false, false));
}

static void
test_parker_batch_ready_before_the_wait_returns_at_once(void **state)
{
    fixture_t *fx = *state;
    atomic_store(&fx->signal, ZT__SIG_WORK);
    zt__parker_t pk;
    zt__parker_init(&pk, &fx->signal, &fx->link, &fx->spins, fx->worker_end, false);
    assert_true(zt__parker_wait(&pk, false)); /* the IDLE -> SLEEP CAS lost to WORK */
    assert_int_equal(atomic_load(&fx->signal), ZT__SIG_WORK);
}

static void
test_parker_detached_worker_stops_waiting_without_sleeping(void **state)
{
    fixture_t *fx = *state;
    atomic_store(&fx->link, ZT__L_ORPHANED);
    zt__parker_t pk;
    zt__parker_init(&pk, &fx->signal, &fx->link, &fx->spins, fx->worker_end, true);
    assert_false(zt__parker_wait(&pk, true));
    assert_int_equal(atomic_load(&fx->signal), ZT__SIG_IDLE); /* never announced SLEEP */
}

static void
test_parker_probe_leaves_the_thread_policy_unchanged(void **state)
{
    (void)state;
    int before = sched_getscheduler(0);
    bool ok = zt__parker_can_idle_spin();
    assert_int_equal(sched_getscheduler(0), before);
    assert_int_equal(zt__parker_can_idle_spin(), ok); /* probed once: the same answer */
}

static void
test_parker_shallow_wait_spins_only_when_the_probe_allows_it(void **state)
{
    fixture_t *fx = *state;
    fx->command = 'B';
    int before = sched_getscheduler(0);
    assert_true(s_wait_with_helper(fx, true, false));
    bool idle_ok = zt__parker_can_idle_spin() && before == SCHED_OTHER;
    assert_int_equal(atomic_load(&fx->spins), idle_ok ? 1 : 0);
    assert_int_equal(sched_getscheduler(0), before); /* back to the policy it started with */
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_parker_batch_handed_over_during_a_deep_wait_is_seen),
        T(test_parker_batch_handed_over_to_a_sleeping_parker_wakes_it),
        T(test_parker_end_command_while_asleep_returns_false),
        T(test_parker_batch_ready_before_the_wait_returns_at_once),
        T(test_parker_detached_worker_stops_waiting_without_sleeping),
        T(test_parker_probe_leaves_the_thread_policy_unchanged),
        T(test_parker_shallow_wait_spins_only_when_the_probe_allows_it),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
