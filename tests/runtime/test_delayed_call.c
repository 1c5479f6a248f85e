/*  tests/runtime/test_delayed_call.c - timed calls on the reactor: zt_reactor_call_later and the
 * DelayedCall handle, after Twisted's DelayedCall and callLater tests (test_internet.py TimeTests,
 * test_task.py), plus the reactor as a zt_clock_t  */
#include <ztwist.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct {
    zt_reactor_t *reactor; /* the reactor under test */
    int order[64];         /* which calls ran, in order */
    int count;             /* how many ran */
} fixture_t;

/* A call that records its tag in the fixture's order. */
typedef struct {
    fixture_t *fx;            /* Borrowed */
    int tag;                  /* recorded when it runs */
    zt_delayed_call_t *other; /* Borrowed: a call this one acts on, or NULL */
} tagged_t;

static void
s_record(void *arg)
{
    tagged_t *t = arg;
    t->fx->order[t->fx->count++] = t->tag;
}

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
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
    assert_null(fx->reactor);
    free(fx);
    return 0;
}

/* Run passes until count calls have run; the reactor sleeps until each is due. */
static void
s_run_until(fixture_t *fx, int count)
{
    while (fx->count < count)
        assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
}

static void
test_delayed_call_zero_delay_never_runs_synchronously(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL};
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_record, &a, NULL), 0);
    assert_int_equal(fx->count, 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    assert_int_equal(fx->order[0], 1);
}

static void
test_delayed_call_same_time_runs_in_scheduling_order(void **state)
{
    fixture_t *fx = *state;
    tagged_t t[10];
    for (int i = 0; i < 10; i++) {
        t[i] = (tagged_t){fx, i, NULL};
        assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_record, &t[i], NULL), 0);
    }
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fx->order[i], i);
}

static void
test_delayed_call_earlier_time_runs_first(void **state)
{
    fixture_t *fx = *state;
    tagged_t late = {fx, 2, NULL}, early = {fx, 1, NULL};
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0.002, s_record, &late, NULL), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0.001, s_record, &early, NULL), 0);
    s_run_until(fx, 2);
    assert_int_equal(fx->order[0], 1);
    assert_int_equal(fx->order[1], 2);
}

static void
s_schedule_another(void *arg)
{
    tagged_t *t = arg;
    s_record(t);
    assert_int_equal(zt_reactor_call_later(t->fx->reactor, 0, s_record, t + 1, NULL), 0);
}

static void
test_delayed_call_scheduled_during_pass_waits_for_next_pass(void **state)
{
    fixture_t *fx = *state;
    tagged_t t[2] = {{fx, 1, NULL}, {fx, 2, NULL}};
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_schedule_another, &t[0], NULL), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 2);
    assert_int_equal(fx->order[1], 2);
}

static void
test_delayed_call_negative_delay_counts_as_zero(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL};
    double before = zt_reactor_seconds(fx->reactor);
    zt_delayed_call_t *c = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, -5, s_record, &a, &c), 0);
    assert_true(zt_delayed_call_get_time(c) >= before);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    zt_delayed_call_release(&c);
}

static void
test_delayed_call_bad_arguments_are_refused(void **state)
{
    fixture_t *fx = *state;
    zt_delayed_call_t *c = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 1, NULL, NULL, &c), ZT_EINVAL);
    assert_int_equal(zt_reactor_call_later(fx->reactor, NAN, s_record, NULL, &c), ZT_EINVAL);
    assert_null(c);
}

static void
test_delayed_call_get_time_is_schedule_time_plus_delay(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL};
    zt_delayed_call_t *c = NULL;
    double before = zt_reactor_seconds(fx->reactor);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 100, s_record, &a, &c), 0);
    double after = zt_reactor_seconds(fx->reactor);
    assert_true(zt_delayed_call_get_time(c) >= before + 100);
    assert_true(zt_delayed_call_get_time(c) <= after + 100);
    assert_int_equal(zt_delayed_call_cancel(c), 0);
    zt_delayed_call_release(&c);
}

