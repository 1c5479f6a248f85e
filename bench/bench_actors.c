/*  bench/bench_actors.c - application actors: message rates, spawn rate, memory per actor, asks,
 * and the same across two reactors on two threads
 *
 *  Figures (the median of BENCH_REPS runs, each in a forked child):
 *    actors.pingpong_rt_per_s           two actors on one reactor, round trips
 *    actors.counting_per_s              one sender actor, one counter, messages
 *    actors.ring_hops_per_s             a ring of 1,000 actors, one token, hops
 *    actors.fanout_per_s                one actor tells 1,000 workers, each answers, messages
 *    actors.spawn_per_s                 spawns from the reactor thread, outside handlers
 *    actors.spawn_in_handler_per_s      spawns from inside a handler
 *    actors.bytes_per_actor             RSS growth of 1M idle actors / 1M
 *    actors.ask_per_s, actors.ask_p50_us  sequential asks from reactor code to an actor
 *    actors.cross_reactor_counting_per_s  a producer thread tells a counter on another reactor
 *    actors.cross_reactor_pingpong_rt_per_s  two actors on two reactors on two threads
 *  BENCH_QUICK=1 runs smaller sizes. Peers (CAF, Erlang) are not measured yet.  */
#include "bench_util.h"

#include <ztwist.h>

#include <pthread.h>
#include <stdatomic.h>

enum { PING = 1, GO = 2, TOKEN = 3 };

typedef struct pair {
    zt_reactor_t *r;  /* the reactor of the receiver */
    zt_actor_t *peer; /* Borrowed: where to send */
    long left;        /* messages still to send or expect */
    long count;       /* messages handled */
    bool done;        /* finished */
} pair_t;

static bool
s_quick(void)
{
    return bench_quick();
}

static void
s_spin(zt_reactor_t *r, bool *done)
{
    while (!*done)
        zt_reactor_iterate(r, 0);
}

/* --- ping-pong ------------------------------------------------------------------------------- */

static zt_result_t
pong_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)msg;
    pair_t *p = state;
    if (--p->left <= 0) {
        p->done = true;
        return zt_ok_none();
    }
    zt_actor_tell(p->peer, zt_msg(PING, NULL, NULL));
    return zt_ok_none();
}

static void
run_pingpong(void *arg, double *out)
{
    long n = *(long *)arg;
    zt_reactor_t *r = zt_reactor_new();
    pair_t a = {.left = 2 * n}, b = {.left = 2 * n};
    zt_actor_t *aa = NULL, *bb = NULL;
    zt_actor_spawn(r, &(zt_actor_spec_t){.receive = pong_receive, .arg = &a}, &aa);
    zt_actor_spawn(r, &(zt_actor_spec_t){.receive = pong_receive, .arg = &b}, &bb);
    a.peer = bb, b.peer = aa;
    bool done = false;
    a.left = n, b.left = n + 1; /* a handles n pongs, b n pings */
    uint64_t t0 = bench_now_ns();
    zt_actor_tell(bb, zt_msg(PING, NULL, NULL));
    while (!a.done && !done)
        zt_reactor_iterate(r, 0);
    out[0] = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
    zt_actor_unref(&aa), zt_actor_unref(&bb);
    zt_reactor_destroy(&r);
}

/* --- counting: a sender actor tells in chunks, re-telling itself between chunks ------------- */

typedef struct counting {
    zt_actor_t *counter; /* Borrowed */
    long to_send;        /* messages still to send */
    long counted;        /* messages the counter handled */
    long expect;         /* messages in all */
    bool done;           /* the counter has them all */
} counting_t;

static zt_result_t
counter_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)msg;
    counting_t *c = state;
    if (++c->counted == c->expect)
        c->done = true;
    return zt_ok_none();
}

