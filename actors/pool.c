/*  actors/pool.c - the pool of worker actors: queue, dispatch to idle workers, batches, results
 *
 *  Design notes.
 *
 *  Actors. A worker is a thread with its own inproc DEALER socket, connected to the pool's one
 * ROUTER, which the reactor polls with zt_reactor_add_socket; the worker's routing id is its
 * number in the pool. One ROUTER rather than a PAIR per worker keeps the reactor's poll set at one
 * socket per pool, however many threads (suggest_thread_pool_size(30) would otherwise add 30
 * sockets to every pass of the loop). Start handshake: the worker sends "started" once connected
 * and is counted as starting until that message arrives, so the reactor never blocks on a thread
 * start (and never sends to a worker the ROUTER does not know yet). Stop: the reactor sends "$TERM"
 * to an idle worker, the worker answers "bye" and returns, and the reactor joins it when the bye
 * arrives (the join is then immediate). zt_pool_stop does the same for every worker with a
 * deadline.
 *
 *  Ownership. Every work item is allocated and released on the reactor thread (calls from other
 * threads travel through the reactor's mailbox and are queued there). Between dispatch and the
 * result message an item belongs to its worker: the reactor reads only its `state` and `cancel`
 * atomics. The pool, the queue and every worker's bookkeeping are reactor-thread only. A Deferred
 * is touched only on the reactor thread.
 *
 *  The queue is an arena. Items are 40-byte records handed out in order from chunks of
 * S_CHUNK_ITEMS (no malloc per item, no header or rounding per item), and the queue is simply the
 * run of records from the cursor (qchunk, qindex) to the last one handed out: no separate array of
 * pointers. A record never moves, so its address names the item to the canceller, to the worker's
 * batch and in the result messages. Each chunk counts its live records; a chunk that no longer
 * hands out records (`retired`: a newer chunk exists, or the pool is gone) is freed when its count
 * drops to 0 (one is kept as a spare), so a finished burst gives its memory back and an orphaned
 * worker's late items free their chunk without the pool. A full chunk whose records are all
 * released is reused in place.
 *
 *  Dispatch: only idle workers get work. Each worker owns a batch: an array of item pointers plus
 * one atomic word packing (head, tail). The reactor fills the array while the worker is idle,
 * stores the range (release), bumps the batch number `gen` and hands it over; the worker claims
 * items one at a time by advancing head with a CAS. Batch size: the queue divided by the threads,
 * at most S_BATCH_MAX. So with a shallow queue every batch is one item and goes to a worker that
 * has nothing else to do; only when more items wait than there are threads do batches grow, which
 * divides the messages per item by up to S_BATCH_MAX in both directions (the 2M tasks/s of
 * bench_pool need that: one inproc message and one wake-up cost about as much as a few hundred
 * trivial items). Work submitted by the callbacks of one result message is dispatched once, after
 * the message, so that it forms one batch rather than one per callback.
 *
 *  No item waits behind a long task while a worker is idle: a worker that finds its batch
 * exhausted reports idle; if the queue is empty then, the reactor steals half of the unclaimed
 * items of the busiest worker's batch by lowering its tail with a CAS and gives them to the idle
 * worker. A claimed item is never taken back. Only a worker that has started its batch (claimed
 * one item) is stolen from: one that has not is still waking up, and stealing from it made a
 * single item bounce between two threads and doubled the round trip.
 *
 *  Handover without a message. Each worker has a `signal` word: IDLE (finished its batch, not
 * reading it any more), WORK (a batch is ready) or SLEEP (blocked in recv). The worker stores IDLE
 * before it sends its idle message; the reactor hands a batch over with an exchange to WORK and
 * sends "batch" only if the old value was SLEEP. So a worker that has finished is given its next
 * batch as soon as the reactor has work, even before its idle message is read (that message then
 * names an older `gen` and does not make the worker idle again). Before it sleeps, one worker in
 * the process at a time spins watching `signal` (IDLE -> SLEEP by CAS; losing the CAS to WORK
 * means the batch came); one at most, so that spinning never takes more than one core:
 *    - after a deep batch (more work is likely at once) for S_SPIN_NS at its normal priority;
 *    - after a shallow one (one item: request-response traffic) for S_IDLE_SPIN_NS at SCHED_IDLE,
 *      so that it runs only on a core nothing else wants. The next item then costs no message and
 *      no wake-up (a thread woken on another core takes 10-20 us on a VM), and no runnable thread
 *      waits for the spinner: at normal priority the same spin doubled ack_server's p99 at 10
 *      connections; at SCHED_IDLE the one-at-a-time round trip went from ~45 to ~25 us and
 *      pipelined TCP doubled, for about 10% on that p99 (bench/README.md).
 *   A thread may leave SCHED_IDLE only if RLIMIT_NICE or CAP_SYS_NICE allows it, so the first pool
 * probes the round trip on a throwaway thread; where it fails, and for a worker whose policy is
 * not SCHED_OTHER (a real-time process), shallow batches get no spin.
 *
 *  Results go back as messages of item pointers, the result stored in the item. A worker flushes
 * its results when its batch is exhausted, when S_BATCH_MAX are pending, or when the oldest
 * pending one finished more than S_FLUSH_NS ago (checked every S_CLOCK_EVERY items, since reading
 * the clock costs as much as a trivial item). A result can thus wait behind a long item of its own
 * batch; batches form only when the queue is deeper than the threads, where throughput, not
 * latency, is what is asked for.
 *
 *  Exactly once. An item's `state` moves QUEUED -> RUNNING (the worker's claim CAS) -> DONE, or
 * QUEUED -> CANCELLED (the canceller's CAS): whoever wins the CAS from QUEUED decrements `queued`.
 * A cancelled item stays where it is as a tombstone; the dispatcher or the worker skips it and the
 * reactor frees it. A running item's cancel only sets `cancel` (zt_thread_is_cancelled) and the
 * Deferred fails at once with CancelledError; the late result finds the Deferred called and is
 * released.
 *
 *  Memory ordering. libzmq is not built with ThreadSanitizer, which therefore cannot see the
 * ordering its pipes provide, so each handover also carries our own: the batch range is stored with
 * release and claimed with acquire, `signal` is exchanged (seq_cst) by the reactor and loaded with
 * acquire by the worker; a worker bumps `results_sent` (release) before sending results and the
 * reactor loads it (acquire) after receiving them.
 *
 *  Back-pressure: `queued` is atomic so that calls from other threads can reserve a place before
 * their item travels through the mailbox; past max_queued a submission fails with ZT_EFULL.
 *
 *  Stop deadline: a worker still running when zt_pool_stop's deadline passes is detached
 * (orphaned), which is exact about who owns each item. The reactor takes back the unclaimed part
 * of its batch (CAS on `range`), then sets L_ORPHANED in its `link` word. The worker holds
 * L_SENDING (fetch_or) while it sends a message and sends nothing once it has seen L_ORPHANED, so
 * a message is either wholly in the ROUTER's queue before the detach (the reactor waits for
 * L_SENDING to clear, then reads and delivers it) or never sent. After that every record the
 * reactor has not released (kind S_KIND_RELEASED marks those it has) is in a detached worker's
 * hands: the reactor fails its Deferred with ZT_ETIMEDOUT and drops its reference, and hands the
 * record's chunk over through the atomic `pins` count (s_chunk_hand_over). The worker releases
 * such records on its own thread (the result, a calls array, one pin) and never touches the pool or
 * the reactor again, so both may be destroyed while it still runs. Its `exit_state` word decides
 * who frees the worker record: the thread when it exits after being orphaned, the pool otherwise.
 */
