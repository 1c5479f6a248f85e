/*  tests/futures/test_deferred_list.c - DeferredList, gather_results and race, after Twisted's
 * DeferredListTests, gatherResults and race tests  */
#include <ztwist.h>

#include "support/support.h"
#include <ztwist/deferred.h>
#include <ztwist/deferred_list.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* Each test's state: the unhandled failures reported while it ran. */
typedef struct fixture {
    support_unhandled_t unhandled; /* the failures reported unhandled */
} fixture_t;

static int
s_setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    support_unhandled_install(&fx->unhandled);
    zt_deferred_set_strict(false); /* some tests leave failures unhandled on purpose */
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    support_unhandled_remove();
    free(*state);
    return 0;
}

/* The list a capture holds, borrowed. */
static zt_result_list_t *
s_list(const support_capture_t *c)
{
    assert_false(zt_is_err(c->result));
    assert_non_null(zt_result_ptr(c->result));
    return zt_result_ptr(c->result);
}

/* A value that counts its frees, so that a test can prove each is freed exactly once. */
typedef struct tracked {
    int *frees; /* Borrowed: the counter to bump */
    int value;  /* the payload */
} tracked_t;

static void
s_tracked_free(void *p)
{
    tracked_t *t = p;
    (*t->frees)++;
    free(t);
}

static zt_result_t
s_tracked(int *frees, int value)
{
    tracked_t *t = malloc(sizeof(*t));
    assert_non_null(t);
    *t = (tracked_t){.frees = frees, .value = value};
    return zt_ok(t, s_tracked_free);
}

/* A canceller that fires its Deferred with 42 (Twisted's fakeCallbackCanceller). */
static void
s_callback_canceller(zt_deferred_t *d, void *arg)
{
    (void)arg;
    zt_deferred_callback(d, zt_ok_int(42));
}

/* A canceller that counts its calls and does not fire. */
static void
s_counting_canceller(zt_deferred_t *d, void *arg)
{
    (void)d;
    (*(int *)arg)++;
}

static zt_failure_t *
s_error(const char *message)
{
    return zt_failure_new(ZT_ERROR, "%s", message);
}

/* The failure type at the end of a Deferred's chain, or NULL when it holds a value. */
static const zt_failure_type_t *
s_failure_type_of(zt_deferred_t *d)
{
    const zt_result_t *r = zt_deferred_peek(d);
    assert_non_null(r);
    return zt_is_err(*r) ? zt_failure_type(zt_result_failure(*r)) : NULL;
}

static void
s_unref_all(zt_deferred_t **ds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        zt_deferred_unref(&ds[i]);
}

/* ---- DeferredList ---------------------------------------------------------------------------- */

static void
test_deferred_list_all_members_fired_results_in_input_order(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[3] = {zt_deferred_new(), zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 3, 0);
    assert_non_null(dl);
    support_capture_t got = {0};
    zt_deferred_add_callbacks(dl, support_capture, support_capture, &got);
    support_capture_t trap = {0};
    zt_deferred_add_errback(ds[1], support_capture,
                            &trap); /* handle the failure the member keeps */

    zt_deferred_callback(ds[2], zt_ok_int(3));
    zt_deferred_callback(ds[0], zt_ok_int(1));
    assert_int_equal(got.calls, 0);
    zt_deferred_errback(ds[1], s_error("2"));
    assert_int_equal(got.calls, 1);

    zt_result_list_t *list = s_list(&got);
    assert_int_equal(zt_result_list_size(list), 3);
    assert_int_equal(zt_result_list_index(list), ZT_RESULT_LIST_NO_INDEX);
    assert_true(zt_result_list_succeeded(list, 0));
    assert_int_equal(zt_result_list_int(list, 0), 1);
    assert_false(zt_result_list_succeeded(list, 1));
    assert_true(zt_result_list_is_done(list, 1));
    assert_string_equal(zt_failure_message(zt_result_list_failure(list, 1)), "2");
    assert_null(zt_result_list_ptr(list, 1));
    assert_true(zt_result_list_succeeded(list, 2));
    assert_int_equal(zt_result_list_int(list, 2), 3);
    assert_int_equal(trap.calls, 1);

    support_capture_release(&got);
    support_capture_release(&trap);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 3);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_empty_fires_at_once_with_an_empty_list(void **state)
{
    (void)state;
    zt_deferred_t *dl = zt_deferred_list_new(NULL, 0, 0);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);
    assert_int_equal(got.calls, 1);
    assert_int_equal(zt_result_list_size(s_list(&got)), 0);
    support_capture_release(&got);
    zt_deferred_unref(&dl);
}

static void
test_deferred_list_empty_fire_on_one_callback_never_fires(void **state)
{
    (void)state;
    zt_deferred_t *dl = zt_deferred_list_new(NULL, 0, ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK);
    assert_non_null(dl);
    support_capture_t got = {0};
    zt_deferred_add_callbacks(dl, support_capture, support_capture, &got);
    assert_int_equal(got.calls, 0);
    assert_false(zt_deferred_is_called(dl));
    zt_deferred_unref(&dl);
}

