/*  tests/bridges/test_unix.c - Unix domain sockets: listen, connect, LineReceiver over them, the
 *  socket file's mode, stale sockets, the abstract namespace, peer credentials, the error paths
 *
 *  Each test works in its own temporary directory (mkdtemp) and drives the reactor with
 * zt_reactor_iterate until what it waits for has happened. The server is an echo LineReceiver;
 * the client is a LineReceiver that sends a line on connection_made and records what comes back,
 * so the TCP bridge's protocols are shown to run unchanged over a Unix socket.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/deferred.h>
#include <ztwist/line_receiver.h>
#include <ztwist/protocol.h>
#include <ztwist/reactor.h>
#include <ztwist/unix.h>

#include "bridges/tcp_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>

typedef struct fixture {
    zt_reactor_t *reactor;                /* the reactor under test */
    char dir[64];                         /* the temporary directory */
    char path[128];                       /* dir/sock */
    zt_factory_t *server;                 /* the echo server's factory */
    zt_factory_t *client;                 /* the client's factory */
    int server_made;                      /* server connection_made calls */
    zt_address_t server_addr;             /* the address its build_protocol got */
    zt_unix_credentials_t cred;           /* the peer credentials the server read */
    int cred_rc;                          /* what reading them returned */
    char reply[64];                       /* the line the client got back */
    bool replied;                         /* it did */
    bool client_lost;                     /* the client's connection_lost ran */
    bool d_fired;                         /* the connect Deferred fired */
    bool d_ok;                            /* ... with a protocol */
    const zt_failure_type_t *d_fail_type; /* the failure's type */
    int d_fail_cause_code;                /* its cause's code, or 0 */
    int client_failed;                    /* client_connection_failed calls */
} fixture_t;

/* --- the echo server ---------------------------------------------------------------------- */

static void
on_server_made(zt_line_receiver_t *lr, void *arg)
{
    fixture_t *fx = arg;
    fx->server_made++;
    fx->cred_rc = zt_transport_get_peer_credentials(zt_line_receiver_transport(lr), &fx->cred);
}

static void
on_server_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg)
{
    (void)arg;
    assert_int_equal(zt_line_receiver_send_line(lr, line, len), 0);
}

static const zt_line_receiver_vtable_t s_echo = {.connection_made = on_server_made,
                                                 .line_received = on_server_line};

static zt_protocol_t *
build_server(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f;
    fixture_t *fx = arg;
    fx->server_addr = *addr;
    zt_line_receiver_t *lr = zt_line_receiver_new(&s_echo, fx, NULL);
    return lr ? zt_line_receiver_protocol(lr) : NULL;
}

static const zt_factory_vtable_t s_server_factory = {.build_protocol = build_server};

/* --- the client ----------------------------------------------------------------------------- */

static void
on_client_made(zt_line_receiver_t *lr, void *arg)
{
    (void)arg;
    assert_int_equal(zt_line_receiver_send_line(lr, "hello unix", 10), 0);
}

static void
on_client_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg)
{
    fixture_t *fx = arg;
    snprintf(fx->reply, sizeof fx->reply, "%.*s", (int)len, line);
    fx->replied = true;
    zt_transport_lose_connection(zt_line_receiver_transport(lr));
}

static void
on_client_lost(zt_line_receiver_t *lr, const zt_failure_t *reason, void *arg)
{
    (void)lr;
    (void)reason;
    fixture_t *fx = arg;
    fx->client_lost = true;
}

static const zt_line_receiver_vtable_t s_client = {.connection_made = on_client_made,
                                                   .line_received = on_client_line,
                                                   .connection_lost = on_client_lost};

static zt_protocol_t *
build_client(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f;
    (void)addr;
    zt_line_receiver_t *lr = zt_line_receiver_new(&s_client, arg, NULL);
    return lr ? zt_line_receiver_protocol(lr) : NULL;
}

static void
on_client_failed(zt_factory_t *f, const zt_failure_t *reason, void *arg)
{
    (void)f;
    (void)reason;
    fixture_t *fx = arg;
    fx->client_failed++;
}

static const zt_factory_vtable_t s_client_factory = {.build_protocol = build_client,
                                                     .client_connection_failed = on_client_failed};

static zt_result_t
on_connected(zt_result_t r, void *arg)
{
    fixture_t *fx = arg;
    fx->d_fired = true;
    fx->d_ok = !zt_is_err(r);
    if (zt_is_err(r)) {
        const zt_failure_t *f = zt_result_failure(r);
        fx->d_fail_type = zt_failure_type(f);
        fx->d_fail_cause_code = zt_failure_cause(f) ? zt_failure_code(zt_failure_cause(f)) : 0;
        zt_result_release(&r);
        return zt_ok_none();
    }
    return r;
}