static zt_result_t
sender_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)msg;
    counting_t *c = state;
    for (int i = 0; i < 1000 && c->to_send > 0; i++) {
        if (zt_actor_tell(c->counter, zt_msg(PING, NULL, NULL)) < 0)
            break; /* full: go on after the counter's turn */
        c->to_send--;
    }
    if (c->to_send > 0)
        zt_actor_tell(self, zt_msg(GO, NULL, NULL));
    return zt_ok_none();
}

static void
run_counting(void *arg, double *out)
{
    long n = *(long *)arg;
    zt_reactor_t *r = zt_reactor_new();
    counting_t c = {.to_send = n, .expect = n};
    zt_actor_t *counter = NULL, *sender = NULL;
    zt_actor_spawn(r, &(zt_actor_spec_t){.receive = counter_receive, .arg = &c, .budget = 1024},
                   &counter);
    zt_actor_spawn(r, &(zt_actor_spec_t){.receive = sender_receive, .arg = &c}, &sender);
    c.counter = counter;
    uint64_t t0 = bench_now_ns();
    zt_actor_tell(sender, zt_msg(GO, NULL, NULL));
    s_spin(r, &c.done);
    out[0] = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
    zt_actor_unref(&counter), zt_actor_unref(&sender);
    zt_reactor_destroy(&r);
}

/* --- ring ------------------------------------------------------------------------------------ */

typedef struct ring_node {
    zt_actor_t *next; /* Borrowed */
    long *hops;       /* Borrowed: hops left, shared by the ring (one reactor thread) */
    bool *done;       /* Borrowed */
} ring_node_t;

static zt_result_t
ring_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)msg;
    ring_node_t *node = state;
    if (--*node->hops <= 0)
        *node->done = true;
    else
        zt_actor_tell(node->next, zt_msg(TOKEN, NULL, NULL));
    return zt_ok_none();
}

static void
run_ring(void *arg, double *out)
{
    long n = *(long *)arg;
    enum { RING = 1000 };
    zt_reactor_t *r = zt_reactor_new();
    ring_node_t *nodes = calloc(RING, sizeof *nodes);
    zt_actor_t **refs = calloc(RING, sizeof *refs);
    long hops = n;
    bool done = false;
    for (int i = 0; i < RING; i++) {
        nodes[i] = (ring_node_t){.hops = &hops, .done = &done};
        zt_actor_spawn(r, &(zt_actor_spec_t){.receive = ring_receive, .arg = &nodes[i]}, &refs[i]);
    }
    for (int i = 0; i < RING; i++)
        nodes[i].next = refs[(i + 1) % RING];
    uint64_t t0 = bench_now_ns();
    zt_actor_tell(refs[0], zt_msg(TOKEN, NULL, NULL));
    s_spin(r, &done);
    out[0] = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
    for (int i = 0; i < RING; i++)
        zt_actor_unref(&refs[i]);
    zt_reactor_destroy(&r);
    free(nodes), free(refs);
}

/* --- fan-out: one actor tells every worker, each answers ------------------------------------- */

typedef struct fan {
    zt_actor_t *hub;      /* Borrowed */
    zt_actor_t **workers; /* Borrowed */
    int nworkers;         /* how many */
    long rounds;          /* rounds left */
    int answers;          /* answers in this round */
    long messages;        /* messages handled in all */
    bool done;            /* finished */
} fan_t;

static zt_result_t
fan_worker(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)msg;
    fan_t *f = state;
    f->messages++;
    zt_actor_tell(f->hub, zt_msg(PING, NULL, NULL));
    return zt_ok_none();
}

static zt_result_t
fan_hub(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self;
    fan_t *f = state;
    f->messages++;
    if (msg->tag == PING && ++f->answers < f->nworkers)
        return zt_ok_none();
    f->answers = 0;
    if (f->rounds-- <= 0) {
        f->done = true;
        return zt_ok_none();
    }
    for (int i = 0; i < f->nworkers; i++)
        zt_actor_tell(f->workers[i], zt_msg(GO, NULL, NULL));
    return zt_ok_none();
}

