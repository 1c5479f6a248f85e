/*  tests/futures/test_deferred_chaining.c - Deferred after Twisted's test_defer.py: chaining: a
 * callback that waits for another Deferred, a million-deep chain on a small stack, chain_deferred.
 *
 *  The fixture and the links that record into its log are in deferred_fixture.h.  */
#include "deferred_fixture.h"

/* ---------------------------------------------------------------------------------------------
 * Chaining: a callback returns zt_wait_for(inner) */

static void
test_deferred_wait_for_unfired_inner_pauses_outer_until_inner_fires(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_add_callback(outer, s_log, STEP("after"));
    zt_deferred_callback(outer, zt_ok_int(1));
    assert_string_equal(fx->log, "w=1 ");
    assert_true(zt_deferred_is_paused(outer));
    assert_null(zt_deferred_peek(outer));
    zt_deferred_callback(inner, zt_ok_int(2));
    assert_string_equal(fx->log, "w=1 after=2 ");
    assert_false(zt_deferred_is_paused(outer));
    assert_string_equal(s_peek(fx, inner), "x=0 "); /* the inner result went to outer */
    zt_deferred_unref(&outer);
    zt_deferred_unref(&inner);
}

static void
test_deferred_paused_inner_blocks_outer_until_unpaused(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d1 = zt_deferred_new();
    zt_deferred_t *d2 = zt_deferred_new();
    zt_deferred_pause(d2);
    zt_deferred_add_callback(d1, s_wait, STEP_D("w", d2));
    zt_deferred_add_callback(d1, s_log, STEP("cb"));
    zt_deferred_callback(d1, zt_ok_int(1));
    zt_deferred_callback(d2, zt_ok_int(2));
    assert_string_equal(fx->log, "w=1 "); /* still waiting: d2 is paused */
    zt_deferred_unpause(d2);
    assert_string_equal(fx->log, "w=1 cb=2 ");
    zt_deferred_unref(&d1);
    zt_deferred_unref(&d2);
}

static void
test_deferred_wait_for_fired_inner_takes_its_result_at_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *first = zt_deferred_succeed(s_tracked(fx, 11));
    zt_deferred_t *second = zt_deferred_new();
    zt_deferred_add_callback(second, s_wait, STEP_D("w", first));
    zt_deferred_callback(second, zt_ok_int(0));
    zt_deferred_add_callback(first, s_log, STEP("first"));
    assert_string_equal(fx->log, "w=0 first=0 "); /* first's result became None */
    zt_deferred_add_callback(second, s_log, STEP("second"));
    assert_string_equal(fx->log, "w=0 first=0 second=obj11 ");
    zt_deferred_unref(&first);
    assert_int_equal(fx->frees, 0);
    zt_deferred_unref(&second);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_async_implicit_chain_moves_result_and_leaves_none(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *first = zt_deferred_new();
    zt_deferred_t *second = zt_deferred_new();
    zt_deferred_add_callback(second, s_wait, STEP_D("w", first));
    zt_deferred_callback(second, zt_ok_int(0));
    zt_deferred_add_callback(first, s_log, STEP("first"));
    zt_deferred_add_callback(second, s_log, STEP("second"));
    assert_string_equal(fx->log, "w=0 ");
    zt_deferred_callback(first, zt_ok_int(5));
    /* As Twisted: the waiter's chain runs first, then first's own later links, with None. */
    assert_string_equal(fx->log, "w=0 second=5 first=0 ");
    zt_deferred_unref(&first);
    zt_deferred_unref(&second);
}

