/*  futures/deferred_lock.c - DeferredSemaphore, and DeferredLock as a semaphore of one token
 *
 *  Design notes
 *    - The waiters form a FIFO of nodes, each holding one reference to its acquire Deferred. A
 *      waiter leaves the FIFO exactly once: popped by a release (which fires it), removed by its
 *      canceller (which the Deferred then fails), or failed by destroy.
 *    - tokens + holders == limit at all times; a release with no holder is refused (ZT_ESTATE).
 *    - The object is reference-counted internally: one reference for the user until destroy, one
 *      per run in progress (from zt_*_run until its release), one held across a release's fire
 *      (the woken chain may destroy the object). Memory goes with the last reference; after destroy
 *      a run's late release changes nothing.
 *    - Acquire Deferreds carry the semaphore as canceller arg. Their canceller can only run while
 *      they wait, and destroy fires every waiter, so it never runs on a destroyed semaphore.
 *    - No callback runs in the middle of a state change: a release pops the waiter and updates the
 *      counts before it fires.  */
#include "base/base.h"

#include <ztwist/deferred_lock.h>

#include <stdlib.h>

/* One waiting acquire. */
typedef struct s_waiter {
    zt_deferred_t *deferred; /* Owned reference: the acquire Deferred, fired when served */
    struct s_waiter *next;   /* the next waiter, or NULL; Owned */
} s_waiter;

struct zt_deferred_semaphore {
    void *owner;    /* what acquire fires with: self, or the lock that embeds self; Borrowed */
    int limit;      /* the number of tokens, fixed at creation */
    int tokens;     /* free tokens, 0..limit */
    s_waiter *head; /* oldest waiter, or NULL; Owned */
    s_waiter *tail; /* newest waiter, or NULL; Borrowed from the list */
    size_t waiting; /* length of the waiter list */
    size_t refs;    /* internal references (see the design notes) */
    bool destroyed; /* destroy was called: releases and acquires no longer apply */
};

struct zt_deferred_lock {
    zt_deferred_semaphore_t
        sem; /* a semaphore of one token; first, so that they share an address */
};

/* One zt_*_run in progress. */
typedef struct s_run {
    zt_deferred_semaphore_t *sem; /* Owned internal reference until the release */
    zt_maybe_fn *fn;              /* the function to run once the token is ours */
    void *arg;                    /* fn's arg; Borrowed */
} s_run;

static void
s_sem_init(zt_deferred_semaphore_t *self, void *owner, int tokens)
{
    *self = (zt_deferred_semaphore_t){.owner = owner, .limit = tokens, .tokens = tokens, .refs = 1};
}

static zt_deferred_semaphore_t *
s_sem_ref(zt_deferred_semaphore_t *self)
{
    self->refs++;
    return self;
}

static void
s_sem_unref(zt_deferred_semaphore_t *self)
{
    ZT_ASSERT(self->refs > 0);
    if (--self->refs == 0) {
        ZT_ASSERT(self->head == NULL);
        free(self->owner);
    }
}

/* Canceller of a waiting acquire: remove it from the FIFO (the Deferred then fails). */
static void
s_cancel_acquire(zt_deferred_t *d, void *arg)
{
    zt_deferred_semaphore_t *self = arg;
    s_waiter *prev = NULL;
    for (s_waiter *w = self->head; w; prev = w, w = w->next) {
        if (w->deferred != d)
            continue;
        if (prev)
            prev->next = w->next;
        else
            self->head = w->next;
        if (self->tail == w)
            self->tail = prev;
        self->waiting--;
        zt_deferred_unref(&w->deferred);
        free(w);
        return;
    }
}

/* Serve a new acquire Deferred d: fire it now when a token is free, otherwise queue it. On
 * ZT_ENOMEM d is left unfired and unqueued. */
static int
s_sem_offer(zt_deferred_semaphore_t *self, zt_deferred_t *d)
{
    ZT_ASSERT_MSG(!self->destroyed, "acquire on a destroyed lock or semaphore");
    if (self->tokens > 0) {
        self->tokens--;
        zt_deferred_callback(d, zt_ok(self->owner, NULL));
        return 0;
    }
    s_waiter *w = malloc(sizeof(*w));
    if (!w)
        return ZT_ENOMEM;
    *w = (s_waiter){.deferred = zt_deferred_ref(d), .next = NULL};
    if (self->tail)
        self->tail->next = w;
    else
        self->head = w;
    self->tail = w;
    self->waiting++;
    return 0;
}

static zt_deferred_t *
s_sem_acquire(zt_deferred_semaphore_t *self)
{
    ZT_ASSERT(self);
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_cancel_acquire, self);
    if (d && s_sem_offer(self, d) < 0)
        zt_deferred_unref(&d);
    return d;
}

static int
s_sem_release(zt_deferred_semaphore_t *self)
{
    ZT_ASSERT(self);
    if (self->destroyed)
        return 0;
    if (self->tokens >= self->limit)
        return ZT_ESTATE;
    s_waiter *w = self->head;
    if (!w) {
        self->tokens++;
        return 0;
    }
    /* The token goes straight to the first waiter. */
    self->head = w->next;
    if (!self->head)
        self->tail = NULL;
    self->waiting--;
    zt_deferred_t *d = w->deferred;
    free(w);
    s_sem_ref(self);
    zt_deferred_callback(d, zt_ok(self->owner, NULL));
    zt_deferred_unref(&d);
    s_sem_unref(self);
    return 0;
}

