/*  actors/threads.c - Twisted's thread API: the reactor's pool, call_in_thread from any thread,
 * defer_to_thread, call_multiple_in_thread and blocking_call_from_thread
 *
 *  Design notes.
 *
 *  The reactor's pool. The reactor has no slot for the actors layer, so a process-wide registry
 * (s_lock) maps a reactor to its record: its pool and its suggested size. A record is created on
 * the reactor thread on first use, with a "during shutdown" system event trigger that removes it,
 * fails the blocking calls still waiting on this reactor, and stops and destroys the pool (Twisted
 * stops its pool in the same phase). A pool created before the reactor runs is held (work queues,
 * no thread starts) until call_when_running releases it, as Twisted starts its pool then.
 *
 *  Calls from other threads. zt_call_in_thread and its siblings take the direct path when the
 * calling thread is known to be the reactor's (zt__actors_reactor); otherwise the call is copied
 * into a request that travels through the reactor's mailbox and is submitted there. To report
 * back-pressure synchronously, the caller reserves a place in the pool's queue under s_lock
 * (the pool cannot be destroyed meanwhile: the shutdown trigger removes the record under the same
 * lock first); the reactor side then submits against that reservation, or gives it back.
 *
 *  blocking_call_from_thread. The waiter and the reactor side share a request: a mutex, a
 * condition on the monotonic clock, the result and two references (waiter, reactor side). The
 * request is completed exactly once (`done` under its mutex); a result that arrives after that
 * (a timed-out waiter, a shutdown) is released on the reactor thread. Every waiting request is in a
 * process-wide list under s_lock, so the shutdown trigger can wake the waiters of its reactor with
 * ZT_ESHUTDOWN before it stops the pool, whose workers may be those very waiters: Twisted
 * deadlocks there. A call from the reactor thread fails at once with ZT_EDEADLK
 * (zt_reactor_is_reactor_thread).  */
#include "actors.h"
#include "runtime/extension.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- the registry ---------------------------------------------------------------------- */

typedef struct s_blocking s_blocking_t;

typedef struct s_record {
    zt_reactor_t *reactor; /* Borrowed: the reactor (the key) */
    zt_pool_t *pool;       /* Owned: the reactor's pool, or NULL until first use */
    size_t max;            /* the pool's max threads (suggest_thread_pool_size) */
    bool closing;          /* the shutdown trigger has begun (under s_lock) */
    uint64_t serial;       /* this record's number, never 0: tells records at one address apart */
    s_blocking_t *pending; /* Borrowed: blocking calls whose Deferred has not fired */
    struct s_record *next; /* Borrowed: the registry list (under s_lock) */
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
    s_blocking_t *next_pending; /* Borrowed: the record's pending list (reactor side) */
    s_blocking_t *next_wait;    /* Borrowed: the waiters list (under s_lock) */
};

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the two lists below */
static s_record_t *s_records;                              /* Owned: one per reactor in use */
static s_blocking_t *s_waiters;                            /* Borrowed: blocking calls waiting */
static _Thread_local s_record_t *s_tls_record;   /* the last record this reactor thread used */
static atomic_uint_fast64_t s_record_serial = 1; /* numbers the records */

static s_record_t *
s_find_locked(zt_reactor_t *r)
{
    for (s_record_t *rec = s_records; rec; rec = rec->next)
        if (rec->reactor == r)
            return rec;
    return NULL;
}

static void s_finish(s_blocking_t *req, zt_result_t result, bool drop_ref);
static void s_unlink_pending(s_record_t *rec, s_blocking_t *req);
static void s_blocking_unref(s_blocking_t *req);

/* The "during shutdown" trigger: forget the reactor, wake its waiters, stop its pool. */
static zt_result_t
s_on_shutdown(void *arg)
{
    s_record_t *rec = arg;
    zt_reactor_t *r = rec->reactor;
    pthread_mutex_lock(&s_lock);
    rec->closing = true;
    for (s_record_t **pp = &s_records; *pp; pp = &(*pp)->next) {
        if (*pp == rec) {
            *pp = rec->next;
            break;
        }
    }
    for (s_blocking_t *w = s_waiters; w; w = w->next_wait)
        if (w->reactor == r)
            s_finish(w,
                     zt_err(zt_failure_from_code(ZT_ESHUTDOWN, "the reactor is shutting "
                                                               "down")),
                     false);
    pthread_mutex_unlock(&s_lock);
    /* Blocking calls whose Deferred is pending: cancel it; their requests are done already. */
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
    if (rec->pool) {
        zt_pool_stop(rec->pool, ZT_POOL_STOP_TIMEOUT);
        zt_pool_destroy(&rec->pool);
    }
    if (zt__actors_reactor == r)
        zt__actors_reactor = NULL;
    if (s_tls_record == rec)
        s_tls_record = NULL;
    free(rec);
    return zt_ok_none();
}

