/*  tests/runtime/test_reactor.c - the reactor's lifecycle, I/O registrations, signals, counters and
 * slow-callback watchdog, after Twisted's ReactorBase tests (test_core.py, test_base.py)  */
#include <ztwist.h>

#include "support/support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>
#include <zmq.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct {
    zt_reactor_t *reactor; /* the reactor under test */
    int fds[2];            /* a pipe: [0] read end, [1] write end */
    int calls;             /* callbacks counted by the tests */
    int other_calls;       /* a second counter */
    support_log_t log;     /* what was logged */
    bool shutdown_ran;     /* a shutdown trigger ran */
    int pad[16][2];        /* idle pipes watched by the padded tests, or -1 */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    support_log_install(&fx->log);
    fx->reactor = zt_reactor_new();
    assert_non_null(fx->reactor);
    assert_int_equal(pipe(fx->fds), 0);
    for (int i = 0; i < 16; i++)
        fx->pad[i][0] = fx->pad[i][1] = -1;
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_reactor_destroy(&fx->reactor);
    support_log_remove(&fx->log);
    close(fx->fds[0]);
    close(fx->fds[1]);
    for (int i = 0; i < 16 && fx->pad[i][0] >= 0; i++) {
        close(fx->pad[i][0]);
        close(fx->pad[i][1]);
    }
    free(fx);
    return 0;
}

static void
s_stop(void *arg)
{
    fixture_t *fx = arg;
    fx->calls++;
    assert_int_equal(zt_reactor_stop(fx->reactor), 0);
}

/* --- lifecycle ---------------------------------------------------------------------------- */

static void
test_reactor_destroy_accepts_null(void **state)
{
    (void)state;
    zt_reactor_t *r = NULL;
    zt_reactor_destroy(&r);
    zt_reactor_destroy(NULL);
    r = zt_reactor_new();
    assert_non_null(r);
    zt_reactor_destroy(&r);
    assert_null(r);
}

static void
test_reactor_run_returns_after_stop_from_callback(void **state)
{
    fixture_t *fx = *state;
    assert_false(zt_reactor_is_running(fx->reactor));
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->calls, 1);
    assert_false(zt_reactor_is_running(fx->reactor));
}

static void
test_reactor_run_after_stop_returns_estate(void **state)
{
    /* Twisted's test_runAfterStop: a reactor is not restartable. */
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), ZT_ESTATE);
    assert_int_equal(zt_reactor_stop(fx->reactor), ZT_ESHUTDOWN);
}

static void
s_stop_twice(void *arg)
{
    fixture_t *fx = arg;
    assert_int_equal(zt_reactor_stop(fx->reactor), 0);
    /* Twisted's test_stopWhenAlreadyStopped. */
    assert_int_equal(zt_reactor_stop(fx->reactor), ZT_ESTATE);
    fx->calls++;
}

static void
test_reactor_second_stop_returns_estate(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop_twice, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->calls, 1);
}

static zt_result_t
s_shutdown_trigger(void *arg)
{
    fixture_t *fx = arg;
    fx->shutdown_ran = true;
    return zt_ok_none();
}

static void
test_reactor_stop_before_run_shuts_down_after_startup(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, "shutdown",
                                                         s_shutdown_trigger, fx, NULL),
                     0);
    assert_int_equal(zt_reactor_stop(fx->reactor), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_true(fx->shutdown_ran);
}

static void
test_reactor_timer_wakes_a_running_reactor(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0.001, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->calls, 1);
}

static void
s_count(void *arg)
{
    (*(int *)arg)++;
}

static void
test_reactor_iterate_zero_returns_with_a_far_timer_pending(void **state)
{
    /* Twisted's test_iterate: iterate(0) does not block. */
    fixture_t *fx = *state;
    zt_delayed_call_t *c = NULL;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 1000, s_count, &fx->calls, &c), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 0);
    assert_int_equal(zt_delayed_call_cancel(c), 0);
    zt_delayed_call_release(&c);
}

static double
s_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
test_reactor_idle_iterate_sleeps_in_the_kernel(void **state)
{
    /* Not a timing race: a busy-waiting loop would burn about as much CPU as wall time. */
    fixture_t *fx = *state;
    double cpu0 = s_cpu_seconds();
    double wall0 = zt_time_now();
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0.2), 0);
    double wall = zt_time_now() - wall0;
    double cpu = s_cpu_seconds() - cpu0;
    assert_true(wall >= 0.19);
    assert_true(cpu < wall / 4);
}

