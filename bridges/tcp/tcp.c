/*  bridges/tcp/tcp.c - TCP listening ports, client connections and the transport, on the reactor
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
 *  Threads: the reactor thread only. Debug builds record the creating thread and assert it.  */
#include <ztwist/tcp.h>

#include "base/base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_READ_SIZE 65536      /* bytes read per readable event (Twisted's bufferSize) */
#define S_ACCEPT_BATCH 64      /* connections accepted per readable event of a port */
#define S_DEFAULT_BACKLOG 50   /* Twisted's default backlog */
#define S_DEFAULT_TIMEOUT 30.0 /* Twisted's default connect timeout, seconds */

#ifndef NDEBUG
#define S_ASSERT_THREAD(o)                                                                         \
    ZT_ASSERT_MSG(pthread_equal((o)->owner, pthread_self()),                                       \
                  "TCP transport or port used from a thread other than the reactor thread")
#else
#define S_ASSERT_THREAD(o) ((void)0)
#endif

typedef enum s_state {
    S_CONNECTING = 0,    /* a client's connect is in flight */
    S_CONNECTED = 1,     /* open */
    S_DISCONNECTING = 2, /* lose_connection: draining the buffer before the close */
    S_CLOSED = 3         /* closed; the protocol is gone */
} s_state_t;

struct zt_transport {
    zt_reactor_t *reactor; /* Borrowed: the reactor it runs on */
    pthread_t owner;       /* the thread that created it (the reactor thread) */
    int fd;                /* Owned: the socket, or -1 once closed */
    uint32_t refs;         /* see Lifetime in the design notes */
    s_state_t state;       /* see s_state_t */
    bool aborting;         /* abort_connection: close on the next pass */
    bool reading;          /* the fd is registered as a reader */
    bool writing;          /* the fd is registered as a writer */
    bool paused;           /* pause_producing: do not read */
    bool pass_queued;      /* s_on_pass is queued for the next pass */
    bool read_closed;      /* end of stream read; a half-closeable protocol kept the connection */
    bool write_closing;    /* lose_write_connection: shut sending down once the buffer drains */
    bool write_closed;     /* sending is shut down (shutdown(SHUT_WR)) */
    char *buf;             /* Owned: the write buffer; bytes [head, end) are unsent */
    size_t head;           /* the first unsent byte */
    size_t end;            /* one past the last unsent byte */
    size_t cap;            /* bytes allocated */
    size_t high;           /* high-water mark: pause the producer above it */
    size_t low;            /* low-water mark: resume the producer at or below it */
    const zt_producer_vtable_t *producer; /* Borrowed: the registered producer, or NULL */
    void *producer_arg;                   /* Borrowed: its arg */
    bool streaming;                       /* the producer is a streaming (push) producer */
    bool producer_paused;                 /* we paused the producer */
    zt_protocol_t *protocol;              /* Owned: the protocol, until the close */
    zt_factory_t *client_factory;    /* Borrowed: a client's factory (one use counted), or NULL */
    zt_deferred_t *connect_d;        /* Owned reference: a client's Deferred until it fires */
    zt_delayed_call_t *timeout_call; /* Owned handle: a client's connect timeout, or NULL */
    zt_failure_t *connect_failure;   /* Owned: a connect failure to deliver on the next pass */
    double timeout;                  /* a client's connect timeout, seconds */
    zt_address_t peer;               /* the peer's address (known from the start) */
    zt_address_t host;               /* this end's address (known once connected) */
    bool have_host;                  /* host is filled in */
    zt_tcp_port_t *port;             /* Borrowed: the port that accepted it, or NULL */
    zt_transport_t *prev;            /* Borrowed: the previous connection of port */
    zt_transport_t *next;            /* Borrowed: the next connection of port */
};

struct zt_tcp_port {
    zt_reactor_t *reactor; /* Borrowed: the reactor it runs on */
    pthread_t owner;       /* the thread that created it */
    int fd;                /* Owned: the listening socket, or -1 once stopped */
    zt_factory_t *factory; /* Borrowed: one use counted while listening */
    zt_address_t host;     /* the bound address, with the real port */
    zt_transport_t *conns; /* Borrowed: the open connections it accepted (a list) */
    size_t nconns;         /* how many */
};

/* --- helpers ---------------------------------------------------------------------------- */