static void
test_delayed_call_cancel_prevents_the_call(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL}, b = {fx, 2, NULL};
    zt_delayed_call_t *c = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_record, &a, &c), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_record, &b, NULL), 0);
    assert_true(zt_delayed_call_is_active(c));
    assert_int_equal(zt_delayed_call_cancel(c), 0);
    assert_false(zt_delayed_call_is_active(c));
    assert_true(zt_delayed_call_is_cancelled(c));
    assert_false(zt_delayed_call_is_called(c));
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    assert_int_equal(fx->order[0], 2);
    zt_delayed_call_release(&c);
}

static void
test_delayed_call_cancel_cancelled_returns_ecancelled(void **state)
{
    fixture_t *fx = *state;
    zt_delayed_call_t *c = NULL;
    tagged_t a = {fx, 1, NULL};
    assert_int_equal(zt_reactor_call_later(fx->reactor, 10, s_record, &a, &c), 0);
    assert_int_equal(zt_delayed_call_cancel(c), 0);
    assert_int_equal(zt_delayed_call_cancel(c), ZT_ECANCELLED);
    assert_int_equal(zt_delayed_call_reset(c, 1), ZT_ECANCELLED);
    assert_int_equal(zt_delayed_call_delay(c, 1), ZT_ECANCELLED);
    zt_delayed_call_release(&c);
}

static void
test_delayed_call_cancel_called_returns_ealready(void **state)
{
    fixture_t *fx = *state;
    zt_delayed_call_t *c = NULL;
    tagged_t a = {fx, 1, NULL};
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_record, &a, &c), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_true(zt_delayed_call_is_called(c));
    assert_false(zt_delayed_call_is_active(c));
    assert_int_equal(zt_delayed_call_cancel(c), ZT_EALREADY);
    assert_int_equal(zt_delayed_call_reset(c, 1), ZT_EALREADY);
    assert_int_equal(zt_delayed_call_delay(c, 1), ZT_EALREADY);
    assert_string_not_equal(zt_strerror(ZT_EALREADY), zt_strerror(ZT_ECANCELLED));
    zt_delayed_call_release(&c);
}

static void
s_cancel_self(void *arg)
{
    tagged_t *t = arg;
    s_record(t);
    /* Twisted's test_cancelCalledDelayedCallSynchronous: cancelling from inside the call. */
    assert_int_equal(zt_delayed_call_cancel(t->other), ZT_EALREADY);
}

static void
test_delayed_call_cancel_from_inside_itself_returns_ealready(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL};
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_cancel_self, &a, &a.other), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    zt_delayed_call_release(&a.other);
}

static void
s_cancel_other(void *arg)
{
    tagged_t *t = arg;
    s_record(t);
    assert_int_equal(zt_delayed_call_cancel(t->other), 0);
}

static void
test_delayed_call_cancelled_by_earlier_call_in_same_pass_does_not_run(void **state)
{
    fixture_t *fx = *state;
    tagged_t b = {fx, 2, NULL};
    tagged_t a = {fx, 1, NULL};
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_cancel_other, &a, NULL), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_record, &b, &a.other), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    assert_true(zt_delayed_call_is_cancelled(a.other));
    zt_delayed_call_release(&a.other);
}

static void
test_delayed_call_reset_reorders_after_same_time_calls(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL}, b = {fx, 2, NULL};
    zt_delayed_call_t *c = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 1000, s_record, &a, &c), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_record, &b, NULL), 0);
    double before = zt_reactor_seconds(fx->reactor);
    assert_int_equal(zt_delayed_call_reset(c, 0), 0);
    assert_true(zt_delayed_call_get_time(c) >= before);
    assert_true(zt_delayed_call_get_time(c) < before + 1000);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 2);
    assert_int_equal(fx->order[0], 2);
    assert_int_equal(fx->order[1], 1);
    zt_delayed_call_release(&c);
}

