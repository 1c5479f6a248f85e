/*  base/pollset.c - a set of watched fds kept as a poll(2) array (see pollset.h)
 *
 *  POLLIN, POLLOUT map to ZT__POLLER_IN, OUT; anything else the kernel reports (POLLERR, POLLHUP,
 * POLLNVAL, POLLPRI) to ERR.  */
#include "pollset.h"
#include "base/base.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void
zt__pollset_fini(zt__pollset_t *self)
{
    free(self->set);
    free(self->pos);
    *self = (zt__pollset_t){0};
}

static short
s_poll_events(unsigned events)
{
    return (short)((events & ZT__POLLER_IN ? POLLIN : 0) | (events & ZT__POLLER_OUT ? POLLOUT : 0));
}

/* Room for fd in pos and for one more entry in set. */
static int
s_reserve(zt__pollset_t *self, int fd)
{
    if ((size_t)fd >= self->cappos) {
        size_t cap = self->cappos ? self->cappos : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        int *pos = realloc(self->pos, cap * sizeof *pos);
        if (!pos)
            return ZT_ENOMEM;
        for (size_t i = self->cappos; i < cap; i++)
            pos[i] = -1;
        self->pos = pos;
        self->cappos = cap;
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        struct pollfd *set = realloc(self->set, cap * sizeof *set);
        if (!set)
            return ZT_ENOMEM;
        self->set = set;
        self->cap = cap;
    }
    return 0;
}

int
zt__pollset_set(zt__pollset_t *self, int fd, unsigned events)
{
    int i = (size_t)fd < self->cappos ? self->pos[fd] : -1;
    if (events == 0) {
        if (i >= 0) {
            self->set[i] = self->set[--self->n];
            self->pos[self->set[i].fd] = i;
            self->pos[fd] = -1;
        }
        return 0;
    }
    if (i < 0) {
        int rc = s_reserve(self, fd);
        if (rc != 0)
            return rc;
        i = (int)self->n++;
        self->pos[fd] = i;
    }
    self->set[i] = (struct pollfd){.fd = fd, .events = s_poll_events(events)};
    return 0;
}

static unsigned
s_events(short revents)
{
    return (revents & POLLIN ? (unsigned)ZT__POLLER_IN : 0u) |
           (revents & POLLOUT ? (unsigned)ZT__POLLER_OUT : 0u) |
           (revents & ~(POLLIN | POLLOUT) ? (unsigned)ZT__POLLER_ERR : 0u);
}

int
zt__pollset_wait(zt__pollset_t *self, zt__poller_event_t *events, int max, long timeout_ms)
{
    int timeout = timeout_ms < 0 ? -1 : timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms;
    int ready = poll(self->set, (nfds_t)self->n, timeout);
    if (ready < 0) {
        if (errno == EINTR)
            return ZT_ECANCELLED;
        ZT_LOG_ERROR("poll failed: %s", strerror(errno));
        return ZT_ESYS;
    }
    int n = 0;
    size_t start = self->next < self->n ? self->next : 0, last = 0;
    for (size_t k = 0; k < self->n && n < ready && n < max; k++) {
        last = (start + k) % self->n;
        if (self->set[last].revents != 0)
            events[n++] = (zt__poller_event_t){.fd = self->set[last].fd,
                                               .events = s_events(self->set[last].revents)};
    }
    self->next = n == max && n < ready ? last + 1 : 0;
    return n;
}
