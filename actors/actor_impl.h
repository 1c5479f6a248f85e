/*  actors/actor_impl.h - what the actor files share: the actor, its envelope, the per-reactor
 * scheduler and its inbox
 *
 *  Internal (zt__ names). actor.c owns the actor's life; scheduler.c the run queue and the inbox
 * (the only state shared between threads); ask.c asks and replies; registry.c names;
 * supervisor.c supervisors.  */
#ifndef ZTWIST_ACTOR_IMPL_H
#define ZTWIST_ACTOR_IMPL_H

#include <ztwist/actor.h>
#include <ztwist/supervisor.h>

#include "base/base.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct zt__sched zt__sched_t;
typedef struct zt__inbox zt__inbox_t;
typedef struct zt__ask zt__ask_t;
typedef struct zt__sup zt__sup_t;

/* What an envelope carries. */
typedef enum zt__env_kind {
    ZT__ENV_MSG = 0,   /* a message for `to` (a tell, or an ask when ask is set) */
    ZT__ENV_REPLY = 1, /* a reply for ask, travelling to the asker's reactor */
    ZT__ENV_STOP = 2   /* a stop request for `to` from another thread */
} zt__env_kind_t;

/* A message in a mailbox or in transit. */
typedef struct zt__env {
    struct zt__env *next;  /* the next in its queue; Borrowed link */
    zt__env_kind_t kind;   /* what it carries */
    zt_actor_t *to;        /* the receiver; Owned reference while in an inbox, else NULL */
    zt_msg_t msg;          /* the message; its body Owned by the envelope */
    zt__ask_t *ask;        /* the ask to answer, or NULL for a tell; Borrowed (asker's reactor) */
    zt__inbox_t *reply_to; /* the asker's inbox for an ask; Owned reference */
    zt_result_t reply;     /* ZT__ENV_REPLY: the reply; Owned */
} zt__env_t;

/* An actor's life. */
typedef enum zt__actor_state {
    ZT__ACTOR_ALIVE = 0, /* takes messages */
    ZT__ACTOR_ENDED = 1  /* stopped or crashed; a supervisor may bring it back */
} zt__actor_state_t;

struct zt_actor {
    atomic_uint refs;       /* references: holders, plus one for the scheduler while alive */
    _Atomic int state;      /* zt__actor_state_t */
    atomic_uint queued;     /* messages accepted and not yet taken (the bound's count) */
    atomic_uint blocked;    /* senders waiting for room (ZT_MAILBOX_BLOCK) */
    zt__inbox_t *inbox;     /* Owned reference: its reactor's inbox, outlives the reactor */
    zt__sched_t *sched;     /* Borrowed: its reactor's scheduler; NULL after its reactor went */
    zt_actor_spec_t spec;   /* copied at spawn */
    void *state_ptr;        /* what started made */
    zt__env_t *mbox_head;   /* queued envelopes (home thread); Owned */
    zt__env_t *mbox_tail;   /* the last queued; Borrowed */
    uint32_t mbox_len;      /* envelopes in mbox (home thread) */
    zt_actor_t *run_next;   /* the next in the run queue; Borrowed */
    uint64_t turn_pass;     /* the scheduler run in which it last had a turn */
    zt_actor_t *all_prev;   /* the scheduler's list of live actors; Borrowed */
    zt_actor_t *all_next;   /* ... Borrowed */
    zt__env_t *current;     /* the message being handled; Owned */
    zt_deferred_t *waiting; /* Owned reference: what the busy handler returned, or NULL */
    uint32_t life;          /* lives ended so far: a late wake-up of an earlier life is ignored */
    struct zt__monitor *monitors; /* Owned: Deferreds fired when this life ends */
    zt__sup_t *sup;               /* Borrowed: the supervisor, or NULL */
    zt_failure_t *exit_reason;    /* Owned: the crash that ended it (or will: stop_requested) */
    bool in_runq;                 /* queued in the run queue */
    bool busy;                    /* waiting for the Deferred its handler returned */
    bool stop_requested;          /* stop after the current message */
    bool sup_stopping;            /* its supervisor is stopping it: do not tell the supervisor */
    bool sup_restart;       /* its supervisor stopped it while busy: restart it when it ends */
    atomic_bool named;      /* has a name in the registry (written under its lock) */
    bool replied;           /* the current ask has had its reply (or a handle) */
    zt_actor_stats_t stats; /* counters; depth is read from `queued` */
    zt_free_fn *free_arg;   /* frees spec.arg with the actor's memory (supervisors), or NULL */
};

/* A Deferred fired when an actor's life ends. */
typedef struct zt__monitor {
    struct zt__monitor *next; /* Owned link */
    zt_deferred_t *d;         /* Owned reference */
} zt__monitor_t;

