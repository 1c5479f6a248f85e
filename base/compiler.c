/*  base/compiler.c - the scheduling-policy and accept calls of compiler.h
 *
 *  The only source file built with _GNU_SOURCE: SCHED_IDLE and accept4 are extensions that glibc's
 * <sched.h> and <sys/socket.h> declare only under it, and the macro must precede every system
 * header.  */
#if defined(__linux__)
#define _GNU_SOURCE
#endif

#include "base/compiler.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

/* accept(2), then the two flags accept4 would have set: F_SETFD's only flag is FD_CLOEXEC. */
static int
s_accept_then_fcntl(int fd, struct sockaddr *addr, socklen_t *len)
{
    int cfd = accept(fd, addr, len);
    if (cfd < 0)
        return -1;
    int fl = fcntl(cfd, F_GETFL);
    if (fl < 0 || fcntl(cfd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(cfd, F_SETFD, FD_CLOEXEC) != 0) {
        int err = errno;
        close(cfd);
        errno = err;
        return -1;
    }
    return cfd;
}

#if (defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) ||  \
     defined(__DragonFly__)) &&                                                                    \
    defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
int
zt__accept_nonblock(int fd, struct sockaddr *addr, socklen_t *len)
{
    int cfd = accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0 && errno == ENOSYS) /* a kernel (or an emulator) without the call */
        return s_accept_then_fcntl(fd, addr, len);
    return cfd;
}
#else
int
zt__accept_nonblock(int fd, struct sockaddr *addr, socklen_t *len)
{
    return s_accept_then_fcntl(fd, addr, len);
}
#endif

#if defined(__linux__) && defined(SCHED_IDLE)
bool
zt__sched_enter_idle(void)
{
    struct sched_param sp = {0};
    return sched_setscheduler(0, SCHED_IDLE, &sp) == 0;
}

bool
zt__sched_leave_idle(void)
{
    struct sched_param sp = {0};
    return sched_setscheduler(0, SCHED_OTHER, &sp) == 0;
}

bool
zt__sched_is_normal(void)
{
    return sched_getscheduler(0) == SCHED_OTHER;
}
#else
bool
zt__sched_enter_idle(void)
{
    return false;
}

bool
zt__sched_leave_idle(void)
{
    return false;
}

bool
zt__sched_is_normal(void)
{
    return true;
}
#endif
