/*  ztwist/deferred_queue.h - an event-driven queue: get returns a Deferred
 *
 *  Twisted's DeferredQueue. put hands an item to the queue; get returns a Deferred that fires with
 * the oldest item, at once when one is waiting, otherwise on the put that brings one. Getters are
 * served in the order they asked. Two optional bounds: size, the most items that may wait in the
 * queue (a put beyond it is refused with ZT_EFULL, Twisted's QueueOverflow), and backlog, the most
 * getters that may wait (a get beyond it fails with ZT_QUEUE_UNDERFLOW).
 *
 *      zt_deferred_queue_t *q = zt_deferred_queue_new(ZT_DEFERRED_QUEUE_UNLIMITED, 16);
 *      zt_deferred_t *d = zt_deferred_queue_get(q);
 *      zt_deferred_add_callback(d, on_job, NULL);           // on_job owns the item it receives
 *      zt_deferred_unref(&d);
 *      zt_deferred_queue_put(q, job, job_free);            // on_job runs now
 *
 *  Ownership: an item put with success belongs to the queue until a getter receives it, as
 * zt_ok(item, free_fn): from then on the getter's chain owns it. Items still in the queue at
 * destroy are freed with their free_fn. Every item is freed exactly once, wherever it ends.
 *
 *  Cancelling a get that waits removes the getter (a later put does not go to it) and fails it with
 * ZT_CANCELLED_ERROR; cancelling one that has fired does nothing. destroy fails every waiting
 * getter with ZT_CANCELLED_ERROR ("destroyed") before it returns.
 *
 *  Threads: every function here is for the thread that owns the Deferreds (the reactor thread).  */
#ifndef ZTWIST_DEFERRED_QUEUE_H
#define ZTWIST_DEFERRED_QUEUE_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>

/** An event-driven queue (Twisted's DeferredQueue). Opaque. */
typedef struct zt_deferred_queue zt_deferred_queue_t;

/** A size or backlog with no bound (Twisted's None). */
#define ZT_DEFERRED_QUEUE_UNLIMITED SIZE_MAX

/**
 *  Create an empty queue.
 *  @param size     the most items that may wait in the queue; 0 means a put succeeds only when a
 * getter waits; ZT_DEFERRED_QUEUE_UNLIMITED for no bound
 *  @param backlog  the most getters that may wait; 0 means a get succeeds only when an item waits;
 * ZT_DEFERRED_QUEUE_UNLIMITED for no bound
 *  @return a new queue the caller owns; NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_queue_t *zt_deferred_queue_new(size_t size, size_t backlog);

/**
 *  Destroy a queue and NULL the pointer: free the items still queued (each with its free_fn) and
 * fail the waiting getters with ZT_CANCELLED_ERROR (their chains run now). Not from inside one of
 * the queue's own callbacks.
 *  @param self_p  NULL or a NULL queue does nothing
 */
ZT_EXPORT void zt_deferred_queue_destroy(zt_deferred_queue_t **self_p);

/**
 *  Add an item. When a getter waits, the first one receives zt_ok(item, free_fn) and its chain
 * runs before this returns; otherwise the item waits in the queue.
 *  @param item     the item; NULL is a valid item
 *  @param free_fn  frees item exactly once, wherever it ends; NULL when nothing needs freeing
 *  @return 0, and the queue owns item; ZT_EFULL when no getter waits and size items already wait
 * (Twisted's QueueOverflow); ZT_ENOMEM. On an error the caller still owns item.
 */
ZT_EXPORT int zt_deferred_queue_put(zt_deferred_queue_t *self, void *item, zt_free_fn *free_fn);

/**
 *  Ask for the oldest item. The Deferred fires with zt_ok(item, free_fn), which the chain owns: at
 * once when an item waits, otherwise on the put that brings one. When backlog getters already
 * wait, the Deferred fails at once with ZT_QUEUE_UNDERFLOW (code ZT_EEMPTY).
 *  @return a new Deferred, one reference owned by the caller; NULL when out of memory (nothing
 * changes)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_queue_get(zt_deferred_queue_t *self);

/** How many items wait in the queue (Twisted's len(pending)). */
ZT_EXPORT size_t zt_deferred_queue_pending(const zt_deferred_queue_t *self);

/** How many getters wait for an item (Twisted's len(waiting)). */
ZT_EXPORT size_t zt_deferred_queue_waiting(const zt_deferred_queue_t *self);

/** The size bound given to zt_deferred_queue_new. */
ZT_EXPORT size_t zt_deferred_queue_size(const zt_deferred_queue_t *self);

/** The backlog bound given to zt_deferred_queue_new. */
ZT_EXPORT size_t zt_deferred_queue_backlog(const zt_deferred_queue_t *self);

#endif
