/*  base/poller_poll.c - zt__poller on poll(2), the portable fallback (see poller.h)
 *
 *  Design notes
 *  - The set is a pollfd array kept between waits, with each fd's index in a table indexed by fd,
 *    so a change is O(1) (a removal moves the last entry into the hole). A wait polls the whole
 *    array: it costs what is registered, which is what poll(2) offers.
 *  - POLLIN, POLLOUT map to IN, OUT; anything else the kernel reports (POLLERR, POLLHUP, POLLNVAL,
 *    POLLPRI) to ERR.  */
#include "base/poller.h"
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct zt__poller {
    struct pollfd *set; /* Owned: the watched fds */
    size_t n;           /* entries in use */
    size_t cap;         /* entries allocated */
    int *pos;           /* Owned: pos[fd] is fd's index in set, -1 when not watched */
    size_t cappos;      /* entries in pos */
    size_t next; /* where the next wait starts reporting, after one that filled its events array */
};

zt__poller_t *
zt__poller_new(void)
{
    return calloc(1, sizeof(zt__poller_t));
}

void
zt__poller_destroy(zt__poller_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->set);
    free((*self_p)->pos);
    free(*self_p);
    *self_p = NULL;
}

const char *
zt__poller_backend(void)
{
    return "poll";
}

static short
s_poll_events(unsigned events)
{
    return (short)((events & ZT__POLLER_IN ? POLLIN : 0) | (events & ZT__POLLER_OUT ? POLLOUT : 0));
}

/* Room for fd in pos and for one more entry in set. */
static int
s_reserve(zt__poller_t *self, int fd)
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
zt__poller_set(zt__poller_t *self, int fd, unsigned was, unsigned events)
{
    ZT_ASSERT(self && fd >= 0);
    (void)was;
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
        if (fcntl(fd, F_GETFD) < 0)
            return ZT_EINVAL; /* as epoll says of an fd that is not open */
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
zt__poller_wait(zt__poller_t *self, zt__poller_event_t *events, int max, long timeout_ms)
{
    ZT_ASSERT(self && events && max > 0);
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
