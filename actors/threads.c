/*  actors/threads.c - Twisted's thread API: the reactor's pool, call_in_thread from any thread,
 * defer_to_thread, call_multiple_in_thread and blocking_call_from_thread
 *
 *  Design notes.
 *
 *  The reactor's record. Each reactor that uses this API has one record (its pool, its suggested
 * size, its blocking calls), kept in the reactor's extension slot under s_slot_key
 * (runtime/extension.h) and freed by the slot's finaliser when the reactor is destroyed. It is
 * created on the reactor thread on first use, with a "during shutdown" trigger that marks it
 * closed, fails the blocking calls still waiting on this reactor, and stops and destroys the pool
 * (Twisted stops its pool in the same phase). Once closed it stays closed: no second pool is made
 * (zt_reactor_get_thread_pool returns NULL). A pool created before the reactor runs is held (work
 * queues, no thread starts) until call_when_running releases it, as Twisted starts its pool then.
 * A reactor destroyed without a shutdown has its pool stopped and destroyed by the finaliser.
 *
 *  Liveness: as reactor.h says, a reactor outlives every thread that calls it, so another thread
 * may look its record up (zt__reactor_slot) and use it; `lock` guards what such threads touch:
 * `closed`, `pool` (written only on the reactor thread, under the lock) and the waiters list.
 *
 *  Calls from other threads. zt_call_in_thread and its siblings take the direct path on the
 * reactor thread (zt_reactor_is_reactor_thread); otherwise the call is copied into a request that
 * travels through the reactor's mailbox and is submitted there. To report back-pressure
 * synchronously, the caller reserves a place in the pool's queue under the record's lock (the pool
 * cannot be destroyed meanwhile: the shutdown trigger clears `pool` under the same lock first);
 * the reactor side then submits against that reservation, or gives it back.
 *
 *  blocking_call_from_thread. The waiter and the reactor side share a request: a mutex, a
 * condition on the monotonic clock, the result and two references (waiter, reactor side). The
 * request is completed exactly once (`done` under its mutex); a result that arrives after that
 * (a timed-out waiter, a shutdown) is released on the reactor thread. A waiter on a reactor that
 * has a record is in the record's waiters list, so the shutdown trigger can wake it with
 * ZT_ESHUTDOWN before it stops the pool, whose workers may be those very waiters: Twisted
 * deadlocks there. (A reactor without a record has no pool, so no waiter can be its worker; its
 * request runs, or fails with ZT_ESHUTDOWN, when the mailbox is drained.) A call from the reactor
 * thread fails at once with ZT_EDEADLK.  */
#include "actors.h"
#include "runtime/extension.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- the reactor's record ---------------------------------------------------------------- */

typedef struct s_blocking s_blocking_t;

typedef struct s_record {
    zt_reactor_t *reactor; /* Borrowed: the reactor whose slot holds it */
    pthread_mutex_t lock;  /* guards closed, pool (for other threads) and waiters */
    zt_pool_t *pool;       /* Owned: the reactor's pool, or NULL (written on the reactor thread) */
    size_t max;            /* the pool's max threads (suggest_thread_pool_size) */
    bool closed;           /* the shutdown trigger has run: no pool any more */
    s_blocking_t *pending; /* Borrowed: blocking calls whose Deferred has not fired (reactor) */
    s_blocking_t *waiters; /* Borrowed: blocking calls waiting (under lock) */
} s_record_t;

struct s_blocking {
    pthread_mutex_t lock;       /* guards refs, done, abandoned and result */
    pthread_cond_t cond;        /* signalled when done */
    int refs;                   /* the waiter's and the reactor side's */
    bool done;                  /* completed: result belongs to the waiter */
    bool abandoned;             /* the waiter gave up: a late result is released */
    zt_result_t result;         /* Owned: the outcome once done */
    zt_reactor_t *reactor;      /* Borrowed: where fn runs */
    zt_maybe_fn *fn;            /* the call */
    void *arg;                  /* Borrowed: fn's argument */
    zt_deferred_t *d;           /* Owned reference (reactor side): fn's pending Deferred */
    bool linked;                /* in its record's pending list (reactor side) */
    s_record_t *rec;            /* Borrowed: the record whose pending list holds it, while linked */
    s_record_t *waiting_in;     /* Borrowed: the record whose waiters list holds it, or NULL */
    s_blocking_t *next_pending; /* Borrowed: the record's pending list (reactor side) */
    s_blocking_t *next_wait;    /* Borrowed: the record's waiters list (under its lock) */
};

