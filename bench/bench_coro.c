/*  bench/bench_coro.c - coroutines over Deferreds: await, start/finish, memory, the raw switch
 *
 *  Figures (the median of BENCH_REPS runs, each in a forked child; peers in bench/peers/
 * twisted_coro.py and asyncio_coro.py):
 *
 *    coro.await_pending_ns     an await of a Deferred that fires later: the Deferred made and
 *                              awaited, the coroutine suspended, the Deferred fired, the coroutine
 *                              resumed from the reactor loop. K coroutines wait at once and one
 *                              reactor pass resumes them all, so the pass's poll is shared.
 *    coro.await_fired_ns       an await of a Deferred that has fired (made beforehand, not timed)
 *    coro.start_finish_ns      zt_coro_start of a coroutine that awaits nothing, and the unref of
 *                              its Deferred
 *    coro.bytes_per_suspended  resident memory per suspended coroutine (stack pages touched, its
 *                              record, its Deferred and the one it awaits), from /proc/self/statm
 *    coro.switch_ns            one raw context switch (half a ping-pong) with the assembly switch;
 *                              peer `ucontext`: swapcontext, the portable alternative
 *
 *  `bench_coro pending start` runs only the figures named (pending, fired, start, memory, switch).
 *  The memory figure needs two mappings per suspended coroutine: as root, vm.max_map_count is
 * raised for the run and put back at exit; otherwise as many as fit are measured, and a '#' line
 * says so.
 */
#include <ztwist.h>

#include "bench_util.h"

#include <ucontext.h>

enum { S_K = 1000 }; /* coroutines waiting at once in await_pending */

typedef struct s_pending {
    zt_reactor_t *r;           /* Borrowed */
    zt_deferred_t *slots[S_K]; /* the Deferred each coroutine awaits (a reference) */
    size_t rounds;             /* awaits per coroutine */
} s_pending_t;

typedef struct s_pending_arg {
    s_pending_t *p; /* Borrowed */
    size_t i;       /* the coroutine's slot */
} s_pending_arg_t;

static zt_result_t
s_pending_body(void *arg)
{
    s_pending_arg_t *a = arg;
    for (size_t round = 0; round < a->p->rounds; round++) {
        zt_deferred_t *d = zt_deferred_new();
        a->p->slots[a->i] = zt_deferred_ref(d);
        zt_result_t r = zt_await(d);
        zt_result_release(&r);
    }
    return zt_ok_none();
}

static void
s_await_pending(void *arg, double *out)
{
    size_t n = *(size_t *)arg;
    s_pending_t p = {.r = zt_reactor_new(), .rounds = n / S_K};
    static s_pending_arg_t args[S_K];
    zt_deferred_t *ds[S_K];
    for (size_t i = 0; i < S_K; i++) {
        args[i] = (s_pending_arg_t){.p = &p, .i = i};
        ds[i] = zt_coro_start(p.r, s_pending_body, &args[i]);
    }
    uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
    for (size_t round = 0; round < p.rounds; round++) {
        for (size_t i = 0; i < S_K; i++) {
            zt_deferred_callback(p.slots[i], zt_ok_int((intptr_t)round));
            zt_deferred_unref(&p.slots[i]);
        }
        zt_reactor_iterate(p.r, 0);
    }
    uint64_t t1 = bench_now_ns(), c1 = bench_cpu_ns();
    for (size_t i = 0; i < S_K; i++) {
        if (!zt_deferred_is_called(ds[i]))
            exit(1);
        zt_deferred_unref(&ds[i]);
    }
    zt_reactor_destroy(&p.r);
    double awaits = (double)(p.rounds * S_K);
    out[0] = (double)(t1 - t0) / awaits;
    out[1] = (double)(c1 - c0) / awaits;
}

typedef struct s_fired {
    zt_deferred_t **ds; /* fired Deferreds, each with a reference kept by the bench */
    size_t n;           /* how many */
    double ns;          /* the result */
} s_fired_t;

static zt_result_t
s_fired_body(void *arg)
{
    s_fired_t *f = arg;
    uint64_t t0 = bench_now_ns();
    intptr_t sum = 0;
    for (size_t i = 0; i < f->n; i++) {
        zt_result_t r = zt_await(f->ds[i]); /* takes the extra reference: not the last */
        sum += zt_result_int(r);
    }
    f->ns = (double)(bench_now_ns() - t0) / (double)f->n;
    return zt_ok_int(sum);
}

static void
s_await_fired(void *arg, double *out)
{
    size_t n = *(size_t *)arg;
    zt_reactor_t *r = zt_reactor_new();
    s_fired_t f = {.ds = malloc(n * sizeof(zt_deferred_t *)), .n = n};
    for (size_t i = 0; i < n; i++) {
        f.ds[i] = zt_deferred_succeed(zt_ok_int(1));
        zt_deferred_t *awaited = zt_deferred_ref(f.ds[i]); /* the reference zt_await takes over */
        (void)awaited;
    }
    zt_deferred_t *d = zt_coro_start(r, s_fired_body, &f);
    if (!zt_deferred_is_called(d))
        exit(1);
    zt_deferred_unref(&d);
    for (size_t i = 0; i < n; i++)
        zt_deferred_unref(&f.ds[i]);
    free(f.ds);
    zt_reactor_destroy(&r);
    out[0] = f.ns;
}

