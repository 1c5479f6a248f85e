/*  tests/futures/deferred_fixture.h - the fixture and links the Deferred suites share
 *
 *  Links record what they see in the fixture's log ("a=1 b=!CancelledError "), so each test states
 * the exact order of the chain. Values handed to Deferreds are tracked: each is freed through a
 * counting free function, so ASan and the counts together show that every value is freed exactly
 * once wherever its chain ends. Unhandled failures go to a counting handler (tests/support). The
 * suites are split by topic: test_deferred_core.c, _chaining.c, _cancel.c, _unhandled.c.  */
#ifndef ZTWIST_TESTS_DEFERRED_FIXTURE_H
#define ZTWIST_TESTS_DEFERRED_FIXTURE_H

#include <ztwist.h>

#include <ztwist/test_clock.h>

#include "support/support.h"

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
    char log[2048];                /* what the links saw, in order */
    int frees;                     /* tracked values freed */
    support_unhandled_t unhandled; /* unhandled failures reported to the handler */
    int canceller_calls;           /* calls of s_canceller_* */
    zt_deferred_t *cancelled;      /* the Deferred the last canceller got; Borrowed */
    void *canceller_arg;           /* the arg the last canceller got */
    zt_test_clock_t *clock;        /* the test clock for timeouts */
    support_log_t logged;          /* what zt_log got (the tests that install it) */
    char peek[128];                /* s_peek's answer */
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

static inline void
s_note(fx_t *fx, const char *fmt, ...)
{
    size_t len = strlen(fx->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fx->log + len, sizeof fx->log - len, fmt, ap);
    va_end(ap);
}

/* Record "name=value " or "name=!Type " for the result a link receives. */
static inline void
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

static inline void
s_tracked_free(void *value)
{
    tracked_t *t = value;
    (*t->frees)++;
    free(t);
}

static inline zt_result_t
s_tracked(fx_t *fx, intptr_t value)
{
    tracked_t *t = malloc(sizeof *t);
    assert_non_null(t);
    *t = (tracked_t){.value = value, .frees = &fx->frees};
    return zt_ok(t, s_tracked_free);
}

/* Links. Each records what it got, then acts. */
static inline zt_result_t
s_log(zt_result_t r, void *arg)
{
    s_note_result(arg, r);
    return r;
}

static inline zt_result_t
s_add(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    intptr_t n = zt_result_int(r);
    zt_result_release(&r);
    return zt_ok_int(n + step->n);
}

static inline zt_result_t
s_fail(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_result_release(&r);
    return zt_err(zt_failure_new(ZT_ERROR, "%s failed", step->name));
}

static inline zt_result_t
s_recover(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_result_release(&r);
    return zt_ok_int(step->n);
}

static inline zt_result_t
s_wait(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_result_release(&r);
    return zt_wait_for(zt_deferred_ref(step->other));
}

static inline zt_result_t
s_return_tracked(zt_result_t r, void *arg)
{
    step_t *step = arg;
    s_note_result(step, r);
    zt_result_release(&r);
    return s_tracked(step->fx, step->n);
}

static inline int
setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->clock = zt_test_clock_new();
    support_unhandled_install(&fx->unhandled);
    *state = fx;
    return 0;
}

static inline int
teardown(void **state)
{
    fx_t *fx = *state;
    support_unhandled_remove();
    zt_test_clock_destroy(&fx->clock);
    free(fx);
    return 0;
}

/* The result at the end of d's chain, as the log writes it ("x=5 "). */
static inline const char *
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

static inline void
s_canceller_count(zt_deferred_t *d, void *arg)
{
    fx_t *fx = arg;
    fx->canceller_calls++;
    fx->cancelled = d;
    fx->canceller_arg = arg;
}

#endif
