/*  runtime/coro.c - coroutines on the reactor: zt_coro_start, zt_await (Twisted's inlineCallbacks)
 *
 *  Design notes.
 *
 *  One thread. Everything here runs on the reactor's thread: a coroutine is a way to write a
 * Deferred chain, not a thread. The coroutine running now is a thread-local (s_current), so that
 * zt_await needs no reactor argument; a coroutine may start another one, which then runs on top
 * of it until it suspends (each switch-in records who resumed it and goes back there).
 *
 *  A record per coroutine lives at the top of its own stack mapping (coro_stack.c), so a coroutine
 * costs one mapping and no malloc besides its Deferred. A record is freed (its stack kept for
 * reuse, up to S_FREE_MAX) only after it has switched away for good, by whoever resumed it.
 *
 *  An await of a Deferred that has fired and has nothing left to run takes its result at once
 * (zt__deferred_take_result), exactly what a link would have received.
 *
 *  Exactly-once resume. Otherwise an await adds one link to the awaited Deferred, a waiter
 * (futures/deferred_take.h) embedded in the record, so an await allocates nothing; that link runs
 * exactly once (when the Deferred's chain reaches it) and hands the result to the record. If the
 * coroutine is suspended, the link appends it to the ready list (once: `listed`), and the first one
 * on an empty list queues one s_drain call on the reactor's local call queue. s_drain resumes the
 * coroutines that were ready when it started; those made ready meanwhile wait for the next pass. So
 * a coroutine is resumed from the loop, never inside the zt_deferred_callback that fired the
 * awaited Deferred; a long chain of coroutines awaiting each other unwinds one pass at a time on
 * one stack; and a pass that resumes many coroutines costs the reactor one queued call.
 *
 *  Hand-over. Whoever switches a coroutine in (zt_coro_start, s_drain, the teardown) is its
 * resumer: an s_resumer_t in the resumer's frame, where the coroutine switches back to. Inside
 * s_drain's pass, a coroutine that suspends switches straight to the next coroutine of the pass,
 * which inherits the same resumer; only the last one, or one that ends (its record is recycled by
 * the resumer, off its own stack), switches back to s_drain. So a pass of n coroutines costs n + 1
 * switches instead of 2n, and still resumes exactly the coroutines that were ready when it started,
 * in order, from the loop. A coroutine started or resumed anywhere else always switches back to
 * its resumer, so a coroutine started inside another returns to it when it first suspends.
 *
 *  Cancellation (Twisted's _cancellableInlineCallbacks). Every Deferred a coroutine fires gets, at
 * creation, a first errback s_redirect and the canceller s_cancel. Cancelling it makes a new
 * Deferred `next` that the coroutine will fire instead, fails the cancelled one with a private
 * marker failure carrying `next`, which s_redirect turns into zt_wait_for(next), and cancels the
 * Deferred the coroutine awaits. So the cancelled Deferred stays unresolved until the coroutine
 * has unwound and ends with whatever the coroutine returns.
 *
 *  Reactor teardown (zt__coro_reactor_fini, first thing in zt_reactor_destroy). The state enters
 * `finishing`: no await suspends any more (each cancels its Deferred and returns at once), and the
 * queued s_drain never runs. Every suspended coroutine's awaited Deferred is cancelled; each
 * coroutine whose result arrives is on the ready list and is resumed directly, and so unwinds to
 * its end. A coroutine whose Deferred does not fire even when cancelled (it waits on a Deferred
 * paused by its owner) cannot be resumed safely: it is logged and its stack leaked, as its link
 * still points into it. A cancel that reaches the coroutine's own canceller again through its
 * await (a coroutine awaiting itself) stops there (`cancelling`).  */
#include "runtime.h"

#include <ztwist/coro.h>

#include "base/compiler.h"
#include "coro_ctx.h"
#include "futures/deferred_take.h"

#include <stddef.h>
#include <stdlib.h>

