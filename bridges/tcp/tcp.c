/*  bridges/tcp/tcp.c - the TCP transport: a connection's I/O, on the reactor (tcp_connect.c
 *  makes connections: connect and listen)
 *
 *  Design notes.
 *
 *  One object per connection, zt_transport_t, in one of four states: CONNECTING (a client's
 * non-blocking connect is in flight; the fd is registered as a writer), CONNECTED (registered as
 * a reader unless paused), DISCONNECTING (lose_connection: no more reading or writing by the
 * user; the buffer drains, then the close) and CLOSED (fd closed, protocol destroyed; only
 * references keep the object).
 *
 *  Half-close (Twisted's IHalfCloseableProtocol), within CONNECTED: at end of stream a protocol
 * with read_connection_lost keeps the connection and may go on writing (read_closed); one
 * without it is closed as before. lose_write_connection refuses further writes and, once the
 * buffer is sent, shuts the sending side down (write_closed) and calls write_connection_lost.
 * When both sides are closed the connection ends with ZT_CONNECTION_DONE.
 *
 *  Deferred work. Nothing that calls the user back (connection_lost, client_connection_failed, a
 * Deferred's errback) runs inside a call the user made: a write, lose_connection, abort or a
 * failed connect schedules the transport for the start of the next pass (the reactor's own
 * call_from_thread queue, which costs no poll registration), and the work happens there. The
 * flush runs there too, so that every write of one pass -- the replies of a whole batch of
 * mailbox calls, say -- leaves in one send. Only when the kernel does not take everything is the
 * fd registered as a writer, and removed again once the buffer is empty.
 *
 *  Lifetime. refs counts: 1 for the open connection (dropped by s_close), 1 while a next-pass call
 * is queued, 1 per zt_transport_ref, 1 while a callback of ours runs (so that nothing the user
 * does in it frees the transport under us). The object is freed at 0, which can only happen once
 * it is CLOSED. s_close runs once: it unregisters the fd, closes it, stops the producer, runs the
 * protocol's connection_lost, destroys the protocol and tells a client factory.
 *
 *  Flow control: a registered streaming producer is paused when buffered bytes pass `high` and
 * resumed when they are back to `low`; a pull producer is resumed each time the buffer empties.
 *
 *  Threads: the reactor thread only. Every build records the creating thread and checks it.  */
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

/* --- helpers ---------------------------------------------------------------------------- */

int
zt__tcp_set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    /* FD_CLOEXEC is the only fd flag: no need to read the others first. */
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

void
zt__tcp_address_from(const struct sockaddr_storage *ss, zt_address_t *addr)
{
    memset(addr, 0, sizeof *addr);
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        addr->family = ZT_AF_INET6;
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr->host, sizeof addr->host);
        addr->port = ntohs(sin6->sin6_port);
    } else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        addr->family = ZT_AF_INET;
        inet_ntop(AF_INET, &sin->sin_addr, addr->host, sizeof addr->host);
        addr->port = ntohs(sin->sin_port);
    }
}

/* Parse a numeric host into ss; 0, or -1 when it is not a numeric address. */
int
zt__tcp_parse_host(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *len = sizeof *sin;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *len = sizeof *sin6;
        return 0;
    }
    return -1;
}

/* A ZT_E* code for a socket errno. */
int
zt__tcp_code(int err)
{
    switch (err) {
    case EADDRINUSE:
        return ZT_EADDRINUSE;
    case EACCES:
    case EPERM:
        return ZT_EACCES;
    case ECONNREFUSED:
        return ZT_ECONNREFUSED;
    case ENETUNREACH:
    case EHOSTUNREACH:
        return ZT_EUNREACHABLE;
    case ENOMEM:
    case ENOBUFS:
        return ZT_ENOMEM;
    case ETIMEDOUT:
        return ZT_ETIMEDOUT;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
        return ZT_EINVAL;
    default:
        return ZT_ESYS;
    }
}

