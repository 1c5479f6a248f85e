/*  tests/futures/test_deferred_lock.c - DeferredLock and DeferredSemaphore, after Twisted's
 * OtherPrimitivesTests (testLock, testSemaphore and the cancel tests)  */
#include <ztwist.h>

#include "support/support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

/* Each test's state: a lock, a semaphore, and the unhandled failures reported. */
typedef struct fixture {
    zt_deferred_lock_t *lock;      /* Owned: a fresh lock */
    zt_deferred_semaphore_t *sem;  /* Owned: a fresh semaphore of 2 tokens */
    support_unhandled_t unhandled; /* failures reported unhandled */
} fixture_t;

static int
s_setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    fx->lock = zt_deferred_lock_new();
    fx->sem = zt_deferred_semaphore_new(2);
    if (!fx->lock || !fx->sem)
        return -1;
    support_unhandled_install(&fx->unhandled);
    zt_deferred_set_strict(false);
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_lock_destroy(&fx->lock);
    zt_deferred_semaphore_destroy(&fx->sem);
    support_unhandled_remove();
    int unhandled = fx->unhandled.count;
    free(fx);
    return unhandled == 0 ? 0 : -1; /* a test that leaves a failure unhandled fails */
}

/* A link that counts its calls and passes the result on. */
static zt_result_t
s_count(zt_result_t result, void *arg)
{
    (*(int *)arg)++;
    return result;
}

/* What a run's function does: count the call, record the lock state, return a prepared result. */
typedef struct job {
    int calls;                /* how many times fn ran */
    bool locked_during;       /* whether the lock was held while fn ran */
    zt_deferred_lock_t *lock; /* Borrowed: the lock to look at, or NULL */
    zt_result_t returns;      /* what fn returns; moved out on the call */
} job_t;

static zt_result_t
s_job(void *arg)
{
    job_t *job = arg;
    job->calls++;
    if (job->lock)
        job->locked_during = zt_deferred_lock_is_locked(job->lock);
    zt_result_t r = job->returns;
    job->returns = zt_ok_none();
    return r;
}

/* ---- DeferredLock ---------------------------------------------------------------------------- */

static void
test_deferred_lock_acquire_of_a_free_lock_fires_at_once_with_the_lock(void **state)
{
    fixture_t *fx = *state;
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    zt_deferred_t *d = zt_deferred_lock_acquire(fx->lock);
    assert_non_null(d);
    assert_true(zt_deferred_is_called(d));
    assert_ptr_equal(zt_result_ptr(*zt_deferred_peek(d)), fx->lock);
    assert_true(zt_deferred_lock_is_locked(fx->lock));
    zt_deferred_unref(&d);
    assert_int_equal(zt_deferred_lock_release(fx->lock), 0);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
}

static void
test_deferred_lock_second_acquire_waits_for_the_release(void **state)
{
    fixture_t *fx = *state;
    int counter = 0;
    zt_deferred_t *d1 = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_add_callback(d1, s_count, &counter);
    assert_int_equal(counter, 1);
    zt_deferred_t *d2 = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_add_callback(d2, s_count, &counter);
    assert_true(zt_deferred_lock_is_locked(fx->lock));
    assert_int_equal(counter, 1);
    assert_int_equal(zt_deferred_lock_waiting(fx->lock), 1);

    assert_int_equal(zt_deferred_lock_release(fx->lock), 0);
    assert_true(zt_deferred_lock_is_locked(fx->lock)); /* handed straight to the waiter */
    assert_int_equal(counter, 2);
    assert_int_equal(zt_deferred_lock_waiting(fx->lock), 0);

    assert_int_equal(zt_deferred_lock_release(fx->lock), 0);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    assert_int_equal(counter, 2);
    zt_deferred_unref(&d1);
    zt_deferred_unref(&d2);
}

static void
test_deferred_lock_release_of_an_unlocked_lock_returns_estate(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_deferred_lock_release(fx->lock), ZT_ESTATE);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    zt_deferred_t *d = zt_deferred_lock_acquire(fx->lock);
    assert_true(zt_deferred_is_called(d)); /* the refused release changed nothing */
    zt_deferred_unref(&d);
}

