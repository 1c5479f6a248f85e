/*  tests/futures/test_deferred.c - Deferred, case by case after Twisted's test_defer.py
 *
 *  Links record what they see in the fixture's log ("a=1 b=!CancelledError "), so each test states
 * the exact order of the chain. Values handed to Deferreds are tracked: each is freed through a
 * counting free function, so ASan and the counts together show that every value is freed exactly
 * once wherever its chain ends. Unhandled failures go to a counting handler.  */
#include <ztwist.h>

#include <ztwist/test_clock.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct {
    char log[2048];           /* what the links saw, in order */
    int frees;                /* tracked values freed */
    int unhandled;            /* unhandled failures reported to the handler */
    char unhandled_text[256]; /* the last one, as zt_failure_format writes it */
    int canceller_calls;      /* calls of s_canceller_* */
    zt_deferred_t *cancelled; /* the Deferred the last canceller got; Borrowed */
    void *canceller_arg;      /* the arg the last canceller got */
    zt_test_clock_t *clock;   /* the test clock for timeouts */
    int log_lines;            /* messages logged at ZT_LOG_ERROR (default handler test) */
    char log_text[1024];      /* the last of them */
    char peek[128];           /* s_peek's answer */
} fx_t;

/* A link's arg: where to record, its name, and what it needs for its action. */
typedef struct step {
    fx_t *fx;             /* Borrowed: the fixture */
    const char *name;     /* recorded in the log */
    intptr_t n;           /* the value to add or to recover with */
    zt_deferred_t *other; /* Borrowed: the Deferred to wait for or fire */
    struct step *extra;   /* Borrowed: the arg of a link this link adds */
} step_t;

#define STEP(name_) (&(step_t){.fx = fx, .name = (name_)})
#define STEP_N(name_, n_) (&(step_t){.fx = fx, .name = (name_), .n = (n_)})
#define STEP_D(name_, d_) (&(step_t){.fx = fx, .name = (name_), .other = (d_)})

static void
s_note(fx_t *fx, const char *fmt, ...)
{
    size_t len = strlen(fx->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fx->log + len, sizeof fx->log - len, fmt, ap);
    va_end(ap);
}

/* Record "name=value " or "name=!Type " for the result a link receives. */
static void
s_note_result(step_t *step, zt_result_t r)
{
    if (zt_is_err(r))
        s_note(step->fx, "%s=!%s ", step->name, zt_failure_type(zt_result_failure(r))->name);
    else if (r.free_fn)
        s_note(step->fx, "%s=obj%d ", step->name, (int)*(intptr_t *)zt_result_ptr(r));
    else
        s_note(step->fx, "%s=%d ", step->name, (int)zt_result_int(r));
}

/* A tracked value: an allocated integer whose free is counted. */
typedef struct {
    intptr_t value; /* first, so a link can read it as an intptr_t */
    int *frees;     /* Borrowed: the fixture's counter */
} tracked_t;

static void
s_tracked_free(void *value)
{
    tracked_t *t = value;
    (*t->frees)++;
    free(t);
}

static zt_result_t
s_tracked(fx_t *fx, intptr_t value)
{
    tracked_t *t = malloc(sizeof *t);
    assert_non_null(t);
    *t = (tracked_t){.value = value, .frees = &fx->frees};
    return zt_ok(t, s_tracked_free);
}

/* Links. Each records what it got, then acts. */
static zt_result_t
s_log(zt_result_t r, void *arg)
{
    s_note_result(arg, r);
    return r;
}

static zt_result_t
s_add(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    intptr_t n = zt_result_int(r);
    zt_result_release(&r);
    return zt_ok_int(n + step->n);
}

static zt_result_t
s_fail(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_result_release(&r);
    return zt_err(zt_failure_new(ZT_ERROR, "%s failed", step->name));
}

static zt_result_t
s_recover(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_result_release(&r);
    return zt_ok_int(step->n);
}

static zt_result_t
s_wait(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_result_release(&r);
    return zt_wait_for(zt_deferred_ref(step->other));
}

static zt_result_t
s_return_tracked(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_result_release(&r);
    return s_tracked(step->fx, step->n);
}

static void
s_on_unhandled(const zt_failure_t *failure, void *arg)
{
    fx_t *fx = arg;
    fx->unhandled++;
    zt_failure_format(failure, fx->unhandled_text, sizeof fx->unhandled_text);
}

static void
s_on_log(zt_log_level_t level, const char *file, int line, const char *func, const char *message,
         void *arg)
{
    (void)file;
    (void)line;
    (void)func;
    fx_t *fx = arg;
    if (level == ZT_LOG_ERROR) {
        fx->log_lines++;
        snprintf(fx->log_text, sizeof fx->log_text, "%s", message);
    }
}

static int
setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->clock = zt_test_clock_new();
    zt_deferred_set_unhandled_handler(s_on_unhandled, fx);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fx_t *fx = *state;
    zt_deferred_set_unhandled_handler(NULL, NULL);
    zt_test_clock_destroy(&fx->clock);
    free(fx);
    return 0;
}

/* The result at the end of d's chain, as the log writes it ("x=5 "). */
static const char *
s_peek(fx_t *fx, zt_deferred_t *d)
{
    const zt_result_t *r = zt_deferred_peek(d);
    if (!r)
        return "none";
    char *saved = strdup(fx->log);
    fx->log[0] = '\0';
    s_note_result(&(step_t){.fx = fx, .name = "x"}, *r);
    memcpy(fx->peek, fx->log, sizeof fx->peek);
    fx->peek[sizeof fx->peek - 1] = '\0';
    memcpy(fx->log, saved, strlen(saved) + 1);
    free(saved);
    return fx->peek;
}

/* ---------------------------------------------------------------------------------------------
 * Firing and the callback/errback paths */

static void
test_deferred_callback_runs_callbacks_in_order_passing_results(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_false(zt_deferred_is_called(d));
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("a", 1)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("b", 10)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_log, STEP("c")), 0);
    assert_string_equal(fx->log, "");
    assert_int_equal(zt_deferred_callback(d, zt_ok_int(5)), 0);
    assert_true(zt_deferred_is_called(d));
    assert_string_equal(fx->log, "a=5 b=6 c=16 ");
    assert_string_equal(s_peek(fx, d), "x=16 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_errback_runs_errbacks_and_skips_callbacks(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_log, STEP("cb"));
    zt_deferred_add_errback(d, s_log, STEP("eb1"));
    zt_deferred_add_callback(d, s_log, STEP("cb2"));
    zt_deferred_add_errback(d, s_recover, STEP_N("eb2", 7));
    zt_deferred_add_errback(d, s_log, STEP("eb3"));
    zt_deferred_add_callback(d, s_log, STEP("cb3"));
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_TIMEOUT_ERROR, "slow")), 0);
    assert_string_equal(fx->log, "eb1=!TimeoutError eb2=!TimeoutError cb3=7 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 0);
}

static void
test_deferred_callback_skips_errbacks(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_log, STEP("eb"));
    zt_deferred_add_callback(d, s_log, STEP("cb"));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "cb=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_returning_failure_switches_to_errback_path(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_fail, STEP("a"));
    zt_deferred_add_callback(d, s_log, STEP("b"));
    zt_deferred_add_errback(d, s_recover, STEP_N("c", 3));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "a=1 c=!Error ");
    assert_string_equal(s_peek(fx, d), "x=3 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 0);
}

