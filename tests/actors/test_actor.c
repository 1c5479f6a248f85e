/*  tests/actors/test_actor.c - application actors: spawn, tell, ask, scheduling, bounded
 * mailboxes, lifecycle, references, names, counters
 *
 *  Single-reactor tests run on a test-clock reactor, one pass at a time (zt_reactor_iterate), so
 * they count passes and messages, never time. The cross-reactor tests run two reactors on two
 * threads (this suite is THREADS: it runs under TSan too).  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist.h>
#include "support/support.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { TAG_NUM = 1, TAG_GET = 2, TAG_FAIL = 3, TAG_LATER = 4, TAG_WAIT = 5, TAG_STOP = 6 };

typedef struct fixture {
    zt_test_clock_t *clock; /* the reactor's time */
    zt_reactor_t *r;        /* a test-clock reactor */
} fixture_t;

/* What a counting actor records. */
typedef struct counter {
    int handled;             /* messages handled */
    intptr_t last;           /* the last number received */
    int out_of_order;        /* numbers that did not follow the previous one */
    int inside;              /* handlers running now */
    int max_inside;          /* the most at once */
    int stopped;             /* the stopped hook ran */
    zt_deferred_t *gate;     /* Owned reference: what a TAG_WAIT coroutine awaits, or NULL */
    zt_reply_t *later;       /* Owned: a reply handle kept by TAG_LATER */
    int seen_at_other;       /* another actor's `handled` when this one first handled */
    struct counter *watched; /* Borrowed: that other actor */
} counter_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->clock = zt_test_clock_new();
    fx->r = zt_reactor_new_with_clock(fx->clock);
    assert_non_null(fx->r);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_reactor_destroy(&fx->r);
    zt_test_clock_destroy(&fx->clock);
    free(fx);
    return 0;
}

/* Stop an actor (at once, from its reactor's thread: its state on the test's stack is released
 * before the test returns) and drop the reference. */
static void
stop_and_release(zt_actor_t **a_p)
{
    zt_actor_stop(*a_p);
    zt_actor_unref(a_p);
}

static void
passes(zt_reactor_t *r, int n)
{
    for (int i = 0; i < n; i++)
        zt_reactor_iterate(r, 0);
}

static zt_result_t
count_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    counter_t *c = state;
    c->inside++;
    if (c->inside > c->max_inside)
        c->max_inside = c->inside;
    if (c->watched && c->handled == 0)
        c->seen_at_other = c->watched->handled;
    c->handled++;
    zt_result_t result = zt_ok_none();
    switch (msg->tag) {
    case TAG_NUM:
        if ((intptr_t)msg->body != c->last + 1)
            c->out_of_order++;
        c->last = (intptr_t)msg->body;
        break;
    case TAG_GET:
        result = zt_ok_int(c->last);
        break;
    case TAG_FAIL:
        result = zt_err(zt_failure_new(ZT_ERROR, "boom"));
        break;
    case TAG_LATER:
        c->later = zt_actor_defer_reply(self);
        break;
    case TAG_WAIT: /* only for coroutine actors */
        result = zt_await(zt_deferred_ref(c->gate));
        break;
    case TAG_STOP:
        zt_actor_stop(self);
        break;
    }
    c->inside--;
    return result;
}

static void
count_stopped(zt_actor_t *self, void *state, void *arg)
{
    (void)self, (void)arg;
    ((counter_t *)state)->stopped++;
}

static zt_actor_t *
spawn_counter(zt_reactor_t *r, counter_t *c, uint32_t budget, unsigned flags)
{
    zt_actor_spec_t spec = {.receive = count_receive,
                            .stopped = count_stopped,
                            .arg = c,
                            .budget = budget,
                            .flags = flags};
    zt_actor_t *a = NULL;
    assert_int_equal(zt_actor_spawn(r, &spec, &a), 0);
    return a;
}

