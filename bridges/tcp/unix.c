/*  bridges/tcp/unix.c - Unix domain stream sockets: zt_listen_unix, zt_connect_unix, peer
 *  credentials
 *
 *  A Unix connection is the TCP bridge's transport (tcp.c) on an AF_UNIX socket: only how it
 * begins differs, so this file makes the socket and hands it to the transport's own calls. A
 * client's connect on a Unix socket completes (or fails) at once, or fails with EAGAIN when the
 * listen queue is full; a success waits in CONNECTING, registered as a writer, so that the
 * transport's own path (zt__tcp_connect_done) makes the connection on a later pass, and a failure
 * is delivered on a later pass through the transport's queued connect failure. A Unix port embeds
 * a TCP port, so that accepted connections are listed, counted and lost by the same code.
 *
 *  The file mode is set after bind and before listen: nothing can connect before listen, so no
 * connection is ever accepted under the umask's mode.
 *
 *  Threads: the reactor thread only.  */
#include <ztwist/unix.h>

#include "tcp_internal.h"

#include "base/base.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
/* SO_PEERCRED, which glibc declares only for GNU builds (kept out of the library's sources, see
 * base/compiler.h): the kernel's generic value, which these architectures use. Elsewhere peer
 * credentials are ZT_ESYS. */
#if defined(__linux__) && !defined(SO_PEERCRED) &&                                                 \
    (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__) ||       \
     defined(__riscv))
#define SO_PEERCRED 17
#endif
#include <unistd.h>

_Static_assert(ZT_UNIX_PATH_MAX < sizeof(((struct sockaddr_un *)0)->sun_path),
               "a path and its NUL fit in sun_path");

struct zt_unix_port {
    zt_tcp_port_t base; /* the port's socket, factory and connections (tcp_internal.h) */
    char path[ZT_UNIX_PATH_MAX + 1]; /* the path as given ('@' for an abstract name) */
    bool abstract;                   /* an abstract name: no file */
    dev_t dev;                       /* the bound socket file's device, to unlink only our own */
    ino_t ino;                       /* and its inode */
};

/* Fill sun from path ('@' means the abstract namespace); 0, or -1 when the path is unusable. */
static int
s_sockaddr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
    size_t n = strlen(path);
    if (n == 0 || n > ZT_UNIX_PATH_MAX || (path[0] == '@' && n == 1))
        return -1;
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    if (path[0] == '@') {
        sun->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)sizeof *sun;
    }
    return 0;
}

/* The address a factory and get_peer / get_host see for a Unix socket. */
static void
s_address(const char *path, zt_address_t *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->family = ZT_AF_UNIX;
    size_t n = strnlen(path, sizeof addr->host - 1); /* the path's start: host is short */
    memcpy(addr->host, path, n);
}

static int
s_code(int err)
{
    return err == ENOENT || err == ENOTDIR ? ZT_ENOTFOUND : zt__tcp_code(err);
}

static int
s_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && zt__tcp_set_nonblocking(fd) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* --- connecting ------------------------------------------------------------------------- */

static zt_failure_t *
s_connect_error(int err, const char *path)
{
    if (err == ECONNREFUSED)
        return zt_failure_new(ZT_CONNECTION_REFUSED, "connection to Unix socket %s was refused",
                              path);
    zt_failure_t *f = zt_failure_new(ZT_CONNECT_ERROR, "cannot connect to Unix socket %s: %s", path,
                                     err == EAGAIN ? "its listen queue is full" : strerror(err));
    zt_failure_t *cause = zt_failure_from_code(s_code(err), "%s", strerror(err));
    if (f)
        zt_failure_set_cause(f, &cause);
    zt_failure_destroy(&cause);
    return f;
}

/* Deliver a failure of the attempt on the next pass (tcp.c's s_on_pass does it). */
static void
s_fail_later(zt_transport_t *t, zt_failure_t *reason)
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

static void
s_connect_timeout(void *arg)
{
    zt_transport_t *t = arg;
    zt_delayed_call_release(&t->timeout_call);
    zt__tcp_connect_failed(t, zt_failure_new(ZT_TIMEOUT_ERROR,
                                             "connect to Unix socket %s timed out after %g s",
                                             t->peer.host, t->timeout));
}

static void
s_cancel_connect(zt_deferred_t *d, void *arg)
{
    (void)d;
    zt_transport_t *t = arg;
    if (t->state != ZT__TCP_CONNECTING)
        return;
    zt_deferred_unref(&t->connect_d);
    zt__tcp_connect_failed(t,
                           zt_failure_new(ZT_CANCELLED_ERROR,
                                          "connect to Unix socket %s was cancelled", t->peer.host));
}

