/*  runtime/include/runtime/socket_quiet.h - a ZeroMQ socket whose owner tracks when it was drained
 *
 *  Before each wait the reactor asks every registered ZeroMQ socket for ZMQ_EVENTS, two system
 * calls each on libzmq 4.3, because a send or receive made on the reactor thread may have consumed
 * the ZMQ_FD signal of a message that is now waiting (runtime/io.c). An owner that sees every
 * operation on its socket can spare that question: it keeps a flag, clears it before any send on
 * the socket and when a read callback stops before the socket is drained, and sets it when a
 * receive fails with EAGAIN. While the flag is set the reactor relies on the socket's ZMQ_FD alone,
 * and it sets the flag too when a wait finds the socket not readable. The bridges' broker and
 * client use this for their ROUTER and DEALER.
 *
 *  Threads: the reactor thread only, like zt_reactor_add_socket.  */
#ifndef ZTWIST_RUNTIME_SOCKET_QUIET_H
#define ZTWIST_RUNTIME_SOCKET_QUIET_H

#include <stdbool.h>
#include <ztwist/reactor.h>

/* zt_reactor_add_socket, plus *quiet (Borrowed: it must outlive the registration): true means
 * nothing touched the socket since a receive on it failed with EAGAIN. */
int zt__reactor_add_socket_quiet(zt_reactor_t *self, void *socket, zt_reactor_socket_fn *fn,
                                 void *arg, bool *quiet);

#endif
