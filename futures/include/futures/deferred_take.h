/*  futures/include/futures/deferred_take.h - the futures layer's interface for coroutines
 *
 *  An await (runtime/coro.c) of a Deferred that has fired takes its result, as a link added with
 * zt_deferred_add_both that returns None would, but without adding and running a link.  */
#ifndef ZTWIST_FUTURES_DEFERRED_TAKE_H
#define ZTWIST_FUTURES_DEFERRED_TAKE_H

#include <ztwist/deferred.h>

/* When self has fired, runs no link, is not paused, does not wait on another Deferred and has no
 * pending link: move its result to *out, leave it None, and return true. Otherwise change nothing
 * and return false (add a link instead). Reactor thread (the Deferred's own). */
bool zt__deferred_take_result(zt_deferred_t *self, zt_result_t *out);

#endif
