/*  bridges/mdp/broker.c - a Majordomo broker (RFC 7/MDP v0.1, RFC 8/MMI) on the reactor's loop
 *
 *  Design notes
 *  - Single-threaded: the ROUTER socket, the ZAP socket and the heartbeat timer all run on the
 *    reactor thread; no lock anywhere. The broker owns every worker, service and stored request.
 *  - A stored request (s_request_t) is one allocation holding copies of the client's envelope and
 *    body. It is owned by exactly one place at a time: a service's queue, or the worker it was
 *    given to (w->held, oldest first). It ends exactly once: forwarded with the worker's reply,
 *    answered with a "410" error reply when its worker dies, or freed at destroy. Its bytes count
 *    in stats.stored_bytes from the moment it is queued until it ends (s_request_end), and a
 *    request that would take that sum past queue_bytes is refused before it is stored.
 *  - Every error reply names the requested service, as RFC 7 has every reply do; its body says it
 *    is the broker's: ["ztwist.error"][status][message].
 *  - Prefetch (ztwist's extension to RFC 7): a worker may say in READY how many requests it takes
 *    at once (1 without the frame, as RFC 7 has it). A REPLY ends the held request whose envelope
 *    it carries (ztwist's client puts a request id there), so replies may come in any order; an
 *    in-order worker costs one comparison. Requests held by one connection travel in the same TCP
 *    segments, which is what lets a worker process serve tens of thousands a second.
 *  - A service's workers with room (holding fewer than their prefetch) form a list ordered by the
 *    time they got room: dispatch takes the head and, if it still has room, puts it at the tail,
 *    so requests go round the workers and the least recently used gets the next one.
 *  - Announced services are never removed: a service whose workers all died keeps its queue, so
 *    clients wait (within their timeouts) for a worker to come back. A name no worker ever
 *    announced is unknown; during the grace after start it gets a service all the same, which
 *    the end of the grace removes with its queue ("404" to each request, as after the grace).
 *  - Handshakes that fail (a peer with another security mechanism) never reach the ROUTER as
 *    messages: a socket monitor reports them, and they are logged and counted.
 *  - Input from the network is decoded by mdp_codec.c before anything is looked at; a malformed
 *    message is dropped, counted and logged (the first ten, then one in a thousand). */
#include <ztwist/broker.h>
#include <ztwist/log.h>

#include "base/base.h"
#include "base/zmq_ctx.h"
#include "broker_internal.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* ------------------------------------------------------------------------------------------- */
/* ZAP: the CURVE key check (RFC 27) */

/* Whether a client's or worker's public key may come in: every key when no list and no directory
 * is given, else a key listed (zt_broker_allow_key) or one with a certificate in the directory.
 * zcertstore_lookup reloads the directory first when its files changed (their number, total size
 * or newest modification time). */
static bool
s_allowed(zt_broker_t *self, const uint8_t key[32], const char *z85)
{
    if (self->allowed_count == 0 && !self->certs)
        return true;
    for (size_t i = 0; i < self->allowed_count; i++)
        if (memcmp(self->allowed[i], key, 32) == 0)
            return true;
    return self->certs && zcertstore_lookup(self->certs, z85) != NULL;
}

