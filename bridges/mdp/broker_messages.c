/*  bridges/mdp/broker_messages.c - the broker's messages: what comes in from clients and workers
 * (decoded first, malformed input dropped and counted), the replies and commands that go out, and
 * the heartbeat
 *
 *  Reactor thread only; the design notes at the top of broker.c hold here.  */
#include <ztwist/broker.h>
#include <ztwist/log.h>

#include "base/base.h"
#include "base/zmq_ctx.h"
#include "broker_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

/* ------------------------------------------------------------------------------------------- */
/* Sending */

const uint8_t zt__broker_empty[1] = {0};

/* Every send on the ROUTER goes through here, and through its rsock, so the reactor knows to ask
 * the socket again before it sleeps (a send may consume the signal of a message arriving). */
int
zt__broker_router_send(zt_broker_t *self, const zt__mdp_frame_t *f, size_t n)
{
    return zt__mdp_send(&self->router_io, f, n);
}

int
zt__broker_send_command(zt_broker_t *self, zt__broker_worker_t *w, uint8_t command)
{
    zt__mdp_frame_t f[4] = {
        {w->id, w->id_size}, {zt__broker_empty, 0}, {ZT__MDPW, 6}, {&command, 1}};
    return zt__broker_router_send(self, f, 4);
}

/* Whether a routing frame names an in-process client (mdp_local.h) rather than a socket peer. */
static bool
s_is_local_id(const zt__mdp_frame_t *id)
{
    return id->size == ZT__MDP_LOCAL_ID_SIZE && memcmp(id->data, "\0L", 2) == 0;
}

