/*  tests/futures/manual_clock.h - a zt_clock_t whose time moves only when a test advances it
 *
 *  Twisted's task.Clock for the futures tests: calls are kept sorted by due time (ties in the
 * order they were scheduled) and manual_clock_advance runs every call that falls due, including
 * calls scheduled by those calls for a time already reached. Header-only so that any futures test
 * can include it.
 *
 *      manual_clock_t *clock = manual_clock_new();
 *      zt_deferred_add_timeout(d, 5, manual_clock_clock(clock));
 *      manual_clock_advance(clock, 5);   // the timeout fires here, on the test's thread
 *      manual_clock_destroy(&clock);  */
#ifndef ZTWIST_TESTS_MANUAL_CLOCK_H
#define ZTWIST_TESTS_MANUAL_CLOCK_H

#include <ztwist/clock.h>

#include <stdlib.h>

typedef struct manual_call manual_call_t;
struct manual_call {
    double when;         /* due time, in the clock's seconds */
    zt_clock_fn *fn;     /* what to call */
    void *arg;           /* Borrowed: fn's arg */
    manual_call_t *next; /* Owned: the next call in due order */
};

typedef struct {
    zt_clock_t iface;     /* the interface handed to the code under test; self points here */
    double now;           /* the current time */
    manual_call_t *calls; /* Owned: pending calls, sorted by due time */
    size_t pending;       /* how many calls are pending */
    size_t cancels;       /* how many calls were cancelled */
} manual_clock_t;

static inline double
manual_clock_s_seconds(void *self)
{
    return ((manual_clock_t *)self)->now;
}

static inline void *
manual_clock_s_call_later(void *self, double delay, zt_clock_fn *fn, void *arg)
{
    manual_clock_t *clock = self;
    manual_call_t *call = malloc(sizeof *call);
    if (!call)
        return NULL;
    *call = (manual_call_t){.when = clock->now + (delay > 0 ? delay : 0), .fn = fn, .arg = arg};
    manual_call_t **at = &clock->calls;
    while (*at && (*at)->when <= call->when)
        at = &(*at)->next;
    call->next = *at;
    *at = call;
    clock->pending++;
    return call;
}

static inline void
manual_clock_s_cancel(void *self, void *handle)
{
    manual_clock_t *clock = self;
    for (manual_call_t **at = &clock->calls; *at; at = &(*at)->next) {
        if (*at == handle) {
            manual_call_t *call = *at;
            *at = call->next;
            free(call);
            clock->pending--;
            clock->cancels++;
            return;
        }
    }
    abort(); /* the handle is not pending: a bug in the code under test */
}

/** A clock at time 0 with no calls; NULL when out of memory. */
static inline manual_clock_t *
manual_clock_new(void)
{
    manual_clock_t *clock = calloc(1, sizeof *clock);
    if (!clock)
        return NULL;
    clock->iface = (zt_clock_t){.self = clock,
                                .seconds = manual_clock_s_seconds,
                                .call_later = manual_clock_s_call_later,
                                .cancel = manual_clock_s_cancel};
    return clock;
}

/** Free the clock and any calls still pending (they do not run). */
static inline void
manual_clock_destroy(manual_clock_t **clock_p)
{
    manual_clock_t *clock = *clock_p;
    *clock_p = NULL;
    if (!clock)
        return;
    while (clock->calls) {
        manual_call_t *call = clock->calls;
        clock->calls = call->next;
        free(call);
    }
    free(clock);
}

/** The zt_clock_t to hand to the code under test. */
static inline const zt_clock_t *
manual_clock_clock(manual_clock_t *clock)
{
    return &clock->iface;
}

/** Move time forward by seconds and run every call that is due, in due order. */
static inline void
manual_clock_advance(manual_clock_t *clock, double seconds)
{
    clock->now += seconds;
    while (clock->calls && clock->calls->when <= clock->now) {
        manual_call_t *call = clock->calls;
        clock->calls = call->next;
        clock->pending--;
        zt_clock_fn *fn = call->fn;
        void *arg = call->arg;
        free(call);
        fn(arg);
    }
}

#endif