#define _GNU_SOURCE /* SCHED_IDLE */
#include "actors.h"
#include "base/zmq_ctx.h"
#include "runtime/extension.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_RECHECK_S 0.001 /* a steal retry while the victim wakes up, seconds */
#define S_BATCH_MAX 1024  /* items per batch and results per message */
#define S_FLUSH_NS 100000 /* a worker holds finished results at most this long between items */
#define S_CLOCK_EVERY 8   /* ... as checked every this many items */
#define S_READ_BURST 256  /* messages read from one worker per reactor callback */
#define S_MSG_MAX (16 + 8 * S_BATCH_MAX) /* the largest result message */
#define S_SPIN_NS 50000      /* after a deep batch, a worker watches for work this long */
#define S_IDLE_SPIN_NS 30000 /* ... and after a shallow one, at SCHED_IDLE */
#define S_CHUNK_ITEMS 1024u  /* work items per chunk of the arena (40 KiB) */

/* --- work items -------------------------------------------------------------------------- */

/* An item's kind once the reactor has released it (the scan of a stop's deadline skips it). */
#define S_KIND_RELEASED 0xFFu

enum {
    S_QUEUED = 0,   /* waiting in the queue or in a batch */
    S_RUNNING = 1,  /* claimed by a worker */
    S_DONE = 2,     /* ran; result set; on its way back */
    S_CANCELLED = 3 /* cancelled before it started: a tombstone */
};

/* A work item: a 40-byte record in a chunk of the arena. The fields the reactor needs only until
 * the work has run share their space with the result. */
typedef struct s_work {
    union {
        struct {
            zt_work_fn *fn;  /* the work (until it ran) */
            void *arg;       /* Borrowed: the caller's; Owned calls array for ZT__WORK_MULTIPLE */
            zt_pool_t *pool; /* Borrowed: the pool, for the claim and the canceller */
        } call;              /* until the work has run */
        zt_result_t result;  /* Owned: what fn returned, once DONE (ZT__WORK_DEFER only) */
    } u;
    union {
        zt_on_result_fn *on_result; /* ZT__WORK_CALLBACK */
        zt_deferred_t *d;           /* ZT__WORK_DEFER: Owned reference */
    } x;
    _Atomic(uint32_t) state; /* S_* */
    atomic_bool cancel;      /* cancelled or abandoned while running */
    uint8_t kind;            /* zt__work_kind_t */
    uint16_t index;          /* its place in its chunk (reactor side) */
} s_work_t;
_Static_assert(sizeof(s_work_t) == 40, "a work item is 40 bytes");

/* A chunk of the arena. Reactor thread only. */
typedef struct s_chunk {
    struct s_chunk *next;          /* the chunk after it in queue order, or NULL (Borrowed) */
    struct s_chunk *lprev;         /* Borrowed: the pool's list of chunks that may hold records */
    struct s_chunk *lnext;         /* Borrowed: the same list */
    uint32_t live;                 /* records handed out and not yet released (reactor side) */
    bool retired;                  /* hands out no more records: freed when live reaches 0 */
    _Atomic(int64_t) pins;         /* detached workers' records: see s_chunk_hand_over */
    s_work_t items[S_CHUNK_ITEMS]; /* the records, handed out in order */
} s_chunk_t;
_Static_assert(S_CHUNK_ITEMS <= UINT16_MAX + 1u, "an item's index fits 16 bits");