static void
test_deferred_lock_waiters_are_served_in_order(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *held = zt_deferred_lock_acquire(fx->lock);
    int a = 0, b = 0, c = 0;
    zt_deferred_t *da = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_t *db = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_t *dc = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_add_callback(da, s_count, &a);
    zt_deferred_add_callback(db, s_count, &b);
    zt_deferred_add_callback(dc, s_count, &c);
    zt_deferred_lock_release(fx->lock);
    assert_true(a == 1 && b == 0 && c == 0);
    zt_deferred_lock_release(fx->lock);
    assert_true(a == 1 && b == 1 && c == 0);
    zt_deferred_lock_release(fx->lock);
    assert_true(a == 1 && b == 1 && c == 1);
    zt_deferred_lock_release(fx->lock);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    zt_deferred_unref(&held);
    zt_deferred_unref(&da);
    zt_deferred_unref(&db);
    zt_deferred_unref(&dc);
}

/* A waiter that releases the lock as soon as it has it, as a short critical section does. */
static zt_result_t
s_release_at_once(zt_result_t result, void *arg)
{
    zt_deferred_lock_release(arg);
    return result;
}

static void
test_deferred_lock_waiter_releasing_in_its_callback_hands_on_to_the_next(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *held = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_t *d1 = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_add_callback(d1, s_release_at_once, fx->lock);
    int got = 0;
    zt_deferred_t *d2 = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_add_callback(d2, s_count, &got);
    zt_deferred_lock_release(fx->lock);
    assert_int_equal(got, 1);
    assert_true(zt_deferred_lock_is_locked(fx->lock)); /* d2 holds it */
    assert_int_equal(zt_deferred_lock_waiting(fx->lock), 0);
    zt_deferred_lock_release(fx->lock);
    zt_deferred_unref(&held);
    zt_deferred_unref(&d1);
    zt_deferred_unref(&d2);
}

static void
test_deferred_lock_run_calls_fn_at_once_and_releases_on_its_value(void **state)
{
    fixture_t *fx = *state;
    job_t job = {.lock = fx->lock, .returns = zt_ok_int(7)};
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    assert_int_equal(job.calls, 1);
    assert_true(job.locked_during);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 7);
    zt_deferred_unref(&d);
}

static void
test_deferred_lock_run_holds_the_lock_until_fn_deferred_fires(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *control = zt_deferred_new();
    job_t job = {.lock = fx->lock, .returns = zt_wait_for(zt_deferred_ref(control))};
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    assert_int_equal(job.calls, 1);
    assert_true(zt_deferred_lock_is_locked(fx->lock));
    support_capture_t result = {0};
    zt_deferred_add_callback(d, support_capture, &result);
    int counter = 0;
    zt_deferred_t *next = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_add_callback(next, s_count, &counter);
    assert_int_equal(counter, 0);

    zt_deferred_callback(control, zt_ok_int(2));
    assert_int_equal(result.calls, 1);
    assert_int_equal(zt_result_int(result.result), 2);
    assert_true(zt_deferred_lock_is_locked(fx->lock)); /* released, then taken by next */
    assert_int_equal(counter, 1);
    zt_deferred_lock_release(fx->lock);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    zt_deferred_unref(&next);
    zt_deferred_unref(&d);
    zt_deferred_unref(&control);
}

static void
test_deferred_lock_run_releases_on_failure_and_passes_it_on(void **state)
{
    fixture_t *fx = *state;
    job_t job = {.returns = zt_err(zt_failure_new(ZT_ERROR, "job failed"))};
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    assert_int_equal(err.calls, 1);
    assert_string_equal(zt_failure_message(zt_result_failure(err.result)), "job failed");
    zt_result_release(&err.result);
    zt_deferred_unref(&d);
}

