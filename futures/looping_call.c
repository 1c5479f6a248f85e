/*  futures/looping_call.c - call a function every interval seconds (Twisted's task.LoopingCall)
 *
 *  Design notes.
 *  - States. Idle: not running, no start Deferred. Running: `running`, and `deferred` holds the
 *    start Deferred; exactly one of these is true: a timer is pending (`call`), fn is being called
 *    (`in_fn`), or fn's Deferred is pending (`waiting`). Stopped-but-busy: stop came while fn was
 *    called or its Deferred pending; `deferred` is still held and fires when that call completes.
 *  - The start Deferred fires exactly once: whoever fires it first takes it out of `deferred`.
 *    Firing it runs user code that may stop, restart or destroy the loop, so firing it is always
 *    the last thing a function here does with self.
 *  - Waiting on fn's Deferred d: our links are on a Deferred of our own, `waiting`, which d fires
 *    through zt_deferred_chain_deferred. d may outlive the loop; when the loop is destroyed first,
 *    `waiting` is cancelled (its links run then, while self is still valid, and do nothing), and
 *    the cancelled Deferred swallows d's later fire. No link of ours ever runs on a freed loop.
 *  - Timing. Calls are due at start + k * interval, k an integer "index". The index of a call is
 *    the later of the index it was scheduled for and the number of whole intervals elapsed when it
 *    runs, so a late call counts the intervals it missed, and rounding can never make a count 0.
 *    The next call gets the first index still in the future, and always a larger one than the
 *    last, so missed calls are skipped, never made in a burst. Indices are doubles: exact to 2^53.
 */
#include "base/base.h"

#include <ztwist/looping_call.h>

#include <math.h>
#include <stdlib.h>

struct zt_looping_call {
    const zt_clock_t *clock; /* Borrowed: where the calls are scheduled */
    zt_maybe_fn *fn;         /* the function called each interval */
    void *arg;               /* Borrowed: given to fn */
    double interval;         /* seconds between calls, from the latest start */
    double start_time;       /* clock time of the latest start (or reset): index 0 */
    double last_index;       /* the index of the latest call of fn */
    double next_index;       /* the index of the pending call */
    zt_delayed_call_t *call; /* Owned: the handle of the pending call, or NULL */
    zt_deferred_t *deferred; /* Owned reference: the start Deferred until it fires, else NULL */
    zt_deferred_t *waiting;  /* Owned reference: ours, fired by fn's Deferred; NULL if none */
    uint64_t count;          /* intervals elapsed at the latest call (withCount's count) */
    uint64_t missed;         /* calls skipped since the latest start */
    bool running;            /* between start and stop (or fn's failure) */
    bool in_fn;              /* fn is being called */
    bool destroying;         /* destroy is under way: links still to run must do nothing */
};

static void s_on_timer(void *arg);

static uint64_t
s_to_count(double intervals)
{
    if (!(intervals >= 1))
        return 1;
    if (intervals >= 18446744073709551615.0)
        return UINT64_MAX;
    return (uint64_t)intervals;
}

/* Fire the start Deferred with no value. The last use of self. */
static void
s_fire_stopped(zt_looping_call_t *self)
{
    zt_deferred_t *d = self->deferred;
    self->deferred = NULL;
    zt_deferred_callback(d, zt_ok_none());
    zt_deferred_unref(&d);
}

/* Stop the loop and fail the start Deferred with failure (taken over). The last use of self. */
static void
s_fail(zt_looping_call_t *self, zt_failure_t *failure)
{
    self->running = false;
    zt_deferred_t *d = self->deferred;
    self->deferred = NULL;
    zt_deferred_errback(d, failure);
    zt_deferred_unref(&d);
}

/* Schedule the next call after a call that completed at clock time `when`. 0 or ZT_ENOMEM. */
static int
s_schedule(zt_looping_call_t *self, double when)
{
    double delay = 0;
    if (self->interval > 0) {
        double index = floor((when - self->start_time) / self->interval) + 1;
        if (index <= self->last_index)
            index = self->last_index + 1;
        self->next_index = index;
        delay = self->start_time + index * self->interval - when;
    }
    return zt_clock_call_later(self->clock, delay, s_on_timer, self, &self->call) == 0 ? 0
                                                                                       : ZT_ENOMEM;
}

/* A call of fn completed without failure (at once, or when its Deferred fired). May be the last
 * use of self. */
static void
s_iteration_done(zt_looping_call_t *self)
{
    if (!self->running) {
        s_fire_stopped(self);
        return;
    }
    if (s_schedule(self, zt_clock_seconds(self->clock)) < 0)
        s_fail(self, zt_failure_from_code(ZT_ENOMEM, "LoopingCall could not schedule its call"));
}

static zt_result_t
s_on_waited(zt_result_t result, void *arg)
{
    zt_looping_call_t *self = arg;
    if (self->destroying) {
        zt_result_release(&result);
        return zt_ok_none();
    }
    /* Dropping our reference from inside its own link is allowed: the chain finishes first. */
    zt_deferred_unref(&self->waiting);
    if (zt_is_err(result))
        s_fail(self, zt_result_failure(result));
    else {
        zt_result_release(&result);
        s_iteration_done(self);
    }
    return zt_ok_none();
}

/* fn returned zt_wait_for(d) (d's reference is taken over): go on when d fires. May be the last
 * use of self. */
