/*  runtime/io.c - the reactor's I/O registrations and its wait
 *
 *  Design notes.
 *
 *  A wait costs what is ready. Every registered fd stays in the kernel's set (base/poller.h: epoll
 * on Linux, level-triggered; poll(2) elsewhere), changed when a registration changes, never rebuilt
 * for a wait. A reader and a writer of one fd are one entry, r->fds[fd], watching both. A wait
 * returns the ready fds only, and each is found by its number in r->fds: nothing in a pass walks
 * the registered fds.
 *
 *  ZeroMQ sockets. A socket is watched through its ZMQ_FD, which libzmq makes readable when
 * commands reach the socket; ZMQ_EVENTS processes them and says whether a message waits. That
 * signal is an edge: any operation on the socket (a send, a receive, a ZMQ_EVENTS) processes the
 * commands and so consumes it, and a message that arrived meanwhile is then waiting with the
 * ZMQ_FD silent. libzmq's rule is to check ZMQ_EVENTS after every operation on the socket. Code
 * on the reactor thread may use a socket anywhere (a callback sends on the pool's ROUTER, a timer
 * on a DEALER), so before each wait the reactor asks ZMQ_EVENTS of every registered socket that may
 * have been used since it was last found drained: a socket found readable makes the wait a
 * zero-timeout one and is served in this pass. A socket whose owner tracks that it was left
 * drained and untouched (the mailbox, which only the drain reads; the bridges' sockets,
 * rsock.h) is not asked: only its ZMQ_FD can tell of a change then. After the wait the
 * sockets whose ZMQ_FD fired are asked; a tracked socket found not readable is marked drained.
 * Registered sockets are few (the mailbox, a pool's ROUTER, a broker's ROUTER), so asking them is
 * not what grows with connections.
 *
 *  Raw fds are level-triggered: one still readable after its callback read part of its data is
 * reported by the next wait, as poll(2) would.
 *
 *  A pass dispatches ready sockets first (the mailbox first: up to ZT__MAILBOX_BATCH calls), then
 * the ready fds in the order the kernel gave them. A registration removed during a pass is not
 * called again, even later in that pass: a reader or writer has its callback cleared, a socket is
 * marked and swept after the pass. A registration added during a pass carries that pass's number
 * and is first called in the next one, so an event of a closed fd whose number was reused in the
 * same pass never reaches the new registration.
 *
 *  A wake-up that brings nothing (a socket's ZMQ_FD fired for a command that made no message
 * readable) goes back to waiting for what is left of the timeout, so one iterate(-1) waits for
 * something to run.
 *
 *  Threads: the reactor thread only.  */
#include "runtime.h"
#include "base/poller.h"
#include "runtime/rsock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZT__MAILBOX_BATCH 4096 /* mailbox calls per pass, so timers and I/O are not starved */
#define ZT__IO_EVENTS 256      /* ready fds taken from one wait; the rest come in the next */

/* --- registrations ---------------------------------------------------------------------- */

/* r->fds covers fd. */
static int
s_fds_reserve(zt_reactor_t *r, int fd)
{
    if ((size_t)fd < r->capfds)
        return 0;
    size_t cap = r->capfds ? r->capfds : 64;
    while (cap <= (size_t)fd)
        cap *= 2;
    zt__fd_reg_t *fds = realloc(r->fds, cap * sizeof *fds);
    if (!fds)
        return ZT_ENOMEM;
    memset(fds + r->capfds, 0, (cap - r->capfds) * sizeof *fds);
    r->fds = fds;
    r->capfds = cap;
    return 0;
}

/* Tell the poller what fd's registrations watch now. */
static int
s_fd_update(zt_reactor_t *r, int fd)
{
    zt__fd_reg_t *reg = &r->fds[fd];
    unsigned want = (reg->reader.fn || reg->socket ? (unsigned)ZT__POLLER_IN : 0u) |
                    (reg->writer.fn ? (unsigned)ZT__POLLER_OUT : 0u);
    if (want == reg->watched)
        return 0;
    int rc = zt__poller_set(r->poller, fd, reg->watched, want);
    if (rc == 0)
        reg->watched = want;
    return rc;
}

