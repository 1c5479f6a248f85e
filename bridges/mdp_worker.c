/*  bridges/mdp_worker.c - a Majordomo worker: a handler thread and an I/O thread
 *
 *  Design notes
 *  - Two threads per worker. The thread that calls zt_mdp_worker_run is the handler thread: it
 *    waits on an inproc PAIR pipe, calls the handler for each request and sends the reply back on
 *    the pipe. The I/O thread owns the DEALER connected to the broker, the other end of the pipe
 *    and a PULL control socket; it heartbeats the broker, forwards requests and replies, detects a
 *    silent broker and reconnects with back-off. So a long handler never stops the heartbeats, and
 *    the broker declares this worker dead only when the process or the network is.
 *  - The sockets are created on the handler thread before the I/O thread starts (thread creation
 *    is a full barrier) and then used by one thread each, never both.
 *  - Each connection has a generation number, and every request forwarded on the pipe carries it.
 *    A reply whose generation is not the current one belongs to a connection the broker has
 *    forgotten, and is dropped rather than sent to the new one.
 *  - Stop: zt_mdp_worker_stop sets an atomic flag and, when the I/O thread is up, sends "$TERM" on
 *    a fresh PUSH socket to the control endpoint (a socket per call, so any thread may stop). The
 *    I/O thread also checks the flag at least once per heartbeat interval. It then tells the broker
 *    DISCONNECT and sends "$STOP" on the pipe; run returns after the request in hand. */
#include <ztwist/mdp_worker.h>
#include <ztwist/log.h>
#include <ztwist/time.h>

#include "base/base.h"
#include "base/zmq_ctx.h"
#include "bridges/mdp_codec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct zt_mdp_worker {
    char endpoint[256];                    /* the broker */
    char service[ZT__MDP_MAX_SERVICE + 1]; /* the service served */
    zt_mdp_handler_fn *handler;            /* the handler */
    void *arg;                             /* its arg; Borrowed */
    double interval;                       /* heartbeat interval, seconds */
    int liveness;                          /* heartbeats the broker may miss */
    double reconnect_initial;              /* first back-off delay, seconds */
    double reconnect_max;                  /* longest back-off delay, seconds */
    bool curve;                            /* whether to use CURVE */
    uint8_t keys[3][32];                   /* server public, our public, our secret */
    void *ctx;                             /* the shared context while running; one reference */
    void *pipe_handler;                    /* the handler thread's end of the pipe; Owned */
    void *pipe_io;                         /* the I/O thread's end; Owned */
    void *control;                         /* the I/O thread's PULL for "$TERM"; Owned */
    char control_endpoint[64];             /* where control is bound */
    atomic_bool stop;                      /* stop requested */
    atomic_bool running;                   /* run is between start and join */
    atomic_bool control_up;                /* control is bound and reading */
    atomic_uint_fast64_t served;           /* replies sent */
};

zt_mdp_worker_t *
zt_mdp_worker_new(const char *endpoint, const char *service, zt_mdp_handler_fn *handler, void *arg)
{
    if (!endpoint || !service || !handler || !*service || strlen(service) > ZT__MDP_MAX_SERVICE ||
        strncmp(service, "mmi.", 4) == 0 || strlen(endpoint) >= 256)
        return NULL;
    zt_mdp_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    snprintf(self->service, sizeof self->service, "%s", service);
    self->handler = handler;
    self->arg = arg;
    self->interval = 2.5;
    self->liveness = 3;
    self->reconnect_initial = 0.1;
    self->reconnect_max = 2.5;
    snprintf(self->control_endpoint, sizeof self->control_endpoint,
             "inproc://zt-mdp-worker-control-%p", (void *)self);
    atomic_init(&self->stop, false);
    atomic_init(&self->running, false);
    atomic_init(&self->control_up, false);
    atomic_init(&self->served, 0);
    return self;
}

void
zt_mdp_worker_destroy(zt_mdp_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ZT_ASSERT_MSG(!atomic_load(&(*self_p)->running), "zt_mdp_worker_destroy: still running");
    free(*self_p);
    *self_p = NULL;
}

