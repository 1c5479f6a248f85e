/*  bench/peers/libuv_udp.c - libuv's UDP, the peer of bench_udp
 *
 *  One figure, udp.round_trips_per_s.peer.libuv, the median of BENCH_REPS runs on a fresh loop:
 *  a client handle sends a 64-byte datagram to an echo handle on 127.0.0.1, which sends it back;
 *  the next leaves when the echo arrives; N round trips (100,000; 5,000 quick). Sends use
 *  uv_udp_try_send, which writes at once as ztwist's zt_udp_port_write does.  */
#include "../bench_util.h"

#include <uv.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct run {
    uv_loop_t loop;        /* the loop */
    uv_udp_t echo;         /* the echo handle */
    uv_udp_t client;       /* the client handle */
    struct sockaddr_in to; /* the echo's address */
    char buf[2][65536];    /* receive buffers, one per handle */
    size_t left;           /* round trips still to make */
    bool failed;           /* a send failed */
} run_t;

static void
s_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    run_t *r = h->data;
    char *mem = (uv_udp_t *)h == &r->echo ? r->buf[0] : r->buf[1];
    *buf = uv_buf_init(mem, sizeof r->buf[0]);
}

static void
s_echo_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
            unsigned flags)
{
    (void)flags;
    run_t *r = h->data;
    if (n <= 0 || !from)
        return;
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);
    if (uv_udp_try_send(h, &out, 1, from) < 0)
        r->failed = true;
}

static void
s_client_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
              unsigned flags)
{
    (void)flags;
    (void)from;
    run_t *r = h->data;
    if (n <= 0)
        return;
    if (--r->left == 0 || r->failed) {
        uv_udp_recv_stop(&r->echo);
        uv_udp_recv_stop(&r->client);
        return;
    }
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);
    if (uv_udp_try_send(h, &out, 1, (const struct sockaddr *)&r->to) < 0)
        r->failed = true;
}

static void
s_on_close(uv_handle_t *h)
{
    (void)h;
}

static double
s_one_run(run_t *r, size_t n)
{
    uv_loop_init(&r->loop);
    uv_udp_init(&r->loop, &r->echo);
    uv_udp_init(&r->loop, &r->client);
    r->echo.data = r->client.data = r;
    struct sockaddr_in any;
    uv_ip4_addr("127.0.0.1", 0, &any);
    uv_udp_bind(&r->echo, (const struct sockaddr *)&any, 0);
    uv_udp_bind(&r->client, (const struct sockaddr *)&any, 0);
    int len = sizeof r->to;
    uv_udp_getsockname(&r->echo, (struct sockaddr *)&r->to, &len);
    uv_udp_recv_start(&r->echo, s_alloc, s_echo_recv);
    uv_udp_recv_start(&r->client, s_alloc, s_client_recv);
    r->left = n;
    char payload[64] = {0};
    uv_buf_t out = uv_buf_init(payload, sizeof payload);
    uint64_t t0 = bench_now_ns();
    if (uv_udp_try_send(&r->client, &out, 1, (const struct sockaddr *)&r->to) < 0)
        r->failed = true;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uint64_t t1 = bench_now_ns();
    uv_close((uv_handle_t *)&r->echo, s_on_close);
    uv_close((uv_handle_t *)&r->client, s_on_close);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    if (r->failed || r->left != 0) {
        fprintf(stderr, "libuv_udp: a send failed or the loop ended early\n");
        exit(1);
    }
    return (double)n / ((double)(t1 - t0) / 1e9);
}

int
main(void)
{
    size_t n = bench_quick() ? 5000 : 100000;
    printf("# libuv %s: N = %zu UDP round trips of 64 bytes on 127.0.0.1, one loop\n",
           uv_version_string(), n);
    run_t *r = calloc(1, sizeof *r);
    if (!r)
        return 1;
    double runs[BENCH_REPS];
    for (size_t i = 0; i < BENCH_REPS; i++)
        runs[i] = s_one_run(r, n);
    bench_report("udp.round_trips_per_s.peer.libuv", runs, BENCH_REPS, "round_trips/s");
    free(r);
    return 0;
}