static void
test_actor_tell_from_one_sender_keeps_order(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {0};
    zt_actor_t *a = spawn_counter(fx->r, &c, 0, 0);
    for (intptr_t i = 1; i <= 1000; i++)
        assert_int_equal(zt_actor_tell(a, zt_msg(TAG_NUM, (void *)i, NULL)), 0);
    assert_int_equal(c.handled, 0); /* queued, not run inside the tell */
    passes(fx->r, 1000 / ZT_ACTOR_BUDGET + 2);
    assert_int_equal(c.handled, 1000);
    assert_int_equal(c.out_of_order, 0);
    assert_int_equal(c.max_inside, 1);
    zt_actor_stats_t st;
    zt_actor_stats(a, &st);
    assert_int_equal(st.handled, 1000);
    assert_int_equal(st.depth, 0);
    assert_int_equal(st.high_water, 1000);
    stop_and_release(&a);
}

/* A flooding actor delays another actor's message by at most its budget, and the reactor's timer
 * by at most one round. */
static void
timer_mark(void *arg)
{
    counter_t *c = arg;
    c->seen_at_other = c->watched->handled;
    c->handled = 1;
}

static void
test_actor_flooding_actor_gets_one_budget_per_turn(void **state)
{
    (void)state;
    fixture_t real = {.r = zt_reactor_new()}, *fx = &real; /* real timers, run each pass */
    counter_t flood = {0}, quiet = {.watched = &flood}, timer = {.watched = &flood};
    zt_actor_t *f = spawn_counter(fx->r, &flood, 8, 0);
    zt_actor_t *q = spawn_counter(fx->r, &quiet, 8, 0);
    for (intptr_t i = 1; i <= 1000; i++)
        assert_int_equal(zt_actor_tell(f, zt_msg(TAG_NUM, (void *)i, NULL)), 0);
    assert_int_equal(zt_actor_tell(q, zt_msg(TAG_NUM, (void *)1, NULL)), 0);
    assert_int_equal(zt_reactor_call_later(fx->r, 0, timer_mark, &timer, NULL), 0);
    passes(fx->r, 1);
    assert_int_equal(quiet.handled, 1);
    assert_true(quiet.seen_at_other <= 8); /* at most one turn of the flooder first */
    passes(fx->r, 1);
    assert_int_equal(timer.handled, 1);
    assert_true(timer.seen_at_other <= 16); /* the timer waited at most two rounds */
    passes(fx->r, 200);
    assert_int_equal(flood.handled, 1000);
    assert_int_equal(flood.out_of_order, 0);
    stop_and_release(&f);
    stop_and_release(&q);
    zt_reactor_destroy(&real.r);
}

/* A coroutine handler that awaits holds the actor: the next message waits until it returns. */
static void
test_actor_coroutine_handler_holds_next_message(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {.gate = zt_deferred_new()};
    zt_actor_t *a = spawn_counter(fx->r, &c, 0, ZT_ACTOR_CORO);
    assert_int_equal(zt_actor_tell(a, zt_msg(TAG_WAIT, NULL, NULL)), 0);
    assert_int_equal(zt_actor_tell(a, zt_msg(TAG_NUM, (void *)1, NULL)), 0);
    assert_int_equal(zt_actor_tell(a, zt_msg(TAG_NUM, (void *)2, NULL)), 0);
    passes(fx->r, 10);
    assert_int_equal(c.handled, 1); /* suspended in its await */
    zt_actor_stats_t st;
    zt_actor_stats(a, &st);
    assert_int_equal(st.depth, 2);
    zt_deferred_callback(c.gate, zt_ok_int(7));
    passes(fx->r, 5);
    assert_int_equal(c.handled, 3);
    assert_int_equal(c.last, 2);
    assert_int_equal(c.max_inside, 1);
    zt_deferred_unref(&c.gate);
    stop_and_release(&a);
}

/* A stop during an await takes effect when the handler has finished: the stopped hook never frees
 * state a suspended handler still uses. */
static void
test_actor_stop_during_await_waits_for_the_handler(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {.gate = zt_deferred_new()};
    zt_actor_t *a = spawn_counter(fx->r, &c, 0, ZT_ACTOR_CORO);
    zt_actor_tell(a, zt_msg(TAG_WAIT, NULL, NULL));
    zt_actor_tell(a, zt_msg(TAG_NUM, strdup("never handled"), free));
    passes(fx->r, 2);
    assert_int_equal(c.handled, 1);
    uint64_t dead = zt_actor_dead_letters();
    assert_int_equal(zt_actor_stop(a), 0);
    passes(fx->r, 2);
    assert_true(zt_actor_is_alive(a)); /* still inside its await */
    assert_int_equal(c.stopped, 0);
    zt_deferred_callback(c.gate, zt_ok_none());
    passes(fx->r, 2);
    assert_false(zt_actor_is_alive(a));
    assert_int_equal(c.stopped, 1);
    assert_int_equal(c.handled, 1);
    assert_int_equal(zt_actor_dead_letters(), dead + 1);
    zt_deferred_unref(&c.gate);
    zt_actor_unref(&a);
}

