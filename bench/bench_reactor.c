/*  bench/bench_reactor.c - the reactor: timers, calls from other threads, idle CPU
 *
 *  Figures (bench/README.md describes the workloads; peers print the same names with .peer.<peer>),
 * each the median of BENCH_REPS runs, each run in a fresh child process (`bench_reactor timers`
 * prints the four timer figures only):
 *
 *      reactor.call_later_ns                   ns per call_later, N random delays in [0, 100] ms,
 *                                              on a reactor that ran N calls before (as the peers)
 *      reactor.call_later_cold_ns              the same on a fresh reactor: first-touch page faults
 *      reactor.call_later_run_s                s from the first schedule until the last call ran
 *      reactor.call_later_cancel_ns            ns per pair: schedule all N (with handles), cancel
 *                                              all N; the second such round on the reactor
 *      reactor.call_from_thread_1p_per_s       calls/s, 1 producer thread, N calls
 *      reactor.call_from_thread_4p_per_s       calls/s, 4 producer threads, N calls in all
 *      reactor.call_from_thread_rtt_median_us  one call there and one back, between two reactors
 *      reactor.call_from_thread_rtt_p99_us     ... the 99th percentile
 *      reactor.idle_cpu_percent                process CPU / wall while run sleeps with a far timer
 *
 *  call_later reads the monotonic clock once per call (Twisted's semantics: due `seconds` after
 * the call, not after the loop's last clock read); libuv's uv_timer_start uses the loop's cached
 * time and reads no clock. On the 2-vCPU KVM machine of 2026-11 (kvm-clock, vDSO, no system call)
 * one clock_gettime(CLOCK_MONOTONIC) costs about 26 ns, of which about 11 ns is the rdtsc itself.
 *
 *  And the mailbox's design check, raw libzmq in the same process and run: the floor (16-byte
 * messages one way from one thread's PUSH to a PULL), the target (call_from_thread_1p >= 80% of
 * that floor, and >= 3M calls/s), and the alternative the mailbox did not take: one PUSH socket
 * shared by 4 producer threads behind a mutex, against one PUSH socket per producer.
 *
 *      reactor.mailbox_floor_push_pull_1p_per_s      msgs/s, run alternately with the 1p figure
 *      reactor.call_from_thread_1p_percent_of_floor  1p / floor per pair of runs, in percent
 *      reactor.mailbox_alt_mutex_socket_4p_per_s     msgs/s, 4 threads, one socket, a mutex
 *      reactor.mailbox_alt_socket_per_thread_4p_per_s msgs/s, 4 threads, a socket each  */
#include "bench_util.h"

#include <ztwist.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <zmq.h>

enum { PRODUCERS = 4 };

static void
s_die(const char *what)
{
    fprintf(stderr, "bench_reactor: %s\n", what);
    exit(1);
}

static uint64_t
s_next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* --- timers --------------------------------------------------------------------------- */

typedef struct {
    size_t n;         /* calls scheduled */
    size_t fired;     /* calls run */
    uint64_t last_ns; /* when the last one ran */
} s_timers_t;

static void
s_on_timer(void *arg)
{
    s_timers_t *t = arg;
    if (++t->fired == t->n)
        t->last_ns = bench_now_ns();
}

static void
s_nothing(void *arg)
{
    (void)arg;
}

/* Schedule n calls with the delays and run them all; schedule_ns[0] gets ns per call_later,
 * schedule_ns[1] the same on the thread's CPU time, and the return is seconds from the first
 * schedule until the last call ran. */
static double
s_timers_round(zt_reactor_t *r, const double *delays, size_t n, double schedule_ns[2])
{
    s_timers_t t = {.n = n};
    uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
    for (size_t i = 0; i < n; i++)
        if (zt_reactor_call_later(r, delays[i], s_on_timer, &t, NULL) != 0)
            s_die("call_later");
    schedule_ns[1] = (double)(bench_cpu_ns() - c0) / (double)n;
    schedule_ns[0] = (double)(bench_now_ns() - t0) / (double)n;
    while (t.fired < n)
        if (zt_reactor_iterate(r, -1) != 0)
            s_die("iterate");
    return (double)(t.last_ns - t0) / 1e9;
}

/* Schedule n calls with handles, cancel them all, release the handles and let the reactor drop
 * the stale nodes; returns ns per schedule+cancel pair, and *cpu_ns the same on CPU time. */