/* --- workers ----------------------------------------------------------------------------- */

enum { W_STARTING = 0, W_IDLE = 1, W_BUSY = 2, W_STOPPING = 3 };
enum { X_RUNNING = 0, X_EXITED = 1, X_ORPHANED = 2 };
enum { SIG_IDLE = 0, SIG_WORK = 1, SIG_SLEEP = 2 };
/* A worker's `link` word: the stop's deadline sets L_ORPHANED; the worker holds L_SENDING while it
 * sends a message, so that a message is either sent whole before the detach or not at all. */
enum { L_ORPHANED = 1u, L_SENDING = 2u };

typedef struct s_worker {
    zt_pool_t *pool;   /* Borrowed: the owner (reactor side only) */
    uint32_t id;       /* the worker's routing id on the pool's ROUTER */
    pthread_t thread;  /* the worker thread */
    int state;         /* W_* (reactor side) */
    char endpoint[64]; /* the pool's ROUTER endpoint (a copy: an orphan outlives the pool) */
    uint32_t gen;      /* the batch's number, set by the reactor before handing it */
    s_work_t *items[S_BATCH_MAX];         /* the batch: filled by the reactor while idle */
    _Alignas(64) _Atomic(uint64_t) range; /* the batch's unclaimed part: head (low 32), tail */
    _Atomic(uint64_t) results_sent;       /* items sent back; orders the handover for TSan */
    _Atomic(s_work_t *) current;          /* the item running now, or NULL */
    _Atomic(uint32_t) link;               /* L_*: detached by a stop's deadline; sending */
    atomic_int exit_state;                /* X_*: who frees this record */
    bool spin;                            /* may watch for work before sleeping (the pool's) */
    _Atomic(uint64_t) spins;              /* times it did */
    _Alignas(64) atomic_int signal; /* SIG_*: a batch is ready, or the worker sleeps in recv */
} s_worker_t;

struct zt_pool {
    zt_reactor_t *reactor;      /* Borrowed: delivers the results */
    void *zmq_ctx;              /* Borrowed: the shared context (one reference held) */
    s_worker_t **workers;       /* Owned: every worker not yet joined */
    size_t nworkers;            /* workers in the array (any state) */
    size_t capworkers;          /* slots allocated */
    size_t nidle;               /* workers in W_IDLE */
    size_t nbusy;               /* workers in W_BUSY */
    size_t nstarting;           /* workers in W_STARTING */
    size_t min;                 /* threads kept once started */
    size_t max;                 /* the most threads */
    bool started;               /* the first work arrived: min threads are kept */
    bool held;                  /* no thread starts until released (reactor not running yet) */
    zt_delayed_call_t *recheck; /* Owned handle: a steal retry while a victim wakes up, or NULL */
    atomic_bool stopped;        /* stop was called: no new work */
    s_chunk_t *tail;    /* Owned (with its records' holders): where records come from, or NULL */
    uint32_t tail_used; /* records handed out from tail */
    s_chunk_t *qchunk;  /* Borrowed: the chunk of the queue's first item (tail when empty) */
    s_chunk_t *spare;   /* Owned: a free chunk kept for the next one, or NULL */
    s_chunk_t *chunks;  /* Owned: every chunk that may hold live records (lprev/lnext) */
    uint32_t qindex;    /* the queue's first item in qchunk */
    size_t qlen;        /* items in the queue, tombstones included */
    _Atomic(uint64_t) queued;     /* accepted, not started nor cancelled (reservations too) */
    _Atomic(uint64_t) max_queued; /* 0: unbounded */
    uint64_t completed;           /* items whose result was handled */
    void *router;                 /* Owned: the ROUTER every worker's DEALER connects to, or NULL */
    struct s_outbox *inbox;       /* Owned: the buffer a worker's message is read into */
    char endpoint[64];            /* the ROUTER's inproc endpoint */
    uint64_t serial;              /* names the endpoint: the pool's number */
    uint32_t next_worker;         /* the next worker's routing id */
    unsigned delivering;          /* result delivery in progress (user callbacks may run) */
    bool spin;                    /* workers watch for work before sleeping (ZTWIST_POOL_SPIN) */
    uint64_t spins_reaped;        /* spins of the workers already joined */
};

static atomic_uint_fast64_t s_pool_serial; /* numbers the pools' endpoints */
static _Thread_local s_work_t *s_current;  /* the item the calling worker runs, or NULL */
static _Thread_local bool s_is_worker;     /* the calling thread is a worker */
static atomic_bool s_spinning;             /* a worker of some pool is spinning for work */
static pthread_once_t s_probe_once = PTHREAD_ONCE_INIT; /* runs s_probe_idle once */
static bool s_idle_spin_ok; /* a thread can go to SCHED_IDLE and back (set once by s_probe_idle) */

static inline uint64_t
s_pack(uint32_t head, uint32_t tail)
{
    return (uint64_t)head | ((uint64_t)tail << 32);
}

/* --- the arena (reactor thread) ---------------------------------------------------------- */

static inline s_chunk_t *
s_chunk_of(s_work_t *item)
{
    return (s_chunk_t *)(void *)((char *)(item - item->index) - offsetof(s_chunk_t, items));
}

static void
s_chunk_unlink(zt_pool_t *p, s_chunk_t *c)
{
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        p->chunks = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    c->lprev = c->lnext = NULL;
}

/* A chunk that is retired and has no live record: kept as the pool's spare if it has none, else
 * freed. */
