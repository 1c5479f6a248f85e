/*  tests/bridges/test_protocol.c - Protocol and Factory without a network
 *
 *  The dispatch a transport relies on, driven by hand: make_connection, data_received and
 * connection_lost reach the vtable with the user's arg, once each where once is the rule; the
 * factory counts its users to call start_factory and stop_factory once (Twisted's doStart and
 * doStop); the connection failure types refine each other as Twisted's exceptions do.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/protocol.h>

#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    int made;                     /* connection_made calls */
    size_t bytes;                 /* bytes data_received got */
    int lost;                     /* connection_lost calls */
    const zt_failure_type_t *why; /* the last reason's type */
    int freed;                    /* free_fn calls */
    int starts;                   /* start_factory calls */
    int stops;                    /* stop_factory calls */
    int failed;                   /* client_connection_failed calls */
    int client_lost;              /* client_connection_lost calls */
    bool refuse;                  /* build_protocol returns NULL */
} fixture_t;

static void
on_made(zt_protocol_t *p, void *arg)
{
    (void)p;
    ((fixture_t *)arg)->made++;
}

static void
on_data(zt_protocol_t *p, const char *data, size_t len, void *arg)
{
    (void)p;
    (void)data;
    ((fixture_t *)arg)->bytes += len;
}

static void
on_lost(zt_protocol_t *p, const zt_failure_t *reason, void *arg)
{
    (void)p;
    fixture_t *fx = arg;
    fx->lost++;
    fx->why = zt_failure_type(reason);
}

static void
count_free(void *arg)
{
    ((fixture_t *)arg)->freed++;
}

static const zt_protocol_vtable_t recording = {
    .connection_made = on_made,
    .data_received = on_data,
    .connection_lost = on_lost,
};

static const zt_protocol_vtable_t empty = {0};

static zt_protocol_t *
build(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f;
    (void)addr;
    fixture_t *fx = arg;
    return fx->refuse ? NULL : zt_protocol_new(&recording, fx, count_free);
}

static void
start(zt_factory_t *f, void *arg)
{
    (void)f;
    ((fixture_t *)arg)->starts++;
}

static void
stop(zt_factory_t *f, void *arg)
{
    (void)f;
    ((fixture_t *)arg)->stops++;
}

static void
failed(zt_factory_t *f, const zt_failure_t *reason, void *arg)
{
    (void)f;
    (void)reason;
    ((fixture_t *)arg)->failed++;
}

static void
client_lost(zt_factory_t *f, const zt_failure_t *reason, void *arg)
{
    (void)f;
    (void)reason;
    ((fixture_t *)arg)->client_lost++;
}

static const zt_factory_vtable_t full = {.build_protocol = build,
                                         .start_factory = start,
                                         .stop_factory = stop,
                                         .client_connection_failed = failed,
                                         .client_connection_lost = client_lost};

static const zt_factory_vtable_t minimal = {.build_protocol = build};

static int
setup(void **state)
{
    *state = calloc(1, sizeof(fixture_t));
    return *state ? 0 : -1;
}

static int
teardown(void **state)
{
    free(*state);
    return 0;
}

static void
test_protocol_events_reach_the_vtable_with_arg(void **state)
{
    fixture_t *fx = *state;
    zt_protocol_t *p = zt_protocol_new(&recording, fx, count_free);
    assert_non_null(p);
    assert_ptr_equal(zt_protocol_arg(p), fx);
    assert_null(zt_protocol_transport(p));
    assert_int_equal(zt_protocol_make_connection(p, NULL), 0);
    assert_int_equal(fx->made, 1);
    zt_protocol_data_received(p, "hello", 5);
    zt_protocol_data_received(p, "", 0); /* nothing to deliver */
    assert_int_equal(fx->bytes, 5);
    zt_protocol_connection_lost(p, NULL);
    assert_int_equal(fx->lost, 1);
    assert_ptr_equal(fx->why, ZT_CONNECTION_DONE);
    zt_protocol_destroy(&p);
    assert_null(p);
    assert_int_equal(fx->freed, 1);
    zt_protocol_destroy(&p); /* NULL: nothing */
    zt_protocol_destroy(NULL);
}

static void
test_protocol_make_connection_twice_is_estate(void **state)
{
    fixture_t *fx = *state;
    zt_protocol_t *p = zt_protocol_new(&recording, fx, NULL);
    assert_int_equal(zt_protocol_make_connection(p, NULL), 0);
    assert_int_equal(zt_protocol_make_connection(p, NULL), ZT_ESTATE);
    assert_int_equal(fx->made, 1);
    zt_protocol_destroy(&p);
    assert_int_equal(fx->freed, 0); /* no free_fn given */
}

static void
test_protocol_connection_lost_runs_once_with_the_given_reason(void **state)
{
    fixture_t *fx = *state;
    zt_protocol_t *p = zt_protocol_new(&recording, fx, NULL);
    zt_protocol_connection_lost(p, NULL); /* never connected: nothing */
    assert_int_equal(fx->lost, 0);
    zt_protocol_make_connection(p, NULL);
    zt_failure_t *reason = zt_failure_new(ZT_CONNECTION_ABORTED, "aborted");
    zt_protocol_connection_lost(p, reason);
    zt_protocol_connection_lost(p, reason);
    assert_int_equal(fx->lost, 1);
    assert_ptr_equal(fx->why, ZT_CONNECTION_ABORTED);
    zt_failure_destroy(&reason);
    zt_protocol_destroy(&p);
}