static void
test_deferred_sync_implicit_error_chain_moves_failure_and_is_not_reported(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *first = zt_deferred_fail(zt_failure_new(ZT_TIMEOUT_ERROR, "first's"));
    zt_deferred_t *second = zt_deferred_new();
    zt_deferred_add_callback(second, s_wait, STEP_D("w", first));
    zt_deferred_callback(second, zt_ok_int(0));
    zt_deferred_add_callback(first, s_log, STEP("first"));
    zt_deferred_unref(&first);
    assert_int_equal(fx->unhandled.count, 0);
    assert_string_equal(fx->log, "w=0 first=0 ");
    assert_string_equal(s_peek(fx, second), "x=!TimeoutError ");
    zt_deferred_add_errback(second, s_recover, STEP("e"));
    zt_deferred_unref(&second);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_async_implicit_error_chain_moves_failure_to_outer(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *first = zt_deferred_new();
    zt_deferred_t *second = zt_deferred_new();
    zt_deferred_add_callback(second, s_wait, STEP_D("w", first));
    zt_deferred_callback(second, zt_ok_int(0));
    zt_deferred_add_errback(second, s_recover, STEP_N("secondError", 1));
    zt_deferred_add_callback(first, s_log, STEP("first"));
    zt_deferred_add_callback(second, s_log, STEP("second"));
    zt_deferred_errback(first, zt_failure_new(ZT_ERROR, "first's failure"));
    assert_string_equal(fx->log, "w=0 secondError=!Error second=1 first=0 ");
    zt_deferred_unref(&first);
    zt_deferred_unref(&second);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_inner_failure_reported_once_by_outer_only(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_errback(inner, zt_failure_new(ZT_TIMEOUT_ERROR, "nobody handles me"));
    zt_deferred_unref(&inner);
    assert_int_equal(fx->unhandled.count, 0);
    zt_deferred_unref(&outer);
    assert_int_equal(fx->unhandled.count, 1);
    assert_string_equal(fx->unhandled.text, "TimeoutError: nobody handles me");
}

static void
test_deferred_chaining_is_transitive(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *first = zt_deferred_new();
    zt_deferred_t *second = zt_deferred_new();
    zt_deferred_t *third = zt_deferred_new();
    zt_deferred_add_callback(second, s_wait, STEP_D("s", first));
    zt_deferred_add_callback(third, s_wait, STEP_D("t", second));
    zt_deferred_add_callback(third, s_log, STEP("third"));
    zt_deferred_callback(second, zt_ok_int(0));
    zt_deferred_callback(third, zt_ok_int(0));
    assert_string_equal(fx->log, "s=0 t=0 ");
    zt_deferred_callback(first, zt_ok_int(3));
    assert_string_equal(fx->log, "s=0 t=0 third=3 ");
    zt_deferred_unref(&first);
    zt_deferred_unref(&second);
    zt_deferred_unref(&third);
}

/* test_nestedAsynchronousChainedDeferreds: cb returns d, which has fired and waits on inner. */
typedef struct {
    fx_t *fx;
    zt_deferred_t *inner; /* Borrowed */
    bool transform;       /* add a callback to inner before returning it */
    step_t t;             /* that callback's arg */
} nested_t;

static zt_result_t
s_nested_first(zt_result_t r, void *arg)
{
    nested_t *n = arg;
    s_note(n->fx, "first ");
    zt_result_release(&r);
    if (n->transform)
        zt_deferred_add_callback(n->inner, s_add, &n->t);
    return zt_wait_for(zt_deferred_ref(n->inner));
}

static zt_result_t
s_nested_second(zt_result_t r, void *arg)
{
    nested_t *n = arg;
    s_note(n->fx, "second=%d ", (int)zt_result_int(r));
    return zt_ok_int(zt_result_int(r) * 2);
}

static zt_result_t
s_nested_cb(zt_result_t r, void *arg)
{
    nested_t *n = arg;
    s_note(n->fx, "start=%d ", (int)zt_result_int(r));
    zt_deferred_t *d = zt_deferred_succeed(zt_ok_int(0));
    zt_deferred_add_callback(d, s_nested_first, n);
    zt_deferred_add_callback(d, s_nested_second, n);
    return zt_wait_for(d);
}

static void
test_deferred_nested_async_chained_deferreds_continue_outer_chain(void **state)
{
    fx_t *fx = *state;
    nested_t n = {.fx = fx, .inner = zt_deferred_new()};
    zt_deferred_t *outer = zt_deferred_succeed(zt_ok_int(1));
    zt_deferred_add_callback(outer, s_nested_cb, &n);
    zt_deferred_add_callback(outer, s_log, STEP("final"));
    assert_string_equal(fx->log, "start=1 first ");
    zt_deferred_callback(n.inner, zt_ok_int(21));
    assert_string_equal(fx->log, "start=1 first second=21 final=42 ");
    zt_deferred_unref(&outer);
    zt_deferred_unref(&n.inner);
}

static void
test_deferred_nested_async_chain_with_extra_inner_callbacks(void **state)
{
    fx_t *fx = *state;
    nested_t n = {.fx = fx,
                  .inner = zt_deferred_new(),
                  .transform = true,
                  .t = {.fx = fx, .name = "t", .n = 100}};
    zt_deferred_t *outer = zt_deferred_succeed(zt_ok_int(1));
    zt_deferred_add_callback(outer, s_nested_cb, &n);
    zt_deferred_add_callback(outer, s_log, STEP("final"));
    zt_deferred_callback(n.inner, zt_ok_int(1));
    assert_string_equal(fx->log, "start=1 first t=1 second=101 final=202 ");
    zt_deferred_unref(&outer);
    zt_deferred_unref(&n.inner);
}

static void
test_deferred_chained_paused_deferred_with_result_waits_for_unpause(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *paused = zt_deferred_succeed(zt_ok_int(9));
    zt_deferred_pause(paused);
    zt_deferred_t *chained = zt_deferred_new();
    zt_deferred_add_callback(chained, s_wait, STEP_D("w", paused));
    zt_deferred_callback(chained, zt_ok_int(0));
    zt_deferred_add_callback(chained, s_log, STEP("result"));
    assert_string_equal(fx->log, "w=0 ");
    zt_deferred_unpause(paused);
    assert_string_equal(fx->log, "w=0 result=9 ");
    zt_deferred_unref(&paused);
    zt_deferred_unref(&chained);
}

static void
test_deferred_paused_outer_does_not_stop_inner_callbacks(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *first = zt_deferred_new();
    zt_deferred_t *second = zt_deferred_new();
    zt_deferred_add_callback(first, s_wait, STEP_D("w", second));
    zt_deferred_callback(first, zt_ok_int(0));
    zt_deferred_pause(first);
    zt_deferred_callback(second, zt_ok_int(4));
    zt_deferred_add_callback(second, s_log, STEP("second"));
    assert_string_equal(fx->log, "w=0 second=0 ");
    zt_deferred_add_callback(first, s_log, STEP("first"));
    assert_string_equal(fx->log, "w=0 second=0 ");
    zt_deferred_unpause(first);
    assert_string_equal(fx->log, "w=0 second=0 first=4 ");
    zt_deferred_unref(&first);
    zt_deferred_unref(&second);
}

static void
test_deferred_paused_waiter_holds_inner_links_after_its_continue(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_pause(outer);
    zt_deferred_add_callback(inner, s_log, STEP("inner-after"));
    zt_deferred_callback(inner, zt_ok_int(7));
    /* As Twisted: handing the result to a paused waiter stops this run, so inner's later link
     * waits too, until something runs inner's chain again. */
    assert_string_equal(fx->log, "w=0 ");
    zt_deferred_add_callback(outer, s_log, STEP("outer"));
    zt_deferred_unpause(outer);
    assert_string_equal(fx->log, "w=0 outer=7 ");
    zt_deferred_add_callback(inner, s_log, STEP("inner-again"));
    assert_string_equal(fx->log, "w=0 outer=7 inner-after=0 inner-again=0 ");
    zt_deferred_unref(&inner);
    zt_deferred_unref(&outer);
}

static void
test_deferred_callback_added_to_middle_runs_after_innermost_fires(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *first = zt_deferred_new();
    zt_deferred_t *second = zt_deferred_new();
    zt_deferred_t *third = zt_deferred_new();
    zt_deferred_add_callback(first, s_wait, STEP_D("f", second));
    zt_deferred_add_callback(second, s_wait, STEP_D("s", third));
    zt_deferred_callback(second, zt_ok_int(0));
    zt_deferred_callback(first, zt_ok_int(0));
    zt_deferred_callback(third, zt_ok_int(0));
    zt_deferred_add_callback(second, s_log, STEP("second"));
    assert_string_equal(fx->log, "s=0 f=0 second=0 ");
    zt_deferred_unref(&first);
    zt_deferred_unref(&second);
    zt_deferred_unref(&third);
}

/* test_callbackOrderPreserved: a link added after the waiting one runs after the inner chain. */
static zt_result_t
s_order_cb(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_result_release(&r);
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_wait, step->extra);
    zt_deferred_add_callback(d, s_log, step->extra->extra);
    zt_deferred_callback(d, zt_ok_int(0));
    return zt_wait_for(d);
}

static void
test_deferred_callback_order_preserved_across_inner_chain(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *a = zt_deferred_new();
    zt_deferred_t *outer = zt_deferred_new();
    step_t d2 = {.fx = fx, .name = "d2"};
    step_t d1 = {.fx = fx, .name = "d1", .other = a, .extra = &d2};
    step_t cb = {.fx = fx, .name = "cb", .other = a, .extra = &d1};
    zt_deferred_add_callback(outer, s_order_cb, &cb);
    zt_deferred_add_callback(outer, s_log, STEP("final"));
    zt_deferred_callback(outer, zt_ok_int(1));
    assert_string_equal(fx->log, "cb=1 d1=0 ");
    zt_deferred_callback(a, zt_ok_int(7));
    assert_string_equal(fx->log, "cb=1 d1=0 d2=7 final=7 ");
    zt_deferred_unref(&a);
    zt_deferred_unref(&outer);
}

static void
test_deferred_several_outers_waiting_on_one_inner_first_takes_result(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *a = zt_deferred_new();
    zt_deferred_t *b = zt_deferred_new();
    zt_deferred_add_callback(a, s_wait, STEP_D("a", inner));
    zt_deferred_add_callback(b, s_wait, STEP_D("b", inner));
    zt_deferred_add_callback(a, s_log, STEP("A"));
    zt_deferred_add_callback(b, s_log, STEP("B"));
    zt_deferred_callback(a, zt_ok_int(0));
    zt_deferred_callback(b, zt_ok_int(0));
    zt_deferred_callback(inner, zt_ok_int(5));
    /* As in Twisted: the first waiter gets the value, the second gets what is left (None). */
    assert_string_equal(fx->log, "a=0 b=0 A=5 B=0 ");
    zt_deferred_unref(&inner);
    zt_deferred_unref(&a);
    zt_deferred_unref(&b);
}

static void
test_deferred_callback_on_waiting_deferred_returns_ealready(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_callback(outer, zt_ok_int(0));
    assert_int_equal(zt_deferred_callback(outer, s_tracked(fx, 1)), ZT_EALREADY);
    assert_int_equal(fx->frees, 1);
    zt_deferred_callback(inner, zt_ok_int(2));
    zt_deferred_unref(&outer);
    zt_deferred_unref(&inner);
}

static zt_result_t
s_wait_null(zt_result_t r, void *arg)
{
    (void)arg;
    zt_result_release(&r);
    return zt_wait_for(NULL); /* as from zt_wait_for(zt_deferred_new()) out of memory */
}

static void
test_deferred_wait_for_null_becomes_out_of_memory_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_wait_null, NULL);
    zt_deferred_callback(d, zt_ok_int(0));
    assert_int_equal(zt_failure_code(zt_result_failure(*zt_deferred_peek(d))), ZT_ENOMEM);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d);
}

