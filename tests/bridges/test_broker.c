/*  tests/bridges/test_broker.c - the Majordomo broker in a reactor: routing, queues, MMI,
 * malformed input, heartbeat expiry and CURVE, with workers on threads of this process and raw
 * ZeroMQ peers playing broken clients and workers.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bridges/mdp_harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define HB 0.05 /* the heartbeat interval the tests use, seconds */

typedef struct fixture {
    zt_reactor_t *reactor;   /* Owned */
    zt_broker_t *broker;     /* Owned */
    zt_remote_t *client;     /* Owned */
    void *ctx;               /* a libzmq context for raw peers; Owned */
    thread_worker_t tw[3];   /* workers on threads */
    pthread_mutex_t lock;    /* guards gate_open */
    pthread_cond_t cond;     /* signalled when the gate opens */
    bool gate_open;          /* whether gated handlers may return */
    double interval;         /* the heartbeat interval of the broker and the workers */
    zt_broker_t *broker2;    /* a second broker a test makes; Owned (teardown destroys it) */
    zt_remote_t *client2;    /* a second client a test makes; Owned (ditto) */
    atomic_bool worker_done; /* a worker run by worker_rc_main returned */
    atomic_int worker_rc;    /* what it returned */
    void *peers[150];        /* raw peers a test keeps open; teardown closes them (a failed
                                assertion skips the test's own cleanup, and zmq_ctx_term would
                                wait for them forever) */
} fixture_t;

static int
setup_with(void **state, double interval)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->reactor = zt_reactor_new();
    fx->broker = zt_broker_new(fx->reactor);
    fx->interval = interval;
    zt_broker_set_heartbeat(fx->broker, interval, 3);
    if (zt_broker_bind(fx->broker, "tcp://127.0.0.1:0") != 0)
        return -1;
    fx->client = zt_remote_new(fx->reactor);
    zt_remote_connect(fx->client, zt_broker_endpoint(fx->broker));
    fx->ctx = zmq_ctx_new();
    pthread_mutex_init(&fx->lock, NULL);
    pthread_cond_init(&fx->cond, NULL);
    *state = fx;
    return 0;
}

/* Let every gated handler go on. */
static void
open_gate(fixture_t *fx)
{
    pthread_mutex_lock(&fx->lock);
    fx->gate_open = true;
    pthread_cond_broadcast(&fx->cond);
    pthread_mutex_unlock(&fx->lock);
}

static int
setup(void **state)
{
    return setup_with(state, HB);
}

/* For raw workers that never heartbeat and must stay registered for the whole test. */
static int
setup_patient(void **state)
{
    return setup_with(state, 5.0);
}

/* For raw workers that fall silent: long enough that the request reaches them first. */
static int
setup_slow(void **state)
{
    return setup_with(state, 0.25);
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    open_gate(fx);
    for (size_t i = 0; i < sizeof fx->tw / sizeof fx->tw[0]; i++)
        thread_worker_stop(&fx->tw[i]);
    zt_remote_destroy(&fx->client);
    zt_remote_destroy(&fx->client2);
    zt_broker_destroy(&fx->broker);
    zt_broker_destroy(&fx->broker2);
    zt_reactor_destroy(&fx->reactor);
    for (size_t i = 0; i < sizeof fx->peers / sizeof fx->peers[0]; i++)
        if (fx->peers[i])
            zmq_close(fx->peers[i]);
    zmq_ctx_term(fx->ctx);
    pthread_cond_destroy(&fx->cond);
    pthread_mutex_destroy(&fx->lock);
    free(fx);
    return 0;
}

/* A handler that waits for the fixture's gate, then echoes. */
static zt_frames_t *
gated_handler(const zt_frames_t *request, void *arg)
{
    fixture_t *fx = arg;
    pthread_mutex_lock(&fx->lock);
    while (!fx->gate_open)
        pthread_cond_wait(&fx->cond, &fx->lock);
    pthread_mutex_unlock(&fx->lock);
    return zt_frames_dup(request);
}

/* A handler that answers with its own name (arg). */
static zt_frames_t *
name_handler(const zt_frames_t *request, void *arg)
{
    (void)request;
    zt_frames_t *reply = zt_frames_new();
    zt_frames_add_str(reply, arg);
    return reply;
}

static void
start_echo(fixture_t *fx, int i, const char *service)
{
    assert_int_equal(thread_worker_start(&fx->tw[i], zt_broker_endpoint(fx->broker), service,
                                         echo_handler, NULL, fx->interval),
                     0);
}

/* A raw DEALER connected to the broker, for broken peers. */
static void *
raw_peer(fixture_t *fx)
{
    void *s = zmq_socket(fx->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(s, zt_broker_endpoint(fx->broker)), 0);
    return s;
}

static void
raw_send(void *s, int count, ...)
{
    va_list ap;
    va_start(ap, count);
    for (int i = 0; i < count; i++) {
        const char *frame = va_arg(ap, const char *);
        size_t size = va_arg(ap, size_t);
        zmq_send(s, frame, size, i + 1 < count ? ZMQ_SNDMORE : 0);
    }
    va_end(ap);
}

#define F(s) (s), (sizeof(s) - 1) /* a string literal as (data, size) for raw_send */

/* Iterate until the broker's drop counter reaches n. */
static bool
run_until_drops(fixture_t *fx, uint64_t n)
{
    double deadline = zt_time_now() + 5;
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    while (st.drops < n && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.02);
        zt_broker_stats(fx->broker, &st);
    }
    return st.drops == n;
}

/* ------------------------------------------------------------------------------------------- */

static void
test_broker_request_to_worker_replies_with_its_frames(void **state)
{
    fixture_t *fx = *state;
    start_echo(fx, 0, "echo");
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t o = {0};
    zt_frames_t *req = zt_frames_new();
    zt_frames_add_str(req, "hello");
    zt_frames_add(req, "", 0);
    zt_frames_add_str(req, "world");
    zt_deferred_t *d = zt_defer_to_remote(fx->reactor, fx->client, "echo", &req, NULL);
    assert_non_null(d);
    assert_null(req); /* ownership moved */
    zt_deferred_add_both(d, outcome_record, &o);
    zt_deferred_unref(&d);
    assert_true(run_until(fx->reactor, &o.done, 5));
    assert_int_equal(o.code, 0);
    assert_int_equal(zt_frames_count(o.reply), 3);
    assert_true(zt_frames_equal_str(o.reply, 0, "hello"));
    assert_int_equal(zt_frames_size(o.reply, 1), 0);
    assert_true(zt_frames_equal_str(o.reply, 2, "world"));
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.replies, 1);
    assert_int_equal(st.drops, 0);
    zt_frames_destroy(&o.reply);
}

static void
test_broker_inproc_endpoint_serves_client_in_same_process(void **state)
{
    fixture_t *fx = *state;
    char tcp[256];
    snprintf(tcp, sizeof tcp, "%s", zt_broker_endpoint(fx->broker));
    assert_int_equal(zt_broker_bind(fx->broker, "inproc://test-broker"), 0);
    assert_string_equal(zt_broker_endpoint(fx->broker), "inproc://test-broker");
    assert_int_equal(thread_worker_start(&fx->tw[0], tcp, "echo", echo_handler, NULL, fx->interval),
                     0);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    zt_remote_t *local = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_connect(local, "inproc://test-broker"), 0);
    outcome_t o = {0};
    outcome_send(fx->reactor, local, "echo", "next door", NULL, &o);
    assert_true(run_until(fx->reactor, &o.done, 5));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "next door"));
    zt_remote_stats_t rs;
    zt_remote_stats(local, &rs);
    assert_true(rs.connected);
    zt_frames_destroy(&o.reply);
    zt_remote_destroy(&local);
}

