/*  tests/runtime/test_call_from_thread.c - zt_reactor_call_from_thread and a stop from another
 * thread, after Twisted's callFromThread tests (test_internet.py, test_threads.py): order, wake-up,
 * calls before run, calls after shutdown, a thread's calls across a destroy, and a 4-producer
 * stress run  */
#include <ztwist.h>

#include "support/support.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

enum { PRODUCERS = 4, PER_PRODUCER = 50000 };

typedef struct fixture fixture_t;

/* One call's identity: which producer sent it and its sequence number in that producer. */
typedef struct {
    fixture_t *fx; /* Borrowed */
    int producer;  /* 0 .. PRODUCERS-1, or -1 for the reactor thread */
    int seq;       /* order within its producer */
} call_t;

struct fixture {
    zt_reactor_t *reactor;        /* the reactor under test */
    int order[64];                /* small tests: tags in the order they ran */
    int count;                    /* small tests: how many ran */
    int next_seq[PRODUCERS];      /* stress: the next sequence number expected from each producer */
    long received;                /* stress: calls received */
    long expected;                /* stress: calls to receive before stopping */
    bool out_of_order;            /* stress: a call arrived out of order or twice */
    call_t *calls;                /* stress: every call's identity, PRODUCERS x PER_PRODUCER */
    pthread_t threads[PRODUCERS]; /* producer threads */
    atomic_bool go;               /* producers may start */
    call_t *second;               /* Owned: a call made on a replaced reactor, or NULL */
};

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
    free(fx->calls);
    free(fx);
    return 0;
}

static void
s_record(void *arg)
{
    call_t *c = arg;
    c->fx->order[c->fx->count++] = c->seq;
}

static void
s_stop(void *arg)
{
    fixture_t *fx = arg;
    assert_int_equal(zt_reactor_stop(fx->reactor), 0);
}

static void
test_call_from_thread_on_reactor_thread_is_queued_not_inline(void **state)
{
    fixture_t *fx = *state;
    call_t c = {fx, -1, 1};
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, s_record, &c), 0);
    assert_int_equal(fx->count, 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
}

static void
s_queue_another(void *arg)
{
    call_t *c = arg;
    s_record(c);
    assert_int_equal(zt_reactor_call_from_thread(c->fx->reactor, s_record, c + 1), 0);
}

static void
test_call_from_thread_queued_by_a_call_runs_next_pass(void **state)
{
    fixture_t *fx = *state;
    call_t c[2] = {{fx, -1, 1}, {fx, -1, 2}};
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, s_queue_another, &c[0]), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->count, 2);
}

static void
test_call_from_thread_null_fn_is_refused(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, NULL, NULL), ZT_EINVAL);
}

static void
test_call_from_thread_calls_before_run_run_after_startup_in_order(void **state)
{
    /* Twisted's test_scheduledThreadsNotRunUntilReactorRuns and test_threadsAreRunInScheduledOrder.
     */
    fixture_t *fx = *state;
    call_t c[5];
    for (int i = 0; i < 5; i++) {
        c[i] = (call_t){fx, -1, i + 1};
        assert_int_equal(zt_reactor_call_from_thread(fx->reactor, s_record, &c[i]), 0);
    }
    call_t started = {fx, -1, 100};
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_record, &started, NULL), 0);
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, s_stop, fx), 0);
    assert_int_equal(fx->count, 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->count, 6);
    assert_int_equal(fx->order[0], 100);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fx->order[i + 1], i + 1);
}

static void
test_call_from_thread_after_run_returned_is_refused(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_stop(fx->reactor), 0); /* before run: run starts, then stops */
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    call_t c = {fx, -1, 1};
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, s_record, &c), ZT_ESHUTDOWN);
    assert_int_equal(zt_reactor_stop(fx->reactor), ZT_ESHUTDOWN);
    assert_int_equal(zt_reactor_run(fx->reactor), ZT_ESTATE);
    assert_int_equal(fx->count, 0);
}

/* --- from other threads --------------------------------------------------------------- */

/* A thread that called a reactor before takes the short path on its next call; that path must
 * still see that the reactor stopped, or that the reactor it remembers was destroyed and the
 * fixture's reactor is a new one (perhaps at the same address). */
typedef struct {
    zt_reactor_t *reactor;   /* Borrowed: the reactor of the first call */
    fixture_t *fx;           /* Borrowed */
    pthread_barrier_t phase; /* first call made / reactor changed */
    int rc[2];               /* what the two calls returned */
} caller_t;