static double
s_cancel_round(zt_reactor_t *r, const double *delays, size_t n, zt_delayed_call_t **calls,
               double *cpu_ns)
{
    uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
    for (size_t i = 0; i < n; i++)
        if (zt_reactor_call_later(r, delays[i], s_nothing, NULL, &calls[i]) != 0)
            s_die("call_later");
    for (size_t i = 0; i < n; i++)
        if (zt_delayed_call_cancel(calls[i]) != 0)
            s_die("cancel");
    *cpu_ns = (double)(bench_cpu_ns() - c0) / (double)n;
    double ns = (double)(bench_now_ns() - t0) / (double)n;
    for (size_t i = 0; i < n; i++)
        zt_delayed_call_release(&calls[i]);
    zt_reactor_stats_t stats;
    zt_reactor_stats(r, &stats);
    if (stats.timers_pending != 0)
        s_die("cancelled timers still pending");
    if (zt_reactor_iterate(r, 0) != 0) /* drops the stale nodes, freeing their calls */
        s_die("iterate");
    return ns;
}

/* out: [0] ns per call_later on a fresh reactor (first touch of its memory), [1] ns per call_later
 * on the same reactor again (the peers' figure: libuv reuses its handles), [2] s until the last of
 * the second round ran, [3] ns per schedule+cancel pair, also warm: the second of two rounds, as
 * calls without handles (the first figures) leave no call objects behind to reuse; [4] and [5]
 * are [1] and [3] on the thread's CPU time */
static void
s_timers_run(void *arg, double *out)
{
    size_t n = *(size_t *)arg;
    zt_reactor_t *r = zt_reactor_new();
    zt_delayed_call_t **calls = malloc(n * sizeof *calls);
    double *delays = malloc(n * sizeof *delays);
    if (!r || !calls || !delays)
        s_die("set-up");
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < n; i++) {
        delays[i] = (double)(s_next_random(&seed) % 101) / 1000.0;
        calls[i] = NULL;
    }
    double cold[2], warm[2], cpu;
    s_timers_round(r, delays, n, cold);
    out[2] = s_timers_round(r, delays, n, warm);
    out[0] = cold[0];
    out[1] = warm[0];
    out[4] = warm[1];
    s_cancel_round(r, delays, n, calls, &cpu);
    out[3] = s_cancel_round(r, delays, n, calls, &out[5]);
    free(calls);
    free(delays);
    zt_reactor_destroy(&r);
}

/* --- calls from threads ------------------------------------------------------------------ */

typedef struct s_flood s_flood_t;

typedef struct {
    s_flood_t *flood; /* Borrowed */
    size_t count;     /* calls this producer makes */
} s_producer_arg_t;

/* The fields the reactor thread writes on every call sit on a line of their own: sharing one
 * with what the producers read cost a cache-line transfer per call and measured the benchmark,
 * not the mailbox (2.0M against 2.5M calls/s from one producer when the two vCPUs were far
 * apart). */
struct s_flood {
    zt_reactor_t *reactor;     /* Borrowed */
    size_t n;                  /* calls in all */
    _Atomic uint64_t start_ns; /* the earliest producer release */
    pthread_barrier_t barrier; /* releases the producers together */
    _Alignas(64) size_t ran;   /* calls run (reactor thread) */
    uint64_t end_ns;           /* when the last one ran */
};

static void
s_flood_call(void *arg)
{
    s_flood_t *f = arg;
    if (++f->ran == f->n) {
        f->end_ns = bench_now_ns();
        zt_reactor_stop(f->reactor);
    }
}

static void *
s_flood_producer(void *arg)
{
    s_producer_arg_t *p = arg;
    s_flood_t *f = p->flood;
    pthread_barrier_wait(&f->barrier);
    uint64_t now = bench_now_ns();
    uint64_t seen = atomic_load(&f->start_ns);
    while ((seen == 0 || now < seen) && !atomic_compare_exchange_weak(&f->start_ns, &seen, now))
        ;
    zt_reactor_t *reactor = f->reactor;
    size_t count = p->count;
    for (size_t i = 0; i < count; i++)
        if (zt_reactor_call_from_thread(reactor, s_flood_call, f) != 0)
            s_die("call_from_thread");
    return NULL;
}

static void
s_release(void *arg)
{
    s_flood_t *f = arg;
    pthread_barrier_wait(&f->barrier);
}