static void
s_on_zap(zt_reactor_t *reactor, void *socket, void *arg)
{
    (void)reactor, (void)socket;
    zt_broker_t *self = arg;
    for (int batch = 0; batch < ZT__BROKER_RECV_BATCH; batch++) {
        zmq_msg_t parts[8];
        bool too_many = false; /* a ZAP request has at most 7 frames; extra ones are ignored */
        int got = zt__mdp_recv_parts(&self->zap_io, parts, ZT_ARRAY_SIZE(parts), &too_many);
        if (got < 0)
            return;
        size_t n = (size_t)got;
        /* [version][request id][domain][address][identity][mechanism][credentials...] */
        const char *status = "400";
        const char *text = "malformed ZAP request";
        if (n >= 6) {
            bool curve =
                zmq_msg_size(&parts[5]) == 5 && memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) == 0;
            if (!curve) {
                status = "200";
                text = "OK";
            } else if (n >= 7 && zmq_msg_size(&parts[6]) == 32) {
                const uint8_t *key = zmq_msg_data(&parts[6]);
                char z85[41];
                zmq_z85_encode(z85, key, 32);
                if (s_allowed(self, key, z85)) {
                    status = "200";
                    text = "OK";
                } else {
                    self->stats.auth_rejected++;
                    ZT_LOG_WARNING("broker: rejected CURVE key %s (not in the allowed list)", z85);
                    text = "public key not allowed";
                }
            }
        }
        const void *reqid = n >= 2 ? zmq_msg_data(&parts[1]) : "";
        size_t reqid_size = n >= 2 ? zmq_msg_size(&parts[1]) : 0;
        zt__mdp_frame_t reply[6] = {
            {"1.0", 3}, {reqid, reqid_size}, {status, 3}, {text, strlen(text)}, {"", 0}, {"", 0}};
        (void)zt__mdp_send(&self->zap_io, reply, 6);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Failed handshakes: ZeroMQ ends them before any message, so only a socket monitor sees them */

static void
s_on_monitor(zt_reactor_t *reactor, void *socket, void *arg)
{
    (void)reactor;
    zt_broker_t *self = arg;
    for (int batch = 0; batch < ZT__BROKER_RECV_BATCH; batch++) {
        uint8_t event[6];
        int size = zmq_recv(socket, event, sizeof event, ZMQ_DONTWAIT);
        if (size < 0)
            return;
        char address[256] = "";
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_size);
        if (more) {
            int n = zmq_recv(socket, address, sizeof address - 1, 0);
            address[n < 0 ? 0 : n < (int)sizeof address ? n : (int)sizeof address - 1] = '\0';
        }
        if (size < 6)
            continue;
        uint16_t kind;
        uint32_t value;
        memcpy(&kind, event, 2);
        memcpy(&value, event + 2, 4);
        self->stats.handshake_failed++;
        bool loud = self->stats.handshake_failed <= 10 || self->stats.handshake_failed % 1000 == 0;
        if (kind == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
            value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
            if (loud)
                ZT_LOG_WARNING("broker: refused a peer on %s: security mechanism mismatch (this "
                               "broker uses %s, the peer %s); %llu failed handshakes so far",
                               address, self->curve ? "CURVE" : "plaintext",
                               self->curve ? "does not" : "CURVE or another",
                               (unsigned long long)self->stats.handshake_failed);
        } else if (loud) {
            ZT_LOG_INFO("broker: a handshake on %s failed (ZeroMQ event 0x%x, 0x%x); %llu so far",
                        address, kind, value, (unsigned long long)self->stats.handshake_failed);
        }
    }
}

/* Watch the ROUTER's handshakes. Without a monitor the broker still serves; it only cannot say
 * why a peer never got in. */
static void
s_watch_handshakes(zt_broker_t *self)
{
    char name[64];
    snprintf(name, sizeof name, "inproc://zt-broker-monitor-%p", (void *)self);
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor(self->router, name, events) != 0)
        return;
    self->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
    if (self->monitor && zmq_connect(self->monitor, name) == 0 &&
        zt_reactor_add_socket(self->reactor, self->monitor, s_on_monitor, self) == 0)
        return;
    ZT_LOG_WARNING("broker: cannot watch handshakes; failed ones go unreported");
    if (self->monitor)
        zmq_close(self->monitor);
    self->monitor = NULL;
    zmq_socket_monitor(self->router, NULL, 0);
}

/* ------------------------------------------------------------------------------------------- */
/* Clients in this reactor (mdp_local.h) */

int
zt__broker_attach(zt_broker_t *self, zt__mdp_link_t *link)
{
    if (link->reactor != self->reactor)
        return ZT_EINVAL;
    zt__mdp_link_t **links = realloc(self->links, (self->nlinks + 1) * sizeof *links);
    if (!links)
        return ZT_ENOMEM;
    self->links = links;
    link->id = ++self->next_link_id;
    link->refs++;
    self->links[self->nlinks++] = link;
    return 0;
}

void
zt__broker_detach(zt_broker_t *self, zt__mdp_link_t *link)
{
    for (size_t i = 0; i < self->nlinks; i++) {
        if (self->links[i] == link) {
            self->links[i] = self->links[--self->nlinks];
            link->broker = NULL;
            zt__mdp_link_unref(&link);
            return;
        }
    }
}

void
zt__broker_on_local(zt_broker_t *self, zt__mdp_link_t *link, const zt__mdp_frame_t *f, size_t n)
{
    uint8_t id[ZT__MDP_LOCAL_ID_SIZE] = {0,
                                         'L',
                                         (uint8_t)(link->id >> 24),
                                         (uint8_t)(link->id >> 16),
                                         (uint8_t)(link->id >> 8),
                                         (uint8_t)link->id};
    zt__mdp_frame_t all[ZT__MDP_MAX_FRAMES + 1];
    bool too_many = n + 1 > ZT_ARRAY_SIZE(all);
    size_t count = 0;
    all[count++] = (zt__mdp_frame_t){id, sizeof id};
    for (size_t i = 0; i < n && count < ZT_ARRAY_SIZE(all); i++)
        all[count++] = f[i];
    zt__broker_on_message(self, all, count, too_many);
}

/* ------------------------------------------------------------------------------------------- */
/* Public API */

/* No frame can be larger than a whole message may be: ZeroMQ closes the connection of a peer
 * that sends one, rather than buffer it whole before the codec could refuse it. ZeroMQ copies the
 * option into each listener at bind, so it holds for endpoints bound from now on. */