enum {
    S_DEFAULT_STACK = 64 * 1024, /* default usable stack per coroutine */
    S_MIN_STACK = 16 * 1024,     /* below this, ztwist's own calls may overflow */
    S_FREE_MAX = 16,             /* stacks of finished coroutines kept for reuse */
    S_RECORD_ALIGN = 64          /* the record's alignment at the stack's top */
};
#define S_MAX_STACK ((size_t)1 << 30)

typedef struct s_coro s_coro_t;

/* The reactor's coroutines (r->coro). */
struct zt__coro_state {
    zt_reactor_t *reactor; /* Borrowed: the owner */
    s_coro_t *live;  /* Borrowed: coroutines started and not finished (records own themselves) */
    s_coro_t *free;  /* Borrowed: records of finished coroutines, kept for their stacks */
    size_t nfree;    /* records on the free list */
    s_coro_t *ready; /* Borrowed: suspended coroutines whose await has its result, in order */
    s_coro_t *ready_tail; /* Borrowed: the last of them */
    bool drain_queued;    /* an s_drain call is on the reactor's local call queue */
    size_t stack_size;    /* usable bytes of new stacks */
    bool finishing;       /* the reactor is being destroyed: awaits no longer suspend */
};

/* The side that switches coroutines in (zt_coro_start, s_drain, the teardown); lives in its frame.
 * Every coroutine it runs, directly or by a hand-over, switches back to it. */
typedef struct s_resumer {
    zt__ctx_t ctx;      /* the resumer's context while a coroutine runs */
    zt__fiber_t fiber;  /* the resumer's stack, for the sanitizers */
    s_coro_t *current;  /* Borrowed: s_current to restore when a coroutine switches back */
    s_coro_t *back;     /* Borrowed: the coroutine that switched back (suspended or done) */
    s_coro_t *hand_end; /* Borrowed: s_drain's last coroutine still to hand over to, or NULL */
} s_resumer_t;

/* A coroutine; lives at the top of its own stack mapping. The fields a suspend and a resume touch
 * come first, so that they share a cache line. */
struct s_coro {
    zt__ctx_t ctx;                /* the coroutine's context while it is switched out */
    s_resumer_t *resumer;         /* Borrowed: where the coroutine switches back to */
    struct zt__coro_state *state; /* Borrowed: the reactor's state */
    zt__deferred_waiter_t wait;   /* the await's link; its result (Owned): the awaited result
                                     handed in, then the final result */
    s_coro_t *ready_next;         /* Borrowed: the ready list */
    zt_deferred_t *awaiting; /* Borrowed from zt_await's frame: the Deferred awaited, or NULL */
    bool listed;             /* on the ready list */
    bool has_got;            /* wait.result holds the awaited result */
    bool suspended;          /* switched out inside zt_await */
    bool handed;             /* resumed by another coroutine's hand-over, not by its resumer */
    bool done;               /* the body returned; wait.result holds its result */
    bool cancelling;         /* s_cancel runs (it may reach itself through the await) */
    zt__fiber_t fiber;       /* the coroutine's stack, for the sanitizers */
    zt__stack_t stack;       /* the mapping this record lives in */
    zt_coro_fn *fn;          /* the body */
    void *arg;               /* Borrowed: the body's arg */
    zt_deferred_t *result_d; /* Owned (one reference): fired with the coroutine's result */
    s_coro_t *prev;          /* Borrowed: the live list */
    s_coro_t *next;          /* Borrowed: the live list or the free list */
};

static _Thread_local s_coro_t *s_current ZT__TLS_FAST; /* the coroutine running now, or NULL */

static void s_wake(zt__deferred_waiter_t *w);

/* The marker failure a cancel fires the cancelled Deferred with (see the design notes). */
static ZT_FAILURE_TYPE(s_unwinding, "CoroutineUnwinding", ZT_ERROR);

/* --- records and stacks ---------------------------------------------------------------- */

static struct zt__coro_state *
s_state(zt_reactor_t *r)
{
    if (!r->coro) {
        r->coro = calloc(1, sizeof *r->coro);
        if (r->coro)
            *r->coro = (struct zt__coro_state){.reactor = r, .stack_size = S_DEFAULT_STACK};
    }
    return r->coro;
}