static void
test_deferred_waiting_outer_survives_after_every_reference_is_dropped(void **state)
{
    fx_t *fx = *state;
    /* The producer pattern: the consumer drops its reference at once, the producer after firing;
     * the outer Deferred waits on inner and must still finish its chain when inner fires. */
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_add_callback(outer, s_return_tracked, STEP_N("last", 3));
    zt_deferred_add_callback(outer, s_log, STEP("end"));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_unref(&outer);
    zt_deferred_callback(inner, zt_ok_int(1));
    assert_string_equal(fx->log, "w=0 last=1 end=obj3 ");
    assert_int_equal(fx->frees, 1); /* outer was freed when its chain ended */
    zt_deferred_unref(&inner);
}

/* ---------------------------------------------------------------------------------------------
 * A million-deep chain on a small stack */

/* s_wait without the log: a million log entries would only measure strlen. */
static zt_result_t
s_wait_quiet(zt_result_t r, void *arg)
{
    step_t *step = arg;
    zt_result_release(&r);
    return zt_wait_for(zt_deferred_ref(step->other));
}

typedef struct {
    fx_t *fx;
    size_t n;           /* how many Deferreds */
    zt_deferred_t **ds; /* Owned array; ds[i] waits on ds[i + 1] */
    step_t *steps;      /* Owned: step i's other is ds[i + 1] */
    intptr_t result;    /* what the outermost chain ended with */
    bool done;          /* the thread finished */
} deep_t;

