/*  ztwist/actor.h - application actors on the reactor: spawn, tell, ask, monitor, names
 *
 *  An actor is a small struct on a reactor, not a thread: private state, a receive function and
 * optional started/stopped hooks. Its messages run on its reactor's thread, one at a time, never
 * two at once, so its state needs no lock, and its Deferreds, timers, sockets and worker-pool calls
 * are ordinary reactor objects.
 *
 *  Messages. A zt_msg_t is {tag, body, free_body}, moved without copying. The rule: a message sent
 * belongs to the receiver. A send that fails (a dead reference, a full mailbox) leaves the body
 * with the caller; a message accepted but never handled (its actor stopped first, its reactor was
 * destroyed) is freed by ztwist with free_body and counted as a dead letter. A receive function
 * borrows the message: ztwist frees the body when the function (or its coroutine) has finished,
 * unless it took the body with zt_msg_take.
 *
 *  Receiving. What receive returns decides what happens:
 *    - a value: for an ask, the reply (unless the handler replied already with zt_actor_reply or
 * took a reply handle); for a tell, it is released;
 *    - zt_wait_for(d): the actor waits for d before its next message, and d's result counts as
 * returned (so a handler can wait for a worker-thread job or another ask);
 *    - a failure: the actor crashes ("let it crash"): an ask being handled fails with a copy of it,
 * the actor stops and its monitors and supervisor see the failure. To answer an ask with an error
 * and keep running, reply with zt_actor_reply(self, zt_err(f)) and return a value.
 *  With ZT_ACTOR_CORO in the spec's flags, receive runs as a coroutine (<ztwist/coro.h>) and may
 * zt_await; the actor takes its next message only after the coroutine has returned.
 *
 *  Scheduling. Messages between actors on one reactor are queued in memory; the reactor runs, each
 * pass, one turn of every actor that has messages: at most `budget` messages, then the actor goes
 * to the back of the run queue, and after the round the reactor gets its pass for timers and
 * sockets. Messages for an actor on another reactor travel through that reactor's mailbox
 * (zt_reactor_call_from_thread), many queued messages per call.
 *
 *  Mailboxes are bounded (capacity, ZT_ACTOR_CAPACITY by default). When one is full a send fails
 * with ZT_EFULL (ZT_MAILBOX_FAIL), or with ZT_MAILBOX_BLOCK a sender on a thread that runs no
 * actor handler waits up to the spec's block_timeout for room, then fails with ZT_EFULL.
 *
 *  References. zt_actor_t * is a counted reference, safe to hold and use from any thread: a
 * reference to an actor that has ended stays valid memory, and sending to it returns
 * ZT_ESHUTDOWN. A supervisor restarts a child in place, so references held by others stay valid.
 *
 *  Threads: zt_actor_tell, zt_actor_stop, zt_actor_ref, zt_actor_unref, zt_actor_is_alive,
 * zt_actor_reactor, zt_actor_register, zt_actor_unregister, zt_actor_whereis, zt_reply_send,
 * zt_reply_destroy and the counts are safe from any thread; everything else is for the thread of
 * the reactor named in the call (the actor's own reactor for calls that take an actor).  */
#ifndef ZTWIST_ACTOR_H
#define ZTWIST_ACTOR_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/failure.h>
#include <ztwist/reactor.h>
#include <ztwist/result.h>

typedef struct zt_actor zt_actor_t;
typedef struct zt_reply zt_reply_t;

/** The default mailbox capacity: messages queued for one actor before a send is refused. */
#define ZT_ACTOR_CAPACITY 4096
/** The default budget: messages an actor handles in one turn before the others get theirs. */
#define ZT_ACTOR_BUDGET 64

/** A message: moved, never copied. A public struct, built with zt_msg. */
typedef struct zt_msg {
    uint32_t tag;          /* what the message means, chosen by the program */
    void *body;            /* the payload; Owned by whoever holds the message (see the rule) */
    zt_free_fn *free_body; /* frees body; NULL when body needs no freeing (an integer, a static) */
} zt_msg_t;

