/*  runtime/slots.c - extension slots: per-reactor state of the layers above the runtime
 *
 *  Design notes. A layer above (the actors layer's thread pool) keeps its per-reactor record in a
 * slot instead of a process-wide registry keyed by reactor. The array is fixed, so a lookup never
 * races with a resize: the reactor thread fills a free slot's ptr and fini, then publishes its key
 * with a release store; any thread looks a key up with acquire loads, and then sees ptr and fini.
 * Slots are never cleared before destroy, which runs every fini on the reactor thread before
 * anything else is torn down. A lookup from another thread is safe while the reactor lives, which
 * reactor.h's liveness contract guarantees.  */
#include "runtime.h"
#include "runtime/extension.h"

int
zt__reactor_set_slot(zt_reactor_t *r, const void *key, void *ptr, zt_free_fn *fini)
{
    ZT_ASSERT(r && key);
    ZT__ASSERT_REACTOR_THREAD(r);
    for (size_t i = 0; i < ZT__REACTOR_SLOTS; i++) {
        zt__slot_t *s = &r->slots[i];
        const void *k = atomic_load_explicit(&s->key, memory_order_relaxed);
        if (k == key)
            return ZT_EALREADY;
        if (k)
            continue;
        s->ptr = ptr;
        s->fini = fini;
        atomic_store_explicit(&s->key, key, memory_order_release);
        return 0;
    }
    return ZT_EFULL;
}

void *
zt__reactor_slot(const zt_reactor_t *r, const void *key)
{
    ZT_ASSERT(r && key);
    for (size_t i = 0; i < ZT__REACTOR_SLOTS; i++)
        if (atomic_load_explicit(&r->slots[i].key, memory_order_acquire) == key)
            return r->slots[i].ptr;
    return NULL;
}

void
zt__slots_fini(zt_reactor_t *r)
{
    for (size_t i = 0; i < ZT__REACTOR_SLOTS; i++) {
        zt__slot_t *s = &r->slots[i];
        if (atomic_load_explicit(&s->key, memory_order_relaxed) && s->fini)
            s->fini(s->ptr);
        s->fini = NULL;
        s->ptr = NULL;
    }
}
