/*  actors/actor.c - an actor's life: spawn, send, one message at a time, stop, crash, monitors
 *
 *  Design notes.
 *
 *  Threads. An actor's fields are the home reactor's, except the atomics (refs, state, queued,
 * blocked, named), which any thread may read; a sender from another thread reaches the actor only
 * through its inbox (scheduler.c). The memory of an actor lives until its last reference goes, so
 * a reference held anywhere stays safe after the actor has ended: a send then sees `state` ended
 * and returns ZT_ESHUTDOWN.
 *
 *  One message at a time: `current` holds the message being handled, from the call of receive
 * until it (or the Deferred it returned, or its coroutine) has finished; a turn takes a message
 * only when `current` is NULL and the actor is not `busy`. Every message taken is answered exactly
 * once: by the handler's result, by zt_actor_reply, by a reply handle, or by the end of the actor
 * (ZT_ACTOR_STOPPED_ERROR). A message never taken is a dead letter when the actor ends.
 *
 *  Ending while busy (a supervisor stops a sibling, a stop during an await): the actor cancels the
 * Deferred its handler waits on and ends when the handler has finished, so a stopped hook never
 * frees state a running coroutine still uses. Only the reactor's destroy ends a busy actor at
 * once (its coroutines have unwound before then); `life` lets the late wake-up be ignored.  */
#include "actor_impl.h"

#include <ztwist/coro.h>

#include <stdlib.h>
#include <time.h>

ZT_EXPORT const zt_failure_type_t zt__actor_stopped_type = {"ActorStopped", &zt__error_type,
                                                            ZT_ESHUTDOWN};

_Static_assert(sizeof(struct zt_actor) <= 512, "an idle actor fits in 512 bytes (#16)");

static void s_finish(zt__sched_t *s, zt_actor_t *a, zt_result_t result);

/* A wait on the Deferred a handler returned. */
typedef struct s_wait {
    zt_actor_t *a; /* Owned reference */
    uint32_t life; /* the life that waits */
} s_wait_t;

zt_actor_t *
zt_actor_ref(zt_actor_t *self)
{
    ZT_ASSERT(self);
    atomic_fetch_add_explicit(&self->refs, 1, memory_order_relaxed);
    return self;
}

void
zt__actor_free(zt_actor_t *a)
{
    zt_failure_destroy(&a->exit_reason);
    zt__inbox_unref(&a->inbox);
    if (a->free_arg)
        a->free_arg(a->spec.arg);
    free(a);
}

void
zt_actor_unref(zt_actor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_actor_t *a = *self_p;
    *self_p = NULL;
    if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1)
        zt__actor_free(a);
}

bool
zt_actor_is_alive(const zt_actor_t *self)
{
    ZT_ASSERT(self);
    return atomic_load(&self->state) == ZT__ACTOR_ALIVE;
}

zt_reactor_t *
zt_actor_reactor(const zt_actor_t *self)
{
    ZT_ASSERT(self);
    return self->inbox->reactor;
}

/* ---------------------------------------------------------------------------------------- */
/* Spawn and revive */

static void
s_link(zt__sched_t *s, zt_actor_t *a)
{
    a->all_next = NULL;
    a->all_prev = s->all_tail;
    if (s->all_tail)
        s->all_tail->all_next = a;
    else
        s->all_head = a;
    s->all_tail = a;
    s->nactors++;
}

static void
s_unlink(zt__sched_t *s, zt_actor_t *a)
{
    if (a->all_prev)
        a->all_prev->all_next = a->all_next;
    else
        s->all_head = a->all_next;
    if (a->all_next)
        a->all_next->all_prev = a->all_prev;
    else
        s->all_tail = a->all_prev;
    a->all_prev = a->all_next = NULL;
    s->nactors--;
}

static int
s_start(zt_actor_t *a)
{
    a->state_ptr = a->spec.arg;
    if (a->spec.started) {
        int rc = a->spec.started(a, a->spec.arg, &a->state_ptr);
        if (rc < 0)
            return rc;
    }
    atomic_store_explicit(&a->state, ZT__ACTOR_ALIVE, memory_order_release);
    return 0;
}