static void
s_chunk_drop(zt_pool_t *p, s_chunk_t *c)
{
    s_chunk_unlink(p, c);
    if (!p->spare)
        p->spare = c;
    else
        free(c);
}

/* Release a record handed out by s_item_new: its chunk goes when it was the last of a retired
 * one. Reactor thread. */
static void
s_item_release(zt_pool_t *p, s_work_t *item)
{
    s_chunk_t *c = s_chunk_of(item);
    ZT_ASSERT(c->live > 0);
    item->kind = S_KIND_RELEASED;
    if (--c->live == 0 && c->retired)
        s_chunk_drop(p, c);
}

/* A detached worker releases one of its records, on its own thread: the chunk goes with the last
 * such record once the pool has handed the chunk over (s_chunk_hand_over). */
static void
s_chunk_unpin(s_chunk_t *c)
{
    if (atomic_fetch_sub_explicit(&c->pins, 1, memory_order_acq_rel) == 1)
        free(c);
}

/* At a stop's deadline: the records still live in c are held by detached workers, which release
 * them with s_chunk_unpin. pins counts those releases down (it may already be negative); adding
 * the live count hands the chunk to whoever brings pins to 0. Returns true when the pool keeps
 * the chunk (every such record was released already). */
static bool
s_chunk_hand_over(zt_pool_t *p, s_chunk_t *c)
{
    int64_t held = (int64_t)c->live;
    c->live = 0;
    if (atomic_fetch_add_explicit(&c->pins, held, memory_order_acq_rel) + held == 0)
        return true;
    s_chunk_unlink(p, c);
    if (p->tail == c)
        p->tail = NULL;
    if (p->qchunk == c)
        p->qchunk = NULL;
    return false;
}

/* Retire a chunk: it hands out no more records, and goes with its last one. */
static void
s_chunk_retire(zt_pool_t *p, s_chunk_t *c)
{
    c->retired = true;
    if (c->live == 0)
        s_chunk_drop(p, c);
}

/* Hand out the next record and put it at the end of the queue; NULL when out of memory. */
static s_work_t *
s_item_new(zt_pool_t *p)
{
    if (!p->tail || p->tail_used == S_CHUNK_ITEMS) {
        if (p->tail && p->tail->live == 0) {
            /* Every record of the full tail is released, so the queue is empty and its cursor
             * rests at the tail's end: start the tail over. */
            ZT_ASSERT(p->qlen == 0 && p->qchunk == p->tail);
            p->tail_used = 0;
            p->qindex = 0;
        } else {
            s_chunk_t *c = p->spare ? p->spare : malloc(sizeof *c);
            if (!c)
                return NULL;
            p->spare = NULL;
            c->next = NULL;
            c->live = 0;
            c->retired = false;
            atomic_init(&c->pins, 0);
            c->lprev = NULL;
            c->lnext = p->chunks;
            if (p->chunks)
                p->chunks->lprev = c;
            p->chunks = c;
            if (p->tail) {
                p->tail->next = c;
                if (p->qlen == 0) { /* the cursor rests at the old tail's end */
                    p->qchunk = c;
                    p->qindex = 0;
                }
                s_chunk_retire(p, p->tail);
            } else {
                p->qchunk = c;
                p->qindex = 0;
            }
            p->tail = c;
            p->tail_used = 0;
        }
    }
    s_work_t *item = &p->tail->items[p->tail_used];
    item->index = (uint16_t)p->tail_used++;
    p->tail->live++;
    p->qlen++;
    return item;
}

/* --- the worker thread ------------------------------------------------------------------- */

typedef struct s_outbox {
    uint32_t type;                /* 'R' results, 'I' results and idle, 'S' started, 'X' bye */
    uint32_t n;                   /* items that follow */
    uint32_t gen;                 /* the number of the batch they come from */
    uint32_t pad;                 /* keeps the items 8-byte aligned */
    s_work_t *items[S_BATCH_MAX]; /* Borrowed: finished items */
} s_outbox_t;
_Static_assert(sizeof(s_outbox_t) == S_MSG_MAX, "the message layout is packed");

static inline bool
s_orphaned(s_worker_t *w)
{
    return atomic_load_explicit(&w->link, memory_order_acquire) & L_ORPHANED;
}

static void s_orphan_release(s_work_t *item);

/* Send the outbox, unless the worker has been detached: then its items are released here. */
static void
s_send_out(s_worker_t *w, void *sock, s_outbox_t *out, uint32_t type)
{
    out->type = type;
    if (atomic_fetch_or_explicit(&w->link, L_SENDING, memory_order_acq_rel) & L_ORPHANED) {
        /* Sends nothing: a stop waiting for an earlier send to end must see L_SENDING clear. */
        atomic_fetch_and_explicit(&w->link, ~L_SENDING, memory_order_release);
        for (uint32_t i = 0; i < out->n; i++)
            s_orphan_release(out->items[i]);
        out->n = 0;
        return;
    }
    atomic_fetch_add_explicit(&w->results_sent, out->n, memory_order_release);
    size_t size = 16 + (size_t)out->n * sizeof(s_work_t *);
    while (zmq_send(sock, out, size, 0) < 0 && zmq_errno() == EINTR) {
    }
    atomic_fetch_and_explicit(&w->link, ~L_SENDING, memory_order_release);
    out->n = 0;
}

