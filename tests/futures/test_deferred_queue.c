/*  tests/futures/test_deferred_queue.c - DeferredQueue, after Twisted's testQueue and the queue
 * cancel tests  */
#include <ztwist.h>

#include "support/support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

/* Each test's state: the frees of tracked items and the unhandled failures reported. */
typedef struct fixture {
    int frees;                     /* how many tracked items were freed */
    support_unhandled_t unhandled; /* failures reported unhandled */
} fixture_t;

static int
s_setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    support_unhandled_install(&fx->unhandled);
    zt_deferred_set_strict(false);
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture_t *fx = *state;
    support_unhandled_remove();
    int unhandled = fx->unhandled.count;
    free(fx);
    return unhandled == 0 ? 0 : -1; /* a test that leaves a failure unhandled fails */
}

/* An item that counts its frees, so that a test can prove each is freed exactly once. */
typedef struct item {
    int *frees; /* Borrowed: the counter to bump */
    int value;  /* the payload */
} item_t;

static void
s_item_free(void *p)
{
    item_t *it = p;
    (*it->frees)++;
    free(it);
}

static item_t *
s_item(fixture_t *fx, int value)
{
    item_t *it = malloc(sizeof(*it));
    assert_non_null(it);
    *it = (item_t){.frees = &fx->frees, .value = value};
    return it;
}

/* Appends each value it receives (an int) to a list; failures go by untouched. */
typedef struct gotten {
    int values[16]; /* the values received, in order */
    int count;      /* how many */
} gotten_t;

static zt_result_t
s_append(zt_result_t result, void *arg)
{
    gotten_t *g = arg;
    assert_true(g->count < 16);
    g->values[g->count++] = (int)zt_result_int(result);
    return result;
}

/* Get one item and append it to g; the queue's Deferred is dropped, the chain keeps running. */
static void
s_get_into(zt_deferred_queue_t *q, gotten_t *g)
{
    zt_deferred_t *d = zt_deferred_queue_get(q);
    assert_non_null(d);
    zt_deferred_add_callback(d, s_append, g);
    zt_deferred_unref(&d);
}

/* The failure type a Deferred ended with, or NULL. */
static const zt_failure_type_t *
s_failure_type_of(zt_deferred_t *d)
{
    const zt_result_t *r = zt_deferred_peek(d);
    assert_non_null(r);
    return zt_is_err(*r) ? zt_failure_type(zt_result_failure(*r)) : NULL;
}

static void
test_deferred_queue_get_waits_for_the_next_put(void **state)
{
    (void)state;
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    zt_deferred_t *d = zt_deferred_queue_get(q);
    assert_false(zt_deferred_is_called(d));
    assert_int_equal(zt_deferred_queue_waiting(q), 1);
    assert_int_equal(zt_deferred_queue_put(q, (void *)(intptr_t)5, NULL), 0);
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 5);
    assert_int_equal(zt_deferred_queue_waiting(q), 0);
    assert_int_equal(zt_deferred_queue_pending(q), 0);
    zt_deferred_unref(&d);
    zt_deferred_queue_destroy(&q);
}

static void
test_deferred_queue_get_after_put_fires_at_once(void **state)
{
    (void)state;
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    assert_int_equal(zt_deferred_queue_put(q, (void *)(intptr_t)6, NULL), 0);
    assert_int_equal(zt_deferred_queue_pending(q), 1);
    zt_deferred_t *d = zt_deferred_queue_get(q);
    assert_true(zt_deferred_is_called(d));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 6);
    assert_int_equal(zt_deferred_queue_pending(q), 0);
    zt_deferred_unref(&d);
    zt_deferred_queue_destroy(&q);
}

