/*  tests/actors/test_threads.c - Twisted's thread API on the real reactor (after Twisted's
 * test_threads.py): call_in_thread from any thread, call_multiple_in_thread, defer_to_thread,
 * blocking_call_from_thread with its deadline and its shutdown and same-thread failures, the
 * reactor's pool and its size
 *
 *  Each test runs the fixture's reactor: the test body is a call_when_running callback, work on the
 * workers reports back with zt_reactor_call_from_thread, and the test stops the reactor when what
 * it waits for has happened. A deadline timer stops a test that would otherwise wait forever (the
 * test then fails). Work that must stay busy waits on a gate the test opens.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist.h>

#include "support/support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define DEADLINE 20.0 /* seconds a test may run before the deadline timer stops it */
#define MAX_CALLS 8   /* calls recorded by call_multiple tests */

ZT_FAILURE_TYPE(test_error, "TestError", ZT_ERROR);

typedef struct fixture fixture_t;
typedef void body_fn(fixture_t *fx);

struct fixture {
    zt_reactor_t *r;              /* the reactor */
    pthread_t reactor_thread;     /* the thread that runs it */
    body_fn *body;                /* the test's body, run once the reactor runs */
    pthread_mutex_t lock;         /* guards the recorded calls */
    pthread_cond_t cond;          /* signals worker_exited */
    support_gate_t gate;          /* blocked work waits here until the test opens it */
    int expected;                 /* arrivals the test waits for before it goes on */
    int arrived;                  /* work that reported its arrival (reactor thread) */
    atomic_bool on_worker;        /* work ran on a worker thread */
    atomic_bool in_reactor;       /* a reactor-side function ran on the reactor thread */
    atomic_int ran;               /* work that ran */
    int order[MAX_CALLS];         /* call_multiple: the index of each call, in run order */
    pthread_t threads[MAX_CALLS]; /* call_multiple: the thread of each call */
    int ncalls;                   /* calls recorded */
    zt_result_t got;              /* what blocking_call_from_thread returned to the worker */
    double timeout;               /* the blocking call's deadline for the worker; 0: default */
    zt_deferred_t *pending;       /* a Deferred f returns (our reference), or NULL */
    int rc[4];                    /* return codes seen by another thread */
    int fired;                    /* Deferreds fired with a value */
    int failed;                   /* Deferreds failed */
    intptr_t value;               /* their last value */
    int code;                     /* their last failure's code */
    const zt_failure_type_t *why; /* their last failure's type */
    bool fired_on_reactor;        /* every Deferred callback ran on the reactor thread */
    zt_pool_t *pool;              /* a pool of the test's own, or NULL */
    zt_maybe_fn *blocking_f;      /* what work_blocking_call runs on the reactor */
    struct blocker *blockers;     /* the workers of the many-blockers test */
    int events[4];                /* shutdown tests: the order of what happened (EV_*) */
    int nevents;                  /* events recorded */
    pthread_key_t exit_key;       /* shutdown tests: its destructor reports a worker's exit */
    bool worker_exited;           /* that destructor ran (under lock) */
};

/* What the shutdown tests record, in order. */
enum { EV_DEFERRED = 1, EV_AFTER_SHUTDOWN = 2, EV_RUN_RETURNED = 3 };

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->r = zt_reactor_new();
    assert_non_null(fx->r);
    fx->reactor_thread = pthread_self();
    pthread_mutex_init(&fx->lock, NULL);
    pthread_cond_init(&fx->cond, NULL);
    support_gate_init(&fx->gate, DEADLINE);
    fx->fired_on_reactor = true;
    fx->got = zt_ok_none();
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_pool_destroy(&fx->pool);
    zt_reactor_destroy(&fx->r);
    zt_result_release(&fx->got);
    zt_deferred_unref(&fx->pending);
    support_gate_fini(&fx->gate);
    pthread_cond_destroy(&fx->cond);
    pthread_mutex_destroy(&fx->lock);
    free(fx);
    return 0;
}

static void
run_body(void *arg)
{
    fixture_t *fx = arg;
    fx->body(fx);
}

/* Run the reactor with body as its first callback, and a deadline. */
static void
run(fixture_t *fx, body_fn *body)
{
    fx->body = body;
    /* The deadline opens the gate too, so that blocked work can go and the pool can stop. */
    assert_true(support_run_with_deadline(fx->r, DEADLINE, run_body, fx, &fx->gate));
}

static void
stop(void *arg)
{
    fixture_t *fx = arg;
    zt_reactor_stop(fx->r);
}

