/*  bench/bench_deferred.c - what a Deferred costs: time per callback, per chained hop, and heap
 *
 *  Figures, each the median of BENCH_REPS runs, with N = 1,000,000 Deferreds (50,000 with
 *  BENCH_QUICK=1) and 10 callbacks each where callbacks are involved:
 *
 *      deferred.build_fire_ns_per_callback  new, 10 x add_callback, callback, unref, one Deferred
 *                                           after another; time / (N * 10)
 *      deferred.fire_ns_per_callback        the N Deferreds are built first, untimed; then the N
 *                                           zt_deferred_callback calls are timed; time / (N * 10)
 *      deferred.chain_ns_per_hop            N Deferreds, d[i]'s callback returning
 *                                           zt_wait_for(d[i + 1]); timed: fire d[0] .. d[N-2] in
 *                                           turn (each then waits on the next), then fire d[N-1],
 *                                           whose result unwinds back to d[0]; time / N; on a
 *                                           warm heap (below)
 *      deferred.bytes_per_pending           heap per Deferred that has no callbacks and has not
 *                                           fired
 *      deferred.bytes_per_callback          heap per added callback, with 10 added to each of the
 *                                           N Deferreds
 *
 *  Times are wall-clock (the figures); the same runs timed on the thread's CPU time are printed as
 *  '#' comments, so that on a busy machine one can see how much waiting for a CPU added. Each
 *  callback adds one to an integer result and the final result is checked, so the work cannot be
 *  skipped. Every run of every workload happens in a child process of its own (bench_run_forked),
 *  so that each starts from the same, unfragmented heap.
 *
 *  Warm heap: the chain allocates while the clock runs (a Deferred's first link lives inside it,
 *  so the second one, the wait, moves its links to a block of their own), and on this VM the
 *  first touch of a fresh heap page costs tens of microseconds: the same allocations are cheap or
 *  dear depending on whether they fall in the timed part or in the set-up. So that the figure is
 *  the Deferred's and not the first touch of memory, the chain's child first grows the heap by
 *  more than the run needs, touches it and frees it (kept: trimming is switched off), as a
 *  long-running program's heap would be.
 *
 *  Memory method: glibc's mallinfo2(), before and after making N objects while nothing else
 *  allocates; the delta of uordblks + hblkhd (bytes in chunks in use, from the arenas and from
 *  mmap) divided by N. That counts what malloc really hands out, its per-chunk header and rounding
 *  included, not sizeof. The array holding the N pointers is allocated and touched before the
 *  first reading. The peer is bench/peers/twisted_deferred.py.  */
#include "bench_util.h"

#include <limits.h>
#include <malloc.h>
#include <ztwist/deferred.h>

#define S_CALLBACKS 10

static void
s_die(const char *what)
{
    fprintf(stderr, "bench_deferred: %s\n", what);
    exit(1);
}

/** The callback of the build and fire workloads: the result plus one. */
static zt_result_t
s_inc(zt_result_t result, void *arg)
{
    (void)arg;
    return zt_ok_int(zt_result_int(result) + 1);
}

/** The callback of the chain: wait for the next Deferred (arg), keeping the caller's reference. */
static zt_result_t
s_wait_next(zt_result_t result, void *arg)
{
    zt_result_release(&result);
    return zt_wait_for(zt_deferred_ref(arg));
}

static zt_deferred_t *
s_new_with_callbacks(void)
{
    zt_deferred_t *d = zt_deferred_new();
    if (!d)
        s_die("out of memory");
    for (int k = 0; k < S_CALLBACKS; k++)
        if (zt_deferred_add_callback(d, s_inc, NULL) != 0)
            s_die("add_callback failed");
    return d;
}

static void
s_check(const zt_deferred_t *d, intptr_t expected)
{
    const zt_result_t *r = zt_deferred_peek(d);
    if (!r || zt_is_err(*r) || zt_result_int(*r) != expected)
        s_die("a chain ended with the wrong result");
}

/** ns per callback to build, fire and drop one Deferred after another; arg is &n. */
static void
s_build_fire(void *arg, double *out)
{
    size_t n = *(const size_t *)arg;
    uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
    for (size_t i = 0; i < n; i++) {
        zt_deferred_t *d = s_new_with_callbacks();
        if (zt_deferred_callback(d, zt_ok_int(0)) != 0)
            s_die("callback failed");
        s_check(d, S_CALLBACKS);
        zt_deferred_unref(&d);
    }
    out[0] = (double)(bench_now_ns() - t0) / (double)(n * S_CALLBACKS);
    out[1] = (double)(bench_cpu_ns() - c0) / (double)(n * S_CALLBACKS);
}

/** An array for n Deferreds, every page touched, so that the heap readings do not see it grow. */
static zt_deferred_t **
s_array(size_t n)
{
    zt_deferred_t **ds = malloc(n * sizeof *ds);
    if (!ds)
        s_die("out of memory");
    for (size_t i = 0; i < n; i++)
        ds[i] = NULL;
    return ds;
}

