/*  runtime/mailbox.c - zt_reactor_call_from_thread: calls from any thread, as inproc ZeroMQ
 * messages
 *
 *  Design notes.
 *
 *  Transport. Each reactor binds a PULL socket (its mailbox) to a unique inproc endpoint. Each
 * producer thread keeps, in thread-local storage, one PUSH socket per reactor it has called, so
 * that a call is one 16-byte zmq_send (fn, arg) with no lock and no allocation; ZeroMQ keeps the
 * per-producer order, and wakes the reactor's zmq_poll when its pipe turns non-empty. A
 * mutex-guarded shared socket was the alternative: it serialises every producer on one lock (see
 * bench/bench_reactor.c, which measures both against raw inproc ZeroMQ). The reactor thread itself
 * never sends to its own mailbox (it could deadlock on a full pipe): its calls go to a local FIFO
 * run on the next pass.
 *
 *  The producer's cost. A call is one zmq_send plus a few checks, and what those checks cost
 * depends on the code's shape more than on their count. So the fast path is a function of its own
 * that does only the checks, and everything else (a first call, another reactor, the reactor's
 * own thread, a stopped reactor) goes to zt__call_from_thread, whose error reporting is cold and
 * out of line. The thread-local record is initial-exec TLS (ZT__TLS_FAST): in the shared library
 * the default model calls __tls_get_addr on every access. docs/performance.md has the figures.
 *
 *  Liveness: a reactor outlives every thread that calls it (reactor.h), so a producer may always
 * read the reactor it calls. Calls after the loop has ended are refused through `accepting`, with
 * a handshake: a producer publishes the reactor in its hazard slot (seq_cst), then checks
 * `accepting`, sends, and clears the hazard; zt__mailbox_quiesce clears `accepting`, waits until no
 * hazard slot holds the reactor (draining the mailbox meanwhile, so a producer blocked on a full
 * pipe gets through) and then runs every call that was accepted, so a call that returned 0 runs,
 * unless the reactor is destroyed without running (destroy logs how many were dropped).
 *
 *  Sockets. A producer keeps, per reactor it called, a PUSH socket, and remembers the last one
 * (last_reactor, last_push) for the fast path. Producers' sockets are closed at thread exit (a
 * pthread key destructor), or by destroy for the reactor's own ones: under s_lock, destroy closes
 * them and clears last_reactor where it names the reactor, so that a reactor later allocated at
 * the same address is not mistaken for it. No producer uses them then (the liveness contract), and
 * ZeroMQ allows closing a socket from another thread after a full barrier (s_lock).
 *
 *  ThreadSanitizer: libzmq's pipes order a message's send before its receive with their own
 * atomics, which TSan cannot see; under TSan (only) each send does a release increment of
 * r->tsan_sync and each receive an acquire load of it, so the hand-off of arg is visible to it
 * without suppressing any ztwist frame.
 *
 *  Full mailbox: a send waits up to ZT_REACTOR_MAILBOX_TIMEOUT_MS for room, then fails with
 * ZT_EFULL and logs. Nothing is dropped silently.
 *
 *  Pacing. A reactor that keeps up with a producer call by call reads each message just as the
 * producer writes it, so both wait on the same few cache lines (the message's slot and the pipe's
 * counters) for every call; when the two cores are far apart that wait is most of the cost, while
 * a reactor that finds a batch already written reads it several times faster. The drain therefore
 * times one receive in ZT__PACE_SAMPLE (zt__cycles, a few ns) and keeps the fastest of them as the
 * floor of what a receive costs. A window of ZT__PACE_WINDOW calls whose fastest sampled receive
 * took ZT__PACE_RATIO times the floor was spent waiting at the head of the pipe. When
 * ZT__PACE_STRIKES such windows come in a row (not a one-off stall) and they cost more than
 * ZT__PACE_MIN_CALL_NS a call (below that the cores share a cache and lock-step is cheap), the
 * reactor steps back (spins, touching nothing the producer writes) for twice the window's time, at
 * most ZT__PACE_MAX_NS, and the producer runs ahead. Slow callbacks do not trigger it (the
 * receives stay fast), nor does a reactor that is behind; calls that arrive one by one or in
 * bursts under a window never fill one. The floor drifts up by 1/256 of the gap per window, so a
 * slower machine state is learned. Where there is no cheap cycle counter (ZT__HAS_CYCLES is 0)
 * the drain does not pace. The measurements behind this are in docs/performance.md.  */