static int
s_set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    int fdfl = fcntl(fd, F_GETFD);
    if (fl < 0 || fdfl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

static void
s_address_from(const struct sockaddr_storage *ss, zt_address_t *addr)
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
static int
s_parse_host(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
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
static int
s_code(int err)
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

static zt_transport_t *
s_transport_new(zt_reactor_t *reactor)
{
    zt_transport_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    *t = (zt_transport_t){.reactor = reactor,
                          .owner = pthread_self(),
                          .fd = -1,
                          .refs = 1,
                          .state = S_CONNECTING,
                          .high = ZT_TRANSPORT_HIGH_WATER,
                          .low = ZT_TRANSPORT_LOW_WATER};
    return t;
}

static void
s_unref(zt_transport_t *t)
{
    ZT_ASSERT(t->refs > 0);
    if (--t->refs > 0)
        return;
    ZT_ASSERT_MSG(t->state == S_CLOSED, "last reference to a transport that is still open");
    free(t);
}

static void s_on_readable(zt_reactor_t *reactor, int fd, void *arg);

static void
s_start_reading(zt_transport_t *t)
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

static void
s_start_writing(zt_transport_t *t)
{
    if (t->writing || t->fd < 0)
        return;
    if (zt_reactor_add_writer(t->reactor, t->fd, s_on_writable, t) == 0)
        t->writing = true;
}

static void
s_stop_writing(zt_transport_t *t)
{
    if (!t->writing)
        return;
    zt_reactor_remove_writer(t->reactor, t->fd);
    t->writing = false;
}

static void s_on_pass(void *arg);

/* Queue s_on_pass for the start of the next pass. */
static void
s_schedule(zt_transport_t *t)
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
    if (t->state != S_CONNECTING)
        s_start_writing(t);
}

static void
s_port_unlink(zt_transport_t *t)
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
    if (t->state == S_CLOSED) {
        zt_failure_destroy(&reason);
        return;
    }
    t->refs++;
    t->state = S_CLOSED;
    s_stop_reading(t);
    s_stop_writing(t);
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    free(t->buf);
    t->buf = NULL;
    t->head = t->end = t->cap = 0;
    s_port_unlink(t);
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
    s_unref(t);
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
    if (t->read_closed && t->state == S_CONNECTED && !t->aborting)
        s_close(t, zt_failure_new(ZT_CONNECTION_DONE, "connection was closed cleanly"));
    bool open = t->state != S_CLOSED;
    s_unref(t);
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
            s_start_writing(t);
            break;
        }
        int err = n < 0 ? errno : EPIPE;
        s_close(t, zt_failure_new(ZT_CONNECTION_LOST, "send failed: %s", strerror(err)));
        return false;
    }
    if (t->head == t->end) {
        t->head = t->end = 0;
        s_stop_writing(t);
    }
    if (t->producer && t->producer_paused && t->end - t->head <= t->low) {
        t->producer_paused = false;
        if (t->producer->resume_producing)
            t->producer->resume_producing(t->producer_arg);
    } else if (t->producer && !t->streaming && t->head == t->end && t->producer->resume_producing) {
        t->producer->resume_producing(t->producer_arg);
    }
    if (t->state == S_DISCONNECTING && t->head == t->end && !t->pass_queued) {
        s_close(t, zt_failure_new(ZT_CONNECTION_DONE, "connection was closed cleanly"));
        return false;
    }
    if (t->state == S_CONNECTED && t->write_closing && !t->write_closed && t->head == t->end)
        return s_shut_write(t);
    return t->state != S_CLOSED;
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
    S_ASSERT_THREAD(self);
    if (self->state != S_CONNECTED || self->aborting || self->write_closing)
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
        s_schedule(self);
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

static void s_connect_failed(zt_transport_t *t, zt_failure_t *reason);

static void
s_on_pass(void *arg)
{
    zt_transport_t *t = arg;
    t->pass_queued = false;
    if (t->state == S_CONNECTING && t->connect_failure) {
        zt_failure_t *reason = t->connect_failure;
        t->connect_failure = NULL;
        s_connect_failed(t, reason);
    } else if (t->aborting && t->state != S_CLOSED) {
        s_close(t, zt_failure_new(ZT_CONNECTION_ABORTED, "connection was aborted"));
    } else if (t->state == S_CONNECTED || t->state == S_DISCONNECTING) {
        s_flush(t);
    }
    s_unref(t);
}

