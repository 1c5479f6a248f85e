/*  bridges/mdp/broker_registry.c - the broker's state: stored requests, the services' queues,
 * the workers' registry (by identity, and each service's workers with room), dispatch, and the
 * timers that end waiting requests (the queue timeout, the end of the grace)
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
/* Requests, services, workers */

/* The envelope's packed form: each address frame as [its size, one byte][its bytes], in order. */
static size_t
s_packed_size(const zt__mdp_frame_t *env, size_t env_count)
{
    size_t bytes = 0;
    for (size_t i = 0; i < env_count; i++)
        bytes += 1 + env[i].size;
    return bytes;
}

size_t
zt__broker_envelope_unpack(const zt__mdp_frame_t *packed, zt__mdp_frame_t *env, size_t cap)
{
    const uint8_t *p = packed->data;
    size_t at = 0, n = 0;
    while (at < packed->size && n < cap) {
        size_t size = p[at];
        ZT_ASSERT(size > 0 && at + 1 + size <= packed->size); /* the broker packed it */
        env[n++] = (zt__mdp_frame_t){p + at + 1, size};
        at += 1 + size;
    }
    return n;
}

zt__broker_request_t *
zt__broker_request_new(const zt__mdp_frame_t *env, size_t env_count, const zt__mdp_frame_t *body,
                       size_t body_count)
{
    size_t n = 1 + body_count;
    size_t packed = s_packed_size(env, env_count);
    size_t bytes = packed;
    for (size_t i = 0; i < body_count; i++)
        bytes += body[i].size;
    zt__broker_request_t *r = malloc(sizeof *r + n * sizeof(zt__mdp_frame_t) + bytes);
    if (!r)
        return NULL;
    r->next = NULL;
    r->bytes = bytes;
    r->body_count = body_count;
    r->parts = (zt__mdp_frame_t *)(r + 1);
    uint8_t *data = (uint8_t *)(r->parts + n);
    r->parts[0] = (zt__mdp_frame_t){.data = data, .size = packed};
    for (size_t i = 0; i < env_count; i++) {
        ZT_ASSERT(env[i].size > 0 && env[i].size <= ZT__MDP_MAX_ADDRESS); /* the codec checks */
        *data++ = (uint8_t)env[i].size;
        memcpy(data, env[i].data, env[i].size);
        data += env[i].size;
    }
    for (size_t i = 0; i < body_count; i++) {
        if (body[i].size)
            memcpy(data, body[i].data, body[i].size);
        r->parts[1 + i] = (zt__mdp_frame_t){.data = data, .size = body[i].size};
        data += body[i].size;
    }
    return r;
}

zt__broker_service_t *
zt__broker_service_find(zt_broker_t *self, const zt__mdp_frame_t *name)
{
    for (zt__broker_service_t *s = self->services; s; s = s->next)
        if (strlen(s->name) == name->size && memcmp(s->name, name->data, name->size) == 0)
            return s;
    return NULL;
}

/* Workers by identity. Every message from a worker looks its sender up, so with hundreds of
 * workers a list scan would cost more than the rest of the message: a table with linear probing,
 * at most half full, whose removals shift the probe chain back (no tombstones). */

uint64_t
zt__broker_hash(const void *data, size_t size)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ ((const uint8_t *)data)[i]) * 1099511628211ULL;
    return h;
}

zt__broker_worker_t *
zt__broker_worker_find(zt_broker_t *self, const zt__mdp_frame_t *id)
{
    if (self->table_cap == 0)
        return NULL;
    uint64_t h = zt__broker_hash(id->data, id->size);
    size_t mask = self->table_cap - 1;
    for (size_t i = h & mask; self->table[i]; i = (i + 1) & mask) {
        zt__broker_worker_t *w = self->table[i];
        if (w->hash == h && w->id_size == id->size && memcmp(w->id, id->data, id->size) == 0)
            return w;
    }
    return NULL;
}

static void
s_table_insert(zt__broker_worker_t **table, size_t cap, zt__broker_worker_t *w)
{
    size_t i = w->hash & (cap - 1);
    while (table[i])
        i = (i + 1) & (cap - 1);
    table[i] = w;
}

/* Put w in the table, growing it first when it would be more than half full. */
int
zt__broker_table_add(zt_broker_t *self, zt__broker_worker_t *w)
{
    if ((self->stats.workers + 1) * 2 > self->table_cap) {
        size_t cap = self->table_cap ? self->table_cap * 2 : 64;
        zt__broker_worker_t **table = calloc(cap, sizeof *table);
        if (!table)
            return ZT_ENOMEM;
        for (size_t i = 0; i < self->table_cap; i++)
            if (self->table[i])
                s_table_insert(table, cap, self->table[i]);
        free(self->table);
        self->table = table;
        self->table_cap = cap;
    }
    s_table_insert(self->table, self->table_cap, w);
    return 0;
}

