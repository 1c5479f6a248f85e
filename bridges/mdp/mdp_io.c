/*  bridges/mdp/mdp_io.c - Majordomo messages in and out of a socket the runtime sees (mdp_io.h)  */
#include "mdp_io.h"

#include <ztwist/common.h>

#include <errno.h>

int
zt__mdp_send(zt__rsock_t *sock, const zt__mdp_frame_t *frames, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < count ? ZMQ_SNDMORE : 0);
        if (zt__rsock_send(sock, frames[i].data, frames[i].size, flags) < 0) {
            int e = zmq_errno();
            if (e == EHOSTUNREACH)
                return ZT_EUNREACHABLE;
            if (e == EAGAIN)
                return ZT_EFULL;
            return ZT_ESYS;
        }
    }
    return 0;
}

int
zt__mdp_recv_parts(zt__rsock_t *sock, zmq_msg_t *parts, size_t cap, bool *too_many)
{
    size_t n = 0;
    bool more = true;
    *too_many = false;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_init(&tmp);
        /* The parts of one message arrive together, so only the first may find nothing. */
        if (zt__rsock_msg_recv(sock, &tmp, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&tmp);
            for (size_t i = 0; i < n; i++)
                zmq_msg_close(&parts[i]);
            return -1;
        }
        more = zmq_msg_more(&tmp);
        if (n < cap) {
            zmq_msg_init(&parts[n]);
            zmq_msg_move(&parts[n++], &tmp);
        } else {
            *too_many = true;
        }
        zmq_msg_close(&tmp);
    }
    return (int)n;
}
