/*  base/include/base/base.h - the library's private helpers shared by every layer
 *
 *  The one private header that every folder may include: the assertion that is never compiled out,
 * and small helpers for allocation sizes. Everything here is internal (zt__ names) and hidden from
 * the shared library's symbol table.  */
#ifndef ZTWIST_BASE_H
#define ZTWIST_BASE_H

#include <ztwist/common.h>
#include <ztwist/log.h>
#include <ztwist/time.h>

#include "base/compiler.h"

#include <stdnoreturn.h>

/* Report a broken invariant or a caller bug and abort. Never compiled out: NDEBUG does not disable
 * it. */
noreturn void zt__assert_fail(const char *expr, const char *file, int line, const char *func);

#define ZT_ASSERT(cond) ((cond) ? (void)0 : zt__assert_fail(#cond, __FILE__, __LINE__, __func__))

/* A caller bug with an explanation a person can act on. */
#define ZT_ASSERT_MSG(cond, msg)                                                                   \
    ((cond) ? (void)0 : zt__assert_fail(msg, __FILE__, __LINE__, __func__))

/* Threads. zt__thread_id names the calling thread with a small integer, unique in the process and
 * never reused (1 for the first thread that asks, 2 for the next...); any thread. It is one
 * thread-pointer-relative load once the thread has its number. */
extern _Thread_local uint64_t zt__tid ZT__TLS_FAST; /* this thread's id, 0 until asked */
uint64_t zt__thread_id_assign(void);                /* numbers the calling thread */
static inline uint64_t
zt__thread_id(void)
{
    return ZT__LIKELY(zt__tid != 0) ? zt__tid : zt__thread_id_assign();
}

/* A call that belongs to one thread (the owner) was made from another: say which call, which
 * object, both threads and where, then abort. Every build checks: a thread mistake is a caller bug
 * (see docs/guide-threads.md). */
noreturn void zt__thread_fail(const char *what, uint64_t owner, const char *file, int line,
                              const char *func) ZT__COLD;

/* Check that the calling thread is `owner` (a zt__thread_id); `what` names the object's kind and
 * whose thread it is, e.g. "a Deferred belongs to the thread that created it". */
#define ZT__CHECK_THREAD(owner, what)                                                              \
    (ZT__LIKELY((owner) == zt__thread_id())                                                        \
         ? (void)0                                                                                 \
         : zt__thread_fail(what, (owner), __FILE__, __LINE__, __func__))

#define ZT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