static void
test_deferred_queue_twisted_walk_with_size_and_backlog_of_two(void **state)
{
    fixture_t *fx = *state;
    enum { N = 2, M = 2 };
    zt_deferred_queue_t *q = zt_deferred_queue_new(N, M);
    assert_int_equal(zt_deferred_queue_size(q), N);
    assert_int_equal(zt_deferred_queue_backlog(q), M);
    gotten_t gotten = {0};
    for (int i = 0; i < M; i++)
        s_get_into(q, &gotten);
    zt_deferred_t *under = zt_deferred_queue_get(q);
    assert_ptr_equal(s_failure_type_of(under), ZT_QUEUE_UNDERFLOW);
    assert_int_equal(zt_failure_code(zt_result_failure(*zt_deferred_peek(under))), ZT_EEMPTY);
    support_capture_t handled = {0};
    zt_deferred_add_errback(under, support_capture, &handled);
    zt_result_release(&handled.result);
    zt_deferred_unref(&under);

    for (int i = 0; i < M; i++) {
        assert_int_equal(zt_deferred_queue_put(q, (void *)(intptr_t)i, NULL), 0);
        assert_int_equal(gotten.count, i + 1);
        assert_int_equal(gotten.values[i], i);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(zt_deferred_queue_put(q, (void *)(intptr_t)(N + i), NULL), 0);
        assert_int_equal(gotten.count, M);
    }
    item_t *refused = s_item(fx, 99);
    assert_int_equal(zt_deferred_queue_put(q, refused, s_item_free), ZT_EFULL);
    assert_int_equal(fx->frees, 0); /* refused: still the caller's */
    s_item_free(refused);

    gotten_t again = {0};
    for (int i = 0; i < N; i++) {
        s_get_into(q, &again);
        assert_int_equal(again.count, i + 1);
        assert_int_equal(again.values[i], N + i);
    }
    zt_deferred_queue_destroy(&q);
    assert_null(q);
}

static void
test_deferred_queue_getters_are_served_in_order(void **state)
{
    (void)state;
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    gotten_t first = {0}, second = {0};
    s_get_into(q, &first);
    s_get_into(q, &second);
    zt_deferred_queue_put(q, (void *)(intptr_t)10, NULL);
    zt_deferred_queue_put(q, (void *)(intptr_t)20, NULL);
    assert_int_equal(first.count, 1);
    assert_int_equal(first.values[0], 10);
    assert_int_equal(second.count, 1);
    assert_int_equal(second.values[0], 20);
    zt_deferred_queue_destroy(&q);
}

static void
test_deferred_queue_items_come_out_in_order(void **state)
{
    (void)state;
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    for (int i = 0; i < 5; i++)
        assert_int_equal(zt_deferred_queue_put(q, (void *)(intptr_t)i, NULL), 0);
    gotten_t g = {0};
    for (int i = 0; i < 5; i++)
        s_get_into(q, &g);
    assert_int_equal(g.count, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.values[i], i);
    zt_deferred_queue_destroy(&q);
}

static void
test_deferred_queue_size_zero_refuses_a_put_without_a_getter(void **state)
{
    (void)state;
    zt_deferred_queue_t *q = zt_deferred_queue_new(0, ZT_DEFERRED_QUEUE_UNLIMITED);
    assert_int_equal(zt_deferred_queue_put(q, NULL, NULL), ZT_EFULL);
    gotten_t g = {0};
    s_get_into(q, &g);
    assert_int_equal(zt_deferred_queue_put(q, (void *)(intptr_t)3, NULL), 0); /* a getter waits */
    assert_int_equal(g.count, 1);
    zt_deferred_queue_destroy(&q);
}

static void
test_deferred_queue_backlog_zero_fails_a_get_without_an_item(void **state)
{
    (void)state;
    zt_deferred_queue_t *q = zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, 0);
    zt_deferred_t *d = zt_deferred_queue_get(q);
    assert_non_null(d);
    assert_ptr_equal(s_failure_type_of(d), ZT_QUEUE_UNDERFLOW);
    support_capture_t handled = {0};
    zt_deferred_add_errback(d, support_capture, &handled);
    zt_result_release(&handled.result);
    zt_deferred_unref(&d);
    assert_int_equal(zt_deferred_queue_waiting(q), 0);
    zt_deferred_queue_put(q, (void *)(intptr_t)4, NULL);
    d = zt_deferred_queue_get(q); /* an item waits: fine */
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 4);
    zt_deferred_unref(&d);
    zt_deferred_queue_destroy(&q);
}

static void
test_deferred_queue_cancel_after_a_get_fired_does_nothing(void **state)
{
    (void)state;
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    zt_deferred_t *d = zt_deferred_queue_get(q);
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    zt_deferred_queue_put(q, NULL, NULL);
    zt_deferred_cancel(d);
    assert_int_equal(err.calls, 0);
    zt_deferred_unref(&d);
    zt_deferred_queue_destroy(&q);
}

/* After the cancelled get: put, and wait for a new get (Twisted's test_cancelQueueAfterGet). */
typedef struct regetter {
    zt_deferred_queue_t *q; /* Borrowed: the queue */
    int done;               /* the chain reached its end */
} regetter_t;

static zt_result_t
s_put_and_get_again(zt_result_t result, void *arg)
{
    regetter_t *r = arg;
    zt_result_release(&result);
    /* If the cancelled Deferred were still queued as a getter, this put would go to it. */
    assert_int_equal(zt_deferred_queue_put(r->q, (void *)(intptr_t)8, NULL), 0);
    return zt_wait_for(zt_deferred_queue_get(r->q));
}

