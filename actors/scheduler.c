/*  actors/scheduler.c - the actors of one reactor: run queue, fair turns, and the inbox through
 * which other threads reach them
 *
 *  Design notes.
 *
 *  Where actors run. Every actor lives on one reactor, and everything about it (its mailbox, its
 * state, its place in the run queue) is touched only on that reactor's thread. The layer's
 * per-reactor record, the scheduler, sits in the reactor's extension slot; its finaliser runs in
 * zt_reactor_destroy, ends every actor and answers what is left.
 *
 *  Turns. An actor with messages is on the run queue once (in_runq). A run is one queued call
 * (zt_reactor_call_from_thread on the reactor thread, which runs on the next pass): it gives each
 * actor at the head of the queue one turn of at most its budget of messages and puts an actor that
 * still has messages at the back; it stops at the first actor that has had its turn in this run
 * (turn_pass), and if the queue is not empty queues itself for the next pass. An actor woken
 * during the run (a message from another actor's turn) gets its turn in the same run, so a chain
 * of actors passing a message on costs no pass per hop; no actor gets two turns in one run. So a
 * flooding actor delays another actor's message by at most one turn of its budget, and the
 * reactor's own work (timers, sockets, mailbox) by one turn of each actor.
 *
 *  The inbox: the one structure shared between threads. Another thread (another reactor, a worker,
 * main) never touches an actor's mailbox; it appends an envelope to the inbox of the actor's
 * reactor under inbox->lock, and the sender that finds no drain queued (`scheduled` false) queues
 * one with zt_reactor_call_from_thread, outside the lock. The drain takes the whole list under the
 * lock and delivers it on the reactor thread, so one call carries every envelope queued meanwhile.
 * Invariants: (1) `scheduled` is true iff a drain call has been accepted or is being made, so no
 * envelope waits without one; (2) a sender uses inbox->reactor only while it is counted in
 * `inflight`, and the finaliser, after clearing `open` under the lock, waits until `inflight` is
 * 0, so no sender calls a destroyed reactor; (3) the inbox is reference-counted (actors, asks,
 * envelopes in flight hold it), so a reference to an actor on a destroyed reactor still finds a
 * closed inbox and gets ZT_ESHUTDOWN. When the drain call cannot be queued (the reactor's loop
 * has ended) the sender takes back the list and frees it as dead letters.
 *
 *  Bounded mailboxes: actor->queued counts messages accepted and not yet taken, across threads.
 * A sender reserves a place with an atomic increment and gives it back when over the capacity;
 * the reactor decrements it when it takes a message. A blocked sender counts itself in `blocked`
 * and waits on inbox->room under the lock; the reactor, after a decrement, broadcasts under the
 * lock when `blocked` is not 0. Both sides use seq_cst, so either the sender sees the room or the
 * reactor sees the waiter (no lost wake-up); every wait has the spec's deadline.  */
#include "actor_impl.h"
#include "runtime/extension.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define ZT__ENV_CACHE 4096 /* envelopes a scheduler keeps for reuse */

static char s_slot_key;                      /* the extension slot's key */
static _Thread_local int s_handling;         /* > 0 while this thread runs actor handlers */
static _Thread_local zt__sched_t *s_current; /* the scheduler those handlers belong to */

atomic_uint_fast64_t zt__dead_letters;
atomic_uint_fast64_t zt__dropped_replies;

bool
zt__in_handler(void)
{
    return s_handling > 0;
}

zt__sched_t *
zt__current_sched(void)
{
    return s_current;
}

zt__inbox_t *
zt__inbox_ref(zt__inbox_t *inbox)
{
    atomic_fetch_add_explicit(&inbox->refs, 1, memory_order_relaxed);
    return inbox;
}

