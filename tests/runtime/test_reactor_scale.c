/*  tests/runtime/test_reactor_scale.c - the reactor holding thousands of registrations
 *
 *  A reactor with thousands of idle connections or fds must still answer the one that is active,
 * and only it. The tests raise this process's soft limit on open files toward the hard limit and
 * skip, saying why, when the hard limit is too low for SCALE_MIN connections (each needs two
 * fds here: the client's end and the server's).
 *
 *  No figure is timed here: what a pass costs at this scale is measured in bench/bench_tcp.c
 * (tcp.ack_c10_k1_idle10k_per_s).  */
#include <ztwist.h>

#include "bridges/tcp_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define SCALE_WANT 5000 /* idle connections asked for */
#define SCALE_MIN 1000  /* fewer than this and the test is skipped */
#define SCALE_BATCH 256 /* connections opened before the reactor accepts them (backlog 1024) */

typedef struct {
    zt_reactor_t *reactor; /* the reactor under test */
    zt_factory_t *factory; /* the echo server's factory */
    zt_tcp_port_t *port;   /* Owned: the listening port */
    uint16_t portno;       /* its port number */
    int *clients;          /* Owned: the idle clients' fds */
    size_t nclients;       /* how many are open */
    size_t want;           /* how many the fd limit allows, up to SCALE_WANT */
    size_t made;           /* server-side connections made */
    size_t lost;           /* server-side connections lost */
    bool enough;           /* made reached the count waited for */
    size_t waiting_for;    /* the count of made connections waited for */
} fixture_t;

/* How many connections the fd limit allows, after raising the soft limit to the hard one. */
static size_t
s_connections_allowed(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 2 * SCALE_WANT + 256)
        return SCALE_WANT;
    return rl.rlim_cur > 256 ? (size_t)(rl.rlim_cur - 256) / 2 : 0;
}

static void
on_made(zt_protocol_t *p, void *arg)
{
    (void)p;
    fixture_t *fx = arg;
    fx->made++;
    fx->enough = fx->made >= fx->waiting_for;
}

static void
on_data(zt_protocol_t *p, const char *data, size_t len, void *arg)
{
    (void)arg;
    assert_int_equal(zt_transport_write(zt_protocol_transport(p), data, len), 0);
}

static void
on_lost(zt_protocol_t *p, const zt_failure_t *reason, void *arg)
{
    (void)p, (void)reason;
    fixture_t *fx = arg;
    fx->lost++;
    fx->enough = fx->lost >= fx->waiting_for;
}

static const zt_protocol_vtable_t echo_protocol = {
    .connection_made = on_made,
    .data_received = on_data,
    .connection_lost = on_lost,
};

static zt_protocol_t *
build(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f, (void)addr;
    return zt_protocol_new(&echo_protocol, arg, NULL);
}

static const zt_factory_vtable_t echo_factory = {.build_protocol = build};

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->want = s_connections_allowed();
    fx->reactor = zt_reactor_new();
    assert_non_null(fx->reactor);
    fx->factory = zt_factory_new(&echo_factory, fx);
    assert_non_null(fx->factory);
    fx->clients = calloc(SCALE_WANT, sizeof *fx->clients);
    assert_non_null(fx->clients);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    for (size_t i = 0; i < fx->nclients; i++)
        close(fx->clients[i]);
    if (fx->port) {
        zt_tcp_port_lose_connections(fx->port, true);
        tcp_util_spin(fx->reactor, 20);
        zt_tcp_port_destroy(&fx->port);
    }
    tcp_util_spin(fx->reactor, 5);
    zt_factory_destroy(&fx->factory);
    zt_reactor_destroy(&fx->reactor);
    free(fx->clients);
    free(fx);
    return 0;
}

/* Listen, then open fx->want idle clients in batches, each batch accepted by the reactor before the
 * next is opened (so the listen backlog never overflows). */
static void
s_open_idle(fixture_t *fx)
{
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, fx->factory, 1024, "127.0.0.1", &fx->port), 0);
    zt_address_t addr;
    assert_int_equal(zt_tcp_port_get_host(fx->port, &addr), 0);
    fx->portno = addr.port;
    while (fx->nclients < fx->want) {
        size_t batch =
            fx->want - fx->nclients < SCALE_BATCH ? fx->want - fx->nclients : SCALE_BATCH;
        for (size_t i = 0; i < batch; i++) {
            int fd = tcp_util_connect(fx->portno);
            assert_true(fd >= 0);
            fx->clients[fx->nclients++] = fd;
        }
        fx->waiting_for = fx->nclients;
        fx->enough = fx->made >= fx->waiting_for;
        assert_true(tcp_util_run_until(fx->reactor, &fx->enough));
    }
    assert_int_equal(zt_tcp_port_connection_count(fx->port), fx->want);
}

