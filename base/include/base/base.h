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

#define ZT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
