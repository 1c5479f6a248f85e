/*  bench/bench_udp.c - UDP round trips through two ports of one reactor (peer: twisted_udp.py)
 *
 *  One figure, the median of BENCH_REPS runs on a fresh reactor:
 *
 *      udp.round_trips_per_s   a client port sends a 64-byte datagram to an echo port on
 *                              127.0.0.1, which sends it back; the client sends the next when the
 *                              echo arrives; N round trips (100,000; 5,000 quick)
 *
 *  Both ports run on one reactor thread, as in the Twisted peer, so the figure is the cost of two
 *  sendto, two recvmsg and two poll wake-ups per round trip through the reactor's loop.  */
#include "bench_util.h"

#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct run {
    zt_udp_port_t *echo;   /* the echo port */
    zt_udp_port_t *client; /* the client port */
    uint16_t echo_port;    /* its number */
    size_t left;           /* round trips still to make */
    bool failed;           /* a write failed */
} run_t;

static void
s_echo(zt_udp_port_t *port, const char *data, size_t len, const zt_address_t *from, void *arg)
{
    run_t *r = arg;
    if (zt_udp_port_write(port, data, len, from->host, from->port) != 0)
        r->failed = true;
}

static void
s_back(zt_udp_port_t *port, const char *data, size_t len, const zt_address_t *from, void *arg)
{
    (void)from;
    run_t *r = arg;
    if (--r->left > 0 && zt_udp_port_write(port, data, len, "127.0.0.1", r->echo_port) != 0)
        r->failed = true;
}

static const zt_datagram_protocol_vtable_t s_echo_vt = {.datagram_received = s_echo};
static const zt_datagram_protocol_vtable_t s_back_vt = {.datagram_received = s_back};

static double
s_one_run(size_t n)
{
    zt_reactor_t *reactor = zt_reactor_new();
    run_t r = {.left = n};
    zt_address_t addr;
    if (!reactor || zt_listen_udp(reactor, 0, &s_echo_vt, &r, "127.0.0.1", 0, &r.echo) != 0 ||
        zt_listen_udp(reactor, 0, &s_back_vt, &r, "127.0.0.1", 0, &r.client) != 0 ||
        zt_udp_port_get_host(r.echo, &addr) != 0) {
        fprintf(stderr, "bench_udp: setup failed\n");
        exit(1);
    }
    r.echo_port = addr.port;
    char payload[64] = {0};
    uint64_t t0 = bench_now_ns();
    if (zt_udp_port_write(r.client, payload, sizeof payload, "127.0.0.1", r.echo_port) != 0)
        r.failed = true;
    while (r.left > 0 && !r.failed)
        zt_reactor_iterate(reactor, 1.0);
    uint64_t t1 = bench_now_ns();
    if (r.failed) {
        fprintf(stderr, "bench_udp: a write failed (a datagram lost on loopback?)\n");
        exit(1);
    }
    zt_udp_port_destroy(&r.echo);
    zt_udp_port_destroy(&r.client);
    zt_reactor_destroy(&reactor);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

int
main(void)
{
    size_t n = bench_quick() ? 5000 : 100000;
    printf("# bench_udp: N = %zu round trips of 64 bytes on 127.0.0.1, one reactor\n", n);
    double runs[BENCH_REPS];
    for (size_t i = 0; i < BENCH_REPS; i++)
        runs[i] = s_one_run(n);
    bench_report("udp.round_trips_per_s", runs, BENCH_REPS, "round_trips/s");
    return 0;
}
