/*  base/include/base/zmq_ctx.h - the process-wide ZeroMQ context every layer shares
 *
 *  inproc endpoints connect only between sockets of one context, so the reactor's mailbox, the
 * worker actors and the bridges all make their sockets on this one. It is created on first use and
 * terminated when the last user releases it; each user (a reactor, a pool) holds one reference for
 * as long as it has sockets open. Before any czmq use, creating it turns czmq's SIGINT/SIGTERM
 * handlers off (zsys_handler_set(NULL)): ztwist installs no signal handler behind the user's back.
 *
 *  Linger: the context is made with ZMQ_BLOCKY off, so every socket made on it defaults to
 * ZMQ_LINGER 0 and the last release never blocks on a lost peer. A socket whose last messages must
 * still go out after zmq_close (a reply sent just before closing) sets a bounded ZMQ_LINGER itself.
 *
 *  Threads: both calls are safe from any thread (a mutex guards the context and its count).  */
#ifndef ZTWIST_BASE_ZMQ_CTX_H
#define ZTWIST_BASE_ZMQ_CTX_H

/* Take a reference to the shared context, creating it on first use. Returns the libzmq context, or
 * NULL when libzmq cannot create one (logged). Pair every non-NULL return with a release. */
void *zt__zmq_ctx_acquire(void);

/* Drop a reference; the last one closes the context (zmq_ctx_term), so every socket made on it must
 * be closed by then. */
void zt__zmq_ctx_release(void);

#endif
