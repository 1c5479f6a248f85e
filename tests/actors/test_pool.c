/*  tests/actors/test_pool.c - the pool of worker actors (Twisted's test_threadpool.py, and what
 * ztwist adds: batches that never hold work back from an idle worker, cancellation, back-pressure,
 * a stop with a deadline)
 *
 *  Each test owns a reactor and a pool and drives the reactor with zt_reactor_iterate until what it
 * waits for has happened or a deadline has passed (then the test fails). Work that must stay busy
 * waits on the fixture's gate, which the test opens: no sleep is used to order anything.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist.h>

#include "support/support.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define DEADLINE 20.0 /* seconds a test waits for something before it fails */
#define MANY 3000     /* work items that fill several chunks of the pool's queue (1,024 each) */

ZT_FAILURE_TYPE(test_error, "TestError", ZT_ERROR);

typedef struct fixture {
    zt_reactor_t *r;                /* the reactor */
    zt_pool_t *pool;                /* the pool under test */
    pthread_t reactor_thread;       /* the thread that runs the reactor */
    support_gate_t gate;            /* blocked work waits here until the test opens it */
    atomic_int ran;                 /* work functions that ran */
    atomic_int ran_special;         /* runs of the one function a test singles out */
    atomic_int freed;               /* values freed by count_free */
    atomic_bool saw_cancelled;      /* zt_thread_is_cancelled() seen by work */
    atomic_bool on_worker;          /* work saw zt_thread_is_worker() */
    atomic_int callbacks;           /* on_result calls */
    atomic_bool callback_success;   /* on_result's success flag */
    atomic_long callback_value;     /* on_result's value */
    atomic_bool callback_on_worker; /* on_result ran on a worker */
    int started;                    /* work that told the reactor it started (reactor thread) */
    int fired;                      /* Deferreds fired with a value */
    int failed;                     /* Deferreds failed */
    intptr_t value;                 /* the last value */
    int code;                       /* the last failure's code */
    const zt_failure_type_t *why;   /* the last failure's type */
    bool fired_on_reactor;          /* every callback ran on the reactor thread */
    int want_fired;                 /* fired + failed that fired_as_many_as_wanted waits for */
    atomic_int next_slot;           /* the next free place in order */
    int order[MANY];                /* the numbers of the work items, in the order they ran */
    struct numbered {
        struct fixture *fx; /* Borrowed: the fixture */
        int number;         /* the item's place in the submission order */
    } items[MANY];          /* the args of numbered work */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->r = zt_reactor_new();
    assert_non_null(fx->r);
    fx->reactor_thread = pthread_self();
    support_gate_init(&fx->gate, DEADLINE);
    fx->fired_on_reactor = true;
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_pool_destroy(&fx->pool);
    assert_null(fx->pool);
    zt_reactor_destroy(&fx->r);
    support_gate_fini(&fx->gate);
    free(fx);
    return 0;
}

/* --- work ----------------------------------------------------------------------------------- */

static zt_result_t
work_seven(void *arg)
{
    fixture_t *fx = arg;
    atomic_fetch_add(&fx->ran, 1);
    atomic_store(&fx->on_worker, zt_thread_is_worker());
    return zt_ok_int(7);
}

static zt_result_t
work_special(void *arg)
{
    fixture_t *fx = arg;
    atomic_fetch_add(&fx->ran_special, 1);
    return zt_ok_int(1);
}

static zt_result_t
work_fail(void *arg)
{
    fixture_t *fx = arg;
    atomic_fetch_add(&fx->ran, 1);
    return zt_err(zt_failure_new(&test_error, "work failed on purpose"));
}

static zt_result_t
work_block(void *arg)
{
    fixture_t *fx = arg;
    support_gate_wait(&fx->gate);
    atomic_fetch_add(&fx->ran_special, 1);
    return zt_ok_int(1);
}

/* Writes its number to the next place of fx->order. */
static zt_result_t
work_numbered(void *arg)
{
    struct numbered *item = arg;
    int slot = atomic_fetch_add(&item->fx->next_slot, 1);
    if (slot < MANY)
        item->fx->order[slot] = item->number;
    atomic_fetch_add(&item->fx->ran, 1);
    return zt_ok_int(item->number);
}

