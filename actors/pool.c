/*  actors/pool.c - the pool's API and lifecycle: new, submission, bounds, stats, stop, destroy
 *
 *  Design notes.
 *
 *  A pool is reactor-thread state (pool_impl.h lists its parts). Calls from other threads travel
 * through the reactor's mailbox (threads.c) and are queued here. Back-pressure: `queued` is atomic
 * (relaxed) so that such a call can reserve a place before its item travels through the mailbox;
 * past max_queued a submission fails with ZT_EFULL.
 *
 *  Stop. zt_pool_stop refuses new work, keeps dispatching and delivering until the queue is empty
 * and no worker is busy, then ends every worker ("T", bye, join), all within its deadline, and no
 * later than the reactor's shutdown deadline while the shutdown event fires
 * (zt__reactor_shutdown_left), so that one deadline bounds the reactor's stop. Past the deadline
 * each remaining worker is detached (orphaned), exactly: the reactor takes back the unclaimed
 * part of its batch (CAS on `range`), then sets ZT__L_ORPHANED in its `link` word; if the worker
 * was sending (ZT__L_SENDING), the reactor waits for that send to end and reads the message. After
 * that every record the reactor has not released is in a detached worker's hands: its Deferred
 * fails with ZT_ETIMEDOUT and loses the pool's reference, and its chunk is handed over to the
 * workers (arena.c). One path fails an item (s_item_fail), for unstarted work (ZT_ESHUTDOWN) and
 * work still out (ZT_ETIMEDOUT). One error line counts what was detached.  */
#include "pool_impl.h"
#include "base/zmq_ctx.h"
#include "runtime/extension.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static atomic_uint_fast64_t s_pool_serial; /* numbers the pools' endpoints */

zt_pool_t *
zt_pool_new(zt_reactor_t *reactor, size_t min, size_t max)
{
    if (!reactor || max == 0 || min > max)
        return NULL;
    zt_pool_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->reactor = reactor;
    self->min = min;
    self->max = max;
    self->serial = atomic_fetch_add(&s_pool_serial, 1);
    /* The one setting of the spin, read when the pool is made (docs/threads.md). */
    const char *spin = getenv("ZTWIST_POOL_SPIN");
    self->spin = !(spin && strcmp(spin, "0") == 0);
    atomic_init(&self->stopped, false);
    atomic_init(&self->queued, 0);
    atomic_init(&self->max_queued, 0);
    self->inbox = malloc(sizeof *self->inbox);
    self->zmq_ctx = self->inbox ? zt__zmq_ctx_acquire() : NULL;
    if (!self->zmq_ctx) {
        free(self->inbox);
        free(self);
        return NULL;
    }
    return self;
}

zt_reactor_t *
zt_pool_reactor(const zt_pool_t *self)
{
    ZT_ASSERT(self);
    return self->reactor;
}

/* Open the ROUTER the workers connect to and have the reactor poll it. Returns 0 or ZT_ESYS. */
/* --- submission ------------------------------------------------------------------------ */

int
zt__pool_reserve(zt_pool_t *p)
{
    if (atomic_load(&p->stopped))
        return ZT_ESHUTDOWN;
    uint64_t bound = atomic_load_explicit(&p->max_queued, memory_order_relaxed);
    uint64_t before = atomic_fetch_add_explicit(&p->queued, 1, memory_order_relaxed);
    if (bound > 0 && before >= bound) {
        atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
        return ZT_EFULL;
    }
    return 0;
}

void
zt__pool_unreserve(zt_pool_t *p)
{
    atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
}

/* The first work starts the min threads, and at least one. Returns 0, ZT_ENOMEM or ZT_ESYS. */
static int
s_start(zt_pool_t *p)
{
    if (!p->started) {
        p->started = true;
        while (p->nworkers < p->min)
            if (zt__pool_start_worker(p) != 0)
                break;
    }
    return p->nworkers == 0 ? zt__pool_start_worker(p) : 0;
}

