/*  bridges/tcp/line_receiver.c - LineReceiver: lines (or raw bytes) out of a byte stream
 *
 *  Twisted's basic.LineReceiver, with the same rules: split at the delimiter; a line longer than
 * max_length, or max_length + len(delimiter) bytes with no delimiter, calls line_length_exceeded
 * with the rest of the buffer and clears it; processing stops when the transport starts closing,
 * when the receiver is paused, or after line_length_exceeded; data fed while a callback runs (a
 * re-entrant data_received, set_line_mode with extra bytes) is appended and parsed by the running
 * loop.
 *
 *  Copies. When nothing is buffered, the lines are delivered straight from the bytes received and
 * only the incomplete tail is copied into the buffer; the buffer is used (and compacted once at
 * the end) only when a line spans two reads. The buffer never holds more than max_length +
 * len(delimiter) bytes of an incomplete line, plus whatever arrived in one read.
 *
 *  Threads: reactor thread only.  */
#include <ztwist/line_receiver.h>
#include <ztwist/tcp.h>

#include "base/base.h"

#include <stdlib.h>
#include <string.h>

#define S_DELIMITER_MAX 16 /* the longest delimiter accepted */

struct zt_line_receiver {
    const zt_line_receiver_vtable_t *vtable; /* Borrowed: the user's callbacks */
    void *arg;                               /* the user's data, freed by free_fn */
    zt_free_fn *free_fn;                     /* frees arg with the receiver, or NULL */
    zt_protocol_t *protocol;                 /* Owned by the user or a transport; owns us */
    char delimiter[S_DELIMITER_MAX];         /* the delimiter's bytes */
    size_t delimiter_len;                    /* its length, 1..S_DELIMITER_MAX */
    size_t max_length;                       /* the longest line accepted */
    bool line_mode;                          /* lines, or raw bytes */
    bool busy;                               /* the parse loop is running */
    bool paused;                             /* pause_producing: deliver nothing */
    char *buf;                               /* Owned: bytes [start, end) not yet delivered */
    size_t start;                            /* first undelivered byte in buf */
    size_t end;                              /* one past the last */
    size_t cap;                              /* bytes allocated */
};

static void
s_on_made(zt_protocol_t *p, void *arg)
{
    (void)p;
    zt_line_receiver_t *self = arg;
    if (self->vtable->connection_made)
        self->vtable->connection_made(self, self->arg);
}

static void s_data_received(zt_line_receiver_t *self, const char *data, size_t len);

static void
s_on_data(zt_protocol_t *p, const char *data, size_t len, void *arg)
{
    (void)p;
    s_data_received(arg, data, len);
}

static void
s_on_lost(zt_protocol_t *p, const zt_failure_t *reason, void *arg)
{
    (void)p;
    zt_line_receiver_t *self = arg;
    if (self->vtable->connection_lost)
        self->vtable->connection_lost(self, reason, self->arg);
}

static const zt_protocol_vtable_t s_protocol_vtable = {
    .connection_made = s_on_made,
    .data_received = s_on_data,
    .connection_lost = s_on_lost,
};

static void
s_free(void *arg)
{
    zt_line_receiver_t *self = arg;
    if (self->free_fn)
        self->free_fn(self->arg);
    free(self->buf);
    free(self);
}

zt_line_receiver_t *
zt_line_receiver_new(const zt_line_receiver_vtable_t *vtable, void *arg, zt_free_fn *free_fn)
{
    ZT_ASSERT(vtable);
    zt_line_receiver_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    *self = (zt_line_receiver_t){.vtable = vtable,
                                 .arg = arg,
                                 .free_fn = free_fn,
                                 .delimiter_len = 2,
                                 .max_length = ZT_LINE_RECEIVER_MAX_LENGTH,
                                 .line_mode = true};
    memcpy(self->delimiter, ZT_LINE_RECEIVER_DELIMITER, 2);
    self->protocol = zt_protocol_new(&s_protocol_vtable, self, s_free);
    if (!self->protocol) {
        free(self);
        return NULL;
    }
    return self;
}

zt_protocol_t *
zt_line_receiver_protocol(zt_line_receiver_t *self)
{
    ZT_ASSERT(self);
    return self->protocol;
}

