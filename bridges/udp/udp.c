/*  bridges/udp/udp.c - UDP ports: datagrams read on the reactor, written straight to the kernel
 *
 *  A port is one non-blocking datagram socket registered as a reader. Each readable event reads up
 * to a batch of datagrams with recvmsg, so that the kernel's MSG_TRUNC flag says when a datagram
 * was longer than the buffer: such a datagram is counted and reported, never delivered cut. A
 * write is one sendto with MSG_DONTWAIT: it never blocks and nothing is buffered, so a full socket
 * buffer is a code (ZT_EFULL) for the caller rather than memory growing inside the port.
 *
 *  A callback may stop the port: the read loop checks after each delivery that the socket it reads
 * is still the port's. Destroying the port from its own callback is a caller bug (an assertion).
 *
 *  Threads: the reactor thread only.  */
#define _DEFAULT_SOURCE /* struct ip_mreq, IN_MULTICAST (BSD socket API, not in POSIX) */

#include <ztwist/udp.h>

#include "tcp_internal.h" /* zt__tcp_parse_host, zt__tcp_address_from, zt__tcp_code */

#include "base/base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define UDP_READ_BATCH 64 /* datagrams read per readable event */
#define UDP_MAX_PACKET 65535

struct zt_udp_port {
    zt_reactor_t *reactor;                       /* Borrowed: the reactor it runs on */
    int fd;                                      /* Owned: the socket, or -1 once stopped */
    int family;                                  /* AF_INET or AF_INET6 */
    const zt_datagram_protocol_vtable_t *vtable; /* Borrowed: the protocol */
    void *arg;                                   /* Borrowed: its arg */
    char *buf;                                   /* Owned: the read buffer */
    size_t max_packet;                           /* its size */
    bool connected;                              /* zt_udp_port_connect succeeded */
    bool in_callback;                            /* a callback of ours runs (destroy asserts) */
    bool truncation_logged;                      /* the first truncated datagram was logged */
    zt_address_t host;                           /* the bound address */
    zt_address_t peer;                           /* the connected peer */
    zt_udp_stats_t stats;                        /* the counters */
};

/* --- reading ------------------------------------------------------------------------------ */

static void
s_refused(zt_udp_port_t *self)
{
    self->stats.refused++;
    if (self->vtable->connection_refused) {
        self->in_callback = true;
        self->vtable->connection_refused(self, self->arg);
        self->in_callback = false;
    }
}

static void
s_truncated(zt_udp_port_t *self, size_t len, const zt_address_t *from)
{
    self->stats.truncated++;
    if (!self->truncation_logged) {
        self->truncation_logged = true;
        ZT_LOG_WARNING("UDP port %u dropped a datagram from %s port %u longer than its %zu-byte "
                       "max packet size (logged once per port; counted in zt_udp_port_stats)",
                       (unsigned)self->host.port, from->host, (unsigned)from->port,
                       self->max_packet);
    }
    if (self->vtable->datagram_truncated) {
        self->in_callback = true;
        self->vtable->datagram_truncated(self, len, from, self->arg);
        self->in_callback = false;
    }
}

static void
s_on_readable(zt_reactor_t *reactor, int fd, void *arg)
{
    (void)reactor;
    zt_udp_port_t *self = arg;
    for (int i = 0; i < UDP_READ_BATCH && self->fd == fd; i++) {
        struct sockaddr_storage ss;
        struct iovec iov = {.iov_base = self->buf, .iov_len = self->max_packet};
        struct msghdr msg = {
            .msg_name = &ss, .msg_namelen = sizeof ss, .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            if (errno == ECONNREFUSED) {
                s_refused(self);
                continue;
            }
            ZT_LOG_WARNING("UDP port %u: recvmsg failed: %s", (unsigned)self->host.port,
                           strerror(errno));
            return;
        }
        zt_address_t from;
        zt__tcp_address_from(&ss, &from);
        if (msg.msg_flags & MSG_TRUNC) {
            s_truncated(self, (size_t)n, &from);
            continue;
        }
        self->stats.received++;
        self->in_callback = true;
        self->vtable->datagram_received(self, self->buf, (size_t)n, &from, self->arg);
        self->in_callback = false;
    }
}

/* --- the port ----------------------------------------------------------------------------- */