static void
s_on_readable(zt_reactor_t *reactor, int fd, void *arg)
{
    (void)reactor;
    zt_transport_t *t = arg;
    char buf[S_READ_SIZE];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
        t->refs++;
        if (t->protocol)
            zt_protocol_data_received(t->protocol, buf, (size_t)n);
        s_unref(t);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n == 0 && t->protocol && t->state == S_CONNECTED && !t->read_closed) {
        /* End of stream: a half-closeable protocol keeps the connection for its writes. */
        t->read_closed = true;
        s_stop_reading(t);
        t->refs++;
        bool kept = zt_protocol_read_connection_lost(t->protocol);
        if ((!kept || t->write_closed) && t->state == S_CONNECTED && !t->aborting)
            s_close(
                t, zt_failure_new(ZT_CONNECTION_DONE, "connection was closed cleanly by the peer"));
        s_unref(t);
    } else if (n == 0)
        s_close(t, zt_failure_new(ZT_CONNECTION_DONE, "connection was closed cleanly by the peer"));
    else
        s_close(t, zt_failure_new(ZT_CONNECTION_LOST, "connection was lost: %s", strerror(errno)));
}

static void s_connect_done(zt_transport_t *t);

static void
s_on_writable(zt_reactor_t *reactor, int fd, void *arg)
{
    (void)reactor;
    (void)fd;
    zt_transport_t *t = arg;
    if (t->state == S_CONNECTING)
        s_connect_done(t);
    else
        s_flush(t);
}

/* --- the transport's other calls -------------------------------------------------------- */

int
zt_transport_lose_connection(zt_transport_t *self)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
    if (self->state != S_CONNECTED)
        return ZT_ESTATE;
    self->state = S_DISCONNECTING;
    s_stop_reading(self);
    if (!self->writing)
        s_schedule(self);
    return 0;
}

int
zt_transport_lose_write_connection(zt_transport_t *self)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
    if (self->state != S_CONNECTED || self->aborting || self->write_closing)
        return ZT_ESTATE;
    self->write_closing = true;
    if (!self->writing)
        s_schedule(self);
    return 0;
}

int
zt_transport_abort_connection(zt_transport_t *self)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
    if (self->state == S_CLOSED || self->state == S_CONNECTING || self->aborting)
        return ZT_ESTATE;
    self->aborting = true;
    s_stop_reading(self);
    s_stop_writing(self);
    s_schedule(self);
    if (!self->pass_queued) /* the loop has ended: close now */
        s_close(self, zt_failure_new(ZT_CONNECTION_ABORTED, "connection was aborted"));
    return 0;
}

int
zt_transport_get_peer(const zt_transport_t *self, zt_address_t *addr)
{
    ZT_ASSERT(self && addr);
    S_ASSERT_THREAD(self);
    if (!self->have_host)
        return ZT_ESTATE;
    *addr = self->peer;
    return 0;
}

int
zt_transport_get_host(const zt_transport_t *self, zt_address_t *addr)
{
    ZT_ASSERT(self && addr);
    S_ASSERT_THREAD(self);
    if (!self->have_host)
        return ZT_ESTATE;
    *addr = self->host;
    return 0;
}

void
zt_transport_pause_producing(zt_transport_t *self)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
    self->paused = true;
    s_stop_reading(self);
}

void
zt_transport_resume_producing(zt_transport_t *self)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
    self->paused = false;
    if (self->state == S_CONNECTED && !self->aborting)
        s_start_reading(self);
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
    S_ASSERT_THREAD(self);
    if (!vtable)
        return ZT_EINVAL;
    if (self->state == S_CLOSED)
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
    S_ASSERT_THREAD(self);
    self->producer = NULL;
    self->producer_arg = NULL;
    self->producer_paused = false;
}

int
zt_transport_set_buffer_limits(zt_transport_t *self, size_t high, size_t low)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
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
    S_ASSERT_THREAD(self);
    return self->end - self->head;
}

int
zt_transport_set_tcp_no_delay(zt_transport_t *self, bool no_delay)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
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
    S_ASSERT_THREAD(self);
    return self->state == S_CONNECTED && !self->aborting;
}

zt_protocol_t *
zt_transport_protocol(const zt_transport_t *self)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
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
    S_ASSERT_THREAD(self);
    self->refs++;
    return self;
}