static zt__fd_watch_t *
s_watch(zt_reactor_t *r, int fd, bool writer)
{
    return writer ? &r->fds[fd].writer : &r->fds[fd].reader;
}

static int
s_add_fd(zt_reactor_t *r, int fd, bool writer, zt_reactor_fd_fn *fn, void *arg)
{
    if (fd < 0 || !fn)
        return ZT_EINVAL;
    int rc = s_fds_reserve(r, fd);
    if (rc != 0)
        return rc;
    zt__fd_watch_t *w = s_watch(r, fd, writer);
    if (w->fn)
        return ZT_EALREADY;
    *w = (zt__fd_watch_t){.fn = fn, .arg = arg, .pass = r->pass_seq};
    if ((rc = s_fd_update(r, fd)) != 0) {
        *s_watch(r, fd, writer) = (zt__fd_watch_t){0};
        return rc;
    }
    r->nwatches++;
    return 0;
}

static int
s_remove_fd(zt_reactor_t *r, int fd, bool writer)
{
    if (fd < 0 || (size_t)fd >= r->capfds || !s_watch(r, fd, writer)->fn)
        return ZT_ENOTFOUND;
    *s_watch(r, fd, writer) = (zt__fd_watch_t){0};
    r->nwatches--;
    int rc = s_fd_update(r, fd);
    if (rc != 0)
        ZT_LOG_ERROR("cannot stop watching fd %d: %s", fd, zt_strerror(rc));
    return 0;
}

int
zt_reactor_add_reader(zt_reactor_t *self, int fd, zt_reactor_fd_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self); /* checked here so that an abort names the public call */
    return s_add_fd(self, fd, false, fn, arg);
}

int
zt_reactor_add_writer(zt_reactor_t *self, int fd, zt_reactor_fd_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self); /* checked here so that an abort names the public call */
    return s_add_fd(self, fd, true, fn, arg);
}

int
zt_reactor_remove_reader(zt_reactor_t *self, int fd)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self); /* checked here so that an abort names the public call */
    return s_remove_fd(self, fd, false);
}

int
zt_reactor_remove_writer(zt_reactor_t *self, int fd)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self); /* checked here so that an abort names the public call */
    return s_remove_fd(self, fd, true);
}

/* The live entry of socket in r->sockets, or -1. */
static long
s_socket_find(const zt_reactor_t *r, const void *socket)
{
    for (size_t i = 0; i < r->nsockets; i++)
        if (r->sockets[i].socket == socket && !r->sockets[i].removed)
            return (long)i;
    return -1;
}

static int
s_socket_add(zt_reactor_t *r, void *socket, zt_reactor_socket_fn *fn, void *arg, bool *quiet)
{
    if (s_socket_find(r, socket) >= 0)
        return ZT_EALREADY;
    int fd = -1;
    size_t size = sizeof fd;
    if (zmq_getsockopt(socket, ZMQ_FD, &fd, &size) != 0 || fd < 0)
        return ZT_EINVAL;
    int rc = s_fds_reserve(r, fd);
    if (rc != 0)
        return rc;
    if (r->fds[fd].socket)
        return ZT_EALREADY; /* another registration of the same socket, removed in this pass */
    if (r->nsockets == r->capsockets) {
        size_t cap = r->capsockets ? r->capsockets * 2 : 4;
        zt__socket_reg_t *sockets = realloc(r->sockets, cap * sizeof *sockets);
        if (!sockets)
            return ZT_ENOMEM;
        r->sockets = sockets;
        r->capsockets = cap;
    }
    r->fds[fd].socket = r->nsockets + 1;
    if ((rc = s_fd_update(r, fd)) != 0) {
        r->fds[fd].socket = 0;
        return rc;
    }
    r->sockets[r->nsockets++] = (zt__socket_reg_t){
        .socket = socket, .fd = fd, .fn = fn, .arg = arg, .quiet = quiet, .pass = r->pass_seq};
    return 0;
}