/* Before an item is queued: start the threads, unless the pool is held. Returns 0, ZT_ENOMEM or
 * ZT_ESYS. */
static int
s_ready(zt_pool_t *p)
{
    return p->held ? 0 : s_start(p);
}

/* After an item was queued: hand work to idle workers. Work submitted by callbacks of a result
 * message is dispatched once, after the message: one batch instead of a batch per callback. */
static void
s_kick(zt_pool_t *p)
{
    if (!p->held && p->delivering == 0)
        zt__pool_dispatch(p);
}

/* A new item at the end of the queue (a place is reserved); NULL when out of memory. */
static zt__work_t *
s_queue_item(zt_pool_t *p, zt__work_kind_t kind, zt_work_fn *fn, void *arg)
{
    zt__work_t *item = zt__item_new(p);
    if (!item)
        return NULL;
    item->u.call.fn = fn;
    item->u.call.arg = arg;
    item->x.d = NULL;
    item->u.call.pool = p;
    atomic_init(&item->state, ZT__ITEM_QUEUED);
    atomic_init(&item->cancel, false);
    item->kind = (uint8_t)kind;
    return item;
}

int
zt__pool_submit_reserved(zt_pool_t *p, zt__work_kind_t kind, zt_work_fn *fn, void *arg,
                         zt_on_result_fn *on_result)
{
    ZT_ASSERT(kind != ZT__WORK_DEFER);
    if (atomic_load(&p->stopped)) {
        zt__pool_unreserve(p);
        return ZT_ESHUTDOWN;
    }
    int rc = s_ready(p);
    zt__work_t *item = rc == 0 ? s_queue_item(p, kind, fn, arg) : NULL;
    if (!item) {
        zt__pool_unreserve(p);
        return rc != 0 ? rc : ZT_ENOMEM;
    }
    if (kind == ZT__WORK_CALLBACK)
        item->x.on_result = on_result;
    s_kick(p);
    return 0;
}

static int
s_submit(zt_pool_t *p, zt__work_kind_t kind, zt_work_fn *fn, void *arg, zt_on_result_fn *on_result)
{
    int rc = zt__pool_reserve(p);
    if (rc != 0)
        return rc;
    return zt__pool_submit_reserved(p, kind, fn, arg, on_result);
}

int
zt_pool_call_in_thread(zt_pool_t *self, zt_work_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    if (!fn)
        return ZT_EINVAL;
    return s_submit(self, ZT__WORK_CALL, fn, arg, NULL);
}

int
zt_pool_call_in_thread_with_callback(zt_pool_t *self, zt_on_result_fn *on_result, zt_work_fn *fn,
                                     void *arg)
{
    ZT_ASSERT(self);
    if (!fn || !on_result)
        return ZT_EINVAL;
    return s_submit(self, ZT__WORK_CALLBACK, fn, arg, on_result);
}

/* The Deferred's canceller: unstarted work leaves the queue; running work is told. */
static void
s_cancel(zt_deferred_t *d, void *arg)
{
    (void)d;
    zt__work_t *item = arg;
    uint32_t expect = ZT__ITEM_QUEUED;
    if (atomic_compare_exchange_strong_explicit(&item->state, &expect, ZT__ITEM_CANCELLED,
                                                memory_order_acq_rel, memory_order_acquire))
        atomic_fetch_sub_explicit(&item->u.call.pool->queued, 1, memory_order_relaxed);
    else
        atomic_store_explicit(&item->cancel, true, memory_order_relaxed);
    /* Not fired here: the Deferred fails with CancelledError. */
}

