/*  bridges/mdp/remote_wait.h - what remote.c and remote_wait.c share: a client's waits for a
 * service (zt_remote_wait_for_service)
 *
 *  Private to bridges/mdp/. Reactor thread only.  */
#ifndef ZTWIST_BRIDGES_MDP_REMOTE_WAIT_H
#define ZTWIST_BRIDGES_MDP_REMOTE_WAIT_H

#include <ztwist/remote.h>

typedef struct zt__remote_wait zt__remote_wait_t;

/* The head of the client's list of waits (a field of zt_remote_t, NULL when none). */
zt__remote_wait_t **zt__remote_waits(zt_remote_t *client);

/* The client's reactor (borrowed), and whether connect (or connect_broker) was called. */
zt_reactor_t *zt__remote_reactor(const zt_remote_t *client);
bool zt__remote_is_connecting(const zt_remote_t *client);

/* The client is being destroyed: every wait still open fails with ZT_ECANCELLED ("client
 * destroyed"), its callbacks running inside this call. The list is empty afterwards. */
void zt__remote_waits_end(zt__remote_wait_t **waits);

#endif