static void *
s_deep_thread(void *arg)
{
    deep_t *deep = arg;
    for (size_t i = 0; i < deep->n; i++)
        deep->ds[i] = zt_deferred_new();
    for (size_t i = 0; i + 1 < deep->n; i++) {
        deep->steps[i] = (step_t){.fx = deep->fx, .name = "", .other = deep->ds[i + 1]};
        zt_deferred_add_callback(deep->ds[i], s_wait_quiet, &deep->steps[i]);
    }
    zt_deferred_add_callback(deep->ds[0], s_add, &(step_t){.fx = deep->fx, .name = "", .n = 1});
    /* Fire outermost first: each fire makes ds[i] wait on ds[i + 1]. */
    for (size_t i = 0; i + 1 < deep->n; i++)
        zt_deferred_callback(deep->ds[i], zt_ok_int(0));
    /* Firing the innermost pushes its result up a million waiting Deferreds. */
    zt_deferred_callback(deep->ds[deep->n - 1], zt_ok_int(41));
    const zt_result_t *r = zt_deferred_peek(deep->ds[0]);
    deep->result = r ? zt_result_int(*r) : -1;
    /* Drop references outermost first, then in one go from the inside: both free iteratively. */
    for (size_t i = 0; i < deep->n; i++)
        zt_deferred_unref(&deep->ds[i]);
    deep->done = true;
    return NULL;
}