/* The live link whose id the routing frame carries, or NULL (a socket peer, or a client gone). */
static zt__mdp_link_t *
s_link_find(const zt_broker_t *self, const zt__mdp_frame_t *id)
{
    if (!s_is_local_id(id))
        return NULL;
    const uint8_t *b = id->data;
    uint32_t value = (uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 | (uint32_t)b[4] << 8 | b[5];
    for (size_t i = 0; i < self->nlinks; i++)
        if (self->links[i]->id == value)
            return self->links[i];
    return NULL;
}

/* Send a reply to the client of request r: [r's envelope][""][MDPC01][service][body...]. */
static void
s_reply_client(zt_broker_t *self, const zt__broker_request_t *r, const char *service,
               const zt__mdp_frame_t *body, size_t body_count)
{
    zt__mdp_frame_t f[ZT__MDP_MAX_ENVELOPE + 3 + ZT__MDP_MAX_FRAMES];
    size_t n = zt__broker_envelope_unpack(&r->parts[0], f, ZT__MDP_MAX_ENVELOPE);
    f[n++] = (zt__mdp_frame_t){zt__broker_empty, 0};
    f[n++] = (zt__mdp_frame_t){ZT__MDPC, 6};
    f[n++] = (zt__mdp_frame_t){service, strlen(service)};
    for (size_t i = 0; i < body_count && n < ZT_ARRAY_SIZE(f); i++)
        f[n++] = body[i];
    zt__mdp_link_t *link = s_link_find(self, &f[0]);
    if (link) {
        /* A client in this reactor: it reads what its DEALER would, without the routing id. */
        if (zt__mdp_link_send(link, true, f + 1, n - 1) != 0)
            ZT_LOG_WARNING("broker: a reply to an in-process client is lost: the reactor is "
                           "shutting down");
        return;
    }
    if (s_is_local_id(&f[0])) {
        ZT_LOG_DEBUG("broker: reply to an in-process client not sent: it is gone");
        return;
    }
    int rc = zt__broker_router_send(self, f, n);
    if (rc != 0)
        ZT_LOG_DEBUG("broker: reply to a client not sent (%s): it is gone", zt_strerror(rc));
}

/* An error reply to request r for service: [ZT__MDP_ERROR_MARK][status][message]. */
void
zt__broker_error_reply(zt_broker_t *self, const zt__broker_request_t *r, const char *service,
                       const char *status, const char *message)
{
    zt__mdp_frame_t body[3] = {{ZT__MDP_ERROR_MARK, strlen(ZT__MDP_ERROR_MARK)},
                               {status, strlen(status)},
                               {message, strlen(message)}};
    s_reply_client(self, r, service, body, 3);
}

/* ------------------------------------------------------------------------------------------- */
/* Incoming messages */

static void
s_malformed(zt_broker_t *self, const char *why)
{
    self->stats.drops++;
    if (self->stats.drops <= 10 || self->stats.drops % 1000 == 0)
        ZT_LOG_WARNING("broker: dropped a malformed message (%s); %llu dropped so far", why,
                       (unsigned long long)self->stats.drops);
}

/* Answer request r for a service no worker announced: "404". */
void
zt__broker_unknown_reply(zt_broker_t *self, const zt__broker_request_t *r, const char *service)
{
    self->stats.unknown_service++;
    char message[ZT__MDP_MAX_SERVICE + 64];
    snprintf(message, sizeof message, "service '%s' unknown: no worker announced it", service);
    zt__broker_error_reply(self, r, service, "404", message);
}

/* An RFC 8 request (the service starts with "mmi."): "mmi.service" says whether the service in
 * the body has a worker ("200") or not ("404"); anything else is "501". */
static void
s_on_mmi(zt_broker_t *self, const zt__mdp_frame_t *f, const zt__mdp_msg_t *m, const char *service)
{
    zt__broker_request_t *r = zt__broker_request_new(&f[m->env_first], m->env_count, NULL, 0);
    if (!r)
        return;
    const char *status = "501";
    if (strcmp(service, "mmi.service") == 0) {
        status = "404";
        if (m->body_count >= 1) {
            zt__broker_service_t *s = zt__broker_service_find(self, &f[m->body_first]);
            if (s && s->workers > 0)
                status = "200";
        }
    }
    zt__mdp_frame_t body = {status, 3};
    s_reply_client(self, r, service, &body, 1);
    self->stats.replies++; /* counted as a request too: every request counted ends in a reply */
    free(r);
}

/* Refuse request r for service s with "503", counted by the bound it hit. */
static void
s_full_reply(zt_broker_t *self, const zt__broker_request_t *r, const zt__broker_service_t *s)
{
    char message[ZT__MDP_MAX_SERVICE + 128];
    if (s->queued >= self->queue_limit) {
        self->stats.queue_full++;
        snprintf(message, sizeof message, "queue of service '%s' full (%zu requests)", s->name,
                 s->queued);
    } else {
        self->stats.bytes_full++;
        snprintf(message, sizeof message,
                 "broker's queues full: %zu bytes stored, a request of %zu bytes would pass the "
                 "bound of %zu",
                 (size_t)self->stats.stored_bytes, r->bytes, self->queue_bytes);
        if (self->stats.bytes_full <= 10 || self->stats.bytes_full % 1000 == 0)
            ZT_LOG_WARNING("broker: request for '%s' refused: %s", s->name, message);
    }
    zt__broker_error_reply(self, r, s->name, "503", message);
}

static void
s_on_client(zt_broker_t *self, const zt__mdp_frame_t *f, const zt__mdp_msg_t *m)
{
    self->stats.requests++;
    const zt__mdp_frame_t *name = &f[m->service];
    char service[ZT__MDP_MAX_SERVICE + 1];
    memcpy(service, name->data, name->size);
    service[name->size] = '\0';
    if (strncmp(service, "mmi.", 4) == 0) {
        s_on_mmi(self, f, m, service);
        return;
    }
    zt__broker_service_t *s = zt__broker_service_find(self, name);
    zt__broker_request_t *r =
        zt__broker_request_new(&f[m->env_first], m->env_count, &f[m->body_first], m->body_count);
    if (!r) {
        ZT_LOG_ERROR("broker: out of memory; a request is dropped");
        return;
    }
    bool in_grace =
        self->grace_end != NULL && zt_reactor_seconds(self->reactor) < self->started + self->grace;
    if (!s && in_grace) {
        /* Just started: its workers may not have announced themselves yet. */
        s = calloc(1, sizeof *s);
        if (s) {
            memcpy(s->name, name->data, name->size);
            s->next = self->services;
            self->services = s;
        }
    }
    if (!s || (!s->announced && !in_grace)) {
        zt__broker_unknown_reply(self, r, service);
        free(r);
        return;
    }
    if (s->queued >= self->queue_limit || self->stats.stored_bytes + r->bytes > self->queue_bytes) {
        s_full_reply(self, r, s);
        free(r);
        return;
    }
    r->queued_at = zt_reactor_seconds(self->reactor);
    zt__broker_fifo_push(&s->queue_head, &s->queue_tail, r);
    s->queued++;
    self->stats.queued++;
    self->stats.stored_bytes += r->bytes;
    zt__broker_dispatch(self, s);
    zt__broker_arm_sweep(self);
}

/* Tell a peer the broker does not know as a worker to DISCONNECT (RFC 7: it must reconnect). */
static void
s_disconnect_stranger(zt_broker_t *self, const zt__mdp_frame_t *id)
{
    zt__broker_worker_t tmp = {.id_size = id->size};
    memcpy(tmp.id, id->data, id->size);
    (void)zt__broker_send_command(self, &tmp, ZT__MDP_DISCONNECT);
}

/* READY from the peer f[0], which is not a worker yet: register it for the service it names. */
static void
s_on_ready(zt_broker_t *self, const zt__mdp_frame_t *f, const zt__mdp_msg_t *m, double now)
{
    const zt__mdp_frame_t *name = &f[m->service];
    if (name->size >= 4 && memcmp(name->data, "mmi.", 4) == 0) {
        s_malformed(self, "a worker tried to register an mmi. service");
        s_disconnect_stranger(self, &f[0]);
        return;
    }
    zt__broker_service_t *s = zt__broker_service_find(self, name);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return;
        memcpy(s->name, name->data, name->size);
        s->next = self->services;
        self->services = s;
    }
    s->announced = true;
    zt__broker_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return;
    w->id_size = f[0].size;
    memcpy(w->id, f[0].data, f[0].size);
    w->hash = zt__broker_hash(w->id, w->id_size);
    if (zt__broker_table_add(self, w) != 0) {
        ZT_LOG_ERROR("broker: out of memory; a worker of '%s' is not registered", s->name);
        free(w);
        return;
    }
    w->service = s;
    w->prefetch = m->prefetch;
    w->expiry = now + self->interval * self->liveness;
    w->next = self->workers;
    if (self->workers)
        self->workers->prev = w;
    self->workers = w;
    s->workers++;
    self->stats.workers++;
    ZT_LOG_DEBUG("broker: a worker of '%s' is ready (%zu now)", s->name, s->workers);
    zt__broker_idle_append(w);
    zt__broker_dispatch(self, s);
}

