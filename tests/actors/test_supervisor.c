/*  tests/actors/test_supervisor.c - supervisors: one_for_one, one_for_all, rest_for_one, restart
 * intensity on the reactor's clock, restarts in place, trees
 *
 *  Every test runs on a test-clock reactor, one pass at a time, so the intensity's period is
 * tested by advancing the clock, never by waiting.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist.h>
#include "support/support.h"

#include <stdlib.h>

enum { TAG_CRASH = 1, TAG_QUIT = 2, TAG_PING = 3, TAG_WAIT = 4 };
enum { NKIDS = 3 };

struct fixture;

/* What a child's hooks get: the fixture, and which child it is. */
typedef struct kid_arg {
    struct fixture *fx; /* Borrowed */
    int index;          /* which child */
} kid_arg_t;

typedef struct fixture {
    kid_arg_t tree_args[NKIDS]; /* the inner supervisor's children, in the tree test */
    zt_test_clock_t *clock;     /* the reactor's time */
    zt_reactor_t *r;            /* a test-clock reactor */
    int starts[NKIDS];          /* started hooks run, per child */
    int stops[NKIDS];           /* stopped hooks run, per child */
    int pings[NKIDS];           /* pings handled, per child */
    int order[16];              /* children started, in order */
    zt_deferred_t *gate;        /* Owned: what a TAG_WAIT handler awaits */
    int norder;                 /* how many */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->clock = zt_test_clock_new();
    fx->r = zt_reactor_new_with_clock(fx->clock);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_reactor_destroy(&fx->r);
    zt_test_clock_destroy(&fx->clock);
    free(fx);
    return 0;
}

static void
passes(zt_reactor_t *r, int n)
{
    for (int i = 0; i < n; i++)
        zt_reactor_iterate(r, 0);
}

static int
kid_started(zt_actor_t *self, void *arg, void **state_p)
{
    (void)self, (void)state_p;
    kid_arg_t *k = arg;
    k->fx->starts[k->index]++;
    if (k->fx->norder < 16)
        k->fx->order[k->fx->norder++] = k->index;
    return 0;
}

static void
kid_stopped(zt_actor_t *self, void *state, void *arg)
{
    (void)self, (void)state;
    kid_arg_t *k = arg;
    k->fx->stops[k->index]++;
}

static zt_result_t
kid_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    kid_arg_t *k = state;
    if (msg->tag == TAG_CRASH)
        return zt_err(zt_failure_new(ZT_ERROR, "child %d crashed", k->index));
    if (msg->tag == TAG_QUIT)
        zt_actor_stop(self);
    if (msg->tag == TAG_PING)
        k->fx->pings[k->index]++;
    if (msg->tag == TAG_WAIT) /* a coroutine child waits on the fixture's gate */
        return zt_await(zt_deferred_ref(k->fx->gate));
    return zt_ok_none();
}

/* A supervisor of NKIDS children with the given strategy and restart types. */
static zt_actor_t *
start_sup(fixture_t *fx, kid_arg_t *args, zt_sup_strategy_t strategy, uint32_t intensity,
          double period, zt_restart_t restart)
{
    zt_child_spec_t kids[NKIDS];
    for (int i = 0; i < NKIDS; i++) {
        args[i] = (kid_arg_t){.fx = fx, .index = i};
        kids[i] = (zt_child_spec_t){.actor = {.receive = kid_receive,
                                              .started = kid_started,
                                              .stopped = kid_stopped,
                                              .arg = &args[i]},
                                    .restart = restart};
    }
    zt_supervisor_spec_t spec = {.strategy = strategy,
                                 .intensity = intensity,
                                 .period = period,
                                 .children = kids,
                                 .nchildren = NKIDS};
    zt_actor_t *sup = NULL;
    assert_int_equal(zt_supervisor_spawn(fx->r, &spec, &sup), 0);
    return sup;
}

static void
crash(fixture_t *fx, zt_actor_t *sup, size_t i)
{
    zt_actor_t *kid = zt_supervisor_child(sup, i);
    assert_non_null(kid);
    assert_int_equal(zt_actor_tell(kid, zt_msg(TAG_CRASH, NULL, NULL)), 0);
    zt_actor_unref(&kid);
    passes(fx->r, 2);
}

