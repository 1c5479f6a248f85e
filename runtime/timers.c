/*  runtime/timers.c - timed calls: a binary heap with lazy cancellation, and DelayedCall handles
 *
 *  The heap holds nodes by value, ordered by time then by sequence number, so calls due at the
 * same time run in the order they were scheduled. A call scheduled without a handle is its node
 * alone (time, sequence number, function, argument): call_later then allocates nothing and writes
 * nothing outside the heap array. Taking a call object from the free stack instead would cost a
 * cache miss per schedule: calls come back to that stack in the order they fire, which is random
 * in memory. A call with a handle is an object that its node points to.
 *
 *  Cancelling, reset and delay never search the heap: they mark the call and, for reset/delay,
 * push a new node with a new sequence number; the old node turns stale and is dropped when it
 * reaches the top or when the heap compacts itself (stale nodes over half the heap: one O(n)
 * filter and heapify), so heavy cancel churn keeps the heap near its live size. Only nodes of
 * calls with handles can turn stale. Calls with handles are carved from blocks and recycled
 * through a stack of free calls, so scheduling does not call malloc in the steady state.
 *
 *  A call with a handle is referenced by every heap node that points to it plus one user handle;
 * it goes back to the free stack when the count reaches zero. Reactor thread only.
 *
 *  The handle functions (zt_delayed_call_*) are the clock interface's (futures/clock.c): a call
 * object starts with a pointer to its clock's zt_clock_t, whose operations here (s_op_*) do the
 * work, so the same functions serve a test clock's handles. A reactor made on a test clock
 * (zt_reactor_new_with_clock) leaves its own heap empty and schedules everything on that clock:
 * the loop's poll, bounded only by this heap, then never waits for a test clock's timer, and the
 * calls run inside zt_test_clock_advance.  */
#include "runtime.h"

#include <ztwist/test_clock.h>

#include <math.h>
#include <stdlib.h>

#define ZT__SLAB_CALLS 1024  /* calls per block */
#define ZT__COMPACT_MIN 1024 /* never compact a heap with fewer stale nodes than this */

static bool
s_less(const zt__timer_node_t *a, const zt__timer_node_t *b)
{
    return a->when_ns < b->when_ns || (a->when_ns == b->when_ns && a->seq < b->seq);
}

/* Put node into the hole at heap[i], moving the hole up past the nodes that order after it. */
static void
s_sift_up(zt__timer_node_t *heap, size_t i, const zt__timer_node_t *node)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_less(node, &heap[parent]))
            break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = *node;
}

static void
s_sift_down(zt__timer_node_t *heap, size_t len, size_t i)
{
    zt__timer_node_t node = heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= len)
            break;
        if (child + 1 < len && s_less(&heap[child + 1], &heap[child]))
            child++;
        if (!s_less(&heap[child], &node))
            break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = node;
}

static bool
s_is_stale(const zt__timer_node_t *node)
{
    return !node->fn && (node->call->state != ZT__CALL_PENDING || node->call->seq != node->seq);
}

static void
s_call_unref(zt__timers_t *t, zt_delayed_call_t *c)
{
    ZT_ASSERT(c->refs > 0);
    if (--c->refs == 0) {
        c->state = ZT__CALL_FREE;
        t->free[t->nfree++] = c; /* room for every call ever carved: cannot overflow */
    }
}

static zt_delayed_call_t *
s_call_alloc(zt__timers_t *t)
{
    /* The free calls are a stack of pointers, not a list threaded through the calls: popping one
     * does not read the call (a cache miss that stalls), and the writes that fill it in do not
     * wait. */
    if (t->nfree > 0)
        return t->free[--t->nfree];
    if (t->bump == t->bump_end) {
        /* A new block, carved on demand: its memory is first touched by the calls that use it.
         * The list of blocks and the free stack (room for every call of every block) double when
         * the number of blocks reaches a power of two. */
        if ((t->nslabs & (t->nslabs - 1)) == 0) {
            size_t cap = t->nslabs ? 2 * t->nslabs : 1;
            void **slabs = realloc(t->slabs, cap * sizeof *slabs);
            if (!slabs)
                return NULL;
            t->slabs = slabs;
            zt_delayed_call_t **stack = realloc(t->free, cap * ZT__SLAB_CALLS * sizeof *stack);
            if (!stack)
                return NULL;
            t->free = stack;
        }
        zt_delayed_call_t *block = malloc(ZT__SLAB_CALLS * sizeof *block);
        if (!block)
            return NULL;
        t->slabs[t->nslabs++] = block;
        t->bump = block;
        t->bump_end = block + ZT__SLAB_CALLS;
    }
    return t->bump++;
}

