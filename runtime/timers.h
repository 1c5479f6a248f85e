/*  runtime/timers.h - the timer heap and the DelayedCall object, private to the runtime
 *
 *  The reactor embeds a zt__timers_t; timers.c owns everything in it. A call scheduled without a
 * handle lives in its heap node alone (function, argument, time, sequence number); a call with a
 * handle (zt_delayed_call_t) is an object carved from blocks and recycled through a free stack,
 * which its heap nodes point to. Reactor thread only.  */
#ifndef ZTWIST_RUNTIME_TIMERS_H
#define ZTWIST_RUNTIME_TIMERS_H

#include <ztwist/reactor.h>

#include "base/base.h"

/* The states of a call with a handle. */
typedef enum zt__call_state {
    ZT__CALL_PENDING = 0,   /* scheduled, will run */
    ZT__CALL_CALLED = 1,    /* ran (or is running) */
    ZT__CALL_CANCELLED = 2, /* cancelled; will never run */
    ZT__CALL_FREE = 3       /* on the free stack */
} zt__call_state_t;

/* A timed call that has a handle: the object behind a zt_delayed_call_t and behind a clock
 * handle. Recycled through the free stack when no heap node and no user handle refers to it. */
struct zt_delayed_call {
    const zt_clock_t *clock; /* Borrowed: the reactor's clock interface; first, as clock.h says */
    zt_reactor_t *reactor;   /* Borrowed: the owner */
    zt_reactor_fn *fn;       /* the call */
    void *arg;               /* Borrowed: the caller's */
    int64_t when_ns;         /* scheduled time, monotonic ns */
    uint64_t seq;            /* sequence number of the one live heap node */
    uint32_t refs;           /* heap nodes pointing here + 1 while a user handle exists */
    bool user_ref;           /* a zt_delayed_call_t handle is outstanding */
    zt__call_state_t state;  /* see zt__call_state_t */
};

/* A heap node, stored by value so that comparisons touch only the array. Either the call itself
 * (fn set: a call without a handle, which can never be cancelled, so its node is never stale) or
 * a reference to a zt_delayed_call_t (fn NULL), which is stale (skipped and dropped) when the call
 * is no longer pending or was rescheduled under a newer seq. */
typedef struct zt__timer_node {
    int64_t when_ns;   /* the key: time */
    uint64_t seq;      /* the tie-break: scheduling order */
    zt_reactor_fn *fn; /* the call when it has no handle; NULL when it is in `call` */
    union {
        void *arg;               /* Borrowed: fn's argument (fn set) */
        zt_delayed_call_t *call; /* Borrowed reference counted in call->refs (fn NULL) */
    };
} zt__timer_node_t;
_Static_assert(sizeof(zt__timer_node_t) <= 32, "a heap node is at most four 8-byte words");

/* The timer heap. */
typedef struct zt__timers {
    zt__timer_node_t *heap;      /* Owned: binary min-heap on (when_ns, seq) */
    size_t len;                  /* nodes in the heap, live and stale */
    size_t cap;                  /* allocated nodes */
    size_t stale;                /* stale nodes still in the heap */
    uint64_t next_seq;           /* the next sequence number */
    zt_delayed_call_t **free;    /* Owned array: the free calls, a stack (room for every call) */
    size_t nfree;                /* calls on the free stack */
    zt_delayed_call_t *bump;     /* Borrowed: the next never-used call in the newest block */
    zt_delayed_call_t *bump_end; /* Borrowed: the end of the newest block */
    void **slabs;                /* Owned: the blocks calls are carved from */
    size_t nslabs;               /* blocks allocated */
    size_t user_handles;         /* outstanding zt_delayed_call_t handles */
} zt__timers_t;

/* Free everything; every user handle must have been released. */
void zt__timers_fini(zt__timers_t *t);
/* Schedule fn(arg) after seconds (not NaN) on the reactor's own heap with a call object; NULL
 * when out of memory. The heap holds the only reference. */
zt_delayed_call_t *zt__timers_schedule_own(zt_reactor_t *r, double seconds, zt_reactor_fn *fn,
                                           void *arg);
/* Schedule an internal deadline (the shutdown's) on the reactor's timers: its own heap, or the
 * test clock it was created on; NULL when out of memory. Give it back with zt__timers_drop. */
zt_delayed_call_t *zt__timers_schedule(zt_reactor_t *r, double seconds, zt_reactor_fn *fn,
                                       void *arg);
/* Cancel a deadline from zt__timers_schedule if it is pending, let go of it and NULL *call_p;
 * NULL does nothing. Safe from inside the deadline's own call. */
void zt__timers_drop(zt_reactor_t *r, zt_delayed_call_t **call_p);
/* Fill in r->clock, the reactor's own clock interface. */
void zt__timers_clock_init(zt_reactor_t *r);
/* Run the calls due now that were scheduled before this call started. Returns how many ran. */
size_t zt__timers_run_due(zt_reactor_t *r);
/* Nanoseconds until the nearest pending call (0 when due), or -1 when none is pending. */
int64_t zt__timers_next_delay_ns(zt_reactor_t *r, int64_t now_ns);
/* Pending calls: live nodes in the heap. */
size_t zt__timers_pending(const zt__timers_t *t);

#endif