int
zt_mdp_worker_set_heartbeat(zt_mdp_worker_t *self, double interval, int liveness)
{
    ZT_ASSERT(self);
    if (!(interval > 0) || liveness < 1)
        return ZT_EINVAL;
    self->interval = interval;
    self->liveness = liveness;
    return 0;
}

int
zt_mdp_worker_set_reconnect(zt_mdp_worker_t *self, double initial, double max)
{
    ZT_ASSERT(self);
    if (!(initial > 0) || !(max >= initial))
        return ZT_EINVAL;
    self->reconnect_initial = initial;
    self->reconnect_max = max;
    return 0;
}

int
zt_mdp_worker_set_curve(zt_mdp_worker_t *self, const char *server_public, const char *public_key,
                        const char *secret_key)
{
    ZT_ASSERT(self);
    const char *z85[3] = {server_public, public_key, secret_key};
    for (int i = 0; i < 3; i++)
        if (!z85[i] || strlen(z85[i]) != 40 || !zmq_z85_decode(self->keys[i], z85[i]))
            return ZT_EINVAL;
    self->curve = true;
    return 0;
}

uint64_t
zt_mdp_worker_served(const zt_mdp_worker_t *self)
{
    ZT_ASSERT(self);
    return atomic_load_explicit(&self->served, memory_order_relaxed);
}

int
zt_mdp_worker_stop(zt_mdp_worker_t *self)
{
    ZT_ASSERT(self);
    atomic_store(&self->stop, true);
    if (!atomic_load(&self->control_up))
        return 0;
    void *ctx = zt__zmq_ctx_acquire(); /* our own reference: run may be releasing its own */
    void *push = ctx ? zmq_socket(ctx, ZMQ_PUSH) : NULL;
    if (!push) {
        if (ctx)
            zt__zmq_ctx_release();
        return 0; /* the flag alone stops it within one heartbeat interval */
    }
    int linger = 100;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(push, self->control_endpoint) == 0)
        (void)zmq_send(push, "$TERM", 5, ZMQ_DONTWAIT);
    zmq_close(push);
    zt__zmq_ctx_release();
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The I/O thread */

typedef struct s_io {
    zt_mdp_worker_t *w;     /* the worker; Borrowed */
    void *dealer;           /* the connection to the broker; Owned; NULL while backing off */
    uint32_t generation;    /* the connection's number */
    double broker_deadline; /* the broker is dead when silent past this */
    double next_heartbeat;  /* when to send the next HEARTBEAT */
    double reconnect_at;    /* when to connect again, while dealer is NULL */
    double backoff;         /* the next back-off delay */
    uint64_t malformed;     /* messages from the broker dropped as malformed */
} s_io_t;

static void
s_send_command(s_io_t *io, uint8_t command, const char *service)
{
    zt__mdp_frame_t f[4] = {{"", 0}, {ZT__MDPW, 6}, {&command, 1}, {service, 0}};
    size_t n = 3;
    if (service) {
        f[3].size = strlen(service);
        n = 4;
    }
    (void)zt__mdp_send(io->dealer, f, n);
}

static int
s_connect(s_io_t *io)
{
    zt_mdp_worker_t *w = io->w;
    io->dealer = zmq_socket(w->ctx, ZMQ_DEALER);
    if (!io->dealer)
        return ZT_ESYS;
    int linger = 0;
    zmq_setsockopt(io->dealer, ZMQ_LINGER, &linger, sizeof linger);
    if (w->curve) {
        zmq_setsockopt(io->dealer, ZMQ_CURVE_SERVERKEY, w->keys[0], 32);
        zmq_setsockopt(io->dealer, ZMQ_CURVE_PUBLICKEY, w->keys[1], 32);
        zmq_setsockopt(io->dealer, ZMQ_CURVE_SECRETKEY, w->keys[2], 32);
    }
    if (zmq_connect(io->dealer, w->endpoint) != 0) {
        ZT_LOG_ERROR("worker: cannot connect to %s: %s", w->endpoint, zmq_strerror(zmq_errno()));
        zmq_close(io->dealer);
        io->dealer = NULL;
        return ZT_EINVAL;
    }
    io->generation++;
    s_send_command(io, ZT__MDP_READY, w->service);
    double now = zt_time_now();
    io->broker_deadline = now + w->interval * w->liveness;
    io->next_heartbeat = now + w->interval;
    return 0;
}

