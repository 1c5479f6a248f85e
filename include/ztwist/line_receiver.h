/*  ztwist/line_receiver.h - a protocol that receives lines (Twisted's basic.LineReceiver)
 *
 *  A LineReceiver splits the bytes it receives at a delimiter ("\r\n" by default) and calls
 * line_received once per line, without the delimiter, however the bytes were split by the network.
 * In raw mode (zt_line_receiver_set_raw_mode) it passes the bytes to raw_data_received as they
 * come instead; zt_line_receiver_set_line_mode goes back to lines. A line longer than the maximum
 * length (16384 bytes by default) calls line_length_exceeded, whose default closes the connection
 * (zt_transport_lose_connection), so a peer that never sends a delimiter cannot make the receiver
 * buffer without bound: it buffers at most max_length + the delimiter's length.
 *
 *      static void on_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg) {
 *          zt_line_receiver_send_line(lr, line, len);              // an echo server
 *      }
 *      static const zt_line_receiver_vtable_t echo = {.line_received = on_line};
 *      static zt_protocol_t *build(zt_factory_t *f, const zt_address_t *addr, void *arg) {
 *          zt_line_receiver_t *lr = zt_line_receiver_new(&echo, NULL, NULL);
 *          return lr ? zt_line_receiver_protocol(lr) : NULL;
 *      }
 *
 *  Ownership: a LineReceiver is a protocol; zt_line_receiver_protocol gives that protocol, and
 * whoever owns the protocol (a transport, once build_protocol returned it) owns the LineReceiver:
 * destroying the protocol destroys it and calls the free_fn given here on arg.
 *
 *  The data pointers given to the callbacks are borrowed for the call; they stay valid as long as
 * the callback does not feed the receiver more data (zt_line_receiver_set_line_mode with extra
 * bytes, zt_protocol_data_received).
 *
 *  Threads: every function here is for the reactor thread only.  */
#ifndef ZTWIST_LINE_RECEIVER_H
#define ZTWIST_LINE_RECEIVER_H

#include <ztwist/common.h>
#include <ztwist/failure.h>
#include <ztwist/protocol.h>

typedef struct zt_line_receiver zt_line_receiver_t;

/** The default delimiter. */
#define ZT_LINE_RECEIVER_DELIMITER "\r\n"
/** The default maximum line length, in bytes (Twisted's MAX_LENGTH). */
#define ZT_LINE_RECEIVER_MAX_LENGTH 16384

/** A LineReceiver's callbacks; any may be NULL. The vtable is borrowed; make it a static const. */
typedef struct zt_line_receiver_vtable {
    /** The connection is made (zt_line_receiver_transport works from now on). */
    void (*connection_made)(zt_line_receiver_t *self, void *arg);
    /** A line arrived, without its delimiter. NULL drops lines. */
    void (*line_received)(zt_line_receiver_t *self, const char *line, size_t len, void *arg);
    /** Bytes arrived in raw mode. NULL drops them. */
    void (*raw_data_received)(zt_line_receiver_t *self, const char *data, size_t len, void *arg);
    /** A line is too long: data is the rest of the buffer, starting with (part of) that line; the
     * buffer is cleared. NULL means the default: zt_transport_lose_connection. */
    void (*line_length_exceeded)(zt_line_receiver_t *self, const char *data, size_t len, void *arg);
    /** The connection is over; reason as for a protocol's connection_lost. */
    void (*connection_lost)(zt_line_receiver_t *self, const zt_failure_t *reason, void *arg);
} zt_line_receiver_vtable_t;

/**
 *  Create a LineReceiver in line mode with the default delimiter and maximum length.
 *  @param vtable   required; borrowed, must outlive the receiver
 *  @param arg      passed to every callback
 *  @param free_fn  called once on arg when the receiver is destroyed; NULL for none
 *  @return a new receiver, owned through its protocol (zt_line_receiver_protocol), or NULL when out
 * of memory
 */
ZT_EXPORT ZT_NODISCARD zt_line_receiver_t *
zt_line_receiver_new(const zt_line_receiver_vtable_t *vtable, void *arg, zt_free_fn *free_fn);

/** The receiver's protocol (borrowed from the receiver, which it owns: see Ownership above). */
ZT_EXPORT zt_protocol_t *zt_line_receiver_protocol(zt_line_receiver_t *self);

/** The receiver behind a protocol made by zt_line_receiver_new, or NULL for another protocol. */
ZT_EXPORT zt_line_receiver_t *zt_line_receiver_from_protocol(zt_protocol_t *protocol);

/** The user's data. */
ZT_EXPORT void *zt_line_receiver_arg(const zt_line_receiver_t *self);

/** The transport (borrowed), as zt_protocol_transport. */
ZT_EXPORT zt_transport_t *zt_line_receiver_transport(const zt_line_receiver_t *self);

/**
 *  Set the delimiter (copied).
 *  @return 0; ZT_EINVAL when delimiter is NULL, len is 0 or len > 16; ZT_ENOMEM
 */
ZT_EXPORT int zt_line_receiver_set_delimiter(zt_line_receiver_t *self, const char *delimiter,
                                             size_t len);

/**
 *  Set the maximum line length.
 *  @return 0, or ZT_EINVAL when max_length is 0
 */
ZT_EXPORT int zt_line_receiver_set_max_length(zt_line_receiver_t *self, size_t max_length);

/** Pass what arrives from now on to raw_data_received (also the rest of the current data, when
 * called from line_received). */
ZT_EXPORT void zt_line_receiver_set_raw_mode(zt_line_receiver_t *self);

/**
 *  Go back to line mode. From raw_data_received, extra is unhandled data to parse for lines
 * first (Twisted's setLineMode(extra)); do not pass extra from line_received.
 *  @param extra  NULL or empty for none; copied
 */
ZT_EXPORT void zt_line_receiver_set_line_mode(zt_line_receiver_t *self, const char *extra,
                                              size_t len);

/** Whether the receiver is in line mode. */
ZT_EXPORT bool zt_line_receiver_is_line_mode(const zt_line_receiver_t *self);

/**
 *  Send line followed by the delimiter.
 *  @return 0; ZT_ESTATE when not connected (or closing); ZT_ENOMEM
 */
ZT_EXPORT int zt_line_receiver_send_line(zt_line_receiver_t *self, const char *line, size_t len);

/**
 *  Empty the buffer of received bytes not yet delivered (Twisted's clearLineBuffer).
 *  @return how many bytes were dropped
 */
ZT_EXPORT size_t zt_line_receiver_clear_line_buffer(zt_line_receiver_t *self);

/** Stop delivering lines (and pause the transport's reading) until resume_producing
 * (Twisted's LineReceiver.pauseProducing). */
ZT_EXPORT void zt_line_receiver_pause_producing(zt_line_receiver_t *self);

/** Deliver the buffered lines and read again (Twisted's resumeProducing). */
ZT_EXPORT void zt_line_receiver_resume_producing(zt_line_receiver_t *self);

#endif