/* The reactor's record, created on first use; reactor thread. NULL when out of memory. */
static s_record_t *
s_record(zt_reactor_t *r)
{
    zt__actors_reactor = r;
    if (s_tls_record && s_tls_record->reactor == r)
        return s_tls_record; /* only this thread frees it (at the shutdown), and forgets it then */
    pthread_mutex_lock(&s_lock);
    s_record_t *rec = s_find_locked(r);
    pthread_mutex_unlock(&s_lock);
    if (rec)
        return s_tls_record = rec;
    rec = calloc(1, sizeof *rec);
    if (!rec)
        return NULL;
    rec->reactor = r;
    rec->max = ZT_POOL_DEFAULT_MAX;
    rec->serial = atomic_fetch_add(&s_record_serial, 1);
    if (zt_reactor_add_system_event_trigger(r, ZT_PHASE_DURING, "shutdown", s_on_shutdown, rec,
                                            NULL) != 0) {
        free(rec);
        return NULL;
    }
    pthread_mutex_lock(&s_lock);
    rec->next = s_records;
    s_records = rec;
    pthread_mutex_unlock(&s_lock);
    return s_tls_record = rec;
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
    if (!rec)
        return NULL;
    if (!rec->pool) {
        rec->pool = zt_pool_new(reactor, ZT_POOL_DEFAULT_MIN, rec->max);
        if (!rec->pool)
            return NULL;
        zt__pool_set_held(rec->pool, true);
        if (zt_reactor_call_when_running(reactor, s_release_pool, rec, NULL) != 0)
            zt__pool_set_held(rec->pool, false);
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
    uint64_t reserved;          /* serial of the record whose pool holds a reserved place, or 0 */
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
    zt__actors_reactor = r;
    zt_pool_t *pool = zt_reactor_get_thread_pool(r);
    int rc = pool ? 0 : ZT_ESHUTDOWN;
    /* The reservation holds only in the pool it was made in: a record (and its pool) that the
     * shutdown replaced has another serial, even at the same address. */
    if (pool && call->reserved != s_record(r)->serial)
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
    if (zt__actors_reactor == r) {
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
    pthread_mutex_lock(&s_lock);
    s_record_t *rec = s_find_locked(r);
    int rc = 0;
    if (rec && rec->closing)
        rc = ZT_ESHUTDOWN;
    else if (rec && rec->pool) {
        rc = zt__pool_reserve(rec->pool);
        if (rc == 0)
            call->reserved = rec->serial;
    }
    pthread_mutex_unlock(&s_lock);
    atomic_store_explicit(&call->published, true, memory_order_release);
    if (rc == 0)
        rc = zt_reactor_call_from_thread(r, s_call_on_reactor, call);
    if (rc != 0) {
        if (call->reserved) {
            pthread_mutex_lock(&s_lock);
            rec = s_find_locked(r);
            if (rec && rec->pool && rec->serial == call->reserved)
                zt__pool_unreserve(rec->pool);
            pthread_mutex_unlock(&s_lock);
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
    zt__actors_reactor = reactor;
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
    zt__actors_reactor = r;
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
    pthread_mutex_lock(&s_lock);
    for (s_blocking_t **pp = &s_waiters; *pp; pp = &(*pp)->next_wait) {
        if (*pp == req) {
            *pp = req->next_wait;
            break;
        }
    }
    pthread_mutex_unlock(&s_lock);
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
    pthread_mutex_lock(&s_lock);
    s_record_t *rec = s_find_locked(reactor);
    if (rec && rec->closing)
        rc = ZT_ESHUTDOWN;
    else {
        req->next_wait = s_waiters;
        s_waiters = req;
    }
    pthread_mutex_unlock(&s_lock);
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