static void
s_table_remove(zt_broker_t *self, zt__broker_worker_t *w)
{
    size_t mask = self->table_cap - 1;
    size_t j = w->hash & mask;
    while (self->table[j] != w)
        j = (j + 1) & mask;
    self->table[j] = NULL;
    for (size_t k = (j + 1) & mask; self->table[k]; k = (k + 1) & mask) {
        size_t home = self->table[k]->hash & mask;
        /* Move k into the hole j unless its home lies in the cyclic range (j, k]. */
        bool in_range = j < k ? (home > j && home <= k) : (home > j || home <= k);
        if (!in_range) {
            self->table[j] = self->table[k];
            self->table[k] = NULL;
            j = k;
        }
    }
}

static void
s_idle_remove(zt__broker_worker_t *w)
{
    if (!w->idle)
        return;
    zt__broker_service_t *s = w->service;
    if (w->idle_prev)
        w->idle_prev->idle_next = w->idle_next;
    else
        s->idle_head = w->idle_next;
    if (w->idle_next)
        w->idle_next->idle_prev = w->idle_prev;
    else
        s->idle_tail = w->idle_prev;
    w->idle_next = w->idle_prev = NULL;
    w->idle = false;
}

void
zt__broker_idle_append(zt__broker_worker_t *w)
{
    zt__broker_service_t *s = w->service;
    ZT_ASSERT(!w->idle);
    w->idle_prev = s->idle_tail;
    w->idle_next = NULL;
    if (s->idle_tail)
        s->idle_tail->idle_next = w;
    else
        s->idle_head = w;
    s->idle_tail = w;
    w->idle = true;
}