/** A message with a tag, a body and the function that frees the body (NULL for none). */
static inline zt_msg_t
zt_msg(uint32_t tag, void *body, zt_free_fn *free_body)
{
    zt_msg_t m = {.tag = tag, .body = body, .free_body = free_body};
    return m;
}

/** Take the body out of a message being handled: the handler owns it from now on, and ztwist will
 * not free it. Returns the body (NULL when there is none). */
static inline void *
zt_msg_take(zt_msg_t *msg)
{
    void *body = msg->body;
    msg->body = NULL;
    msg->free_body = NULL;
    return body;
}

/** What a full mailbox does to a sender. */
typedef enum zt_mailbox_policy {
    ZT_MAILBOX_FAIL = 0, /* the send fails at once with ZT_EFULL */
    ZT_MAILBOX_BLOCK = 1 /* a sender outside actor handlers waits up to block_timeout for room */
} zt_mailbox_policy_t;

/** Spec flags. */
#define ZT_ACTOR_CORO 1u /* receive runs as a coroutine and may zt_await */

/**
 *  The receive function: handle one message. Runs on the actor's reactor thread.
 *  @param self   the actor; borrowed for the call
 *  @param state  the actor's private state (what started returned)
 *  @param msg    the message; borrowed: ztwist frees its body afterwards unless zt_msg_take took it
 *  @return a value (the reply to an ask), zt_wait_for(d) to wait, or a failure to crash
 */
typedef zt_result_t zt_actor_receive_fn(zt_actor_t *self, void *state, zt_msg_t *msg);

/**
 *  The started hook: make the actor's state; runs inside zt_actor_spawn and again at each restart.
 *  @param arg      the spec's arg
 *  @param state_p  receives the state (initially arg)
 *  @return 0, or a negative code: the spawn (or restart) fails and stopped is not called
 */
typedef int zt_actor_started_fn(zt_actor_t *self, void *arg, void **state_p);

/** The stopped hook: release the state; runs once per successful started, when the actor ends. */
typedef void zt_actor_stopped_fn(zt_actor_t *self, void *state, void *arg);

/** How to make an actor. Zero-initialise it, then set receive (required) and what you need. */
typedef struct zt_actor_spec {
    zt_actor_receive_fn *receive; /* handles each message; required */
    zt_actor_started_fn *started; /* makes the state, or NULL: the state is arg */
    zt_actor_stopped_fn *stopped; /* releases the state, or NULL */
    void *arg;                  /* given to started and stopped; Borrowed, never freed by ztwist */
    uint32_t capacity;          /* mailbox bound; 0 means ZT_ACTOR_CAPACITY */
    uint32_t budget;            /* messages per turn; 0 means ZT_ACTOR_BUDGET */
    zt_mailbox_policy_t policy; /* what a full mailbox does to a sender */
    double block_timeout;       /* ZT_MAILBOX_BLOCK: the longest a sender waits, seconds */
    unsigned flags;             /* ZT_ACTOR_CORO */
} zt_actor_spec_t;

/** An actor's counters (zt_actor_stats). */
typedef struct zt_actor_stats {
    uint64_t depth;        /* messages accepted and not yet handled (mailbox depth) */
    uint64_t high_water;   /* the deepest the mailbox has been */
    uint64_t handled;      /* messages handled */
    uint64_t handling_ns;  /* time spent in receive (excluding coroutine waits), nanoseconds */
    uint64_t restarts;     /* restarts by a supervisor */
    uint64_t dead_letters; /* messages addressed to it that were freed unhandled */
} zt_actor_stats_t;

/** The failure type of an ask answered because its actor stopped ("ActorStopped",
 * ZT_ESHUTDOWN). */
