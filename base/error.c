/*  base/error.c - error codes, their names, the library version and the never-compiled-out
 * assertion  */
#include "base/base.h"
#include "version.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const s_messages[] = {
    [0] = "success",
    [-ZT_EINVAL] = "invalid argument",
    [-ZT_ENOMEM] = "out of memory",
    [-ZT_EALREADY] = "already called",
    [-ZT_ECANCELLED] = "operation cancelled",
    [-ZT_ETIMEDOUT] = "operation timed out",
    [-ZT_ESHUTDOWN] = "shut down",
    [-ZT_EFULL] = "queue full",
    [-ZT_EEMPTY] = "queue empty",
    [-ZT_ESTATE] = "wrong state for this call",
    [-ZT_EDEADLK] = "call would deadlock",
    [-ZT_ENOTFOUND] = "not found",
    [-ZT_EIO] = "input/output error",
    [-ZT_ECONNREFUSED] = "connection refused",
    [-ZT_ECONNLOST] = "connection lost",
    [-ZT_EPROTO] = "protocol error",
    [-ZT_EADDRINUSE] = "address in use",
    [-ZT_EACCES] = "permission denied",
    [-ZT_EUNREACHABLE] = "peer unreachable",
    [-ZT_ESYS] = "system error",
};
_Static_assert(sizeof(s_messages) / sizeof(s_messages[0]) == 1 - ZT_ERROR_LAST,
               "every error code has a message");

const char *
zt_strerror(int code)
{
    if (code > 0 || code < ZT_ERROR_LAST)
        return "unknown error";
    return s_messages[-code];
}

const char *
zt_version(void)
{
    return ZTWIST_VERSION_STRING;
}

void
zt__assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "ztwist: assertion failed: %s (%s:%d, %s)\n", expr, file, line, func);
    fflush(stderr);
    abort();
}

_Thread_local uint64_t zt__tid ZT__TLS_FAST;
static atomic_uint_fast64_t s_next_tid = 1; /* the next thread id */

uint64_t
zt__thread_id_assign(void)
{
    if (zt__tid == 0)
        zt__tid = atomic_fetch_add(&s_next_tid, 1);
    return zt__tid;
}

void
zt__thread_fail(const char *what, uint64_t owner, const char *file, int line, const char *func)
{
    fprintf(stderr,
            "ztwist: %s called from thread %llu, but %s (thread %llu) (%s:%d); see "
            "docs/guide-threads.md\n",
            func, (unsigned long long)zt__thread_id(), what, (unsigned long long)owner, file, line);
    fflush(stderr);
    abort();
}
