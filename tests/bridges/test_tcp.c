/*  tests/bridges/test_tcp.c - TCP ports, connections and the transport, against plain sockets
 *
 *  Each test listens on 127.0.0.1 port 0 (or connects to a plain listening socket) and drives the
 * reactor with zt_reactor_iterate until what it waits for has happened. The fixture's protocol
 * records every event (connection_made, data_received, connection_lost and its reason) and does
 * what the test asks of it on connection_made (write a greeting, lose or abort the connection).
 * Tests after Twisted's test_tcp.py: ConnectionDone vs ConnectionLost, loseConnection after the
 * buffer is flushed, abortConnection, the factory's start/stop count, producers and a slow
 * reader.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/deferred.h>
#include <ztwist/protocol.h>
#include <ztwist/reactor.h>
#include <ztwist/tcp.h>

#include "bridges/tcp_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RX_CAP (4u << 20)

typedef struct fixture {
    zt_reactor_t *reactor;              /* the reactor under test */
    zt_factory_t *factory;              /* the fixture's factory */
    zt_tcp_port_t *port;                /* the listening port, or NULL */
    uint16_t portno;                    /* its real port number */
    int client_fd;                      /* a plain socket of the test, or -1 */
    int listen_fd;                      /* a plain listening socket of the test, or -1 */
    zt_transport_t *transport;          /* the last connection made (our reference), or NULL */
    bool refuse;                        /* build_protocol refuses */
    const char *greeting;               /* written on connection_made, or NULL */
    size_t greeting_repeat;             /* how many times to write it */
    bool lose_on_made;                  /* lose_connection on connection_made */
    bool abort_on_made;                 /* abort_connection on connection_made */
    bool write_after_lose_rc_seen;      /* the write after lose_connection was checked */
    int write_after_lose_rc;            /* what it returned */
    int lost_inside_lose;               /* connection_lost calls seen right after lose_connection */
    int built;                          /* build_protocol calls */
    zt_address_t built_addr;            /* the address build_protocol got */
    int made;                           /* connection_made calls */
    bool made_flag;                     /* made > 0, for waits */
    int lost;                           /* connection_lost calls */
    bool lost_flag;                     /* lost > 0, for waits */
    const zt_failure_type_t *lost_type; /* the reason's type */
    bool transport_in_lost;             /* zt_protocol_transport was non-NULL in connection_lost */
    char *rx;                           /* Owned: bytes received by the protocol */
    size_t rx_len;                      /* how many */
    int starts;                         /* start_factory calls */
    int stops;                          /* stop_factory calls */
    int client_failed;                  /* client_connection_failed calls */
    bool client_failed_flag;            /* client_failed > 0 */
    const zt_failure_type_t *client_failed_type; /* its reason's type */
    int client_lost;                             /* client_connection_lost calls */
    bool client_lost_flag;                       /* client_lost > 0 */
    int lost_before_client_lost; /* connection_lost had run when client_connection_lost ran */
    bool d_fired;                /* the connect Deferred fired */
    bool d_ok;                   /* ... with a value */
    zt_protocol_t *d_protocol;   /* the value */
    const zt_failure_type_t *d_fail_type; /* or its failure's type */
    int pauses;                           /* producer pause_producing calls */
    int resumes;                          /* producer resume_producing calls */
    int producer_stops;                   /* producer stop_producing calls */
    bool producing;                       /* the test producer is not paused */
    bool half_close;                      /* build a half-closeable protocol */
    bool lose_write_on_made;              /* lose_write_connection on connection_made */
    int write_after_lose_write_rc;        /* what a write after it returned */
    const char *reply_on_read_lost;       /* written, then lose_connection, at end of stream */
    int read_lost;                        /* read_connection_lost calls */
    bool read_lost_flag;                  /* read_lost > 0 */
    int write_lost;                       /* write_connection_lost calls */
    bool write_lost_flag;                 /* write_lost > 0 */
} fixture_t;

/* --- the fixture's protocol and factory ----------------------------------------------- */

static void
on_made(zt_protocol_t *p, void *arg)
{
    fixture_t *fx = arg;
    fx->made++;
    fx->made_flag = true;
    zt_transport_t *t = zt_protocol_transport(p);
    assert_non_null(t);
    zt_transport_unref(&fx->transport);
    fx->transport = zt_transport_ref(t);
    for (size_t i = 0; fx->greeting && i < (fx->greeting_repeat ? fx->greeting_repeat : 1); i++)
        assert_int_equal(zt_transport_write(t, fx->greeting, strlen(fx->greeting)), 0);
    if (fx->lose_on_made) {
        assert_int_equal(zt_transport_lose_connection(t), 0);
        fx->write_after_lose_rc = zt_transport_write(t, "x", 1);
        fx->write_after_lose_rc_seen = true;
        fx->lost_inside_lose = fx->lost;
    }
    if (fx->abort_on_made)
        assert_int_equal(zt_transport_abort_connection(t), 0);
    if (fx->lose_write_on_made) {
        assert_int_equal(zt_transport_lose_write_connection(t), 0);
        assert_int_equal(zt_transport_lose_write_connection(t), ZT_ESTATE);
        fx->write_after_lose_write_rc = zt_transport_write(t, "x", 1);
    }
}

