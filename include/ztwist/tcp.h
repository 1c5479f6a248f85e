/*  ztwist/tcp.h - TCP on the reactor: listening ports, client connections, and the transport
 *
 *  Twisted's listenTCP and connectTCP, on the reactor's poll loop. Every socket is non-blocking;
 * the reactor calls back when one is readable or writable, and the transport calls its protocol
 * (<ztwist/protocol.h>):
 *
 *      zt_factory_t *f = zt_factory_new(&my_factory_vtable, &state);
 *      zt_tcp_port_t *port = NULL;
 *      zt_listen_tcp(reactor, 0, f, 50, "127.0.0.1", &port);   // port 0: the kernel picks one
 *      zt_address_t addr;
 *      zt_tcp_port_get_host(port, &addr);                        // ... and addr.port says which
 *
 *  Writing. zt_transport_write copies the bytes into the transport's buffer and returns; the
 * buffer is sent at the start of the reactor's next pass (so that the writes of one pass go out in
 * one send), and whatever the kernel does not take then is sent when the socket is writable.
 *
 *  Flow control (Twisted's producer/consumer). A producer registered with
 * zt_transport_register_producer is paused when the buffer grows past the high-water mark
 * (64 KiB by default) and resumed when it has drained to the low-water mark (16 KiB by default).
 * A streaming producer produces until paused; a non-streaming (pull) one is asked for more
 * (resume_producing) each time the buffer has drained. The transport itself is a producer of the
 * data it reads (pause_producing stops reading), so a protocol that answers what it reads can
 * register its own transport (zt_transport_producer_vtable) and a peer that reads slowly then
 * slows the reading instead of growing the buffer.
 *
 *  Names. Hosts are numeric addresses ("127.0.0.1", "::1"): getaddrinfo blocks, and nothing may
 * block the reactor thread. Resolve a name on a worker (zt_defer_to_thread calling getaddrinfo)
 * and connect to the numeric address it gives; a name here fails with ZT_CONNECT_ERROR.
 *
 *  Lifetime: a connection lives until it is closed and its protocol's connection_lost has run;
 * the reactor holds it meanwhile. Code that must keep a transport pointer past connection_lost
 * (a reply computed on a worker, say) takes a reference with zt_transport_ref: the transport then
 * stays valid, closed, until the last zt_transport_unref, and writes to it fail with ZT_ESTATE.
 * Close every connection (zt_tcp_port_lose_connections, abort) and destroy every port before
 * destroying the reactor: a connection still open then is leaked, as a timed call would be.
 *
 *  Threads: every function here is for the reactor thread only; debug builds (NDEBUG not defined)
 * assert it on every transport call.  */
#ifndef ZTWIST_TCP_H
#define ZTWIST_TCP_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/protocol.h>
#include <ztwist/reactor.h>
#include <ztwist/resolve.h> /* zt_resolve_host, declared here before it had its own header */

typedef struct zt_tcp_port zt_tcp_port_t;

/** The default high-water mark of a transport's write buffer, in bytes. */
#define ZT_TRANSPORT_HIGH_WATER 65536
/** The default low-water mark, in bytes. */
#define ZT_TRANSPORT_LOW_WATER 16384

/** One piece of a zt_transport_write_sequence. */
typedef struct zt_iovec {
    const void *data; /* Borrowed: the bytes */
    size_t len;       /* how many */
} zt_iovec_t;

/** A producer's callbacks (Twisted's IPushProducer / IPullProducer), all given the arg it was
 * registered with. The vtable is borrowed; make it a static const. */
typedef struct zt_producer_vtable {
    /** Stop producing until resume_producing (streaming producers only). May be NULL. */
    void (*pause_producing)(void *arg);
    /** Produce again (streaming), or produce one more piece (pull). May be NULL. */
    void (*resume_producing)(void *arg);
    /** Stop for good: the consumer's connection is gone. Called once, when the producer is still
     * registered at the close. May be NULL. */
    void (*stop_producing)(void *arg);
} zt_producer_vtable_t;

/* ------------------------------------------------------------------------------------------- */
/* Listening */

/**
 *  Listen for TCP connections (Twisted's listenTCP). Each accepted connection gets a protocol from
 * factory's build_protocol (which may refuse it). Calls the factory's start_factory if it is its
 * first user.
 *  @param port       the port; 0 lets the kernel pick a free one (read it with
 * zt_tcp_port_get_host)
 *  @param factory    required; borrowed, must outlive the port
 *  @param backlog    the listen queue length; <= 0 means 50 (Twisted's default)
 *  @param interface  a numeric address to bind: "127.0.0.1", "::1", "::" ... NULL or "" means
 * every IPv4 interface ("0.0.0.0"). An IPv6 port accepts IPv6 only.
 *  @param port_p     receives the port, which the caller owns (zt_tcp_port_destroy)
 *  @return 0; ZT_EINVAL (an argument is missing or interface is not a numeric address);
 * ZT_EADDRINUSE; ZT_EACCES (a privileged port); ZT_ENOMEM; ZT_ESYS (logged). On failure *port_p
 * is left alone and the factory is not started.
 */
