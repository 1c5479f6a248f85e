/*  bench/peers/zmq_inproc.c - raw inproc ZeroMQ PAIR sockets between two threads
 *
 *  The floor under the reactor's mailbox: ztwist's cross-thread calls travel over inproc ZeroMQ, so
 *  nothing built on it can beat a bare PAIR socket with 16-byte messages. Figures, each the median
 *  of BENCH_REPS runs, printed as peers of the reactor's cross-thread figures:
 *
 *      reactor.call_from_thread_1p_per_s.peer.zmq_inproc      one-way messages/s, one sender
 *      reactor.call_from_thread_rtt_median_us.peer.zmq_inproc  ping-pong round trip: median
 *      reactor.call_from_thread_rtt_p99_us.peer.zmq_inproc     ... and 99th percentile (us)
 *
 *  One-way: a sender thread sends N messages (1,000,000; 100,000 quick) with default high-water
 *  marks, timed from the sender's release until the main thread has received the last one.
 *  Ping-pong: an echo thread returns each message; the main thread times each exchange (20,000;
 *  2,000 quick) and takes each run's median and p99.  */
#include "../bench_util.h"

#include <pthread.h>
#include <zmq.h>

#define S_MSG_SIZE 16

/** What the second thread of a run needs. */
typedef struct {
    void *ctx;                /* the ZeroMQ context; Borrowed */
    const char *endpoint;     /* where to connect */
    size_t count;             /* messages to send (one-way) or to echo (ping-pong) */
    pthread_barrier_t *start; /* one-way: releases the sender and the clock together */
} s_peer_t;

static void
s_die(const char *what)
{
    fprintf(stderr, "zmq_inproc: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static void *
s_sender(void *arg)
{
    s_peer_t *peer = arg;
    void *sock = zmq_socket(peer->ctx, ZMQ_PAIR);
    if (!sock || zmq_connect(sock, peer->endpoint) != 0)
        s_die("sender connect");
    char msg[S_MSG_SIZE] = "0123456789abcde";
    pthread_barrier_wait(peer->start);
    for (size_t i = 0; i < peer->count; i++)
        if (zmq_send(sock, msg, sizeof msg, 0) != S_MSG_SIZE)
            s_die("send");
    zmq_close(sock);
    return NULL;
}

static void *
s_echo(void *arg)
{
    s_peer_t *peer = arg;
    void *sock = zmq_socket(peer->ctx, ZMQ_PAIR);
    if (!sock || zmq_connect(sock, peer->endpoint) != 0)
        s_die("echo connect");
    char msg[S_MSG_SIZE];
    for (size_t i = 0; i < peer->count; i++) {
        if (zmq_recv(sock, msg, sizeof msg, 0) != S_MSG_SIZE)
            s_die("echo recv");
        if (zmq_send(sock, msg, sizeof msg, 0) != S_MSG_SIZE)
            s_die("echo send");
    }
    zmq_close(sock);
    return NULL;
}

/** One one-way run; returns messages per second. */
static double
s_oneway_run(void *ctx, int rep, size_t n)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://oneway-%d", rep);
    void *sock = zmq_socket(ctx, ZMQ_PAIR);
    if (!sock || zmq_bind(sock, endpoint) != 0)
        s_die("bind");
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    s_peer_t peer = {.ctx = ctx, .endpoint = endpoint, .count = n, .start = &start};
    pthread_t thread;
    if (pthread_create(&thread, NULL, s_sender, &peer) != 0)
        s_die("thread");
    pthread_barrier_wait(&start);
    uint64_t t0 = bench_now_ns();
    char msg[S_MSG_SIZE];
    for (size_t i = 0; i < n; i++)
        if (zmq_recv(sock, msg, sizeof msg, 0) != S_MSG_SIZE)
            s_die("recv");
    uint64_t took = bench_now_ns() - t0;
    pthread_join(thread, NULL);
    pthread_barrier_destroy(&start);
    zmq_close(sock);
    return (double)n / ((double)took / 1e9);
}

/** One ping-pong run: fills *median_us and *p99_us. */
static void
s_pingpong_run(void *ctx, int rep, size_t exchanges, double *median_us, double *p99_us)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://pingpong-%d", rep);
    double *rtt = calloc(exchanges, sizeof *rtt);
    void *sock = zmq_socket(ctx, ZMQ_PAIR);
    if (!rtt || !sock || zmq_bind(sock, endpoint) != 0)
        s_die("ping-pong set-up");
    s_peer_t peer = {.ctx = ctx, .endpoint = endpoint, .count = exchanges};
    pthread_t thread;
    if (pthread_create(&thread, NULL, s_echo, &peer) != 0)
        s_die("thread");
    char msg[S_MSG_SIZE] = "0123456789abcde";
    for (size_t i = 0; i < exchanges; i++) {
        uint64_t t0 = bench_now_ns();
        if (zmq_send(sock, msg, sizeof msg, 0) != S_MSG_SIZE ||
            zmq_recv(sock, msg, sizeof msg, 0) != S_MSG_SIZE)
            s_die("ping");
        rtt[i] = (double)(bench_now_ns() - t0) / 1e3;
    }
    pthread_join(thread, NULL);
    zmq_close(sock);
    *median_us = bench_median(rtt, exchanges);
    *p99_us = bench_quantile(rtt, exchanges, 0.99);
    free(rtt);
}

int
main(void)
{
    bool quick = bench_quick();
    size_t n = quick ? 100000 : 1000000;
    size_t exchanges = quick ? 2000 : 20000;
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    printf("# libzmq %d.%d.%d inproc PAIR, %d-byte messages: %zu one-way, %zu round trips\n", major,
           minor, patch, S_MSG_SIZE, n, exchanges);
    void *ctx = zmq_ctx_new();
    if (!ctx)
        s_die("context");
    double rate[BENCH_REPS], median[BENCH_REPS], p99[BENCH_REPS];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        rate[rep] = s_oneway_run(ctx, rep, n);
        s_pingpong_run(ctx, rep, exchanges, &median[rep], &p99[rep]);
    }
    zmq_ctx_term(ctx);
    bench_report("reactor.call_from_thread_1p_per_s.peer.zmq_inproc", rate, BENCH_REPS, "msgs/s");
    bench_report("reactor.call_from_thread_rtt_median_us.peer.zmq_inproc", median, BENCH_REPS,
                 "us");
    bench_report("reactor.call_from_thread_rtt_p99_us.peer.zmq_inproc", p99, BENCH_REPS, "us");
    return 0;
}
