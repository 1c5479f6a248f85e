/*  bridges/mdp/remote_wait.c - wait until a service has a worker (zt_remote_wait_for_service)
 *
 *  Design notes
 *  - A wait asks the broker RFC 8's "mmi.service" with the service's name, and again every
 *    S_INTERVAL seconds after each "404", until it hears "200" or its deadline passes. Each
 *    question is an ordinary request of the client (zt_defer_to_remote) whose own timeout ends at
 *    the wait's deadline at the latest, so a wait never outlives its deadline by more than a pass.
 *  - Single-threaded (the client's reactor). A wait is either asking (probe set) or sleeping until
 *    the next question (next set), never both; it is in its client's list from start to end, so
 *    the client's destroy can end it.
 *  - Exactly once: s_end and the canceller both take the wait out of the list and free it; the
 *    probe's callback does nothing once `ending` is set (cancelling the probe runs it at once).
 *    A failure of the question that cannot go away by asking again (cancelled, refused key or
 *    mechanism) ends the wait with that code; any other (no reply, broker unreachable) is asked
 *    again until the deadline. */
#include <ztwist/remote.h>

#include "base/base.h"
#include "mdp_codec.h"
#include "remote_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_INTERVAL 0.1 /* seconds between a "404" and the next question */

struct zt__remote_wait {
    zt_remote_t *client;                   /* Borrowed; ends its waits before it goes */
    zt_reactor_t *reactor;                 /* Borrowed: the client's */
    char service[ZT__MDP_MAX_SERVICE + 1]; /* the service waited for */
    double timeout;                        /* as given, for messages */
    double deadline;                       /* on the reactor's clock */
    zt_deferred_t *d;                      /* the producer's reference; Owned until fired */
    zt_deferred_t *probe;                  /* the question in flight; Owned reference or NULL */
    zt_delayed_call_t *next;               /* the next question; Owned handle or NULL */
    bool ending;                           /* being ended: the probe's callback does nothing */
    zt__remote_wait_t *prev;               /* the client's list; Borrowed link */
    zt__remote_wait_t *next_wait;          /* ditto */
};

static void s_probe(zt__remote_wait_t *w);

/* Take w out of its client's list, stop its timer and its question, free it; its Deferred
 * (returned) is left to the caller, NULL when the canceller took it already. */
static zt_deferred_t *
s_release(zt__remote_wait_t *w)
{
    w->ending = true;
    zt__remote_wait_t **head = zt__remote_waits(w->client);
    if (w->prev)
        w->prev->next_wait = w->next_wait;
    else
        *head = w->next_wait;
    if (w->next_wait)
        w->next_wait->prev = w->prev;
    if (w->next) {
        (void)zt_delayed_call_cancel(w->next);
        zt_delayed_call_release(&w->next);
    }
    if (w->probe) {
        zt_deferred_cancel(w->probe); /* nothing when it fired; its callback sees `ending` */
        zt_deferred_unref(&w->probe);
    }
    zt_deferred_t *d = w->d;
    free(w);
    return d;
}

static void
s_end(zt__remote_wait_t *w, zt_result_t result)
{
    zt_deferred_t *d = s_release(w);
    (void)zt_deferred_callback(d, result);
    zt_deferred_unref(&d);
}

static void
s_canceller(zt_deferred_t *d, void *arg)
{
    (void)d;
    zt__remote_wait_t *w = arg;
    zt_deferred_t *own = s_release(w);
    zt_deferred_unref(&own); /* the Deferred then fails as cancelled */
}

static void
s_on_next(void *arg)
{
    zt__remote_wait_t *w = arg;
    zt_delayed_call_release(&w->next);
    s_probe(w);
}

static void
s_end_timed_out(zt__remote_wait_t *w)
{
    s_end(w, zt_err(zt_failure_new(ZT_TIMEOUT_ERROR, "service '%s' had no worker within %g s",
                                   w->service, w->timeout)));
}

static zt_result_t
s_on_probe(zt_result_t r, void *arg)
{
    zt__remote_wait_t *w = arg;
    if (w->ending) {
        zt_result_release(&r);
        return zt_ok_none();
    }
    bool found = false;
    int code = 0;
    char why[256] = "";
    if (zt_is_err(r)) {
        code = zt_failure_code(zt_result_failure(r));
        snprintf(why, sizeof why, "%s", zt_failure_message(zt_result_failure(r)));
    } else {
        found = zt_frames_equal_str(zt_result_ptr(r), 0, "200");
    }
    zt_result_release(&r);
    if (found) {
        s_end(w, zt_ok_none());
    } else if (code == ZT_ECANCELLED || code == ZT_EACCES) {
        s_end(w,
              zt_err(zt_failure_from_code(code, "waiting for service '%s': %s", w->service, why)));
    } else {
        double left = w->deadline - zt_reactor_seconds(w->reactor);
        if (left <= 0)
            s_end_timed_out(w);
        else if (zt_reactor_call_later(w->reactor, left < S_INTERVAL ? left : S_INTERVAL, s_on_next,
                                       w, &w->next) != 0)
            s_end(w, zt_err(zt_failure_from_code(ZT_ESHUTDOWN,
                                                 "waiting for service '%s': the "
                                                 "reactor takes no more timers",
                                                 w->service)));
    }
    return zt_ok_none();
}

/* Ask the broker whether the service has a worker now. */
static void
s_probe(zt__remote_wait_t *w)
{
    zt_deferred_unref(&w->probe); /* the last question, answered */
    double left = w->deadline - zt_reactor_seconds(w->reactor);
    if (left <= 0) {
        s_end_timed_out(w);
        return;
    }
    zt_frames_t *req = zt_frames_new();
    if (req && zt_frames_add_str(req, w->service) != 0)
        zt_frames_destroy(&req);
    zt_remote_options_t options = {.timeout = left < 1.0 ? left : 1.0};
    zt_deferred_t *p =
        req ? zt_defer_to_remote(w->reactor, w->client, "mmi.service", &req, &options) : NULL;
    if (!p) {
        zt_frames_destroy(&req);
        s_end(w, zt_err(zt_failure_from_code(ZT_ENOMEM, "waiting for service '%s'", w->service)));
        return;
    }
    w->probe = p;
    zt_deferred_add_both(p, s_on_probe, w); /* may run now, and end w */
}

zt_deferred_t *
zt_remote_wait_for_service(zt_remote_t *client, const char *service, double timeout)
{
    ZT_ASSERT(client);
    if (!service || !*service || strlen(service) > ZT__MDP_MAX_SERVICE || !(timeout > 0))
        return NULL;
    zt__remote_wait_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->client = client;
    w->reactor = zt__remote_reactor(client);
    snprintf(w->service, sizeof w->service, "%s", service);
    w->timeout = timeout;
    w->deadline = zt_reactor_seconds(w->reactor) + timeout;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller, w);
    if (!d || !zt__remote_is_connecting(client)) {
        zt_deferred_unref(&d);
        free(w);
        return NULL;
    }
    w->d = zt_deferred_ref(d);
    zt__remote_wait_t **head = zt__remote_waits(client);
    w->next_wait = *head;
    if (*head)
        (*head)->prev = w;
    *head = w;
    s_probe(w);
    return d;
}

void
zt__remote_waits_end(zt__remote_wait_t **waits)
{
    while (*waits)
        s_end(*waits, zt_err(zt_failure_new(ZT_CANCELLED_ERROR, "client destroyed")));
}
