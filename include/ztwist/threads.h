/*  ztwist/threads.h - Twisted's thread API: the reactor's pool, call_in_thread, defer_to_thread,
 * blocking_call_from_thread
 *
 *  The names of twisted.internet.threads and IReactorThreads, in ztwist's style:
 *
 *      zt_call_in_thread(r, f, arg)                           reactor.callInThread
 *      zt_call_in_thread_with_callback(r, on_result, f, arg)  ThreadPool.callInThreadWithCallback
 *      zt_call_multiple_in_thread(r, calls, n)                threads.callMultipleInThread
 *      zt_defer_to_thread(r, f, arg)                          threads.deferToThread
 *      zt_defer_to_thread_pool(r, pool, f, arg)               threads.deferToThreadPool
 *      zt_blocking_call_from_thread(r, f, arg)                threads.blockingCallFromThread
 *      zt_reactor_get_thread_pool(r)                          reactor.getThreadPool
 *      zt_reactor_suggest_thread_pool_size(r, n)              reactor.suggestThreadPoolSize
 *
 *  The reactor's pool is created on first use with ZT_POOL_DEFAULT_MIN .. ZT_POOL_DEFAULT_MAX (0 ..
 * 10) threads and is stopped and destroyed during the reactor's "shutdown" event (a "during"
 * trigger, as Twisted does), after finishing its queued work; a reactor destroyed without a
 * shutdown (one that never ran) stops and destroys its pool in zt_reactor_destroy. As for every
 * call from another thread, the reactor must outlive the threads that call these (reactor.h).
 *
 *  Threads: zt_call_in_thread, zt_call_in_thread_with_callback and zt_call_multiple_in_thread are
 * safe from any thread (from a thread that is not the reactor's the work travels through the
 * reactor's mailbox first); zt_blocking_call_from_thread is for any thread but the reactor's; the
 * rest (those that return or take a Deferred or a pool) are for the reactor thread only.  */
#ifndef ZTWIST_THREADS_H
#define ZTWIST_THREADS_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/pool.h>
#include <ztwist/reactor.h>

/** One call of zt_call_multiple_in_thread. */
typedef struct zt_thread_call {
    zt_work_fn *fn; /* the work; required */
    void *arg;      /* Borrowed: passed to fn */
} zt_thread_call_t;

/** How long zt_blocking_call_from_thread waits by default, in seconds. */
#define ZT_BLOCKING_CALL_TIMEOUT 60.0

/**
 *  The reactor's pool, created (without threads) on first use.
 *  @return a pool borrowed from the reactor, valid until its shutdown event; NULL when out of
 * memory, and NULL (allocating nothing) once the shutdown event's during phase has begun or run
 * has returned
 */
ZT_EXPORT zt_pool_t *zt_reactor_get_thread_pool(zt_reactor_t *reactor);

/**
 *  Set the most threads of the reactor's pool (Twisted's suggestThreadPoolSize).
 *  @return 0; ZT_EINVAL when n is 0; ZT_ENOMEM; ZT_ESHUTDOWN after the shutdown
 */
ZT_EXPORT int zt_reactor_suggest_thread_pool_size(zt_reactor_t *reactor, size_t n);

/**
 *  Run fn(arg) on a thread of the reactor's pool (Twisted's callInThread). Any thread. The result
 * is released on the worker; a failure is logged.
 *  @return 0; ZT_EINVAL when fn is NULL; ZT_EFULL past the pool's bound on queued work;
 * ZT_ESHUTDOWN when the reactor or its pool has shut down; ZT_ENOMEM; the codes of
 * zt_reactor_call_from_thread. On failure fn never runs.
 */
ZT_EXPORT int zt_call_in_thread(zt_reactor_t *reactor, zt_work_fn *fn, void *arg);

/**
 *  Run fn(arg) on a thread of the reactor's pool, then on_result(success, result, arg) on that same
 * thread. Any thread.
 *  @return as zt_call_in_thread; ZT_EINVAL also when on_result is NULL
 */
ZT_EXPORT int zt_call_in_thread_with_callback(zt_reactor_t *reactor, zt_on_result_fn *on_result,
                                              zt_work_fn *fn, void *arg);

/**
 *  Run n calls in order on one thread of the reactor's pool (Twisted's callMultipleInThread). Any
 * thread. calls is copied; each call's result is released (a failure logged) and the next runs.
 *  @return as zt_call_in_thread; ZT_EINVAL when calls is NULL, n is 0 or a fn is NULL
 */
ZT_EXPORT int zt_call_multiple_in_thread(zt_reactor_t *reactor, const zt_thread_call_t *calls,
                                         size_t n);

/**
 *  Run fn(arg) on a thread of the reactor's pool and return a Deferred fired with its result on the
 * reactor thread (Twisted's deferToThread). See zt_pool_defer for cancellation and failures.
 *  @return a Deferred the caller owns; NULL only when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_defer_to_thread(zt_reactor_t *reactor, zt_work_fn *fn,
                                                         void *arg);

/**
 *  As zt_defer_to_thread on another pool (Twisted's deferToThreadPool).
 *  @param pool  a pool of this reactor (an assertion)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *
zt_defer_to_thread_pool(zt_reactor_t *reactor, zt_pool_t *pool, zt_work_fn *fn, void *arg);

/**
 *  From a thread that is not the reactor's, run fn(arg) on the reactor thread and wait for its
 * result (Twisted's blockingCallFromThread): the value or failure fn returns, or, when fn returns
 * zt_wait_for(d), d's eventual result. Waits at most ZT_BLOCKING_CALL_TIMEOUT seconds.
 *  @return the result, which the caller owns; a failure with code ZT_EDEADLK at once when called
 * on the reactor thread (zt_reactor_is_reactor_thread; Twisted deadlocks there); ZT_ESHUTDOWN when
 * the reactor is not running, is shutting down or shuts down while fn's Deferred is pending;
 * ZT_ETIMEDOUT past the deadline (fn's late result is then released on the reactor thread);
 * ZT_EINVAL when fn is NULL
 */
ZT_EXPORT ZT_NODISCARD zt_result_t zt_blocking_call_from_thread(zt_reactor_t *reactor,
                                                                zt_maybe_fn *fn, void *arg);

/**
 *  As zt_blocking_call_from_thread with a deadline of timeout seconds (> 0).
 */
ZT_EXPORT ZT_NODISCARD zt_result_t zt_blocking_call_from_thread_timeout(zt_reactor_t *reactor,
                                                                        double timeout,
                                                                        zt_maybe_fn *fn, void *arg);

#endif
