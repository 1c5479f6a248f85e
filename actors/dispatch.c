/*  actors/dispatch.c - the pool's reactor side: workers' start and end, batches, stealing,
 * results
 *
 *  Design notes.
 *
 *  Actors. A worker is a thread with its own inproc DEALER socket, connected to the pool's one
 * ROUTER, which the reactor polls with zt_reactor_add_socket; the worker's routing id is its
 * number in the pool. One ROUTER rather than a PAIR per worker keeps the reactor's poll set at one
 * socket per pool, however many threads. Start handshake: the worker sends "started" once
 * connected and is counted as starting until that message arrives, so the reactor never blocks on
 * a thread start (and never sends to a worker the ROUTER does not know yet). Stop: the reactor
 * sends "T" to an idle worker, the worker answers "bye" and returns, and the reactor joins it when
 * the bye arrives (the join is then immediate).
 *
 *  Ownership. Everything here runs on the reactor thread: the pool, the queue, every worker's
 * bookkeeping and every Deferred. Between dispatch and the result message an item belongs to its
 * worker: the reactor reads only its `state` and `cancel` atomics.
 *
 *  Dispatch: only idle workers get work. Each worker owns a batch: an array of item pointers plus
 * one atomic word packing (head, tail). The reactor fills the array while the worker does not read
 * it, stores the range (release), bumps the batch number `gen` and hands it over through the
 * worker's `signal` (parker.c): an exchange to WORK, and a "B" message only when the worker sleeps.
 * Batch size: the queue divided by the threads, at most ZT__BATCH_MAX. So with a shallow queue
 * every batch is one item and goes to a worker that has nothing else to do; only when more items
 * wait than there are threads do batches grow, which divides the messages per item by up to
 * ZT__BATCH_MAX in both directions. Work submitted by the callbacks of one result message is
 * dispatched once, after the message, so that it forms one batch rather than one per callback.
 *
 *  No item waits behind a long task while a worker is idle: a worker that finds its batch
 * exhausted reports idle; if the queue is empty then, the reactor steals half of the unclaimed
 * items of the busiest worker's batch by lowering its tail with a CAS (acq_rel) and gives them to
 * the idle worker. A claimed item is never taken back. Only a worker that has started its batch
 * (claimed one item) is stolen from: one that has not is still waking up. A worker that has
 * finished (its signal is not WORK) is handed its next batch before its idle message is read; that
 * message then names an older `gen` and does not make the worker idle again.
 *
 *  Results arrive as messages of item pointers (worker.c); the reactor loads the worker's
 * `results_sent` with acquire after reading one, pairing with the worker's release, and delivers
 * each item: fires its Deferred, or frees a tombstone.  */
#include "pool_impl.h"
#include "base/zmq_ctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static void s_on_router_msg(zt_reactor_t *r, void *sock, void *arg);

/* Open the ROUTER the workers connect to and have the reactor poll it. Returns 0 or ZT_ESYS. */
static int
s_open_router(zt_pool_t *p)
{
    if (p->router)
        return 0;
    snprintf(p->endpoint, sizeof p->endpoint, "inproc://ztwist-pool-%llu",
             (unsigned long long)p->serial);
    int linger = 0, hwm = 0;
    p->router = zmq_socket(p->zmq_ctx, ZMQ_ROUTER);
    if (!p->router)
        goto failed;
    zmq_setsockopt(p->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(p->router, p->endpoint) != 0)
        goto failed;
    if (zt_reactor_add_socket(p->reactor, p->router, s_on_router_msg, p) != 0)
        goto failed;
    return 0;
failed:
    ZT_LOG_ERROR("pool: cannot open its socket: %s", zmq_strerror(zmq_errno()));
    if (p->router)
        zmq_close(p->router);
    p->router = NULL;
    return ZT_ESYS;
}

/* Start one worker thread. Returns 0, ZT_ENOMEM or ZT_ESYS (logged). */
int
zt__pool_start_worker(zt_pool_t *p)
{
    if (s_open_router(p) != 0)
        return ZT_ESYS;
    if (p->nworkers == p->capworkers) {
        size_t cap = p->capworkers ? p->capworkers * 2 : 8;
        zt__worker_t **ws = realloc(p->workers, cap * sizeof *ws);
        if (!ws)
            return ZT_ENOMEM;
        p->workers = ws;
        p->capworkers = cap;
    }
    zt__worker_t *w = aligned_alloc(64, (sizeof *w + 63) / 64 * 64);
    if (w)
        memset(w, 0, sizeof *w);
    if (!w)
        return ZT_ENOMEM;
    w->pool = p;
    w->state = ZT__W_STARTING;
    atomic_init(&w->range, 0);
    atomic_init(&w->results_sent, 0);
    atomic_init(&w->current, NULL);
    atomic_init(&w->link, 0);
    atomic_init(&w->exit_state, ZT__X_RUNNING);
    atomic_init(&w->signal, ZT__SIG_IDLE);
    w->spin = p->spin;
    atomic_init(&w->spins, 0);
    /* Odd, so that the first byte (little-endian) is never 0: ZeroMQ reserves routing ids that
     * start with a zero byte. */
    w->id = p->next_worker++ * 2 + 1;
    memcpy(w->endpoint, p->endpoint, sizeof w->endpoint);
    if (pthread_create(&w->thread, NULL, zt__worker_main, w) != 0) {
        ZT_LOG_ERROR("pool: cannot start a worker thread");
        free(w);
        return ZT_ESYS;
    }
    p->workers[p->nworkers++] = w;
    p->nstarting++;
    return 0;
}