/* The state of a reused record back to that of a new one. Field by field: a whole-struct
 * assignment compiles to a `rep stos` whose start-up cost was a tenth of a start. zt_coro_start
 * sets the rest (ctx, fiber, fn, arg, result_d); `stack` stays. */
static void
s_record_reset(s_coro_t *c, struct zt__coro_state *st)
{
    c->resumer = NULL;
    c->state = st;
    c->wait.result = zt_ok_none();
    c->wait.wake = s_wake;
    c->ready_next = NULL;
    c->awaiting = NULL;
    c->listed = c->has_got = c->suspended = c->handed = c->done = c->cancelling = false;
    c->prev = c->next = NULL;
}

static s_coro_t *
s_record_get(struct zt__coro_state *st)
{
    while (st->free) {
        s_coro_t *c = st->free;
        st->free = c->next;
        st->nfree--;
        if (c->stack.size == st->stack_size) {
            zt__stack_t stack = c->stack;
            zt__fiber_stack_reset(stack.lo, (size_t)((char *)c - (char *)stack.lo));
            s_record_reset(c, st);
            return c;
        }
        zt__stack_t stack = c->stack; /* a size set before the last zt_coro_set_stack_size */
        zt__stack_unmap(&stack);
    }
    zt__stack_t stack;
    if (zt__stack_map(&stack, st->stack_size) < 0)
        return NULL;
    uintptr_t top = (uintptr_t)stack.lo + stack.size;
    s_coro_t *c = (s_coro_t *)((top - sizeof(s_coro_t)) & ~(uintptr_t)(S_RECORD_ALIGN - 1));
    *c = (s_coro_t){.stack = stack, .state = st, .wait.wake = s_wake};
    return c;
}

static void
s_record_put(struct zt__coro_state *st, s_coro_t *c)
{
    zt__fiber_tsan_destroy(c->fiber.tsan);
    if (st->nfree < S_FREE_MAX && c->stack.size == st->stack_size) {
        c->next = st->free;
        st->free = c;
        st->nfree++;
        return;
    }
    zt__stack_t stack = c->stack; /* c lives inside the mapping */
    zt__stack_unmap(&stack);
}

