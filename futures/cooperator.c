/*  futures/cooperator.c - long iterations run a step at a time in passes on a clock (Twisted's
 *  task.Cooperator)
 *
 *  Design notes.
 *  - Tasks live in a list in the order they were added; a pass walks it round after round, one
 *    step per runnable task (not paused, not waiting, not ended), until the time slice or the step
 *    bound is used up or no task is runnable. Then one call on the clock (`call`) is scheduled for
 *    the next pass if any task is runnable; pause, resume, cooperate and a Deferred that fires
 *    schedule it too. At most one pass is scheduled at a time.
 *  - Lifetime. A task is referenced by the cooperator's list (until it ends and is swept), by the
 *    caller's handle, and by a link on its `waiting` Deferred; it is freed at zero. Ended tasks
 *    are unlinked only by the sweep after a pass (or at once outside a pass), so the pass never
 *    walks freed memory. A task keeps no pointer to a destroyed cooperator: destroy ends every
 *    task and clears its `coop`.
 *  - Waiting. A step's Deferred d fires our own Deferred `waiting` through
 *    zt_deferred_chain_deferred; d may outlive the task, so when a task ends while waiting,
 *    `waiting` is cancelled and its link, which then runs, sees the task ended and does nothing.
 *  - Each task's end is delivered once (s_finish): the when_done Deferreds fire, free_fn runs.
 *
 *  Threads: the clock's thread only.  */
#include "base/base.h"

#include <ztwist/cooperator.h>
#include <ztwist/time.h>

#include <stdlib.h>

struct zt_cooperative_task {
    zt_cooperator_t *coop;       /* Borrowed: its cooperator, NULL once that is destroyed */
    zt_cooperator_step_fn *fn;   /* the step */
    void *arg;                   /* Borrowed (freed by free_fn at the end, if given) */
    zt_free_fn *free_fn;         /* for arg, or NULL */
    unsigned refs;               /* see Lifetime */
    unsigned paused;             /* pause count */
    bool ended;                  /* done, failed or stopped */
    bool finishing;              /* the step that returned `waiting` set *done */
    zt_failure_t *failure;       /* Owned: why it failed (or was stopped), or NULL when done */
    zt_deferred_t *waiting;      /* Owned reference: ours, fired by a step's Deferred, or NULL */
    zt_deferred_t **done;        /* Owned references: when_done Deferreds not fired yet */
    size_t ndone;                /* how many */
    uint64_t steps;              /* steps run */
    zt_cooperative_task_t *next; /* Borrowed: the next task in the cooperator's list */
};

struct zt_cooperator {
    const zt_clock_t *clock;      /* Borrowed: where passes are scheduled */
    double slice;                 /* seconds per pass */
    size_t max_steps;             /* steps per pass, 0 for no bound */
    double delay;                 /* seconds between passes */
    zt_delayed_call_t *call;      /* Owned handle: the next pass, or NULL */
    zt_cooperative_task_t *tasks; /* Borrowed links, one reference each: the list */
    size_t live;                  /* tasks not ended */
    bool in_pass;                 /* a pass runs: no sweep, no destroy */
    bool stopped;                 /* zt_cooperator_stop: no new tasks */
};

static void s_pass(void *arg);

/* --- tasks -------------------------------------------------------------------------------- */

static void
s_task_unref(zt_cooperative_task_t *t)
{
    ZT_ASSERT(t->refs > 0);
    if (--t->refs > 0)
        return;
    ZT_ASSERT(t->ended && !t->waiting);
    zt_failure_destroy(&t->failure);
    free(t->done);
    free(t);
}

static bool
s_runnable(const zt_cooperative_task_t *t)
{
    return !t->ended && !t->paused && !t->waiting;
}

/* Schedule the next pass when none is and a task can run. */
static void
s_schedule(zt_cooperator_t *c)
{
    if (!c || c->call || c->in_pass)
        return;
    bool any = false;
    for (zt_cooperative_task_t *t = c->tasks; t && !any; t = t->next)
        any = s_runnable(t);
    if (any && zt_clock_call_later(c->clock, c->delay, s_pass, c, &c->call) != 0)
        ZT_LOG_ERROR("the cooperator cannot schedule its next pass: out of memory");
}

/* Unlink and drop the tasks that ended (outside a pass). */
static void
s_sweep(zt_cooperator_t *c)
{
    if (c->in_pass)
        return;
    zt_cooperative_task_t **pp = &c->tasks;
    while (*pp) {
        zt_cooperative_task_t *t = *pp;
        if (!t->ended) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        t->next = NULL;
        s_task_unref(t);
    }
}