static void
on_data(zt_protocol_t *p, const char *data, size_t len, void *arg)
{
    (void)p;
    fixture_t *fx = arg;
    if (fx->rx_len + len > RX_CAP)
        len = RX_CAP - fx->rx_len;
    memcpy(fx->rx + fx->rx_len, data, len);
    fx->rx_len += len;
}

static void
on_lost(zt_protocol_t *p, const zt_failure_t *reason, void *arg)
{
    fixture_t *fx = arg;
    fx->lost++;
    fx->lost_flag = true;
    fx->lost_type = zt_failure_type(reason);
    fx->transport_in_lost = zt_protocol_transport(p) != NULL;
}

static const zt_protocol_vtable_t fixture_protocol = {
    .connection_made = on_made,
    .data_received = on_data,
    .connection_lost = on_lost,
};

static void
on_read_lost(zt_protocol_t *p, void *arg)
{
    fixture_t *fx = arg;
    fx->read_lost++;
    fx->read_lost_flag = true;
    zt_transport_t *t = zt_protocol_transport(p);
    assert_non_null(t);
    if (fx->reply_on_read_lost) {
        assert_int_equal(
            zt_transport_write(t, fx->reply_on_read_lost, strlen(fx->reply_on_read_lost)), 0);
        assert_int_equal(zt_transport_lose_connection(t), 0);
    }
}

static void
on_write_lost(zt_protocol_t *p, void *arg)
{
    (void)p;
    fixture_t *fx = arg;
    fx->write_lost++;
    fx->write_lost_flag = true;
}

static const zt_protocol_vtable_t fixture_half_protocol = {
    .connection_made = on_made,
    .data_received = on_data,
    .connection_lost = on_lost,
    .read_connection_lost = on_read_lost,
    .write_connection_lost = on_write_lost,
};

static zt_protocol_t *
build(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f;
    fixture_t *fx = arg;
    fx->built++;
    fx->built_addr = *addr;
    if (fx->refuse)
        return NULL;
    return zt_protocol_new(fx->half_close ? &fixture_half_protocol : &fixture_protocol, fx, NULL);
}

static void
start_factory(zt_factory_t *f, void *arg)
{
    (void)f;
    ((fixture_t *)arg)->starts++;
}

static void
stop_factory(zt_factory_t *f, void *arg)
{
    (void)f;
    ((fixture_t *)arg)->stops++;
}

static void
client_failed(zt_factory_t *f, const zt_failure_t *reason, void *arg)
{
    (void)f;
    fixture_t *fx = arg;
    fx->client_failed++;
    fx->client_failed_flag = true;
    fx->client_failed_type = zt_failure_type(reason);
}

static void
client_lost(zt_factory_t *f, const zt_failure_t *reason, void *arg)
{
    (void)f;
    (void)reason;
    fixture_t *fx = arg;
    fx->client_lost++;
    fx->client_lost_flag = true;
    fx->lost_before_client_lost = fx->lost;
}

static const zt_factory_vtable_t fixture_factory = {
    .build_protocol = build,
    .start_factory = start_factory,
    .stop_factory = stop_factory,
    .client_connection_failed = client_failed,
    .client_connection_lost = client_lost,
};

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->rx = malloc(RX_CAP);
    assert_non_null(fx->rx);
    fx->client_fd = fx->listen_fd = -1;
    fx->reactor = zt_reactor_new();
    assert_non_null(fx->reactor);
    fx->factory = zt_factory_new(&fixture_factory, fx);
    assert_non_null(fx->factory);
    *state = fx;
    return 0;
}

/* Listen on 127.0.0.1 port 0 with the fixture's factory. */
static void
listen_local(fixture_t *fx)
{
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, fx->factory, 0, "127.0.0.1", &fx->port), 0);
    zt_address_t addr;
    assert_int_equal(zt_tcp_port_get_host(fx->port, &addr), 0);
    fx->portno = addr.port;
}

/* A plain listening socket on 127.0.0.1 port 0; returns its port. */
static uint16_t
plain_listen(fixture_t *fx)
{
    fx->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fx->listen_fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fx->listen_fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(fx->listen_fd, 16), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(fx->listen_fd, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    if (fx->client_fd >= 0)
        close(fx->client_fd);
    if (fx->listen_fd >= 0)
        close(fx->listen_fd);
    if (fx->transport && zt_transport_is_connected(fx->transport))
        zt_transport_abort_connection(fx->transport);
    if (fx->port)
        zt_tcp_port_lose_connections(fx->port, true);
    tcp_util_spin(fx->reactor, 5);
    zt_transport_unref(&fx->transport);
    zt_tcp_port_destroy(&fx->port);
    zt_factory_destroy(&fx->factory);
    zt_reactor_destroy(&fx->reactor);
    free(fx->rx);
    free(fx);
    return 0;
}

/* --- listening ------------------------------------------------------------------------ */

static void
test_tcp_listen_port_zero_reports_the_real_port(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    assert_true(fx->portno > 0);
    zt_address_t addr;
    assert_int_equal(zt_tcp_port_get_host(fx->port, &addr), 0);
    assert_int_equal(addr.family, ZT_AF_INET);
    assert_string_equal(addr.host, "127.0.0.1");
    assert_int_equal(fx->starts, 1);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(fx->client_fd >= 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    assert_int_equal(fx->built, 1);
    assert_string_equal(fx->built_addr.host, "127.0.0.1");
    assert_int_equal(zt_tcp_port_connection_count(fx->port), 1);
}

static void
test_tcp_listen_bad_arguments_are_refused(void **state)
{
    fixture_t *fx = *state;
    zt_tcp_port_t *port = NULL;
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, fx->factory, 0, "localhost", &port), ZT_EINVAL);
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, NULL, 0, "127.0.0.1", &port), ZT_EINVAL);
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, fx->factory, 0, "127.0.0.1", NULL), ZT_EINVAL);
    assert_null(port);
    assert_int_equal(fx->starts, 0);
}