/* REPLY from worker w: forward it to the client of the request it answers. */
static void
s_on_reply(zt_broker_t *self, zt__broker_worker_t *w, const zt__mdp_frame_t *f,
           const zt__mdp_msg_t *m)
{
    if (!w->held) {
        s_malformed(self, "REPLY from a worker that has no request");
        return;
    }
    zt__broker_request_t *r = zt__broker_held_take(w, &f[m->env_first], m->env_count);
    if (!r) {
        s_malformed(self, "REPLY to a request the worker does not hold");
        return;
    }
    s_reply_client(self, r, w->service->name, &f[m->body_first], m->body_count);
    self->stats.replies++;
    zt__broker_request_end(self, r);
    if (!w->idle)
        zt__broker_idle_append(w);
    zt__broker_dispatch(self, w->service);
}

static void
s_on_worker(zt_broker_t *self, const zt__mdp_frame_t *f, const zt__mdp_msg_t *m)
{
    zt__broker_worker_t *w = zt__broker_worker_find(self, &f[0]);
    double now = zt_reactor_seconds(self->reactor);
    if (w)
        w->expiry = now + self->interval * self->liveness;
    switch (m->command) {
    case ZT__MDP_READY:
        if (w) {
            s_malformed(self, "READY from a worker that is ready already");
            zt__broker_worker_delete(self, w, true, "protocol error");
        } else {
            s_on_ready(self, f, m, now);
        }
        return;
    case ZT__MDP_REPLY:
        if (w) {
            s_on_reply(self, w, f, m);
        } else {
            s_disconnect_stranger(self, &f[0]);
            s_malformed(self, "REPLY from a worker that is not ready");
        }
        return;
    case ZT__MDP_HEARTBEAT:
        if (!w)
            s_disconnect_stranger(self, &f[0]); /* after a broker restart, say */
        return;
    case ZT__MDP_DISCONNECT:
        if (w)
            zt__broker_worker_delete(self, w, false, "it disconnected");
        return;
    default:
        return;
    }
}

/* One message as the ROUTER reads it: [routing id][envelope...][""][MDPC01|MDPW01]... */
void
zt__broker_on_message(zt_broker_t *self, const zt__mdp_frame_t *f, size_t n, bool too_many)
{
    zt__mdp_msg_t m;
    const char *why = "too many frames";
    int rc =
        too_many ? ZT_EPROTO : zt__mdp_decode(f, n, ZT__MDP_AT_BROKER, self->max_message, &m, &why);
    if (rc != 0)
        s_malformed(self, why);
    else if (m.kind == ZT__MDP_CLIENT_REQUEST)
        s_on_client(self, f, &m);
    else
        s_on_worker(self, f, &m);
}

void
zt__broker_on_router(zt_reactor_t *reactor, void *socket, void *arg)
{
    (void)reactor, (void)socket;
    zt_broker_t *self = arg;
    zmq_msg_t parts[ZT__MDP_MAX_FRAMES + 1];
    for (int batch = 0; batch < ZT__BROKER_RECV_BATCH; batch++) {
        bool too_many = false;
        int got = zt__mdp_recv_parts(&self->router_io, parts, ZT_ARRAY_SIZE(parts), &too_many);
        if (got < 0)
            return; /* drained (the rsock knows), or the socket is closing */
        size_t n = (size_t)got;
        zt__mdp_frame_t f[ZT__MDP_MAX_FRAMES + 1];
        for (size_t i = 0; i < n; i++)
            f[i] = (zt__mdp_frame_t){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
        zt__broker_on_message(self, f, n, too_many);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
}

void
zt__broker_on_heartbeat(void *arg)
{
    zt_broker_t *self = arg;
    double now = zt_reactor_seconds(self->reactor);
    zt__broker_worker_t *w = self->workers;
    while (w) {
        zt__broker_worker_t *next = w->next;
        if (now > w->expiry) {
            self->stats.expiries++;
            ZT_LOG_WARNING("broker: a worker of '%s' missed %d heartbeats: it is dead",
                           w->service->name, self->liveness);
            zt__broker_worker_delete(self, w, true, "heartbeat expired");
        } else {
            (void)zt__broker_send_command(self, w, ZT__MDP_HEARTBEAT);
        }
        w = next;
    }
    zt_delayed_call_release(&self->heartbeat);
    (void)zt_reactor_call_later(self->reactor, self->interval, zt__broker_on_heartbeat, self,
                                &self->heartbeat);
}