static void
test_deferred_errback_returning_value_recovers_to_callback_path(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP_N("e", 42));
    zt_deferred_add_errback(d, s_log, STEP("skipped"));
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "x"));
    assert_string_equal(fx->log, "e=!Error c=42 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_add_callbacks_errback_never_sees_own_callback_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callbacks(d, s_fail, s_log, STEP("pair"));
    zt_deferred_add_callbacks(d, s_log, s_recover, STEP_N("next", 9));
    zt_deferred_callback(d, zt_ok_int(1));
    /* The pair's errback does not run; the failure goes to the next pair's errback. */
    assert_string_equal(fx->log, "pair=1 next=!Error ");
    assert_string_equal(s_peek(fx, d), "x=9 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_add_callbacks_runs_errback_half_on_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callbacks(d, s_log, s_recover, STEP_N("p", 4));
    zt_deferred_add_callbacks(d, s_add, s_log, STEP_N("q", 1));
    zt_deferred_errback(d, zt_failure_new(ZT_CANCELLED_ERROR, NULL));
    assert_string_equal(fx->log, "p=!CancelledError q=4 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_add_both_runs_for_value_and_for_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *ok = zt_deferred_new();
    zt_deferred_t *bad = zt_deferred_new();
    zt_deferred_add_both(ok, s_log, STEP("ok"));
    zt_deferred_add_both(bad, s_recover, STEP_N("bad", 0));
    zt_deferred_callback(ok, zt_ok_int(2));
    zt_deferred_errback(bad, zt_failure_new(ZT_ERROR, "e"));
    assert_string_equal(fx->log, "ok=2 bad=!Error ");
    zt_deferred_unref(&ok);
    zt_deferred_unref(&bad);
}

static void
test_deferred_add_with_no_function_returns_einval(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_callbacks(d, NULL, NULL, NULL), ZT_EINVAL);
    assert_int_equal(zt_deferred_add_callback(d, NULL, NULL), ZT_EINVAL);
    assert_int_equal(zt_deferred_add_errback(d, NULL, NULL), ZT_EINVAL);
    assert_int_equal(zt_deferred_add_both(d, NULL, NULL), ZT_EINVAL);
    zt_deferred_add_callback(d, s_log, STEP("only"));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "only=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_link_added_after_fire_runs_before_add_returns(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_callback(d, zt_ok_int(8));
    assert_string_equal(fx->log, "");
    zt_deferred_add_callback(d, s_add, STEP_N("late", 1));
    assert_string_equal(fx->log, "late=8 ");
    zt_deferred_add_errback(d, s_log, STEP("eb"));
    zt_deferred_add_callback(d, s_log, STEP("later"));
    assert_string_equal(fx->log, "late=8 later=9 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_with_failure_result_takes_errback_path(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callbacks(d, s_log, s_recover, STEP("p"));
    assert_int_equal(zt_deferred_callback(d, zt_err(zt_failure_new(ZT_TIMEOUT_ERROR, "t"))), 0);
    assert_string_equal(fx->log, "p=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_arg_reaches_every_link(void **state)
{
    fx_t *fx = *state;
    step_t shared = {.fx = fx, .name = "s", .n = 2};
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_add, &shared);
    zt_deferred_add_callbacks(d, s_add, s_log, &shared);
    zt_deferred_add_both(d, s_log, &shared);
    zt_deferred_callback(d, zt_ok_int(0));
    assert_string_equal(fx->log, "s=0 s=2 s=4 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_peek_is_null_before_fire_and_shows_result_after(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_null(zt_deferred_peek(d));
    zt_deferred_callback(d, zt_ok_int(3));
    assert_non_null(zt_deferred_peek(d));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 3);
    zt_deferred_add_callback(d, s_fail, STEP("f"));
    assert_true(zt_is_err(*zt_deferred_peek(d)));
    zt_deferred_add_errback(d, s_recover, STEP_N("r", 1));
    zt_deferred_unref(&d);
}

static void
test_deferred_many_links_grow_storage_and_keep_order(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t step = {.fx = fx, .name = "i", .n = 1};
    for (int i = 0; i < 1000; i++) {
        if (i % 3 == 0)
            zt_deferred_add_callbacks(d, s_add, s_log, &step); /* a two-slot pair */
        else
            zt_deferred_add_callback(d, s_add, &step);
    }
    zt_deferred_callback(d, zt_ok_int(0));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 1000);
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * Firing twice */

static void
test_deferred_callback_twice_returns_ealready_and_frees_second_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 1)), 0);
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 2)), ZT_EALREADY);
    assert_int_equal(fx->frees, 1);                /* the rejected value */
    assert_string_equal(s_peek(fx, d), "x=obj1 "); /* nothing changed */
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 2);
}

static void
test_deferred_errback_after_callback_returns_ealready(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_callback(d, zt_ok_int(1));
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "late")), ZT_EALREADY);
    assert_string_equal(s_peek(fx, d), "x=1 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 0); /* the rejected failure is freed, not reported */
}

static void
test_deferred_errback_twice_returns_ealready(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_errback(d, zt_failure_new(ZT_TIMEOUT_ERROR, "first"));
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "second")), ZT_EALREADY);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_after_errback_returns_ealready(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "first"));
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 5)), ZT_EALREADY);
    assert_int_equal(fx->frees, 1);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 0);
}

static void
test_deferred_callback_with_wait_for_returns_einval_and_releases_it(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_t *other = zt_deferred_new();
    assert_int_equal(zt_deferred_callback(d, zt_wait_for(zt_deferred_ref(other))), ZT_EINVAL);
    assert_false(zt_deferred_is_called(d));
    assert_int_equal(zt_deferred_callback(d, zt_ok_int(1)), 0);
    assert_string_equal(s_peek(fx, d), "x=1 ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&other); /* LSan: the reference given to zt_wait_for was dropped */
}

static void
test_deferred_errback_null_becomes_out_of_memory_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_errback(d, NULL);
    const zt_result_t *r = zt_deferred_peek(d);
    assert_true(zt_is_err(*r));
    assert_int_equal(zt_failure_code(zt_result_failure(*r)), ZT_ENOMEM);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_returning_null_failure_becomes_out_of_memory(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_recover, STEP("c"));
    zt_deferred_callback(d, zt_err(NULL));
    assert_int_equal(zt_failure_code(zt_result_failure(*zt_deferred_peek(d))), ZT_ENOMEM);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * Re-entrancy: links added while the chain runs */

static zt_result_t
s_add_link_to_other(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_deferred_add_callback(step->other, s_log, step->extra);
    s_note(step->fx, "%s-returns ", step->name);
    return r;
}

static void
test_deferred_callback_added_during_callback_runs_at_end_of_chain(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t added = {.fx = fx, .name = "added"};
    zt_deferred_add_callback(d, s_add_link_to_other,
                             &(step_t){.fx = fx, .name = "one", .other = d, .extra = &added});
    zt_deferred_add_callback(d, s_log, STEP("two"));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "one=1 one-returns two=1 added=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_callback_added_during_callback_is_not_run_nested(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t added = {.fx = fx, .name = "added"};
    zt_deferred_add_callback(d, s_add_link_to_other,
                             &(step_t){.fx = fx, .name = "one", .other = d, .extra = &added});
    zt_deferred_callback(d, zt_ok_int(1));
    /* "added" comes after "one-returns": it ran after the callback that added it returned. */
    assert_string_equal(fx->log, "one=1 one-returns added=1 ");
    zt_deferred_unref(&d);
}

static zt_result_t
s_add_failing_link(zt_result_t r, void *arg)
{
    step_t *step = arg;
    zt_deferred_add_callback(step->other, s_fail, step->extra);
    return r;
}

static void
test_deferred_failure_from_link_added_during_callback_reaches_errback(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t inner = {.fx = fx, .name = "inner"};
    zt_deferred_add_callback(d, s_add_failing_link,
                             &(step_t){.fx = fx, .name = "one", .other = d, .extra = &inner});
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "inner=1 ");
    assert_true(zt_is_err(*zt_deferred_peek(d)));
    zt_deferred_add_errback(d, s_log, STEP("e"));
    zt_deferred_add_errback(d, s_recover, STEP("r"));
    assert_string_equal(fx->log, "inner=1 e=!Error r=!Error ");
    zt_deferred_unref(&d);
}