static zt_result_t
s_done(zt_result_t result, void *arg)
{
    regetter_t *r = arg;
    assert_int_equal(zt_result_int(result), 8);
    r->done++;
    return result;
}

static void
test_deferred_queue_cancelled_get_is_removed_from_the_getters(void **state)
{
    (void)state;
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    zt_deferred_t *d = zt_deferred_queue_get(q);
    zt_deferred_cancel(d);
    assert_ptr_equal(s_failure_type_of(d), ZT_CANCELLED_ERROR);
    assert_int_equal(zt_deferred_queue_waiting(q), 0);
    regetter_t r = {.q = q};
    support_capture_t recovered = {0};
    zt_deferred_add_errback(d, support_capture, &recovered); /* the failure becomes None */
    zt_deferred_add_callback(d, s_put_and_get_again, &r);
    zt_deferred_add_callback(d, s_done, &r);
    assert_int_equal(r.done, 1);
    zt_result_release(&recovered.result);
    zt_deferred_unref(&d);
    zt_deferred_queue_destroy(&q);
}

static void
test_deferred_queue_get_with_a_timeout_times_out_and_leaves_the_getters(void **state)
{
    (void)state;
    zt_test_clock_t *clock = zt_test_clock_new();
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    zt_deferred_t *d = zt_deferred_queue_get(q);
    assert_int_equal(zt_deferred_add_timeout(d, 5.0, zt_test_clock_clock(clock)), 0);
    zt_test_clock_advance(clock, 4.9);
    assert_false(zt_deferred_is_called(d));
    zt_test_clock_advance(clock, 0.1);
    assert_ptr_equal(s_failure_type_of(d), ZT_TIMEOUT_ERROR);
    assert_int_equal(zt_deferred_queue_waiting(q), 0);
    zt_deferred_queue_put(q, (void *)(intptr_t)1, NULL); /* nobody waits: it is queued */
    assert_int_equal(zt_deferred_queue_pending(q), 1);
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    zt_result_release(&err.result);
    zt_deferred_unref(&d);
    zt_deferred_queue_destroy(&q);
    zt_test_clock_destroy(&clock);
}

static void
test_deferred_queue_cancel_of_one_of_several_getters_keeps_the_others(void **state)
{
    (void)state;
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    zt_deferred_t *a = zt_deferred_queue_get(q);
    zt_deferred_t *b = zt_deferred_queue_get(q);
    zt_deferred_t *c = zt_deferred_queue_get(q);
    zt_deferred_cancel(b);
    assert_int_equal(zt_deferred_queue_waiting(q), 2);
    zt_deferred_queue_put(q, (void *)(intptr_t)1, NULL);
    zt_deferred_queue_put(q, (void *)(intptr_t)2, NULL);
    assert_int_equal(zt_result_int(*zt_deferred_peek(a)), 1);
    assert_int_equal(zt_result_int(*zt_deferred_peek(c)), 2);
    support_capture_t err = {0};
    zt_deferred_add_errback(b, support_capture, &err);
    zt_result_release(&err.result);
    zt_deferred_unref(&a);
    zt_deferred_unref(&b);
    zt_deferred_unref(&c);
    zt_deferred_queue_destroy(&q);
}

static void
test_deferred_queue_backlog_frees_up_when_a_getter_is_cancelled(void **state)
{
    (void)state;
    zt_deferred_queue_t *q = zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, 1);
    zt_deferred_t *a = zt_deferred_queue_get(q);
    zt_deferred_cancel(a);
    zt_deferred_t *b = zt_deferred_queue_get(q); /* the cancelled one no longer counts */
    assert_false(zt_deferred_is_called(b));
    zt_deferred_queue_put(q, (void *)(intptr_t)1, NULL);
    assert_int_equal(zt_result_int(*zt_deferred_peek(b)), 1);
    support_capture_t err = {0};
    zt_deferred_add_errback(a, support_capture, &err);
    zt_result_release(&err.result);
    zt_deferred_unref(&a);
    zt_deferred_unref(&b);
    zt_deferred_queue_destroy(&q);
}