static void *
s_call_twice(void *arg)
{
    caller_t *c = arg;
    call_t *first = calloc(1, sizeof *first), *second = calloc(1, sizeof *second);
    *first = (call_t){c->fx, 0, 1};
    *second = (call_t){c->fx, 0, 2};
    c->rc[0] = zt_reactor_call_from_thread(c->reactor, s_record, first);
    pthread_barrier_wait(&c->phase);
    pthread_barrier_wait(&c->phase);
    c->rc[1] = zt_reactor_call_from_thread(c->fx->reactor, s_record, second);
    if (c->rc[1] != 0)
        free(second); /* refused: never referenced by the reactor */
    else
        c->fx->second = second; /* runs on the new reactor: freed by the test */
    return first;               /* ran (after run) or was dropped (destroy): freed by the test */
}

/* First call from the thread, then `change` on the main thread, then the second call. */
static void
s_call_around(fixture_t *fx, void (*change)(fixture_t *), int rc[2])
{
    caller_t c = {.reactor = fx->reactor, .fx = fx};
    pthread_barrier_init(&c.phase, NULL, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_call_twice, &c), 0);
    pthread_barrier_wait(&c.phase);
    change(fx);
    pthread_barrier_wait(&c.phase);
    void *first = NULL;
    pthread_join(t, &first);
    free(first);
    pthread_barrier_destroy(&c.phase);
    rc[0] = c.rc[0];
    rc[1] = c.rc[1];
}

static void
s_run_to_the_end(fixture_t *fx)
{
    assert_int_equal(zt_reactor_stop(fx->reactor), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
}

/* Destroy the reactor (its thread is between calls: the liveness contract holds) and make a new
 * one, which the second call goes to. */
static void
s_replace(fixture_t *fx)
{
    zt_log_set_level(ZT_LOG_ERROR); /* destroy warns about the first call, which never ran */
    zt_reactor_destroy(&fx->reactor);
    zt_log_set_level(ZT_LOG_INFO);
    fx->reactor = zt_reactor_new();
    assert_non_null(fx->reactor);
}

static void
test_call_from_thread_again_from_the_same_thread_after_run_returned_is_refused(void **state)
{
    fixture_t *fx = *state;
    int rc[2];
    s_call_around(fx, s_run_to_the_end, rc);
    assert_int_equal(rc[0], 0);
    assert_int_equal(rc[1], ZT_ESHUTDOWN);
    assert_int_equal(fx->count, 1); /* the first call ran after startup */
    assert_int_equal(fx->order[0], 1);
}

static void
test_call_from_thread_same_thread_after_destroy_reaches_the_new_reactor(void **state)
{
    fixture_t *fx = *state;
    int rc[2];
    s_call_around(fx, s_replace, rc); /* the first call is dropped with the old reactor */
    assert_int_equal(rc[0], 0);
    assert_int_equal(rc[1], 0);
    assert_int_equal(zt_reactor_stop(fx->reactor), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->count, 1); /* the second call, on the new reactor */
    assert_int_equal(fx->order[0], 2);
    free(fx->second);
}

typedef struct {
    fixture_t *fx;         /* Borrowed */
    int index;             /* which producer */
    int count;             /* how many calls to make */
    zt_reactor_fn *fn;     /* what to call */
    zt_reactor_t *reactor; /* Borrowed: where to call, when it may be destroyed meanwhile */
} producer_t;

static void
s_check_order(void *arg)
{
    call_t *c = arg;
    fixture_t *fx = c->fx;
    if (c->seq != fx->next_seq[c->producer])
        fx->out_of_order = true;
    fx->next_seq[c->producer] = c->seq + 1;
    if (++fx->received == fx->expected)
        assert_int_equal(zt_reactor_stop(fx->reactor), 0);
}

static void *
s_produce(void *arg)
{
    producer_t *p = arg;
    fixture_t *fx = p->fx;
    while (!atomic_load(&fx->go))
        ;
    for (int i = 0; i < p->count; i++) {
        call_t *c = &fx->calls[p->index * PER_PRODUCER + i];
        *c = (call_t){fx, p->index, i};
        int rc = zt_reactor_call_from_thread(fx->reactor, p->fn, c);
        assert_int_equal(rc, 0);
    }
    return NULL;
}

static void
s_start_producers(fixture_t *fx, producer_t *p, int n, int count)
{
    fx->calls = calloc((size_t)PRODUCERS * PER_PRODUCER, sizeof *fx->calls);
    fx->expected = (long)n * count;
    for (int i = 0; i < n; i++) {
        p[i] = (producer_t){fx, i, count, s_check_order, fx->reactor};
        assert_int_equal(pthread_create(&fx->threads[i], NULL, s_produce, &p[i]), 0);
    }
}

static void
test_call_from_thread_four_producers_each_call_once_in_order(void **state)
{
    fixture_t *fx = *state;
    producer_t p[PRODUCERS];
    s_start_producers(fx, p, PRODUCERS, PER_PRODUCER);
    atomic_store(&fx->go, true);
    assert_int_equal(zt_reactor_run(fx->reactor), 0); /* the last call stops it */
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(fx->threads[i], NULL);
    assert_false(fx->out_of_order);
    assert_int_equal(fx->received, (long)PRODUCERS * PER_PRODUCER);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(fx->next_seq[i], PER_PRODUCER);
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.mailbox_received, (uint64_t)PRODUCERS * PER_PRODUCER);
}