static void
test_reactor_seconds_follows_the_monotonic_clock(void **state)
{
    fixture_t *fx = *state;
    double before = zt_time_now();
    double now = zt_reactor_seconds(fx->reactor);
    assert_true(now >= before);
    assert_true(now <= zt_time_now());
    const zt_clock_t *clock = zt_reactor_clock(fx->reactor);
    assert_true(zt_clock_seconds(clock) >= now);
}

/* --- I/O registrations ------------------------------------------------------------------ */

static void
s_on_readable(zt_reactor_t *r, int fd, void *arg)
{
    fixture_t *fx = arg;
    assert_ptr_equal(r, fx->reactor);
    char buf[16];
    assert_true(read(fd, buf, sizeof buf) > 0);
    fx->calls++;
}

static void
test_reactor_reader_called_when_readable(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fx->fds[0], s_on_readable, fx), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 0);
    assert_int_equal(write(fx->fds[1], "x", 1), 1);
    assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fx->fds[0]), 0);
}

static void
s_read_once(zt_reactor_t *r, int fd, void *arg)
{
    fixture_t *fx = arg;
    (void)r;
    fx->calls++;
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fd), 0); /* leaves the data unread */
}

static void
test_reactor_reader_removed_in_own_callback_is_not_called_again(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fx->fds[0], s_read_once, fx), 0);
    assert_int_equal(write(fx->fds[1], "x", 1), 1);
    assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fx->fds[0]), ZT_ENOTFOUND);
}

static void
s_remove_writer(zt_reactor_t *r, int fd, void *arg)
{
    fixture_t *fx = arg;
    (void)r, (void)fd;
    fx->calls++;
    assert_int_equal(zt_reactor_remove_writer(fx->reactor, fx->fds[1]), 0);
}

static void
s_on_writable(zt_reactor_t *r, int fd, void *arg)
{
    fixture_t *fx = arg;
    (void)r, (void)fd;
    fx->other_calls++;
}

static void
test_reactor_callback_removing_another_registration_skips_it_in_same_pass(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(write(fx->fds[1], "x", 1), 1); /* both ready in the same pass */
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fx->fds[0], s_remove_writer, fx), 0);
    assert_int_equal(zt_reactor_add_writer(fx->reactor, fx->fds[1], s_on_writable, fx), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(fx->other_calls, 0);
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fx->fds[0]), 0);
}

static void
test_reactor_writer_called_when_writable(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_add_writer(fx->reactor, fx->fds[1], s_on_writable, fx), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(fx->other_calls, 1);
    assert_int_equal(zt_reactor_remove_writer(fx->reactor, fx->fds[1]), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->other_calls, 1);
}

static void
s_add_reader_later(zt_reactor_t *r, int fd, void *arg)
{
    fixture_t *fx = arg;
    (void)fd;
    fx->other_calls++;
    assert_int_equal(zt_reactor_remove_writer(r, fx->fds[1]), 0);
    assert_int_equal(zt_reactor_add_reader(r, fx->fds[0], s_on_readable, fx), 0);
}

static void
test_reactor_registration_added_in_callback_is_polled_next_pass(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(write(fx->fds[1], "x", 1), 1);
    assert_int_equal(zt_reactor_add_writer(fx->reactor, fx->fds[1], s_add_reader_later, fx), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(fx->other_calls, 1);
    assert_int_equal(fx->calls, 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fx->fds[0]), 0);
}

static void
s_on_hangup(zt_reactor_t *r, int fd, void *arg)
{
    fixture_t *fx = arg;
    char buf[4];
    fx->calls++;
    assert_int_equal(read(fd, buf, sizeof buf), 0); /* end of file */
    assert_int_equal(zt_reactor_remove_reader(r, fd), 0);
}

static void
test_reactor_reader_is_told_of_hangup(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fx->fds[0], s_on_hangup, fx), 0);
    close(fx->fds[1]);
    fx->fds[1] = open("/dev/null", 0); /* keep teardown's close valid */
    assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    assert_int_equal(fx->calls, 1);
}