zt_line_receiver_t *
zt_line_receiver_from_protocol(zt_protocol_t *protocol)
{
    ZT_ASSERT(protocol);
    zt_line_receiver_t *self = zt_protocol_arg(protocol);
    return self && self->protocol == protocol ? self : NULL;
}

void *
zt_line_receiver_arg(const zt_line_receiver_t *self)
{
    ZT_ASSERT(self);
    return self->arg;
}

zt_transport_t *
zt_line_receiver_transport(const zt_line_receiver_t *self)
{
    ZT_ASSERT(self);
    return zt_protocol_transport(self->protocol);
}

int
zt_line_receiver_set_delimiter(zt_line_receiver_t *self, const char *delimiter, size_t len)
{
    ZT_ASSERT(self);
    if (!delimiter || len == 0 || len > S_DELIMITER_MAX)
        return ZT_EINVAL;
    memcpy(self->delimiter, delimiter, len);
    self->delimiter_len = len;
    return 0;
}

int
zt_line_receiver_set_max_length(zt_line_receiver_t *self, size_t max_length)
{
    ZT_ASSERT(self);
    if (max_length == 0)
        return ZT_EINVAL;
    self->max_length = max_length;
    return 0;
}

void
zt_line_receiver_set_raw_mode(zt_line_receiver_t *self)
{
    ZT_ASSERT(self);
    self->line_mode = false;
}

void
zt_line_receiver_set_line_mode(zt_line_receiver_t *self, const char *extra, size_t len)
{
    ZT_ASSERT(self);
    self->line_mode = true;
    if (extra && len > 0)
        s_data_received(self, extra, len);
}

bool
zt_line_receiver_is_line_mode(const zt_line_receiver_t *self)
{
    ZT_ASSERT(self);
    return self->line_mode;
}

int
zt_line_receiver_send_line(zt_line_receiver_t *self, const char *line, size_t len)
{
    ZT_ASSERT(self);
    zt_transport_t *t = zt_protocol_transport(self->protocol);
    if (!t)
        return ZT_ESTATE;
    zt_iovec_t iov[2] = {{.data = line, .len = len},
                         {.data = self->delimiter, .len = self->delimiter_len}};
    return zt_transport_write_sequence(t, iov, 2);
}

size_t
zt_line_receiver_clear_line_buffer(zt_line_receiver_t *self)
{
    ZT_ASSERT(self);
    size_t dropped = self->end - self->start;
    self->start = self->end = 0;
    return dropped;
}

void
zt_line_receiver_pause_producing(zt_line_receiver_t *self)
{
    ZT_ASSERT(self);
    self->paused = true;
    zt_transport_t *t = zt_protocol_transport(self->protocol);
    if (t)
        zt_transport_pause_producing(t);
}

void
zt_line_receiver_resume_producing(zt_line_receiver_t *self)
{
    ZT_ASSERT(self);
    self->paused = false;
    s_data_received(self, NULL, 0);
    zt_transport_t *t = zt_protocol_transport(self->protocol);
    if (t && !self->paused)
        zt_transport_resume_producing(t);
}

/* --- parsing ---------------------------------------------------------------------------- */

/* Append bytes to the buffer; false when out of memory. */
static bool
s_append(zt_line_receiver_t *self, const char *data, size_t len)
{
    if (len == 0)
        return true;
    if (self->cap - self->end < len) {
        size_t pending = self->end - self->start;
        if (self->start > 0) {
            memmove(self->buf, self->buf + self->start, pending);
            self->start = 0;
            self->end = pending;
        }
        if (self->cap - self->end < len) {
            size_t cap = self->cap ? self->cap : 256;
            while (cap - self->end < len)
                cap *= 2;
            char *buf = realloc(self->buf, cap);
            if (!buf)
                return false;
            self->buf = buf;
            self->cap = cap;
        }
    }
    memcpy(self->buf + self->end, data, len);
    self->end += len;
    return true;
}

/* Insert bytes before the buffered ones (the unparsed tail of an in-place parse). */
static bool
s_prepend(zt_line_receiver_t *self, const char *data, size_t len)
{
    size_t pending = self->end - self->start;
    if (!s_append(self, data, len)) /* grows the buffer; the bytes land at the end */
        return false;
    /* rotate: [pending][data] -> [data][pending] */
    char *base = self->buf + self->start;
    if (pending > 0) {
        char *tmp = malloc(pending);
        if (!tmp)
            return false;
        memcpy(tmp, base, pending);
        memmove(base, base + pending, len);
        memcpy(base + len, tmp, pending);
        free(tmp);
    }
    return true;
}