static void
test_deferred_list_fire_on_one_errback_fails_with_first_error(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[3] = {zt_deferred_new(), zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 3, ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK);
    support_capture_t got = {0};
    zt_deferred_add_errback(dl, support_capture, &got);
    support_capture_t trap = {0};
    zt_deferred_add_errback(ds[1], support_capture, &trap);

    zt_deferred_callback(ds[0], zt_ok_int(1));
    assert_int_equal(got.calls, 0);
    zt_deferred_errback(ds[1], s_error("from def2"));
    assert_int_equal(got.calls, 1);

    const zt_failure_t *f = zt_result_failure(got.result);
    assert_non_null(f);
    assert_ptr_equal(zt_failure_type(f), ZT_FIRST_ERROR);
    assert_int_equal(zt_failure_detail(f), 1);
    const zt_failure_t *sub = zt_failure_cause(f);
    assert_non_null(sub);
    assert_ptr_equal(zt_failure_type(sub), ZT_ERROR);
    assert_string_equal(zt_failure_message(sub), "from def2");
    assert_non_null(strstr(zt_failure_message(f), "from def2"));
    assert_int_equal(trap.calls, 1); /* without consume_errors the member keeps its failure */

    zt_deferred_callback(ds[2], zt_ok_int(3)); /* after the list failed: no effect on it */
    assert_int_equal(got.calls, 1);
    support_capture_release(&got);
    support_capture_release(&trap);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 3);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_without_consume_errors_member_keeps_its_failure(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d1 = zt_deferred_new();
    zt_deferred_t *dl = zt_deferred_list_new(&d1, 1, 0);
    support_capture_t trap = {0};
    zt_deferred_add_errback(d1, support_capture, &trap);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);

    zt_deferred_errback(d1, s_error("Bang"));
    assert_int_equal(trap.calls, 1);
    assert_string_equal(zt_failure_message(zt_result_failure(trap.result)), "Bang");
    assert_int_equal(got.calls, 1);
    assert_string_equal(zt_failure_message(zt_result_list_failure(s_list(&got), 0)), "Bang");
    /* Two distinct objects: the list holds a copy. */
    assert_ptr_not_equal(zt_result_list_failure(s_list(&got), 0), zt_result_failure(trap.result));

    support_capture_release(&got);
    support_capture_release(&trap);
    zt_deferred_unref(&dl);
    zt_deferred_unref(&d1);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_consume_errors_member_goes_on_with_none(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d1 = zt_deferred_new();
    zt_deferred_t *dl = zt_deferred_list_new(&d1, 1, ZT_DEFERRED_LIST_CONSUME_ERRORS);
    support_capture_t trap = {0};
    zt_deferred_add_errback(d1, support_capture, &trap);
    support_capture_t after = {0};
    zt_deferred_add_callback(d1, support_capture, &after);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);

    zt_deferred_errback(d1, s_error("Bang"));
    assert_int_equal(trap.calls, 0);
    assert_int_equal(after.calls, 1);
    assert_false(zt_is_err(after.result));
    assert_null(zt_result_ptr(after.result));
    assert_string_equal(zt_failure_message(zt_result_list_failure(s_list(&got), 0)), "Bang");

    support_capture_release(&got);
    support_capture_release(&after);
    zt_deferred_unref(&dl);
    zt_deferred_unref(&d1);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_unconsumed_member_failure_is_reported_once(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d1 = zt_deferred_new();
    zt_deferred_t *dl = zt_deferred_list_new(&d1, 1, 0);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);
    zt_deferred_errback(d1, s_error("nobody handles me"));
    assert_int_equal(got.calls, 1);
    support_capture_release(&got); /* the list's copy is a value inside a list: never reported */
    zt_deferred_unref(&dl);
    assert_int_equal(fx->unhandled.count, 0);
    zt_deferred_unref(&d1); /* the member's original is */
    assert_int_equal(fx->unhandled.count, 1);
    assert_string_equal(fx->unhandled.message, "nobody handles me");
}

