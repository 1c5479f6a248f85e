/*  actors/registry.c - names for actors: one process-wide table under a mutex
 *
 *  Design notes. Why process-wide rather than per reactor: a name is how code that does not hold a
 * reference finds an actor, and that code is often on another thread or another reactor (a worker,
 * a bridge, main); a per-reactor table would make it first find the right reactor, and two
 * reactors could hand out the same name. One table under one mutex keeps a name unique in the
 * process, and registration and lookup are rare next to messages, so the lock is cold. The table
 * holds a counted reference to each named actor, so a lookup racing with the actor's end returns
 * either a reference (whose sends then fail with ZT_ESHUTDOWN) or NULL, never freed memory. The
 * name goes when the actor ends for good (actor.c calls zt__registry_forget after a supervisor has
 * had its say); no user code runs under the lock. The end and a racing registration agree through
 * `named` (seq_cst): registration sets it before it checks that the actor is alive, the end marks
 * the actor ended before it reads `named`, so either the registration sees the end and fails, or
 * the end sees the flag and removes the name under the lock, after the registration is done.  */
#include "actor_impl.h"

#include <stdlib.h>
#include <string.h>

#define ZT__REG_BUCKETS 256 /* hash buckets; chains grow past that */
#define ZT__REG_NAME_MAX 255

typedef struct s_entry {
    struct s_entry *next; /* the bucket's chain; Owned */
    zt_actor_t *actor;    /* Owned reference */
    char name[];          /* the name */
} s_entry_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_entry_t *s_buckets[ZT__REG_BUCKETS];

static size_t
s_hash(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % ZT__REG_BUCKETS;
}

static s_entry_t **
s_find(const char *name)
{
    s_entry_t **pp = &s_buckets[s_hash(name)];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

int
zt_actor_register(zt_actor_t *self, const char *name)
{
    ZT_ASSERT(self);
    if (!name || !*name || strlen(name) > ZT__REG_NAME_MAX)
        return ZT_EINVAL;
    size_t len = strlen(name);
    s_entry_t *entry = malloc(sizeof *entry + len + 1);
    if (!entry)
        return ZT_ENOMEM;
    memcpy(entry->name, name, len + 1);
    int rc = 0;
    pthread_mutex_lock(&s_lock);
    s_entry_t **pp = s_find(name);
    if (*pp || atomic_exchange(&self->named, true)) {
        rc = ZT_EALREADY;
    } else if (!zt_actor_is_alive(self)) {
        atomic_store(&self->named, false);
        rc = ZT_ESHUTDOWN;
    } else {
        entry->actor = zt_actor_ref(self);
        entry->next = NULL;
        *pp = entry;
    }
    pthread_mutex_unlock(&s_lock);
    if (rc < 0)
        free(entry);
    return rc;
}

/* Remove *pp under the lock; returns the entry to free outside it. */
static s_entry_t *
s_remove(s_entry_t **pp)
{
    s_entry_t *entry = *pp;
    *pp = entry->next;
    atomic_store(&entry->actor->named, false);
    return entry;
}

static void
s_free(s_entry_t *entry)
{
    if (!entry)
        return;
    zt_actor_unref(&entry->actor);
    free(entry);
}

int
zt_actor_unregister(const char *name)
{
    if (!name)
        return ZT_ENOTFOUND;
    pthread_mutex_lock(&s_lock);
    s_entry_t **pp = s_find(name);
    s_entry_t *entry = *pp ? s_remove(pp) : NULL;
    pthread_mutex_unlock(&s_lock);
    s_free(entry);
    return entry ? 0 : ZT_ENOTFOUND;
}

zt_actor_t *
zt_actor_whereis(const char *name)
{
    if (!name)
        return NULL;
    pthread_mutex_lock(&s_lock);
    s_entry_t *entry = *s_find(name);
    zt_actor_t *a = entry ? zt_actor_ref(entry->actor) : NULL;
    pthread_mutex_unlock(&s_lock);
    return a;
}

void
zt__registry_forget(zt_actor_t *a)
{
    if (!atomic_load(&a->named))
        return;
    s_entry_t *entry = NULL;
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < ZT__REG_BUCKETS && !entry; i++)
        for (s_entry_t **pp = &s_buckets[i]; *pp; pp = &(*pp)->next)
            if ((*pp)->actor == a) {
                entry = s_remove(pp);
                break;
            }
    pthread_mutex_unlock(&s_lock);
    s_free(entry);
}