void
zt_transport_unref(zt_transport_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    S_ASSERT_THREAD(*self_p);
    ZT_ASSERT_MSG((*self_p)->refs > 1 || (*self_p)->state == S_CLOSED,
                  "zt_transport_unref without a matching zt_transport_ref");
    s_unref(*self_p);
    *self_p = NULL;
}

/* --- connecting ------------------------------------------------------------------------- */

/* The attempt failed: tell the factory and the Deferred. reason is taken over. */
static void
s_connect_failed(zt_transport_t *t, zt_failure_t *reason)
{
    if (t->state != S_CONNECTING) {
        zt_failure_destroy(&reason);
        return;
    }
    t->refs++;
    t->state = S_CLOSED;
    s_stop_writing(t);
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
    s_unref(t);
}

/* Deliver a failure of the attempt on the next pass. */
static void
s_connect_fail_later(zt_transport_t *t, zt_failure_t *reason)
{
    zt_failure_destroy(&t->connect_failure);
    t->connect_failure = reason ? reason : zt_failure_new(ZT_CONNECT_ERROR, "out of memory");
    s_schedule(t);
    if (!t->pass_queued) {
        zt_failure_t *f = t->connect_failure;
        t->connect_failure = NULL;
        s_connect_failed(t, f);
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
    zt_failure_t *cause = zt_failure_from_code(s_code(err), "%s", strerror(err));
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
    s_connect_failed(t,
                     zt_failure_new(ZT_TIMEOUT_ERROR, "connect to %s port %u timed out after %g s",
                                    t->peer.host, (unsigned)t->peer.port, t->timeout));
}

static void
s_cancel_connect(zt_deferred_t *d, void *arg)
{
    (void)d;
    zt_transport_t *t = arg;
    if (t->state != S_CONNECTING)
        return;
    /* The Deferred fails with ZT_CANCELLED_ERROR after this returns; drop our reference first so
     * that s_connect_failed does not fire it. */
    zt_deferred_unref(&t->connect_d);
    s_connect_failed(t, zt_failure_new(ZT_CANCELLED_ERROR, "connect to %s port %u was cancelled",
                                       t->peer.host, (unsigned)t->peer.port));
}

static void
s_connect_done(zt_transport_t *t)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == EINPROGRESS || err == EINTR)
        return;
    if (err != 0) {
        s_connect_failed(t, s_connect_error(err, &t->peer));
        return;
    }
    t->refs++;
    s_stop_writing(t);
    if (t->timeout_call) {
        zt_delayed_call_cancel(t->timeout_call);
        zt_delayed_call_release(&t->timeout_call);
    }
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (getsockname(t->fd, (struct sockaddr *)&ss, &sslen) == 0)
        s_address_from(&ss, &t->host);
    t->have_host = true;
    zt_protocol_t *p = zt_factory_build_protocol(t->client_factory, &t->peer);
    if (!p) {
        s_connect_failed(t, zt_failure_new(ZT_CONNECT_ERROR,
                                           "the factory refused the connection to %s port %u",
                                           t->peer.host, (unsigned)t->peer.port));
        s_unref(t);
        return;
    }
    t->state = S_CONNECTED;
    t->protocol = p;
    s_start_reading(t);
    zt_protocol_make_connection(p, t);
    zt_deferred_t *d = t->connect_d;
    t->connect_d = NULL;
    if (d)
        zt_deferred_callback(d, zt_ok(p, NULL));
    zt_deferred_unref(&d);
    s_unref(t);
}

zt_deferred_t *
zt_connect_tcp(zt_reactor_t *reactor, const char *host, uint16_t port, zt_factory_t *factory,
               double timeout)
{
    if (!reactor || !host || !factory)
        return NULL;
    zt_transport_t *t = s_transport_new(reactor);
    if (!t)
        return NULL;
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_cancel_connect, t);
    if (!d) {
        t->state = S_CLOSED;
        s_unref(t);
        return NULL;
    }
    t->connect_d = zt_deferred_ref(d);
    t->client_factory = factory;
    zt_factory_do_start(factory);
    t->timeout = timeout > 0 ? timeout : S_DEFAULT_TIMEOUT;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    snprintf(t->peer.host, sizeof t->peer.host, "%s", host);
    t->peer.port = port;
    if (s_parse_host(host, port, &ss, &sslen) != 0) {
        s_connect_fail_later(t, zt_failure_new(ZT_CONNECT_ERROR,
                                               "'%s' is not a numeric address: resolve names on "
                                               "a worker (getaddrinfo) and connect to the result",
                                               host));
        return d;
    }
    s_address_from(&ss, &t->peer);
    t->fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (t->fd < 0 || s_set_nonblocking(t->fd) != 0) {
        s_connect_fail_later(t, s_connect_error(errno, &t->peer));
        return d;
    }
    if (connect(t->fd, (struct sockaddr *)&ss, sslen) != 0 && errno != EINPROGRESS) {
        s_connect_fail_later(t, s_connect_error(errno, &t->peer));
        return d;
    }
    s_start_writing(t);
    if (!t->writing ||
        zt_reactor_call_later(reactor, t->timeout, s_connect_timeout, t, &t->timeout_call) != 0) {
        s_connect_fail_later(t, zt_failure_new(ZT_CONNECT_ERROR, "out of memory"));
        return d;
    }
    return d;
}