static void
test_broker_linked_client_round_trips_without_a_socket(void **state)
{
    fixture_t *fx = *state;
    start_echo(fx, 0, "echo");
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    zt_remote_t *local = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_connect_broker(local, fx->broker), 0);
    outcome_t o[3] = {{0}};
    const char *bodies[3] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(outcome_send(fx->reactor, local, "echo", bodies[i], NULL, &o[i]), 0);
    for (int i = 0; i < 3; i++) {
        assert_true(run_until(fx->reactor, &o[i].done, 5));
        assert_int_equal(o[i].code, 0);
        assert_int_equal(o[i].fired, 1);
        assert_true(zt_frames_equal_str(o[i].reply, 0, bodies[i]));
        zt_frames_destroy(&o[i].reply);
    }
    /* The broker's own answers reach it too: an unknown service and MMI. */
    outcome_t unknown = {0}, mmi = {0};
    assert_int_equal(outcome_send(fx->reactor, local, "nobody", "x", NULL, &unknown), 0);
    assert_int_equal(outcome_send(fx->reactor, local, "mmi.service", "echo", NULL, &mmi), 0);
    assert_true(run_until(fx->reactor, &unknown.done, 5));
    assert_true(run_until(fx->reactor, &mmi.done, 5));
    assert_int_equal(unknown.code, ZT_ENOTFOUND);
    assert_int_equal(mmi.code, 0);
    assert_true(zt_frames_equal_str(mmi.reply, 0, "200"));
    zt_frames_destroy(&mmi.reply);
    zt_remote_stats_t rs;
    zt_remote_stats(local, &rs);
    assert_true(rs.connected);
    assert_int_equal(rs.replies, 4);
    assert_int_equal(rs.failures, 1);
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.replies, 4); /* three from the worker, the mmi answer */
    zt_remote_destroy(&local);
}

static void
test_broker_linked_client_refuses_second_connect_and_other_reactor(void **state)
{
    fixture_t *fx = *state;
    zt_remote_t *local = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_connect_broker(local, NULL), ZT_EINVAL);
    assert_int_equal(zt_remote_connect_broker(local, fx->broker), 0);
    assert_int_equal(zt_remote_connect_broker(local, fx->broker), ZT_ESTATE);
    assert_int_equal(zt_remote_connect(local, "inproc://x"), ZT_ESTATE);
    zt_reactor_t *other = zt_reactor_new();
    zt_remote_t *stranger = zt_remote_new(other);
    assert_int_equal(zt_remote_connect_broker(stranger, fx->broker), ZT_EINVAL);
    zt_remote_destroy(&stranger);
    zt_reactor_destroy(&other);
    zt_remote_destroy(&local);
}

/* A worker of "slow" that holds each request until the gate opens, and a client linked to the
 * broker in its reactor (Owned by the caller). */
static zt_remote_t *
linked_client_and_gated_worker(fixture_t *fx)
{
    assert_int_equal(thread_worker_start(&fx->tw[0], zt_broker_endpoint(fx->broker), "slow",
                                         gated_handler, fx, fx->interval),
                     0);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    zt_remote_t *local = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_connect_broker(local, fx->broker), 0);
    return local;
}

static void
test_broker_destroyed_first_fails_linked_calls_with_connection_lost(void **state)
{
    fixture_t *fx = *state;
    zt_remote_t *local = linked_client_and_gated_worker(fx);
    outcome_t held = {0}, queued = {0};
    zt_remote_options_t retry = {.safe_to_retry = true};
    assert_int_equal(outcome_send(fx->reactor, local, "slow", "held", NULL, &held), 0);
    assert_int_equal(outcome_send(fx->reactor, local, "slow", "queued", &retry, &queued), 0);
    zt_broker_stats_t st = {0};
    double deadline = zt_time_now() + 5;
    while (st.queued != 1 && zt_time_now() < deadline) { /* one at the worker, one queued */
        zt_reactor_iterate(fx->reactor, 0.02);
        zt_broker_stats(fx->broker, &st);
    }
    assert_int_equal(st.queued, 1);
    zt_broker_destroy(&fx->broker);
    assert_true(run_until(fx->reactor, &held.done, 5));
    assert_true(run_until(fx->reactor, &queued.done, 5));
    assert_int_equal(held.fired, 1);
    assert_int_equal(queued.fired, 1);
    assert_int_equal(held.code, ZT_ECONNLOST);
    assert_int_equal(queued.code, ZT_ECONNLOST); /* safe to retry, but there is no broker */
    zt_remote_stats_t rs;
    zt_remote_stats(local, &rs);
    assert_false(rs.connected);
    outcome_t after = {0};
    assert_int_equal(outcome_send(fx->reactor, local, "slow", "after", NULL, &after), 0);
    assert_true(after.done); /* at once */
    assert_int_equal(after.code, ZT_ECONNLOST);
    zt_remote_destroy(&local);
}

static void
test_broker_linked_client_destroyed_first_its_reply_is_dropped(void **state)
{
    fixture_t *fx = *state;
    zt_remote_t *local = linked_client_and_gated_worker(fx);
    outcome_t gone = {0};
    assert_int_equal(outcome_send(fx->reactor, local, "slow", "orphan", NULL, &gone), 0);
    zt_broker_stats_t st = {0};
    double deadline = zt_time_now() + 5;
    while (st.requests != 1 && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.02);
        zt_broker_stats(fx->broker, &st);
    }
    assert_int_equal(st.requests, 1);
    zt_remote_destroy(&local);
    assert_int_equal(gone.code, ZT_ECANCELLED);
    open_gate(fx);
    deadline = zt_time_now() + 5;
    while (st.replies != 1 && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.02);
        zt_broker_stats(fx->broker, &st);
    }
    assert_int_equal(st.replies, 1); /* the worker answered; the broker dropped it, nothing broke */
    outcome_t still = {0};
    assert_int_equal(outcome_send(fx->reactor, fx->client, "slow", "still serving", NULL, &still),
                     0);
    assert_true(run_until(fx->reactor, &still.done, 5));
    assert_int_equal(still.code, 0);
    zt_frames_destroy(&still.reply);
}

static void
test_broker_unknown_service_fails_not_found(void **state)
{
    fixture_t *fx = *state;
    outcome_t o = {0};
    assert_int_equal(outcome_send(fx->reactor, fx->client, "nobody", "x", NULL, &o), 0);
    assert_true(run_until(fx->reactor, &o.done, 5));
    assert_int_equal(o.code, ZT_ENOTFOUND);
    assert_non_null(strstr(o.message, "nobody"));
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.unknown_service, 1);
}

static void
test_broker_unknown_service_within_grace_waits_for_its_worker(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_broker_set_unknown_grace(fx->broker, 60), 0);
    outcome_t o = {0};
    outcome_send(fx->reactor, fx->client, "late", "waited", NULL, &o);
    bool never = false;
    run_until(fx->reactor, &never, 0.2); /* the request reaches the broker and waits */
    assert_false(o.done);
    start_echo(fx, 0, "late");
    assert_true(run_until(fx->reactor, &o.done, 5));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "waited"));
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.unknown_service, 0);
    zt_frames_destroy(&o.reply);
}

static void
test_broker_mmi_service_answers_200_404_501(void **state)
{
    fixture_t *fx = *state;
    start_echo(fx, 0, "echo");
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t known = {0}, unknown = {0}, unimplemented = {0};
    outcome_send(fx->reactor, fx->client, "mmi.service", "echo", NULL, &known);
    outcome_send(fx->reactor, fx->client, "mmi.service", "nobody", NULL, &unknown);
    outcome_send(fx->reactor, fx->client, "mmi.other", "echo", NULL, &unimplemented);
    assert_true(run_until(fx->reactor, &unimplemented.done, 5));
    assert_true(run_until(fx->reactor, &known.done, 5));
    assert_true(run_until(fx->reactor, &unknown.done, 5));
    assert_true(zt_frames_equal_str(known.reply, 0, "200"));
    assert_true(zt_frames_equal_str(unknown.reply, 0, "404"));
    assert_true(zt_frames_equal_str(unimplemented.reply, 0, "501"));
    /* The broker answers them itself: each is a request and a reply in its counters. */
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.replies, 3);
    zt_frames_destroy(&known.reply);
    zt_frames_destroy(&unknown.reply);
    zt_frames_destroy(&unimplemented.reply);
}

