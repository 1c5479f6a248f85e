/*  bridges/mdp/mdp_codec.c - Majordomo (RFC 7/MDP v0.1) frame layouts: decode
 *
 *  The layouts, as frames on the wire (an envelope is an address stack of one or more frames that
 * ends at the first empty frame, each at most 255 bytes; ztwist's client puts its request id
 * there, which RFC 7 allows):
 *    client  -> broker  [identity ...envelope][""]["MDPC01"][service][body...]
 *    broker  -> client  [...envelope][""]["MDPC01"][service][body...]
 *    worker  -> broker  [identity][""]["MDPW01"][command][...]
 *    broker  -> worker  [""]["MDPW01"][command][...]
 *  with READY [service] (ztwist adds an optional [prefetch], see s_parse_prefetch), REQUEST and
 * REPLY [...client envelope][""][body...], HEARTBEAT and DISCONNECT [] after the command. A
 * ztwist broker sends a worker the client's envelope as one frame (broker_internal.h says why);
 * a worker accepts a stack. Anything else is malformed: the decoder says why and the caller
 * drops, counts and logs it.  */
#include "mdp_codec.h"

#include <stdint.h>
#include <string.h>
#include <zmq.h>

bool
zt__mdp_frame_is(const zt__mdp_frame_t *frame, const char *s)
{
    size_t n = strlen(s);
    return frame->size == n && (n == 0 || memcmp(frame->data, s, n) == 0);
}

static int
s_fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return ZT_EPROTO;
}

/* Find the end of the address stack starting at first: the index of the first empty frame. */
static size_t
s_find_delimiter(const zt__mdp_frame_t *frames, size_t first, size_t count)
{
    for (size_t i = first; i < count; i++)
        if (frames[i].size == 0)
            return i;
    return count;
}

static bool
s_valid_service(const zt__mdp_frame_t *frame)
{
    return frame->size > 0 && frame->size <= ZT__MDP_MAX_SERVICE;
}

/* ztwist's extension to READY: a frame after the service, the decimal number of requests the
 * worker takes at once (1 to ZT__MDP_MAX_PREFETCH, no sign, no leading zero). */
static bool
s_parse_prefetch(const zt__mdp_frame_t *frame, unsigned *out)
{
    const char *digits = frame->data;
    if (frame->size < 1 || frame->size > 4 || digits[0] == '0')
        return false;
    unsigned value = 0;
    for (size_t i = 0; i < frame->size; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return false;
        value = value * 10 + (unsigned)(digits[i] - '0');
    }
    if (value > ZT__MDP_MAX_PREFETCH)
        return false;
    *out = value;
    return true;
}

/* Decode the worker part starting at the command frame (index cmd). */
static int
s_decode_worker(const zt__mdp_frame_t *frames, size_t count, size_t cmd, zt__mdp_role_t role,
                zt__mdp_msg_t *msg, const char **why)
{
    if (cmd >= count)
        return s_fail(why, "missing command frame");
    if (frames[cmd].size != 1)
        return s_fail(why, "command frame is not one byte");
    int command = ((const uint8_t *)frames[cmd].data)[0];
    msg->kind = ZT__MDP_WORKER_COMMAND;
    msg->command = command;
    size_t rest = cmd + 1;
    switch (command) {
    case ZT__MDP_READY:
        if (role != ZT__MDP_AT_BROKER)
            return s_fail(why, "READY sent to a worker");
        if (count - rest != 1 && count - rest != 2)
            return s_fail(why, "READY needs one service frame (and an optional prefetch frame)");
        if (!s_valid_service(&frames[rest]))
            return s_fail(why, "READY with an empty or oversize service name");
        if (count - rest == 2 && !s_parse_prefetch(&frames[rest + 1], &msg->prefetch))
            return s_fail(why, "READY with a prefetch frame that is not 1 to 1000 in decimal");
        msg->service = rest;
        msg->body_first = count;
        return 0;
    case ZT__MDP_REQUEST:
    case ZT__MDP_REPLY: {
        if (command == ZT__MDP_REQUEST && role != ZT__MDP_AT_WORKER)
            return s_fail(why, "REQUEST sent to a broker");
        if (command == ZT__MDP_REPLY && role != ZT__MDP_AT_BROKER)
            return s_fail(why, "REPLY sent to a worker");
        size_t delim = s_find_delimiter(frames, rest, count);
        if (delim == count)
            return s_fail(why, "missing empty frame after the client address");
        if (delim == rest)
            return s_fail(why, "empty client address");
        if (delim - rest > ZT__MDP_MAX_ENVELOPE)
            return s_fail(why, "client address stack too deep");
        msg->env_first = rest;
        msg->env_count = delim - rest;
        msg->body_first = delim + 1;
        msg->body_count = count - delim - 1;
        return 0;
    }
    case ZT__MDP_HEARTBEAT:
    case ZT__MDP_DISCONNECT:
        if (count != rest)
            return s_fail(why, "extra frames after HEARTBEAT or DISCONNECT");
        msg->body_first = count;
        return 0;
    default:
        return s_fail(why, "unknown command");
    }
}

