/*  futures/deferred.c - Deferred: a result that is not ready yet, with Twisted's semantics
 *
 *  Follows twisted/internet/defer.py (Deferred, _runCallbacks, _CONTINUE, pause/unpause, cancel,
 * addTimeout, chainDeferred, succeed, fail, maybeDeferred) with C ownership instead of a garbage
 * collector.
 *
 *  Design notes
 *
 *  - The first link lives inside the Deferred (`slots.one` and `kind0`), so a Deferred with one
 *    callback is one 80-byte allocation (a 96-byte malloc chunk), the common case of
 *    defer_to_thread and of most calls that return a Deferred. A second link moves the links to
 *    one growable block (F_HEAP): `cap` 16-byte slots {fn, arg} followed by `cap` kind bytes, so
 *    an added callback costs 17 bytes plus growth slack and no allocation of its own. A
 *    callback/errback pair with two different functions takes two slots that are always consumed
 *    together, so an errback never sees its own callback's failure. Consumed links are skipped by
 *    `head`; the block is compacted when it must grow. The pause depth is 16 bits so that the
 *    struct stays within 72 bytes.
 *  - The runner (s_run) is Twisted's _runCallbacks: an explicit stack of the Deferreds whose
 *    results are being pushed up a chain, so a chain of a million Deferreds, each waiting on the
 *    next, runs in constant C stack. The stack lives in a small array in the runner's frame and
 *    moves to the heap only for deep chains; it is per invocation, as in Twisted.
 *  - Waiting on another Deferred: the waiter's result holds a reference to the inner Deferred
 *    (result.kind == ZT_RESULT_DEFERRED) and the inner Deferred holds a K_CONTINUE link with a
 *    reference to the waiter. Both directions are strong, as in Python, so a producer may drop its
 *    reference to the outer Deferred after firing it and the rest of the chain still runs. The
 *    cycle is broken when the inner Deferred fires (or is cancelled through the outer one). When
 *    every reference left on a wait graph (chains, circles, several waiters on one Deferred)
 *    comes from its own wait edges, nothing can ever fire or unpause it: zt__deferred_collect frees
 * it by trial deletion, as Python's cycle collector would (checked when a reference drops to no
 * more than the wait edges could hold, gathering at most S_COLLECT_MAX_NODES).
 *  - Waiting is not counted in `paused` (Twisted counts it there): is_paused and the runner test
 *    both, and an unbalanced unpause can never resume a waiting Deferred.
 *  - While its links run, a Deferred's result lives in the runner and is moved into each call;
 *    the Deferred holds none. F_RUNNING is Twisted's _runningCallbacks guard, set for the whole
 *    run of a Deferred's links (no user code runs between them), so links added meanwhile run
 *    after the running one, never nested.
 *  - Lifetime: the runner holds a temporary reference on every Deferred on its stack, so a
 *    callback may drop the last reference to its own Deferred; the free happens when the chain
 *    stops. Frees are iterative (a worklist threaded through the dead Deferreds).
 *  - Unhandled failures are reported exactly once, in zt__deferred_destroy, when the last reference
 *    goes and the result is a Failure (deferred_gc.c reports them and holds the collector). A
 *    Failure handed on (to a waiter, a chained Deferred, an errback) is no longer this Deferred's
 *    and is not reported by it.
 *  - Allocation: each thread keeps up to 64 freed Deferreds for its next ones (thread-locals, freed
 *    by a pthread key's destructor when the thread exits; none under AddressSanitizer, so that a
 * use after the last unref is still caught). A coroutine's await adds a waiter link (K_WAITER, see
 *    futures/deferred_take.h) that the runner fills in place.
 *  - Threads: a Deferred belongs to the thread that created it. Every build records that thread
 *    (`owner`, a zt__thread_id) and checks it on every entry point: a compare with a thread-local
 *    load, and an abort naming the call and both threads when another thread calls. The unhandled
 *    handler, the strict flag and the unhandled count are process-wide atomics, so the count may
 *    be read from any thread.
 */