/* arg: [0] n, [1] producers. out: [0] calls/s, [1] mailbox pauses (the reactor's pacing) */
static void
s_flood_run(void *arg, double *out)
{
    size_t n = ((size_t *)arg)[0], producers = ((size_t *)arg)[1];
    s_flood_t f = {.reactor = zt_reactor_new(), .n = n};
    if (!f.reactor)
        s_die("reactor");
    pthread_barrier_init(&f.barrier, NULL, (unsigned)producers + 1);
    pthread_t threads[PRODUCERS];
    s_producer_arg_t args[PRODUCERS];
    for (size_t i = 0; i < producers; i++) {
        args[i] = (s_producer_arg_t){&f, n / producers + (i < n % producers)};
        if (pthread_create(&threads[i], NULL, s_flood_producer, &args[i]) != 0)
            s_die("thread");
    }
    /* The reactor is running and sleeping when the producers are released. */
    zt_reactor_call_when_running(f.reactor, s_release, &f, NULL);
    zt_reactor_run(f.reactor);
    for (size_t i = 0; i < producers; i++)
        pthread_join(threads[i], NULL);
    if (f.ran != n)
        s_die("not every call ran");
    out[0] = (double)n / ((double)(f.end_ns - atomic_load(&f.start_ns)) / 1e9);
    zt_reactor_stats_t stats;
    zt_reactor_stats(f.reactor, &stats);
    out[1] = (double)stats.mailbox_pauses;
    pthread_barrier_destroy(&f.barrier);
    zt_reactor_destroy(&f.reactor);
}

/* Round trips between two reactors: the client posts a ping to the server, whose call posts the
 * pong back. */
typedef struct {
    zt_reactor_t *server; /* Borrowed: the reactor under test, on the main thread */
    zt_reactor_t *client; /* Borrowed: the client's reactor, on its own thread */
    size_t exchanges;     /* round trips to make */
    size_t done;          /* round trips made (client thread) */
    uint64_t t0;          /* when the current ping was posted */
    double *rtt_us;       /* Owned by the run: each round trip */
} s_pingpong_t;

static void s_ping(void *arg);

static void
s_pong(void *arg)
{
    s_pingpong_t *p = arg;
    p->rtt_us[p->done++] = (double)(bench_now_ns() - p->t0) / 1e3;
    if (p->done == p->exchanges) {
        zt_reactor_stop(p->server);
        zt_reactor_stop(p->client);
        return;
    }
    s_ping(p);
}

static void
s_on_server(void *arg)
{
    s_pingpong_t *p = arg;
    if (zt_reactor_call_from_thread(p->client, s_pong, p) != 0)
        s_die("pong");
}

static void
s_ping(void *arg)
{
    s_pingpong_t *p = arg;
    p->t0 = bench_now_ns();
    if (zt_reactor_call_from_thread(p->server, s_on_server, p) != 0)
        s_die("ping");
}

static void *
s_client_thread(void *arg)
{
    s_pingpong_t *p = arg;
    zt_reactor_run(p->client);
    return NULL;
}

/* arg: exchanges. out: [0] median us, [1] p99 us */
static void
s_rtt_run(void *arg, double *out)
{
    size_t exchanges = *(size_t *)arg;
    s_pingpong_t p = {.server = zt_reactor_new(),
                      .client = zt_reactor_new(),
                      .exchanges = exchanges,
                      .rtt_us = calloc(exchanges, sizeof(double))};
    if (!p.server || !p.client || !p.rtt_us)
        s_die("set-up");
    /* Set up before the client's thread takes the reactor over in run. */
    zt_reactor_call_when_running(p.client, s_ping, &p, NULL);
    pthread_t client;
    /* The client reactor runs on its own thread from here on; main only runs the server. */
    if (pthread_create(&client, NULL, s_client_thread, &p) != 0)
        s_die("thread");
    zt_reactor_run(p.server);
    pthread_join(client, NULL);
    if (p.done != exchanges)
        s_die("round trips missing");
    out[0] = bench_median(p.rtt_us, exchanges);
    out[1] = bench_quantile(p.rtt_us, exchanges, 0.99);
    free(p.rtt_us);
    zt_reactor_destroy(&p.client);
    zt_reactor_destroy(&p.server);
}

/* --- idle ------------------------------------------------------------------------------ */

static double
s_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
s_stop_reactor(void *arg)
{
    zt_reactor_stop(arg);
}

/* arg: seconds. out: [0] CPU percent of wall while the reactor runs idle */
static void
s_idle_run(void *arg, double *out)
{
    double seconds = *(double *)arg;
    zt_reactor_t *r = zt_reactor_new();
    zt_delayed_call_t *far = NULL;
    if (!r || zt_reactor_call_later(r, 3600, s_nothing, NULL, &far) != 0 ||
        zt_reactor_call_later(r, seconds, s_stop_reactor, r, NULL) != 0)
        s_die("set-up");
    double cpu0 = s_cpu_seconds(), wall0 = zt_time_now();
    zt_reactor_run(r);
    double wall = zt_time_now() - wall0, cpu = s_cpu_seconds() - cpu0;
    out[0] = 100.0 * cpu / wall;
    zt_delayed_call_release(&far);
    zt_reactor_destroy(&r);
}

