/*  futures/deferred_impl.h - the Deferred's structure, shared by deferred.c and deferred_gc.c
 *
 *  Private to those two files: deferred.c holds the Deferred (links, the runner, fire, chain,
 * cancel, timeout), deferred_gc.c the reporting of unhandled failures and the collector of
 * abandoned wait graphs. The design notes are at the top of deferred.c.  */
#ifndef ZTWIST_FUTURES_DEFERRED_IMPL_H
#define ZTWIST_FUTURES_DEFERRED_IMPL_H

#include "futures.h"

#include <stdint.h>

/* What a link slot holds; the kind byte says when it runs and what its arg is. */
enum {
    K_CB = 1,                /* fn runs on a value; a failure passes it */
    K_EB = 2,                /* fn runs on a failure; a value passes it */
    K_BOTH = K_CB | K_EB,    /* fn runs on either */
    K_PAIR = 4,              /* fn is the callback; the next slot (K_PAIR_EB) holds its errback */
    K_PAIR_EB = 8,           /* the errback half of a pair; consumed with the slot before it */
    K_CONTINUE = 16,         /* arg is a Deferred waiting on this one (a reference is held) */
    K_CHAIN = 32 | K_BOTH,   /* fn is s_chain_link, arg a Deferred to fire (a reference is held) */
    K_TIMEOUT = 64 | K_BOTH, /* fn is s_timeout_link, arg an Owned s_timeout_t */
    K_WAITER = 128,          /* arg is a zt__deferred_waiter_t (Borrowed): given the result */
    K_DEAD = 0, /* a K_CONTINUE or K_CHAIN cut by zt__deferred_collect: skipped, owns nothing */
};

/* Deferred flags. */
enum {
    F_CALLED = 1,   /* fired: Twisted's `called` */
    F_RUNNING = 2,  /* one of its links is running: Twisted's `_runningCallbacks` */
    F_SUPPRESS = 4, /* cancelled without a canceller: swallow the next fire once */
    F_MARK = 8,     /* in the graph zt__deferred_collect is gathering */
    F_HEAP = 16,    /* the links are in slots.heap; otherwise the one slot slots.one */
};

/* The first link capacity: 4 slots fill an 80-byte malloc chunk. */
#define S_FIRST_CAP 4u
/* How many Deferreds zt__deferred_collect gathers before it gives up (leaving the graph alone). */
#define S_COLLECT_MAX_NODES 1024
/* Chain depth the runner handles without allocating. */
#define S_STACK_LOCAL 32

typedef struct {
    zt_deferred_fn *fn; /* the link's function; unused for K_CONTINUE */
    void *arg;          /* the user's arg (Borrowed), or as the kind says */
} zt__deferred_link_t;

struct zt_deferred {
    union {
        zt__deferred_link_t one; /* without F_HEAP: the only slot (capacity 1), its kind in kind0 */
        struct {
            zt__deferred_link_t *links; /* Owned: cap slots, then cap kind bytes */
            uint32_t cap;               /* link slots allocated */
        } heap;                         /* with F_HEAP */
    } slots;                            /* the links */
    zt_result_t result;         /* the current result; ZT_RESULT_DEFERRED while waiting (a ref) */
    zt_canceller_fn *canceller; /* called by the first cancel before the fire, or NULL */
    void *canceller_arg;        /* Borrowed: the canceller's arg; the free worklist once dead */
    uint32_t refs;              /* references; the last one frees */
    uint32_t head;              /* first pending link slot */
    uint32_t count;             /* one past the last used link slot */
    uint16_t paused;            /* zt_deferred_pause depth (waiting is not counted here) */
    uint8_t flags;              /* F_* */
    uint8_t kind0;              /* the kind of slots.one (without F_HEAP) */
    uint64_t owner;             /* zt__thread_id() of the creating thread; every call checks it */
};
_Static_assert(sizeof(struct zt_deferred) <= 80, "a Deferred and its first link fill a 96-byte "
                                                 "malloc chunk");

#define ZT__DEFERRED_CHECK_THREAD(d)                                                               \
    ZT__CHECK_THREAD((d)->owner, "a Deferred belongs to the thread that created it")

/* The timeout added by zt_deferred_add_timeout: shared by the timer and the K_TIMEOUT link. */
typedef struct {
    zt_deferred_t *d;          /* Borrowed; the pending timer holds a reference on it */
    const zt_clock_t *clock;   /* Borrowed: the clock the timer is on */
    zt_delayed_call_t *handle; /* Owned: the pending timer, or NULL once it ran or was cancelled */
    double seconds;            /* the timeout, for the message */
    bool timed_out;            /* the timer ran: a CancelledError becomes a TimeoutError */
} s_timeout_t;

/* The link slots: the inline one, or the heap block. */
static inline zt__deferred_link_t *
zt__deferred_links(zt_deferred_t *self)
{
    return (self->flags & F_HEAP) ? self->slots.heap.links : &self->slots.one;
}

/* The kind bytes, one per slot. */
static inline uint8_t *
zt__deferred_kinds(zt_deferred_t *self)
{
    return (self->flags & F_HEAP) ? (uint8_t *)(self->slots.heap.links + self->slots.heap.cap)
                                  : &self->kind0;
}

static inline const uint8_t *
zt__deferred_kinds_c(const zt_deferred_t *self)
{
    return (self->flags & F_HEAP) ? (const uint8_t *)(self->slots.heap.links + self->slots.heap.cap)
                                  : &self->kind0;
}

/* Link slots available. */
static inline uint32_t
zt__deferred_cap(const zt_deferred_t *self)
{
    return (self->flags & F_HEAP) ? self->slots.heap.cap : 1u;
}

static inline bool
zt__deferred_is_waiting(const zt_deferred_t *self)
{
    return self->result.kind == ZT_RESULT_DEFERRED;
}

/* Free self and whatever its death releases (deferred.c). */
void zt__deferred_destroy(zt_deferred_t *self);

/* Free self's abandoned wait graph, if it is one (deferred_gc.c). */
void zt__deferred_collect(zt_deferred_t *self);

/* Count and report a failure nobody handled: the handler, or the log; abort in strict mode
 * (deferred_gc.c). */
void zt__deferred_report_unhandled(const zt_failure_t *failure);

#endif
