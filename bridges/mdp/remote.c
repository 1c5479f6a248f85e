/*  bridges/mdp/remote.c - remote workers, the reactor's side: Majordomo requests as Deferreds
 *
 *  Design notes
 *  - Single-threaded: the DEALER socket, its monitor socket and every timer run on the reactor
 *    thread. The client owns its calls (s_call_t); a call's id (a 64-bit counter, never reused)
 *    travels in the MDP envelope and comes back with the reply, so replies may arrive in any order.
 *  - Exactly once: a call is in the id map from send until it ends; ending removes it from the map
 *    first, then fires its Deferred. Whatever comes later for that id (a reply after a timeout, a
 *    cancel) finds nothing and is counted as late. The three ways to end are a reply (or a broker
 *    error reply), the call's timer, and the Deferred's canceller.
 *  - The Deferred holds a reference for its caller; the call holds one (the producer's) until it
 *    fires it.
 *  - Connection state comes from zmq_socket_monitor: a refused CURVE key, or a broker whose
 *    security mechanism is not ours (plaintext against CURVE), fails every call in flight at once
 *    (ZT_EACCES) instead of letting each wait for its timeout, and later calls fail at once too
 *    until a handshake succeeds. */
#include <ztwist/remote.h>
#include <ztwist/log.h>

#include "base/base.h"
#include "base/zmq_ctx.h"
#include "mdp_codec.h"
#include "mdp_io.h"
#include "mdp_local.h"
#include "remote_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define RECV_BATCH 256 /* replies read per readable callback */

/* ------------------------------------------------------------------------------------------- */
/* The client */

typedef struct s_call s_call_t;
struct s_call {
    uint64_t id;                           /* the envelope id; never 0 */
    zt_remote_t *client;                   /* Borrowed; outlives the call */
    zt_deferred_t *d;                      /* the producer's reference; Owned until fired */
    zt_frames_t *request;                  /* the body, kept for re-sends; Owned */
    char service[ZT__MDP_MAX_SERVICE + 1]; /* the service's name */
    zt_remote_options_t options;           /* with the defaults filled in */
    int retries_left;                      /* re-sends still allowed */
    zt_delayed_call_t *timer;              /* the timeout; Owned handle */
};

struct zt_remote {
    zt_reactor_t *reactor;   /* Borrowed; outlives the client */
    void *ctx;               /* the shared context; one reference held */
    void *dealer;            /* the DEALER connected to the broker; Owned */
    void *monitor;           /* the PAIR receiving the DEALER's events; Owned or NULL */
    zt__rsock_t dealer_io;   /* the DEALER as the runtime sees it (every send and receive) */
    zt__rsock_t monitor_io;  /* the monitor PAIR, likewise */
    zt__mdp_link_t *link;    /* to a broker in this reactor (mdp_local.h), one reference; or NULL */
    char endpoint[256];      /* the broker's endpoint */
    size_t max_message;      /* the largest frame accepted from the broker */
    bool connecting;         /* whether connect was called */
    bool curve;              /* whether set_curve was called */
    bool ever_connected;     /* whether a handshake ever succeeded */
    uint64_t next_id;        /* the next call's id */
    s_call_t **slots;        /* open-addressing map id -> call; Owned array, calls Owned */
    size_t slot_count;       /* its size, a power of two */
    size_t used;             /* calls in it */
    zt_remote_stats_t stats; /* the counters */
    zt__remote_wait_t *waits; /* zt_remote_wait_for_service's waits (remote_wait.c); Owned list */
};

static size_t
s_hash(uint64_t id, size_t mask)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id & mask;
}

static int
s_map_put(zt_remote_t *self, s_call_t *call)
{
    if ((self->used + 1) * 2 > self->slot_count) {
        size_t count = self->slot_count ? self->slot_count * 2 : 64;
        s_call_t **slots = calloc(count, sizeof *slots);
        if (!slots)
            return ZT_ENOMEM;
        for (size_t i = 0; i < self->slot_count; i++) {
            s_call_t *c = self->slots[i];
            if (!c)
                continue;
            size_t j = s_hash(c->id, count - 1);
            while (slots[j])
                j = (j + 1) & (count - 1);
            slots[j] = c;
        }
        free(self->slots);
        self->slots = slots;
        self->slot_count = count;
    }
    size_t mask = self->slot_count - 1;
    size_t j = s_hash(call->id, mask);
    while (self->slots[j])
        j = (j + 1) & mask;
    self->slots[j] = call;
    self->used++;
    return 0;
}