static void
test_deferred_lock_run_releases_when_fn_deferred_fails(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *control = zt_deferred_new();
    job_t job = {.returns = zt_wait_for(zt_deferred_ref(control))};
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    assert_true(zt_deferred_lock_is_locked(fx->lock));
    zt_deferred_errback(control, zt_failure_new(ZT_TIMEOUT_ERROR, "slow"));
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    assert_ptr_equal(zt_failure_type(zt_result_failure(err.result)), ZT_TIMEOUT_ERROR);
    zt_result_release(&err.result);
    zt_deferred_unref(&d);
    zt_deferred_unref(&control);
}

static void
test_deferred_lock_run_with_an_already_fired_deferred_releases_at_once(void **state)
{
    fixture_t *fx = *state;
    job_t job = {.returns = zt_wait_for(zt_deferred_succeed(zt_ok_int(4)))};
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 4);
    zt_deferred_unref(&d);
}

static void
test_deferred_lock_run_whose_fn_ran_out_of_memory_releases_and_fails(void **state)
{
    fixture_t *fx = *state;
    job_t job = {.returns = zt_wait_for(NULL)}; /* what a failed zt_deferred_new() gives */
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    assert_int_equal(zt_failure_code(zt_result_failure(err.result)), ZT_ENOMEM);
    zt_result_release(&err.result);
    zt_deferred_unref(&d);
}

static void
test_deferred_lock_run_waits_for_the_lock_before_calling_fn(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *held = zt_deferred_lock_acquire(fx->lock);
    job_t job = {.lock = fx->lock, .returns = zt_ok_int(1)};
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    assert_int_equal(job.calls, 0);
    assert_false(zt_deferred_is_called(d));
    zt_deferred_lock_release(fx->lock);
    assert_int_equal(job.calls, 1);
    assert_true(job.locked_during);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 1);
    zt_deferred_unref(&d);
    zt_deferred_unref(&held);
}

static void
test_deferred_lock_cancel_after_acquired_does_nothing(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_lock_acquire(fx->lock);
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    zt_deferred_cancel(d);
    assert_int_equal(err.calls, 0);
    assert_true(zt_deferred_lock_is_locked(fx->lock));
    zt_deferred_lock_release(fx->lock);
    zt_deferred_unref(&d);
}

static void
test_deferred_lock_cancel_before_acquired_fails_and_withdraws_the_waiter(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *held = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_t *d = zt_deferred_lock_acquire(fx->lock);
    assert_int_equal(zt_deferred_lock_waiting(fx->lock), 1);
    zt_deferred_cancel(d);
    assert_int_equal(zt_deferred_lock_waiting(fx->lock), 0);
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    assert_int_equal(err.calls, 1);
    assert_ptr_equal(zt_failure_type(zt_result_failure(err.result)), ZT_CANCELLED_ERROR);
    /* The release goes to nobody: the lock is free again. */
    zt_deferred_lock_release(fx->lock);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    zt_result_release(&err.result);
    zt_deferred_unref(&d);
    zt_deferred_unref(&held);
}

static void
test_deferred_lock_cancel_of_a_waiting_run_never_calls_fn(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *held = zt_deferred_lock_acquire(fx->lock);
    job_t job = {.returns = zt_ok_int(1)};
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    zt_deferred_cancel(d);
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    assert_ptr_equal(zt_failure_type(zt_result_failure(err.result)), ZT_CANCELLED_ERROR);
    zt_deferred_lock_release(fx->lock);
    assert_int_equal(job.calls, 0);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    zt_result_release(&err.result);
    zt_deferred_unref(&d);
    zt_deferred_unref(&held);
}

static void
test_deferred_lock_cancel_of_a_running_run_cancels_fn_deferred_and_releases(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *control = zt_deferred_new();
    job_t job = {.returns = zt_wait_for(zt_deferred_ref(control))};
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    zt_deferred_cancel(d);
    assert_true(zt_deferred_is_called(control));
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    assert_ptr_equal(zt_failure_type(zt_result_failure(err.result)), ZT_CANCELLED_ERROR);
    zt_result_release(&err.result);
    zt_deferred_unref(&d);
    zt_deferred_unref(&control);
}