static void
test_deferred_list_consumed_failure_reported_by_nobody(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *d1 = zt_deferred_new();
    zt_deferred_t *dl = zt_deferred_list_new(&d1, 1, ZT_DEFERRED_LIST_CONSUME_ERRORS);
    zt_deferred_errback(d1, s_error("consumed"));
    zt_deferred_unref(&d1);
    zt_deferred_unref(&dl); /* fired with a list: a value, freed with the Deferred */
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_fire_on_one_errback_with_already_failed_member_fails_at_once(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_errback(ds[0], s_error("Bang"));
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK);
    assert_true(zt_deferred_is_called(dl));
    assert_ptr_equal(s_failure_type_of(dl), ZT_FIRST_ERROR);
    assert_int_equal(zt_failure_detail(zt_result_failure(*zt_deferred_peek(dl))), 0);
    support_capture_t got = {0};
    zt_deferred_add_errback(dl, support_capture, &got);
    support_capture_t swallow = {0};
    zt_deferred_add_errback(ds[0], support_capture, &swallow);
    assert_int_equal(swallow.calls, 1);

    zt_deferred_callback(ds[1], zt_ok_none());
    support_capture_release(&got);
    support_capture_release(&swallow);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_with_already_fired_members_fires_at_once(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_errback(ds[0], s_error("Bang"));
    zt_deferred_callback(ds[1], zt_ok_int(2));
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, 0);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);
    assert_int_equal(got.calls, 1);
    assert_false(zt_result_list_succeeded(s_list(&got), 0));
    assert_int_equal(zt_result_list_int(s_list(&got), 1), 2);
    support_capture_t swallow = {0};
    zt_deferred_add_errback(ds[0], support_capture, &swallow);
    assert_int_equal(swallow.calls, 1);
    support_capture_release(&got);
    support_capture_release(&swallow);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_links_added_to_a_member_before_shape_what_it_sees(void **state)
{
    (void)state;
    zt_deferred_t *d1 = zt_deferred_new();
    support_capture_t recover = {0};
    zt_deferred_add_errback(d1, support_capture, &recover); /* turns the failure into None */
    zt_deferred_t *dl = zt_deferred_list_new(&d1, 1, ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK);
    support_capture_t got = {0};
    zt_deferred_add_callbacks(dl, support_capture, support_capture, &got);
    zt_deferred_errback(d1, s_error("recovered before the list"));
    assert_int_equal(recover.calls, 1);
    assert_int_equal(got.calls, 1);
    assert_true(zt_result_list_succeeded(s_list(&got), 0));
    support_capture_release(&got);
    support_capture_release(&recover);
    zt_deferred_unref(&dl);
    zt_deferred_unref(&d1);
}

static void
test_deferred_list_fire_on_one_callback_reports_value_and_index(void **state)
{
    (void)state;
    zt_deferred_t *ds[3] = {zt_deferred_new(), zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 3, ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);
    zt_deferred_callback(ds[2], zt_ok_int(7));
    assert_int_equal(got.calls, 1);
    zt_result_list_t *list = s_list(&got);
    assert_int_equal(zt_result_list_index(list), 2);
    assert_int_equal(zt_result_list_int(list, 2), 7);
    assert_false(zt_result_list_is_done(list, 0));
    assert_false(zt_result_list_is_done(list, 1));

    /* Later members pass through untouched and do not fire the list again. */
    zt_deferred_callback(ds[0], zt_ok_int(1));
    support_capture_t after = {0};
    zt_deferred_add_callback(ds[0], support_capture, &after);
    assert_int_equal(zt_result_int(after.result), 1);
    assert_int_equal(got.calls, 1);
    zt_deferred_callback(ds[1], zt_ok_none());
    support_capture_release(&got);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 3);
}

static void
test_deferred_list_fire_on_one_callback_all_failed_fires_with_the_list(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(
        ds, 2, ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK | ZT_DEFERRED_LIST_CONSUME_ERRORS);
    support_capture_t got = {0};
    zt_deferred_add_callbacks(dl, support_capture, support_capture, &got);
    zt_deferred_errback(ds[0], s_error("a"));
    assert_int_equal(got.calls, 0);
    zt_deferred_errback(ds[1], s_error("b"));
    assert_int_equal(got.calls, 1);
    zt_result_list_t *list = s_list(&got);
    assert_int_equal(zt_result_list_index(list), ZT_RESULT_LIST_NO_INDEX);
    assert_false(zt_result_list_succeeded(list, 0));
    assert_string_equal(zt_failure_message(zt_result_list_failure(list, 1)), "b");
    support_capture_release(&got);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_owned_value_moves_into_the_list_and_is_freed_once(void **state)
{
    (void)state;
    int frees = 0;
    zt_deferred_t *d1 = zt_deferred_new();
    zt_deferred_t *dl = zt_deferred_list_new(&d1, 1, 0);
    support_capture_t after = {0};
    zt_deferred_add_callback(d1, support_capture, &after);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);
    zt_deferred_callback(d1, s_tracked(&frees, 5));
    tracked_t *t = zt_result_list_ptr(s_list(&got), 0);
    assert_int_equal(t->value, 5);
    assert_int_equal(after.calls, 1);
    assert_null(zt_result_ptr(after.result)); /* the member goes on with None */
    assert_int_equal(frees, 0);
    support_capture_release(&got);
    assert_int_equal(frees, 1);
    zt_deferred_unref(&dl);
    zt_deferred_unref(&d1);
    assert_int_equal(frees, 1);
}

static void
test_deferred_list_unowned_value_is_shared_with_the_member(void **state)
{
    (void)state;
    zt_deferred_t *d1 = zt_deferred_new();
    zt_deferred_t *dl = zt_deferred_list_new(&d1, 1, 0);
    zt_deferred_callback(d1, zt_ok_int(9));
    support_capture_t after = {0};
    zt_deferred_add_callback(d1, support_capture, &after);
    assert_int_equal(zt_result_int(after.result), 9);
    assert_int_equal(zt_result_list_int(zt_result_ptr(*zt_deferred_peek(dl)), 0), 9);
    zt_deferred_unref(&dl);
    zt_deferred_unref(&d1);
}

