/*  ztwist/unix.h - Unix domain stream sockets: listen and connect with the TCP bridge's protocols
 *
 *  Twisted's listenUNIX and connectUNIX. A Unix connection is a zt_transport_t like a TCP one
 * (<ztwist/tcp.h>): the same protocols and factories run on it unchanged (a LineReceiver, say),
 * with the same Deferred on connect, the same write buffer, half-close and producers. Only the
 * addresses differ: a factory's build_protocol and zt_transport_get_peer / get_host give a
 * zt_address_t of family ZT_AF_UNIX whose host holds the start of the socket's path (at most 45
 * bytes; the full path of a port is zt_unix_port_get_path) and whose port is 0.
 *
 *  Paths. A path names a socket file; a path beginning with '@' names a socket in Linux's
 * abstract namespace (the '@' stands for the leading NUL byte): it has no file, so no mode and
 * nothing to clean up. A path is at most ZT_UNIX_PATH_MAX bytes.
 *
 *  A socket file left behind by a process that died is stale: zt_listen_unix finds that nothing
 * accepts on it, unlinks it and binds; a live one (something accepts) is ZT_EADDRINUSE, and a path
 * that is not a socket is never unlinked. A port unlinks its own socket file when it stops
 * listening, provided the file is still the one it bound.
 *
 *  Threads: every function here is for the reactor thread only.  */
#ifndef ZTWIST_UNIX_H
#define ZTWIST_UNIX_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/protocol.h>
#include <ztwist/reactor.h>
#include <ztwist/tcp.h>

#include <sys/types.h>

typedef struct zt_unix_port zt_unix_port_t;

/** The longest socket path, in bytes, without the terminating NUL (and with the '@' of an
 * abstract name). */
#define ZT_UNIX_PATH_MAX 107

/** The credentials of the process at the other end of a Unix connection (SO_PEERCRED): those it
 * had when it connected (for a client) or started listening (for a server). A public value type. */
typedef struct zt_unix_credentials {
    pid_t pid; /* its process id */
    uid_t uid; /* its effective user id */
    gid_t gid; /* its effective group id */
} zt_unix_credentials_t;

/**
 *  Listen for connections on a Unix domain socket (Twisted's listenUNIX). Each accepted
 * connection gets a protocol from factory's build_protocol, as on a TCP port.
 *  @param path     the socket's path, or '@' and a name in the abstract namespace (Linux); required
 *  @param factory  required; borrowed, must outlive the port
 *  @param backlog  the listen queue length; <= 0 means 50
 *  @param mode     the socket file's permission bits (0666 is Twisted's default), set before the
 * socket accepts anything; 0 leaves what the umask gave; ignored for an abstract name
 *  @param port_p   receives the port, which the caller owns (zt_unix_port_destroy)
 *  @return 0; ZT_EINVAL (an argument is missing, the path is empty or too long); ZT_EADDRINUSE (a
 * live socket, or a file that is not a socket, is at path); ZT_EACCES; ZT_ENOTFOUND (the
 * directory does not exist); ZT_ENOMEM; ZT_ESYS (logged). On failure *port_p is left alone and
 * the factory is not started.
 */
ZT_EXPORT int zt_listen_unix(zt_reactor_t *reactor, const char *path, zt_factory_t *factory,
                             int backlog, unsigned mode, zt_unix_port_t **port_p);

/** The path the port listens on (as given: '@name' for an abstract one); borrowed, valid until
 * the port is destroyed. */
ZT_EXPORT const char *zt_unix_port_get_path(const zt_unix_port_t *self);

/**
 *  Stop listening: close the socket, unlink the socket file if it is still the one bound, and
 * call the factory's stop_factory if the port was its last user. Accepted connections go on.
 *  @return a Deferred the caller owns, already fired with no value; NULL when out of memory (the
 * port has stopped anyway)
 */
ZT_EXPORT zt_deferred_t *zt_unix_port_stop_listening(zt_unix_port_t *self);

/** How many connections accepted by this port are open now. */
ZT_EXPORT size_t zt_unix_port_connection_count(const zt_unix_port_t *self);

/** Close every open connection this port accepted (abort: drop unsent bytes), as
 * zt_tcp_port_lose_connections. */
ZT_EXPORT void zt_unix_port_lose_connections(zt_unix_port_t *self, bool abort);

/**
 *  Destroy a port and NULL the pointer; stops listening first if it still is.
 *  @param self_p  NULL or a NULL port does nothing
 */
ZT_EXPORT void zt_unix_port_destroy(zt_unix_port_t **self_p);

/**
 *  Connect to a Unix domain socket (Twisted's connectUNIX), with the semantics of
 * zt_connect_tcp: the returned Deferred fires with the protocol (borrowed) once connection_made
 * has run, or fails on a later pass with ZT_CONNECTION_REFUSED (nothing listens on the socket),
 * ZT_CONNECT_ERROR (no such file -- its cause's code is ZT_ENOTFOUND --, permission, a path too
 * long, a full listen queue) or ZT_TIMEOUT_ERROR; factory's client_connection_failed is told.
 *  @param path     the socket's path or '@name'; required
 *  @param factory  required; borrowed, must outlive the attempt and the connection
 *  @param timeout  seconds; <= 0 means 30
 *  @return a Deferred the caller owns, or NULL when out of memory or an argument is missing
 */
ZT_EXPORT zt_deferred_t *zt_connect_unix(zt_reactor_t *reactor, const char *path,
                                         zt_factory_t *factory, double timeout);

/**
 *  Read the peer's credentials of a Unix connection (SO_PEERCRED).
 *  @param cred  required; filled in on success
 *  @return 0; ZT_ESTATE when the connection is not made or closed; ZT_EINVAL when the transport
 * is not a Unix socket; ZT_ESYS
 */
ZT_EXPORT int zt_transport_get_peer_credentials(const zt_transport_t *self,
                                                zt_unix_credentials_t *cred);

#endif
