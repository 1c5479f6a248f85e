/*  bridges/mdp/mdp_local.c - the link between a client and a broker in one reactor (mdp_local.h)
 *
 *  Design notes
 *  - A message is one allocation: the header, the frame array, then the bytes, like the broker's
 *    stored requests. It holds a reference on the link until it is delivered or dropped.
 *  - Delivery is a reactor call, not a direct call: the sender may be in the middle of its own
 *    bookkeeping (the broker handing a worker's reply on, a client ending a call and firing user
 *    callbacks), and the receiver runs with both sides in a consistent state on the next pass. */
#include "mdp_local.h"

#include <ztwist/log.h>

#include "base/base.h"

#include <stdlib.h>
#include <string.h>

typedef struct s_message {
    zt__mdp_link_t *link; /* one reference */
    bool to_client;       /* the direction */
    size_t n;             /* frames */
    zt__mdp_frame_t f[];  /* n frames, then their bytes, in this allocation */
} s_message_t;

zt__mdp_link_t *
zt__mdp_link_new(zt_reactor_t *reactor, zt_broker_t *broker, zt_remote_t *client)
{
    zt__mdp_link_t *link = calloc(1, sizeof *link);
    if (!link)
        return NULL;
    *link = (zt__mdp_link_t){.reactor = reactor, .broker = broker, .client = client, .refs = 1};
    return link;
}

void
zt__mdp_link_unref(zt__mdp_link_t **link_p)
{
    if (!link_p || !*link_p)
        return;
    zt__mdp_link_t *link = *link_p;
    *link_p = NULL;
    ZT_ASSERT(link->refs > 0);
    if (--link->refs == 0)
        free(link);
}

static void
s_deliver(void *arg)
{
    s_message_t *m = arg;
    zt__mdp_link_t *link = m->link;
    if (m->to_client && link->client && m->n == 0)
        zt__remote_broker_gone(link->client);
    else if (m->to_client && link->client)
        zt__remote_on_local(link->client, m->f, m->n);
    else if (!m->to_client && link->broker && link->client)
        zt__broker_on_local(link->broker, link, m->f, m->n);
    zt__mdp_link_unref(&m->link);
    free(m);
}

int
zt__mdp_link_send(zt__mdp_link_t *link, bool to_client, const zt__mdp_frame_t *f, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += f[i].size;
    s_message_t *m = malloc(sizeof *m + n * sizeof m->f[0] + bytes);
    if (!m)
        return ZT_ENOMEM;
    m->link = link;
    m->to_client = to_client;
    m->n = n;
    uint8_t *data = (uint8_t *)(m->f + n);
    for (size_t i = 0; i < n; i++) {
        if (f[i].size)
            memcpy(data, f[i].data, f[i].size);
        m->f[i] = (zt__mdp_frame_t){.data = data, .size = f[i].size};
        data += f[i].size;
    }
    link->refs++;
    int rc = zt_reactor_call_from_thread(link->reactor, s_deliver, m);
    if (rc != 0) {
        link->refs--;
        free(m);
    }
    return rc;
}