#include "deferred_impl.h"
#include "futures/deferred_take.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_run(zt_deferred_t *self);

/* Whether self might be part of an abandoned wait graph: no more references than its wait edges
 * could account for (one if it waits, at most one per pending link). O(1); zt__deferred_collect
 * decides. */
static inline bool
s_may_be_garbage(const zt_deferred_t *self)
{
    return self->refs <=
           (uint32_t)(self->result.kind == ZT_RESULT_DEFERRED) + (self->count - self->head);
}

static inline void
s_release_ref(zt_deferred_t *self)
{
    ZT_ASSERT(self->refs > 0);
    if (--self->refs == 0)
        zt__deferred_destroy(self);
    else if (s_may_be_garbage(self))
        zt__deferred_collect(self);
}

/* The slow path of s_reserve: compact, or grow the link block (moving the links out of the
 * Deferred the first time). */
static int
s_grow(zt_deferred_t *self, uint32_t need)
{
    if (self->head > 0) {
        zt__deferred_link_t *links = zt__deferred_links(self);
        uint8_t *kinds = zt__deferred_kinds(self);
        /* Slots before head are consumed: slide the pending ones down. The runner re-reads head
         * after every call, so this is safe while it runs. */
        uint32_t n = self->count - self->head;
        memmove(links, links + self->head, n * sizeof(zt__deferred_link_t));
        memmove(kinds, kinds + self->head, n);
        self->head = 0;
        self->count = n;
        if (n + need <= zt__deferred_cap(self))
            return 0;
    }
    uint32_t old_cap = zt__deferred_cap(self);
    uint32_t cap = S_FIRST_CAP;
    while (cap < self->count + need) {
        if (cap > UINT32_MAX / 4)
            return ZT_ENOMEM;
        cap *= 2;
    }
    size_t size = (size_t)cap * (sizeof(zt__deferred_link_t) + 1);
    if (!(self->flags & F_HEAP)) {
        zt__deferred_link_t *links = malloc(size);
        if (!links)
            return ZT_ENOMEM;
        if (self->count > 0) { /* the inline slot (count is 0 or 1) */
            links[0] = self->slots.one;
            ((uint8_t *)(links + cap))[0] = self->kind0;
        }
        self->slots.heap.links = links;
        self->slots.heap.cap = cap;
        self->flags |= F_HEAP;
        return 0;
    }
    zt__deferred_link_t *links = realloc(self->slots.heap.links, size);
    if (!links)
        return ZT_ENOMEM;
    /* The kind bytes follow the slots: move them up to the new end of the slots. */
    memmove((uint8_t *)(links + cap), (uint8_t *)(links + old_cap), self->count);
    self->slots.heap.links = links;
    self->slots.heap.cap = cap;
    return 0;
}

/* Make room for need more link slots. */
static inline int
s_reserve(zt_deferred_t *self, uint32_t need)
{
    return self->count + need <= zt__deferred_cap(self) ? 0 : s_grow(self, need);
}

/* Append a link; s_reserve made room. */
static inline void
s_put(zt_deferred_t *self, uint8_t kind, zt_deferred_fn *fn, void *arg)
{
    uint32_t i = self->count++;
    zt__deferred_links(self)[i] = (zt__deferred_link_t){.fn = fn, .arg = arg};
    zt__deferred_kinds(self)[i] = kind;
}

/* Turn a zt_err(NULL) into an out-of-memory failure; check the kind. */
static inline zt_result_t
s_normalize(zt_result_t result)
{
    if (result.kind == ZT_RESULT_FAILURE && !result.ptr)
        result.ptr = zt__failure_nomem();
    ZT_ASSERT_MSG(result.kind == ZT_RESULT_VALUE || result.kind == ZT_RESULT_FAILURE ||
                      result.kind == ZT_RESULT_DEFERRED,
                  "not a zt_result_t");
    return result;
}