/* Send a line on client fd and check that it comes back. */
static void
s_echo(fixture_t *fx, int fd, const char *line)
{
    size_t len = strlen(line);
    assert_true(tcp_util_send_all(fd, line, len));
    char buf[64] = "";
    bool eof = false;
    assert_int_equal(tcp_util_read(fx->reactor, fd, buf, sizeof buf - 1, len, &eof), len);
    assert_false(eof);
    assert_memory_equal(buf, line, len);
}

static void
test_reactor_thousands_of_idle_connections_leave_an_active_one_answered(void **state)
{
    fixture_t *fx = *state;
    if (fx->want < SCALE_MIN) {
        print_message("skipped: the open-file limit allows %zu connections, fewer than %d "
                      "(raise ulimit -Hn)\n",
                      fx->want, SCALE_MIN);
        skip();
    }
    s_open_idle(fx);
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_true(stats.registrations >= fx->want + 1); /* a reader each, and the port's */
    int active = tcp_util_connect(fx->portno);
    assert_true(active >= 0);
    for (int i = 0; i < 100; i++)
        s_echo(fx, active, "ping\n");
    /* The idle ones were kept: the first, the middle and the last still answer. */
    s_echo(fx, fx->clients[0], "first\n");
    s_echo(fx, fx->clients[fx->nclients / 2], "middle\n");
    s_echo(fx, fx->clients[fx->nclients - 1], "last\n");
    close(active);
    /* Every client closes at once: every server side is told, over a few passes. */
    for (size_t i = 0; i < fx->nclients; i++)
        close(fx->clients[i]);
    fx->nclients = 0;
    fx->waiting_for = fx->want + 1;
    fx->enough = fx->lost >= fx->waiting_for;
    assert_true(tcp_util_run_until(fx->reactor, &fx->enough));
    assert_int_equal(zt_tcp_port_connection_count(fx->port), 0);
}

/* Counts a reader's calls: arg points at one counter per fd. */
static void
s_count(zt_reactor_t *r, int fd, void *arg)
{
    (void)r;
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    (*(int *)arg)++;
}

static void
test_reactor_thousands_of_idle_readers_only_the_ready_one_is_called(void **state)
{
    fixture_t *fx = *state;
    size_t n = fx->want; /* pipes: two fds each, as a connection's two ends */
    if (n < SCALE_MIN) {
        print_message("skipped: the open-file limit allows %zu pipes, fewer than %d\n", n,
                      SCALE_MIN);
        skip();
    }
    int(*pipes)[2] = calloc(n, sizeof *pipes);
    int *calls = calloc(n, sizeof *calls), *expected = calloc(n, sizeof *expected);
    assert_non_null(pipes);
    assert_non_null(calls);
    assert_non_null(expected);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pipe(pipes[i]), 0);
        assert_int_equal(zt_reactor_add_reader(fx->reactor, pipes[i][0], s_count, &calls[i]), 0);
    }
    size_t picks[] = {0, n / 3, n - 1};
    for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) {
        assert_int_equal(write(pipes[picks[k]][1], "x", 1), 1);
        expected[picks[k]]++;
        assert_int_equal(zt_reactor_iterate(fx->reactor, 5.0), 0);
        assert_memory_equal(calls, expected, n * sizeof *calls);
    }
    /* Removing every other reader leaves the rest watched. */
    for (size_t i = 0; i < n; i += 2)
        assert_int_equal(zt_reactor_remove_reader(fx->reactor, pipes[i][0]), 0);
    assert_int_equal(write(pipes[1][1], "y", 1), 1);
    assert_int_equal(write(pipes[2][1], "y", 1), 1); /* removed: not called */
    assert_int_equal(zt_reactor_iterate(fx->reactor, 5.0), 0);
    assert_int_equal(calls[1], 1);
    assert_int_equal(calls[2], 0);
    for (size_t i = 0; i < n; i++) {
        if (i % 2)
            assert_int_equal(zt_reactor_remove_reader(fx->reactor, pipes[i][0]), 0);
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
    free(pipes);
    free(calls);
    free(expected);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_reactor_thousands_of_idle_connections_leave_an_active_one_answered),
        T(test_reactor_thousands_of_idle_readers_only_the_ready_one_is_called),
#undef T
    };
    return cmocka_run_group_tests_name("reactor at scale", tests, NULL, NULL);
}