#include "runtime.h"
#include "base/zmq_ctx.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

#define ZT__TIMING_GROUP 32   /* mailbox calls timed together when no watchdog is set */
#define ZT__PACE_WINDOW 32    /* calls judged together by the pacing */
#define ZT__PACE_SAMPLE 8     /* one receive in this many is timed */
#define ZT__PACE_RATIO 5      /* a window this many times slower than the floor was lock-step */
#define ZT__PACE_MAX_NS 50000 /* the longest the reactor steps back at once */
#define ZT__PACE_STRIKES 2    /* lock-step windows in a row before a pause (not a one-off stall) */
#define ZT__PACE_MIN_CALL_NS 200 /* ... and only when lock-step costs more than this a call */

#define ZT__PACING ZT__HAS_CYCLES

/* One PUSH socket of a producer thread, for one reactor. */
typedef struct s_link {
    zt_reactor_t *reactor; /* Borrowed: the live reactor it feeds, or NULL for an empty slot */
    void *push;            /* Owned: the PUSH socket connected to reactor's mailbox */
} s_link_t;

/* A producer thread's record. The fields under "own" are only touched by the thread itself,
 * except links and last_reactor, which destroy clears under s_lock for the reactor it destroys. */
typedef struct s_producer {
    _Atomic(zt_reactor_t *) hazard;       /* the reactor this thread is using right now, or NULL */
    _Atomic(zt_reactor_t *) last_reactor; /* own: the reactor called last (relaxed) */
    void *last_push;                      /* own: its PUSH socket */
    uint64_t tid;                         /* own: zt__thread_id() of the thread */
    s_link_t *links;                      /* Owned, under s_lock: the thread's PUSH sockets */
    size_t nlinks;                        /* slots in links */
    struct s_producer *next;              /* Borrowed, under s_lock: the registry's list */
} s_producer_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the producers' list */
static s_producer_t *s_producers;                     /* Borrowed: every producer thread's record */
static atomic_uint_fast64_t s_serial;                 /* numbers the mailbox endpoints */
static pthread_once_t s_key_once = PTHREAD_ONCE_INIT; /* creates s_key */
static pthread_key_t s_key;                           /* runs s_producer_exit at thread exit */
static _Thread_local s_producer_t *s_self ZT__TLS_FAST; /* this thread's record, or NULL */

/* --- the reactor's side ------------------------------------------------------------------- */

int
zt__mailbox_open(zt_reactor_t *r)
{
    r->mailbox = zmq_socket(r->zmq_ctx, ZMQ_PULL);
    if (!r->mailbox)
        goto failed;
    int hwm = ZT_REACTOR_MAILBOX_HWM;
    int linger = 0;
    zmq_setsockopt(r->mailbox, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r->mailbox, ZMQ_LINGER, &linger, sizeof linger);
    snprintf(r->endpoint, sizeof r->endpoint, "inproc://ztwist-reactor-%llu",
             (unsigned long long)atomic_fetch_add(&s_serial, 1));
    if (zmq_bind(r->mailbox, r->endpoint) != 0)
        goto failed;
    return 0;
failed:
    ZT_LOG_ERROR("cannot open the reactor's mailbox: %s", zmq_strerror(zmq_errno()));
    return ZT_ESYS;
}

static void
s_run_msg(zt_reactor_t *r, zt__call_msg_t msg, int64_t *t0)
{
    msg.fn(msg.arg);
    int64_t t1 = zt_time_now_ns();
    zt__reactor_account(r, t1 - *t0, ZT__FN(msg.fn));
    *t0 = t1;
}

/* Judge a window whose fastest sampled receive took recv_cycles (see Pacing); returns the time
 * after any pause. */