static void
s_live_unlink(struct zt__coro_state *st, s_coro_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        st->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* --- switching --------------------------------------------------------------------------- */

/* Fire the Deferred of a coroutine that has switched away for good, and recycle its record. */
static void
s_finish(s_coro_t *c)
{
    struct zt__coro_state *st = c->state;
    s_live_unlink(st, c);
    zt_deferred_t *d = c->result_d;
    zt_result_t result = c->wait.result;
    s_record_put(st, c);
    zt_deferred_callback(d, result); /* refused only after an out-of-memory cancel: freed */
    zt_deferred_unref(&d);
}

static s_coro_t *s_ready_pop(struct zt__coro_state *st);

/* Run c until control comes back to rs (c, or a coroutine c handed over to, suspends or ends); on
 * the resumer's side. rs->current is set. */
static void
s_switch_in(s_resumer_t *rs, s_coro_t *c)
{
    c->resumer = rs;
    c->handed = false;
    rs->fiber.tsan = zt__fiber_tsan_current();
    s_current = c;
    zt__fiber_start_switch(&rs->fiber, &c->fiber, false);
    zt__ctx_switch(&rs->ctx, &c->ctx);
    zt__fiber_finish_switch(&rs->fiber, NULL);
    s_current = rs->current;
    if (rs->back->done)
        s_finish(rs->back);
}

/* The next coroutine of s_drain's pass, taken off the ready list, or NULL when the pass has
 * resumed every coroutine that was ready when it started (or rs is not s_drain's). */
static s_coro_t *
s_next_in_pass(struct zt__coro_state *st, s_resumer_t *rs)
{
    if (!rs->hand_end)
        return NULL;
    s_coro_t *c = s_ready_pop(st);
    if (c == rs->hand_end)
        rs->hand_end = NULL;
    return c;
}

/* Give the thread away until someone resumes c; on the coroutine's side. In s_drain's pass, c
 * hands the thread straight to the next ready coroutine (one switch instead of two through the
 * drain); that one goes back to the same resumer in turn. */
static void
s_suspend(s_coro_t *c)
{
    c->suspended = true;
    s_resumer_t *rs = c->resumer;
    s_coro_t *next = s_next_in_pass(c->state, rs);
    if (next) {
        next->resumer = rs;
        next->handed = true;
        s_current = next;
        zt__fiber_start_switch(&c->fiber, &next->fiber, false);
        zt__ctx_switch(&c->ctx, &next->ctx);
    } else {
        rs->back = c;
        zt__fiber_start_switch(&c->fiber, &rs->fiber, false);
        zt__ctx_switch(&c->ctx, &rs->ctx);
    }
    /* Resumed. By a hand-over, the stack we come from is a coroutine's, not the resumer's that
     * c will switch back to: the sanitizers' report of it is not kept. */
    zt__fiber_t from;
    zt__fiber_finish_switch(&c->fiber, c->handed ? &from : &c->resumer->fiber);
    c->suspended = false;
}

/* The first frame of every coroutine (always switched in by zt_coro_start, never handed over). */
static void
s_entry(void *arg)
{
    s_coro_t *c = arg;
    zt__fiber_enter(&c->resumer->fiber);
    zt_result_t result = c->fn(c->arg);
    if (result.kind == ZT_RESULT_DEFERRED) /* return zt_wait_for(d): end with d's result */
        result = zt_await(result.ptr);
    c->wait.result = result;
    c->done = true;
    s_resumer_t *rs = c->resumer;
    rs->back = c;
    zt__fiber_start_switch(&c->fiber, &rs->fiber, true);
    zt__ctx_switch(&c->ctx, &rs->ctx);
    ZT_ASSERT_MSG(false, "a finished coroutine was resumed");
}

/* --- await ------------------------------------------------------------------------------- */

/* c is suspended and has its awaited result: resume it on the next pass (or, while finishing, in
 * zt__coro_reactor_fini). */
static void
s_ready_push(struct zt__coro_state *st, s_coro_t *c)
{
    if (c->listed)
        return;
    c->listed = true;
    c->ready_next = NULL;
    if (st->ready_tail)
        st->ready_tail->ready_next = c;
    else
        st->ready = c;
    st->ready_tail = c;
}

/* Take the first ready coroutine off the list. */
static s_coro_t *
s_ready_pop(struct zt__coro_state *st)
{
    s_coro_t *c = st->ready;
    if (c) {
        st->ready = c->ready_next;
        if (!st->ready)
            st->ready_tail = NULL;
        c->listed = false;
    }
    return c;
}

/* The queued call: resume the coroutines that were ready when it started, in order. Each one that
 * suspends hands the thread to the next (s_suspend); one that ends comes back here first. */
static void
s_drain(void *arg)
{
    struct zt__coro_state *st = arg;
    st->drain_queued = false;
    s_resumer_t rs = {.current = s_current, .hand_end = st->ready_tail};
    for (s_coro_t *c; (c = s_next_in_pass(st, &rs));)
        s_switch_in(&rs, c);
    if (st->ready && !st->drain_queued && !st->finishing &&
        zt__queue_push(&st->reactor->local, s_drain, st) == 0)
        st->drain_queued = true;
}

/* The waiter an await adds has its result (the awaited chain goes on with None): wake the
 * coroutine. */
static void
s_wake(zt__deferred_waiter_t *w)
{
    s_coro_t *c = (s_coro_t *)(void *)((char *)w - offsetof(s_coro_t, wait));
    if (!c->state) { /* leaked by a teardown: nobody takes the result */
        zt_result_release(&w->result);
        return;
    }
    c->has_got = true;
    if (c->suspended) {
        struct zt__coro_state *st = c->state;
        s_ready_push(st, c);
        if (!st->drain_queued && !st->finishing) {
            if (zt__queue_push(&st->reactor->local, s_drain, st) == 0)
                st->drain_queued = true;
            else
                ZT_LOG_ERROR("coroutine: out of memory queueing a resume; it is retried with the "
                             "next one, or at the reactor's destruction");
        }
    }
}

static zt_result_t
s_take(s_coro_t *c)
{
    zt_result_t result = c->wait.result;
    c->wait.result = zt_ok_none();
    c->has_got = false;
    return result;
}

/* An await while the reactor is being destroyed: cancel d and take its result if it has one. */
static zt_result_t
s_await_finishing(s_coro_t *c, zt_deferred_t *d)
{
    zt_deferred_cancel(d);
    if (zt_deferred_peek(d) && !zt_deferred_is_paused(d) &&
        zt__deferred_add_waiter(d, &c->wait) == 0 && c->has_got) {
        zt_deferred_unref(&d);
        return s_take(c);
    }
    zt_deferred_unref(&d);
    return zt_err(zt_failure_new(ZT_CANCELLED_ERROR, "the reactor was destroyed during an await"));
}

zt_result_t
zt_await(zt_deferred_t *d)
{
    s_coro_t *c = s_current;
    if (ZT__UNLIKELY(!c)) {
        zt_deferred_unref(&d);
        return zt_err(zt_failure_from_code(ZT_EINVAL, "zt_await called outside a coroutine"));
    }
    if (ZT__UNLIKELY(!d))
        return zt_err(zt_failure_from_code(ZT_ENOMEM, "no Deferred to await"));
    if (ZT__UNLIKELY(c->state->finishing))
        return s_await_finishing(c, d);
    zt_result_t taken;
    if (zt__deferred_take_result(d, &taken)) { /* fired: what a link would get, without one */
        zt_deferred_unref(&d);
        return taken;
    }
    if (ZT__UNLIKELY(zt__deferred_add_waiter(d, &c->wait) < 0)) {
        zt_deferred_unref(&d);
        return zt_err(zt_failure_from_code(ZT_ENOMEM, "zt_await"));
    }
    if (!c->has_got) {
        c->awaiting = d;
        s_suspend(c);
        c->awaiting = NULL;
        ZT_ASSERT_MSG(c->has_got, "a coroutine was resumed without its awaited result");
    }
    zt_deferred_unref(&d);
    return s_take(c);
}

bool
zt_coro_is_inside(void)
{
    return s_current != NULL;
}

/* --- start, cancel ----------------------------------------------------------------------- */

/* The first errback of a coroutine's Deferred: a cancel's marker becomes a wait for `next`. */
static zt_result_t
s_redirect(zt_result_t result, void *arg)
{
    (void)arg;
    zt_failure_t *f = zt_result_failure(result);
    if (!f || zt_failure_type(f) != &s_unwinding)
        return result;
    zt_deferred_t *next = (zt_deferred_t *)zt_failure_detail(f);
    zt_failure_destroy(&f);
    return zt_wait_for(next);
}

static void s_cancel(zt_deferred_t *d, void *arg);

static zt_deferred_t *
s_result_deferred_new(s_coro_t *c)
{
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_cancel, c);
    if (d && zt_deferred_add_errback(d, s_redirect, NULL) < 0)
        zt_deferred_unref(&d);
    return d;
}

