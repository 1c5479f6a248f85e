/*  tests/base/test_compiler.c - the platform calls of base/compiler.h
 *
 *  zt__accept_nonblock against a plain listening socket on 127.0.0.1: the accepted socket is
 * non-blocking and close-on-exec, the peer's address is filled in, and an empty backlog is
 * EAGAIN, as accept(2) on a non-blocking listener says it.  */
#include "base/compiler.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct fixture {
    int listen_fd;           /* a non-blocking listening socket on 127.0.0.1, port 0 */
    int client_fd;           /* a client of it, or -1 */
    struct sockaddr_in addr; /* the listener's address */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = test_calloc(1, sizeof *fx);
    fx->client_fd = -1;
    fx->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fx->listen_fd >= 0);
    fx->addr = (struct sockaddr_in){.sin_family = AF_INET};
    fx->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fx->listen_fd, (struct sockaddr *)&fx->addr, sizeof fx->addr), 0);
    assert_int_equal(listen(fx->listen_fd, 4), 0);
    socklen_t len = sizeof fx->addr;
    assert_int_equal(getsockname(fx->listen_fd, (struct sockaddr *)&fx->addr, &len), 0);
    int fl = fcntl(fx->listen_fd, F_GETFL);
    assert_int_equal(fcntl(fx->listen_fd, F_SETFL, fl | O_NONBLOCK), 0);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    if (fx->client_fd >= 0)
        close(fx->client_fd);
    close(fx->listen_fd);
    test_free(fx);
    return 0;
}

static void
test_compiler_accept_nonblock_gives_a_nonblocking_cloexec_socket(void **state)
{
    fixture_t *fx = *state;
    fx->client_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fx->client_fd, (struct sockaddr *)&fx->addr, sizeof fx->addr), 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    /* A blocking loopback connect returns once the connection waits in the backlog. */
    int fd = zt__accept_nonblock(fx->listen_fd, (struct sockaddr *)&ss, &len);
    assert_true(fd >= 0);
    assert_true((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    assert_int_equal(ss.ss_family, AF_INET);
    struct sockaddr_in client;
    socklen_t clen = sizeof client;
    assert_int_equal(getsockname(fx->client_fd, (struct sockaddr *)&client, &clen), 0);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, client.sin_port);
    /* Non-blocking: nothing to read yet is EAGAIN, not a wait. */
    char c;
    assert_int_equal(recv(fd, &c, 1, 0), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    close(fd);
}

static void
test_compiler_accept_nonblock_empty_backlog_is_eagain(void **state)
{
    fixture_t *fx = *state;
    errno = 0;
    assert_int_equal(zt__accept_nonblock(fx->listen_fd, NULL, NULL), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_compiler_accept_nonblock_gives_a_nonblocking_cloexec_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compiler_accept_nonblock_empty_backlog_is_eagain,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