/* A reactor destroyed while an actor's coroutine handler is suspended: the await is cancelled,
 * the handler unwinds, the actor ends, nothing leaks (ASan). */
static void
test_actor_destroy_with_suspended_handler_unwinds_it(void **state)
{
    (void)state;
    zt_test_clock_t *clock = zt_test_clock_new();
    zt_reactor_t *r = zt_reactor_new_with_clock(clock);
    counter_t c = {.gate = zt_deferred_new()};
    zt_actor_t *a = spawn_counter(r, &c, 0, ZT_ACTOR_CORO);
    support_capture_t asked = {0};
    zt_deferred_t *d = zt_actor_ask(r, a, zt_msg(TAG_WAIT, strdup("body"), free), 0);
    zt_deferred_add_both(d, support_capture, &asked);
    passes(r, 2);
    assert_int_equal(c.handled, 1);
    assert_int_equal(asked.calls, 0);
    zt_reactor_destroy(&r);
    assert_int_equal(c.stopped, 1);
    assert_int_equal(c.inside, 0); /* the handler ran to its end */
    assert_int_equal(asked.calls, 1);
    assert_true(zt_is_err(asked.result)); /* the cancelled await, returned as the crash */
    assert_false(zt_actor_is_alive(a));
    support_capture_release(&asked);
    zt_deferred_unref(&d);
    zt_deferred_unref(&c.gate);
    zt_actor_unref(&a);
    zt_test_clock_destroy(&clock);
}

static void
test_actor_ask_replies_with_value_and_crash_failure(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {0};
    zt_actor_t *a = spawn_counter(fx->r, &c, 0, 0);
    zt_actor_tell(a, zt_msg(TAG_NUM, (void *)1, NULL));
    support_capture_t got = {0}, crashed = {0}, mon = {0};
    zt_deferred_t *d = zt_actor_ask(fx->r, a, zt_msg(TAG_GET, NULL, NULL), 0);
    zt_deferred_add_both(d, support_capture, &got);
    zt_deferred_t *m = zt_actor_monitor(a);
    zt_deferred_add_both(m, support_capture, &mon);
    zt_deferred_t *d2 = zt_actor_ask(fx->r, a, zt_msg(TAG_FAIL, NULL, NULL), 0);
    zt_deferred_add_both(d2, support_capture, &crashed);
    passes(fx->r, 3);
    assert_int_equal(got.calls, 1);
    assert_int_equal(zt_result_int(got.result), 1);
    assert_int_equal(crashed.calls, 1);
    assert_true(zt_is_err(crashed.result));
    assert_string_equal(zt_failure_message(zt_result_failure(crashed.result)), "boom");
    assert_int_equal(mon.calls, 1); /* the monitor sees the crash */
    assert_true(zt_is_err(mon.result));
    assert_false(zt_actor_is_alive(a));
    assert_int_equal(c.stopped, 1);
    support_capture_release(&got);
    support_capture_release(&crashed);
    support_capture_release(&mon);
    zt_deferred_unref(&d);
    zt_deferred_unref(&d2);
    zt_deferred_unref(&m);
    stop_and_release(&a);
}

/* An ask times out on the reactor's clock; the late reply is dropped and counted. */
static void
test_actor_ask_timeout_then_late_reply_is_dropped(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {0};
    zt_actor_t *a = spawn_counter(fx->r, &c, 0, 0);
    support_capture_t got = {0};
    zt_deferred_t *d = zt_actor_ask(fx->r, a, zt_msg(TAG_LATER, NULL, NULL), 2.0);
    zt_deferred_add_both(d, support_capture, &got);
    passes(fx->r, 2);
    assert_non_null(c.later);
    assert_int_equal(got.calls, 0);
    zt_test_clock_advance(fx->clock, 1.9);
    assert_int_equal(got.calls, 0);
    zt_test_clock_advance(fx->clock, 0.2);
    assert_int_equal(got.calls, 1);
    assert_non_null(zt_result_trap(&got.result, ZT_TIMEOUT_ERROR));
    uint64_t dropped = zt_actor_dropped_replies();
    char *late = strdup("late");
    zt_reply_send(&c.later, zt_ok(late, free)); /* freed by ztwist, ASan checks it */
    assert_null(c.later);
    assert_int_equal(zt_actor_dropped_replies(), dropped + 1);
    support_capture_release(&got);
    zt_deferred_unref(&d);
    stop_and_release(&a);
}