/* --- raw libzmq: the mailbox's floor and the alternative design ------------------------- */

typedef struct {
    void *ctx;                  /* Borrowed */
    void *shared;               /* Borrowed: the shared PUSH socket, or NULL for one per thread */
    pthread_mutex_t *lock;      /* guards shared */
    size_t count;               /* messages to send */
    pthread_barrier_t *start;   /* releases the senders */
    _Atomic uint64_t *start_ns; /* the earliest release */
} s_raw_t;

static void *
s_raw_sender(void *arg)
{
    s_raw_t *s = arg;
    void *own = NULL;
    if (!s->shared) {
        own = zmq_socket(s->ctx, ZMQ_PUSH);
        if (!own || zmq_connect(own, "inproc://bench-raw") != 0)
            s_die("raw connect");
    }
    char msg[16] = {0};
    pthread_barrier_wait(s->start);
    uint64_t now = bench_now_ns(), seen = atomic_load(s->start_ns);
    while ((seen == 0 || now < seen) && !atomic_compare_exchange_weak(s->start_ns, &seen, now))
        ;
    for (size_t i = 0; i < s->count; i++) {
        if (own) {
            if (zmq_send(own, msg, sizeof msg, 0) != sizeof msg)
                s_die("raw send");
        } else {
            pthread_mutex_lock(s->lock);
            int rc = zmq_send(s->shared, msg, sizeof msg, 0);
            pthread_mutex_unlock(s->lock);
            if (rc != sizeof msg)
                s_die("raw send");
        }
    }
    if (own)
        zmq_close(own);
    return NULL;
}

/* arg: [0] n, [1] senders, [2] shared (0/1). out: [0] msgs/s */
static void
s_raw_run(void *arg, double *out)
{
    size_t n = ((size_t *)arg)[0], senders = ((size_t *)arg)[1];
    bool shared = ((size_t *)arg)[2] != 0;
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    if (!pull || zmq_bind(pull, "inproc://bench-raw") != 0)
        s_die("raw bind");
    void *push = NULL;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (shared) {
        push = zmq_socket(ctx, ZMQ_PUSH);
        if (!push || zmq_connect(push, "inproc://bench-raw") != 0)
            s_die("raw connect");
    }
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)senders);
    _Atomic uint64_t start_ns = 0;
    pthread_t threads[PRODUCERS];
    s_raw_t args[PRODUCERS];
    for (size_t i = 0; i < senders; i++) {
        args[i] = (s_raw_t){ctx, push, &lock, n / senders + (i < n % senders), &start, &start_ns};
        if (pthread_create(&threads[i], NULL, s_raw_sender, &args[i]) != 0)
            s_die("thread");
    }
    char msg[16];
    for (size_t i = 0; i < n; i++)
        if (zmq_recv(pull, msg, sizeof msg, 0) != sizeof msg)
            s_die("raw recv");
    uint64_t end = bench_now_ns();
    for (size_t i = 0; i < senders; i++)
        pthread_join(threads[i], NULL);
    out[0] = (double)n / ((double)(end - atomic_load(&start_ns)) / 1e9);
    if (push)
        zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    pthread_barrier_destroy(&start);
}

/* --- main ------------------------------------------------------------------------------ */

static double
s_run(const char *name, const char *unit, bench_run_fn *fn, void *arg, size_t index, size_t nout)
{
    double runs[BENCH_REPS], out[4];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        bench_run_forked(fn, arg, out, nout);
        runs[rep] = out[index];
    }
    return bench_report(name, runs, BENCH_REPS, unit);
}

static void
s_run2(const char *name0, const char *name1, const char *unit0, const char *unit1, bench_run_fn *fn,
       void *arg)
{
    double a[BENCH_REPS], b[BENCH_REPS], out[4];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        bench_run_forked(fn, arg, out, 2);
        a[rep] = out[0];
        b[rep] = out[1];
    }
    bench_report(name0, a, BENCH_REPS, unit0);
    bench_report(name1, b, BENCH_REPS, unit1);
}

