/*  ztwist/remote.h - remote workers, the reactor's side: requests to a Majordomo broker as
 * Deferreds
 *
 *  A zt_remote_t is a client connection from the reactor to a Majordomo broker (RFC 7/MDP v0.1,
 * over ZeroMQ TCP, optionally CURVE-secured). zt_defer_to_remote sends one request to a named
 * service and returns a Deferred that fires on the reactor thread with the reply's frames, or
 * fails. Every request ends in exactly one callback or errback:
 *    - the reply: zt_ok(frames, zt_frames_free), a zt_frames_t the chain owns;
 *    - a failure whose zt_failure_code says why: ZT_ETIMEDOUT (no reply before the request's
 * timeout while connected; a ZT_TIMEOUT_ERROR), ZT_ECONNLOST (the worker serving it died, or the
 * connection to the broker dropped, and the request was not safe to retry or its retries ran
 * out), ZT_ENOTFOUND (the broker knows no such service), ZT_EFULL (the service's queue at the
 * broker is full, or the broker stores as many bytes as it may), ZT_EUNREACHABLE (the timeout
 * passed with no connection to the broker), ZT_EACCES (the broker rejected this client's CURVE key,
 * or its security mechanism is not this client's: plaintext against CURVE or the other way round;
 * at once, not at the timeout), ZT_ECANCELLED (zt_deferred_cancel, or the client was destroyed),
 * ZT_EPROTO (a malformed reply).
 *
 *  Many requests may be in flight on one client; each carries its own id in the MDP envelope, so
 * replies may come back in any order. A request marked safe_to_retry is sent again when the broker
 * reports its worker lost (the broker gives it to another worker) or the connection to the broker
 * drops (it goes out again once ZeroMQ has reconnected). A late reply to a request that already
 * ended is counted and dropped. The broker keeps no deadline: a request queued at a broker whose
 * workers are gone waits there even after its client gave up.
 *
 *  Threads: every function here is for the reactor thread only. (The zt_frames_* calls, declared
 * in <ztwist/frames.h>, which this header includes, are for any thread.)  */
#ifndef ZTWIST_REMOTE_H
#define ZTWIST_REMOTE_H

#include <ztwist/broker.h>
#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/frames.h>
#include <ztwist/reactor.h>

/* ------------------------------------------------------------------------------------------- */
/* The client connection */

/** A client connection to a Majordomo broker. */
typedef struct zt_remote zt_remote_t;

/** Per-request options; a zeroed struct (or NULL) means the defaults. */
typedef struct zt_remote_options {
    double timeout;     /* seconds until the request fails; 0 means ZT_REMOTE_DEFAULT_TIMEOUT */
    bool safe_to_retry; /* the request may run twice: re-send it when its worker is lost */
    int max_retries;    /* re-sends allowed when safe_to_retry; 0 means ZT_REMOTE_DEFAULT_RETRIES */
} zt_remote_options_t;

/** The default per-request timeout, in seconds. */
#define ZT_REMOTE_DEFAULT_TIMEOUT 10.0

/** The default number of re-sends of a request that is safe to retry. */
#define ZT_REMOTE_DEFAULT_RETRIES 3

/** The client's counters, filled in by zt_remote_stats. */
typedef struct zt_remote_stats {
    uint64_t requests;       /* requests accepted by zt_defer_to_remote */
    uint64_t replies;        /* requests that ended with a reply */
    uint64_t failures;       /* requests that ended with a failure (timeouts included) */
    uint64_t timeouts;       /* requests that failed on their timeout */
    uint64_t retries;        /* re-sends after a lost worker */
    uint64_t late;           /* replies for requests that had already ended, dropped */
    uint64_t malformed;      /* replies dropped as malformed */
    uint64_t in_flight;      /* requests waiting for their end now */
    bool connected;          /* whether the connection to the broker is up (handshake done) */
    bool auth_rejected;      /* whether the broker rejected our CURVE key on the last handshake */
    bool mechanism_mismatch; /* whether the last handshake failed: the broker's security mechanism
                                (CURVE or plaintext) is not ours */
} zt_remote_stats_t;

/**
 *  Create a client for a reactor. It does no I/O: see zt_remote_connect.
 *  @return a client the caller owns, or NULL when out of memory or ZeroMQ fails (logged)
 */
ZT_EXPORT ZT_NODISCARD zt_remote_t *zt_remote_new(zt_reactor_t *reactor);

/**
 *  Destroy a client and NULL the pointer. Requests still in flight fail with ZT_ECANCELLED ("client
 * destroyed"), so their errbacks run inside this call. Never call it from one of its Deferreds'
 * callbacks: schedule it.
 *  @param self_p  NULL or a NULL client does nothing
 */
