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
#include "bridges/mdp/mdp_codec.h"
#include "bridges/mdp/mdp_local.h"
#include "runtime/socket_quiet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define RECV_BATCH 256 /* messages read per readable callback, so one peer cannot starve timers */

typedef struct s_request s_request_t;
struct s_request {
    s_request_t *next;      /* the next request in its service's queue; Borrowed link */
    double queued_at;       /* when it arrived, on the reactor's clock */
    size_t bytes;           /* its frames' bytes, counted in stats.stored_bytes once stored */
    size_t env_count;       /* envelope frames (the client's routing id first) */
    size_t body_count;      /* body frames */
    zt__mdp_frame_t *parts; /* env_count + body_count frames pointing into this allocation */
};

typedef struct s_service s_service_t;
typedef struct s_worker s_worker_t;

struct s_worker {
    uint8_t id[256];        /* the worker's routing identity */
    size_t id_size;         /* its length */
    uint64_t hash;          /* of the identity, for the broker's table */
    s_service_t *service;   /* the service it serves; Borrowed from the broker */
    double expiry;          /* when it is dead unless it speaks, on the reactor's clock */
    s_request_t *held;      /* the requests it is serving, oldest first; Owned (the list) */
    s_request_t *held_tail; /* the newest; Borrowed */
    unsigned holding;       /* how many */
    unsigned prefetch;      /* how many it takes at once (READY's extension frame; 1 without) */
    s_worker_t *next;       /* the broker's list of all workers; Borrowed link */
    s_worker_t *prev;       /* ditto */
    s_worker_t *idle_next;  /* its service's list of workers with room (LRU); Borrowed link */
    s_worker_t *idle_prev;  /* ditto */
    bool idle;              /* whether it is in that list (holding < prefetch) */
};

struct s_service {
    char name[ZT__MDP_MAX_SERVICE + 1]; /* the service's name */
    size_t workers;                     /* workers serving it now */
    s_worker_t *idle_head;              /* the worker with room that waited longest; Borrowed */
    s_worker_t *idle_tail;              /* the one that got room last; Borrowed */
    s_request_t *queue_head;            /* the oldest waiting request; Owned (the whole queue) */
    s_request_t *queue_tail;            /* the newest; Borrowed */
    size_t queued;                      /* requests in the queue */
    bool announced;                     /* whether a worker ever announced it (READY) */
    s_service_t *next;                  /* the broker's list of services; Owned link */
};

struct zt_broker {
    zt_reactor_t *reactor;        /* Borrowed; outlives the broker */
    void *ctx;                    /* the shared ZeroMQ context; one reference held */
    void *router;                 /* the ROUTER socket; Owned */
    void *zap;                    /* the ZAP handler's REP socket when CURVE; Owned or NULL */
    bool bound;                   /* whether bind succeeded once (options are frozen) */
    double interval;              /* heartbeat interval, seconds */
    int liveness;                 /* heartbeats a worker may miss */
    size_t queue_limit;           /* bound on one service's queue */
    size_t max_message;           /* bound on a message's total size */
    size_t queue_bytes;           /* bound on the bytes of every stored request */
    double grace;                 /* seconds after the first bind when unknown services wait */
    double started;               /* when the first bind happened, on the reactor's clock */
    zt_delayed_call_t *grace_end; /* ends the grace; Owned or NULL */
    void *monitor;                /* PAIR told of the ROUTER's failed handshakes; Owned or NULL */
    bool curve;                   /* whether the socket is a CURVE server */
    uint8_t secret[32];           /* the CURVE secret key, when curve */
    uint8_t (*allowed)[32];       /* the public keys let in; Owned array */
    size_t allowed_count;         /* keys in it */
    zt_delayed_call_t *heartbeat; /* the heartbeat timer; Owned handle */
    double queue_timeout;         /* seconds a request may wait in a queue; 0: no bound */
    zt_delayed_call_t *sweep;     /* the queue-timeout sweep while requests wait; Owned or NULL */
    s_worker_t *workers;          /* every worker; Owned list */
    s_worker_t **table;           /* the workers by identity: open addressing; Owned array */
    size_t table_cap;             /* its slots, a power of two (0 before the first worker) */
    s_service_t *services;        /* every service; Owned list */
    char endpoint[256];           /* the last endpoint bound */
    zt_broker_stats_t stats;      /* the counters; workers and queued are kept live */
    bool router_quiet;            /* the ROUTER was left drained (runtime/socket_quiet.h) */
    zt__mdp_link_t **links; /* clients in this reactor (mdp_local.h); Owned array, a ref each */
    size_t nlinks;          /* links in it */
    uint32_t next_link_id;  /* the last link id given */
};