static zt_result_t
s_nothing(void *arg)
{
    (void)arg;
    return zt_ok_none();
}

static void
s_start_finish(void *arg, double *out)
{
    size_t n = *(size_t *)arg;
    zt_reactor_t *r = zt_reactor_new();
    zt_deferred_t *warm = zt_coro_start(r, s_nothing, NULL); /* maps the first stack */
    zt_deferred_unref(&warm);
    uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
    for (size_t i = 0; i < n; i++) {
        zt_deferred_t *d = zt_coro_start(r, s_nothing, NULL);
        zt_deferred_unref(&d);
    }
    out[0] = (double)(bench_now_ns() - t0) / (double)n;
    out[1] = (double)(bench_cpu_ns() - c0) / (double)n;
    zt_reactor_destroy(&r);
}

static double
s_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
        exit(1);
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static zt_result_t
s_suspend_body(void *arg)
{
    zt_deferred_t **slot = arg;
    zt_deferred_t *d = zt_deferred_new();
    *slot = zt_deferred_ref(d);
    zt_result_t r = zt_await(d); /* the teardown's CancelledError */
    zt_result_release(&r);
    return zt_ok_none();
}

static void
s_memory(void *arg, double *out)
{
    size_t n = *(size_t *)arg;
    zt_reactor_t *r = zt_reactor_new();
    zt_deferred_t **slots = calloc(n, sizeof *slots);
    zt_deferred_t **ds = calloc(n, sizeof *ds);
    memset(slots, 0, n * sizeof *slots); /* the two arrays are resident before the count starts */
    memset(ds, 0, n * sizeof *ds);
    double before = s_rss_bytes();
    for (size_t i = 0; i < n; i++)
        ds[i] = zt_coro_start(r, s_suspend_body, &slots[i]);
    double after = s_rss_bytes();
    for (size_t i = 0; i < n; i++) {
        if (!slots[i] || zt_deferred_is_called(ds[i]))
            exit(1); /* every one must be suspended */
        zt_deferred_unref(&slots[i]);
        zt_deferred_unref(&ds[i]);
    }
    zt_reactor_destroy(&r); /* cancels and unwinds all of them */
    free(slots);
    free(ds);
    out[0] = (after - before) / (double)n;
}

/* --- the raw switch: the assembly switch against swapcontext ------------------------------- */

#if defined(__x86_64__)
void *zt__ctx_x86_64_make(void *top, void (*entry)(void *), void *arg);
void zt__ctx_x86_64_switch(void **save_sp, void *load_sp);

static void *s_main_sp, *s_co_sp;

static void
s_asm_pong(void *arg)
{
    (void)arg;
    for (;;)
        zt__ctx_x86_64_switch(&s_co_sp, s_main_sp);
}

static double
s_switch_asm(size_t n)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    s_co_sp = zt__ctx_x86_64_make(stack + sizeof stack, s_asm_pong, NULL);
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++)
        zt__ctx_x86_64_switch(&s_main_sp, s_co_sp);
    return (double)(bench_now_ns() - t0) / (double)(2 * n);
}
#endif

static ucontext_t s_main_uc, s_co_uc;

static void
s_uc_pong(void)
{
    for (;;)
        swapcontext(&s_co_uc, &s_main_uc);
}

static double
s_switch_ucontext(size_t n)
{
    static char stack[64 * 1024];
    getcontext(&s_co_uc);
    s_co_uc.uc_stack.ss_sp = stack;
    s_co_uc.uc_stack.ss_size = sizeof stack;
    s_co_uc.uc_link = NULL;
    makecontext(&s_co_uc, s_uc_pong, 0);
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++)
        swapcontext(&s_main_uc, &s_co_uc);
    return (double)(bench_now_ns() - t0) / (double)(2 * n);
}

static void
s_switches(void *arg, double *out)
{
    size_t n = *(size_t *)arg;
#if defined(__x86_64__)
    out[0] = s_switch_asm(n);
#else
    out[0] = 0;
#endif
    out[1] = s_switch_ucontext(n);
}

static void
s_report(const char *name, double *runs, const char *unit, double target)
{
    double median = bench_report(name, runs, BENCH_REPS, unit);
    if (target > 0)
        printf("#   target: %s <= %g %s: %s\n", name, target, unit,
               median <= target ? "met" : "MISSED");
}

/* vm.max_map_count, which bounds a process's mappings: each suspended coroutine holds two (its
 * stack and the guard page below it). */
#define S_MAP_COUNT "/proc/sys/vm/max_map_count"

static long s_map_count_saved;  /* the value to put back at exit, or 0 */
static pid_t s_map_count_owner; /* the process that raised it (the forked runs must not restore) */

