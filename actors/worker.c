/*  actors/worker.c - the pool's worker thread: its loop, claiming items, the outbox
 *
 *  Design notes.
 *
 *  A worker runs batches the reactor hands it (dispatch.c) and waits between them in its parker
 * (parker.c). It claims items one at a time by advancing the head of its batch's `range` with a
 * CAS (acq_rel; the reactor stored the range with release after filling the batch, and may lower
 * the tail to steal). It never touches the pool's bookkeeping or a Deferred.
 *
 *  Exactly once. An item's `state` moves QUEUED -> RUNNING (the worker's claim CAS) -> DONE
 * (release store), or QUEUED -> CANCELLED (a canceller's CAS on the reactor): whoever wins the
 * CAS from QUEUED decrements the pool's `queued`. A cancelled item stays where it is as a
 * tombstone; the worker skips it and sends it back, and the reactor frees it. A running item's
 * cancel only sets `cancel` (relaxed; zt_thread_is_cancelled reads it).
 *
 *  The outbox. Results go back as messages of item pointers, the result stored in the item. A
 * worker sends its outbox when its batch is exhausted (type 'I', after storing IDLE in `signal`
 * with release, so that its next batch never finds a stale WORK), when ZT__BATCH_MAX are pending,
 * or when the oldest pending one finished more than ZT__FLUSH_NS ago (checked every
 * ZT__CLOCK_EVERY items, since reading the clock costs as much as a trivial item). A result can
 * thus wait behind a long item of its own batch; batches form only when the queue is deeper than
 * the threads, where throughput, not latency, is what is asked for. Before each send the worker
 * adds the items to `results_sent` with release (the reactor's acquire pairs with it, stating for
 * ThreadSanitizer the ordering libzmq provides).
 *
 *  Detached. A worker holds ZT__L_SENDING in `link` (fetch_or, acq_rel) while it sends, and sends
 * nothing once it sees ZT__L_ORPHANED there: a stop's deadline (pool.c) thus knows each message is
 * either wholly queued before the detach or never sent. A detached worker releases what it holds
 * on its own thread (s_orphan_release: the result, a calls array, one pin of the item's chunk)
 * and never touches the pool or the reactor again. Its `exit_state` exchange decides who frees the
 * worker record.  */
#include "pool_impl.h"
#include "base/zmq_ctx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static _Thread_local zt__work_t *s_current; /* the item the calling worker runs, or NULL */
static _Thread_local bool s_is_worker;      /* the calling thread is a worker */

static void s_orphan_release(zt__work_t *item);

/* Send the outbox, unless the worker has been detached: then its items are released here. */
static void
s_send_out(zt__worker_t *w, void *sock, zt__outbox_t *out, uint32_t type)
{
    out->type = type;
    if (atomic_fetch_or_explicit(&w->link, ZT__L_SENDING, memory_order_acq_rel) & ZT__L_ORPHANED) {
        /* Sends nothing: a stop waiting for an earlier send to end must see ZT__L_SENDING clear. */
        atomic_fetch_and_explicit(&w->link, ~ZT__L_SENDING, memory_order_release);
        for (uint32_t i = 0; i < out->n; i++)
            s_orphan_release(out->items[i]);
        out->n = 0;
        return;
    }
    atomic_fetch_add_explicit(&w->results_sent, out->n, memory_order_release);
    size_t size = 16 + (size_t)out->n * sizeof(zt__work_t *);
    while (zmq_send(sock, out, size, 0) < 0 && zmq_errno() == EINTR) {
    }
    atomic_fetch_and_explicit(&w->link, ~ZT__L_SENDING, memory_order_release);
    out->n = 0;
}

/* Run one item's work on the worker. */
static void
s_run_item(zt__worker_t *w, zt__work_t *item)
{
    atomic_store_explicit(&w->current, item, memory_order_relaxed);
    s_current = item;
    zt_work_fn *fn = item->u.call.fn;
    void *arg = item->u.call.arg;
    switch ((zt__work_kind_t)item->kind) {
    case ZT__WORK_CALL: {
        zt_result_t r = fn(arg);
        ZT_ASSERT_MSG(r.kind != ZT_RESULT_DEFERRED, "work returned zt_wait_for on a worker");
        if (zt_is_err(r)) {
            char buf[256];
            zt_failure_format(zt_result_failure(r), buf, sizeof buf);
            ZT_LOG_ERROR("unhandled failure in call_in_thread: %s", buf);
        }
        zt_result_release(&r);
        break;
    }
    case ZT__WORK_CALLBACK: {
        zt_result_t r = fn(arg);
        ZT_ASSERT_MSG(r.kind != ZT_RESULT_DEFERRED, "work returned zt_wait_for on a worker");
        item->x.on_result(!zt_is_err(r), r, arg);
        break;
    }
    case ZT__WORK_DEFER: {
        zt_result_t r = fn(arg);
        ZT_ASSERT_MSG(r.kind != ZT_RESULT_DEFERRED, "work returned zt_wait_for on a worker");
        item->u.result = r;
        break;
    }
    case ZT__WORK_MULTIPLE: {
        zt_thread_call_t *calls = arg;
        for (zt_thread_call_t *c = calls; c->fn; c++) {
            zt_result_t r = c->fn(c->arg);
            ZT_ASSERT_MSG(r.kind != ZT_RESULT_DEFERRED, "work returned zt_wait_for on a worker");
            if (zt_is_err(r)) {
                char buf[256];
                zt_failure_format(zt_result_failure(r), buf, sizeof buf);
                ZT_LOG_ERROR("unhandled failure in call_multiple_in_thread: %s", buf);
            }
            zt_result_release(&r);
        }
        free(calls);
        break;
    }
    }
    s_current = NULL;
    atomic_store_explicit(&item->state, ZT__ITEM_DONE, memory_order_release);
    atomic_store_explicit(&w->current, NULL, memory_order_relaxed);
}