static void
test_reactor_registration_errors(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_add_reader(fx->reactor, -1, s_on_readable, fx), ZT_EINVAL);
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fx->fds[0], NULL, fx), ZT_EINVAL);
    assert_int_equal(zt_reactor_add_writer(fx->reactor, -1, s_on_writable, fx), ZT_EINVAL);
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fx->fds[0], s_on_readable, fx), 0);
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fx->fds[0], s_on_readable, fx),
                     ZT_EALREADY);
    assert_int_equal(zt_reactor_remove_writer(fx->reactor, fx->fds[0]), ZT_ENOTFOUND);
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fx->fds[1]), ZT_ENOTFOUND);
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fx->fds[0]), 0);
    assert_int_equal(zt_reactor_add_socket(fx->reactor, NULL, NULL, NULL), ZT_EINVAL);
    int dummy = 0;
    assert_int_equal(zt_reactor_remove_socket(fx->reactor, &dummy), ZT_ENOTFOUND);
}

static void
s_on_message(zt_reactor_t *r, void *socket, void *arg)
{
    fixture_t *fx = arg;
    (void)r;
    char buf[16];
    while (zmq_recv(socket, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        fx->calls++;
}

static void
test_reactor_socket_called_when_a_message_arrives(void **state)
{
    fixture_t *fx = *state;
    void *ctx = zmq_ctx_new();
    void *rx = zmq_socket(ctx, ZMQ_PAIR), *tx = zmq_socket(ctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(rx, "inproc://test-reactor-socket"), 0);
    assert_int_equal(zmq_connect(tx, "inproc://test-reactor-socket"), 0);
    assert_int_equal(zt_reactor_add_socket(fx->reactor, rx, s_on_message, fx), 0);
    assert_int_equal(zt_reactor_add_socket(fx->reactor, rx, s_on_message, fx), ZT_EALREADY);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 0);
    assert_int_equal(zmq_send(tx, "hi", 2, 0), 2);
    assert_int_equal(zmq_send(tx, "yo", 2, 0), 2);
    while (fx->calls < 2)
        assert_int_equal(zt_reactor_iterate(fx->reactor, -1), 0);
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.registrations, 1);
    assert_int_equal(zt_reactor_remove_socket(fx->reactor, rx), 0);
    assert_int_equal(zmq_send(tx, "no", 2, 0), 2);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 2);
    int linger = 0;
    zmq_setsockopt(tx, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(rx, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(tx);
    zmq_close(rx);
    zmq_ctx_term(ctx);
}

/* A PAIR socket registered with the reactor and its peer, for the readiness tests. */
typedef struct {
    void *ctx; /* its own context */
    void *rx;  /* registered with the reactor */
    void *tx;  /* the peer, used by the test */
} pair_t;

static void
s_pair_open(pair_t *p, const char *endpoint)
{
    p->ctx = zmq_ctx_new();
    p->rx = zmq_socket(p->ctx, ZMQ_PAIR);
    p->tx = zmq_socket(p->ctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(p->rx, endpoint), 0);
    assert_int_equal(zmq_connect(p->tx, endpoint), 0);
}

static void
s_pair_close(pair_t *p)
{
    int linger = 0;
    zmq_setsockopt(p->tx, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->rx, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(p->tx);
    zmq_close(p->rx);
    zmq_ctx_term(p->ctx);
}

/* A wait that must be cut short by an event: a reactor that missed the event sits it out. */
#define MUST_WAKE_S 5.0

typedef struct {
    fixture_t *fx; /* the fixture (fx->calls counts messages read) */
    pair_t pair;   /* the sockets */
} edge_t;

/* Reads everything there is, then, on its first call, makes a message arrive while it runs and
 * asks ZMQ_EVENTS before sending (as code checking ZMQ_POLLOUT does): that processes the socket's
 * commands, consuming the ZMQ_FD signal of the late message, which now waits unannounced. */
static void
s_read_then_poke(zt_reactor_t *r, void *socket, void *arg)
{
    edge_t *e = arg;
    (void)r;
    char buf[16];
    while (zmq_recv(socket, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        e->fx->calls++;
    if (e->fx->other_calls++ > 0)
        return;
    assert_int_equal(zmq_send(e->pair.tx, "late", 4, 0), 4);
    int events = 0;
    size_t size = sizeof events;
    assert_int_equal(zmq_getsockopt(socket, ZMQ_EVENTS, &events, &size), 0);
    assert_true(events & ZMQ_POLLIN);
    int fd = -1;
    size = sizeof fd;
    assert_int_equal(zmq_getsockopt(socket, ZMQ_FD, &fd, &size), 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0); /* the edge is gone: only ZMQ_EVENTS can tell */
    assert_int_equal(zmq_send(socket, "ack", 3, 0), 3);
}

static void
test_reactor_socket_readable_after_its_callback_used_it_is_served_next_pass(void **state)
{
    fixture_t *fx = *state;
    edge_t e = {.fx = fx};
    s_pair_open(&e.pair, "inproc://test-reactor-edge");
    assert_int_equal(zt_reactor_add_socket(fx->reactor, e.pair.rx, s_read_then_poke, &e), 0);
    assert_int_equal(zmq_send(e.pair.tx, "first", 5, 0), 5);
    assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(fx->other_calls, 1);
    assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
    assert_int_equal(fx->calls, 2); /* "late", though its ZMQ_FD signal was consumed */
    char buf[16];
    assert_int_equal(zmq_recv(e.pair.tx, buf, sizeof buf, ZMQ_DONTWAIT), 3);
    assert_int_equal(zt_reactor_remove_socket(fx->reactor, e.pair.rx), 0);
    s_pair_close(&e.pair);
}

/* Reads one message per call, leaving the rest. */
static void
s_read_one(zt_reactor_t *r, void *socket, void *arg)
{
    fixture_t *fx = arg;
    (void)r;
    char buf[16];
    assert_true(zmq_recv(socket, buf, sizeof buf, ZMQ_DONTWAIT) >= 0);
    fx->calls++;
}

static void
test_reactor_socket_left_with_messages_is_called_again(void **state)
{
    fixture_t *fx = *state;
    pair_t p;
    s_pair_open(&p, "inproc://test-reactor-partial");
    assert_int_equal(zt_reactor_add_socket(fx->reactor, p.rx, s_read_one, fx), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(zmq_send(p.tx, "m", 1, 0), 1);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
        assert_int_equal(fx->calls, i); /* one ZMQ_FD signal for three messages */
    }
    assert_int_equal(zt_reactor_remove_socket(fx->reactor, p.rx), 0);
    s_pair_close(&p);
}

/* Reads one byte per call, leaving the rest. */
static void
s_read_one_byte(zt_reactor_t *r, int fd, void *arg)
{
    fixture_t *fx = arg;
    (void)r;
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    fx->calls++;
}

static void
test_reactor_reader_left_with_data_is_called_again(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fx->fds[0], s_read_one_byte, fx), 0);
    assert_int_equal(write(fx->fds[1], "abc", 3), 3);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
        assert_int_equal(fx->calls, i); /* level-triggered: data left is reported again */
    }
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 3);
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fx->fds[0]), 0);
}