static void
test_broker_idle_workers_least_recently_used_first(void **state)
{
    fixture_t *fx = *state;
    const char *endpoint = zt_broker_endpoint(fx->broker);
    assert_int_equal(thread_worker_start(&fx->tw[0], endpoint, "who", name_handler, "a", HB), 0);
    assert_int_equal(thread_worker_start(&fx->tw[1], endpoint, "who", name_handler, "b", HB), 0);
    assert_true(run_until_workers(fx->reactor, fx->broker, 2, 5));
    /* One at a time: the worker that just answered goes to the back of the idle list. */
    char seen[6] = "";
    for (int i = 0; i < 6; i++) {
        outcome_t o = {0};
        outcome_send(fx->reactor, fx->client, "who", NULL, NULL, &o);
        assert_true(run_until(fx->reactor, &o.done, 5));
        assert_int_equal(o.code, 0);
        seen[i] = *(const char *)zt_frames_data(o.reply, 0);
        zt_frames_destroy(&o.reply);
    }
    for (int i = 1; i < 6; i++)
        assert_true(seen[i] != seen[i - 1]);
}

static void
test_broker_queue_timeout_answers_504_and_leaves_held_work_alone(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_broker_set_queue_timeout(fx->broker, -1), ZT_EINVAL);
    assert_int_equal(zt_broker_set_queue_timeout(fx->broker, 0.05), 0);
    assert_int_equal(thread_worker_start(&fx->tw[0], zt_broker_endpoint(fx->broker), "slow",
                                         gated_handler, fx, HB),
                     0);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t busy = {0}, queued = {0};
    outcome_send(fx->reactor, fx->client, "slow", "1", NULL, &busy);
    outcome_send(fx->reactor, fx->client, "slow", "2", NULL, &queued);
    /* The worker holds "1" behind its gate; "2" waits in the queue until the timeout ends it. */
    assert_true(run_until(fx->reactor, &queued.done, 5));
    assert_int_equal(queued.code, ZT_ETIMEDOUT);
    assert_non_null(strstr(queued.message, "queue of service 'slow'"));
    assert_false(busy.done);
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.queue_expired, 1);
    assert_int_equal(st.queued, 0);
    open_gate(fx);
    assert_true(run_until(fx->reactor, &busy.done, 5));
    assert_int_equal(busy.code, 0);
    assert_true(zt_frames_equal_str(busy.reply, 0, "1"));
    /* A request a worker is free for is served, timeout or not. */
    outcome_t next = {0};
    outcome_send(fx->reactor, fx->client, "slow", "3", NULL, &next);
    assert_true(run_until(fx->reactor, &next.done, 5));
    assert_int_equal(next.code, 0);
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.queue_expired, 1);
    zt_frames_destroy(&busy.reply);
    zt_frames_destroy(&next.reply);
}

static void
test_broker_full_queue_fails_queue_full(void **state)
{
    fixture_t *fx = *state;
    zt_broker_set_queue_limit(fx->broker, 1);
    assert_int_equal(thread_worker_start(&fx->tw[0], zt_broker_endpoint(fx->broker), "slow",
                                         gated_handler, fx, HB),
                     0);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t busy = {0}, queued = {0}, refused = {0};
    outcome_send(fx->reactor, fx->client, "slow", "1", NULL, &busy);
    outcome_send(fx->reactor, fx->client, "slow", "2", NULL, &queued);
    outcome_send(fx->reactor, fx->client, "slow", "3", NULL, &refused);
    assert_true(run_until(fx->reactor, &refused.done, 5));
    assert_int_equal(refused.code, ZT_EFULL);
    assert_non_null(strstr(refused.message, "full"));
    assert_false(busy.done);
    open_gate(fx);
    assert_true(run_until(fx->reactor, &queued.done, 5));
    assert_true(busy.done);
    assert_int_equal(busy.code, 0);
    assert_int_equal(queued.code, 0);
    assert_true(zt_frames_equal_str(queued.reply, 0, "2"));
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.queue_full, 1);
    zt_frames_destroy(&busy.reply);
    zt_frames_destroy(&queued.reply);
}

static void
test_broker_long_handler_keeps_heartbeating_worker_not_expired(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(thread_worker_start(&fx->tw[0], zt_broker_endpoint(fx->broker), "slow",
                                         gated_handler, fx, fx->interval),
                     0);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t o = {0};
    outcome_send(fx->reactor, fx->client, "slow", "patience", NULL, &o);
    /* The handler holds the request for ten times the broker's liveness window (3 x 50 ms). */
    bool never = false;
    run_until(fx->reactor, &never, 1.5);
    assert_false(o.done);
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.expiries, 0);
    assert_int_equal(st.workers, 1);
    open_gate(fx);
    assert_true(run_until(fx->reactor, &o.done, 5));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "patience"));
    zt_frames_destroy(&o.reply);
}

static void
test_broker_malformed_frames_dropped_counted_and_serving(void **state)
{
    fixture_t *fx = *state;
    zt_broker_set_max_message(fx->broker, 1024);
    start_echo(fx, 0, "echo");
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    void *peer = fx->peers[2] = raw_peer(fx);
    raw_send(peer, 3, F(""), F("MDPX01"), F("echo"));             /* wrong header */
    raw_send(peer, 2, F(""), F("MDPC01"));                        /* missing service */
    raw_send(peer, 1, F("no delimiter"));                         /* no empty frame */
    raw_send(peer, 3, F(""), F("MDPW01"), F("\x09"));             /* unknown command */
    raw_send(peer, 4, F(""), F("MDPW01"), F("\x04"), F("extra")); /* extra frame */
    raw_send(peer, 3, F(""), F("MDPW01"), F("\x03\x03"));         /* command of two bytes */
    static char big[2048];
    memset(big, 'x', sizeof big);
    raw_send(peer, 4, F(""), F("MDPC01"), F("echo"), big, sizeof big); /* oversize */
    assert_true(run_until_drops(fx, 7));
    outcome_t o = {0};
    outcome_send(fx->reactor, fx->client, "echo", "still here", NULL, &o);
    assert_true(run_until(fx->reactor, &o.done, 5));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "still here"));
    zt_frames_destroy(&o.reply);
}

static void
test_broker_worker_registering_mmi_service_is_refused(void **state)
{
    fixture_t *fx = *state;
    void *peer = raw_peer(fx);
    raw_send(peer, 4, F(""), F("MDPW01"), F("\x01"), F("mmi.service"));
    assert_true(run_until_drops(fx, 1));
    char buf[16];
    zmq_pollitem_t item = {peer, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, 5000), 1);
    assert_int_equal(zmq_recv(peer, buf, sizeof buf, 0), 0);
    assert_int_equal(zmq_recv(peer, buf, sizeof buf, 0), 6);
    assert_int_equal(zmq_recv(peer, buf, sizeof buf, 0), 1);
    assert_int_equal(buf[0], 0x05); /* DISCONNECT */
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.workers, 0);
    zmq_close(peer);
}

/* A raw worker that announces itself, takes one request and then falls silent. */
static void *
silent_worker(fixture_t *fx, const char *service)
{
    void *peer = raw_peer(fx);
    raw_send(peer, 4, F(""), F("MDPW01"), F("\x01"), service, strlen(service));
    return peer;
}

/* Echo one request a raw worker holds, if any: [""][MDPW01][REQUEST][envelope...][""][body] back
 * as [""][MDPW01][REPLY][envelope...][""][body]. Returns whether it answered one. */
static bool
raw_worker_echo(void *peer)
{
    zmq_msg_t parts[16];
    int n = 0;
    int more = 1;
    while (more && n < 16) {
        zmq_msg_init(&parts[n]);
        if (zmq_msg_recv(&parts[n], peer, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&parts[n]);
            return false; /* nothing yet (only the first part can be missing) */
        }
        more = zmq_msg_more(&parts[n]);
        n++;
    }
    assert_true(n >= 6);
    assert_int_equal(*(const char *)zmq_msg_data(&parts[2]), 0x02); /* REQUEST */
    zmq_send(peer, "", 0, ZMQ_SNDMORE);
    zmq_send(peer, "MDPW01", 6, ZMQ_SNDMORE);
    zmq_send(peer, "\x03", 1, ZMQ_SNDMORE); /* REPLY */
    for (int i = 3; i < n; i++) {
        zmq_send(peer, zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i]),
                 i + 1 < n ? ZMQ_SNDMORE : 0);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
    return true;
}