static s_call_t *
s_map_find(const zt_remote_t *self, uint64_t id, size_t *slot)
{
    if (!self->slot_count)
        return NULL;
    size_t mask = self->slot_count - 1;
    for (size_t j = s_hash(id, mask); self->slots[j]; j = (j + 1) & mask)
        if (self->slots[j]->id == id) {
            if (slot)
                *slot = j;
            return self->slots[j];
        }
    return NULL;
}

/* Remove slot j, shifting the probe chain back so that lookups never stop at a hole. */
static void
s_map_remove_at(zt_remote_t *self, size_t j)
{
    size_t mask = self->slot_count - 1;
    self->slots[j] = NULL;
    self->used--;
    for (size_t k = (j + 1) & mask; self->slots[k]; k = (k + 1) & mask) {
        size_t home = s_hash(self->slots[k]->id, mask);
        /* Move k into the hole j when its home is not in the cyclic range (j, k]. */
        bool in_range = j < k ? (home > j && home <= k) : (home > j || home <= k);
        if (!in_range) {
            self->slots[j] = self->slots[k];
            self->slots[k] = NULL;
            j = k;
        }
    }
}

static void
s_call_free(s_call_t *call)
{
    if (call->timer) {
        (void)zt_delayed_call_cancel(call->timer);
        zt_delayed_call_release(&call->timer);
    }
    zt_frames_destroy(&call->request);
    zt_deferred_unref(&call->d);
    free(call);
}

/* End a call: out of the map, then fire its Deferred with result (owned). */
static void
s_call_end(s_call_t *call, zt_result_t result)
{
    zt_remote_t *self = call->client;
    size_t slot;
    if (s_map_find(self, call->id, &slot) == call)
        s_map_remove_at(self, slot);
    if (zt_is_err(result))
        self->stats.failures++;
    else
        self->stats.replies++;
    zt_deferred_t *d = call->d;
    call->d = NULL;
    s_call_free(call);
    (void)zt_deferred_callback(d, result);
    zt_deferred_unref(&d);
}

static int
s_call_send(s_call_t *call)
{
    zt_remote_t *self = call->client;
    uint8_t id[8];
    for (int i = 0; i < 8; i++)
        id[i] = (uint8_t)(call->id >> (56 - 8 * i));
    size_t body = zt_frames_count(call->request);
    if (body > ZT__MDP_MAX_FRAMES - 4)
        return ZT_EINVAL;
    zt__mdp_frame_t f[ZT__MDP_MAX_FRAMES];
    size_t n = 0;
    f[n++] = (zt__mdp_frame_t){id, 8};
    f[n++] = (zt__mdp_frame_t){"", 0};
    f[n++] = (zt__mdp_frame_t){ZT__MDPC, 6};
    f[n++] = (zt__mdp_frame_t){call->service, strlen(call->service)};
    for (size_t i = 0; i < body; i++)
        f[n++] =
            (zt__mdp_frame_t){zt_frames_data(call->request, i), zt_frames_size(call->request, i)};
    if (self->link)
        return self->link->broker ? zt__mdp_link_send(self->link, false, f, n) : ZT_ECONNLOST;
    return zt__mdp_send(&self->dealer_io, f, n);
}

/* Why the broker refused our handshakes, into why; false when it did not. */
static bool
s_refusal(const zt_remote_t *self, char *why, size_t size)
{
    if (self->stats.mechanism_mismatch)
        snprintf(why, size,
                 "broker at %s refused the handshake: security mechanism mismatch (this client "
                 "uses %s, the broker %s)",
                 self->endpoint, self->curve ? "CURVE" : "plaintext",
                 self->curve ? "plaintext or another mechanism"
                             : "CURVE or another mechanism: see zt_remote_set_curve");
    else if (self->stats.auth_rejected)
        snprintf(why, size, "broker at %s rejected our CURVE key", self->endpoint);
    else
        return false;
    return true;
}

static void
s_on_timeout(void *arg)
{
    s_call_t *call = arg;
    zt_remote_t *self = call->client;
    zt_delayed_call_release(&call->timer);
    self->stats.timeouts++;
    zt_failure_t *f;
    char why[512];
    if (s_refusal(self, why, sizeof why))
        f = zt_failure_from_code(ZT_EACCES, "%s", why);
    else if (!self->stats.connected)
        f = zt_failure_from_code(ZT_EUNREACHABLE, "broker at %s unreachable within %g s%s",
                                 self->endpoint, call->options.timeout,
                                 self->ever_connected ? " (the connection dropped)" : "");
    else
        f = zt_failure_new(ZT_TIMEOUT_ERROR, "no reply from service '%s' within %g s",
                           call->service, call->options.timeout);
    s_call_end(call, zt_err(f));
}

