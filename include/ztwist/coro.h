/*  ztwist/coro.h - sequential code over Deferreds: Twisted's inlineCallbacks / ensureDeferred in C
 *
 *  A coroutine is a function run on a stack of its own on the reactor thread. It may call
 * zt_await(d) on any Deferred: when d has fired, zt_await returns its result at once; when it has
 * not, the coroutine is suspended, the reactor goes on running other callbacks, and when d fires
 * the coroutine is resumed from the reactor's loop (never from inside the call that fired d) and
 * zt_await returns d's result. What the function returns fires the Deferred that zt_coro_start
 * returned. So
 *
 *      static zt_result_t fetch_twice(void *arg) {              // @inlineCallbacks
 *          zt_result_t a = zt_await(get_page(arg));             // a = yield getPage(url)
 *          if (zt_is_err(a)) return a;                          // (an exception propagates)
 *          zt_result_t b = zt_await(zt_defer_later(r, 1.0, NULL, NULL));
 *          zt_result_release(&b);
 *          return a;                                            // returnValue(a)
 *      }
 *      zt_deferred_t *d = zt_coro_start(r, fetch_twice, url);   // ensureDeferred(fetchTwice(url))
 *
 *  is the Deferred chain get_page(url).addCallback(wait a second).addCallback(return the page),
 * written in order. `if (zt_is_err(r))` after an await is the try/except; returning a failure is
 * the raise.
 *
 *  Semantics are Twisted's: the coroutine starts at once, inside zt_coro_start, and runs until its
 * first await of a Deferred that has not fired (so a coroutine that never waits has fired its
 * Deferred when zt_coro_start returns). An await takes the Deferred's result: the awaited
 * Deferred's chain goes on with no value (None), as Twisted's does. Cancelling the coroutine's
 * Deferred cancels the Deferred it is awaiting; the await then returns that Deferred's result
 * (usually a ZT_CANCELLED_ERROR failure) and the coroutine's Deferred fires with whatever the
 * coroutine finally returns, which may be a value if it chose to recover. A failure the coroutine
 * returns fails its Deferred, and is reported as unhandled like any Deferred's when nobody takes
 * it.
 *
 *  Deterministic end: a coroutine still suspended when its reactor is destroyed is not leaked.
 * zt_reactor_destroy first cancels the Deferred each one awaits and resumes it, so its await
 * returns (usually ZT_CANCELLED_ERROR) and it can unwind and free what it holds; from then on every
 * zt_await in any coroutine of that reactor cancels its Deferred and returns at once, without
 * suspending. The coroutine's own Deferred fires with what it returns, during zt_reactor_destroy.
 *
 *  Stacks: each coroutine runs on a stack mapped with mmap, with an inaccessible guard page below
 * it, so an overflow stops the process with SIGSEGV at an address in the guard page instead of
 * corrupting memory; only the pages a coroutine touches use memory. The size is set per reactor
 * (zt_coro_set_stack_size, 64 KiB by default); a few stacks of finished coroutines are kept for
 * reuse. Each live coroutine holds two memory mappings (the stack and its guard), so Linux's
 * vm.max_map_count (65,530 by default) bounds a process to about 32,000 live coroutines unless it
 * is raised. Deep recursion or large arrays on a coroutine's stack need a larger size.
 *
 *  Threads: every function here is for the reactor thread, and a coroutine runs only on the thread
 * of the reactor that started it.  */
#ifndef ZTWIST_CORO_H
#define ZTWIST_CORO_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/reactor.h>
#include <ztwist/result.h>

/**
 *  The body of a coroutine: runs on its own stack and returns the coroutine's result, which fires
 * the coroutine's Deferred (a value, a failure, or zt_wait_for(d) to end with d's result).
 *  @param arg  the arg given to zt_coro_start
 */
typedef zt_result_t zt_coro_fn(void *arg);

/**
 *  Run fn(arg) as a coroutine on reactor r and get its result as a Deferred (Twisted's
 * ensureDeferred, or calling an inlineCallbacks function). fn starts at once and runs until its
 * first zt_await of a Deferred that has not fired, or until it returns.
 *  @param r    the reactor that resumes the coroutine; the caller must be on its thread
 *  @param fn   the coroutine's body; NULL is a caller bug (an assertion)
 *  @param arg  passed to fn; borrowed, never freed by ztwist
 *  @return a new reference to the coroutine's Deferred, owned by the caller. When the coroutine
 * cannot start (no memory, no stack mapping), fn never runs and the Deferred has failed with a
 * ZT_SYSTEM_ERROR (ZT_ENOMEM) saying why. NULL only when even that Deferred cannot be allocated.
 */
ZT_EXPORT zt_deferred_t *zt_coro_start(zt_reactor_t *r, zt_coro_fn *fn, void *arg);

/**
 *  Wait for d inside a coroutine and return its result (Python's `await d`, `yield d` in
 * inlineCallbacks). Returns at once when d has fired; otherwise suspends the coroutine until d
 * fires, the reactor running other work meanwhile. d's chain goes on with no value afterwards.
 *  @param d  takes over the caller's reference to d (as zt_wait_for does: call zt_deferred_ref
 * first to keep one), so `zt_await(zt_defer_later(...))` leaks nothing. NULL (an operation that
 * could not allocate its Deferred) returns a ZT_ENOMEM failure.
 *  @return d's result, owned by the caller: a value, or a failure (test with zt_is_err). Called
 * outside a coroutine (on a thread's own stack) it does not wait: d's reference is dropped and a
 * ZT_SYSTEM_ERROR failure with code ZT_EINVAL, "zt_await called outside a coroutine", is returned.
 */
ZT_EXPORT zt_result_t zt_await(zt_deferred_t *d);

/**
 *  Whether the caller runs inside a coroutine (where zt_await may suspend).
 */
ZT_EXPORT bool zt_coro_is_inside(void);

/**
 *  Set the stack size of the coroutines r starts from now on (those running keep theirs).
 *  @param bytes  rounded up to whole pages; at least 16 KiB. The default is 64 KiB.
 *  @return 0; ZT_EINVAL when bytes is below 16 KiB or above 1 GiB; ZT_ENOMEM
 */
ZT_EXPORT int zt_coro_set_stack_size(zt_reactor_t *r, size_t bytes);

#endif
