/*  ztwist/broker.h - a Majordomo broker (RFC 7/MDP v0.1 with RFC 8/MMI) inside a reactor
 *
 *  The broker binds a ZeroMQ ROUTER socket on TCP and polls it in its reactor's loop. Workers
 * (zt_mdp_worker_t, or any MDP worker) announce a service with READY; clients (zt_remote_t, or any
 * MDP client) send requests to a service by name. The broker gives each request to the idle worker
 * of that service that has waited longest; when none is idle the request waits in the service's
 * bounded queue (full: the client gets a "queue full" error reply). The bytes of every request the
 * broker stores (queued, or held by a worker) are bounded as a whole too
 * (zt_broker_set_queue_bytes): past it a new request gets "queue full", so one client cannot take
 * the broker's memory. Requests to a service that no worker ever announced get a "service unknown"
 * error reply (or wait, during the grace period after start: zt_broker_set_unknown_grace; when it
 * ends, what still waits for a service no worker announced gets "service unknown" at once).
 * "mmi.service" answers "200" when the named service has a worker, "404" when not; other "mmi."
 * services answer "501" (RFC 8). A worker gets each request's client envelope (the client's routing
 * id and whatever the client put in its address stack, such as ztwist's request id) packed into one
 * address frame, [""][MDPW01][REQUEST][address][""][body...], and answers with that frame as it
 * came: so a worker written after the ZeroMQ guide's worker API, which keeps one address frame and
 * expects the empty delimiter next, serves every client.
 *
 *  Heartbeats go both ways every interval; a worker silent for interval * liveness is dead: its
 * request in flight gets a "worker lost" error reply (a ztwist client re-sends it when the request
 * is safe to retry). Malformed messages are dropped, counted and logged (rate-limited); the broker
 * keeps serving everyone else. Error replies carry the requested service's name, as RFC 7 has every
 * reply do, and the body ["ztwist.error", status, message], status "404" (unknown service), "503"
 * (queue full), "504" (queue timeout) or "410" (worker lost).
 *
 *  Security: with zt_broker_set_curve the broker is a CURVE server, and with zt_broker_allow_key
 * (or a directory of certificates, zt_broker_allow_directory) only the listed client and worker
 * public keys get in (a ZAP handler on inproc://zeromq.zap.01 of
 * the shared context: one CURVE broker per process). A rejected key is logged and counted, and so
 * is a peer whose security mechanism is not the broker's (plaintext against CURVE, or CURVE against
 * plaintext): ZeroMQ ends such a handshake before a message can pass, and the peer's own monitor
 * tells it why (a ztwist client or worker fails with ZT_EACCES).
 *
 *  Threads: every function here is for the reactor thread only.  */
#ifndef ZTWIST_BROKER_H
#define ZTWIST_BROKER_H

#include <ztwist/common.h>
#include <ztwist/curve.h>
#include <ztwist/reactor.h>

/** A Majordomo broker running in a reactor. */
typedef struct zt_broker zt_broker_t;

/** The RFC's heartbeat interval, in seconds. */
#define ZT_MDP_HEARTBEAT_INTERVAL 2.5

/** The RFC's heartbeat liveness: heartbeats a peer may miss before it is dead. */
#define ZT_MDP_HEARTBEAT_LIVENESS 3

/** The default bound on the requests waiting in one service's queue. */
#define ZT_BROKER_QUEUE_LIMIT 10000

/** The default bound on a message's total size, in bytes. */
#define ZT_BROKER_MAX_MESSAGE (16u * 1024u * 1024u)

/** The default bound on the bytes of all the requests the broker stores at once (256 MiB). */
#define ZT_BROKER_QUEUE_BYTES ((size_t)256u * 1024u * 1024u)

/** The broker's counters, filled in by zt_broker_stats. */
typedef struct zt_broker_stats {
    uint64_t requests;      /* client requests received (mmi included) */
    uint64_t replies;       /* worker replies forwarded to clients, and mmi answers */
    uint64_t drops;         /* malformed messages dropped */
    uint64_t expiries;      /* workers declared dead by heartbeat expiry */
    uint64_t workers_lost;  /* requests in flight whose worker died ("410" replies) */
    uint64_t queue_full;    /* requests refused because their queue was full ("503") */
    uint64_t bytes_full;    /* requests refused because the stored bytes hit their bound ("503") */
    uint64_t queue_expired; /* requests that waited past the queue timeout ("504") */
    uint64_t unknown_service;  /* requests for a service no worker announced ("404") */
    uint64_t retries;          /* requests re-queued because their worker was gone at send time */
    uint64_t auth_rejected;    /* CURVE handshakes refused by the ZAP handler */
    uint64_t handshake_failed; /* handshakes that failed: a peer with another security mechanism,
                                  or a broken greeting (rejected CURVE keys are auth_rejected) */
    uint64_t workers;          /* workers connected now */
    uint64_t queued;           /* requests waiting in queues now */
    uint64_t stored_bytes;     /* bytes of the requests stored now (queued or held by a worker) */
} zt_broker_stats_t;

/**
 *  Create a broker for a reactor. It does no I/O: see zt_broker_bind.
 *  @return a broker the caller owns, or NULL when out of memory or ZeroMQ fails (logged)
 */