static void
s_wait(zt_looping_call_t *self, zt_deferred_t *d)
{
    if (!d) {
        /* zt_wait_for(NULL): the Deferred's constructor ran out of memory. */
        s_fail(self, zt_failure_from_code(ZT_ENOMEM, "fn returned zt_wait_for(NULL)"));
        return;
    }
    zt_deferred_t *waiting = zt_deferred_new();
    if (!waiting || zt_deferred_add_both(waiting, s_on_waited, self) < 0) {
        zt_deferred_unref(&waiting);
        zt_deferred_unref(&d);
        s_fail(self, zt_failure_from_code(ZT_ENOMEM, "LoopingCall could not wait for fn"));
        return;
    }
    self->waiting = waiting;
    /* When d has fired already, our link runs inside this call, so self is not used after it. */
    if (zt_deferred_chain_deferred(d, waiting) < 0) {
        self->waiting = NULL;
        zt_deferred_unref(&waiting); /* frees our link unrun */
        zt_deferred_unref(&d);
        s_fail(self, zt_failure_from_code(ZT_ENOMEM, "LoopingCall could not wait for fn"));
        return;
    }
    zt_deferred_unref(&d);
}

/* Call fn now. May be the last use of self. */
static void
s_call(zt_looping_call_t *self)
{
    if (self->interval > 0) {
        double index = floor((zt_clock_seconds(self->clock) - self->start_time) / self->interval);
        if (index < self->next_index)
            index = self->next_index;
        self->count = s_to_count(index - self->last_index);
        self->last_index = index;
    } else
        self->count = 1;
    self->missed += self->count - 1;

    self->in_fn = true;
    zt_result_t result = self->fn(self->arg);
    self->in_fn = false;
    if (result.kind == ZT_RESULT_DEFERRED)
        s_wait(self, result.ptr);
    else if (zt_is_err(result))
        s_fail(self, zt_result_failure(result));
    else {
        zt_result_release(&result);
        s_iteration_done(self);
    }
}

static void
s_on_timer(void *arg)
{
    zt_looping_call_t *self = arg;
    zt_delayed_call_release(&self->call); /* the handle is spent */
    s_call(self);
}

zt_looping_call_t *
zt_looping_call_new(const zt_clock_t *clock, zt_maybe_fn *fn, void *arg)
{
    ZT_ASSERT(clock);
    ZT_ASSERT(fn);
    zt_looping_call_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->clock = clock;
    self->fn = fn;
    self->arg = arg;
    return self;
}

void
zt_looping_call_destroy(zt_looping_call_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_looping_call_t *self = *self_p;
    ZT_ASSERT_MSG(!self->in_fn, "a LoopingCall destroyed from inside its own fn");
    ZT_ASSERT_MSG(!self->destroying, "a LoopingCall destroyed twice");
    *self_p = NULL;
    self->destroying = true;
    self->running = false;
    if (self->call) {
        zt_delayed_call_cancel(self->call);
        zt_delayed_call_release(&self->call);
    }
    if (self->waiting) {
        /* Our link runs now and does nothing; fn's Deferred keeps the cancelled one until it
         * fires, and that fire is swallowed. */
        zt_deferred_cancel(self->waiting);
        zt_deferred_unref(&self->waiting);
    }
    if (self->deferred)
        s_fire_stopped(self); /* its callbacks see a stopped loop; start is refused */
    free(self);
}

int
zt_looping_call_start(zt_looping_call_t *self, double interval, bool now,
                      zt_deferred_t **deferred_p)
{
    ZT_ASSERT(self);
    if (!(interval >= 0) || !isfinite(interval))
        return ZT_EINVAL;
    if (self->running || self->deferred || self->destroying)
        return ZT_ESTATE;
    zt_deferred_t *d = zt_deferred_new();
    if (!d)
        return ZT_ENOMEM;
    self->interval = interval;
    self->start_time = zt_clock_seconds(self->clock);
    self->count = 0;
    self->missed = 0;
    if (now) {
        self->last_index = -1;
        self->next_index = 0;
    } else {
        self->last_index = 0;
        if (s_schedule(self, self->start_time) < 0) {
            zt_deferred_unref(&d);
            return ZT_ENOMEM;
        }
    }
    self->running = true;
    self->deferred = d;
    if (deferred_p)
        *deferred_p = zt_deferred_ref(d);
    if (now)
        s_call(self); /* may fire and drop the start Deferred, even destroy self */
    return 0;
}

int
zt_looping_call_stop(zt_looping_call_t *self)
{
    ZT_ASSERT(self);
    if (!self->running)
        return ZT_ESTATE;
    self->running = false;
    if (self->call) {
        zt_delayed_call_cancel(self->call);
        zt_delayed_call_release(&self->call);
        s_fire_stopped(self);
    }
    /* Otherwise fn is being called or its Deferred is pending: the start Deferred fires when that
     * completes. */
    return 0;
}

int
zt_looping_call_reset(zt_looping_call_t *self)
{
    ZT_ASSERT(self);
    if (!self->running)
        return ZT_ESTATE;
    if (!self->call)
        return 0;
    zt_delayed_call_cancel(self->call);
    zt_delayed_call_release(&self->call);
    self->start_time = zt_clock_seconds(self->clock);
    self->last_index = 0;
    if (s_schedule(self, self->start_time) < 0) {
        s_fail(self, zt_failure_from_code(ZT_ENOMEM, "LoopingCall could not schedule its call"));
        return ZT_ENOMEM;
    }
    return 0;
}

bool
zt_looping_call_is_running(const zt_looping_call_t *self)
{
    ZT_ASSERT(self);
    return self->running;
}

double
zt_looping_call_interval(const zt_looping_call_t *self)
{
    ZT_ASSERT(self);
    return self->interval;
}

uint64_t
zt_looping_call_count(const zt_looping_call_t *self)
{
    ZT_ASSERT(self);
    return self->count;
}

uint64_t
zt_looping_call_missed(const zt_looping_call_t *self)
{
    ZT_ASSERT(self);
    return self->missed;
}
