/*  ztwist/resolve.h - host names to addresses without blocking the reactor (reactor.resolve)
 *
 *  A name becomes a zt_address_t on the reactor's thread pool; connect to it with zt_connect_tcp
 * (<ztwist/tcp.h>, which includes this header).
 *
 *  Threads: every function here is for the reactor thread only.  */
#ifndef ZTWIST_RESOLVE_H
#define ZTWIST_RESOLVE_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/protocol.h>
#include <ztwist/reactor.h>

/**
 *  Resolve a host name to an address without blocking the reactor (Twisted's reactor.resolve):
 * getaddrinfo runs on the reactor's thread pool and the Deferred fires on the reactor thread with
 * a zt_address_t * (port 0; read it with zt_result_ptr; the result owns it), the first IPv4 or IPv6
 * address of the name; connect to its host with zt_connect_tcp. It fails with ZT_ENOTFOUND (no such
 * name, or no address of that family; the message has the resolver's reason) or ZT_EINVAL (an
 * empty or over-long name, a bad family). Cancelling it fails it at once; the lookup itself runs
 * to its end on its worker and its answer is dropped.
 *  @param family  0 for either family, ZT_AF_INET or ZT_AF_INET6
 *  @return a Deferred the caller owns; NULL only when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_resolve_host(zt_reactor_t *reactor, const char *name,
                                                      int family);

#endif