int
zt_actor_spawn(zt_reactor_t *r, const zt_actor_spec_t *spec, zt_actor_t **ref_p)
{
    ZT_ASSERT(r && spec);
    ZT_ASSERT_MSG(zt_reactor_is_reactor_thread(r), "zt_actor_spawn called off the reactor thread");
    if (!spec->receive || !(spec->block_timeout >= 0))
        return ZT_EINVAL;
    zt__sched_t *s = zt__sched_get(r);
    if (!s)
        return ZT_ENOMEM;
    if (s->closing)
        return ZT_ESHUTDOWN;
    zt_actor_t *a = calloc(1, sizeof *a);
    if (!a)
        return ZT_ENOMEM;
    atomic_init(&a->refs, 1);
    atomic_init(&a->state, ZT__ACTOR_ENDED);
    a->spec = *spec;
    if (!a->spec.capacity)
        a->spec.capacity = ZT_ACTOR_CAPACITY;
    if (!a->spec.budget)
        a->spec.budget = ZT_ACTOR_BUDGET;
    a->inbox = zt__inbox_ref(s->inbox);
    a->sched = s;
    int rc = s_start(a);
    if (rc < 0) {
        zt__actor_free(a);
        return rc;
    }
    s_link(s, a);
    if (ref_p)
        *ref_p = zt_actor_ref(a);
    return 0;
}