static void
s_disconnect(s_io_t *io, const char *why)
{
    ZT_LOG_WARNING("worker '%s': %s; reconnecting to %s in %g s", io->w->service, why,
                   io->w->endpoint, io->backoff);
    zmq_close(io->dealer);
    io->dealer = NULL;
    io->reconnect_at = zt_time_now() + io->backoff;
    io->backoff *= 2;
    if (io->backoff > io->w->reconnect_max)
        io->backoff = io->w->reconnect_max;
}

/* Receive one multipart message into parts (at most cap, the rest discarded). Returns the frame
 * count, or -1 when nothing was waiting; *too_many tells whether frames were discarded. */
static int
s_recv_parts(void *socket, zmq_msg_t *parts, size_t cap, bool *too_many)
{
    size_t n = 0;
    bool more = true;
    *too_many = false;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_init(&tmp);
        if (zmq_msg_recv(&tmp, socket, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&tmp);
            for (size_t i = 0; i < n; i++)
                zmq_msg_close(&parts[i]);
            return -1;
        }
        more = zmq_msg_more(&tmp);
        if (n < cap) {
            zmq_msg_init(&parts[n]);
            zmq_msg_move(&parts[n++], &tmp);
        } else {
            *too_many = true;
        }
        zmq_msg_close(&tmp);
    }
    return (int)n;
}

/* A message from the broker: forward a request to the handler thread, note a heartbeat, obey a
 * DISCONNECT. */