static void
s_count_fd(zt_reactor_t *r, int fd, void *arg)
{
    (void)r, (void)fd;
    (*(int *)arg)++;
}

static void
test_reactor_reader_and_writer_of_one_fd_are_watched_apart(void **state)
{
    fixture_t *fx = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(zt_reactor_add_writer(fx->reactor, sv[0], s_count_fd, &fx->other_calls), 0);
    assert_int_equal(zt_reactor_add_reader(fx->reactor, sv[0], s_read_one_byte, fx), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 0);
    assert_int_equal(fx->other_calls, 1); /* writable, not readable */
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(fx->other_calls, 2);
    assert_int_equal(zt_reactor_remove_writer(fx->reactor, sv[0]), 0);
    assert_int_equal(write(sv[1], "y", 1), 1);
    assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
    assert_int_equal(fx->calls, 2); /* the reader stays */
    assert_int_equal(fx->other_calls, 2);
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, sv[0]), 0);
    assert_int_equal(zt_reactor_add_writer(fx->reactor, sv[0], s_count_fd, &fx->other_calls), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
    assert_int_equal(fx->other_calls, 3);
    assert_int_equal(zt_reactor_remove_writer(fx->reactor, sv[0]), 0);
    close(sv[0]);
    close(sv[1]);
}

/* Two pipes readable in one pass; whichever reader runs first closes the other pipe's read end
 * and puts a new readable pipe under the same fd number, with a new reader. */
typedef struct {
    fixture_t *fx; /* the fixture */
    int rd[2];     /* the two read ends */
    int wr[2];     /* the two write ends */
    int new_calls; /* calls of the new reader */
    bool swapped;  /* the swap happened */
} reuse_t;

