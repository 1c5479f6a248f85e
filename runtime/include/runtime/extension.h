/*  runtime/include/runtime/extension.h - what the reactor offers the layers above it
 *
 *  Internal (zt__ names): not part of the public API. The reactor's private structure stays in
 * runtime.h; a layer above sees the reactor only through these calls. Reactor thread only.  */
#ifndef ZTWIST_RUNTIME_EXTENSION_H
#define ZTWIST_RUNTIME_EXTENSION_H

#include <ztwist/reactor.h>

#include <stdbool.h>

/* Seconds left before the shutdown deadline (zt_reactor_set_shutdown_timeout) while run's
 * shutdown event fires: 0 once the deadline has passed. `fallback` when no such deadline runs
 * (before stop, or a "shutdown" event fired by hand). A layer that waits during the shutdown
 * waits at most this long, so that one deadline bounds everything from stop to run's return. */
double zt__reactor_shutdown_left(const zt_reactor_t *r, double fallback);

/* Whether the reactor has shut down: run's shutdown event has reached its during phase (Twisted's
 * `running` went false there), or run has returned. A "before shutdown" trigger still sees
 * false. */
bool zt__reactor_is_shut_down(const zt_reactor_t *r);

/* Keep ptr in the reactor under key (any unique address, such as a static of the layer's): fini
 * (or NULL) runs on it first thing in zt_reactor_destroy, while the reactor is still whole.
 * Reactor thread. Returns 0, ZT_EALREADY when key has a slot, ZT_EFULL when every slot is taken
 * (an internal limit, ZT__REACTOR_SLOTS). */
int zt__reactor_set_slot(zt_reactor_t *r, const void *key, void *ptr, zt_free_fn *fini);

/* The pointer kept under key, or NULL. Any thread, while the reactor lives (reactor.h's liveness
 * contract): a slot is set once and stays until destroy. */
void *zt__reactor_slot(const zt_reactor_t *r, const void *key);

#endif