static void
test_deferred_million_deep_chain_fires_on_256k_stack(void **state)
{
    fx_t *fx = *state;
    deep_t deep = {.fx = fx, .n = 1000000};
    deep.ds = calloc(deep.n, sizeof *deep.ds);
    deep.steps = calloc(deep.n, sizeof *deep.steps);
    assert_non_null(deep.ds);
    assert_non_null(deep.steps);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, &attr, s_deep_thread, &deep), 0);
    pthread_join(thread, NULL);
    pthread_attr_destroy(&attr);
    assert_true(deep.done);
    assert_int_equal(deep.result, 42);
    free(deep.ds);
    free(deep.steps);
}

static void *
s_deep_drop_thread(void *arg)
{
    deep_t *deep = arg;
    /* A million Deferreds each chained to the next with chain_deferred, never fired: dropping
     * the head frees the whole line without recursion. */
    zt_deferred_t *head = zt_deferred_new();
    zt_deferred_t *prev = zt_deferred_ref(head);
    for (size_t i = 1; i < deep->n; i++) {
        zt_deferred_t *next = zt_deferred_new();
        zt_deferred_chain_deferred(prev, next);
        zt_deferred_unref(&prev);
        prev = next;
    }
    zt_deferred_unref(&prev);
    zt_deferred_unref(&head);
    deep->done = true;
    return NULL;
}

static void
test_deferred_million_chained_unfired_free_on_256k_stack(void **state)
{
    fx_t *fx = *state;
    deep_t deep = {.fx = fx, .n = 1000000};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, &attr, s_deep_drop_thread, &deep), 0);
    pthread_join(thread, NULL);
    pthread_attr_destroy(&attr);
    assert_true(deep.done);
}

/* ---------------------------------------------------------------------------------------------
 * chain_deferred */

