/*  bridges/tcp/tcp_internal.h - what tcp.c (the transport) and tcp_connect.c (connect, listen)
 * share: the transport's and the port's structs, and the calls between the two files
 *
 *  Private to bridges/tcp/. The design notes are at the top of tcp.c.  */
#ifndef ZTWIST_BRIDGES_TCP_INTERNAL_H
#define ZTWIST_BRIDGES_TCP_INTERNAL_H

#include <ztwist/tcp.h>

#include "base/base.h"

#include <sys/socket.h>

#define ZT__TCP_READ_SIZE 65536      /* bytes read per readable event (Twisted's bufferSize) */
#define ZT__TCP_ACCEPT_BATCH 64      /* connections accepted per readable event of a port */
#define ZT__TCP_DEFAULT_BACKLOG 50   /* Twisted's default backlog */
#define ZT__TCP_DEFAULT_TIMEOUT 30.0 /* Twisted's default connect timeout, seconds */

/* TCP calls are for the reactor thread: every build checks it (base.h's ZT__CHECK_THREAD), as the
 * reactor's own calls do. owner is the zt__thread_id() of the thread that created the object. */
#define ZT__TCP_ASSERT_THREAD(o)                                                                   \
    ZT__CHECK_THREAD((o)->owner, "a TCP transport or port is used only by its reactor thread")

typedef enum zt__tcp_state {
    ZT__TCP_CONNECTING = 0,    /* a client's connect is in flight */
    ZT__TCP_CONNECTED = 1,     /* open */
    ZT__TCP_DISCONNECTING = 2, /* lose_connection: draining the buffer before the close */
    ZT__TCP_CLOSED = 3         /* closed; the protocol is gone */
} zt__tcp_state_t;

struct zt_transport {
    zt_reactor_t *reactor; /* Borrowed: the reactor it runs on */
    uint64_t owner;        /* zt__thread_id() of the thread that created it (the reactor's) */
    int fd;                /* Owned: the socket, or -1 once closed */
    uint32_t refs;         /* see Lifetime in the design notes */
    zt__tcp_state_t state; /* see zt__tcp_state_t */
    bool aborting;         /* abort_connection: close on the next pass */
    bool reading;          /* the fd is registered as a reader */
    bool writing;          /* the fd is registered as a writer */
    bool paused;           /* pause_producing: do not read */
    bool pass_queued;      /* s_on_pass is queued for the next pass */
    bool read_closed;      /* end of stream read; a half-closeable protocol kept the connection */
    bool write_closing;    /* lose_write_connection: shut sending down once the buffer drains */
    bool write_closed;     /* sending is shut down (shutdown(SHUT_WR)) */
    char *buf;             /* Owned: the write buffer; bytes [head, end) are unsent */
    size_t head;           /* the first unsent byte */
    size_t end;            /* one past the last unsent byte */
    size_t cap;            /* bytes allocated */
    size_t high;           /* high-water mark: pause the producer above it */
    size_t low;            /* low-water mark: resume the producer at or below it */
    const zt_producer_vtable_t *producer; /* Borrowed: the registered producer, or NULL */
    void *producer_arg;                   /* Borrowed: its arg */
    bool streaming;                       /* the producer is a streaming (push) producer */
    bool producer_paused;                 /* we paused the producer */
    zt_protocol_t *protocol;              /* Owned: the protocol, until the close */
    zt_factory_t *client_factory;    /* Borrowed: a client's factory (one use counted), or NULL */
    zt_deferred_t *connect_d;        /* Owned reference: a client's Deferred until it fires */
    zt_delayed_call_t *timeout_call; /* Owned handle: a client's connect timeout, or NULL */
    zt_failure_t *connect_failure;   /* Owned: a connect failure to deliver on the next pass */
    double timeout;                  /* a client's connect timeout, seconds */
    zt_address_t peer;               /* the peer's address (known from the start) */
    zt_address_t host;               /* this end's address (known once connected) */
    bool have_host;                  /* the connection was made: peer (and host) can be read */
    bool host_pending;               /* host is not known yet: getsockname on the first ask */
    zt_tcp_port_t *port;             /* Borrowed: the port that accepted it, or NULL */
    zt_transport_t *prev;            /* Borrowed: the previous connection of port */
    zt_transport_t *next;            /* Borrowed: the next connection of port */
};

struct zt_tcp_port {
    zt_reactor_t *reactor; /* Borrowed: the reactor it runs on */
    uint64_t owner;        /* zt__thread_id() of the thread that created it */
    int fd;                /* Owned: the listening socket, or -1 once stopped */
    zt_factory_t *factory; /* Borrowed: one use counted while listening */
    zt_address_t host;     /* the bound address, with the real port */
    bool any_address;      /* bound to 0.0.0.0 or ::, so a connection's own address may differ */
    zt_transport_t *conns; /* Borrowed: the open connections it accepted (a list) */
    size_t nconns;         /* how many */
};

/* Make fd non-blocking and close-on-exec; 0, or -1 on failure. */
int zt__tcp_set_nonblocking(int fd);

/* Fill addr from a socket address. */
void zt__tcp_address_from(const struct sockaddr_storage *ss, zt_address_t *addr);

/* Parse a numeric host into ss; 0, or -1 when it is not a numeric address. */
int zt__tcp_parse_host(const char *host, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *len);

/* A ZT_E* code for a socket errno. */
int zt__tcp_code(int err);

/* A transport in CONNECTING, with one reference (the open connection's); NULL when out of memory.
 */
zt_transport_t *zt__tcp_transport_new(zt_reactor_t *reactor);

/* Drop a reference; the last one frees a CLOSED transport. */
void zt__tcp_unref(zt_transport_t *t);

/* Register the fd as a reader (unless paused or closed for reading) / as a writer / not a writer.
 */
void zt__tcp_start_reading(zt_transport_t *t);
/* An accepted connection joins its port (tcp_connect.c; TCP's and Unix sockets' accept). */
void zt__tcp_port_adopt(zt_tcp_port_t *port, zt_transport_t *t);
void zt__tcp_start_writing(zt_transport_t *t);
void zt__tcp_stop_writing(zt_transport_t *t);

/* Queue the transport's deferred work for the start of the next pass. */
void zt__tcp_schedule(zt_transport_t *t);

/* Take t out of the list of connections of the port that accepted it, if any. */
void zt__tcp_port_unlink(zt_transport_t *t);

/* tcp_connect.c: a client's attempt failed (reason is taken over: the factory and the Deferred
 * are told), or its socket became writable (the attempt's outcome is known). */
void zt__tcp_connect_failed(zt_transport_t *t, zt_failure_t *reason);
void zt__tcp_connect_done(zt_transport_t *t);

#endif
