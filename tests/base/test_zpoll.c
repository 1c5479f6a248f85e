/*  tests/base/test_zpoll.c - zt__zpoll keeps zmq_poll's contract
 *
 *  Each case waits with a long timeout where an event must be reported: a broken zt__zpoll waits
 * it out and returns 0, which fails the count assertion (no timing is asserted).  */
#include "base/zpoll.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define LONG_MS 5000 /* a wait that only a broken zt__zpoll sits out */

typedef struct fixture {
    void *ctx;       /* Owned */
    void *a;         /* PAIR, bound; Owned */
    void *b;         /* PAIR, connected to a; Owned */
    int pipe_fds[2]; /* a plain fd pair: read end, write end (-1 once closed) */
} fixture_t;

static int
s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    const char *endpoint = "inproc://test-zpoll"; /* inproc names are per context */
    if (!f)
        return -1;
    f->ctx = zmq_ctx_new();
    f->a = zmq_socket(f->ctx, ZMQ_PAIR);
    f->b = zmq_socket(f->ctx, ZMQ_PAIR);
    if (!f->a || !f->b || zmq_bind(f->a, endpoint) != 0 || zmq_connect(f->b, endpoint) != 0 ||
        pipe(f->pipe_fds) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *f = *state;
    zmq_close(f->a);
    zmq_close(f->b);
    zmq_ctx_term(f->ctx);
    close(f->pipe_fds[0]);
    if (f->pipe_fds[1] >= 0)
        close(f->pipe_fds[1]);
    free(f);
    return 0;
}

static void
test_zpoll_nothing_ready_with_zero_timeout_returns_zero(void **state)
{
    fixture_t *f = *state;
    zmq_pollitem_t items[2] = {{f->b, 0, ZMQ_POLLIN, 0}, {NULL, f->pipe_fds[0], ZMQ_POLLIN, 0}};
    struct pollfd scratch[2];
    assert_int_equal(zt__zpoll(items, 2, 0, scratch), 0);
    assert_int_equal(items[0].revents, 0);
    assert_int_equal(items[1].revents, 0);
}

static void
test_zpoll_readable_socket_is_reported(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(zmq_send(f->a, "x", 1, 0), 1);
    zmq_pollitem_t items[2] = {{NULL, f->pipe_fds[0], ZMQ_POLLIN, 0}, {f->b, 0, ZMQ_POLLIN, 0}};
    struct pollfd scratch[2];
    assert_int_equal(zt__zpoll(items, 2, LONG_MS, scratch), 1);
    assert_int_equal(items[0].revents, 0);
    assert_int_equal(items[1].revents, ZMQ_POLLIN);
}

static void
test_zpoll_message_whose_signal_was_consumed_is_still_reported(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(zmq_send(f->a, "x", 1, 0), 1);
    /* Asking ZMQ_EVENTS reads the ZMQ_FD signal: the socket is readable, its fd no longer is. */
    int events = 0;
    size_t size = sizeof events;
    assert_int_equal(zmq_getsockopt(f->b, ZMQ_EVENTS, &events, &size), 0);
    assert_true(events & ZMQ_POLLIN);
    zmq_pollitem_t item = {f->b, 0, ZMQ_POLLIN, 0};
    struct pollfd scratch[1];
    assert_int_equal(zt__zpoll(&item, 1, LONG_MS, scratch), 1);
    assert_int_equal(item.revents, ZMQ_POLLIN);
}

static void
test_zpoll_quiet_socket_is_reported_when_its_fd_fires(void **state)
{
    fixture_t *f = *state;
    char c;
    assert_int_equal(zmq_recv(f->b, &c, 1, ZMQ_DONTWAIT), -1); /* drained: EAGAIN */
    assert_int_equal(zmq_send(f->a, "y", 1, 0), 1);
    zmq_pollitem_t item = {f->b, 0, ZMQ_POLLIN | ZT__ZPOLL_QUIET, 0};
    struct pollfd scratch[1];
    assert_int_equal(zt__zpoll(&item, 1, LONG_MS, scratch), 1);
    assert_int_equal(item.revents, ZMQ_POLLIN);
    assert_int_equal(zmq_recv(f->b, &c, 1, ZMQ_DONTWAIT), 1);
    assert_int_equal(c, 'y');
}

static void
test_zpoll_writable_socket_and_fd_are_both_reported(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(write(f->pipe_fds[1], "z", 1), 1);
    zmq_pollitem_t items[2] = {{f->b, 0, ZMQ_POLLOUT, 0}, {NULL, f->pipe_fds[0], ZMQ_POLLIN, 0}};
    struct pollfd scratch[2];
    assert_int_equal(zt__zpoll(items, 2, LONG_MS, scratch), 2);
    assert_int_equal(items[0].revents, ZMQ_POLLOUT);
    assert_int_equal(items[1].revents, ZMQ_POLLIN);
}

static void
test_zpoll_hung_up_fd_reports_pollerr(void **state)
{
    fixture_t *f = *state;
    close(f->pipe_fds[1]);
    f->pipe_fds[1] = -1;
    zmq_pollitem_t item = {NULL, f->pipe_fds[0], ZMQ_POLLIN, 0};
    struct pollfd scratch[1];
    assert_int_equal(zt__zpoll(&item, 1, LONG_MS, scratch), 1);
    assert_true(item.revents & ZMQ_POLLERR);
}

static void
test_zpoll_socket_asking_for_nothing_is_skipped(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(zmq_send(f->a, "x", 1, 0), 1);
    zmq_pollitem_t item = {f->b, 0, 0, 0};
    struct pollfd scratch[1];
    assert_int_equal(zt__zpoll(&item, 1, 0, scratch), 0);
    assert_int_equal(item.revents, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_zpoll_nothing_ready_with_zero_timeout_returns_zero,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_zpoll_readable_socket_is_reported, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_zpoll_message_whose_signal_was_consumed_is_still_reported, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_zpoll_quiet_socket_is_reported_when_its_fd_fires,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_zpoll_writable_socket_and_fd_are_both_reported,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_zpoll_hung_up_fd_reports_pollerr, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_zpoll_socket_asking_for_nothing_is_skipped, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