/* The canceller of a coroutine's Deferred d (not fired yet, so the coroutine is alive). */
static void
s_cancel(zt_deferred_t *d, void *arg)
{
    s_coro_t *c = arg;
    if (c->cancelling)
        return; /* the coroutine awaits its own Deferred: d fails with CancelledError */
    c->cancelling = true;
    zt_deferred_t *next = s_result_deferred_new(c);
    zt_failure_t *marker =
        next ? zt_failure_new(&s_unwinding, "cancelled; waiting for the coroutine to end") : NULL;
    if (marker) {
        zt_failure_set_detail(marker, (intptr_t)zt_deferred_ref(next)); /* s_redirect's ref */
        zt_deferred_t *old = c->result_d;
        c->result_d = next;
        zt_deferred_errback(d, marker);
        zt_deferred_unref(&old); /* zt_deferred_cancel holds d meanwhile */
    } else {
        zt_deferred_unref(&next); /* no memory: d fails with CancelledError at once */
    }
    if (c->awaiting && !c->has_got)
        zt_deferred_cancel(c->awaiting);
    c->cancelling = false;
}

zt_deferred_t *
zt_coro_start(zt_reactor_t *r, zt_coro_fn *fn, void *arg)
{
    ZT_ASSERT(r && fn);
    ZT__ASSERT_REACTOR_THREAD(r);
    struct zt__coro_state *st = s_state(r);
    s_coro_t *c = st ? s_record_get(st) : NULL;
    if (c)
        c->result_d = s_result_deferred_new(c);
    if (!c || !c->result_d) {
        if (c)
            s_record_put(st, c);
        return zt_deferred_fail(zt_failure_from_code(
            ZT_ENOMEM, "no coroutine stack (out of memory, or vm.max_map_count mappings)"));
    }
    zt_deferred_t *d = zt_deferred_ref(c->result_d);
    c->fn = fn;
    c->arg = arg;
    size_t usable = (size_t)((char *)c - (char *)c->stack.lo);
    c->fiber =
        (zt__fiber_t){.stack_lo = c->stack.lo, .stack_size = usable, .tsan = zt__fiber_tsan_new()};
    zt__ctx_make(&c->ctx, c->stack.lo, usable, s_entry, c);
    c->next = st->live;
    if (st->live)
        st->live->prev = c;
    st->live = c;
    s_resumer_t rs = {.current = s_current};
    s_switch_in(&rs, c);
    return d;
}