static void
test_broker_many_workers_come_and_go_each_still_found(void **state)
{
    fixture_t *fx = *state;
    enum { ALL = 125, LEAVING = 75, STAYING = ALL - LEAVING }; /* 125 of the table's 256 slots */
    void **peers = fx->peers;
    for (int i = 0; i < ALL; i++) {
        /* Named identities: ZeroMQ's own are consecutive numbers, which never collide in a hash
         * table; names do, so removals must repair probe chains for the rest to be found. */
        void *peer = zmq_socket(fx->ctx, ZMQ_DEALER);
        char id[32];
        int linger = 0;
        snprintf(id, sizeof id, "worker-%d", i * 7919);
        zmq_setsockopt(peer, ZMQ_ROUTING_ID, id, strlen(id));
        zmq_setsockopt(peer, ZMQ_LINGER, &linger, sizeof linger);
        assert_int_equal(zmq_connect(peer, zt_broker_endpoint(fx->broker)), 0);
        raw_send(peer, 4, F(""), F("MDPW01"), F("\x01"), F("many"));
        peers[i] = peer;
    }
    assert_true(run_until_workers(fx->reactor, fx->broker, ALL, 10));
    /* Three in five leave, which reshuffles the broker's table of workers. */
    for (int i = 0; i < ALL; i++) {
        if (i % 5 < 3) {
            raw_send(peers[i], 3, F(""), F("MDPW01"), F("\x05")); /* DISCONNECT */
            zmq_close(peers[i]);
            peers[i] = NULL;
        }
    }
    assert_true(run_until_workers(fx->reactor, fx->broker, STAYING, 10));
    /* One request per remaining worker: each reply must come from a worker the broker finds. */
    outcome_t o[STAYING];
    memset(o, 0, sizeof o);
    for (int i = 0; i < STAYING; i++) {
        char body[16];
        snprintf(body, sizeof body, "req %d", i);
        assert_int_equal(outcome_send(fx->reactor, fx->client, "many", body, NULL, &o[i]), 0);
    }
    int answered = 0;
    double deadline = zt_time_now() + 10;
    while (answered < STAYING && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.01);
        for (int i = 0; i < ALL; i++)
            if (peers[i] && raw_worker_echo(peers[i]))
                answered++;
    }
    assert_int_equal(answered, STAYING);
    for (int i = 0; i < STAYING; i++) {
        assert_true(run_until(fx->reactor, &o[i].done, 5));
        assert_int_equal(o[i].code, 0);
        char body[16];
        snprintf(body, sizeof body, "req %d", i);
        assert_true(zt_frames_equal_str(o[i].reply, 0, body));
        zt_frames_destroy(&o[i].reply);
    }
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.drops, 0); /* no reply was taken for one from an unknown worker */
    assert_int_equal(st.replies, STAYING);
    assert_int_equal(st.workers, STAYING);
}

/* Take one REQUEST a raw worker holds, if any: its parts go to parts[] (closed by the caller);
 * returns how many parts, or 0 when nothing was there. */
static int
raw_take(void *peer, zmq_msg_t *parts, int cap)
{
    int n = 0;
    int more = 1;
    while (more && n < cap) {
        zmq_msg_init(&parts[n]);
        if (zmq_msg_recv(&parts[n], peer, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&parts[n]);
            return 0;
        }
        more = zmq_msg_more(&parts[n]);
        n++;
    }
    assert_true(n >= 6);
    assert_int_equal(*(const char *)zmq_msg_data(&parts[2]), 0x02); /* REQUEST */
    return n;
}

/* Answer a REQUEST taken by raw_take with its own body, and close its parts. */
static void
raw_answer(void *peer, zmq_msg_t *parts, int n)
{
    zmq_send(peer, "", 0, ZMQ_SNDMORE);
    zmq_send(peer, "MDPW01", 6, ZMQ_SNDMORE);
    zmq_send(peer, "\x03", 1, ZMQ_SNDMORE); /* REPLY */
    for (int i = 3; i < n; i++)
        zmq_send(peer, zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i]),
                 i + 1 < n ? ZMQ_SNDMORE : 0);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
}

typedef struct taken {
    zmq_msg_t parts[16]; /* one REQUEST as the raw worker read it */
    int n;               /* parts */
} taken_t;

/* Iterate until the raw worker has taken `want` requests in all (into t[]), or 5 s passed. */
static int
raw_take_until(fixture_t *fx, void *peer, taken_t *t, int have, int want)
{
    double deadline = zt_time_now() + 5;
    while (have < want && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.02);
        int n;
        while (have < want && (n = raw_take(peer, t[have].parts, 16)) > 0)
            t[have++].n = n;
    }
    return have;
}

/* A raw worker of "ahead" that asked for prefetch 3, registered with the broker (peer slot 0). */
static void *
raw_prefetch_worker(fixture_t *fx)
{
    void *peer = raw_peer(fx);
    fx->peers[0] = peer;
    raw_send(peer, 5, F(""), F("MDPW01"), F("\x01"), F("ahead"), F("3")); /* READY, prefetch 3 */
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    return peer;
}

/* Send n requests to service, the i-th with body bodies[i] and its outcome in o[i]. */
static void
send_bodies(fixture_t *fx, const char *service, const char *const *bodies, int n, outcome_t *o)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(outcome_send(fx->reactor, fx->client, service, bodies[i], NULL, &o[i]), 0);
}

/* A worker written after the ZeroMQ guide's worker API takes one address frame and then expects
 * the empty delimiter: the broker gives it the client's whole envelope (routing id and request
 * id) as that one frame, and takes it back whole with the reply. */
static void
test_broker_worker_gets_one_address_frame_then_the_delimiter(void **state)
{
    fixture_t *fx = *state;
    void *peer = fx->peers[0] = raw_peer(fx);
    raw_send(peer, 4, F(""), F("MDPW01"), F("\x01"), F("guide"));
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t o = {0};
    assert_int_equal(outcome_send(fx->reactor, fx->client, "guide", "hello", NULL, &o), 0);
    taken_t t = {.n = 0};
    assert_int_equal(raw_take_until(fx, peer, &t, 0, 1), 1);
    /* [""][MDPW01][REQUEST][address][""][body] */
    assert_int_equal(t.n, 6);
    assert_true(zmq_msg_size(&t.parts[3]) > 0);
    assert_int_equal(zmq_msg_size(&t.parts[4]), 0);
    assert_int_equal(zmq_msg_size(&t.parts[5]), 5);
    assert_memory_equal(zmq_msg_data(&t.parts[5]), "hello", 5);
    /* The reply carries the address back, as that worker API does: [address][""][body]. */
    raw_send(peer, 6, F(""), F("MDPW01"), F("\x03"), zmq_msg_data(&t.parts[3]),
             zmq_msg_size(&t.parts[3]), F(""), F("world"));
    for (int k = 0; k < t.n; k++)
        zmq_msg_close(&t.parts[k]);
    assert_true(run_until(fx->reactor, &o.done, 5));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "world"));
    zt_frames_destroy(&o.reply);
}

static void
test_broker_prefetch_worker_holds_that_many_and_loses_them_all(void **state)
{
    fixture_t *fx = *state;
    void *peer = raw_prefetch_worker(fx);
    outcome_t o[4] = {{0}};
    const char *const bodies[4] = {"a", "b", "c", "d"};
    send_bodies(fx, "ahead", bodies, 4, o);
    taken_t t[4];
    assert_int_equal(raw_take_until(fx, peer, t, 0, 3), 3);
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.queued, 1); /* the fourth waits: the worker holds all it asked for */
    /* A reply ends the oldest request and makes room for the fourth. */
    raw_answer(peer, t[0].parts, t[0].n);
    assert_true(run_until(fx->reactor, &o[0].done, 5));
    assert_int_equal(o[0].code, 0);
    assert_true(zt_frames_equal_str(o[0].reply, 0, "a"));
    assert_int_equal(raw_take_until(fx, peer, t, 3, 4), 4);
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.queued, 0);
    /* The worker leaves holding three: each of them fails, once. */
    raw_send(peer, 3, F(""), F("MDPW01"), F("\x05")); /* DISCONNECT */
    for (int i = 1; i < 4; i++) {
        assert_true(run_until(fx->reactor, &o[i].done, 5));
        assert_int_equal(o[i].code, ZT_ECONNLOST);
        assert_int_equal(o[i].fired, 1);
        assert_non_null(strstr(o[i].message, "worker lost"));
    }
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.workers, 0);
    assert_int_equal(st.workers_lost, 1);
    for (int i = 1; i < 4; i++)
        for (int k = 0; k < t[i].n; k++)
            zmq_msg_close(&t[i].parts[k]);
    zt_frames_destroy(&o[0].reply);
}