static void
test_supervisor_one_for_one_restarts_only_the_crashed_child_in_place(void **state)
{
    fixture_t *fx = *state;
    kid_arg_t args[NKIDS];
    zt_actor_t *sup = start_sup(fx, args, ZT_ONE_FOR_ONE, 3, 5, ZT_RESTART_PERMANENT);
    zt_actor_t *kid1 = zt_supervisor_child(sup, 1); /* a reference held across the restart */
    crash(fx, sup, 1);
    assert_int_equal(fx->starts[0], 1);
    assert_int_equal(fx->starts[1], 2);
    assert_int_equal(fx->starts[2], 1);
    assert_int_equal(fx->stops[1], 1);
    assert_true(zt_actor_is_alive(kid1));
    assert_int_equal(zt_actor_tell(kid1, zt_msg(TAG_PING, NULL, NULL)), 0);
    passes(fx->r, 2);
    assert_int_equal(fx->pings[1], 1); /* the old reference reaches the new life */
    zt_actor_stats_t st;
    zt_actor_stats(kid1, &st);
    assert_int_equal(st.restarts, 1);
    assert_int_equal(zt_supervisor_restarts(sup), 1);
    zt_actor_unref(&kid1);
    zt_actor_stop(sup);
    assert_int_equal(fx->stops[0] + fx->stops[1] + fx->stops[2], 4);
    zt_actor_unref(&sup);
}

static void
test_supervisor_one_for_all_restarts_every_child(void **state)
{
    fixture_t *fx = *state;
    kid_arg_t args[NKIDS];
    zt_actor_t *sup = start_sup(fx, args, ZT_ONE_FOR_ALL, 3, 5, ZT_RESTART_PERMANENT);
    fx->norder = 0;
    crash(fx, sup, 1);
    for (int i = 0; i < NKIDS; i++) {
        assert_int_equal(fx->starts[i], 2);
        assert_int_equal(fx->stops[i], 1);
    }
    assert_int_equal(fx->norder, 3); /* restarted in start order */
    assert_int_equal(fx->order[0], 0);
    assert_int_equal(fx->order[1], 1);
    assert_int_equal(fx->order[2], 2);
    zt_actor_stop(sup);
    zt_actor_unref(&sup);
}

static void
test_supervisor_rest_for_one_restarts_it_and_later_children(void **state)
{
    fixture_t *fx = *state;
    kid_arg_t args[NKIDS];
    zt_actor_t *sup = start_sup(fx, args, ZT_REST_FOR_ONE, 3, 5, ZT_RESTART_PERMANENT);
    crash(fx, sup, 1);
    assert_int_equal(fx->starts[0], 1);
    assert_int_equal(fx->starts[1], 2);
    assert_int_equal(fx->starts[2], 2);
    assert_int_equal(fx->stops[0], 0);
    zt_actor_stop(sup);
    zt_actor_unref(&sup);
}

static void
test_supervisor_transient_child_is_not_restarted_after_normal_stop(void **state)
{
    fixture_t *fx = *state;
    kid_arg_t args[NKIDS];
    zt_actor_t *sup = start_sup(fx, args, ZT_ONE_FOR_ONE, 3, 5, ZT_RESTART_TRANSIENT);
    zt_actor_t *kid = zt_supervisor_child(sup, 0);
    zt_actor_tell(kid, zt_msg(TAG_QUIT, NULL, NULL));
    passes(fx->r, 2);
    assert_false(zt_actor_is_alive(kid));
    assert_int_equal(fx->starts[0], 1);
    crash(fx, sup, 2); /* a crash is restarted */
    assert_int_equal(fx->starts[2], 2);
    zt_actor_unref(&kid);
    zt_actor_stop(sup);
    zt_actor_unref(&sup);
}

/* one_for_all while a sibling's coroutine handler is suspended: its await is cancelled, and it is
 * restarted when its handler has returned, once, without counting a second restart. */
static void
test_supervisor_one_for_all_restarts_a_busy_sibling_after_its_handler(void **state)
{
    fixture_t *fx = *state;
    fx->gate = zt_deferred_new();
    kid_arg_t args[NKIDS];
    zt_child_spec_t kids[NKIDS];
    for (int i = 0; i < NKIDS; i++) {
        args[i] = (kid_arg_t){.fx = fx, .index = i};
        kids[i] = (zt_child_spec_t){.actor = {.receive = kid_receive,
                                              .started = kid_started,
                                              .stopped = kid_stopped,
                                              .arg = &args[i],
                                              .flags = i == 0 ? ZT_ACTOR_CORO : 0u}};
    }
    zt_supervisor_spec_t spec = {
        .strategy = ZT_ONE_FOR_ALL, .intensity = 3, .children = kids, .nchildren = NKIDS};
    zt_actor_t *sup = NULL;
    assert_int_equal(zt_supervisor_spawn(fx->r, &spec, &sup), 0);
    zt_actor_t *kid0 = zt_supervisor_child(sup, 0);
    zt_actor_tell(kid0, zt_msg(TAG_WAIT, NULL, NULL));
    passes(fx->r, 2);
    crash(fx, sup, 1);
    passes(fx->r, 3);
    assert_true(zt_actor_is_alive(kid0));
    for (int i = 0; i < NKIDS; i++) {
        assert_int_equal(fx->starts[i], 2);
        assert_int_equal(fx->stops[i], 1);
    }
    assert_int_equal(zt_supervisor_restarts(sup), 1);
    zt_actor_unref(&kid0);
    zt_actor_stop(sup);
    zt_actor_unref(&sup);
    zt_deferred_unref(&fx->gate);
}