/* Append r to the list (head, tail) of requests, oldest first. */
void
zt__broker_fifo_push(zt__broker_request_t **head, zt__broker_request_t **tail,
                     zt__broker_request_t *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

/* Take the oldest request of the list (head, tail); NULL when it is empty. */
static zt__broker_request_t *
s_fifo_pop(zt__broker_request_t **head, zt__broker_request_t **tail)
{
    zt__broker_request_t *r = *head;
    if (r) {
        *head = r->next;
        if (!*head)
            *tail = NULL;
        r->next = NULL;
    }
    return r;
}

/* Whether request r came with the envelope env (count frames). */
static bool
s_same_envelope(const zt__broker_request_t *r, const zt__mdp_frame_t *env, size_t count)
{
    return count == 1 && r->parts[0].size == env[0].size &&
           memcmp(r->parts[0].data, env[0].data, env[0].size) == 0;
}

/* Take out of w's held requests the one a REPLY with envelope env answers: the one with that
 * envelope (the oldest first, so an in-order worker costs one comparison), or, from a worker
 * holding a single request, that one whatever the envelope (RFC 7 names no other). NULL when none.
 */
zt__broker_request_t *
zt__broker_held_take(zt__broker_worker_t *w, const zt__mdp_frame_t *env, size_t count)
{
    zt__broker_request_t *prev = NULL, *r = w->held;
    while (r && !s_same_envelope(r, env, count)) {
        prev = r;
        r = r->next;
    }
    if (!r && w->holding == 1) {
        prev = NULL;
        r = w->held;
    }
    if (!r)
        return NULL;
    if (prev)
        prev->next = r->next;
    else
        w->held = r->next;
    if (w->held_tail == r)
        w->held_tail = prev;
    r->next = NULL;
    w->holding--;
    return r;
}

/* A stored request ends: its bytes leave the count, and it is freed. */
void
zt__broker_request_end(zt_broker_t *self, zt__broker_request_t *r)
{
    self->stats.stored_bytes -= r->bytes;
    free(r);
}

/* ------------------------------------------------------------------------------------------- */
/* Worker lifecycle and dispatch */

/* Forget a worker; each request it holds gets a "410" error reply saying why. */
void
zt__broker_worker_delete(zt_broker_t *self, zt__broker_worker_t *w, bool send_disconnect,
                         const char *why)
{
    if (send_disconnect)
        (void)zt__broker_send_command(self, w, ZT__MDP_DISCONNECT);
    if (w->held) {
        char message[ZT__MDP_MAX_SERVICE + 64];
        snprintf(message, sizeof message, "worker lost while serving '%s' (%s)", w->service->name,
                 why);
        self->stats.workers_lost++;
        zt__broker_request_t *r;
        while ((r = s_fifo_pop(&w->held, &w->held_tail)) != NULL) {
            zt__broker_error_reply(self, r, w->service->name, "410", message);
            zt__broker_request_end(self, r);
        }
        w->holding = 0;
    }
    s_idle_remove(w);
    s_table_remove(self, w);
    w->service->workers--;
    if (w->prev)
        w->prev->next = w->next;
    else
        self->workers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    self->stats.workers--;
    free(w);
}

void
zt__broker_dispatch(zt_broker_t *self, zt__broker_service_t *s)
{
    while (s->idle_head && s->queue_head) {
        zt__broker_worker_t *w = s->idle_head;
        zt__broker_request_t *r = s->queue_head;
        uint8_t command = ZT__MDP_REQUEST;
        zt__mdp_frame_t f[4 + ZT__MDP_MAX_ENVELOPE + 1 + ZT__MDP_MAX_FRAMES];
        size_t n = 0;
        f[n++] = (zt__mdp_frame_t){w->id, w->id_size};
        f[n++] = (zt__mdp_frame_t){zt__broker_empty, 0};
        f[n++] = (zt__mdp_frame_t){ZT__MDPW, 6};
        f[n++] = (zt__mdp_frame_t){&command, 1};
        f[n++] = r->parts[0]; /* the client's envelope, packed: one address frame */
        f[n++] = (zt__mdp_frame_t){zt__broker_empty, 0};
        for (size_t i = 0; i < r->body_count; i++)
            f[n++] = r->parts[1 + i];
        int rc = zt__broker_router_send(self, f, n);
        if (rc == ZT_EUNREACHABLE) {
            /* The worker's connection is gone: drop it, keep the request for the next one. */
            ZT_LOG_INFO("broker: worker of '%s' unreachable; its request goes to another", s->name);
            self->stats.retries++;
            zt__broker_worker_delete(self, w, false, "unreachable");
            continue;
        }
        if (rc != 0) {
            ZT_LOG_WARNING("broker: cannot send to a worker of '%s': %s", s->name, zt_strerror(rc));
            return;
        }
        zt__broker_fifo_push(&w->held, &w->held_tail, s_fifo_pop(&s->queue_head, &s->queue_tail));
        s->queued--;
        self->stats.queued--;
        w->holding++;
        s_idle_remove(w);
        if (w->holding < w->prefetch)
            zt__broker_idle_append(
                w); /* room left: to the back, so the next request goes to another */
    }
}

/* Queue timeout: while requests wait and a timeout is set, a sweep runs every half timeout and
 * answers "504" to each request that has waited a whole one. Queues are oldest first (a request
 * kept after an unreachable worker stays at the head), so a sweep stops at each queue's first
 * young request. No timer runs while every queue is empty. */
static void s_on_sweep(void *arg);

void
zt__broker_arm_sweep(zt_broker_t *self)
{
    if (self->queue_timeout <= 0 || self->sweep || self->stats.queued == 0)
        return;
    if (zt_reactor_call_later(self->reactor, self->queue_timeout / 2, s_on_sweep, self,
                              &self->sweep) != 0)
        ZT_LOG_ERROR("broker: cannot schedule the queue-timeout sweep; queued requests wait on");
}

static void
s_on_sweep(void *arg)
{
    zt_broker_t *self = arg;
    zt_delayed_call_release(&self->sweep);
    if (self->queue_timeout <= 0)
        return; /* turned off since the sweep was armed */
    double now = zt_reactor_seconds(self->reactor);
    for (zt__broker_service_t *s = self->services; s; s = s->next) {
        while (s->queue_head && now - s->queue_head->queued_at >= self->queue_timeout) {
            zt__broker_request_t *r = s_fifo_pop(&s->queue_head, &s->queue_tail);
            s->queued--;
            self->stats.queued--;
            self->stats.queue_expired++;
            char message[ZT__MDP_MAX_SERVICE + 96];
            snprintf(message, sizeof message,
                     "waited %.3g s in the queue of service '%s': no worker was free",
                     now - r->queued_at, s->name);
            zt__broker_error_reply(self, r, s->name, "504", message);
            zt__broker_request_end(self, r);
        }
    }
    zt__broker_arm_sweep(self);
}

/* The grace is over: each service no worker announced goes, and its requests get "404" now
 * rather than at their clients' timeouts. */
static void
s_on_grace_end(void *arg)
{
    zt_broker_t *self = arg;
    zt_delayed_call_release(&self->grace_end);
    zt__broker_service_t **link = &self->services;
    while (*link) {
        zt__broker_service_t *s = *link;
        if (s->announced) {
            link = &s->next;
            continue;
        }
        if (s->queued)
            ZT_LOG_INFO("broker: grace over; %zu request(s) for '%s' fail: no worker announced it",
                        s->queued, s->name);
        zt__broker_request_t *r;
        while ((r = s_fifo_pop(&s->queue_head, &s->queue_tail)) != NULL) {
            s->queued--;
            self->stats.queued--;
            zt__broker_unknown_reply(self, r, s->name);
            zt__broker_request_end(self, r);
        }
        *link = s->next;
        free(s);
    }
}

/* (Re)arm the end of the grace, once bound: at started + grace. */
void
zt__broker_arm_grace(zt_broker_t *self)
{
    bool pending = self->grace_end != NULL; /* then services may wait for it to end */
    if (pending) {
        (void)zt_delayed_call_cancel(self->grace_end);
        zt_delayed_call_release(&self->grace_end);
    }
    if (!self->bound || (self->grace <= 0 && !pending))
        return;
    /* A grace shortened (or turned off) after bind ends at once: on the next pass. */
    double left = self->started + self->grace - zt_reactor_seconds(self->reactor);
    if (zt_reactor_call_later(self->reactor, left > 0 ? left : 0, s_on_grace_end, self,
                              &self->grace_end) != 0)
        ZT_LOG_ERROR("broker: cannot schedule the end of the grace; it ends now");
}
