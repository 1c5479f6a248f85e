/*  bridges/tcp/resolve.c - host names to addresses without blocking the reactor (reactor.resolve)
 *
 *  Design notes
 *  - getaddrinfo blocks (a DNS query can take seconds), so it runs on the reactor's thread pool
 *    (zt_defer_to_thread) and the answer comes back as a Deferred, as Twisted's reactor.resolve
 *    does with its threaded resolver.
 *  - One allocation per lookup, shared by the worker (it writes the answer) and the reactor
 *    thread (it fires the caller's Deferred). The pool's Deferred always fires, so the reactor
 *    side frees it there. The caller's Deferred is a separate one without a canceller:
 *    cancelling it fails it at once with ZT_CANCELLED_ERROR, while the lookup on the worker runs
 *    to its end (getaddrinfo cannot be interrupted) and its answer is dropped. */
#include <ztwist/resolve.h>
#include <ztwist/threads.h>

#include "base/base.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct s_lookup {
    char name[256];        /* the host name */
    int family;            /* 0 (either), ZT_AF_INET or ZT_AF_INET6 */
    zt_address_t answer;   /* written by the worker */
    zt_deferred_t *caller; /* the caller's Deferred; one reference */
} s_lookup_t;

/* On a worker: the first IPv4 or IPv6 address of the name. */
static zt_result_t
s_lookup(void *arg)
{
    s_lookup_t *l = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    hints.ai_family = l->family == ZT_AF_INET    ? AF_INET
                      : l->family == ZT_AF_INET6 ? AF_INET6
                                                 : AF_UNSPEC;
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(l->name, NULL, &hints, &list);
    if (rc != 0)
        return zt_err(zt_failure_from_code(ZT_ENOTFOUND, "cannot resolve '%s': %s", l->name,
                                           gai_strerror(rc)));
    bool found = false;
    for (const struct addrinfo *a = list; a && !found; a = a->ai_next) {
        const void *raw = NULL;
        if (a->ai_family == AF_INET) {
            raw = &((const struct sockaddr_in *)(const void *)a->ai_addr)->sin_addr;
            l->answer.family = ZT_AF_INET;
        } else if (a->ai_family == AF_INET6) {
            raw = &((const struct sockaddr_in6 *)(const void *)a->ai_addr)->sin6_addr;
            l->answer.family = ZT_AF_INET6;
        }
        found = raw && inet_ntop(a->ai_family, raw, l->answer.host, sizeof l->answer.host);
    }
    freeaddrinfo(list);
    if (!found)
        return zt_err(
            zt_failure_from_code(ZT_ENOTFOUND, "'%s' has no IPv4 or IPv6 address", l->name));
    return zt_ok_none();
}

/* On the reactor thread, whatever happened: answer the caller unless it gave up, then free. */
static zt_result_t
s_done(zt_result_t result, void *arg)
{
    s_lookup_t *l = arg;
    if (zt_deferred_is_called(l->caller)) {
        zt_result_release(&result); /* cancelled meanwhile */
    } else if (zt_is_err(result)) {
        (void)zt_deferred_callback(l->caller, result);
    } else {
        zt_result_release(&result);
        zt_address_t *answer = malloc(sizeof *answer);
        if (answer) {
            *answer = l->answer;
            (void)zt_deferred_callback(l->caller, zt_ok(answer, free));
        } else {
            (void)zt_deferred_errback(l->caller, zt_failure_from_code(ZT_ENOMEM, "resolve"));
        }
    }
    zt_deferred_unref(&l->caller);
    free(l);
    return zt_ok_none();
}

zt_deferred_t *
zt_resolve_host(zt_reactor_t *reactor, const char *name, int family)
{
    ZT_ASSERT(reactor);
    if (!name || !*name || strlen(name) >= sizeof((s_lookup_t *)0)->name ||
        (family != 0 && family != ZT_AF_INET && family != ZT_AF_INET6))
        return zt_deferred_fail(zt_failure_from_code(ZT_EINVAL, "resolve: bad name or family"));
    s_lookup_t *l = calloc(1, sizeof *l);
    zt_deferred_t *caller = zt_deferred_new();
    if (!l || !caller) {
        free(l);
        zt_deferred_unref(&caller);
        return NULL;
    }
    snprintf(l->name, sizeof l->name, "%s", name);
    l->family = family;
    l->answer.port = 0;
    l->caller = zt_deferred_ref(caller);
    zt_deferred_t *work = zt_defer_to_thread(reactor, s_lookup, l);
    if (!work) {
        zt_deferred_unref(&l->caller);
        free(l);
        zt_deferred_unref(&caller);
        return NULL;
    }
    (void)zt_deferred_add_both(work, s_done, l);
    zt_deferred_unref(&work);
    return caller;
}