/* --- listening -------------------------------------------------------------------------- */

static void
s_on_accept(zt_reactor_t *reactor, int fd, void *arg)
{
    zt_tcp_port_t *port = arg;
    for (int i = 0; i < S_ACCEPT_BATCH && port->fd == fd; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        int cfd = accept(fd, (struct sockaddr *)&ss, &sslen);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ZT_LOG_WARNING("accept on port %u failed: %s", (unsigned)port->host.port,
                               strerror(errno));
            return;
        }
        zt_transport_t *t = s_transport_new(reactor);
        if (!t || s_set_nonblocking(cfd) != 0) {
            ZT_LOG_WARNING("cannot set up an accepted connection: out of resources");
            close(cfd);
            free(t);
            continue;
        }
        t->fd = cfd;
        t->state = S_CONNECTED;
        s_address_from(&ss, &t->peer);
        sslen = sizeof ss;
        if (getsockname(cfd, (struct sockaddr *)&ss, &sslen) == 0)
            s_address_from(&ss, &t->host);
        t->have_host = true;
        zt_protocol_t *p = zt_factory_build_protocol(port->factory, &t->peer);
        if (!p) {
            t->state = S_CLOSED;
            close(cfd);
            t->fd = -1;
            s_unref(t);
            continue;
        }
        t->protocol = p;
        t->port = port;
        t->next = port->conns;
        if (port->conns)
            port->conns->prev = t;
        port->conns = t;
        port->nconns++;
        t->refs++;
        s_start_reading(t);
        zt_protocol_make_connection(p, t);
        s_unref(t);
    }
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
    if (s_parse_host(interface, port, &ss, &sslen) != 0)
        return ZT_EINVAL;
    zt_tcp_port_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZT_ENOMEM;
    *self = (zt_tcp_port_t){.reactor = reactor, .owner = pthread_self(), .factory = factory};
    int rc = ZT_ESYS;
    self->fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (self->fd < 0 || s_set_nonblocking(self->fd) != 0)
        goto sys_failed;
    int on = 1;
    setsockopt(self->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (ss.ss_family == AF_INET6)
        setsockopt(self->fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(self->fd, (struct sockaddr *)&ss, sslen) != 0 ||
        listen(self->fd, backlog > 0 ? backlog : S_DEFAULT_BACKLOG) != 0)
        goto sys_failed;
    sslen = sizeof ss;
    if (getsockname(self->fd, (struct sockaddr *)&ss, &sslen) != 0)
        goto sys_failed;
    s_address_from(&ss, &self->host);
    rc = zt_reactor_add_reader(reactor, self->fd, s_on_accept, self);
    if (rc != 0)
        goto failed;
    zt_factory_do_start(factory);
    *port_p = self;
    return 0;
sys_failed:
    rc = s_code(errno);
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
    S_ASSERT_THREAD(self);
    if (self->fd < 0)
        return ZT_ESTATE;
    *addr = self->host;
    return 0;
}

zt_deferred_t *
zt_tcp_port_stop_listening(zt_tcp_port_t *self)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
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
    S_ASSERT_THREAD(self);
    return self->nconns;
}

void
zt_tcp_port_lose_connections(zt_tcp_port_t *self, bool abort)
{
    ZT_ASSERT(self);
    S_ASSERT_THREAD(self);
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
    S_ASSERT_THREAD(self);
    zt_deferred_t *d = zt_tcp_port_stop_listening(self);
    zt_deferred_unref(&d);
    while (self->conns)
        s_port_unlink(self->conns);
    free(self);
    *self_p = NULL;
}
