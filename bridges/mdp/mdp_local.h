/*  bridges/mdp/mdp_local.h - a client and a broker in one reactor, joined without a socket
 *
 *  zt_remote_connect_broker links a client to a broker on the same reactor. Messages between them
 * are the MDP frames they would exchange over a socket, copied into one block and handed over as
 * a call the reactor runs on its next pass (zt_reactor_call_from_thread from the reactor thread
 * queues, never runs inline), so neither side ever runs inside the other's code: a reply's
 * callbacks may send new requests, and the broker is never re-entered.
 *
 *  The link is shared: the broker, the client and every message in flight hold a reference, and
 * each side clears its pointer when it is destroyed, so a message for a side that is gone is
 * dropped. The broker names the client in its routing envelope by a 6-byte id that starts with a
 * zero byte and 'L'; ZeroMQ's own routing ids that start with a zero byte are 5 bytes long, and
 * peers may not choose ids that start with one, so no socket peer can collide with it.
 *
 *  Threads: the reactor thread only.  */
#ifndef ZTWIST_BRIDGES_MDP_LOCAL_H
#define ZTWIST_BRIDGES_MDP_LOCAL_H

#include <ztwist/broker.h>
#include <ztwist/remote.h>

#include "mdp_codec.h"

#include <stdbool.h>
#include <stdint.h>

#define ZT__MDP_LOCAL_ID_SIZE 6 /* "\0L" and the link id, big-endian */

typedef struct zt__mdp_link {
    zt_reactor_t *reactor; /* Borrowed: the one both sides run on */
    zt_broker_t *broker;   /* Borrowed; NULL once the broker is destroyed */
    zt_remote_t *client;   /* Borrowed; NULL once the client is destroyed */
    uint32_t id;           /* the broker's name for the client (set by zt__broker_attach) */
    uint32_t refs;         /* the broker, the client and each message in flight */
} zt__mdp_link_t;

/* A link between client and broker with one reference (the caller's), or NULL (out of memory). */
zt__mdp_link_t *zt__mdp_link_new(zt_reactor_t *reactor, zt_broker_t *broker, zt_remote_t *client);

/* Drop a reference; the last frees the link. */
void zt__mdp_link_unref(zt__mdp_link_t **link_p);

/* Send n frames to the other side: to_client from the broker, else from the client. The frames
 * are copied. 0; ZT_ENOMEM; ZT_ESHUTDOWN (the reactor takes no more calls). */
int zt__mdp_link_send(zt__mdp_link_t *link, bool to_client, const zt__mdp_frame_t *f, size_t n);

/* Broker side (broker.c). attach: the broker takes a reference and names the client; detach:
 * the client is gone, the broker forgets it (replies for it are then dropped). on_local: a
 * message from the client, as the ROUTER would have read it without the routing id. */
int zt__broker_attach(zt_broker_t *broker, zt__mdp_link_t *link);
void zt__broker_detach(zt_broker_t *broker, zt__mdp_link_t *link);
void zt__broker_on_local(zt_broker_t *broker, zt__mdp_link_t *link, const zt__mdp_frame_t *f,
                         size_t n);

/* Client side (remote.c). on_local: a message from the broker, as the DEALER would have read
 * it; broker_gone: the broker was destroyed, the calls in flight cannot come back. */
void zt__remote_on_local(zt_remote_t *client, const zt__mdp_frame_t *f, size_t n);
void zt__remote_broker_gone(zt_remote_t *client);

#endif