/* Drop stale nodes and rebuild the heap in O(n). */
static void
s_compact(zt__timers_t *t)
{
    size_t kept = 0;
    for (size_t i = 0; i < t->len; i++) {
        if (s_is_stale(&t->heap[i]))
            s_call_unref(t, t->heap[i].call);
        else
            t->heap[kept++] = t->heap[i];
    }
    t->len = kept;
    t->stale = 0;
    for (size_t i = kept / 2; i-- > 0;)
        s_sift_down(t->heap, t->len, i);
}

static void
s_mark_stale(zt__timers_t *t)
{
    t->stale++;
    if (t->stale >= ZT__COMPACT_MIN && t->stale * 2 > t->len)
        s_compact(t);
}

/* Room for one more node at heap[len]: 0, or ZT_ENOMEM. */
static int
s_reserve(zt__timers_t *t)
{
    if (t->len < t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 64;
    zt__timer_node_t *heap = realloc(t->heap, cap * sizeof *heap);
    if (!heap)
        return ZT_ENOMEM;
    t->heap = heap;
    t->cap = cap;
    return 0;
}

/* Push a node for c at when_ns with a new sequence number; the node takes a reference. On failure
 * c is unchanged. */
static int
s_push(zt__timers_t *t, zt_delayed_call_t *c, int64_t when_ns)
{
    if (s_reserve(t) != 0)
        return ZT_ENOMEM;
    c->seq = t->next_seq++;
    c->when_ns = when_ns;
    c->refs++; /* a new call's first node: refs was set to 0 by the store that filled it in */
    zt__timer_node_t node = {.when_ns = when_ns, .seq = c->seq, .call = c};
    s_sift_up(t->heap, t->len++, &node);
    return 0;
}

/* Pop the top node; the caller owns the node's reference. */
static zt__timer_node_t
s_pop(zt__timers_t *t)
{
    zt__timer_node_t top = t->heap[0];
    t->heap[0] = t->heap[--t->len];
    if (t->len > 0)
        s_sift_down(t->heap, t->len, 0);
    return top;
}

/* seconds from now as a monotonic time, clamped so that far futures do not overflow. */
static int64_t
s_deadline(int64_t base_ns, double seconds)
{
    if (!(seconds > 0))
        return base_ns;
    if (seconds > 1e9) /* 31 years: later than any program waits */
        seconds = 1e9;
    /* seconds > 0 here, so adding a half and truncating rounds to nearest without a libm call. */
    return base_ns + (int64_t)(seconds * 1e9 + 0.5);
}

zt_delayed_call_t *
zt__timers_schedule_own(zt_reactor_t *r, double seconds, zt_reactor_fn *fn, void *arg)
{
    zt__timers_t *t = &r->timers;
    zt_delayed_call_t *c = s_call_alloc(t);
    if (!c)
        return NULL;
    *c = (zt_delayed_call_t){
        .clock = &r->clock, .reactor = r, .fn = fn, .arg = arg, .state = ZT__CALL_PENDING};
    if (s_push(t, c, s_deadline(zt_time_now_ns(), seconds)) != 0) {
        c->refs = 1;
        s_call_unref(t, c);
        return NULL;
    }
    return c;
}

size_t
zt__timers_run_due(zt_reactor_t *r)
{
    zt__timers_t *t = &r->timers;
    int64_t now = zt_time_now_ns();
    uint64_t bound = t->next_seq; /* calls scheduled from here on wait for the next pass */
    size_t ran = 0;
    int64_t t0 = now; /* each call's end is the next one's start: one clock read per call */
    while (t->len > 0 && t->heap[0].when_ns <= now && t->heap[0].seq < bound) {
        zt__timer_node_t node = s_pop(t);
        zt_reactor_fn *fn = node.fn;
        void *arg = node.arg;
        zt_delayed_call_t *c = NULL; /* the call object, when the call has a handle */
        if (!fn) {
            c = node.call;
            if (s_is_stale(&node)) {
                t->stale--;
                s_call_unref(t, c);
                continue;
            }
            c->state = ZT__CALL_CALLED;
            fn = c->fn;
            arg = c->arg;
        }
        fn(arg);
        int64_t t1 = zt_time_now_ns();
        zt__reactor_account(r, t1 - t0, ZT__FN(fn));
        t0 = t1;
        if (c)
            s_call_unref(t, c);
        ran++;
    }
    return ran;
}

int64_t
zt__timers_next_delay_ns(zt_reactor_t *r, int64_t now_ns)
{
    zt__timers_t *t = &r->timers;
    while (t->len > 0 && s_is_stale(&t->heap[0])) {
        zt__timer_node_t node = s_pop(t);
        t->stale--;
        s_call_unref(t, node.call);
    }
    if (t->len == 0)
        return -1;
    int64_t delay = t->heap[0].when_ns - now_ns;
    return delay > 0 ? delay : 0;
}

size_t
zt__timers_pending(const zt__timers_t *t)
{
    return t->len - t->stale;
}

void
zt__timers_fini(zt__timers_t *t)
{
    ZT_ASSERT_MSG(t->user_handles == 0,
                  "release every zt_delayed_call_t handle before destroying its reactor");
    for (size_t i = 0; i < t->nslabs; i++)
        free(t->slabs[i]);
    free(t->slabs);
    free(t->free);
    free(t->heap);
    *t = (zt__timers_t){0};
}

/* Schedule on the reactor's own heap; zt_reactor_call_later's contract. */
static int
s_call_later(zt_reactor_t *r, double seconds, zt_reactor_fn *fn, void *arg,
             zt_delayed_call_t **call_p)
{
    if (!fn || isnan(seconds))
        return ZT_EINVAL;
    if (!call_p) {
        /* No handle: nothing can ever refer to the call, so its node is all of it. */
        zt__timers_t *t = &r->timers;
        int64_t when_ns = s_deadline(zt_time_now_ns(), seconds);
        if (s_reserve(t) != 0)
            return ZT_ENOMEM;
        zt__timer_node_t node = {.when_ns = when_ns, .seq = t->next_seq++, .fn = fn, .arg = arg};
        s_sift_up(t->heap, t->len++, &node);
        return 0;
    }
    zt_delayed_call_t *c = zt__timers_schedule_own(r, seconds, fn, arg);
    if (!c)
        return ZT_ENOMEM;
    c->refs++;
    c->user_ref = true;
    r->timers.user_handles++;
    *call_p = c;
    return 0;
}

int
zt_reactor_call_later(zt_reactor_t *self, double seconds, zt_reactor_fn *fn, void *arg,
                      zt_delayed_call_t **call_p)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (self->ext_clock)
        return zt_clock_call_later(self->ext_clock, seconds, fn, arg, call_p);
    return s_call_later(self, seconds, fn, arg, call_p);
}