/* Join a worker that said bye (or exited) and forget it. */
static void
s_reap_worker(zt_pool_t *p, zt__worker_t *w)
{
    pthread_join(w->thread, NULL);
    p->spins_reaped += atomic_load(&w->spins);
    for (size_t i = 0; i < p->nworkers; i++) {
        if (p->workers[i] == w) {
            p->workers[i] = p->workers[--p->nworkers];
            break;
        }
    }
    free(w);
}

static void
s_set_state(zt_pool_t *p, zt__worker_t *w, zt__worker_state_t state)
{
    size_t *counts[] = {&p->nstarting, &p->nidle, &p->nbusy, NULL};
    if (w->state != ZT__W_STOPPING)
        (*counts[w->state])--;
    w->state = state;
    if (state != ZT__W_STOPPING)
        (*counts[state])++;
}

static void
s_send_cmd(zt__worker_t *w, char cmd)
{
    zt_pool_t *p = w->pool;
    while (zmq_send(p->router, &w->id, sizeof w->id, ZMQ_SNDMORE) < 0 && zmq_errno() == EINTR) {
    }
    while (zmq_send(p->router, &cmd, 1, 0) < 0 && zmq_errno() == EINTR) {
    }
}

/* End idle workers above max (or all of them while stopping). */
void
zt__pool_trim(zt_pool_t *p, bool all)
{
    for (size_t i = 0; i < p->nworkers; i++) {
        zt__worker_t *w = p->workers[i];
        size_t live = p->nidle + p->nbusy + p->nstarting;
        if (w->state != ZT__W_IDLE || (!all && live <= p->max))
            continue;
        s_set_state(p, w, ZT__W_STOPPING);
        s_send_cmd(w, 'T');
    }
}

static void
s_give_batch(zt__worker_t *w, uint32_t n)
{
    w->gen++;
    atomic_store_explicit(&w->range, zt__pack(0, n), memory_order_release);
    s_set_state(w->pool, w, ZT__W_BUSY);
    if (atomic_exchange(&w->signal, ZT__SIG_WORK) == ZT__SIG_SLEEP)
        s_send_cmd(w, 'B'); /* it sleeps in recv: wake it */
}

static void
s_on_recheck(void *arg)
{
    zt_pool_t *p = arg;
    zt_delayed_call_release(&p->recheck);
    zt__pool_dispatch(p);
}

/* Take up to half of the unclaimed items of the busiest worker's batch for idle worker w. */
static bool
s_steal(zt_pool_t *p, zt__worker_t *w)
{
    zt__worker_t *victim = NULL;
    uint32_t best = 0;
    bool waking = false; /* a batch with unclaimed items whose worker has not claimed one yet */
    for (size_t i = 0; i < p->nworkers; i++) {
        zt__worker_t *v = p->workers[i];
        if (v->state != ZT__W_BUSY)
            continue;
        /* Only from a worker that has started its batch (head > 0): one that has not is merely
         * waking up, and taking its items would only wake a second thread for them. */
        uint64_t r = atomic_load_explicit(&v->range, memory_order_acquire);
        uint32_t rem = (uint32_t)(r >> 32) - (uint32_t)r;
        if ((uint32_t)(r >> 32) > (uint32_t)r && (uint32_t)r == 0)
            waking = true;
        if ((uint32_t)r > 0 && (uint32_t)(r >> 32) > (uint32_t)r && rem > best) {
            best = rem;
            victim = v;
        }
    }
    if (!victim) {
        /* Its first item may be a long one: look again shortly, or the rest of its batch could
         * wait behind it while w sits idle (no message would come to trigger another look). */
        if (waking && !p->recheck && !atomic_load(&p->stopped))
            (void)zt_reactor_call_later(p->reactor, ZT__POOL_RECHECK_S, s_on_recheck, p,
                                        &p->recheck);
        return false;
    }
    uint64_t r = atomic_load_explicit(&victim->range, memory_order_acquire);
    for (;;) {
        uint32_t head = (uint32_t)r, tail = (uint32_t)(r >> 32);
        if (head >= tail)
            return false;
        uint32_t k = (tail - head + 1) / 2;
        if (atomic_compare_exchange_weak_explicit(&victim->range, &r, zt__pack(head, tail - k),
                                                  memory_order_acq_rel, memory_order_acquire)) {
            memcpy(w->items, &victim->items[tail - k], k * sizeof w->items[0]);
            s_give_batch(w, k);
            return true;
        }
    }
}

