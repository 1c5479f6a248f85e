/*  tests/base/test_poller.c - zt__poller, the kernel's set of watched fds
 *
 *  Built twice (tests/CMakeLists.txt): against poller_epoll.c and against poller_poll.c, so both
 * backends keep one contract. Every case runs twice: on a small set, and with PAD idle pipes
 * watched too, so the epoll backend is tested both in its poll(2) mode for small sets and in
 * epoll_wait. Where an event must be reported each wait has a long timeout, which
 * only a broken poller sits out.  */
#include "base/poller.h"
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* The library's assertion is internal to it; the backends are compiled into this test. */
noreturn void
zt__assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "%s:%d: %s: assertion failed: %s\n", file, line, func, expr);
    abort();
}

#define LONG_MS 5000 /* a wait that only a broken poller sits out */
#define MAX_EVENTS 8
#define PAD 16 /* idle pipes in the padded runs: over the epoll backend's small set */

typedef struct {
    zt__poller_t *poller;                  /* the set under test */
    int a[2];                              /* a pipe: [0] read end, [1] write end */
    int b[2];                              /* another */
    zt__poller_event_t events[MAX_EVENTS]; /* a wait's output */
    int pad[PAD][2];                       /* idle pipes, watched for reading, when padded */
    bool padded;                           /* the pad is in use */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->poller = zt__poller_new();
    assert_non_null(fx->poller);
    assert_int_equal(pipe(fx->a), 0);
    assert_int_equal(pipe(fx->b), 0);
    *state = fx;
    return 0;
}

static int
setup_padded(void **state)
{
    setup(state);
    fixture_t *fx = *state;
    fx->padded = true;
    for (int i = 0; i < PAD; i++) {
        assert_int_equal(pipe(fx->pad[i]), 0);
        assert_int_equal(zt__poller_set(fx->poller, fx->pad[i][0], 0, ZT__POLLER_IN), 0);
    }
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    for (int i = 0; fx->padded && i < PAD; i++) {
        assert_int_equal(zt__poller_set(fx->poller, fx->pad[i][0], ZT__POLLER_IN, 0), 0);
        close(fx->pad[i][0]);
        close(fx->pad[i][1]);
    }
    zt__poller_destroy(&fx->poller);
    assert_null(fx->poller);
    zt__poller_destroy(NULL);
    for (int i = 0; i < 2; i++) {
        close(fx->a[i]);
        close(fx->b[i]);
    }
    free(fx);
    return 0;
}

static void
test_poller_reports_only_the_ready_fd(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt__poller_set(fx->poller, fx->a[0], 0, ZT__POLLER_IN), 0);
    assert_int_equal(zt__poller_set(fx->poller, fx->b[0], 0, ZT__POLLER_IN), 0);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, 0), 0);
    assert_int_equal(write(fx->b[1], "x", 1), 1);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, LONG_MS), 1);
    assert_int_equal(fx->events[0].fd, fx->b[0]);
    assert_int_equal(fx->events[0].events, ZT__POLLER_IN);
}

static void
test_poller_fd_left_readable_is_reported_again(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt__poller_set(fx->poller, fx->a[0], 0, ZT__POLLER_IN), 0);
    assert_int_equal(write(fx->a[1], "xy", 2), 2);
    char c;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, LONG_MS), 1);
        assert_int_equal(fx->events[0].fd, fx->a[0]);
        assert_int_equal(read(fx->a[0], &c, 1), 1); /* one byte of two, then the last */
    }
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, 0), 0);
}

static void
test_poller_set_changes_what_is_watched_and_zero_removes(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(write(fx->a[1], "x", 1), 1);
    /* The write end is writable, never readable. */
    assert_int_equal(zt__poller_set(fx->poller, fx->a[1], 0, ZT__POLLER_IN), 0);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, 0), 0);
    assert_int_equal(
        zt__poller_set(fx->poller, fx->a[1], ZT__POLLER_IN, ZT__POLLER_IN | ZT__POLLER_OUT), 0);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, LONG_MS), 1);
    assert_int_equal(fx->events[0].fd, fx->a[1]);
    assert_int_equal(fx->events[0].events, ZT__POLLER_OUT);
    assert_int_equal(zt__poller_set(fx->poller, fx->a[1], ZT__POLLER_IN | ZT__POLLER_OUT, 0), 0);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, 0), 0);
    /* Removing what is not there is not an error. */
    assert_int_equal(zt__poller_set(fx->poller, fx->a[1], 0, 0), 0);
}