int
main(int argc, char **argv)
{
    /* `bench_reactor timers` runs only the timer figures: the A/B runs of timer changes. */
    bool timers_only = argc > 1 && strcmp(argv[1], "timers") == 0;
    /* `bench_reactor cft` runs only the call_from_thread figures and the floor, for A/B runs. */
    bool cft_only = argc > 1 && strcmp(argv[1], "cft") == 0;
    bool quick = bench_quick();
    size_t n_timers = quick ? 100000 : 1000000;
    size_t n_calls = quick ? 100000 : 1000000;
    size_t exchanges = quick ? 2000 : 20000;
    double idle_s = quick ? 0.2 : 1.0;
    printf("# reactor: %zu timers, %zu calls from threads, %zu round trips, %.1f s idle\n",
           n_timers, n_calls, exchanges, idle_s);

    double cold[BENCH_REPS], warm[BENCH_REPS], run_s[BENCH_REPS], cancel[BENCH_REPS];
    double warm_cpu[BENCH_REPS], cancel_cpu[BENCH_REPS], out6[6];
    for (int rep = 0; rep < BENCH_REPS && !cft_only; rep++) {
        bench_run_forked(s_timers_run, &n_timers, out6, 6);
        cold[rep] = out6[0];
        warm[rep] = out6[1];
        run_s[rep] = out6[2];
        cancel[rep] = out6[3];
        warm_cpu[rep] = out6[4];
        cancel_cpu[rep] = out6[5];
    }
    if (!cft_only) {
        bench_report("reactor.call_later_ns", warm, BENCH_REPS, "ns");
        bench_note("reactor.call_later_ns", "on CPU time", warm_cpu, BENCH_REPS, "ns");
        bench_report("reactor.call_later_cold_ns", cold, BENCH_REPS, "ns");
        bench_report("reactor.call_later_run_s", run_s, BENCH_REPS, "s");
        bench_report("reactor.call_later_cancel_ns", cancel, BENCH_REPS, "ns");
        bench_note("reactor.call_later_cancel_ns", "on CPU time", cancel_cpu, BENCH_REPS, "ns");
    }
    if (timers_only)
        return 0;

    /* 1 producer and the raw floor alternate, so that both see the same machine load. */
    size_t one[2] = {n_calls, 1}, four[2] = {n_calls, PRODUCERS}, raw1[3] = {n_calls, 1, 0};
    double p1_runs[BENCH_REPS], floor_runs[BENCH_REPS], ratio_runs[BENCH_REPS], out[2];
    double pauses[BENCH_REPS];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        bench_run_forked(s_flood_run, one, out, 2);
        p1_runs[rep] = out[0];
        pauses[rep] = out[1];
        bench_run_forked(s_raw_run, raw1, out, 1);
        floor_runs[rep] = out[0];
        ratio_runs[rep] = 100.0 * p1_runs[rep] / floor_runs[rep];
    }
    double p1 = bench_report("reactor.call_from_thread_1p_per_s", p1_runs, BENCH_REPS, "calls/s");
    bench_note("reactor.call_from_thread_1p_per_s", "mailbox pauses per run", pauses, BENCH_REPS,
               "");
    bench_report("reactor.mailbox_floor_push_pull_1p_per_s", floor_runs, BENCH_REPS, "msgs/s");
    double ratio =
        bench_report("reactor.call_from_thread_1p_percent_of_floor", ratio_runs, BENCH_REPS, "%");
    s_run("reactor.call_from_thread_4p_per_s", "calls/s", s_flood_run, four, 0, 1);
    s_run2("reactor.call_from_thread_rtt_median_us", "reactor.call_from_thread_rtt_p99_us", "us",
           "us", s_rtt_run, &exchanges);
    if (cft_only)
        return 0;
    s_run("reactor.idle_cpu_percent", "%", s_idle_run, &idle_s, 0, 1);

    size_t mutex4[3] = {n_calls, PRODUCERS, 1}, own4[3] = {n_calls, PRODUCERS, 0};
    s_run("reactor.mailbox_alt_mutex_socket_4p_per_s", "msgs/s", s_raw_run, mutex4, 0, 1);
    s_run("reactor.mailbox_alt_socket_per_thread_4p_per_s", "msgs/s", s_raw_run, own4, 0, 1);
    printf("#   target: reactor.call_from_thread_1p_per_s >= 3000000 calls/s: %s\n",
           p1 >= 3e6 ? "met" : "MISSED");
    printf("#   target: reactor.call_from_thread_1p_percent_of_floor >= 80 %%: %s\n",
           ratio >= 80 ? "met" : "MISSED");
    return 0;
}