ZT_EXPORT int zt_listen_tcp(zt_reactor_t *reactor, uint16_t port, zt_factory_t *factory,
                            int backlog, const char *interface, zt_tcp_port_t **port_p);

/**
 *  The address the port listens on, with the real port number when 0 was asked for.
 *  @return 0, or ZT_ESTATE when it has stopped listening
 */
ZT_EXPORT int zt_tcp_port_get_host(const zt_tcp_port_t *self, zt_address_t *addr);

/**
 *  Stop listening (Twisted's stopListening): close the socket, so that new connections are
 * refused, and call the factory's stop_factory if the port was its last user. Connections already
 * accepted go on (see zt_tcp_port_lose_connections). The socket is closed before this returns.
 *  @return a Deferred the caller owns (one reference), fired with no value (zt_ok_none) when the
 * port has stopped -- already fired when it is returned, kept for Twisted's shape; a second stop
 * gets a Deferred fired the same way. NULL when out of memory (the port has stopped anyway).
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_tcp_port_stop_listening(zt_tcp_port_t *self);

/** How many connections accepted by this port are open now. */
ZT_EXPORT size_t zt_tcp_port_connection_count(const zt_tcp_port_t *self);

/**
 *  Close every open connection this port accepted: zt_transport_lose_connection on each, or
 * zt_transport_abort_connection when abort is true. For servers shutting down. Their protocols'
 * connection_lost runs on later passes, as for each call alone.
 */
ZT_EXPORT void zt_tcp_port_lose_connections(zt_tcp_port_t *self, bool abort);

/**
 *  Destroy a port and NULL the pointer; stops listening first if it still is. Connections it
 * accepted go on and are no longer counted by any port.
 *  @param self_p  NULL or a NULL port does nothing
 */
ZT_EXPORT void zt_tcp_port_destroy(zt_tcp_port_t **self_p);

/* ------------------------------------------------------------------------------------------- */
/* Connecting */

/**
 *  Connect to host:port (Twisted's connectTCP, with an endpoint's Deferred). The attempt runs on
 * the reactor: factory's start_factory runs now if it is its first user; when connected, factory's
 * build_protocol(peer address) gives the protocol, its connection_made runs, and then the returned
 * Deferred fires with the protocol (a borrowed zt_protocol_t *, valid until its connection_lost
 * returns: read it with zt_result_ptr). When the attempt fails (refused, unreachable, timeout, the
 * factory refused, a host that is not a numeric address) the Deferred fails --
 * ZT_CONNECTION_REFUSED, ZT_CONNECT_ERROR or ZT_TIMEOUT_ERROR -- and factory's
 * client_connection_failed is called, always on a later pass, never inside this call. When the
 * connection ends, after connection_lost, client_connection_lost is called. Cancelling the Deferred
 * before it fires abandons the attempt (it fails with ZT_CANCELLED_ERROR, and
 * client_connection_failed is told).
 *  @param host     a numeric IPv4 or IPv6 address (zt_resolve_host turns a name into one); required
 *  @param factory  required; borrowed, must outlive the attempt and the connection
 *  @param timeout  seconds to wait for the connection; <= 0 means 30 (Twisted's default)
 *  @return a Deferred the caller owns (one reference), or NULL when out of memory or an argument
 * is missing (nothing is started then)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_connect_tcp(zt_reactor_t *reactor, const char *host,
                                                     uint16_t port, zt_factory_t *factory,
                                                     double timeout);

/* ------------------------------------------------------------------------------------------- */
/* The transport */

/**
 *  Queue bytes to send (copied). Writes after zt_transport_lose_connection, or on a closed
 * connection, are refused.
 *  @return 0 (len 0 does nothing); ZT_ESTATE when the connection is closing or closed; ZT_ENOMEM
 */
ZT_EXPORT int zt_transport_write(zt_transport_t *self, const void *data, size_t len);

/**
 *  Queue several pieces at once, in order (Twisted's writeSequence).
 *  @return as zt_transport_write; nothing is queued on failure
 */
ZT_EXPORT int zt_transport_write_sequence(zt_transport_t *self, const zt_iovec_t *iov,
                                          size_t count);

/**
 *  Close the connection once everything written has been sent (Twisted's loseConnection). Stops
 * reading now; the protocol's connection_lost runs later with ZT_CONNECTION_DONE (or
 * ZT_CONNECTION_LOST when the send fails), never inside this call.
 *  @return 0; ZT_ESTATE when it is closing or closed already
 */
