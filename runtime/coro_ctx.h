/*  runtime/coro_ctx.h - machine contexts and stacks for coroutines (coro_ctx.c, coro_stack.c)
 *
 *  A context is what a suspended stack needs to go on: on x86-64 its stack pointer (the switch in
 * coro_switch_x86_64.S pushes the rest on the stack itself); elsewhere a ucontext_t. The build
 * defines ZT_CORO_UCONTEXT where the assembly switch is not used (any other architecture, or on
 * request to test the fallback). The sanitizers are told about every switch here.  */
#ifndef ZTWIST_CORO_CTX_H
#define ZTWIST_CORO_CTX_H

#include <stdbool.h>
#include <stddef.h>

#ifdef ZT_CORO_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define ZT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZT__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ZT__CORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZT__CORO_TSAN 1
#endif
#endif

/* A suspended machine context. */
typedef struct zt__ctx {
#ifdef ZT_CORO_UCONTEXT
    ucontext_t uc; /* the saved registers and signal mask */
#else
    void *sp; /* the saved stack pointer; the rest is pushed on that stack */
#endif
} zt__ctx_t;

/* What the sanitizers need to follow one side of a switch. */
typedef struct zt__fiber {
    const void *stack_lo; /* lowest usable address of the stack; Borrowed */
    size_t stack_size;    /* usable bytes */
    void *fake_stack;     /* ASan's fake stack saved while switched away; Borrowed */
    void *tsan;           /* TSan's fiber; Owned for a coroutine, Borrowed for a resumer */
} zt__fiber_t;

/* Make ctx start entry(arg) on the stack [lo, lo + size) at its first switch-in. */
void zt__ctx_make(zt__ctx_t *ctx, void *lo, size_t size, void (*entry)(void *), void *arg);

/* Save the current context in from and continue in to. Returns when something switches back. */
#ifdef ZT_CORO_UCONTEXT
void zt__ctx_switch(zt__ctx_t *from, zt__ctx_t *to);
#else
void zt__ctx_x86_64_switch(void **save_sp, void *load_sp); /* coro_switch_x86_64.S */
static inline void
zt__ctx_switch(zt__ctx_t *from, zt__ctx_t *to)
{
    zt__ctx_x86_64_switch(&from->sp, to->sp);
}
#endif

/* The sanitizer half of a switch, around zt__ctx_switch: start before it (to is where we go; final
 * when the current stack is never resumed again), finish right after it returns (self is the
 * context that now runs; from receives the stack we came from). zt__fiber_enter is the first code
 * of a new context. TSan keeps a fiber per coroutine. Without a sanitizer these do nothing. */
#if defined(ZT__ASAN) || defined(ZT__CORO_TSAN)
#define ZT__CORO_SANITIZED 1
void zt__fiber_start_switch(zt__fiber_t *self, const zt__fiber_t *to, bool final);
void zt__fiber_finish_switch(zt__fiber_t *self, zt__fiber_t *from);
void zt__fiber_enter(zt__fiber_t *from);
void *zt__fiber_tsan_new(void);
void zt__fiber_tsan_destroy(void *tsan);
void *zt__fiber_tsan_current(void);
/* Forget ASan's shadow state of a stack about to be reused (its last frames never returned). */
void zt__fiber_stack_reset(void *lo, size_t size);
#else
static inline void
zt__fiber_start_switch(zt__fiber_t *self, const zt__fiber_t *to, bool final)
{
    (void)self, (void)to, (void) final;
}
static inline void
zt__fiber_finish_switch(zt__fiber_t *self, zt__fiber_t *from)
{
    (void)self, (void)from;
}
static inline void
zt__fiber_enter(zt__fiber_t *from)
{
    (void)from;
}
static inline void *
zt__fiber_tsan_new(void)
{
    return NULL;
}
static inline void
zt__fiber_tsan_destroy(void *tsan)
{
    (void)tsan;
}
static inline void *
zt__fiber_tsan_current(void)
{
    return NULL;
}
static inline void
zt__fiber_stack_reset(void *lo, size_t size)
{
    (void)lo, (void)size;
}
#endif

/* A stack: a guard page, then size usable bytes, one mapping. */
typedef struct zt__stack {
    void *map;       /* Owned: the mapping (guard page first) */
    size_t map_size; /* bytes mapped */
    void *lo;        /* Borrowed: the lowest usable byte, just above the guard page */
    size_t size;     /* usable bytes */
    unsigned vg_id;  /* valgrind's id for the stack, 0 when not under valgrind */
} zt__stack_t;

/* Map a stack of at least size bytes (rounded up to pages) with a guard page below. Returns 0 or
 * ZT_ENOMEM (the mapping or the guard's mprotect failed: memory or vm.max_map_count). */
int zt__stack_map(zt__stack_t *self, size_t size);
/* Unmap; a zeroed stack is left. */
void zt__stack_unmap(zt__stack_t *self);
/* The page size, for rounding. */
size_t zt__stack_page_size(void);

#endif
