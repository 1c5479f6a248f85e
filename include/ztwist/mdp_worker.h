/*  ztwist/mdp_worker.h - a Majordomo worker: serve a named service to a broker's clients
 *
 *  A zt_mdp_worker_t connects to a Majordomo broker (RFC 7/MDP v0.1) over ZeroMQ TCP, announces
 * its service (READY) and answers one request at a time by calling a handler. zt_mdp_worker_run
 * runs the handler on the calling thread; an I/O thread of the worker's own keeps the connection:
 * it heartbeats the broker even while the handler runs, notices a silent broker (interval *
 * liveness) and reconnects with back-off (doubling from the reconnect delay up to its maximum),
 * announcing itself again. To serve several requests at once, run several workers, each on its own
 * thread; to keep several in flight on one connection, see zt_mdp_worker_set_prefetch.
 *
 *  Threads: zt_mdp_worker_stop and zt_mdp_worker_served are safe from any thread; the others are
 * for one thread at a time (the one that runs the worker).  */
#ifndef ZTWIST_MDP_WORKER_H
#define ZTWIST_MDP_WORKER_H

#include <ztwist/common.h>
#include <ztwist/remote.h>

/** A worker connection to a broker. */
typedef struct zt_mdp_worker zt_mdp_worker_t;

/**
 *  Serve one request.
 *  @param request  the request's body; borrowed for the call
 *  @param arg      the arg given to zt_mdp_worker_new
 *  @return the reply's body, which the worker takes and frees; NULL replies with an empty body
 */
typedef zt_frames_t *zt_mdp_handler_fn(const zt_frames_t *request, void *arg);

/**
 *  Create a worker. It does no I/O and starts no thread: see zt_mdp_worker_run.
 *  @param endpoint  the broker, e.g. "tcp://127.0.0.1:5555" (copied)
 *  @param service   the service to serve, 1 to 255 bytes, not starting with "mmi." (copied)
 *  @param handler   required
 *  @param arg       passed to handler; borrowed
 *  @return a worker the caller owns, or NULL (invalid arguments or out of memory)
 */
ZT_EXPORT ZT_NODISCARD zt_mdp_worker_t *zt_mdp_worker_new(const char *endpoint, const char *service,
                                                          zt_mdp_handler_fn *handler, void *arg);

/** Destroy a worker that is not running and NULL the pointer. @param self_p  NULL does nothing */
ZT_EXPORT void zt_mdp_worker_destroy(zt_mdp_worker_t **self_p);

/**
 *  Set the heartbeat interval (seconds) and liveness; the broker's must match (before run).
 *  @return 0, or ZT_EINVAL (interval <= 0 or liveness < 1)
 */
ZT_EXPORT int zt_mdp_worker_set_heartbeat(zt_mdp_worker_t *self, double interval, int liveness);

/**
 *  Set the reconnect back-off: the first delay and the longest (seconds; defaults 0.1 and 2.5).
 *  @return 0, or ZT_EINVAL (initial <= 0 or max < initial)
 */
ZT_EXPORT int zt_mdp_worker_set_reconnect(zt_mdp_worker_t *self, double initial, double max);

/**
 *  Take up to n requests at once (before run; default 1). ztwist's extension to RFC 7: READY
 * carries n in a frame after the service, and a ztwist broker then sends the worker up to n
 * requests before the first reply; this worker answers them in order. Requests that share a
 * connection share its TCP segments, so one process serves many more per second than with one at a
 * time; a request may wait behind a long one of the same worker, as with any prefetch. With n = 1
 * READY is plain RFC 7, for any Majordomo broker. While the handler runs, the keeper still
 * heartbeats but leaves the broker's messages to the handler thread.
 *  @return 0, or ZT_EINVAL (n is 0 or above 1000)
 */
ZT_EXPORT int zt_mdp_worker_set_prefetch(zt_mdp_worker_t *self, unsigned n);

/**
 *  Bound a frame this worker accepts from the broker (default 16 MiB, the broker's default bound on
 * a message; before run): ZeroMQ closes a connection that sends a larger one, unserved, and the
 * worker connects again once the broker has been silent for interval x liveness.
 *  @return 0, or ZT_EINVAL (0, or above INT64_MAX)
 */
ZT_EXPORT int zt_mdp_worker_set_max_message(zt_mdp_worker_t *self, size_t bytes);

/**
 *  Use CURVE: the broker's public key and ours (40-character Z85 strings; before run).
 *  @return 0, or ZT_EINVAL (a key is not Z85 of 32 bytes)
 */
ZT_EXPORT int zt_mdp_worker_set_curve(zt_mdp_worker_t *self, const char *server_public,
                                      const char *public_key, const char *secret_key);

/**
 *  Serve on the calling thread until zt_mdp_worker_stop: start the I/O thread, connect, and call
 * the handler for each request. Returns once stopped, after telling the broker DISCONNECT.
 *  A broker whose security mechanism is not this worker's (plaintext against CURVE, or CURVE
 * against plaintext) will never take it: run then returns ZT_EACCES after the first handshake,
 * having logged "security mechanism mismatch". A rejected CURVE key is logged and retried (the
 * broker's list of keys may change).
 *  @return 0; ZT_EACCES (the mechanisms differ); ZT_ESTATE (running already); ZT_ESYS (a thread or
 * ZeroMQ failed, logged)
 */
ZT_EXPORT int zt_mdp_worker_run(zt_mdp_worker_t *self);

/**
 *  Ask a running worker to stop: run returns after the request in hand, if any. Any thread. A
 * worker stays stopped: a stop before run, or a second run, returns at once.
 *  @return 0
 */
ZT_EXPORT int zt_mdp_worker_stop(zt_mdp_worker_t *self);

/** Requests this worker has answered (any thread; a relaxed read). */
ZT_EXPORT uint64_t zt_mdp_worker_served(const zt_mdp_worker_t *self);

#endif
