/*  bridges/mdp/mdp_worker.c - a Majordomo worker: a handler thread and a heartbeat keeper
 *
 *  Design notes
 *  - The thread that calls zt_mdp_worker_run (the handler thread) owns the DEALER connected to the
 *    broker: it waits on it, heartbeats, reconnects with back-off and runs the handler inline, so a
 *    request costs no thread hand-off inside the worker.
 *  - While the handler runs, the socket is lent to a keeper thread, so that a long handler does not
 *    stop the heartbeats and the broker declares this worker dead only when the process or the
 *    network is. The loan is the `busy` flag under `lock`: the handler thread sets it before
 * calling the handler and clears it after, and the keeper touches the socket (and the connection
 * state) only while holding the lock with busy set. The mutex gives the hand-off the full barrier a
 *    ZeroMQ socket needs to move between threads. The keeper wakes once per heartbeat interval on a
 *    timed wait and is never signalled per request.
 *  - A DISCONNECT the keeper reads means the broker forgot this worker: the handler's reply is then
 *    dropped and the handler thread reconnects.
 *  - No user code runs under the lock. Stop: zt_mdp_worker_stop sets an atomic flag and writes a
 *    byte to a non-blocking self-pipe (any thread may stop: a write(2) is all it does) that the
 *    handler thread polls with the DEALER; run returns after the request in hand, having told the
 *    broker DISCONNECT. A plain pipe, not an inproc socket: a ZeroMQ socket in the poll set costs
 *    two system calls on every wake-up (its ZMQ_EVENTS query), a pipe costs none.
 *  - The wait is zt__zpoll (base/zpoll.c), zmq_poll's contract with about half the system calls:
 *    at one request at a time per connection, system calls are most of a request's cost. */
#include <ztwist/mdp_worker.h>
#include <ztwist/log.h>
#include <ztwist/time.h>

#include "base/base.h"
#include "base/zmq_ctx.h"
#include "base/zpoll.h"
#include "mdp_codec.h"
#include "mdp_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
    unsigned prefetch;                     /* requests taken at once (READY's extension); 1 */
    size_t max_message;                    /* the largest frame accepted from the broker */
    bool curve;                            /* whether to use CURVE */
    uint8_t keys[3][32];                   /* server public, our public, our secret */
    void *ctx;                             /* the shared context while running; one reference */
    int wake[2];                           /* the stop self-pipe: read end, write end; Owned */
    /* The connection: the handler thread's, lent to the keeper while busy. */
    void *dealer;           /* the DEALER to the broker; Owned; NULL backing off */
    zt__rsock_t dealer_io;  /* the DEALER as the runtime sees it: ZT__ZPOLL_QUIET when quiet */
    double broker_deadline; /* the broker is dead when silent past this */
    double next_heartbeat;  /* when to send the next HEARTBEAT */
    double reconnect_at;    /* when to connect again, while dealer is NULL */
    double backoff;         /* the next back-off delay */
    uint64_t malformed;     /* messages from the broker dropped as malformed */
    void *monitor;          /* PAIR told of handshake failures; Owned or NULL */
    bool mismatch;          /* the broker's security mechanism is not ours: run returns */
    unsigned connections;   /* connections made, to name each monitor endpoint */
    /* The loan. */
    pthread_mutex_t lock;        /* guards busy, keeper_stop, disconnected */
    pthread_cond_t cond;         /* wakes the keeper to stop */
    bool busy;                   /* the handler runs: the keeper holds the socket */
    bool keeper_stop;            /* the keeper must return */
    bool disconnected;           /* the keeper read a DISCONNECT */
    atomic_bool stop;            /* stop requested */
    atomic_bool running;         /* run is between start and end */
    atomic_uint_fast64_t served; /* replies sent */
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
    self->prefetch = 1;
    self->max_message = ZT_BROKER_MAX_MESSAGE;
    if (pipe(self->wake) != 0) {
        free(self);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(self->wake[i], F_SETFL, fcntl(self->wake[i], F_GETFL) | O_NONBLOCK);
        fcntl(self->wake[i], F_SETFD, FD_CLOEXEC);
    }
    atomic_init(&self->stop, false);
    atomic_init(&self->running, false);
    atomic_init(&self->served, 0);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* the keeper's timed waits */
    int rc = pthread_cond_init(&self->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0 || pthread_mutex_init(&self->lock, NULL) != 0) {
        if (rc == 0)
            pthread_cond_destroy(&self->cond);
        close(self->wake[0]);
        close(self->wake[1]);
        free(self);
        return NULL;
    }
    return self;
}

