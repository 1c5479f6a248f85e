/*  bridges/tcp/tcp_connect.c - how TCP connections begin: connect (zt_connect_tcp) and listen
 *  (zt_listen_tcp, zt_tcp_port_*)
 *
 *  A client's connect is non-blocking: the transport waits in CONNECTING, registered as a writer,
 * until the kernel says how it went, a timeout fires or the Deferred is cancelled; every failure
 * reaches the factory and the Deferred on a later pass, never inside the call. A port accepts up
 * to a batch of connections per readable event and keeps the list of those still open, so that
 * stopping it can lose them. An accepted connection costs as few system calls as it can: one
 * accept4 makes it non-blocking and close-on-exec (base/compiler.h), and this end's address is
 * the port's unless the port is bound to a wildcard address, where getsockname runs only when
 * zt_transport_get_host asks. The transport itself (reading, writing, closing) is tcp.c; the
 * design notes there hold for both files.
 *
 *  Threads: the reactor thread only.  */
#include <ztwist/tcp.h>

#include "tcp_internal.h"

#include "base/base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- connecting ------------------------------------------------------------------------- */

/* The attempt failed: tell the factory and the Deferred. reason is taken over. */
void
zt__tcp_connect_failed(zt_transport_t *t, zt_failure_t *reason)
{
    if (t->state != ZT__TCP_CONNECTING) {
        zt_failure_destroy(&reason);
        return;
    }
    t->refs++;
    t->state = ZT__TCP_CLOSED;
    zt__tcp_stop_writing(t);
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    if (t->timeout_call) {
        zt_delayed_call_cancel(t->timeout_call);
        zt_delayed_call_release(&t->timeout_call);
    }
    zt_failure_destroy(&t->connect_failure);
    zt_factory_t *factory = t->client_factory;
    t->client_factory = NULL;
    zt_factory_client_connection_failed(factory, reason);
    zt_factory_do_stop(factory);
    zt_deferred_t *d = t->connect_d;
    t->connect_d = NULL;
    if (d)
        zt_deferred_errback(d, reason);
    else
        zt_failure_destroy(&reason);
    zt_deferred_unref(&d);
    t->refs--; /* the open connection's reference; ours keeps t alive */
    zt__tcp_unref(t);
}

/* Deliver a failure of the attempt on the next pass. */
static void
s_connect_fail_later(zt_transport_t *t, zt_failure_t *reason)
{
    zt_failure_destroy(&t->connect_failure);
    t->connect_failure = reason ? reason : zt_failure_new(ZT_CONNECT_ERROR, "out of memory");
    zt__tcp_schedule(t);
    if (!t->pass_queued) {
        zt_failure_t *f = t->connect_failure;
        t->connect_failure = NULL;
        zt__tcp_connect_failed(t, f);
    }
}

static zt_failure_t *
s_connect_error(int err, const zt_address_t *peer)
{
    if (err == ECONNREFUSED)
        return zt_failure_new(ZT_CONNECTION_REFUSED, "connection to %s port %u was refused",
                              peer->host, (unsigned)peer->port);
    zt_failure_t *f = zt_failure_new(ZT_CONNECT_ERROR, "cannot connect to %s port %u: %s",
                                     peer->host, (unsigned)peer->port, strerror(err));
    zt_failure_t *cause = zt_failure_from_code(zt__tcp_code(err), "%s", strerror(err));
    if (f)
        zt_failure_set_cause(f, &cause);
    zt_failure_destroy(&cause);
    return f;
}

static void
s_connect_timeout(void *arg)
{
    zt_transport_t *t = arg;
    zt_delayed_call_release(&t->timeout_call);
    zt__tcp_connect_failed(t, zt_failure_new(ZT_TIMEOUT_ERROR,
                                             "connect to %s port %u timed out after %g s",
                                             t->peer.host, (unsigned)t->peer.port, t->timeout));
}

static void
s_cancel_connect(zt_deferred_t *d, void *arg)
{
    (void)d;
    zt_transport_t *t = arg;
    if (t->state != ZT__TCP_CONNECTING)
        return;
    /* The Deferred fails with ZT_CANCELLED_ERROR after this returns; drop our reference first so
     * that zt__tcp_connect_failed does not fire it. */
    zt_deferred_unref(&t->connect_d);
    zt__tcp_connect_failed(t,
                           zt_failure_new(ZT_CANCELLED_ERROR, "connect to %s port %u was cancelled",
                                          t->peer.host, (unsigned)t->peer.port));
}

