/*  bench/bench_remote.c - remote workers: requests through a Majordomo broker to worker processes
 *
 *  The broker runs in this process's reactor; the workers are echo_worker processes connected over
 * loopback TCP; requests are 64-byte frames sent with zt_defer_to_remote by a client in the same
 * reactor, linked to the broker without a socket (zt_remote_connect_broker). Figures, each the
 * median of BENCH_REPS runs:
 *
 *      remote.latency_median_us    one request at a time, 1 worker: median round trip (us)
 *      remote.latency_p99_us       ... and its 99th percentile
 *      remote.latency_inproc_client_median_us  the same with the client on an inproc socket
 *      remote.latency_tcp_client_median_us  the same with the client on loopback TCP too
 *      remote.throughput_1w_per_s  100 requests in flight, 1 worker process: requests/s
 *      remote.throughput_4w_per_s  100 in flight, 4 worker processes: requests/s (target >= 30,000)
 *      remote.throughput_4w8c_per_s  the same with 8 connections per worker process (echo_worker
 *                                  --threads 8): RFC 7 lets a connection hold one request at a
 *                                  time, so a process serves several at once only this way
 *      remote.throughput_4w_prefetch_per_s  4 processes, 1 connection each taking 25 requests at
 *                                  once (echo_worker --prefetch 25, ztwist's extension to RFC 7):
 *                                  the requests of a connection share its TCP segments
 *
 *      remote.req_per_s_1000_workers  remote.throughput_1w_per_s with 1,000 more workers registered
 *                                  (another service, idle but heartbeating: 4 echo_worker
 *                                  processes of 250 connections): the broker's cost should not
 *                                  grow with the workers it holds (100 quick)
 *      remote.latency_median_us_1000_workers  remote.latency_median_us with those workers
 *
 *  The peer is bench/peers/zmq_tcp_echo.c: a raw DEALER client and a ROUTER echo process over
 * loopback TCP, with no broker in between (target: latency within 2x of it). Sizes: 5,000 latency
 * samples and 50,000 throughput requests per run (500 and 5,000 quick).  */
#include "bench_util.h"

#include <ztwist.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

extern char **environ;

#define SIZE 64
#define PREFETCH                                                                                   \
    25 /* requests per worker connection in the prefetch run: 4 x 25 = the 100 in flight */

typedef struct bench {
    zt_reactor_t *reactor; /* Owned */
    zt_broker_t *broker;   /* Owned */
    zt_remote_t *client;   /* Owned; linked to the broker in this reactor */
    zt_remote_t *inproc;   /* Owned; over inproc */
    zt_remote_t *tcp;      /* Owned; over loopback TCP */
    pid_t pids[4];         /* worker processes */
    int workers;           /* how many */
    long target;           /* requests in this run */
    long sent;             /* sent so far */
    long ended;            /* ended so far */
    long failures;         /* failures */
    long inflight;         /* kept in flight */
    bool done;             /* all ended */
    double started;        /* send time of the one request in flight (latency runs) */
    double *samples;       /* latency samples, us; Borrowed */
    uint8_t *seen;         /* per request of the run: its echo came back; Owned */
    char endpoint[256];    /* the broker's TCP endpoint */
} bench_t;

static void s_send(bench_t *b);

static zt_remote_t *s_use; /* the client the runs send with */

static zt_result_t
s_on_end(zt_result_t r, void *arg)
{
    bench_t *b = arg;
    if (b->samples)
        b->samples[b->ended] = (zt_time_now() - b->started) * 1e6;
    /* Every reply must be the echo of a request of this run, each once. */
    if (zt_is_err(r)) {
        b->failures++;
        zt_result_release(&r);
    } else {
        zt_frames_t *reply = zt_result_take(&r);
        uint64_t seq = UINT64_MAX;
        if (zt_frames_count(reply) == 1 && zt_frames_size(reply, 0) == SIZE)
            memcpy(&seq, zt_frames_data(reply, 0), sizeof seq);
        if (seq >= (uint64_t)b->target || b->seen[seq]++)
            b->failures++;
        zt_frames_destroy(&reply);
    }
    b->ended++;
    if (b->sent < b->target)
        s_send(b);
    else if (b->ended == b->target)
        b->done = true;
    return zt_ok_none();
}

static void
s_send(bench_t *b)
{
    char body[SIZE] = "01234567"
                      "89abcdef0123456789abcdef0123456789abcdef0123456789abcde";
    uint64_t seq = (uint64_t)b->sent;
    memcpy(body, &seq, sizeof seq); /* the request's number, which the echo brings back */
    zt_frames_t *req = zt_frames_new();
    zt_frames_add(req, body, SIZE);
    b->sent++;
    b->started = zt_time_now();
    zt_deferred_t *d = zt_defer_to_remote(b->reactor, s_use, "echo", &req, NULL);
    if (!d) {
        fprintf(stderr, "bench_remote: zt_defer_to_remote refused\n");
        exit(1);
    }
    zt_deferred_add_both(d, s_on_end, b);
    zt_deferred_unref(&d);
}

