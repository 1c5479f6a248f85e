/*  ztwist/common.h - export macro, error codes and the types every ztwist header shares
 *
 *  Every call that can fail returns an int: 0, or one of the negative ZT_E* codes below. errno is
 * never part of the API; zt_strerror names a code for a person.
 *
 *  Threads: every function here is safe from any thread.  */
#ifndef ZTWIST_COMMON_H
#define ZTWIST_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(ZTWIST_STATIC)
#define ZT_EXPORT
#elif defined(__GNUC__)
#define ZT_EXPORT __attribute__((visibility("default")))
#else
#define ZT_EXPORT
#endif

#if defined(__GNUC__)
#define ZT_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define ZT_PRINTF(fmt_index, first_arg)
#endif

/**
 *  Marks a call whose result the caller owns and must release (a new object, a new reference, an
 *  owned result): dropping the result is a leak, so GCC and clang warn about it. Expands to nothing
 *  for other compilers.
 */
#if defined(__GNUC__) || defined(__clang__)
#define ZT_NODISCARD __attribute__((warn_unused_result))
#else
#define ZT_NODISCARD
#endif

/** The error codes. 0 is success; every error is negative, so `if (rc < 0)` tests for failure. */
typedef enum zt_error {
    ZT_OK = 0,             /* success */
    ZT_EINVAL = -1,        /* an argument is out of range or a required one is missing */
    ZT_ENOMEM = -2,        /* out of memory */
    ZT_EALREADY = -3,      /* already called: a fired Deferred, a DelayedCall that ran */
    ZT_ECANCELLED = -4,    /* the operation was cancelled */
    ZT_ETIMEDOUT = -5,     /* the operation did not finish before its deadline */
    ZT_ESHUTDOWN = -6,     /* the reactor or pool is stopped or shutting down */
    ZT_EFULL = -7,         /* a bounded queue is full */
    ZT_EEMPTY = -8,        /* a queue is empty */
    ZT_ESTATE = -9,        /* the object is in the wrong state for this call */
    ZT_EDEADLK = -10,      /* the call would wait on the thread that must answer it */
    ZT_ENOTFOUND = -11,    /* no such item, service or host */
    ZT_EIO = -12,          /* an input/output error */
    ZT_ECONNREFUSED = -13, /* the peer refused the connection */
    ZT_ECONNLOST = -14,    /* the connection was lost */
    ZT_EPROTO = -15,       /* the peer broke the protocol */
    ZT_EADDRINUSE = -16,   /* the address is in use */
    ZT_EACCES = -17,       /* permission or authentication denied */
    ZT_EUNREACHABLE = -18, /* the peer cannot be reached */
    ZT_ESYS = -19,         /* another operating-system error; the log says which */
    ZT_ERROR_LAST = -19    /* the most negative code; for range checks */
} zt_error_t;

/**
 *  Name an error code for a person.
 *  @param code  0 or a ZT_E* code
 *  @return a static string; "unknown error" for a code ztwist does not define. Never NULL.
 */
ZT_EXPORT const char *zt_strerror(int code);

/** A destructor for a value handed to ztwist. ztwist calls it at most once per value. */
typedef void zt_free_fn(void *value);

/**
 *  The library's version, "MAJOR.MINOR.PATCH".
 *  @return a static string
 */
ZT_EXPORT const char *zt_version(void);

#endif
