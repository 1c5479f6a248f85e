/*  tests/bridges/test_udp.c - UDP ports: datagrams both ways on IPv4 and IPv6, truncation
 *  reported, connected UDP and ICMP refusals, multicast, the error codes
 *
 *  Every port binds 127.0.0.1 or ::1 port 0, and the reactor is driven with zt_reactor_iterate
 * until what the test waits for has happened (bounded by a number of passes, never a sleep).  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/reactor.h>
#include <ztwist/udp.h>

#include "bridges/tcp_util.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct side {
    zt_udp_port_t *port;  /* the port */
    int received;         /* datagram_received calls */
    bool received_flag;   /* received > 0 */
    char data[256];       /* the last datagram (its first 255 bytes) */
    size_t len;           /* its length */
    zt_address_t from;    /* its sender */
    bool echo;            /* write each datagram back to its sender */
    int truncated;        /* datagram_truncated calls */
    bool truncated_flag;  /* truncated > 0 */
    size_t truncated_len; /* the length it reported */
    int refused;          /* connection_refused calls */
    bool refused_flag;    /* refused > 0 */
    int stopped;          /* stop_protocol calls */
} side_t;

typedef struct fixture {
    zt_reactor_t *reactor; /* the reactor under test */
    side_t a;              /* one port */
    side_t b;              /* the other */
} fixture_t;

static void
on_datagram(zt_udp_port_t *port, const char *data, size_t len, const zt_address_t *addr, void *arg)
{
    side_t *s = arg;
    s->received++;
    s->received_flag = true;
    s->len = len;
    memcpy(s->data, data, len < sizeof s->data - 1 ? len : sizeof s->data - 1);
    s->data[len < sizeof s->data - 1 ? len : sizeof s->data - 1] = '\0';
    s->from = *addr;
    if (s->echo)
        assert_int_equal(zt_udp_port_write(port, data, len, addr->host, addr->port), 0);
}

static void
on_truncated(zt_udp_port_t *port, size_t len, const zt_address_t *addr, void *arg)
{
    (void)port;
    (void)addr;
    side_t *s = arg;
    s->truncated++;
    s->truncated_flag = true;
    s->truncated_len = len;
}

static void
on_refused(zt_udp_port_t *port, void *arg)
{
    (void)port;
    side_t *s = arg;
    s->refused++;
    s->refused_flag = true;
}

static void
on_stop(zt_udp_port_t *port, void *arg)
{
    (void)port;
    side_t *s = arg;
    s->stopped++;
}

static const zt_datagram_protocol_vtable_t s_proto = {.datagram_received = on_datagram,
                                                      .datagram_truncated = on_truncated,
                                                      .connection_refused = on_refused,
                                                      .stop_protocol = on_stop};

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->reactor = zt_reactor_new();
    assert_non_null(fx->reactor);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_udp_port_destroy(&fx->a.port);
    zt_udp_port_destroy(&fx->b.port);
    zt_reactor_destroy(&fx->reactor);
    free(fx);
    return 0;
}

static uint16_t
port_of(const zt_udp_port_t *p)
{
    zt_address_t addr;
    assert_int_equal(zt_udp_port_get_host(p, &addr), 0);
    return addr.port;
}

/* A UDP port number nothing listens on: bound by a plain socket, then closed. */
static uint16_t
closed_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void
round_trip(fixture_t *fx, const char *host)
{
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, host, 0, &fx->a.port), 0);
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->b, host, 0, &fx->b.port), 0);
    fx->b.echo = true;
    assert_int_equal(zt_udp_port_write(fx->a.port, "ping", 4, host, port_of(fx->b.port)), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->a.received_flag));
    assert_int_equal(fx->b.received, 1);
    assert_string_equal(fx->b.data, "ping");
    assert_string_equal(fx->b.from.host, host);
    assert_int_equal(fx->b.from.port, port_of(fx->a.port));
    assert_string_equal(fx->a.data, "ping");
    assert_int_equal(fx->a.from.port, port_of(fx->b.port));
    zt_udp_stats_t st;
    zt_udp_port_stats(fx->a.port, &st);
    assert_int_equal(st.sent, 1);
    assert_int_equal(st.received, 1);
}

static void
test_udp_ipv4_round_trip_reports_sender(void **state)
{
    round_trip(*state, "127.0.0.1");
}