static void
test_deferred_chain_deferred_passes_value_and_leaves_none(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_t *other = zt_deferred_new();
    zt_deferred_add_callback(other, s_log, STEP("other"));
    assert_int_equal(zt_deferred_chain_deferred(d, other), 0);
    zt_deferred_add_callback(d, s_log, STEP("d"));
    zt_deferred_callback(d, s_tracked(fx, 6));
    assert_string_equal(fx->log, "other=obj6 d=0 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 0);
    zt_deferred_unref(&other);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_chain_deferred_passes_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_t *other = zt_deferred_new();
    zt_deferred_chain_deferred(d, other);
    zt_deferred_add_both(d, s_log, STEP("d"));
    zt_deferred_errback(d, zt_failure_new(ZT_CANCELLED_ERROR, NULL));
    assert_string_equal(fx->log, "d=0 ");
    zt_deferred_add_errback(other, s_recover, STEP("other"));
    assert_string_equal(fx->log, "d=0 other=!CancelledError ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&other);
    assert_int_equal(fx->unhandled.count, 0);
}

static void
test_deferred_chain_deferred_to_self_returns_einval(void **state)
{
    (void)state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_chain_deferred(d, d), ZT_EINVAL);
    zt_deferred_unref(&d);
}

static void
test_deferred_chain_deferred_to_fired_deferred_fails_with_already_called(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_t *other = zt_deferred_succeed(zt_ok_int(1));
    zt_deferred_chain_deferred(d, other);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_callback(d, s_tracked(fx, 2));
    assert_string_equal(fx->log, "e=!AlreadyCalledError ");
    assert_int_equal(fx->frees, 1); /* the value other refused */
    zt_deferred_unref(&d);
    zt_deferred_unref(&other);
}

static void
test_deferred_chain_deferred_on_fired_deferred_fires_other_at_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(zt_ok_int(3));
    zt_deferred_t *other = zt_deferred_new();
    zt_deferred_chain_deferred(d, other);
    assert_true(zt_deferred_is_called(other));
    assert_string_equal(s_peek(fx, other), "x=3 ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&other);
}

static void
test_deferred_chain_deferred_unfired_drops_its_reference_to_other(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_t *other = zt_deferred_new();
    zt_deferred_chain_deferred(d, other);
    zt_deferred_unref(&other); /* d still holds one */
    zt_deferred_unref(&d);     /* LSan: other is freed with d's pending link */
    assert_int_equal(fx->unhandled.count, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_deferred_wait_for_unfired_inner_pauses_outer_until_inner_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_paused_inner_blocks_outer_until_unpaused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_wait_for_fired_inner_takes_its_result_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_async_implicit_chain_moves_result_and_leaves_none, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_sync_implicit_error_chain_moves_failure_and_is_not_reported, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_async_implicit_error_chain_moves_failure_to_outer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_inner_failure_reported_once_by_outer_only,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_chaining_is_transitive, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_nested_async_chained_deferreds_continue_outer_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_nested_async_chain_with_extra_inner_callbacks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_chained_paused_deferred_with_result_waits_for_unpause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_paused_outer_does_not_stop_inner_callbacks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_added_to_middle_runs_after_innermost_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_paused_waiter_holds_inner_links_after_its_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_callback_order_preserved_across_inner_chain,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_several_outers_waiting_on_one_inner_first_takes_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_callback_on_waiting_deferred_returns_ealready,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_wait_for_null_becomes_out_of_memory_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_waiting_outer_survives_after_every_reference_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_million_deep_chain_fires_on_256k_stack, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_million_chained_unfired_free_on_256k_stack,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_chain_deferred_passes_value_and_leaves_none,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_chain_deferred_passes_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_chain_deferred_to_self_returns_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_chain_deferred_to_fired_deferred_fails_with_already_called, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_chain_deferred_on_fired_deferred_fires_other_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_chain_deferred_unfired_drops_its_reference_to_other, setup, teardown),
    };
    return cmocka_run_group_tests_name("deferred_chaining", tests, NULL, NULL);
}
