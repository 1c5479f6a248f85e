/*  ztwist/deferred_lock.h - DeferredLock and DeferredSemaphore: mutual exclusion without blocking
 *
 *  Twisted's DeferredLock and DeferredSemaphore. Nothing ever blocks: acquire returns a Deferred
 * that fires when the lock (or one of the semaphore's tokens) is the caller's, at once when it is
 * free, otherwise when an earlier holder releases it; waiters are served in the order they asked.
 * The holder calls release when done. run wraps the pattern: acquire, call a function, release when
 * the function's result arrives, value or failure.
 *
 *      static zt_result_t write_record(void *arg) { ... return zt_wait_for(d); }
 *      zt_deferred_t *d = zt_deferred_lock_run(lock, write_record, rec);  // one writer at a time
 *
 *  Cancelling an acquire that is still waiting removes it from the waiters and fails it with
 * ZT_CANCELLED_ERROR; cancelling one that has fired does nothing (the lock stays acquired).
 *
 *  Lifetime: destroy may be called while the lock is held or waited on. It fails every waiting
 * acquire with ZT_CANCELLED_ERROR ("destroyed") before it returns. A run in progress keeps the
 * object's memory alive until its function's result arrives, and its release then does nothing.
 *
 *  Threads: every function here is for the thread that owns the Deferreds (the reactor thread).  */
#ifndef ZTWIST_DEFERRED_LOCK_H
#define ZTWIST_DEFERRED_LOCK_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>

/** A lock for event-driven code (Twisted's DeferredLock). Opaque. */
typedef struct zt_deferred_lock zt_deferred_lock_t;

/** A semaphore for event-driven code (Twisted's DeferredSemaphore). Opaque. */
typedef struct zt_deferred_semaphore zt_deferred_semaphore_t;

/**
 *  Create an unlocked lock.
 *  @return a new lock the caller owns; NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_lock_t *zt_deferred_lock_new(void);

/**
 *  Destroy a lock and NULL the pointer. Waiting acquires fail with ZT_CANCELLED_ERROR before this
 * returns (their chains run now); a run in progress finishes without the lock. Not from inside one
 * of the lock's own callbacks.
 *  @param self_p  NULL or a NULL lock does nothing
 */
ZT_EXPORT void zt_deferred_lock_destroy(zt_deferred_lock_t **self_p);

/**
 *  Ask for the lock. The returned Deferred fires with zt_ok(lock, NULL) (the lock, borrowed) when
 * the lock is the caller's: before this returns when it is free, otherwise on the release that
 * hands it over. Cancelling it while it waits withdraws the request (ZT_CANCELLED_ERROR).
 *  @return a new Deferred, one reference owned by the caller; NULL when out of memory (nothing
 * changes)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_lock_acquire(zt_deferred_lock_t *self);

/**
 *  Release the lock. When acquires are waiting, the first one is given the lock and fires before
 * this returns (its chain runs now, and may release again).
 *  @return 0; ZT_ESTATE when the lock is not locked (Twisted asserts; nothing changes)
 */
ZT_EXPORT int zt_deferred_lock_release(zt_deferred_lock_t *self);

/** Whether the lock is held (Twisted's `locked`). */
ZT_EXPORT bool zt_deferred_lock_is_locked(const zt_deferred_lock_t *self);

/** How many acquires are waiting for the lock. */
ZT_EXPORT size_t zt_deferred_lock_waiting(const zt_deferred_lock_t *self);

/**
 *  Acquire, call fn(arg), and release when fn's result arrives (Twisted's DeferredLock.run). When
 * the lock is free, fn runs before this returns. fn may return a value, a failure or
 * zt_wait_for(d); the lock is released when that value, failure or d's result arrives, whichever it
 * is, and the returned Deferred then fires with it. Cancelling the returned Deferred while it waits
 * for the lock withdraws the request (fn never runs); while fn's Deferred runs, it cancels that.
 *  @param fn   required (asserted)
 *  @param arg  passed to fn; borrowed, must stay valid until fn has run or the request was
 * cancelled
 *  @return a new Deferred, one reference owned by the caller; NULL when out of memory (fn never
 * runs)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_lock_run(zt_deferred_lock_t *self,
                                                           zt_maybe_fn *fn, void *arg);

/**
 *  Create a semaphore with tokens tokens, which is also its limit.
 *  @param tokens  at least 1
 *  @return a new semaphore the caller owns; NULL when tokens < 1 (Twisted's ValueError) or out of
 * memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_semaphore_t *zt_deferred_semaphore_new(int tokens);

/**
 *  Destroy a semaphore and NULL the pointer, with the same rules as zt_deferred_lock_destroy.
 *  @param self_p  NULL or a NULL semaphore does nothing
 */
ZT_EXPORT void zt_deferred_semaphore_destroy(zt_deferred_semaphore_t **self_p);

/**
 *  Ask for a token. The returned Deferred fires with zt_ok(semaphore, NULL) (borrowed) when the
 * token is the caller's: before this returns when one is free, otherwise on a release. Cancelling
 * it while it waits withdraws the request (ZT_CANCELLED_ERROR).
 *  @return a new Deferred, one reference owned by the caller; NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_semaphore_acquire(zt_deferred_semaphore_t *self);

/**
 *  Give a token back. When acquires are waiting, the first one gets it and fires before this
 * returns.
 *  @return 0; ZT_ESTATE when every token is already free (Twisted asserts; nothing changes)
 */
ZT_EXPORT int zt_deferred_semaphore_release(zt_deferred_semaphore_t *self);

/** How many tokens are free now (Twisted's `tokens`). */
ZT_EXPORT int zt_deferred_semaphore_tokens(const zt_deferred_semaphore_t *self);

/** The number of tokens the semaphore was made with (Twisted's `limit`). */
ZT_EXPORT int zt_deferred_semaphore_limit(const zt_deferred_semaphore_t *self);

/** How many acquires are waiting for a token. */
ZT_EXPORT size_t zt_deferred_semaphore_waiting(const zt_deferred_semaphore_t *self);

/**
 *  Acquire a token, call fn(arg), release when fn's result arrives: as zt_deferred_lock_run.
 *  @return a new Deferred, one reference owned by the caller; NULL when out of memory (fn never
 * runs)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_semaphore_run(zt_deferred_semaphore_t *self,
                                                                zt_maybe_fn *fn, void *arg);

#endif
