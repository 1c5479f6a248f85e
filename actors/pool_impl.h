/*  actors/pool_impl.h - the pool's private structures, shared by its parts
 *
 *  pool.c: the API and the lifecycle (submission, stop, destroy); arena.c: the work items' arena
 * and the queue; dispatch.c: the reactor's side (workers' start and end, batches, stealing,
 * results); worker.c: the worker thread (its loop, claiming, the outbox); parker.c: how a worker
 * waits (spin, then sleep). Each file's design notes state what it guarantees. Nothing outside
 * these files includes this header.  */
#ifndef ZTWIST_ACTORS_POOL_IMPL_H
#define ZTWIST_ACTORS_POOL_IMPL_H

#include "actors.h"
#include "parker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define ZT__POOL_RECHECK_S 0.001 /* a steal retry while the victim wakes up, seconds */
#define ZT__BATCH_MAX 1024       /* items per batch and results per message */
#define ZT__FLUSH_NS 100000 /* a worker holds finished results at most this long between items */
#define ZT__CLOCK_EVERY 8   /* ... as checked every this many items */
#define ZT__READ_BURST 256  /* messages read from one worker per reactor callback */
#define ZT__MSG_MAX (16 + 8 * ZT__BATCH_MAX) /* the largest result message */
#define ZT__CHUNK_ITEMS 1024u                /* work items per chunk of the arena (40 KiB) */

/* --- work items -------------------------------------------------------------------------- */

/* An item's kind once the reactor has released it (the scan of a stop's deadline skips it). */
#define ZT__KIND_RELEASED 0xFFu

typedef enum zt__item_state {
    ZT__ITEM_QUEUED = 0,   /* waiting in the queue or in a batch */
    ZT__ITEM_RUNNING = 1,  /* claimed by a worker */
    ZT__ITEM_DONE = 2,     /* ran; result set; on its way back */
    ZT__ITEM_CANCELLED = 3 /* cancelled before it started: a tombstone */
} zt__item_state_t;

/* A work item: a 40-byte record in a chunk of the arena. The fields the reactor needs only until
 * the work has run share their space with the result. */
typedef struct zt__work {
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
} zt__work_t;
_Static_assert(sizeof(zt__work_t) == 40, "a work item is 40 bytes");

/* A chunk of the arena. Reactor thread only. */
typedef struct zt__chunk {
    struct zt__chunk *next;  /* the chunk after it in queue order, or NULL (Borrowed) */
    struct zt__chunk *lprev; /* Borrowed: the pool's list of chunks that may hold records */
    struct zt__chunk *lnext; /* Borrowed: the same list */
    uint32_t live;           /* records handed out and not yet released (reactor side) */
    bool retired;            /* hands out no more records: freed when live reaches 0 */
    _Atomic(int64_t) pins;   /* detached workers' records: see zt__chunk_hand_over */
    zt__work_t items[ZT__CHUNK_ITEMS]; /* the records, handed out in order */
} zt__chunk_t;
_Static_assert(ZT__CHUNK_ITEMS <= UINT16_MAX + 1u, "an item's index fits 16 bits");

/* --- workers ----------------------------------------------------------------------------- */

/* A worker as the reactor sees it. */
typedef enum zt__worker_state {
    ZT__W_STARTING = 0, /* started; its "started" message has not arrived */
    ZT__W_IDLE = 1,     /* waiting for a batch */
    ZT__W_BUSY = 2,     /* given a batch */
    ZT__W_STOPPING = 3  /* sent "T"; its bye has not arrived */
} zt__worker_state_t;

/* Who frees a worker record (`exit_state`). */
typedef enum zt__exit_state {
    ZT__X_RUNNING = 0, /* the thread runs and the pool has it */
    ZT__X_EXITED = 1,  /* the thread exited: the pool frees the record */
    ZT__X_ORPHANED = 2 /* the pool detached it: the thread frees the record when it exits */
} zt__exit_state_t;

typedef struct zt__worker {
    zt_pool_t *pool;   /* Borrowed: the owner (reactor side only) */
    uint32_t id;       /* the worker's routing id on the pool's ROUTER */
    pthread_t thread;  /* the worker thread */
    int state;         /* W_* (reactor side) */
    char endpoint[64]; /* the pool's ROUTER endpoint (a copy: an orphan outlives the pool) */
    uint32_t gen;      /* the batch's number, set by the reactor before handing it */
    zt__work_t *items[ZT__BATCH_MAX];     /* the batch: filled by the reactor while idle */
    _Alignas(64) _Atomic(uint64_t) range; /* the batch's unclaimed part: head (low 32), tail */
    _Atomic(uint64_t) results_sent;       /* items sent back; orders the handover for TSan */
    _Atomic(zt__work_t *) current;        /* the item running now, or NULL */
    _Atomic(uint32_t) link;               /* L_*: detached by a stop's deadline; sending */
    atomic_int exit_state;                /* X_*: who frees this record */
    bool spin;                            /* may watch for work before sleeping (the pool's) */
    _Atomic(uint64_t) spins;              /* times it did */
    _Alignas(64) atomic_int signal; /* SIG_*: a batch is ready, or the worker sleeps in recv */
} zt__worker_t;