/* --- work ----------------------------------------------------------------------------------- */

static zt_result_t
work_report_and_stop(void *arg)
{
    fixture_t *fx = arg;
    atomic_store(&fx->on_worker, zt_thread_is_worker());
    atomic_fetch_add(&fx->ran, 1);
    assert_int_equal(zt_reactor_call_from_thread(fx->r, stop, fx), 0);
    return zt_ok_none();
}

static zt_result_t
work_count(void *arg)
{
    fixture_t *fx = arg;
    atomic_fetch_add(&fx->ran, 1);
    return zt_ok_int(3);
}

static zt_result_t
work_fail(void *arg)
{
    (void)arg;
    return zt_err(zt_failure_new(&test_error, "failed on purpose"));
}

static void
on_arrival(void *arg)
{
    fixture_t *fx = arg;
    if (++fx->arrived == fx->expected)
        fx->body(fx); /* the body's second half */
}

/* Reports its arrival, then waits at the gate. */
static zt_result_t
work_arrive_and_block(void *arg)
{
    fixture_t *fx = arg;
    assert_int_equal(zt_reactor_call_from_thread(fx->r, on_arrival, fx), 0);
    support_gate_wait(&fx->gate);
    atomic_fetch_add(&fx->ran, 1);
    return zt_ok_none();
}

/* --- Deferred callbacks --------------------------------------------------------------------- */

static zt_result_t
on_value_stop(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    fx->fired++;
    fx->value = zt_result_int(result);
    fx->fired_on_reactor &= pthread_equal(pthread_self(), fx->reactor_thread) != 0;
    zt_reactor_stop(fx->r);
    return result;
}

static zt_result_t
on_failure_stop(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    fx->failed++;
    fx->code = zt_failure_code(zt_result_failure(result));
    fx->why = zt_failure_type(zt_result_failure(result));
    fx->fired_on_reactor &= pthread_equal(pthread_self(), fx->reactor_thread) != 0;
    zt_result_release(&result);
    zt_reactor_stop(fx->r);
    return zt_ok_none();
}

static void
watch_and_stop(fixture_t *fx, zt_deferred_t **d_p)
{
    assert_non_null(*d_p);
    assert_int_equal(zt_deferred_add_callbacks(*d_p, on_value_stop, on_failure_stop, fx), 0);
    zt_deferred_unref(d_p);
}

/* --- call_in_thread ------------------------------------------------------------------------- */

static void
body_call_in_thread(fixture_t *fx)
{
    assert_int_equal(zt_call_in_thread(fx->r, work_report_and_stop, fx), 0);
}

static void
test_threads_call_in_thread_runs_fn_on_a_worker(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_call_in_thread);
    assert_int_equal(atomic_load(&fx->ran), 1);
    assert_true(atomic_load(&fx->on_worker));
}

static void *
other_thread_calls_in_thread(void *arg)
{
    fixture_t *fx = arg;
    fx->rc[0] = zt_call_in_thread(fx->r, work_report_and_stop, fx);
    return NULL;
}

static void
body_call_from_other_thread(fixture_t *fx)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread_calls_in_thread, fx), 0);
    pthread_join(t, NULL); /* call_in_thread does not wait for the reactor */
    assert_int_equal(fx->rc[0], 0);
}

static void
test_threads_call_in_thread_from_another_thread_runs(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_call_from_other_thread);
    assert_int_equal(atomic_load(&fx->ran), 1);
    assert_true(atomic_load(&fx->on_worker));
}

static void
test_threads_calls_with_bad_arguments_return_einval(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_call_in_thread(fx->r, NULL, fx), ZT_EINVAL);
    assert_int_equal(zt_call_in_thread_with_callback(fx->r, NULL, work_count, fx), ZT_EINVAL);
    zt_thread_call_t calls[2] = {{.fn = work_count, .arg = fx}, {.fn = NULL, .arg = fx}};
    assert_int_equal(zt_call_multiple_in_thread(fx->r, NULL, 1), ZT_EINVAL);
    assert_int_equal(zt_call_multiple_in_thread(fx->r, calls, 0), ZT_EINVAL);
    assert_int_equal(zt_call_multiple_in_thread(fx->r, calls, 2), ZT_EINVAL);
    assert_int_equal(zt_reactor_suggest_thread_pool_size(fx->r, 0), ZT_EINVAL);
    zt_result_t r = zt_blocking_call_from_thread(fx->r, NULL, fx);
    assert_int_equal(zt_failure_code(zt_result_failure(r)), ZT_EINVAL);
    zt_result_release(&r);
    assert_int_equal(atomic_load(&fx->ran), 0);
}