void
zt__tcp_connect_done(zt_transport_t *t)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == EINPROGRESS || err == EINTR)
        return;
    if (err != 0) {
        zt__tcp_connect_failed(t, s_connect_error(err, &t->peer));
        return;
    }
    t->refs++;
    zt__tcp_stop_writing(t);
    if (t->timeout_call) {
        zt_delayed_call_cancel(t->timeout_call);
        zt_delayed_call_release(&t->timeout_call);
    }
    if (!t->have_host)          /* unix.c fills both ends in itself */
        t->host_pending = true; /* getsockname on the first zt_transport_get_host */
    t->have_host = true;
    zt_protocol_t *p = zt_factory_build_protocol(t->client_factory, &t->peer);
    if (!p) {
        zt__tcp_connect_failed(t, zt_failure_new(ZT_CONNECT_ERROR,
                                                 "the factory refused the connection to %s port %u",
                                                 t->peer.host, (unsigned)t->peer.port));
        zt__tcp_unref(t);
        return;
    }
    t->state = ZT__TCP_CONNECTED;
    t->protocol = p;
    zt__tcp_start_reading(t);
    zt_protocol_make_connection(p, t);
    zt_deferred_t *d = t->connect_d;
    t->connect_d = NULL;
    if (d)
        zt_deferred_callback(d, zt_ok(p, NULL));
    zt_deferred_unref(&d);
    zt__tcp_unref(t);
}

zt_deferred_t *
zt_connect_tcp(zt_reactor_t *reactor, const char *host, uint16_t port, zt_factory_t *factory,
               double timeout)
{
    if (!reactor || !host || !factory)
        return NULL;
    zt_transport_t *t = zt__tcp_transport_new(reactor);
    if (!t)
        return NULL;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_cancel_connect, t);
    if (!d) {
        t->state = ZT__TCP_CLOSED;
        zt__tcp_unref(t);
        return NULL;
    }
    t->connect_d = zt_deferred_ref(d);
    t->client_factory = factory;
    zt_factory_do_start(factory);
    t->timeout = timeout > 0 ? timeout : ZT__TCP_DEFAULT_TIMEOUT;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    snprintf(t->peer.host, sizeof t->peer.host, "%s", host);
    t->peer.port = port;
    if (zt__tcp_parse_host(host, port, &ss, &sslen) != 0) {
        s_connect_fail_later(t, zt_failure_new(ZT_CONNECT_ERROR,
                                               "'%s' is not a numeric address: resolve names on "
                                               "a worker (getaddrinfo) and connect to the result",
                                               host));
        return d;
    }
    zt__tcp_address_from(&ss, &t->peer);
    t->fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (t->fd < 0 || zt__tcp_set_nonblocking(t->fd) != 0) {
        s_connect_fail_later(t, s_connect_error(errno, &t->peer));
        return d;
    }
    if (connect(t->fd, (struct sockaddr *)&ss, sslen) != 0 && errno != EINPROGRESS) {
        s_connect_fail_later(t, s_connect_error(errno, &t->peer));
        return d;
    }
    zt__tcp_start_writing(t);
    if (!t->writing ||
        zt_reactor_call_later(reactor, t->timeout, s_connect_timeout, t, &t->timeout_call) != 0) {
        s_connect_fail_later(t, zt_failure_new(ZT_CONNECT_ERROR, "out of memory"));
        return d;
    }
    return d;
}

/* --- listening -------------------------------------------------------------------------- */

/* The connection t, accepted on port (its fd, state and addresses set), joins it: the port's
 * factory builds its protocol, it starts reading and the protocol hears connection_made. Takes
 * t's reference. When the factory builds no protocol, t is closed and released. */
void
zt__tcp_port_adopt(zt_tcp_port_t *port, zt_transport_t *t)
{
    zt_protocol_t *p = zt_factory_build_protocol(port->factory, &t->peer);
    if (!p) {
        t->state = ZT__TCP_CLOSED;
        close(t->fd);
        t->fd = -1;
        zt__tcp_unref(t);
        return;
    }
    t->protocol = p;
    t->port = port;
    t->next = port->conns;
    if (port->conns)
        port->conns->prev = t;
    port->conns = t;
    port->nconns++;
    t->refs++;
    zt__tcp_start_reading(t);
    zt_protocol_make_connection(p, t);
    zt__tcp_unref(t);
}

/* Set up the connection accepted as cfd from ss: a transport, the protocol, connection_made. */
static void
s_accepted(zt_reactor_t *reactor, zt_tcp_port_t *port, int cfd, const struct sockaddr_storage *ss)
{
    zt_transport_t *t = zt__tcp_transport_new(reactor);
    if (!t) {
        ZT_LOG_WARNING("cannot set up an accepted connection: out of memory");
        close(cfd);
        return;
    }
    t->fd = cfd;
    t->state = ZT__TCP_CONNECTED;
    zt__tcp_address_from(ss, &t->peer);
    /* A port bound to one address accepts on that address: this end's address is the port's. On a
     * wildcard address only getsockname can tell, and only zt_transport_get_host asks it. */
    t->host = port->host;
    t->host_pending = port->any_address;
    t->have_host = true;
    zt__tcp_port_adopt(port, t);
}