struct zt_pool {
    zt_reactor_t *reactor;      /* Borrowed: delivers the results */
    void *zmq_ctx;              /* Borrowed: the shared context (one reference held) */
    zt__worker_t **workers;     /* Owned: every worker not yet joined */
    size_t nworkers;            /* workers in the array (any state) */
    size_t capworkers;          /* slots allocated */
    size_t nidle;               /* workers in ZT__W_IDLE */
    size_t nbusy;               /* workers in ZT__W_BUSY */
    size_t nstarting;           /* workers in ZT__W_STARTING */
    size_t min;                 /* threads kept once started */
    size_t max;                 /* the most threads */
    bool started;               /* the first work arrived: min threads are kept */
    bool held;                  /* no thread starts until released (reactor not running yet) */
    zt_delayed_call_t *recheck; /* Owned handle: a steal retry while a victim wakes up, or NULL */
    atomic_bool stopped;        /* stop was called: no new work */
    zt__chunk_t *tail;   /* Owned (with its records' holders): where records come from, or NULL */
    uint32_t tail_used;  /* records handed out from tail */
    zt__chunk_t *qchunk; /* Borrowed: the chunk of the queue's first item (tail when empty) */
    zt__chunk_t *spare;  /* Owned: a free chunk kept for the next one, or NULL */
    zt__chunk_t *chunks; /* Owned: every chunk that may hold live records (lprev/lnext) */
    uint32_t qindex;     /* the queue's first item in qchunk */
    size_t qlen;         /* items in the queue, tombstones included */
    _Atomic(uint64_t) queued;     /* accepted, not started nor cancelled (reservations too) */
    _Atomic(uint64_t) max_queued; /* 0: unbounded */
    uint64_t completed;           /* items whose result was handled */
    void *router;                 /* Owned: the ROUTER every worker's DEALER connects to, or NULL */
    struct zt__outbox *inbox;     /* Owned: the buffer a worker's message is read into */
    char endpoint[64];            /* the ROUTER's inproc endpoint */
    uint64_t serial;              /* names the endpoint: the pool's number */
    uint32_t next_worker;         /* the next worker's routing id */
    unsigned delivering;          /* result delivery in progress (user callbacks may run) */
    bool spin;                    /* workers watch for work before sleeping (ZTWIST_POOL_SPIN) */
    uint64_t spins_reaped;        /* spins of the workers already joined */
};

/* A message from a worker: [type, n, gen, pad, n item pointers]. */
typedef struct zt__outbox {
    uint32_t type;                    /* 'R' results, 'I' results and idle, 'S' started, 'X' bye */
    uint32_t n;                       /* items that follow */
    uint32_t gen;                     /* the number of the batch they come from */
    uint32_t pad;                     /* keeps the items 8-byte aligned */
    zt__work_t *items[ZT__BATCH_MAX]; /* Borrowed: finished items */
} zt__outbox_t;
_Static_assert(sizeof(zt__outbox_t) == ZT__MSG_MAX, "the message layout is packed");

static inline uint64_t
zt__pack(uint32_t head, uint32_t tail)
{
    return (uint64_t)head | ((uint64_t)tail << 32);
}

static inline bool
zt__worker_orphaned(zt__worker_t *w)
{
    return atomic_load_explicit(&w->link, memory_order_acquire) & ZT__L_ORPHANED;
}

static inline zt__chunk_t *
zt__chunk_of(zt__work_t *item)
{
    return (zt__chunk_t *)(void *)((char *)(item - item->index) - offsetof(zt__chunk_t, items));
}

/* --- arena.c (reactor thread, except zt__chunk_unpin) --- */

/* Hand out the next record and put it at the end of the queue; NULL when out of memory. */
zt__work_t *zt__item_new(zt_pool_t *p);
/* Release a record: its chunk goes when it was the last of a retired one. */
void zt__item_release(zt_pool_t *p, zt__work_t *item);
/* Free a tombstone (an item cancelled before it started). */
void zt__item_free_tombstone(zt__work_t *item);
/* Take the queue's first item, or NULL. */
zt__work_t *zt__queue_pop(zt_pool_t *p);
/* Retire a chunk: it hands out no more records, and goes with its last one. */
void zt__chunk_retire(zt_pool_t *p, zt__chunk_t *c);
/* A retired chunk with no live record: kept as the spare or freed. */
void zt__chunk_drop(zt_pool_t *p, zt__chunk_t *c);
/* At a stop's deadline: hand c's live records to the detached workers; true when the pool keeps
 * c (every one was released already). */
bool zt__chunk_hand_over(zt_pool_t *p, zt__chunk_t *c);
/* A detached worker releases one record of c, on its own thread. */
void zt__chunk_unpin(zt__chunk_t *c);

/* --- dispatch.c (reactor thread) --- */

/* Start one worker thread. Returns 0, ZT_ENOMEM or ZT_ESYS (logged). */
int zt__pool_start_worker(zt_pool_t *p);
/* End idle workers above max (or all of them while stopping). */
void zt__pool_trim(zt_pool_t *p, bool all);
/* Hand queued work to free workers, steal for idle ones, start threads up to max. */
void zt__pool_dispatch(zt_pool_t *p);
/* Read up to ZT__READ_BURST messages from the workers and handle them. */
void zt__pool_read_router(zt_pool_t *p);

/* --- worker.c --- */

/* The worker thread's body; arg is its zt__worker_t. */
void *zt__worker_main(void *arg);

#endif