static void
on_result_stop(bool success, zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    fx->rc[0] = success ? 1 : -1;
    fx->rc[1] = (int)zt_result_int(result);
    fx->rc[2] = zt_thread_is_worker();
    zt_result_release(&result);
    assert_int_equal(zt_reactor_call_from_thread(fx->r, stop, fx), 0);
}

static void
body_call_with_callback(fixture_t *fx)
{
    assert_int_equal(zt_call_in_thread_with_callback(fx->r, on_result_stop, work_count, fx), 0);
}

static void
test_threads_call_in_thread_with_callback_runs_on_result_in_worker(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_call_with_callback);
    assert_int_equal(fx->rc[0], 1);
    assert_int_equal(fx->rc[1], 3);
    assert_int_equal(fx->rc[2], 1);
}

static zt_result_t
record_call(fixture_t *fx, int index)
{
    pthread_mutex_lock(&fx->lock);
    fx->order[fx->ncalls] = index;
    fx->threads[fx->ncalls] = pthread_self();
    fx->ncalls++;
    pthread_mutex_unlock(&fx->lock);
    return zt_ok_none();
}

static zt_result_t
call_zero(void *arg)
{
    return record_call(arg, 0);
}

static zt_result_t
call_one_fails(void *arg)
{
    record_call(arg, 1);
    return zt_err(zt_failure_new(&test_error, "a failing call does not stop the list"));
}

static zt_result_t
call_two_stops(void *arg)
{
    fixture_t *fx = arg;
    record_call(fx, 2);
    assert_int_equal(zt_reactor_call_from_thread(fx->r, stop, fx), 0);
    return zt_ok_none();
}

static void
body_call_multiple(fixture_t *fx)
{
    zt_thread_call_t calls[] = {
        {.fn = call_zero, .arg = fx},
        {.fn = call_one_fails, .arg = fx},
        {.fn = call_two_stops, .arg = fx},
    };
    assert_int_equal(zt_call_multiple_in_thread(fx->r, calls, 3), 0);
}

static void
test_threads_call_multiple_in_thread_runs_calls_in_order_on_one_thread(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_call_multiple);
    assert_int_equal(fx->ncalls, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx->order[i], i);
        assert_true(pthread_equal(fx->threads[i], fx->threads[0]));
    }
    assert_false(pthread_equal(fx->threads[0], fx->reactor_thread));
}

/* --- defer_to_thread ------------------------------------------------------------------------ */

static void
body_defer(fixture_t *fx)
{
    zt_deferred_t *d = zt_defer_to_thread(fx->r, work_count, fx);
    watch_and_stop(fx, &d);
}

static void
test_threads_defer_to_thread_fires_with_result_on_reactor_thread(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_defer);
    assert_int_equal(fx->fired, 1);
    assert_int_equal(fx->value, 3);
    assert_true(fx->fired_on_reactor);
}

static void
body_defer_fail(fixture_t *fx)
{
    zt_deferred_t *d = zt_defer_to_thread(fx->r, work_fail, fx);
    watch_and_stop(fx, &d);
}

static void
test_threads_defer_to_thread_failure_reaches_errback(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_defer_fail);
    assert_int_equal(fx->failed, 1);
    assert_ptr_equal(fx->why, &test_error);
    assert_true(fx->fired_on_reactor);
}

static void
body_defer_pool(fixture_t *fx)
{
    fx->pool = zt_pool_new(fx->r, 0, 1);
    assert_non_null(fx->pool);
    zt_deferred_t *d = zt_defer_to_thread_pool(fx->r, fx->pool, work_count, fx);
    watch_and_stop(fx, &d);
}

static void
test_threads_defer_to_thread_pool_uses_the_given_pool(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_defer_pool);
    assert_int_equal(fx->fired, 1);
    zt_pool_stats_t st;
    zt_pool_stats(fx->pool, &st);
    assert_int_equal(st.completed, 1);
}

static void
body_defer_before_run(fixture_t *fx)
{
    (void)fx; /* everything was queued before run */
}

static void
test_threads_work_queued_before_run_runs_once_running(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_defer_to_thread(fx->r, work_count, fx);
    watch_and_stop(fx, &d);
    zt_pool_stats_t st;
    zt_pool_stats(zt_reactor_get_thread_pool(fx->r), &st);
    assert_int_equal(st.total, 0); /* as Twisted: the pool starts when the reactor runs */
    assert_int_equal(st.queued, 1);
    run(fx, body_defer_before_run);
    assert_int_equal(fx->fired, 1);
    assert_int_equal(fx->value, 3);
}