static const char s_slot_key = 0; /* its address names this file's slot */

static void s_finish(s_blocking_t *req, zt_result_t result, bool drop_ref);
static void s_unlink_pending(s_record_t *rec, s_blocking_t *req);
static void s_blocking_unref(s_blocking_t *req);

/* Blocking calls whose Deferred is pending: cancel it; their requests are done already. */
static void
s_cancel_pending(s_record_t *rec)
{
    while (rec->pending) {
        s_blocking_t *req = rec->pending;
        pthread_mutex_lock(&req->lock);
        req->refs++; /* the cancel below may drop the reactor side's reference */
        pthread_mutex_unlock(&req->lock);
        zt_deferred_t *d = zt_deferred_ref(req->d);
        zt_deferred_cancel(d);
        if (req->linked) { /* the cancel did not fire it: let go of it */
            s_unlink_pending(rec, req);
            zt_deferred_unref(&req->d);
            s_finish(req, zt_ok_none(), true);
        }
        s_blocking_unref(req);
        zt_deferred_unref(&d);
    }
}

/* Close the record: wake its waiters, cancel its pending calls, stop and destroy its pool. */
static void
s_close(s_record_t *rec)
{
    pthread_mutex_lock(&rec->lock);
    rec->closed = true;
    zt_pool_t *pool = rec->pool;
    rec->pool = NULL;
    for (s_blocking_t *w = rec->waiters; w; w = w->next_wait)
        s_finish(w, zt_err(zt_failure_from_code(ZT_ESHUTDOWN, "the reactor is shutting down")),
                 false);
    pthread_mutex_unlock(&rec->lock);
    s_cancel_pending(rec);
    if (pool) {
        zt_pool_stop(pool, ZT_POOL_STOP_TIMEOUT); /* bounded by the shutdown's deadline */
        zt_pool_destroy(&pool);
    }
}

/* The "during shutdown" trigger. */
static zt_result_t
s_on_shutdown(void *arg)
{
    s_close(arg);
    return zt_ok_none();
}

/* The slot's finaliser, when the reactor is destroyed. Waiters are gone by the liveness contract.
 */
static void
s_record_free(void *arg)
{
    s_record_t *rec = arg;
    if (!rec->closed)
        s_close(rec);
    pthread_mutex_destroy(&rec->lock);
    free(rec);
}

/* The reactor's record, created on first use; reactor thread. NULL when out of memory. */
static s_record_t *
s_record(zt_reactor_t *r)
{
    s_record_t *rec = zt__reactor_slot(r, &s_slot_key);
    if (rec)
        return rec;
    rec = calloc(1, sizeof *rec);
    if (!rec)
        return NULL;
    rec->reactor = r;
    rec->max = ZT_POOL_DEFAULT_MAX;
    pthread_mutex_init(&rec->lock, NULL);
    zt_trigger_id_t id = 0;
    if (zt_reactor_add_system_event_trigger(r, ZT_PHASE_DURING, "shutdown", s_on_shutdown, rec,
                                            &id) != 0)
        goto failed;
    if (zt__reactor_set_slot(r, &s_slot_key, rec, s_record_free) != 0) {
        ZT_LOG_ERROR("the reactor has no free extension slot for its thread pool");
        zt_reactor_remove_system_event_trigger(r, id);
        goto failed;
    }
    return rec;
failed:
    pthread_mutex_destroy(&rec->lock);
    free(rec);
    return NULL;
}

static void
s_release_pool(void *arg)
{
    s_record_t *rec = arg;
    if (rec->pool)
        zt__pool_set_held(rec->pool, false);
}

zt_pool_t *
zt_reactor_get_thread_pool(zt_reactor_t *reactor)
{
    ZT_ASSERT(reactor);
    if (zt__reactor_is_shut_down(reactor))
        return NULL; /* its pool was stopped by the shutdown: no new one */
    s_record_t *rec = s_record(reactor);
    if (!rec || rec->closed)
        return NULL;
    if (!rec->pool) {
        zt_pool_t *pool = zt_pool_new(reactor, ZT_POOL_DEFAULT_MIN, rec->max);
        if (!pool)
            return NULL;
        zt__pool_set_held(pool, true);
        pthread_mutex_lock(&rec->lock);
        rec->pool = pool;
        pthread_mutex_unlock(&rec->lock);
        if (zt_reactor_call_when_running(reactor, s_release_pool, rec, NULL) != 0)
            zt__pool_set_held(pool, false);
    }
    return rec->pool;
}