static void
count_free(void *value)
{
    fixture_t *fx = value;
    atomic_fetch_add(&fx->freed, 1);
}

static zt_result_t
work_value_with_destructor(void *arg)
{
    return zt_ok(arg, count_free);
}

static void
on_started(void *arg)
{
    fixture_t *fx = arg;
    fx->started++;
}

/* Tells the reactor it started, waits at the gate, reports whether it was cancelled meanwhile and
 * returns a value with a destructor. */
static zt_result_t
work_watch_cancel(void *arg)
{
    fixture_t *fx = arg;
    assert_int_equal(zt_reactor_call_from_thread(fx->r, on_started, fx), 0);
    support_gate_wait(&fx->gate);
    atomic_store(&fx->saw_cancelled, zt_thread_is_cancelled());
    return zt_ok(fx, count_free);
}

/* --- callbacks ------------------------------------------------------------------------------ */

static zt_result_t
on_value(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    fx->fired++;
    fx->value = zt_result_int(result);
    fx->fired_on_reactor &= pthread_equal(pthread_self(), fx->reactor_thread) != 0;
    return result;
}

static zt_result_t
on_failure(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    fx->failed++;
    fx->code = zt_failure_code(zt_result_failure(result));
    fx->why = zt_failure_type(zt_result_failure(result));
    fx->fired_on_reactor &= pthread_equal(pthread_self(), fx->reactor_thread) != 0;
    zt_result_release(&result);
    return zt_ok_none();
}

static void
watch(fixture_t *fx, zt_deferred_t **d_p)
{
    assert_non_null(*d_p);
    assert_int_equal(zt_deferred_add_callbacks(*d_p, on_value, on_failure, fx), 0);
    zt_deferred_unref(d_p);
}

static void
on_result(bool success, zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    atomic_store(&fx->callback_success, success);
    atomic_store(&fx->callback_value, (long)zt_result_int(result));
    atomic_store(&fx->callback_on_worker, zt_thread_is_worker());
    zt_result_release(&result);
    atomic_fetch_add(&fx->callbacks, 1);
}

/* --- conditions ----------------------------------------------------------------------------- */

static bool
one_fired(void *arg)
{
    fixture_t *fx = arg;
    return fx->fired + fx->failed >= 1;
}

static bool
one_callback(void *arg)
{
    fixture_t *fx = arg;
    return atomic_load(&fx->callbacks) >= 1;
}

static bool
one_started(void *arg)
{
    fixture_t *fx = arg;
    return fx->started >= 1;
}

static bool
one_arrived(void *arg)
{
    fixture_t *fx = arg;
    return support_gate_arrived(&fx->gate) >= 1;
}

static bool
three_arrived(void *arg)
{
    fixture_t *fx = arg;
    return support_gate_arrived(&fx->gate) >= 3;
}

static bool
one_freed(void *arg)
{
    fixture_t *fx = arg;
    return atomic_load(&fx->freed) >= 1;
}

static bool
hundred_ran(void *arg)
{
    fixture_t *fx = arg;
    return atomic_load(&fx->ran) >= 100;
}

static bool
all_fired(void *arg)
{
    fixture_t *fx = arg;
    return fx->fired + fx->failed >= (int)atomic_load(&fx->ran_special) &&
           fx->fired + fx->failed > 0 && atomic_load(&fx->ran_special) > 0;
}

static bool
ten_thousand_fired(void *arg)
{
    fixture_t *fx = arg;
    return fx->fired >= 10000;
}