/* More than `intensity` restarts within `period`: the supervisor stops its children and fails;
 * restarts spread wider than the period do not add up. */
static void
test_supervisor_intensity_exceeded_fails_the_supervisor(void **state)
{
    fixture_t *fx = *state;
    kid_arg_t args[NKIDS];
    zt_actor_t *sup = start_sup(fx, args, ZT_ONE_FOR_ONE, 2, 10, ZT_RESTART_PERMANENT);
    support_capture_t mon = {0};
    zt_deferred_t *m = zt_actor_monitor(sup);
    zt_deferred_add_both(m, support_capture, &mon);
    crash(fx, sup, 0);
    zt_test_clock_advance(fx->clock, 6);
    crash(fx, sup, 0);
    zt_test_clock_advance(fx->clock, 6); /* the first restart is now older than the period */
    crash(fx, sup, 0);
    assert_true(zt_actor_is_alive(sup));
    assert_int_equal(fx->starts[0], 4);
    crash(fx, sup, 0); /* a third restart within 10 s: too many */
    assert_false(zt_actor_is_alive(sup));
    assert_int_equal(mon.calls, 1);
    assert_true(zt_is_err(mon.result));
    for (int i = 0; i < NKIDS; i++)
        assert_int_equal(fx->starts[i], fx->stops[i]); /* every child stopped */
    support_capture_release(&mon);
    zt_deferred_unref(&m);
    zt_actor_unref(&sup);
}

/* A tree: the top supervisor restarts a child supervisor that gave up. */
static int
spawn_inner(zt_reactor_t *r, const zt_child_spec_t *spec, zt_actor_t **ref_p)
{
    fixture_t *fx = spec->spawn_arg;
    zt_child_spec_t kids[NKIDS];
    for (int i = 0; i < NKIDS; i++) {
        fx->tree_args[i] = (kid_arg_t){.fx = fx, .index = i};
        kids[i] = (zt_child_spec_t){.actor = {.receive = kid_receive,
                                              .started = kid_started,
                                              .stopped = kid_stopped,
                                              .arg = &fx->tree_args[i]}};
    }
    zt_supervisor_spec_t inner = {
        .strategy = ZT_ONE_FOR_ONE, .intensity = 0, .children = kids, .nchildren = NKIDS};
    return zt_supervisor_spawn(r, &inner, ref_p);
}

static void
test_supervisor_tree_restarts_a_failed_child_supervisor(void **state)
{
    fixture_t *fx = *state;
    zt_child_spec_t top_kids[1] = {{.spawn = spawn_inner, .spawn_arg = fx}};
    zt_supervisor_spec_t top = {
        .strategy = ZT_ONE_FOR_ONE, .intensity = 5, .children = top_kids, .nchildren = 1};
    zt_actor_t *root = NULL;
    assert_int_equal(zt_supervisor_spawn(fx->r, &top, &root), 0);
    zt_actor_t *inner = zt_supervisor_child(root, 0);
    crash(fx, inner, 1);                   /* intensity 0: the inner supervisor fails at once ... */
    assert_true(zt_actor_is_alive(inner)); /* ... and the root restarts it in place */
    assert_int_equal(zt_supervisor_restarts(root), 1);
    assert_int_equal(fx->starts[0], 2);
    assert_int_equal(fx->starts[1], 2);
    zt_actor_unref(&inner);
    zt_actor_stop(root);
    for (int i = 0; i < NKIDS; i++)
        assert_int_equal(fx->starts[i], fx->stops[i]);
    zt_actor_unref(&root);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_supervisor_one_for_one_restarts_only_the_crashed_child_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_one_for_all_restarts_every_child, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_rest_for_one_restarts_it_and_later_children,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_supervisor_transient_child_is_not_restarted_after_normal_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_supervisor_one_for_all_restarts_a_busy_sibling_after_its_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_intensity_exceeded_fails_the_supervisor,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_tree_restarts_a_failed_child_supervisor,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