static int64_t
s_pace(zt_reactor_t *r, int64_t window_ns, uint64_t recv_cycles, int64_t now)
{
    if (!ZT__PACING || recv_cycles == UINT64_MAX)
        return now;
    if (r->recv_floor == 0 || recv_cycles < r->recv_floor) {
        r->recv_floor = recv_cycles;
        return now;
    }
    r->recv_floor += (recv_cycles - r->recv_floor) / 256;
    if (recv_cycles < ZT__PACE_RATIO * r->recv_floor ||
        window_ns < ZT__PACE_MIN_CALL_NS * (int64_t)ZT__PACE_WINDOW) {
        r->slow_windows = 0;
        return now;
    }
    if (++r->slow_windows < ZT__PACE_STRIKES)
        return now;
    r->slow_windows = 0;
    int64_t pause = 2 * window_ns < ZT__PACE_MAX_NS ? 2 * window_ns : ZT__PACE_MAX_NS;
    int64_t until = now + pause;
    while ((now = zt_time_now_ns()) < until)
        ;
    r->stats.mailbox_pauses++;
    return now;
}

/* Count in_group calls that ran in elapsed_ns, the last of them fn (see zt__mailbox_drain). Returns
 * whether the group was a new longest, after which calls are timed one by one. */
static bool
s_account_group(zt_reactor_t *r, size_t in_group, int64_t elapsed_ns, zt_reactor_fn *fn)
{
    if (in_group > 1 && (uint64_t)elapsed_ns <= r->stats.longest_callback_ns) {
        r->stats.callbacks_run += in_group;
        return false;
    }
    r->stats.callbacks_run += in_group - 1;
    zt__reactor_account(r, elapsed_ns, ZT__FN(fn));
    return true;
}

size_t
zt__mailbox_drain(zt_reactor_t *r, size_t max)
{
    /* Timing every call costs a clock read per call, as much as a trivial call itself. Without a
     * slow-callback threshold, calls are timed in groups of up to ZT__TIMING_GROUP: a group no
     * longer than the longest callback so far holds no new longest callback, so nothing is lost; a
     * group that is longer is counted as one callback of its whole duration (an upper bound for the
     * longest) and the rest of the batch is timed one by one. The pacing windows are judged at
     * those same clock reads. */
    size_t group = r->slow_threshold_ns > 0 ? 1 : ZT__TIMING_GROUP;
    size_t ran = 0, in_group = 0, in_window = 0;
    int64_t t0 = zt_time_now_ns(), window_t0 = t0;
    uint64_t window_recv = UINT64_MAX; /* the fastest sampled receive of the window */
    zt__call_msg_t msg;
    while (ran < max) {
        bool timed = ZT__PACING && ran % ZT__PACE_SAMPLE == ZT__PACE_SAMPLE - 1;
        uint64_t c0 = timed ? zt__cycles() : 0;
        if (zmq_recv(r->mailbox, &msg, sizeof msg, ZMQ_DONTWAIT) != sizeof msg)
            break;
        uint64_t cycles = timed ? zt__cycles() - c0 : UINT64_MAX;
        if (cycles < window_recv)
            window_recv = cycles;
#ifdef ZT__TSAN
        (void)atomic_load_explicit(&r->tsan_sync, memory_order_acquire);
#endif
        r->stats.mailbox_received++;
        msg.fn(msg.arg);
        ran++;
        if (++in_group < group && ran < max)
            continue;
        int64_t t1 = zt_time_now_ns();
        if (s_account_group(r, in_group, t1 - t0, msg.fn))
            group = 1;
        in_window += in_group;
        in_group = 0;
        if (in_window >= ZT__PACE_WINDOW) {
            t1 = s_pace(r, t1 - window_t0, window_recv, t1);
            window_t0 = t1;
            window_recv = UINT64_MAX;
            in_window = 0;
        }
        t0 = t1;
    }
    if (in_group > 0)
        s_account_group(r, in_group, zt_time_now_ns() - t0, msg.fn);
    return ran;
}

/* Discard what the mailbox holds; returns how many calls were dropped. */
static size_t
s_discard(zt_reactor_t *r)
{
    size_t dropped = 0;
    zt__call_msg_t msg;
    while (zmq_recv(r->mailbox, &msg, sizeof msg, ZMQ_DONTWAIT) == sizeof msg)
        dropped++;
    return dropped;
}

static bool
s_hazard_held(zt_reactor_t *r)
{
    bool held = false;
    pthread_mutex_lock(&s_lock);
    for (s_producer_t *p = s_producers; p && !held; p = p->next)
        held = atomic_load(&p->hazard) == r;
    pthread_mutex_unlock(&s_lock);
    return held;
}