/* A worker that can take a batch: an idle one, or a busy one that has finished its batch (its
 * signal is IDLE or SLEEP, and it no longer reads its batch) whose idle message is still on its
 * way. NULL when every worker is busy. */
static zt__worker_t *
s_find_free(zt_pool_t *p)
{
    /* The one that finished last first: it may not have gone to sleep yet, and then takes the
     * batch without a message and without a wake-up. */
    for (size_t i = 0; i < p->nworkers; i++) {
        zt__worker_t *w = p->workers[i];
        if (w->state == ZT__W_BUSY &&
            atomic_load_explicit(&w->signal, memory_order_acquire) != ZT__SIG_WORK)
            return w;
    }
    for (size_t i = 0; i < p->nworkers; i++)
        if (p->workers[i]->state == ZT__W_IDLE)
            return p->workers[i];
    return NULL;
}

void
zt__pool_dispatch(zt_pool_t *p)
{
    zt__worker_t *w;
    while ((p->qlen > 0 || p->nbusy > 0) && (w = s_find_free(p)) != NULL) {
        size_t threads = p->nidle + p->nbusy + p->nstarting;
        size_t k = (p->qlen + threads - 1) / threads;
        if (k > ZT__BATCH_MAX)
            k = ZT__BATCH_MAX;
        uint32_t n = 0;
        zt__work_t *item;
        while (n < k && (item = zt__queue_pop(p)) != NULL)
            w->items[n++] = item;
        if (n > 0)
            s_give_batch(w, n);
        else if (!s_steal(p, w))
            break;
    }
    /* Grow: a thread for each waiting item no idle or starting thread will take. */
    while (!p->held && p->qlen > p->nstarting && p->nidle + p->nbusy + p->nstarting < p->max &&
           !atomic_load(&p->stopped)) {
        if (zt__pool_start_worker(p) != 0)
            break;
    }
}

/* Deliver one finished item on the reactor thread. */
static void
s_deliver(zt_pool_t *p, zt__work_t *item)
{
    if (atomic_load_explicit(&item->state, memory_order_acquire) == ZT__ITEM_CANCELLED) {
        zt__item_free_tombstone(item);
        return;
    }
    p->completed++;
    if (item->kind == ZT__WORK_DEFER) {
        zt_deferred_t *d = item->x.d;
        if (zt_deferred_is_called(d))
            zt_result_release(&item->u.result); /* cancelled while running: discard */
        else
            zt_deferred_callback(d, item->u.result);
        zt_deferred_unref(&d);
    }
    zt__item_release(p, item);
}

/* Handle one message from worker w. Returns false when w was reaped. */
static bool
s_handle_msg(zt_pool_t *p, zt__worker_t *w, const zt__outbox_t *msg, size_t size)
{
    if (size < 16)
        return true;
    atomic_load_explicit(&w->results_sent, memory_order_acquire);
    uint32_t n = msg->n;
    if (n > ZT__BATCH_MAX || size != 16 + n * sizeof(zt__work_t *))
        return true;
    p->delivering++;
    for (uint32_t i = 0; i < n; i++)
        s_deliver(p, msg->items[i]);
    p->delivering--;
    switch (msg->type) {
    case 'S':
    case 'I':
        /* A worker that finished is handed its next batch as soon as its signal says so, often
         * before this message is read: then the message is about an older batch. */
        if (w->state != ZT__W_STOPPING && msg->gen == w->gen)
            s_set_state(p, w, ZT__W_IDLE);
        if (atomic_load(&p->stopped) && p->qlen == 0)
            break;
        zt__pool_trim(p, false);
        break;
    case 'X':
        s_reap_worker(p, w);
        return false;
    default:
        break;
    }
    return true;
}

static zt__worker_t *
s_worker_by_id(zt_pool_t *p, uint32_t id)
{
    for (size_t i = 0; i < p->nworkers; i++)
        if (p->workers[i]->id == id)
            return p->workers[i];
    return NULL;
}

/* Read up to ZT__READ_BURST messages from the workers: [routing id][message]. */
void
zt__pool_read_router(zt_pool_t *p)
{
    zt__outbox_t *msg = p->inbox;
    for (int i = 0; i < ZT__READ_BURST && p->router; i++) {
        uint32_t id = 0;
        int rc = zmq_recv(p->router, &id, sizeof id, ZMQ_DONTWAIT);
        if (rc < 0)
            break;
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt(p->router, ZMQ_RCVMORE, &more, &more_size);
        if (!more)
            continue;
        rc = zmq_recv(p->router, msg, sizeof *msg, 0);
        zt__worker_t *w = rc >= 0 && (size_t)rc <= sizeof *msg ? s_worker_by_id(p, id) : NULL;
        if (w)
            s_handle_msg(p, w, msg, (size_t)rc);
    }
}

static void
s_on_router_msg(zt_reactor_t *r, void *sock, void *arg)
{
    (void)r;
    (void)sock;
    zt_pool_t *p = arg;
    zt__pool_read_router(p);
    zt__pool_dispatch(p);
}