int
zt__actor_revive(zt_actor_t *a)
{
    zt__sched_t *s = a->sched;
    if (!s || s->closing || atomic_load(&a->state) == ZT__ACTOR_ALIVE)
        return ZT_ESTATE;
    zt_failure_destroy(&a->exit_reason);
    a->stop_requested = false;
    int rc = s_start(a);
    if (rc < 0)
        return rc;
    zt_actor_ref(a); /* the scheduler's, as at spawn */
    s_link(s, a);
    a->stats.restarts++;
    zt__sched_wake(s, a);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Sending */

/* Reserve a place in a's mailbox; wait for one when the policy says so. */
static int
s_reserve(zt_actor_t *a)
{
    uint32_t cap = a->spec.capacity;
    if (atomic_fetch_add(&a->queued, 1) < cap)
        return 0;
    atomic_fetch_sub(&a->queued, 1);
    if (a->spec.policy != ZT_MAILBOX_BLOCK || zt__in_handler() || zt_coro_is_inside())
        return ZT_EFULL;
    zt__inbox_t *inbox = a->inbox;
    double deadline = zt_time_now() + a->spec.block_timeout;
    int rc = ZT_EFULL;
    pthread_mutex_lock(&inbox->lock);
    if (atomic_load(&inbox->open) && zt_reactor_is_reactor_thread(inbox->reactor)) {
        pthread_mutex_unlock(&inbox->lock); /* the reactor cannot wait for itself */
        return ZT_EFULL;
    }
    atomic_fetch_add(&a->blocked, 1);
    for (;;) {
        if (!atomic_load(&inbox->open) || atomic_load(&a->state) != ZT__ACTOR_ALIVE) {
            rc = ZT_ESHUTDOWN;
            break;
        }
        if (atomic_fetch_add(&a->queued, 1) < cap) {
            rc = 0;
            break;
        }
        atomic_fetch_sub(&a->queued, 1);
        double left = deadline - zt_time_now();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double ns = (double)ts.tv_nsec + left * 1e9;
        ts.tv_sec += (time_t)(ns / 1e9);
        ts.tv_nsec = (long)(ns - (double)(time_t)(ns / 1e9) * 1e9);
        pthread_cond_timedwait(&inbox->room, &inbox->lock, &ts);
    }
    atomic_fetch_sub(&a->blocked, 1);
    pthread_mutex_unlock(&inbox->lock);
    return rc;
}

/* Give back a place: the message was taken, or never sent. */
static void
s_unreserve(zt_actor_t *a)
{
    atomic_fetch_sub(&a->queued, 1);
    if (atomic_load(&a->blocked) > 0) {
        pthread_mutex_lock(&a->inbox->lock);
        pthread_cond_broadcast(&a->inbox->room);
        pthread_mutex_unlock(&a->inbox->lock);
    }
}

/* Send msg (with an ask to answer, or not) to `to`; e's fields are set by the caller. */
int
zt__actor_send(zt_actor_t *to, zt__env_t *e)
{
    if (atomic_load_explicit(&to->state, memory_order_acquire) != ZT__ACTOR_ALIVE)
        return ZT_ESHUTDOWN;
    int rc = s_reserve(to);
    if (rc < 0)
        return rc;
    zt__sched_t *cur = zt__current_sched();
    if (cur && cur == to->sched) { /* inside a handler of the same reactor */
        zt__mbox_push(cur, to, e);
        return 0;
    }
    e->to = zt_actor_ref(to);
    rc = zt__inbox_post(to->inbox, e);
    if (rc == 1) {
        zt_actor_unref(&e->to); /* the one just taken: the caller's remains */
        zt__sched_t *s = to->sched;
        if (s->closing || atomic_load(&to->state) != ZT__ACTOR_ALIVE) {
            s_unreserve(to);
            return ZT_ESHUTDOWN;
        }
        zt__mbox_push(s, to, e);
        return 0;
    }
    if (rc < 0) {
        zt_actor_unref(&e->to);
        s_unreserve(to);
    }
    return rc;
}

int
zt_actor_tell(zt_actor_t *to, zt_msg_t msg)
{
    ZT_ASSERT(to);
    zt__env_t *e = zt__env_new(zt__current_sched());
    if (!e)
        return ZT_ENOMEM;
    e->msg = msg;
    int rc = zt__actor_send(to, e);
    if (rc < 0)
        zt__env_free(zt__current_sched(), e);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Handling */

static void
s_free_body(zt__env_t *e)
{
    if (e->msg.body && e->msg.free_body)
        e->msg.free_body(e->msg.body);
    e->msg.body = NULL;
}

void
zt__actor_dead_letter(zt__sched_t *s, zt_actor_t *a, zt__env_t *e)
{
    if (e->ask) {
        zt__ask_answer(e, zt_err(zt__actor_stopped_failure("the actor stopped before it")));
    } else {
        atomic_fetch_add_explicit(&zt__dead_letters, 1, memory_order_relaxed);
        if (s && a)
            a->stats.dead_letters++;
    }
    s_free_body(e);
    if (a)
        s_unreserve(a);
    zt__env_free(s, e);
}

static zt_result_t
s_resumed(zt_result_t result, void *arg)
{
    s_wait_t *w = arg;
    zt_actor_t *a = w->a;
    if (a->busy && a->life == w->life) {
        a->busy = false;
        zt_deferred_unref(&a->waiting);
        s_finish(a->sched, a, result);
        if (a->sched)
            zt__sched_wake(a->sched, a);
    } else {
        zt_result_release(&result);
    }
    zt_actor_unref(&w->a);
    free(w);
    return zt_ok_none();
}

static void
s_settle(zt__sched_t *s, zt_actor_t *a, zt_result_t result)
{
    if (result.kind != ZT_RESULT_DEFERRED) {
        s_finish(s, a, result);
        return;
    }
    zt_deferred_t *d = result.ptr;
    s_wait_t *w = malloc(sizeof *w);
    if (!w) {
        zt_deferred_unref(&d);
        s_finish(s, a, zt_err(zt_failure_from_code(ZT_ENOMEM, "waiting for a handler")));
        return;
    }
    *w = (s_wait_t){.a = zt_actor_ref(a), .life = a->life};
    a->busy = true;
    a->waiting = d;                        /* the result's reference */
    zt_deferred_add_both(d, s_resumed, w); /* runs at once when d has fired */
}

static zt_result_t
s_coro_body(void *arg)
{
    zt_actor_t *a = arg;
    return a->spec.receive(a, a->state_ptr, &a->current->msg);
}

static void
s_handle(zt__sched_t *s, zt_actor_t *a, zt__env_t *e)
{
    a->current = e;
    a->replied = e->ask == NULL;
    zt_result_t result;
    if (a->spec.flags & ZT_ACTOR_CORO) {
        zt_deferred_t *d = zt_coro_start(s->reactor, s_coro_body, a);
        result = d ? zt_wait_for(d)
                   : zt_err(zt_failure_from_code(ZT_ENOMEM, "starting a coroutine handler"));
    } else {
        result = a->spec.receive(a, a->state_ptr, &e->msg);
    }
    s_settle(s, a, result);
}

/* The current message has its result: answer, free, and end the actor when it crashed. */
static void
s_finish(zt__sched_t *s, zt_actor_t *a, zt_result_t result)
{
    zt__env_t *e = a->current;
    a->current = NULL;
    a->stats.handled++;
    zt_failure_t *crash = NULL;
    if (zt_is_err(result)) {
        crash = zt_result_failure(result);
        result = zt_ok_none();
        if (!a->replied)
            zt__ask_answer(e, zt_err(zt_failure_dup(crash)));
    } else if (!a->replied) {
        zt__ask_answer(e, result);
        result = zt_ok_none();
    }
    zt_result_release(&result);
    s_free_body(e);
    zt__env_free(s, e);
    if (crash) {
        zt__actor_end(a, crash);
    } else if (a->stop_requested) {
        zt_failure_t *reason = a->exit_reason;
        a->exit_reason = NULL;
        zt__actor_end(a, reason);
    }
}

uint32_t
zt__actor_turn(zt__sched_t *s, zt_actor_t *a)
{
    uint32_t n = 0;
    int64_t t0 = zt_time_now_ns();
    zt_actor_ref(a); /* a handler may drop the last other reference */
    while (n < a->spec.budget && a->mbox_head && !a->busy && !a->current &&
           atomic_load_explicit(&a->state, memory_order_relaxed) == ZT__ACTOR_ALIVE) {
        zt__env_t *e = a->mbox_head;
        a->mbox_head = e->next;
        if (!a->mbox_head)
            a->mbox_tail = NULL;
        a->mbox_len--;
        s_unreserve(a);
        n++;
        s_handle(s, a, e);
    }
    a->stats.handling_ns += (uint64_t)(zt_time_now_ns() - t0);
    zt_actor_unref(&a);
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Stop, crash, monitors */

static void
s_fire_monitors(zt_actor_t *a, const zt_failure_t *reason)
{
    zt__monitor_t *m = a->monitors;
    a->monitors = NULL;
    while (m) {
        zt__monitor_t *next = m->next;
        if (reason)
            zt_deferred_errback(m->d, zt_failure_dup(reason));
        else
            zt_deferred_callback(m->d, zt_ok_none());
        zt_deferred_unref(&m->d);
        free(m);
        m = next;
    }
}

/* Answer the message being handled and what waits in the mailbox. */
static void
s_clear_mailbox(zt__sched_t *s, zt_actor_t *a)
{
    if (a->current) { /* only at destroy: a busy handler is abandoned */
        zt__env_t *e = a->current;
        a->current = NULL;
        if (!a->replied)
            zt__ask_answer(e, zt_err(zt__actor_stopped_failure("its reactor was destroyed")));
        s_free_body(e);
        zt__env_free(s, e);
    }
    while (a->mbox_head) {
        zt__env_t *e = a->mbox_head;
        a->mbox_head = e->next;
        a->mbox_len--;
        zt__actor_dead_letter(s, a, e);
    }
    a->mbox_tail = NULL;
}

/* A busy actor cannot end yet: cancel what it waits on; true when it has ended meanwhile. */
static bool
s_end_busy(zt_actor_t *a, zt_failure_t *reason)
{
    if (!a->stop_requested || (reason && !a->exit_reason)) {
        zt_failure_destroy(&a->exit_reason);
        a->exit_reason = reason;
        reason = NULL;
    }
    zt_failure_destroy(&reason);
    a->stop_requested = true;
    uint32_t life = a->life;
    zt_deferred_t *d = a->waiting ? zt_deferred_ref(a->waiting) : NULL;
    if (d)
        zt_deferred_cancel(d); /* may finish the handler, and so end the actor, right here */
    zt_deferred_unref(&d);
    return a->life != life;
}

void
zt__actor_end(zt_actor_t *a, zt_failure_t *reason)
{
    zt__sched_t *s = a->sched;
    if (atomic_load(&a->state) != ZT__ACTOR_ALIVE) {
        zt_failure_destroy(&reason);
        return;
    }
    if (a->busy) {
        if (s_end_busy(a, reason) || !s->closing)
            return;
        reason = a->exit_reason; /* destroy: end now, the late wake-up is ignored */
        a->exit_reason = NULL;
        a->busy = false;
        zt_deferred_unref(&a->waiting);
    }
    zt_actor_ref(a);                          /* we use it to the end */
    atomic_store(&a->state, ZT__ACTOR_ENDED); /* seq_cst: registry.c's agreement on `named` */
    a->life++;
    a->stop_requested = false;
    s_clear_mailbox(s, a);
    if (a->spec.stopped)
        a->spec.stopped(a, a->state_ptr, a->spec.arg);
    a->state_ptr = NULL;
    s_clear_mailbox(s, a); /* what the stopped hook sent itself */
    s_unlink(s, a);
    zt_failure_destroy(&a->exit_reason);
    a->exit_reason = reason;
    zt_actor_t *self = a;
    zt_actor_unref(&self); /* the scheduler's */
    s_fire_monitors(a, reason);
    if (a->sup && !a->sup_stopping)
        zt__sup_child_ended(a->sup, a, reason);
    if (atomic_load(&a->state) != ZT__ACTOR_ALIVE)
        zt__registry_forget(a);
    zt_actor_unref(&a);
}

void
zt__actor_handle_stop(zt_actor_t *a)
{
    if (atomic_load(&a->state) != ZT__ACTOR_ALIVE)
        return;
    if (a->current) /* handling: stop once it has finished */
        a->stop_requested = true;
    else
        zt__actor_end(a, NULL);
}

int
zt_actor_stop(zt_actor_t *self)
{
    ZT_ASSERT(self);
    if (atomic_load_explicit(&self->state, memory_order_acquire) != ZT__ACTOR_ALIVE)
        return ZT_ESHUTDOWN;
    zt__env_t *e = zt__env_new(NULL);
    if (!e)
        return ZT_ENOMEM;
    e->kind = ZT__ENV_STOP;
    e->to = zt_actor_ref(self);
    int rc = zt__inbox_post(self->inbox, e);
    if (rc == 0)
        return 0;
    zt_actor_unref(&e->to);
    free(e);
    if (rc == 1) { /* on the actor's own reactor */
        zt__actor_handle_stop(self);
        return 0;
    }
    return rc;
}

zt_deferred_t *
zt_actor_monitor(zt_actor_t *self)
{
    ZT_ASSERT(self);
    zt_deferred_t *d = zt_deferred_new();
    if (!d)
        return NULL;
    if (atomic_load(&self->state) != ZT__ACTOR_ALIVE) {
        if (self->exit_reason)
            zt_deferred_errback(d, zt_failure_dup(self->exit_reason));
        else
            zt_deferred_callback(d, zt_ok_none());
        return d;
    }
    zt__monitor_t *m = malloc(sizeof *m);
    if (!m) {
        zt_deferred_errback(d, zt_failure_from_code(ZT_ENOMEM, "monitoring an actor"));
        return d;
    }
    m->d = zt_deferred_ref(d);
    m->next = self->monitors;
    self->monitors = m;
    return d;
}

void
zt_actor_stats(const zt_actor_t *self, zt_actor_stats_t *stats)
{
    ZT_ASSERT(self && stats);
    *stats = self->stats;
    stats->depth = atomic_load_explicit(&self->queued, memory_order_relaxed);
}
