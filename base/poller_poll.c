/*  base/poller_poll.c - zt__poller on poll(2), the portable fallback (see poller.h)
 *
 *  The set is a zt__pollset (pollset.h): a change is O(1), a wait polls every watched fd, which is
 * what poll(2) offers.  */
#include "base/poller.h"
#include "base/base.h"
#include "pollset.h"

#include <fcntl.h>
#include <stdlib.h>

struct zt__poller {
    zt__pollset_t set; /* the watched fds */
};

zt__poller_t *
zt__poller_new(void)
{
    return calloc(1, sizeof(zt__poller_t));
}

void
zt__poller_destroy(zt__poller_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt__pollset_fini(&(*self_p)->set);
    free(*self_p);
    *self_p = NULL;
}

const char *
zt__poller_backend(void)
{
    return "poll";
}

int
zt__poller_set(zt__poller_t *self, int fd, unsigned was, unsigned events)
{
    ZT_ASSERT(self && fd >= 0);
    if (was == 0 && events != 0 && fcntl(fd, F_GETFD) < 0)
        return ZT_EINVAL; /* as epoll says of an fd that is not open */
    return zt__pollset_set(&self->set, fd, events);
}

int
zt__poller_wait(zt__poller_t *self, zt__poller_event_t *events, int max, long timeout_ms)
{
    ZT_ASSERT(self && events && max > 0);
    return zt__pollset_wait(&self->set, events, max, timeout_ms);
}