static void
s_canceller(zt_deferred_t *d, void *arg)
{
    (void)d;
    s_call_t *call = arg;
    zt_remote_t *self = call->client;
    size_t slot;
    if (s_map_find(self, call->id, &slot) == call)
        s_map_remove_at(self, slot);
    self->stats.failures++;
    s_call_free(call); /* drops the producer's reference; the Deferred then fails as cancelled */
}

static void
s_fail_all(zt_remote_t *self, int code, const char *why)
{
    while (self->used) {
        for (size_t i = 0; i < self->slot_count; i++) {
            if (self->slots[i]) {
                s_call_t *call = self->slots[i];
                s_call_end(call, zt_err(zt_failure_from_code(code, "%s", why)));
                break;
            }
        }
    }
}

static void
s_on_reply(s_call_t *call, const zt__mdp_frame_t *f, const zt__mdp_msg_t *m)
{
    zt_remote_t *self = call->client;
    /* A broker's error reply: [ZT__MDP_ERROR_MARK][status][message], under our service's name. */
    if (m->body_count >= 2 && zt__mdp_frame_is(&f[m->body_first], ZT__MDP_ERROR_MARK)) {
        char status[4] = "";
        char message[300] = "";
        if (f[m->body_first + 1].size == 3)
            memcpy(status, f[m->body_first + 1].data, 3);
        if (m->body_count >= 3)
            snprintf(message, sizeof message, "%.*s", (int)f[m->body_first + 2].size,
                     (const char *)f[m->body_first + 2].data);
        int code = ZT_EPROTO;
        if (strcmp(status, "404") == 0)
            code = ZT_ENOTFOUND;
        else if (strcmp(status, "503") == 0)
            code = ZT_EFULL;
        else if (strcmp(status, "410") == 0)
            code = ZT_ECONNLOST;
        else if (strcmp(status, "504") == 0)
            code = ZT_ETIMEDOUT;
        if (code == ZT_ECONNLOST && call->options.safe_to_retry && call->retries_left > 0) {
            call->retries_left--;
            self->stats.retries++;
            ZT_LOG_INFO("remote: %s; re-sending the request (safe to retry)", message);
            if (s_call_send(call) == 0)
                return;
        }
        s_call_end(call, zt_err(zt_failure_from_code(code, "%s", message)));
        return;
    }
    zt_frames_t *reply = zt_frames_new();
    for (size_t i = 0; reply && i < m->body_count; i++)
        if (zt_frames_add(reply, f[m->body_first + i].data, f[m->body_first + i].size) != 0)
            zt_frames_destroy(&reply);
    if (!reply) {
        s_call_end(call, zt_err(zt_failure_from_code(ZT_ENOMEM, "reply from '%s'", call->service)));
        return;
    }
    s_call_end(call, zt_ok(reply, zt_frames_free));
}

/* One reply as the DEALER reads it: [request id][""][MDPC01][service][body...]. */
static void
s_on_message(zt_remote_t *self, const zt__mdp_frame_t *f, size_t n, bool too_many)
{
    zt__mdp_msg_t m;
    const char *why = "too many frames";
    int rc = too_many ? ZT_EPROTO : zt__mdp_decode(f, n, ZT__MDP_AT_CLIENT, 0, &m, &why);
    if (rc == 0 && (m.env_count != 1 || f[0].size != 8)) {
        rc = ZT_EPROTO;
        why = "envelope is not a request id";
    }
    if (rc != 0) {
        self->stats.malformed++;
        ZT_LOG_WARNING("remote: dropped a malformed reply (%s)", why);
        return;
    }
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | ((const uint8_t *)f[0].data)[i];
    s_call_t *call = s_map_find(self, id, NULL);
    if (call)
        s_on_reply(call, f, &m);
    else
        self->stats.late++;
}

void
zt__remote_on_local(zt_remote_t *self, const zt__mdp_frame_t *f, size_t n)
{
    s_on_message(self, f, n, false);
}