void
zt_mdp_worker_destroy(zt_mdp_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ZT_ASSERT_MSG(!atomic_load(&(*self_p)->running), "zt_mdp_worker_destroy: still running");
    pthread_cond_destroy(&(*self_p)->cond);
    pthread_mutex_destroy(&(*self_p)->lock);
    close((*self_p)->wake[0]);
    close((*self_p)->wake[1]);
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
zt_mdp_worker_set_prefetch(zt_mdp_worker_t *self, unsigned n)
{
    ZT_ASSERT(self);
    if (n < 1 || n > ZT__MDP_MAX_PREFETCH)
        return ZT_EINVAL;
    self->prefetch = n;
    return 0;
}

int
zt_mdp_worker_set_max_message(zt_mdp_worker_t *self, size_t bytes)
{
    ZT_ASSERT(self);
    if (bytes == 0 || bytes > (size_t)INT64_MAX)
        return ZT_EINVAL;
    self->max_message = bytes;
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
    /* A full pipe already holds a wake-up; the flag alone would stop run within one interval. */
    ssize_t wrote = write(self->wake[1], "", 1);
    (void)wrote;
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The connection (used by whichever thread holds the socket) */

static void
s_send_command(zt_mdp_worker_t *self, uint8_t command, const char *service)
{
    char prefetch[16];
    zt__mdp_frame_t f[5] = {{"", 0}, {ZT__MDPW, 6}, {&command, 1}, {service, 0}, {prefetch, 0}};
    size_t n = 3;
    if (service) {
        f[3].size = strlen(service);
        n = 4;
    }
    if (service && self->prefetch > 1) /* plain RFC 7 unless asked */
        f[n++].size = (size_t)snprintf(prefetch, sizeof prefetch, "%u", self->prefetch);
    (void)zt__mdp_send(&self->dealer_io, f, n);
}

/* Close the connection's sockets. */
static void
s_close(zt_mdp_worker_t *self)
{
    if (self->monitor) {
        zmq_socket_monitor(self->dealer, NULL, 0);
        zmq_close(self->monitor);
        self->monitor = NULL;
    }
    zmq_close(self->dealer);
    self->dealer = NULL;
    zt__rsock_init(&self->dealer_io, NULL);
}

/* A handshake failure from the monitor: the broker refused our CURVE key (ZeroMQ retries: the
 * broker's list may change), or its security mechanism is not ours (a configuration error that
 * no retry mends: run returns ZT_EACCES). */
static void
s_on_monitor(zt_mdp_worker_t *self)
{
    uint8_t event[6];
    int size;
    while ((size = zmq_recv(self->monitor, event, sizeof event, ZMQ_DONTWAIT)) >= 0) {
        char address[256];
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt(self->monitor, ZMQ_RCVMORE, &more, &more_size);
        if (more)
            (void)zmq_recv(self->monitor, address, sizeof address, 0);
        if (size < 6)
            continue;
        uint16_t kind;
        uint32_t value;
        memcpy(&kind, event, 2);
        memcpy(&value, event + 2, 4);
        if (kind == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            ZT_LOG_ERROR("worker '%s': the broker at %s rejected our CURVE key (ZeroMQ retries; "
                         "is our public key on the broker's list?)",
                         self->service, self->endpoint);
        } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH && !self->mismatch) {
            self->mismatch = true;
            ZT_LOG_ERROR("worker '%s': the broker at %s refused the handshake: security mechanism "
                         "mismatch (this worker uses %s, the broker %s); stopping",
                         self->service, self->endpoint, self->curve ? "CURVE" : "plaintext",
                         self->curve ? "plaintext or another mechanism"
                                     : "CURVE or another mechanism: see zt_mdp_worker_set_curve");
        }
    }
}

static void
s_connect(zt_mdp_worker_t *self)
{
    double now = zt_time_now();
    self->dealer = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!self->dealer) {
        self->reconnect_at = now + self->backoff;
        return;
    }
    int linger = 0;
    int64_t max_message = (int64_t)self->max_message;
    zt__rsock_init(&self->dealer_io, self->dealer);
    zmq_setsockopt(self->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->dealer, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message);
    if (self->curve) {
        zmq_setsockopt(self->dealer, ZMQ_CURVE_SERVERKEY, self->keys[0], 32);
        zmq_setsockopt(self->dealer, ZMQ_CURVE_PUBLICKEY, self->keys[1], 32);
        zmq_setsockopt(self->dealer, ZMQ_CURVE_SECRETKEY, self->keys[2], 32);
    }
    if (strncmp(self->endpoint, "inproc://", 9) != 0) {
        /* A rejected key or another security mechanism shows only as a failed handshake: watch
         * for it, to say so. */
        char name[96];
        snprintf(name, sizeof name, "inproc://zt-mdp-worker-monitor-%p-%u", (void *)self,
                 ++self->connections);
        int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
        if (zmq_socket_monitor(self->dealer, name, events) == 0) {
            self->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
            if (self->monitor && zmq_connect(self->monitor, name) != 0) {
                zmq_close(self->monitor);
                self->monitor = NULL;
            }
        }
    }
    if (zmq_connect(self->dealer, self->endpoint) != 0) {
        ZT_LOG_ERROR("worker '%s': cannot connect to %s: %s", self->service, self->endpoint,
                     zmq_strerror(zmq_errno()));
        s_close(self);
        self->reconnect_at = now + self->reconnect_max;
        return;
    }
    s_send_command(self, ZT__MDP_READY, self->service);
    self->broker_deadline = now + self->interval * self->liveness;
    self->next_heartbeat = now + self->interval;
}