static zt_result_t
reply_error_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)state, (void)msg;
    assert_int_equal(zt_actor_reply(self, zt_err(zt_failure_new(ZT_ERROR, "no such key"))), 0);
    assert_int_equal(zt_actor_reply(self, zt_ok_none()), ZT_ESTATE);
    return zt_ok_none();
}

static void
test_actor_reply_error_keeps_actor_alive(void **state)
{
    fixture_t *fx = *state;
    zt_actor_spec_t spec = {.receive = reply_error_receive};
    zt_actor_t *a = NULL;
    assert_int_equal(zt_actor_spawn(fx->r, &spec, &a), 0);
    support_capture_t got = {0};
    zt_deferred_t *d = zt_actor_ask(fx->r, a, zt_msg(0, NULL, NULL), 0);
    zt_deferred_add_both(d, support_capture, &got);
    passes(fx->r, 2);
    assert_true(zt_is_err(got.result));
    assert_string_equal(zt_failure_message(zt_result_failure(got.result)), "no such key");
    assert_true(zt_actor_is_alive(a));
    support_capture_release(&got);
    zt_deferred_unref(&d);
    stop_and_release(&a);
}

static void
test_actor_full_mailbox_fails_send_and_caller_keeps_body(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {0};
    zt_actor_spec_t spec = {
        .receive = count_receive, .arg = &c, .capacity = 4, .policy = ZT_MAILBOX_FAIL};
    zt_actor_t *a = NULL;
    assert_int_equal(zt_actor_spawn(fx->r, &spec, &a), 0);
    for (intptr_t i = 1; i <= 4; i++)
        assert_int_equal(zt_actor_tell(a, zt_msg(TAG_NUM, (void *)i, NULL)), 0);
    char *body = strdup("x");
    assert_int_equal(zt_actor_tell(a, zt_msg(TAG_NUM, body, free)), ZT_EFULL);
    free(body); /* still ours */
    zt_actor_stats_t st;
    zt_actor_stats(a, &st);
    assert_int_equal(st.depth, 4);
    passes(fx->r, 2);
    assert_int_equal(c.handled, 4);
    assert_int_equal(zt_actor_tell(a, zt_msg(TAG_NUM, (void *)5, NULL)), 0);
    stop_and_release(&a);
}

/* A blocked producer thread waits for room: the mailbox never holds more than its capacity. */
typedef struct producer {
    zt_actor_t *to; /* Borrowed */
    int n;          /* messages to send */
    int failed;     /* sends that failed */
} producer_t;

static void *
produce(void *arg)
{
    producer_t *p = arg;
    for (intptr_t i = 1; i <= p->n; i++)
        if (zt_actor_tell(p->to, zt_msg(TAG_NUM, (void *)i, NULL)) < 0)
            p->failed++;
    return NULL;
}

static bool
counter_reached(void *arg)
{
    counter_t *c = arg;
    return c->handled >= 2000;
}

static void
test_actor_blocking_policy_bounds_a_fast_producer(void **state)
{
    (void)state;
    zt_reactor_t *r = zt_reactor_new();
    counter_t c = {0};
    zt_actor_spec_t spec = {.receive = count_receive,
                            .arg = &c,
                            .capacity = 8,
                            .policy = ZT_MAILBOX_BLOCK,
                            .block_timeout = 30};
    zt_actor_t *a = NULL;
    assert_int_equal(zt_actor_spawn(r, &spec, &a), 0);
    producer_t p = {.to = a, .n = 2000};
    pthread_t t;
    pthread_create(&t, NULL, produce, &p);
    assert_true(support_run_until(r, counter_reached, &c, 60));
    pthread_join(t, NULL);
    assert_int_equal(p.failed, 0);
    assert_int_equal(c.out_of_order, 0);
    zt_actor_stats_t st;
    zt_actor_stats(a, &st);
    assert_true(st.high_water <= 8);
    stop_and_release(&a);
    zt_reactor_destroy(&r);
}