static zt_result_t
s_fire_other(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note(step->fx, "%s-fires ", step->name);
    zt_deferred_callback(step->other, zt_ok_int(step->n));
    s_note(step->fx, "%s-fired ", step->name);
    return r;
}

static void
test_deferred_callback_firing_another_deferred_runs_that_chain_at_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *a = zt_deferred_new();
    zt_deferred_t *b = zt_deferred_new();
    zt_deferred_add_callback(b, s_log, STEP("b"));
    zt_deferred_add_callback(a, s_fire_other, &(step_t){.fx = fx, .name = "a", .other = b, .n = 7});
    zt_deferred_add_callback(a, s_log, STEP("a2"));
    zt_deferred_callback(a, zt_ok_int(1));
    assert_string_equal(fx->log, "a-fires b=7 a-fired a2=1 ");
    zt_deferred_unref(&a);
    zt_deferred_unref(&b);
}

/* ---------------------------------------------------------------------------------------------
 * pause / unpause */

static void
test_deferred_paused_failure_runs_errback_only_after_unpause(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "fail"));
    zt_deferred_pause(d);
    assert_true(zt_deferred_is_paused(d));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "");
    zt_deferred_unpause(d);
    assert_false(zt_deferred_is_paused(d));
    assert_string_equal(fx->log, "e=!Error ");
    zt_deferred_unref(&d);
}

static void
test_deferred_unpause_before_fire_runs_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "");
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unref(&d);
}

/* The first link lives inside the Deferred; links added after the fire reuse that place once
 * it has run, and each still runs once, in order. */
static void
test_deferred_callbacks_added_one_by_one_after_fire_each_run_once_in_order(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_callback(d, zt_ok_int(1)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("a", 1)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("b", 2)), 0);
    assert_int_equal(zt_deferred_add_callback(d, s_add, STEP_N("c", 3)), 0);
    assert_string_equal(fx->log, "a=1 b=2 c=4 ");
    assert_string_equal(s_peek(fx, d), "x=7 ");
    zt_deferred_unref(&d);
}

/* A callback/errback pair added after one pending link moves both out of the Deferred; the pair's
 * two halves stay together, so the errback gets the failure and the callback does not. */
static void
test_deferred_pair_after_one_pending_link_keeps_pair_together(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_callback(d, s_log, STEP("a")), 0);
    assert_int_equal(zt_deferred_add_callbacks(d, s_add, s_recover, STEP_N("p", 9)), 0);
    assert_int_equal(zt_deferred_add_both(d, s_log, STEP("c")), 0);
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "boom")), 0);
    assert_string_equal(fx->log, "p=!Error c=9 ");
    assert_string_equal(s_peek(fx, d), "x=9 ");
    zt_deferred_unref(&d);
}

/* A Deferred whose one link is still pending gets a waiter (its link moves out of the Deferred to
 * make room): its own link runs first, then the waiter resumes with that link's result. */
static void
test_deferred_waiter_on_deferred_with_one_pending_link_resumes_after_that_link(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *outer = zt_deferred_new();
    assert_int_equal(zt_deferred_add_callback(inner, s_add, STEP_N("i", 1)), 0);
    assert_int_equal(zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner)), 0);
    assert_int_equal(zt_deferred_add_callback(outer, s_log, STEP("o")), 0);
    assert_int_equal(zt_deferred_callback(outer, zt_ok_int(0)), 0);
    assert_true(zt_deferred_is_paused(outer));
    assert_int_equal(zt_deferred_callback(inner, zt_ok_int(10)), 0);
    assert_string_equal(fx->log, "w=0 i=10 o=11 ");
    assert_false(zt_deferred_is_paused(outer));
    zt_deferred_unref(&inner);
    zt_deferred_unref(&outer);
}

/* Pauses nest up to 65,535 deep (the depth is 16 bits). */
static void
test_deferred_pauses_nest_65535_deep(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    for (int i = 0; i < 65535; i++)
        zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_callback(d, zt_ok_int(1));
    for (int i = 0; i < 65534; i++)
        zt_deferred_unpause(d);
    assert_string_equal(fx->log, "");
    assert_true(zt_deferred_is_paused(d));
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_pauses_nest(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_pause(d);
    zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_callback(d, zt_ok_int(1));
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "");
    assert_true(zt_deferred_is_paused(d));
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_unpause_when_not_paused_does_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_unpause(d); /* no effect, and the count does not go negative */
    zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "");
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unpause(d);
    assert_false(zt_deferred_is_paused(d));
    zt_deferred_unref(&d);
}

static zt_result_t
s_pause_other(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_deferred_pause(step->other);
    return r;
}

static void
test_deferred_pause_inside_callback_holds_only_links_added_later(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_pause_other, STEP_D("p", d));
    zt_deferred_add_callback(d, s_log, STEP("after"));
    zt_deferred_callback(d, zt_ok_int(1));
    /* As Twisted: the pause is seen when the runner starts, not between links of a run. */
    assert_string_equal(fx->log, "p=1 after=1 ");
    assert_true(zt_deferred_is_paused(d));
    zt_deferred_add_callback(d, s_log, STEP("held"));
    assert_string_equal(fx->log, "p=1 after=1 ");
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "p=1 after=1 held=1 ");
    zt_deferred_unref(&d);
}

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
    assert_int_equal(fx->unhandled, 0);
    assert_string_equal(fx->log, "w=0 first=0 ");
    assert_string_equal(s_peek(fx, second), "x=!TimeoutError ");
    zt_deferred_add_errback(second, s_recover, STEP("e"));
    zt_deferred_unref(&second);
    assert_int_equal(fx->unhandled, 0);
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
    assert_int_equal(fx->unhandled, 0);
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
    assert_int_equal(fx->unhandled, 0);
    zt_deferred_unref(&outer);
    assert_int_equal(fx->unhandled, 1);
    assert_string_equal(fx->unhandled_text, "TimeoutError: nobody handles me");
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
    assert_int_equal(fx->unhandled, 0);
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
    assert_int_equal(fx->unhandled, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Cancellation */

static void
s_canceller_count(zt_deferred_t *d, void *arg)
{
    fx_t *fx = arg;
    fx->canceller_calls++;
    fx->cancelled = d;
    fx->canceller_arg = arg;
}

static void
s_canceller_errbacks(zt_deferred_t *d, void *arg)
{
    fx_t *fx = arg;
    fx->canceller_calls++;
    zt_deferred_errback(d, zt_failure_from_code(ZT_ECONNLOST, "stopped"));
}

static void
s_canceller_callbacks(zt_deferred_t *d, void *arg)
{
    fx_t *fx = arg;
    fx->canceller_calls++;
    zt_deferred_callback(d, s_tracked(fx, 77));
}

static void
s_canceller_drops(zt_deferred_t *d, void *arg)
{
    /* The producer gives up its reference from inside the canceller. */
    zt_deferred_t **producer_ref = arg;
    assert_ptr_equal(*producer_ref, d);
    zt_deferred_unref(producer_ref);
}

static void
test_deferred_cancel_without_canceller_fails_with_cancelled_error(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_log, STEP("e"));
    zt_deferred_cancel(d);
    assert_true(zt_deferred_is_called(d));
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 1); /* nobody trapped the CancelledError */
    assert_non_null(strstr(fx->unhandled_text, "CancelledError"));
}