static void
test_protocol_empty_vtable_ignores_every_event(void **state)
{
    (void)state;
    zt_protocol_t *p = zt_protocol_new(&empty, NULL, NULL);
    assert_int_equal(zt_protocol_make_connection(p, NULL), 0);
    zt_protocol_data_received(p, "x", 1);
    zt_protocol_connection_lost(p, NULL);
    zt_protocol_destroy(&p);
}

static void
test_protocol_failure_types_refine_like_twisted(void **state)
{
    (void)state;
    assert_true(zt_failure_type_is(ZT_CONNECTION_DONE, ZT_CONNECTION_CLOSED));
    assert_true(zt_failure_type_is(ZT_CONNECTION_LOST, ZT_CONNECTION_CLOSED));
    assert_true(zt_failure_type_is(ZT_CONNECTION_ABORTED, ZT_CONNECTION_LOST));
    assert_false(zt_failure_type_is(ZT_CONNECTION_DONE, ZT_CONNECTION_LOST));
    assert_false(zt_failure_type_is(ZT_CONNECTION_LOST, ZT_CONNECTION_DONE));
    assert_true(zt_failure_type_is(ZT_CONNECTION_REFUSED, ZT_CONNECT_ERROR));
    assert_false(zt_failure_type_is(ZT_CONNECT_ERROR, ZT_CONNECTION_CLOSED));
    zt_failure_t *f = zt_failure_new(ZT_CONNECTION_LOST, "reset");
    assert_int_equal(zt_failure_code(f), ZT_ECONNLOST);
    assert_ptr_equal(zt_failure_check(f, ZT_CONNECTION_DONE, ZT_CONNECTION_CLOSED),
                     ZT_CONNECTION_CLOSED);
    zt_failure_destroy(&f);
    f = zt_failure_new(ZT_CONNECTION_REFUSED, "refused");
    assert_int_equal(zt_failure_code(f), ZT_ECONNREFUSED);
    zt_failure_destroy(&f);
}

static void
test_factory_start_and_stop_once_for_many_users(void **state)
{
    fixture_t *fx = *state;
    zt_factory_t *f = zt_factory_new(&full, fx);
    assert_non_null(f);
    assert_ptr_equal(zt_factory_arg(f), fx);
    zt_factory_do_start(f);
    zt_factory_do_start(f);
    assert_int_equal(fx->starts, 1);
    assert_int_equal(zt_factory_users(f), 2);
    zt_factory_do_stop(f);
    assert_int_equal(fx->stops, 0);
    zt_factory_do_stop(f);
    assert_int_equal(fx->stops, 1);
    /* A second round starts and stops again, as Twisted's doStart after doStop. */
    zt_factory_do_start(f);
    zt_factory_do_stop(f);
    assert_int_equal(fx->starts, 2);
    assert_int_equal(fx->stops, 2);
    zt_factory_destroy(&f);
    assert_null(f);
    zt_factory_destroy(&f);
}

static void
test_factory_builds_or_refuses_protocols(void **state)
{
    fixture_t *fx = *state;
    zt_factory_t *f = zt_factory_new(&minimal, fx);
    zt_address_t addr = {.family = ZT_AF_INET, .host = "127.0.0.1", .port = 1};
    zt_protocol_t *p = zt_factory_build_protocol(f, &addr);
    assert_non_null(p);
    zt_protocol_destroy(&p);
    assert_int_equal(fx->freed, 1);
    fx->refuse = true;
    assert_null(zt_factory_build_protocol(f, &addr));
    /* Unset callbacks are skipped. */
    zt_factory_do_start(f);
    zt_factory_client_connection_failed(f, NULL);
    zt_factory_client_connection_lost(f, NULL);
    zt_factory_do_stop(f);
    zt_factory_destroy(&f);
}

static void
test_factory_client_callbacks_reach_the_vtable(void **state)
{
    fixture_t *fx = *state;
    zt_factory_t *f = zt_factory_new(&full, fx);
    zt_failure_t *reason = zt_failure_new(ZT_CONNECTION_REFUSED, "refused");
    zt_factory_client_connection_failed(f, reason);
    zt_factory_client_connection_lost(f, reason);
    assert_int_equal(fx->failed, 1);
    assert_int_equal(fx->client_lost, 1);
    zt_failure_destroy(&reason);
    zt_factory_destroy(&f);
}

static void
test_factory_without_build_protocol_is_refused(void **state)
{
    fixture_t *fx = *state;
    static const zt_factory_vtable_t no_build = {.start_factory = start};
    assert_null(zt_factory_new(&no_build, fx));
    assert_null(zt_factory_new(NULL, fx));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_protocol_events_reach_the_vtable_with_arg, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_protocol_make_connection_twice_is_estate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_protocol_connection_lost_runs_once_with_the_given_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_empty_vtable_ignores_every_event, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_protocol_failure_types_refine_like_twisted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_factory_start_and_stop_once_for_many_users, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_factory_builds_or_refuses_protocols, setup, teardown),
        cmocka_unit_test_setup_teardown(test_factory_client_callbacks_reach_the_vtable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_factory_without_build_protocol_is_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}
