/*  ztwist/protocol.h - Protocol and Factory: the code that reacts to a connection's events
 *
 *  As in Twisted, a transport (a TCP connection, <ztwist/tcp.h>) moves bytes and a protocol
 * interprets them. A protocol is a vtable of event callbacks plus the user's data (`arg`):
 *
 *      connection_made(p, arg)               the transport is ready: zt_protocol_transport(p)
 *      data_received(p, data, len, arg)      bytes arrived (any split: a line may come in pieces)
 *      connection_lost(p, reason, arg)       the connection is over; reason says why
 *
 *  connection_lost's reason is a Failure of type ZT_CONNECTION_DONE when the connection was closed
 * cleanly (the peer closed it, or zt_transport_lose_connection finished), or ZT_CONNECTION_LOST
 * (or its refinement ZT_CONNECTION_ABORTED) when it was cut: a reset, an error, an abort. Both
 * refine ZT_CONNECTION_CLOSED, as Twisted's ConnectionDone and ConnectionLost refine
 * ConnectionClosed.
 *
 *  A factory makes one protocol per connection (build_protocol, which may refuse by returning
 * NULL), and is told when the first listening port or connector starts using it (start_factory)
 * and when the last one stops (stop_factory). A client factory is also told when a connection
 * attempt fails (client_connection_failed) and when a client connection ends
 * (client_connection_lost).
 *
 *  Ownership: a protocol handed to a transport (returned by build_protocol) belongs to the
 * transport, which destroys it after connection_lost has returned (calling the free_fn given to
 * zt_protocol_new on arg). A factory belongs to the caller and must outlive every listening port
 * and every client connection (attempt) that uses it (zt_factory_destroy asserts that none does);
 * server-side connections do not use their factory after build_protocol.
 *
 *  Threads: every function here is for the reactor thread only.  */
#ifndef ZTWIST_PROTOCOL_H
#define ZTWIST_PROTOCOL_H

#include <ztwist/common.h>
#include <ztwist/failure.h>

typedef struct zt_protocol zt_protocol_t;
typedef struct zt_factory zt_factory_t;
typedef struct zt_transport zt_transport_t;

/* The failure types of a connection's end (Twisted's twisted.internet.error). */
ZT_EXPORT extern const zt_failure_type_t zt__connection_closed_type;
ZT_EXPORT extern const zt_failure_type_t zt__connection_done_type;
ZT_EXPORT extern const zt_failure_type_t zt__connection_lost_type;
ZT_EXPORT extern const zt_failure_type_t zt__connection_aborted_type;
ZT_EXPORT extern const zt_failure_type_t zt__connect_error_type;
ZT_EXPORT extern const zt_failure_type_t zt__connection_refused_type;
/** A connection ended, cleanly or not ("ConnectionClosed", ZT_ECONNLOST): the parent of the two
 * below. */
#define ZT_CONNECTION_CLOSED (&zt__connection_closed_type)
/** The connection was closed cleanly: the peer closed it or lose_connection finished
 * ("ConnectionDone"; its code is ZT_ECONNLOST, inherited: test the type, not the code). */
#define ZT_CONNECTION_DONE (&zt__connection_done_type)
/** The connection was lost in a non-clean fashion: reset, error ("ConnectionLost", ZT_ECONNLOST).
 */
#define ZT_CONNECTION_LOST (&zt__connection_lost_type)
/** The connection was aborted by zt_transport_abort_connection ("ConnectionAborted", refines
 * ZT_CONNECTION_LOST). */
#define ZT_CONNECTION_ABORTED (&zt__connection_aborted_type)
/** A connection attempt failed ("ConnectError", ZT_EUNREACHABLE); zt_failure_code may be more
 * precise. A connect timeout is a ZT_TIMEOUT_ERROR instead. */
#define ZT_CONNECT_ERROR (&zt__connect_error_type)
/** The peer refused the connection ("ConnectionRefusedError", refines ZT_CONNECT_ERROR,
 * ZT_ECONNREFUSED). */
