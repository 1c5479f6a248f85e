/*  tests/bridges/test_resolve.c - zt_resolve_host: names to addresses on the reactor's pool
 *
 *  Only names every Debian machine resolves without a network (localhost, from /etc/hosts) and
 * numeric addresses are used, so no test waits on DNS. The reactor's pool starts with the
 * reactor's run, so each test runs the reactor: its queries go out from a call_when_running, and
 * the last answer stops it (a 10 s timer stops it too, so a broken resolver fails instead of
 * hanging). The stop's shutdown event stops the pool, so nothing is left running.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_QUERIES 4

typedef struct fixture fixture_t;

typedef struct query {
    const char *name;    /* what to resolve */
    int family;          /* 0, ZT_AF_INET or ZT_AF_INET6 */
    bool cancel;         /* cancel the Deferred right after asking */
    bool connect;        /* connect to the answer (port of the fixture's listening socket) */
    fixture_t *fx;       /* Borrowed: the fixture */
    bool done;           /* the Deferred fired */
    int code;            /* 0, or the failure's code */
    zt_address_t answer; /* the address it gave */
} query_t;

struct fixture {
    zt_reactor_t *reactor;        /* Owned */
    query_t queries[MAX_QUERIES]; /* this test's queries */
    int count;                    /* how many */
    int pending;                  /* not answered yet (or, with connect, not disconnected) */
    zt_factory_t *factory;        /* the client factory of the connect test; Owned */
    int listen_fd;                /* a plain listening socket, or -1 */
    uint16_t port;                /* its port */
    bool connected;               /* zt_connect_tcp's Deferred fired with a protocol */
    zt_delayed_call_t *give_up;   /* the 10 s guard; Owned handle */
};

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->reactor = zt_reactor_new();
    fx->listen_fd = -1;
    *state = fx;
    return fx->reactor ? 0 : -1;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_delayed_call_release(&fx->give_up);
    zt_reactor_destroy(&fx->reactor);
    zt_factory_destroy(&fx->factory);
    if (fx->listen_fd >= 0)
        close(fx->listen_fd);
    free(fx);
    return 0;
}

static void
s_one_done(fixture_t *fx)
{
    if (--fx->pending == 0)
        zt_reactor_stop(fx->reactor);
}

static zt_result_t
on_connected(zt_result_t r, void *arg)
{
    fixture_t *fx = arg;
    fx->connected = !zt_is_err(r);
    if (fx->connected) /* done: close it; client_connection_lost ends the test */
        zt_transport_lose_connection(zt_protocol_transport(zt_result_ptr(r)));
    else
        s_one_done(fx);
    zt_result_release(&r);
    return zt_ok_none();
}

static void
on_client_lost(zt_factory_t *f, const zt_failure_t *reason, void *arg)
{
    (void)f;
    (void)reason;
    s_one_done(arg);
}

static const zt_protocol_vtable_t quiet_protocol = {0};

static zt_protocol_t *
build(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f;
    (void)addr;
    (void)arg;
    return zt_protocol_new(&quiet_protocol, NULL, NULL);
}

static const zt_factory_vtable_t client_factory = {.build_protocol = build,
                                                   .client_connection_lost = on_client_lost};

static zt_result_t
on_resolved(zt_result_t r, void *arg)
{
    query_t *q = arg;
    q->done = true;
    if (zt_is_err(r))
        q->code = zt_failure_code(zt_result_failure(r));
    else
        q->answer = *(const zt_address_t *)zt_result_ptr(r);
    zt_result_release(&r);
    if (q->connect && q->code == 0) {
        fixture_t *fx = q->fx;
        fx->factory = zt_factory_new(&client_factory, fx);
        zt_deferred_t *d = zt_connect_tcp(fx->reactor, q->answer.host, fx->port, fx->factory, 5);
        zt_deferred_add_both(d, on_connected, fx);
        zt_deferred_unref(&d);
    } else {
        s_one_done(q->fx);
    }
    return zt_ok_none();
}

