/*  runtime/coro_switch_x86_64.S - the coroutine context switch for x86-64 (System V ABI)
 *
 *  A switch is a function call that returns on another stack. By the System V ABI the caller of a
 *  function already saved every register it needs except the callee-saved ones: rbx, rbp, r12-r15,
 *  the stack pointer, and the control bits of MXCSR and of the x87 control word. So a switch pushes
 *  those on the current stack, stores the stack pointer, loads the other context's stack pointer and
 *  pops the same set from there (each control word is loaded only when it differs), and jumps to
 *  the return address found there. A new context's stack is laid out by zt__ctx_x86_64_make as if
 *  it had been switched away from just before entering zt__ctx_x86_64_trampoline, which calls
 *  entry(arg) with r12 = arg and r13 = entry. The entry function never returns (the coroutine's last
 *  act is a switch away from it for good); if it did, ud2 stops the process.  */

        .text

/* void zt__ctx_x86_64_switch(void **save_sp, void *load_sp)
 * Save the callee-saved state on this stack and its stack pointer in *save_sp; continue on load_sp. */
        .globl  zt__ctx_x86_64_switch
        .hidden zt__ctx_x86_64_switch
        .type   zt__ctx_x86_64_switch, @function
        .p2align 4
zt__ctx_x86_64_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        /* Loading a control word costs several times more than comparing it, and contexts almost
         * always share the thread's modes: load each only when it differs from the current one. */
        movl    (%rsp), %eax
        movq    (%rdi), %rcx
        cmpl    (%rcx), %eax
        je      1f
        ldmxcsr (%rsp)
1:      movzwl  4(%rsp), %eax
        cmpw    4(%rcx), %ax
        je      2f
        fldcw   4(%rsp)
2:      addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        /* Not ret: the return stack predictor holds this stack's callers, not the other one's, so
         * a ret here would be mispredicted (and, popping its entry, leave every ret after it on the
         * other stack mispredicted too). An indirect jump is predicted from its own history. */
        popq    %rcx
        jmpq    *%rcx
        .cfi_endproc
        .size   zt__ctx_x86_64_switch, .-zt__ctx_x86_64_switch

/* void *zt__ctx_x86_64_make(void *top, void (*entry)(void *), void *arg)
 * Lay out a first frame below top (16-byte aligned) and return the stack pointer to switch to.
 * From top down: the trampoline's address (where the switch's jump goes; after it rsp == top, so the
 * trampoline's call leaves the 16-byte alignment the ABI wants), rbp = 0 (the end of the frame
 * chain), rbx, r12 = arg, r13 = entry, r14, r15, then the current MXCSR and x87 control word. */
        .globl  zt__ctx_x86_64_make
        .hidden zt__ctx_x86_64_make
        .type   zt__ctx_x86_64_make, @function
        .p2align 4
zt__ctx_x86_64_make:
        .cfi_startproc
        leaq    zt__ctx_x86_64_trampoline(%rip), %rax
        movq    %rax, -8(%rdi)
        movq    $0, -16(%rdi)
        movq    $0, -24(%rdi)
        movq    %rdx, -32(%rdi)
        movq    %rsi, -40(%rdi)
        movq    $0, -48(%rdi)
        movq    $0, -56(%rdi)
        stmxcsr -64(%rdi)
        fnstcw  -60(%rdi)
        leaq    -64(%rdi), %rax
        ret
        .cfi_endproc
        .size   zt__ctx_x86_64_make, .-zt__ctx_x86_64_make

/* The first code a new context runs: entry(arg). rip is marked undefined so that debuggers and
 * unwinders end the backtrace here instead of walking into the stack's top. */
        .type   zt__ctx_x86_64_trampoline, @function
        .p2align 4
zt__ctx_x86_64_trampoline:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r12, %rdi
        callq   *%r13
        ud2
        .cfi_endproc
        .size   zt__ctx_x86_64_trampoline, .-zt__ctx_x86_64_trampoline

        .section .note.GNU-stack,"",@progbits