#define ZT_CONNECTION_REFUSED (&zt__connection_refused_type)

/** An address family. */
typedef enum zt_address_family {
    ZT_AF_UNIX = 1, /* a Unix domain socket (<ztwist/unix.h>): host is the path's start, port 0 */
    ZT_AF_INET = 4, /* IPv4 */
    ZT_AF_INET6 = 6 /* IPv6 */
} zt_address_family_t;

/** The address of one end of a TCP connection or of a listening port (Twisted's IPv4Address and
 * IPv6Address). A public value type. */
typedef struct zt_address {
    zt_address_family_t family; /* ZT_AF_INET or ZT_AF_INET6 */
    char host[46];              /* the numeric address, e.g. "127.0.0.1" or "::1" */
    uint16_t port;              /* the port, in host byte order */
} zt_address_t;

/* ------------------------------------------------------------------------------------------- */
/* Protocol */

/** A protocol's event callbacks. Any of them may be NULL (nothing happens). The vtable is borrowed
 * and must outlive the protocol: make it a static const. */
typedef struct zt_protocol_vtable {
    /** The connection is made; zt_protocol_transport(self) is the transport from now on. */
    void (*connection_made)(zt_protocol_t *self, void *arg);
    /** Bytes arrived. data is borrowed for the call. */
    void (*data_received)(zt_protocol_t *self, const char *data, size_t len, void *arg);
    /** The connection is over (reason borrowed for the call). The protocol is destroyed after
     * this returns; the transport no longer accepts writes. */
    void (*connection_lost)(zt_protocol_t *self, const zt_failure_t *reason, void *arg);
    /** Optional, Twisted's IHalfCloseableProtocol.readConnectionLost: the peer closed its
     * sending side (end of stream) and nothing more will arrive, but this side may still write.
     * A protocol without it has the connection closed at end of stream (ZT_CONNECTION_DONE).
     * Once both sides are closed, connection_lost follows with ZT_CONNECTION_DONE. */
    void (*read_connection_lost)(zt_protocol_t *self, void *arg);
    /** Optional, writeConnectionLost: zt_transport_lose_write_connection has sent everything
     * and shut this side's sending down; data may still arrive. */
    void (*write_connection_lost)(zt_protocol_t *self, void *arg);
} zt_protocol_vtable_t;

/**
 *  Create a protocol.
 *  @param vtable   its callbacks; required; borrowed, must outlive the protocol
 *  @param arg      the user's data, passed to every callback
 *  @param free_fn  called once on arg when the protocol is destroyed; NULL for none
 *  @return a new protocol the caller owns (until a transport takes it), or NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_protocol_t *zt_protocol_new(const zt_protocol_vtable_t *vtable, void *arg,
                                                      zt_free_fn *free_fn);

/**
 *  Destroy a protocol that no transport owns, call its free_fn, and NULL the pointer.
 *  @param self_p  NULL or a NULL protocol does nothing
 */
ZT_EXPORT void zt_protocol_destroy(zt_protocol_t **self_p);

/** The protocol's user data. */
ZT_EXPORT void *zt_protocol_arg(const zt_protocol_t *self);

/** The transport: borrowed, valid from connection_made until connection_lost returns (take a
 * reference with zt_transport_ref to keep it longer); NULL before and after. */
ZT_EXPORT zt_transport_t *zt_protocol_transport(const zt_protocol_t *self);

/**
 *  Twisted's makeConnection: attach a transport and call connection_made. Transports call it;
 * tests may call it with a NULL transport to drive a protocol without a connection (writes from
 * the protocol then fail with ZT_ESTATE).
 *  @return 0, or ZT_ESTATE when the protocol is connected already
 */
ZT_EXPORT int zt_protocol_make_connection(zt_protocol_t *self, zt_transport_t *transport);

/** Deliver bytes to the protocol's data_received (transports call it; tests and fuzzers may). */
ZT_EXPORT void zt_protocol_data_received(zt_protocol_t *self, const char *data, size_t len);