/* --- blocking_call_from_thread --------------------------------------------------------------- */

static zt_result_t
f_value(void *arg)
{
    fixture_t *fx = arg;
    atomic_store(&fx->in_reactor, pthread_equal(pthread_self(), fx->reactor_thread) != 0);
    return zt_ok_int(42);
}

static zt_result_t
f_failure(void *arg)
{
    (void)arg;
    return zt_err(zt_failure_new(&test_error, "f failed"));
}

static void
fire_pending(void *arg)
{
    fixture_t *fx = arg;
    zt_deferred_callback(fx->pending, zt_ok_int(9));
}

static void
fail_pending(void *arg)
{
    fixture_t *fx = arg;
    zt_deferred_errback(fx->pending, zt_failure_new(&test_error, "the Deferred failed"));
}

static zt_result_t
f_deferred_fired_later(void *arg)
{
    fixture_t *fx = arg;
    fx->pending = zt_deferred_new();
    assert_int_equal(zt_reactor_call_later(fx->r, 0.001, fire_pending, fx, NULL), 0);
    return zt_wait_for(zt_deferred_ref(fx->pending));
}

static zt_result_t
f_deferred_failed_later(void *arg)
{
    fixture_t *fx = arg;
    fx->pending = zt_deferred_new();
    assert_int_equal(zt_reactor_call_later(fx->r, 0.001, fail_pending, fx, NULL), 0);
    return zt_wait_for(zt_deferred_ref(fx->pending));
}

/* Never fires on its own. */
static zt_result_t
f_deferred_never(void *arg)
{
    fixture_t *fx = arg;
    fx->pending = zt_deferred_new();
    return zt_wait_for(zt_deferred_ref(fx->pending));
}

/* Never fires on its own, and asks the reactor to stop. */
static zt_result_t
f_deferred_never_then_stop(void *arg)
{
    fixture_t *fx = arg;
    zt_reactor_stop(fx->r);
    return f_deferred_never(fx);
}

static zt_result_t
work_blocking_call(void *arg)
{
    fixture_t *fx = arg;
    fx->got = fx->timeout > 0
                  ? zt_blocking_call_from_thread_timeout(fx->r, fx->timeout, fx->blocking_f, fx)
                  : zt_blocking_call_from_thread(fx->r, fx->blocking_f, fx);
    zt_reactor_call_from_thread(fx->r, stop, fx); /* fails harmlessly once shutting down */
    return zt_ok_none();
}

static void
body_blocking(fixture_t *fx)
{
    assert_int_equal(zt_call_in_thread(fx->r, work_blocking_call, fx), 0);
}

static void
test_threads_blocking_call_from_thread_returns_value(void **state)
{
    fixture_t *fx = *state;
    fx->blocking_f = f_value;
    run(fx, body_blocking);
    assert_false(zt_is_err(fx->got));
    assert_int_equal(zt_result_int(fx->got), 42);
    assert_true(atomic_load(&fx->in_reactor));
}

static void
test_threads_blocking_call_from_thread_waits_for_deferred_result(void **state)
{
    fixture_t *fx = *state;
    fx->blocking_f = f_deferred_fired_later;
    run(fx, body_blocking);
    assert_false(zt_is_err(fx->got));
    assert_int_equal(zt_result_int(fx->got), 9);
}

static void
test_threads_blocking_call_from_thread_returns_failure_of_f(void **state)
{
    fixture_t *fx = *state;
    fx->blocking_f = f_failure;
    run(fx, body_blocking);
    assert_true(zt_is_err(fx->got));
    assert_ptr_equal(zt_failure_type(zt_result_failure(fx->got)), &test_error);
}

static void
test_threads_blocking_call_from_thread_returns_failure_of_deferred(void **state)
{
    fixture_t *fx = *state;
    fx->blocking_f = f_deferred_failed_later;
    run(fx, body_blocking);
    assert_true(zt_is_err(fx->got));
    assert_ptr_equal(zt_failure_type(zt_result_failure(fx->got)), &test_error);
}

static void
test_threads_blocking_call_past_deadline_fails_with_etimedout(void **state)
{
    fixture_t *fx = *state;
    fx->blocking_f = f_deferred_never;
    fx->timeout = 0.05;
    run(fx, body_blocking);
    assert_true(zt_is_err(fx->got));
    assert_int_equal(zt_failure_code(zt_result_failure(fx->got)), ZT_ETIMEDOUT);
    /* The Deferred was cancelled by the shutdown; the late result went nowhere. */
    assert_true(zt_deferred_is_called(fx->pending));
}