ZT_EXPORT int zt_transport_lose_connection(zt_transport_t *self);

/**
 *  Close the connection now, dropping unsent bytes (Twisted's abortConnection). connection_lost
 * runs on the next pass with ZT_CONNECTION_ABORTED.
 *  @return 0; ZT_ESTATE when it is closed already, aborting, or still connecting (cancel the
 * Deferred of zt_connect_tcp instead)
 */
ZT_EXPORT int zt_transport_abort_connection(zt_transport_t *self);

/**
 *  Twisted's loseWriteConnection: refuse further writes and, once the buffered bytes are sent,
 * shut the sending side down (the peer reads end of stream) while data may still arrive. Then
 * the protocol's write_connection_lost runs; if the peer had closed its side too (a half-close
 * aware protocol, see read_connection_lost), the connection ends with ZT_CONNECTION_DONE.
 *  @return 0; ZT_ESTATE (not connected, or called already)
 */
ZT_EXPORT int zt_transport_lose_write_connection(zt_transport_t *self);

/** The peer's address. @return 0, or ZT_ESTATE before the connection is made */
ZT_EXPORT int zt_transport_get_peer(const zt_transport_t *self, zt_address_t *addr);

/**
 *  This end's address. A connection accepted by a port bound to one address has the port's; a
 * client's, or one accepted on a wildcard address (0.0.0.0, ::), is asked of the kernel
 * (getsockname) on the first call and kept, so that a connection nobody asks costs no call.
 *  @return 0; ZT_ESTATE before the connection is made, or when it is closed and its address was
 * one to ask for and was never asked while it was open
 */
ZT_EXPORT int zt_transport_get_host(const zt_transport_t *self, zt_address_t *addr);

/** Stop reading from the connection until zt_transport_resume_producing (the transport as a
 * producer). Pauses do not nest. */
ZT_EXPORT void zt_transport_pause_producing(zt_transport_t *self);

/** Read again after zt_transport_pause_producing. */
ZT_EXPORT void zt_transport_resume_producing(zt_transport_t *self);

/**
 *  Register a producer to be paused and resumed by this transport's buffer (Twisted's
 * registerProducer). A pull producer (streaming false) is asked to produce once now.
 *  @param vtable  required; borrowed
 *  @param arg     passed to the callbacks; borrowed
 *  @return 0; ZT_EINVAL; ZT_EALREADY when a producer is registered; ZT_ESTATE when closed
 */
ZT_EXPORT int zt_transport_register_producer(zt_transport_t *self,
                                             const zt_producer_vtable_t *vtable, void *arg,
                                             bool streaming);

/** Forget the producer (Twisted's unregisterProducer); nothing is called. */
ZT_EXPORT void zt_transport_unregister_producer(zt_transport_t *self);

/** The producer vtable of a transport (arg: the zt_transport_t *): registering a transport as its
 * own producer makes it stop reading while its peer does not read what it writes. */
ZT_EXPORT const zt_producer_vtable_t *zt_transport_producer_vtable(void);

/**
 *  Set the buffer's high- and low-water marks.
 *  @return 0, or ZT_EINVAL when low > high
 */
ZT_EXPORT int zt_transport_set_buffer_limits(zt_transport_t *self, size_t high, size_t low);

/** Bytes written and not yet handed to the kernel. */
ZT_EXPORT size_t zt_transport_buffered(const zt_transport_t *self);

/**
 *  Turn Nagle's algorithm off (true) or on (Twisted's setTcpNoDelay). Off suits request-response
 * protocols; ztwist leaves it on by default, as Twisted does.
 *  @return 0; ZT_ESTATE when closed; ZT_ESYS
 */
ZT_EXPORT int zt_transport_set_tcp_no_delay(zt_transport_t *self, bool no_delay);

/** Whether the connection is open and accepts writes (made, not closing, not closed). */
ZT_EXPORT bool zt_transport_is_connected(const zt_transport_t *self);

/** The protocol (borrowed), or NULL once connection_lost has run. */
ZT_EXPORT zt_protocol_t *zt_transport_protocol(const zt_transport_t *self);

/** The reactor the transport runs on (borrowed). */
ZT_EXPORT zt_reactor_t *zt_transport_reactor(const zt_transport_t *self);

/** Take one more reference, to use the transport after connection_lost. @return self */
ZT_EXPORT ZT_NODISCARD zt_transport_t *zt_transport_ref(zt_transport_t *self);

/**
 *  Drop a reference taken with zt_transport_ref and NULL the pointer.
 *  @param self_p  NULL or a NULL transport does nothing
 */
ZT_EXPORT void zt_transport_unref(zt_transport_t **self_p);

#endif