static void
run_fanout(void *arg, double *out)
{
    long rounds = *(long *)arg;
    enum { WORKERS = 1000 };
    zt_reactor_t *r = zt_reactor_new();
    zt_actor_t *workers[WORKERS], *hub = NULL;
    fan_t f = {.workers = workers, .nworkers = WORKERS, .rounds = rounds};
    for (int i = 0; i < WORKERS; i++)
        zt_actor_spawn(r, &(zt_actor_spec_t){.receive = fan_worker, .arg = &f}, &workers[i]);
    zt_actor_spawn(r, &(zt_actor_spec_t){.receive = fan_hub, .arg = &f, .capacity = 2 * WORKERS},
                   &hub);
    f.hub = hub;
    uint64_t t0 = bench_now_ns();
    zt_actor_tell(hub, zt_msg(GO, NULL, NULL));
    s_spin(r, &f.done);
    out[0] = (double)f.messages / ((double)(bench_now_ns() - t0) / 1e9);
    for (int i = 0; i < WORKERS; i++)
        zt_actor_unref(&workers[i]);
    zt_actor_unref(&hub);
    zt_reactor_destroy(&r);
}

/* --- spawn and memory ------------------------------------------------------------------------ */

static zt_result_t
idle_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)state, (void)msg;
    return zt_ok_none();
}

static double
s_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static void
run_spawn(void *arg, double *out)
{
    long n = *(long *)arg;
    zt_reactor_t *r = zt_reactor_new();
    zt_actor_spec_t spec = {.receive = idle_receive};
    double rss0 = s_rss_bytes();
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        zt_actor_spawn(r, &spec, NULL);
    uint64_t t1 = bench_now_ns();
    out[0] = (double)n / ((double)(t1 - t0) / 1e9);
    out[1] = (s_rss_bytes() - rss0) / (double)n;
    zt_reactor_destroy(&r);
}

/* Spawns from inside a handler: one message makes an actor spawn n idle actors. */
typedef struct spawner {
    long n;         /* actors to spawn */
    double seconds; /* how long the spawning took */
} spawner_t;

static zt_result_t
spawner_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)msg;
    spawner_t *sp = state;
    zt_reactor_t *r = zt_actor_reactor(self);
    zt_actor_spec_t spec = {.receive = idle_receive};
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < sp->n; i++)
        zt_actor_spawn(r, &spec, NULL);
    sp->seconds = (double)(bench_now_ns() - t0) / 1e9;
    return zt_ok_none();
}

static void
run_spawn_in_handler(void *arg, double *out)
{
    spawner_t sp = {.n = *(long *)arg};
    zt_reactor_t *r = zt_reactor_new();
    zt_actor_t *a = NULL;
    zt_actor_spawn(r, &(zt_actor_spec_t){.receive = spawner_receive, .arg = &sp}, &a);
    zt_actor_tell(a, zt_msg(GO, NULL, NULL));
    while (sp.seconds == 0)
        zt_reactor_iterate(r, 0);
    out[0] = (double)sp.n / sp.seconds;
    zt_actor_unref(&a);
    zt_reactor_destroy(&r);
}

/* --- asks ------------------------------------------------------------------------------------ */

typedef struct asks {
    zt_reactor_t *r;  /* the reactor */
    zt_actor_t *to;   /* Borrowed: the actor asked */
    long left;        /* asks still to make */
    double *lat;      /* Owned: each ask's latency, us */
    long n;           /* asks made */
    uint64_t started; /* when the current ask was sent */
    bool done;        /* finished */
} asks_t;

static zt_result_t
echo_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)state;
    return zt_ok_int((intptr_t)msg->body);
}

static void s_next_ask(asks_t *a);

static zt_result_t
on_answer(zt_result_t result, void *arg)
{
    asks_t *a = arg;
    a->lat[a->n++] = (double)(bench_now_ns() - a->started) / 1e3;
    zt_result_release(&result);
    s_next_ask(a);
    return zt_ok_none();
}

