/*  runtime/include/runtime/rsock.h - a ZeroMQ socket whose sends and receives the runtime sees
 *
 *  A ZeroMQ socket's ZMQ_FD signals only changes, and a send or receive on the socket may consume
 * the signal of a message that is now waiting. So before each wait the reactor must ask every
 * socket it watches for ZMQ_EVENTS (two system calls each on libzmq 4.3), unless it knows nothing
 * has used the socket since it was last found drained. An rsock is how it knows: the owner sends
 * and receives only through these calls, which keep a `quiet` flag (cleared by any send or
 * receive, set when a receive finds the socket drained or a wait finds it not readable), and the
 * reactor skips the question while the flag is set. The flag is the runtime's: no owner touches
 * it. The bridges' broker, client and worker use this for their ROUTER and DEALER sockets; a
 * socket used off any reactor (a Majordomo worker's, polled with zt__zpoll) reads the flag for
 * zt__zpoll's ZT__ZPOLL_QUIET bit.
 *
 *  Ownership: the ZeroMQ socket stays the owner's; an rsock only borrows it. Unwatch before
 * closing the socket.
 *
 *  Threads: an rsock is used by one thread at a time, the one that uses its socket; a watched one
 * by its reactor's thread.  */
#ifndef ZTWIST_RUNTIME_RSOCK_H
#define ZTWIST_RUNTIME_RSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>
#include <ztwist/reactor.h>

/* A borrowed ZeroMQ socket, embedded in its owner's structure. */
typedef struct zt__rsock {
    void *socket;          /* Borrowed: the owner's ZeroMQ socket */
    zt_reactor_t *reactor; /* Borrowed: the reactor watching it, or NULL */
    bool quiet;            /* nothing used the socket since it was found drained (rsock.c, io.c) */
} zt__rsock_t;

/* Borrow socket, not watched by any reactor yet. */
void zt__rsock_init(zt__rsock_t *self, void *socket);

/* Have reactor call fn(reactor, socket, arg) when the socket may be readable, as
 * zt_reactor_add_socket does, asking ZMQ_EVENTS before a wait only when the socket was used since
 * it was last found drained. Returns as zt_reactor_add_socket. */
int zt__rsock_watch(zt__rsock_t *self, zt_reactor_t *reactor, zt_reactor_socket_fn *fn, void *arg);

/* Stop watching (nothing if not watched); the socket may then be closed. */
void zt__rsock_unwatch(zt__rsock_t *self);

/* zmq_send on the socket (same arguments after self, same return). */
int zt__rsock_send(zt__rsock_t *self, const void *data, size_t size, int flags);

/* zmq_recv on the socket (same arguments after self, same return); an EAGAIN marks it drained. */
int zt__rsock_recv(zt__rsock_t *self, void *buf, size_t size, int flags);

/* zmq_msg_recv on the socket (same return); an EAGAIN marks it drained. */
int zt__rsock_msg_recv(zt__rsock_t *self, zmq_msg_t *msg, int flags);

/* For a socket polled off any reactor with zt__zpoll: whether ZT__ZPOLL_QUIET may be set on its
 * item. */
bool zt__rsock_is_quiet(const zt__rsock_t *self);

/* For a socket polled off any reactor: a zt__zpoll that asked for ZMQ_POLLIN found it readable or
 * not. */
void zt__rsock_polled(zt__rsock_t *self, bool readable);

#endif