zt_deferred_t *
zt_pool_defer(zt_pool_t *self, zt_work_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    if (!fn)
        return zt_deferred_fail(zt_failure_from_code(ZT_EINVAL, "defer_to_thread without a "
                                                                "function"));
    int rc = zt__pool_reserve(self);
    if (rc == ZT_EFULL)
        return zt_deferred_fail(zt_failure_new(ZT_QUEUE_OVERFLOW,
                                               "the pool's queue is full "
                                               "(%llu items)",
                                               (unsigned long long)atomic_load(&self->max_queued)));
    if (rc != 0)
        return zt_deferred_fail(zt_failure_from_code(rc, "the pool is stopped"));
    rc = s_ready(self);
    if (rc != 0) {
        zt__pool_unreserve(self);
        return zt_deferred_fail(zt_failure_from_code(rc, "cannot start a pool thread"));
    }
    zt__work_t *item = s_queue_item(self, ZT__WORK_DEFER, fn, arg);
    zt_deferred_t *d = item ? zt_deferred_new_with_canceller(s_cancel, item) : NULL;
    if (!d) {
        zt__pool_unreserve(self);
        if (item) /* queued already: it stays as a tombstone, skipped and released later */
            atomic_store_explicit(&item->state, ZT__ITEM_CANCELLED, memory_order_relaxed);
        return zt_deferred_fail(zt_failure_from_code(ZT_ENOMEM, "defer_to_thread"));
    }
    item->x.d = zt_deferred_ref(d);
    s_kick(self);
    return d;
}

/* --- size, bound, stats ------------------------------------------------------------------ */

void
zt__pool_set_held(zt_pool_t *p, bool held)
{
    p->held = held;
    if (!held && p->qlen > 0 && !atomic_load(&p->stopped)) {
        /* Start as the first submission would have. */
        if (s_start(p) != 0)
            ZT_LOG_ERROR("pool: cannot start a thread for the work queued before the run");
        zt__pool_dispatch(p);
    }
}

size_t
zt__pool_min(const zt_pool_t *p)
{
    return p->min;
}

int
zt_pool_adjust_size(zt_pool_t *self, size_t min, size_t max)
{
    ZT_ASSERT(self);
    if (max == 0 || min > max)
        return ZT_EINVAL;
    if (atomic_load(&self->stopped))
        return ZT_ESHUTDOWN;
    self->min = min;
    self->max = max;
    if (self->started) {
        while (self->nidle + self->nbusy + self->nstarting < min)
            if (zt__pool_start_worker(self) != 0)
                break;
    }
    zt__pool_trim(self, false);
    zt__pool_dispatch(self);
    return 0;
}

void
zt_pool_set_max_queued(zt_pool_t *self, size_t max_queued)
{
    ZT_ASSERT(self);
    atomic_store(&self->max_queued, (uint64_t)max_queued);
}

void
zt_pool_stats(const zt_pool_t *self, zt_pool_stats_t *stats)
{
    ZT_ASSERT(self && stats);
    uint64_t spins = self->spins_reaped;
    for (size_t i = 0; i < self->nworkers; i++)
        spins += atomic_load_explicit(&self->workers[i]->spins, memory_order_relaxed);
    *stats = (zt_pool_stats_t){
        .queued = atomic_load_explicit(&self->queued, memory_order_relaxed),
        .working = self->nbusy,
        .idle = self->nidle,
        .total = self->nworkers,
        .completed = self->completed,
        .min = self->min,
        .max = self->max,
        .spins = spins,
    };
}

/* --- stop ------------------------------------------------------------------------------ */

/* Wait up to timeout_ms for the workers' messages and handle what arrived. Returns whether
 * something did. */
static int
s_poll_workers(zt_pool_t *p, long timeout_ms)
{
    if (!p->router)
        return 0;
    zmq_pollitem_t item = {.socket = p->router, .events = ZMQ_POLLIN};
    int rc = zmq_poll(&item, 1, timeout_ms);
    if (rc > 0)
        zt__pool_read_router(p);
    return rc;
}