static void
test_deferred_cancel_without_canceller_swallows_one_late_callback(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 1)), 0); /* swallowed */
    assert_int_equal(fx->frees, 1);
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 2)), ZT_EALREADY);
    assert_int_equal(fx->frees, 2);
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_cancel_without_canceller_swallows_one_late_errback(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "late")), 0);
    assert_int_equal(zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "later")), ZT_EALREADY);
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 0); /* swallowed and refused failures are not reported */
}

static void
test_deferred_cancel_twice_without_canceller_fires_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    zt_deferred_cancel(d);
    assert_string_equal(fx->log, "e=!CancelledError ");
    assert_int_equal(zt_deferred_callback(d, zt_ok_int(1)), 0); /* still swallowed once */
    zt_deferred_unref(&d);
}

static void
test_deferred_cancel_with_canceller_that_does_not_fire_then_fire_returns_ealready(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_int_equal(fx->canceller_calls, 1);
    assert_string_equal(fx->log, "e=!CancelledError ");
    /* As Twisted: with a canceller, a late fire is a programming error, not swallowed. */
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 1)), ZT_EALREADY);
    assert_int_equal(fx->frees, 1);
    zt_deferred_unref(&d);
}

static void
test_deferred_canceller_called_once_on_multiple_cancels(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    zt_deferred_cancel(d);
    assert_int_equal(fx->canceller_calls, 1);
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_canceller_receives_deferred_and_arg(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_ptr_equal(fx->cancelled, d);
    assert_ptr_equal(fx->canceller_arg, fx);
    zt_deferred_unref(&d);
}

static void
test_deferred_cancel_after_callback_does_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_callback(d, zt_ok_int(1));
    zt_deferred_cancel(d);
    assert_int_equal(fx->canceller_calls, 0);
    assert_string_equal(s_peek(fx, d), "x=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_cancel_after_errback_does_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_errback(d, zt_failure_new(ZT_TIMEOUT_ERROR, "t"));
    zt_deferred_cancel(d);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_canceller_that_errbacks_keeps_its_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_errbacks, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_int_equal(fx->canceller_calls, 1);
    assert_string_equal(fx->log, "e=!SystemError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_canceller_that_callbacks_keeps_its_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_callbacks, fx);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_cancel(d);
    assert_string_equal(fx->log, "c=obj77 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_cancel_outer_waiting_cancels_inner(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_cancel(outer);
    zt_deferred_add_callbacks(outer, s_log, s_recover, STEP("result"));
    assert_int_equal(fx->canceller_calls, 1);
    assert_ptr_equal(fx->cancelled, inner);
    assert_string_equal(fx->log, "w=0 result=!CancelledError ");
    zt_deferred_unref(&outer);
    zt_deferred_unref(&inner);
}

static void
test_deferred_cancel_forwards_through_several_waiting_levels(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *innermost = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_t *middle = zt_deferred_new();
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(middle, s_wait, STEP_D("m", innermost));
    zt_deferred_add_callback(outer, s_wait, STEP_D("o", middle));
    zt_deferred_callback(middle, zt_ok_int(0));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_add_errback(outer, s_recover, STEP("e"));
    zt_deferred_cancel(outer);
    assert_ptr_equal(fx->cancelled, innermost);
    assert_string_equal(fx->log, "m=0 o=0 e=!CancelledError ");
    zt_deferred_unref(&outer);
    zt_deferred_unref(&middle);
    zt_deferred_unref(&innermost);
}

static void
test_deferred_canceller_dropping_last_reference_is_safe(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *producer = NULL;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_drops, &producer);
    producer = zt_deferred_ref(d);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_null(producer);
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * Timeouts on the test clock (Twisted's addTimeout) */

static void
test_deferred_timeout_result_before_timeout_keeps_result_and_cancels_timer(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock)), 0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 1);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_test_clock_advance(fx->clock, 5);
    zt_deferred_callback(d, zt_ok_int(1));
    assert_string_equal(fx->log, "c=1 ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_false(zt_test_clock_next_due(fx->clock, NULL)); /* the timer was cancelled, not run */
    zt_test_clock_advance(fx->clock, 100);
    assert_string_equal(fx->log, "c=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_failure_before_timeout_keeps_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_errback(d, zt_failure_new(ZT_QUEUE_OVERFLOW, "full"));
    assert_string_equal(fx->log, "e=!QueueOverflow ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_expiry_fails_with_timeout_error_caused_by_cancel(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_test_clock_advance(fx->clock, 9.5);
    assert_false(zt_deferred_is_called(d));
    zt_test_clock_advance(fx->clock, 0.5);
    assert_true(zt_deferred_is_called(d));
    const zt_failure_t *f = zt_result_failure(*zt_deferred_peek(d));
    assert_non_null(f);
    assert_ptr_equal(zt_failure_type(f), ZT_TIMEOUT_ERROR);
    assert_string_equal(zt_failure_message(f), "timed out after 10 seconds");
    assert_int_equal(zt_failure_code(f), ZT_ETIMEDOUT);
    assert_ptr_equal(zt_failure_type(zt_failure_cause(f)), ZT_CANCELLED_ERROR);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 0);
}

static void
test_deferred_timeout_canceller_firing_value_keeps_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_callbacks, fx);
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_test_clock_advance(fx->clock, 10);
    assert_string_equal(fx->log, "c=obj77 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_timeout_canceller_firing_failure_keeps_failure(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_errbacks, fx);
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_test_clock_advance(fx->clock, 10);
    assert_string_equal(fx->log, "e=!SystemError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_cancel_before_timeout_stays_cancelled_error(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_cancel(d);
    assert_string_equal(fx->log, "e=!CancelledError ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_errback_added_before_timeout_sees_cancelled_error(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_log, STEP("before"));
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("after"));
    zt_test_clock_advance(fx->clock, 10);
    assert_string_equal(fx->log, "before=!CancelledError after=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_errback_before_timeout_suppressing_cancel_keeps_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP_N("before", 5));
    zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock));
    zt_deferred_add_callback(d, s_log, STEP("after"));
    zt_test_clock_advance(fx->clock, 10);
    assert_string_equal(fx->log, "before=!CancelledError after=5 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_negative_returns_einval(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_timeout(d, -1, zt_test_clock_clock(fx->clock)), ZT_EINVAL);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_on_fired_deferred_cancels_timer_at_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(zt_ok_int(1));
    assert_int_equal(zt_deferred_add_timeout(d, 10, zt_test_clock_clock(fx->clock)), 0);
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_string_equal(s_peek(fx, d), "x=1 ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_late_fire_after_timeout_is_swallowed(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 1, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_test_clock_advance(fx->clock, 1);
    /* The producer finishes just after the timeout: its fire is eaten once, silently. */
    assert_int_equal(zt_deferred_callback(d, s_tracked(fx, 1)), 0);
    assert_int_equal(fx->frees, 1);
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_timer_keeps_deferred_alive_until_it_fires(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 3, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_unref(&d); /* the timer still holds one */
    zt_test_clock_advance(fx->clock, 3);
    assert_string_equal(fx->log, "e=!TimeoutError ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0);
    assert_int_equal(fx->unhandled, 0);
}

static void
test_deferred_timeout_on_waiting_deferred_cancels_inner(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_wait, STEP_D("w", inner));
    zt_deferred_add_timeout(d, 2, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_callback(d, zt_ok_int(0));
    zt_test_clock_advance(fx->clock, 2);
    assert_ptr_equal(fx->cancelled, inner);
    assert_string_equal(fx->log, "w=0 e=!TimeoutError ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&inner);
}

static void
test_deferred_two_timeouts_shorter_one_wins(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_timeout(d, 5, zt_test_clock_clock(fx->clock));
    zt_deferred_add_timeout(d, 2, zt_test_clock_clock(fx->clock));
    zt_deferred_add_errback(d, s_log, STEP("e"));
    zt_deferred_add_errback(d, s_recover, STEP("r"));
    zt_test_clock_advance(fx->clock, 2);
    assert_string_equal(fx->log, "e=!TimeoutError r=!TimeoutError ");
    assert_int_equal(zt_test_clock_pending(fx->clock), 0); /* the 5 s timer was cancelled */
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * succeed, fail, maybe_deferred */

static void
test_deferred_succeed_is_fired_with_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(s_tracked(fx, 4));
    assert_true(zt_deferred_is_called(d));
    zt_deferred_add_callback(d, s_log, STEP("c"));
    assert_string_equal(fx->log, "c=obj4 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_fail_is_failed_and_null_becomes_out_of_memory(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "fail"));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_t *nomem = zt_deferred_fail(NULL);
    assert_int_equal(zt_failure_code(zt_result_failure(*zt_deferred_peek(nomem))), ZT_ENOMEM);
    zt_deferred_add_errback(nomem, s_recover, STEP("n"));
    assert_string_equal(fx->log, "e=!Error n=!SystemError ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&nomem);
}

static zt_result_t
s_maybe_value(void *arg)
{
    fx_t *fx = arg;
    return s_tracked(fx, 8);
}

static zt_result_t
s_maybe_failure(void *arg)
{
    (void)arg;
    return zt_err(zt_failure_new(ZT_TIMEOUT_ERROR, "sync failure"));
}

static zt_result_t
s_maybe_deferred(void *arg)
{
    zt_deferred_t *d = arg;
    return zt_wait_for(zt_deferred_ref(d));
}

static void
test_maybe_deferred_sync_value_gives_fired_deferred(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_maybe_deferred(s_maybe_value, fx);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    assert_string_equal(fx->log, "c=obj8 ");
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
}

static void
test_maybe_deferred_sync_failure_gives_failed_deferred(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_maybe_deferred(s_maybe_failure, fx);
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_maybe_deferred_returned_deferred_is_passed_through(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *pending = zt_deferred_new();
    zt_deferred_t *d = zt_maybe_deferred(s_maybe_deferred, pending);
    assert_ptr_equal(d, pending);
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_deferred_callback(pending, zt_ok_int(2));
    assert_string_equal(fx->log, "c=2 ");
    zt_deferred_unref(&d);
    zt_deferred_unref(&pending);
}

/* ---------------------------------------------------------------------------------------------
 * Unhandled failures */

static void
test_deferred_unhandled_failure_reported_once_at_last_unref(void **state)
{
    fx_t *fx = *state;
    uint64_t before = zt_deferred_unhandled_count();
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_t *extra = zt_deferred_ref(d);
    zt_deferred_errback(d, zt_failure_new(ZT_QUEUE_UNDERFLOW, "nobody listens"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 0); /* a reference remains */
    zt_deferred_unref(&extra);
    assert_int_equal(fx->unhandled, 1);
    assert_string_equal(fx->unhandled_text, "QueueUnderflow: nobody listens");
    assert_int_equal(zt_deferred_unhandled_count(), before + 1);
}

static void
test_deferred_never_fired_is_not_reported(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_log, STEP("e"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 0);
    assert_string_equal(fx->log, "");
}

static void
test_deferred_handled_failure_is_not_reported(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "handled"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 0);
}

static void
test_deferred_failure_returned_by_last_callback_is_reported(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_fail, STEP("last"));
    zt_deferred_callback(d, zt_ok_int(1));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 1);
    assert_string_equal(fx->unhandled_text, "Error: last failed");
}

static void
test_deferred_failure_cleared_by_chaining_to_unfired_is_not_reported(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *bad = zt_deferred_fail(zt_failure_new(ZT_ERROR, "oh no"));
    zt_deferred_t *good = zt_deferred_new();
    zt_deferred_add_errback(bad, s_wait, STEP_D("w", good));
    zt_deferred_unref(&bad);
    assert_int_equal(fx->unhandled, 0);
    zt_deferred_callback(good, zt_ok_int(1)); /* the waiting chain ends, and frees bad */
    zt_deferred_unref(&good);
    assert_int_equal(fx->unhandled, 0);
}

static void
test_deferred_default_handler_logs_error_with_origin_and_causes(void **state)
{
    fx_t *fx = *state;
    zt_deferred_set_unhandled_handler(NULL, NULL);
    zt_log_set_handler(s_on_log, fx);
    zt_failure_t *cause = zt_failure_from_code(ZT_ECONNLOST, "peer went away");
    zt_failure_t *f = zt_failure_new(ZT_ERROR, "request 7 failed");
    int line = __LINE__ - 1;
    zt_failure_set_cause(f, &cause);
    zt_deferred_t *d = zt_deferred_fail(f);
    zt_deferred_unref(&d);
    zt_log_set_handler(NULL, NULL);
    zt_deferred_set_unhandled_handler(s_on_unhandled, fx);
    assert_int_equal(fx->log_lines, 1);
    char origin[128];
    snprintf(origin, sizeof origin, "Error: request 7 failed (test_deferred.c:%d in %s)", line,
             __func__);
    assert_non_null(strstr(fx->log_text, origin));
    assert_non_null(strstr(fx->log_text, "caused by: SystemError"));
    assert_non_null(strstr(fx->log_text, "peer went away"));
}

/* Run scenario in a child process and return how it ended: the signal, or 0 for a normal exit. */
static int
s_child_signal(void (*scenario)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Silence the child's diagnostics; the parent checks how it ended. */
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        scenario(arg);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void
s_strict_scenario(void *arg)
{
    (void)arg;
    zt_deferred_set_strict(true);
    zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "strict"));
    zt_deferred_unref(&d); /* reported, then abort() */
}

static void
s_lenient_scenario(void *arg)
{
    (void)arg;
    zt_deferred_set_strict(false);
    zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "lenient"));
    zt_deferred_unref(&d);
}

static void
test_deferred_strict_mode_aborts_after_unhandled_failure(void **state)
{
    (void)state;
    assert_int_equal(s_child_signal(s_strict_scenario, NULL), SIGABRT);
    assert_int_equal(s_child_signal(s_lenient_scenario, NULL), 0);
}

static void
s_strict_env_scenario(void *arg)
{
    (void)arg;
    /* A fresh process, so that nothing has set strict mode explicitly: only the environment. */
    setenv("ZTWIST_STRICT", "1", 1);
    execl("/proc/self/exe", "test_futures_deferred", "--strict-env-child", (char *)NULL);
    _exit(4);
}

static void
test_deferred_strict_env_variable_aborts_after_unhandled_failure(void **state)
{
    (void)state;
    assert_int_equal(s_child_signal(s_strict_env_scenario, NULL), SIGABRT);
}

/* ---------------------------------------------------------------------------------------------
 * Lifetime and ownership */

static zt_result_t
s_unref_self(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_deferred_unref(&step->other); /* the last reference, from inside its own callback */
    return r;
}

static void
test_deferred_unref_inside_own_callback_frees_after_chain_stops(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t step = {.fx = fx, .name = "self", .other = d};
    zt_deferred_add_callback(d, s_unref_self, &step);
    zt_deferred_add_callback(d, s_log, STEP("still"));
    zt_deferred_t *firer = d; /* borrowed by the code that fires it */
    d = NULL;
    zt_deferred_callback(firer, s_tracked(fx, 3));
    assert_null(step.other);
    assert_string_equal(fx->log, "self=obj3 still=obj3 ");
    assert_int_equal(fx->frees, 1); /* freed when the chain stopped */
}

static void
test_deferred_unref_null_does_nothing(void **state)
{
    (void)state;
    zt_deferred_unref(NULL);
    zt_deferred_t *d = NULL;
    zt_deferred_unref(&d);
    assert_null(d);
}

static void
test_deferred_ref_keeps_it_alive_until_last_unref(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(s_tracked(fx, 1));
    zt_deferred_t *second = zt_deferred_ref(d);
    assert_ptr_equal(second, d);
    zt_deferred_unref(&d);
    assert_null(d);
    assert_int_equal(fx->frees, 0);
    zt_deferred_unref(&second);
    assert_int_equal(fx->frees, 1);
}

static void
test_deferred_value_replaced_by_callback_is_freed_by_that_callback(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_return_tracked, STEP_N("a", 2));
    zt_deferred_add_callback(d, s_return_tracked, STEP_N("b", 3));
    zt_deferred_callback(d, s_tracked(fx, 1));
    assert_int_equal(fx->frees, 2); /* obj1 and obj2 were released by the callbacks */
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 3);
}

static void
test_deferred_pending_value_freed_once_at_last_unref(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_pause(d);
    zt_deferred_add_callback(d, s_log, STEP("never"));
    zt_deferred_callback(d, s_tracked(fx, 1));
    zt_deferred_unref(&d);
    assert_int_equal(fx->frees, 1);
    assert_string_equal(fx->log, "");
}

static void
test_deferred_value_passed_up_waiting_chain_freed_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_callback(outer, s_tracked(fx, 1)); /* released by s_wait */
    zt_deferred_callback(inner, s_tracked(fx, 2)); /* moves to outer */
    assert_int_equal(fx->frees, 1);
    zt_deferred_unref(&inner);
    assert_int_equal(fx->frees, 1);
    zt_deferred_unref(&outer);
    assert_int_equal(fx->frees, 2);
}

static void
test_deferred_unfired_with_links_frees_without_touching_args(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t *heap_step = malloc(sizeof *heap_step);
    *heap_step = (step_t){.fx = fx, .name = "h"};
    zt_deferred_add_callbacks(d, s_log, s_log, heap_step);
    zt_deferred_add_callback(d, s_log, heap_step);
    zt_deferred_unref(&d);
    assert_string_equal(heap_step->name, "h"); /* still ours */
    free(heap_step);
    assert_string_equal(fx->log, "");
}

static void
test_deferred_succeed_with_failure_is_failed(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(zt_err(zt_failure_new(ZT_CANCELLED_ERROR, NULL)));
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    assert_string_equal(fx->log, "e=!CancelledError ");
    zt_deferred_unref(&d);
}

/* ---------------------------------------------------------------------------------------------
 * Abandoned wait chains: freed when nothing outside the chain can reach them (LSan checks) */

static void
test_deferred_abandoned_wait_on_unfired_is_freed_and_not_reported(void **state)
{
    fx_t *fx = *state;
    /* Twisted's test_errorClearedByChaining: bad's errback chains it to good, which nobody fires.
     */
    zt_deferred_t *bad = zt_deferred_fail(zt_failure_new(ZT_ERROR, "oh no"));
    zt_deferred_t *good = zt_deferred_new();
    zt_deferred_add_errback(bad, s_wait, STEP_D("w", good));
    zt_deferred_add_callback(bad, s_log, STEP("never"));
    zt_deferred_unref(&good);
    zt_deferred_unref(&bad); /* bad and good only hold each other now */
    assert_string_equal(fx->log, "w=!Error ");
    assert_int_equal(fx->unhandled, 0);
}

static void
test_deferred_abandoned_chain_of_three_is_freed_in_any_drop_order(void **state)
{
    fx_t *fx = *state;
    for (int order = 0; order < 2; order++) {
        zt_deferred_t *c = zt_deferred_succeed(s_tracked(fx, 1));
        zt_deferred_pause(c); /* has a result, but nobody can unpause it once dropped */
        zt_deferred_t *b = zt_deferred_new();
        zt_deferred_t *a = zt_deferred_new();
        zt_deferred_add_callback(b, s_wait, STEP_D("b", c));
        zt_deferred_add_callback(a, s_wait, STEP_D("a", b));
        zt_deferred_callback(b, zt_ok_int(0));
        zt_deferred_callback(a, zt_ok_int(0));
        if (order == 0) {
            zt_deferred_unref(&a);
            zt_deferred_unref(&b);
            assert_int_equal(fx->frees, 0);
            zt_deferred_unref(&c);
        } else {
            zt_deferred_unref(&c);
            zt_deferred_unref(&b);
            assert_int_equal(fx->frees, 1); /* the first round's */
            zt_deferred_unref(&a);
        }
        assert_int_equal(fx->frees, order + 1); /* the value c held, freed with the chain */
    }
}

static void
test_deferred_abandoned_two_waiters_on_one_deferred_are_freed_together(void **state)
{
    fx_t *fx = *state;
    /* a and b both wait on inner, which waits on a paused c holding a value: a graph, not a
     * chain. Once the last outside reference goes nothing can run it, and all four are freed. */
    zt_deferred_t *c = zt_deferred_succeed(s_tracked(fx, 1));
    zt_deferred_pause(c);
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_add_callback(inner, s_wait, STEP_D("i", c));
    zt_deferred_callback(inner, zt_ok_int(0));
    zt_deferred_t *a = zt_deferred_new();
    zt_deferred_t *b = zt_deferred_new();
    zt_deferred_add_callback(a, s_wait, STEP_D("a", inner));
    zt_deferred_add_callback(b, s_wait, STEP_D("b", inner));
    zt_deferred_callback(a, zt_ok_int(0));
    zt_deferred_callback(b, zt_ok_int(0));
    zt_deferred_unref(&c);
    zt_deferred_unref(&inner);
    zt_deferred_unref(&a);
    assert_int_equal(fx->frees, 0); /* b is still held, and through it everything */
    zt_deferred_unref(&b);
    assert_int_equal(fx->frees, 1); /* c's value, freed with the whole graph */
}

static void
test_deferred_abandoned_chain_holding_failure_reports_it_once(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_fail(zt_failure_new(ZT_TIMEOUT_ERROR, "held"));
    zt_deferred_pause(inner);
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_unref(&inner);
    assert_int_equal(fx->unhandled, 0);
    zt_deferred_unref(&outer);
    assert_int_equal(fx->unhandled, 1);
    assert_string_equal(fx->unhandled_text, "TimeoutError: held");
}

static void
test_deferred_abandoned_chain_with_pending_timeout_is_kept_until_it_fires(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_add_timeout(inner, 4, zt_test_clock_clock(fx->clock)); /* the timer holds inner */
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_add_errback(outer, s_recover, STEP("e"));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_unref(&inner);
    zt_deferred_unref(&outer);
    zt_test_clock_advance(fx->clock, 4);
    assert_string_equal(fx->log, "w=0 e=!TimeoutError ");
}

static void
test_deferred_wait_chain_reachable_from_producer_is_not_freed(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *inner = zt_deferred_new();
    zt_deferred_t *producer = zt_deferred_ref(inner);
    zt_deferred_t *outer = zt_deferred_new();
    zt_deferred_add_callback(outer, s_wait, STEP_D("w", inner));
    zt_deferred_add_callback(outer, s_log, STEP("end"));
    zt_deferred_callback(outer, zt_ok_int(0));
    zt_deferred_unref(&inner);
    zt_deferred_unref(&outer);
    zt_deferred_callback(producer, zt_ok_int(6));
    assert_string_equal(fx->log, "w=0 end=6 ");
    zt_deferred_unref(&producer);
}

/* ---------------------------------------------------------------------------------------------
 * More edges */

static zt_result_t
s_chain_next_link(zt_result_t r, void *arg)
{
    step_t *step = arg;
    intptr_t n = zt_result_int(r);
    if (n < step->n)
        zt_deferred_add_callback(step->other, s_chain_next_link, step); /* runs after this one */
    return zt_ok_int(n + 1);
}

static void
test_deferred_callbacks_adding_callbacks_run_flat_and_in_order(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    step_t step = {.fx = fx, .name = "n", .n = 100000};
    zt_deferred_add_callback(d, s_chain_next_link, &step);
    step.other = d;
    /* Each link adds the next: 100,000 links run one after another, never nested, while the link
     * storage is compacted and grown under the runner. */
    zt_deferred_callback(d, zt_ok_int(0));
    assert_int_equal(zt_result_int(*zt_deferred_peek(d)), 100001);
    zt_deferred_unref(&d);
}

static zt_result_t
s_cancel_other(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_deferred_cancel(step->other);
    return r;
}

static void
test_deferred_cancel_from_own_callback_does_nothing(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller_count, fx);
    zt_deferred_add_callback(d, s_cancel_other, STEP_D("c", d));
    zt_deferred_add_callback(d, s_log, STEP("after"));
    zt_deferred_callback(d, zt_ok_int(3));
    assert_string_equal(fx->log, "c=3 after=3 ");
    assert_int_equal(fx->canceller_calls, 0);
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_of_zero_fires_on_next_advance(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    assert_int_equal(zt_deferred_add_timeout(d, 0, zt_test_clock_clock(fx->clock)), 0);
    assert_false(zt_deferred_is_called(d)); /* never before add_timeout returns */
    zt_deferred_add_errback(d, s_recover, STEP("e"));
    zt_test_clock_advance(fx->clock, 0);
    assert_string_equal(fx->log, "e=!TimeoutError ");
    zt_deferred_unref(&d);
}

static void
test_deferred_timeout_added_to_paused_fired_deferred_runs_at_unpause(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_succeed(zt_ok_int(2));
    zt_deferred_pause(d);
    zt_deferred_add_timeout(d, 1, zt_test_clock_clock(fx->clock));
    zt_deferred_add_callback(d, s_log, STEP("c"));
    zt_test_clock_advance(fx->clock, 1); /* the cancel finds d fired: nothing happens */
    assert_string_equal(fx->log, "");
    zt_deferred_unpause(d);
    assert_string_equal(fx->log, "c=2 ");
    zt_deferred_unref(&d);
}

typedef struct {
    _Atomic(bool) stop; /* the main thread is done */
    uint64_t last_seen; /* the last count the reader saw */
} count_reader_t;

static void *
s_count_reader(void *arg)
{
    count_reader_t *reader = arg;
    while (!reader->stop)
        reader->last_seen = zt_deferred_unhandled_count();
    reader->last_seen = zt_deferred_unhandled_count();
    return NULL;
}

static void
test_deferred_unhandled_count_is_readable_from_another_thread(void **state)
{
    fx_t *fx = *state;
    count_reader_t reader = {.stop = false};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_count_reader, &reader), 0);
    uint64_t before = zt_deferred_unhandled_count();
    for (int i = 0; i < 100; i++) {
        zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "%d", i));
        zt_deferred_unref(&d);
    }
    reader.stop = true;
    pthread_join(thread, NULL);
    assert_int_equal(fx->unhandled, 100);
    assert_int_equal(reader.last_seen, before + 100);
}