void
zt__mailbox_quiesce(zt_reactor_t *r)
{
    atomic_store(&r->accepting, false);
    /* A producer that saw accepting == true may still be sending: run what arrives meanwhile. */
    while (s_hazard_held(r)) {
        if (zt__mailbox_drain(r, SIZE_MAX) == 0)
            sched_yield();
    }
    do {
        zt__local_run(r);
        zt__mailbox_drain(r, SIZE_MAX);
    } while (r->local.len > 0);
}

void
zt__mailbox_close(zt_reactor_t *r)
{
    if (!r->mailbox)
        return;
    atomic_store(&r->accepting, false);
    size_t dropped = 0;
    /* No producer calls r any more (the liveness contract): close their PUSH sockets for it. */
    pthread_mutex_lock(&s_lock);
    for (s_producer_t *p = s_producers; p; p = p->next) {
        if (atomic_load_explicit(&p->last_reactor, memory_order_relaxed) == r)
            atomic_store_explicit(&p->last_reactor, NULL, memory_order_relaxed);
        for (size_t i = 0; i < p->nlinks; i++) {
            if (p->links[i].reactor == r) {
                zmq_close(p->links[i].push);
                p->links[i] = (s_link_t){0};
            }
        }
    }
    pthread_mutex_unlock(&s_lock);
    dropped += s_discard(r) + r->local.len;
    if (dropped > 0)
        ZT_LOG_WARNING("reactor destroyed with %zu calls from threads that never ran", dropped);
    zmq_close(r->mailbox);
    r->mailbox = NULL;
}

int
zt__queue_push(zt__call_queue_t *q, zt_reactor_fn *fn, void *arg)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        zt__call_msg_t *items = realloc(q->items, cap * sizeof *items);
        if (!items)
            return ZT_ENOMEM;
        q->items = items;
        q->cap = cap;
    }
    q->items[q->len++] = (zt__call_msg_t){.fn = fn, .arg = arg};
    return 0;
}

size_t
zt__local_run(zt_reactor_t *r)
{
    if (r->local.len == 0)
        return 0;
    /* Swap: calls queued by these calls go to the next pass. */
    zt__call_queue_t batch = r->local;
    r->local = r->local_run;
    r->local.len = 0;
    int64_t t0 = zt_time_now_ns();
    for (size_t i = 0; i < batch.len; i++)
        s_run_msg(r, batch.items[i], &t0);
    size_t ran = batch.len;
    batch.len = 0;
    r->local_run = batch;
    return ran;
}

/* --- the producer's side ----------------------------------------------------------------- */

static void
s_producer_exit(void *arg)
{
    s_producer_t *self = arg;
    pthread_mutex_lock(&s_lock);
    for (s_producer_t **pp = &s_producers; *pp; pp = &(*pp)->next) {
        if (*pp == self) {
            *pp = self->next;
            break;
        }
    }
    for (size_t i = 0; i < self->nlinks; i++)
        if (self->links[i].reactor)
            zmq_close(self->links[i].push);
    pthread_mutex_unlock(&s_lock);
    free(self->links);
    free(self);
    s_self = NULL;
}

static void
s_key_create(void)
{
    ZT_ASSERT(pthread_key_create(&s_key, s_producer_exit) == 0);
}

static s_producer_t *
s_producer(void)
{
    if (s_self)
        return s_self;
    pthread_once(&s_key_once, s_key_create);
    s_producer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->tid = zt__thread_id();
    if (pthread_setspecific(s_key, self) != 0) {
        free(self);
        return NULL;
    }
    pthread_mutex_lock(&s_lock);
    self->next = s_producers;
    s_producers = self;
    pthread_mutex_unlock(&s_lock);
    s_self = self;
    return self;
}

/* The slow path: under s_lock, find or make this thread's PUSH socket for r and make it the last
 * one. Returns 0, ZT_ENOMEM or ZT_ESYS. */