static void
test_threads_blocking_call_pending_at_shutdown_fails_with_eshutdown(void **state)
{
    fixture_t *fx = *state;
    fx->blocking_f = f_deferred_never_then_stop;
    run(fx, body_blocking);
    assert_true(zt_is_err(fx->got));
    assert_int_equal(zt_failure_code(zt_result_failure(fx->got)), ZT_ESHUTDOWN);
}

static void
body_blocking_on_reactor(fixture_t *fx)
{
    /* No pool or thread call has run on this thread: the reactor itself says whose thread it is. */
    fx->got = zt_blocking_call_from_thread(fx->r, f_value, fx);
    zt_reactor_stop(fx->r);
}

static void
test_threads_blocking_call_on_reactor_thread_fails_at_once_with_edeadlk(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_blocking_on_reactor);
    assert_true(zt_is_err(fx->got));
    assert_int_equal(zt_failure_code(zt_result_failure(fx->got)), ZT_EDEADLK);
    assert_false(atomic_load(&fx->in_reactor)); /* f never ran */
}

static void
test_threads_blocking_call_before_run_on_creating_thread_fails_with_edeadlk(void **state)
{
    fixture_t *fx = *state;
    zt_result_t got = zt_blocking_call_from_thread(fx->r, f_value, fx);
    assert_true(zt_is_err(got));
    assert_int_equal(zt_failure_code(zt_result_failure(got)), ZT_EDEADLK);
    zt_result_release(&got);
    assert_false(atomic_load(&fx->in_reactor)); /* f never ran */
}

static void *
other_thread_blocking_call(void *arg)
{
    fixture_t *fx = arg;
    fx->got = zt_blocking_call_from_thread(fx->r, f_value, fx);
    fx->rc[0] = zt_call_in_thread(fx->r, work_count, fx);
    return NULL;
}

static void
test_threads_calls_after_reactor_stopped_fail_with_eshutdown(void **state)
{
    fixture_t *fx = *state;
    fx->body = NULL;
    assert_int_equal(zt_reactor_stop(fx->r), 0); /* run shuts down right after startup */
    assert_int_equal(zt_reactor_run(fx->r), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread_blocking_call, fx), 0);
    pthread_join(t, NULL);
    assert_true(zt_is_err(fx->got));
    assert_int_equal(zt_failure_code(zt_result_failure(fx->got)), ZT_ESHUTDOWN);
    assert_int_equal(fx->rc[0], ZT_ESHUTDOWN);
    assert_false(atomic_load(&fx->in_reactor));
}

/* --- shutdown: one deadline, results during it ---------------------------------------------- */

static void
record(fixture_t *fx, int event)
{
    if (fx->nevents < 4)
        fx->events[fx->nevents++] = event;
}

static zt_result_t
trigger_after_shutdown(void *arg)
{
    record(arg, EV_AFTER_SHUTDOWN);
    return zt_ok_none();
}

/* A "before shutdown" trigger whose Deferred never fires. */
static zt_result_t
trigger_hangs(void *arg)
{
    fixture_t *fx = arg;
    return zt_wait_for(zt_deferred_ref(fx->pending));
}

static zt_result_t
trigger_opens_gate(void *arg)
{
    support_gate_open(&((fixture_t *)arg)->gate);
    return zt_ok_none();
}

static zt_result_t
on_result_record(zt_result_t result, void *arg)
{
    fixture_t *fx = arg;
    record(fx, EV_DEFERRED);
    if (zt_is_err(result)) {
        fx->failed++;
        fx->code = zt_failure_code(zt_result_failure(result));
    } else {
        fx->fired++;
        fx->value = zt_result_int(result);
    }
    zt_result_release(&result);
    return zt_ok_none();
}

static void
on_worker_exit(void *arg)
{
    fixture_t *fx = arg;
    pthread_mutex_lock(&fx->lock);
    fx->worker_exited = true;
    pthread_cond_broadcast(&fx->cond);
    pthread_mutex_unlock(&fx->lock);
}

/* Reports its arrival, waits at the gate, and has its thread report its exit. */
static zt_result_t
work_block_then_report_exit(void *arg)
{
    fixture_t *fx = arg;
    pthread_setspecific(fx->exit_key, fx);
    return work_arrive_and_block(arg);
}

static void
body_hung_worker(fixture_t *fx)
{
    if (fx->arrived == 0) {
        fx->expected = 1;
        zt_deferred_t *d = zt_defer_to_thread(fx->r, work_block_then_report_exit, fx);
        assert_int_equal(zt_deferred_add_both(d, on_result_record, fx), 0);
        zt_deferred_unref(&d);
        return;
    }
    zt_reactor_stop(fx->r); /* the work is running and blocked */
}