static void
s_swap_other(zt_reactor_t *r, int fd, void *arg)
{
    reuse_t *u = arg;
    u->fx->calls++;
    if (u->swapped)
        return;
    u->swapped = true;
    int other = fd == u->rd[0] ? 1 : 0;
    assert_int_equal(zt_reactor_remove_reader(r, u->rd[other]), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "n", 1), 1);
    assert_int_equal(dup2(p[0], u->rd[other]), u->rd[other]); /* same number, new pipe */
    close(p[0]);
    close(u->wr[other]);
    u->wr[other] = p[1];
    assert_int_equal(zt_reactor_add_reader(r, u->rd[other], s_count_fd, &u->new_calls), 0);
}

static void
test_reactor_event_of_a_replaced_fd_does_not_reach_its_new_reader_in_that_pass(void **state)
{
    fixture_t *fx = *state;
    reuse_t u = {.fx = fx};
    for (int i = 0; i < 2; i++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        u.rd[i] = p[0];
        u.wr[i] = p[1];
        assert_int_equal(write(p[1], "x", 1), 1);
        assert_int_equal(zt_reactor_add_reader(fx->reactor, u.rd[i], s_swap_other, &u), 0);
    }
    assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(u.new_calls, 0); /* the old pipe's event, if any, was not the new reader's */
    assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
    assert_int_equal(u.new_calls, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(zt_reactor_remove_reader(fx->reactor, u.rd[i]), 0);
        close(u.rd[i]);
        close(u.wr[i]);
    }
}

static void
test_reactor_add_reader_of_a_closed_fd_fails_without_calling(void **state)
{
    fixture_t *fx = *state;
    int fd = dup(fx->fds[0]);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fd, s_count_fd, &fx->calls), ZT_EINVAL);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 0);
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fd), ZT_ENOTFOUND);
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.registrations, 0);
}

static void
test_reactor_reader_of_a_regular_file_is_always_ready(void **state)
{
    fixture_t *fx = *state;
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = fileno(f);
    assert_int_equal(zt_reactor_add_reader(fx->reactor, fd, s_count_fd, &fx->calls), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, MUST_WAKE_S), 0);
    assert_int_equal(fx->calls, 1); /* as poll(2) says of a file, though epoll refuses files */
    assert_int_equal(zt_reactor_remove_reader(fx->reactor, fd), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 1);
    fclose(f);
}

/* Never called: the padding pipes are never written. */
static void
s_never(zt_reactor_t *r, int fd, void *arg)
{
    (void)r, (void)fd, (void)arg;
    fail_msg("a padding pipe was reported ready");
}

/* Watch 16 idle pipes, so the reactor's set is past the size the epoll backend waits on with
 * poll(2) (base/poller_epoll.c): the tests that call this run on epoll_wait. */
static void
s_pad(fixture_t *fx)
{
    for (int i = 0; i < 16; i++) {
        assert_int_equal(pipe(fx->pad[i]), 0);
        assert_int_equal(zt_reactor_add_reader(fx->reactor, fx->pad[i][0], s_never, NULL), 0);
    }
}

static void
test_reactor_socket_readable_after_its_callback_used_it_is_served_next_pass_in_a_large_set(
    void **state)
{
    s_pad(*state);
    test_reactor_socket_readable_after_its_callback_used_it_is_served_next_pass(state);
}

static void
test_reactor_socket_left_with_messages_is_called_again_in_a_large_set(void **state)
{
    s_pad(*state);
    test_reactor_socket_left_with_messages_is_called_again(state);
}

static void
test_reactor_reader_left_with_data_is_called_again_in_a_large_set(void **state)
{
    s_pad(*state);
    test_reactor_reader_left_with_data_is_called_again(state);
}

static void
test_reactor_reader_and_writer_of_one_fd_are_watched_apart_in_a_large_set(void **state)
{
    s_pad(*state);
    test_reactor_reader_and_writer_of_one_fd_are_watched_apart(state);
}

static void
test_reactor_event_of_a_replaced_fd_does_not_reach_its_new_reader_in_a_large_set(void **state)
{
    s_pad(*state);
    test_reactor_event_of_a_replaced_fd_does_not_reach_its_new_reader_in_that_pass(state);
}

static void
test_reactor_reader_of_a_regular_file_is_always_ready_in_a_large_set(void **state)
{
    s_pad(*state);
    test_reactor_reader_of_a_regular_file_is_always_ready(state);
}

/* --- signals ---------------------------------------------------------------------------- */