/* --- transport lifetime ----------------------------------------------------------------- */

zt_transport_t *
zt__tcp_transport_new(zt_reactor_t *reactor)
{
    zt_transport_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    *t = (zt_transport_t){.reactor = reactor,
                          .owner = zt__thread_id(),
                          .fd = -1,
                          .refs = 1,
                          .state = ZT__TCP_CONNECTING,
                          .high = ZT_TRANSPORT_HIGH_WATER,
                          .low = ZT_TRANSPORT_LOW_WATER};
    return t;
}

void
zt__tcp_unref(zt_transport_t *t)
{
    ZT_ASSERT(t->refs > 0);
    if (--t->refs > 0)
        return;
    ZT_ASSERT_MSG(t->state == ZT__TCP_CLOSED, "last reference to a transport that is still open");
    free(t);
}

static void s_on_readable(zt_reactor_t *reactor, int fd, void *arg);

void
zt__tcp_start_reading(zt_transport_t *t)
{
    if (t->reading || t->fd < 0 || t->read_closed)
        return;
    if (zt_reactor_add_reader(t->reactor, t->fd, s_on_readable, t) == 0)
        t->reading = true;
}

static void
s_stop_reading(zt_transport_t *t)
{
    if (!t->reading)
        return;
    zt_reactor_remove_reader(t->reactor, t->fd);
    t->reading = false;
}

static void s_on_writable(zt_reactor_t *reactor, int fd, void *arg);

void
zt__tcp_start_writing(zt_transport_t *t)
{
    if (t->writing || t->fd < 0)
        return;
    if (zt_reactor_add_writer(t->reactor, t->fd, s_on_writable, t) == 0)
        t->writing = true;
}

void
zt__tcp_stop_writing(zt_transport_t *t)
{
    if (!t->writing)
        return;
    zt_reactor_remove_writer(t->reactor, t->fd);
    t->writing = false;
}

static void s_on_pass(void *arg);

/* Queue s_on_pass for the start of the next pass. */
void
zt__tcp_schedule(zt_transport_t *t)
{
    if (t->pass_queued)
        return;
    t->refs++;
    t->pass_queued = true;
    if (zt_reactor_call_from_thread(t->reactor, s_on_pass, t) == 0)
        return;
    /* The reactor's loop has ended: fall back on the poll, which iterate still runs. */
    t->pass_queued = false;
    t->refs--;
    if (t->state != ZT__TCP_CONNECTING)
        zt__tcp_start_writing(t);
}

void
zt__tcp_port_unlink(zt_transport_t *t)
{
    zt_tcp_port_t *port = t->port;
    if (!port)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        port->conns = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->port = NULL;
    port->nconns--;
}

/* Close the connection and tell everyone; reason is taken over. Runs once. */
static void
s_close(zt_transport_t *t, zt_failure_t *reason)
{
    if (t->state == ZT__TCP_CLOSED) {
        zt_failure_destroy(&reason);
        return;
    }
    t->refs++;
    t->state = ZT__TCP_CLOSED;
    s_stop_reading(t);
    zt__tcp_stop_writing(t);
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    free(t->buf);
    t->buf = NULL;
    t->head = t->end = t->cap = 0;
    zt__tcp_port_unlink(t);
    if (t->producer) {
        const zt_producer_vtable_t *producer = t->producer;
        t->producer = NULL;
        if (producer->stop_producing)
            producer->stop_producing(t->producer_arg);
    }
    if (t->protocol) {
        zt_protocol_connection_lost(t->protocol, reason);
        zt_protocol_destroy(&t->protocol);
    }
    if (t->client_factory) {
        zt_factory_t *factory = t->client_factory;
        t->client_factory = NULL;
        zt_factory_client_connection_lost(factory, reason);
        zt_factory_do_stop(factory);
    }
    zt_failure_destroy(&reason);
    t->refs--; /* the open connection's reference; ours keeps t alive */
    zt__tcp_unref(t);
}

/* --- writing ---------------------------------------------------------------------------- */