/* With nobody draining, a blocked sender gives up at its deadline with ZT_EFULL. */
static void
test_actor_blocking_policy_times_out_with_efull(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {0};
    zt_actor_spec_t spec = {.receive = count_receive,
                            .arg = &c,
                            .capacity = 2,
                            .policy = ZT_MAILBOX_BLOCK,
                            .block_timeout = 0.05};
    zt_actor_t *a = NULL;
    assert_int_equal(zt_actor_spawn(fx->r, &spec, &a), 0);
    producer_t p = {.to = a, .n = 3};
    pthread_t t;
    pthread_create(&t, NULL, produce, &p);
    pthread_join(t, NULL);
    assert_int_equal(p.failed, 1);
    /* the reactor thread itself never blocks: it gets ZT_EFULL at once */
    assert_int_equal(zt_actor_tell(a, zt_msg(TAG_NUM, NULL, NULL)), ZT_EFULL);
    passes(fx->r, 3);
    assert_int_equal(c.handled, 2);
    stop_and_release(&a);
}

static void
test_actor_stop_answers_mailbox_and_fires_monitor(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {0};
    zt_actor_t *a = spawn_counter(fx->r, &c, 0, 0);
    uint64_t dead = zt_actor_dead_letters();
    zt_actor_tell(a, zt_msg(TAG_STOP, NULL, NULL));
    zt_actor_tell(a, zt_msg(TAG_NUM, strdup("left"), free)); /* freed as a dead letter */
    zt_actor_tell(a, zt_msg(TAG_NUM, NULL, NULL));
    support_capture_t asked = {0}, mon = {0};
    zt_deferred_t *d = zt_actor_ask(fx->r, a, zt_msg(TAG_GET, NULL, NULL), 0);
    zt_deferred_add_both(d, support_capture, &asked);
    zt_deferred_t *m = zt_actor_monitor(a);
    zt_deferred_add_both(m, support_capture, &mon);
    passes(fx->r, 2);
    assert_int_equal(c.handled, 1);
    assert_int_equal(c.stopped, 1);
    assert_int_equal(zt_actor_dead_letters(), dead + 2);
    assert_true(zt_is_err(asked.result));
    assert_non_null(zt_result_trap(&asked.result, ZT_ACTOR_STOPPED_ERROR));
    assert_int_equal(mon.calls, 1);
    assert_false(zt_is_err(mon.result));
    zt_actor_stats_t st;
    zt_actor_stats(a, &st);
    assert_int_equal(st.dead_letters, 2);
    /* a dead reference: sends fail, nothing is touched */
    assert_int_equal(zt_actor_tell(a, zt_msg(TAG_NUM, NULL, NULL)), ZT_ESHUTDOWN);
    assert_int_equal(zt_actor_stop(a), ZT_ESHUTDOWN);
    support_capture_t late = {0};
    zt_deferred_t *m2 = zt_actor_monitor(a); /* fires at once for an ended actor */
    zt_deferred_add_both(m2, support_capture, &late);
    assert_int_equal(late.calls, 1);
    support_capture_release(&asked);
    support_capture_release(&mon);
    support_capture_release(&late);
    zt_deferred_unref(&d);
    zt_deferred_unref(&m);
    zt_deferred_unref(&m2);
    stop_and_release(&a);
}

/* A reference held past its reactor's destroy still answers: ZT_ESHUTDOWN. */
static void
test_actor_reference_outlives_its_reactor(void **state)
{
    (void)state;
    zt_reactor_t *r = zt_reactor_new();
    counter_t c = {0};
    zt_actor_t *a = spawn_counter(r, &c, 0, 0);
    zt_actor_tell(a, zt_msg(TAG_NUM, strdup("never handled"), free));
    zt_reactor_destroy(&r);
    assert_int_equal(c.stopped, 1);
    assert_false(zt_actor_is_alive(a));
    assert_int_equal(zt_actor_tell(a, zt_msg(TAG_NUM, NULL, NULL)), ZT_ESHUTDOWN);
    stop_and_release(&a);
}