static void
test_broker_prefetch_replies_in_any_order_reach_their_own_clients(void **state)
{
    fixture_t *fx = *state;
    void *peer = raw_prefetch_worker(fx);
    outcome_t o[3] = {{0}};
    const char *const bodies[3] = {"first", "second", "third"};
    send_bodies(fx, "ahead", bodies, 3, o);
    taken_t t[3];
    assert_int_equal(raw_take_until(fx, peer, t, 0, 3), 3);
    /* A reply whose envelope names no request the worker holds is dropped and counted. */
    raw_send(peer, 6, F(""), F("MDPW01"), F("\x03"), F("nobody"), F(""), F("stray"));
    assert_true(run_until_drops(fx, 1));
    /* The worker answers the newest first: each reply still reaches the client that asked. */
    for (int i = 2; i >= 0; i--) {
        raw_answer(peer, t[i].parts, t[i].n);
        assert_true(run_until(fx->reactor, &o[i].done, 5));
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o[i].code, 0);
        assert_int_equal(o[i].fired, 1);
        assert_true(zt_frames_equal_str(o[i].reply, 0, bodies[i]));
        zt_frames_destroy(&o[i].reply);
    }
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.replies, 3);
    assert_int_equal(st.drops, 1);
}

static void
test_broker_prefetch_worker_keeps_what_arrives_during_a_long_handler(void **state)
{
    fixture_t *fx = *state;
    thread_worker_t *tw = &fx->tw[0];
    tw->worker = zt_mdp_worker_new(zt_broker_endpoint(fx->broker), "slow", gated_handler, fx);
    assert_non_null(tw->worker);
    zt_mdp_worker_set_heartbeat(tw->worker, fx->interval, 3);
    assert_int_equal(zt_mdp_worker_set_prefetch(tw->worker, 0), ZT_EINVAL);
    assert_int_equal(zt_mdp_worker_set_prefetch(tw->worker, 1001), ZT_EINVAL);
    assert_int_equal(zt_mdp_worker_set_prefetch(tw->worker, 4), 0);
    assert_int_equal(pthread_create(&tw->thread, NULL, thread_worker_main, tw), 0);
    tw->started = true;
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t o[4] = {{0}};
    const char *const bodies[4] = {"w", "x", "y", "z"};
    send_bodies(fx, "slow", bodies, 4, o);
    /* The first request holds the handler for many heartbeat intervals while the other three wait
     * in the worker's socket; its keeper heartbeats meanwhile and must leave them there. */
    bool never = false;
    run_until(fx->reactor, &never, 0.5);
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.queued, 0); /* all four went to the worker at once */
    assert_int_equal(st.expiries, 0);
    open_gate(fx);
    for (int i = 0; i < 4; i++) {
        assert_true(run_until(fx->reactor, &o[i].done, 5));
        assert_int_equal(o[i].code, 0);
        assert_true(zt_frames_equal_str(o[i].reply, 0, bodies[i]));
        zt_frames_destroy(&o[i].reply);
    }
}

static void
test_broker_silent_worker_expires_and_request_fails_worker_lost(void **state)
{
    fixture_t *fx = *state;
    void *peer = silent_worker(fx, "fragile");
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t o = {0};
    outcome_send(fx->reactor, fx->client, "fragile", "x", NULL, &o);
    assert_true(run_until(fx->reactor, &o.done, 5));
    assert_int_equal(o.code, ZT_ECONNLOST);
    assert_non_null(strstr(o.message, "worker lost"));
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.expiries, 1);
    assert_int_equal(st.workers_lost, 1);
    assert_int_equal(st.workers, 0);
    zmq_close(peer);
}

static void
test_broker_silent_worker_safe_request_resent_to_another(void **state)
{
    fixture_t *fx = *state;
    void *peer = silent_worker(fx, "echo");
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t o = {0};
    zt_remote_options_t opts = {.safe_to_retry = true, .timeout = 10};
    outcome_send(fx->reactor, fx->client, "echo", "again", &opts, &o);
    /* The silent worker holds the request; a live one joins, the silent one expires. */
    start_echo(fx, 0, "echo");
    assert_true(run_until(fx->reactor, &o.done, 5));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "again"));
    zt_remote_stats_t rs;
    zt_remote_stats(fx->client, &rs);
    assert_int_equal(rs.retries, 1);
    assert_int_equal(rs.replies, 1);
    zt_frames_destroy(&o.reply);
    zmq_close(peer);
}

static void
test_broker_options_reject_bad_values(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_broker_set_heartbeat(fx->broker, 0, 3), ZT_EINVAL);
    assert_int_equal(zt_broker_set_heartbeat(fx->broker, 1, 0), ZT_EINVAL);
    assert_int_equal(zt_broker_set_heartbeat(fx->broker, 1, 3), ZT_ESTATE); /* bound already */
    assert_int_equal(zt_broker_set_queue_limit(fx->broker, 0), ZT_EINVAL);
    assert_int_equal(zt_broker_set_max_message(fx->broker, 0), ZT_EINVAL);
    assert_int_equal(zt_broker_set_unknown_grace(fx->broker, -1), ZT_EINVAL);
    assert_int_equal(zt_broker_allow_key(fx->broker, "not a key"), ZT_EINVAL);
    assert_int_equal(zt_broker_set_curve(fx->broker, "short"), ZT_ESTATE); /* bound already */
    assert_int_equal(zt_broker_bind(fx->broker, "nonsense://x"), ZT_EINVAL);
    zt_broker_t *other = zt_broker_new(fx->reactor);
    assert_int_equal(zt_broker_bind(other, zt_broker_endpoint(fx->broker)), ZT_EADDRINUSE);
    zt_broker_destroy(&other);
    assert_null(other);
    zt_broker_destroy(&other); /* NULL is fine */
}

/* CURVE: a broker that lets in only listed keys. */
static void
test_broker_curve_listed_keys_served_other_key_rejected(void **state)
{
    fixture_t *fx = *state;
    char server_pub[41], server_sec[41], worker_pub[41], worker_sec[41];
    char client_pub[41], client_sec[41], rogue_pub[41], rogue_sec[41];
    assert_int_equal(zt_curve_keypair(server_pub, server_sec), 0);
    assert_int_equal(zt_curve_keypair(worker_pub, worker_sec), 0);
    assert_int_equal(zt_curve_keypair(client_pub, client_sec), 0);
    assert_int_equal(zt_curve_keypair(rogue_pub, rogue_sec), 0);
    zt_broker_t *secure = zt_broker_new(fx->reactor);
    zt_broker_set_heartbeat(secure, HB, 3);
    assert_int_equal(zt_broker_set_curve(secure, server_sec), 0);
    assert_int_equal(zt_broker_allow_key(secure, worker_pub), 0);
    assert_int_equal(zt_broker_allow_key(secure, client_pub), 0);
    assert_int_equal(zt_broker_bind(secure, "tcp://127.0.0.1:0"), 0);
    const char *endpoint = zt_broker_endpoint(secure);

    fx->tw[0].worker = zt_mdp_worker_new(endpoint, "echo", echo_handler, NULL);
    zt_mdp_worker_set_heartbeat(fx->tw[0].worker, HB, 3);
    assert_int_equal(zt_mdp_worker_set_curve(fx->tw[0].worker, server_pub, worker_pub, worker_sec),
                     0);
    assert_int_equal(pthread_create(&fx->tw[0].thread, NULL, thread_worker_main, &fx->tw[0]), 0);
    fx->tw[0].started = true;
    assert_true(run_until_workers(fx->reactor, secure, 1, 5));

    zt_remote_t *good = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_set_curve(good, server_pub, client_pub, client_sec), 0);
    assert_int_equal(zt_remote_connect(good, endpoint), 0);
    zt_remote_t *rogue = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_set_curve(rogue, server_pub, rogue_pub, rogue_sec), 0);
    assert_int_equal(zt_remote_connect(rogue, endpoint), 0);
    assert_int_equal(zt_remote_set_curve(rogue, server_pub, rogue_pub, rogue_sec), ZT_ESTATE);

    outcome_t ok = {0}, denied = {0};
    outcome_send(fx->reactor, good, "echo", "secret", NULL, &ok);
    zt_remote_options_t opts = {.timeout = 5};
    outcome_send(fx->reactor, rogue, "echo", "intrusion", &opts, &denied);
    assert_true(run_until(fx->reactor, &ok.done, 5));
    assert_int_equal(ok.code, 0);
    assert_true(zt_frames_equal_str(ok.reply, 0, "secret"));
    assert_true(run_until(fx->reactor, &denied.done, 5));
    assert_int_equal(denied.code, ZT_EACCES);
    assert_non_null(strstr(denied.message, "CURVE"));
    zt_broker_stats_t st;
    zt_broker_stats(secure, &st);
    assert_true(st.auth_rejected >= 1);

    zt_frames_destroy(&ok.reply);
    thread_worker_stop(&fx->tw[0]);
    zt_remote_destroy(&good);
    zt_remote_destroy(&rogue);
    zt_broker_destroy(&secure);
}

