/*  ztwist/pool.h - a pool of worker actors that runs blocking work off the reactor thread
 *
 *  Twisted's ThreadPool as actors. Each worker is a thread with its own inproc ZeroMQ DEALER socket
 * to the pool's ROUTER, which the reactor polls in its loop. Work goes to a worker as a message and
 * the results come back as messages; a worker never touches the reactor's state. The reactor hands
 * work only to idle workers, so no item waits behind a long task while a worker sits idle: when
 * the queue is deep a worker receives a batch of items at once (to cut the messages per item), and
 * a worker that goes idle takes back the unstarted part of a busy worker's batch.
 *
 *  A pool belongs to one reactor: results are delivered (Deferreds fired) on that reactor's thread.
 * Threads start lazily, on the first work, and grow on demand up to max; idle threads stay until
 * the pool shrinks (zt_pool_adjust_size) or stops.
 *
 *  A work function returns a zt_result_t: a value (with its destructor) or a failure. It must not
 * return zt_wait_for(...): a worker has no reactor to wait on (an assertion).
 *
 *  Cancellation, beyond Twisted: cancelling the Deferred of work that has not started removes it
 * from the queue (the function never runs; the Deferred fails with ZT_CANCELLED_ERROR). Work that
 * has started can poll zt_thread_is_cancelled(); its late result is discarded and freed.
 *
 *  Threads: every function here is for the thread that runs the pool's reactor, except
 * zt_thread_is_cancelled and zt_thread_is_worker (any thread: they answer for the calling thread).
 * For calls from any thread use the reactor pool's calls in <ztwist/threads.h>.  */
#ifndef ZTWIST_POOL_H
#define ZTWIST_POOL_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/reactor.h>
#include <ztwist/result.h>

typedef struct zt_pool zt_pool_t;

/** Work run on a worker thread. Returns its result: a value, zt_ok_none() or zt_err(failure);
 * never zt_wait_for(...). */
typedef zt_result_t zt_work_fn(void *arg);

/** Twisted's onResult, run on the worker thread right after the work: success is false when
 * result holds a failure. It owns result and must release it (zt_result_release). */
typedef void zt_on_result_fn(bool success, zt_result_t result, void *arg);

/** A pool's counters, filled in by zt_pool_stats. A public struct: a snapshot to read. */
typedef struct zt_pool_stats {
    uint64_t queued;    /* items accepted and not started (nor cancelled) */
    uint64_t working;   /* workers running work now */
    uint64_t idle;      /* workers waiting for work */
    uint64_t total;     /* worker threads, starting and stopping ones included */
    uint64_t completed; /* items whose work ran and whose result was handled */
    uint64_t min;       /* the bound: threads kept once started */
    uint64_t max;       /* the bound: the most threads */
    uint64_t spins;     /* times a worker of this pool watched for work before it slept */
} zt_pool_stats_t;

/** The reactor pool's default bounds, as Twisted's reactor thread pool: 0 .. 10 threads. */
#define ZT_POOL_DEFAULT_MIN 0
#define ZT_POOL_DEFAULT_MAX 10

/** The default deadline of zt_pool_destroy and of the reactor pool's stop, in seconds. */
#define ZT_POOL_STOP_TIMEOUT 10.0

/**
 *  Create a pool whose results are delivered on reactor's thread. Starts no thread and does no I/O.
 *  @param reactor  borrowed; must outlive the pool
 *  @param min      threads kept once the pool has started
 *  @param max      the most threads; >= 1 and >= min
 *  @return a new pool the caller owns; NULL when reactor is NULL, min > max, max is 0 or out of
 * memory
 */
ZT_EXPORT ZT_NODISCARD zt_pool_t *zt_pool_new(zt_reactor_t *reactor, size_t min, size_t max);

/**
 *  Stop the pool (zt_pool_stop with ZT_POOL_STOP_TIMEOUT unless stopped already), free it and NULL
 * the pointer. Call it before destroying the reactor; never from the pool's own work.
 *  @param self_p  NULL or a NULL pool does nothing
 */
ZT_EXPORT void zt_pool_destroy(zt_pool_t **self_p);