static void
s_bound_frames(zt_broker_t *self)
{
    int64_t bytes = self->max_message > (size_t)INT64_MAX ? -1 : (int64_t)self->max_message;
    if (self->router)
        (void)zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &bytes, sizeof bytes);
}

zt_broker_t *
zt_broker_new(zt_reactor_t *reactor)
{
    ZT_ASSERT(reactor);
    zt_broker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->reactor = reactor;
    self->interval = ZT_MDP_HEARTBEAT_INTERVAL;
    self->liveness = ZT_MDP_HEARTBEAT_LIVENESS;
    self->queue_limit = ZT_BROKER_QUEUE_LIMIT;
    self->max_message = ZT_BROKER_MAX_MESSAGE;
    self->queue_bytes = ZT_BROKER_QUEUE_BYTES;
    self->ctx = zt__zmq_ctx_acquire();
    if (!self->ctx)
        goto failed;
    self->router = zmq_socket(self->ctx, ZMQ_ROUTER);
    if (!self->router) {
        ZT_LOG_ERROR("broker: zmq_socket: %s", zmq_strerror(zmq_errno()));
        goto failed;
    }
    zt__rsock_init(&self->router_io, self->router);
    int one = 1;
    int linger = 200;
    zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(self->router, ZMQ_LINGER, &linger, sizeof linger);
    s_bound_frames(self);
    return self;
failed:
    zt_broker_destroy(&self);
    return NULL;
}

void
zt_broker_destroy(zt_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_broker_t *self = *self_p;
    while (self->workers)
        zt__broker_worker_delete(self, self->workers, true, "broker shutting down");
    while (self->services) {
        zt__broker_service_t *s = self->services;
        self->services = s->next;
        while (s->queue_head) {
            zt__broker_request_t *r = s->queue_head;
            s->queue_head = r->next;
            zt__broker_request_end(self, r);
        }
        free(s);
    }
    if (self->grace_end) {
        (void)zt_delayed_call_cancel(self->grace_end);
        zt_delayed_call_release(&self->grace_end);
    }
    if (self->sweep) {
        (void)zt_delayed_call_cancel(self->sweep);
        zt_delayed_call_release(&self->sweep);
    }
    if (self->heartbeat) {
        (void)zt_delayed_call_cancel(self->heartbeat);
        zt_delayed_call_release(&self->heartbeat);
    }
    /* In-process clients hear of it as of a dropped connection, on the next pass (a message with
     * no frames); whatever they send from now on is dropped. */
    for (size_t i = 0; i < self->nlinks; i++) {
        zt__mdp_link_t *link = self->links[i];
        if (zt__mdp_link_send(link, true, NULL, 0) != 0 && link->client)
            zt__remote_broker_gone(link->client);
        link->broker = NULL;
        zt__mdp_link_unref(&link);
    }
    free(self->links);
    free(self->table);
    if (self->monitor) {
        (void)zt_reactor_remove_socket(self->reactor, self->monitor);
        zmq_socket_monitor(self->router, NULL, 0);
        zmq_close(self->monitor);
    }
    if (self->router) {
        zt__rsock_unwatch(&self->router_io);
        zmq_close(self->router);
    }
    if (self->zap) {
        zt__rsock_unwatch(&self->zap_io);
        zmq_close(self->zap);
    }
    if (self->ctx)
        zt__zmq_ctx_release();
    free(self->allowed);
    zcertstore_destroy(&self->certs);
    free(self);
    *self_p = NULL;
}

int
zt_broker_set_heartbeat(zt_broker_t *self, double interval, int liveness)
{
    ZT_ASSERT(self);
    if (!(interval > 0) || liveness < 1)
        return ZT_EINVAL;
    if (self->bound)
        return ZT_ESTATE;
    self->interval = interval;
    self->liveness = liveness;
    return 0;
}

int
zt_broker_set_queue_limit(zt_broker_t *self, size_t limit)
{
    ZT_ASSERT(self);
    if (limit == 0)
        return ZT_EINVAL;
    self->queue_limit = limit;
    return 0;
}

int
zt_broker_set_queue_bytes(zt_broker_t *self, size_t bytes)
{
    ZT_ASSERT(self);
    if (bytes == 0)
        return ZT_EINVAL;
    self->queue_bytes = bytes;
    return 0;
}

int
zt_broker_set_queue_timeout(zt_broker_t *self, double seconds)
{
    ZT_ASSERT(self);
    if (!(seconds >= 0))
        return ZT_EINVAL;
    self->queue_timeout = seconds;
    zt__broker_arm_sweep(self);
    return 0;
}

int
zt_broker_set_unknown_grace(zt_broker_t *self, double seconds)
{
    ZT_ASSERT(self);
    if (!(seconds >= 0))
        return ZT_EINVAL;
    self->grace = seconds;
    zt__broker_arm_grace(self);
    return 0;
}