static void
test_udp_ipv6_round_trip_reports_sender(void **state)
{
    fixture_t *fx = *state;
    round_trip(fx, "::1");
    assert_int_equal(fx->b.from.family, ZT_AF_INET6);
}

static void
test_udp_empty_datagram_is_delivered(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->b, "127.0.0.1", 0, &fx->b.port),
                     0);
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, "127.0.0.1", 0, &fx->a.port),
                     0);
    assert_int_equal(zt_udp_port_write(fx->a.port, "", 0, "127.0.0.1", port_of(fx->b.port)), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->b.received_flag));
    assert_int_equal(fx->b.len, 0);
}

static void
test_udp_long_datagram_is_reported_truncated_not_cut(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->b, "127.0.0.1", 16, &fx->b.port),
                     0);
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, "127.0.0.1", 0, &fx->a.port),
                     0);
    char big[100];
    memset(big, 'x', sizeof big);
    uint16_t to = port_of(fx->b.port);
    assert_int_equal(zt_udp_port_write(fx->a.port, big, sizeof big, "127.0.0.1", to), 0);
    assert_int_equal(zt_udp_port_write(fx->a.port, "exactly16bytes!!", 16, "127.0.0.1", to), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->b.received_flag));
    assert_int_equal(fx->b.truncated, 1);
    assert_int_equal(fx->b.truncated_len, 16);
    assert_int_equal(fx->b.received, 1); /* only the datagram that fit */
    assert_int_equal(fx->b.len, 16);
    assert_string_equal(fx->b.data, "exactly16bytes!!");
    zt_udp_stats_t st;
    zt_udp_port_stats(fx->b.port, &st);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(st.received, 1);
}

static void
test_udp_connected_to_closed_port_reports_refused(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, "127.0.0.1", 0, &fx->a.port),
                     0);
    uint16_t dead = closed_port();
    assert_int_equal(zt_udp_port_connect(fx->a.port, "127.0.0.1", dead), 0);
    assert_int_equal(zt_udp_port_connect(fx->a.port, "127.0.0.1", dead), ZT_EALREADY);
    assert_int_equal(zt_udp_port_write(fx->a.port, "x", 1, NULL, 0), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->a.refused_flag));
    assert_int_equal(fx->a.received, 0);
    /* A connected port refuses another destination. */
    assert_int_equal(zt_udp_port_write(fx->a.port, "x", 1, "127.0.0.1", (uint16_t)(dead + 1)),
                     ZT_EINVAL);
    zt_udp_stats_t st;
    zt_udp_port_stats(fx->a.port, &st);
    assert_true(st.refused >= 1);
}

static void
test_udp_connected_port_talks_to_its_peer(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, "127.0.0.1", 0, &fx->a.port),
                     0);
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->b, "127.0.0.1", 0, &fx->b.port),
                     0);
    fx->b.echo = true;
    assert_int_equal(zt_udp_port_connect(fx->a.port, "127.0.0.1", port_of(fx->b.port)), 0);
    assert_int_equal(zt_udp_port_write(fx->a.port, "hi", 2, NULL, 0), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->a.received_flag));
    assert_string_equal(fx->a.data, "hi");
}

static void
test_udp_bad_arguments_are_refused(void **state)
{
    fixture_t *fx = *state;
    zt_udp_port_t *p = NULL;
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, "localhost", 0, &p),
                     ZT_EINVAL);
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, NULL, 70000, &p), ZT_EINVAL);
    static const zt_datagram_protocol_vtable_t empty = {0};
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &empty, &fx->a, NULL, 0, &p), ZT_EINVAL);
    assert_null(p);
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, "127.0.0.1", 0, &fx->a.port),
                     0);
    assert_int_equal(
        zt_listen_udp(fx->reactor, port_of(fx->a.port), &s_proto, &fx->b, "127.0.0.1", 0, &p),
        ZT_EADDRINUSE);
    assert_int_equal(zt_udp_port_write(fx->a.port, "x", 1, NULL, 0), ZT_EINVAL);
    assert_int_equal(zt_udp_port_write(fx->a.port, "x", 1, "localhost", 9), ZT_EINVAL);
    assert_int_equal(zt_udp_port_write(fx->a.port, "x", 1, "::1", 9), ZT_EINVAL);
    static char huge[70000];
    assert_int_equal(zt_udp_port_write(fx->a.port, huge, sizeof huge, "127.0.0.1", 9), ZT_EINVAL);
    assert_int_equal(zt_udp_port_connect(fx->a.port, "nowhere", 9), ZT_EINVAL);
    assert_int_equal(zt_udp_port_set_multicast(fx->a.port, true, 256), ZT_EINVAL);
    assert_int_equal(zt_udp_port_set_outgoing_interface(fx->a.port, "::1"), ZT_EINVAL);
    zt_deferred_t *d = zt_udp_port_stop_listening(fx->a.port);
    zt_deferred_unref(&d);
    assert_int_equal(fx->a.stopped, 1);
    d = zt_udp_port_stop_listening(fx->a.port);
    zt_deferred_unref(&d);
    assert_int_equal(fx->a.stopped, 1);
    assert_int_equal(zt_udp_port_write(fx->a.port, "x", 1, "127.0.0.1", 9), ZT_ESTATE);
    zt_address_t addr;
    assert_int_equal(zt_udp_port_get_host(fx->a.port, &addr), ZT_ESTATE);
}

