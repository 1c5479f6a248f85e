/*  ztwist/result.h - the value that flows down a Deferred's chain: a value, a Failure, or a
 * Deferred to wait on
 *
 *  Twisted's callbacks take and return any Python object; a raised exception becomes a Failure and
 * a returned Deferred makes the chain wait. ztwist's callbacks take and return a zt_result_t, a
 * small struct passed by value that says which of the three it holds:
 *
 *      zt_ok(ptr, free_fn)  a value; free_fn (or NULL) frees it when the chain is done with it
 *      zt_ok_int(n)         an integer value, nothing to free
 *      zt_ok_none()         no value (Python's None)
 *      zt_err(failure)      a Failure; the result owns it
 *      zt_wait_for(d)       returned by a callback: the chain waits for Deferred d and goes on with
 * its result; the result owns one reference to d
 *
 *  Ownership, the one rule: whoever holds a zt_result_t owns what is in it, and must pass it on
 * (return it, hand it to a call that takes it) or release it with zt_result_release, exactly once.
 * A callback receives the chain's result and owns it; what it returns goes back to the chain. A
 * Deferred frees whatever result it still holds when its last reference goes. A value's free_fn is
 * called exactly once, wherever the value ends.
 *
 *  A public struct, like libuv's uv_buf_t: a small value type built and read in every callback,
 * where an opaque handle would cost an allocation per result. Build and read it with the functions
 * here, not by hand.
 *
 *  Threads: a zt_result_t has no thread affinity, but one holding a Deferred may only be released
 * on the thread that owns the Deferred.  */
#ifndef ZTWIST_RESULT_H
#define ZTWIST_RESULT_H

#include <ztwist/common.h>
#include <ztwist/failure.h>

typedef struct zt_deferred zt_deferred_t;

/** What a zt_result_t holds. */
typedef enum zt_result_kind {
    ZT_RESULT_VALUE = 0,   /* a value (possibly none) */
    ZT_RESULT_FAILURE = 1, /* a Failure */
    ZT_RESULT_DEFERRED = 2 /* a Deferred whose result is awaited */
} zt_result_kind_t;

typedef struct zt_result {
    void *ptr;             /* the value, the Failure or the Deferred; Owned (see the rule above) */
    zt_free_fn *free_fn;   /* frees a value; NULL when the value needs no freeing */
    zt_result_kind_t kind; /* which of the three ptr is */
} zt_result_t;

/** A value; free_fn (NULL for none) frees it exactly once when the chain is done with it. */
static inline zt_result_t
zt_ok(void *value, zt_free_fn *free_fn)
{
    zt_result_t r = {.ptr = value, .free_fn = free_fn, .kind = ZT_RESULT_VALUE};
    return r;
}

/** An integer value, carried in the pointer; nothing to free. */
static inline zt_result_t
zt_ok_int(intptr_t value)
{
    zt_result_t r = {.ptr = (void *)value, .free_fn = NULL, .kind = ZT_RESULT_VALUE};
    return r;
}

/** No value: Python's None. */
static inline zt_result_t
zt_ok_none(void)
{
    zt_result_t r = {.ptr = NULL, .free_fn = NULL, .kind = ZT_RESULT_VALUE};
    return r;
}

/** A failure; the result takes ownership of it. A NULL failure (from an allocation that failed)
 * becomes a ZT_ENOMEM failure when the result reaches a Deferred. */
static inline zt_result_t
zt_err(zt_failure_t *failure)
{
    zt_result_t r = {.ptr = failure, .free_fn = NULL, .kind = ZT_RESULT_FAILURE};
    return r;
}

/** For a callback's return: wait for d and continue with its result. The result takes over the
 * caller's reference to d (call zt_deferred_ref first to keep one). */
static inline zt_result_t
zt_wait_for(zt_deferred_t *d)
{
    zt_result_t r = {.ptr = d, .free_fn = NULL, .kind = ZT_RESULT_DEFERRED};
    return r;
}

/** Whether the result holds a Failure. */
static inline bool
zt_is_err(zt_result_t result)
{
    return result.kind == ZT_RESULT_FAILURE;
}

/** The value's pointer (borrowed; the result still owns it), or NULL for a failure or a Deferred.
 */
static inline void *
zt_result_ptr(zt_result_t result)
{
    return result.kind == ZT_RESULT_VALUE ? result.ptr : NULL;
}

/** The integer of a zt_ok_int value; 0 for a failure or a Deferred. */
static inline intptr_t
zt_result_int(zt_result_t result)
{
    return result.kind == ZT_RESULT_VALUE ? (intptr_t)result.ptr : 0;
}

/** The Failure (borrowed; the result still owns it), or NULL for a value. */
static inline zt_failure_t *
zt_result_failure(zt_result_t result)
{
    return result.kind == ZT_RESULT_FAILURE ? (zt_failure_t *)result.ptr : NULL;
}

/**
 *  Take the value out of a result: the caller owns it from now on (and frees it with the free_fn it
 * was given), and *result becomes zt_ok_none(). A failure or Deferred is left in place and NULL is
 * returned.
 */
static inline void *
zt_result_take(zt_result_t *result)
{
    if (result->kind != ZT_RESULT_VALUE)
        return NULL;
    void *value = result->ptr;
    *result = zt_ok_none();
    return value;
}

/**
 *  Release what the result holds: call the value's free_fn, destroy the Failure, or drop the
 * reference to the Deferred. *result becomes zt_ok_none(), so releasing twice is harmless.
 */
ZT_EXPORT void zt_result_release(zt_result_t *result);

/**
 *  Trap a failure, as Twisted's Failure.trap in an errback: when *result is a Failure of one of the
 * given types (or a subtype), destroy it, set *result to zt_ok_none() and return the type that
 * matched; otherwise leave *result alone and return NULL, and the errback returns it on. Use the
 * macro, which ends the list for you.
 *
 *      static zt_result_t on_error(zt_result_t r, void *arg) {
 *          if (!zt_result_trap(&r, ZT_TIMEOUT_ERROR)) return r;   // not ours: pass it on
 *          return zt_ok_int(-1);                                  // a timeout becomes -1
 *      }
 */
ZT_EXPORT const zt_failure_type_t *zt_result_trap_(zt_result_t *result, ...);
#define zt_result_trap(result, ...)                                                                \
    zt_result_trap_((result), __VA_ARGS__, (const zt_failure_type_t *)0)

#endif
