/*  actors/parker.h - how a pool worker waits for its next batch: spin, then sleep
 *
 *  Internal to the pool (parker.c; used by worker.c, tested by tests/actors/test_parker.c).  */
#ifndef ZTWIST_ACTORS_PARKER_H
#define ZTWIST_ACTORS_PARKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The handover word a parker watches (the worker's `signal`). */
typedef enum zt__signal {
    ZT__SIG_IDLE = 0, /* the worker finished its batch and no longer reads it */
    ZT__SIG_WORK = 1, /* a batch is ready */
    ZT__SIG_SLEEP = 2 /* the worker sleeps in recv: the reactor must send "B" */
} zt__signal_t;

/* The bits of a worker's `link` word the parker reads. */
#define ZT__L_ORPHANED 1u /* a stop's deadline detached the worker: stop waiting */
#define ZT__L_SENDING 2u  /* the worker is sending a message (worker.c) */

#define ZT__SPIN_NS 50000      /* after a deep batch, a worker watches for work this long */
#define ZT__IDLE_SPIN_NS 30000 /* ... and after a shallow one, at SCHED_IDLE */

/* One worker's parker. Its fields are the worker's; the parker only reads and CASes them. */
typedef struct zt__parker {
    atomic_int *signal;       /* Borrowed: the handover word (zt__signal_t) */
    _Atomic(uint32_t) *link;  /* Borrowed: ZT__L_ORPHANED ends any wait */
    _Atomic(uint64_t) *spins; /* Borrowed: counts the spins (relaxed) */
    void *sock;               /* Borrowed: where "B" (batch) and "T" (end) arrive while asleep */
    bool spin;                /* may spin at all (ZTWIST_POOL_SPIN) */
    bool idle_spin;           /* shallow waits may spin at SCHED_IDLE (zt__parker_can_idle_spin) */
} zt__parker_t;

/* Whether a thread of this process can go to SCHED_IDLE and come back: probed once, on a
 * throwaway thread. Any thread. */
bool zt__parker_can_idle_spin(void);

/* Set up a parker for the calling (worker) thread. idle_spin is also cleared when the thread's
 * policy is not SCHED_OTHER (a real-time process) or the probe failed. */
void zt__parker_init(zt__parker_t *pk, atomic_int *signal, _Atomic(uint32_t) *link,
                     _Atomic(uint64_t) *spins, void *sock, bool spin);

/* Wait for the next batch (deep: the last batch had more than one item). Returns true when a batch
 * came, false for "T", a detach (ZT__L_ORPHANED) or a socket error. */
bool zt__parker_wait(zt__parker_t *pk, bool deep);

#endif