static void
s_on_broker(s_io_t *io)
{
    for (int batch = 0; batch < 64 && io->dealer; batch++) {
        zmq_msg_t parts[ZT__MDP_MAX_FRAMES];
        bool too_many;
        int n = s_recv_parts(io->dealer, parts, ZT__MDP_MAX_FRAMES, &too_many);
        if (n < 0)
            return;
        zt__mdp_frame_t f[ZT__MDP_MAX_FRAMES];
        for (int i = 0; i < n; i++)
            f[i] = (zt__mdp_frame_t){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
        zt__mdp_msg_t m;
        const char *why = "too many frames";
        int rc =
            too_many ? ZT_EPROTO : zt__mdp_decode(f, (size_t)n, ZT__MDP_AT_WORKER, 0, &m, &why);
        if (rc != 0) {
            io->malformed++;
            ZT_LOG_WARNING("worker '%s': dropped a malformed message from the broker (%s)",
                           io->w->service, why);
        } else {
            io->broker_deadline = zt_time_now() + io->w->interval * io->w->liveness;
            io->backoff = io->w->reconnect_initial;
            if (m.command == ZT__MDP_REQUEST) {
                /* To the handler: [generation][envelope...][""][body...] */
                uint32_t gen = io->generation;
                (void)zmq_send(io->w->pipe_io, &gen, sizeof gen, ZMQ_SNDMORE);
                for (size_t i = m.env_first; i < (size_t)n; i++)
                    (void)zmq_send(io->w->pipe_io, f[i].data, f[i].size,
                                   i + 1 < (size_t)n ? ZMQ_SNDMORE : 0);
            } else if (m.command == ZT__MDP_DISCONNECT) {
                for (int i = 0; i < n; i++)
                    zmq_msg_close(&parts[i]);
                s_disconnect(io, "the broker sent DISCONNECT");
                return;
            }
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* A reply from the handler thread: [generation][envelope...][""][body...]. */
static void
s_on_handler(s_io_t *io)
{
    zmq_msg_t parts[ZT__MDP_MAX_FRAMES + 1];
    bool too_many;
    int n = s_recv_parts(io->w->pipe_io, parts, ZT_ARRAY_SIZE(parts), &too_many);
    if (n < 0)
        return;
    uint32_t gen = 0;
    if (n >= 1 && zmq_msg_size(&parts[0]) == sizeof gen)
        memcpy(&gen, zmq_msg_data(&parts[0]), sizeof gen);
    if (io->dealer && gen == io->generation && n >= 3) {
        uint8_t command = ZT__MDP_REPLY;
        zt__mdp_frame_t f[3 + ZT__MDP_MAX_FRAMES];
        size_t k = 0;
        f[k++] = (zt__mdp_frame_t){"", 0};
        f[k++] = (zt__mdp_frame_t){ZT__MDPW, 6};
        f[k++] = (zt__mdp_frame_t){&command, 1};
        for (int i = 1; i < n; i++)
            f[k++] = (zt__mdp_frame_t){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
        if (zt__mdp_send(io->dealer, f, k) == 0)
            atomic_fetch_add_explicit(&io->w->served, 1, memory_order_relaxed);
    } else {
        ZT_LOG_INFO("worker '%s': a reply for a forgotten connection is dropped", io->w->service);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
}

static void *
s_io_thread(void *arg)
{
    s_io_t io = {.w = arg};
    zt_mdp_worker_t *w = io.w;
    io.backoff = w->reconnect_initial;
    (void)s_connect(&io);
    if (!io.dealer)
        io.reconnect_at = zt_time_now() + io.backoff;
    while (!atomic_load(&w->stop)) {
        double now = zt_time_now();
        if (!io.dealer && now >= io.reconnect_at) {
            if (s_connect(&io) != 0)
                io.reconnect_at = now + io.backoff;
        }
        double due = io.dealer ? io.next_heartbeat : io.reconnect_at;
        if (io.dealer && io.broker_deadline < due)
            due = io.broker_deadline;
        long timeout = (long)((due - now) * 1000.0) + 1;
        if (timeout < 0)
            timeout = 0;
        if (timeout > (long)(w->interval * 1000.0) + 1)
            timeout = (long)(w->interval * 1000.0) + 1;
        zmq_pollitem_t items[3] = {{w->control, 0, ZMQ_POLLIN, 0},
                                   {w->pipe_io, 0, ZMQ_POLLIN, 0},
                                   {io.dealer, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, io.dealer ? 3 : 2, timeout);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            ZT_LOG_ERROR("worker '%s': zmq_poll: %s", w->service, zmq_strerror(zmq_errno()));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            s_on_handler(&io);
        if (io.dealer && (items[2].revents & ZMQ_POLLIN))
            s_on_broker(&io);
        now = zt_time_now();
        if (io.dealer && now >= io.next_heartbeat) {
            s_send_command(&io, ZT__MDP_HEARTBEAT, NULL);
            io.next_heartbeat = now + w->interval;
        }
        if (io.dealer && now > io.broker_deadline)
            s_disconnect(&io, "the broker is silent");
    }
    if (io.dealer) {
        s_send_command(&io, ZT__MDP_DISCONNECT, NULL);
        int linger = 100;
        zmq_setsockopt(io.dealer, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(io.dealer);
    }
    (void)zmq_send(w->pipe_io, "$STOP", 5, ZMQ_DONTWAIT);
    return NULL;
}

/* ------------------------------------------------------------------------------------------- */
/* The handler thread */

static void
s_serve(zt_mdp_worker_t *self, zmq_msg_t *parts, size_t n)
{
    /* [generation][envelope...][""][body...] */
    size_t delim = 1;
    while (delim < n && zmq_msg_size(&parts[delim]) != 0)
        delim++;
    zt_frames_t *request = zt_frames_new();
    for (size_t i = delim + 1; request && i < n; i++)
        if (zt_frames_add(request, zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])) != 0)
            zt_frames_destroy(&request);
    if (!request) {
        ZT_LOG_ERROR("worker '%s': out of memory; a request is dropped", self->service);
        return;
    }
    zt_frames_t *reply = self->handler(request, self->arg);
    zt_frames_destroy(&request);
    size_t body = reply ? zt_frames_count(reply) : 0;
    for (size_t i = 0; i <= delim; i++)
        (void)zmq_send(self->pipe_handler, zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i]),
                       ZMQ_DONTWAIT | (i < delim || body > 0 ? ZMQ_SNDMORE : 0));
    for (size_t i = 0; i < body; i++)
        (void)zmq_send(self->pipe_handler, zt_frames_data(reply, i), zt_frames_size(reply, i),
                       ZMQ_DONTWAIT | (i + 1 < body ? ZMQ_SNDMORE : 0));
    zt_frames_destroy(&reply);
}

int
zt_mdp_worker_run(zt_mdp_worker_t *self)
{
    ZT_ASSERT(self);
    bool expected = false;
    if (!atomic_compare_exchange_strong(&self->running, &expected, true))
        return ZT_ESTATE;
    int rc = ZT_ESYS;
    pthread_t thread;
    bool started = false;
    self->ctx = zt__zmq_ctx_acquire();
    if (!self->ctx)
        goto done;
    char pipe[64];
    snprintf(pipe, sizeof pipe, "inproc://zt-mdp-worker-pipe-%p", (void *)self);
    self->pipe_handler = zmq_socket(self->ctx, ZMQ_PAIR);
    self->pipe_io = zmq_socket(self->ctx, ZMQ_PAIR);
    self->control = zmq_socket(self->ctx, ZMQ_PULL);
    if (!self->pipe_handler || !self->pipe_io || !self->control ||
        zmq_bind(self->pipe_handler, pipe) != 0 || zmq_connect(self->pipe_io, pipe) != 0 ||
        zmq_bind(self->control, self->control_endpoint) != 0) {
        ZT_LOG_ERROR("worker '%s': cannot make its sockets: %s", self->service,
                     zmq_strerror(zmq_errno()));
        goto done;
    }
    if (pthread_create(&thread, NULL, s_io_thread, self) != 0) {
        ZT_LOG_ERROR("worker '%s': cannot start its I/O thread", self->service);
        goto done;
    }
    started = true;
    atomic_store(&self->control_up, true);
    rc = 0;
    for (;;) {
        zmq_msg_t parts[ZT__MDP_MAX_FRAMES + 2];
        size_t n = 0;
        bool more = true;
        while (more) {
            zmq_msg_t tmp;
            zmq_msg_init(&tmp);
            if (zmq_msg_recv(&tmp, self->pipe_handler, 0) < 0) {
                zmq_msg_close(&tmp);
                if (zmq_errno() == EINTR && n == 0)
                    continue;
                break;
            }
            more = zmq_msg_more(&tmp);
            if (n < ZT_ARRAY_SIZE(parts)) {
                zmq_msg_init(&parts[n]);
                zmq_msg_move(&parts[n++], &tmp);
            }
            zmq_msg_close(&tmp);
        }
        bool stop = n == 1 && zmq_msg_size(&parts[0]) == 5 &&
                    memcmp(zmq_msg_data(&parts[0]), "$STOP", 5) == 0;
        if (!stop && n >= 2)
            s_serve(self, parts, n);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
        if (stop || n == 0)
            break;
    }
done:
    atomic_store(&self->control_up, false);
    if (started) {
        atomic_store(&self->stop, true);
        pthread_join(thread, NULL);
    }
    if (self->control)
        zmq_close(self->control);
    if (self->pipe_io)
        zmq_close(self->pipe_io);
    if (self->pipe_handler)
        zmq_close(self->pipe_handler);
    self->control = self->pipe_io = self->pipe_handler = NULL;
    if (self->ctx)
        zt__zmq_ctx_release();
    self->ctx = NULL;
    atomic_store(&self->running, false);
    return rc;
}