void
zt__inbox_unref(zt__inbox_t **inbox_p)
{
    zt__inbox_t *inbox = *inbox_p;
    *inbox_p = NULL;
    if (!inbox || atomic_fetch_sub_explicit(&inbox->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&inbox->lock);
    pthread_cond_destroy(&inbox->room);
    free(inbox);
}

zt__env_t *
zt__env_new(zt__sched_t *s)
{
    zt__env_t *e;
    if (s && s->free_envs) {
        e = s->free_envs;
        s->free_envs = e->next;
        s->nfree--;
    } else if (!(e = malloc(sizeof *e))) {
        return NULL;
    }
    *e = (zt__env_t){.kind = ZT__ENV_MSG};
    return e;
}

void
zt__env_free(zt__sched_t *s, zt__env_t *e)
{
    if (s && s->nfree < ZT__ENV_CACHE) {
        e->next = s->free_envs;
        s->free_envs = e;
        s->nfree++;
    } else {
        free(e);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Turns */

static void s_run(void *arg);

static void
s_schedule_run(zt__sched_t *s)
{
    if (s->run_scheduled || s->closing)
        return;
    if (zt_reactor_call_from_thread(s->reactor, s_run, s) == 0)
        s->run_scheduled = true;
    /* else the loop has ended: the messages wait for the finaliser, which answers them */
}

void
zt__sched_wake(zt__sched_t *s, zt_actor_t *a)
{
    if (a->in_runq || a->busy || !a->mbox_head || a->current)
        return;
    a->in_runq = true;
    a->run_next = NULL;
    zt_actor_ref(a); /* the run queue's reference */
    if (s->run_tail)
        s->run_tail->run_next = a;
    else
        s->run_head = a;
    s->run_tail = a;
    s_schedule_run(s);
}

void
zt__mbox_push(zt__sched_t *s, zt_actor_t *a, zt__env_t *e)
{
    e->next = NULL;
    if (a->mbox_tail)
        a->mbox_tail->next = e;
    else
        a->mbox_head = e;
    a->mbox_tail = e;
    a->mbox_len++;
    if (a->mbox_len > a->stats.high_water)
        a->stats.high_water = a->mbox_len;
    zt__sched_wake(s, a);
}

static void
s_run(void *arg)
{
    zt__sched_t *s = arg;
    s->run_scheduled = true; /* wakes during the run do not queue another: the end decides */
    s->passes++;
    s_handling++;
    zt__sched_t *outer = s_current;
    s_current = s;
    /* one turn per actor per run: stop at the first actor that has had its turn in this one */
    while (s->run_head && s->run_head->turn_pass != s->passes) {
        zt_actor_t *a = s->run_head;
        s->run_head = a->run_next;
        if (!s->run_head)
            s->run_tail = NULL;
        a->turn_pass = s->passes;
        zt__actor_turn(s, a); /* in_runq stays set: a message sent to it now joins this turn */
        a->in_runq = false;
        zt__sched_wake(s, a); /* still has messages: back of the queue */
        zt_actor_unref(&a);   /* the run queue's reference */
    }
    s_handling--;
    s_current = outer;
    s->run_scheduled = false;
    if (s->run_head)
        s_schedule_run(s);
}

/* ---------------------------------------------------------------------------------------- */
/* The inbox */

static void
s_deliver(zt__sched_t *s, zt__env_t *e)
{
    zt_actor_t *a = e->to;
    e->to = NULL;
    if (e->kind == ZT__ENV_REPLY) {
        zt__ask_deliver(s, e);
    } else if (e->kind == ZT__ENV_STOP) {
        zt__env_free(s, e);
        zt__actor_handle_stop(a);
    } else if (atomic_load_explicit(&a->state, memory_order_relaxed) != ZT__ACTOR_ALIVE ||
               s->closing) {
        zt__actor_dead_letter(s, a, e);
    } else {
        zt__mbox_push(s, a, e);
    }
    zt_actor_unref(&a);
}

static void
s_inbox_drain(void *arg)
{
    zt__inbox_t *inbox = arg;
    pthread_mutex_lock(&inbox->lock);
    zt__env_t *e = inbox->head;
    inbox->head = inbox->tail = NULL;
    inbox->scheduled = false;
    pthread_mutex_unlock(&inbox->lock);
    zt__sched_t *s = inbox->sched;
    while (e) {
        zt__env_t *next = e->next;
        s_deliver(s, e);
        e = next;
    }
}

/* Free envelopes that will never be delivered, on whatever thread holds them. */
static void
s_discard(zt__sched_t *s, zt__env_t *e)
{
    while (e) {
        zt__env_t *next = e->next;
        zt_actor_t *a = e->to;
        e->to = NULL;
        if (e->kind == ZT__ENV_REPLY) {
            zt_result_release(&e->reply);
            zt__inbox_unref(&e->reply_to);
            atomic_fetch_add_explicit(&zt__dropped_replies, 1, memory_order_relaxed);
            zt__env_free(s, e);
        } else if (e->kind == ZT__ENV_STOP) {
            zt__env_free(s, e);
        } else {
            zt__actor_dead_letter(s, a, e);
        }
        zt_actor_unref(&a);
        e = next;
    }
}

int
zt__inbox_post(zt__inbox_t *inbox, zt__env_t *e)
{
    e->next = NULL;
    pthread_mutex_lock(&inbox->lock);
    if (!atomic_load_explicit(&inbox->open, memory_order_relaxed)) {
        pthread_mutex_unlock(&inbox->lock);
        return ZT_ESHUTDOWN;
    }
    if (zt_reactor_is_reactor_thread(
            inbox->reactor)) { /* the reactor lives while we hold the lock */
        pthread_mutex_unlock(&inbox->lock);
        return 1;
    }
    if (inbox->tail)
        inbox->tail->next = e;
    else
        inbox->head = e;
    inbox->tail = e;
    bool call = !inbox->scheduled;
    if (!call) {
        pthread_mutex_unlock(&inbox->lock);
        return 0;
    }
    inbox->scheduled = true;
    inbox->inflight++;
    pthread_mutex_unlock(&inbox->lock);
    int rc = zt_reactor_call_from_thread(inbox->reactor, s_inbox_drain, inbox);
    pthread_mutex_lock(&inbox->lock);
    zt__env_t *lost = NULL;
    if (rc < 0) { /* no drain will run: take the list back, ours included */
        lost = inbox->head;
        inbox->head = inbox->tail = NULL;
        inbox->scheduled = false;
    }
    if (--inbox->inflight == 0 && !atomic_load_explicit(&inbox->open, memory_order_relaxed))
        pthread_cond_broadcast(&inbox->room);
    pthread_mutex_unlock(&inbox->lock);
    if (rc < 0) {
        /* ours is answered as a failed send by the caller; the rest are dead letters */
        zt__env_t **pp = &lost;
        while (*pp && *pp != e)
            pp = &(*pp)->next;
        if (*pp)
            *pp = e->next;
        e->next = NULL;
        s_discard(NULL, lost);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* The slot */

static void
s_sched_fini(void *arg)
{
    zt__sched_t *s = arg;
    zt__inbox_t *inbox = s->inbox;
    pthread_mutex_lock(&inbox->lock);
    atomic_store_explicit(&inbox->open, false, memory_order_relaxed);
    while (inbox->inflight > 0)
        pthread_cond_wait(&inbox->room, &inbox->lock);
    zt__env_t *left = inbox->head;
    inbox->head = inbox->tail = NULL;
    pthread_cond_broadcast(&inbox->room); /* blocked senders see the inbox closed */
    pthread_mutex_unlock(&inbox->lock);
    s->closing = true;
    s_discard(s, left);
    while (s->run_head) {
        zt_actor_t *a = s->run_head;
        s->run_head = a->run_next;
        a->in_runq = false;
        zt_actor_unref(&a);
    }
    s->run_tail = NULL;
    while (s->all_tail)                   /* newest first, as a supervisor stops its children */
        zt__actor_end(s->all_tail, NULL); /* a shutdown: monitors see a normal end */
    zt__ask_fini(s);
    while (s->free_envs) {
        zt__env_t *e = s->free_envs;
        s->free_envs = e->next;
        free(e);
    }
    inbox->sched = NULL;
    zt__inbox_unref(&s->inbox);
    free(s);
}

zt__sched_t *
zt__sched_get(zt_reactor_t *r)
{
    zt__sched_t *s = zt__reactor_slot(r, &s_slot_key);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    zt__inbox_t *inbox = calloc(1, sizeof *inbox);
    if (!s || !inbox)
        goto failed;
    pthread_mutex_init(&inbox->lock, NULL);
    pthread_cond_init(&inbox->room, NULL);
    atomic_init(&inbox->refs, 1);
    atomic_init(&inbox->open, true);
    inbox->reactor = r;
    inbox->sched = s;
    s->reactor = r;
    s->inbox = inbox;
    if (zt__reactor_set_slot(r, &s_slot_key, s, s_sched_fini) < 0) {
        zt__inbox_unref(&s->inbox);
        inbox = NULL;
        goto failed;
    }
    return s;
failed:
    free(inbox);
    free(s);
    return NULL;
}

size_t
zt_actor_foreach(zt_reactor_t *r, zt_actor_visit_fn *fn, void *arg)
{
    ZT_ASSERT(r && fn);
    ZT_ASSERT(zt_reactor_is_reactor_thread(r));
    zt__sched_t *s = zt__reactor_slot(r, &s_slot_key);
    size_t n = 0;
    for (zt_actor_t *a = s ? s->all_head : NULL; a; a = a->all_next, n++)
        fn(a, arg);
    return n;
}

uint64_t
zt_actor_dead_letters(void)
{
    return atomic_load_explicit(&zt__dead_letters, memory_order_relaxed);
}

uint64_t
zt_actor_dropped_replies(void)
{
    return atomic_load_explicit(&zt__dropped_replies, memory_order_relaxed);
}