static bool
one_thread_left(void *arg)
{
    fixture_t *fx = arg;
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    return st.total == 1;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void
test_pool_new_with_bad_bounds_returns_null(void **state)
{
    fixture_t *fx = *state;
    assert_null(zt_pool_new(NULL, 0, 4));
    assert_null(zt_pool_new(fx->r, 0, 0));
    assert_null(zt_pool_new(fx->r, 5, 4));
    zt_pool_t *pool = zt_pool_new(fx->r, 2, 2);
    assert_non_null(pool);
    assert_ptr_equal(zt_pool_reactor(pool), fx->r);
    zt_pool_stats_t st;
    zt_pool_stats(pool, &st);
    assert_int_equal(st.total, 0); /* lazy: no thread before the first work */
    zt_pool_destroy(&pool);
    assert_null(pool);
    zt_pool_destroy(&pool); /* NULL is fine */
}

/* One item at a time, each submitted by the previous one's callback: the traffic after which a
 * worker spins at SCHED_IDLE (actors/pool.c). Every item must still run at the policy the worker
 * started with. */
#define ONE_BY_ONE 300

static zt_result_t
work_policy(void *arg)
{
    fixture_t *fx = arg;
    if (sched_getscheduler(0) != SCHED_OTHER)
        atomic_fetch_add(&fx->ran_special, 1);
    atomic_fetch_add(&fx->ran, 1);
    return zt_ok_none();
}

static zt_result_t
next_one(zt_result_t r, void *arg)
{
    fixture_t *fx = arg;
    zt_result_release(&r);
    if (++fx->fired < ONE_BY_ONE) {
        zt_deferred_t *d = zt_pool_defer(fx->pool, work_policy, fx);
        assert_non_null(d);
        assert_int_equal(zt_deferred_add_callbacks(d, next_one, NULL, fx), 0);
        zt_deferred_unref(&d);
    }
    return zt_ok_none();
}

static bool
all_one_by_one(void *arg)
{
    fixture_t *fx = arg;
    return fx->fired >= ONE_BY_ONE;
}

static void
test_pool_one_by_one_work_runs_at_normal_policy_after_idle_spins(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 4);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_policy, fx);
    assert_non_null(d);
    assert_int_equal(zt_deferred_add_callbacks(d, next_one, NULL, fx), 0);
    zt_deferred_unref(&d);
    assert_true(support_run_until(fx->r, all_one_by_one, fx, DEADLINE));
    assert_int_equal(atomic_load(&fx->ran), ONE_BY_ONE);
    assert_int_equal(atomic_load(&fx->ran_special), 0);
    /* The worker threads themselves are back at SCHED_OTHER between items too. */
    assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
}

static void
test_pool_defer_fires_on_reactor_thread_with_work_result(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 4);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_seven, fx);
    assert_false(zt_deferred_is_called(d));
    watch(fx, &d);
    assert_true(support_run_until(fx->r, one_fired, fx, DEADLINE));
    assert_int_equal(fx->fired, 1);
    assert_int_equal(fx->value, 7);
    assert_true(fx->fired_on_reactor);
    assert_true(atomic_load(&fx->on_worker));
    assert_false(zt_thread_is_worker());
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.queued, 0);
}

static void
test_pool_defer_failure_reaches_errback(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 4);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_fail, fx);
    watch(fx, &d);
    assert_true(support_run_until(fx->r, one_fired, fx, DEADLINE));
    assert_int_equal(fx->failed, 1);
    assert_ptr_equal(fx->why, &test_error);
    assert_true(fx->fired_on_reactor);
}

static void
test_pool_defer_without_fn_fails_with_einval(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 4);
    zt_deferred_t *d = zt_pool_defer(fx->pool, NULL, fx);
    watch(fx, &d);
    assert_int_equal(fx->failed, 1);
    assert_int_equal(fx->code, ZT_EINVAL);
    assert_int_equal(zt_pool_call_in_thread(fx->pool, NULL, fx), ZT_EINVAL);
    assert_int_equal(zt_pool_call_in_thread_with_callback(fx->pool, NULL, work_seven, fx),
                     ZT_EINVAL);
    assert_int_equal(zt_pool_call_in_thread_with_callback(fx->pool, on_result, NULL, fx),
                     ZT_EINVAL);
}