/* ------------------------------------------------------------------------------------------- */
/* Issue #21: a clear answer at every edge */

/* Iterate until the broker's counter at `field` (a zt_broker_stats_t member) reaches n. */
static bool
run_until_stat(fixture_t *fx, zt_broker_t *broker, size_t offset, uint64_t n, double seconds)
{
    double deadline = zt_time_now() + seconds;
    zt_broker_stats_t st;
    zt_broker_stats(broker, &st);
    uint64_t value;
    memcpy(&value, (const char *)&st + offset, sizeof value);
    while (value < n && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.02);
        zt_broker_stats(broker, &st);
        memcpy(&value, (const char *)&st + offset, sizeof value);
    }
    return value >= n;
}

#define STAT(field) offsetof(zt_broker_stats_t, field)

static void
test_broker_grace_end_fails_waiting_requests_not_found(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_broker_set_unknown_grace(fx->broker, 0.5), 0);
    zt_remote_options_t opts = {.timeout = 8}; /* far beyond the grace: must not be what ends it */
    outcome_t waiting = {0};
    assert_int_equal(outcome_send(fx->reactor, fx->client, "nobody", "x", &opts, &waiting), 0);
    /* The request reaches the broker and waits while the grace lasts... */
    assert_true(run_until_stat(fx, fx->broker, STAT(requests), 1, 5));
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    if (st.unknown_service == 0) /* unless the grace is over already on a loaded machine */
        assert_false(waiting.done);
    /* ... and fails as unknown when it ends, well before the client's own timeout. */
    assert_true(run_until(fx->reactor, &waiting.done, 20));
    assert_int_equal(waiting.code, ZT_ENOTFOUND);
    assert_non_null(strstr(waiting.message, "'nobody' unknown"));
    /* A request after the grace fails the same way, at once. */
    outcome_t later = {0};
    assert_int_equal(outcome_send(fx->reactor, fx->client, "nobody", "y", &opts, &later), 0);
    assert_true(run_until(fx->reactor, &later.done, 20));
    assert_int_equal(later.code, ZT_ENOTFOUND);
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.unknown_service, 2);
    assert_int_equal(st.queued, 0);
}

/* A CURVE broker on its own port, with any client key allowed. */
static zt_broker_t *
curve_broker(fixture_t *fx, char server_pub[41])
{
    char server_sec[41];
    assert_int_equal(zt_curve_keypair(server_pub, server_sec), 0);
    zt_broker_t *secure = zt_broker_new(fx->reactor);
    zt_broker_set_heartbeat(secure, HB, 3);
    assert_int_equal(zt_broker_set_curve(secure, server_sec), 0);
    assert_int_equal(zt_broker_bind(secure, "tcp://127.0.0.1:0"), 0);
    return secure;
}

static void
test_broker_plaintext_client_at_curve_broker_fails_mechanism_mismatch(void **state)
{
    fixture_t *fx = *state;
    char server_pub[41];
    zt_broker_t *secure = fx->broker2 = curve_broker(fx, server_pub);
    zt_remote_t *plain = fx->client2 = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_connect(plain, zt_broker_endpoint(secure)), 0);
    outcome_t o = {0};
    zt_remote_options_t opts = {.timeout = 15, .safe_to_retry = true};
    assert_int_equal(outcome_send(fx->reactor, plain, "echo", "hello", &opts, &o), 0);
    assert_true(run_until(fx->reactor, &o.done, 30));
    assert_int_equal(o.code, ZT_EACCES);
    assert_non_null(strstr(o.message, "security mechanism"));
    assert_non_null(strstr(o.message, "plaintext"));
    zt_remote_stats_t rs;
    zt_remote_stats(plain, &rs);
    assert_true(rs.mechanism_mismatch);
    assert_int_equal(rs.timeouts, 0);
    /* The next request fails at once, with the same reason. */
    outcome_t again = {0};
    assert_int_equal(outcome_send(fx->reactor, plain, "echo", "hello", &opts, &again), 0);
    assert_true(again.done);
    assert_int_equal(again.code, ZT_EACCES);
    /* The broker saw the failed handshake and counted it. */
    assert_true(run_until_stat(fx, secure, STAT(handshake_failed), 1, 20));
}

static void
test_broker_curve_client_at_plaintext_broker_fails_mechanism_mismatch(void **state)
{
    fixture_t *fx = *state;
    char server_pub[41], server_sec[41], pub[41], sec[41];
    assert_int_equal(zt_curve_keypair(server_pub, server_sec), 0);
    assert_int_equal(zt_curve_keypair(pub, sec), 0);
    zt_remote_t *secure = fx->client2 = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_set_curve(secure, server_pub, pub, sec), 0);
    assert_int_equal(zt_remote_connect(secure, zt_broker_endpoint(fx->broker)), 0);
    outcome_t o = {0};
    zt_remote_options_t opts = {.timeout = 15};
    assert_int_equal(outcome_send(fx->reactor, secure, "echo", "hello", &opts, &o), 0);
    assert_true(run_until(fx->reactor, &o.done, 30));
    assert_int_equal(o.code, ZT_EACCES);
    assert_non_null(strstr(o.message, "security mechanism"));
    assert_non_null(strstr(o.message, "CURVE"));
    assert_true(run_until_stat(fx, fx->broker, STAT(handshake_failed), 1, 20));
}

static void *
worker_rc_main(void *arg)
{
    fixture_t *fx = arg;
    atomic_store(&fx->worker_rc, zt_mdp_worker_run(fx->tw[0].worker));
    atomic_store(&fx->worker_done, true);
    return NULL;
}

/* Iterate until the worker run by worker_rc_main returned, or seconds pass. */
static bool
run_until_worker_done(fixture_t *fx, double seconds)
{
    double deadline = zt_time_now() + seconds;
    while (!atomic_load(&fx->worker_done) && zt_time_now() < deadline)
        zt_reactor_iterate(fx->reactor, 0.02);
    return atomic_load(&fx->worker_done);
}

static void
test_broker_plaintext_worker_at_curve_broker_run_fails_mechanism_mismatch(void **state)
{
    fixture_t *fx = *state;
    char server_pub[41];
    zt_broker_t *secure = fx->broker2 = curve_broker(fx, server_pub);
    fx->tw[0].worker = zt_mdp_worker_new(zt_broker_endpoint(secure), "echo", echo_handler, NULL);
    zt_mdp_worker_set_heartbeat(fx->tw[0].worker, HB, 3);
    zt_mdp_worker_set_reconnect(fx->tw[0].worker, 0.05, 0.2);
    assert_int_equal(pthread_create(&fx->tw[0].thread, NULL, worker_rc_main, fx), 0);
    fx->tw[0].started = true;
    assert_true(run_until_worker_done(fx, 30));
    assert_int_equal(atomic_load(&fx->worker_rc), ZT_EACCES);
    assert_true(run_until_stat(fx, secure, STAT(handshake_failed), 1, 20));
    zt_broker_stats_t st;
    zt_broker_stats(secure, &st);
    assert_int_equal(st.workers, 0);
}

