/*  bridges/tcp/protocol.c - Protocol and Factory: vtables with user data, and the connection
 * failures
 *
 *  Small objects that dispatch to the user's callbacks. A protocol remembers its transport between
 * make_connection and connection_lost, so that zt_protocol_transport answers NULL outside a
 * connection and connection_lost runs once. A factory counts its users (ports, client connections)
 * to call start_factory for the first and stop_factory for the last, as Twisted's doStart/doStop.
 *
 *  Threads: reactor thread only; nothing here is shared.  */
#include <ztwist/protocol.h>

#include "base/base.h"

#include <stdlib.h>

const zt_failure_type_t zt__connection_closed_type = {"ConnectionClosed", &zt__error_type,
                                                      ZT_ECONNLOST};
const zt_failure_type_t zt__connection_done_type = {"ConnectionDone", &zt__connection_closed_type,
                                                    0};
const zt_failure_type_t zt__connection_lost_type = {"ConnectionLost", &zt__connection_closed_type,
                                                    0};
const zt_failure_type_t zt__connection_aborted_type = {"ConnectionAborted",
                                                       &zt__connection_lost_type, 0};
const zt_failure_type_t zt__connect_error_type = {"ConnectError", &zt__error_type, ZT_EUNREACHABLE};
const zt_failure_type_t zt__connection_refused_type = {"ConnectionRefusedError",
                                                       &zt__connect_error_type, ZT_ECONNREFUSED};

struct zt_protocol {
    const zt_protocol_vtable_t *vtable; /* Borrowed: the user's callbacks */
    void *arg;                          /* Owned through free_fn, if given: the user's data */
    zt_free_fn *free_fn;                /* frees arg at destroy, or NULL */
    zt_transport_t *transport;          /* Borrowed: the connection, between made and lost */
    bool connected;                     /* make_connection ran and connection_lost did not */
};

struct zt_factory {
    const zt_factory_vtable_t *vtable; /* Borrowed: the user's callbacks */
    void *arg;                         /* Borrowed: the user's data */
    size_t users;                      /* ports and client connections using the factory */
};

zt_protocol_t *
zt_protocol_new(const zt_protocol_vtable_t *vtable, void *arg, zt_free_fn *free_fn)
{
    ZT_ASSERT(vtable);
    zt_protocol_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    *self = (zt_protocol_t){.vtable = vtable, .arg = arg, .free_fn = free_fn};
    return self;
}

void
zt_protocol_destroy(zt_protocol_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_protocol_t *self = *self_p;
    if (self->free_fn)
        self->free_fn(self->arg);
    free(self);
    *self_p = NULL;
}

void *
zt_protocol_arg(const zt_protocol_t *self)
{
    ZT_ASSERT(self);
    return self->arg;
}

zt_transport_t *
zt_protocol_transport(const zt_protocol_t *self)
{
    ZT_ASSERT(self);
    return self->transport;
}

int
zt_protocol_make_connection(zt_protocol_t *self, zt_transport_t *transport)
{
    ZT_ASSERT(self);
    if (self->connected)
        return ZT_ESTATE;
    self->connected = true;
    self->transport = transport;
    if (self->vtable->connection_made)
        self->vtable->connection_made(self, self->arg);
    return 0;
}

void
zt_protocol_data_received(zt_protocol_t *self, const char *data, size_t len)
{
    ZT_ASSERT(self);
    if (self->vtable->data_received && len > 0)
        self->vtable->data_received(self, data, len, self->arg);
}

void
zt_protocol_connection_lost(zt_protocol_t *self, const zt_failure_t *reason)
{
    ZT_ASSERT(self);
    if (!self->connected)
        return;
    self->connected = false;
    zt_failure_t *own = NULL;
    if (!reason)
        reason = own = zt_failure_new(ZT_CONNECTION_DONE, "connection was closed cleanly");
    if (self->vtable->connection_lost && reason)
        self->vtable->connection_lost(self, reason, self->arg);
    self->transport = NULL;
    zt_failure_destroy(&own);
}

bool
zt_protocol_read_connection_lost(zt_protocol_t *self)
{
    ZT_ASSERT(self);
    if (!self->vtable->read_connection_lost)
        return false;
    if (self->connected)
        self->vtable->read_connection_lost(self, self->arg);
    return true;
}

void
zt_protocol_write_connection_lost(zt_protocol_t *self)
{
    ZT_ASSERT(self);
    if (self->connected && self->vtable->write_connection_lost)
        self->vtable->write_connection_lost(self, self->arg);
}

zt_factory_t *
zt_factory_new(const zt_factory_vtable_t *vtable, void *arg)
{
    if (!vtable || !vtable->build_protocol)
        return NULL;
    zt_factory_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    *self = (zt_factory_t){.vtable = vtable, .arg = arg};
    return self;
}

void
zt_factory_destroy(zt_factory_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ZT_ASSERT_MSG((*self_p)->users == 0,
                  "zt_factory_destroy while a port or client connection still uses the factory");
    free(*self_p);
    *self_p = NULL;
}

void *
zt_factory_arg(const zt_factory_t *self)
{
    ZT_ASSERT(self);
    return self->arg;
}

size_t
zt_factory_users(const zt_factory_t *self)
{
    ZT_ASSERT(self);
    return self->users;
}

void
zt_factory_do_start(zt_factory_t *self)
{
    ZT_ASSERT(self);
    if (self->users++ == 0 && self->vtable->start_factory)
        self->vtable->start_factory(self, self->arg);
}

void
zt_factory_do_stop(zt_factory_t *self)
{
    ZT_ASSERT(self);
    ZT_ASSERT_MSG(self->users > 0, "zt_factory_do_stop without a matching do_start");
    if (--self->users == 0 && self->vtable->stop_factory)
        self->vtable->stop_factory(self, self->arg);
}

zt_protocol_t *
zt_factory_build_protocol(zt_factory_t *self, const zt_address_t *addr)
{
    ZT_ASSERT(self);
    return self->vtable->build_protocol(self, addr, self->arg);
}

void
zt_factory_client_connection_failed(zt_factory_t *self, const zt_failure_t *reason)
{
    ZT_ASSERT(self);
    if (self->vtable->client_connection_failed)
        self->vtable->client_connection_failed(self, reason, self->arg);
}

void
zt_factory_client_connection_lost(zt_factory_t *self, const zt_failure_t *reason)
{
    ZT_ASSERT(self);
    if (self->vtable->client_connection_lost)
        self->vtable->client_connection_lost(self, reason, self->arg);
}