static long
s_map_count_read(void)
{
    FILE *f = fopen(S_MAP_COUNT, "r");
    long max = 0;
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 0;
        fclose(f);
    }
    return max;
}

static bool
s_map_count_write(long value)
{
    FILE *f = fopen(S_MAP_COUNT, "w");
    if (!f)
        return false;
    bool ok = fprintf(f, "%ld\n", value) > 0;
    return fclose(f) == 0 && ok;
}

static void
s_map_count_restore(void)
{
    if (s_map_count_saved > 0 && getpid() == s_map_count_owner) {
        if (!s_map_count_write(s_map_count_saved))
            fprintf(stderr, "bench_coro: could not restore vm.max_map_count to %ld\n",
                    s_map_count_saved);
        s_map_count_saved = 0;
    }
}

/* How many suspended coroutines the memory figure measures: `want`, raising vm.max_map_count for
 * this run when it is too low and the process may write it (root; put back at exit), else as
 * many as fit, with a '#' line saying so. */
static size_t
s_memory_count(size_t want)
{
    long max = s_map_count_read();
    long need = (long)(2 * want + 5000); /* the other mappings: libraries, heap, ZeroMQ threads */
    if (max <= 0 || max >= need)
        return want;
    if (s_map_count_write(need)) {
        s_map_count_saved = max;
        s_map_count_owner = getpid();
        atexit(s_map_count_restore);
        printf("# coro.bytes_per_suspended: vm.max_map_count raised from %ld to %ld for this run "
               "(put back at exit)\n",
               max, need);
        return want;
    }
    size_t fit = ((size_t)max - 5000) / 2 / 10000 * 10000;
    printf("# coro.bytes_per_suspended: vm.max_map_count is %ld and cannot be raised (not root), "
           "so %zu suspended coroutines (two mappings each) instead of %zu\n",
           max, fit, want);
    return fit;
}

/* Whether figure `name` runs: all of them without arguments, else those named on the command line
 * (`bench_coro pending start` for A/B runs of one figure). */
static bool
s_wanted(int argc, char **argv, const char *name)
{
    if (argc < 2)
        return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

int
main(int argc, char **argv)
{
    bool quick = bench_quick();
    size_t n = quick ? 100000 : 2000000;
    bool w_pending = s_wanted(argc, argv, "pending"), w_fired = s_wanted(argc, argv, "fired");
    bool w_start = s_wanted(argc, argv, "start"), w_mem = s_wanted(argc, argv, "memory");
    bool w_switch = s_wanted(argc, argv, "switch");
    size_t nmem = w_mem ? s_memory_count(quick ? 10000 : 100000) : 0;
    printf("# ztwist %s coroutines: N = %zu awaits, %d coroutines waiting at once in "
           "await_pending, %zu suspended for the memory figure\n",
           zt_version(), n, S_K, nmem);
    printf("# targets: await_pending <= 50 ns, await_fired <= 10 ns, start_finish <= 100 ns, "
           "<= 8192 B per suspended coroutine\n");
    fflush(stdout);
    double pending[2][BENCH_REPS], fired[BENCH_REPS], start[2][BENCH_REPS], mem[BENCH_REPS];
    double sw[2][BENCH_REPS];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double out[2];
        if (w_pending) {
            bench_run_forked(s_await_pending, &n, out, 2);
            pending[0][rep] = out[0], pending[1][rep] = out[1];
        }
        if (w_fired) {
            bench_run_forked(s_await_fired, &n, out, 1);
            fired[rep] = out[0];
        }
        if (w_start) {
            bench_run_forked(s_start_finish, &n, out, 2);
            start[0][rep] = out[0], start[1][rep] = out[1];
        }
        if (w_mem) {
            bench_run_forked(s_memory, &nmem, out, 1);
            mem[rep] = out[0];
        }
        if (w_switch) {
            bench_run_forked(s_switches, &n, out, 2);
            sw[0][rep] = out[0], sw[1][rep] = out[1];
        }
    }
    if (w_pending) {
        s_report("coro.await_pending_ns", pending[0], "ns", 50);
        bench_note("coro.await_pending_ns", "on CPU time", pending[1], BENCH_REPS, "ns");
    }
    if (w_fired)
        s_report("coro.await_fired_ns", fired, "ns", 10);
    if (w_start) {
        s_report("coro.start_finish_ns", start[0], "ns", 100);
        bench_note("coro.start_finish_ns", "on CPU time", start[1], BENCH_REPS, "ns");
    }
    if (w_mem)
        s_report("coro.bytes_per_suspended", mem, "B", 8192);
    if (w_switch) {
#if defined(__x86_64__)
        s_report("coro.switch_ns", sw[0], "ns", 0);
#endif
        printf("BENCH coro.switch_ns.peer.ucontext ");
        bench_print_value(bench_median(sw[1], BENCH_REPS));
        printf(" ns\n");
    }
    return 0;
}