/* ---------------------------------------------------------------------------------------------
 * Deliberate differences from Twisted (see deferred.h) */

static zt_result_t
s_fire_other_then_keep(zt_result_t r, void *arg)
{
    step_t *step = arg;
    zt_result_release(&r);
    zt_deferred_callback(step->other, zt_ok_int(0)); /* its chain waits on the running Deferred */
    return zt_ok_int(9);
}

static void
test_deferred_wait_on_deferred_running_its_callback_gets_no_value(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *running = zt_deferred_new();
    zt_deferred_t *waiter = zt_deferred_new();
    zt_deferred_add_callback(waiter, s_wait, STEP_D("w", running));
    zt_deferred_add_callback(waiter, s_log, STEP("waiter"));
    zt_deferred_add_callback(running, s_fire_other_then_keep, STEP_D("r", waiter));
    zt_deferred_add_callback(running, s_log, STEP("running"));
    zt_deferred_callback(running, s_tracked(fx, 5));
    /* The running callback owns obj5 (it freed it): the waiter takes what running holds, none. */
    assert_string_equal(fx->log, "w=0 waiter=0 running=9 ");
    assert_int_equal(fx->frees, 1);
    zt_deferred_unref(&running);
    zt_deferred_unref(&waiter);
}

static void
test_deferred_paused_failure_is_reported_at_last_unref(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_pause(d);
    zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "held while paused"));
    zt_deferred_unref(&d);
    assert_int_equal(fx->unhandled, 1);
    assert_string_equal(fx->unhandled_text, "Error: held while paused");
}

