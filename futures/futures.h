/*  futures/futures.h - internals shared by the files of the futures folder
 *
 *  Private to futures/: helpers that Deferred, the group/lock/queue classes and the result helpers
 * share, and that the public headers do not promise.  */
#ifndef ZTWIST_FUTURES_H
#define ZTWIST_FUTURES_H

#include "base/base.h"

#include <ztwist/deferred.h>
#include <ztwist/failure.h>
#include <ztwist/result.h>

/* A ZT_ENOMEM failure for the places where an allocation failed and a Failure must still be
 * delivered. Never NULL: when even this allocation fails it returns a static Failure that
 * zt_failure_destroy recognises and does not free. */
zt_failure_t *zt__failure_nomem(void);

/* A block for a Deferred, from the thread's cache of freed ones or malloc (deferred_cache.c); NULL
 * when out of memory. */
void *zt__deferred_mem_alloc(size_t size);
/* Give back a block from zt__deferred_mem_alloc, of the same size: cached or freed. */
void zt__deferred_mem_free(void *block, size_t size);

/* Write "Type: message (file:line in func)" and then "; caused by: ..." for each cause into buf,
 * as snprintf does. Returns the length the whole text needs. */
int zt__failure_describe(const zt_failure_t *self, char *buf, size_t size);

#endif
