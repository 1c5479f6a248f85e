/*  bridges/mdp/mdp_codec.h - Majordomo (RFC 7/MDP v0.1) frame layouts: decode and send
 *
 *  The pure part of the remote-worker bridge: a received multipart message is viewed as an array of
 * frames and decoded into indexes (envelope, service, command, body) without copying, or rejected
 * with a reason. Everything arriving from the network goes through zt__mdp_decode first, which is
 * why it is the part the fuzz target drives. Private to bridges/.  */
#ifndef ZTWIST_BRIDGES_MDP_CODEC_H
#define ZTWIST_BRIDGES_MDP_CODEC_H

#include <ztwist/common.h>

#include <zmq.h>

/* The protocol's constants (RFC 7). */
#define ZT__MDPC "MDPC01"                 /* client header */
#define ZT__MDPW "MDPW01"                 /* worker header */
#define ZT__MDP_READY 0x01                /* worker -> broker: Frame 3 is the service */
#define ZT__MDP_REQUEST 0x02              /* broker -> worker: envelope, empty, body */
#define ZT__MDP_REPLY 0x03                /* worker -> broker: envelope, empty, body */
#define ZT__MDP_HEARTBEAT 0x04            /* either way, no more frames */
#define ZT__MDP_DISCONNECT 0x05           /* either way, no more frames */
#define ZT__MDP_MAX_FRAMES 64             /* a message with more frames is malformed */
#define ZT__MDP_MAX_ENVELOPE 8            /* the deepest address stack accepted */
#define ZT__MDP_MAX_SERVICE 255           /* the longest service name */
#define ZT__MDP_MAX_ADDRESS 255           /* the longest frame of an address stack */
#define ZT__MDP_ERROR_MARK "ztwist.error" /* the first body frame of a broker's error reply */
#define ZT__MDP_MAX_PREFETCH 1000         /* the most requests a worker may ask to hold */

/* One frame of a received message: a view, never owned. */
typedef struct zt__mdp_frame {
    const void *data; /* the bytes; Borrowed from the message */
    size_t size;      /* how many */
} zt__mdp_frame_t;

/* Where a message was received, which decides the layouts that are legal. */
typedef enum zt__mdp_role {
    ZT__MDP_AT_BROKER = 0, /* a ROUTER: [identity][...envelope][""][MDPC01|MDPW01]... */
    ZT__MDP_AT_WORKER = 1, /* a worker's DEALER: [""][MDPW01][command]... */
    ZT__MDP_AT_CLIENT = 2  /* a client's DEALER: [...envelope][""][MDPC01][service][body...] */
} zt__mdp_role_t;

/* What a decoded message is. */
typedef enum zt__mdp_kind {
    ZT__MDP_CLIENT_REQUEST = 0, /* client -> broker */
    ZT__MDP_CLIENT_REPLY = 1,   /* broker -> client */
    ZT__MDP_WORKER_COMMAND = 2  /* worker <-> broker; the command says which */
} zt__mdp_kind_t;

/* A decoded message: indexes into the frame array it was decoded from. */
typedef struct zt__mdp_msg {
    zt__mdp_kind_t kind; /* client request, client reply or worker command */
    int command;         /* ZT__MDP_READY ... for worker commands; 0 otherwise */
    size_t env_first;    /* first frame of the address stack */
    size_t env_count;    /* frames in the address stack (0 when none) */
    size_t service;      /* the service frame's index; SIZE_MAX when the message has none */
    size_t body_first;   /* first body frame (== frame count when the body is empty) */
    size_t body_count;   /* body frames */
    unsigned prefetch;   /* READY: requests the worker takes at once (ztwist's extension), 1 */
} zt__mdp_msg_t;

/* Decode frames received at role. max_bytes bounds the sum of the frame sizes (0: no bound).
 * Returns 0 and fills *msg, or ZT_EPROTO with *why (a static string, when why is not NULL) saying
 * what was wrong. Never reads outside the frames given. */
int zt__mdp_decode(const zt__mdp_frame_t *frames, size_t count, zt__mdp_role_t role,
                   size_t max_bytes, zt__mdp_msg_t *msg, const char **why);

/* Whether a frame holds exactly the NUL-terminated string s. */
bool zt__mdp_frame_is(const zt__mdp_frame_t *frame, const char *s);

#endif