int
zt__mdp_decode(const zt__mdp_frame_t *frames, size_t count, zt__mdp_role_t role, size_t max_bytes,
               zt__mdp_msg_t *msg, const char **why)
{
    *msg = (zt__mdp_msg_t){.service = SIZE_MAX, .body_first = count, .prefetch = 1};
    if (count > ZT__MDP_MAX_FRAMES)
        return s_fail(why, "too many frames");
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (frames[i].size > 0 && !frames[i].data)
            return s_fail(why, "frame without data");
        total += frames[i].size;
        if (max_bytes && total > max_bytes)
            return s_fail(why, "message too large");
    }
    if (role == ZT__MDP_AT_WORKER) {
        /* [""]["MDPW01"][command]... */
        if (count < 3)
            return s_fail(why, "too few frames");
        if (frames[0].size != 0)
            return s_fail(why, "first frame is not empty");
        if (!zt__mdp_frame_is(&frames[1], ZT__MDPW))
            return s_fail(why, "wrong header (not MDPW01)");
        return s_decode_worker(frames, count, 2, role, msg, why);
    }
    /* At a broker frame 0 is the peer's routing identity and starts the address stack; at a client
     * the stack holds what the client put there (its request id). */
    if (count == 0 || frames[0].size == 0)
        return s_fail(why, "missing address");
    size_t delim = s_find_delimiter(frames, 0, count);
    if (delim == count)
        return s_fail(why, "missing empty delimiter frame");
    if (delim > ZT__MDP_MAX_ENVELOPE)
        return s_fail(why, "address stack too deep");
    for (size_t i = 0; i < delim; i++)
        if (frames[i].size > ZT__MDP_MAX_ADDRESS)
            return s_fail(why, "address frame longer than 255 bytes");
    msg->env_first = 0;
    msg->env_count = delim;
    size_t header = delim + 1;
    if (header >= count)
        return s_fail(why, "missing header frame");
    if (zt__mdp_frame_is(&frames[header], ZT__MDPC)) {
        if (header + 1 >= count)
            return s_fail(why, "missing service frame");
        if (!s_valid_service(&frames[header + 1]))
            return s_fail(why, "empty or oversize service name");
        msg->kind = role == ZT__MDP_AT_BROKER ? ZT__MDP_CLIENT_REQUEST : ZT__MDP_CLIENT_REPLY;
        msg->service = header + 1;
        msg->body_first = header + 2;
        msg->body_count = count - header - 2;
        return 0;
    }
    if (zt__mdp_frame_is(&frames[header], ZT__MDPW)) {
        if (role != ZT__MDP_AT_BROKER)
            return s_fail(why, "worker header sent to a client");
        if (delim != 1)
            return s_fail(why, "worker message with an address stack");
        return s_decode_worker(frames, count, header + 1, role, msg, why);
    }
    return s_fail(why, "wrong header (not MDPC01 or MDPW01)");
}