static void
test_deferred_queue_received_item_belongs_to_the_chain_and_is_freed_once(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    zt_deferred_t *waiting = zt_deferred_queue_get(q);
    assert_int_equal(zt_deferred_queue_put(q, s_item(fx, 1), s_item_free), 0);
    assert_int_equal(zt_deferred_queue_put(q, s_item(fx, 2), s_item_free), 0);
    zt_deferred_t *later = zt_deferred_queue_get(q);
    assert_int_equal(((item_t *)zt_result_ptr(*zt_deferred_peek(waiting)))->value, 1);
    assert_int_equal(((item_t *)zt_result_ptr(*zt_deferred_peek(later)))->value, 2);
    zt_deferred_queue_destroy(&q); /* the items are the Deferreds' now */
    assert_int_equal(fx->frees, 0);
    zt_deferred_unref(&waiting);
    zt_deferred_unref(&later);
    assert_int_equal(fx->frees, 2);
}

static void
test_deferred_queue_destroy_frees_the_queued_items_once(void **state)
{
    fixture_t *fx = *state;
    zt_deferred_queue_t *q = zt_deferred_queue_new(3, ZT_DEFERRED_QUEUE_UNLIMITED);
    for (int i = 0; i < 3; i++)
        assert_int_equal(zt_deferred_queue_put(q, s_item(fx, i), s_item_free), 0);
    assert_int_equal(zt_deferred_queue_pending(q), 3);
    zt_deferred_queue_destroy(&q);
    assert_int_equal(fx->frees, 3);
    zt_deferred_queue_destroy(&q); /* NULL: nothing */
    assert_int_equal(fx->frees, 3);
}

static void
test_deferred_queue_destroy_fails_the_waiting_getters(void **state)
{
    (void)state;
    zt_deferred_queue_t *q =
        zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, ZT_DEFERRED_QUEUE_UNLIMITED);
    zt_deferred_t *d = zt_deferred_queue_get(q);
    support_capture_t err = {0};
    zt_deferred_add_errback(d, support_capture, &err);
    zt_deferred_queue_destroy(&q);
    assert_int_equal(err.calls, 1);
    assert_ptr_equal(zt_failure_type(zt_result_failure(err.result)), ZT_CANCELLED_ERROR);
    zt_deferred_cancel(d); /* fired already: nothing happens */
    zt_result_release(&err.result);
    zt_deferred_unref(&d);
}

/* A getter's chain that puts back into the queue: the queue is consistent during the fire. */
typedef struct echo {
    zt_deferred_queue_t *q; /* Borrowed: the queue */
    int seen;               /* how many items this chain saw */
} echo_t;

static zt_result_t
s_put_back(zt_result_t result, void *arg)
{
    echo_t *e = arg;
    e->seen++;
    assert_int_equal(zt_deferred_queue_put(e->q, (void *)(zt_result_int(result) + 1), NULL), 0);
    return result;
}

static void
test_deferred_queue_put_from_a_getter_chain_is_queued(void **state)
{
    (void)state;
    zt_deferred_queue_t *q = zt_deferred_queue_new(1, ZT_DEFERRED_QUEUE_UNLIMITED);
    echo_t e = {.q = q};
    zt_deferred_t *d = zt_deferred_queue_get(q);
    zt_deferred_add_callback(d, s_put_back, &e);
    zt_deferred_queue_put(q, (void *)(intptr_t)1, NULL);
    assert_int_equal(e.seen, 1);
    assert_int_equal(zt_deferred_queue_pending(q), 1);
    zt_deferred_t *next = zt_deferred_queue_get(q);
    assert_int_equal(zt_result_int(*zt_deferred_peek(next)), 2);
    zt_deferred_unref(&next);
    zt_deferred_unref(&d);
    zt_deferred_queue_destroy(&q);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        T(test_deferred_queue_get_waits_for_the_next_put),
        T(test_deferred_queue_get_after_put_fires_at_once),
        T(test_deferred_queue_twisted_walk_with_size_and_backlog_of_two),
        T(test_deferred_queue_getters_are_served_in_order),
        T(test_deferred_queue_items_come_out_in_order),
        T(test_deferred_queue_size_zero_refuses_a_put_without_a_getter),
        T(test_deferred_queue_backlog_zero_fails_a_get_without_an_item),
        T(test_deferred_queue_cancel_after_a_get_fired_does_nothing),
        T(test_deferred_queue_cancelled_get_is_removed_from_the_getters),
        T(test_deferred_queue_get_with_a_timeout_times_out_and_leaves_the_getters),
        T(test_deferred_queue_cancel_of_one_of_several_getters_keeps_the_others),
        T(test_deferred_queue_backlog_frees_up_when_a_getter_is_cancelled),
        T(test_deferred_queue_received_item_belongs_to_the_chain_and_is_freed_once),
        T(test_deferred_queue_destroy_frees_the_queued_items_once),
        T(test_deferred_queue_destroy_fails_the_waiting_getters),
        T(test_deferred_queue_put_from_a_getter_chain_is_queued),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