static void
connect_and_wait(fixture_t *fx, const char *path)
{
    zt_deferred_t *d = zt_connect_unix(fx->reactor, path, fx->client, 5);
    assert_non_null(d);
    assert_int_equal(zt_deferred_add_both(d, on_connected, fx), 0);
    assert_false(fx->d_fired); /* never inside the call */
    zt_deferred_unref(&d);
    assert_true(tcp_util_run_until(fx->reactor, &fx->d_fired));
}

/* --- fixture ------------------------------------------------------------------------------ */

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/zt-unix-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/sock", fx->dir);
    fx->reactor = zt_reactor_new();
    fx->server = zt_factory_new(&s_server_factory, fx);
    fx->client = zt_factory_new(&s_client_factory, fx);
    assert_true(fx->reactor && fx->server && fx->client);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    tcp_util_spin(fx->reactor, 5);
    /* A test that failed half-way may leave a port: then leak rather than trip the assertion, so
     * that cmocka reports the failure. */
    if (zt_factory_users(fx->server) == 0)
        zt_factory_destroy(&fx->server);
    if (zt_factory_users(fx->client) == 0)
        zt_factory_destroy(&fx->client);
    zt_reactor_destroy(&fx->reactor);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* A socket bound at path and closed without unlinking: what a dead process leaves behind. */
static void
make_stale_socket(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    close(fd);
}

/* --- tests -------------------------------------------------------------------------------- */

static void
test_unix_line_receiver_echo_round_trip(void **state)
{
    fixture_t *fx = *state;
    zt_unix_port_t *port = NULL;
    assert_int_equal(zt_listen_unix(fx->reactor, fx->path, fx->server, 0, 0600, &port), 0);
    assert_string_equal(zt_unix_port_get_path(port), fx->path);
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    connect_and_wait(fx, fx->path);
    assert_true(fx->d_ok);
    assert_true(tcp_util_run_until(fx->reactor, &fx->replied));
    assert_string_equal(fx->reply, "hello unix");
    assert_true(tcp_util_run_until(fx->reactor, &fx->client_lost));
    assert_int_equal(fx->server_made, 1);
    assert_int_equal(fx->server_addr.family, ZT_AF_UNIX);
    /* SO_PEERCRED: the client is this process. */
    assert_int_equal(fx->cred_rc, 0);
    assert_int_equal(fx->cred.pid, getpid());
    assert_int_equal(fx->cred.uid, getuid());
    assert_int_equal(fx->cred.gid, getgid());
    zt_unix_port_lose_connections(port, false);
    tcp_util_spin(fx->reactor, 5);
    assert_int_equal(zt_unix_port_connection_count(port), 0);
    zt_deferred_t *d = zt_unix_port_stop_listening(port);
    zt_deferred_unref(&d);
    assert_int_not_equal(access(fx->path, F_OK), 0); /* its own file is unlinked */
    zt_unix_port_destroy(&port);
    assert_null(port);
}

static void
test_unix_mode_other_is_applied(void **state)
{
    fixture_t *fx = *state;
    zt_unix_port_t *port = NULL;
    assert_int_equal(zt_listen_unix(fx->reactor, fx->path, fx->server, 0, 0660, &port), 0);
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);
    zt_unix_port_destroy(&port);
}

static void
test_unix_connect_missing_path_fails_not_found(void **state)
{
    fixture_t *fx = *state;
    connect_and_wait(fx, fx->path);
    assert_false(fx->d_ok);
    assert_ptr_equal(fx->d_fail_type, ZT_CONNECT_ERROR);
    assert_int_equal(fx->d_fail_cause_code, ZT_ENOTFOUND);
    assert_int_equal(fx->client_failed, 1);
    assert_int_equal(zt_factory_users(fx->client), 0);
}

static void
test_unix_connect_stale_socket_is_refused(void **state)
{
    fixture_t *fx = *state;
    make_stale_socket(fx->path);
    connect_and_wait(fx, fx->path);
    assert_false(fx->d_ok);
    assert_ptr_equal(fx->d_fail_type, ZT_CONNECTION_REFUSED);
    assert_int_equal(fx->client_failed, 1);
}

static void
test_unix_connect_bad_path_fails_later(void **state)
{
    fixture_t *fx = *state;
    char longpath[ZT_UNIX_PATH_MAX + 10];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    connect_and_wait(fx, longpath);
    assert_false(fx->d_ok);
    assert_ptr_equal(fx->d_fail_type, ZT_CONNECT_ERROR);
    fx->d_fired = false;
    connect_and_wait(fx, "");
    assert_false(fx->d_ok);
    assert_null(zt_connect_unix(fx->reactor, NULL, fx->client, 1));
}