static void
test_udp_flood_never_blocks(void **state)
{
    fixture_t *fx = *state;
    /* b never reads: its receive buffer fills and the kernel drops; the sender must neither block
     * nor buffer. Every write is sent or refused with ZT_EFULL, and the counts add up. */
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, "127.0.0.1", 0, &fx->a.port),
                     0);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    static char chunk[60000];
    int ok = 0, full = 0;
    for (int i = 0; i < 2000; i++) {
        int rc =
            zt_udp_port_write(fx->a.port, chunk, sizeof chunk, "127.0.0.1", ntohs(sin.sin_port));
        assert_true(rc == 0 || rc == ZT_EFULL);
        rc == 0 ? ok++ : full++;
    }
    zt_udp_stats_t st;
    zt_udp_port_stats(fx->a.port, &st);
    assert_int_equal(st.sent, ok);
    assert_int_equal(st.send_full, full);
    close(fd);
}

static void
test_udp_multicast_join_receive_leave(void **state)
{
    fixture_t *fx = *state;
    const char *group = "239.255.77.77";
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->b, NULL, 0, &fx->b.port), 0);
    int rc = zt_udp_port_join_group(fx->b.port, group, "127.0.0.1");
    if (rc == ZT_ESYS)
        skip(); /* no multicast on this host's loopback */
    assert_int_equal(rc, 0);
    assert_int_equal(zt_udp_port_join_group(fx->b.port, group, "127.0.0.1"), ZT_EADDRINUSE);
    assert_int_equal(zt_udp_port_join_group(fx->b.port, "10.0.0.1", NULL), ZT_EINVAL);
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->a, "127.0.0.1", 0, &fx->a.port),
                     0);
    assert_int_equal(zt_udp_port_set_outgoing_interface(fx->a.port, "127.0.0.1"), 0);
    assert_int_equal(zt_udp_port_set_multicast(fx->a.port, true, 1), 0);
    assert_int_equal(zt_udp_port_write(fx->a.port, "m", 1, group, port_of(fx->b.port)), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->b.received_flag));
    assert_string_equal(fx->b.data, "m");
    assert_int_equal(zt_udp_port_leave_group(fx->b.port, group, "127.0.0.1"), 0);
    assert_int_equal(zt_udp_port_leave_group(fx->b.port, group, "127.0.0.1"), ZT_ENOTFOUND);
}

static void
test_udp_ipv6_multicast_arguments(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_listen_udp(fx->reactor, 0, &s_proto, &fx->b, "::1", 0, &fx->b.port), 0);
    assert_int_equal(zt_udp_port_join_group(fx->b.port, "::1", NULL), ZT_EINVAL);
    assert_int_equal(zt_udp_port_join_group(fx->b.port, "239.1.1.1", NULL), ZT_EINVAL);
    assert_int_equal(zt_udp_port_leave_group(fx->b.port, "ff02::1:3", NULL), ZT_ENOTFOUND);
    assert_int_equal(zt_udp_port_set_multicast(fx->b.port, false, 2), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_udp_ipv4_round_trip_reports_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp_ipv6_round_trip_reports_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp_empty_datagram_is_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp_long_datagram_is_reported_truncated_not_cut, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_udp_connected_to_closed_port_reports_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_udp_connected_port_talks_to_its_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp_bad_arguments_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp_flood_never_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp_multicast_join_receive_leave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp_ipv6_multicast_arguments, setup, teardown),
    };
    return cmocka_run_group_tests_name("udp", tests, NULL, NULL);
}