static void
test_broker_curve_worker_at_plaintext_broker_run_fails_mechanism_mismatch(void **state)
{
    fixture_t *fx = *state;
    char server_pub[41], server_sec[41], pub[41], sec[41];
    assert_int_equal(zt_curve_keypair(server_pub, server_sec), 0);
    assert_int_equal(zt_curve_keypair(pub, sec), 0);
    fx->tw[0].worker =
        zt_mdp_worker_new(zt_broker_endpoint(fx->broker), "echo", echo_handler, NULL);
    zt_mdp_worker_set_heartbeat(fx->tw[0].worker, HB, 3);
    zt_mdp_worker_set_reconnect(fx->tw[0].worker, 0.05, 0.2);
    assert_int_equal(zt_mdp_worker_set_curve(fx->tw[0].worker, server_pub, pub, sec), 0);
    assert_int_equal(pthread_create(&fx->tw[0].thread, NULL, worker_rc_main, fx), 0);
    fx->tw[0].started = true;
    assert_true(run_until_worker_done(fx, 30));
    assert_int_equal(atomic_load(&fx->worker_rc), ZT_EACCES);
    assert_true(run_until_stat(fx, fx->broker, STAT(handshake_failed), 1, 20));
}

static void
test_broker_queue_timeout_reply_names_the_requested_service(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_broker_set_queue_timeout(fx->broker, 0.05), 0);
    assert_int_equal(thread_worker_start(&fx->tw[0], zt_broker_endpoint(fx->broker), "slow",
                                         gated_handler, fx, HB),
                     0);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 5));
    outcome_t busy = {0};
    outcome_send(fx->reactor, fx->client, "slow", "1", NULL, &busy);
    assert_true(run_until_stat(fx, fx->broker, STAT(requests), 1, 5));
    /* A strict RFC 7 client: it matches the reply's service frame against its request's. */
    void *peer = raw_peer(fx);
    fx->peers[0] = peer;
    raw_send(peer, 4, F(""), F("MDPC01"), F("slow"), F("2"));
    assert_true(run_until_stat(fx, fx->broker, STAT(queue_expired), 1, 10));
    char frames[5][128];
    int sizes[5] = {0};
    int n = 0, more = 1;
    while (more && n < 5) {
        zmq_pollitem_t item = {peer, 0, ZMQ_POLLIN, 0};
        assert_int_equal(zmq_poll(&item, 1, 10000), 1);
        sizes[n] = zmq_recv(peer, frames[n], sizeof frames[n] - 1, 0);
        assert_true(sizes[n] >= 0);
        frames[n][sizes[n] < 127 ? sizes[n] : 127] = '\0';
        size_t more_size = sizeof more;
        zmq_getsockopt(peer, ZMQ_RCVMORE, &more, &more_size);
        n++;
    }
    assert_int_equal(n, 5);
    assert_string_equal(frames[1], "MDPC01");
    assert_string_equal(frames[2], "slow");
    assert_string_equal(frames[3], "ztwist.error");
    assert_string_equal(frames[4], "504");
    /* The ztwist client still reads it as a timeout. */
    outcome_t queued = {0};
    outcome_send(fx->reactor, fx->client, "slow", "3", NULL, &queued);
    assert_true(run_until(fx->reactor, &queued.done, 10));
    assert_int_equal(queued.code, ZT_ETIMEDOUT);
    assert_non_null(strstr(queued.message, "queue of service 'slow'"));
    open_gate(fx);
    assert_true(run_until(fx->reactor, &busy.done, 5));
    assert_int_equal(busy.code, 0);
    zt_frames_destroy(&busy.reply);
}

/* Send a request whose body is one frame of size bytes. */
static void
send_big(fixture_t *fx, const char *service, size_t size, outcome_t *o)
{
    char *data = calloc(1, size);
    zt_frames_t *req = zt_frames_new();
    assert_int_equal(zt_frames_add(req, data, size), 0);
    free(data);
    zt_deferred_t *d = zt_defer_to_remote(fx->reactor, fx->client, service, &req, NULL);
    assert_non_null(d);
    zt_deferred_add_both(d, outcome_record, o);
    zt_deferred_unref(&d);
}

static void
test_broker_stored_bytes_bound_refuses_queue_full_and_serves_others(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_broker_set_queue_bytes(fx->broker, 0), ZT_EINVAL);
    /* Small frames, so that ZeroMQ hands them over inline: a frame larger than 33 bytes comes in
     * a buffer libzmq's I/O thread wrote, and ThreadSanitizer cannot see libzmq's hand-off. The
     * bound counts bytes whatever their size: each request stores its packed envelope (15 bytes:
     * the routing id and the request id, each after its size) and its 30-byte body. */
    assert_int_equal(zt_broker_set_queue_bytes(fx->broker, 120), 0);
    assert_int_equal(thread_worker_start(&fx->tw[0], zt_broker_endpoint(fx->broker), "stuck",
                                         gated_handler, fx, HB),
                     0);
    start_echo(fx, 1, "echo");
    assert_true(run_until_workers(fx->reactor, fx->broker, 2, 5));
    /* The worker holds the first, the second waits, the third would pass the bound. */
    outcome_t held = {0}, queued = {0}, refused = {0};
    send_big(fx, "stuck", 30, &held);
    send_big(fx, "stuck", 30, &queued);
    send_big(fx, "stuck", 30, &refused);
    assert_true(run_until(fx->reactor, &refused.done, 10));
    assert_int_equal(refused.code, ZT_EFULL);
    assert_non_null(strstr(refused.message, "bytes"));
    assert_false(held.done);
    assert_false(queued.done);
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.bytes_full, 1);
    assert_int_equal(st.queue_full, 0);
    assert_true(st.stored_bytes >= 2 * 30 && st.stored_bytes <= 120);
    /* Another service is still served. */
    outcome_t other = {0};
    outcome_send(fx->reactor, fx->client, "echo", "still here", NULL, &other);
    assert_true(run_until(fx->reactor, &other.done, 10));
    assert_int_equal(other.code, 0);
    assert_true(zt_frames_equal_str(other.reply, 0, "still here"));
    /* Once served, the stored bytes are given back. */
    open_gate(fx);
    assert_true(run_until(fx->reactor, &queued.done, 10));
    assert_true(held.done);
    assert_int_equal(held.code, 0);
    assert_int_equal(queued.code, 0);
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.stored_bytes, 0);
    zt_frames_destroy(&held.reply);
    zt_frames_destroy(&queued.reply);
    zt_frames_destroy(&other.reply);
}

/* The client's receive side: a frame above its bound drops the connection, not the process. */
static void
test_broker_client_refuses_frame_above_its_max_message(void **state)
{
    fixture_t *fx = *state;
    void *router = zmq_socket(fx->ctx, ZMQ_ROUTER); /* a broker that answers too big */
    fx->peers[0] = router;
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t size = sizeof endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &size);
    zt_remote_t *client = fx->client2 = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_set_max_message(client, 0), ZT_EINVAL);
    assert_int_equal(zt_remote_set_max_message(client, 1024), 0);
    assert_int_equal(zt_remote_connect(client, endpoint), 0);
    assert_int_equal(zt_remote_set_max_message(client, 1024), ZT_ESTATE);
    outcome_t o = {0};
    zt_remote_options_t opts = {.timeout = 15};
    assert_int_equal(outcome_send(fx->reactor, client, "big", "x", &opts, &o), 0);
    /* Read the request: [routing id][request id][""][MDPC01][big][x]. */
    zmq_msg_t parts[6];
    int n = 0, more = 1;
    while (more && n < 6) {
        zmq_msg_init(&parts[n]);
        while (zmq_msg_recv(&parts[n], router, ZMQ_DONTWAIT) < 0)
            zt_reactor_iterate(fx->reactor, 0.02);
        more = zmq_msg_more(&parts[n]);
        n++;
    }
    assert_int_equal(n, 6);
    static char big[4096];
    zmq_send(router, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), ZMQ_SNDMORE);
    zmq_send(router, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), ZMQ_SNDMORE);
    raw_send(router, 4, F(""), F("MDPC01"), F("big"), big, sizeof big);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
    assert_true(run_until(fx->reactor, &o.done, 30));
    assert_int_equal(o.code, ZT_ECONNLOST);
}