/* Run target requests with inflight in flight; returns the elapsed seconds. */
static double
s_run(bench_t *b, long target, long inflight, double *samples)
{
    b->target = target;
    b->seen = calloc((size_t)target, 1);
    if (!b->seen)
        exit(1);
    b->sent = b->ended = 0;
    b->done = false;
    b->samples = samples;
    double t0 = zt_time_now();
    for (long i = 0; i < inflight && b->sent < target; i++)
        s_send(b);
    double deadline = t0 + 120;
    while (!b->done && zt_time_now() < deadline)
        zt_reactor_iterate(b->reactor, 0.1);
    if (!b->done || b->failures) {
        fprintf(stderr, "bench_remote: %ld of %ld requests ended, %ld failures\n", b->ended, target,
                b->failures);
        exit(1);
    }
    double elapsed = zt_time_now() - t0;
    free(b->seen);
    b->seen = NULL;
    return elapsed;
}

static void
s_start(bench_t *b, int workers, int connections, int prefetch)
{
    char threads[16], ahead[16];
    snprintf(threads, sizeof threads, "%d", connections);
    snprintf(ahead, sizeof ahead, "%d", prefetch);
    memset(b, 0, sizeof *b);
    zt_log_set_level(ZT_LOG_ERROR);
    b->reactor = zt_reactor_new();
    b->broker = zt_broker_new(b->reactor);
    if (zt_broker_bind(b->broker, "tcp://127.0.0.1:0") != 0)
        exit(1);
    const char *endpoint = zt_broker_endpoint(b->broker);
    snprintf(b->endpoint, sizeof b->endpoint, "%s", endpoint);
    for (int i = 0; i < workers; i++) {
        char *argv[] = {ZT_ECHO_WORKER, "--broker", (char *)endpoint, "--service", "echo",
                        "--threads",    threads,    "--prefetch",     ahead,       NULL};
        if (posix_spawn(&b->pids[i], ZT_ECHO_WORKER, NULL, NULL, argv, environ) != 0) {
            fprintf(stderr, "bench_remote: cannot start %s\n", ZT_ECHO_WORKER);
            exit(1);
        }
    }
    b->workers = workers;
    zt_broker_stats_t st = {0};
    double deadline = zt_time_now() + 10;
    while (st.workers < (uint64_t)(workers * connections) && zt_time_now() < deadline) {
        zt_reactor_iterate(b->reactor, 0.05);
        zt_broker_stats(b->broker, &st);
    }
    if (st.workers < (uint64_t)(workers * connections))
        exit(1);
    b->tcp = zt_remote_new(b->reactor);
    zt_remote_connect(b->tcp, endpoint);
    if (zt_broker_bind(b->broker, "inproc://bench-remote") != 0)
        exit(1);
    b->inproc = zt_remote_new(b->reactor);
    zt_remote_connect(b->inproc, "inproc://bench-remote");
    b->client = zt_remote_new(b->reactor);
    if (zt_remote_connect_broker(b->client, b->broker) != 0)
        exit(1);
    s_use = b->tcp;
    s_run(b, 100, 1, NULL); /* warm-up: connections up */
    s_use = b->inproc;
    s_run(b, 100, 1, NULL);
    s_use = b->client;
    s_run(b, 100, 1, NULL);
}

#define IDLE_PROCS 4 /* processes holding the idle workers */

static void s_stop(bench_t *b);

static void
s_stop_idle(pid_t *pids)
{
    for (int i = 0; i < IDLE_PROCS; i++) {
        kill(pids[i], SIGTERM);
        waitpid(pids[i], NULL, 0);
    }
}

/* Start IDLE_PROCS echo_worker processes with n workers in all, on service "idle" (never asked),
 * into pids; wait until the broker has registered them. */
static void
s_start_idle(bench_t *b, int n, pid_t *pids)
{
    char threads[16];
    snprintf(threads, sizeof threads, "%d", n / IDLE_PROCS);
    zt_broker_stats_t st = {0};
    zt_broker_stats(b->broker, &st);
    uint64_t want = st.workers + (uint64_t)(n / IDLE_PROCS * IDLE_PROCS);
    for (int i = 0; i < IDLE_PROCS; i++) {
        char *argv[] = {ZT_ECHO_WORKER, "--broker",  b->endpoint, "--service",
                        "idle",         "--threads", threads,     NULL};
        if (posix_spawn(&pids[i], ZT_ECHO_WORKER, NULL, NULL, argv, environ) != 0) {
            fprintf(stderr, "bench_remote: cannot start %s\n", ZT_ECHO_WORKER);
            exit(1);
        }
    }
    double deadline = zt_time_now() + 120;
    while (st.workers < want && zt_time_now() < deadline) {
        zt_reactor_iterate(b->reactor, 0.05);
        zt_broker_stats(b->broker, &st);
    }
    if (st.workers < want) {
        fprintf(stderr, "bench_remote: %llu of %llu workers registered\n",
                (unsigned long long)st.workers, (unsigned long long)want);
        s_stop_idle(pids);
        s_stop(b);
        exit(1);
    }
}