zt_deferred_t *
zt_connect_unix(zt_reactor_t *reactor, const char *path, zt_factory_t *factory, double timeout)
{
    if (!reactor || !path || !factory)
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
    /* Both ends are known now: the transport's connect path keeps host when have_host is set. */
    s_address(path, &t->peer);
    s_address("", &t->host);
    struct sockaddr_un sun;
    socklen_t len = 0;
    if (s_sockaddr(path, &sun, &len) != 0) {
        s_fail_later(t, zt_failure_new(ZT_CONNECT_ERROR,
                                       "'%.*s' is not a Unix socket path (1 to %d bytes)", 200,
                                       path, ZT_UNIX_PATH_MAX));
        return d;
    }
    t->fd = s_socket();
    if (t->fd < 0 || connect(t->fd, (struct sockaddr *)&sun, len) != 0) {
        s_fail_later(t, s_connect_error(errno, path));
        return d;
    }
    t->have_host = true;
    zt__tcp_start_writing(t);
    if (!t->writing ||
        zt_reactor_call_later(reactor, t->timeout, s_connect_timeout, t, &t->timeout_call) != 0)
        s_fail_later(t, zt_failure_new(ZT_CONNECT_ERROR, "out of memory"));
    return d;
}

/* --- listening -------------------------------------------------------------------------- */

static void
s_on_accept(zt_reactor_t *reactor, int fd, void *arg)
{
    zt_unix_port_t *self = arg;
    zt_tcp_port_t *port = &self->base;
    for (int i = 0; i < ZT__TCP_ACCEPT_BATCH && port->fd == fd; i++) {
        int cfd = accept(fd, NULL, NULL);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ZT_LOG_WARNING("accept on Unix socket %s failed: %s", self->path, strerror(errno));
            return;
        }
        zt_transport_t *t = zt__tcp_transport_new(reactor);
        if (!t || zt__tcp_set_nonblocking(cfd) != 0) {
            ZT_LOG_WARNING("cannot set up an accepted connection: out of resources");
            close(cfd);
            free(t);
            continue;
        }
        t->fd = cfd;
        t->state = ZT__TCP_CONNECTED;
        s_address("", &t->peer); /* a client's socket is unnamed */
        s_address(self->path, &t->host);
        t->have_host = true;
        zt__tcp_port_adopt(port, t);
    }
}

/* bind failed with EADDRINUSE on a file path: when the file is a socket nothing accepts on (its
 * process died), unlink it and bind again. Returns bind's result, errno set on failure. */
static int
s_bind_over_stale(int fd, const char *path, const struct sockaddr_un *sun, socklen_t len)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        errno = EADDRINUSE;
        return -1;
    }
    int probe = s_socket();
    if (probe < 0)
        return -1;
    int rc = connect(probe, (const struct sockaddr *)sun, len);
    int err = errno;
    close(probe);
    if (rc == 0 || err != ECONNREFUSED) {
        errno = EADDRINUSE; /* live: it accepted, or its queue is full */
        return -1;
    }
    ZT_LOG_INFO("removing the stale Unix socket %s (nothing listens on it)", path);
    if (unlink(path) != 0 && errno != ENOENT)
        return -1;
    return bind(fd, (const struct sockaddr *)sun, len);
}

static int
s_bind(zt_unix_port_t *self, const struct sockaddr_un *sun, socklen_t len, unsigned mode)
{
    int fd = self->base.fd;
    if (bind(fd, (const struct sockaddr *)sun, len) != 0) {
        if (errno != EADDRINUSE || self->abstract ||
            s_bind_over_stale(fd, self->path, sun, len) != 0)
            return -1;
    }
    if (self->abstract)
        return 0;
    struct stat st;
    if (mode != 0 && chmod(self->path, (mode_t)mode) != 0)
        return -1;
    if (stat(self->path, &st) != 0)
        return -1;
    self->dev = st.st_dev;
    self->ino = st.st_ino;
    return 0;
}

/* Unlink the socket file if it is still the one this port bound. */
static void
s_unlink_own(const zt_unix_port_t *self)
{
    struct stat st;
    if (self->abstract || lstat(self->path, &st) != 0)
        return;
    if (st.st_dev == self->dev && st.st_ino == self->ino)
        unlink(self->path);
}

/* The port's owner, recorded as tcp.c records a transport's (the calling thread, in whatever form
 * tcp_internal.h keeps it): taken from a transport made and dropped here, so that this file does
 * not depend on that form. */