static void
test_broker_grace_turned_off_fails_waiting_requests_not_found(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_broker_set_unknown_grace(fx->broker, 60), 0);
    zt_remote_options_t opts = {.timeout = 8};
    outcome_t waiting = {0};
    assert_int_equal(outcome_send(fx->reactor, fx->client, "nobody", "x", &opts, &waiting), 0);
    assert_true(run_until_stat(fx, fx->broker, STAT(requests), 1, 5));
    assert_false(waiting.done);
    assert_int_equal(zt_broker_set_unknown_grace(fx->broker, 0), 0);
    assert_true(run_until(fx->reactor, &waiting.done, 20));
    assert_int_equal(waiting.code, ZT_ENOTFOUND);
}

/* The worker's receive side: a frame above its bound drops the connection, unserved. */
static void
test_broker_worker_refuses_frame_above_its_max_message(void **state)
{
    fixture_t *fx = *state;
    void *router = zmq_socket(fx->ctx, ZMQ_ROUTER); /* a broker that sends too big */
    fx->peers[0] = router;
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t size = sizeof endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &size);
    fx->tw[0].worker = zt_mdp_worker_new(endpoint, "echo", echo_handler, NULL);
    assert_int_equal(zt_mdp_worker_set_max_message(fx->tw[0].worker, 0), ZT_EINVAL);
    assert_int_equal(zt_mdp_worker_set_max_message(fx->tw[0].worker, 1024), 0);
    /* The raw broker never heartbeats: the worker gives it up after 3 s, on a new connection. */
    zt_mdp_worker_set_heartbeat(fx->tw[0].worker, 1.0, 3);
    assert_int_equal(pthread_create(&fx->tw[0].thread, NULL, thread_worker_main, &fx->tw[0]), 0);
    fx->tw[0].started = true;
    /* READY: [identity][""][MDPW01][0x01][echo]. */
    char first[256], id[256];
    int id_size = -1;
    zmq_pollitem_t item = {router, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, 10000), 1);
    id_size = zmq_recv(router, first, sizeof first, 0);
    assert_true(id_size > 0);
    memcpy(id, first, (size_t)id_size);
    int more = 1;
    size_t more_size = sizeof more;
    for (zmq_getsockopt(router, ZMQ_RCVMORE, &more, &more_size); more;
         zmq_getsockopt(router, ZMQ_RCVMORE, &more, &more_size))
        (void)zmq_recv(router, first, sizeof first, 0);
    /* REQUEST with a body of 4 KiB: [identity][""][MDPW01][0x02][client][""][body]. */
    static char big[4096];
    zmq_send(router, id, (size_t)id_size, ZMQ_SNDMORE);
    raw_send(router, 6, F(""), F("MDPW01"), F("\x02"), F("client"), F(""), big, sizeof big);
    /* ZeroMQ closes the connection for good at the big frame (no reconnect after a protocol
     * error); the worker, hearing nothing more, connects again. Until then: never a REPLY. */
    bool replied = false, reconnected = false;
    double deadline = zt_time_now() + 20;
    while (!reconnected && zt_time_now() < deadline) {
        if (zmq_poll(&item, 1, 100) != 1)
            continue;
        char frames[5][64]; /* the first four, then the rest one over the other */
        int n = 0, sizes[4] = {0};
        more = 1;
        while (more) {
            int got = zmq_recv(router, frames[n < 4 ? n : 4], 64, 0);
            if (n < 4)
                sizes[n] = got;
            n++;
            zmq_getsockopt(router, ZMQ_RCVMORE, &more, &more_size);
        }
        if (sizes[0] != id_size || memcmp(frames[0], id, (size_t)id_size) != 0)
            reconnected = true;
        else if (n >= 4 && sizes[3] == 1 && frames[3][0] == 0x03)
            replied = true;
    }
    assert_false(replied);
    assert_true(reconnected);
    assert_int_equal(zt_mdp_worker_served(fx->tw[0].worker), 0);
}

/* The broker's receive side: with the bound set before bind, a frame above it is not even
 * buffered: ZeroMQ closes that peer's connection, and the broker serves the others. */
static void
test_broker_frame_above_max_message_closes_that_connection_only(void **state)
{
    fixture_t *fx = *state;
    zt_broker_t *broker = fx->broker2 = zt_broker_new(fx->reactor);
    assert_int_equal(zt_broker_set_max_message(broker, 1024), 0);
    assert_int_equal(zt_broker_bind(broker, "tcp://127.0.0.1:0"), 0);
    void *greedy = fx->peers[0] = zmq_socket(fx->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(greedy, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_socket_monitor(greedy, "inproc://greedy-monitor", ZMQ_EVENT_DISCONNECTED),
                     0);
    void *monitor = fx->peers[1] = zmq_socket(fx->ctx, ZMQ_PAIR);
    assert_int_equal(zmq_connect(monitor, "inproc://greedy-monitor"), 0);
    assert_int_equal(zmq_connect(greedy, zt_broker_endpoint(broker)), 0);
    static char huge[4096];
    raw_send(greedy, 4, F(""), F("MDPC01"), F("echo"), huge, sizeof huge);
    bool disconnected = false;
    double deadline = zt_time_now() + 20;
    while (!disconnected && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.02);
        uint8_t event[6];
        disconnected = zmq_recv(monitor, event, sizeof event, ZMQ_DONTWAIT) >= 0;
    }
    assert_true(disconnected);
    /* Another client is served. */
    zt_remote_t *client = fx->client2 = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_connect(client, zt_broker_endpoint(broker)), 0);
    outcome_t o = {0};
    assert_int_equal(outcome_send(fx->reactor, client, "mmi.service", "echo", NULL, &o), 0);
    assert_true(run_until(fx->reactor, &o.done, 10));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "404"));
    zt_frames_destroy(&o.reply);
    zt_broker_stats_t st;
    zt_broker_stats(broker, &st);
    assert_int_equal(st.drops, 0); /* the big frame never reached the codec */
    assert_int_equal(st.requests, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broker_request_to_worker_replies_with_its_frames,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_inproc_endpoint_serves_client_in_same_process,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_linked_client_round_trips_without_a_socket,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_linked_client_refuses_second_connect_and_other_reactor, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_destroyed_first_fails_linked_calls_with_connection_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_linked_client_destroyed_first_its_reply_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_many_workers_come_and_go_each_still_found,
                                        setup_patient, teardown),
        cmocka_unit_test_setup_teardown(test_broker_unknown_service_fails_not_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_unknown_service_within_grace_waits_for_its_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_worker_gets_one_address_frame_then_the_delimiter, setup_patient, teardown),
        cmocka_unit_test_setup_teardown(test_broker_mmi_service_answers_200_404_501, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_broker_idle_workers_least_recently_used_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_broker_full_queue_fails_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_queue_timeout_answers_504_and_leaves_held_work_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_long_handler_keeps_heartbeating_worker_not_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_prefetch_worker_holds_that_many_and_loses_them_all, setup_patient,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_prefetch_replies_in_any_order_reach_their_own_clients, setup_patient,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_prefetch_worker_keeps_what_arrives_during_a_long_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_malformed_frames_dropped_counted_and_serving,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_worker_registering_mmi_service_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_silent_worker_expires_and_request_fails_worker_lost, setup_slow, teardown),
        cmocka_unit_test_setup_teardown(test_broker_silent_worker_safe_request_resent_to_another,
                                        setup_slow, teardown),
        cmocka_unit_test_setup_teardown(test_broker_options_reject_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_curve_listed_keys_served_other_key_rejected,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_grace_end_fails_waiting_requests_not_found,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_plaintext_client_at_curve_broker_fails_mechanism_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_curve_client_at_plaintext_broker_fails_mechanism_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_plaintext_worker_at_curve_broker_run_fails_mechanism_mismatch, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_curve_worker_at_plaintext_broker_run_fails_mechanism_mismatch, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_broker_queue_timeout_reply_names_the_requested_service,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_stored_bytes_bound_refuses_queue_full_and_serves_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_client_refuses_frame_above_its_max_message,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_grace_turned_off_fails_waiting_requests_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_worker_refuses_frame_above_its_max_message,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_broker_frame_above_max_message_closes_that_connection_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