zt_delayed_call_t *
zt__timers_schedule(zt_reactor_t *r, double seconds, zt_reactor_fn *fn, void *arg)
{
    if (!r->ext_clock)
        return zt__timers_schedule_own(r, seconds, fn, arg);
    zt_delayed_call_t *c = NULL;
    return zt_clock_call_later(r->ext_clock, seconds, fn, arg, &c) == 0 ? c : NULL;
}

void
zt__timers_drop(zt_reactor_t *r, zt_delayed_call_t **call_p)
{
    zt_delayed_call_t *c = *call_p;
    if (!c)
        return;
    *call_p = NULL;
    if (zt_delayed_call_is_active(c))
        zt_delayed_call_cancel(c);
    if (r->ext_clock)
        zt_delayed_call_release(&c);
}

/* --- the reactor's clock interface: the operations behind zt_delayed_call_* ------------------- */

/* Whether a handle may still be cancelled or moved. Its callers check the thread themselves, so
 * that an abort names the public call. */
static int
s_check_pending(const zt_delayed_call_t *self)
{
    if (self->state == ZT__CALL_CALLED)
        return ZT_EALREADY;
    if (self->state == ZT__CALL_CANCELLED)
        return ZT_ECANCELLED;
    return 0;
}

static int
s_op_cancel(void *r, zt_delayed_call_t *self)
{
    ZT__ASSERT_REACTOR_THREAD((zt_reactor_t *)r);
    int rc = s_check_pending(self);
    if (rc != 0)
        return rc;
    self->state = ZT__CALL_CANCELLED;
    s_mark_stale(&self->reactor->timers);
    return 0;
}