static void
test_deferred_lock_acquire_with_a_timeout_gives_up_its_place(void **state)
{
    fixture_t *fx = *state;
    zt_test_clock_t *clock = zt_test_clock_new();
    zt_deferred_t *held = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_t *d = zt_deferred_lock_acquire(fx->lock);
    assert_int_equal(zt_deferred_add_timeout(d, 1.0, zt_test_clock_clock(clock)), 0);
    zt_test_clock_advance(clock, 1.0);
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    assert_ptr_equal(zt_failure_type(zt_result_failure(err.result)), ZT_TIMEOUT_ERROR);
    assert_int_equal(zt_deferred_lock_waiting(fx->lock), 0);
    zt_deferred_lock_release(fx->lock);
    assert_false(zt_deferred_lock_is_locked(fx->lock));
    zt_result_release(&err.result);
    zt_deferred_unref(&d);
    zt_deferred_unref(&held);
    zt_test_clock_destroy(&clock);
}

static void
test_deferred_lock_destroy_fails_the_waiting_acquires(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *held = zt_deferred_lock_acquire(fx->lock);
    zt_deferred_t *waiting = zt_deferred_lock_acquire(fx->lock);
    support_capture_t err = {0};
    zt_deferred_add_errback(waiting, support_capture, &err);
    zt_deferred_lock_destroy(&fx->lock);
    assert_null(fx->lock);
    assert_int_equal(err.calls, 1);
    assert_ptr_equal(zt_failure_type(zt_result_failure(err.result)), ZT_CANCELLED_ERROR);
    zt_deferred_cancel(waiting); /* fired already: nothing happens */
    zt_result_release(&err.result);
    zt_deferred_unref(&waiting);
    zt_deferred_unref(&held);
    zt_deferred_lock_destroy(&fx->lock); /* NULL: nothing */
}

static void
test_deferred_lock_destroy_during_a_run_lets_the_run_finish(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *control = zt_deferred_new();
    job_t job = {.returns = zt_wait_for(zt_deferred_ref(control))};
    zt_deferred_t *d = zt_deferred_lock_run(fx->lock, s_job, &job);
    zt_deferred_t *queued = zt_deferred_lock_run(fx->lock, s_job, &job);
    zt_deferred_lock_destroy(&fx->lock);
    /* The queued run was withdrawn with the lock; the running one finishes normally. */
    support_capture_t err = {0};
    zt_deferred_add_errback(queued, support_capture, &err);
    assert_ptr_equal(zt_failure_type(zt_result_failure(err.result)), ZT_CANCELLED_ERROR);
    zt_deferred_callback(control, zt_ok_int(3));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 3);
    assert_int_equal(job.calls, 1);
    zt_result_release(&err.result);
    zt_deferred_unref(&queued);
    zt_deferred_unref(&d);
    zt_deferred_unref(&control);
}

/* ---- DeferredSemaphore ----------------------------------------------------------------------- */

static void
test_deferred_semaphore_new_refuses_fewer_than_one_token(void **state)
{
    (void)state;
    assert_null(zt_deferred_semaphore_new(0));
    assert_null(zt_deferred_semaphore_new(-1));
    zt_deferred_semaphore_t *one = zt_deferred_semaphore_new(1);
    assert_non_null(one);
    assert_int_equal(zt_deferred_semaphore_limit(one), 1);
    assert_int_equal(zt_deferred_semaphore_tokens(one), 1);
    zt_deferred_semaphore_destroy(&one);
    assert_null(one);
}