/**
 *  Call connection_lost with reason and detach the transport. Transports call it; a test driving
 * a protocol without a connection may. Only once per connection: a second call does nothing.
 *  @param reason  borrowed; NULL means a ZT_CONNECTION_DONE failure
 */
ZT_EXPORT void zt_protocol_connection_lost(zt_protocol_t *self, const zt_failure_t *reason);

/**
 *  The peer closed its sending side: call read_connection_lost when the protocol has one.
 * Transports call it.
 *  @return true when the protocol handles half-closed connections (the transport then keeps the
 * connection open for writing); false when it does not (the transport closes the connection)
 */
ZT_EXPORT bool zt_protocol_read_connection_lost(zt_protocol_t *self);

/** This side's sending was shut down: call write_connection_lost, if any. Transports call it. */
ZT_EXPORT void zt_protocol_write_connection_lost(zt_protocol_t *self);

/* ------------------------------------------------------------------------------------------- */
/* Factory */

/** A factory's callbacks. build_protocol is required; the others may be NULL. The vtable is
 * borrowed and must outlive the factory. */
typedef struct zt_factory_vtable {
    /** Make the protocol for a new connection from/to addr (the peer's address, borrowed), or
     * return NULL to refuse it: the connection is then closed at once. Ownership of the protocol
     * moves to the transport. */
    zt_protocol_t *(*build_protocol)(zt_factory_t *self, const zt_address_t *addr, void *arg);
    /** The first port or connector started using the factory (Twisted's startFactory). */
    void (*start_factory)(zt_factory_t *self, void *arg);
    /** The last port or connector stopped using it (Twisted's stopFactory). */
    void (*stop_factory)(zt_factory_t *self, void *arg);
    /** A client connection attempt failed; reason borrowed (ClientFactory.clientConnectionFailed).
     */
    void (*client_connection_failed)(zt_factory_t *self, const zt_failure_t *reason, void *arg);
    /** A client connection ended, after its protocol's connection_lost; reason borrowed
     * (ClientFactory.clientConnectionLost). */
    void (*client_connection_lost)(zt_factory_t *self, const zt_failure_t *reason, void *arg);
} zt_factory_vtable_t;

/**
 *  Create a factory.
 *  @param vtable   required, with build_protocol set; borrowed, must outlive the factory
 *  @param arg      passed to every callback; borrowed, never freed by ztwist
 *  @return a new factory the caller owns, or NULL when out of memory or vtable is unusable
 */
ZT_EXPORT ZT_NODISCARD zt_factory_t *zt_factory_new(const zt_factory_vtable_t *vtable, void *arg);

/**
 *  Destroy a factory and NULL the pointer. No port or client connection may still use it (an
 * assertion).
 *  @param self_p  NULL or a NULL factory does nothing
 */
ZT_EXPORT void zt_factory_destroy(zt_factory_t **self_p);

/** The factory's user data. */
ZT_EXPORT void *zt_factory_arg(const zt_factory_t *self);

/** How many ports and client connections use the factory now (the start/stop count). */
ZT_EXPORT size_t zt_factory_users(const zt_factory_t *self);

/**
 *  Twisted's doStart: count one more user, calling start_factory for the first. For transports
 * (and tests).
 */
ZT_EXPORT void zt_factory_do_start(zt_factory_t *self);

/** Twisted's doStop: count one user fewer, calling stop_factory for the last. */
ZT_EXPORT void zt_factory_do_stop(zt_factory_t *self);

/**
 *  Call build_protocol.
 *  @return the new protocol, owned by the caller, or NULL when the factory refused
 */
ZT_EXPORT ZT_NODISCARD zt_protocol_t *zt_factory_build_protocol(zt_factory_t *self,
                                                                const zt_address_t *addr);

/** Call client_connection_failed (if set). */
ZT_EXPORT void zt_factory_client_connection_failed(zt_factory_t *self, const zt_failure_t *reason);

/** Call client_connection_lost (if set). */
ZT_EXPORT void zt_factory_client_connection_lost(zt_factory_t *self, const zt_failure_t *reason);

#endif