static void
test_call_from_thread_producers_that_exited_before_run_lose_nothing(void **state)
{
    fixture_t *fx = *state;
    producer_t p[PRODUCERS];
    s_start_producers(fx, p, PRODUCERS, 1000);
    atomic_store(&fx->go, true);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(fx->threads[i], NULL); /* their PUSH sockets are closed at thread exit */
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_false(fx->out_of_order);
    assert_int_equal(fx->received, (long)PRODUCERS * 1000);
}

static void *
s_stop_from_thread(void *arg)
{
    fixture_t *fx = arg;
    while (!atomic_load(&fx->go))
        ;
    assert_int_equal(zt_reactor_stop(fx->reactor), 0);
    return NULL;
}

static void
s_go(void *arg)
{
    fixture_t *fx = arg;
    atomic_store(&fx->go, true);
}

static void
test_call_from_thread_stop_from_another_thread_wakes_and_stops(void **state)
{
    /* The reactor sleeps with nothing to do; only the other thread's stop can end run. */
    fixture_t *fx = *state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_stop_from_thread, fx), 0);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_go, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    pthread_join(t, NULL);
}

/* Ping-pong: the producer makes its next call only once the previous one has run. */
typedef struct {
    zt_reactor_t *reactor; /* Borrowed */
    atomic_int ran;        /* calls run */
} one_by_one_t;

static void
s_stop_reactor(void *arg)
{
    assert_int_equal(zt_reactor_stop(arg), 0);
}

static void
s_one_ran(void *arg)
{
    one_by_one_t *o = arg;
    atomic_fetch_add(&o->ran, 1);
}

static void *
s_call_one_by_one(void *arg)
{
    one_by_one_t *o = arg;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(zt_reactor_call_from_thread(o->reactor, s_one_ran, o), 0);
        while (atomic_load(&o->ran) == i)
            sched_yield();
    }
    assert_int_equal(zt_reactor_call_from_thread(o->reactor, s_stop_reactor, o->reactor), 0);
    return NULL;
}

static void
test_call_from_thread_one_at_a_time_is_never_paced(void **state)
{
    /* The mailbox's pacing judges windows of 32 calls received in one drain: calls that arrive
     * one by one never fill one, so their latency never includes a pause. */
    fixture_t *fx = *state;
    one_by_one_t o = {.reactor = fx->reactor};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_call_one_by_one, &o), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&o.ran), 200);
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.mailbox_received, 201);
    assert_int_equal(stats.mailbox_pauses, 0);
}

/* Every call accepted while run ends must run: run's end stops accepting calls and then waits for
 * the producers caught sending. Rounds of two producers calling until refused while the reactor
 * stops itself; the rounds give the race many chances to hit each side of the handshake. */
enum { STOP_ROUNDS = 40, STOP_AFTER = 2000 };

typedef struct {
    zt_reactor_t *reactor; /* Borrowed */
    long ran;              /* calls run (reactor thread) */
    atomic_int started;    /* producers that have made their first call */
} stop_race_t;

typedef struct {
    stop_race_t *race; /* Borrowed */
    long accepted;     /* calls that returned 0 */
} stop_racer_t;

static void
s_count_then_stop(void *arg)
{
    stop_race_t *race = arg;
    if (++race->ran == STOP_AFTER)
        assert_int_equal(zt_reactor_stop(race->reactor), 0);
}

static void *
s_call_until_refused(void *arg)
{
    stop_racer_t *racer = arg;
    for (bool first = true;; first = false) {
        int rc = zt_reactor_call_from_thread(racer->race->reactor, s_count_then_stop, racer->race);
        if (rc == ZT_ESHUTDOWN)
            break;
        assert_int_equal(rc, 0);
        racer->accepted++;
        if (first)
            atomic_fetch_add(&racer->race->started, 1);
    }
    return NULL;
}

