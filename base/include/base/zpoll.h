/*  base/include/base/zpoll.h - zmq_poll's contract with fewer system calls
 *
 *  zmq_poll always polls twice (a first pass with a zero timeout, then the real wait) and asks
 * every ZeroMQ socket for ZMQ_EVENTS after each poll. On libzmq 4.3 each ZMQ_EVENTS query of an
 * idle socket is itself two system calls (a zero-timeout poll of the socket's mailbox and a
 * getpid), so a loop over three sockets paid about fourteen system calls per wake-up. zt__zpoll
 * asks each socket once before waiting (needed: a socket's ZMQ_FD signals only changes, and a
 * send or receive made in this thread may already have consumed the signal of a message that is
 * now waiting), polls once, and after the wait asks again only the sockets whose ZMQ_FD fired.
 * Nothing else can change a socket's readiness between the two questions: every change arrives as
 * a command in the socket's mailbox, and a command makes its ZMQ_FD readable.
 *
 *  Same items, same revents bits, same return as zmq_poll (the count of items with revents, or -1
 * with errno set, EINTR included). Like zmq_poll it keeps waiting, up to the timeout, when a
 * wake-up turns out to carry nothing the caller asked for.
 *
 *  Threads: the calling thread must be the one using the sockets, as for zmq_poll.  */
#ifndef ZTWIST_BASE_ZPOLL_H
#define ZTWIST_BASE_ZPOLL_H

#include <poll.h>
#include <zmq.h>

/* A bit for an item's events, beside ZMQ_POLLIN/ZMQ_POLLOUT: the caller vouches that nothing has
 * used this socket since the last zt__zpoll that reported it not ready, or since a receive on it
 * failed with EAGAIN, so its readiness can only have changed through its ZMQ_FD and the question
 * before the wait is skipped. Meant for a socket only its owner's loop receives on and nothing
 * sends on (the reactor's mailbox, a worker's connection between two waits). */
#define ZT__ZPOLL_QUIET 0x100

/* Wait up to timeout_ms (-1: no bound, 0: do not wait) for any of the n items. scratch holds n
 * entries, for the poll() set; the caller keeps it so the loop does not allocate. */
int zt__zpoll(zmq_pollitem_t *items, int n, long timeout_ms, struct pollfd *scratch);

#endif
