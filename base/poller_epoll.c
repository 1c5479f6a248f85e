/*  base/poller_epoll.c - zt__poller on Linux's epoll (see poller.h)
 *
 *  Design notes
 *  - Level-triggered: an fd still ready after its callback is reported by the next wait (poller.h).
 *  - zt__poller_set maps to one epoll_ctl call, ADD, MOD or DEL from what the caller says it set
 *    before. An fd closed without being removed has left epoll already (its last reference went),
 *    so a DEL that finds nothing is success, and a MOD that finds nothing becomes an ADD.
 *  - epoll refuses regular files and directories (EPERM), which poll(2) reports always ready. Those
 *    few fds are kept in a small list of their own and reported by every wait, which then does not
 *    sleep, so a program that watched a file with poll(2) behaves the same here.
 *  - Small sets wait in poll(2). A thread woken from epoll_wait costs a little more than one woken
 *    from poll(2) (the wake-up goes through epoll's ready list, and the fd is polled again before
 *    it is reported), which shows in a round trip between two threads. So the set is also kept as
 *    a pollset (pollset.h, O(1) a change), and while it holds at most ZT__POLLER_SMALL fds a wait
 * is one poll(2) over them; above that, epoll_wait. The epoll set is kept current all along, so the
 * switch is only a choice of call.  */
#include "base/poller.h"
#include "base/base.h"
#include "pollset.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define ZT__POLLER_SMALL 8 /* fds up to which a wait is one poll(2) */

/* An fd epoll will not take, and what it was asked for. */
typedef struct s_always {
    int fd;          /* the fd */
    unsigned events; /* ZT__POLLER_IN / OUT */
} s_always_t;

struct zt__poller {
    int epfd;                /* Owned: the epoll instance */
    s_always_t *always;      /* Owned: fds epoll refused, reported ready by every wait */
    size_t nalways;          /* entries in always */
    struct epoll_event *buf; /* Owned: the kernel's output for a wait */
    int capbuf;              /* entries in buf */
    zt__pollset_t small;     /* the same set as a poll(2) array, for the waits of a small set */
    bool small_broken;       /* small could not follow a change (memory): epoll only from then on */
};

zt__poller_t *
zt__poller_new(void)
{
    zt__poller_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        ZT_LOG_ERROR("epoll_create1 failed: %s", strerror(errno));
        free(self);
        return NULL;
    }
    return self;
}

void
zt__poller_destroy(zt__poller_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt__poller_t *self = *self_p;
    close(self->epfd);
    zt__pollset_fini(&self->small);
    free(self->always);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

const char *
zt__poller_backend(void)
{
    return "epoll";
}

static uint32_t
s_epoll_events(unsigned events)
{
    return (events & ZT__POLLER_IN ? EPOLLIN : 0u) | (events & ZT__POLLER_OUT ? EPOLLOUT : 0u);
}

static int
s_always_find(const zt__poller_t *self, int fd)
{
    for (size_t i = 0; i < self->nalways; i++)
        if (self->always[i].fd == fd)
            return (int)i;
    return -1;
}

/* fd is one epoll refused: keep it in the always-ready list, or update or drop its entry. */
static int
s_always_set(zt__poller_t *self, int fd, unsigned events)
{
    int i = s_always_find(self, fd);
    if (i >= 0 && events == 0) {
        self->always[i] = self->always[--self->nalways];
        return 0;
    }
    if (i >= 0) {
        self->always[i].events = events;
        return 0;
    }
    s_always_t *grown = realloc(self->always, (self->nalways + 1) * sizeof *grown);
    if (!grown)
        return ZT_ENOMEM;
    self->always = grown;
    self->always[self->nalways++] = (s_always_t){.fd = fd, .events = events};
    return 0;
}

static int
s_ctl_error(int err, int fd)
{
    if (err == ENOMEM || err == ENOSPC) {
        ZT_LOG_ERROR("cannot watch fd %d: %s", fd, strerror(err));
        return ZT_ENOMEM;
    }
    return ZT_EINVAL; /* EBADF: not open; EINVAL, ELOOP: not something epoll can watch */
}

/* Change fd's entry in the epoll set (or the always-ready list). */
static int
s_epoll_set(zt__poller_t *self, int fd, unsigned was, unsigned events)
{
    if (was != 0 && self->nalways > 0 && s_always_find(self, fd) >= 0)
        return s_always_set(self, fd, events);
    struct epoll_event ev = {.events = s_epoll_events(events), .data.fd = fd};
    if (events == 0) {
        if (was != 0 && epoll_ctl(self->epfd, EPOLL_CTL_DEL, fd, &ev) != 0 && errno != ENOENT &&
            errno != EBADF)
            return s_ctl_error(errno, fd);
        return 0;
    }
    int op = was != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(self->epfd, op, fd, &ev) == 0)
        return 0;
    if (op == EPOLL_CTL_MOD && errno == ENOENT)
        op = EPOLL_CTL_ADD; /* closed and reopened under the same number meanwhile */
    else if (op == EPOLL_CTL_ADD && errno == EEXIST)
        op = EPOLL_CTL_MOD;
    else if (errno == EPERM)
        return s_always_set(self, fd, events);
    else
        return s_ctl_error(errno, fd);
    if (epoll_ctl(self->epfd, op, fd, &ev) == 0)
        return 0;
    return s_ctl_error(errno, fd);
}

int
zt__poller_set(zt__poller_t *self, int fd, unsigned was, unsigned events)
{
    ZT_ASSERT(self && fd >= 0);
    int rc = s_epoll_set(self, fd, was, events);
    if (rc == 0 && !self->small_broken && zt__pollset_set(&self->small, fd, events) != 0)
        self->small_broken = true;
    return rc;
}

static unsigned
s_events(uint32_t e)
{
    return (e & EPOLLIN ? (unsigned)ZT__POLLER_IN : 0u) |
           (e & EPOLLOUT ? (unsigned)ZT__POLLER_OUT : 0u) |
           (e & (EPOLLERR | EPOLLHUP) ? (unsigned)ZT__POLLER_ERR : 0u);
}

int
zt__poller_wait(zt__poller_t *self, zt__poller_event_t *events, int max, long timeout_ms)
{
    ZT_ASSERT(self && events && max > 0);
    if (!self->small_broken && self->small.n <= ZT__POLLER_SMALL)
        return zt__pollset_wait(&self->small, events, max, timeout_ms);
    int n = 0;
    for (size_t i = 0; i < self->nalways && n < max; i++)
        events[n++] =
            (zt__poller_event_t){.fd = self->always[i].fd, .events = self->always[i].events};
    if (n == max)
        return n;
    if (self->capbuf < max - n) {
        struct epoll_event *buf = realloc(self->buf, (size_t)max * sizeof *buf);
        if (!buf)
            return ZT_ENOMEM;
        self->buf = buf;
        self->capbuf = max;
    }
    int timeout = n > 0 ? 0 : timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms;
    int got = epoll_wait(self->epfd, self->buf, max - n, timeout < 0 ? -1 : timeout);
    if (got < 0) {
        if (errno == EINTR)
            return n > 0 ? n : ZT_ECANCELLED;
        ZT_LOG_ERROR("epoll_wait failed: %s", strerror(errno));
        return ZT_ESYS;
    }
    for (int i = 0; i < got; i++)
        events[n++] = (zt__poller_event_t){.fd = self->buf[i].data.fd,
                                           .events = s_events(self->buf[i].events)};
    return n;
}