static void
test_pool_defer_value_destructor_runs_once(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 2);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_value_with_destructor, fx);
    assert_int_equal(zt_deferred_add_callback(d, on_value, fx), 0);
    assert_true(support_run_until(fx->r, one_fired, fx, DEADLINE));
    assert_int_equal(atomic_load(&fx->freed), 0); /* the Deferred still holds it */
    zt_deferred_unref(&d);
    assert_int_equal(atomic_load(&fx->freed), 1);
}

static void
test_pool_call_in_thread_with_callback_runs_on_result_on_worker(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 2);
    assert_int_equal(zt_pool_call_in_thread_with_callback(fx->pool, on_result, work_seven, fx), 0);
    assert_true(support_run_until(fx->r, one_callback, fx, DEADLINE));
    assert_true(atomic_load(&fx->callback_success));
    assert_int_equal(atomic_load(&fx->callback_value), 7);
    assert_true(atomic_load(&fx->callback_on_worker));

    atomic_store(&fx->callbacks, 0);
    assert_int_equal(zt_pool_call_in_thread_with_callback(fx->pool, on_result, work_fail, fx), 0);
    assert_true(support_run_until(fx->r, one_callback, fx, DEADLINE));
    assert_false(atomic_load(&fx->callback_success));
}

static void
test_pool_call_in_thread_runs_work_and_counts_it(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 3);
    for (int i = 0; i < 100; i++)
        assert_int_equal(zt_pool_call_in_thread(fx->pool, work_seven, fx), 0);
    assert_true(support_run_until(fx->r, hundred_ran, fx, DEADLINE));
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_true(st.total >= 1 && st.total <= 3);
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.completed, 100);
    assert_int_equal(st.total, 0);
}

/* 100 items on a pool of one worker, so that it gets deep batches; returns the pool's spins once
 * it has stopped (its worker joined). spin: the ZTWIST_POOL_SPIN setting when the pool is made,
 * or NULL for none. */
static uint64_t
s_spins_for_a_hundred(fixture_t *fx, const char *spin)
{
    if (spin)
        assert_int_equal(setenv("ZTWIST_POOL_SPIN", spin, 1), 0);
    fx->pool = zt_pool_new(fx->r, 1, 1);
    unsetenv("ZTWIST_POOL_SPIN");
    assert_non_null(fx->pool);
    for (int i = 0; i < 100; i++)
        assert_int_equal(zt_pool_call_in_thread(fx->pool, work_seven, fx), 0);
    assert_true(support_run_until(fx->r, hundred_ran, fx, DEADLINE));
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.completed, 100);
    return st.spins;
}

static void
test_pool_spin_on_watches_for_work_after_a_deep_batch(void **state)
{
    assert_true(s_spins_for_a_hundred(*state, NULL) >= 1);
}

static void
test_pool_spin_env_zero_turns_it_off_for_new_pools(void **state)
{
    assert_int_equal(s_spins_for_a_hundred(*state, "0"), 0);
}

static void
test_pool_spin_env_one_keeps_it_on(void **state)
{
    assert_true(s_spins_for_a_hundred(*state, "1") >= 1);
}

/* The heart of "only idle workers get work": one item of a deep batch blocks; every other item
 * must still finish, taken back from that worker's batch by the idle one. */
static void
test_pool_long_task_in_batch_does_not_hold_back_others(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 2);
    for (int i = 0; i < 101; i++) {
        int rc = i == 5 ? zt_pool_call_in_thread(fx->pool, work_block, fx)
                        : zt_pool_call_in_thread(fx->pool, work_seven, fx);
        assert_int_equal(rc, 0);
    }
    assert_true(support_run_until(fx->r, hundred_ran, fx, DEADLINE));
    assert_int_equal(atomic_load(&fx->ran_special), 0); /* the long one still runs */
    support_gate_open(&fx->gate);
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    assert_int_equal(atomic_load(&fx->ran_special), 1);
}