int
zt_reactor_suggest_thread_pool_size(zt_reactor_t *reactor, size_t n)
{
    ZT_ASSERT(reactor);
    if (n == 0)
        return ZT_EINVAL;
    zt_pool_t *pool = zt_reactor_get_thread_pool(reactor);
    if (!pool)
        return zt__reactor_is_shut_down(reactor) ? ZT_ESHUTDOWN : ZT_ENOMEM;
    size_t min = zt__pool_min(pool);
    int rc = zt_pool_adjust_size(pool, min < n ? min : n, n);
    if (rc == 0)
        s_record(reactor)->max = n;
    return rc;
}

/* --- calls from any thread ------------------------------------------------------------- */

typedef struct s_call {
    zt_reactor_t *reactor;      /* Borrowed: whose pool runs it */
    bool reserved;              /* a place is reserved in the reactor's pool (its only one) */
    zt__work_kind_t kind;       /* what to submit */
    atomic_bool published;      /* set (release) once filled; read (acquire) by the reactor */
    zt_work_fn *fn;             /* the work */
    void *arg;                  /* Borrowed; Owned calls array for ZT__WORK_MULTIPLE */
    zt_on_result_fn *on_result; /* for ZT__WORK_CALLBACK */
} s_call_t;

static void
s_call_dropped(s_call_t *call, int rc)
{
    ZT_LOG_ERROR("call_in_thread from another thread never ran: %s", zt_strerror(rc));
    if (call->kind == ZT__WORK_MULTIPLE)
        free(call->arg);
}

/* The reactor side of a call from another thread. */
static void
s_call_on_reactor(void *arg)
{
    s_call_t *call = arg;
    /* Pairs with the release in s_call: orders the caller's writes for ThreadSanitizer, which
     * cannot see the ordering inside libzmq. */
    ZT_ASSERT(atomic_load_explicit(&call->published, memory_order_acquire));
    zt_reactor_t *r = call->reactor;
    zt_pool_t *pool = zt_reactor_get_thread_pool(r);
    int rc = pool ? 0 : ZT_ESHUTDOWN;
    /* A record has one pool in its life: a reservation made in it still holds while it lives. */
    if (pool && !call->reserved)
        rc = zt__pool_reserve(pool);
    if (rc == 0)
        rc = zt__pool_submit_reserved(pool, call->kind, call->fn, call->arg, call->on_result);
    if (rc != 0)
        s_call_dropped(call, rc);
    free(call);
}

static int
s_call(zt_reactor_t *r, zt__work_kind_t kind, zt_work_fn *fn, void *arg, zt_on_result_fn *on_result)
{
    if (zt_reactor_is_reactor_thread(r)) {
        zt_pool_t *pool = zt_reactor_get_thread_pool(r);
        if (!pool)
            return zt__reactor_is_shut_down(r) ? ZT_ESHUTDOWN : ZT_ENOMEM;
        int rc = zt__pool_reserve(pool);
        if (rc == 0)
            rc = zt__pool_submit_reserved(pool, kind, fn, arg, on_result);
        return rc;
    }
    s_call_t *call = malloc(sizeof *call);
    if (!call)
        return ZT_ENOMEM;
    *call = (s_call_t){.reactor = r, .kind = kind, .fn = fn, .arg = arg, .on_result = on_result};
    s_record_t *rec = zt__reactor_slot(r, &s_slot_key);
    int rc = 0;
    if (rec) {
        pthread_mutex_lock(&rec->lock);
        if (rec->closed)
            rc = ZT_ESHUTDOWN;
        else if (rec->pool && (rc = zt__pool_reserve(rec->pool)) == 0)
            call->reserved = true;
        pthread_mutex_unlock(&rec->lock);
    }
    atomic_store_explicit(&call->published, true, memory_order_release);
    if (rc == 0)
        rc = zt_reactor_call_from_thread(r, s_call_on_reactor, call);
    if (rc != 0) {
        if (call->reserved) {
            pthread_mutex_lock(&rec->lock);
            if (rec->pool)
                zt__pool_unreserve(rec->pool);
            pthread_mutex_unlock(&rec->lock);
        }
        free(call);
    }
    return rc;
}

int
zt_call_in_thread(zt_reactor_t *reactor, zt_work_fn *fn, void *arg)
{
    ZT_ASSERT(reactor);
    if (!fn)
        return ZT_EINVAL;
    return s_call(reactor, ZT__WORK_CALL, fn, arg, NULL);
}

