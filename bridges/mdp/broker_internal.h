/*  bridges/mdp/broker_internal.h - what the broker's files share: its structs and the calls
 * between them
 *
 *  broker.c holds the public API, the ZAP handler, the handshake monitor and the in-process links;
 * broker_registry.c the stored requests, the services' queues, the workers' registry and dispatch;
 * broker_messages.c what comes in from clients and workers and the replies that go out. The design
 * notes at the top of broker.c hold for all three. Private to bridges/mdp/.  */
#ifndef ZTWIST_BRIDGES_MDP_BROKER_INTERNAL_H
#define ZTWIST_BRIDGES_MDP_BROKER_INTERNAL_H

#include <ztwist/broker.h>

#include "mdp_codec.h"
#include "mdp_io.h"
#include "mdp_local.h"

#define ZT__BROKER_RECV_BATCH                                                                      \
    256 /* messages read per readable callback, so one peer cannot starve timers */

typedef struct zt__broker_request zt__broker_request_t;
struct zt__broker_request {
    zt__broker_request_t *next; /* the next request in its service's queue; Borrowed link */
    double queued_at;           /* when it arrived, on the reactor's clock */
    size_t bytes;               /* its frames' bytes, counted in stats.stored_bytes once stored */
    size_t body_count;          /* body frames */
    zt__mdp_frame_t *parts;     /* the packed envelope, then body_count frames, pointing into this
                                   allocation (see zt__broker_request_new) */
};

typedef struct zt__broker_service zt__broker_service_t;
typedef struct zt__broker_worker zt__broker_worker_t;

struct zt__broker_worker {
    uint8_t id[256];               /* the worker's routing identity */
    size_t id_size;                /* its length */
    uint64_t hash;                 /* of the identity, for the broker's table */
    zt__broker_service_t *service; /* the service it serves; Borrowed from the broker */
    double expiry;                 /* when it is dead unless it speaks, on the reactor's clock */
    zt__broker_request_t *held;    /* the requests it is serving, oldest first; Owned (the list) */
    zt__broker_request_t *held_tail; /* the newest; Borrowed */
    unsigned holding;                /* how many */
    unsigned prefetch;         /* how many it takes at once (READY's extension frame; 1 without) */
    zt__broker_worker_t *next; /* the broker's list of all workers; Borrowed link */
    zt__broker_worker_t *prev; /* ditto */
    zt__broker_worker_t
        *idle_next; /* its service's list of workers with room (LRU); Borrowed link */
    zt__broker_worker_t *idle_prev; /* ditto */
    bool idle;                      /* whether it is in that list (holding < prefetch) */
};

struct zt__broker_service {
    char name[ZT__MDP_MAX_SERVICE + 1]; /* the service's name */
    size_t workers;                     /* workers serving it now */
    zt__broker_worker_t *idle_head;     /* the worker with room that waited longest; Borrowed */
    zt__broker_worker_t *idle_tail;     /* the one that got room last; Borrowed */
    zt__broker_request_t *queue_head;   /* the oldest waiting request; Owned (the whole queue) */
    zt__broker_request_t *queue_tail;   /* the newest; Borrowed */
    size_t queued;                      /* requests in the queue */
    bool announced;                     /* whether a worker ever announced it (READY) */
    zt__broker_service_t *next;         /* the broker's list of services; Owned link */
};

struct zt_broker {
    zt_reactor_t *reactor;          /* Borrowed; outlives the broker */
    void *ctx;                      /* the shared ZeroMQ context; one reference held */
    void *router;                   /* the ROUTER socket; Owned */
    void *zap;                      /* the ZAP handler's REP socket when CURVE; Owned or NULL */
    bool bound;                     /* whether bind succeeded once (options are frozen) */
    double interval;                /* heartbeat interval, seconds */
    int liveness;                   /* heartbeats a worker may miss */
    size_t queue_limit;             /* bound on one service's queue */
    size_t max_message;             /* bound on a message's total size */
    size_t queue_bytes;             /* bound on the bytes of every stored request */
    double grace;                   /* seconds after the first bind when unknown services wait */
    double started;                 /* when the first bind happened, on the reactor's clock */
    zt_delayed_call_t *grace_end;   /* ends the grace; Owned or NULL */
    void *monitor;                  /* PAIR told of the ROUTER's failed handshakes; Owned or NULL */
    bool curve;                     /* whether the socket is a CURVE server */
    uint8_t secret[32];             /* the CURVE secret key, when curve */
    uint8_t (*allowed)[32];         /* the public keys let in; Owned array */
    size_t allowed_count;           /* keys in it */
    struct _zcertstore_t *certs;    /* the allow directory's certificates (czmq); Owned or NULL */
    zt_delayed_call_t *heartbeat;   /* the heartbeat timer; Owned handle */
    double queue_timeout;           /* seconds a request may wait in a queue; 0: no bound */
    zt_delayed_call_t *sweep;       /* the queue-timeout sweep while requests wait; Owned or NULL */
    zt__broker_worker_t *workers;   /* every worker; Owned list */
    zt__broker_worker_t **table;    /* the workers by identity: open addressing; Owned array */
    size_t table_cap;               /* its slots, a power of two (0 before the first worker) */
    zt__broker_service_t *services; /* every service; Owned list */
    char endpoint[256];             /* the last endpoint bound */
    zt_broker_stats_t stats;        /* the counters; workers and queued are kept live */
    zt__rsock_t router_io;          /* the ROUTER as the runtime sees it (every send and receive) */
    zt__rsock_t zap_io;             /* the ZAP socket, likewise */
    zt__mdp_link_t **links; /* clients in this reactor (mdp_local.h); Owned array, a ref each */
    size_t nlinks;          /* links in it */
    uint32_t next_link_id;  /* the last link id given */
};

