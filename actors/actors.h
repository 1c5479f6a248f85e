/*  actors/actors.h - what pool.c and threads.c share: work kinds and the submission path for calls
 * from other threads
 *
 *  Everything here is internal (zt__ names). pool.c owns the pool and its workers; threads.c owns
 * the reactor's pool, Twisted's thread API and blocking_call_from_thread.  */
#ifndef ZTWIST_ACTORS_H
#define ZTWIST_ACTORS_H

#include <ztwist/pool.h>
#include <ztwist/threads.h>

#include "base/base.h"

/* What a work item does with its result. */
typedef enum zt__work_kind {
    ZT__WORK_CALL = 0,     /* call_in_thread: the worker releases the result (logs a failure) */
    ZT__WORK_CALLBACK = 1, /* call_in_thread_with_callback: the worker runs on_result */
    ZT__WORK_DEFER = 2,    /* defer: the reactor fires the item's Deferred with the result */
    ZT__WORK_MULTIPLE = 3  /* call_multiple: arg is an owned array of calls ending with fn NULL */
} zt__work_kind_t;

/* Reserve a place in the pool's queue, from any thread, for a submission that will follow on the
 * reactor thread. The caller guarantees the pool is alive (threads.c holds its record's lock).
 * Returns 0, ZT_EFULL or ZT_ESHUTDOWN. */
int zt__pool_reserve(zt_pool_t *pool);

/* Give a reservation back (the submission will not happen). Reactor thread or under the lock. */
void zt__pool_unreserve(zt_pool_t *pool);

/* Queue work for which a place was reserved; reactor thread. kind is not ZT__WORK_DEFER; on_result
 * is for ZT__WORK_CALLBACK, NULL otherwise. Returns 0, ZT_ESHUTDOWN, ZT_ENOMEM or
 * ZT_ESYS; on failure the reservation is given back and, for ZT__WORK_MULTIPLE, arg is left to the
 * caller. */
int zt__pool_submit_reserved(zt_pool_t *pool, zt__work_kind_t kind, zt_work_fn *fn, void *arg,
                             zt_on_result_fn *on_result);

/* Hold the pool: work queues but no thread starts until it is released (the reactor's pool waits
 * for the reactor to run, as Twisted's starts at callWhenRunning). Reactor thread. */
void zt__pool_set_held(zt_pool_t *pool, bool held);

/* The pool's min threads. Reactor thread. */
size_t zt__pool_min(const zt_pool_t *pool);

#endif
