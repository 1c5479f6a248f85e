/*  futures/result.c - releasing and trapping the zt_result_t that flows down a Deferred's chain
 *
 *  The constructors and readers are inline in <ztwist/result.h>; the two calls here need the
 * Failure and Deferred implementations.  */
#include "futures.h"

#include <stdarg.h>

void
zt_result_release(zt_result_t *result)
{
    ZT_ASSERT(result);
    zt_result_t r = *result;
    *result = zt_ok_none();
    switch (r.kind) {
    case ZT_RESULT_VALUE:
        if (r.free_fn)
            r.free_fn(r.ptr);
        break;
    case ZT_RESULT_FAILURE: {
        zt_failure_t *failure = r.ptr;
        zt_failure_destroy(&failure);
        break;
    }
    case ZT_RESULT_DEFERRED: {
        zt_deferred_t *d = r.ptr;
        zt_deferred_unref(&d);
        break;
    }
    default:
        ZT_ASSERT_MSG(false, "zt_result_release: not a zt_result_t");
    }
}

const zt_failure_type_t *
zt_result_trap_(zt_result_t *result, ...)
{
    ZT_ASSERT(result);
    if (result->kind != ZT_RESULT_FAILURE || !result->ptr)
        return NULL;
    const zt_failure_type_t *type = zt_failure_type(result->ptr);
    const zt_failure_type_t *match = NULL;
    va_list ap;
    va_start(ap, result);
    for (const zt_failure_type_t *t = va_arg(ap, const zt_failure_type_t *); t;
         t = va_arg(ap, const zt_failure_type_t *)) {
        if (zt_failure_type_is(type, t)) {
            match = t;
            break;
        }
    }
    va_end(ap);
    if (match)
        zt_result_release(result);
    return match;
}
