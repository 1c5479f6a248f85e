/*  actors/supervisor.c - supervisors: restart strategies and restart intensity, as in Erlang/OTP
 *
 *  A supervisor is an actor whose state (zt__sup_t) outlives each of its lives: the actor owns it
 * (free_arg), its started hook starts the children in order and its stopped hook stops them newest
 * first. A child's end reaches the supervisor synchronously, on the reactor thread, from inside
 * the child's end (actor.c), so a child is restarted before anything else runs and no message
 * finds it ended in between. While the supervisor stops children itself (strategy, intensity,
 * its own end) it marks them sup_stopping so their ends are not taken for new exits.  */
#include "actor_impl.h"

#include <stdlib.h>
#include <string.h>

struct zt__sup {
    zt_actor_t *self;           /* Borrowed: the supervisor's actor (it owns this record) */
    zt_sup_strategy_t strategy; /* how children are restarted */
    uint32_t intensity;         /* restarts allowed ... */
    double period;              /* ... within this many seconds */
    zt_child_spec_t *specs;     /* Owned: the children's specs */
    zt_actor_t **kids;          /* Owned references: the children of this life, or NULL */
    size_t n;                   /* children */
    double *stamps;             /* Owned: times of recent restarts, intensity + 1 of them */
    size_t nstamps;             /* stamps in use */
    uint64_t restarts;          /* restarts made */
    bool failing;               /* ending itself: ignore children's ends */
};

static zt_result_t
s_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    (void)self, (void)state, (void)msg;
    return zt_ok_none(); /* a supervisor takes no requests yet: its children do the work */
}

/* Stop children [from, to) newest first, as the supervisor's own act. */
static void
s_stop_range(zt__sup_t *sup, size_t from, size_t to, size_t except)
{
    for (size_t i = to; i-- > from;) {
        zt_actor_t *kid = sup->kids[i];
        if (i == except || !zt_actor_is_alive(kid))
            continue;
        kid->sup_stopping = true;
        zt__actor_end(kid, NULL);
        kid->sup_stopping = false;
        /* busy: it ends when its handler returns, and is restarted then, uncounted */
        kid->sup_restart = zt_actor_is_alive(kid);
    }
}