/* Run one item's work on the worker. */
static void
s_run_item(s_worker_t *w, s_work_t *item)
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
    atomic_store_explicit(&item->state, S_DONE, memory_order_release);
    atomic_store_explicit(&w->current, NULL, memory_order_relaxed);
}

/* Claim the next unclaimed item of the batch, or NULL when it is exhausted. */
static s_work_t *
s_claim(s_worker_t *w)
{
    uint64_t r = atomic_load_explicit(&w->range, memory_order_acquire);
    for (;;) {
        uint32_t head = (uint32_t)r, tail = (uint32_t)(r >> 32);
        if (head >= tail)
            return NULL;
        if (atomic_compare_exchange_weak_explicit(&w->range, &r, s_pack(head + 1, tail),
                                                  memory_order_acq_rel, memory_order_acquire))
            return w->items[head];
    }
}

static void
s_run_batch(s_worker_t *w, void *sock, s_outbox_t *out)
{
    out->gen = w->gen;
    int64_t first_pending = 0;
    uint32_t ran = 0;
    s_work_t *item;
    while ((item = s_claim(w)) != NULL) {
        if (s_orphaned(w)) {
            s_orphan_release(item);
            continue;
        }
        uint32_t expect = S_QUEUED;
        if (atomic_compare_exchange_strong_explicit(&item->state, &expect, S_RUNNING,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            atomic_fetch_sub_explicit(&item->u.call.pool->queued, 1, memory_order_relaxed);
            s_run_item(w, item);
        }
        /* A tombstone goes back too: the reactor frees it. */
        if (s_orphaned(w)) {
            s_orphan_release(item);
            continue;
        }
        /* The clock is read once every S_CLOCK_EVERY items: reading it costs as much as a trivial
         * item. */
        if (out->n == 0)
            first_pending = zt_time_now_ns();
        out->items[out->n++] = item;
        if (out->n == S_BATCH_MAX ||
            (++ran % S_CLOCK_EVERY == 0 && zt_time_now_ns() - first_pending > S_FLUSH_NS))
            s_send_out(w, sock, out, 'R');
    }
    if (s_orphaned(w)) {
        for (uint32_t i = 0; i < out->n; i++)
            s_orphan_release(out->items[i]);
        out->n = 0;
        return;
    }
    /* Idle before the reactor can know it: its next batch then finds IDLE or SLEEP, never a
     * stale WORK. */
    atomic_store_explicit(&w->signal, SIG_IDLE, memory_order_release);
    s_send_out(w, sock, out, 'I');
}

static void *
s_probe_thread(void *arg)
{
    struct sched_param sp = {0};
    *(bool *)arg =
        sched_setscheduler(0, SCHED_IDLE, &sp) == 0 && sched_setscheduler(0, SCHED_OTHER, &sp) == 0;
    return NULL; /* a thread left at SCHED_IDLE just ends */
}

/* Can a thread go to SCHED_IDLE and come back? Tried on a throwaway thread. */
static void
s_probe_idle(void)
{
    pthread_t thread;
    bool ok = false;
    if (pthread_create(&thread, NULL, s_probe_thread, &ok) == 0 && pthread_join(thread, NULL) == 0)
        s_idle_spin_ok = ok;
}

/* Watch `signal` for a batch until ns have passed; true when one came. */
static bool
s_spin(s_worker_t *w, int64_t ns)
{
    int64_t until = zt_time_now_ns() + ns;
    bool work = false;
    do {
        for (int i = 0; i < 64 && !work; i++)
            work = atomic_load_explicit(&w->signal, memory_order_acquire) == SIG_WORK;
    } while (!work && zt_time_now_ns() < until && !s_orphaned(w));
    return work;
}

/* Wait for the next batch: first spin, as the design notes say (one worker at a time; after a deep
 * batch at normal priority, after a shallow one at SCHED_IDLE when *idle_spin), then sleep in recv,
 * announced by IDLE -> SLEEP so that the reactor knows to send "batch". Clears *idle_spin if the
 * thread could not come back from SCHED_IDLE. Returns true for a batch, false for $TERM or an
 * error. */
static bool
s_wait_work(s_worker_t *w, void *sock, bool deep, bool *idle_spin)
{
    bool expect_none = false;
    if ((deep || *idle_spin) && w->spin &&
        atomic_compare_exchange_strong(&s_spinning, &expect_none, true)) {
        atomic_fetch_add_explicit(&w->spins, 1, memory_order_relaxed);
        struct sched_param sp = {0};
        bool work = false;
        if (deep) {
            work = s_spin(w, S_SPIN_NS);
        } else if (sched_setscheduler(0, SCHED_IDLE, &sp) == 0) {
            work = s_spin(w, S_IDLE_SPIN_NS);
            if (sched_setscheduler(0, SCHED_OTHER, &sp) != 0) {
                ZT_LOG_ERROR("pool worker cannot leave SCHED_IDLE: %s", strerror(errno));
                *idle_spin = false;
            }
        }
        atomic_store(&s_spinning, false);
        if (work)
            return true;
    }
    if (s_orphaned(w))
        return false;
    int expect = SIG_IDLE;
    if (!atomic_compare_exchange_strong(&w->signal, &expect, SIG_SLEEP))
        return true; /* the batch came just now */
    for (;;) {
        char cmd[8];
        int rc = zmq_recv(sock, cmd, sizeof cmd, 0);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return false;
        }
        if (rc >= 1 && cmd[0] == 'B') {
            /* Reads the WORK the reactor stored after filling the batch: orders its writes. */
            atomic_load_explicit(&w->signal, memory_order_acquire);
            return true;
        }
        if (rc >= 1 && cmd[0] == 'T')
            return false;
    }
}

