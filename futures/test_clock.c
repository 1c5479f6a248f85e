/*  futures/test_clock.c - a manual clock for tests: time moves only when the test says so
 *
 *  The pending calls are a doubly linked list sorted by due time, ties by scheduling order. A test
 * clock holds few calls, so a list is simpler than a heap and costs nothing that matters: a new
 * call is inserted by walking back from the tail (most calls are due after every other one), and
 * the due calls are taken from the head. Reset and delay unlink the call and insert it again, so
 * it orders after the calls already scheduled for its new time, as on the reactor.
 *
 *  A call is an object that starts with a pointer to this clock's interface (the zt_delayed_call_t
 * contract of <ztwist/clock.h>). It lives while it is pending or a handle holds it: a call that
 * ran or was cancelled and has no handle is freed at once; one with a handle is freed when the
 * handle is released. A handle therefore answers is_active, and refuses a second cancel, for as
 * long as it is held.
 *
 *  A due call is unlinked, and freed when nothing holds it, before it runs, so it may schedule,
 * cancel, advance or release its own handle freely: the list is consistent whenever user code
 * runs, and nothing here touches the call after it ran.  */
#include "base/base.h"

#include <ztwist/test_clock.h>

#include <math.h>
#include <stdlib.h>

typedef struct s_call s_call_t;

/* One call, pending or held by a handle. */
struct s_call {
    const zt_clock_t *clock; /* Borrowed: this clock's interface; first, for futures/clock.c */
    double when;             /* the clock time at which it falls due */
    zt_clock_fn *fn;         /* what to call */
    void *arg;               /* Borrowed: given to fn */
    zt_delayed_call_state_t state; /* pending, called or cancelled */
    bool held;                     /* a zt_delayed_call_t handle is outstanding */
    s_call_t *prev;                /* while pending: the call due before, or NULL at the head */
    s_call_t *next;                /* while pending: the call due after, or NULL at the tail */
};

struct zt_test_clock {
    zt_clock_t iface; /* the clock interface; iface.self is this clock */
    double now;       /* the current time in seconds */
    s_call_t *head;   /* Owned: the earliest pending call, or NULL */
    s_call_t *tail;   /* Borrowed from the list: the latest pending call, or NULL */
    size_t pending;   /* number of calls in the list */
    size_t held;      /* handles outstanding */
    int running;      /* how many calls are running right now (advance may nest) */
};

static void
s_unlink(zt_test_clock_t *self, s_call_t *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        self->head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else
        self->tail = call->prev;
    call->prev = call->next = NULL;
    self->pending--;
}

/* Insert a call at its time: after every call due at or before it. */
static void
s_insert(zt_test_clock_t *self, s_call_t *call)
{
    s_call_t *before = self->tail;
    while (before && before->when > call->when)
        before = before->prev;
    call->prev = before;
    call->next = before ? before->next : self->head;
    if (call->next)
        call->next->prev = call;
    else
        self->tail = call;
    if (before)
        before->next = call;
    else
        self->head = call;
    self->pending++;
}

static s_call_t *
s_call(zt_test_clock_t *self, const zt_delayed_call_t *handle)
{
    ZT_ASSERT(handle);
    s_call_t *call = (s_call_t *)(uintptr_t)handle;
    ZT_ASSERT_MSG(call->clock == &self->iface && call->held,
                  "a delayed call handle used after it was released");
    return call;
}

static double
s_seconds(void *self)
{
    return ((zt_test_clock_t *)self)->now;
}

static int
s_call_later(void *self_, double delay, zt_clock_fn *fn, void *arg, zt_delayed_call_t **call_p)
{
    zt_test_clock_t *self = self_;
    if (!fn || isnan(delay))
        return ZT_EINVAL;
    s_call_t *call = calloc(1, sizeof *call);
    if (!call)
        return ZT_ENOMEM;
    *call = (s_call_t){.clock = &self->iface,
                       .when = self->now + (delay > 0 ? delay : 0),
                       .fn = fn,
                       .arg = arg,
                       .state = ZT_DELAYED_CALL_PENDING,
                       .held = call_p != NULL};
    s_insert(self, call);
    if (call_p) {
        self->held++;
        *call_p = (zt_delayed_call_t *)(void *)call;
    }
    return 0;
}

static int
s_check_pending(const s_call_t *call)
{
    if (call->state == ZT_DELAYED_CALL_CALLED)
        return ZT_EALREADY;
    if (call->state == ZT_DELAYED_CALL_CANCELLED)
        return ZT_ECANCELLED;
    return 0;
}

