/*  runtime/events.c - system events: Twisted's three-phase events (_ThreePhaseEvent)
 *
 *  An event has three lists of triggers: before, during, after. Firing it runs the before triggers
 * in order, each removed as it runs; the Deferreds they return (zt_wait_for) hold the next phase
 * until all have fired. Then the during triggers, then the after triggers, the same way (Twisted
 * waits only on the before phase; waiting on each phase lets a during-shutdown trigger, like a
 * pool's stop, hold the end of shutdown too). A trigger added to the phase that is running runs in
 * that firing; one added to a phase that is over waits for the next firing. Failures, returned or
 * from a Deferred, are logged with their origin and never stop the event.
 *
 *  A phase that waits keeps a wait group: one waiter per Deferred (holding a reference to it) and a
 * count of those not yet fired. The group moves the event on when the count reaches zero. When the
 * shutdown deadline passes, the waiting Deferreds are cancelled; a group that still waits after
 * that is abandoned (it frees itself when its Deferreds fire) and the event moves on. Reactor
 * thread only.  */
#include "runtime.h"
#include "runtime/extension.h"

#include <stdlib.h>
#include <string.h>

typedef struct s_trigger {
    zt_trigger_id_t id;     /* never 0 */
    zt_maybe_fn *fn;        /* a trigger's function, or NULL for a plain call */
    zt_reactor_fn *plain;   /* a call_when_running call, or NULL */
    void *arg;              /* Borrowed: the caller's */
    struct s_trigger *next; /* Owned: the next in its list */
} s_trigger_t;

typedef struct s_group s_group_t;

typedef struct s_waiter {
    s_group_t *group;      /* Borrowed: the group that owns this waiter */
    zt_deferred_t *d;      /* Owned reference until it fires; NULL after */
    zt_trigger_id_t id;    /* the trigger that returned d, for the log */
    struct s_waiter *next; /* Owned: the next waiter of the group */
} s_waiter_t;

struct s_group {
    zt__event_t *event;  /* Borrowed: the event it holds, or NULL once abandoned */
    size_t pending;      /* Deferreds not fired, + 1 while the phase's triggers are running */
    s_waiter_t *waiters; /* Owned: one per Deferred */
};

struct zt__event {
    char *name;                   /* Owned */
    zt_reactor_t *reactor;        /* Borrowed: the owner */
    s_trigger_t *head[3];         /* Owned: each phase's triggers, in order */
    s_trigger_t **tail[3];        /* where the next trigger of each phase goes */
    s_trigger_t *finished_before; /* Owned: before triggers that ran while the event still waits */
    bool firing;                  /* between fire and the end of the after phase */
    zt_event_phase_t phase;       /* the phase that runs or waits, while firing */
    s_group_t *group;             /* Owned: what the phase waits on, or NULL */
    uint64_t serial;              /* counts the phases run, to tell a phase from the next one */
    s_trigger_t *calling;         /* Borrowed: the before trigger being called, or NULL */
    bool calling_removed;         /* that trigger removed itself during its call */
    zt_reactor_fn *on_done;       /* internal: called with the reactor when the event is over */
    struct zt__event *next;       /* Owned: the next event */
};

static const char *s_phase_names[3] = {"before", "during", "after"};

static zt__event_t *
s_find(zt_reactor_t *r, const char *name)
{
    for (zt__event_t *ev = r->events; ev; ev = ev->next)
        if (strcmp(ev->name, name) == 0)
            return ev;
    return NULL;
}

static zt__event_t *
s_find_or_add(zt_reactor_t *r, const char *name)
{
    zt__event_t *ev = s_find(r, name);
    if (ev)
        return ev;
    ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    size_t len = strlen(name) + 1;
    ev->name = malloc(len);
    if (!ev->name) {
        free(ev);
        return NULL;
    }
    memcpy(ev->name, name, len);
    ev->reactor = r;
    for (int i = 0; i < 3; i++)
        ev->tail[i] = &ev->head[i];
    ev->next = r->events;
    r->events = ev;
    return ev;
}