static void
test_tcp_listen_port_in_use_is_eaddrinuse(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    zt_tcp_port_t *second = NULL;
    assert_int_equal(zt_listen_tcp(fx->reactor, fx->portno, fx->factory, 0, "127.0.0.1", &second),
                     ZT_EADDRINUSE);
    assert_null(second);
    assert_int_equal(fx->starts, 1);
}

static void
test_tcp_factory_start_and_stop_counted_over_ports(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    zt_tcp_port_t *second = NULL;
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, fx->factory, 0, "127.0.0.1", &second), 0);
    assert_int_equal(fx->starts, 1);
    assert_int_equal(zt_factory_users(fx->factory), 2);
    zt_deferred_t *d = zt_tcp_port_stop_listening(second);
    assert_non_null(d);
    assert_true(zt_deferred_is_called(d));
    zt_deferred_unref(&d);
    assert_int_equal(fx->stops, 0);
    zt_tcp_port_destroy(&second);
    assert_null(second);
    d = zt_tcp_port_stop_listening(fx->port);
    zt_deferred_unref(&d);
    assert_int_equal(fx->stops, 1);
    /* A second stop fires its Deferred too and counts nothing. */
    d = zt_tcp_port_stop_listening(fx->port);
    assert_true(zt_deferred_is_called(d));
    zt_deferred_unref(&d);
    assert_int_equal(fx->stops, 1);
    zt_address_t addr;
    assert_int_equal(zt_tcp_port_get_host(fx->port, &addr), ZT_ESTATE);
}

static void
test_tcp_stop_listening_refuses_new_connections(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    zt_deferred_t *d = zt_tcp_port_stop_listening(fx->port);
    zt_deferred_unref(&d);
    assert_int_equal(tcp_util_connect(fx->portno), -1);
    assert_int_equal(errno, ECONNREFUSED);
}

static void
test_tcp_stop_listening_keeps_accepted_connections(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    zt_deferred_t *d = zt_tcp_port_stop_listening(fx->port);
    zt_deferred_unref(&d);
    assert_true(tcp_util_send_all(fx->client_fd, "still here", 10));
    for (int i = 0; i < TCP_UTIL_PASSES && fx->rx_len < 10; i++)
        zt_reactor_iterate(fx->reactor, 0.01);
    assert_memory_equal(fx->rx, "still here", 10);
}

static void
test_tcp_ipv6_loopback_accepts_and_reports_family(void **state)
{
    fixture_t *fx = *state;
    int rc = zt_listen_tcp(fx->reactor, 0, fx->factory, 0, "::1", &fx->port);
    if (rc == ZT_EINVAL) {
        skip(); /* no IPv6 loopback on this machine */
    }
    assert_int_equal(rc, 0);
    zt_address_t addr;
    assert_int_equal(zt_tcp_port_get_host(fx->port, &addr), 0);
    assert_int_equal(addr.family, ZT_AF_INET6);
    assert_string_equal(addr.host, "::1");
    zt_deferred_t *d = zt_connect_tcp(fx->reactor, "::1", addr.port, fx->factory, 5);
    assert_non_null(d);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    /* Both ends are made: the server's and the client's. */
    for (int i = 0; i < TCP_UTIL_PASSES && fx->made < 2; i++)
        zt_reactor_iterate(fx->reactor, 0.01);
    assert_int_equal(fx->made, 2);
    zt_address_t peer;
    assert_int_equal(zt_transport_get_peer(fx->transport, &peer), 0);
    assert_int_equal(peer.family, ZT_AF_INET6);
    zt_deferred_unref(&d);
}

/* A port on the wildcard address accepts on 127.0.0.1: this end's address is the one the
 * connection arrived on, not the port's 0.0.0.0. */
static void
test_tcp_accepted_on_any_address_reports_its_own_address(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, fx->factory, 0, "0.0.0.0", &fx->port), 0);
    zt_address_t addr;
    assert_int_equal(zt_tcp_port_get_host(fx->port, &addr), 0);
    assert_string_equal(addr.host, "0.0.0.0");
    fx->portno = addr.port;
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    zt_address_t host, again;
    assert_int_equal(zt_transport_get_host(fx->transport, &host), 0);
    assert_int_equal(host.family, ZT_AF_INET);
    assert_string_equal(host.host, "127.0.0.1");
    assert_int_equal(host.port, fx->portno);
    /* Asked once, it is known: the same answer after the connection is closed. */
    assert_int_equal(zt_transport_abort_connection(fx->transport), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_int_equal(zt_transport_get_host(fx->transport, &again), 0);
    assert_string_equal(again.host, "127.0.0.1");
    assert_int_equal(again.port, fx->portno);
}