static const char *
s_find(const char *hay, size_t n, const char *needle, size_t m)
{
    if (n < m)
        return NULL;
    const char *last = hay + (n - m);
    const char *p = hay;
    while (p <= last) {
        p = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, m) == 0)
            return p;
        p++;
    }
    return NULL;
}

static void
s_exceeded(zt_line_receiver_t *self, const char *data, size_t len)
{
    if (self->vtable->line_length_exceeded) {
        self->vtable->line_length_exceeded(self, data, len, self->arg);
        return;
    }
    zt_transport_t *t = zt_protocol_transport(self->protocol);
    if (t)
        zt_transport_lose_connection(t);
}

/* Whether the transport has started closing (Twisted's transport.disconnecting). */
static bool
s_disconnecting(const zt_line_receiver_t *self)
{
    zt_transport_t *t = zt_protocol_transport(self->protocol);
    return t && !zt_transport_is_connected(t);
}

/* Bytes fed while a callback of ours runs (extra handed back by raw_data_received, or data a
 * callback passed in) are only buffered; the running parse loop reaches them. Bytes from our own
 * buffer must be copied before the buffer grows or moves. */
static void
s_append_while_busy(zt_line_receiver_t *self, const char *data, size_t len)
{
    char *copy = NULL;
    if (len > 0 && self->buf && data >= self->buf && data < self->buf + self->cap) {
        copy = malloc(len);
        if (copy)
            memcpy(copy, data, len);
        data = copy;
    }
    if (len > 0 && (!data || !s_append(self, data, len)))
        ZT_LOG_ERROR("LineReceiver: out of memory; %zu bytes dropped", len);
    free(copy);
}

static void
s_data_received(zt_line_receiver_t *self, const char *data, size_t len)
{
    if (len == 0 && (self->busy || self->end == self->start))
        return;
    if (self->busy) {
        s_append_while_busy(self, data, len);
        return;
    }
    self->busy = true;
    /* In place: parse data itself while nothing is buffered. */
    const char *src = data;
    size_t pos = 0, n = len;
    bool in_place = self->end == self->start;
    if (!in_place) {
        if (!s_append(self, data, len)) {
            ZT_LOG_ERROR("LineReceiver: out of memory; %zu bytes dropped", len);
            self->busy = false;
            return;
        }
    }
    for (;;) {
        if (in_place && self->end > self->start) {
            /* A callback fed more bytes: they go after the unparsed tail of data. */
            if (!s_prepend(self, src + pos, n - pos))
                ZT_LOG_ERROR("LineReceiver: out of memory; %zu bytes dropped", n - pos);
            in_place = false;
        }
        if (!in_place) {
            src = self->buf;
            pos = self->start;
            n = self->end;
        }
        if (pos >= n || self->paused)
            break;
        if (self->line_mode) {
            const char *hit = s_find(src + pos, n - pos, self->delimiter, self->delimiter_len);
            if (!hit) {
                if (n - pos >= self->max_length + self->delimiter_len) {
                    self->start = self->end = 0;
                    s_exceeded(self, src + pos, n - pos);
                    self->busy = false;
                    return;
                }
                break;
            }
            size_t line_len = (size_t)(hit - (src + pos));
            if (line_len > self->max_length) {
                self->start = self->end = 0;
                s_exceeded(self, src + pos, n - pos);
                self->busy = false;
                return;
            }
            size_t line_at = pos;
            pos += line_len + self->delimiter_len;
            if (!in_place)
                self->start = pos;
            if (self->vtable->line_received)
                self->vtable->line_received(self, src + line_at, line_len, self->arg);
            if (s_disconnecting(self))
                break;
        } else {
            size_t at = pos;
            pos = n;
            if (!in_place)
                self->start = self->end = 0;
            if (self->vtable->raw_data_received)
                self->vtable->raw_data_received(self, src + at, n - at, self->arg);
        }
    }
    if (in_place) {
        if (!s_append(self, src + pos, n - pos))
            ZT_LOG_ERROR("LineReceiver: out of memory; %zu bytes dropped", n - pos);
    } else if (self->start == self->end) {
        self->start = self->end = 0;
    }
    self->busy = false;
}