static bool
s_is_default(int sig)
{
    struct sigaction sa;
    sigaction(sig, NULL, &sa);
    return sa.sa_handler == SIG_DFL;
}

static void
test_reactor_installs_no_signal_handler_by_default(void **state)
{
    fixture_t *fx = *state;
    assert_true(s_is_default(SIGINT));
    assert_true(s_is_default(SIGTERM));
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_stop, fx, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_true(s_is_default(SIGINT));
    assert_true(s_is_default(SIGTERM));
}

static void
s_raise_sigterm(void *arg)
{
    (void)arg;
    raise(SIGTERM);
}

static void
test_reactor_handle_signals_sigterm_stops_gracefully(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_handle_signals(fx->reactor), 0);
    assert_false(s_is_default(SIGTERM));
    assert_false(s_is_default(SIGINT));
    assert_int_equal(zt_reactor_add_system_event_trigger(fx->reactor, ZT_PHASE_BEFORE, "shutdown",
                                                         s_shutdown_trigger, fx, NULL),
                     0);
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_raise_sigterm, NULL, NULL), 0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_true(fx->shutdown_ran);
    zt_reactor_destroy(&fx->reactor);
    assert_true(s_is_default(SIGTERM)); /* the previous disposition is back */
    assert_true(s_is_default(SIGINT));
}

static void
test_reactor_handle_signals_is_one_reactor_at_a_time(void **state)
{
    fixture_t *fx = *state;
    zt_reactor_t *other = zt_reactor_new();
    assert_int_equal(zt_reactor_handle_signals(fx->reactor), 0);
    assert_int_equal(zt_reactor_handle_signals(fx->reactor), 0); /* again: nothing changes */
    assert_int_equal(zt_reactor_handle_signals(other), ZT_ESTATE);
    zt_reactor_destroy(&fx->reactor);
    assert_int_equal(zt_reactor_handle_signals(other), 0);
    zt_reactor_destroy(&other);
    assert_true(s_is_default(SIGTERM));
}

/* --- observability ---------------------------------------------------------------------- */

static void
test_reactor_stats_count_passes_callbacks_and_registrations(void **state)
{
    fixture_t *fx = *state;
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.passes, 0);
    assert_int_equal(stats.callbacks_run, 0);
    assert_int_equal(stats.registrations, 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_count, &fx->calls, NULL), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_count, &fx->calls, NULL), 0);
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, s_count, &fx->calls), 0);
    assert_int_equal(zt_reactor_add_writer(fx->reactor, fx->fds[1], s_on_writable, fx), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.passes, 1);
    assert_int_equal(stats.callbacks_run, 4);
    assert_int_equal(stats.registrations, 1);
    assert_int_equal(stats.timers_pending, 0);
    assert_int_equal(stats.slow_callbacks, 0);
    assert_true(stats.longest_callback_ns > 0);
    assert_int_equal(zt_reactor_remove_writer(fx->reactor, fx->fds[1]), 0);
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.registrations, 0);
}

static void
s_busy(void *arg)
{
    fixture_t *fx = arg;
    /* Busy past the threshold; the assertion is on the warning, not on the duration. */
    double until = zt_time_now() + 0.005;
    while (zt_time_now() < until)
        ;
    fx->calls++;
}

static void
test_reactor_slow_callback_logs_warning_with_its_name(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_set_slow_callback_threshold(fx->reactor, 0.001), 0);
    assert_int_equal(zt_reactor_set_callback_name(fx->reactor, s_busy, "s_busy"), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_busy, fx, NULL), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(fx->log.warnings, 1);
    assert_non_null(strstr(fx->log.last_warning, "slow callback 0x"));
    assert_non_null(strstr(fx->log.last_warning, "(s_busy)"));
    zt_reactor_stats_t stats;
    zt_reactor_stats(fx->reactor, &stats);
    assert_int_equal(stats.slow_callbacks, 1);
    assert_true(stats.longest_callback_ns >= 1000000);
}

static void
test_reactor_slow_callback_watchdog_is_off_by_default(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_call_later(fx->reactor, 0, s_busy, fx, NULL), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->log.warnings, 0);
    assert_int_equal(zt_reactor_set_slow_callback_threshold(fx->reactor, -1), ZT_EINVAL);
    assert_int_equal(zt_reactor_set_callback_name(fx->reactor, s_busy, "a"), 0);
    assert_int_equal(zt_reactor_set_callback_name(fx->reactor, s_busy, NULL), 0);
}

