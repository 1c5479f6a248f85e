/*  futures/deferred_cache.c - a per-thread cache of freed Deferreds
 *
 *  A thread keeps up to S_CACHE_MAX freed Deferreds for its next ones, so that a Deferred made and
 * dropped per operation (one per coroutine await) costs no malloc and free. Every Deferred is the
 * same size; the cache holds blocks of that one size, linked through their first word.
 *
 *  Design notes. The cache is the thread's own: thread-locals, no lock, and a Deferred is made and
 * freed only on its owner thread (deferred.c checks). A pthread key's destructor frees the cache
 * when the thread exits; one that caches again from a later destructor sets the key again, so the
 * destructor runs once more. The main thread's cache stays reachable (its thread-locals live until
 * the process ends). AddressSanitizer builds keep no cache, so that a use after the last unref is
 * still reported.  */
#include "futures.h"

#include <pthread.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define S_NO_CACHE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_NO_CACHE 1
#endif
#endif

#ifdef S_NO_CACHE

void *
zt__deferred_mem_alloc(size_t size)
{
    return malloc(size);
}

void
zt__deferred_mem_free(void *block, size_t size)
{
    (void)size;
    free(block);
}

#else

enum { S_CACHE_MAX = 64 }; /* blocks kept per thread */

typedef struct s_block {
    struct s_block *next; /* the next cached block */
} s_block_t;

static _Thread_local s_block_t *s_cache ZT__TLS_FAST;   /* Owned: the cached blocks */
static _Thread_local uint32_t s_cache_len ZT__TLS_FAST; /* blocks in s_cache */
static _Thread_local size_t s_cache_size ZT__TLS_FAST;  /* their size; 0 before the first */
static _Thread_local bool s_cache_keyed ZT__TLS_FAST;   /* s_cache_key is set: the exit frees it */
static pthread_once_t s_cache_once = PTHREAD_ONCE_INIT; /* creates s_cache_key */
static pthread_key_t s_cache_key; /* runs s_cache_exit when a thread that cached a block exits */
static bool s_cache_ok;           /* s_cache_key exists */

static void
s_cache_exit(void *unused)
{
    (void)unused;
    while (s_cache) {
        s_block_t *b = s_cache;
        s_cache = b->next;
        free(b);
    }
    s_cache_len = 0;
    s_cache_keyed = false; /* a block freed by a later destructor sets the key again */
}

static void
s_cache_key_create(void)
{
    s_cache_ok = pthread_key_create(&s_cache_key, s_cache_exit) == 0;
}

void *
zt__deferred_mem_alloc(size_t size)
{
    s_block_t *b = s_cache;
    if (b && size == s_cache_size) {
        s_cache = b->next;
        s_cache_len--;
        return b;
    }
    return malloc(size);
}

void
zt__deferred_mem_free(void *block, size_t size)
{
    if (s_cache_len < S_CACHE_MAX && (size == s_cache_size || !s_cache)) {
        if (ZT__UNLIKELY(!s_cache_keyed)) {
            pthread_once(&s_cache_once, s_cache_key_create);
            s_cache_keyed = s_cache_ok && pthread_setspecific(s_cache_key, &s_cache_keyed) == 0;
        }
        if (s_cache_keyed) {
            s_block_t *b = block;
            b->next = s_cache;
            s_cache = b;
            s_cache_size = size;
            s_cache_len++;
            return;
        }
    }
    free(block);
}

#endif