static long
s_remaining_ms(int64_t deadline_ns)
{
    int64_t left = deadline_ns - zt_time_now_ns();
    return left <= 0 ? 0 : (long)((left + 999999) / 1000000);
}

/* The one way a stop fails an item's Deferred: with code, unless it has fired already (a
 * cancel); then the pool's reference goes. Returns whether a Deferred was failed. */
static bool
s_item_fail(zt__work_t *item, int code, const char *why)
{
    if (item->kind != ZT__WORK_DEFER || !item->x.d)
        return false;
    bool failed = !zt_deferred_is_called(item->x.d);
    if (failed)
        zt_deferred_errback(item->x.d, zt_failure_from_code(code, "%s", why));
    zt_deferred_unref(&item->x.d);
    return failed;
}

/* An item that a stop took from the queue or a batch before it started: its Deferred fails with
 * ZT_ESHUTDOWN and the record is released. Returns whether it was a plain call (never run). */
static bool
s_drop_unstarted(zt_pool_t *p, zt__work_t *item)
{
    uint32_t expect = ZT__ITEM_QUEUED;
    bool plain = false;
    if (atomic_compare_exchange_strong(&item->state, &expect, ZT__ITEM_CANCELLED)) {
        atomic_fetch_sub(&p->queued, 1);
        plain = item->kind != ZT__WORK_DEFER;
        s_item_fail(item, ZT_ESHUTDOWN, "the pool stopped before the work started");
    }
    zt__item_free_tombstone(item); /* drops the Deferred's reference, if still held */
    return plain;
}

/* Take back the unclaimed part of w's batch and mark w detached. Returns the plain calls
 * dropped. */
static size_t
s_orphan(zt_pool_t *p, zt__worker_t *w)
{
    uint64_t r = atomic_load(&w->range);
    while (!atomic_compare_exchange_weak(&w->range, &r, zt__pack((uint32_t)r, (uint32_t)r))) {
    }
    size_t dropped = 0;
    for (uint32_t i = (uint32_t)r; i < (uint32_t)(r >> 32); i++)
        dropped += s_drop_unstarted(p, w->items[i]);
    zt__work_t *cur = atomic_load(&w->current);
    if (cur)
        atomic_store(&cur->cancel, true);
    if (atomic_fetch_or(&w->link, ZT__L_ORPHANED) & ZT__L_SENDING) {
        /* A message is on its way: wait until it is in the ROUTER's queue, to read it below. An
         * inproc send with no high-water mark does not block. */
        while (atomic_load(&w->link) & ZT__L_SENDING)
            sched_yield();
    }
    return dropped;
}

/* Every record the pool has not released now belongs to a detached worker (the messages sent
 * before the detach have been read): fail their Deferreds, then hand their chunks to the
 * workers. Returns the Deferreds failed. */
static size_t
s_fail_detached_items(zt_pool_t *p)
{
    size_t failed = 0;
    zt__chunk_t *next;
    for (zt__chunk_t *c = p->chunks; c; c = next) {
        next = c->lnext;
        uint32_t used = c == p->tail ? p->tail_used : ZT__CHUNK_ITEMS;
        for (uint32_t i = 0; i < used && c->live > 0; i++) {
            zt__work_t *item = &c->items[i];
            if (item->kind != ZT__KIND_RELEASED)
                failed += s_item_fail(item, ZT_ETIMEDOUT,
                                      "the pool's stop deadline passed before the work's result "
                                      "came back");
        }
        if (c->live > 0 && zt__chunk_hand_over(p, c) && c->retired)
            zt__chunk_drop(p, c);
    }
    return failed;
}