/* *dst = src, field by field. A whole-struct store of a result the compiler holds in registers is
 * built on the stack first (the kind's 4 bytes, then an 8-byte load of kind and padding), and each
 * such load that a narrower store just wrote stalls for the failed store-to-load forward: on the
 * fire path of a one-link Deferred that was most of the runner's time. */
static inline void
s_store(zt_result_t *dst, zt_result_t src)
{
    dst->ptr = src.ptr;
    dst->free_fn = src.free_fn;
    dst->kind = src.kind;
}

/* What a link returned, as cur's next result. A returned Deferred that has a result hands it over;
 * one without (not fired, paused or itself waiting) makes cur wait on it: then the returned
 * result is the zt_wait_for itself, which the caller stores in cur->result. */
static inline zt_result_t
s_take_result(zt_deferred_t *cur, zt_result_t out)
{
    if (out.kind == ZT_RESULT_VALUE)
        return out;
    out = s_normalize(out);
    if (out.kind != ZT_RESULT_DEFERRED)
        return out;
    zt_deferred_t *inner = out.ptr;
    if (!inner) /* zt_wait_for(NULL): a Deferred constructor that ran out of memory */
        return zt_err(zt__failure_nomem());
    ZT_ASSERT_MSG(inner != cur, "a callback returned the Deferred it is attached to");
    ZT__DEFERRED_CHECK_THREAD(inner);
    if ((inner->flags & F_CALLED) && !inner->paused && !zt__deferred_is_waiting(inner)) {
        zt_result_t taken = inner->result;
        inner->result = zt_ok_none();
        s_release_ref(inner);
        return taken;
    }
    if (s_reserve(inner, 1) < 0) {
        s_release_ref(inner);
        return zt_err(zt__failure_nomem());
    }
    /* inner has no result to give, so it is not running its links: append directly. */
    s_put(inner, K_CONTINUE, NULL, cur);
    cur->refs++;
    return out;
}

/* Run cur's pending links with its result (the runner's inner loop). Returns the Deferred waiting
 * on cur when a K_CONTINUE link handed it cur's result (the runner pushes it next), else NULL. */
static inline zt_deferred_t *
s_run_links(zt_deferred_t *cur)
{
    zt_deferred_t *waiter = NULL;
    /* The result lives in res while the links run; no user code runs between links, so
     * F_RUNNING covers the whole loop. */
    zt_result_t res = cur->result;
    cur->result = zt_ok_none();
    cur->flags |= F_RUNNING;
    while (cur->head < cur->count) {
        uint32_t i = cur->head;
        const zt__deferred_link_t *links = zt__deferred_links(cur);
        uint8_t kind = zt__deferred_kinds(cur)[i];
        bool failed = res.kind == ZT_RESULT_FAILURE;
        void *arg = links[i].arg;
        zt_deferred_fn *fn;
        if (kind & K_PAIR) {
            cur->head = i + 2;
            fn = links[failed ? i + 1 : i].fn;
        } else if (kind == K_CONTINUE) {
            /* Twisted's _CONTINUE: hand the result to the Deferred waiting on cur. */
            cur->head = i + 1;
            waiter = arg;
            ZT_ASSERT(waiter->result.kind == ZT_RESULT_DEFERRED && waiter->result.ptr == cur);
            s_store(&waiter->result, res);
            res = zt_ok_none();
            ZT_ASSERT(cur->refs > 1); /* the waiter's; the runner holds another */
            cur->refs--;
            break;
        } else if (kind == K_WAITER) {
            /* A coroutine's await: the result moves into the waiter, no call by value. */
            cur->head = i + 1;
            zt__deferred_waiter_t *w = arg;
            s_store(&w->result, res);
            res = zt_ok_none();
            w->wake(w);
            continue;
        } else {
            cur->head = i + 1;
            if (!(kind & (failed ? K_EB : K_CB)))
                continue;
            fn = links[i].fn;
        }
        res = s_take_result(cur, fn(res, arg));
        if (res.kind == ZT_RESULT_DEFERRED)
            break; /* cur waits; the result is stored below */
    }
    cur->flags &= (uint8_t)~F_RUNNING;
    s_store(&cur->result, res);
    return waiter;
}

