/*  base/zpoll.c - zmq_poll's contract with fewer system calls (see zpoll.h for why)
 *
 *  Design notes
 *  - A ZeroMQ socket's ZMQ_FD is readable when commands wait in its mailbox; ZMQ_EVENTS processes
 *    them and says what the socket can do. So: ask every socket that wants something once, before
 *    the wait; put every ZMQ_FD and plain fd in one poll(); after the wait, ask again only the
 *    sockets whose ZMQ_FD fired. A socket already ready makes the poll a zero-timeout one, so
 *    plain fds are still reported on the same call.
 *  - A wake-up that brings nothing asked for (a command that only changed something else) loops
 *    back into poll() with what is left of the timeout; the clock is read only then.
 *  - Plain fds map as zmq_poll maps them: POLLIN, POLLOUT, POLLPRI to their ZMQ_ bits, anything
 *    else the kernel reports (POLLERR, POLLHUP, POLLNVAL) to ZMQ_POLLERR.  */
#include "base/zpoll.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What socket item it can do now, among what it asked for; -1 when libzmq refuses (errno set). */
static int
s_ask(zmq_pollitem_t *it)
{
    int events = 0;
    size_t size = sizeof events;
    if (zmq_getsockopt(it->socket, ZMQ_EVENTS, &events, &size) != 0)
        return -1;
    it->revents = (short)(events & it->events & (ZMQ_POLLIN | ZMQ_POLLOUT));
    return 0;
}

static short
s_fd_events(short zmq_events)
{
    short events = 0;
    if (zmq_events & ZMQ_POLLIN)
        events |= POLLIN;
    if (zmq_events & ZMQ_POLLOUT)
        events |= POLLOUT;
    if (zmq_events & ZMQ_POLLPRI)
        events |= POLLPRI;
    return events;
}

static short
s_fd_revents(short revents)
{
    short out = 0;
    if (revents & POLLIN)
        out |= ZMQ_POLLIN;
    if (revents & POLLOUT)
        out |= ZMQ_POLLOUT;
    if (revents & POLLPRI)
        out |= ZMQ_POLLPRI;
    if (revents & ~(POLLIN | POLLOUT | POLLPRI))
        out |= ZMQ_POLLERR;
    return out;
}

int
zt__zpoll(zmq_pollitem_t *items, int n, long timeout_ms, struct pollfd *scratch)
{
    bool any_ready = false;
    for (int i = 0; i < n; i++) {
        zmq_pollitem_t *it = &items[i];
        it->revents = 0;
        if (!it->socket) {
            scratch[i] = (struct pollfd){.fd = it->fd, .events = s_fd_events(it->events)};
            continue;
        }
        scratch[i] = (struct pollfd){.fd = -1};
        if (!(it->events & (ZMQ_POLLIN | ZMQ_POLLOUT)))
            continue; /* asks for nothing a socket can report */
        int fd = -1;
        size_t size = sizeof fd;
        if (zmq_getsockopt(it->socket, ZMQ_FD, &fd, &size) != 0)
            return -1;
        if (!(it->events & ZT__ZPOLL_QUIET) && s_ask(it) != 0)
            return -1;
        scratch[i] = (struct pollfd){.fd = fd, .events = POLLIN};
        any_ready = any_ready || it->revents != 0;
    }
    int64_t deadline = timeout_ms > 0 ? s_now_ms() + timeout_ms : 0;
    long wait = any_ready ? 0 : timeout_ms;
    for (;;) {
        if (poll(scratch, (nfds_t)n, (int)(wait > INT32_MAX ? INT32_MAX : wait)) < 0)
            return -1;
        int count = 0;
        for (int i = 0; i < n; i++) {
            zmq_pollitem_t *it = &items[i];
            if (!it->socket)
                it->revents = s_fd_revents(scratch[i].revents);
            else if (scratch[i].revents && !it->revents && s_ask(it) != 0)
                return -1;
            count += it->revents != 0;
        }
        if (count > 0 || wait == 0)
            return count;
        if (timeout_ms > 0) {
            wait = (long)(deadline - s_now_ms());
            if (wait <= 0)
                return 0;
        }
    }
}
