/*  base/include/base/compiler.h - the one place for compiler and platform extensions
 *
 *  ztwist is C11 without GNU extensions, built with _POSIX_C_SOURCE=200809L. A few hot paths gain
 * measurably from what C11 cannot say: a branch hint, a cold out-of-line error path, a thread-local
 * variable read without a call, a cycle counter cheap enough to time one receive. Each is spelled
 * here once, with a plain-C11 fallback, and the rest of the library uses these names. The only
 * other file allowed an extension is compiler.c, which implements the scheduling-policy calls
 * and the accept call below (SCHED_IDLE and accept4 need _GNU_SOURCE on glibc, which must come
 * before any system header). CI's source
 * check (tests/docs/check_sources.sh) rejects an extension anywhere else.  */
#ifndef ZTWIST_BASE_COMPILER_H
#define ZTWIST_BASE_COMPILER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#if defined(__GNUC__) || defined(__clang__)
/* The condition is expected true (false): lay out the other branch out of the way. */
#define ZT__LIKELY(x) __builtin_expect(!!(x), 1)
#define ZT__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* A function on an error path: never inlined into its caller, placed with cold code. */
#define ZT__COLD __attribute__((cold, noinline))
/* Thread-local storage read on a hot path. In a shared library the default TLS model calls
 * __tls_get_addr on every access; initial-exec is one thread-pointer-relative load. It uses a few
 * bytes of the static TLS surplus glibc keeps, so the library can still be dlopen'ed. */
#define ZT__TLS_FAST __attribute__((tls_model("initial-exec")))
#else
#define ZT__LIKELY(x) (x)
#define ZT__UNLIKELY(x) (x)
#define ZT__COLD
#define ZT__TLS_FAST
#endif

/* A cycle counter for timing very short intervals on one thread: monotonic on one core, in an
 * unspecified unit, and only its differences mean anything. ZT__HAS_CYCLES is 0 where there is
 * none; zt__cycles then returns 0. */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <x86intrin.h>
#define ZT__HAS_CYCLES 1
static inline uint64_t
zt__cycles(void)
{
    return __rdtsc();
}
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
#define ZT__HAS_CYCLES 1
static inline uint64_t
zt__cycles(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}
#else
#define ZT__HAS_CYCLES 0
static inline uint64_t
zt__cycles(void)
{
    return 0;
}
#endif

/* Scheduling policy of the calling thread, for a worker that spins without taking a core from
 * runnable threads (compiler.c). Where the platform has no idle policy these return false. */

/* Move the calling thread to the idle policy (SCHED_IDLE). Returns false if refused. */
bool zt__sched_enter_idle(void);
/* Move the calling thread back to the normal policy (SCHED_OTHER). Returns false if refused
 * (leaving SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE >= 20). */
bool zt__sched_leave_idle(void);
/* True when the calling thread runs under the normal policy (not real-time, not idle). */
bool zt__sched_is_normal(void);

/* Accept a connection on the listening socket fd as a non-blocking, close-on-exec socket, in one
 * call where the platform has accept4 (Linux, the BSDs), else accept(2) then fcntl(2) (also when
 * the kernel refuses accept4). addr and len as for accept(2). Returns the new fd, or -1 with errno
 * set as accept(2) sets it. */
int zt__accept_nonblock(int fd, struct sockaddr *addr, socklen_t *len);

#endif