static void
test_poller_hangup_is_reported_to_a_writer_and_a_reader(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt__poller_set(fx->poller, fx->a[0], 0, ZT__POLLER_IN), 0);
    assert_int_equal(zt__poller_set(fx->poller, fx->b[1], 0, ZT__POLLER_OUT), 0);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, LONG_MS), 1);
    assert_int_equal(fx->events[0].events, ZT__POLLER_OUT); /* b's write end, writable */
    close(fx->a[1]);                                        /* a's reader sees a hang-up */
    close(fx->b[0]);                                        /* b's writer, an error: nobody reads */
    fx->a[1] = dup(fx->a[0]);
    fx->b[0] = dup(fx->b[1]); /* keep teardown's close valid */
    int n = zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, LONG_MS);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) {
        assert_true(fx->events[i].fd == fx->a[0] || fx->events[i].fd == fx->b[1]);
        assert_true(fx->events[i].events & ZT__POLLER_ERR);
    }
}

static void
test_poller_more_ready_than_max_are_reported_by_the_next_wait(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt__poller_set(fx->poller, fx->a[1], 0, ZT__POLLER_OUT), 0);
    assert_int_equal(zt__poller_set(fx->poller, fx->b[1], 0, ZT__POLLER_OUT), 0);
    zt__poller_event_t one;
    assert_int_equal(zt__poller_wait(fx->poller, &one, 1, LONG_MS), 1);
    int first = one.fd;
    assert_int_equal(zt__poller_wait(fx->poller, &one, 1, LONG_MS), 1);
    assert_int_not_equal(one.fd, first); /* both get their turn */
}

static void
test_poller_timeout_returns_zero(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt__poller_set(fx->poller, fx->a[0], 0, ZT__POLLER_IN), 0);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, 1), 0);
}

static void
test_poller_regular_file_is_always_ready(void **state)
{
    fixture_t *fx = *state;
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = fileno(f);
    assert_int_equal(zt__poller_set(fx->poller, fd, 0, ZT__POLLER_IN), 0);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, LONG_MS), 1);
    assert_int_equal(fx->events[0].fd, fd);
    assert_true(fx->events[0].events & ZT__POLLER_IN);
    assert_int_equal(zt__poller_set(fx->poller, fd, ZT__POLLER_IN, ZT__POLLER_OUT), 0);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, LONG_MS), 1);
    assert_true(fx->events[0].events & ZT__POLLER_OUT);
    assert_int_equal(zt__poller_set(fx->poller, fd, ZT__POLLER_OUT, 0), 0);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, 0), 0);
    fclose(f);
}

static void
test_poller_closed_fd_is_einval(void **state)
{
    fixture_t *fx = *state;
    int fd = dup(fx->a[0]);
    close(fd);
    assert_int_equal(zt__poller_set(fx->poller, fd, 0, ZT__POLLER_IN), ZT_EINVAL);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, 0), 0);
}

static void
test_poller_fd_closed_while_watched_can_be_watched_again_under_its_number(void **state)
{
    fixture_t *fx = *state;
    int fd = dup(fx->a[0]);
    assert_int_equal(zt__poller_set(fx->poller, fd, 0, ZT__POLLER_IN), 0);
    close(fd); /* without removing it first */
    assert_int_equal(dup2(fx->b[0], fd), fd);
    assert_int_equal(zt__poller_set(fx->poller, fd, ZT__POLLER_IN, ZT__POLLER_IN), 0);
    assert_int_equal(write(fx->b[1], "x", 1), 1);
    assert_int_equal(zt__poller_wait(fx->poller, fx->events, MAX_EVENTS, LONG_MS), 1);
    assert_int_equal(fx->events[0].fd, fd);
    assert_int_equal(zt__poller_set(fx->poller, fd, ZT__POLLER_IN, 0), 0);
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_poller_reports_only_the_ready_fd),
        T(test_poller_fd_left_readable_is_reported_again),
        T(test_poller_set_changes_what_is_watched_and_zero_removes),
        T(test_poller_hangup_is_reported_to_a_writer_and_a_reader),
        T(test_poller_more_ready_than_max_are_reported_by_the_next_wait),
        T(test_poller_timeout_returns_zero),
        T(test_poller_regular_file_is_always_ready),
        T(test_poller_closed_fd_is_einval),
        T(test_poller_fd_closed_while_watched_can_be_watched_again_under_its_number),
#undef T
#define P(name) {#name " (padded)", name, setup_padded, teardown, NULL}
        P(test_poller_reports_only_the_ready_fd),
        P(test_poller_fd_left_readable_is_reported_again),
        P(test_poller_set_changes_what_is_watched_and_zero_removes),
        P(test_poller_hangup_is_reported_to_a_writer_and_a_reader),
        P(test_poller_more_ready_than_max_are_reported_by_the_next_wait),
        P(test_poller_timeout_returns_zero),
        P(test_poller_regular_file_is_always_ready),
        P(test_poller_closed_fd_is_einval),
        P(test_poller_fd_closed_while_watched_can_be_watched_again_under_its_number),
#undef P
    };
    char name[32];
    snprintf(name, sizeof name, "poller (%s)", zt__poller_backend());
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}