static void
test_pool_cancel_before_start_removes_work_from_queue(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 1);
    zt_deferred_t *blocker = zt_pool_defer(fx->pool, work_block, fx);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_special, fx);
    assert_true(support_run_until(fx->r, one_arrived, fx, DEADLINE));
    zt_deferred_add_callbacks(d, on_value, on_failure, fx);
    zt_deferred_cancel(d);
    assert_int_equal(fx->failed, 1);
    assert_ptr_equal(fx->why, ZT_CANCELLED_ERROR);
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.queued, 0);
    support_gate_open(&fx->gate);
    fx->failed = 0;
    watch(fx, &blocker);
    assert_true(support_run_until(fx->r, one_fired, fx, DEADLINE));
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    assert_int_equal(atomic_load(&fx->ran_special), 1); /* only the blocker ran */
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.completed, 1);
    zt_deferred_unref(&d);
}

static void
test_pool_cancel_while_running_sets_flag_and_discards_result(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 1);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_watch_cancel, fx);
    assert_int_equal(zt_deferred_add_callbacks(d, on_value, on_failure, fx), 0);
    assert_true(support_run_until(fx->r, one_started, fx, DEADLINE));
    zt_deferred_cancel(d);
    assert_int_equal(fx->failed, 1); /* at once, without waiting for the work */
    assert_ptr_equal(fx->why, ZT_CANCELLED_ERROR);
    support_gate_open(&fx->gate);
    assert_true(support_run_until(fx->r, one_freed, fx,
                                  DEADLINE)); /* the late result is freed, not delivered */
    assert_true(atomic_load(&fx->saw_cancelled));
    assert_int_equal(fx->fired, 0);
    assert_int_equal(atomic_load(&fx->freed), 1);
    zt_deferred_unref(&d);
}

static void
test_pool_max_queued_bound_returns_efull_and_queue_overflow(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 1);
    zt_pool_set_max_queued(fx->pool, 2);
    assert_int_equal(zt_pool_call_in_thread(fx->pool, work_block, fx), 0);
    assert_true(support_run_until(fx->r, one_arrived, fx, DEADLINE));
    assert_int_equal(zt_pool_call_in_thread(fx->pool, work_seven, fx), 0);
    assert_int_equal(zt_pool_call_in_thread(fx->pool, work_seven, fx), 0);
    assert_int_equal(zt_pool_call_in_thread(fx->pool, work_seven, fx), ZT_EFULL);
    assert_int_equal(zt_pool_call_in_thread_with_callback(fx->pool, on_result, work_seven, fx),
                     ZT_EFULL);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_seven, fx);
    watch(fx, &d);
    assert_int_equal(fx->failed, 1);
    assert_ptr_equal(fx->why, ZT_QUEUE_OVERFLOW);
    assert_int_equal(fx->code, ZT_EFULL);
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.queued, 2);
    assert_int_equal(st.working, 1);
    support_gate_open(&fx->gate);
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    assert_int_equal(atomic_load(&fx->ran), 2); /* the two accepted, not the refused */
}

static void
test_pool_grows_on_demand_up_to_max(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 3);
    for (int i = 0; i < 4; i++)
        assert_int_equal(zt_pool_call_in_thread(fx->pool, work_block, fx), 0);
    assert_true(support_run_until(fx->r, three_arrived, fx,
                                  DEADLINE)); /* three run at once: three threads */
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.total, 3);
    assert_int_equal(st.working, 3);
    assert_int_equal(st.idle, 0);
    assert_int_equal(st.queued, 1);
    support_gate_open(&fx->gate);
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    assert_int_equal(atomic_load(&fx->ran_special), 4);
}

static void
test_pool_adjust_size_shrinks_to_new_max_and_rejects_bad_bounds(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(zt_pool_call_in_thread(fx->pool, work_block, fx), 0);
    assert_true(support_run_until(fx->r, three_arrived, fx, DEADLINE));
    assert_int_equal(zt_pool_adjust_size(fx->pool, 0, 0), ZT_EINVAL);
    assert_int_equal(zt_pool_adjust_size(fx->pool, 3, 2), ZT_EINVAL);
    assert_int_equal(zt_pool_adjust_size(fx->pool, 1, 1), 0);
    support_gate_open(&fx->gate);
    assert_true(support_run_until(fx->r, one_thread_left, fx, DEADLINE));
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    assert_int_equal(zt_pool_adjust_size(fx->pool, 1, 2), ZT_ESHUTDOWN);
}