/* A client's own address is its socket's: the address and ephemeral port the server sees. */
static void
test_tcp_connect_reports_its_own_address(void **state)
{
    fixture_t *fx = *state;
    uint16_t port = plain_listen(fx);
    zt_deferred_t *d = zt_connect_tcp(fx->reactor, "127.0.0.1", port, fx->factory, 5);
    assert_non_null(d);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    zt_deferred_unref(&d);
    fx->client_fd = accept(fx->listen_fd, NULL, NULL);
    assert_true(fx->client_fd >= 0);
    struct sockaddr_in seen;
    socklen_t len = sizeof seen;
    assert_int_equal(getpeername(fx->client_fd, (struct sockaddr *)&seen, &len), 0);
    zt_address_t host;
    assert_int_equal(zt_transport_get_host(fx->transport, &host), 0);
    assert_string_equal(host.host, "127.0.0.1");
    assert_int_equal(host.port, ntohs(seen.sin_port));
    assert_int_not_equal(host.port, port);
}

/* --- receiving and closing ------------------------------------------------------------ */

static void
test_tcp_data_received_gets_every_byte_in_order(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    size_t len = 1u << 20;
    char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 7 + i / 251);
    /* 1 MiB is more than the socket buffers hold: send from the test while the reactor reads. */
    int fl = fcntl(fx->client_fd, F_GETFL);
    fcntl(fx->client_fd, F_SETFL, fl | O_NONBLOCK);
    size_t sent = 0;
    for (int i = 0; i < TCP_UTIL_PASSES * 10 && fx->rx_len < len; i++) {
        if (sent < len) {
            ssize_t n = send(fx->client_fd, data + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        zt_reactor_iterate(fx->reactor, 0.001);
    }
    assert_int_equal(fx->rx_len, len);
    assert_memory_equal(fx->rx, data, len);
    free(data);
}

static void
test_tcp_peer_close_is_connection_done(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    close(fx->client_fd);
    fx->client_fd = -1;
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_int_equal(fx->lost, 1);
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
    assert_true(zt_failure_type_is(fx->lost_type, ZT_CONNECTION_CLOSED));
    assert_true(fx->transport_in_lost);
    /* Our reference keeps the closed transport valid; it refuses writes. */
    assert_false(zt_transport_is_connected(fx->transport));
    assert_null(zt_transport_protocol(fx->transport));
    assert_int_equal(zt_transport_write(fx->transport, "x", 1), ZT_ESTATE);
    assert_int_equal(zt_transport_lose_connection(fx->transport), ZT_ESTATE);
    assert_int_equal(zt_transport_abort_connection(fx->transport), ZT_ESTATE);
    assert_int_equal(zt_tcp_port_connection_count(fx->port), 0);
}

static void
test_tcp_half_closeable_protocol_answers_after_end_of_stream(void **state)
{
    fixture_t *fx = *state;
    fx->half_close = true;
    fx->reply_on_read_lost = "bye";
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_send_all(fx->client_fd, "hello", 5));
    assert_int_equal(shutdown(fx->client_fd, SHUT_WR), 0); /* like nc -N: done sending */
    assert_true(tcp_util_run_until(fx->reactor, &fx->read_lost_flag));
    assert_int_equal(fx->rx_len, 5);
    assert_memory_equal(fx->rx, "hello", 5);
    char buf[16];
    bool eof = false;
    size_t got = tcp_util_read(fx->reactor, fx->client_fd, buf, sizeof buf, sizeof buf, &eof);
    assert_true(eof);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "bye", 3);
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_int_equal(fx->read_lost, 1);
    assert_int_equal(fx->lost, 1);
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
}

static void
test_tcp_plain_protocol_is_closed_at_end_of_stream(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    assert_int_equal(shutdown(fx->client_fd, SHUT_WR), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
    assert_int_equal(zt_transport_write(fx->transport, "x", 1), ZT_ESTATE);
}

static void
test_tcp_lose_write_connection_sends_buffer_then_end_of_stream_and_still_reads(void **state)
{
    fixture_t *fx = *state;
    fx->half_close = true;
    fx->greeting = "data";
    fx->lose_write_on_made = true;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    char buf[16];
    bool eof = false;
    size_t got = tcp_util_read(fx->reactor, fx->client_fd, buf, sizeof buf, sizeof buf, &eof);
    assert_true(eof); /* the server shut its sending side down after the greeting */
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "data", 4);
    assert_int_equal(fx->write_after_lose_write_rc, ZT_ESTATE);
    assert_true(tcp_util_run_until(fx->reactor, &fx->write_lost_flag));
    assert_int_equal(fx->write_lost, 1);
    assert_int_equal(fx->lost, 0); /* still open for reading */
    assert_true(tcp_util_send_all(fx->client_fd, "more", 4));
    for (int i = 0; i < 200 && fx->rx_len < 4; i++)
        zt_reactor_iterate(fx->reactor, 0.01);
    assert_int_equal(fx->rx_len, 4);
    assert_memory_equal(fx->rx, "more", 4);
    close(fx->client_fd);
    fx->client_fd = -1;
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag)); /* both sides closed */
    assert_int_equal(fx->read_lost, 1);
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
}

static void
test_tcp_peer_reset_is_connection_lost(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close sends a reset */
    assert_int_equal(setsockopt(fx->client_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fx->client_fd);
    fx->client_fd = -1;
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_LOST);
    assert_false(zt_failure_type_is(fx->lost_type, ZT_CONNECTION_DONE));
}