static void
test_actor_names_register_lookup_and_go_with_the_actor(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {0};
    zt_actor_t *a = spawn_counter(fx->r, &c, 0, 0);
    assert_int_equal(zt_actor_register(a, "prices"), 0);
    assert_int_equal(zt_actor_register(a, "other"), ZT_EALREADY);
    assert_int_equal(zt_actor_register(a, "prices"), ZT_EALREADY);
    zt_actor_t *found = zt_actor_whereis("prices");
    assert_ptr_equal(found, a);
    zt_actor_unref(&found);
    assert_null(zt_actor_whereis("nobody"));
    zt_actor_stop(a);
    assert_null(zt_actor_whereis("prices"));
    assert_int_equal(zt_actor_unregister("prices"), ZT_ENOTFOUND);
    assert_int_equal(zt_actor_register(a, "prices"), ZT_ESHUTDOWN);
    stop_and_release(&a);
}

static void
count_visit(zt_actor_t *actor, void *arg)
{
    (void)actor;
    (*(size_t *)arg)++;
}

static zt_result_t
noop_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)state, (void)msg;
    return zt_ok_none();
}

/* 100,000 actors spawned, listed and stopped: ASan finds nothing left. */
static void
test_actor_spawn_and_stop_many_leaves_nothing(void **state)
{
    fixture_t *fx = *state;
    enum { N = 100000 };
    zt_actor_t **refs = malloc(N * sizeof *refs);
    zt_actor_spec_t spec = {.receive = noop_receive};
    for (int i = 0; i < N; i++)
        assert_int_equal(zt_actor_spawn(fx->r, &spec, &refs[i]), 0);
    size_t seen = 0;
    assert_int_equal(zt_actor_foreach(fx->r, count_visit, &seen), N);
    assert_int_equal(seen, N);
    for (int i = 0; i < N; i++) {
        zt_actor_tell(refs[i], zt_msg(0, NULL, NULL));
        assert_int_equal(zt_actor_stop(refs[i]), 0);
        zt_actor_unref(&refs[i]);
    }
    assert_int_equal(zt_actor_foreach(fx->r, count_visit, &seen), 0);
    /* and actors with no reference at all end with their reactor */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(zt_actor_spawn(fx->r, &spec, NULL), 0);
    free(refs);
}

/* A handler returns a worker-pool job's Deferred: the actor waits for it, then replies. */
static zt_result_t
slow_work(void *arg)
{
    return zt_ok_int((intptr_t)arg * 2);
}

static zt_result_t
pool_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)state;
    return zt_wait_for(zt_defer_to_thread(zt_actor_reactor(self), slow_work, msg->body));
}

typedef struct pool_case {
    zt_reactor_t *r;       /* the reactor, run for real (the pool starts with run) */
    zt_actor_t *a;         /* the actor */
    zt_deferred_t *d;      /* Owned: the ask */
    support_capture_t got; /* the reply */
} pool_case_t;

static zt_result_t
pool_done(zt_result_t result, void *arg)
{
    pool_case_t *pc = arg;
    result = support_capture(result, &pc->got);
    zt_reactor_stop(pc->r);
    return result;
}

static void
pool_body(void *arg)
{
    pool_case_t *pc = arg;
    zt_actor_spec_t spec = {.receive = pool_receive};
    assert_int_equal(zt_actor_spawn(pc->r, &spec, &pc->a), 0);
    pc->d = zt_actor_ask(pc->r, pc->a, zt_msg(0, (void *)21, NULL), 0);
    zt_deferred_add_both(pc->d, pool_done, pc);
}

static void
test_actor_handler_waits_for_pool_job_then_replies(void **state)
{
    (void)state;
    pool_case_t pc = {.r = zt_reactor_new()};
    assert_true(support_run_with_deadline(pc.r, 30, pool_body, &pc, NULL));
    assert_int_equal(pc.got.calls, 1);
    assert_int_equal(zt_result_int(pc.got.result), 42);
    support_capture_release(&pc.got);
    zt_deferred_unref(&pc.d);
    stop_and_release(&pc.a);
    zt_reactor_destroy(&pc.r);
}

/* Two producer threads: each one's messages keep their order, and the messages queued while the
 * reactor was not looking travel in one mailbox call. */