static void
s_next_ask(asks_t *a)
{
    if (a->left-- <= 0) {
        a->done = true;
        return;
    }
    a->started = bench_now_ns();
    zt_deferred_t *d = zt_actor_ask(a->r, a->to, zt_msg(PING, (void *)1, NULL), 0);
    zt_deferred_add_both(d, on_answer, a);
    zt_deferred_unref(&d);
}

static void
run_ask(void *arg, double *out)
{
    long n = *(long *)arg;
    asks_t a = {.r = zt_reactor_new(), .left = n, .lat = calloc((size_t)n, sizeof(double))};
    zt_actor_spawn(a.r, &(zt_actor_spec_t){.receive = echo_receive}, &a.to);
    uint64_t t0 = bench_now_ns();
    s_next_ask(&a);
    s_spin(a.r, &a.done);
    out[0] = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
    out[1] = bench_median(a.lat, (size_t)a.n);
    zt_actor_unref(&a.to);
    zt_reactor_destroy(&a.r);
    free(a.lat);
}

/* --- across reactors ------------------------------------------------------------------------- */

typedef struct xr {
    zt_reactor_t *r2;   /* the second reactor, run by its thread */
    zt_actor_t *remote; /* on r2 */
    pair_t state2;      /* its state (r2's thread) */
    atomic_bool ready;  /* r2's actor exists */
    atomic_bool done;   /* finished */
} xr_t;

static zt_result_t
xr_counter(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)msg;
    pair_t *p = state;
    if (++p->count == p->left)
        zt_reactor_stop(p->r);
    return zt_ok_none();
}

static void
xr_counter_spawn(void *arg)
{
    xr_t *x = arg;
    x->state2.r = x->r2;
    zt_actor_spawn(x->r2,
                   &(zt_actor_spec_t){.receive = xr_counter,
                                      .arg = &x->state2,
                                      .capacity = 1 << 16,
                                      .budget = 4096,
                                      .policy = ZT_MAILBOX_BLOCK,
                                      .block_timeout = 30},
                   &x->remote);
    atomic_store(&x->ready, true);
}

static void *
xr_thread(void *arg)
{
    xr_t *x = arg;
    x->r2 = zt_reactor_new();
    zt_reactor_call_when_running(x->r2, xr_counter_spawn, x, NULL);
    zt_reactor_run(x->r2);
    return NULL;
}

static void
run_cross_counting(void *arg, double *out)
{
    long n = *(long *)arg;
    xr_t x = {.state2 = {.left = n}};
    pthread_t t;
    pthread_create(&t, NULL, xr_thread, &x);
    while (!atomic_load(&x.ready))
        sched_yield();
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        zt_actor_tell(x.remote, zt_msg(PING, NULL, NULL));
    pthread_join(t, NULL);
    out[0] = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
    zt_actor_unref(&x.remote);
    zt_reactor_destroy(&x.r2);
}

/* Two reactors, each running one actor; the actors play ping-pong. */
typedef struct xpp {
    zt_reactor_t *r[2]; /* the reactors; r[1] made and run by the thread */
    zt_actor_t *a[2];   /* the actors */
    pair_t st[2];       /* their states */
    atomic_int ready;   /* actors spawned */
} xpp_t;

static zt_result_t
xpp_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)msg;
    pair_t *p = state;
    if (--p->left <= 0) {
        zt_reactor_stop(p->r);
        if (p->peer)
            zt_actor_tell(p->peer, zt_msg(PING, NULL, NULL)); /* the last one: let it stop too */
        p->peer = NULL;
        return zt_ok_none();
    }
    zt_actor_tell(p->peer, zt_msg(PING, NULL, NULL));
    return zt_ok_none();
}