static void
s_maybe_pause_producer(zt_transport_t *t)
{
    if (t->producer && t->streaming && !t->producer_paused && t->end - t->head > t->high) {
        t->producer_paused = true;
        if (t->producer->pause_producing)
            t->producer->pause_producing(t->producer_arg);
    }
}

/* lose_write_connection's end: everything is sent, shut sending down and tell the protocol; with
 * the peer's side closed already, the connection is over. Returns false when it was closed. */
static bool
s_shut_write(zt_transport_t *t)
{
    t->write_closed = true;
    (void)shutdown(t->fd, SHUT_WR);
    t->refs++;
    if (t->protocol)
        zt_protocol_write_connection_lost(t->protocol);
    if (t->read_closed && t->state == ZT__TCP_CONNECTED && !t->aborting)
        s_close(t, zt_failure_new(ZT_CONNECTION_DONE, "connection was closed cleanly"));
    bool open = t->state != ZT__TCP_CLOSED;
    zt__tcp_unref(t);
    return open;
}

/* Send what the kernel takes. Returns false when the connection was closed. */
static bool
s_flush(zt_transport_t *t)
{
    while (t->head < t->end) {
        ssize_t n = send(t->fd, t->buf + t->head, t->end - t->head, MSG_NOSIGNAL);
        if (n > 0) {
            t->head += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            zt__tcp_start_writing(t);
            break;
        }
        int err = n < 0 ? errno : EPIPE;
        s_close(t, zt_failure_new(ZT_CONNECTION_LOST, "send failed: %s", strerror(err)));
        return false;
    }
    if (t->head == t->end) {
        t->head = t->end = 0;
        zt__tcp_stop_writing(t);
    }
    if (t->producer && t->producer_paused && t->end - t->head <= t->low) {
        t->producer_paused = false;
        if (t->producer->resume_producing)
            t->producer->resume_producing(t->producer_arg);
    } else if (t->producer && !t->streaming && t->head == t->end && t->producer->resume_producing) {
        t->producer->resume_producing(t->producer_arg);
    }
    if (t->state == ZT__TCP_DISCONNECTING && t->head == t->end && !t->pass_queued) {
        s_close(t, zt_failure_new(ZT_CONNECTION_DONE, "connection was closed cleanly"));
        return false;
    }
    if (t->state == ZT__TCP_CONNECTED && t->write_closing && !t->write_closed && t->head == t->end)
        return s_shut_write(t);
    return t->state != ZT__TCP_CLOSED;
}

static int
s_reserve(zt_transport_t *t, size_t more)
{
    if (t->cap - t->end >= more)
        return 0;
    size_t pending = t->end - t->head;
    if (t->head > 0 && t->cap - pending >= more && t->head >= pending) {
        memmove(t->buf, t->buf + t->head, pending);
        t->head = 0;
        t->end = pending;
        return 0;
    }
    size_t cap = t->cap ? t->cap : 4096;
    while (cap - t->end < more) {
        if (cap > SIZE_MAX / 2)
            return ZT_ENOMEM;
        cap *= 2;
    }
    char *buf = realloc(t->buf, cap);
    if (!buf)
        return ZT_ENOMEM;
    t->buf = buf;
    t->cap = cap;
    return 0;
}

int
zt_transport_write_sequence(zt_transport_t *self, const zt_iovec_t *iov, size_t count)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    if (self->state != ZT__TCP_CONNECTED || self->aborting || self->write_closing)
        return ZT_ESTATE;
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (iov[i].len > SIZE_MAX - total)
            return ZT_ENOMEM;
        total += iov[i].len;
    }
    if (total == 0)
        return 0;
    int rc = s_reserve(self, total);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < count; i++) {
        if (iov[i].len == 0)
            continue;
        memcpy(self->buf + self->end, iov[i].data, iov[i].len);
        self->end += iov[i].len;
    }
    if (!self->writing)
        zt__tcp_schedule(self);
    s_maybe_pause_producer(self);
    return 0;
}