/** ns per callback to fire n Deferreds built beforehand; arg is &n. */
static void
s_fire_only(void *arg, double *out)
{
    size_t n = *(const size_t *)arg;
    zt_deferred_t **ds = s_array(n);
    for (size_t i = 0; i < n; i++)
        ds[i] = s_new_with_callbacks();
    uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
    for (size_t i = 0; i < n; i++)
        if (zt_deferred_callback(ds[i], zt_ok_int(0)) != 0)
            s_die("callback failed");
    uint64_t took = bench_now_ns() - t0, cpu = bench_cpu_ns() - c0;
    for (size_t i = 0; i < n; i++) {
        s_check(ds[i], S_CALLBACKS);
        zt_deferred_unref(&ds[i]);
    }
    free(ds);
    out[0] = (double)took / (double)(n * S_CALLBACKS);
    out[1] = (double)cpu / (double)(n * S_CALLBACKS);
}

/** ns per hop along a chain of n Deferreds, each waiting on the next; arg is &n. */
static void
s_chain(void *arg, double *out)
{
    size_t n = *(const size_t *)arg;
    bench_warm_heap(n *
                    256); /* the Deferreds, their link blocks and the array, with room to spare */
    zt_deferred_t **ds = s_array(n);
    for (size_t i = 0; i < n; i++)
        if (!(ds[i] = zt_deferred_new()))
            s_die("out of memory");
    for (size_t i = 0; i + 1 < n; i++)
        if (zt_deferred_add_callback(ds[i], s_wait_next, ds[i + 1]) != 0)
            s_die("add_callback failed");
    uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
    for (size_t i = 0; i + 1 < n; i++)
        if (zt_deferred_callback(ds[i], zt_ok_none()) != 0)
            s_die("callback failed");
    if (zt_deferred_callback(ds[n - 1], zt_ok_int(42)) != 0)
        s_die("callback failed");
    uint64_t took = bench_now_ns() - t0, cpu = bench_cpu_ns() - c0;
    s_check(ds[0], 42);
    for (size_t i = 0; i < n; i++)
        zt_deferred_unref(&ds[i]);
    free(ds);
    out[0] = (double)took / (double)n;
    out[1] = (double)cpu / (double)n;
}

/** Bytes in use on the heap, as glibc's malloc counts them. */
static size_t
s_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/** Heap bytes per pending Deferred (out[0]) and per added callback (out[1]); arg is &n. */
static void
s_memory(void *arg, double *out)
{
    size_t n = *(const size_t *)arg;
    zt_deferred_t **ds = s_array(n);
    size_t base = s_heap_in_use();
    for (size_t i = 0; i < n; i++)
        if (!(ds[i] = zt_deferred_new()))
            s_die("out of memory");
    size_t pending = s_heap_in_use();
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < S_CALLBACKS; k++)
            if (zt_deferred_add_callback(ds[i], s_inc, NULL) != 0)
                s_die("add_callback failed");
    size_t with_callbacks = s_heap_in_use();
    for (size_t i = 0; i < n; i++)
        zt_deferred_unref(&ds[i]);
    free(ds);
    out[0] = ((double)pending - (double)base) / (double)n;
    out[1] = ((double)with_callbacks - (double)pending) / (double)(n * S_CALLBACKS);
}

/** Print a figure with its target as a comment; missing the target never fails the run. */
static void
s_report(const char *name, double *runs, const char *unit, double target)
{
    double median = bench_report(name, runs, BENCH_REPS, unit);
    printf("#   target: %s <= %g %s: %s\n", name, target, unit,
           median <= target ? "met" : "MISSED");
}

int
main(void)
{
    size_t n = bench_quick() ? 50000 : 1000000;
    printf("# ztwist %s Deferred: N = %zu, %d callbacks each\n", zt_version(), n, S_CALLBACKS);
    printf(
        "# targets: <= 20 ns per callback, <= 96 B per pending Deferred, <= 32 B per callback\n");
    fflush(stdout);
    /* [0] wall clock (the figure), [1] this thread's CPU time (a comment: what load added) */
    double build_fire[2][BENCH_REPS], fire[2][BENCH_REPS], chain[2][BENCH_REPS];
    double pending[BENCH_REPS], callback[BENCH_REPS];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double out[2];
        bench_run_forked(s_build_fire, &n, out, 2);
        build_fire[0][rep] = out[0], build_fire[1][rep] = out[1];
        bench_run_forked(s_fire_only, &n, out, 2);
        fire[0][rep] = out[0], fire[1][rep] = out[1];
        bench_run_forked(s_chain, &n, out, 2);
        chain[0][rep] = out[0], chain[1][rep] = out[1];
        bench_run_forked(s_memory, &n, out, 2);
        pending[rep] = out[0];
        callback[rep] = out[1];
    }
    s_report("deferred.build_fire_ns_per_callback", build_fire[0], "ns", 20);
    bench_note("deferred.build_fire_ns_per_callback", "on CPU time", build_fire[1], BENCH_REPS,
               "ns");
    s_report("deferred.fire_ns_per_callback", fire[0], "ns", 20);
    bench_note("deferred.fire_ns_per_callback", "on CPU time", fire[1], BENCH_REPS, "ns");
    bench_report("deferred.chain_ns_per_hop", chain[0], BENCH_REPS, "ns");
    bench_note("deferred.chain_ns_per_hop", "on CPU time", chain[1], BENCH_REPS, "ns");
    s_report("deferred.bytes_per_pending", pending, "B", 96);
    s_report("deferred.bytes_per_callback", callback, "B", 32);
    return 0;
}
