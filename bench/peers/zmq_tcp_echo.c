/*  bench/peers/zmq_tcp_echo.c - raw ZeroMQ DEALER-ROUTER echo over loopback TCP
 *
 *  The floor under remote workers: a DEALER client in this process and a ROUTER echo server in a
 * forked child, over tcp://127.0.0.1, 64-byte messages, no broker and no protocol. Figures, each
 * the median of BENCH_REPS runs, printed as peers of bench_remote's:
 *
 *      remote.latency_median_us.peer.zmq_tcp_echo    one message at a time: median round trip (us)
 *      remote.latency_p99_us.peer.zmq_tcp_echo       ... and its 99th percentile
 *      remote.throughput_1w_per_s.peer.zmq_tcp_echo  100 messages in flight: round trips/s
 *
 *  Sizes: 5,000 latency samples and 50,000 throughput messages per run (500 and 5,000 quick).  */
#include "../bench_util.h"

#include <signal.h>
#include <zmq.h>

#define SIZE 64

static void
s_die(const char *what)
{
    fprintf(stderr, "zmq_tcp_echo: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

/* The echo server: every message goes back to its sender. */
static void
s_serve(void *ctx, int ready_fd)
{
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(router, "tcp://127.0.0.1:0") != 0)
        s_die("bind");
    char endpoint[256];
    size_t size = sizeof endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &size);
    if (write(ready_fd, endpoint, size) < 0)
        _exit(1);
    close(ready_fd);
    for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, router, 0) < 0 || zmq_msg_recv(&body, router, 0) < 0)
            _exit(0);
        zmq_msg_send(&id, router, ZMQ_SNDMORE);
        zmq_msg_send(&body, router, 0);
    }
}

int
main(void)
{
    bool quick = bench_quick();
    long lat_n = quick ? 500 : 5000;
    long tput_n = quick ? 5000 : 50000;
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        s_serve(zmq_ctx_new(), fds[1]);
        _exit(0);
    }
    close(fds[1]);
    char endpoint[256] = "";
    if (read(fds[0], endpoint, sizeof endpoint - 1) <= 0)
        return 1;
    close(fds[0]);

    void *ctx = zmq_ctx_new();
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(dealer, endpoint) != 0)
        s_die("connect");
    char msg[SIZE] = {0};
    char buf[SIZE];
    for (int i = 0; i < 100; i++) { /* warm-up: the connection is up */
        zmq_send(dealer, msg, SIZE, 0);
        zmq_recv(dealer, buf, SIZE, 0);
    }
    double med[BENCH_REPS], p99[BENCH_REPS], tput[BENCH_REPS];
    double *samples = malloc((size_t)lat_n * sizeof *samples);
    for (int r = 0; r < BENCH_REPS; r++) {
        for (long i = 0; i < lat_n; i++) {
            uint64_t t0 = bench_now_ns();
            zmq_send(dealer, msg, SIZE, 0);
            zmq_recv(dealer, buf, SIZE, 0);
            samples[i] = (double)(bench_now_ns() - t0) / 1e3;
        }
        med[r] = bench_quantile(samples, (size_t)lat_n, 0.5);
        p99[r] = bench_quantile(samples, (size_t)lat_n, 0.99);
    }
    for (int r = 0; r < BENCH_REPS; r++) {
        uint64_t t0 = bench_now_ns();
        long sent = 0, got = 0;
        for (; sent < 100; sent++)
            zmq_send(dealer, msg, SIZE, 0);
        while (got < tput_n) {
            zmq_recv(dealer, buf, SIZE, 0);
            got++;
            if (sent < tput_n) {
                zmq_send(dealer, msg, SIZE, 0);
                sent++;
            }
        }
        tput[r] = (double)tput_n / ((double)(bench_now_ns() - t0) / 1e9);
    }
    bench_report("remote.latency_median_us.peer.zmq_tcp_echo", med, BENCH_REPS, "us");
    bench_report("remote.latency_p99_us.peer.zmq_tcp_echo", p99, BENCH_REPS, "us");
    bench_report("remote.throughput_1w_per_s.peer.zmq_tcp_echo", tput, BENCH_REPS, "req/s");
    free(samples);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return 0;
}