static void
test_reactor_slow_unnamed_callback_is_named_by_address(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_reactor_set_slow_callback_threshold(fx->reactor, 0.001), 0);
    assert_int_equal(zt_reactor_call_from_thread(fx->reactor, s_busy, fx), 0);
    assert_int_equal(zt_reactor_iterate(fx->reactor, 0), 0);
    assert_int_equal(fx->log.warnings, 1);
    assert_non_null(strstr(fx->log.last_warning, "(unnamed)"));
}

/* --- thread checks (debug builds) -------------------------------------------------------- */

#ifndef NDEBUG
static void *
s_make_reactor(void *arg)
{
    *(zt_reactor_t **)arg = zt_reactor_new(); /* this thread is its reactor thread */
    return NULL;
}

static void
test_reactor_call_from_wrong_thread_aborts_in_debug_builds(void **state)
{
    fixture_t *fx = *state;
    zt_reactor_t *other = NULL;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_make_reactor, &other), 0);
    pthread_join(t, NULL);
    assert_non_null(other);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child starts no thread (ThreadSanitizer forbids it after a fork). */
        zt_log_set_level(ZT_LOG_NONE);
        zt_reactor_call_later(other, 0, s_count, &fx->calls, NULL); /* aborts */
        _exit(0);                                                   /* not reached */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    zt_reactor_destroy(&other); /* destroy is allowed from any one thread */
}
#endif

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_reactor_destroy_accepts_null),
        T(test_reactor_run_returns_after_stop_from_callback),
        T(test_reactor_run_after_stop_returns_estate),
        T(test_reactor_second_stop_returns_estate),
        T(test_reactor_stop_before_run_shuts_down_after_startup),
        T(test_reactor_timer_wakes_a_running_reactor),
        T(test_reactor_iterate_zero_returns_with_a_far_timer_pending),
        T(test_reactor_idle_iterate_sleeps_in_the_kernel),
        T(test_reactor_seconds_follows_the_monotonic_clock),
        T(test_reactor_reader_called_when_readable),
        T(test_reactor_reader_removed_in_own_callback_is_not_called_again),
        T(test_reactor_callback_removing_another_registration_skips_it_in_same_pass),
        T(test_reactor_writer_called_when_writable),
        T(test_reactor_registration_added_in_callback_is_polled_next_pass),
        T(test_reactor_reader_is_told_of_hangup),
        T(test_reactor_registration_errors),
        T(test_reactor_socket_called_when_a_message_arrives),
        T(test_reactor_socket_readable_after_its_callback_used_it_is_served_next_pass),
        T(test_reactor_socket_left_with_messages_is_called_again),
        T(test_reactor_reader_left_with_data_is_called_again),
        T(test_reactor_reader_and_writer_of_one_fd_are_watched_apart),
        T(test_reactor_event_of_a_replaced_fd_does_not_reach_its_new_reader_in_that_pass),
        T(test_reactor_add_reader_of_a_closed_fd_fails_without_calling),
        T(test_reactor_reader_of_a_regular_file_is_always_ready),
        T(test_reactor_socket_readable_after_its_callback_used_it_is_served_next_pass_in_a_large_set),
        T(test_reactor_socket_left_with_messages_is_called_again_in_a_large_set),
        T(test_reactor_reader_left_with_data_is_called_again_in_a_large_set),
        T(test_reactor_reader_and_writer_of_one_fd_are_watched_apart_in_a_large_set),
        T(test_reactor_event_of_a_replaced_fd_does_not_reach_its_new_reader_in_a_large_set),
        T(test_reactor_reader_of_a_regular_file_is_always_ready_in_a_large_set),
        T(test_reactor_installs_no_signal_handler_by_default),
        T(test_reactor_handle_signals_sigterm_stops_gracefully),
        T(test_reactor_handle_signals_is_one_reactor_at_a_time),
        T(test_reactor_stats_count_passes_callbacks_and_registrations),
        T(test_reactor_slow_callback_logs_warning_with_its_name),
        T(test_reactor_slow_callback_watchdog_is_off_by_default),
        T(test_reactor_slow_unnamed_callback_is_named_by_address),
#ifndef NDEBUG
        T(test_reactor_call_from_wrong_thread_aborts_in_debug_builds),
#endif
#undef T
    };
    return cmocka_run_group_tests_name("reactor", tests, NULL, NULL);
}