static void *
s_worker_main(void *arg)
{
    s_worker_t *w = arg;
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
    s_outbox_t out = {.n = 0};
    s_send_out(w, sock, &out, 'S');
    bool deep = false;
    pthread_once(&s_probe_once, s_probe_idle);
    bool idle_spin = s_idle_spin_ok && sched_getscheduler(0) == SCHED_OTHER;
    while (s_wait_work(w, sock, deep, &idle_spin)) {
        deep = (uint32_t)(atomic_load_explicit(&w->range, memory_order_relaxed) >> 32) > 1;
        s_run_batch(w, sock, &out);
        if (s_orphaned(w))
            break;
    }
    s_send_out(w, sock, &out, 'X'); /* not sent when detached */
done:
    if (sock)
        zmq_close(sock);
    if (ctx)
        zt__zmq_ctx_release();
    if (atomic_exchange(&w->exit_state, X_EXITED) == X_ORPHANED)
        free(w);
    return NULL;
}

/* --- orphans --------------------------------------------------------------------------- */

/* On a detached worker: release an item without the reactor, which may be gone. The stop that
 * detached the worker has already failed the item's Deferred and dropped its reference. */
static void
s_orphan_release(s_work_t *item)
{
    uint32_t state = atomic_load_explicit(&item->state, memory_order_acquire);
    if (item->kind == ZT__WORK_DEFER && state == S_DONE)
        zt_result_release(&item->u.result);
    else if (item->kind == ZT__WORK_MULTIPLE && state != S_DONE)
        free(item->u.call.arg);
    s_chunk_unpin(s_chunk_of(item));
}

/* --- the reactor's side ---------------------------------------------------------------- */