int
zt_listen_udp(zt_reactor_t *reactor, uint16_t port, const zt_datagram_protocol_vtable_t *vtable,
              void *arg, const char *interface, size_t max_packet_size, zt_udp_port_t **port_p)
{
    if (!reactor || !vtable || !vtable->datagram_received || !port_p ||
        max_packet_size > UDP_MAX_PACKET)
        return ZT_EINVAL;
    if (!interface || !*interface)
        interface = "0.0.0.0";
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (zt__tcp_parse_host(interface, port, &ss, &sslen) != 0)
        return ZT_EINVAL;
    zt_udp_port_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZT_ENOMEM;
    *self = (zt_udp_port_t){.reactor = reactor,
                            .fd = -1,
                            .family = ss.ss_family,
                            .vtable = vtable,
                            .arg = arg,
                            .max_packet =
                                max_packet_size ? max_packet_size : ZT_UDP_DEFAULT_MAX_PACKET};
    int rc = ZT_ENOMEM;
    self->buf = malloc(self->max_packet);
    if (!self->buf)
        goto failed;
    self->fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (self->fd < 0 || zt__tcp_set_nonblocking(self->fd) != 0)
        goto sys_failed;
    int on = 1;
    if (ss.ss_family == AF_INET6)
        setsockopt(self->fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(self->fd, (struct sockaddr *)&ss, sslen) != 0)
        goto sys_failed;
    sslen = sizeof ss;
    if (getsockname(self->fd, (struct sockaddr *)&ss, &sslen) != 0)
        goto sys_failed;
    zt__tcp_address_from(&ss, &self->host);
    rc = zt_reactor_add_reader(reactor, self->fd, s_on_readable, self);
    if (rc != 0)
        goto failed;
    *port_p = self;
    return 0;
sys_failed:
    rc = zt__tcp_code(errno);
    if (rc == ZT_ESYS)
        ZT_LOG_ERROR("cannot listen on UDP %s port %u: %s", interface, (unsigned)port,
                     strerror(errno));
failed:
    if (self->fd >= 0)
        close(self->fd);
    free(self->buf);
    free(self);
    return rc;
}

/* Parse host:port for this port's family; 0, or ZT_EINVAL. */
static int
s_parse(const zt_udp_port_t *self, const char *host, uint16_t port, struct sockaddr_storage *ss,
        socklen_t *len)
{
    if (!host || zt__tcp_parse_host(host, port, ss, len) != 0 || ss->ss_family != self->family)
        return ZT_EINVAL;
    return 0;
}

static int
s_send_code(int err)
{
    switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ENOBUFS:
        return ZT_EFULL;
    case EMSGSIZE:
    case EDESTADDRREQ:
    case EISCONN:
        return ZT_EINVAL;
    default:
        return zt__tcp_code(err);
    }
}