static int
s_revive_range(zt__sup_t *sup, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        zt_actor_t *kid = sup->kids[i];
        if (zt_actor_is_alive(kid) || sup->specs[i].restart == ZT_RESTART_TEMPORARY)
            continue;
        int rc = zt__actor_revive(kid);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void
s_stop_kids(zt__sup_t *sup)
{
    if (!sup->kids)
        return;
    s_stop_range(sup, 0, sup->n, SIZE_MAX);
    for (size_t i = sup->n; i-- > 0;) {
        sup->kids[i]->sup = NULL;
        zt_actor_unref(&sup->kids[i]);
    }
    free(sup->kids);
    sup->kids = NULL;
}

static int
s_started(zt_actor_t *self, void *arg, void **state_p)
{
    zt__sup_t *sup = arg;
    *state_p = sup;
    sup->self = self;
    sup->failing = false;
    sup->nstamps = 0;
    sup->kids = calloc(sup->n ? sup->n : 1, sizeof *sup->kids);
    if (!sup->kids)
        return ZT_ENOMEM;
    zt_reactor_t *r = zt_actor_reactor(self);
    for (size_t i = 0; i < sup->n; i++) {
        const zt_child_spec_t *c = &sup->specs[i];
        int rc =
            c->spawn ? c->spawn(r, c, &sup->kids[i]) : zt_actor_spawn(r, &c->actor, &sup->kids[i]);
        if (rc < 0) {
            size_t n = sup->n;
            sup->n = i; /* stop those started, then put the count back */
            s_stop_kids(sup);
            sup->n = n;
            return rc;
        }
        sup->kids[i]->sup = sup;
    }
    return 0;
}

static void
s_stopped(zt_actor_t *self, void *state, void *arg)
{
    (void)self, (void)arg;
    s_stop_kids(state);
}

static void
s_sup_free(void *arg)
{
    zt__sup_t *sup = arg;
    free(sup->specs);
    free(sup->stamps);
    free(sup);
}

/* Count a restart now; false when it exceeds the intensity. */
static bool
s_note_restart(zt__sup_t *sup)
{
    double now = zt_reactor_seconds(zt_actor_reactor(sup->self));
    size_t keep = 0;
    for (size_t i = 0; i < sup->nstamps; i++)
        if (sup->stamps[i] > now - sup->period)
            sup->stamps[keep++] = sup->stamps[i];
    sup->nstamps = keep;
    if (sup->nstamps >= sup->intensity)
        return false;
    sup->stamps[sup->nstamps++] = now;
    return true;
}

static void
s_fail(zt__sup_t *sup, const char *why)
{
    sup->failing = true;
    zt__actor_end(sup->self, zt_failure_new(ZT_ERROR, "supervisor %s (%u restarts in %g s)", why,
                                            (unsigned)sup->intensity, sup->period));
}

void
zt__sup_child_ended(zt__sup_t *sup, zt_actor_t *child, const zt_failure_t *reason)
{
    if (sup->failing || !zt_actor_is_alive(sup->self) || !sup->kids || child->sched->closing)
        return;               /* at the reactor's destroy nothing is restarted */
    if (child->sup_restart) { /* the end of a stop this supervisor made: restart it now */
        child->sup_restart = false;
        if (zt__actor_revive(child) < 0)
            s_fail(sup, "could not restart a child");
        return;
    }
    size_t idx = 0;
    while (idx < sup->n && sup->kids[idx] != child)
        idx++;
    if (idx == sup->n)
        return;
    zt_restart_t type = sup->specs[idx].restart;
    if (type == ZT_RESTART_TEMPORARY || (type == ZT_RESTART_TRANSIENT && !reason))
        return;
    if (!s_note_restart(sup)) {
        s_fail(sup, "reached its maximum restart intensity");
        return;
    }
    sup->restarts++;
    int rc;
    if (sup->strategy == ZT_ONE_FOR_ALL) {
        s_stop_range(sup, 0, sup->n, idx);
        rc = s_revive_range(sup, 0, sup->n);
    } else if (sup->strategy == ZT_REST_FOR_ONE) {
        s_stop_range(sup, idx + 1, sup->n, SIZE_MAX);
        rc = s_revive_range(sup, idx, sup->n);
    } else {
        rc = zt__actor_revive(child);
    }
    if (rc < 0)
        s_fail(sup, "could not restart a child");
}

int
zt_supervisor_spawn(zt_reactor_t *r, const zt_supervisor_spec_t *spec, zt_actor_t **ref_p)
{
    ZT_ASSERT(r && spec);
    for (size_t i = 0; i < spec->nchildren; i++)
        if (!spec->children[i].spawn && !spec->children[i].actor.receive)
            return ZT_EINVAL;
    zt__sup_t *sup = calloc(1, sizeof *sup);
    if (!sup)
        return ZT_ENOMEM;
    sup->strategy = spec->strategy;
    sup->intensity = spec->intensity;
    sup->period = spec->period > 0 ? spec->period : 5.0;
    sup->n = spec->nchildren;
    sup->specs = calloc(sup->n ? sup->n : 1, sizeof *sup->specs);
    sup->stamps = calloc((size_t)sup->intensity + 1, sizeof *sup->stamps);
    if (!sup->specs || !sup->stamps) {
        s_sup_free(sup);
        return ZT_ENOMEM;
    }
    if (sup->n)
        memcpy(sup->specs, spec->children, sup->n * sizeof *sup->specs);
    zt_actor_spec_t as = {
        .receive = s_receive, .started = s_started, .stopped = s_stopped, .arg = sup};
    zt_actor_t *self = NULL;
    int rc = zt_actor_spawn(r, &as, &self);
    if (rc < 0) {
        s_sup_free(sup);
        return rc;
    }
    self->free_arg = s_sup_free;
    if (ref_p)
        *ref_p = self;
    else
        zt_actor_unref(&self);
    return 0;
}

static zt__sup_t *
s_sup_of(zt_actor_t *a)
{
    return a->spec.receive == s_receive ? a->spec.arg : NULL;
}

zt_actor_t *
zt_supervisor_child(zt_actor_t *sup_actor, size_t index)
{
    ZT_ASSERT(sup_actor);
    zt__sup_t *sup = s_sup_of(sup_actor);
    if (!sup || !sup->kids || index >= sup->n)
        return NULL;
    return zt_actor_ref(sup->kids[index]);
}

uint64_t
zt_supervisor_restarts(zt_actor_t *sup_actor)
{
    ZT_ASSERT(sup_actor);
    zt__sup_t *sup = s_sup_of(sup_actor);
    return sup ? sup->restarts : 0;
}