static void s_on_router_msg(zt_reactor_t *r, void *sock, void *arg);
static void s_dispatch(zt_pool_t *p);

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
static int
s_start_worker(zt_pool_t *p)
{
    if (s_open_router(p) != 0)
        return ZT_ESYS;
    if (p->nworkers == p->capworkers) {
        size_t cap = p->capworkers ? p->capworkers * 2 : 8;
        s_worker_t **ws = realloc(p->workers, cap * sizeof *ws);
        if (!ws)
            return ZT_ENOMEM;
        p->workers = ws;
        p->capworkers = cap;
    }
    s_worker_t *w = aligned_alloc(64, (sizeof *w + 63) / 64 * 64);
    if (w)
        memset(w, 0, sizeof *w);
    if (!w)
        return ZT_ENOMEM;
    w->pool = p;
    w->state = W_STARTING;
    atomic_init(&w->range, 0);
    atomic_init(&w->results_sent, 0);
    atomic_init(&w->current, NULL);
    atomic_init(&w->link, 0);
    atomic_init(&w->exit_state, X_RUNNING);
    atomic_init(&w->signal, SIG_IDLE);
    w->spin = p->spin;
    atomic_init(&w->spins, 0);
    /* Odd, so that the first byte (little-endian) is never 0: ZeroMQ reserves routing ids that
     * start with a zero byte. */
    w->id = p->next_worker++ * 2 + 1;
    memcpy(w->endpoint, p->endpoint, sizeof w->endpoint);
    if (pthread_create(&w->thread, NULL, s_worker_main, w) != 0) {
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
s_reap_worker(zt_pool_t *p, s_worker_t *w)
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
s_set_state(zt_pool_t *p, s_worker_t *w, int state)
{
    size_t *counts[] = {&p->nstarting, &p->nidle, &p->nbusy, NULL};
    if (w->state != W_STOPPING)
        (*counts[w->state])--;
    w->state = state;
    if (state != W_STOPPING)
        (*counts[state])++;
}

static void
s_send_cmd(s_worker_t *w, char cmd)
{
    zt_pool_t *p = w->pool;
    while (zmq_send(p->router, &w->id, sizeof w->id, ZMQ_SNDMORE) < 0 && zmq_errno() == EINTR) {
    }
    while (zmq_send(p->router, &cmd, 1, 0) < 0 && zmq_errno() == EINTR) {
    }
}

/* End idle workers above max (or all of them while stopping). */
static void
s_trim(zt_pool_t *p, bool all)
{
    for (size_t i = 0; i < p->nworkers; i++) {
        s_worker_t *w = p->workers[i];
        size_t live = p->nidle + p->nbusy + p->nstarting;
        if (w->state != W_IDLE || (!all && live <= p->max))
            continue;
        s_set_state(p, w, W_STOPPING);
        s_send_cmd(w, 'T');
    }
}

/* Free a tombstone (an item cancelled before it started). */
static void
s_free_tombstone(s_work_t *item)
{
    if (item->kind == ZT__WORK_DEFER)
        zt_deferred_unref(&item->x.d);
    else if (item->kind == ZT__WORK_MULTIPLE)
        free(item->u.call.arg);
    s_item_release(item->u.call.pool, item); /* never run: its pool pointer is intact */
}

/* Take the queue's first item. The cursor moves on to the next chunk as soon as it passes the end
 * of one (the item just taken keeps that chunk alive meanwhile), so it never rests on a chunk that
 * may be freed. Dispatching reads no item: the worker is the first to touch them, on its own core.
 * Tombstones go to the worker too, which skips them. */
static s_work_t *
s_pop(zt_pool_t *p)
{
    if (p->qlen == 0)
        return NULL;
    s_work_t *item = &p->qchunk->items[p->qindex++];
    p->qlen--;
    if (p->qindex == S_CHUNK_ITEMS && p->qchunk->next) {
        p->qchunk = p->qchunk->next;
        p->qindex = 0;
    }
    return item;
}

static void
s_give_batch(s_worker_t *w, uint32_t n)
{
    w->gen++;
    atomic_store_explicit(&w->range, s_pack(0, n), memory_order_release);
    s_set_state(w->pool, w, W_BUSY);
    if (atomic_exchange(&w->signal, SIG_WORK) == SIG_SLEEP)
        s_send_cmd(w, 'B'); /* it sleeps in recv: wake it */
}

static void s_dispatch(zt_pool_t *p);

static void
s_on_recheck(void *arg)
{
    zt_pool_t *p = arg;
    zt_delayed_call_release(&p->recheck);
    s_dispatch(p);
}

/* Take up to half of the unclaimed items of the busiest worker's batch for idle worker w. */
static bool
s_steal(zt_pool_t *p, s_worker_t *w)
{
    s_worker_t *victim = NULL;
    uint32_t best = 0;
    bool waking = false; /* a batch with unclaimed items whose worker has not claimed one yet */
    for (size_t i = 0; i < p->nworkers; i++) {
        s_worker_t *v = p->workers[i];
        if (v->state != W_BUSY)
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
            (void)zt_reactor_call_later(p->reactor, S_RECHECK_S, s_on_recheck, p, &p->recheck);
        return false;
    }
    uint64_t r = atomic_load_explicit(&victim->range, memory_order_acquire);
    for (;;) {
        uint32_t head = (uint32_t)r, tail = (uint32_t)(r >> 32);
        if (head >= tail)
            return false;
        uint32_t k = (tail - head + 1) / 2;
        if (atomic_compare_exchange_weak_explicit(&victim->range, &r, s_pack(head, tail - k),
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
static s_worker_t *
s_find_free(zt_pool_t *p)
{
    /* The one that finished last first: it may not have gone to sleep yet, and then takes the
     * batch without a message and without a wake-up. */
    for (size_t i = 0; i < p->nworkers; i++) {
        s_worker_t *w = p->workers[i];
        if (w->state == W_BUSY &&
            atomic_load_explicit(&w->signal, memory_order_acquire) != SIG_WORK)
            return w;
    }
    for (size_t i = 0; i < p->nworkers; i++)
        if (p->workers[i]->state == W_IDLE)
            return p->workers[i];
    return NULL;
}

static void
s_dispatch(zt_pool_t *p)
{
    s_worker_t *w;
    while ((p->qlen > 0 || p->nbusy > 0) && (w = s_find_free(p)) != NULL) {
        size_t threads = p->nidle + p->nbusy + p->nstarting;
        size_t k = (p->qlen + threads - 1) / threads;
        if (k > S_BATCH_MAX)
            k = S_BATCH_MAX;
        uint32_t n = 0;
        s_work_t *item;
        while (n < k && (item = s_pop(p)) != NULL)
            w->items[n++] = item;
        if (n > 0)
            s_give_batch(w, n);
        else if (!s_steal(p, w))
            break;
    }
    /* Grow: a thread for each waiting item no idle or starting thread will take. */
    while (!p->held && p->qlen > p->nstarting && p->nidle + p->nbusy + p->nstarting < p->max &&
           !atomic_load(&p->stopped)) {
        if (s_start_worker(p) != 0)
            break;
    }
}

/* Deliver one finished item on the reactor thread. */
static void
s_deliver(zt_pool_t *p, s_work_t *item)
{
    if (atomic_load_explicit(&item->state, memory_order_acquire) == S_CANCELLED) {
        s_free_tombstone(item);
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
    s_item_release(p, item);
}

/* Handle one message from worker w. Returns false when w was reaped. */
static bool
s_handle_msg(zt_pool_t *p, s_worker_t *w, const s_outbox_t *msg, size_t size)
{
    if (size < 16)
        return true;
    atomic_load_explicit(&w->results_sent, memory_order_acquire);
    uint32_t n = msg->n;
    if (n > S_BATCH_MAX || size != 16 + n * sizeof(s_work_t *))
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
        if (w->state != W_STOPPING && msg->gen == w->gen)
            s_set_state(p, w, W_IDLE);
        if (atomic_load(&p->stopped) && p->qlen == 0)
            break;
        s_trim(p, false);
        break;
    case 'X':
        s_reap_worker(p, w);
        return false;
    default:
        break;
    }
    return true;
}

static s_worker_t *
s_worker_by_id(zt_pool_t *p, uint32_t id)
{
    for (size_t i = 0; i < p->nworkers; i++)
        if (p->workers[i]->id == id)
            return p->workers[i];
    return NULL;
}

/* Read up to S_READ_BURST messages from the workers: [routing id][message]. */
static void
s_read_router(zt_pool_t *p)
{
    s_outbox_t *msg = p->inbox;
    for (int i = 0; i < S_READ_BURST && p->router; i++) {
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
        s_worker_t *w = rc >= 0 && (size_t)rc <= sizeof *msg ? s_worker_by_id(p, id) : NULL;
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
    s_read_router(p);
    s_dispatch(p);
}

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
            if (s_start_worker(p) != 0)
                break;
    }
    return p->nworkers == 0 ? s_start_worker(p) : 0;
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
        s_dispatch(p);
}

/* A new item at the end of the queue (a place is reserved); NULL when out of memory. */
static s_work_t *
s_queue_item(zt_pool_t *p, zt__work_kind_t kind, zt_work_fn *fn, void *arg)
{
    s_work_t *item = s_item_new(p);
    if (!item)
        return NULL;
    item->u.call.fn = fn;
    item->u.call.arg = arg;
    item->x.d = NULL;
    item->u.call.pool = p;
    atomic_init(&item->state, S_QUEUED);
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
    s_work_t *item = rc == 0 ? s_queue_item(p, kind, fn, arg) : NULL;
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
    s_work_t *item = arg;
    uint32_t expect = S_QUEUED;
    if (atomic_compare_exchange_strong_explicit(&item->state, &expect, S_CANCELLED,
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
    s_work_t *item = s_queue_item(self, ZT__WORK_DEFER, fn, arg);
    zt_deferred_t *d = item ? zt_deferred_new_with_canceller(s_cancel, item) : NULL;
    if (!d) {
        zt__pool_unreserve(self);
        if (item) /* queued already: it stays as a tombstone, skipped and released later */
            atomic_store_explicit(&item->state, S_CANCELLED, memory_order_relaxed);
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
        s_dispatch(p);
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
            if (s_start_worker(self) != 0)
                break;
    }
    s_trim(self, false);
    s_dispatch(self);
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
        s_read_router(p);
    return rc;
}

static long
s_remaining_ms(int64_t deadline_ns)
{
    int64_t left = deadline_ns - zt_time_now_ns();
    return left <= 0 ? 0 : (long)((left + 999999) / 1000000);
}

/* Fail a Deferred item that a stop took from the queue or a batch before it started. Returns
 * whether it was a plain call (counted as never run). */
static bool
s_drop_unstarted(zt_pool_t *p, s_work_t *item)
{
    uint32_t expect = S_QUEUED;
    bool plain = false;
    if (atomic_compare_exchange_strong(&item->state, &expect, S_CANCELLED)) {
        atomic_fetch_sub(&p->queued, 1);
        if (item->kind == ZT__WORK_DEFER)
            zt_deferred_errback(item->x.d, zt_failure_from_code(ZT_ESHUTDOWN, "the pool stopped "
                                                                              "before the work "
                                                                              "started"));
        else
            plain = true;
    }
    s_free_tombstone(item); /* cancelled earlier: its Deferred has failed already */
    return plain;
}

/* Take back the unclaimed part of w's batch and mark w detached. Returns the plain calls
 * dropped. */
static size_t
s_orphan(zt_pool_t *p, s_worker_t *w)
{
    uint64_t r = atomic_load(&w->range);
    while (!atomic_compare_exchange_weak(&w->range, &r, s_pack((uint32_t)r, (uint32_t)r))) {
    }
    size_t dropped = 0;
    for (uint32_t i = (uint32_t)r; i < (uint32_t)(r >> 32); i++)
        dropped += s_drop_unstarted(p, w->items[i]);
    s_work_t *cur = atomic_load(&w->current);
    if (cur)
        atomic_store(&cur->cancel, true);
    if (atomic_fetch_or(&w->link, L_ORPHANED) & L_SENDING) {
        /* A message is on its way: wait until it is in the ROUTER's queue, to read it below. An
         * inproc send with no high-water mark does not block. */
        while (atomic_load(&w->link) & L_SENDING)
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
    s_chunk_t *next;
    for (s_chunk_t *c = p->chunks; c; c = next) {
        next = c->lnext;
        uint32_t used = c == p->tail ? p->tail_used : S_CHUNK_ITEMS;
        for (uint32_t i = 0; i < used && c->live > 0; i++) {
            s_work_t *item = &c->items[i];
            if (item->kind != ZT__WORK_DEFER || !item->x.d)
                continue;
            if (!zt_deferred_is_called(item->x.d)) {
                zt_deferred_errback(item->x.d,
                                    zt_failure_from_code(ZT_ETIMEDOUT,
                                                         "the pool's stop deadline passed before "
                                                         "the work's result came back"));
                failed++;
            }
            zt_deferred_unref(&item->x.d);
        }
        if (c->live > 0 && s_chunk_hand_over(p, c) && c->retired)
            s_chunk_drop(p, c);
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
        s_worker_t *w = p->workers[--p->nworkers];
        char term = 'T';
        if (zmq_send(p->router, &w->id, sizeof w->id, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
            zmq_send(p->router, &term, 1, ZMQ_DONTWAIT);
        p->spins_reaped += atomic_load(&w->spins);
        if (atomic_exchange(&w->exit_state, X_ORPHANED) == X_EXITED) {
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
        if (self->qlen > 0 && self->nworkers == 0 && s_start_worker(self) != 0)
            break;
        s_dispatch(self);
        s_poll_workers(self, s_remaining_ms(deadline));
    }
    /* End every worker: $TERM to the idle, then wait for the byes. */
    while (self->nworkers > 0 && s_remaining_ms(deadline) > 0) {
        s_trim(self, true);
        s_poll_workers(self, s_remaining_ms(deadline));
    }
    /* Past the deadline: drop what never started, detach what still runs. */
    size_t dropped = 0;
    s_work_t *item;
    while ((item = s_pop(self)) != NULL)
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
        s_chunk_retire(self, self->tail);
    ZT_ASSERT_MSG(!self->chunks, "pool destroy: a chunk still holds records");
    free(self->spare);
    if (self->zmq_ctx)
        zt__zmq_ctx_release();
    free(self);
    *self_p = NULL;
}