/* A pending ask, on the asker's reactor. */
struct zt__ask {
    zt__ask_t *prev;    /* the scheduler's list of pending asks; Borrowed */
    zt__ask_t *next;    /* ... Borrowed */
    zt_deferred_t *d;   /* Owned reference: the asker's Deferred */
    zt__sched_t *sched; /* Borrowed: the asker's scheduler */
};

/* The cross-thread door of a reactor's actors: see scheduler.c's design notes. */
struct zt__inbox {
    atomic_uint refs;      /* the scheduler, every actor, every ask and envelope in flight */
    pthread_mutex_t lock;  /* guards the fields below up to `open` */
    pthread_cond_t room;   /* broadcast when a blocked sender may find room, or at close */
    zt__env_t *head;       /* envelopes from other threads; Owned */
    zt__env_t *tail;       /* Borrowed */
    bool scheduled;        /* a drain call is queued on the reactor */
    unsigned inflight;     /* senders between the lock and their call_from_thread */
    atomic_bool open;      /* the reactor takes envelopes; false from its destroy on */
    zt_reactor_t *reactor; /* Borrowed: valid while open */
    zt__sched_t *sched;    /* Borrowed: valid while open */
};

/* The per-reactor state of the actors layer (the reactor's extension slot). */
struct zt__sched {
    zt_reactor_t *reactor; /* Borrowed: the reactor */
    zt__inbox_t *inbox;    /* Owned reference */
    zt_actor_t *run_head;  /* actors with messages, in turn order; Borrowed links */
    zt_actor_t *run_tail;  /* Borrowed */
    bool run_scheduled;    /* a run call is queued for the next pass */
    bool closing;          /* the reactor is being destroyed */
    zt_actor_t *all_head;  /* live actors, oldest first; each holds a reference for us */
    zt_actor_t *all_tail;  /* Borrowed */
    size_t nactors;        /* live actors */
    zt__ask_t *asks;       /* pending asks made on this reactor; Owned */
    zt__env_t *free_envs;  /* recycled envelopes; Owned */
    size_t nfree;          /* envelopes in free_envs */
    uint64_t passes;       /* run passes (for tests of fairness) */
};

/* Process-wide counters. */
extern atomic_uint_fast64_t zt__dead_letters;
extern atomic_uint_fast64_t zt__dropped_replies;

/* scheduler.c */
zt__sched_t *zt__sched_get(zt_reactor_t *r); /* make on first use; NULL when out of memory */
zt__env_t *zt__env_new(zt__sched_t *s);      /* s may be NULL (another thread) */
void zt__env_free(zt__sched_t *s, zt__env_t *e);
void zt__inbox_unref(zt__inbox_t **inbox_p);
zt__inbox_t *zt__inbox_ref(zt__inbox_t *inbox);
/* Hand an envelope to the inbox's reactor: 0 (e taken, it travels), 1 when the caller runs on that
 * reactor's thread (e not taken: deliver it locally), ZT_ESHUTDOWN or another code (not taken). */
int zt__inbox_post(zt__inbox_t *inbox, zt__env_t *e);
/* Queue e for actor a (home thread); a is alive. */
void zt__mbox_push(zt__sched_t *s, zt_actor_t *a, zt__env_t *e);
/* Put a on the run queue if it has messages and can take them. */
void zt__sched_wake(zt__sched_t *s, zt_actor_t *a);
/* Whether this thread is running actor handlers now. */
bool zt__in_handler(void);
/* The scheduler whose handlers this thread runs now, or NULL: the sends' fast path. */
zt__sched_t *zt__current_sched(void);

/* actor.c */
/* Send envelope e (msg and ask set by the caller) to `to`; takes e on success. */
int zt__actor_send(zt_actor_t *to, zt__env_t *e);
void zt__actor_dead_letter(zt__sched_t *s, zt_actor_t *a, zt__env_t *e);
/* Run up to budget messages of a; returns how many ran. */
uint32_t zt__actor_turn(zt__sched_t *s, zt_actor_t *a);
/* End a's life with reason (taken; NULL for a normal stop). */
void zt__actor_end(zt_actor_t *a, zt_failure_t *reason);
/* Bring an ended actor back in place; 0 or a code. */
int zt__actor_revive(zt_actor_t *a);
void zt__actor_handle_stop(zt_actor_t *a);
void zt__actor_free(zt_actor_t *a);

/* ask.c */
/* Answer envelope e's ask with reply (taken), on whatever thread. */
void zt__ask_answer(zt__env_t *e, zt_result_t reply);
/* A reply envelope arrived on the asker's reactor. */
void zt__ask_deliver(zt__sched_t *s, zt__env_t *e);
/* Fail every pending ask of s (its reactor is being destroyed). */
void zt__ask_fini(zt__sched_t *s);
zt_failure_t *zt__actor_stopped_failure(const char *why);

/* registry.c */
void zt__registry_forget(zt_actor_t *a);

/* supervisor.c */
/* A supervised child ended; the supervisor decides. */
void zt__sup_child_ended(zt__sup_t *sup, zt_actor_t *child, const zt_failure_t *reason);

#endif