/* The runner, Twisted's _runCallbacks: an explicit stack of the Deferreds whose results are
 * being pushed up a chain (see the design notes). */
static void
s_run(zt_deferred_t *self)
{
    if ((self->flags & F_RUNNING) || self->paused || zt__deferred_is_waiting(self))
        return;
    zt_deferred_t *local[S_STACK_LOCAL];
    zt_deferred_t **stack = local;
    size_t depth = 0;
    size_t cap = S_STACK_LOCAL;
    self->refs++; /* the runner's reference; every Deferred pushed later brings one */
    stack[depth++] = self;

    while (depth > 0) {
        zt_deferred_t *cur = stack[depth - 1];
        if (cur->paused || zt__deferred_is_waiting(cur))
            break; /* as Twisted: nothing more can run now, not even lower in the chain */
        zt_deferred_t *waiter = cur->head < cur->count ? s_run_links(cur) : NULL;
        if (waiter) {
            /* The link's reference on the waiter becomes the runner's. */
            if (depth == cap) {
                zt_deferred_t **bigger = malloc(2 * cap * sizeof *bigger);
                if (!bigger) {
                    /* No memory for a deeper stack: run the waiter's chain in a nested runner,
                     * which needs C stack instead. */
                    s_run(waiter);
                    s_release_ref(waiter);
                    continue;
                }
                memcpy(bigger, stack, depth * sizeof *stack);
                if (stack != local)
                    free(stack);
                stack = bigger;
                cap *= 2;
            }
            stack[depth++] = waiter;
            continue;
        }
        /* cur is done for now: every link ran, or it waits on another Deferred. */
        if (cur->head == cur->count)
            cur->head = cur->count = 0;
        depth--;
        s_release_ref(cur);
    }
    while (depth > 0)
        s_release_ref(stack[--depth]);
    if (stack != local)
        free(stack);
}

/* Fire self with *result, which it takes; read through a pointer, field by field (see s_store). */
static int
s_fire_p(zt_deferred_t *self, zt_result_t *result)
{
    if (result->kind == ZT_RESULT_DEFERRED) {
        zt_result_release(result);
        return ZT_EINVAL;
    }
    if (result->kind == ZT_RESULT_FAILURE && !result->ptr)
        result->ptr = zt__failure_nomem();
    ZT_ASSERT_MSG(result->kind == ZT_RESULT_VALUE || result->kind == ZT_RESULT_FAILURE,
                  "not a zt_result_t");
    if (self->flags & F_CALLED) {
        bool swallow = (self->flags & F_SUPPRESS) != 0;
        self->flags &= (uint8_t)~F_SUPPRESS;
        zt_result_release(result);
        return swallow ? 0 : ZT_EALREADY;
    }
    self->flags |= F_CALLED;
    if (self->count - self->head == 1 && zt__deferred_kinds(self)[self->head] == K_WAITER &&
        !self->paused) {
        /* What s_run does for a chain of one waiter (a coroutine's await), without its set-up. */
        zt__deferred_waiter_t *w = zt__deferred_links(self)[self->head].arg;
        self->head = self->count = 0;
        s_store(&w->result, *result);
        w->wake(w);
        return 0;
    }
    self->result.ptr = result->ptr;
    self->result.free_fn = result->free_fn;
    self->result.kind = result->kind;
    s_run(self);
    return 0;
}

static int
s_fire(zt_deferred_t *self, zt_result_t result)
{
    return s_fire_p(self, &result);
}

bool
zt__deferred_take_result(zt_deferred_t *self, zt_result_t *out)
{
    ZT__DEFERRED_CHECK_THREAD(self);
    if (!(self->flags & F_CALLED) || (self->flags & F_RUNNING) || self->paused ||
        zt__deferred_is_waiting(self) || self->head < self->count)
        return false;
    *out = self->result;
    self->result = zt_ok_none();
    return true;
}