static void
test_deferred_semaphore_n_acquires_fire_then_the_next_waits(void **state)
{
    (void)state;
    enum { N = 13 };
    zt_deferred_semaphore_t *sem = zt_deferred_semaphore_new(N);
    int counter = 0;
    zt_deferred_t *ds[N + 2];
    for (int i = 0; i < N; i++) {
        ds[i] = zt_deferred_semaphore_acquire(sem);
        zt_deferred_add_callback(ds[i], s_count, &counter);
        assert_int_equal(counter, i + 1);
    }
    assert_int_equal(zt_deferred_semaphore_tokens(sem), 0);

    /* A waiting acquire that is cancelled fails (the errback runs), and leaves the queue. */
    int succeeded = 0, failed = 0;
    ds[N] = zt_deferred_semaphore_acquire(sem);
    zt_deferred_add_callbacks(ds[N], s_count, NULL, &succeeded);
    support_capture_t err = {0};
    zt_deferred_add_errback(ds[N], support_capture, &err);
    zt_deferred_cancel(ds[N]);
    failed = err.calls;
    assert_int_equal(succeeded, 0);
    assert_int_equal(failed, 1);

    ds[N + 1] = zt_deferred_semaphore_acquire(sem);
    zt_deferred_add_callback(ds[N + 1], s_count, &counter);
    assert_int_equal(counter, N);
    assert_int_equal(zt_deferred_semaphore_release(sem), 0);
    assert_int_equal(counter, N + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(zt_deferred_semaphore_release(sem), 0);
        assert_int_equal(counter, N + 1);
    }
    assert_int_equal(zt_deferred_semaphore_tokens(sem), N);
    zt_result_release(&err.result);
    for (int i = 0; i < N + 2; i++)
        zt_deferred_unref(&ds[i]);
    zt_deferred_semaphore_destroy(&sem);
}

static void
test_deferred_semaphore_release_beyond_the_limit_returns_estate(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_deferred_semaphore_release(fx->sem), ZT_ESTATE);
    assert_int_equal(zt_deferred_semaphore_tokens(fx->sem), 2);
    zt_deferred_t *d = zt_deferred_semaphore_acquire(fx->sem);
    assert_int_equal(zt_deferred_semaphore_tokens(fx->sem), 1);
    assert_int_equal(zt_deferred_semaphore_release(fx->sem), 0);
    assert_int_equal(zt_deferred_semaphore_release(fx->sem), ZT_ESTATE);
    assert_int_equal(zt_deferred_semaphore_tokens(fx->sem), 2);
    zt_deferred_unref(&d);
}

static void
test_deferred_semaphore_run_passes_arg_and_fires_with_fn_result(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *control = zt_deferred_new();
    job_t job = {.returns = zt_wait_for(zt_deferred_ref(control))};
    zt_deferred_t *d = zt_deferred_semaphore_run(fx->sem, s_job, &job);
    assert_int_equal(job.calls, 1);
    int counter = 0;
    zt_deferred_add_callback(d, s_count, &counter);
    assert_int_equal(counter, 0);
    assert_int_equal(zt_deferred_semaphore_tokens(fx->sem), 1);
    zt_deferred_callback(control, zt_ok_none());
    assert_int_equal(counter, 1);
    assert_null(zt_result_ptr(*zt_deferred_peek(d)));
    assert_int_equal(zt_deferred_semaphore_tokens(fx->sem), 2);
    zt_deferred_unref(&d);
    zt_deferred_unref(&control);
}

static void
test_deferred_semaphore_run_limits_how_many_run_at_once(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *controls[3] = {zt_deferred_new(), zt_deferred_new(), zt_deferred_new()};
    job_t jobs[3];
    zt_deferred_t *ds[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (job_t){.returns = zt_wait_for(zt_deferred_ref(controls[i]))};
        ds[i] = zt_deferred_semaphore_run(fx->sem, s_job, &jobs[i]);
    }
    assert_true(jobs[0].calls == 1 && jobs[1].calls == 1 && jobs[2].calls == 0);
    assert_int_equal(zt_deferred_semaphore_waiting(fx->sem), 1);
    zt_deferred_callback(controls[1], zt_ok_int(1));
    assert_int_equal(jobs[2].calls, 1); /* the freed token went to the third run */
    zt_deferred_callback(controls[0], zt_ok_int(0));
    zt_deferred_callback(controls[2], zt_ok_int(2));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(zt_result_int(*zt_deferred_peek(ds[i])), i);
        zt_deferred_unref(&ds[i]);
        zt_deferred_unref(&controls[i]);
    }
    assert_int_equal(zt_deferred_semaphore_tokens(fx->sem), 2);
}

