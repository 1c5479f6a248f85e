/*  examples/square_workers.h - what fan_out_callbacks.c and fan_out_coro.c share
 *
 *  A Majordomo broker in the reactor, bound on 127.0.0.1 (a free port), SQUARE_WORKERS workers on
 * threads of this process serving "square" (the reply to "n" is "n*n"), and a client connected to
 * the broker in-process. Remote workers on other machines would connect to the broker's endpoint in
 * the same way (examples/remote_pool.c runs them as processes). square_request gives a Deferred
 * fired with the reply's number (zt_ok_int). The two example programs differ only in how they send
 * requests and gather the replies.  */
#ifndef ZTWIST_EXAMPLES_SQUARE_WORKERS_H
#define ZTWIST_EXAMPLES_SQUARE_WORKERS_H

#include <ztwist.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQUARE_WORKERS 3

typedef struct square_workers {
    zt_reactor_t *reactor;                    /* Borrowed */
    zt_broker_t *broker;                      /* Owned */
    zt_remote_t *client;                      /* Owned */
    zt_mdp_worker_t *workers[SQUARE_WORKERS]; /* Owned */
    pthread_t threads[SQUARE_WORKERS];        /* each runs one worker */
    int started;                              /* threads started */
} square_workers_t;

static zt_frames_t *
square_handler(const zt_frames_t *request, void *arg)
{
    (void)arg;
    char text[32] = {0};
    size_t size = zt_frames_size(request, 0);
    if (size >= sizeof text)
        size = sizeof text - 1;
    memcpy(text, zt_frames_data(request, 0), size);
    long n = strtol(text, NULL, 10);
    zt_frames_t *reply = zt_frames_new();
    snprintf(text, sizeof text, "%ld", n * n);
    zt_frames_add_str(reply, text);
    return reply;
}

static void *
square_worker_thread(void *arg)
{
    zt_mdp_worker_run(arg);
    return NULL;
}

static int
square_workers_start(square_workers_t *w, zt_reactor_t *r)
{
    *w = (square_workers_t){.reactor = r};
    zt_log_set_level(ZT_LOG_WARNING); /* not the broker's "listening on" line: its port varies */
    w->broker = zt_broker_new(r);
    if (!w->broker || zt_broker_bind(w->broker, "tcp://127.0.0.1:0") != 0)
        return ZT_ESYS;
    zt_broker_set_unknown_grace(w->broker, 5); /* the workers announce themselves soon after */
    w->client = zt_remote_new(r);
    if (!w->client || zt_remote_connect_broker(w->client, w->broker) != 0)
        return ZT_ESYS;
    for (int i = 0; i < SQUARE_WORKERS; i++) {
        w->workers[i] =
            zt_mdp_worker_new(zt_broker_endpoint(w->broker), "square", square_handler, NULL);
        if (!w->workers[i] ||
            pthread_create(&w->threads[i], NULL, square_worker_thread, w->workers[i]) != 0)
            return ZT_ESYS;
        w->started++;
    }
    return 0;
}

static zt_result_t
square_parse(zt_result_t reply, void *arg)
{
    (void)arg;
    const zt_frames_t *frames = zt_result_ptr(reply);
    if (!frames)
        return reply; /* a failure passes on */
    char text[32] = {0};
    size_t size = zt_frames_size(frames, 0);
    memcpy(text, zt_frames_data(frames, 0), size < sizeof text ? size : sizeof text - 1);
    zt_result_release(&reply);
    return zt_ok_int(strtol(text, NULL, 10));
}

/* Ask a worker for n*n: a Deferred fired with it (zt_ok_int). */
static zt_deferred_t *
square_request(square_workers_t *w, long n)
{
    char text[32];
    snprintf(text, sizeof text, "%ld", n);
    zt_frames_t *req = zt_frames_new();
    zt_frames_add_str(req, text);
    zt_remote_options_t options = {.timeout = 10};
    zt_deferred_t *d = zt_defer_to_remote(w->reactor, w->client, "square", &req, &options);
    zt_frames_destroy(&req); /* left to us only when the call failed */
    if (d)
        zt_deferred_add_callback(d, square_parse, NULL);
    return d;
}

static void
square_workers_stop(square_workers_t *w)
{
    for (int i = 0; i < w->started; i++)
        zt_mdp_worker_stop(w->workers[i]);
    for (int i = 0; i < w->started; i++)
        pthread_join(w->threads[i], NULL);
    for (int i = 0; i < SQUARE_WORKERS; i++)
        zt_mdp_worker_destroy(&w->workers[i]);
    zt_remote_destroy(&w->client);
    zt_broker_destroy(&w->broker);
}

#endif