int
zt_call_in_thread_with_callback(zt_reactor_t *reactor, zt_on_result_fn *on_result, zt_work_fn *fn,
                                void *arg)
{
    ZT_ASSERT(reactor);
    if (!fn || !on_result)
        return ZT_EINVAL;
    return s_call(reactor, ZT__WORK_CALLBACK, fn, arg, on_result);
}

/* Never called: ZT__WORK_MULTIPLE items run their array; a non-NULL fn marks the item valid. */
static zt_result_t
s_multiple_marker(void *arg)
{
    (void)arg;
    return zt_ok_none();
}

int
zt_call_multiple_in_thread(zt_reactor_t *reactor, const zt_thread_call_t *calls, size_t n)
{
    ZT_ASSERT(reactor);
    if (!calls || n == 0)
        return ZT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!calls[i].fn)
            return ZT_EINVAL;
    zt_thread_call_t *copy = malloc((n + 1) * sizeof *copy);
    if (!copy)
        return ZT_ENOMEM;
    memcpy(copy, calls, n * sizeof *copy);
    copy[n] = (zt_thread_call_t){.fn = NULL, .arg = NULL};
    int rc = s_call(reactor, ZT__WORK_MULTIPLE, s_multiple_marker, copy, NULL);
    if (rc != 0)
        free(copy);
    return rc;
}

/* --- Deferreds --------------------------------------------------------------------------- */

zt_deferred_t *
zt_defer_to_thread_pool(zt_reactor_t *reactor, zt_pool_t *pool, zt_work_fn *fn, void *arg)
{
    ZT_ASSERT(reactor && pool);
    ZT_ASSERT_MSG(zt_pool_reactor(pool) == reactor, "defer_to_thread_pool: the pool belongs to "
                                                    "another reactor");
    return zt_pool_defer(pool, fn, arg);
}

zt_deferred_t *
zt_defer_to_thread(zt_reactor_t *reactor, zt_work_fn *fn, void *arg)
{
    ZT_ASSERT(reactor);
    zt_pool_t *pool = zt_reactor_get_thread_pool(reactor);
    if (!pool && zt__reactor_is_shut_down(reactor))
        return zt_deferred_fail(zt_failure_from_code(ZT_ESHUTDOWN, "the reactor has shut down"));
    if (!pool)
        return zt_deferred_fail(zt_failure_from_code(ZT_ENOMEM, "the reactor's thread pool"));
    return zt_pool_defer(pool, fn, arg);
}

/* --- blocking_call_from_thread ----------------------------------------------------------- */

static void
s_blocking_unref(s_blocking_t *req)
{
    pthread_mutex_lock(&req->lock);
    bool last = --req->refs == 0;
    pthread_mutex_unlock(&req->lock);
    if (!last)
        return;
    pthread_cond_destroy(&req->cond);
    pthread_mutex_destroy(&req->lock);
    free(req);
}

/* Complete the request with result unless it is done already (then result is released here). */
static void
s_finish(s_blocking_t *req, zt_result_t result, bool drop_ref)
{
    pthread_mutex_lock(&req->lock);
    bool take = !req->done && !req->abandoned;
    if (take) {
        req->result = result;
        req->done = true;
        pthread_cond_broadcast(&req->cond);
    }
    pthread_mutex_unlock(&req->lock);
    if (!take)
        zt_result_release(&result);
    if (drop_ref)
        s_blocking_unref(req);
}

static void
s_unlink_pending(s_record_t *rec, s_blocking_t *req)
{
    for (s_blocking_t **pp = &rec->pending; *pp; pp = &(*pp)->next_pending) {
        if (*pp == req) {
            *pp = req->next_pending;
            break;
        }
    }
    req->linked = false;
}

static zt_result_t
s_blocking_done(zt_result_t result, void *arg)
{
    s_blocking_t *req = arg;
    if (req->linked)
        s_unlink_pending(req->rec, req);
    zt_deferred_unref(&req->d);
    s_finish(req, result, true);
    return zt_ok_none();
}