int
zt_coro_set_stack_size(zt_reactor_t *r, size_t bytes)
{
    ZT_ASSERT(r);
    ZT__ASSERT_REACTOR_THREAD(r);
    if (bytes < S_MIN_STACK || bytes > S_MAX_STACK)
        return ZT_EINVAL;
    struct zt__coro_state *st = s_state(r);
    if (!st)
        return ZT_ENOMEM;
    size_t page = zt__stack_page_size();
    st->stack_size = (bytes + page - 1) / page * page;
    return 0;
}

/* --- reactor teardown -------------------------------------------------------------------- */

void
zt__coro_reactor_fini(zt_reactor_t *r)
{
    struct zt__coro_state *st = r->coro;
    if (!st)
        return;
    ZT_ASSERT_MSG(!s_current, "zt_reactor_destroy called from inside a coroutine");
    st->finishing = true;
    /* Wake every suspended coroutine: one whose result arrived already is on the ready list; the
     * others go there from s_wake when the cancel of their awaited Deferred fires it, now or
     * when another coroutine ends. */
    for (s_coro_t *c = st->live, *next; c; c = next) {
        next = c->next;
        if (!c->has_got && c->awaiting)
            zt_deferred_cancel(c->awaiting);
    }
    /* A resumed coroutine never suspends again (finishing), so it runs to its end. */
    s_resumer_t rs = {.current = NULL};
    for (s_coro_t *c; (c = s_ready_pop(st));)
        s_switch_in(&rs, c);
    size_t leaked = 0;
    for (s_coro_t *c = st->live, *next; c; c = next) {
        next = c->next;
        leaked++;
        c->state = NULL; /* its link on the awaited Deferred may still run: s_wake checks */
        zt_deferred_unref(&c->result_d);
    }
    if (leaked)
        ZT_LOG_ERROR("reactor destroyed with %zu coroutines whose awaited Deferred did not fire "
                     "when cancelled (paused by its owner?); their stacks are leaked",
                     leaked);
    /* A drain queued before the teardown never runs now. */
    size_t kept = 0;
    for (size_t i = 0; i < r->local.len; i++)
        if (r->local.items[i].fn != s_drain)
            r->local.items[kept++] = r->local.items[i];
    r->local.len = kept;
    while (st->free) {
        s_coro_t *c = st->free;
        st->free = c->next;
        zt__stack_t stack = c->stack;
        zt__stack_unmap(&stack);
    }
    free(st);
    r->coro = NULL;
}