static void
s_log_failure(const zt__event_t *ev, zt_event_phase_t phase, zt_trigger_id_t id,
              const zt_failure_t *f)
{
    char line[512];
    zt_failure_format(f, line, sizeof line);
    ZT_LOG_ERROR("system event trigger %llu (%s %s) failed: %s (%s:%d in %s)",
                 (unsigned long long)id, s_phase_names[phase], ev ? ev->name : "?", line,
                 zt_failure_file(f), zt_failure_line(f), zt_failure_func(f));
}

static void s_run_phase(zt__event_t *ev);

static void
s_group_free(s_group_t *g)
{
    while (g->waiters) {
        s_waiter_t *w = g->waiters;
        g->waiters = w->next;
        zt_deferred_unref(&w->d);
        free(w);
    }
    free(g);
}

/* The phase's triggers have all run and their Deferreds fired: go on. */
static void
s_phase_over(zt__event_t *ev)
{
    s_group_t *g = ev->group;
    ev->group = NULL;
    if (g)
        s_group_free(g);
    if (ev->phase == ZT_PHASE_BEFORE) {
        while (ev->finished_before) {
            s_trigger_t *t = ev->finished_before;
            ev->finished_before = t->next;
            free(t);
        }
    }
    if (ev->phase == ZT_PHASE_AFTER) {
        ev->firing = false;
        zt_reactor_fn *on_done = ev->on_done;
        ev->on_done = NULL;
        if (on_done)
            on_done(ev->reactor);
        return;
    }
    ev->phase = (zt_event_phase_t)(ev->phase + 1);
    s_run_phase(ev);
}

static void
s_group_settle(s_group_t *g)
{
    if (--g->pending > 0)
        return;
    if (g->event)
        s_phase_over(g->event);
    else
        s_group_free(g); /* abandoned: nobody waits any more */
}

static zt_result_t
s_waiter_fired(zt_result_t result, void *arg)
{
    s_waiter_t *w = arg;
    s_group_t *g = w->group;
    if (zt_is_err(result))
        s_log_failure(g->event, g->event ? g->event->phase : ZT_PHASE_BEFORE, w->id,
                      zt_result_failure(result));
    zt_result_release(&result);
    /* The Deferred is running this callback: dropping our reference now is allowed. */
    zt_deferred_unref(&w->d);
    s_group_settle(g);
    return zt_ok_none();
}

static void
s_call_trigger(zt__event_t *ev, s_group_t *g, s_trigger_t *t)
{
    zt_reactor_t *r = ev->reactor;
    int64_t t0 = zt_time_now_ns();
    if (t->plain) {
        t->plain(t->arg);
        zt__reactor_account(r, zt_time_now_ns() - t0, ZT__FN(t->plain));
        return;
    }
    zt_result_t result = t->fn(t->arg);
    zt__reactor_account(r, zt_time_now_ns() - t0, ZT__FN(t->fn));
    if (zt_is_err(result)) {
        s_log_failure(ev, ev->phase, t->id, zt_result_failure(result));
        zt_result_release(&result);
    } else if (result.kind == ZT_RESULT_DEFERRED) {
        s_waiter_t *w = calloc(1, sizeof *w);
        if (!w) {
            ZT_LOG_ERROR("out of memory: not waiting for trigger %llu", (unsigned long long)t->id);
            zt_result_release(&result);
            return;
        }
        *w = (s_waiter_t){.group = g, .d = result.ptr, .id = t->id, .next = g->waiters};
        g->waiters = w;
        g->pending++;
        if (zt_deferred_add_both(w->d, s_waiter_fired, w) != 0) {
            ZT_LOG_ERROR("out of memory: not waiting for trigger %llu", (unsigned long long)t->id);
            g->pending--;
        }
    } else {
        zt_result_release(&result);
    }
}