/* The reactor side: run fn and wait for its result without blocking the reactor. */
static void
s_blocking_run(void *arg)
{
    s_blocking_t *req = arg;
    /* The waiter filled the request, then locked and unlocked it: this orders its writes before
     * our reads for ThreadSanitizer, which cannot see the ordering inside libzmq. */
    pthread_mutex_lock(&req->lock);
    pthread_mutex_unlock(&req->lock);
    zt_reactor_t *r = req->reactor;
    if (!zt_reactor_is_running(r)) {
        s_finish(req, zt_err(zt_failure_from_code(ZT_ESHUTDOWN, "the reactor is not running")),
                 true);
        return;
    }
    s_record_t *rec = s_record(r);
    zt_deferred_t *d = zt_maybe_deferred(req->fn, req->arg);
    if (!rec || !d) {
        zt_deferred_unref(&d);
        s_finish(req, zt_err(zt_failure_from_code(ZT_ENOMEM, "blocking_call_from_thread")), true);
        return;
    }
    req->d = d; /* our reference from zt_maybe_deferred */
    req->rec = rec;
    req->next_pending = rec->pending;
    rec->pending = req;
    req->linked = true;
    if (zt_deferred_add_both(req->d, s_blocking_done, req) != 0) {
        s_unlink_pending(rec, req);
        zt_deferred_unref(&req->d);
        s_finish(req, zt_err(zt_failure_from_code(ZT_ENOMEM, "blocking_call_from_thread")), true);
    }
}

static void
s_waiters_remove(s_blocking_t *req)
{
    s_record_t *rec = req->waiting_in;
    if (!rec)
        return;
    pthread_mutex_lock(&rec->lock);
    for (s_blocking_t **pp = &rec->waiters; *pp; pp = &(*pp)->next_wait) {
        if (*pp == req) {
            *pp = req->next_wait;
            break;
        }
    }
    pthread_mutex_unlock(&rec->lock);
}

zt_result_t
zt_blocking_call_from_thread_timeout(zt_reactor_t *reactor, double timeout, zt_maybe_fn *fn,
                                     void *arg)
{
    ZT_ASSERT(reactor);
    if (!fn || !(timeout > 0))
        return zt_err(zt_failure_from_code(ZT_EINVAL, "blocking_call_from_thread"));
    if (zt_reactor_is_reactor_thread(reactor))
        return zt_err(zt_failure_from_code(ZT_EDEADLK, "blocking_call_from_thread on the "
                                                       "reactor thread would wait forever"));
    s_blocking_t *req = calloc(1, sizeof *req);
    if (!req)
        return zt_err(zt_failure_from_code(ZT_ENOMEM, "blocking_call_from_thread"));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&req->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&req->lock, NULL);
    pthread_mutex_lock(&req->lock);
    req->refs = 2;
    req->reactor = reactor;
    req->fn = fn;
    req->arg = arg;
    pthread_mutex_unlock(&req->lock);
    int rc = 0;
    s_record_t *rec = zt__reactor_slot(reactor, &s_slot_key);
    if (rec) {
        pthread_mutex_lock(&rec->lock);
        if (rec->closed) {
            rc = ZT_ESHUTDOWN;
        } else {
            req->waiting_in = rec;
            req->next_wait = rec->waiters;
            rec->waiters = req;
        }
        pthread_mutex_unlock(&rec->lock);
    }
    if (rc == 0) {
        rc = zt_reactor_call_from_thread(reactor, s_blocking_run, req);
        if (rc != 0)
            s_waiters_remove(req);
    }
    if (rc != 0) {
        req->refs = 1;
        s_blocking_unref(req);
        return zt_err(zt_failure_from_code(rc, "blocking_call_from_thread"));
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    double whole = (double)(time_t)timeout;
    deadline.tv_sec += (time_t)timeout;
    deadline.tv_nsec += (long)((timeout - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&req->lock);
    while (!req->done) {
        if (pthread_cond_timedwait(&req->cond, &req->lock, &deadline) == ETIMEDOUT)
            break;
    }
    zt_result_t result;
    if (req->done) {
        result = req->result;
    } else {
        req->abandoned = true;
        result = zt_err(zt_failure_from_code(ZT_ETIMEDOUT,
                                             "blocking_call_from_thread: no "
                                             "result after %.3f s",
                                             timeout));
    }
    pthread_mutex_unlock(&req->lock);
    s_waiters_remove(req);
    s_blocking_unref(req);
    return result;
}

zt_result_t
zt_blocking_call_from_thread(zt_reactor_t *reactor, zt_maybe_fn *fn, void *arg)
{
    return zt_blocking_call_from_thread_timeout(reactor, ZT_BLOCKING_CALL_TIMEOUT, fn, arg);
}