static void
test_deferred_semaphore_cancel_after_acquired_does_nothing(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_semaphore_acquire(fx->sem);
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    zt_deferred_cancel(d);
    assert_int_equal(err.calls, 0);
    assert_int_equal(zt_deferred_semaphore_tokens(fx->sem), 1);
    zt_deferred_semaphore_release(fx->sem);
    zt_deferred_unref(&d);
}

static void
test_deferred_semaphore_cancel_before_acquired_fails_with_cancelled(void **state)
{
    (void)state;
    zt_deferred_semaphore_t *sem = zt_deferred_semaphore_new(1);
    zt_deferred_t *held = zt_deferred_semaphore_acquire(sem);
    zt_deferred_t *a = zt_deferred_semaphore_acquire(sem);
    zt_deferred_t *b = zt_deferred_semaphore_acquire(sem);
    zt_deferred_cancel(a); /* the first of two waiters: b stays queued */
    support_capture_t err = {0};
    zt_deferred_add_errback(a, support_capture, &err);
    assert_ptr_equal(zt_failure_type(zt_result_failure(err.result)), ZT_CANCELLED_ERROR);
    assert_int_equal(zt_deferred_semaphore_waiting(sem), 1);
    zt_deferred_semaphore_release(sem);
    assert_true(zt_deferred_is_called(b));
    assert_ptr_equal(zt_result_ptr(*zt_deferred_peek(b)), sem);
    zt_deferred_semaphore_release(sem);
    zt_result_release(&err.result);
    zt_deferred_unref(&held);
    zt_deferred_unref(&a);
    zt_deferred_unref(&b);
    zt_deferred_semaphore_destroy(&sem);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        T(test_deferred_lock_acquire_of_a_free_lock_fires_at_once_with_the_lock),
        T(test_deferred_lock_second_acquire_waits_for_the_release),
        T(test_deferred_lock_release_of_an_unlocked_lock_returns_estate),
        T(test_deferred_lock_waiters_are_served_in_order),
        T(test_deferred_lock_waiter_releasing_in_its_callback_hands_on_to_the_next),
        T(test_deferred_lock_run_calls_fn_at_once_and_releases_on_its_value),
        T(test_deferred_lock_run_holds_the_lock_until_fn_deferred_fires),
        T(test_deferred_lock_run_releases_on_failure_and_passes_it_on),
        T(test_deferred_lock_run_releases_when_fn_deferred_fails),
        T(test_deferred_lock_run_with_an_already_fired_deferred_releases_at_once),
        T(test_deferred_lock_run_whose_fn_ran_out_of_memory_releases_and_fails),
        T(test_deferred_lock_run_waits_for_the_lock_before_calling_fn),
        T(test_deferred_lock_cancel_after_acquired_does_nothing),
        T(test_deferred_lock_cancel_before_acquired_fails_and_withdraws_the_waiter),
        T(test_deferred_lock_cancel_of_a_waiting_run_never_calls_fn),
        T(test_deferred_lock_cancel_of_a_running_run_cancels_fn_deferred_and_releases),
        T(test_deferred_lock_acquire_with_a_timeout_gives_up_its_place),
        T(test_deferred_lock_destroy_fails_the_waiting_acquires),
        T(test_deferred_lock_destroy_during_a_run_lets_the_run_finish),
        T(test_deferred_semaphore_new_refuses_fewer_than_one_token),
        T(test_deferred_semaphore_n_acquires_fire_then_the_next_waits),
        T(test_deferred_semaphore_release_beyond_the_limit_returns_estate),
        T(test_deferred_semaphore_run_passes_arg_and_fires_with_fn_result),
        T(test_deferred_semaphore_run_limits_how_many_run_at_once),
        T(test_deferred_semaphore_cancel_after_acquired_does_nothing),
        T(test_deferred_semaphore_cancel_before_acquired_fails_with_cancelled),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