static void
test_delayed_call_reset_later_postpones(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL};
    zt_delayed_call_t *c = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_record, &a, &c), 0);
    assert_int_equal(zt_delayed_call_reset(c, 1000), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 0);
    assert_true(zt_delayed_call_is_active(c));
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 1);
    assert_int_equal(zt_delayed_call_cancel(c), 0);
    zt_delayed_call_release(&c);
}

static void
test_delayed_call_delay_moves_from_scheduled_time(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL};
    zt_delayed_call_t *c = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 1000, s_record, &a, &c), 0);
    double t0 = zt_delayed_call_get_time(c);
    assert_int_equal(zt_delayed_call_delay(c, 5), 0);
    assert_float_equal(zt_delayed_call_get_time(c), t0 + 5, 1e-6);
    assert_int_equal(zt_delayed_call_delay(c, -1005), 0); /* now due */
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    zt_delayed_call_release(&c);
}

static void
test_delayed_call_release_does_not_cancel(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL};
    zt_delayed_call_t *c = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_record, &a, &c), 0);
    zt_delayed_call_release(&c);
    assert_null(c);
    zt_delayed_call_release(&c); /* NULL: nothing */
    zt_delayed_call_release(NULL);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
}

static void
s_release_own(void *arg)
{
    tagged_t *t = arg;
    s_record(t);
    zt_delayed_call_release(&t->other);
}

static void
test_delayed_call_released_from_inside_its_call(void **state)
{
    fixture_t *fx = *state;
    tagged_t a = {fx, 1, NULL};
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_release_own, &a, &a.other), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    assert_null(a.other);
}

static void
s_count(void *arg)
{
    (*(int *)arg)++;
}

static void
test_delayed_call_heavy_cancel_churn_compacts_heap(void **state)
{
    fixture_t *fx = *state;
    enum { N = 20000 };
    zt_delayed_call_t **calls = calloc(N, sizeof *calls);
    int ran = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++)
            assert_int_equal(
                zt_reactor_call_later(fx->reactor, 100 + i % 7, s_count, &ran, &calls[i]), 0);
        for (int i = 0; i < N; i++) {
            assert_int_equal(zt_delayed_call_cancel(calls[i]), 0);
            zt_delayed_call_release(&calls[i]);
        }
    }
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 0);
    /* One call still runs after all that churn. */
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_count, &ran, NULL), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(ran, 1);
    free(calls);
}

/* Calls without a handle live in the heap alone; compaction after mass cancels keeps them. */
static void
test_delayed_call_compaction_keeps_calls_without_handles(void **state)
{
    fixture_t *fx = *state;
    enum { KEPT = 5000, CANCELLED = 20000 };
    zt_delayed_call_t **calls = calloc(CANCELLED, sizeof *calls);
    int kept = 0, cancelled = 0;
    for (int i = 0; i < CANCELLED; i++) {
        if (i % 4 == 0)
            assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_count, &kept, NULL), 0);
        assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_count, &cancelled, &calls[i]), 0);
    }
    for (int i = 0; i < CANCELLED; i++) {
        assert_int_equal(zt_delayed_call_cancel(calls[i]), 0);
        zt_delayed_call_release(&calls[i]);
    }
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, KEPT);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(kept, KEPT);
    assert_int_equal(cancelled, 0);
    free(calls);
}

/* Calls with and without handles share one order: by time, then by scheduling order. */
static void
test_delayed_call_with_and_without_handles_run_in_scheduling_order(void **state)
{
    fixture_t *fx = *state;
    enum { N = 20 };
    tagged_t t[N];
    zt_delayed_call_t *calls[N] = {NULL};
    for (int i = 0; i < N; i++) {
        t[i] = (tagged_t){fx, i, NULL};
        assert_int_equal(
            zt_reactor_call_later(fx->reactor, 0, s_record, &t[i], i % 2 ? &calls[i] : NULL), 0);
    }
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(fx->order[i], i);
        if (calls[i])
            assert_true(zt_delayed_call_is_called(calls[i]));
        zt_delayed_call_release(&calls[i]);
    }
}