static void
s_timeout_free(s_timeout_t *t)
{
    if (t->handle) {
        zt_delayed_call_cancel(t->handle);
        zt_delayed_call_release(&t->handle);
    }
    free(t);
}

/* Free self and whatever its death releases, iteratively: the worklist is threaded through the
 * dead Deferreds' canceller_arg. */
void
zt__deferred_destroy(zt_deferred_t *self)
{
    zt_deferred_t *todo = self;
    self->canceller_arg = NULL;
    while (todo) {
        zt_deferred_t *d = todo;
        todo = d->canceller_arg;
        zt_result_t result = d->result;
        d->result = zt_ok_none();
        if (result.kind == ZT_RESULT_FAILURE) {
            zt__deferred_report_unhandled(result.ptr);
            zt_result_release(&result);
        } else if (result.kind == ZT_RESULT_DEFERRED) {
            zt_deferred_t *inner = result.ptr;
            if (--inner->refs == 0) {
                inner->canceller_arg = todo;
                todo = inner;
            } else if (s_may_be_garbage(inner)) {
                zt__deferred_collect(inner);
            }
        } else {
            zt_result_release(&result);
        }
        for (uint32_t i = d->head; i < d->count; i++) {
            uint8_t kind = zt__deferred_kinds(d)[i];
            if (kind == K_CONTINUE || kind == K_CHAIN) {
                zt_deferred_t *other = zt__deferred_links(d)[i].arg;
                if (--other->refs == 0) {
                    other->canceller_arg = todo;
                    todo = other;
                } else if (s_may_be_garbage(other)) {
                    zt__deferred_collect(other);
                }
            } else if (kind == K_TIMEOUT) {
                s_timeout_free(zt__deferred_links(d)[i].arg);
            }
        }
        if (d->flags & F_HEAP)
            free(d->slots.heap.links);
        zt__deferred_mem_free(d, sizeof *d);
    }
}

zt_deferred_t *
zt_deferred_new(void)
{
    return zt_deferred_new_with_canceller(NULL, NULL);
}

zt_deferred_t *
zt_deferred_new_with_canceller(zt_canceller_fn *canceller, void *arg)
{
    zt_deferred_t *self = zt__deferred_mem_alloc(sizeof *self);
    if (!self)
        return NULL;
    *self = (zt_deferred_t){
        .result = zt_ok_none(),
        .canceller = canceller,
        .canceller_arg = arg,
        .refs = 1,
        .owner = zt__thread_id(),
    };
    return self;
}

zt_deferred_t *
zt_deferred_ref(zt_deferred_t *self)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    ZT_ASSERT(self->refs > 0 && self->refs < UINT32_MAX);
    self->refs++;
    return self;
}

void
zt_deferred_unref(zt_deferred_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_deferred_t *self = *self_p;
    *self_p = NULL;
    ZT__DEFERRED_CHECK_THREAD(self);
    s_release_ref(self);
}

int
zt_deferred_callback(zt_deferred_t *self, zt_result_t result)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    return s_fire_p(self, &result);
}

int
zt_deferred_errback(zt_deferred_t *self, zt_failure_t *failure)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    return s_fire(self, zt_err(failure));
}

static inline int
s_add(zt_deferred_t *self, uint8_t kind, zt_deferred_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    if (s_reserve(self, 1) < 0)
        return ZT_ENOMEM;
    s_put(self, kind, fn, arg);
    if (self->flags & F_CALLED)
        s_run(self);
    return 0;
}

int
zt_deferred_add_callbacks(zt_deferred_t *self, zt_deferred_fn *callback, zt_deferred_fn *errback,
                          void *arg)
{
    if (!callback && !errback)
        return ZT_EINVAL;
    if (!callback)
        return s_add(self, K_EB, errback, arg);
    if (!errback)
        return s_add(self, K_CB, callback, arg);
    if (callback == errback)
        return s_add(self, K_BOTH, callback, arg);
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    if (s_reserve(self, 2) < 0)
        return ZT_ENOMEM;
    s_put(self, K_PAIR, callback, arg);
    s_put(self, K_PAIR_EB, errback, arg);
    if (self->flags & F_CALLED)
        s_run(self);
    return 0;
}