/* Drop the sockets marked removed; the others move down, and their fds follow them. */
void
zt__io_sweep(zt_reactor_t *r)
{
    if (!r->sockets_dirty)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < r->nsockets; i++) {
        if (r->sockets[i].removed)
            continue;
        r->sockets[kept] = r->sockets[i];
        r->fds[r->sockets[kept].fd].socket = kept + 1;
        kept++;
    }
    r->nsockets = kept;
    r->sockets_dirty = false;
}

int
zt_reactor_add_socket(zt_reactor_t *self, void *socket, zt_reactor_socket_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (!socket || !fn)
        return ZT_EINVAL;
    return s_socket_add(self, socket, fn, arg, NULL);
}

int
zt__io_add_socket(zt_reactor_t *self, void *socket, zt_reactor_socket_fn *fn, void *arg,
                  bool *quiet)
{
    ZT_ASSERT(self && quiet);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (!socket || !fn)
        return ZT_EINVAL;
    *quiet = false;
    return s_socket_add(self, socket, fn, arg, quiet);
}

int
zt_reactor_remove_socket(zt_reactor_t *self, void *socket)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    long i = s_socket_find(self, socket);
    if (i <= 0) /* the mailbox, sockets[0], is not the caller's */
        return ZT_ENOTFOUND;
    zt__socket_reg_t *s = &self->sockets[i];
    s->removed = true;
    self->fds[s->fd].socket = 0;
    int rc = s_fd_update(self, s->fd);
    if (rc != 0)
        ZT_LOG_ERROR("cannot stop watching a socket's fd %d: %s", s->fd, zt_strerror(rc));
    self->sockets_dirty = true;
    if (!self->in_pass)
        zt__io_sweep(self);
    return 0;
}

size_t
zt__io_registrations(const zt_reactor_t *r)
{
    size_t n = r->nwatches;
    for (size_t i = 1; i < r->nsockets; i++)
        n += !r->sockets[i].removed;
    bool signals =
        r->signal_fd >= 0 && (size_t)r->signal_fd < r->capfds && r->fds[r->signal_fd].reader.fn;
    return n - signals;
}

int
zt__io_init(zt_reactor_t *r)
{
    r->poller = zt__poller_new();
    r->ready = malloc(ZT__IO_EVENTS * sizeof(zt__poller_event_t));
    if (!r->poller || !r->ready)
        return ZT_ENOMEM;
    return s_socket_add(r, r->mailbox, NULL, NULL, &r->mailbox_quiet);
}

void
zt__io_fini(zt_reactor_t *r)
{
    zt__poller_destroy(&r->poller);
    free(r->ready);
    free(r->fds);
    free(r->sockets);
    r->ready = NULL;
    r->fds = NULL;
    r->sockets = NULL;
    r->capfds = r->nsockets = r->capsockets = r->nwatches = 0;
}

/* --- the wait --------------------------------------------------------------------------- */

/* Ask socket s whether a message waits (this processes its commands, clearing its ZMQ_FD).
 * Returns 0, ZT_ECANCELLED (a signal) or ZT_ESYS (logged: the socket was closed, or its context
 * terminated, while registered). */
static int
s_ask(zt__socket_reg_t *s)
{
    int events = 0;
    size_t size = sizeof events;
    if (zmq_getsockopt(s->socket, ZMQ_EVENTS, &events, &size) != 0) {
        if (zmq_errno() == EINTR)
            return ZT_ECANCELLED;
        ZT_LOG_ERROR("cannot ask a registered ZeroMQ socket for ZMQ_EVENTS: %s",
                     zmq_strerror(zmq_errno()));
        return ZT_ESYS;
    }
    s->ready = (events & ZMQ_POLLIN) != 0;
    return 0;
}

/* Before the wait: whether a socket that may have been used since it was last found drained holds
 * a message its ZMQ_FD will not announce. */
static int
s_ask_sockets(zt_reactor_t *r, bool *any)
{
    for (size_t i = 0; i < r->nsockets; i++) {
        zt__socket_reg_t *s = &r->sockets[i];
        s->ready = false;
        if (s->removed || (s->quiet && *s->quiet))
            continue;
        int rc = s_ask(s);
        if (rc != 0)
            return rc;
        *any = *any || s->ready;
    }
    return 0;
}

/* After the wait: ask the sockets whose ZMQ_FD fired; whether any of the n events is for a live
 * registration. */