int
zt_udp_port_write(zt_udp_port_t *self, const void *data, size_t len, const char *host,
                  uint16_t port)
{
    ZT_ASSERT(self && (data || len == 0));
    if (self->fd < 0)
        return ZT_ESTATE;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    ssize_t n;
    if (self->connected) {
        if (host && (s_parse(self, host, port, &ss, &sslen) != 0 || port != self->peer.port))
            return ZT_EINVAL;
        if (host) {
            zt_address_t to;
            zt__tcp_address_from(&ss, &to);
            if (strcmp(to.host, self->peer.host) != 0)
                return ZT_EINVAL;
        }
        n = send(self->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
        if (s_parse(self, host, port, &ss, &sslen) != 0)
            return ZT_EINVAL;
        n = sendto(self->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&ss, sslen);
    }
    if (n >= 0) {
        self->stats.sent++;
        return 0;
    }
    int rc = s_send_code(errno);
    if (rc == ZT_EFULL)
        self->stats.send_full++;
    if (rc == ZT_ESYS)
        ZT_LOG_WARNING("UDP port %u: send failed: %s", (unsigned)self->host.port, strerror(errno));
    return rc;
}

int
zt_udp_port_connect(zt_udp_port_t *self, const char *host, uint16_t port)
{
    ZT_ASSERT(self);
    if (self->fd < 0)
        return ZT_ESTATE;
    if (self->connected)
        return ZT_EALREADY;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (s_parse(self, host, port, &ss, &sslen) != 0)
        return ZT_EINVAL;
    if (connect(self->fd, (struct sockaddr *)&ss, sslen) != 0)
        return zt__tcp_code(errno);
    zt__tcp_address_from(&ss, &self->peer);
    self->connected = true;
    return 0;
}

/* --- multicast ---------------------------------------------------------------------------- */

static int
s_membership(zt_udp_port_t *self, const char *group, const char *interface, bool join)
{
    ZT_ASSERT(self);
    if (self->fd < 0)
        return ZT_ESTATE;
    if (!group)
        return ZT_EINVAL;
    int rc;
    if (self->family == AF_INET) {
        struct ip_mreq mreq;
        memset(&mreq, 0, sizeof mreq);
        if (inet_pton(AF_INET, group, &mreq.imr_multiaddr) != 1 ||
            !IN_MULTICAST(ntohl(mreq.imr_multiaddr.s_addr)))
            return ZT_EINVAL;
        mreq.imr_interface.s_addr = htonl(INADDR_ANY);
        if (interface && inet_pton(AF_INET, interface, &mreq.imr_interface) != 1)
            return ZT_EINVAL;
        rc = setsockopt(self->fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &mreq,
                        sizeof mreq);
    } else {
        struct ipv6_mreq mreq;
        memset(&mreq, 0, sizeof mreq);
        if (inet_pton(AF_INET6, group, &mreq.ipv6mr_multiaddr) != 1 ||
            !IN6_IS_ADDR_MULTICAST(&mreq.ipv6mr_multiaddr) || interface)
            return ZT_EINVAL;
        rc = setsockopt(self->fd, IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP, &mreq,
                        sizeof mreq);
    }
    if (rc == 0)
        return 0;
    if (join && errno == EADDRINUSE)
        return ZT_EADDRINUSE;
    if (!join && (errno == EADDRNOTAVAIL || errno == EINVAL || errno == ENOENT))
        return ZT_ENOTFOUND;
    ZT_LOG_WARNING("UDP port %u: cannot %s multicast group %s: %s", (unsigned)self->host.port,
                   join ? "join" : "leave", group, strerror(errno));
    return ZT_ESYS;
}

int
zt_udp_port_join_group(zt_udp_port_t *self, const char *group, const char *interface)
{
    return s_membership(self, group, interface, true);
}

int
zt_udp_port_leave_group(zt_udp_port_t *self, const char *group, const char *interface)
{
    return s_membership(self, group, interface, false);
}

int
zt_udp_port_set_multicast(zt_udp_port_t *self, bool loopback, int ttl)
{
    ZT_ASSERT(self);
    if (self->fd < 0)
        return ZT_ESTATE;
    if (ttl < 0 || ttl > 255)
        return ZT_EINVAL;
    int rc;
    if (self->family == AF_INET) {
        unsigned char loop = loopback ? 1 : 0, hops = (unsigned char)ttl;
        rc = setsockopt(self->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) |
             setsockopt(self->fd, IPPROTO_IP, IP_MULTICAST_TTL, &hops, sizeof hops);
    } else {
        unsigned loop = loopback ? 1 : 0;
        rc = setsockopt(self->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof loop) |
             setsockopt(self->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl);
    }
    return rc == 0 ? 0 : ZT_ESYS;
}

int
zt_udp_port_set_outgoing_interface(zt_udp_port_t *self, const char *interface)
{
    ZT_ASSERT(self);
    if (self->fd < 0)
        return ZT_ESTATE;
    struct in_addr addr;
    if (self->family != AF_INET || !interface || inet_pton(AF_INET, interface, &addr) != 1)
        return ZT_EINVAL;
    if (setsockopt(self->fd, IPPROTO_IP, IP_MULTICAST_IF, &addr, sizeof addr) != 0)
        return ZT_ESYS;
    return 0;
}

/* --- the rest ----------------------------------------------------------------------------- */

int
zt_udp_port_get_host(const zt_udp_port_t *self, zt_address_t *addr)
{
    ZT_ASSERT(self && addr);
    if (self->fd < 0)
        return ZT_ESTATE;
    *addr = self->host;
    return 0;
}

void
zt_udp_port_stats(const zt_udp_port_t *self, zt_udp_stats_t *stats)
{
    ZT_ASSERT(self && stats);
    *stats = self->stats;
}

zt_deferred_t *
zt_udp_port_stop_listening(zt_udp_port_t *self)
{
    ZT_ASSERT(self);
    if (self->fd >= 0) {
        zt_reactor_remove_reader(self->reactor, self->fd);
        close(self->fd);
        self->fd = -1;
        if (self->vtable->stop_protocol) {
            bool was = self->in_callback;
            self->in_callback = true;
            self->vtable->stop_protocol(self, self->arg);
            self->in_callback = was;
        }
    }
    return zt_deferred_succeed(zt_ok_none());
}

void
zt_udp_port_destroy(zt_udp_port_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_udp_port_t *self = *self_p;
    ZT_ASSERT_MSG(!self->in_callback, "zt_udp_port_destroy from one of the port's own callbacks");
    zt_deferred_t *d = zt_udp_port_stop_listening(self);
    zt_deferred_unref(&d);
    free(self->buf);
    free(self);
    *self_p = NULL;
}