static void
xpp_spawn(void *arg)
{
    xpp_t *x = arg;
    x->st[1].r = x->r[1];
    zt_actor_spawn(x->r[1], &(zt_actor_spec_t){.receive = xpp_receive, .arg = &x->st[1]}, &x->a[1]);
    atomic_fetch_add(&x->ready, 1);
}

static void *
xpp_thread(void *arg)
{
    xpp_t *x = arg;
    x->r[1] = zt_reactor_new();
    zt_reactor_call_when_running(x->r[1], xpp_spawn, x, NULL);
    zt_reactor_run(x->r[1]);
    return NULL;
}

static void
run_cross_pingpong(void *arg, double *out)
{
    long n = *(long *)arg;
    xpp_t x = {.st = {{.left = n}, {.left = n + 1}}};
    x.r[0] = zt_reactor_new();
    x.st[0].r = x.r[0];
    zt_actor_spawn(x.r[0], &(zt_actor_spec_t){.receive = xpp_receive, .arg = &x.st[0]}, &x.a[0]);
    pthread_t t;
    pthread_create(&t, NULL, xpp_thread, &x);
    while (atomic_load(&x.ready) < 1)
        sched_yield();
    x.st[0].peer = x.a[1];
    zt_actor_t *first = x.a[1];
    x.st[1].peer = x.a[0]; /* before the first message reaches it (the tell below publishes it) */
    uint64_t t0 = bench_now_ns();
    zt_actor_tell(first, zt_msg(PING, NULL, NULL));
    zt_reactor_run(x.r[0]);
    out[0] = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
    pthread_join(t, NULL);
    zt_actor_unref(&x.a[0]), zt_actor_unref(&x.a[1]);
    zt_reactor_destroy(&x.r[1]);
    zt_reactor_destroy(&x.r[0]);
}

/* --- main ------------------------------------------------------------------------------------ */

static void
s_bench(const char *name, bench_run_fn *fn, long n, const char *unit)
{
    double runs[BENCH_REPS];
    for (int rep = 0; rep < BENCH_REPS; rep++)
        bench_run_forked(fn, &n, &runs[rep], 1);
    bench_report(name, runs, BENCH_REPS, unit);
}

int
main(void)
{
    bool q = s_quick();
    s_bench("actors.pingpong_rt_per_s", run_pingpong, q ? 100000 : 1000000, "rt/s");
    s_bench("actors.counting_per_s", run_counting, q ? 1000000 : 10000000, "msg/s");
    s_bench("actors.ring_hops_per_s", run_ring, q ? 1000000 : 10000000, "hops/s");
    s_bench("actors.fanout_per_s", run_fanout, q ? 100 : 1000, "msg/s");
    double spawn[BENCH_REPS], bytes[BENCH_REPS], two[2];
    long n = 1000000;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        bench_run_forked(run_spawn, &n, two, 2);
        spawn[rep] = two[0], bytes[rep] = two[1];
    }
    bench_report("actors.spawn_per_s", spawn, BENCH_REPS, "spawns/s");
    bench_report("actors.bytes_per_actor", bytes, BENCH_REPS, "B");
    s_bench("actors.spawn_in_handler_per_s", run_spawn_in_handler, 1000000, "spawns/s");
    double asks[BENCH_REPS], p50[BENCH_REPS];
    n = q ? 20000 : 200000;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        bench_run_forked(run_ask, &n, two, 2);
        asks[rep] = two[0], p50[rep] = two[1];
    }
    bench_report("actors.ask_per_s", asks, BENCH_REPS, "asks/s");
    bench_report("actors.ask_p50_us", p50, BENCH_REPS, "us");
    s_bench("actors.cross_reactor_counting_per_s", run_cross_counting, q ? 1000000 : 10000000,
            "msg/s");
    s_bench("actors.cross_reactor_pingpong_rt_per_s", run_cross_pingpong, q ? 20000 : 200000,
            "rt/s");
    return 0;
}