static void
test_deferred_list_owned_value_freed_when_list_deferred_is_dropped(void **state)
{
    (void)state;
    int frees = 0;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, 0);
    zt_deferred_unref(&dl); /* nobody listens: the group keeps working */
    zt_deferred_callback(ds[0], s_tracked(&frees, 1));
    zt_deferred_callback(ds[1], s_tracked(&frees, 2));
    assert_int_equal(frees, 2); /* the group fired its Deferred and dropped it with the list */
    s_unref_all(ds, 2);
    assert_int_equal(frees, 2);
}

static void
test_deferred_list_members_dropped_by_the_caller_are_still_watched(void **state)
{
    (void)state;
    zt_deferred_t *d1 = zt_deferred_new();
    zt_deferred_t *producer = zt_deferred_ref(d1);
    zt_deferred_t *dl = zt_deferred_list_new(&d1, 1, 0);
    zt_deferred_unref(&d1);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);
    zt_deferred_callback(producer, zt_ok_int(4));
    assert_int_equal(zt_result_list_int(s_list(&got), 0), 4);
    zt_deferred_unref(&producer);
    support_capture_release(&got);
    zt_deferred_unref(&dl);
}

static void
test_deferred_list_same_member_twice_gets_two_entries(void **state)
{
    (void)state;
    zt_deferred_t *d1 = zt_deferred_new();
    zt_deferred_t *ds[2] = {d1, d1};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, 0);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);
    zt_deferred_callback(d1, zt_ok_int(8));
    assert_int_equal(got.calls, 1);
    /* The second pair sees what the first left: the same unowned value. */
    assert_int_equal(zt_result_list_int(s_list(&got), 0), 8);
    assert_int_equal(zt_result_list_int(s_list(&got), 1), 8);
    support_capture_release(&got);
    zt_deferred_unref(&dl);
    zt_deferred_unref(&d1);
}

static void
test_deferred_list_cancel_cancels_every_member(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, ZT_DEFERRED_LIST_CONSUME_ERRORS);
    zt_deferred_cancel(dl);
    assert_true(zt_deferred_is_called(ds[0]));
    assert_true(zt_deferred_is_called(ds[1]));
    /* The list fired with the members' CancelledErrors, not with one of its own. */
    zt_result_list_t *list = zt_result_ptr(*zt_deferred_peek(dl));
    assert_non_null(list);
    assert_ptr_equal(zt_failure_type(zt_result_list_failure(list, 0)), ZT_CANCELLED_ERROR);
    assert_ptr_equal(zt_failure_type(zt_result_list_failure(list, 1)), ZT_CANCELLED_ERROR);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_cancel_with_a_canceller_that_callbacks_fires_with_the_list(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new_with_canceller(s_callback_canceller, NULL),
                            zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, 0);
    zt_deferred_cancel(dl);
    assert_ptr_equal(s_failure_type_of(ds[1]), ZT_CANCELLED_ERROR);
    zt_result_list_t *list = zt_result_ptr(*zt_deferred_peek(dl));
    assert_true(zt_result_list_succeeded(list, 0));
    assert_int_equal(zt_result_list_int(list, 0), 42);
    assert_false(zt_result_list_succeeded(list, 1));
    assert_ptr_equal(zt_failure_type(zt_result_list_failure(list, 1)), ZT_CANCELLED_ERROR);
    support_capture_t swallow = {0};
    zt_deferred_add_errback(ds[1], support_capture, &swallow);
    support_capture_release(&swallow);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_cancel_fire_on_one_callback_cancels_every_member(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(
        ds, 2, ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK | ZT_DEFERRED_LIST_CONSUME_ERRORS);
    zt_deferred_cancel(dl);
    assert_true(zt_deferred_is_called(ds[0]));
    assert_true(zt_deferred_is_called(ds[1]));
    /* Both failed: the list fired with both entries, none of them a winner. */
    zt_result_list_t *list = zt_result_ptr(*zt_deferred_peek(dl));
    assert_int_equal(zt_result_list_index(list), ZT_RESULT_LIST_NO_INDEX);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_cancel_fire_on_one_callback_canceller_value_wins(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new_with_canceller(s_callback_canceller, NULL),
                            zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK);
    zt_deferred_cancel(dl);
    assert_ptr_equal(s_failure_type_of(ds[1]), ZT_CANCELLED_ERROR); /* still cancelled */
    zt_result_list_t *list = zt_result_ptr(*zt_deferred_peek(dl));
    assert_non_null(list);
    assert_int_equal(zt_result_list_index(list), 0);
    assert_int_equal(zt_result_list_int(list, 0), 42);
    support_capture_t swallow = {0};
    zt_deferred_add_errback(ds[1], support_capture, &swallow);
    support_capture_release(&swallow);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_cancel_fire_on_one_errback_fails_with_first_error(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(
        ds, 2, ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK | ZT_DEFERRED_LIST_CONSUME_ERRORS);
    zt_deferred_cancel(dl);
    assert_true(zt_deferred_is_called(ds[0]));
    assert_true(zt_deferred_is_called(ds[1]));
    assert_ptr_equal(s_failure_type_of(dl), ZT_FIRST_ERROR);
    const zt_failure_t *f = zt_result_failure(*zt_deferred_peek(dl));
    assert_ptr_equal(zt_failure_type(zt_failure_cause(f)), ZT_CANCELLED_ERROR);
    support_capture_t handle = {0};
    zt_deferred_add_errback(dl, support_capture, &handle);
    support_capture_release(&handle);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_list_cancel_fire_on_one_errback_all_cancellers_callback_fires_with_list(void **state)
{
    (void)state;
    zt_deferred_t *ds[2] = {zt_deferred_new_with_canceller(s_callback_canceller, NULL),
                            zt_deferred_new_with_canceller(s_callback_canceller, NULL)};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK);
    zt_deferred_cancel(dl);
    zt_result_list_t *list = zt_result_ptr(*zt_deferred_peek(dl));
    assert_non_null(list);
    assert_true(zt_result_list_succeeded(list, 0));
    assert_int_equal(zt_result_list_int(list, 0), 42);
    assert_true(zt_result_list_succeeded(list, 1));
    assert_int_equal(zt_result_list_int(list, 1), 42);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
}

static void
test_deferred_list_cancel_after_fire_on_one_callback_does_nothing(void **state)
{
    (void)state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK);
    zt_deferred_callback(ds[0], zt_ok_none());
    zt_deferred_cancel(dl);
    assert_false(zt_deferred_is_called(ds[1]));
    assert_null(s_failure_type_of(dl));
    zt_deferred_callback(ds[1], zt_ok_none());
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
}