static int
s_set_owner(zt_tcp_port_t *port)
{
    zt_transport_t *probe = zt__tcp_transport_new(port->reactor);
    if (!probe)
        return -1;
    port->owner = probe->owner;
    probe->state = ZT__TCP_CLOSED;
    zt__tcp_unref(probe);
    return 0;
}

int
zt_listen_unix(zt_reactor_t *reactor, const char *path, zt_factory_t *factory, int backlog,
               unsigned mode, zt_unix_port_t **port_p)
{
    if (!reactor || !path || !factory || !port_p)
        return ZT_EINVAL;
    struct sockaddr_un sun;
    socklen_t len = 0;
    if (s_sockaddr(path, &sun, &len) != 0)
        return ZT_EINVAL;
    zt_unix_port_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZT_ENOMEM;
    self->base = (zt_tcp_port_t){.reactor = reactor, .factory = factory};
    if (s_set_owner(&self->base) != 0) {
        free(self);
        return ZT_ENOMEM;
    }
    snprintf(self->path, sizeof self->path, "%s", path);
    self->abstract = path[0] == '@';
    s_address(path, &self->base.host);
    int rc = ZT_ESYS;
    bool bound = false;
    self->base.fd = s_socket();
    if (self->base.fd < 0 || s_bind(self, &sun, len, mode) != 0)
        goto sys_failed;
    bound = true;
    if (listen(self->base.fd, backlog > 0 ? backlog : ZT__TCP_DEFAULT_BACKLOG) != 0)
        goto sys_failed;
    rc = zt_reactor_add_reader(reactor, self->base.fd, s_on_accept, self);
    if (rc != 0)
        goto failed;
    zt_factory_do_start(factory);
    *port_p = self;
    return 0;
sys_failed:
    rc = s_code(errno);
    if (rc == ZT_ESYS)
        ZT_LOG_ERROR("cannot listen on Unix socket %s: %s", path, strerror(errno));
failed:
    if (bound)
        s_unlink_own(self);
    if (self->base.fd >= 0)
        close(self->base.fd);
    free(self);
    return rc;
}

const char *
zt_unix_port_get_path(const zt_unix_port_t *self)
{
    ZT_ASSERT(self);
    return self->path;
}

zt_deferred_t *
zt_unix_port_stop_listening(zt_unix_port_t *self)
{
    ZT_ASSERT(self);
    ZT__TCP_ASSERT_THREAD(&self->base);
    if (self->base.fd >= 0) {
        zt_reactor_remove_reader(self->base.reactor, self->base.fd);
        close(self->base.fd);
        self->base.fd = -1;
        s_unlink_own(self);
        zt_factory_do_stop(self->base.factory);
    }
    return zt_deferred_succeed(zt_ok_none());
}

size_t
zt_unix_port_connection_count(const zt_unix_port_t *self)
{
    ZT_ASSERT(self);
    return zt_tcp_port_connection_count(&self->base);
}

void
zt_unix_port_lose_connections(zt_unix_port_t *self, bool abort)
{
    ZT_ASSERT(self);
    zt_tcp_port_lose_connections(&self->base, abort);
}

void
zt_unix_port_destroy(zt_unix_port_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_unix_port_t *self = *self_p;
    ZT__TCP_ASSERT_THREAD(&self->base);
    zt_deferred_t *d = zt_unix_port_stop_listening(self);
    zt_deferred_unref(&d);
    while (self->base.conns)
        zt__tcp_port_unlink(self->base.conns);
    free(self);
    *self_p = NULL;
}

/* --- credentials ------------------------------------------------------------------------ */

int
zt_transport_get_peer_credentials(const zt_transport_t *self, zt_unix_credentials_t *cred)
{
    ZT_ASSERT(self && cred);
    ZT__TCP_ASSERT_THREAD(self);
    if (self->fd < 0 || self->state == ZT__TCP_CONNECTING || self->state == ZT__TCP_CLOSED)
        return ZT_ESTATE;
    if (self->peer.family != ZT_AF_UNIX)
        return ZT_EINVAL;
#if defined(SO_PEERCRED)
    /* The kernel's struct ucred, which glibc declares only for GNU builds (kept out of the
     * library's sources, see base/compiler.h): three 32-bit ids. */
    struct {
        int32_t pid;
        uint32_t uid;
        uint32_t gid;
    } uc;
    socklen_t len = sizeof uc;
    if (getsockopt(self->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
        return ZT_ESYS;
    *cred =
        (zt_unix_credentials_t){.pid = (pid_t)uc.pid, .uid = (uid_t)uc.uid, .gid = (gid_t)uc.gid};
    return 0;
#else
    (void)cred;
    return ZT_ESYS;
#endif
}