static void
test_call_from_thread_every_accepted_call_runs_when_stop_races_producers(void **state)
{
    (void)state;
    for (int round = 0; round < STOP_ROUNDS; round++) {
        stop_race_t race = {.reactor = zt_reactor_new()};
        assert_non_null(race.reactor);
        stop_racer_t racers[2] = {{&race, 0}, {&race, 0}};
        pthread_t threads[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&threads[i], NULL, s_call_until_refused, &racers[i]),
                             0);
        while (atomic_load(&race.started) < 2) /* calls before run are accepted and queued */
            sched_yield();
        assert_int_equal(zt_reactor_run(race.reactor), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(threads[i], NULL);
        assert_true(race.ran >= STOP_AFTER);
        assert_int_equal(race.ran, racers[0].accepted + racers[1].accepted);
        zt_reactor_destroy(&race.reactor);
    }
}

typedef struct {
    zt_reactor_t *reactor; /* Borrowed */
    int *ran;              /* Borrowed: counts calls run (reactor thread) */
    long accepted;         /* calls accepted before the mailbox was full */
    int last_rc;           /* what the refused call returned */
} flood_t;

static void
s_bump(void *arg)
{
    (*(int *)arg)++;
}

static void *
s_flood_until_refused(void *arg)
{
    flood_t *f = arg;
    for (long i = 0; i < 100 * ZT_REACTOR_MAILBOX_HWM; i++) {
        f->last_rc = zt_reactor_call_from_thread(f->reactor, s_bump, f->ran);
        if (f->last_rc != 0)
            break;
        f->accepted++;
    }
    return NULL;
}

static void
test_call_from_thread_full_mailbox_fails_loudly_after_its_deadline(void **state)
{
    /* Nobody drains the mailbox: the producer waits ZT_REACTOR_MAILBOX_TIMEOUT_MS, then is told. */
    fixture_t *fx = *state;
    support_log_t log; /* the handler runs on the producer thread */
    support_log_install(&log);
    int ran = 0;
    flood_t f = {.reactor = fx->reactor, .ran = &ran};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_flood_until_refused, &f), 0);
    pthread_join(t, NULL);
    support_log_remove(&log);
    assert_int_equal(f.last_rc, ZT_EFULL);
    assert_int_equal(log.errors, 1);
    assert_true(f.accepted >= ZT_REACTOR_MAILBOX_HWM);
    /* Every accepted call still runs. */
    while (ran < f.accepted)
        assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(ran, f.accepted);
}

static void
test_call_from_thread_two_reactors_from_one_thread_stay_apart(void **state)
{
    fixture_t *fx = *state;
    fixture_t other = {.reactor = zt_reactor_new()};
    assert_non_null(other.reactor);
    call_t a = {fx, -1, 1}, b = {&other, -1, 2};
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, s_record, &a), 0);
    assert_int_equal(zt_reactor_call_from_thread(other.reactor, s_record, &b), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(zt_reactor_iterate(other.reactor, 0), 0);
    assert_int_equal(fx->count, 1);
    assert_int_equal(other.count, 1);
    assert_int_equal(fx->order[0], 1);
    assert_int_equal(other.order[0], 2);
    zt_reactor_destroy(&other.reactor);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_call_from_thread_on_reactor_thread_is_queued_not_inline),
        T(test_call_from_thread_queued_by_a_call_runs_next_pass),
        T(test_call_from_thread_null_fn_is_refused),
        T(test_call_from_thread_calls_before_run_run_after_startup_in_order),
        T(test_call_from_thread_after_run_returned_is_refused),
        T(test_call_from_thread_again_from_the_same_thread_after_run_returned_is_refused),
        T(test_call_from_thread_same_thread_after_destroy_reaches_the_new_reactor),
        T(test_call_from_thread_four_producers_each_call_once_in_order),
        T(test_call_from_thread_producers_that_exited_before_run_lose_nothing),
        T(test_call_from_thread_stop_from_another_thread_wakes_and_stops),
        T(test_call_from_thread_one_at_a_time_is_never_paced),
        T(test_call_from_thread_every_accepted_call_runs_when_stop_races_producers),
        T(test_call_from_thread_two_reactors_from_one_thread_stay_apart),
        T(test_call_from_thread_full_mailbox_fails_loudly_after_its_deadline),
#undef T
    };
    return cmocka_run_group_tests_name("call_from_thread", tests, NULL, NULL);
}
