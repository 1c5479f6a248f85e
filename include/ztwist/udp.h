/*  ztwist/udp.h - UDP ports and datagram protocols (Twisted's IReactorUDP and DatagramProtocol)
 *
 *  A UDP port is one socket bound to an address, read on the reactor: each datagram that arrives
 * goes to the protocol's datagram_received with the sender's address. Writes go straight to the
 * kernel, never block and are never buffered: a full socket buffer is ZT_EFULL, and the datagram
 * is not sent (UDP may drop datagrams anyway; the caller decides whether to retry).
 *
 *  A datagram longer than the port's max_packet_size is not delivered cut: it is counted,
 * logged once per port, and given to datagram_truncated when the protocol has one.
 *
 *  A connected port (zt_udp_port_connect, Twisted's connect on a UDP transport) talks to one peer:
 * the kernel drops datagrams from others, writes need no address, and an ICMP "port unreachable"
 * from the peer reaches the protocol's connection_refused (and the next write may fail with
 * ZT_ECONNREFUSED).
 *
 *  Addresses are numeric (zt_resolve_host turns a name into one). IPv4 and IPv6; an IPv6 port
 * talks IPv6 only.
 *
 *  Threads: every function here is for the reactor thread only.  */
#ifndef ZTWIST_UDP_H
#define ZTWIST_UDP_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/protocol.h>
#include <ztwist/reactor.h>

typedef struct zt_udp_port zt_udp_port_t;

/** Twisted's default maxPacketSize for listenUDP, in bytes. */
#define ZT_UDP_DEFAULT_MAX_PACKET 8192

/** A datagram protocol's callbacks (Twisted's DatagramProtocol). datagram_received is required;
 * the others may be NULL. The vtable is borrowed and must outlive the port. */
typedef struct zt_datagram_protocol_vtable {
    /** A datagram arrived: data (borrowed for the call, len may be 0) from addr (borrowed). */
    void (*datagram_received)(zt_udp_port_t *port, const char *data, size_t len,
                              const zt_address_t *addr, void *arg);
    /** A datagram longer than max_packet_size arrived and was dropped; len is its first
     * max_packet_size bytes' length, which is all that could be read. */
    void (*datagram_truncated)(zt_udp_port_t *port, size_t len, const zt_address_t *addr,
                               void *arg);
    /** A connected port's peer answered with ICMP port unreachable (Twisted's
     * connectionRefused). */
    void (*connection_refused)(zt_udp_port_t *port, void *arg);
    /** The port stopped listening (Twisted's stopProtocol); runs inside the stop. */
    void (*stop_protocol)(zt_udp_port_t *port, void *arg);
} zt_datagram_protocol_vtable_t;

/** A UDP port's counters, filled in by zt_udp_port_stats. A public struct: a snapshot. */
typedef struct zt_udp_stats {
    uint64_t received;  /* datagrams delivered to datagram_received */
    uint64_t truncated; /* datagrams dropped for being longer than max_packet_size */
    uint64_t sent;      /* datagrams the kernel took */
    uint64_t send_full; /* writes refused with ZT_EFULL */
    uint64_t refused;   /* ICMP port unreachable reports */
} zt_udp_stats_t;

/**
 *  Bind a UDP port and start reading it (Twisted's listenUDP).
 *  @param port             the port number; 0 lets the kernel pick (zt_udp_port_get_host)
 *  @param vtable           required, with datagram_received; borrowed
 *  @param arg              passed to every callback; borrowed
 *  @param interface        a numeric address to bind; NULL or "" means "0.0.0.0"
 *  @param max_packet_size  the longest datagram delivered; 0 means ZT_UDP_DEFAULT_MAX_PACKET; at
 * most 65535
 *  @param port_p           receives the port, which the caller owns (zt_udp_port_destroy)
 *  @return 0; ZT_EINVAL (a missing argument, a non-numeric interface, a size over 65535);
 * ZT_EADDRINUSE; ZT_EACCES; ZT_ENOMEM; ZT_ESYS (logged). On failure *port_p is left alone.
 */
ZT_EXPORT int zt_listen_udp(zt_reactor_t *reactor, uint16_t port,
                            const zt_datagram_protocol_vtable_t *vtable, void *arg,
                            const char *interface, size_t max_packet_size, zt_udp_port_t **port_p);