static void
s_on_dealer(zt_reactor_t *reactor, void *socket, void *arg)
{
    (void)reactor, (void)socket;
    zt_remote_t *self = arg;
    zmq_msg_t parts[ZT__MDP_MAX_FRAMES];
    for (int batch = 0; batch < RECV_BATCH; batch++) {
        bool too_many = false;
        int got = zt__mdp_recv_parts(&self->dealer_io, parts, ZT_ARRAY_SIZE(parts), &too_many);
        if (got < 0)
            return; /* drained (the rsock knows), or the socket is closing */
        size_t n = (size_t)got;
        zt__mdp_frame_t f[ZT__MDP_MAX_FRAMES];
        for (size_t i = 0; i < n; i++)
            f[i] = (zt__mdp_frame_t){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
        s_on_message(self, f, n, too_many);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* The connection to the broker dropped: the broker routes replies by connection, so nothing in
 * flight can come back. Re-send what is safe to retry (the DEALER queues it until it reconnects);
 * fail the rest at once rather than at their timeouts. */
static void
s_connection_lost(zt_remote_t *self)
{
    if (!self->used)
        return;
    ZT_LOG_WARNING("remote: connection to broker at %s lost with %zu request(s) in flight",
                   self->endpoint, self->used);
    /* Ids, not pointers: ending a call runs user callbacks, which may cancel other calls. */
    uint64_t *ids = malloc(self->used * sizeof *ids);
    if (!ids)
        return; /* they end at their timeouts */
    size_t n = 0;
    for (size_t i = 0; i < self->slot_count; i++)
        if (self->slots[i])
            ids[n++] = self->slots[i]->id;
    for (size_t i = 0; i < n; i++) {
        s_call_t *call = s_map_find(self, ids[i], NULL);
        if (!call)
            continue;
        if (call->options.safe_to_retry && call->retries_left > 0) {
            call->retries_left--;
            self->stats.retries++;
            if (s_call_send(call) == 0)
                continue;
        }
        s_call_end(call, zt_err(zt_failure_from_code(
                             ZT_ECONNLOST, "connection to broker at %s lost while serving '%s'",
                             self->endpoint, call->service)));
    }
    free(ids);
}

void
zt__remote_broker_gone(zt_remote_t *self)
{
    self->stats.connected = false;
    s_connection_lost(self); /* re-sends fail at once: the link has no broker any more */
}

static void
s_on_monitor(zt_reactor_t *reactor, void *socket, void *arg)
{
    (void)reactor;
    zt_remote_t *self = arg;
    for (int batch = 0; batch < 64; batch++) {
        uint8_t event[6];
        int size = zt__rsock_recv(&self->monitor_io, event, sizeof event, ZMQ_DONTWAIT);
        if (size < 0)
            return; /* drained (the rsock knows) */
        char address[256];
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_size);
        if (more)
            (void)zt__rsock_recv(&self->monitor_io, address, sizeof address, 0);
        if (size < 6)
            continue;
        uint16_t kind;
        memcpy(&kind, event, 2);
        uint32_t value;
        memcpy(&value, event + 2, 4);
        if (kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            self->stats.connected = true;
            self->ever_connected = true;
            self->stats.auth_rejected = false;
            self->stats.mechanism_mismatch = false;
        } else if (kind == ZMQ_EVENT_DISCONNECTED) {
            self->stats.connected = false;
            s_connection_lost(self);
        } else if (kind == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
                   value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
            /* A configuration error: ZeroMQ would retry for ever, and every call would wait for
             * its timeout, or fail as a lost connection, with nothing said. */
            bool first = !self->stats.mechanism_mismatch;
            self->stats.connected = false;
            self->stats.mechanism_mismatch = true;
            char why[512];
            s_refusal(self, why, sizeof why);
            if (first)
                ZT_LOG_ERROR("remote: %s", why);
            s_fail_all(self, ZT_EACCES, why);
        } else if (kind == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                   kind == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            /* A broken or interrupted handshake (a peer going away): ZeroMQ retries by itself. */
            ZT_LOG_DEBUG("remote: handshake with %s failed (event %u)", self->endpoint, kind);
        } else if (kind == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            bool first = !self->stats.auth_rejected;
            self->stats.connected = false;
            self->stats.auth_rejected = true;
            if (first)
                ZT_LOG_ERROR("remote: broker at %s refused the handshake (CURVE key rejected?)",
                             self->endpoint);
            char why[512];
            s_refusal(self, why, sizeof why);
            s_fail_all(self, ZT_EACCES, why);
        }
    }
}

zt_remote_t *
zt_remote_new(zt_reactor_t *reactor)
{
    ZT_ASSERT(reactor);
    zt_remote_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->reactor = reactor;
    self->next_id = 1;
    self->max_message = ZT_BROKER_MAX_MESSAGE;
    self->ctx = zt__zmq_ctx_acquire();
    if (!self->ctx)
        goto failed;
    self->dealer = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!self->dealer)
        goto failed;
    int linger = 0;
    int hwm = 100000;
    zt__rsock_init(&self->dealer_io, self->dealer);
    zmq_setsockopt(self->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    return self;
failed:
    ZT_LOG_ERROR("remote: cannot create the client socket");
    zt_remote_destroy(&self);
    return NULL;
}

void
zt_remote_destroy(zt_remote_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_remote_t *self = *self_p;
    while (self->used) {
        for (size_t i = 0; i < self->slot_count; i++) {
            if (self->slots[i]) {
                s_call_end(self->slots[i],
                           zt_err(zt_failure_new(ZT_CANCELLED_ERROR, "client destroyed")));
                break;
            }
        }
    }
    zt__remote_waits_end(&self->waits); /* those whose question was in flight have ended */
    free(self->slots);
    if (self->monitor) {
        zt__rsock_unwatch(&self->monitor_io);
        zmq_socket_monitor(self->dealer, NULL, 0);
        zmq_close(self->monitor);
    }
    if (self->link) {
        self->link->client = NULL;
        if (self->link->broker)
            zt__broker_detach(self->link->broker, self->link);
        zt__mdp_link_unref(&self->link);
    }
    if (self->dealer) {
        zt__rsock_unwatch(&self->dealer_io); /* nothing when it was never watched (a link) */
        zmq_close(self->dealer);
    }
    if (self->ctx)
        zt__zmq_ctx_release();
    free(self);
    *self_p = NULL;
}

int
zt_remote_set_curve(zt_remote_t *self, const char *server_public, const char *public_key,
                    const char *secret_key)
{
    ZT_ASSERT(self);
    if (self->connecting)
        return ZT_ESTATE;
    uint8_t keys[3][32];
    const char *z85[3] = {server_public, public_key, secret_key};
    for (int i = 0; i < 3; i++)
        if (!z85[i] || strlen(z85[i]) != 40 || !zmq_z85_decode(keys[i], z85[i]))
            return ZT_EINVAL;
    if (zmq_setsockopt(self->dealer, ZMQ_CURVE_SERVERKEY, keys[0], 32) != 0 ||
        zmq_setsockopt(self->dealer, ZMQ_CURVE_PUBLICKEY, keys[1], 32) != 0 ||
        zmq_setsockopt(self->dealer, ZMQ_CURVE_SECRETKEY, keys[2], 32) != 0) {
        ZT_LOG_ERROR("remote: CURVE unavailable: %s", zmq_strerror(zmq_errno()));
        return ZT_ESYS;
    }
    self->curve = true;
    return 0;
}

int
zt_remote_set_max_message(zt_remote_t *self, size_t bytes)
{
    ZT_ASSERT(self);
    if (bytes == 0 || bytes > (size_t)INT64_MAX)
        return ZT_EINVAL;
    if (self->connecting)
        return ZT_ESTATE;
    self->max_message = bytes;
    return 0;
}

int
zt_remote_connect(zt_remote_t *self, const char *endpoint)
{
    ZT_ASSERT(self);
    if (!endpoint || strlen(endpoint) >= sizeof self->endpoint)
        return ZT_EINVAL;
    if (self->connecting)
        return ZT_ESTATE;
    char monitor[64];
    snprintf(monitor, sizeof monitor, "inproc://zt-remote-monitor-%p", (void *)self);
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    bool local = strncmp(endpoint, "inproc://", 9) == 0; /* no handshake, nothing to watch */
    int64_t max_message = (int64_t)self->max_message;
    zmq_setsockopt(self->dealer, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message);
    if (!local && zmq_socket_monitor(self->dealer, monitor, events) == 0) {
        self->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
        if (self->monitor)
            zt__rsock_init(&self->monitor_io, self->monitor);
        if (!self->monitor || zmq_connect(self->monitor, monitor) != 0 ||
            zt__rsock_watch(&self->monitor_io, self->reactor, s_on_monitor, self) != 0) {
            if (self->monitor)
                zmq_close(self->monitor);
            self->monitor = NULL;
            zmq_socket_monitor(self->dealer, NULL, 0);
        }
    }
    if (zmq_connect(self->dealer, endpoint) != 0) {
        int e = zmq_errno();
        ZT_LOG_ERROR("remote: cannot connect to %s: %s", endpoint, zmq_strerror(e));
        return e == EINVAL || e == EPROTONOSUPPORT ? ZT_EINVAL : ZT_ESYS;
    }
    int rc = zt__rsock_watch(&self->dealer_io, self->reactor, s_on_dealer, self);
    if (rc != 0)
        return rc;
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    self->connecting = true;
    if (local) {
        /* A broker in this process: inproc has no handshake, hence no monitor event; the link is
         * up as soon as the broker is bound. */
        self->stats.connected = true;
        self->ever_connected = true;
    }
    return 0;
}

int
zt_remote_connect_broker(zt_remote_t *self, zt_broker_t *broker)
{
    ZT_ASSERT(self);
    if (!broker)
        return ZT_EINVAL;
    if (self->connecting)
        return ZT_ESTATE;
    zt__mdp_link_t *link = zt__mdp_link_new(self->reactor, broker, self);
    if (!link)
        return ZT_ENOMEM;
    int rc = zt__broker_attach(broker, link);
    if (rc != 0) {
        zt__mdp_link_unref(&link);
        return rc;
    }
    self->link = link;
    snprintf(self->endpoint, sizeof self->endpoint, "(in-process)");
    self->connecting = true;
    self->stats.connected = true;
    self->ever_connected = true;
    return 0;
}

zt_deferred_t *
zt_defer_to_remote(zt_reactor_t *reactor, zt_remote_t *client, const char *service,
                   zt_frames_t **request_p, const zt_remote_options_t *options)
{
    ZT_ASSERT(client);
    ZT_ASSERT_MSG(reactor == client->reactor, "zt_defer_to_remote: not the client's reactor");
    if (!service || !*service || strlen(service) > ZT__MDP_MAX_SERVICE || !client->connecting)
        return NULL;
    if (request_p && *request_p && zt_frames_count(*request_p) > ZT__MDP_MAX_FRAMES - 4)
        return NULL;
    s_call_t *call = calloc(1, sizeof *call);
    if (!call)
        return NULL;
    call->client = client;
    call->id = client->next_id++;
    snprintf(call->service, sizeof call->service, "%s", service);
    if (options)
        call->options = *options;
    if (!(call->options.timeout > 0))
        call->options.timeout = ZT_REMOTE_DEFAULT_TIMEOUT;
    if (call->options.max_retries <= 0)
        call->options.max_retries = ZT_REMOTE_DEFAULT_RETRIES;
    call->retries_left = call->options.safe_to_retry ? call->options.max_retries : 0;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_canceller, call);
    call->request = request_p && *request_p ? *request_p : zt_frames_new();
    if (!d || !call->request || s_map_put(client, call) != 0 ||
        zt_reactor_call_later(reactor, call->options.timeout, s_on_timeout, call, &call->timer) !=
            0) {
        size_t slot;
        if (s_map_find(client, call->id, &slot) == call)
            s_map_remove_at(client, slot);
        if (request_p && call->request == *request_p)
            call->request = NULL;
        zt_frames_destroy(&call->request);
        zt_deferred_unref(&d);
        free(call);
        return NULL;
    }
    if (request_p)
        *request_p = NULL;
    call->d = zt_deferred_ref(d);
    client->stats.requests++;
    char why[512];
    if (!client->stats.connected && s_refusal(client, why, sizeof why)) {
        s_call_end(call, zt_err(zt_failure_from_code(ZT_EACCES, "%s", why)));
        return d;
    }
    int rc = s_call_send(call);
    if (rc != 0)
        s_call_end(call, zt_err(zt_failure_from_code(rc, "cannot send to broker at %s",
                                                     client->endpoint)));
    return d;
}

void
zt_remote_stats(const zt_remote_t *self, zt_remote_stats_t *stats)
{
    ZT_ASSERT(self && stats);
    *stats = self->stats;
    stats->in_flight = self->used;
}

zt__remote_wait_t **
zt__remote_waits(zt_remote_t *client)
{
    return &client->waits;
}

zt_reactor_t *
zt__remote_reactor(const zt_remote_t *client)
{
    return client->reactor;
}

bool
zt__remote_is_connecting(const zt_remote_t *client)
{
    return client->connecting;
}
