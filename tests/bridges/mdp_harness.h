/*  tests/bridges/mdp_harness.h - helpers shared by the remote-worker suites
 *
 *  A reactor driven with deadlines (never a sleep), a collector for a Deferred's outcome, and
 * workers run on threads of the test process.  */
#ifndef ZTWIST_TESTS_MDP_HARNESS_H
#define ZTWIST_TESTS_MDP_HARNESS_H

#include <ztwist.h>
#include <ztwist/broker.h>
#include <ztwist/mdp_worker.h>
#include <ztwist/remote.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The outcome of one request. */
typedef struct outcome {
    bool done;          /* whether the Deferred fired */
    int fired;          /* how many times a link ran (must end at 1) */
    int code;           /* 0 for a reply, else the failure's code */
    zt_frames_t *reply; /* the reply; Owned */
    char message[256];  /* the failure's message */
} outcome_t;

static inline zt_result_t
outcome_record(zt_result_t r, void *arg)
{
    outcome_t *o = arg;
    o->done = true;
    o->fired++;
    if (zt_is_err(r)) {
        o->code = zt_failure_code(zt_result_failure(r));
        snprintf(o->message, sizeof o->message, "%s", zt_failure_message(zt_result_failure(r)));
        zt_result_release(&r);
    } else {
        zt_frames_destroy(&o->reply);
        o->reply = zt_result_take(&r);
    }
    return zt_ok_none();
}

/* Send a request whose outcome lands in o. Returns 0 or -1 when zt_defer_to_remote refused. */
static inline int
outcome_send(zt_reactor_t *reactor, zt_remote_t *client, const char *service, const char *body,
             const zt_remote_options_t *options, outcome_t *o)
{
    zt_frames_t *req = zt_frames_new();
    if (body)
        zt_frames_add_str(req, body);
    zt_deferred_t *d = zt_defer_to_remote(reactor, client, service, &req, options);
    if (!d) {
        zt_frames_destroy(&req);
        return -1;
    }
    zt_deferred_add_both(d, outcome_record, o);
    zt_deferred_unref(&d);
    return 0;
}

/* Iterate the reactor until *flag is true or seconds pass. Returns *flag. */
static inline bool
run_until(zt_reactor_t *reactor, const bool *flag, double seconds)
{
    double deadline = zt_time_now() + seconds;
    while (!*flag && zt_time_now() < deadline)
        zt_reactor_iterate(reactor, 0.02);
    return *flag;
}

/* Iterate the reactor until the broker counts `workers` workers or seconds pass. */
static inline bool
run_until_workers(zt_reactor_t *reactor, zt_broker_t *broker, uint64_t workers, double seconds)
{
    double deadline = zt_time_now() + seconds;
    zt_broker_stats_t st;
    zt_broker_stats(broker, &st);
    while (st.workers != workers && zt_time_now() < deadline) {
        zt_reactor_iterate(reactor, 0.02);
        zt_broker_stats(broker, &st);
    }
    return st.workers == workers;
}

/* A worker on a thread of the test process. */
typedef struct thread_worker {
    zt_mdp_worker_t *worker; /* Owned */
    pthread_t thread;        /* runs zt_mdp_worker_run */
    bool started;            /* whether thread runs */
} thread_worker_t;

static inline void *
thread_worker_main(void *arg)
{
    thread_worker_t *tw = arg;
    zt_mdp_worker_run(tw->worker);
    return NULL;
}

static inline int
thread_worker_start(thread_worker_t *tw, const char *endpoint, const char *service,
                    zt_mdp_handler_fn *handler, void *arg, double interval)
{
    memset(tw, 0, sizeof *tw);
    tw->worker = zt_mdp_worker_new(endpoint, service, handler, arg);
    if (!tw->worker)
        return -1;
    zt_mdp_worker_set_heartbeat(tw->worker, interval, 3);
    zt_mdp_worker_set_reconnect(tw->worker, 0.05, 0.2);
    if (pthread_create(&tw->thread, NULL, thread_worker_main, tw) != 0)
        return -1;
    tw->started = true;
    return 0;
}

static inline void
thread_worker_stop(thread_worker_t *tw)
{
    if (!tw->worker)
        return;
    zt_mdp_worker_stop(tw->worker);
    if (tw->started)
        pthread_join(tw->thread, NULL);
    tw->started = false;
    zt_mdp_worker_destroy(&tw->worker);
}

/* The echo handler: the reply is the request. */
static inline zt_frames_t *
echo_handler(const zt_frames_t *request, void *arg)
{
    (void)arg;
    return zt_frames_dup(request);
}

#endif