static void
test_pool_adjust_size_min_starts_threads_once_started(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 4);
    assert_int_equal(zt_pool_adjust_size(fx->pool, 2, 4), 0);
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.total, 0); /* not started yet: still lazy */
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_seven, fx);
    watch(fx, &d);
    assert_true(support_run_until(fx->r, one_fired, fx, DEADLINE));
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.total, 2);
}

static void
test_pool_stop_finishes_queued_work_and_refuses_new_work(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 2);
    for (int i = 0; i < 50; i++) {
        zt_deferred_t *d = zt_pool_defer(fx->pool, work_seven, fx);
        watch(fx, &d);
    }
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    assert_int_equal(fx->fired, 50); /* delivered inside stop */
    assert_int_equal(atomic_load(&fx->ran), 50);
    assert_int_equal(zt_pool_call_in_thread(fx->pool, work_seven, fx), ZT_ESHUTDOWN);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_seven, fx);
    watch(fx, &d);
    assert_int_equal(fx->failed, 1);
    assert_int_equal(fx->code, ZT_ESHUTDOWN);
    assert_int_equal(zt_pool_stop(fx->pool, 10), ZT_EALREADY);
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.total, 0);
    assert_int_equal(st.completed, 50);
}

static void
test_pool_stop_deadline_detaches_stuck_worker(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 1);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_watch_cancel, fx);
    zt_deferred_t *queued = zt_pool_defer(fx->pool, work_special, fx);
    assert_true(support_run_until(fx->r, one_started, fx, DEADLINE));
    assert_int_equal(zt_pool_stop(fx->pool, 0.05), ZT_ETIMEDOUT);
    /* The work that never started failed with ZT_ESHUTDOWN, the running one with ZT_ETIMEDOUT,
     * both inside the stop; the running one is told it is cancelled. */
    watch(fx, &queued);
    assert_int_equal(fx->failed, 1);
    assert_int_equal(fx->code, ZT_ESHUTDOWN);
    watch(fx, &d);
    assert_int_equal(fx->failed, 2);
    assert_int_equal(fx->code, ZT_ETIMEDOUT);
    support_gate_open(&fx->gate);
    assert_true(support_run_until(fx->r, one_freed, fx,
                                  DEADLINE)); /* the orphan releases its late result itself */
    assert_int_equal(fx->failed, 2);
    assert_true(atomic_load(&fx->saw_cancelled));
    assert_int_equal(atomic_load(&fx->freed), 1); /* its late result was released */
    assert_int_equal(atomic_load(&fx->ran_special), 0);
}

static void
test_pool_ten_thousand_defers_each_fire_once(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 4);
    for (int i = 0; i < 10000; i++) {
        zt_deferred_t *d = zt_pool_defer(fx->pool, work_seven, fx);
        watch(fx, &d);
    }
    assert_true(support_run_until(fx->r, ten_thousand_fired, fx, DEADLINE));
    assert_int_equal(fx->fired, 10000);
    assert_int_equal(fx->failed, 0);
    assert_int_equal(atomic_load(&fx->ran), 10000);
    assert_true(fx->fired_on_reactor);
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.completed, 10000);
    assert_int_equal(st.queued, 0);
    assert_true(st.total <= 4);
    /* A thread started for the burst may still be starting (counted in total only) when the
     * last result arrives: the others are idle or working. */
    assert_true(st.idle + st.working <= st.total);
    assert_true(st.idle + st.working >= 1);
}

static void
test_pool_results_of_all_work_arrive_before_stop_returns(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 1);
    zt_deferred_t *d = zt_pool_defer(fx->pool, work_block, fx);
    watch(fx, &d);
    assert_true(support_run_until(fx->r, one_arrived, fx, DEADLINE));
    support_gate_open(&fx->gate);
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    assert_true(all_fired(fx));
}

static bool
three_freed(void *arg)
{
    fixture_t *fx = arg;
    return atomic_load(&fx->freed) >= 3;
}