int
zt_transport_write(zt_transport_t *self, const void *data, size_t len)
{
    zt_iovec_t iov = {.data = data, .len = len};
    return zt_transport_write_sequence(self, &iov, 1);
}

/* --- the events ------------------------------------------------------------------------- */

static void
s_on_pass(void *arg)
{
    zt_transport_t *t = arg;
    t->pass_queued = false;
    if (t->state == ZT__TCP_CONNECTING && t->connect_failure) {
        zt_failure_t *reason = t->connect_failure;
        t->connect_failure = NULL;
        zt__tcp_connect_failed(t, reason);
    } else if (t->aborting && t->state != ZT__TCP_CLOSED) {
        s_close(t, zt_failure_new(ZT_CONNECTION_ABORTED, "connection was aborted"));
    } else if (t->state == ZT__TCP_CONNECTED || t->state == ZT__TCP_DISCONNECTING) {
        s_flush(t);
    }
    zt__tcp_unref(t);
}

static void
s_on_readable(zt_reactor_t *reactor, int fd, void *arg)
{
    (void)reactor;
    zt_transport_t *t = arg;
    char buf[ZT__TCP_READ_SIZE];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
        t->refs++;
        if (t->protocol)
            zt_protocol_data_received(t->protocol, buf, (size_t)n);
        zt__tcp_unref(t);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n == 0 && t->protocol && t->state == ZT__TCP_CONNECTED && !t->read_closed) {
        /* End of stream: a half-closeable protocol keeps the connection for its writes. */
        t->read_closed = true;
        s_stop_reading(t);
        t->refs++;
        bool kept = zt_protocol_read_connection_lost(t->protocol);
        if ((!kept || t->write_closed) && t->state == ZT__TCP_CONNECTED && !t->aborting)
            s_close(
                t, zt_failure_new(ZT_CONNECTION_DONE, "connection was closed cleanly by the peer"));
        zt__tcp_unref(t);
    } else if (n == 0)
        s_close(t, zt_failure_new(ZT_CONNECTION_DONE, "connection was closed cleanly by the peer"));
    else
        s_close(t, zt_failure_new(ZT_CONNECTION_LOST, "connection was lost: %s", strerror(errno)));
}

static void
s_on_writable(zt_reactor_t *reactor, int fd, void *arg)
{
    (void)reactor;
    (void)fd;
    zt_transport_t *t = arg;
    if (t->state == ZT__TCP_CONNECTING)
        zt__tcp_connect_done(t);
    else
        s_flush(t);
}

/* --- the transport's other calls -------------------------------------------------------- */

int
zt_transport_lose_connection(zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    if (self->state != ZT__TCP_CONNECTED)
        return ZT_ESTATE;
    self->state = ZT__TCP_DISCONNECTING;
    s_stop_reading(self);
    if (!self->writing)
        zt__tcp_schedule(self);
    return 0;
}

int
zt_transport_lose_write_connection(zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    if (self->state != ZT__TCP_CONNECTED || self->aborting || self->write_closing)
        return ZT_ESTATE;
    self->write_closing = true;
    if (!self->writing)
        zt__tcp_schedule(self);
    return 0;
}

int
zt_transport_abort_connection(zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    if (self->state == ZT__TCP_CLOSED || self->state == ZT__TCP_CONNECTING || self->aborting)
        return ZT_ESTATE;
    self->aborting = true;
    s_stop_reading(self);
    zt__tcp_stop_writing(self);
    zt__tcp_schedule(self);
    if (!self->pass_queued) /* the loop has ended: close now */
        s_close(self, zt_failure_new(ZT_CONNECTION_ABORTED, "connection was aborted"));
    return 0;
}

int
zt_transport_get_peer(const zt_transport_t *self, zt_address_t *addr)
{
    ZT_ASSERT(self && addr);
    ZT__TCP_ASSERT_THREAD(self);
    if (!self->have_host)
        return ZT_ESTATE;
    *addr = self->peer;
    return 0;
}

