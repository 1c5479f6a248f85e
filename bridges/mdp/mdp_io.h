/*  bridges/mdp/mdp_io.h - Majordomo messages in and out of a socket the runtime sees
 *
 *  Every send and receive of the Majordomo stack goes through an rsock (runtime/rsock.h), so the
 * reactor (or a worker's own poll) knows when a socket was left drained without the stack
 * tracking it. Threads: the thread that uses the socket.  */
#ifndef ZTWIST_BRIDGES_MDP_IO_H
#define ZTWIST_BRIDGES_MDP_IO_H

#include "mdp_codec.h"
#include "runtime/rsock.h"

/* Send frames as one multipart message, without waiting (ZMQ_DONTWAIT). Returns 0,
 * ZT_EUNREACHABLE (a ROUTER's peer is gone, EHOSTUNREACH), ZT_EFULL (EAGAIN) or ZT_ESYS. */
int zt__mdp_send(zt__rsock_t *sock, const zt__mdp_frame_t *frames, size_t count);

/* Receive one multipart message into parts, each initialised here (at most cap frames; the rest
 * are discarded and *too_many set); the caller closes the n it gets. Waits for nothing: returns
 * the frame count, or -1 when no message was waiting (the socket is then drained) or it failed. */
int zt__mdp_recv_parts(zt__rsock_t *sock, zmq_msg_t *parts, size_t cap, bool *too_many);

#endif