/* ---------------------------------------------------------------------------------------------
 * Deferreds waiting on each other in a circle (a deadlock in the program) */

static void
test_deferred_cancel_on_waiting_circle_logs_and_returns(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *a = zt_deferred_new();
    zt_deferred_t *b = zt_deferred_new();
    zt_deferred_add_callback(a, s_wait, STEP_D("a", b));
    zt_deferred_add_callback(b, s_wait, STEP_D("b", a));
    zt_deferred_callback(a, zt_ok_int(0)); /* a waits on b */
    zt_deferred_callback(b, zt_ok_int(0)); /* b waits on a: neither can ever fire */
    zt_log_set_handler(s_on_log, fx);
    zt_deferred_cancel(a); /* Twisted recurses until RecursionError; this returns */
    zt_log_set_handler(NULL, NULL);
    assert_int_equal(fx->log_lines, 1);
    assert_non_null(strstr(fx->log_text, "circle"));
    assert_true(zt_deferred_is_paused(a));
    assert_true(zt_deferred_is_paused(b));
    zt_deferred_unref(&a);
    zt_deferred_unref(&b); /* LSan: the abandoned circle is freed */
    assert_int_equal(fx->unhandled, 0);
}

static void
test_deferred_abandoned_circle_of_three_is_freed(void **state)
{
    fx_t *fx = *state;
    zt_deferred_t *d[3];
    for (int i = 0; i < 3; i++)
        d[i] = zt_deferred_new();
    step_t steps[3];
    for (int i = 0; i < 3; i++) {
        steps[i] = (step_t){.fx = fx, .name = "w", .other = d[(i + 1) % 3]};
        zt_deferred_add_callback(d[i], s_wait, &steps[i]);
    }
    for (int i = 0; i < 3; i++)
        zt_deferred_callback(d[i], s_tracked(fx, i)); /* each value is released by s_wait */
    assert_int_equal(fx->frees, 3);
    for (int i = 0; i < 3; i++)
        zt_deferred_unref(&d[i]); /* LSan: freed when the last outside reference goes */
    assert_string_equal(fx->log, "w=obj0 w=obj1 w=obj2 ");
}