static void
s_ask_all(void *arg)
{
    fixture_t *fx = arg;
    for (int i = 0; i < fx->count; i++) {
        query_t *q = &fx->queries[i];
        zt_deferred_t *d = zt_resolve_host(fx->reactor, q->name, q->family);
        assert_non_null(d);
        zt_deferred_add_both(d, on_resolved, q);
        if (q->cancel)
            zt_deferred_cancel(d);
        zt_deferred_unref(&d);
    }
}

static void
s_give_up(void *arg)
{
    zt_reactor_stop(arg);
}

/* Run the reactor until every query is answered. */
static void
run_queries(fixture_t *fx, const query_t *queries, int count)
{
    for (int i = 0; i < count; i++) {
        fx->queries[i] = queries[i];
        fx->queries[i].fx = fx;
    }
    fx->count = fx->pending = count;
    assert_int_equal(zt_reactor_call_when_running(fx->reactor, s_ask_all, fx, NULL), 0);
    assert_int_equal(zt_reactor_call_later(fx->reactor, 10, s_give_up, fx->reactor, &fx->give_up),
                     0);
    assert_int_equal(zt_reactor_run(fx->reactor), 0);
    assert_int_equal(fx->pending, 0);
}

static void
test_resolve_localhost_ipv4_is_the_loopback_address(void **state)
{
    fixture_t *fx = *state;
    run_queries(fx, (query_t[]){{.name = "localhost", .family = ZT_AF_INET}}, 1);
    query_t *q = &fx->queries[0];
    assert_int_equal(q->code, 0);
    assert_int_equal(q->answer.family, ZT_AF_INET);
    assert_string_equal(q->answer.host, "127.0.0.1");
    assert_int_equal(q->answer.port, 0);
}

static void
test_resolve_numeric_addresses_come_back_as_given_wrong_family_not_found(void **state)
{
    fixture_t *fx = *state;
    run_queries(fx,
                (query_t[]){{.name = "::1"},
                            {.name = "10.1.2.3"},
                            {.name = "127.0.0.1", .family = ZT_AF_INET6}},
                3);
    assert_int_equal(fx->queries[0].code, 0);
    assert_int_equal(fx->queries[0].answer.family, ZT_AF_INET6);
    assert_string_equal(fx->queries[0].answer.host, "::1");
    assert_int_equal(fx->queries[1].code, 0);
    assert_string_equal(fx->queries[1].answer.host, "10.1.2.3");
    assert_int_equal(fx->queries[2].code, ZT_ENOTFOUND);
}

static void
test_resolve_bad_arguments_fail_with_einval(void **state)
{
    fixture_t *fx = *state;
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    run_queries(
        fx, (query_t[]){{.name = ""}, {.name = "localhost", .family = 5}, {.name = long_name}}, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(fx->queries[i].done);
        assert_int_equal(fx->queries[i].code, ZT_EINVAL);
    }
}

static void
test_resolve_cancelled_fails_at_once_and_the_late_answer_is_dropped(void **state)
{
    fixture_t *fx = *state;
    /* The lookup still ends on its worker; the shutdown waits for it, and its answer is freed
     * there (LeakSanitizer checks it in the sanitizer runs). */
    run_queries(fx, (query_t[]){{.name = "localhost", .cancel = true}}, 1);
    assert_int_equal(fx->queries[0].code, ZT_ECANCELLED);
}

static void
test_resolve_then_connect_reaches_a_server_by_name(void **state)
{
    fixture_t *fx = *state;
    fx->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fx->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fx->listen_fd, 4), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fx->listen_fd, (struct sockaddr *)&sa, &len), 0);
    fx->port = ntohs(sa.sin_port);
    run_queries(fx, (query_t[]){{.name = "localhost", .family = ZT_AF_INET, .connect = true}}, 1);
    assert_int_equal(fx->queries[0].code, 0);
    assert_true(fx->connected);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resolve_localhost_ipv4_is_the_loopback_address, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_resolve_numeric_addresses_come_back_as_given_wrong_family_not_found, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_resolve_bad_arguments_fail_with_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_resolve_cancelled_fails_at_once_and_the_late_answer_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_then_connect_reaches_a_server_by_name, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