static void
test_threads_shutdown_with_hung_trigger_and_worker_ends_at_its_deadline(void **state)
{
    fixture_t *fx = *state;
    const double timeout = 0.5;
    assert_int_equal(pthread_key_create(&fx->exit_key, on_worker_exit), 0);
    fx->pending = zt_deferred_new();
    assert_int_equal(zt_reactor_set_shutdown_timeout(fx->r, timeout), 0);
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->r, ZT_PHASE_BEFORE, "shutdown",
                                                         trigger_hangs, fx, NULL),
                     0);
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->r, ZT_PHASE_AFTER, "shutdown",
                                                         trigger_after_shutdown, fx, NULL),
                     0);
    double t0 = zt_reactor_seconds(fx->r);
    run(fx, body_hung_worker);
    double elapsed = zt_reactor_seconds(fx->r) - t0;
    record(fx, EV_RUN_RETURNED);
    /* The running work's Deferred failed at the deadline, inside the shutdown, before run
     * returned; run returned at the one deadline (a loose bound: the pool's own deadline of
     * ZT_POOL_STOP_TIMEOUT must not add to it). */
    assert_int_equal(fx->failed, 1);
    assert_int_equal(fx->code, ZT_ETIMEDOUT);
    assert_int_equal(fx->nevents, 3);
    assert_int_equal(fx->events[0], EV_DEFERRED);
    assert_int_equal(fx->events[1], EV_AFTER_SHUTDOWN);
    assert_int_equal(fx->events[2], EV_RUN_RETURNED);
    assert_true(elapsed < timeout + ZT_POOL_STOP_TIMEOUT / 2);
    /* Let the detached worker go, and wait for its thread to end. */
    support_gate_open(&fx->gate);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)DEADLINE;
    pthread_mutex_lock(&fx->lock);
    while (!fx->worker_exited && pthread_cond_timedwait(&fx->cond, &fx->lock, &until) == 0) {
    }
    bool exited = fx->worker_exited;
    pthread_mutex_unlock(&fx->lock);
    assert_true(exited);
    pthread_key_delete(fx->exit_key);
}

static void
test_threads_get_thread_pool_after_run_returned_is_null(void **state)
{
    fixture_t *fx = *state;
    fx->body = NULL;
    assert_int_equal(zt_reactor_stop(fx->r), 0); /* run shuts down right after startup */
    assert_int_equal(zt_reactor_run(fx->r), 0);
    assert_null(zt_reactor_get_thread_pool(fx->r));
    assert_int_equal(zt_reactor_suggest_thread_pool_size(fx->r, 4), ZT_ESHUTDOWN);
    assert_int_equal(zt_call_in_thread(fx->r, work_count, fx), ZT_ESHUTDOWN);
    zt_deferred_t *d = zt_defer_to_thread(fx->r, work_count, fx);
    assert_int_equal(zt_deferred_add_both(d, on_result_record, fx), 0);
    zt_deferred_unref(&d);
    assert_int_equal(fx->failed, 1);
    assert_int_equal(fx->code, ZT_ESHUTDOWN);
    assert_int_equal(atomic_load(&fx->ran), 0);
}

static zt_result_t
work_block_then_value(void *arg)
{
    work_arrive_and_block(arg);
    return zt_ok_int(42);
}

static void
body_result_during_shutdown(fixture_t *fx)
{
    if (fx->arrived == 0) {
        fx->expected = 1;
        zt_deferred_t *d = zt_defer_to_thread(fx->r, work_block_then_value, fx);
        assert_int_equal(zt_deferred_add_both(d, on_result_record, fx), 0);
        zt_deferred_unref(&d);
        return;
    }
    zt_reactor_stop(fx->r); /* the work finishes once the shutdown has begun */
}

static void
test_threads_result_finishing_during_shutdown_is_delivered(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->r, ZT_PHASE_BEFORE, "shutdown",
                                                         trigger_opens_gate, fx, NULL),
                     0);
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->r, ZT_PHASE_AFTER, "shutdown",
                                                         trigger_after_shutdown, fx, NULL),
                     0);
    run(fx, body_result_during_shutdown);
    record(fx, EV_RUN_RETURNED);
    /* Delivered (not dropped, as Twisted does) inside the pool's stop: before the after phase. */
    assert_int_equal(fx->fired, 1);
    assert_int_equal(fx->value, 42);
    assert_int_equal(fx->nevents, 3);
    assert_int_equal(fx->events[0], EV_DEFERRED);
    assert_int_equal(fx->events[1], EV_AFTER_SHUTDOWN);
}