#ifndef NDEBUG
typedef struct {
    zt_deferred_t *d; /* Borrowed: created on the main thread */
} foreign_t;

static void *
s_foreign_thread(void *arg)
{
    foreign_t *foreign = arg;
    zt_deferred_callback(foreign->d, zt_ok_int(1)); /* wrong thread: asserts */
    return NULL;
}

static void
s_foreign_scenario(void *arg)
{
    (void)arg;
    foreign_t foreign = {.d = zt_deferred_new()};
    pthread_t thread;
    if (pthread_create(&thread, NULL, s_foreign_thread, &foreign) != 0)
        _exit(5);
    pthread_join(thread, NULL);
}

static void
test_deferred_debug_build_asserts_on_use_from_another_thread(void **state)
{
    (void)state;
    assert_int_equal(s_child_signal(s_foreign_scenario, NULL), SIGABRT);
}
#endif

static zt_result_t
s_return_self(zt_result_t r, void *arg)
{
    zt_result_release(&r);
    return zt_wait_for(zt_deferred_ref(arg));
}

static void
s_return_self_scenario(void *arg)
{
    (void)arg;
    zt_deferred_t *d = zt_deferred_new();
    zt_deferred_add_callback(d, s_return_self, d);
    zt_deferred_callback(d, zt_ok_int(0));
}