/* The listening socket is readable: accept until the kernel has no more, at most a batch, so that
 * a flood of connections does not starve the other fds of this pass (the rest come in the next,
 * the socket being level-triggered). */
static void
s_on_accept(zt_reactor_t *reactor, int fd, void *arg)
{
    zt_tcp_port_t *port = arg;
    for (int i = 0; i < ZT__TCP_ACCEPT_BATCH && port->fd == fd; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        int cfd = zt__accept_nonblock(fd, (struct sockaddr *)&ss, &sslen);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ZT_LOG_WARNING("accept on port %u failed: %s", (unsigned)port->host.port,
                               strerror(errno));
            return;
        }
        s_accepted(reactor, port, cfd, &ss);
    }
}

/* ss holds a wildcard address (0.0.0.0 or ::). */
static bool
s_is_any_address(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return memcmp(a, &in6addr_any, sizeof *a) == 0;
    }
    return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

int
zt_listen_tcp(zt_reactor_t *reactor, uint16_t port, zt_factory_t *factory, int backlog,
              const char *interface, zt_tcp_port_t **port_p)
{
    if (!reactor || !factory || !port_p)
        return ZT_EINVAL;
    if (!interface || !*interface)
        interface = "0.0.0.0";
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (zt__tcp_parse_host(interface, port, &ss, &sslen) != 0)
        return ZT_EINVAL;
    zt_tcp_port_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZT_ENOMEM;
    *self = (zt_tcp_port_t){.reactor = reactor, .owner = zt__thread_id(), .factory = factory};
    int rc = ZT_ESYS;
    self->fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (self->fd < 0 || zt__tcp_set_nonblocking(self->fd) != 0)
        goto sys_failed;
    int on = 1;
    setsockopt(self->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (ss.ss_family == AF_INET6)
        setsockopt(self->fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(self->fd, (struct sockaddr *)&ss, sslen) != 0 ||
        listen(self->fd, backlog > 0 ? backlog : ZT__TCP_DEFAULT_BACKLOG) != 0)
        goto sys_failed;
    sslen = sizeof ss;
    if (getsockname(self->fd, (struct sockaddr *)&ss, &sslen) != 0)
        goto sys_failed;
    zt__tcp_address_from(&ss, &self->host);
    self->any_address = s_is_any_address(&ss);
    rc = zt_reactor_add_reader(reactor, self->fd, s_on_accept, self);
    if (rc != 0)
        goto failed;
    zt_factory_do_start(factory);
    *port_p = self;
    return 0;
sys_failed:
    rc = zt__tcp_code(errno);
    if (rc == ZT_ESYS)
        ZT_LOG_ERROR("cannot listen on %s port %u: %s", interface, (unsigned)port, strerror(errno));
failed:
    if (self->fd >= 0)
        close(self->fd);
    free(self);
    return rc;
}

int
zt_tcp_port_get_host(const zt_tcp_port_t *self, zt_address_t *addr)
{
    ZT_ASSERT(self && addr);
    ZT__TCP_ASSERT_THREAD(self);
    if (self->fd < 0)
        return ZT_ESTATE;
    *addr = self->host;
    return 0;
}

zt_deferred_t *
zt_tcp_port_stop_listening(zt_tcp_port_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    if (self->fd >= 0) {
        zt_reactor_remove_reader(self->reactor, self->fd);
        close(self->fd);
        self->fd = -1;
        zt_factory_do_stop(self->factory);
    }
    return zt_deferred_succeed(zt_ok_none());
}

size_t
zt_tcp_port_connection_count(const zt_tcp_port_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    return self->nconns;
}

void
zt_tcp_port_lose_connections(zt_tcp_port_t *self, bool abort)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    zt_transport_t *t = self->conns;
    while (t) {
        zt_transport_t *next = t->next; /* an abort without a loop closes (and unlinks) at once */
        if (abort)
            zt_transport_abort_connection(t);
        else
            zt_transport_lose_connection(t);
        t = next;
    }
}

void
zt_tcp_port_destroy(zt_tcp_port_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_tcp_port_t *self = *self_p;
    ZT__TCP_ASSERT_THREAD(self);
    zt_deferred_t *d = zt_tcp_port_stop_listening(self);
    zt_deferred_unref(&d);
    while (self->conns)
        zt__tcp_port_unlink(self->conns);
    free(self);
    *self_p = NULL;
}