/* One worker gets one batch of three: two quick items whose results wait in its outbox, then one
 * that blocks. At the stop's deadline all three are out on the worker: each Deferred fails with
 * ZT_ETIMEDOUT inside the stop, and the detached worker releases the three results itself. */
static void
test_pool_stop_deadline_fails_results_held_behind_a_blocked_item(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 1);
    for (int i = 0; i < 2; i++) {
        zt_deferred_t *d = zt_pool_defer(fx->pool, work_value_with_destructor, fx);
        watch(fx, &d);
    }
    zt_deferred_t *blocked = zt_pool_defer(fx->pool, work_watch_cancel, fx);
    watch(fx, &blocked);
    assert_true(support_run_until(fx->r, one_started, fx, DEADLINE));
    assert_int_equal(fx->fired + fx->failed, 0); /* the quick results are still on the worker */
    assert_int_equal(zt_pool_stop(fx->pool, 0.05), ZT_ETIMEDOUT);
    assert_int_equal(fx->failed, 3);
    assert_int_equal(fx->code, ZT_ETIMEDOUT);
    assert_int_equal(fx->fired, 0);
    support_gate_open(&fx->gate);
    assert_true(support_run_until(fx->r, three_freed, fx,
                                  DEADLINE)); /* the orphan releases them, without the reactor */
    assert_true(atomic_load(&fx->saw_cancelled));
}

static void
test_pool_stop_deadline_with_cancelled_work_fails_each_deferred_once(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 1);
    uint64_t unhandled = zt_deferred_unhandled_count();
    zt_deferred_t *running = zt_pool_defer(fx->pool, work_watch_cancel, fx);
    zt_deferred_t *cancelled = zt_pool_defer(fx->pool, work_special, fx);
    zt_deferred_t *queued = zt_pool_defer(fx->pool, work_special, fx);
    assert_true(support_run_until(fx->r, one_started, fx, DEADLINE));
    zt_deferred_add_callbacks(cancelled, on_value, on_failure, fx);
    zt_deferred_cancel(cancelled);
    assert_int_equal(fx->failed, 1);
    assert_int_equal(zt_pool_stop(fx->pool, 0.05), ZT_ETIMEDOUT);
    watch(fx, &queued);
    assert_int_equal(fx->failed, 2); /* the queued one failed once, the cancelled one not again */
    assert_int_equal(fx->code, ZT_ESHUTDOWN);
    watch(fx, &running);
    support_gate_open(&fx->gate);
    assert_true(support_run_until(fx->r, one_freed, fx, DEADLINE));
    assert_int_equal(atomic_load(&fx->ran_special), 0);
    assert_int_equal(zt_deferred_unhandled_count(), unhandled);
    zt_deferred_unref(&cancelled);
}

/* The queue spans several chunks of its arena; one thread runs the items in submission order. */
static void
test_pool_queue_of_several_chunks_runs_in_submission_order(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 1);
    for (int i = 0; i < MANY; i++) {
        fx->items[i] = (struct numbered){.fx = fx, .number = i};
        assert_int_equal(zt_pool_call_in_thread(fx->pool, work_numbered, &fx->items[i]), 0);
    }
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.queued + (uint64_t)st.working, MANY);
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0); /* finishes the queue, joins the thread */
    assert_int_equal(atomic_load(&fx->ran), MANY);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(fx->order[i], i);
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.completed, MANY);
    assert_int_equal(st.queued, 0);
}

/* Cancelled items stay in the queue as tombstones across chunks: each Deferred fails once, the
 * others run, and nothing leaks (ASan). */