static void
s_run_phase(zt__event_t *ev)
{
    zt_reactor_t *r = ev->reactor;
    bool startup = strcmp(ev->name, "startup") == 0;
    bool shutdown = strcmp(ev->name, "shutdown") == 0;
    /* Twisted registers these as the first during triggers of the reactor's own events. */
    if (ev->phase == ZT_PHASE_DURING && startup && r->in_run)
        r->running = true;
    if (ev->phase == ZT_PHASE_DURING && shutdown && r->in_run)
        r->running = false;
    s_group_t *g = calloc(1, sizeof *g);
    ZT_ASSERT_MSG(g, "out of memory firing a system event");
    g->event = ev;
    g->pending = 1; /* the loop below */
    ev->group = g;
    ev->serial++;
    int phase = ev->phase;
    while (ev->head[phase]) {
        s_trigger_t *t = ev->head[phase];
        ev->head[phase] = t->next;
        if (!ev->head[phase])
            ev->tail[phase] = &ev->head[phase];
        t->next = NULL;
        if (phase != ZT_PHASE_BEFORE) {
            s_call_trigger(ev, g, t);
            free(t);
            continue;
        }
        /* As in Twisted, a before trigger counts as run (and stays removable while the event
         * waits) from the moment it is called; one that removes itself is freed after its call. */
        t->next = ev->finished_before;
        ev->finished_before = t;
        ev->calling = t;
        ev->calling_removed = false;
        s_call_trigger(ev, g, t);
        ev->calling = NULL;
        if (ev->calling_removed)
            free(t);
    }
    s_group_settle(g);
}

int
zt__events_fire(zt_reactor_t *r, const char *name, zt_reactor_fn *on_done)
{
    zt__event_t *ev = s_find_or_add(r, name);
    if (!ev)
        return ZT_ENOMEM;
    if (ev->firing)
        return ZT_ESTATE;
    ev->firing = true;
    ev->phase = ZT_PHASE_BEFORE;
    ev->on_done = on_done;
    s_run_phase(ev);
    return 0;
}

/* Cancel every Deferred the group still waits on. Cancelling fires callbacks that may free the
 * group, so the references are taken first. */
static void
s_cancel_waiters(s_group_t *g)
{
    size_t n = 0;
    for (s_waiter_t *w = g->waiters; w; w = w->next)
        n += w->d != NULL;
    zt_deferred_t **ds = n ? calloc(n, sizeof *ds) : NULL;
    if (!ds)
        return;
    size_t i = 0;
    for (s_waiter_t *w = g->waiters; w; w = w->next)
        if (w->d)
            ds[i++] = zt_deferred_ref(w->d);
    for (i = 0; i < n; i++) {
        zt_deferred_cancel(ds[i]);
        zt_deferred_unref(&ds[i]);
    }
    free(ds);
}

void
zt__events_cut_short(zt_reactor_t *r, const char *name)
{
    zt__event_t *ev = s_find(r, name);
    while (ev && ev->firing && ev->group) {
        s_group_t *g = ev->group;
        zt_event_phase_t phase = ev->phase;
        uint64_t serial = ev->serial;
        size_t waiting = g->pending;
        ZT_LOG_ERROR("%s event: the %s phase still waits on %zu Deferred(s) at the deadline; "
                     "cancelling them",
                     ev->name, s_phase_names[phase], waiting);
        s_cancel_waiters(g);
        if (ev->serial == serial && ev->firing) {
            /* A canceller kept it waiting: abandon the group and move on. */
            ZT_LOG_ERROR("%s event: abandoning the %s phase's Deferreds", ev->name,
                         s_phase_names[phase]);
            g->event = NULL;
            ev->group = NULL;
            s_phase_over(ev);
        }
    }
}

void
zt__events_destroy(zt_reactor_t *r)
{
    while (r->events) {
        zt__event_t *ev = r->events;
        r->events = ev->next;
        if (ev->group) {
            /* Still waiting: the Deferreds must not call back into freed memory. */
            ev->on_done = NULL;
            ev->group->event = NULL;
            s_group_t *g = ev->group;
            ev->group = NULL;
            size_t waiting = g->pending;
            ZT_LOG_WARNING("reactor destroyed while event %s waits on %zu Deferred(s): "
                           "cancelling them",
                           ev->name, waiting);
            s_cancel_waiters(g); /* the group frees itself once they have all fired */
        }
        for (int i = 0; i < 3; i++) {
            while (ev->head[i]) {
                s_trigger_t *t = ev->head[i];
                ev->head[i] = t->next;
                free(t);
            }
        }
        while (ev->finished_before) {
            s_trigger_t *t = ev->finished_before;
            ev->finished_before = t->next;
            free(t);
        }
        free(ev->name);
        free(ev);
    }
}