ZT_EXPORT extern const zt_failure_type_t zt__actor_stopped_type;
/** An ask answered because its actor stopped, or its reactor went, before it replied. */
#define ZT_ACTOR_STOPPED_ERROR (&zt__actor_stopped_type)

/**
 *  Spawn an actor on reactor r: runs spec->started at once, then the actor waits for messages.
 *  @param r      the reactor the actor lives on; the caller is on its thread
 *  @param spec   copied; spec->receive is required
 *  @param ref_p  NULL (the actor lives until it stops), or receives a new reference the caller
 * owns and releases with zt_actor_unref
 *  @return 0; ZT_EINVAL (no receive, a block_timeout that is negative); ZT_ENOMEM; ZT_ESHUTDOWN
 * when r is being destroyed; or what started returned. On failure nothing was spawned.
 */
ZT_EXPORT int zt_actor_spawn(zt_reactor_t *r, const zt_actor_spec_t *spec, zt_actor_t **ref_p);

/**
 *  Take a new reference to an actor. Any thread.
 *  @return self, for convenience
 */
ZT_EXPORT zt_actor_t *zt_actor_ref(zt_actor_t *self);

/**
 *  Release a reference and NULL the pointer; the last one frees the memory of an ended actor. Any
 * thread. NULL does nothing.
 */
ZT_EXPORT void zt_actor_unref(zt_actor_t **self_p);

/**
 *  Send a message one way (Erlang's !, CAF's send). Any thread. Messages from one sender to one
 * actor are handled in the order they were sent.
 *  @param to   the receiver; a reference the caller holds
 *  @param msg  on success it belongs to the receiver; on failure the caller still owns its body
 *  @return 0; ZT_ESHUTDOWN when the actor has ended (or its reactor has); ZT_EFULL when its
 * mailbox is full (after the wait, for ZT_MAILBOX_BLOCK); ZT_ENOMEM
 */
ZT_EXPORT int zt_actor_tell(zt_actor_t *to, zt_msg_t msg);

/**
 *  Send a request and get the reply as a Deferred fired on reactor r (the asker's).
 *  @param r        the asker's reactor; the caller is on its thread
 *  @param msg      always taken: delivered, or freed with free_body when the ask fails at once
 *  @param timeout  seconds, on r's clock, after which the Deferred fails with ZT_TIMEOUT_ERROR;
 * 0 or less for no timeout. A reply arriving after that is dropped and counted.
 *  @return a new Deferred the caller owns. It fires with the reply; or fails with
 * ZT_ACTOR_STOPPED_ERROR when the actor stopped before replying, ZT_SYSTEM_ERROR (ZT_ESHUTDOWN,
 * ZT_EFULL, ZT_ENOMEM) when the message could not be sent, ZT_TIMEOUT_ERROR, or the actor's crash
 * failure. NULL only when out of memory for the Deferred itself.
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_actor_ask(zt_reactor_t *r, zt_actor_t *to, zt_msg_t msg,
                                                   double timeout);

/**
 *  Reply now to the ask the actor is handling; the handler's return value is then only released.
 * Inside the receive function (or its coroutine) only.
 *  @param reply  taken; released when the message was a tell or a reply was given already
 *  @return 0; ZT_ESTATE when the current message is not an ask or has its reply
 */
ZT_EXPORT int zt_actor_reply(zt_actor_t *self, zt_result_t reply);

/**
 *  Take the duty to reply to the current ask later, after the handler returns (the actor goes on
 * with its next message). Inside the receive function only.
 *  @return a handle the caller owns: pass it to zt_reply_send or zt_reply_destroy exactly once.
 * NULL when the current message is not an ask or has its reply.
 */
ZT_EXPORT ZT_NODISCARD zt_reply_t *zt_actor_defer_reply(zt_actor_t *self);