static void
s_disconnect(zt_mdp_worker_t *self, const char *why)
{
    ZT_LOG_WARNING("worker '%s': %s; reconnecting to %s in %g s", self->service, why,
                   self->endpoint, self->backoff);
    s_close(self);
    self->reconnect_at = zt_time_now() + self->backoff;
    self->backoff *= 2;
    if (self->backoff > self->reconnect_max)
        self->backoff = self->reconnect_max;
}

/* Serve one request: lend the socket to the keeper, run the handler, take the socket back, reply.
 * f and m describe the REQUEST, whose frames stay valid for the call. */
static void
s_serve(zt_mdp_worker_t *self, const zt__mdp_frame_t *f, const zt__mdp_msg_t *m)
{
    zt_frames_t *request = zt_frames_new();
    for (size_t i = 0; request && i < m->body_count; i++)
        if (zt_frames_add(request, f[m->body_first + i].data, f[m->body_first + i].size) != 0)
            zt_frames_destroy(&request);
    if (!request) {
        ZT_LOG_ERROR("worker '%s': out of memory; a request is dropped", self->service);
        return;
    }
    pthread_mutex_lock(&self->lock);
    self->busy = true;
    pthread_mutex_unlock(&self->lock);
    zt_frames_t *reply = self->handler(request, self->arg);
    pthread_mutex_lock(&self->lock);
    self->busy = false;
    bool forgotten = self->disconnected;
    self->disconnected = false;
    pthread_mutex_unlock(&self->lock);
    zt_frames_destroy(&request);
    if (forgotten) {
        ZT_LOG_INFO("worker '%s': the broker forgot this worker; the reply is dropped",
                    self->service);
        zt_frames_destroy(&reply);
        s_disconnect(self, "the broker sent DISCONNECT");
        return;
    }
    size_t body = reply ? zt_frames_count(reply) : 0;
    uint8_t command = ZT__MDP_REPLY;
    zt__mdp_frame_t out[3 + ZT__MDP_MAX_ENVELOPE + 1 + ZT__MDP_MAX_FRAMES];
    size_t n = 0;
    out[n++] = (zt__mdp_frame_t){"", 0};
    out[n++] = (zt__mdp_frame_t){ZT__MDPW, 6};
    out[n++] = (zt__mdp_frame_t){&command, 1};
    for (size_t i = 0; i < m->env_count; i++)
        out[n++] = f[m->env_first + i];
    out[n++] = (zt__mdp_frame_t){"", 0};
    for (size_t i = 0; i < body && n < ZT_ARRAY_SIZE(out); i++)
        out[n++] = (zt__mdp_frame_t){zt_frames_data(reply, i), zt_frames_size(reply, i)};
    if (zt__mdp_send(&self->dealer_io, out, n) == 0) {
        atomic_fetch_add_explicit(&self->served, 1, memory_order_relaxed);
        self->next_heartbeat = zt_time_now() + self->interval; /* a reply is a sign of life */
    }
    zt_frames_destroy(&reply);
}