static void
test_unix_listen_over_stale_socket_takes_it(void **state)
{
    fixture_t *fx = *state;
    make_stale_socket(fx->path);
    zt_unix_port_t *port = NULL;
    assert_int_equal(zt_listen_unix(fx->reactor, fx->path, fx->server, 0, 0, &port), 0);
    connect_and_wait(fx, fx->path);
    assert_true(fx->d_ok);
    assert_true(tcp_util_run_until(fx->reactor, &fx->replied));
    zt_unix_port_lose_connections(port, true);
    zt_unix_port_destroy(&port);
}

static void
test_unix_listen_over_live_socket_is_in_use(void **state)
{
    fixture_t *fx = *state;
    zt_unix_port_t *port = NULL;
    zt_unix_port_t *second = NULL;
    assert_int_equal(zt_listen_unix(fx->reactor, fx->path, fx->server, 0, 0, &port), 0);
    assert_int_equal(zt_listen_unix(fx->reactor, fx->path, fx->server, 0, 0, &second),
                     ZT_EADDRINUSE);
    assert_null(second);
    assert_int_equal(zt_factory_users(fx->server), 1);
    /* The live one still serves. */
    connect_and_wait(fx, fx->path);
    assert_true(fx->d_ok);
    assert_true(tcp_util_run_until(fx->reactor, &fx->replied));
    zt_unix_port_lose_connections(port, true);
    zt_unix_port_destroy(&port);
}

static void
test_unix_listen_over_regular_file_keeps_it(void **state)
{
    fixture_t *fx = *state;
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    fputs("precious", f);
    fclose(f);
    zt_unix_port_t *port = NULL;
    assert_int_equal(zt_listen_unix(fx->reactor, fx->path, fx->server, 0, 0, &port), ZT_EADDRINUSE);
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

static void
test_unix_listen_bad_arguments_fail(void **state)
{
    fixture_t *fx = *state;
    zt_unix_port_t *port = NULL;
    char longpath[ZT_UNIX_PATH_MAX + 2];
    memset(longpath, 'b', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    assert_int_equal(zt_listen_unix(fx->reactor, longpath, fx->server, 0, 0, &port), ZT_EINVAL);
    assert_int_equal(zt_listen_unix(fx->reactor, "", fx->server, 0, 0, &port), ZT_EINVAL);
    assert_int_equal(zt_listen_unix(fx->reactor, "@", fx->server, 0, 0, &port), ZT_EINVAL);
    assert_int_equal(zt_listen_unix(fx->reactor, NULL, fx->server, 0, 0, &port), ZT_EINVAL);
    assert_int_equal(
        zt_listen_unix(fx->reactor, "/nonexistent-zt-dir/sock", fx->server, 0, 0, &port),
        ZT_ENOTFOUND);
    assert_null(port);
    assert_int_equal(zt_factory_users(fx->server), 0);
}

static void
test_unix_abstract_namespace_has_no_file(void **state)
{
    fixture_t *fx = *state;
    char name[64];
    snprintf(name, sizeof name, "@zt-test-unix-%ld", (long)getpid());
    zt_unix_port_t *port = NULL;
    assert_int_equal(zt_listen_unix(fx->reactor, name, fx->server, 0, 0600, &port), 0);
    assert_int_not_equal(access(name, F_OK), 0);
    connect_and_wait(fx, name);
    assert_true(fx->d_ok);
    assert_true(tcp_util_run_until(fx->reactor, &fx->replied));
    assert_string_equal(fx->reply, "hello unix");
    zt_unix_port_t *second = NULL;
    assert_int_equal(zt_listen_unix(fx->reactor, name, fx->server, 0, 0, &second), ZT_EADDRINUSE);
    zt_unix_port_lose_connections(port, true);
    zt_unix_port_destroy(&port);
}

static void
test_unix_credentials_of_tcp_transport_are_refused(void **state)
{
    fixture_t *fx = *state;
    zt_tcp_port_t *port = NULL;
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, fx->server, 0, "127.0.0.1", &port), 0);
    zt_address_t host;
    assert_int_equal(zt_tcp_port_get_host(port, &host), 0);
    int fd = tcp_util_connect(host.port);
    assert_true(fd >= 0);
    for (int i = 0; i < TCP_UTIL_PASSES && fx->server_made == 0; i++)
        zt_reactor_iterate(fx->reactor, 0.01);
    assert_int_equal(fx->server_made, 1);
    assert_int_equal(fx->cred_rc, ZT_EINVAL);
    close(fd);
    zt_tcp_port_lose_connections(port, true);
    zt_tcp_port_destroy(&port);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unix_line_receiver_echo_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_mode_other_is_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_connect_missing_path_fails_not_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_connect_stale_socket_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_connect_bad_path_fails_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_listen_over_stale_socket_takes_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_listen_over_live_socket_is_in_use, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_listen_over_regular_file_keeps_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_listen_bad_arguments_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_abstract_namespace_has_no_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_credentials_of_tcp_transport_are_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("unix", tests, NULL, NULL);
}