/* --- the reactor's pool ---------------------------------------------------------------------- */

static void
body_suggest(fixture_t *fx)
{
    if (fx->arrived == 0) { /* first half: five blockers on a pool of five */
        assert_int_equal(zt_reactor_suggest_thread_pool_size(fx->r, 5), 0);
        fx->expected = 5;
        for (int i = 0; i < 5; i++)
            assert_int_equal(zt_call_in_thread(fx->r, work_arrive_and_block, fx), 0);
        return;
    }
    /* second half: all five run at once */
    zt_pool_stats_t st;
    zt_pool_stats(zt_reactor_get_thread_pool(fx->r), &st);
    fx->rc[0] = (int)st.total;
    fx->rc[1] = (int)st.working;
    support_gate_open(&fx->gate);
    zt_reactor_stop(fx->r);
}

static void
test_threads_suggest_thread_pool_size_lets_pool_grow_to_it(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_suggest);
    assert_int_equal(fx->rc[0], 5);
    assert_int_equal(fx->rc[1], 5);
    assert_int_equal(atomic_load(&fx->ran), 5); /* finished during the shutdown */
}

static void
body_stop_with_queue(fixture_t *fx)
{
    assert_int_equal(zt_reactor_suggest_thread_pool_size(fx->r, 2), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(zt_call_in_thread(fx->r, work_count, fx), 0);
    zt_reactor_stop(fx->r);
}

static void
test_threads_reactor_pool_finishes_queued_work_during_shutdown(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_stop_with_queue);
    assert_int_equal(atomic_load(&fx->ran), 20);
    assert_int_equal(zt_call_in_thread(fx->r, work_count, fx), ZT_ESHUTDOWN);
}

static void *
other_thread_overflows(void *arg)
{
    fixture_t *fx = arg;
    fx->rc[0] = zt_call_in_thread(fx->r, work_count, fx);
    fx->rc[1] = zt_call_in_thread(fx->r, work_count, fx);
    return NULL;
}

static void
body_overflow(fixture_t *fx)
{
    if (fx->arrived == 0) {
        zt_pool_t *pool = zt_reactor_get_thread_pool(fx->r);
        assert_int_equal(zt_pool_adjust_size(pool, 0, 1), 0);
        zt_pool_set_max_queued(pool, 1);
        fx->expected = 1;
        assert_int_equal(zt_call_in_thread(fx->r, work_arrive_and_block, fx), 0);
        return;
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread_overflows, fx), 0);
    pthread_join(t, NULL);
    support_gate_open(&fx->gate);
    zt_reactor_stop(fx->r);
}

static void
test_threads_call_in_thread_from_another_thread_past_bound_returns_efull(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_overflow);
    assert_int_equal(fx->rc[0], 0);
    assert_int_equal(fx->rc[1], ZT_EFULL);
    assert_int_equal(atomic_load(&fx->ran), 2); /* the blocker and the one accepted */
}

/* --- many threads at once -------------------------------------------------------------------- */

#define PRODUCERS 4
#define CALLS_EACH 1000

static zt_result_t
work_count_to_all(void *arg)
{
    fixture_t *fx = arg;
    if (atomic_fetch_add(&fx->ran, 1) + 1 == PRODUCERS * CALLS_EACH)
        assert_int_equal(zt_reactor_call_from_thread(fx->r, stop, fx), 0);
    return zt_ok_none();
}

static void *
producer(void *arg)
{
    fixture_t *fx = arg;
    for (int i = 0; i < CALLS_EACH; i++)
        if (zt_call_in_thread(fx->r, work_count_to_all, fx) != 0)
            break;
    return NULL;
}

static void
body_many_producers(fixture_t *fx)
{
    pthread_t t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, producer, fx), 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
}

static void
test_threads_call_in_thread_from_many_threads_runs_each_call_once(void **state)
{
    fixture_t *fx = *state;
    run(fx, body_many_producers);
    assert_int_equal(atomic_load(&fx->ran), PRODUCERS * CALLS_EACH);
}

#define BLOCKERS 8

static zt_result_t
f_index(void *arg)
{
    return zt_ok_int((intptr_t)arg);
}

static void
on_blocking_done(void *arg)
{
    fixture_t *fx = arg;
    if (++fx->arrived == BLOCKERS)
        zt_reactor_stop(fx->r);
}

