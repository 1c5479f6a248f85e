/*  runtime/rsock.c - a ZeroMQ socket whose sends and receives the runtime sees (see rsock.h)
 *
 *  The one invariant: `quiet` is true only if no send or receive has been made on the socket
 * since a receive failed with EAGAIN or a wait found the socket not readable. Every send and
 * receive clears it before the call (a call may consume the ZMQ_FD signal of a message that
 * arrives meanwhile), an EAGAIN from a receive sets it, and io.c sets it after a wait that did not
 * report the socket readable.  */
#include "runtime/rsock.h"

#include "base/base.h"
#include "runtime.h"

#include <errno.h>

void
zt__rsock_init(zt__rsock_t *self, void *socket)
{
    ZT_ASSERT(self);
    *self = (zt__rsock_t){.socket = socket};
}

int
zt__rsock_watch(zt__rsock_t *self, zt_reactor_t *reactor, zt_reactor_socket_fn *fn, void *arg)
{
    ZT_ASSERT(self && reactor && !self->reactor);
    self->quiet = false;
    int rc = zt__io_add_socket(reactor, self->socket, fn, arg, &self->quiet);
    if (rc == 0)
        self->reactor = reactor;
    return rc;
}

void
zt__rsock_unwatch(zt__rsock_t *self)
{
    ZT_ASSERT(self);
    if (!self->reactor)
        return;
    (void)zt_reactor_remove_socket(self->reactor, self->socket);
    self->reactor = NULL;
}

int
zt__rsock_send(zt__rsock_t *self, const void *data, size_t size, int flags)
{
    self->quiet = false;
    return zmq_send(self->socket, data, size, flags);
}

int
zt__rsock_recv(zt__rsock_t *self, void *buf, size_t size, int flags)
{
    self->quiet = false;
    int rc = zmq_recv(self->socket, buf, size, flags);
    if (rc < 0 && zmq_errno() == EAGAIN)
        self->quiet = true;
    return rc;
}

int
zt__rsock_msg_recv(zt__rsock_t *self, zmq_msg_t *msg, int flags)
{
    self->quiet = false;
    int rc = zmq_msg_recv(msg, self->socket, flags);
    if (rc < 0 && zmq_errno() == EAGAIN)
        self->quiet = true;
    return rc;
}

bool
zt__rsock_is_quiet(const zt__rsock_t *self)
{
    return self->quiet;
}

void
zt__rsock_polled(zt__rsock_t *self, bool readable)
{
    self->quiet = !readable;
}