ZT_EXPORT void zt_remote_destroy(zt_remote_t **self_p);

/**
 *  Use CURVE: authenticate the broker by its public key and present ours. Call before connect.
 *  Keys are 40-character Z85 strings (zt_curve_keypair makes them).
 *  @return 0; ZT_EINVAL (a key is not valid Z85 of 32 bytes); ZT_ESTATE (connected already);
 * ZT_ESYS (ZeroMQ built without CURVE, logged)
 */
ZT_EXPORT int zt_remote_set_curve(zt_remote_t *self, const char *server_public,
                                  const char *public_key, const char *secret_key);

/**
 *  Bound a frame this client accepts from the broker (default ZT_BROKER_MAX_MESSAGE, 16 MiB, the
 * broker's own default bound on a whole message): ZeroMQ closes a connection that sends a larger
 * one, for good (it does not reconnect after a protocol error): the requests in flight fail with
 * ZT_ECONNLOST, later ones with ZT_EUNREACHABLE at their timeouts. Before connect.
 *  @return 0; ZT_EINVAL (0, or above INT64_MAX); ZT_ESTATE (connected already)
 */
ZT_EXPORT int zt_remote_set_max_message(zt_remote_t *self, size_t bytes);

/**
 *  Connect to a broker, e.g. "tcp://127.0.0.1:5555". ZeroMQ connects (and reconnects) in the
 * background: requests made before the connection is up wait for it, within their timeouts.
 *  @return 0; ZT_EINVAL (a malformed endpoint); ZT_ESTATE (connected already); ZT_ESYS (logged)
 */
ZT_EXPORT int zt_remote_connect(zt_remote_t *self, const char *endpoint);

/**
 *  Connect to a broker that runs in this client's own reactor, without a socket: requests and
 * replies are handed over as calls on the reactor's next pass, so a round trip costs no system
 * call and no thread wake-up on this side (a socket, even inproc, costs about sixteen system calls
 * per request here). Everything else is as with zt_remote_connect: timeouts, retries, the
 * broker's queue, its failures ("410" worker lost, "404" unknown service, "503" queue full). When
 * the broker is destroyed first, the calls in flight end as after a dropped connection
 * (ZT_ECONNLOST, or re-sent and then failed when safe to retry) and later calls fail at once.
 *  @return 0; ZT_EINVAL (no broker, or a broker on another reactor); ZT_ESTATE (connected
 * already); ZT_ENOMEM
 */
ZT_EXPORT int zt_remote_connect_broker(zt_remote_t *self, zt_broker_t *broker);

/**
 *  Send a request to a service and get its reply as a Deferred.
 *  @param reactor    the client's reactor (an assertion)
 *  @param service    the service's name, 1 to 255 bytes (copied)
 *  @param request_p  the request's frames; ownership moves to the client on success and *request_p
 * becomes NULL; NULL or *NULL sends an empty body
 *  @param options    NULL for the defaults; copied
 *  @return a Deferred the caller owns (one reference), which fires as the file's comment says; NULL
 * only when out of memory, service is NULL or invalid, or the client is not connected (then
 * *request_p is left to the caller)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_defer_to_remote(zt_reactor_t *reactor, zt_remote_t *client,
                                                         const char *service,
                                                         zt_frames_t **request_p,
                                                         const zt_remote_options_t *options);

/**
 *  Wait until a service has a worker at the broker: ask it RFC 8's "mmi.service" now and again
 * every 0.1 s after each "no", until it says yes or the timeout passes. Use it before the first
 * request when the broker, the workers and this client start together.
 *  @param service  the service's name, 1 to 255 bytes (copied)
 *  @param timeout  seconds, > 0
 *  @return a Deferred the caller owns (one reference), fired on the reactor thread with no value
 * (zt_ok_none) once the service has a worker, or failed: ZT_ETIMEDOUT (a ZT_TIMEOUT_ERROR: no
 * worker within the timeout, or no broker to ask), ZT_EACCES (the broker refused our handshake),
 * ZT_ECANCELLED (zt_deferred_cancel, or the client was destroyed; the errback runs inside
 * zt_remote_destroy). NULL when out of memory, the service is NULL or invalid, timeout is not
 * positive, or the client is not connected.
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *
zt_remote_wait_for_service(zt_remote_t *client, const char *service, double timeout);

/** Fill stats with the client's counters. @param stats  required */
ZT_EXPORT void zt_remote_stats(const zt_remote_t *self, zt_remote_stats_t *stats);

#endif