/* ------------------------------------------------------------------------------------------- */
/* Requests, services, workers */

static s_request_t *
s_request_new(const zt__mdp_frame_t *env, size_t env_count, const zt__mdp_frame_t *body,
              size_t body_count)
{
    size_t n = env_count + body_count;
    size_t bytes = 0;
    for (size_t i = 0; i < env_count; i++)
        bytes += env[i].size;
    for (size_t i = 0; i < body_count; i++)
        bytes += body[i].size;
    s_request_t *r = malloc(sizeof *r + n * sizeof(zt__mdp_frame_t) + bytes);
    if (!r)
        return NULL;
    r->next = NULL;
    r->bytes = bytes;
    r->env_count = env_count;
    r->body_count = body_count;
    r->parts = (zt__mdp_frame_t *)(r + 1);
    uint8_t *data = (uint8_t *)(r->parts + n);
    for (size_t i = 0; i < n; i++) {
        const zt__mdp_frame_t *src = i < env_count ? &env[i] : &body[i - env_count];
        if (src->size)
            memcpy(data, src->data, src->size);
        r->parts[i] = (zt__mdp_frame_t){.data = data, .size = src->size};
        data += src->size;
    }
    return r;
}

static s_service_t *
s_service_find(zt_broker_t *self, const zt__mdp_frame_t *name)
{
    for (s_service_t *s = self->services; s; s = s->next)
        if (strlen(s->name) == name->size && memcmp(s->name, name->data, name->size) == 0)
            return s;
    return NULL;
}

/* Workers by identity. Every message from a worker looks its sender up, so with hundreds of
 * workers a list scan would cost more than the rest of the message: a table with linear probing,
 * at most half full, whose removals shift the probe chain back (no tombstones). */

static uint64_t
s_hash(const void *data, size_t size)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ ((const uint8_t *)data)[i]) * 1099511628211ULL;
    return h;
}

static s_worker_t *
s_worker_find(zt_broker_t *self, const zt__mdp_frame_t *id)
{
    if (self->table_cap == 0)
        return NULL;
    uint64_t h = s_hash(id->data, id->size);
    size_t mask = self->table_cap - 1;
    for (size_t i = h & mask; self->table[i]; i = (i + 1) & mask) {
        s_worker_t *w = self->table[i];
        if (w->hash == h && w->id_size == id->size && memcmp(w->id, id->data, id->size) == 0)
            return w;
    }
    return NULL;
}

static void
s_table_insert(s_worker_t **table, size_t cap, s_worker_t *w)
{
    size_t i = w->hash & (cap - 1);
    while (table[i])
        i = (i + 1) & (cap - 1);
    table[i] = w;
}