/* The stop's deadline passed: detach every worker still there. Logs once what it detached. */
static void
s_detach_all(zt_pool_t *p, double timeout, size_t dropped)
{
    for (size_t i = 0; i < p->nworkers; i++)
        dropped += s_orphan(p, p->workers[i]);
    /* Results sent before the detach are delivered as usual. */
    while (s_poll_workers(p, 0) > 0) {
    }
    size_t failed = s_fail_detached_items(p);
    size_t threads = p->nworkers;
    while (p->nworkers > 0) {
        zt__worker_t *w = p->workers[--p->nworkers];
        char term = 'T';
        if (zmq_send(p->router, &w->id, sizeof w->id, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
            zmq_send(p->router, &term, 1, ZMQ_DONTWAIT);
        p->spins_reaped += atomic_load(&w->spins);
        if (atomic_exchange(&w->exit_state, ZT__X_ORPHANED) == ZT__X_EXITED) {
            pthread_join(w->thread, NULL);
            free(w);
        } else {
            pthread_detach(w->thread);
        }
    }
    ZT_LOG_ERROR("pool stop: deadline of %.3f s passed: %zu thread(s) still running detached, "
                 "%zu Deferred(s) failed with ZT_ETIMEDOUT, %zu plain call(s) never ran",
                 timeout, threads, failed, dropped);
}

int
zt_pool_stop(zt_pool_t *self, double timeout)
{
    ZT_ASSERT(self);
    ZT_ASSERT_MSG(self->delivering == 0, "zt_pool_stop called from a callback of the pool");
    if (atomic_exchange(&self->stopped, true))
        return ZT_EALREADY;
    if (timeout < 0)
        timeout = ZT_POOL_STOP_TIMEOUT;
    /* During the reactor's shutdown, its deadline bounds this wait too. */
    double left = zt__reactor_shutdown_left(self->reactor, timeout);
    if (left < timeout)
        timeout = left;
    int64_t deadline = zt_time_now_ns() + (int64_t)(timeout * 1e9);
    /* Finish the queued work: keep dispatching and delivering until nothing is left. */
    while ((self->qlen > 0 || self->nbusy > 0) && s_remaining_ms(deadline) > 0) {
        if (self->qlen > 0 && self->nworkers == 0 && zt__pool_start_worker(self) != 0)
            break;
        zt__pool_dispatch(self);
        s_poll_workers(self, s_remaining_ms(deadline));
    }
    /* End every worker: $TERM to the idle, then wait for the byes. */
    while (self->nworkers > 0 && s_remaining_ms(deadline) > 0) {
        zt__pool_trim(self, true);
        s_poll_workers(self, s_remaining_ms(deadline));
    }
    /* Past the deadline: drop what never started, detach what still runs. */
    size_t dropped = 0;
    zt__work_t *item;
    while ((item = zt__queue_pop(self)) != NULL)
        dropped += s_drop_unstarted(self, item);
    int rc = 0;
    if (self->nworkers > 0) {
        rc = ZT_ETIMEDOUT;
        s_detach_all(self, timeout, dropped);
    } else if (dropped > 0) {
        ZT_LOG_WARNING("pool stop: %zu calls never ran", dropped);
    }
    if (self->router) {
        zt_reactor_remove_socket(self->reactor, self->router);
        zmq_close(self->router);
        self->router = NULL;
    }
    self->nidle = self->nbusy = self->nstarting = 0;
    return rc;
}

void
zt_pool_destroy(zt_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_pool_t *self = *self_p;
    if (!atomic_load(&self->stopped))
        zt_pool_stop(self, ZT_POOL_STOP_TIMEOUT);
    if (self->recheck) {
        (void)zt_delayed_call_cancel(self->recheck);
        zt_delayed_call_release(&self->recheck);
    }
    free(self->workers);
    free(self->inbox);
    /* The queue is empty now; records still out belong to detached workers, whose late releases
     * free the chunk. */
    if (self->tail)
        zt__chunk_retire(self, self->tail);
    ZT_ASSERT_MSG(!self->chunks, "pool destroy: a chunk still holds records");
    free(self->spare);
    if (self->zmq_ctx)
        zt__zmq_ctx_release();
    free(self);
    *self_p = NULL;
}