static int
s_validate(s_producer_t *self, zt_reactor_t *r)
{
    int rc = 0;
    pthread_mutex_lock(&s_lock);
    s_link_t *link = NULL, *empty = NULL;
    for (size_t i = 0; i < self->nlinks; i++) {
        if (self->links[i].reactor == r)
            link = &self->links[i];
        else if (!self->links[i].reactor && !empty)
            empty = &self->links[i];
    }
    if (!link) {
        if (!empty) {
            s_link_t *links = realloc(self->links, (self->nlinks + 1) * sizeof *links);
            rc = ZT_ENOMEM;
            if (!links)
                goto done;
            self->links = links;
            empty = &self->links[self->nlinks++];
            *empty = (s_link_t){0};
        }
        void *push = zmq_socket(r->zmq_ctx, ZMQ_PUSH);
        int hwm = ZT_REACTOR_MAILBOX_HWM;
        int timeout = ZT_REACTOR_MAILBOX_TIMEOUT_MS;
        int linger = 0;
        rc = ZT_ESYS;
        if (!push)
            goto done;
        zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(push, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
        zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_connect(push, r->endpoint) != 0) {
            ZT_LOG_ERROR("cannot connect to the reactor's mailbox: %s", zmq_strerror(zmq_errno()));
            zmq_close(push);
            goto done;
        }
        *empty = (s_link_t){.reactor = r, .push = push};
        link = empty;
    }
    atomic_store_explicit(&self->last_reactor, r, memory_order_relaxed);
    self->last_push = link->push;
    rc = 0;
done:
    pthread_mutex_unlock(&s_lock);
    return rc;
}

/* A send to the mailbox failed: say why; returns ZT_EFULL or ZT_ESYS. */
ZT__COLD static int
s_send_failed(void)
{
    if (zmq_errno() == EAGAIN) {
        ZT_LOG_ERROR("reactor mailbox full for %d ms: call from thread refused", //
                     ZT_REACTOR_MAILBOX_TIMEOUT_MS);
        return ZT_EFULL;
    }
    ZT_LOG_ERROR("cannot send to the reactor's mailbox: %s", zmq_strerror(zmq_errno()));
    return ZT_ESYS;
}

static int
s_send(s_producer_t *self, zt_reactor_t *r, zt_reactor_fn *fn, void *arg, bool *local)
{
    if (!atomic_load(&r->accepting))
        return ZT_ESHUTDOWN;
    if (atomic_load_explicit(&r->owner, memory_order_relaxed) == self->tid) {
        *local = true;
        return zt__queue_push(&r->local, fn, arg);
    }
    zt__call_msg_t msg = {.fn = fn, .arg = arg};
#ifdef ZT__TSAN
    atomic_fetch_add_explicit(&r->tsan_sync, 1, memory_order_release);
#endif
    if (zmq_send(self->last_push, &msg, sizeof msg, 0) == sizeof msg)
        return 0;
    return s_send_failed();
}

/* The fast path: a thread calling the reactor it called last, which still accepts calls and runs
 * on another thread. It is kept this small on purpose (a smaller frame than the general path's;
 * see the design notes). Everything else goes to zt__call_from_thread. */
int
zt_reactor_call_from_thread(zt_reactor_t *self, zt_reactor_fn *fn, void *arg)
{
    s_producer_t *p = s_self;
    if (ZT__LIKELY(p != NULL &&
                   atomic_load_explicit(&p->last_reactor, memory_order_relaxed) == self &&
                   fn != NULL)) {
        atomic_store(&p->hazard, self);
        if (atomic_load(&self->accepting) &&
            atomic_load_explicit(&self->owner, memory_order_relaxed) != p->tid) {
            zt__call_msg_t msg = {.fn = fn, .arg = arg};
#ifdef ZT__TSAN
            atomic_fetch_add_explicit(&self->tsan_sync, 1, memory_order_release);
#endif
            int sent = zmq_send(p->last_push, &msg, sizeof msg, 0);
            atomic_store_explicit(&p->hazard, NULL, memory_order_release);
            return ZT__LIKELY(sent == sizeof msg) ? 0 : s_send_failed();
        }
        atomic_store_explicit(&p->hazard, NULL, memory_order_release);
    }
    bool local = false;
    return zt__call_from_thread(self, fn, arg, &local);
}

int
zt__call_from_thread(zt_reactor_t *self, zt_reactor_fn *fn, void *arg, bool *local)
{
    *local = false;
    if (!fn)
        return ZT_EINVAL;
    s_producer_t *p = s_producer();
    if (!p)
        return ZT_ENOMEM;
    if (atomic_load_explicit(&p->last_reactor, memory_order_relaxed) != self) {
        int rc = s_validate(p, self);
        if (rc != 0)
            return rc;
    }
    atomic_store(&p->hazard, self);
    int rc = s_send(p, self, fn, arg, local);
    atomic_store_explicit(&p->hazard, NULL, memory_order_release);
    return rc;
}