typedef struct two_senders {
    intptr_t next[2]; /* the next number expected from each sender */
    int handled;      /* messages handled */
    int out_of_order; /* messages out of their sender's order */
} two_senders_t;

typedef struct sender_arg {
    zt_actor_t *to; /* Borrowed */
    intptr_t id;    /* 0 or 1 */
    int failed;     /* sends that failed */
} sender_arg_t;

static zt_result_t
two_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self;
    two_senders_t *t = state;
    intptr_t v = (intptr_t)msg->body, id = v >> 20, seq = v & 0xfffff;
    if (seq != t->next[id])
        t->out_of_order++;
    t->next[id] = seq + 1;
    t->handled++;
    return zt_ok_none();
}

static void *
send_sequence(void *arg)
{
    sender_arg_t *sa = arg;
    for (intptr_t i = 0; i < 1000; i++)
        if (zt_actor_tell(sa->to, zt_msg(TAG_NUM, (void *)(sa->id << 20 | i), NULL)) < 0)
            sa->failed++;
    return NULL;
}

static bool
two_done(void *arg)
{
    return ((two_senders_t *)arg)->handled >= 2000;
}

static void
test_actor_two_producer_threads_keep_order_in_one_batch(void **state)
{
    (void)state;
    zt_reactor_t *r = zt_reactor_new();
    two_senders_t t = {0};
    zt_actor_t *a = NULL;
    zt_actor_spec_t spec = {.receive = two_receive, .arg = &t};
    assert_int_equal(zt_actor_spawn(r, &spec, &a), 0);
    sender_arg_t s0 = {.to = a, .id = 0}, s1 = {.to = a, .id = 1};
    pthread_t t0, t1;
    pthread_create(&t0, NULL, send_sequence, &s0);
    pthread_create(&t1, NULL, send_sequence, &s1);
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    assert_int_equal(s0.failed + s1.failed, 0);
    assert_true(support_run_until(r, two_done, &t, 60));
    assert_int_equal(t.out_of_order, 0);
    zt_reactor_stats_t st;
    zt_reactor_stats(r, &st);
    assert_int_equal(st.mailbox_received, 1); /* 2,000 messages, one call */
    stop_and_release(&a);
    zt_reactor_destroy(&r);
}

/* --- two reactors on two threads ------------------------------------------------------------ */

typedef struct remote {
    zt_reactor_t *r2;     /* the second reactor, run by its thread */
    zt_actor_t *server;   /* on r2: a counter */
    counter_t server_c;   /* its state (touched on r2's thread only) */
    support_gate_t ready; /* r2's thread has spawned the server */
    int replies;          /* asks answered (r1's thread) */
    int wrong;            /* replies with the wrong value */
    int stopped_replies;  /* asks failed because the server stopped */
} remote_t;

static void
spawn_server(void *arg)
{
    remote_t *rm = arg;
    rm->server = spawn_counter(rm->r2, &rm->server_c, 0, 0);
    support_gate_open(&rm->ready);
}

static void *
run_r2(void *arg)
{
    remote_t *rm = arg;
    rm->r2 = zt_reactor_new();
    zt_reactor_call_when_running(rm->r2, spawn_server, rm, NULL);
    zt_reactor_run(rm->r2);
    return NULL;
}

static zt_result_t
on_reply(zt_result_t result, void *arg)
{
    remote_t *rm = arg;
    if (zt_is_err(result)) {
        if (zt_result_trap(&result, ZT_ACTOR_STOPPED_ERROR))
            rm->stopped_replies++;
        return result;
    }
    rm->replies++;
    if (zt_result_int(result) != 500)
        rm->wrong++;
    return zt_ok_none();
}

static bool
replies_in(void *arg)
{
    remote_t *rm = arg;
    return rm->replies + rm->stopped_replies >= 200;
}

static bool
server_ended(void *arg)
{
    return !zt_actor_is_alive(arg);
}