/**
 *  Send one datagram (Twisted's transport.write(data, addr)). Never blocks.
 *  @param host  the numeric address to send to; NULL on a connected port (then required to be NULL
 * or the connected peer's)
 *  @return 0 (the kernel took it; it may still be lost on the way); ZT_EINVAL (no address on an
 * unconnected port, a non-numeric or wrong-family host, an address other than the peer on a
 * connected port, a datagram too long); ZT_EFULL (the socket buffer is full: not sent);
 * ZT_ECONNREFUSED (a connected port's peer refused an earlier datagram); ZT_EUNREACHABLE;
 * ZT_ESTATE (stopped); ZT_ESYS
 */
ZT_EXPORT int zt_udp_port_write(zt_udp_port_t *self, const void *data, size_t len, const char *host,
                                uint16_t port);

/**
 *  Connect the port to one peer (Twisted's transport.connect(host, port)): datagrams from others
 * are dropped by the kernel, writes may omit the address, ICMP refusals reach connection_refused.
 *  @return 0; ZT_EINVAL (a non-numeric or wrong-family host); ZT_EALREADY (connected already, as
 * in Twisted); ZT_ESTATE (stopped); ZT_ESYS
 */
ZT_EXPORT int zt_udp_port_connect(zt_udp_port_t *self, const char *host, uint16_t port);

/**
 *  Join a multicast group (Twisted's joinGroup).
 *  @param group      a numeric multicast address of the port's family
 *  @param interface  IPv4: the numeric address of the interface, NULL for the default; IPv6: NULL
 * (the default interface)
 *  @return 0; ZT_EINVAL (not a multicast address of the port's family); ZT_EADDRINUSE (joined
 * already); ZT_ESTATE; ZT_ESYS (no multicast route, say: logged)
 */
ZT_EXPORT int zt_udp_port_join_group(zt_udp_port_t *self, const char *group, const char *interface);

/** Leave a multicast group joined with zt_udp_port_join_group (Twisted's leaveGroup).
 * @return 0; ZT_EINVAL; ZT_ENOTFOUND (not joined); ZT_ESTATE; ZT_ESYS */
ZT_EXPORT int zt_udp_port_leave_group(zt_udp_port_t *self, const char *group,
                                      const char *interface);

/**
 *  Whether this host receives its own multicast datagrams (Twisted's setLoopbackMode; on by
 * default), and the hop limit of multicast datagrams sent (setTTL; 1 by default).
 *  @param ttl  0 to 255
 *  @return 0; ZT_EINVAL; ZT_ESTATE; ZT_ESYS
 */
ZT_EXPORT int zt_udp_port_set_multicast(zt_udp_port_t *self, bool loopback, int ttl);

/**
 *  Send multicast datagrams through the interface with this IPv4 address (Twisted's
 * setOutgoingInterface), instead of the one the routing table picks.
 *  @return 0; ZT_EINVAL (not a numeric IPv4 address, or an IPv6 port); ZT_ESTATE; ZT_ESYS
 */
ZT_EXPORT int zt_udp_port_set_outgoing_interface(zt_udp_port_t *self, const char *interface);

/** The address the port is bound to, with the real port number. @return 0, or ZT_ESTATE */
ZT_EXPORT int zt_udp_port_get_host(const zt_udp_port_t *self, zt_address_t *addr);

/** Fill stats with the port's counters. @param stats required */
ZT_EXPORT void zt_udp_port_stats(const zt_udp_port_t *self, zt_udp_stats_t *stats);

/**
 *  Stop reading and close the socket (Twisted's stopListening); stop_protocol runs inside the
 * call. A second stop does nothing.
 *  @return a Deferred the caller owns, already fired with no value; NULL when out of memory (the
 * port has stopped anyway)
 */
ZT_EXPORT zt_deferred_t *zt_udp_port_stop_listening(zt_udp_port_t *self);

/**
 *  Destroy a port and NULL the pointer; stops it first if it still listens. Never from one of the
 * port's own callbacks (schedule it).
 *  @param self_p  NULL or a NULL port does nothing
 */
ZT_EXPORT void zt_udp_port_destroy(zt_udp_port_t **self_p);

#endif