static void
test_tcp_lose_connection_sends_the_buffer_first(void **state)
{
    fixture_t *fx = *state;
    fx->greeting = "0123456789abcdef";
    fx->greeting_repeat = 65536; /* 1 MiB, more than the kernel takes at once */
    fx->lose_on_made = true;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    bool eof = false;
    size_t total = tcp_util_drain_to_eof(fx->reactor, fx->client_fd, &eof);
    assert_true(eof);
    assert_int_equal(total, 16u * 65536u);
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
    assert_true(fx->write_after_lose_rc_seen);
    assert_int_equal(fx->write_after_lose_rc, ZT_ESTATE);
}

static void
test_tcp_lose_connection_never_calls_connection_lost_inline(void **state)
{
    fixture_t *fx = *state;
    fx->lose_on_made = true;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    /* lose_connection returned before connection_lost ran; it ran later, once. */
    assert_int_equal(fx->lost_inside_lose, 0);
    assert_int_equal(fx->lost, 1);
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
}

static void
test_tcp_abort_connection_drops_the_buffer_and_is_aborted(void **state)
{
    fixture_t *fx = *state;
    fx->greeting = "never sent";
    fx->abort_on_made = true;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_ABORTED);
    assert_true(zt_failure_type_is(fx->lost_type, ZT_CONNECTION_LOST));
    char buf[64];
    bool eof = false;
    assert_int_equal(tcp_util_read(fx->reactor, fx->client_fd, buf, sizeof buf, 1, &eof), 0);
    assert_true(eof);
}

static void
test_tcp_refused_by_factory_closes_the_socket(void **state)
{
    fixture_t *fx = *state;
    fx->refuse = true;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    char buf[8];
    bool eof = false;
    assert_int_equal(tcp_util_read(fx->reactor, fx->client_fd, buf, sizeof buf, 1, &eof), 0);
    assert_true(eof);
    assert_int_equal(fx->built, 1);
    assert_int_equal(fx->made, 0);
    assert_int_equal(zt_tcp_port_connection_count(fx->port), 0);
}

static void
test_tcp_write_sequence_sends_pieces_in_order(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    zt_iovec_t iov[3] = {{"ab", 2}, {"", 0}, {"cde", 3}};
    assert_int_equal(zt_transport_write_sequence(fx->transport, iov, 3), 0);
    assert_int_equal(zt_transport_write(fx->transport, "f", 1), 0);
    assert_int_equal(zt_transport_write(fx->transport, "", 0), 0);
    assert_int_equal(zt_transport_buffered(fx->transport), 6);
    char buf[16];
    bool eof = false;
    assert_int_equal(tcp_util_read(fx->reactor, fx->client_fd, buf, sizeof buf, 6, &eof), 6);
    assert_memory_equal(buf, "abcdef", 6);
    assert_int_equal(zt_transport_buffered(fx->transport), 0);
    zt_address_t host, peer;
    assert_int_equal(zt_transport_get_host(fx->transport, &host), 0);
    assert_int_equal(zt_transport_get_peer(fx->transport, &peer), 0);
    assert_int_equal(host.port, fx->portno);
    assert_string_equal(host.host, "127.0.0.1");
    assert_string_equal(peer.host, "127.0.0.1");
    assert_int_equal(zt_transport_set_tcp_no_delay(fx->transport, true), 0);
}

static void
test_tcp_pause_producing_stops_reading(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    zt_transport_pause_producing(fx->transport);
    assert_true(tcp_util_send_all(fx->client_fd, "abc", 3));
    tcp_util_spin(fx->reactor, 20);
    assert_int_equal(fx->rx_len, 0);
    zt_transport_resume_producing(fx->transport);
    for (int i = 0; i < TCP_UTIL_PASSES && fx->rx_len < 3; i++)
        zt_reactor_iterate(fx->reactor, 0.01);
    assert_int_equal(fx->rx_len, 3);
}

/* --- producers: a slow reader -------------------------------------------------------- */

static void
prod_pause(void *arg)
{
    fixture_t *fx = arg;
    fx->pauses++;
    fx->producing = false;
}

static void
prod_resume(void *arg)
{
    fixture_t *fx = arg;
    fx->resumes++;
    fx->producing = true;
}

static void
prod_stop(void *arg)
{
    ((fixture_t *)arg)->producer_stops++;
}

static const zt_producer_vtable_t test_producer = {
    .pause_producing = prod_pause,
    .resume_producing = prod_resume,
    .stop_producing = prod_stop,
};