/* Move a pending call to when_ns under a new sequence number; its old node turns stale. */
static int
s_reschedule(zt_delayed_call_t *self, int64_t when_ns)
{
    zt__timers_t *t = &self->reactor->timers;
    int rc = s_push(t, self, when_ns);
    if (rc != 0)
        return rc;
    s_mark_stale(t);
    return 0;
}

static int
s_op_reset(void *r, zt_delayed_call_t *self, double seconds)
{
    ZT__ASSERT_REACTOR_THREAD((zt_reactor_t *)r);
    int rc = s_check_pending(self);
    if (rc != 0)
        return rc;
    if (isnan(seconds))
        return ZT_EINVAL;
    return s_reschedule(self, s_deadline(zt_time_now_ns(), seconds));
}

static int
s_op_delay(void *r, zt_delayed_call_t *self, double seconds)
{
    ZT__ASSERT_REACTOR_THREAD((zt_reactor_t *)r);
    int rc = s_check_pending(self);
    if (rc != 0)
        return rc;
    if (isnan(seconds))
        return ZT_EINVAL;
    int64_t when = self->when_ns;
    if (seconds >= 0)
        when = s_deadline(when, seconds);
    else
        when -= (int64_t)llround(fmin(-seconds, 1e9) * 1e9);
    return s_reschedule(self, when);
}

static double
s_op_get_time(void *r, const zt_delayed_call_t *self)
{
    (void)r;
    ZT_ASSERT(self && self->state != ZT__CALL_FREE);
    return (double)self->when_ns / 1e9;
}

static zt_delayed_call_state_t
s_op_state(void *r, const zt_delayed_call_t *self)
{
    (void)r;
    ZT_ASSERT(self && self->state != ZT__CALL_FREE);
    switch (self->state) {
    case ZT__CALL_CALLED:
        return ZT_DELAYED_CALL_CALLED;
    case ZT__CALL_CANCELLED:
        return ZT_DELAYED_CALL_CANCELLED;
    default:
        return ZT_DELAYED_CALL_PENDING;
    }
}

static void
s_op_release(void *r, zt_delayed_call_t *c)
{
    (void)r;
    ZT_ASSERT(c->user_ref && c->state != ZT__CALL_FREE);
    ZT__ASSERT_REACTOR_THREAD(c->reactor);
    c->user_ref = false;
    c->reactor->timers.user_handles--;
    s_call_unref(&c->reactor->timers, c);
}

static double
s_op_seconds(void *r)
{
    (void)r;
    return (double)zt_time_now_ns() / 1e9;
}

static int
s_op_call_later(void *r, double seconds, zt_clock_fn *fn, void *arg, zt_delayed_call_t **call_p)
{
    ZT__ASSERT_REACTOR_THREAD((zt_reactor_t *)r);
    return s_call_later(r, seconds, fn, arg, call_p);
}

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The live nodes' times, sorted: a heap walk, for diagnostics and tests, not a hot path. */
static size_t
s_op_delayed_calls(void *r_, double *times, size_t max)
{
    zt_reactor_t *r = r_;
    zt__timers_t *t = &r->timers;
    size_t live = zt__timers_pending(t);
    if (max == 0)
        return live;
    double *all = malloc((live ? live : 1) * sizeof *all);
    if (!all)
        return live; /* out of memory: the count is still right, the times are not filled */
    size_t n = 0;
    for (size_t i = 0; i < t->len; i++)
        if (!s_is_stale(&t->heap[i]))
            all[n++] = (double)t->heap[i].when_ns / 1e9;
    qsort(all, n, sizeof *all, s_cmp_double);
    for (size_t i = 0; i < n && i < max; i++)
        times[i] = all[i];
    free(all);
    return live;
}

void
zt__timers_clock_init(zt_reactor_t *r)
{
    r->clock = (zt_clock_t){.self = r,
                            .seconds = s_op_seconds,
                            .call_later = s_op_call_later,
                            .cancel = s_op_cancel,
                            .reset = s_op_reset,
                            .delay = s_op_delay,
                            .get_time = s_op_get_time,
                            .state = s_op_state,
                            .release = s_op_release,
                            .delayed_calls = s_op_delayed_calls};
}

zt_reactor_t *
zt_reactor_new_with_clock(zt_test_clock_t *clock)
{
    ZT_ASSERT(clock);
    zt_reactor_t *self = zt_reactor_new();
    if (self)
        self->ext_clock = zt_test_clock_clock(clock);
    return self;
}
