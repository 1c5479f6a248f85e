/*  base/zmq_ctx.c - the process-wide, reference-counted ZeroMQ context
 *
 *  Design notes: one mutex guards the context pointer and its reference count; the context exists
 * exactly while the count is positive. zmq_ctx_term runs under the mutex so that a concurrent
 * acquire cannot pick up a context that is being terminated; it returns promptly because every
 * user closes its sockets before it releases (sockets ztwist makes set a bounded linger).  */
#include "base/zmq_ctx.h"
#include "base/base.h"

#include <czmq.h>
#include <pthread.h>
#include <zmq.h>

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the two below */
static void *s_ctx;                                        /* Owned: the context, or NULL */
static int s_refs;                                         /* references to s_ctx */

void *
zt__zmq_ctx_acquire(void)
{
    pthread_mutex_lock(&s_lock);
    if (!s_ctx) {
        /* czmq installs SIGINT/SIGTERM handlers on its first socket unless told not to; ztwist
         * handles signals only when the user opts in (zt_reactor_handle_signals). */
        zsys_handler_set(NULL);
        s_ctx = zmq_ctx_new();
        if (!s_ctx)
            ZT_LOG_ERROR("zmq_ctx_new failed: %s", zmq_strerror(zmq_errno()));
        else
            zmq_ctx_set(s_ctx, ZMQ_BLOCKY, 0); /* sockets default to linger 0, not forever */
    }
    void *ctx = s_ctx;
    if (ctx)
        s_refs++;
    pthread_mutex_unlock(&s_lock);
    return ctx;
}

void
zt__zmq_ctx_release(void)
{
    pthread_mutex_lock(&s_lock);
    ZT_ASSERT(s_refs > 0);
    if (--s_refs == 0) {
        while (zmq_ctx_term(s_ctx) != 0 && zmq_errno() == EINTR)
            ;
        s_ctx = NULL;
    }
    pthread_mutex_unlock(&s_lock);
}