/* A call that schedules many more (the heap grows and moves while the pass pops from it). */
typedef struct {
    zt_reactor_t *reactor; /* Borrowed */
    int spawn;             /* calls to schedule from the first call */
    int ran;               /* calls run, the first included */
} spawner_t;

static void
s_spawned(void *arg)
{
    ((spawner_t *)arg)->ran++;
}

static void
s_spawn(void *arg)
{
    spawner_t *sp = arg;
    sp->ran++;
    for (int i = 0; i < sp->spawn; i++)
        assert_int_equal(zt_reactor_call_later(sp->reactor, 0, s_spawned, sp, NULL), 0);
}

static void
test_delayed_call_many_scheduled_from_a_call_run_on_the_next_pass(void **state)
{
    fixture_t *fx = *state;
    spawner_t sp = {.reactor = fx->reactor, .spawn = 10000};
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_spawn, &sp, NULL), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(sp.ran, 1);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(sp.ran, 1 + sp.spawn);
}

/* A million calls without handles pending at once; none runs before it is due. */
typedef struct {
    int64_t due_after_ns; /* the clock read before call_later plus the delay */
    int *ran;             /* Borrowed: the count of calls run */
    int *early;           /* Borrowed: the count of calls that ran before due_after_ns */
} due_t;

static void
s_check_due(void *arg)
{
    due_t *d = arg;
    (*d->ran)++;
    if (zt_time_now_ns() < d->due_after_ns)
        (*d->early)++;
}

static void
test_delayed_call_million_pending_without_handles_all_run_none_early(void **state)
{
    fixture_t *fx = *state;
    enum { N = 1000000 };
    due_t *due = malloc(N * sizeof *due);
    assert_non_null(due);
    int ran = 0, early = 0;
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double delay = (double)(x % 11) / 1000.0; /* 0 to 10 ms */
        due[i] = (due_t){zt_time_now_ns() + (int64_t)(x % 11) * 1000000, &ran, &early};
        assert_int_equal(zt_reactor_call_later(fx->reactor, delay, s_check_due, &due[i], NULL), 0);
    }
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, N);
    while (ran < N)
        assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(early, 0);
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 0);
    free(due);
}

/* Destroying a reactor frees the calls still pending, with and without handles (ASan checks). */
static void
test_delayed_call_reactor_destroyed_with_pending_calls_frees_them(void **state)
{
    fixture_t *fx = *state;
    int ran = 0;
    zt_delayed_call_t *c = NULL;
    for (int i = 0; i < 3000; i++)
        assert_int_equal(zt_reactor_call_later(fx->reactor, 1000, s_count, &ran, NULL), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 1000, s_count, &ran, &c), 0);
    zt_delayed_call_release(&c);
    zt_reactor_destroy(&fx->reactor);
    assert_null(fx->reactor);
    assert_int_equal(ran, 0);
}

static void
test_delayed_call_stats_count_pending_and_run(void **state)
{
    fixture_t *fx = *state;
    int ran = 0;
    zt_delayed_call_t *c = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_count, &ran, NULL), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 1000, s_count, &ran, &c), 0);
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 2);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 1);
    assert_true(stats.callbacks_run >= 1);
    assert_int_equal(zt_delayed_call_cancel(c), 0);
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 0);
    zt_delayed_call_release(&c);
}