static int
s_ask_woken(zt_reactor_t *r, int n, bool *any)
{
    const zt__poller_event_t *ev = r->ready;
    for (int i = 0; i < n; i++) {
        if ((size_t)ev[i].fd >= r->capfds)
            continue;
        const zt__fd_reg_t *reg = &r->fds[ev[i].fd];
        *any = *any || reg->reader.fn || reg->writer.fn;
        if (!reg->socket)
            continue;
        zt__socket_reg_t *s = &r->sockets[reg->socket - 1];
        int rc = s->ready ? 0 : s_ask(s);
        if (rc != 0)
            return rc;
        *any = *any || s->ready;
    }
    return 0;
}

/* Wait up to timeout_ms; the count of events in r->ready, or ZT_ECANCELLED (a signal), ZT_ESYS
 * or ZT_ENOMEM (logged). */
static int
s_wait(zt_reactor_t *r, long timeout_ms)
{
    bool any = false;
    int rc = s_ask_sockets(r, &any);
    if (rc != 0)
        return rc;
    int64_t deadline = timeout_ms > 0 ? zt_time_now_ns() + timeout_ms * 1000000 : 0;
    long wait = any ? 0 : timeout_ms;
    for (;;) {
        int n = zt__poller_wait(r->poller, r->ready, ZT__IO_EVENTS, wait);
        if (n < 0)
            return n;
        if ((rc = s_ask_woken(r, n, &any)) != 0)
            return rc;
        if (any || wait == 0)
            return n;
        if (timeout_ms > 0) {
            wait = (long)((deadline - zt_time_now_ns() + 999999) / 1000000);
            if (wait <= 0)
                return 0;
        }
    }
}

static void
s_dispatch_sockets(zt_reactor_t *r)
{
    size_t n = r->nsockets; /* sockets added by these callbacks wait for the next pass */
    for (size_t i = 0; i < n; i++) {
        zt__socket_reg_t s = r->sockets[i]; /* a callback may move the array */
        if (!s.ready || s.removed || s.pass == r->pass_seq)
            continue;
        if (!s.fn) {
            r->mailbox_quiet = zt__mailbox_drain(r, ZT__MAILBOX_BATCH) < ZT__MAILBOX_BATCH;
            continue;
        }
        int64_t t0 = zt_time_now_ns();
        s.fn(r, s.socket, s.arg);
        zt__reactor_account(r, zt_time_now_ns() - t0, ZT__FN(s.fn));
    }
}

/* Run fd's reader or writer if events concern it and it was registered before this pass. */
static void
s_dispatch_fd(zt_reactor_t *r, int fd, unsigned events, bool writer)
{
    unsigned mask = ZT__POLLER_ERR | (writer ? ZT__POLLER_OUT : ZT__POLLER_IN);
    zt__fd_watch_t w = *s_watch(r, fd, writer); /* a callback may move r->fds */
    if (!(events & mask) || !w.fn || w.pass == r->pass_seq)
        return;
    int64_t t0 = zt_time_now_ns();
    w.fn(r, fd, w.arg);
    zt__reactor_account(r, zt_time_now_ns() - t0, ZT__FN(w.fn));
}

int
zt__io_poll(zt_reactor_t *r, long timeout_ms)
{
    int n = s_wait(r, timeout_ms);
    if (n == ZT_ECANCELLED)
        return 0; /* a signal: its handler may want the loop to look at something */
    if (n < 0)
        return ZT_ESYS;
    /* A tracked socket the wait found not readable was left drained (rsock.h). */
    for (size_t i = 0; i < r->nsockets; i++)
        if (r->sockets[i].quiet && !r->sockets[i].ready && !r->sockets[i].removed)
            *r->sockets[i].quiet = true;
    s_dispatch_sockets(r);
    const zt__poller_event_t *ev = r->ready;
    for (int i = 0; i < n; i++) {
        if ((size_t)ev[i].fd >= r->capfds)
            continue;
        s_dispatch_fd(r, ev[i].fd, ev[i].events, false);
        s_dispatch_fd(r, ev[i].fd, ev[i].events, true);
    }
    return 0;
}
