/*  runtime/test_clock.c - a manual clock for tests: time moves only when the test says so
 *
 *  The pending calls are a doubly linked list sorted by due time, ties by scheduling order. A test
 * clock holds few calls, so a list is simpler than a heap and costs nothing that matters: a new
 * call is inserted by walking back from the tail (most calls are due after every other one), and
 * the due calls are taken from the head.
 *
 *  A handle is the call's sequence number, not its address: a sequence number is never reused, so
 * cancelling a call that already ran or was cancelled is caught reliably (an assertion) instead of
 * touching freed memory or, worse, cancelling an unrelated call that reused the address.
 *
 *  A call is unlinked and freed before it runs, so it may schedule, cancel or advance freely: the
 * list is consistent whenever user code runs.  */
#include "base/base.h"

#include <ztwist/test_clock.h>

#include <stdlib.h>

typedef struct s_call s_call_t;

/* One pending call. */
struct s_call {
    double when;     /* the clock time at which it falls due */
    uint64_t id;     /* sequence number: orders ties, and is the handle */
    zt_clock_fn *fn; /* what to call */
    void *arg;       /* Borrowed: given to fn */
    s_call_t *prev;  /* the call due before, or NULL at the head */
    s_call_t *next;  /* the call due after, or NULL at the tail */
};

struct zt_test_clock {
    zt_clock_t iface; /* the clock interface; iface.self is this clock */
    double now;       /* the current time in seconds */
    s_call_t *head;   /* Owned: the earliest pending call, or NULL */
    s_call_t *tail;   /* Borrowed from the list: the latest pending call, or NULL */
    size_t pending;   /* number of calls in the list */
    uint64_t last_id; /* the sequence number of the latest call scheduled; 0 before any */
    int running;      /* how many calls are running right now (advance may nest) */
};

static void *
s_handle_of(uint64_t id)
{
    return (void *)(uintptr_t)id;
}

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
    self->pending--;
}

static double
s_seconds(void *self)
{
    return ((zt_test_clock_t *)self)->now;
}

static void *
s_call_later(void *self_, double delay, zt_clock_fn *fn, void *arg)
{
    zt_test_clock_t *self = self_;
    ZT_ASSERT(fn);
    s_call_t *call = calloc(1, sizeof *call);
    if (!call)
        return NULL;
    /* A negative delay, or NaN, counts as 0, as the interface says. */
    call->when = self->now + (delay > 0 ? delay : 0);
    call->id = ++self->last_id;
    call->fn = fn;
    call->arg = arg;
    /* Walk back from the tail past every call due strictly later: a tie goes after the calls
     * already scheduled for the same time. */
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
    return s_handle_of(call->id);
}

static void
s_cancel(void *self_, void *handle)
{
    zt_test_clock_t *self = self_;
    s_call_t *call = self->head;
    while (call && s_handle_of(call->id) != handle)
        call = call->next;
    ZT_ASSERT_MSG(call, "cancel of a test clock call that already ran or was cancelled");
    s_unlink(self, call);
    free(call);
}

zt_test_clock_t *
zt_test_clock_new(void)
{
    zt_test_clock_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->iface = (zt_clock_t){
        .self = self, .seconds = s_seconds, .call_later = s_call_later, .cancel = s_cancel};
    return self;
}

void
zt_test_clock_destroy(zt_test_clock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_test_clock_t *self = *self_p;
    ZT_ASSERT_MSG(self->running == 0, "a test clock destroyed from inside one of its calls");
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
        zt_clock_fn *fn = call->fn;
        void *arg = call->arg;
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