/* End the task once: failure (taken over) or NULL when done. Fires its Deferreds last. */
static void
s_finish(zt_cooperative_task_t *t, zt_failure_t *failure)
{
    if (t->ended) {
        zt_failure_destroy(&failure);
        return;
    }
    t->ended = true;
    t->failure = failure;
    t->refs++;
    if (t->coop)
        t->coop->live--;
    if (t->waiting) {
        zt_deferred_t *w = t->waiting;
        t->waiting = NULL;
        zt_deferred_cancel(w); /* its link runs now, sees the task ended, does nothing */
        zt_deferred_unref(&w);
    }
    if (t->free_fn)
        t->free_fn(t->arg);
    zt_deferred_t **done = t->done;
    size_t n = t->ndone;
    t->done = NULL;
    t->ndone = 0;
    for (size_t i = 0; i < n; i++) {
        if (t->failure) {
            zt_failure_t *f = zt_failure_dup(t->failure);
            zt_deferred_errback(done[i], f ? f : zt_failure_new(ZT_ERROR, "out of memory"));
        } else {
            zt_deferred_callback(done[i], zt_ok_none());
        }
        zt_deferred_unref(&done[i]);
    }
    free(done);
    s_task_unref(t);
}

static zt_result_t
s_on_waited(zt_result_t r, void *arg)
{
    zt_cooperative_task_t *t = arg;
    if (t->ended || !t->waiting) {
        zt_result_release(&r);
        s_task_unref(t);
        return zt_ok_none();
    }
    /* Dropping our reference from inside its own link is allowed: the chain finishes first. */
    zt_deferred_unref(&t->waiting);
    if (zt_is_err(r)) {
        s_finish(t, zt_result_failure(r));
    } else {
        zt_result_release(&r);
        if (t->finishing)
            s_finish(t, NULL);
    }
    zt_cooperator_t *c = t->coop;
    if (c) {
        s_sweep(c);
        s_schedule(c);
    }
    s_task_unref(t);
    return zt_ok_none();
}

/* The step returned d (its reference taken over): wait for it. */
static void
s_wait(zt_cooperative_task_t *t, zt_deferred_t *d)
{
    zt_deferred_t *w = d ? zt_deferred_new() : NULL;
    if (!w || zt_deferred_add_both(w, s_on_waited, t) < 0) {
        zt_deferred_unref(&w);
        zt_deferred_unref(&d);
        s_finish(t, zt_failure_new(ZT_ERROR, "the cooperator cannot wait: out of memory"));
        return;
    }
    t->refs++; /* the link's */
    t->waiting = w;
    if (zt_deferred_chain_deferred(d, w) < 0) { /* when d has fired, the link runs in here */
        t->waiting = NULL;
        zt_deferred_unref(&w); /* frees the link unrun */
        t->refs--;
        zt_deferred_unref(&d);
        s_finish(t, zt_failure_new(ZT_ERROR, "the cooperator cannot wait: out of memory"));
        return;
    }
    zt_deferred_unref(&d);
}

/* Run one step of t. */
static void
s_step(zt_cooperative_task_t *t)
{
    bool done = false;
    t->steps++;
    zt_result_t r = t->fn(&done, t->arg);
    if (t->ended) { /* the step stopped its own task */
        zt_result_release(&r);
        return;
    }
    if (r.kind == ZT_RESULT_DEFERRED) {
        t->finishing = done;
        s_wait(t, r.ptr); /* the reference moves to s_wait */
    } else if (zt_is_err(r)) {
        s_finish(t, zt_result_failure(r));
    } else {
        zt_result_release(&r);
        if (done)
            s_finish(t, NULL);
    }
}

/* --- passes ------------------------------------------------------------------------------- */

/* Make the task after `last` the head, so the next pass starts where this one stopped. */
static void
s_rotate(zt_cooperator_t *c, zt_cooperative_task_t *last)
{
    if (!last || !last->next)
        return;
    zt_cooperative_task_t *tail = last->next;
    while (tail->next)
        tail = tail->next;
    tail->next = c->tasks;
    c->tasks = last->next;
    last->next = NULL;
}

static void
s_pass(void *arg)
{
    zt_cooperator_t *c = arg;
    zt_delayed_call_release(&c->call);
    c->in_pass = true;
    double start = zt_time_now();
    size_t steps = 0;
    zt_cooperative_task_t *last = NULL;
    for (bool more = true; more;) {
        more = false;
        for (zt_cooperative_task_t *t = c->tasks; t; t = t->next) {
            if (!s_runnable(t))
                continue;
            s_step(t);
            last = t;
            steps++;
            more = true;
            if ((c->max_steps && steps >= c->max_steps) || zt_time_now() - start >= c->slice) {
                more = false;
                break;
            }
        }
    }
    c->in_pass = false;
    s_rotate(c, last);
    s_sweep(c);
    s_schedule(c);
}

/* --- the calls ---------------------------------------------------------------------------- */

zt_cooperator_t *
zt_cooperator_new(const zt_clock_t *clock, double time_slice)
{
    if (!clock)
        return NULL;
    zt_cooperator_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->clock = clock;
    c->slice = time_slice > 0 ? time_slice : ZT_COOPERATOR_TIME_SLICE;
    return c;
}

int
zt_cooperator_set_max_steps(zt_cooperator_t *self, size_t max_steps)
{
    ZT_ASSERT(self);
    self->max_steps = max_steps;
    return 0;
}