static void
s_sem_destroy(zt_deferred_semaphore_t *self)
{
    ZT_ASSERT_MSG(!self->destroyed, "lock or semaphore destroyed twice");
    self->destroyed = true;
    while (self->head) {
        s_waiter *w = self->head;
        self->head = w->next;
        if (!self->head)
            self->tail = NULL;
        self->waiting--;
        zt_deferred_t *d = w->deferred;
        free(w);
        zt_deferred_errback(
            d, zt_failure_new(ZT_CANCELLED_ERROR, "the lock or semaphore was destroyed"));
        zt_deferred_unref(&d);
    }
    s_sem_unref(self);
}

/* The run's last link: release the token and pass fn's result on. */
static zt_result_t
s_run_release(zt_result_t result, void *arg)
{
    s_run *run = arg;
    s_sem_release(run->sem);
    s_sem_unref(run->sem);
    free(run);
    return result;
}

/* The token is ours: call fn and release when its result arrives. */
static zt_result_t
s_run_execute(zt_result_t result, void *arg)
{
    s_run *run = arg;
    zt_result_release(&result);
    zt_result_t out = run->fn(run->arg);
    if (out.kind != ZT_RESULT_DEFERRED || !out.ptr) /* zt_wait_for(NULL): the chain's ENOMEM */
        return s_run_release(out, run);
    if (zt_deferred_add_both(out.ptr, s_run_release, run) < 0) {
        /* Out of memory: release now rather than never. */
        s_run_release(zt_ok_none(), run);
    }
    return out;
}

/* The acquire failed (cancelled, destroyed): fn never runs. */
static zt_result_t
s_run_abandon(zt_result_t result, void *arg)
{
    s_run *run = arg;
    s_sem_unref(run->sem);
    free(run);
    return result;
}

static zt_deferred_t *
s_sem_run(zt_deferred_semaphore_t *self, zt_maybe_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    ZT_ASSERT_MSG(fn, "run needs a function");
    s_run *run = malloc(sizeof(*run));
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_cancel_acquire, self);
    if (!run || !d)
        goto failed;
    *run = (s_run){.sem = s_sem_ref(self), .fn = fn, .arg = arg};
    /* The pair goes on while d is unfired, so that a failed add or offer leaves nothing to undo
     * but memory: an unfired Deferred drops its links without running them. */
    if (zt_deferred_add_callbacks(d, s_run_execute, s_run_abandon, run) < 0 ||
        s_sem_offer(self, d) < 0) {
        s_sem_unref(self);
        goto failed;
    }
    return d;
failed:
    zt_deferred_unref(&d);
    free(run);
    return NULL;
}

zt_deferred_semaphore_t *
zt_deferred_semaphore_new(int tokens)
{
    if (tokens < 1)
        return NULL;
    zt_deferred_semaphore_t *self = malloc(sizeof(*self));
    if (!self)
        return NULL;
    s_sem_init(self, self, tokens);
    return self;
}

void
zt_deferred_semaphore_destroy(zt_deferred_semaphore_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_sem_destroy(*self_p);
    *self_p = NULL;
}

zt_deferred_t *
zt_deferred_semaphore_acquire(zt_deferred_semaphore_t *self)
{
    return s_sem_acquire(self);
}

int
zt_deferred_semaphore_release(zt_deferred_semaphore_t *self)
{
    return s_sem_release(self);
}

int
zt_deferred_semaphore_tokens(const zt_deferred_semaphore_t *self)
{
    ZT_ASSERT(self);
    return self->tokens;
}

int
zt_deferred_semaphore_limit(const zt_deferred_semaphore_t *self)
{
    ZT_ASSERT(self);
    return self->limit;
}

size_t
zt_deferred_semaphore_waiting(const zt_deferred_semaphore_t *self)
{
    ZT_ASSERT(self);
    return self->waiting;
}

zt_deferred_t *
zt_deferred_semaphore_run(zt_deferred_semaphore_t *self, zt_maybe_fn *fn, void *arg)
{
    return s_sem_run(self, fn, arg);
}

zt_deferred_lock_t *
zt_deferred_lock_new(void)
{
    zt_deferred_lock_t *self = malloc(sizeof(*self));
    if (!self)
        return NULL;
    s_sem_init(&self->sem, self, 1);
    return self;
}

void
zt_deferred_lock_destroy(zt_deferred_lock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_sem_destroy(&(*self_p)->sem);
    *self_p = NULL;
}

zt_deferred_t *
zt_deferred_lock_acquire(zt_deferred_lock_t *self)
{
    ZT_ASSERT(self);
    return s_sem_acquire(&self->sem);
}

int
zt_deferred_lock_release(zt_deferred_lock_t *self)
{
    ZT_ASSERT(self);
    return s_sem_release(&self->sem);
}

bool
zt_deferred_lock_is_locked(const zt_deferred_lock_t *self)
{
    ZT_ASSERT(self);
    return self->sem.tokens == 0;
}

size_t
zt_deferred_lock_waiting(const zt_deferred_lock_t *self)
{
    ZT_ASSERT(self);
    return self->sem.waiting;
}

zt_deferred_t *
zt_deferred_lock_run(zt_deferred_lock_t *self, zt_maybe_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    return s_sem_run(&self->sem, fn, arg);
}