static int
s_cancel(void *self_, zt_delayed_call_t *handle)
{
    zt_test_clock_t *self = self_;
    s_call_t *call = s_call(self, handle);
    int rc = s_check_pending(call);
    if (rc != 0)
        return rc;
    s_unlink(self, call);
    call->state = ZT_DELAYED_CALL_CANCELLED;
    return 0;
}

/* Move a pending call to when; it orders after the calls already due then. */
static int
s_move(zt_test_clock_t *self, zt_delayed_call_t *handle, double seconds, bool from_now)
{
    s_call_t *call = s_call(self, handle);
    int rc = s_check_pending(call);
    if (rc != 0)
        return rc;
    if (isnan(seconds))
        return ZT_EINVAL;
    s_unlink(self, call);
    call->when = from_now ? self->now + (seconds > 0 ? seconds : 0) : call->when + seconds;
    s_insert(self, call);
    return 0;
}

static int
s_reset(void *self, zt_delayed_call_t *handle, double seconds)
{
    return s_move(self, handle, seconds, true);
}

static int
s_delay(void *self, zt_delayed_call_t *handle, double seconds)
{
    return s_move(self, handle, seconds, false);
}

static double
s_get_time(void *self, const zt_delayed_call_t *handle)
{
    return s_call(self, handle)->when;
}

static zt_delayed_call_state_t
s_state(void *self, const zt_delayed_call_t *handle)
{
    return s_call(self, handle)->state;
}

static void
s_release(void *self_, zt_delayed_call_t *handle)
{
    zt_test_clock_t *self = self_;
    s_call_t *call = s_call(self, handle);
    call->held = false;
    self->held--;
    if (call->state != ZT_DELAYED_CALL_PENDING)
        free(call);
}

static size_t
s_delayed_calls(void *self_, double *times, size_t max)
{
    zt_test_clock_t *self = self_;
    size_t i = 0;
    for (const s_call_t *call = self->head; call && i < max; call = call->next)
        times[i++] = call->when;
    return self->pending;
}

zt_test_clock_t *
zt_test_clock_new(void)
{
    zt_test_clock_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->iface = (zt_clock_t){.self = self,
                               .seconds = s_seconds,
                               .call_later = s_call_later,
                               .cancel = s_cancel,
                               .reset = s_reset,
                               .delay = s_delay,
                               .get_time = s_get_time,
                               .state = s_state,
                               .release = s_release,
                               .delayed_calls = s_delayed_calls};
    return self;
}

void
zt_test_clock_destroy(zt_test_clock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_test_clock_t *self = *self_p;
    ZT_ASSERT_MSG(self->running == 0, "a test clock destroyed from inside one of its calls");
    ZT_ASSERT_MSG(self->held == 0,
                  "release every zt_delayed_call_t handle before destroying its test clock");
    while (self->head) {
        s_call_t *call = self->head;
        self->head = call->next;
        free(call);
    }
    free(self);
    *self_p = NULL;
}

const zt_clock_t *
zt_test_clock_clock(zt_test_clock_t *self)
{
    ZT_ASSERT(self);
    return &self->iface;
}

double
zt_test_clock_seconds(const zt_test_clock_t *self)
{
    ZT_ASSERT(self);
    return self->now;
}

int
zt_test_clock_advance(zt_test_clock_t *self, double seconds)
{
    ZT_ASSERT(self);
    if (!(seconds >= 0))
        return ZT_EINVAL;
    self->now += seconds;
    /* Take one due call at a time from the head: a call may schedule, cancel or advance, so the
     * list is re-read after each. */
    while (self->head && self->head->when <= self->now) {
        s_call_t *call = self->head;
        s_unlink(self, call);
        call->state = ZT_DELAYED_CALL_CALLED;
        zt_clock_fn *fn = call->fn;
        void *arg = call->arg;
        if (!call->held)
            free(call);
        self->running++;
        fn(arg);
        self->running--;
    }
    return 0;
}

int
zt_test_clock_pump(zt_test_clock_t *self, const double *steps, size_t count)
{
    ZT_ASSERT(self);
    ZT_ASSERT(steps || count == 0);
    for (size_t i = 0; i < count; i++)
        if (!(steps[i] >= 0))
            return ZT_EINVAL;
    for (size_t i = 0; i < count; i++)
        zt_test_clock_advance(self, steps[i]);
    return 0;
}

size_t
zt_test_clock_pending(const zt_test_clock_t *self)
{
    ZT_ASSERT(self);
    return self->pending;
}

bool
zt_test_clock_next_due(const zt_test_clock_t *self, double *when)
{
    ZT_ASSERT(self);
    if (!self->head)
        return false;
    if (when)
        *when = self->head->when;
    return true;
}