/* arg is the fixture's address plus an index: the index is what f returns. */
typedef struct blocker {
    fixture_t *fx;  /* Borrowed */
    intptr_t index; /* what the reactor side returns for this worker */
    intptr_t got;   /* what blocking_call_from_thread returned */
} blocker_t;

static zt_result_t
work_blocking_index(void *arg)
{
    blocker_t *b = arg;
    zt_result_t r = zt_blocking_call_from_thread(b->fx->r, f_index, (void *)b->index);
    b->got = zt_is_err(r) ? -1 : zt_result_int(r);
    zt_result_release(&r);
    assert_int_equal(zt_reactor_call_from_thread(b->fx->r, on_blocking_done, b->fx), 0);
    return zt_ok_none();
}

static void
body_many_blockers(fixture_t *fx)
{
    assert_int_equal(zt_reactor_suggest_thread_pool_size(fx->r, 4), 0);
    for (int i = 0; i < BLOCKERS; i++) {
        fx->blockers[i] = (blocker_t){.fx = fx, .index = 100 + i, .got = 0};
        assert_int_equal(zt_call_in_thread(fx->r, work_blocking_index, &fx->blockers[i]), 0);
    }
}

static void
test_threads_blocking_calls_from_many_workers_each_get_their_result(void **state)
{
    fixture_t *fx = *state;
    blocker_t blockers[BLOCKERS];
    fx->blockers = blockers;
    run(fx, body_many_blockers);
    for (int i = 0; i < BLOCKERS; i++)
        assert_int_equal(blockers[i].got, 100 + i);
}

static zt_result_t
call_one(void *arg)
{
    return record_call(arg, 1);
}

static zt_result_t
call_two(void *arg)
{
    return record_call(arg, 2);
}

static void
body_check_order(fixture_t *fx)
{
    (void)fx; /* the calls were queued before run; call_two_stops ends the test */
}

static void
test_threads_work_queued_before_run_keeps_its_order(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_suggest_thread_pool_size(fx->r, 1), 0);
    assert_int_equal(zt_call_in_thread(fx->r, call_zero, fx), 0);
    assert_int_equal(zt_call_in_thread(fx->r, call_one, fx), 0);
    assert_int_equal(zt_call_in_thread(fx->r, call_two, fx), 0);
    assert_int_equal(zt_call_in_thread(fx->r, call_two_stops, fx), 0);
    run(fx, body_check_order);
    assert_int_equal(fx->ncalls, 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx->order[i], i);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_threads_call_in_thread_runs_fn_on_a_worker),
        T(test_threads_call_in_thread_from_another_thread_runs),
        T(test_threads_calls_with_bad_arguments_return_einval),
        T(test_threads_call_in_thread_with_callback_runs_on_result_in_worker),
        T(test_threads_call_multiple_in_thread_runs_calls_in_order_on_one_thread),
        T(test_threads_defer_to_thread_fires_with_result_on_reactor_thread),
        T(test_threads_defer_to_thread_failure_reaches_errback),
        T(test_threads_defer_to_thread_pool_uses_the_given_pool),
        T(test_threads_work_queued_before_run_runs_once_running),
        T(test_threads_work_queued_before_run_keeps_its_order),
        T(test_threads_blocking_call_from_thread_returns_value),
        T(test_threads_blocking_call_from_thread_waits_for_deferred_result),
        T(test_threads_blocking_call_from_thread_returns_failure_of_f),
        T(test_threads_blocking_call_from_thread_returns_failure_of_deferred),
        T(test_threads_blocking_call_past_deadline_fails_with_etimedout),
        T(test_threads_blocking_call_pending_at_shutdown_fails_with_eshutdown),
        T(test_threads_blocking_call_on_reactor_thread_fails_at_once_with_edeadlk),
        T(test_threads_blocking_call_before_run_on_creating_thread_fails_with_edeadlk),
        T(test_threads_calls_after_reactor_stopped_fail_with_eshutdown),
        T(test_threads_suggest_thread_pool_size_lets_pool_grow_to_it),
        T(test_threads_reactor_pool_finishes_queued_work_during_shutdown),
        T(test_threads_call_in_thread_from_another_thread_past_bound_returns_efull),
        T(test_threads_call_in_thread_from_many_threads_runs_each_call_once),
        T(test_threads_blocking_calls_from_many_workers_each_get_their_result),
        T(test_threads_shutdown_with_hung_trigger_and_worker_ends_at_its_deadline),
        T(test_threads_get_thread_pool_after_run_returned_is_null),
        T(test_threads_result_finishing_during_shutdown_is_delivered),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