/**
 *  Stop the pool: refuse new work, finish the queued work, deliver its results (Deferreds fire
 * inside this call), then end and join every thread. Blocks the calling (reactor) thread for at
 * most timeout seconds, and, while the reactor's shutdown event fires, no later than the shutdown
 * deadline (zt_reactor_set_shutdown_timeout). Past the deadline, work not started is dropped (a
 * Deferred fails with ZT_ESHUTDOWN), the Deferreds of work still out on a worker (running, or
 * finished and not yet back) fail with ZT_ETIMEDOUT before this returns, running work sees
 * zt_thread_is_cancelled() return true, and the threads still running it are detached (one logged
 * error counts threads, Deferreds and plain calls): they free what they hold when their work
 * returns, without touching the pool or the reactor, and their late results are discarded.
 *  @param timeout  seconds; < 0 means ZT_POOL_STOP_TIMEOUT
 *  @return 0; ZT_EALREADY when stopped already; ZT_ETIMEDOUT when some thread had to be detached
 */
ZT_EXPORT int zt_pool_stop(zt_pool_t *self, double timeout);

/**
 *  Change the bounds at run time (Twisted's adjustPoolsize). A pool that has started starts threads
 * up to min at once; threads above max end as soon as they are idle.
 *  @return 0; ZT_EINVAL when max is 0 or min > max; ZT_ESHUTDOWN when the pool is stopped
 */
ZT_EXPORT int zt_pool_adjust_size(zt_pool_t *self, size_t min, size_t max);

/**
 *  Bound the work waiting to start. Past the bound, submitting fails with ZT_EFULL (a Deferred
 * fails with ZT_QUEUE_OVERFLOW): nothing is dropped silently.
 *  @param max_queued  the bound; 0 (the default) means unbounded
 */
ZT_EXPORT void zt_pool_set_max_queued(zt_pool_t *self, size_t max_queued);

/**
 *  Fill stats with the pool's counters.
 *  @param stats  required
 */
ZT_EXPORT void zt_pool_stats(const zt_pool_t *self, zt_pool_stats_t *stats);

/** The reactor the pool delivers to; borrowed. */
ZT_EXPORT zt_reactor_t *zt_pool_reactor(const zt_pool_t *self);

/**
 *  Run fn(arg) on a worker thread (Twisted's ThreadPool.callInThread). Its result is released on
 * the worker; a failure is logged.
 *  @param fn   required
 *  @param arg  borrowed; handed to the worker
 *  @return 0; ZT_EINVAL when fn is NULL; ZT_EFULL past zt_pool_set_max_queued; ZT_ESHUTDOWN when
 * the pool is stopped or stopping; ZT_ENOMEM; ZT_ESYS when a thread cannot start and none runs. On
 * failure fn never runs.
 */
ZT_EXPORT int zt_pool_call_in_thread(zt_pool_t *self, zt_work_fn *fn, void *arg);

/**
 *  Run fn(arg) on a worker thread, then on_result(success, result, arg) on the same thread
 * (Twisted's ThreadPool.callInThreadWithCallback).
 *  @param on_result  required; runs exactly once when 0 is returned (unless the work is dropped by
 * a stop's deadline before it started)
 *  @return as zt_pool_call_in_thread; ZT_EINVAL also when on_result is NULL
 */
ZT_EXPORT int zt_pool_call_in_thread_with_callback(zt_pool_t *self, zt_on_result_fn *on_result,
                                                   zt_work_fn *fn, void *arg);

/**
 *  Run fn(arg) on a worker thread and return a Deferred that fires with its result on the reactor
 * thread (Twisted's deferToThreadPool). Cancelling the Deferred before the work starts removes it
 * from the queue; after, the work may poll zt_thread_is_cancelled() and its result is discarded.
 *  @return a Deferred the caller owns (one reference); a failed one (ZT_QUEUE_OVERFLOW,
 * ZT_ESHUTDOWN, ZT_EINVAL, ZT_ENOMEM) when the work cannot be queued; NULL only when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_pool_defer(zt_pool_t *self, zt_work_fn *fn, void *arg);

/**
 *  Whether the work the calling thread runs has been cancelled: its Deferred was cancelled, or its
 * pool's stop passed its deadline. Any thread; false outside work.
 */
ZT_EXPORT bool zt_thread_is_cancelled(void);

/** Whether the calling thread is a worker of some ztwist pool. Any thread. */
ZT_EXPORT bool zt_thread_is_worker(void);

#endif