int
zt_transport_get_host(const zt_transport_t *self, zt_address_t *addr)
{
    ZT_ASSERT(self && addr);
    ZT__TCP_ASSERT_THREAD(self);
    if (!self->have_host)
        return ZT_ESTATE;
    if (self->host_pending) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        if (self->fd < 0 || getsockname(self->fd, (struct sockaddr *)&ss, &sslen) != 0)
            return ZT_ESTATE;
        /* A cache of what the socket says, filled on the first ask: the transport is not const
         * (zt__tcp_transport_new allocated it), only this call's view of it is. */
        zt_transport_t *t = (zt_transport_t *)self;
        zt__tcp_address_from(&ss, &t->host);
        t->host_pending = false;
    }
    *addr = self->host;
    return 0;
}

void
zt_transport_pause_producing(zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    self->paused = true;
    s_stop_reading(self);
}

void
zt_transport_resume_producing(zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    self->paused = false;
    if (self->state == ZT__TCP_CONNECTED && !self->aborting)
        zt__tcp_start_reading(self);
}

static void
s_producer_pause(void *arg)
{
    zt_transport_pause_producing(arg);
}

static void
s_producer_resume(void *arg)
{
    zt_transport_resume_producing(arg);
}

static void
s_producer_stop(void *arg)
{
    zt_transport_lose_connection(arg);
}

static const zt_producer_vtable_t s_transport_producer = {
    .pause_producing = s_producer_pause,
    .resume_producing = s_producer_resume,
    .stop_producing = s_producer_stop,
};

const zt_producer_vtable_t *
zt_transport_producer_vtable(void)
{
    return &s_transport_producer;
}

int
zt_transport_register_producer(zt_transport_t *self, const zt_producer_vtable_t *vtable, void *arg,
                               bool streaming)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    if (!vtable)
        return ZT_EINVAL;
    if (self->state == ZT__TCP_CLOSED)
        return ZT_ESTATE;
    if (self->producer)
        return ZT_EALREADY;
    self->producer = vtable;
    self->producer_arg = arg;
    self->streaming = streaming;
    self->producer_paused = false;
    if (streaming)
        s_maybe_pause_producer(self);
    else if (vtable->resume_producing)
        vtable->resume_producing(arg);
    return 0;
}

void
zt_transport_unregister_producer(zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    self->producer = NULL;
    self->producer_arg = NULL;
    self->producer_paused = false;
}

int
zt_transport_set_buffer_limits(zt_transport_t *self, size_t high, size_t low)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    if (low > high)
        return ZT_EINVAL;
    self->high = high;
    self->low = low;
    s_maybe_pause_producer(self);
    return 0;
}

size_t
zt_transport_buffered(const zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    return self->end - self->head;
}

int
zt_transport_set_tcp_no_delay(zt_transport_t *self, bool no_delay)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    if (self->fd < 0)
        return ZT_ESTATE;
    int on = no_delay ? 1 : 0;
    if (setsockopt(self->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0)
        return ZT_ESYS;
    return 0;
}

bool
zt_transport_is_connected(const zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    return self->state == ZT__TCP_CONNECTED && !self->aborting;
}

zt_protocol_t *
zt_transport_protocol(const zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    return self->protocol;
}

zt_reactor_t *
zt_transport_reactor(const zt_transport_t *self)
{
    ZT_ASSERT(self);
    return self->reactor;
}

zt_transport_t *
zt_transport_ref(zt_transport_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(self);
    self->refs++;
    return self;
}

void
zt_transport_unref(zt_transport_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ZT__TCP_ASSERT_THREAD(*self_p);
    ZT_ASSERT_MSG((*self_p)->refs > 1 || (*self_p)->state == ZT__TCP_CLOSED,
                  "zt_transport_unref without a matching zt_transport_ref");
    zt__tcp_unref(*self_p);
    *self_p = NULL;
}
