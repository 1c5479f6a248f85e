/*  base/pollset.h - a set of watched fds kept as a poll(2) array (base/poller.h's building block)
 *
 *  The pollfd array stays between waits, with each fd's index in a table indexed by fd, so a change
 * is O(1) (a removal moves the last entry into the hole). A wait polls the whole array. The poll(2)
 * backend is this set; the epoll backend keeps one beside its epoll set and waits on it while the
 * set is small, where poll(2) wakes a little faster than epoll_wait.
 *
 *  Threads: one thread owns a set.  */
#ifndef ZTWIST_BASE_POLLSET_H
#define ZTWIST_BASE_POLLSET_H

#include "base/poller.h"

#include <poll.h>
#include <stddef.h>

/* An embedded set; zero-initialised is empty. */
typedef struct zt__pollset {
    struct pollfd *set; /* Owned: the watched fds */
    size_t n;           /* entries in use */
    size_t cap;         /* entries allocated */
    int *pos;           /* Owned: pos[fd] is fd's index in set, -1 when not watched */
    size_t cappos;      /* entries in pos */
    size_t next; /* where the next wait starts reporting, after one that filled its events array */
} zt__pollset_t;

/* Free the set's memory (the fds are not closed). */
void zt__pollset_fini(zt__pollset_t *self);

/* As zt__poller_set, without the check that fd is open. Returns 0 or ZT_ENOMEM. */
int zt__pollset_set(zt__pollset_t *self, int fd, unsigned events);

/* As zt__poller_wait. */
int zt__pollset_wait(zt__pollset_t *self, zt__poller_event_t *events, int max, long timeout_ms);

#endif
