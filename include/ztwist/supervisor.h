/*  ztwist/supervisor.h - supervisors as in Erlang/OTP: restart children, give up past an intensity
 *
 *  A supervisor is an actor that starts its children in order (all on its own reactor), watches
 * them, and restarts a child that ended -- in place, so references to it stay valid -- according
 * to its strategy and the child's restart type:
 *    - ZT_ONE_FOR_ONE: only the child that ended is restarted;
 *    - ZT_ONE_FOR_ALL: the other children are stopped (newest first), then all are restarted;
 *    - ZT_REST_FOR_ONE: the children started after it are stopped (newest first), then it and
 * they are restarted in order.
 *  Restart intensity: when more than `intensity` restarts happen within `period` seconds of the
 * reactor's clock (so a test-clock reactor makes this testable without waiting), the supervisor
 * stops every child (newest first) and ends itself with a failure, "reached its maximum restart
 * intensity": its own monitors and its own supervisor decide what follows. A supervisor's children
 * may be supervisors, so trees are built from specs.
 *
 *  Threads: every function here is for the thread of the reactor named in the call.  */
#ifndef ZTWIST_SUPERVISOR_H
#define ZTWIST_SUPERVISOR_H

#include <ztwist/actor.h>

/** How a supervisor restarts its children. */
typedef enum zt_sup_strategy {
    ZT_ONE_FOR_ONE = 0, /* restart the child that ended */
    ZT_ONE_FOR_ALL = 1, /* stop the others, restart all */
    ZT_REST_FOR_ONE = 2 /* stop those started after it, restart it and them */
} zt_sup_strategy_t;

/** When a child is restarted. */
typedef enum zt_restart {
    ZT_RESTART_PERMANENT = 0, /* always */
    ZT_RESTART_TRANSIENT = 1, /* only after a crash (an end with a failure) */
    ZT_RESTART_TEMPORARY = 2  /* never */
} zt_restart_t;

/** A child: how to make it (as for zt_actor_spawn), and when to restart it. */
typedef struct zt_child_spec {
    zt_actor_spec_t actor; /* the child's spec; copied */
    zt_restart_t restart;  /* when it is restarted */
    /** Make the child another way (a supervisor, for a tree): spawn it on r and return it in
     * *ref_p; NULL means zt_actor_spawn(r, &actor, ref_p). A restart of such a child starts it
     * again in place, as any other. */
    int (*spawn)(zt_reactor_t *r, const struct zt_child_spec *spec, zt_actor_t **ref_p);
    void *spawn_arg; /* for spawn; Borrowed */
} zt_child_spec_t;

/** A supervisor: strategy, intensity, and its children in start order. */
typedef struct zt_supervisor_spec {
    zt_sup_strategy_t strategy;      /* how children are restarted */
    uint32_t intensity;              /* at most this many restarts ... */
    double period;                   /* ... within this many seconds; 0 or less means 5 */
    const zt_child_spec_t *children; /* the children, copied; Borrowed during the call */
    size_t nchildren;                /* how many */
} zt_supervisor_spec_t;

/**
 *  Spawn a supervisor on r and start its children in order.
 *  @param ref_p  NULL, or receives a new reference to the supervisor's actor (the caller owns it)
 *  @return 0; ZT_EINVAL (a child without receive and spawn); ZT_ENOMEM; or the code of the first
 * child that failed to start (the ones started before it are stopped, newest first)
 */
ZT_EXPORT int zt_supervisor_spawn(zt_reactor_t *r, const zt_supervisor_spec_t *spec,
                                  zt_actor_t **ref_p);

/**
 *  A supervisor's child by start index.
 *  @return a new reference the caller owns (the same address across restarts); NULL when index is
 * out of range or sup is not a live supervisor
 */
ZT_EXPORT ZT_NODISCARD zt_actor_t *zt_supervisor_child(zt_actor_t *sup, size_t index);

/**
 *  The restarts a supervisor has made (each strategy's reaction to one end counts once).
 */
ZT_EXPORT uint64_t zt_supervisor_restarts(zt_actor_t *sup);

#endif