static void
test_deferred_callback_returning_own_deferred_asserts(void **state)
{
    (void)state;
    assert_int_equal(s_child_signal(s_return_self_scenario, NULL), SIGABRT);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--strict-env-child") == 0) {
        zt_deferred_t *d = zt_deferred_fail(zt_failure_new(ZT_ERROR, "strict from env"));
        zt_deferred_unref(&d); /* ZTWIST_STRICT=1: aborts here */
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_runs_callbacks_in_order_passing_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_errback_runs_errbacks_and_skips_callbacks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_callback_skips_errbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_returning_failure_switches_to_errback_path, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_errback_returning_value_recovers_to_callback_path, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_add_callbacks_errback_never_sees_own_callback_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_add_callbacks_runs_errback_half_on_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_add_both_runs_for_value_and_for_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_add_with_no_function_returns_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_link_added_after_fire_runs_before_add_returns,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_with_failure_result_takes_errback_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_arg_reaches_every_link, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_peek_is_null_before_fire_and_shows_result_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_many_links_grow_storage_and_keep_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_twice_returns_ealready_and_frees_second_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_errback_after_callback_returns_ealready,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_errback_twice_returns_ealready, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_callback_after_errback_returns_ealready,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_with_wait_for_returns_einval_and_releases_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_errback_null_becomes_out_of_memory_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_returning_null_failure_becomes_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_added_during_callback_runs_at_end_of_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_added_during_callback_is_not_run_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_failure_from_link_added_during_callback_reaches_errback, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callback_firing_another_deferred_runs_that_chain_at_once, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_paused_failure_runs_errback_only_after_unpause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_unpause_before_fire_runs_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_pauses_nest, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callbacks_added_one_by_one_after_fire_each_run_once_in_order, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_pair_after_one_pending_link_keeps_pair_together, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_waiter_on_deferred_with_one_pending_link_resumes_after_that_link, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_deferred_pauses_nest_65535_deep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_unpause_when_not_paused_does_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_pause_inside_callback_holds_only_links_added_later, setup, teardown),
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
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_without_canceller_fails_with_cancelled_error, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_without_canceller_swallows_one_late_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_without_canceller_swallows_one_late_errback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_twice_without_canceller_fires_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_with_canceller_that_does_not_fire_then_fire_returns_ealready,
            setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_called_once_on_multiple_cancels,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_receives_deferred_and_arg, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_after_callback_does_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_after_errback_does_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_that_errbacks_keeps_its_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_that_callbacks_keeps_its_value,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_outer_waiting_cancels_inner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_cancel_forwards_through_several_waiting_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_canceller_dropping_last_reference_is_safe,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_result_before_timeout_keeps_result_and_cancels_timer, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_failure_before_timeout_keeps_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_expiry_fails_with_timeout_error_caused_by_cancel, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_canceller_firing_value_keeps_value,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_canceller_firing_failure_keeps_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_cancel_before_timeout_stays_cancelled_error, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_errback_added_before_timeout_sees_cancelled_error, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_errback_before_timeout_suppressing_cancel_keeps_value, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_negative_returns_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_on_fired_deferred_cancels_timer_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_late_fire_after_timeout_is_swallowed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_timer_keeps_deferred_alive_until_it_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_on_waiting_deferred_cancels_inner,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_two_timeouts_shorter_one_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_succeed_is_fired_with_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_fail_is_failed_and_null_becomes_out_of_memory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_maybe_deferred_sync_value_gives_fired_deferred, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_maybe_deferred_sync_failure_gives_failed_deferred,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_maybe_deferred_returned_deferred_is_passed_through,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_unhandled_failure_reported_once_at_last_unref,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_never_fired_is_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_handled_failure_is_not_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_failure_returned_by_last_callback_is_reported,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_failure_cleared_by_chaining_to_unfired_is_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_default_handler_logs_error_with_origin_and_causes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_strict_mode_aborts_after_unhandled_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_strict_env_variable_aborts_after_unhandled_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_unref_inside_own_callback_frees_after_chain_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_unref_null_does_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_ref_keeps_it_alive_until_last_unref, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_value_replaced_by_callback_is_freed_by_that_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_pending_value_freed_once_at_last_unref, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_value_passed_up_waiting_chain_freed_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_unfired_with_links_frees_without_touching_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_succeed_with_failure_is_failed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_wait_on_unfired_is_freed_and_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_chain_of_three_is_freed_in_any_drop_order, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_two_waiters_on_one_deferred_are_freed_together, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_chain_holding_failure_reports_it_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_abandoned_chain_with_pending_timeout_is_kept_until_it_fires, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_wait_chain_reachable_from_producer_is_not_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_callbacks_adding_callbacks_run_flat_and_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_from_own_callback_does_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_timeout_of_zero_fires_on_next_advance, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_timeout_added_to_paused_fired_deferred_runs_at_unpause, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_unhandled_count_is_readable_from_another_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_deferred_wait_on_deferred_running_its_callback_gets_no_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_paused_failure_is_reported_at_last_unref,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_cancel_on_waiting_circle_logs_and_returns,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_abandoned_circle_of_three_is_freed, setup,
                                        teardown),
#ifndef NDEBUG
        cmocka_unit_test_setup_teardown(
            test_deferred_debug_build_asserts_on_use_from_another_thread, setup, teardown),
#endif
        cmocka_unit_test_setup_teardown(test_deferred_callback_returning_own_deferred_asserts,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
