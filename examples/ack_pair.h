/*  examples/ack_pair.h - what ack_client_callbacks.c and ack_client_coro.c share
 *
 *  An in-process ack server on 127.0.0.1 (a free port): each line it receives is answered
 * "ack:<line>" at once, on the reactor thread (examples/ack_server.c is the full server, with
 * workers and flow control). And the client's side of one connection: ack_connect gives a
 * Deferred fired when connected, ack_request sends a line and gives a Deferred fired with the reply
 * line (a char * the result owns). One request at a time, as the two clients use it. The two
 * example programs differ only in how they drive these.  */
#ifndef ZTWIST_EXAMPLES_ACK_PAIR_H
#define ZTWIST_EXAMPLES_ACK_PAIR_H

#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ack_pair {
    zt_reactor_t *reactor;    /* Borrowed */
    zt_factory_t *server;     /* Owned: the server's factory */
    zt_factory_t *client;     /* Owned: the client's factory */
    zt_tcp_port_t *port;      /* Owned: the listening port */
    uint16_t port_number;     /* where it listens */
    zt_line_receiver_t *conn; /* Borrowed: the client's connection, NULL until connected */
    zt_deferred_t *waiting;   /* Owned reference: the request waiting for its reply, or NULL */
} ack_pair_t;

static void
ack_server_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg)
{
    (void)arg;
    char reply[256];
    int n = snprintf(reply, sizeof reply, "ack:%.*s", (int)len, line);
    zt_line_receiver_send_line(lr, reply, (size_t)n);
}

static zt_protocol_t *
ack_server_build(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f, (void)addr, (void)arg;
    static const zt_line_receiver_vtable_t vt = {.line_received = ack_server_line};
    zt_line_receiver_t *lr = zt_line_receiver_new(&vt, NULL, NULL);
    return lr ? zt_line_receiver_protocol(lr) : NULL;
}

/* A reply: fire the request's Deferred with a copy of the line. */
static void
ack_client_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg)
{
    (void)lr;
    ack_pair_t *pair = arg;
    zt_deferred_t *d = pair->waiting;
    pair->waiting = NULL;
    if (!d)
        return; /* nobody asked */
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, line, len);
        copy[len] = '\0';
    }
    zt_deferred_callback(d, copy ? zt_ok(copy, free) : zt_err(NULL));
    zt_deferred_unref(&d);
}

static void
ack_client_lost(zt_line_receiver_t *lr, const zt_failure_t *reason, void *arg)
{
    (void)lr;
    ack_pair_t *pair = arg;
    pair->conn = NULL;
    if (pair->waiting) {
        zt_deferred_errback(pair->waiting, zt_failure_dup(reason));
        zt_deferred_unref(&pair->waiting);
    }
}

static zt_protocol_t *
ack_client_build(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f, (void)addr;
    static const zt_line_receiver_vtable_t vt = {.line_received = ack_client_line,
                                                 .connection_lost = ack_client_lost};
    ack_pair_t *pair = arg;
    pair->conn = zt_line_receiver_new(&vt, pair, NULL);
    return pair->conn ? zt_line_receiver_protocol(pair->conn) : NULL;
}

/* Listen on 127.0.0.1, a free port. Returns 0 or a ZT_E* code. */
static int
ack_pair_start(ack_pair_t *pair, zt_reactor_t *r)
{
    static const zt_factory_vtable_t server_vt = {.build_protocol = ack_server_build};
    static const zt_factory_vtable_t client_vt = {.build_protocol = ack_client_build};
    *pair = (ack_pair_t){.reactor = r};
    pair->server = zt_factory_new(&server_vt, NULL);
    pair->client = zt_factory_new(&client_vt, pair);
    if (!pair->server || !pair->client)
        return ZT_ENOMEM;
    int rc = zt_listen_tcp(r, 0, pair->server, 0, "127.0.0.1", &pair->port);
    zt_address_t addr;
    if (rc == 0 && (rc = zt_tcp_port_get_host(pair->port, &addr)) == 0)
        pair->port_number = addr.port;
    return rc;
}

/* A Deferred fired when the client is connected. */
static zt_deferred_t *
ack_connect(ack_pair_t *pair)
{
    return zt_connect_tcp(pair->reactor, "127.0.0.1", pair->port_number, pair->client, 5);
}

/* Send one line; a Deferred fired with the reply (a char * the result owns). */
static zt_deferred_t *
ack_request(ack_pair_t *pair, const char *line)
{
    if (!pair->conn || pair->waiting)
        return zt_deferred_fail(zt_failure_from_code(ZT_ESTATE, "not connected, or busy"));
    pair->waiting = zt_deferred_new();
    zt_line_receiver_send_line(pair->conn, line, strlen(line));
    return zt_deferred_ref(pair->waiting);
}

/* Close the client's connection; the reactor then stops once it is gone. */
static void
ack_pair_close(ack_pair_t *pair)
{
    if (pair->conn)
        zt_transport_lose_connection(zt_line_receiver_transport(pair->conn));
}

/* After the reactor's run: close what is left of both ends (a few passes at most), then free. */
static void
ack_pair_stop(ack_pair_t *pair)
{
    if (pair->port)
        zt_tcp_port_lose_connections(pair->port, true);
    ack_pair_close(pair);
    for (int i = 0;
         i < 100 && (pair->conn || (pair->port && zt_tcp_port_connection_count(pair->port))); i++)
        zt_reactor_iterate(pair->reactor, 0.01);
    zt_tcp_port_destroy(&pair->port);
    zt_factory_destroy(&pair->client);
    zt_factory_destroy(&pair->server);
}

#endif