/* The empty frame: the delimiter of every message the broker sends. */
extern const uint8_t zt__broker_empty[1];

/* (Re)arm the end of the grace, once bound: at started + grace, or on the next pass when that is
 * past and services may still wait for it. */
void zt__broker_arm_grace(zt_broker_t *self);

/* Start the queue-timeout sweep when a timeout is set, requests wait and it is not running. */
void zt__broker_arm_sweep(zt_broker_t *self);

/* Give s's waiting requests to its workers with room, oldest request first. */
void zt__broker_dispatch(zt_broker_t *self, zt__broker_service_t *s);

/* An error reply to request r for service: [ZT__MDP_ERROR_MARK][status][message]. */
void zt__broker_error_reply(zt_broker_t *self, const zt__broker_request_t *r, const char *service,
                            const char *status, const char *message);

/* Append r to the list (head, tail) of requests, oldest first. */
void zt__broker_fifo_push(zt__broker_request_t **head, zt__broker_request_t **tail,
                          zt__broker_request_t *r);

/* Unpack a request's packed envelope (parts[0]) into at most cap frames pointing into it; returns
 * how many. */
size_t zt__broker_envelope_unpack(const zt__mdp_frame_t *packed, zt__mdp_frame_t *env, size_t cap);

/* FNV-1a of a worker's identity, for the workers' table. */
uint64_t zt__broker_hash(const void *data, size_t size);

/* Take out of w's held requests the one a REPLY with envelope env answers: the one with that
 * envelope (the oldest first, so an in-order worker costs one comparison), or, from a worker
 * holding a single request, that one whatever the envelope (RFC 7 names no other). NULL when none.
 */
zt__broker_request_t *zt__broker_held_take(zt__broker_worker_t *w, const zt__mdp_frame_t *env,
                                           size_t count);

/* Put w at the back of its service's list of workers with room (it must not be in it). */
void zt__broker_idle_append(zt__broker_worker_t *w);

/* The heartbeat timer: expire silent workers, heartbeat the others, re-arm. arg: the broker. */
void zt__broker_on_heartbeat(void *arg);

/* One message as the ROUTER reads it: [routing id][envelope...][""][MDPC01|MDPW01]... */
void zt__broker_on_message(zt_broker_t *self, const zt__mdp_frame_t *f, size_t n, bool too_many);

/* The ROUTER is readable: read a batch of messages (ZT__BROKER_RECV_BATCH) and handle each. */
void zt__broker_on_router(zt_reactor_t *reactor, void *socket, void *arg);

/* A stored request ends: its bytes leave the count, and it is freed. */
void zt__broker_request_end(zt_broker_t *self, zt__broker_request_t *r);

/* A request holding copies of the envelope and body frames, in one allocation; NULL when out
 * of memory. Not stored yet: its bytes count once it is queued. The envelope (the client's
 * address stack, its routing id first, then what the client put there: ztwist's request id) is
 * kept packed into one frame, each address frame as [its size, one byte][its bytes], and it goes
 * to the worker as that one frame: RFC 7 lets a worker get a stack of addresses, but the ZeroMQ
 * guide's worker API (mdwrkapi) takes exactly one address frame and then the empty delimiter, so
 * one frame is what any Majordomo worker carries back whole. The codec bounds each address frame
 * (ZT__MDP_MAX_ADDRESS bytes). */
zt__broker_request_t *zt__broker_request_new(const zt__mdp_frame_t *env, size_t env_count,
                                             const zt__mdp_frame_t *body, size_t body_count);

/* Every send on the ROUTER goes through here: a send may consume the signal of a message that
 * arrives meanwhile, so the reactor must ask the socket again before it sleeps. */
int zt__broker_router_send(zt_broker_t *self, const zt__mdp_frame_t *f, size_t n);

/* Send worker w a bare command (HEARTBEAT, DISCONNECT). Returns as zt__mdp_send. */
int zt__broker_send_command(zt_broker_t *self, zt__broker_worker_t *w, uint8_t command);

/* The service with that name, or NULL. */
zt__broker_service_t *zt__broker_service_find(zt_broker_t *self, const zt__mdp_frame_t *name);

/* Put w in the table, growing it first when it would be more than half full. */
int zt__broker_table_add(zt_broker_t *self, zt__broker_worker_t *w);

/* Answer request r for a service no worker announced: "404". */
void zt__broker_unknown_reply(zt_broker_t *self, const zt__broker_request_t *r,
                              const char *service);

/* Forget a worker; each request it holds gets a "410" error reply saying why. */
void zt__broker_worker_delete(zt_broker_t *self, zt__broker_worker_t *w, bool send_disconnect,
                              const char *why);

/* The worker with that routing identity, or NULL. */
zt__broker_worker_t *zt__broker_worker_find(zt_broker_t *self, const zt__mdp_frame_t *id);

#endif