static void
test_tcp_slow_reader_pauses_the_producer_and_bounds_the_buffer(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    assert_int_equal(zt_transport_register_producer(fx->transport, &test_producer, fx, true), 0);
    assert_int_equal(zt_transport_register_producer(fx->transport, &test_producer, fx, true),
                     ZT_EALREADY);
    fx->producing = true;
    char chunk[4096];
    memset(chunk, 'z', sizeof chunk);
    /* Produce while not paused; the client reads nothing, so the kernel's buffers fill and then
     * the transport's buffer passes the high-water mark. */
    size_t produced = 0;
    for (int i = 0; i < TCP_UTIL_PASSES && fx->producing; i++) {
        assert_int_equal(zt_transport_write(fx->transport, chunk, sizeof chunk), 0);
        produced += sizeof chunk;
        zt_reactor_iterate(fx->reactor, 0);
    }
    assert_int_equal(fx->pauses, 1);
    assert_false(fx->producing);
    size_t buffered = zt_transport_buffered(fx->transport);
    assert_true(buffered > ZT_TRANSPORT_HIGH_WATER);
    assert_true(buffered <= ZT_TRANSPORT_HIGH_WATER + sizeof chunk);
    /* The client reads: the buffer drains to the low-water mark and the producer resumes. */
    char buf[65536];
    size_t drained = 0;
    for (int i = 0; i < TCP_UTIL_PASSES && !fx->producing; i++) {
        ssize_t n = recv(fx->client_fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            drained += (size_t)n;
        zt_reactor_iterate(fx->reactor, 0.001);
    }
    assert_int_equal(fx->resumes, 1);
    assert_true(zt_transport_buffered(fx->transport) <= ZT_TRANSPORT_LOW_WATER);
    assert_true(drained > 0 && drained <= produced);
    /* Closing tells the registered producer to stop. */
    assert_int_equal(zt_transport_abort_connection(fx->transport), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_int_equal(fx->producer_stops, 1);
}

/* A pull producer: writes one piece each of the first three times it is asked. */
static void
pull_resume(void *arg)
{
    fixture_t *fx = arg;
    fx->resumes++;
    if (fx->resumes <= 3)
        assert_int_equal(zt_transport_write(fx->transport, "piece", 5), 0);
}

static const zt_producer_vtable_t pull_producer = {.resume_producing = pull_resume};

static void
test_tcp_pull_producer_is_asked_each_time_the_buffer_drains(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    assert_int_equal(zt_transport_register_producer(fx->transport, &pull_producer, fx, false), 0);
    assert_int_equal(fx->resumes, 1); /* asked at once */
    char buf[32];
    bool eof = false;
    assert_int_equal(tcp_util_read(fx->reactor, fx->client_fd, buf, sizeof buf, 15, &eof), 15);
    assert_memory_equal(buf, "piecepiecepiece", 15);
    assert_true(fx->resumes >= 4); /* asked again after each drain; the fourth wrote nothing */
    zt_transport_unregister_producer(fx->transport);
    assert_int_equal(zt_transport_register_producer(fx->transport, NULL, fx, false), ZT_EINVAL);
}

static void
test_tcp_transport_as_its_own_producer_stops_reading_for_a_slow_reader(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    fx->client_fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    assert_int_equal(zt_transport_set_buffer_limits(fx->transport, 10, 20), ZT_EINVAL);
    assert_int_equal(zt_transport_set_buffer_limits(fx->transport, 4096, 1024), 0);
    assert_int_equal(zt_transport_register_producer(fx->transport, zt_transport_producer_vtable(),
                                                    fx->transport, true),
                     0);
    /* The client reads nothing: fill the kernel's buffers and then ours past the high-water
     * mark. The transport pauses itself: it stops reading what the client sends. */
    char chunk[4096];
    memset(chunk, 'q', sizeof chunk);
    for (int i = 0; i < TCP_UTIL_PASSES && zt_transport_buffered(fx->transport) <= 4096; i++) {
        assert_int_equal(zt_transport_write(fx->transport, chunk, sizeof chunk), 0);
        zt_reactor_iterate(fx->reactor, 0);
    }
    assert_true(zt_transport_buffered(fx->transport) > 4096);
    assert_true(tcp_util_send_all(fx->client_fd, "in", 2));
    tcp_util_spin(fx->reactor, 20);
    assert_int_equal(fx->rx_len, 0);
    /* The client reads everything: the buffer drains and reading resumes. */
    char buf[65536];
    for (int i = 0; i < TCP_UTIL_PASSES && fx->rx_len < 2; i++) {
        while (recv(fx->client_fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
            continue;
        zt_reactor_iterate(fx->reactor, 0.001);
    }
    assert_int_equal(fx->rx_len, 2);
    assert_memory_equal(fx->rx, "in", 2);
    zt_transport_unregister_producer(fx->transport);
}

/* --- connecting ----------------------------------------------------------------------- */

static zt_result_t
on_connected(zt_result_t r, void *arg)
{
    fixture_t *fx = arg;
    fx->d_fired = true;
    fx->d_ok = true;
    fx->d_protocol = zt_result_ptr(r);
    return r;
}

static zt_result_t
on_connect_failed(zt_result_t r, void *arg)
{
    fixture_t *fx = arg;
    fx->d_fired = true;
    fx->d_fail_type = zt_failure_type(zt_result_failure(r));
    zt_result_release(&r);
    return zt_ok_none();
}

static void
test_tcp_connect_delivers_the_protocol_through_the_deferred(void **state)
{
    fixture_t *fx = *state;
    uint16_t port = plain_listen(fx);
    zt_deferred_t *d = zt_connect_tcp(fx->reactor, "127.0.0.1", port, fx->factory, 5);
    assert_non_null(d);
    assert_int_equal(fx->starts, 1);
    zt_deferred_add_callbacks(d, on_connected, on_connect_failed, fx);
    assert_false(fx->d_fired); /* never inside the call */
    assert_true(tcp_util_run_until(fx->reactor, &fx->d_fired));
    assert_true(fx->d_ok);
    assert_int_equal(fx->made, 1);
    assert_non_null(fx->d_protocol);
    assert_ptr_equal(zt_protocol_transport(fx->d_protocol), fx->transport);
    assert_ptr_equal(zt_transport_protocol(fx->transport), fx->d_protocol);
    assert_ptr_equal(zt_transport_reactor(fx->transport), fx->reactor);
    zt_deferred_unref(&d);
    fx->client_fd = accept(fx->listen_fd, NULL, NULL);
    assert_true(fx->client_fd >= 0);
    assert_int_equal(zt_transport_write(fx->transport, "ping", 4), 0);
    char buf[8];
    bool eof = false;
    assert_int_equal(tcp_util_read(fx->reactor, fx->client_fd, buf, sizeof buf, 4, &eof), 4);
    assert_memory_equal(buf, "ping", 4);
    /* The server closes: connection_lost, then client_connection_lost, then stop_factory. */
    close(fx->client_fd);
    fx->client_fd = -1;
    assert_true(tcp_util_run_until(fx->reactor, &fx->client_lost_flag));
    assert_int_equal(fx->lost_before_client_lost, 1);
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
    assert_int_equal(fx->stops, 1);
    assert_int_equal(zt_factory_users(fx->factory), 0);
}

static void
test_tcp_connect_refused_fails_the_deferred_and_tells_the_factory(void **state)
{
    fixture_t *fx = *state;
    uint16_t port = plain_listen(fx);
    close(fx->listen_fd); /* nobody listens there now */
    fx->listen_fd = -1;
    zt_deferred_t *d = zt_connect_tcp(fx->reactor, "127.0.0.1", port, fx->factory, 5);
    zt_deferred_add_callbacks(d, on_connected, on_connect_failed, fx);
    assert_true(tcp_util_run_until(fx->reactor, &fx->d_fired));
    assert_false(fx->d_ok);
    assert_ptr_equal(fx->d_fail_type, ZT_CONNECTION_REFUSED);
    assert_true(zt_failure_type_is(fx->d_fail_type, ZT_CONNECT_ERROR));
    assert_int_equal(fx->client_failed, 1);
    assert_ptr_equal(fx->client_failed_type, ZT_CONNECTION_REFUSED);
    assert_int_equal(fx->made, 0);
    assert_int_equal(fx->stops, 1);
    zt_deferred_unref(&d);
}

static void
test_tcp_connect_to_a_name_fails_on_a_later_pass(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d = zt_connect_tcp(fx->reactor, "localhost", 80, fx->factory, 5);
    assert_non_null(d);
    zt_deferred_add_callbacks(d, on_connected, on_connect_failed, fx);
    assert_false(fx->d_fired);
    assert_int_equal(fx->client_failed, 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->d_fired));
    assert_ptr_equal(fx->d_fail_type, ZT_CONNECT_ERROR);
    assert_int_equal(fx->client_failed, 1);
    zt_deferred_unref(&d);
    assert_null(zt_connect_tcp(fx->reactor, NULL, 80, fx->factory, 5));
    assert_null(zt_connect_tcp(fx->reactor, "127.0.0.1", 80, NULL, 5));
}

static void
test_tcp_connect_cancelled_fails_with_cancelled(void **state)
{
    fixture_t *fx = *state;
    uint16_t port = plain_listen(fx);
    zt_deferred_t *d = zt_connect_tcp(fx->reactor, "127.0.0.1", port, fx->factory, 5);
    zt_deferred_add_callbacks(d, on_connected, on_connect_failed, fx);
    zt_deferred_cancel(d);
    assert_true(fx->d_fired);
    assert_ptr_equal(fx->d_fail_type, ZT_CANCELLED_ERROR);
    assert_int_equal(fx->client_failed, 1);
    assert_ptr_equal(fx->client_failed_type, ZT_CANCELLED_ERROR);
    assert_int_equal(fx->stops, 1);
    tcp_util_spin(fx->reactor, 5);
    assert_int_equal(fx->made, 0);
    zt_deferred_unref(&d);
}

static void
test_tcp_connect_factory_refusal_fails_the_deferred(void **state)
{
    fixture_t *fx = *state;
    uint16_t port = plain_listen(fx);
    fx->refuse = true;
    zt_deferred_t *d = zt_connect_tcp(fx->reactor, "127.0.0.1", port, fx->factory, 5);
    zt_deferred_add_callbacks(d, on_connected, on_connect_failed, fx);
    assert_true(tcp_util_run_until(fx->reactor, &fx->d_fired));
    assert_ptr_equal(fx->d_fail_type, ZT_CONNECT_ERROR);
    assert_int_equal(fx->client_failed, 1);
    zt_deferred_unref(&d);
}

static void
test_tcp_connect_timeout_fails_with_timeout_error(void **state)
{
    fixture_t *fx = *state;
    uint16_t port = plain_listen(fx);
    /* A listen queue of one, filled: the kernel drops the next SYNs and the connect hangs. */
    assert_int_equal(listen(fx->listen_fd, 0), 0);
    fx->client_fd = tcp_util_connect(port);
    assert_true(fx->client_fd >= 0);
    int extra = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(extra, F_SETFL, fcntl(extra, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(extra, (struct sockaddr *)&sin, sizeof sin); /* in progress, or queued */
    zt_deferred_t *d = zt_connect_tcp(fx->reactor, "127.0.0.1", port, fx->factory, 0.05);
    zt_deferred_add_callbacks(d, on_connected, on_connect_failed, fx);
    assert_true(tcp_util_run_until(fx->reactor, &fx->d_fired));
    assert_false(fx->d_ok);
    assert_ptr_equal(fx->d_fail_type, ZT_TIMEOUT_ERROR);
    assert_int_equal(fx->client_failed, 1);
    assert_ptr_equal(fx->client_failed_type, ZT_TIMEOUT_ERROR);
    assert_int_equal(fx->stops, 1);
    zt_deferred_unref(&d);
    close(extra);
}

/* --- many connections ----------------------------------------------------------------- */

static void
test_tcp_connect_disconnect_cycles_leave_no_fds(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    int before = tcp_util_count_fds();
    for (int i = 0; i < 1000; i++) {
        int fd = tcp_util_connect(fx->portno);
        assert_true(fd >= 0);
        fx->made_flag = fx->lost_flag = false;
        assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
        close(fd);
        assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    }
    zt_transport_unref(&fx->transport);
    assert_int_equal(fx->made, 1000);
    assert_int_equal(fx->lost, 1000);
    assert_int_equal(tcp_util_count_fds(), before);
    assert_int_equal(zt_tcp_port_connection_count(fx->port), 0);
}

static void
test_tcp_lose_connections_closes_every_accepted_connection(void **state)
{
    fixture_t *fx = *state;
    listen_local(fx);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = tcp_util_connect(fx->portno);
        fx->made_flag = false;
        assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    }
    assert_int_equal(zt_tcp_port_connection_count(fx->port), 3);
    zt_tcp_port_lose_connections(fx->port, false);
    for (int i = 0; i < TCP_UTIL_PASSES && fx->lost < 3; i++)
        zt_reactor_iterate(fx->reactor, 0.01);
    assert_int_equal(fx->lost, 3);
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
    assert_int_equal(zt_tcp_port_connection_count(fx->port), 0);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}

/* The thread check is never compiled out: a port used from a thread other than its reactor's
 * aborts, naming the call, in the build this suite runs in (the default build defines NDEBUG).
 * cmocka cannot survive an abort, so the body runs in a forked child whose stderr is a pipe. */
static void *
s_count_from_other_thread(void *arg)
{
    (void)zt_tcp_port_connection_count(arg);
    return NULL;
}

static void
s_port_used_from_other_thread(void)
{
    static fixture_t fx; /* the factory's arg: its start_factory counts */
    zt_reactor_t *reactor = zt_reactor_new();
    zt_factory_t *factory = zt_factory_new(&fixture_factory, &fx);
    zt_tcp_port_t *port = NULL;
    if (!reactor || !factory || zt_listen_tcp(reactor, 0, factory, 0, "127.0.0.1", &port) != 0)
        _exit(3);
    pthread_t t;
    if (pthread_create(&t, NULL, s_count_from_other_thread, port) != 0)
        _exit(3);
    pthread_join(t, NULL);
    _exit(0); /* the check did not fire */
}

static void
test_tcp_port_used_from_other_thread_aborts_in_every_build(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        s_port_used_from_other_thread();
    }
    close(fds[1]);
    char err[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], err + len, sizeof err - 1 - len)) > 0)
        len += (size_t)n;
    err[len] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
        fail_msg("the child did not abort (status %#x); it said: %s", status, err);
    assert_non_null(strstr(err, "zt_tcp_port_connection_count"));
    assert_non_null(strstr(err, "TCP transport or port"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_port_used_from_other_thread_aborts_in_every_build),
        cmocka_unit_test_setup_teardown(test_tcp_listen_port_zero_reports_the_real_port, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_listen_bad_arguments_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_listen_port_in_use_is_eaddrinuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_factory_start_and_stop_counted_over_ports, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_stop_listening_refuses_new_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_stop_listening_keeps_accepted_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_ipv6_loopback_accepts_and_reports_family, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_accepted_on_any_address_reports_its_own_address,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_connect_reports_its_own_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_data_received_gets_every_byte_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_peer_close_is_connection_done, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_tcp_half_closeable_protocol_answers_after_end_of_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_plain_protocol_is_closed_at_end_of_stream, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_tcp_lose_write_connection_sends_buffer_then_end_of_stream_and_still_reads, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_tcp_peer_reset_is_connection_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_lose_connection_sends_the_buffer_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_lose_connection_never_calls_connection_lost_inline,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_abort_connection_drops_the_buffer_and_is_aborted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_refused_by_factory_closes_the_socket, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_write_sequence_sends_pieces_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_pause_producing_stops_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_tcp_slow_reader_pauses_the_producer_and_bounds_the_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_tcp_transport_as_its_own_producer_stops_reading_for_a_slow_reader, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_tcp_pull_producer_is_asked_each_time_the_buffer_drains,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_connect_delivers_the_protocol_through_the_deferred,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_tcp_connect_refused_fails_the_deferred_and_tells_the_factory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_connect_to_a_name_fails_on_a_later_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_connect_cancelled_fails_with_cancelled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_connect_factory_refusal_fails_the_deferred, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_connect_timeout_fails_with_timeout_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_connect_disconnect_cycles_leave_no_fds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tcp_lose_connections_closes_every_accepted_connection,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("tcp", tests, NULL, NULL);
}