/* Claim the next unclaimed item of the batch, or NULL when it is exhausted. */
static zt__work_t *
s_claim(zt__worker_t *w)
{
    uint64_t r = atomic_load_explicit(&w->range, memory_order_acquire);
    for (;;) {
        uint32_t head = (uint32_t)r, tail = (uint32_t)(r >> 32);
        if (head >= tail)
            return NULL;
        if (atomic_compare_exchange_weak_explicit(&w->range, &r, zt__pack(head + 1, tail),
                                                  memory_order_acq_rel, memory_order_acquire))
            return w->items[head];
    }
}

static void
s_run_batch(zt__worker_t *w, void *sock, zt__outbox_t *out)
{
    out->gen = w->gen;
    int64_t first_pending = 0;
    uint32_t ran = 0;
    zt__work_t *item;
    while ((item = s_claim(w)) != NULL) {
        if (zt__worker_orphaned(w)) {
            s_orphan_release(item);
            continue;
        }
        uint32_t expect = ZT__ITEM_QUEUED;
        if (atomic_compare_exchange_strong_explicit(&item->state, &expect, ZT__ITEM_RUNNING,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            atomic_fetch_sub_explicit(&item->u.call.pool->queued, 1, memory_order_relaxed);
            s_run_item(w, item);
        }
        /* A tombstone goes back too: the reactor frees it. */
        if (zt__worker_orphaned(w)) {
            s_orphan_release(item);
            continue;
        }
        /* The clock is read once every ZT__CLOCK_EVERY items: reading it costs as much as a trivial
         * item. */
        if (out->n == 0)
            first_pending = zt_time_now_ns();
        out->items[out->n++] = item;
        if (out->n == ZT__BATCH_MAX ||
            (++ran % ZT__CLOCK_EVERY == 0 && zt_time_now_ns() - first_pending > ZT__FLUSH_NS))
            s_send_out(w, sock, out, 'R');
    }
    if (zt__worker_orphaned(w)) {
        for (uint32_t i = 0; i < out->n; i++)
            s_orphan_release(out->items[i]);
        out->n = 0;
        return;
    }
    /* Idle before the reactor can know it: its next batch then finds IDLE or SLEEP, never a
     * stale WORK. */
    atomic_store_explicit(&w->signal, ZT__SIG_IDLE, memory_order_release);
    s_send_out(w, sock, out, 'I');
}

void *
zt__worker_main(void *arg)
{
    zt__worker_t *w = arg;
    s_is_worker = true;
    void *ctx = zt__zmq_ctx_acquire();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    /* Unbounded queues, so that a send never waits on a busy reactor; a send to a reactor that
     * has gone (a detached worker) gives up after a second. */
    int linger = 0, hwm = 0, timeout = 1000;
    if (sock) {
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
        zmq_setsockopt(sock, ZMQ_ROUTING_ID, &w->id, sizeof w->id);
    }
    if (!sock || zmq_connect(sock, w->endpoint) != 0) {
        ZT_LOG_ERROR("pool worker cannot connect: %s", zmq_strerror(zmq_errno()));
        /* The reactor's end sees nothing; stop's deadline will detach this record. */
        goto done;
    }
    zt__outbox_t out = {.n = 0};
    s_send_out(w, sock, &out, 'S');
    bool deep = false;
    zt__parker_t parker;
    zt__parker_init(&parker, &w->signal, &w->link, &w->spins, sock, w->spin);
    while (zt__parker_wait(&parker, deep)) {
        deep = (uint32_t)(atomic_load_explicit(&w->range, memory_order_relaxed) >> 32) > 1;
        s_run_batch(w, sock, &out);
        if (zt__worker_orphaned(w))
            break;
    }
    s_send_out(w, sock, &out, 'X'); /* not sent when detached */
done:
    if (sock)
        zmq_close(sock);
    if (ctx)
        zt__zmq_ctx_release();
    if (atomic_exchange(&w->exit_state, ZT__X_EXITED) == ZT__X_ORPHANED)
        free(w);
    return NULL;
}

/* On a detached worker: release an item without the reactor, which may be gone. The stop that
 * detached the worker has already failed the item's Deferred and dropped its reference. */
static void
s_orphan_release(zt__work_t *item)
{
    uint32_t state = atomic_load_explicit(&item->state, memory_order_acquire);
    if (item->kind == ZT__WORK_DEFER && state == ZT__ITEM_DONE)
        zt_result_release(&item->u.result);
    else if (item->kind == ZT__WORK_MULTIPLE && state != ZT__ITEM_DONE)
        free(item->u.call.arg);
    zt__chunk_unpin(zt__chunk_of(item));
}

bool
zt_thread_is_cancelled(void)
{
    return s_current && atomic_load_explicit(&s_current->cancel, memory_order_relaxed);
}

bool
zt_thread_is_worker(void)
{
    return s_is_worker;
}