int
zt_deferred_add_callback(zt_deferred_t *self, zt_deferred_fn *callback, void *arg)
{
    return callback ? s_add(self, K_CB, callback, arg) : ZT_EINVAL;
}

int
zt_deferred_add_errback(zt_deferred_t *self, zt_deferred_fn *errback, void *arg)
{
    return errback ? s_add(self, K_EB, errback, arg) : ZT_EINVAL;
}

int
zt_deferred_add_both(zt_deferred_t *self, zt_deferred_fn *fn, void *arg)
{
    return fn ? s_add(self, K_BOTH, fn, arg) : ZT_EINVAL;
}

int
zt__deferred_add_waiter(zt_deferred_t *self, zt__deferred_waiter_t *waiter)
{
    ZT_ASSERT(waiter && waiter->wake);
    return s_add(self, K_WAITER, NULL, waiter);
}

/* chainDeferred's link: fire the other Deferred with the result; this chain goes on with None,
 * or with an AlreadyCalledError when the other one had fired. */
static zt_result_t
s_chain_link(zt_result_t result, void *arg)
{
    zt_deferred_t *other = arg;
    int rc = s_fire(other, result);
    s_release_ref(other);
    if (rc == ZT_EALREADY)
        return zt_err(
            zt_failure_new(ZT_ALREADY_CALLED_ERROR, "chained Deferred has already been called"));
    return zt_ok_none();
}

int
zt_deferred_chain_deferred(zt_deferred_t *self, zt_deferred_t *other)
{
    ZT_ASSERT(self && other);
    ZT__DEFERRED_CHECK_THREAD(self);
    ZT__DEFERRED_CHECK_THREAD(other);
    if (other == self)
        return ZT_EINVAL;
    if (s_reserve(self, 1) < 0)
        return ZT_ENOMEM;
    other->refs++;
    s_put(self, K_CHAIN, s_chain_link, other);
    if (self->flags & F_CALLED)
        s_run(self);
    return 0;
}

void
zt_deferred_pause(zt_deferred_t *self)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    ZT_ASSERT_MSG(self->paused < UINT16_MAX, "zt_deferred_pause nested more than 65,535 deep");
    self->paused++;
}

void
zt_deferred_unpause(zt_deferred_t *self)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    if (self->paused == 0 || --self->paused > 0)
        return;
    if (self->flags & F_CALLED)
        s_run(self);
}

void
zt_deferred_cancel(zt_deferred_t *self)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    /* Fired and waiting: the cancel goes to the Deferred waited on, however deep (iteratively).
     * Deferreds waiting on each other in a circle can never fire: `hare` walks twice as fast and
     * meets d when the walk is a circle (Twisted recurses until RecursionError). */
    zt_deferred_t *d = self;
    zt_deferred_t *hare = self;
    while (d->flags & F_CALLED) {
        if (!zt__deferred_is_waiting(d))
            return;
        d = d->result.ptr;
        for (int step = 0; step < 2 && hare; step++)
            hare =
                (hare->flags & F_CALLED) && zt__deferred_is_waiting(hare) ? hare->result.ptr : NULL;
        if (hare == d) {
            ZT_LOG_ERROR("zt_deferred_cancel: the Deferreds wait on each other in a circle and "
                         "can never fire; nothing to cancel");
            return;
        }
    }
    d->refs++; /* the canceller may drop the last reference */
    zt_canceller_fn *canceller = d->canceller;
    if (canceller) {
        d->canceller = NULL;
        canceller(d, d->canceller_arg);
    } else {
        d->flags |= F_SUPPRESS; /* nobody stops the work: eat the fire it will make */
    }
    if (!(d->flags & F_CALLED))
        s_fire(d, zt_err(zt_failure_new(ZT_CANCELLED_ERROR, "Deferred was cancelled")));
    s_release_ref(d);
}