int
zt_cooperator_set_pass_delay(zt_cooperator_t *self, double seconds)
{
    ZT_ASSERT(self);
    if (!(seconds >= 0))
        return ZT_EINVAL;
    self->delay = seconds;
    return 0;
}

int
zt_cooperator_cooperate(zt_cooperator_t *self, zt_cooperator_step_fn *fn, void *arg,
                        zt_free_fn *free_fn, zt_cooperative_task_t **task_p)
{
    ZT_ASSERT(self);
    if (!fn)
        return ZT_EINVAL;
    if (self->stopped)
        return ZT_ESHUTDOWN;
    zt_cooperative_task_t *t = calloc(1, sizeof *t);
    if (!t)
        return ZT_ENOMEM;
    *t = (zt_cooperative_task_t){
        .coop = self, .fn = fn, .arg = arg, .free_fn = free_fn, .refs = task_p ? 2 : 1};
    zt_cooperative_task_t **pp = &self->tasks;
    while (*pp)
        pp = &(*pp)->next;
    *pp = t;
    self->live++;
    if (task_p)
        *task_p = t;
    s_schedule(self);
    return 0;
}

zt_deferred_t *
zt_coiterate(zt_cooperator_t *self, zt_cooperator_step_fn *fn, void *arg, zt_free_fn *free_fn)
{
    zt_cooperative_task_t *t = NULL;
    if (zt_cooperator_cooperate(self, fn, arg, free_fn, &t) != 0)
        return NULL;
    zt_deferred_t *d = zt_cooperative_task_when_done(t);
    if (!d)
        zt_cooperative_task_stop(t);
    zt_cooperative_task_release(&t);
    return d;
}

static zt_failure_t *
s_stopped(void)
{
    return zt_failure_new(ZT_CANCELLED_ERROR, "the cooperative task was stopped");
}

void
zt_cooperator_stop(zt_cooperator_t *self)
{
    ZT_ASSERT(self);
    self->stopped = true;
    if (self->call) {
        zt_delayed_call_cancel(self->call);
        zt_delayed_call_release(&self->call);
    }
    /* The Deferreds fired here run user code: no sweep may unlink a task under this loop. */
    bool was = self->in_pass;
    self->in_pass = true;
    for (zt_cooperative_task_t *t = self->tasks; t; t = t->next)
        s_finish(t, s_stopped());
    self->in_pass = was;
    s_sweep(self);
}

size_t
zt_cooperator_task_count(const zt_cooperator_t *self)
{
    ZT_ASSERT(self);
    return self->live;
}

void
zt_cooperator_destroy(zt_cooperator_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_cooperator_t *self = *self_p;
    ZT_ASSERT_MSG(!self->in_pass, "zt_cooperator_destroy from a step of its own");
    zt_cooperator_stop(self);
    while (self->tasks) { /* tasks kept by a caller's handle or a link */
        zt_cooperative_task_t *t = self->tasks;
        self->tasks = t->next;
        t->next = NULL;
        t->coop = NULL;
        s_task_unref(t);
    }
    free(self);
    *self_p = NULL;
}

zt_deferred_t *
zt_cooperative_task_when_done(zt_cooperative_task_t *self)
{
    ZT_ASSERT(self);
    zt_deferred_t *d = zt_deferred_new();
    if (!d)
        return NULL;
    if (self->ended) {
        if (self->failure) {
            zt_failure_t *f = zt_failure_dup(self->failure);
            zt_deferred_errback(d, f ? f : zt_failure_new(ZT_ERROR, "out of memory"));
        } else {
            zt_deferred_callback(d, zt_ok_none());
        }
        return d;
    }
    zt_deferred_t **done = realloc(self->done, (self->ndone + 1) * sizeof *done);
    if (!done) {
        zt_deferred_unref(&d);
        return NULL;
    }
    self->done = done;
    self->done[self->ndone++] = zt_deferred_ref(d);
    return d;
}

int
zt_cooperative_task_pause(zt_cooperative_task_t *self)
{
    ZT_ASSERT(self);
    if (self->ended)
        return ZT_ESTATE;
    self->paused++;
    return 0;
}

int
zt_cooperative_task_resume(zt_cooperative_task_t *self)
{
    ZT_ASSERT(self);
    if (self->ended || self->paused == 0)
        return ZT_ESTATE;
    if (--self->paused == 0)
        s_schedule(self->coop);
    return 0;
}

int
zt_cooperative_task_stop(zt_cooperative_task_t *self)
{
    ZT_ASSERT(self);
    if (self->ended)
        return ZT_ESTATE;
    zt_cooperator_t *c = self->coop;
    s_finish(self, s_stopped());
    if (c)
        s_sweep(c);
    return 0;
}

bool
zt_cooperative_task_is_done(const zt_cooperative_task_t *self)
{
    ZT_ASSERT(self);
    return self->ended;
}

uint64_t
zt_cooperative_task_steps(const zt_cooperative_task_t *self)
{
    ZT_ASSERT(self);
    return self->steps;
}

void
zt_cooperative_task_release(zt_cooperative_task_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_task_unref(*self_p);
    *self_p = NULL;
}