static int
s_add(zt_reactor_t *r, zt_event_phase_t phase, const char *event, zt_maybe_fn *fn,
      zt_reactor_fn *plain, void *arg, zt_trigger_id_t *id_p)
{
    zt__event_t *ev = s_find_or_add(r, event);
    s_trigger_t *t = ev ? calloc(1, sizeof *t) : NULL;
    if (!t)
        return ZT_ENOMEM;
    *t = (s_trigger_t){.id = ++r->next_trigger_id, .fn = fn, .plain = plain, .arg = arg};
    *ev->tail[phase] = t;
    ev->tail[phase] = &t->next;
    if (id_p)
        *id_p = t->id;
    return 0;
}

int
zt_reactor_add_system_event_trigger(zt_reactor_t *self, zt_event_phase_t phase, const char *event,
                                    zt_maybe_fn *fn, void *arg, zt_trigger_id_t *id_p)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (!fn || !event || (int)phase < ZT_PHASE_BEFORE || phase > ZT_PHASE_AFTER)
        return ZT_EINVAL;
    return s_add(self, phase, event, fn, NULL, arg, id_p);
}

int
zt_reactor_call_when_running(zt_reactor_t *self, zt_reactor_fn *fn, void *arg,
                             zt_trigger_id_t *id_p)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (!fn)
        return ZT_EINVAL;
    if (self->running) {
        if (id_p)
            *id_p = 0;
        int64_t t0 = zt_time_now_ns();
        fn(arg);
        zt__reactor_account(self, zt_time_now_ns() - t0, ZT__FN(fn));
        return 0;
    }
    return s_add(self, ZT_PHASE_AFTER, "startup", NULL, fn, arg, id_p);
}

int
zt_reactor_remove_system_event_trigger(zt_reactor_t *self, zt_trigger_id_t id)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    for (zt__event_t *ev = self->events; ev; ev = ev->next) {
        for (int i = 0; i < 3; i++) {
            for (s_trigger_t **pp = &ev->head[i]; *pp; pp = &(*pp)->next) {
                if ((*pp)->id != id)
                    continue;
                s_trigger_t *t = *pp;
                *pp = t->next;
                if (ev->tail[i] == &t->next)
                    ev->tail[i] = pp;
                free(t);
                return 0;
            }
        }
        for (s_trigger_t **pp = &ev->finished_before; *pp; pp = &(*pp)->next) {
            if ((*pp)->id == id) {
                s_trigger_t *t = *pp;
                *pp = t->next;
                if (t == ev->calling)
                    ev->calling_removed = true; /* s_run_phase frees it after the call */
                else
                    free(t);
                return 0;
            }
        }
    }
    return ZT_ENOTFOUND;
}

int
zt_reactor_fire_system_event(zt_reactor_t *self, const char *event)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (!event)
        return ZT_EINVAL;
    return zt__events_fire(self, event, NULL);
}

double
zt__reactor_shutdown_left(const zt_reactor_t *r, double fallback)
{
    ZT_ASSERT(r);
    if (!r->shutdown_started || r->loop_exit || r->ran)
        return fallback; /* not firing run's shutdown event (before it, or after it) */
    if (!r->shutdown_deadline)
        return 0; /* passed, or the shutdown is over */
    double left = zt_delayed_call_get_time(r->shutdown_deadline) - zt_reactor_seconds(r);
    return left > 0 ? left : 0;
}

bool
zt__reactor_is_shut_down(const zt_reactor_t *r)
{
    ZT_ASSERT(r);
    return r->ran || (r->shutdown_started && !r->running);
}
