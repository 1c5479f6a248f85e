/*  base/include/base/poller.h - the kernel's set of watched fds, kept between waits
 *
 *  A loop that sleeps on many fds should tell the kernel what it watches when that changes, not
 * hand it the whole list on every wait: then a wait costs what is ready, not what is registered.
 * zt__poller keeps that set. Two backends, chosen when the library is built (base/CMakeLists.txt,
 * ZT_POLLER): epoll on Linux (poller_epoll.c), level-triggered, and poll(2) everywhere else
 * (poller_poll.c), which keeps the same set in an array and polls all of it on each wait.
 *
 *  Level-triggered on purpose: an fd whose callback read only part of what was there is reported
 * again by the next wait, as poll(2) would, so a reader need not drain its fd.
 *
 *  Threads: one thread owns a poller (the loop's).  */
#ifndef ZTWIST_BASE_POLLER_H
#define ZTWIST_BASE_POLLER_H

#include <stdbool.h>

/* What a watched fd is ready for. ERR covers hang-up and errors: it is reported whatever was asked,
 * and the owner should tell both its reader and its writer, whose read or write finds out more. */
enum {
    ZT__POLLER_IN = 1,  /* readable */
    ZT__POLLER_OUT = 2, /* writable */
    ZT__POLLER_ERR = 4  /* hang-up or error */
};

/* One ready fd, as a wait reports it. */
typedef struct zt__poller_event {
    int fd;          /* the fd */
    unsigned events; /* ZT__POLLER_* bits, among what was asked for, plus ERR */
} zt__poller_event_t;

typedef struct zt__poller zt__poller_t;

/* A new, empty set; NULL when the kernel or memory refuses (logged). */
zt__poller_t *zt__poller_new(void);

/* Destroy the set (the fds in it are not closed) and NULL the pointer; NULL does nothing. */
void zt__poller_destroy(zt__poller_t **self_p);

/* Watch fd for events (IN and/or OUT) instead of was, what the caller last set for it (0 when fd is
 * not in the set); events 0 takes fd out. Remove an fd before closing it. Returns 0, ZT_EINVAL
 * (fd is not open, or cannot be watched), ZT_ENOMEM (memory, or the kernel's limit on watches).
 * An fd the kernel cannot wait on (a regular file, for epoll) is always ready, as poll(2) says. */
int zt__poller_set(zt__poller_t *self, int fd, unsigned was, unsigned events);

/* Wait up to timeout_ms (-1: no bound; 0: do not sleep) until a watched fd is ready; fill up to max
 * events. Returns how many (0 on timeout); ZT_ECANCELLED when a signal cut the wait short; ZT_ESYS
 * (logged); ZT_ENOMEM. Fds still ready after max are reported by the next wait. */
int zt__poller_wait(zt__poller_t *self, zt__poller_event_t *events, int max, long timeout_ms);

/* The backend's name: "epoll" or "poll". */
const char *zt__poller_backend(void);

#endif