ZT_EXPORT ZT_NODISCARD zt_broker_t *zt_broker_new(zt_reactor_t *reactor);

/**
 *  Destroy a broker and NULL the pointer: tells its workers DISCONNECT and closes the socket.
 *  @param self_p  NULL or a NULL broker does nothing
 */
ZT_EXPORT void zt_broker_destroy(zt_broker_t **self_p);

/**
 *  Set the heartbeat interval and liveness (before bind).
 *  @return 0; ZT_EINVAL (interval <= 0 or liveness < 1); ZT_ESTATE (bound already)
 */
ZT_EXPORT int zt_broker_set_heartbeat(zt_broker_t *self, double interval, int liveness);

/** Bound each service's queue (default ZT_BROKER_QUEUE_LIMIT). @return 0, or ZT_EINVAL for 0 */
ZT_EXPORT int zt_broker_set_queue_limit(zt_broker_t *self, size_t limit);

/**
 *  Bound the bytes of all the requests the broker stores at once, queued or held by a worker
 * (default ZT_BROKER_QUEUE_BYTES, 256 MiB). A request that would pass it gets "503" (ZT_EFULL at a
 * ztwist client), counted in stats.bytes_full; the broker goes on serving the others. Any time.
 *  @return 0, or ZT_EINVAL for 0
 */
ZT_EXPORT int zt_broker_set_queue_bytes(zt_broker_t *self, size_t bytes);

/**
 *  Let requests for a service no worker announced wait in a queue, instead of failing with "404",
 * for this long after the first bind: after a broker restart, workers need a moment to come back.
 * Default 0. When the grace ends, every request still waiting for a service that no worker
 * announced gets "404" at once (ZT_ENOTFOUND), as one arriving later does.
 *  @return 0, or ZT_EINVAL for a negative value
 */
ZT_EXPORT int zt_broker_set_unknown_grace(zt_broker_t *self, double seconds);

/**
 *  Give a request at most this long in its service's queue, waiting for a free worker: after it,
 * the client gets error "504" (a zt_remote call fails with ZT_ETIMEDOUT) and the request leaves the
 * queue, so a worker never starts on work its client may have given up on. A request expires
 * between `seconds` and 1.5 x `seconds` after it arrived. Requests a worker holds are not affected
 * (heartbeats end those). Default 0: a request waits as long as it takes, as in RFC 7.
 *  @return 0, or ZT_EINVAL for a negative value
 */
ZT_EXPORT int zt_broker_set_queue_timeout(zt_broker_t *self, double seconds);

/**
 *  Bound a message's total size (default ZT_BROKER_MAX_MESSAGE): a larger one is dropped, counted
 * and logged. Set it before bind: it also bounds each frame on the wire (ZeroMQ's ZMQ_MAXMSGSIZE,
 * fixed for an endpoint when it is bound), so a peer sending a larger frame has its connection
 * closed before the frame is buffered.
 *  @return 0, or ZT_EINVAL for 0
 */
ZT_EXPORT int zt_broker_set_max_message(zt_broker_t *self, size_t bytes);

/**
 *  Be a CURVE server with this secret key (before bind).
 *  @return 0; ZT_EINVAL (not a Z85 key); ZT_ESTATE (bound already)
 */
ZT_EXPORT int zt_broker_set_curve(zt_broker_t *self, const char *secret_key);

/**
 *  Let a client or worker public key in; once one key is listed only listed keys get in.
 *  @return 0; ZT_EINVAL (not a Z85 key); ZT_ENOMEM
 */
ZT_EXPORT int zt_broker_allow_key(zt_broker_t *self, const char *public_key);

/**
 *  Let in the client and worker public keys that have a certificate in a directory: the public
 * files of czmq certificates (zt_curve_save_keypair, zcert_save, zmakecert), in the convention of
 * czmq's zcertstore and zauth ("_secret" files are ignored; subdirectories are read too). The
 * broker reads the directory again before a handshake when its files changed (their number, total
 * size or newest modification time), so a certificate copied in or removed counts from the next
 * handshake on; a connection already made stays. Together with zt_broker_allow_key: a key either
 * lists gets in; once either is given, no other key does. A second call replaces the directory.
 *  @return 0; ZT_EINVAL (NULL or ""); ZT_ENOTFOUND (not a directory); ZT_ENOMEM
 */
ZT_EXPORT int zt_broker_allow_directory(zt_broker_t *self, const char *directory);

/**
 *  Bind the broker and start serving, e.g. "tcp://127.0.0.1:0" (port 0: any free port; see
 * zt_broker_endpoint). May be called more than once to listen on several endpoints: workers on
 * TCP, and an "inproc://NAME" endpoint for clients in this process, which then skip TCP.
 *  @return 0; ZT_EADDRINUSE; ZT_EINVAL (a malformed endpoint); ZT_ESYS (logged)
 */
ZT_EXPORT int zt_broker_bind(zt_broker_t *self, const char *endpoint);

/** The last endpoint bound, with the real port ("tcp://127.0.0.1:40123"); "" before bind. */
ZT_EXPORT const char *zt_broker_endpoint(const zt_broker_t *self);

/** Fill stats with the broker's counters. @param stats  required */
ZT_EXPORT void zt_broker_stats(const zt_broker_t *self, zt_broker_stats_t *stats);

#endif