int
zt_broker_set_max_message(zt_broker_t *self, size_t bytes)
{
    ZT_ASSERT(self);
    if (bytes == 0)
        return ZT_EINVAL;
    self->max_message = bytes;
    s_bound_frames(self);
    return 0;
}

static int
s_decode_key(const char *z85, uint8_t key[32])
{
    if (!z85 || strlen(z85) != 40 || !zmq_z85_decode(key, z85))
        return ZT_EINVAL;
    return 0;
}

int
zt_broker_set_curve(zt_broker_t *self, const char *secret_key)
{
    ZT_ASSERT(self);
    if (self->bound)
        return ZT_ESTATE;
    if (s_decode_key(secret_key, self->secret) != 0)
        return ZT_EINVAL;
    self->curve = true;
    return 0;
}

int
zt_broker_allow_key(zt_broker_t *self, const char *public_key)
{
    ZT_ASSERT(self);
    uint8_t key[32];
    if (s_decode_key(public_key, key) != 0)
        return ZT_EINVAL;
    uint8_t(*grown)[32] = realloc(self->allowed, (self->allowed_count + 1) * sizeof *grown);
    if (!grown)
        return ZT_ENOMEM;
    self->allowed = grown;
    memcpy(self->allowed[self->allowed_count++], key, 32);
    return 0;
}

int
zt_broker_allow_directory(zt_broker_t *self, const char *directory)
{
    ZT_ASSERT(self);
    struct stat st;
    if (!directory || !*directory)
        return ZT_EINVAL;
    if (stat(directory, &st) != 0 || !S_ISDIR(st.st_mode))
        return ZT_ENOTFOUND;
    zcertstore_t *certs = zcertstore_new(directory);
    if (!certs)
        return ZT_ENOMEM;
    zcertstore_destroy(&self->certs);
    self->certs = certs;
    return 0;
}

static int
s_start(zt_broker_t *self)
{
    if (self->curve) {
        self->zap = zmq_socket(self->ctx, ZMQ_REP);
        if (!self->zap || zmq_bind(self->zap, ZAP_ENDPOINT) != 0) {
            ZT_LOG_ERROR(
                "broker: cannot bind the ZAP handler %s: %s (one CURVE broker per process)",
                ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
            return zmq_errno() == EADDRINUSE ? ZT_EADDRINUSE : ZT_ESYS;
        }
        zt__rsock_init(&self->zap_io, self->zap);
        int rc = zt__rsock_watch(&self->zap_io, self->reactor, s_on_zap, self);
        if (rc != 0)
            return rc;
        int one = 1;
        if (zmq_setsockopt(self->router, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
            zmq_setsockopt(self->router, ZMQ_CURVE_SECRETKEY, self->secret, 32) != 0 ||
            zmq_setsockopt(self->router, ZMQ_ZAP_DOMAIN, "ztwist", 6) != 0) {
            ZT_LOG_ERROR("broker: CURVE unavailable: %s", zmq_strerror(zmq_errno()));
            return ZT_ESYS;
        }
    }
    s_watch_handshakes(self);
    int rc = zt__rsock_watch(&self->router_io, self->reactor, zt__broker_on_router, self);
    if (rc != 0)
        return rc;
    return zt_reactor_call_later(self->reactor, self->interval, zt__broker_on_heartbeat, self,
                                 &self->heartbeat);
}

int
zt_broker_bind(zt_broker_t *self, const char *endpoint)
{
    ZT_ASSERT(self);
    if (!endpoint)
        return ZT_EINVAL;
    if (!self->bound) {
        int rc = s_start(self);
        if (rc != 0)
            return rc;
        self->bound = true;
        self->started = zt_reactor_seconds(self->reactor);
        zt__broker_arm_grace(self);
    }
    if (zmq_bind(self->router, endpoint) != 0) {
        int e = zmq_errno();
        ZT_LOG_ERROR("broker: cannot bind %s: %s", endpoint, zmq_strerror(e));
        if (e == EADDRINUSE)
            return ZT_EADDRINUSE;
        if (e == EINVAL || e == EPROTONOSUPPORT || e == ENODEV)
            return ZT_EINVAL;
        return ZT_ESYS;
    }
    size_t size = sizeof self->endpoint;
    if (zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &size) != 0)
        self->endpoint[0] = '\0';
    ZT_LOG_INFO("broker: listening on %s", self->endpoint);
    return 0;
}

const char *
zt_broker_endpoint(const zt_broker_t *self)
{
    ZT_ASSERT(self);
    return self->endpoint;
}

void
zt_broker_stats(const zt_broker_t *self, zt_broker_stats_t *stats)
{
    ZT_ASSERT(self && stats);
    *stats = self->stats;
}