static void
test_delayed_call_clock_interface_schedules_and_cancels(void **state)
{
    fixture_t *fx = *state;
    const zt_clock_t *clock = zt_reactor_clock(fx->reactor);
    assert_non_null(clock);
    double now = zt_reactor_seconds(fx->reactor);
    assert_true(zt_clock_seconds(clock) >= now);
    int ran = 0, cancelled = 0;
    assert_int_equal(zt_clock_call_later(clock, 0, s_count, &ran, NULL), 0);
    zt_delayed_call_t *h = NULL;
    assert_int_equal(zt_clock_call_later(clock, 0, s_count, &cancelled, &h), 0);
    assert_non_null(h);
    assert_int_equal(zt_clock_delayed_calls(clock, NULL, 0), 2);
    assert_int_equal(zt_delayed_call_cancel(h), 0);
    assert_int_equal(zt_delayed_call_cancel(h), ZT_ECANCELLED);
    assert_int_equal(zt_clock_call_later(clock, NAN, s_count, &ran, NULL), ZT_EINVAL);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(cancelled, 0);
    assert_true(zt_delayed_call_is_cancelled(h));
    zt_delayed_call_release(&h);
}

static zt_result_t
s_trap_timeout(zt_result_t result, void *arg)
{
    int *timed_out = arg;
    if (zt_result_trap(&result, ZT_TIMEOUT_ERROR))
        *timed_out = 1;
    return result;
}

static void
test_delayed_call_deferred_timeout_on_reactor_clock_fails_with_timeout(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    int timed_out = 0;
    assert_int_equal(zt_deferred_add_timeout(d, 0.001, zt_reactor_clock(fx->reactor)), 0);
    assert_int_equal(zt_deferred_add_errback(d, s_trap_timeout, &timed_out), 0);
    while (!zt_deferred_is_called(d))
        assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(timed_out, 1);
    zt_deferred_unref(&d);
}

static void
test_delayed_call_deferred_fired_before_timeout_cancels_timer(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_timeout(d, 1000, zt_reactor_clock(fx->reactor)), 0);
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 1);
    assert_int_equal(zt_deferred_callback(d, zt_ok_int(7)), 0);
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.timers_pending, 0);
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 7);
    zt_deferred_unref(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_delayed_call_zero_delay_never_runs_synchronously),
        T(test_delayed_call_same_time_runs_in_scheduling_order),
        T(test_delayed_call_earlier_time_runs_first),
        T(test_delayed_call_scheduled_during_pass_waits_for_next_pass),
        T(test_delayed_call_negative_delay_counts_as_zero),
        T(test_delayed_call_bad_arguments_are_refused),
        T(test_delayed_call_get_time_is_schedule_time_plus_delay),
        T(test_delayed_call_cancel_prevents_the_call),
        T(test_delayed_call_cancel_cancelled_returns_ecancelled),
        T(test_delayed_call_cancel_called_returns_ealready),
        T(test_delayed_call_cancel_from_inside_itself_returns_ealready),
        T(test_delayed_call_cancelled_by_earlier_call_in_same_pass_does_not_run),
        T(test_delayed_call_reset_reorders_after_same_time_calls),
        T(test_delayed_call_reset_later_postpones),
        T(test_delayed_call_delay_moves_from_scheduled_time),
        T(test_delayed_call_release_does_not_cancel),
        T(test_delayed_call_released_from_inside_its_call),
        T(test_delayed_call_heavy_cancel_churn_compacts_heap),
        T(test_delayed_call_compaction_keeps_calls_without_handles),
        T(test_delayed_call_with_and_without_handles_run_in_scheduling_order),
        T(test_delayed_call_many_scheduled_from_a_call_run_on_the_next_pass),
        T(test_delayed_call_million_pending_without_handles_all_run_none_early),
        T(test_delayed_call_reactor_destroyed_with_pending_calls_frees_them),
        T(test_delayed_call_stats_count_pending_and_run),
        T(test_delayed_call_clock_interface_schedules_and_cancels),
        T(test_delayed_call_deferred_timeout_on_reactor_clock_fails_with_timeout),
        T(test_delayed_call_deferred_fired_before_timeout_cancels_timer),
#undef T
    };
    return cmocka_run_group_tests_name("delayed_call", tests, NULL, NULL);
}