/* The timer of zt_deferred_add_timeout: mark the timeout and cancel the Deferred. */
static void
s_timeout_fire(void *arg)
{
    s_timeout_t *t = arg;
    zt_deferred_t *d = t->d;
    zt_delayed_call_release(&t->handle);
    t->timed_out = true;
    zt_deferred_cancel(d); /* may run the K_TIMEOUT link, which frees t */
    s_release_ref(d);      /* the timer's reference */
}

/* addTimeout's two links in one (nothing can run between them): a CancelledError caused by the
 * timer becomes a TimeoutError, and a timer still pending is cancelled. */
static zt_result_t
s_timeout_link(zt_result_t result, void *arg)
{
    s_timeout_t *t = arg;
    if (t->timed_out && result.kind == ZT_RESULT_FAILURE &&
        zt_failure_check(result.ptr, ZT_CANCELLED_ERROR)) {
        zt_failure_t *cancelled = result.ptr;
        zt_failure_t *timeout =
            zt_failure_new(ZT_TIMEOUT_ERROR, "timed out after %g seconds", t->seconds);
        if (timeout)
            zt_failure_set_cause(timeout, &cancelled);
        else
            zt_failure_destroy(&cancelled);
        result = zt_err(timeout);
    }
    if (t->handle) {
        zt_delayed_call_cancel(t->handle);
        zt_delayed_call_release(&t->handle);
        s_release_ref(t->d); /* the timer's reference; the runner holds another */
    }
    free(t);
    return result;
}

int
zt_deferred_add_timeout(zt_deferred_t *self, double seconds, const zt_clock_t *clock)
{
    ZT_ASSERT(self && clock);
    ZT__DEFERRED_CHECK_THREAD(self);
    if (!(seconds >= 0))
        return ZT_EINVAL;
    s_timeout_t *t = malloc(sizeof *t);
    if (!t)
        return ZT_ENOMEM;
    if (s_reserve(self, 1) < 0) {
        free(t);
        return ZT_ENOMEM;
    }
    *t = (s_timeout_t){.d = self, .clock = clock, .seconds = seconds};
    if (zt_clock_call_later(clock, seconds, s_timeout_fire, t, &t->handle) != 0) {
        free(t);
        return ZT_ENOMEM;
    }
    self->refs++; /* the timer's */
    s_put(self, K_TIMEOUT, s_timeout_link, t);
    if (self->flags & F_CALLED)
        s_run(self);
    return 0;
}

bool
zt_deferred_is_called(const zt_deferred_t *self)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    return (self->flags & F_CALLED) != 0;
}

bool
zt_deferred_is_paused(const zt_deferred_t *self)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    return self->paused > 0 || zt__deferred_is_waiting(self);
}

const zt_result_t *
zt_deferred_peek(const zt_deferred_t *self)
{
    ZT_ASSERT(self);
    ZT__DEFERRED_CHECK_THREAD(self);
    if (!(self->flags & F_CALLED) || zt__deferred_is_waiting(self))
        return NULL;
    return &self->result;
}

zt_deferred_t *
zt_deferred_succeed(zt_result_t value)
{
    ZT_ASSERT_MSG(value.kind != ZT_RESULT_DEFERRED,
                  "zt_deferred_succeed takes a value or a failure, not zt_wait_for()");
    zt_deferred_t *self = zt_deferred_new();
    if (!self) {
        zt_result_release(&value);
        return NULL;
    }
    s_fire(self, value);
    return self;
}

zt_deferred_t *
zt_deferred_fail(zt_failure_t *failure)
{
    return zt_deferred_succeed(zt_err(failure));
}

zt_deferred_t *
zt_maybe_deferred(zt_maybe_fn *fn, void *arg)
{
    ZT_ASSERT(fn);
    zt_result_t result = fn(arg);
    if (result.kind == ZT_RESULT_DEFERRED) {
        if (result.ptr)
            return result.ptr;
        result = zt_err(zt__failure_nomem());
    }
    return zt_deferred_succeed(result);
}
