/*  runtime/coro_ctx.c - context switches and what the sanitizers must be told about them
 *
 *  x86-64 switches with the assembly in coro_switch_x86_64.S: a function call that saves the
 * callee-saved registers on the current stack and returns on another one. Every other target (and
 * an x86-64 build configured with ZT_CORO_UCONTEXT=ON) uses makecontext/swapcontext, which is
 * portable but makes a signal-mask system call on each switch.
 *
 *  AddressSanitizer keeps shadow state per stack and must be told before and after each switch
 * which stack runs (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber); a stack
 * reused after its coroutine ended is unpoisoned first, since its last frames never returned.
 * ThreadSanitizer keeps a fiber per stack (__tsan_create_fiber, __tsan_switch_to_fiber). Outside
 * sanitizer builds these calls compile to nothing.  */
#include "coro_ctx.h"

#include <stdint.h>

#ifdef ZT__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef ZT__CORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#ifdef ZT_CORO_UCONTEXT

/* makecontext passes int arguments only: the entry and its arg travel as halves of pointers. */
static void
s_uc_entry(unsigned entry_hi, unsigned entry_lo, unsigned arg_hi, unsigned arg_lo)
{
    uintptr_t e = ((uintptr_t)entry_hi << 16 << 16) | (uintptr_t)entry_lo;
    uintptr_t a = ((uintptr_t)arg_hi << 16 << 16) | (uintptr_t)arg_lo;
    void (*entry)(void *) = NULL;
    _Static_assert(sizeof entry == sizeof e, "a function pointer fits in uintptr_t");
    entry = (void (*)(void *))e;
    entry((void *)a);
}

void
zt__ctx_make(zt__ctx_t *ctx, void *lo, size_t size, void (*entry)(void *), void *arg)
{
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    uintptr_t e = (uintptr_t)entry;
    uintptr_t a = (uintptr_t)arg;
    makecontext(&ctx->uc, (void (*)(void))s_uc_entry, 4, (unsigned)(e >> 16 >> 16), (unsigned)e,
                (unsigned)(a >> 16 >> 16), (unsigned)a);
}

void
zt__ctx_switch(zt__ctx_t *from, zt__ctx_t *to)
{
    swapcontext(&from->uc, &to->uc);
}

#else

void *zt__ctx_x86_64_make(void *top, void (*entry)(void *), void *arg);

void
zt__ctx_make(zt__ctx_t *ctx, void *lo, size_t size, void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15; /* the ABI's 16-byte alignment */
    ctx->sp = zt__ctx_x86_64_make((void *)top, entry, arg);
}

#endif

#ifdef ZT__CORO_SANITIZED

void
zt__fiber_start_switch(zt__fiber_t *self, const zt__fiber_t *to, bool final)
{
#ifdef ZT__ASAN
    __sanitizer_start_switch_fiber(final ? NULL : &self->fake_stack, to->stack_lo, to->stack_size);
#else
    (void)self;
    (void) final;
#endif
#ifdef ZT__CORO_TSAN
    __tsan_switch_to_fiber(to->tsan, 0);
#else
    (void)to;
#endif
}

void
zt__fiber_finish_switch(zt__fiber_t *self, zt__fiber_t *from)
{
#ifdef ZT__ASAN
    if (from)
        __sanitizer_finish_switch_fiber(self->fake_stack, &from->stack_lo, &from->stack_size);
    else
        __sanitizer_finish_switch_fiber(self->fake_stack, NULL, NULL);
#else
    (void)self;
    (void)from;
#endif
}

void
zt__fiber_enter(zt__fiber_t *from)
{
#ifdef ZT__ASAN
    __sanitizer_finish_switch_fiber(NULL, &from->stack_lo, &from->stack_size);
#else
    (void)from;
#endif
}

void *
zt__fiber_tsan_new(void)
{
#ifdef ZT__CORO_TSAN
    return __tsan_create_fiber(0);
#else
    return NULL;
#endif
}

void
zt__fiber_tsan_destroy(void *tsan)
{
#ifdef ZT__CORO_TSAN
    if (tsan)
        __tsan_destroy_fiber(tsan);
#else
    (void)tsan;
#endif
}

void *
zt__fiber_tsan_current(void)
{
#ifdef ZT__CORO_TSAN
    return __tsan_get_current_fiber();
#else
    return NULL;
#endif
}

void
zt__fiber_stack_reset(void *lo, size_t size)
{
#ifdef ZT__ASAN
    __asan_unpoison_memory_region(lo, size);
#else
    (void)lo;
    (void)size;
#endif
}

#endif