static void
test_actor_cross_reactor_tell_and_ask_between_threads(void **state)
{
    (void)state;
    remote_t rm = {0};
    support_gate_init(&rm.ready, 30);
    zt_reactor_t *r1 = zt_reactor_new();
    pthread_t t;
    pthread_create(&t, NULL, run_r2, &rm);
    support_gate_wait(&rm.ready);
    assert_non_null(rm.server);
    for (intptr_t i = 1; i <= 500; i++) /* from r1's thread: travels through r2's inbox */
        assert_int_equal(zt_actor_tell(rm.server, zt_msg(TAG_NUM, (void *)i, NULL)), 0);
    zt_deferred_t *asks[200];
    for (int i = 0; i < 200; i++) {
        asks[i] = zt_actor_ask(r1, rm.server, zt_msg(TAG_GET, NULL, NULL), 30);
        zt_deferred_add_both(asks[i], on_reply, &rm);
    }
    assert_true(support_run_until(r1, replies_in, &rm, 60));
    assert_int_equal(rm.replies, 200);
    assert_int_equal(rm.wrong, 0); /* every ask came after the 500 tells from the same thread */
    assert_int_equal(zt_actor_stop(rm.server), 0); /* from another thread: travels as a message */
    assert_true(support_run_until(r1, server_ended, rm.server, 60));
    assert_int_equal(zt_actor_tell(rm.server, zt_msg(TAG_NUM, NULL, NULL)), ZT_ESHUTDOWN);
    zt_reactor_stop(rm.r2);
    pthread_join(t, NULL);
    assert_int_equal(rm.server_c.out_of_order, 0);
    for (int i = 0; i < 200; i++)
        zt_deferred_unref(&asks[i]);
    zt_reactor_destroy(&rm.r2);
    assert_int_equal(zt_actor_tell(rm.server, zt_msg(TAG_NUM, NULL, NULL)), ZT_ESHUTDOWN);
    stop_and_release(&rm.server);
    zt_reactor_destroy(&r1);
    support_gate_fini(&rm.ready);
}

/* An ask whose asker's reactor is destroyed before the reply: the reply is dropped, counted. */
static void
test_actor_reply_to_destroyed_asker_is_dropped(void **state)
{
    fixture_t *fx = *state;
    counter_t c = {0};
    zt_actor_t *a = spawn_counter(fx->r, &c, 0, 0);
    zt_reactor_t *asker = zt_reactor_new();
    zt_deferred_t *d = zt_actor_ask(asker, a, zt_msg(TAG_LATER, NULL, NULL), 0);
    passes(fx->r, 2);
    assert_non_null(c.later);
    support_capture_t got = {0};
    zt_deferred_add_both(d, support_capture, &got);
    zt_deferred_unref(&d);
    zt_reactor_destroy(&asker); /* fails the pending ask: the asker's reactor went */
    assert_int_equal(got.calls, 1);
    assert_non_null(zt_result_trap(&got.result, ZT_ACTOR_STOPPED_ERROR));
    uint64_t dropped = zt_actor_dropped_replies();
    zt_reply_send(&c.later, zt_ok(strdup("nobody"), free));
    assert_int_equal(zt_actor_dropped_replies(), dropped + 1);
    support_capture_release(&got);
    stop_and_release(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_actor_tell_from_one_sender_keeps_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor_flooding_actor_gets_one_budget_per_turn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor_coroutine_handler_holds_next_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor_stop_during_await_waits_for_the_handler, setup,
                                        teardown),
        cmocka_unit_test(test_actor_destroy_with_suspended_handler_unwinds_it),
        cmocka_unit_test_setup_teardown(test_actor_ask_replies_with_value_and_crash_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor_ask_timeout_then_late_reply_is_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor_reply_error_keeps_actor_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_full_mailbox_fails_send_and_caller_keeps_body,
                                        setup, teardown),
        cmocka_unit_test(test_actor_blocking_policy_bounds_a_fast_producer),
        cmocka_unit_test_setup_teardown(test_actor_blocking_policy_times_out_with_efull, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor_stop_answers_mailbox_and_fires_monitor, setup,
                                        teardown),
        cmocka_unit_test(test_actor_reference_outlives_its_reactor),
        cmocka_unit_test_setup_teardown(test_actor_names_register_lookup_and_go_with_the_actor,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_spawn_and_stop_many_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test(test_actor_handler_waits_for_pool_job_then_replies),
        cmocka_unit_test(test_actor_two_producer_threads_keep_order_in_one_batch),
        cmocka_unit_test(test_actor_cross_reactor_tell_and_ask_between_threads),
        cmocka_unit_test_setup_teardown(test_actor_reply_to_destroyed_asker_is_dropped, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