static void
test_deferred_list_cancel_after_fire_on_one_errback_does_nothing(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK);
    zt_deferred_errback(ds[0], s_error("test"));
    zt_deferred_cancel(dl);
    assert_false(zt_deferred_is_called(ds[1]));
    assert_ptr_equal(s_failure_type_of(ds[0]), ZT_ERROR);
    assert_ptr_equal(s_failure_type_of(dl), ZT_FIRST_ERROR);
    zt_deferred_callback(ds[1], zt_ok_none());
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    /* Without consume_errors, the FirstError and the member's own failure are both unhandled,
     * as in Twisted: two distinct failures, each reported once. */
    assert_int_equal(fx->unhandled.count, 2);
}

static void
test_deferred_list_cancel_with_a_paused_member_fails_the_list_itself(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_pause(ds[1]); /* its result will not reach the list until unpaused */
    zt_deferred_t *dl = zt_deferred_list_new(ds, 2, ZT_DEFERRED_LIST_CONSUME_ERRORS);
    zt_deferred_cancel(dl);
    /* One member could not answer the cancel: the list fails with its own CancelledError. */
    assert_ptr_equal(s_failure_type_of(dl), ZT_CANCELLED_ERROR);
    support_capture_t got = {0};
    zt_deferred_add_errback(dl, support_capture, &got);
    assert_int_equal(got.calls, 1);
    /* The late result passes through the member, consumed, and does not fire the list again. */
    zt_deferred_unpause(ds[1]);
    assert_int_equal(got.calls, 1);
    assert_null(s_failure_type_of(ds[1]));
    support_capture_release(&got);
    zt_deferred_unref(&dl);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

/* A link that makes its Deferred wait on another one. */
static zt_result_t
s_wait_on(zt_result_t result, void *arg)
{
    zt_result_release(&result);
    return zt_wait_for(zt_deferred_ref(arg));
}

static void
test_deferred_list_cancel_reaches_what_a_member_waits_on(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *member = zt_deferred_new();
    zt_deferred_add_callback(member, s_wait_on, inner);
    zt_deferred_callback(member, zt_ok_none()); /* fired, and now waiting on inner */
    zt_deferred_t *dl = zt_deferred_list_new(&member, 1, ZT_DEFERRED_LIST_CONSUME_ERRORS);
    assert_false(zt_deferred_is_called(dl));
    zt_deferred_cancel(dl);
    assert_true(zt_deferred_is_called(inner)); /* its failure went on to the member */
    zt_result_list_t *list = zt_result_ptr(*zt_deferred_peek(dl));
    assert_non_null(list);
    assert_ptr_equal(zt_failure_type(zt_result_list_failure(list, 0)), ZT_CANCELLED_ERROR);
    zt_deferred_unref(&dl);
    zt_deferred_unref(&member);
    zt_deferred_unref(&inner);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_result_list_take_moves_the_result_out(void **state)
{
    (void)state;
    int frees = 0;
    zt_deferred_t *d1 = zt_deferred_succeed(s_tracked(&frees, 3));
    zt_deferred_t *dl = zt_deferred_list_new(&d1, 1, 0);
    support_capture_t got = {0};
    zt_deferred_add_callback(dl, support_capture, &got);
    zt_result_list_t *list = zt_result_take(&got.result); /* the test owns the list now */
    assert_non_null(list);
    zt_result_t item = zt_result_list_take(list, 0);
    assert_int_equal(((tracked_t *)zt_result_ptr(item))->value, 3);
    assert_true(zt_result_list_succeeded(list, 0));
    assert_null(zt_result_list_ptr(list, 0));
    zt_result_list_destroy(&list);
    assert_null(list);
    assert_int_equal(frees, 0);
    zt_result_release(&item);
    assert_int_equal(frees, 1);
    zt_result_list_destroy(&list); /* NULL: nothing */
    zt_deferred_unref(&dl);
    zt_deferred_unref(&d1);
}

/* ---- gather_results -------------------------------------------------------------------------- */

static void
test_gather_results_all_succeed_gives_the_values_in_order(void **state)
{
    (void)state;
    zt_deferred_t *ds[2] = {zt_deferred_succeed(zt_ok_int(1)), zt_deferred_new()};
    zt_deferred_t *g = zt_gather_results(ds, 2, false);
    support_capture_t got = {0};
    zt_deferred_add_callback(g, support_capture, &got);
    assert_int_equal(got.calls, 0);
    zt_deferred_callback(ds[1], zt_ok_int(2));
    assert_int_equal(got.calls, 1);
    assert_int_equal(zt_result_list_size(s_list(&got)), 2);
    assert_int_equal(zt_result_list_int(s_list(&got), 0), 1);
    assert_int_equal(zt_result_list_int(s_list(&got), 1), 2);
    support_capture_release(&got);
    zt_deferred_unref(&g);
    s_unref_all(ds, 2);
}

static void
test_gather_results_a_failure_fails_with_first_error(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_succeed(zt_ok_int(1)),
                            zt_deferred_fail(zt_failure_new(ZT_TIMEOUT_ERROR, "slow"))};
    zt_deferred_t *g = zt_gather_results(ds, 2, false);
    support_capture_t errors = {0};
    zt_deferred_add_errback(g, support_capture, &errors);
    assert_int_equal(errors.calls, 1);
    const zt_failure_t *f = zt_result_failure(errors.result);
    assert_ptr_equal(zt_failure_type(f), ZT_FIRST_ERROR);
    assert_int_equal(zt_failure_detail(f), 1);
    assert_ptr_equal(zt_failure_type(zt_failure_cause(f)), ZT_TIMEOUT_ERROR);
    assert_int_equal(zt_failure_code(zt_failure_cause(f)), ZT_ETIMEDOUT);
    /* Without consume_errors the member still holds its failure: get rid of it. */
    assert_ptr_equal(s_failure_type_of(ds[1]), ZT_TIMEOUT_ERROR);
    support_capture_t swallow = {0};
    zt_deferred_add_errback(ds[1], support_capture, &swallow);
    support_capture_release(&swallow);
    support_capture_release(&errors);
    zt_deferred_unref(&g);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_gather_results_consume_errors_member_goes_on_with_none(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_succeed(zt_ok_int(1)),
                            zt_deferred_fail(s_error("oh noes"))};
    zt_deferred_t *g = zt_gather_results(ds, 2, true);
    support_capture_t unconsumed = {0};
    zt_deferred_add_errback(ds[1], support_capture, &unconsumed);
    support_capture_t gathered = {0};
    zt_deferred_add_errback(g, support_capture, &gathered);
    assert_int_equal(unconsumed.calls, 0);
    assert_int_equal(gathered.calls, 1);
    const zt_failure_t *f = zt_result_failure(gathered.result);
    assert_ptr_equal(zt_failure_type(f), ZT_FIRST_ERROR);
    assert_string_equal(zt_failure_message(zt_failure_cause(f)), "oh noes");
    support_capture_release(&gathered);
    zt_deferred_unref(&g);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_gather_results_consume_errors_also_consumes_later_failures(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *g = zt_gather_results(ds, 2, true);
    zt_deferred_errback(ds[0], s_error("first"));
    zt_deferred_errback(ds[1], s_error("second, after the group failed"));
    assert_null(s_failure_type_of(ds[1]));
    support_capture_t got = {0};
    zt_deferred_add_errback(g, support_capture, &got);
    assert_string_equal(zt_failure_message(zt_failure_cause(zt_result_failure(got.result))),
                        "first");
    support_capture_release(&got);
    zt_deferred_unref(&g);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_gather_results_cancel_cancels_the_members_and_fails_with_first_error(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *g = zt_gather_results(ds, 2, false);
    zt_deferred_cancel(g);
    assert_ptr_equal(s_failure_type_of(ds[0]), ZT_CANCELLED_ERROR);
    assert_ptr_equal(s_failure_type_of(ds[1]), ZT_CANCELLED_ERROR);
    assert_ptr_equal(s_failure_type_of(g), ZT_FIRST_ERROR);
    assert_ptr_equal(zt_failure_type(zt_failure_cause(zt_result_failure(*zt_deferred_peek(g)))),
                     ZT_CANCELLED_ERROR);
    zt_deferred_unref(&g);
    s_unref_all(ds, 2);
    /* Not consumed: the FirstError and both members' CancelledErrors were left unhandled. */
    assert_int_equal(fx->unhandled.count, 3);
}

static void
test_gather_results_cancel_with_cancellers_that_callback_gives_values(void **state)
{
    (void)state;
    zt_deferred_t *ds[2] = {zt_deferred_new_with_canceller(s_callback_canceller, NULL),
                            zt_deferred_new_with_canceller(s_callback_canceller, NULL)};
    zt_deferred_t *g = zt_gather_results(ds, 2, false);
    zt_deferred_cancel(g);
    zt_result_list_t *list = zt_result_ptr(*zt_deferred_peek(g));
    assert_non_null(list);
    assert_int_equal(zt_result_list_int(list, 0), 42);
    assert_int_equal(zt_result_list_int(list, 1), 42);
    zt_deferred_unref(&g);
    s_unref_all(ds, 2);
}

/* ---- race ------------------------------------------------------------------------------------ */

static void
test_race_first_success_wins_and_the_losers_are_cancelled(void **state)
{
    fixture_t *fx = *state;
    int cancels = 0;
    zt_deferred_t *ds[3] = {zt_deferred_new_with_canceller(s_counting_canceller, &cancels),
                            zt_deferred_new_with_canceller(s_counting_canceller, &cancels),
                            zt_deferred_new_with_canceller(s_counting_canceller, &cancels)};
    zt_deferred_t *r = zt_race(ds, 3);
    support_capture_t got = {0};
    zt_deferred_add_callback(r, support_capture, &got);
    zt_deferred_callback(ds[1], zt_ok_int(11));
    assert_int_equal(got.calls, 1);
    assert_int_equal(zt_result_list_index(s_list(&got)), 1);
    assert_int_equal(zt_result_list_int(s_list(&got), 1), 11);
    assert_int_equal(cancels, 2);
    /* The losers' CancelledErrors were consumed: their chains go on with None. */
    assert_null(s_failure_type_of(ds[0]));
    assert_null(s_failure_type_of(ds[2]));
    support_capture_release(&got);
    zt_deferred_unref(&r);
    s_unref_all(ds, 3);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_race_a_failure_then_a_success_still_wins(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *r = zt_race(ds, 2);
    zt_deferred_errback(ds[0], s_error("lost"));
    assert_false(zt_deferred_is_called(r));
    assert_null(s_failure_type_of(ds[0])); /* consumed */
    zt_deferred_callback(ds[1], zt_ok_int(2));
    zt_result_list_t *list = zt_result_ptr(*zt_deferred_peek(r));
    assert_int_equal(zt_result_list_index(list), 1);
    assert_int_equal(zt_result_list_int(list, 1), 2);
    zt_deferred_unref(&r);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_race_all_failed_fails_with_a_failure_group(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_new()};
    zt_deferred_t *r = zt_race(ds, 2);
    zt_deferred_errback(ds[1], s_error("second"));
    zt_deferred_errback(ds[0], s_error("first"));
    support_capture_t got = {0};
    zt_deferred_add_errback(r, support_capture, &got);
    const zt_failure_t *f = zt_result_failure(got.result);
    assert_non_null(f);
    assert_ptr_equal(zt_failure_type(f), ZT_FAILURE_GROUP);
    assert_true(zt_failure_type_is(ZT_FAILURE_GROUP, ZT_ERROR));
    assert_int_equal(zt_failure_detail(f), 2);
    assert_string_equal(zt_failure_message(zt_failure_cause(f)), "first");
    support_capture_release(&got);
    zt_deferred_unref(&r);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_race_cancel_cancels_every_member(void **state)
{
    fixture_t *fx = *state;
    int cancels = 0;
    zt_deferred_t *ds[3] = {zt_deferred_new_with_canceller(s_counting_canceller, &cancels),
                            zt_deferred_new_with_canceller(s_counting_canceller, &cancels),
                            zt_deferred_new_with_canceller(s_counting_canceller, &cancels)};
    zt_deferred_t *r = zt_race(ds, 3);
    zt_deferred_cancel(r);
    assert_int_equal(cancels, 3);
    assert_ptr_equal(s_failure_type_of(r), ZT_FAILURE_GROUP);
    const zt_failure_t *cause = zt_failure_cause(zt_result_failure(*zt_deferred_peek(r)));
    assert_ptr_equal(zt_failure_type(cause), ZT_CANCELLED_ERROR);
    support_capture_t handle = {0};
    zt_deferred_add_errback(r, support_capture, &handle);
    support_capture_release(&handle);
    zt_deferred_unref(&r);
    s_unref_all(ds, 3);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_race_empty_fails_at_once(void **state)
{
    (void)state;
    zt_deferred_t *r = zt_race(NULL, 0);
    assert_non_null(r);
    assert_ptr_equal(s_failure_type_of(r), ZT_FAILURE_GROUP);
    support_capture_t handle = {0};
    zt_deferred_add_errback(r, support_capture, &handle);
    assert_null(zt_failure_cause(zt_result_failure(handle.result)));
    support_capture_release(&handle);
    zt_deferred_unref(&r);
}

static void
test_race_already_fired_member_wins_at_once(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_t *ds[2] = {zt_deferred_new(), zt_deferred_succeed(zt_ok_int(5))};
    zt_deferred_t *r = zt_race(ds, 2);
    assert_true(zt_deferred_is_called(r));
    assert_int_equal(zt_result_list_index(zt_result_ptr(*zt_deferred_peek(r))), 1);
    assert_true(zt_deferred_is_called(ds[0])); /* cancelled */
    assert_null(s_failure_type_of(ds[0]));
    zt_deferred_unref(&r);
    s_unref_all(ds, 2);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_race_loser_whose_canceller_succeeds_does_not_win_again(void **state)
{
    (void)state;
    int frees = 0;
    zt_deferred_t *ds[2] = {zt_deferred_new(),
                            zt_deferred_new_with_canceller(s_callback_canceller, NULL)};
    zt_deferred_t *r = zt_race(ds, 2);
    support_capture_t got = {0};
    zt_deferred_add_callback(r, support_capture, &got);
    zt_deferred_callback(ds[0], s_tracked(&frees, 1));
    assert_int_equal(got.calls, 1);
    assert_int_equal(zt_result_list_index(s_list(&got)), 0);
    assert_false(zt_result_list_is_done(s_list(&got), 1));
    /* The loser's own value stays with the loser. */
    assert_int_equal(zt_result_int(*zt_deferred_peek(ds[1])), 42);
    support_capture_release(&got);
    assert_int_equal(frees, 1);
    zt_deferred_unref(&r);
    s_unref_all(ds, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        T(test_deferred_list_all_members_fired_results_in_input_order),
        T(test_deferred_list_empty_fires_at_once_with_an_empty_list),
        T(test_deferred_list_empty_fire_on_one_callback_never_fires),
        T(test_deferred_list_fire_on_one_errback_fails_with_first_error),
        T(test_deferred_list_without_consume_errors_member_keeps_its_failure),
        T(test_deferred_list_consume_errors_member_goes_on_with_none),
        T(test_deferred_list_unconsumed_member_failure_is_reported_once),
        T(test_deferred_list_consumed_failure_reported_by_nobody),
        T(test_deferred_list_fire_on_one_errback_with_already_failed_member_fails_at_once),
        T(test_deferred_list_with_already_fired_members_fires_at_once),
        T(test_deferred_list_links_added_to_a_member_before_shape_what_it_sees),
        T(test_deferred_list_fire_on_one_callback_reports_value_and_index),
        T(test_deferred_list_fire_on_one_callback_all_failed_fires_with_the_list),
        T(test_deferred_list_owned_value_moves_into_the_list_and_is_freed_once),
        T(test_deferred_list_unowned_value_is_shared_with_the_member),
        T(test_deferred_list_owned_value_freed_when_list_deferred_is_dropped),
        T(test_deferred_list_members_dropped_by_the_caller_are_still_watched),
        T(test_deferred_list_same_member_twice_gets_two_entries),
        T(test_deferred_list_cancel_cancels_every_member),
        T(test_deferred_list_cancel_with_a_canceller_that_callbacks_fires_with_the_list),
        T(test_deferred_list_cancel_fire_on_one_callback_cancels_every_member),
        T(test_deferred_list_cancel_fire_on_one_callback_canceller_value_wins),
        T(test_deferred_list_cancel_fire_on_one_errback_fails_with_first_error),
        T(test_deferred_list_cancel_fire_on_one_errback_all_cancellers_callback_fires_with_list),
        T(test_deferred_list_cancel_after_fire_on_one_callback_does_nothing),
        T(test_deferred_list_cancel_after_fire_on_one_errback_does_nothing),
        T(test_deferred_list_cancel_with_a_paused_member_fails_the_list_itself),
        T(test_deferred_list_cancel_reaches_what_a_member_waits_on),
        T(test_result_list_take_moves_the_result_out),
        T(test_gather_results_all_succeed_gives_the_values_in_order),
        T(test_gather_results_a_failure_fails_with_first_error),
        T(test_gather_results_consume_errors_member_goes_on_with_none),
        T(test_gather_results_consume_errors_also_consumes_later_failures),
        T(test_gather_results_cancel_cancels_the_members_and_fails_with_first_error),
        T(test_gather_results_cancel_with_cancellers_that_callback_gives_values),
        T(test_race_first_success_wins_and_the_losers_are_cancelled),
        T(test_race_a_failure_then_a_success_still_wins),
        T(test_race_all_failed_fails_with_a_failure_group),
        T(test_race_cancel_cancels_every_member),
        T(test_race_empty_fails_at_once),
        T(test_race_already_fired_member_wins_at_once),
        T(test_race_loser_whose_canceller_succeeds_does_not_win_again),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