static void
s_stop(bench_t *b)
{
    zt_remote_destroy(&b->client);
    zt_remote_destroy(&b->inproc);
    zt_remote_destroy(&b->tcp);
    zt_broker_destroy(&b->broker);
    for (int i = 0; i < b->workers; i++) {
        kill(b->pids[i], SIGTERM);
        waitpid(b->pids[i], NULL, 0);
    }
    zt_reactor_destroy(&b->reactor);
}

int
main(void)
{
    bool quick = bench_quick();
    long lat_n = quick ? 500 : 5000;
    long tput_n = quick ? 5000 : 50000;
    double med[BENCH_REPS], p99[BENCH_REPS], t1[BENCH_REPS], t4[BENCH_REPS], t4c[BENCH_REPS],
        t4p[BENCH_REPS], tcp[BENCH_REPS], inproc[BENCH_REPS];
    double *samples = malloc((size_t)lat_n * sizeof *samples);
    bench_t b;

    s_start(&b, 1, 1, 1);
    for (int r = 0; r < BENCH_REPS; r++) {
        s_run(&b, lat_n, 1, samples);
        med[r] = bench_quantile(samples, (size_t)lat_n, 0.5);
        p99[r] = bench_quantile(samples, (size_t)lat_n, 0.99);
    }
    s_use = b.inproc;
    for (int r = 0; r < BENCH_REPS; r++) {
        s_run(&b, lat_n, 1, samples);
        inproc[r] = bench_quantile(samples, (size_t)lat_n, 0.5);
    }
    s_use = b.tcp;
    for (int r = 0; r < BENCH_REPS; r++) {
        s_run(&b, lat_n, 1, samples);
        tcp[r] = bench_quantile(samples, (size_t)lat_n, 0.5);
    }
    s_use = b.client;
    for (int r = 0; r < BENCH_REPS; r++)
        t1[r] = tput_n / s_run(&b, tput_n, 100, NULL);
    s_stop(&b);

    int idle_n = quick ? 100 : 1000;
    double t1k[BENCH_REPS], med1k[BENCH_REPS];
    pid_t idle_pids[IDLE_PROCS];
    s_start(&b, 1, 1, 1);
    s_start_idle(&b, idle_n, idle_pids);
    for (int r = 0; r < BENCH_REPS; r++) {
        s_run(&b, lat_n, 1, samples);
        med1k[r] = bench_quantile(samples, (size_t)lat_n, 0.5);
        t1k[r] = tput_n / s_run(&b, tput_n, 100, NULL);
    }
    s_stop_idle(idle_pids);
    s_stop(&b);

    s_start(&b, 4, 1, 1);
    for (int r = 0; r < BENCH_REPS; r++)
        t4[r] = tput_n / s_run(&b, tput_n, 100, NULL);
    s_stop(&b);

    s_start(&b, 4, 8, 1);
    for (int r = 0; r < BENCH_REPS; r++)
        t4c[r] = tput_n / s_run(&b, tput_n, 100, NULL);
    s_stop(&b);

    s_start(&b, 4, 1, PREFETCH);
    for (int r = 0; r < BENCH_REPS; r++)
        t4p[r] = tput_n / s_run(&b, tput_n, 100, NULL);
    s_stop(&b);

    bench_report("remote.latency_median_us", med, BENCH_REPS, "us");
    bench_report("remote.latency_p99_us", p99, BENCH_REPS, "us");
    bench_report("remote.latency_inproc_client_median_us", inproc, BENCH_REPS, "us");
    bench_report("remote.latency_tcp_client_median_us", tcp, BENCH_REPS, "us");
    double one = bench_report("remote.throughput_1w_per_s", t1, BENCH_REPS, "req/s");
    printf("# %d more workers registered (service \"idle\", heartbeating), 1 echo worker:\n",
           idle_n);
    char name[64];
    snprintf(name, sizeof name, "remote.req_per_s_%d_workers", idle_n);
    double many = bench_report(name, t1k, BENCH_REPS, "req/s");
    printf("#   target: %s at the usual rate (>= 80%% of remote.throughput_1w_per_s): %.0f%%, "
           "%s\n",
           name, 100 * many / one, many >= 0.8 * one ? "met" : "MISSED");
    snprintf(name, sizeof name, "remote.latency_median_us_%d_workers", idle_n);
    bench_report(name, med1k, BENCH_REPS, "us");
    double four = bench_report("remote.throughput_4w_per_s", t4, BENCH_REPS, "req/s");
    double four8 = bench_report("remote.throughput_4w8c_per_s", t4c, BENCH_REPS, "req/s");
    double fourp = bench_report("remote.throughput_4w_prefetch_per_s", t4p, BENCH_REPS, "req/s");
    printf("#   target: 4 worker processes, 100 in flight >= 30000 req/s: one at a time per "
           "connection %s, 8 connections per process %s, prefetch %d %s; latency within 2x of the "
           "zmq_tcp_echo peer\n",
           four >= 30000 ? "met" : "missed", four8 >= 30000 ? "met" : "missed", PREFETCH,
           fourp >= 30000 ? "met" : "missed");
    free(samples);
    return 0;
}