/* Read what the broker sent. serve: whether requests may be served (the handler thread); the
 * keeper passes false and drops a request (the broker never sends one to a busy worker). Returns
 * false when a DISCONNECT came. */
static bool
s_read_broker(zt_mdp_worker_t *self, bool serve)
{
    for (int batch = 0; batch < 64; batch++) {
        zmq_msg_t parts[ZT__MDP_MAX_FRAMES];
        bool too_many;
        int n = zt__mdp_recv_parts(&self->dealer_io, parts, ZT__MDP_MAX_FRAMES, &too_many);
        if (n < 0)
            return true; /* drained: the rsock marks it so, whichever thread read it */
        zt__mdp_frame_t f[ZT__MDP_MAX_FRAMES];
        for (int i = 0; i < n; i++)
            f[i] = (zt__mdp_frame_t){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
        zt__mdp_msg_t m;
        const char *why = "too many frames";
        int rc =
            too_many ? ZT_EPROTO : zt__mdp_decode(f, (size_t)n, ZT__MDP_AT_WORKER, 0, &m, &why);
        bool go_on = true;
        if (rc != 0) {
            self->malformed++;
            ZT_LOG_WARNING("worker '%s': dropped a malformed message from the broker (%s)",
                           self->service, why);
        } else {
            self->broker_deadline = zt_time_now() + self->interval * self->liveness;
            self->backoff = self->reconnect_initial;
            if (m.command == ZT__MDP_DISCONNECT)
                go_on = false;
            else if (m.command == ZT__MDP_REQUEST && serve)
                s_serve(self, f, &m);
            else if (m.command == ZT__MDP_REQUEST)
                ZT_LOG_WARNING("worker '%s': a request came while busy; dropped", self->service);
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
        if (!go_on || !self->dealer)
            return go_on;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------- */
/* The keeper: heartbeats while the handler runs */

static void *
s_keeper(void *arg)
{
    zt_mdp_worker_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->keeper_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        double wait = self->interval;
        until.tv_sec += (time_t)wait;
        until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&self->cond, &self->lock, &until);
        if (!self->busy || !self->dealer || self->disconnected)
            continue;
        /* The socket is ours until busy is cleared, which needs the lock we hold. */
        double now = zt_time_now();
        if (now >= self->next_heartbeat) {
            s_send_command(self, ZT__MDP_HEARTBEAT, NULL);
            self->next_heartbeat = now + self->interval;
        }
        /* With prefetch, requests the broker sent ahead wait in the socket for the handler thread;
         * reading here would have to drop them. */
        if (self->prefetch == 1 && !s_read_broker(self, false))
            self->disconnected = true;
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

/* ------------------------------------------------------------------------------------------- */
/* The handler thread */

/* How long the handler thread may wait, in ms: until the next heartbeat, the broker's deadline or
 * the next connect, and never more than an interval. */
static long
s_poll_timeout(const zt_mdp_worker_t *self, double now)
{
    double due = self->dealer ? self->next_heartbeat : self->reconnect_at;
    if (self->dealer && self->broker_deadline < due)
        due = self->broker_deadline;
    long timeout = (long)((due - now) * 1000.0) + 1;
    long cap = (long)(self->interval * 1000.0) + 1;
    return timeout < 0 ? 0 : timeout > cap ? cap : timeout;
}

/* Heartbeat the broker when due; give it up when it has been silent too long. */
static void
s_keep_alive(zt_mdp_worker_t *self)
{
    double now = zt_time_now();
    if (self->dealer && now >= self->next_heartbeat) {
        s_send_command(self, ZT__MDP_HEARTBEAT, NULL);
        self->next_heartbeat = now + self->interval;
    }
    if (self->dealer && now > self->broker_deadline)
        s_disconnect(self, "the broker is silent");
}

int
zt_mdp_worker_run(zt_mdp_worker_t *self)
{
    ZT_ASSERT(self);
    bool expected = false;
    if (!atomic_compare_exchange_strong(&self->running, &expected, true))
        return ZT_ESTATE;
    int rc = ZT_ESYS;
    pthread_t keeper;
    bool keeper_started = false;
    self->busy = self->keeper_stop = self->disconnected = self->mismatch = false;
    self->backoff = self->reconnect_initial;
    self->ctx = zt__zmq_ctx_acquire();
    if (!self->ctx)
        goto done;
    if (pthread_create(&keeper, NULL, s_keeper, self) != 0) {
        ZT_LOG_ERROR("worker '%s': cannot start its keeper thread", self->service);
        goto done;
    }
    keeper_started = true;
    rc = 0;
    s_connect(self);
    while (!atomic_load(&self->stop)) {
        double now = zt_time_now();
        if (!self->dealer && now >= self->reconnect_at)
            s_connect(self);
        long timeout = s_poll_timeout(self, now);
        short dealer_events =
            (short)(ZMQ_POLLIN | (zt__rsock_is_quiet(&self->dealer_io) ? ZT__ZPOLL_QUIET : 0));
        zmq_pollitem_t items[3] = {{NULL, self->wake[0], ZMQ_POLLIN, 0},
                                   {self->dealer, 0, dealer_events, 0},
                                   {self->monitor, 0, ZMQ_POLLIN, 0}};
        struct pollfd scratch[3];
        int count = !self->dealer ? 1 : self->monitor ? 3 : 2;
        if (zt__zpoll(items, count, timeout, scratch) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            ZT_LOG_ERROR("worker '%s': poll: %s", self->service, zmq_strerror(zmq_errno()));
            rc = ZT_ESYS;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            break;
        if (count == 3 && (items[2].revents & ZMQ_POLLIN))
            s_on_monitor(self);
        if (self->mismatch) {
            rc = ZT_EACCES;
            break;
        }
        if (self->dealer && !(items[1].revents & ZMQ_POLLIN))
            zt__rsock_polled(&self->dealer_io, false); /* asked, or its ZMQ_FD stayed silent */
        else if (self->dealer && !s_read_broker(self, true))
            s_disconnect(self, "the broker sent DISCONNECT");
        s_keep_alive(self);
    }
done:
    if (keeper_started) {
        pthread_mutex_lock(&self->lock);
        self->keeper_stop = true;
        pthread_cond_signal(&self->cond);
        pthread_mutex_unlock(&self->lock);
        pthread_join(keeper, NULL);
    }
    if (self->dealer) {
        s_send_command(self, ZT__MDP_DISCONNECT, NULL);
        int linger = 100;
        zmq_setsockopt(self->dealer, ZMQ_LINGER, &linger, sizeof linger);
        s_close(self);
    }
    if (self->ctx)
        zt__zmq_ctx_release();
    self->ctx = NULL;
    atomic_store(&self->running, false);
    return rc;
}