static void
test_pool_cancel_every_other_queued_item_across_chunks_fails_each_once(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 1);
    zt_deferred_t *blocker = zt_pool_defer(fx->pool, work_block, fx);
    assert_true(support_run_until(fx->r, one_arrived, fx, DEADLINE));
    zt_deferred_t **ds = calloc(MANY, sizeof *ds);
    assert_non_null(ds);
    for (int i = 0; i < MANY; i++) {
        fx->items[i] = (struct numbered){.fx = fx, .number = i};
        ds[i] = zt_pool_defer(fx->pool, work_numbered, &fx->items[i]);
        assert_int_equal(zt_deferred_add_callbacks(ds[i], on_value, on_failure, fx), 0);
    }
    for (int i = 0; i < MANY; i += 2)
        zt_deferred_cancel(ds[i]);
    assert_int_equal(fx->failed, MANY / 2);
    assert_ptr_equal(fx->why, ZT_CANCELLED_ERROR);
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.queued, MANY / 2);
    support_gate_open(&fx->gate);
    watch(fx, &blocker);
    assert_int_equal(zt_pool_stop(fx->pool, 10), 0);
    assert_int_equal(fx->fired, MANY / 2 + 1);
    assert_int_equal(fx->failed, MANY / 2);
    assert_int_equal(atomic_load(&fx->ran), MANY / 2);
    for (int i = 0; i < MANY / 2; i++)
        assert_int_equal(fx->order[i], 2 * i + 1); /* the odd ones, in order */
    for (int i = 0; i < MANY; i++)
        zt_deferred_unref(&ds[i]);
    free(ds);
}

static bool
fired_as_many_as_wanted(void *arg)
{
    fixture_t *fx = arg;
    return fx->fired + fx->failed >= fx->want_fired;
}

/* One item at a time, more items than a chunk holds: each chunk is used up and started over. */
static void
test_pool_one_at_a_time_beyond_a_chunk_each_fires_once_with_its_value(void **state)
{
    fixture_t *fx = *state;
    fx->pool = zt_pool_new(fx->r, 0, 2);
    for (int i = 0; i < MANY; i++) {
        fx->items[i] = (struct numbered){.fx = fx, .number = i};
        zt_deferred_t *d = zt_pool_defer(fx->pool, work_numbered, &fx->items[i]);
        watch(fx, &d);
        fx->want_fired = i + 1;
        assert_true(support_run_until(fx->r, fired_as_many_as_wanted, fx, DEADLINE));
        assert_int_equal(fx->fired, i + 1);
        assert_int_equal(fx->value, i);
    }
    assert_int_equal(fx->failed, 0);
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.completed, MANY);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pool_new_with_bad_bounds_returns_null),
        T(test_pool_one_by_one_work_runs_at_normal_policy_after_idle_spins),
        T(test_pool_defer_fires_on_reactor_thread_with_work_result),
        T(test_pool_defer_failure_reaches_errback),
        T(test_pool_defer_without_fn_fails_with_einval),
        T(test_pool_defer_value_destructor_runs_once),
        T(test_pool_call_in_thread_with_callback_runs_on_result_on_worker),
        T(test_pool_call_in_thread_runs_work_and_counts_it),
        T(test_pool_spin_on_watches_for_work_after_a_deep_batch),
        T(test_pool_spin_env_one_keeps_it_on),
        T(test_pool_spin_env_zero_turns_it_off_for_new_pools),
        T(test_pool_long_task_in_batch_does_not_hold_back_others),
        T(test_pool_cancel_before_start_removes_work_from_queue),
        T(test_pool_cancel_while_running_sets_flag_and_discards_result),
        T(test_pool_max_queued_bound_returns_efull_and_queue_overflow),
        T(test_pool_grows_on_demand_up_to_max),
        T(test_pool_adjust_size_shrinks_to_new_max_and_rejects_bad_bounds),
        T(test_pool_adjust_size_min_starts_threads_once_started),
        T(test_pool_stop_finishes_queued_work_and_refuses_new_work),
        T(test_pool_stop_deadline_detaches_stuck_worker),
        T(test_pool_stop_deadline_with_cancelled_work_fails_each_deferred_once),
        T(test_pool_stop_deadline_fails_results_held_behind_a_blocked_item),
        T(test_pool_ten_thousand_defers_each_fire_once),
        T(test_pool_results_of_all_work_arrive_before_stop_returns),
        T(test_pool_queue_of_several_chunks_runs_in_submission_order),
        T(test_pool_cancel_every_other_queued_item_across_chunks_fails_each_once),
        T(test_pool_one_at_a_time_beyond_a_chunk_each_fires_once_with_its_value),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