/**
 *  Send the reply through a handle and destroy it. Any thread: the reply travels to the asker's
 * reactor. A reply whose asker has gone (timed out, cancelled, its reactor destroyed) is released
 * and counted (zt_actor_dropped_replies).
 *  @param self_p  the handle; NULLed
 *  @param reply   taken
 */
ZT_EXPORT void zt_reply_send(zt_reply_t **self_p, zt_result_t reply);

/**
 *  Destroy a handle without replying: the asker gets ZT_ACTOR_STOPPED_ERROR "no reply". Any
 * thread. NULL does nothing.
 */
ZT_EXPORT void zt_reply_destroy(zt_reply_t **self_p);

/**
 *  Ask the actor to stop (Erlang's exit(Pid, shutdown)). Any thread. It stops after the message it
 * is handling, if any: its stopped hook runs, asks left in its mailbox fail with
 * ZT_ACTOR_STOPPED_ERROR, tells left are dead letters, and its monitors fire with no value. A
 * supervisor treats it as a normal exit.
 *  @return 0; ZT_ESHUTDOWN when it has ended already; ZT_ENOMEM
 */
ZT_EXPORT int zt_actor_stop(zt_actor_t *self);

/**
 *  Whether the actor is alive (spawned and not ended, or restarted). Any thread; a snapshot.
 */
ZT_EXPORT bool zt_actor_is_alive(const zt_actor_t *self);

/**
 *  A Deferred that fires when the actor ends (Erlang's monitor): with no value after a normal stop,
 * with a copy of the failure after a crash. On the actor's reactor thread. For an actor that has
 * ended it has fired already, the same way. A supervisor's restart ends one life: a monitor fires
 * once, for the life it was made in.
 *  @return a new Deferred the caller owns; NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_actor_monitor(zt_actor_t *self);

/**
 *  The reactor the actor lives on; borrowed, valid while the reactor lives. Any thread.
 */
ZT_EXPORT zt_reactor_t *zt_actor_reactor(const zt_actor_t *self);

/**
 *  Read an actor's counters. On the actor's reactor thread (depth may be read from any thread).
 */
ZT_EXPORT void zt_actor_stats(const zt_actor_t *self, zt_actor_stats_t *stats);

/** A visitor for zt_actor_foreach. */
typedef void zt_actor_visit_fn(zt_actor_t *actor, void *arg);

/**
 *  Call fn(actor, arg) for every live actor on reactor r, oldest first (the actor is borrowed for
 * the call; take a reference to keep it). fn must not spawn or stop actors. Reactor thread.
 *  @return how many actors were visited
 */
ZT_EXPORT size_t zt_actor_foreach(zt_reactor_t *r, zt_actor_visit_fn *fn, void *arg);

/**
 *  The messages freed unhandled (dead letters), process-wide, since start. Any thread.
 */
ZT_EXPORT uint64_t zt_actor_dead_letters(void);

/**
 *  The replies dropped because their asker had gone, process-wide, since start. Any thread.
 */
ZT_EXPORT uint64_t zt_actor_dropped_replies(void);

/**
 *  Register the actor under a name in the process-wide registry (Erlang's register). An actor has
 * at most one name; the name goes when the actor ends for good (not at a supervisor's restart).
 * Any thread.
 *  @param name  copied; at most 255 bytes
 *  @return 0; ZT_EALREADY when the name is taken or the actor has a name; ZT_ESHUTDOWN when the
 * actor has ended; ZT_EINVAL; ZT_ENOMEM
 */
ZT_EXPORT int zt_actor_register(zt_actor_t *self, const char *name);

/**
 *  Remove a name from the registry. Any thread.
 *  @return 0; ZT_ENOTFOUND
 */
ZT_EXPORT int zt_actor_unregister(const char *name);

/**
 *  Look a name up (Erlang's whereis). Any thread.
 *  @return a new reference the caller owns, or NULL when no actor has the name
 */
ZT_EXPORT ZT_NODISCARD zt_actor_t *zt_actor_whereis(const char *name);

#endif