/* Put w in the table, growing it first when it would be more than half full. */
static int
s_table_add(zt_broker_t *self, s_worker_t *w)
{
    if ((self->stats.workers + 1) * 2 > self->table_cap) {
        size_t cap = self->table_cap ? self->table_cap * 2 : 64;
        s_worker_t **table = calloc(cap, sizeof *table);
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
s_table_remove(zt_broker_t *self, s_worker_t *w)
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
s_idle_remove(s_worker_t *w)
{
    if (!w->idle)
        return;
    s_service_t *s = w->service;
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

static void
s_idle_append(s_worker_t *w)
{
    s_service_t *s = w->service;
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

/* ------------------------------------------------------------------------------------------- */
/* Sending */

static const uint8_t s_empty[1] = {0};

/* Every send on the ROUTER goes through here: a send may consume the signal of a message that
 * arrives meanwhile, so the reactor must ask the socket again before it sleeps. */
static int
s_router_send(zt_broker_t *self, const zt__mdp_frame_t *f, size_t n)
{
    self->router_quiet = false;
    return zt__mdp_send(self->router, f, n);
}

static int
s_send_command(zt_broker_t *self, s_worker_t *w, uint8_t command)
{
    zt__mdp_frame_t f[4] = {{w->id, w->id_size}, {s_empty, 0}, {ZT__MDPW, 6}, {&command, 1}};
    return s_router_send(self, f, 4);
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

/* Append r to the list (head, tail) of requests, oldest first. */
static void
s_fifo_push(s_request_t **head, s_request_t **tail, s_request_t *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

/* Take the oldest request of the list (head, tail); NULL when it is empty. */
static s_request_t *
s_fifo_pop(s_request_t **head, s_request_t **tail)
{
    s_request_t *r = *head;
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
s_same_envelope(const s_request_t *r, const zt__mdp_frame_t *env, size_t count)
{
    if (r->env_count != count)
        return false;
    for (size_t i = 0; i < count; i++)
        if (r->parts[i].size != env[i].size ||
            (env[i].size > 0 && memcmp(r->parts[i].data, env[i].data, env[i].size) != 0))
            return false;
    return true;
}

/* Take out of w's held requests the one a REPLY with envelope env answers: the one with that
 * envelope (the oldest first, so an in-order worker costs one comparison), or, from a worker
 * holding a single request, that one whatever the envelope (RFC 7 names no other). NULL when none.
 */
static s_request_t *
s_held_take(s_worker_t *w, const zt__mdp_frame_t *env, size_t count)
{
    s_request_t *prev = NULL, *r = w->held;
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

/* Send a reply to the client of request r: [r's envelope][""][MDPC01][service][body...]. */
static void
s_reply_client(zt_broker_t *self, const s_request_t *r, const char *service,
               const zt__mdp_frame_t *body, size_t body_count)
{
    zt__mdp_frame_t f[ZT__MDP_MAX_ENVELOPE + 3 + ZT__MDP_MAX_FRAMES];
    size_t n = 0;
    for (size_t i = 0; i < r->env_count; i++)
        f[n++] = r->parts[i];
    f[n++] = (zt__mdp_frame_t){s_empty, 0};
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
    int rc = s_router_send(self, f, n);
    if (rc != 0)
        ZT_LOG_DEBUG("broker: reply to a client not sent (%s): it is gone", zt_strerror(rc));
}

/* An error reply to request r for service: [ZT__MDP_ERROR_MARK][status][message]. */
static void
s_error_reply(zt_broker_t *self, const s_request_t *r, const char *service, const char *status,
              const char *message)
{
    zt__mdp_frame_t body[3] = {{ZT__MDP_ERROR_MARK, strlen(ZT__MDP_ERROR_MARK)},
                               {status, strlen(status)},
                               {message, strlen(message)}};
    s_reply_client(self, r, service, body, 3);
}

/* A stored request ends: its bytes leave the count, and it is freed. */
static void
s_request_end(zt_broker_t *self, s_request_t *r)
{
    self->stats.stored_bytes -= r->bytes;
    free(r);
}

/* ------------------------------------------------------------------------------------------- */
/* Worker lifecycle and dispatch */

/* Forget a worker; each request it holds gets a "410" error reply saying why. */
static void
s_worker_delete(zt_broker_t *self, s_worker_t *w, bool send_disconnect, const char *why)
{
    if (send_disconnect)
        (void)s_send_command(self, w, ZT__MDP_DISCONNECT);
    if (w->held) {
        char message[ZT__MDP_MAX_SERVICE + 64];
        snprintf(message, sizeof message, "worker lost while serving '%s' (%s)", w->service->name,
                 why);
        self->stats.workers_lost++;
        s_request_t *r;
        while ((r = s_fifo_pop(&w->held, &w->held_tail)) != NULL) {
            s_error_reply(self, r, w->service->name, "410", message);
            s_request_end(self, r);
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

static void
s_dispatch(zt_broker_t *self, s_service_t *s)
{
    while (s->idle_head && s->queue_head) {
        s_worker_t *w = s->idle_head;
        s_request_t *r = s->queue_head;
        uint8_t command = ZT__MDP_REQUEST;
        zt__mdp_frame_t f[4 + ZT__MDP_MAX_ENVELOPE + 1 + ZT__MDP_MAX_FRAMES];
        size_t n = 0;
        f[n++] = (zt__mdp_frame_t){w->id, w->id_size};
        f[n++] = (zt__mdp_frame_t){s_empty, 0};
        f[n++] = (zt__mdp_frame_t){ZT__MDPW, 6};
        f[n++] = (zt__mdp_frame_t){&command, 1};
        for (size_t i = 0; i < r->env_count; i++)
            f[n++] = r->parts[i];
        f[n++] = (zt__mdp_frame_t){s_empty, 0};
        for (size_t i = 0; i < r->body_count; i++)
            f[n++] = r->parts[r->env_count + i];
        int rc = s_router_send(self, f, n);
        if (rc == ZT_EUNREACHABLE) {
            /* The worker's connection is gone: drop it, keep the request for the next one. */
            ZT_LOG_INFO("broker: worker of '%s' unreachable; its request goes to another", s->name);
            self->stats.retries++;
            s_worker_delete(self, w, false, "unreachable");
            continue;
        }
        if (rc != 0) {
            ZT_LOG_WARNING("broker: cannot send to a worker of '%s': %s", s->name, zt_strerror(rc));
            return;
        }
        s_fifo_push(&w->held, &w->held_tail, s_fifo_pop(&s->queue_head, &s->queue_tail));
        s->queued--;
        self->stats.queued--;
        w->holding++;
        s_idle_remove(w);
        if (w->holding < w->prefetch)
            s_idle_append(w); /* room left: to the back, so the next request goes to another */
    }
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

/* Queue timeout: while requests wait and a timeout is set, a sweep runs every half timeout and
 * answers "504" to each request that has waited a whole one. Queues are oldest first (a request
 * kept after an unreachable worker stays at the head), so a sweep stops at each queue's first
 * young request. No timer runs while every queue is empty. */
static void s_on_sweep(void *arg);

static void
s_arm_sweep(zt_broker_t *self)
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
    for (s_service_t *s = self->services; s; s = s->next) {
        while (s->queue_head && now - s->queue_head->queued_at >= self->queue_timeout) {
            s_request_t *r = s_fifo_pop(&s->queue_head, &s->queue_tail);
            s->queued--;
            self->stats.queued--;
            self->stats.queue_expired++;
            char message[ZT__MDP_MAX_SERVICE + 96];
            snprintf(message, sizeof message,
                     "waited %.3g s in the queue of service '%s': no worker was free",
                     now - r->queued_at, s->name);
            s_error_reply(self, r, s->name, "504", message);
            s_request_end(self, r);
        }
    }
    s_arm_sweep(self);
}

/* Answer request r for a service no worker announced: "404". */
static void
s_unknown_reply(zt_broker_t *self, const s_request_t *r, const char *service)
{
    self->stats.unknown_service++;
    char message[ZT__MDP_MAX_SERVICE + 64];
    snprintf(message, sizeof message, "service '%s' unknown: no worker announced it", service);
    s_error_reply(self, r, service, "404", message);
}

/* The grace is over: each service no worker announced goes, and its requests get "404" now
 * rather than at their clients' timeouts. */
static void
s_on_grace_end(void *arg)
{
    zt_broker_t *self = arg;
    zt_delayed_call_release(&self->grace_end);
    s_service_t **link = &self->services;
    while (*link) {
        s_service_t *s = *link;
        if (s->announced) {
            link = &s->next;
            continue;
        }
        if (s->queued)
            ZT_LOG_INFO("broker: grace over; %zu request(s) for '%s' fail: no worker announced it",
                        s->queued, s->name);
        s_request_t *r;
        while ((r = s_fifo_pop(&s->queue_head, &s->queue_tail)) != NULL) {
            s->queued--;
            self->stats.queued--;
            s_unknown_reply(self, r, s->name);
            s_request_end(self, r);
        }
        *link = s->next;
        free(s);
    }
}

/* (Re)arm the end of the grace, once bound: at started + grace. */
static void
s_arm_grace(zt_broker_t *self)
{
    if (self->grace_end) {
        (void)zt_delayed_call_cancel(self->grace_end);
        zt_delayed_call_release(&self->grace_end);
    }
    if (!self->bound || self->grace <= 0)
        return;
    double left = self->started + self->grace - zt_reactor_seconds(self->reactor);
    if (zt_reactor_call_later(self->reactor, left > 0 ? left : 0, s_on_grace_end, self,
                              &self->grace_end) != 0)
        ZT_LOG_ERROR("broker: cannot schedule the end of the grace; it ends now");
}

/* An RFC 8 request (the service starts with "mmi."): "mmi.service" says whether the service in
 * the body has a worker ("200") or not ("404"); anything else is "501". */
static void
s_on_mmi(zt_broker_t *self, const zt__mdp_frame_t *f, const zt__mdp_msg_t *m, const char *service)
{
    s_request_t *r = s_request_new(&f[m->env_first], m->env_count, NULL, 0);
    if (!r)
        return;
    const char *status = "501";
    if (strcmp(service, "mmi.service") == 0) {
        status = "404";
        if (m->body_count >= 1) {
            s_service_t *s = s_service_find(self, &f[m->body_first]);
            if (s && s->workers > 0)
                status = "200";
        }
    }
    zt__mdp_frame_t body = {status, 3};
    s_reply_client(self, r, service, &body, 1);
    free(r);
}

/* Refuse request r for service s with "503", counted by the bound it hit. */
static void
s_full_reply(zt_broker_t *self, const s_request_t *r, const s_service_t *s)
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
    s_error_reply(self, r, s->name, "503", message);
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
    s_service_t *s = s_service_find(self, name);
    s_request_t *r =
        s_request_new(&f[m->env_first], m->env_count, &f[m->body_first], m->body_count);
    if (!r) {
        ZT_LOG_ERROR("broker: out of memory; a request is dropped");
        return;
    }
    bool in_grace = self->grace_end != NULL;
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
        s_unknown_reply(self, r, service);
        free(r);
        return;
    }
    if (s->queued >= self->queue_limit || self->stats.stored_bytes + r->bytes > self->queue_bytes) {
        s_full_reply(self, r, s);
        free(r);
        return;
    }
    r->queued_at = zt_reactor_seconds(self->reactor);
    s_fifo_push(&s->queue_head, &s->queue_tail, r);
    s->queued++;
    self->stats.queued++;
    self->stats.stored_bytes += r->bytes;
    s_dispatch(self, s);
    s_arm_sweep(self);
}

static void
s_on_worker(zt_broker_t *self, const zt__mdp_frame_t *f, const zt__mdp_msg_t *m)
{
    s_worker_t *w = s_worker_find(self, &f[0]);
    double now = zt_reactor_seconds(self->reactor);
    if (w)
        w->expiry = now + self->interval * self->liveness;
    switch (m->command) {
    case ZT__MDP_READY: {
        if (w) {
            s_malformed(self, "READY from a worker that is ready already");
            s_worker_delete(self, w, true, "protocol error");
            return;
        }
        const zt__mdp_frame_t *name = &f[m->service];
        if (name->size >= 4 && memcmp(name->data, "mmi.", 4) == 0) {
            s_malformed(self, "a worker tried to register an mmi. service");
            s_worker_t tmp = {.id_size = f[0].size};
            memcpy(tmp.id, f[0].data, f[0].size);
            (void)s_send_command(self, &tmp, ZT__MDP_DISCONNECT);
            return;
        }
        s_service_t *s = s_service_find(self, name);
        if (!s) {
            s = calloc(1, sizeof *s);
            if (!s)
                return;
            memcpy(s->name, name->data, name->size);
            s->next = self->services;
            self->services = s;
        }
        s->announced = true;
        w = calloc(1, sizeof *w);
        if (!w)
            return;
        w->id_size = f[0].size;
        memcpy(w->id, f[0].data, f[0].size);
        w->hash = s_hash(w->id, w->id_size);
        if (s_table_add(self, w) != 0) {
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
        s_idle_append(w);
        s_dispatch(self, s);
        return;
    }
    case ZT__MDP_REPLY: {
        if (!w) {
            s_worker_t tmp = {.id_size = f[0].size};
            memcpy(tmp.id, f[0].data, f[0].size);
            (void)s_send_command(self, &tmp, ZT__MDP_DISCONNECT);
            s_malformed(self, "REPLY from a worker that is not ready");
            return;
        }
        if (!w->held) {
            s_malformed(self, "REPLY from a worker that has no request");
            return;
        }
        s_request_t *r = s_held_take(w, &f[m->env_first], m->env_count);
        if (!r) {
            s_malformed(self, "REPLY to a request the worker does not hold");
            return;
        }
        s_reply_client(self, r, w->service->name, &f[m->body_first], m->body_count);
        self->stats.replies++;
        s_request_end(self, r);
        if (!w->idle)
            s_idle_append(w);
        s_dispatch(self, w->service);
        return;
    }
    case ZT__MDP_HEARTBEAT:
        if (!w) {
            /* RFC 7: a worker the broker does not know (after a broker restart) must reconnect. */
            s_worker_t tmp = {.id_size = f[0].size};
            memcpy(tmp.id, f[0].data, f[0].size);
            (void)s_send_command(self, &tmp, ZT__MDP_DISCONNECT);
        }
        return;
    case ZT__MDP_DISCONNECT:
        if (w)
            s_worker_delete(self, w, false, "it disconnected");
        return;
    default:
        return;
    }
}

/* One message as the ROUTER reads it: [routing id][envelope...][""][MDPC01|MDPW01]... */
static void
s_on_message(zt_broker_t *self, const zt__mdp_frame_t *f, size_t n, bool too_many)
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

static void
s_on_router(zt_reactor_t *reactor, void *socket, void *arg)
{
    (void)reactor;
    zt_broker_t *self = arg;
    zmq_msg_t parts[ZT__MDP_MAX_FRAMES + 1];
    self->router_quiet = false; /* until a receive finds it drained */
    for (int batch = 0; batch < RECV_BATCH; batch++) {
        bool too_many = false;
        int got = zt__mdp_recv_parts(socket, parts, ZT_ARRAY_SIZE(parts), &too_many);
        if (got < 0) {
            self->router_quiet = true; /* EAGAIN at a message boundary, or the socket is closing */
            return;
        }
        size_t n = (size_t)got;
        zt__mdp_frame_t f[ZT__MDP_MAX_FRAMES + 1];
        for (size_t i = 0; i < n; i++)
            f[i] = (zt__mdp_frame_t){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
        s_on_message(self, f, n, too_many);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
}

static void
s_on_heartbeat(void *arg)
{
    zt_broker_t *self = arg;
    double now = zt_reactor_seconds(self->reactor);
    s_worker_t *w = self->workers;
    while (w) {
        s_worker_t *next = w->next;
        if (now > w->expiry) {
            self->stats.expiries++;
            ZT_LOG_WARNING("broker: a worker of '%s' missed %d heartbeats: it is dead",
                           w->service->name, self->liveness);
            s_worker_delete(self, w, true, "heartbeat expired");
        } else {
            (void)s_send_command(self, w, ZT__MDP_HEARTBEAT);
        }
        w = next;
    }
    zt_delayed_call_release(&self->heartbeat);
    (void)zt_reactor_call_later(self->reactor, self->interval, s_on_heartbeat, self,
                                &self->heartbeat);
}

/* ------------------------------------------------------------------------------------------- */
/* ZAP: the CURVE key check (RFC 27) */

static void
s_on_zap(zt_reactor_t *reactor, void *socket, void *arg)
{
    (void)reactor;
    zt_broker_t *self = arg;
    for (int batch = 0; batch < RECV_BATCH; batch++) {
        zmq_msg_t parts[8];
        bool too_many = false; /* a ZAP request has at most 7 frames; extra ones are ignored */
        int got = zt__mdp_recv_parts(socket, parts, ZT_ARRAY_SIZE(parts), &too_many);
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
                bool ok = self->allowed_count == 0;
                for (size_t i = 0; i < self->allowed_count && !ok; i++)
                    ok = memcmp(self->allowed[i], key, 32) == 0;
                if (ok) {
                    status = "200";
                    text = "OK";
                } else {
                    char z85[41];
                    zmq_z85_encode(z85, key, 32);
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
        (void)zt__mdp_send(socket, reply, 6);
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
    for (int batch = 0; batch < RECV_BATCH; batch++) {
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
    s_on_message(self, all, count, too_many);
}

/* ------------------------------------------------------------------------------------------- */
/* Public API */

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
    int one = 1;
    int linger = 200;
    zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(self->router, ZMQ_LINGER, &linger, sizeof linger);
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
        s_worker_delete(self, self->workers, true, "broker shutting down");
    while (self->services) {
        s_service_t *s = self->services;
        self->services = s->next;
        while (s->queue_head) {
            s_request_t *r = s->queue_head;
            s->queue_head = r->next;
            s_request_end(self, r);
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
        if (self->bound)
            (void)zt_reactor_remove_socket(self->reactor, self->router);
        zmq_close(self->router);
    }
    if (self->zap) {
        (void)zt_reactor_remove_socket(self->reactor, self->zap);
        zmq_close(self->zap);
    }
    if (self->ctx)
        zt__zmq_ctx_release();
    free(self->allowed);
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
    s_arm_sweep(self);
    return 0;
}

int
zt_broker_set_unknown_grace(zt_broker_t *self, double seconds)
{
    ZT_ASSERT(self);
    if (!(seconds >= 0))
        return ZT_EINVAL;
    self->grace = seconds;
    s_arm_grace(self);
    return 0;
}

int
zt_broker_set_max_message(zt_broker_t *self, size_t bytes)
{
    ZT_ASSERT(self);
    if (bytes == 0)
        return ZT_EINVAL;
    self->max_message = bytes;
    return 0;
}

int
zt_broker_curve_keypair(char public_key[41], char secret_key[41])
{
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
        ZT_LOG_ERROR("zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
        return ZT_ESYS;
    }
    return 0;
}

int
zt_broker_curve_load_keypair(const char *path, char public_key[41], char secret_key[41])
{
    if (!path || !public_key || !secret_key)
        return ZT_EINVAL;
    FILE *file = fopen(path, "r");
    if (!file) {
        int e = errno;
        if (e != ENOENT)
            ZT_LOG_ERROR("CURVE key file %s: %s", path, strerror(e));
        return e == ENOENT ? ZT_ENOTFOUND : e == EACCES ? ZT_EACCES : ZT_EIO;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fileno(file), &st) != 0) {
        rc = ZT_EIO;
    } else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        ZT_LOG_ERROR("CURVE key file %s has mode %03o: others may read it; chmod 600 it", path,
                     (unsigned)(st.st_mode & 0777));
        rc = ZT_EACCES;
    } else {
        char keys[2][64];
        char extra[2];
        /* Exactly two words of at most 63 characters, then nothing. */
        if (fscanf(file, "%63s %63s", keys[0], keys[1]) != 2 || fscanf(file, "%1s", extra) == 1 ||
            strlen(keys[0]) != 40 || strlen(keys[1]) != 40) {
            rc = ZT_EINVAL;
        } else {
            uint8_t secret[32], derived[41];
            if (!zmq_z85_decode(secret, keys[1]) ||
                zmq_curve_public((char *)derived, keys[1]) != 0 ||
                memcmp(derived, keys[0], 40) != 0) {
                rc = ZT_EINVAL;
            } else {
                memcpy(public_key, keys[0], 41);
                memcpy(secret_key, keys[1], 41);
            }
            memset(secret, 0, sizeof secret);
        }
        memset(keys, 0, sizeof keys);
    }
    fclose(file);
    return rc;
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
        int rc = zt_reactor_add_socket(self->reactor, self->zap, s_on_zap, self);
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
    int rc = zt__reactor_add_socket_quiet(self->reactor, self->router, s_on_router, self,
                                          &self->router_quiet);
    if (rc != 0)
        return rc;
    return zt_reactor_call_later(self->reactor, self->interval, s_on_heartbeat, self,
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
        s_arm_grace(self);
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
