/*  bench/bench_pool.c - the worker pool: throughput of defer_to_thread, round trips, latency,
 * memory
 *
 *  Figures, each the median of BENCH_REPS runs, every run in a child process of its own
 * (bench_run_forked), with N = 1,000,000 (100,000 with BENCH_QUICK=1), on the reactor's pool sized
 * 4 (zt_reactor_suggest_thread_pool_size):
 *
 *      pool.defer_to_thread_per_s        N zt_defer_to_thread of a trivial function, at most
 *                                        S_WINDOW in flight: the reactor submits S_WINDOW, then
 *                                        one more from each callback as one fires; timed from the
 *                                        first submission until the last Deferred has fired (each
 *                                        callback counts; the count is checked)
 *      pool.defer_to_thread_burst_per_s  the same N submitted at once from one reactor callback,
 *                                        on a fresh heap (every page of ~120 MB touched for the
 *                                        first time while the clock runs)
 *      pool.defer_to_thread_burst_warm_per_s  the same on a warm heap: the child first grows the
 *                                        heap by more than the run needs, touches it and frees it
 *                                        (kept: trimming off), as in a long-running server; the
 *                                        libuv peer's requests are likewise touched before its
 *                                        clock starts
 *      pool.peak_rss_mb                  the peak resident set of the (fresh-heap) burst run
 *                                        (getrusage): all N items and their Deferreds queued at
 *                                        once; the target is 128 MiB (134,217,728 bytes)
 *      pool.bytes_per_queued_call        heap per zt_call_in_thread waiting in the queue (N queued
 *                                        on a pool held before the reactor runs; mallinfo2 delta/N)
 *      pool.bytes_per_queued_defer       the same for zt_defer_to_thread, with its Deferred and one
 *                                        callback
 *      pool.round_trip_per_s             N/2 zt_call_in_thread whose function calls
 *                                        zt_reactor_call_from_thread back, all in flight at once;
 *                                        timed until the last call back has run
 *      pool.rtt_p50_us, pool.rtt_p99_us  one at a time: call_in_thread, whose function calls
 *                                        call_from_thread, whose call issues the next; each
 *                                        exchange timed (20,000; 2,000 quick); the run's median
 *                                        and 99th percentile
 *
 *  Why a window: on this class of machine (a VM whose page faults and system calls cost
 * microseconds, tens of them for a fresh page while other threads run) N items and N Deferreds
 * submitted at once spend most of their time faulting in ~120 MB of fresh heap; a server keeps a
 * bounded number of requests in flight, and the window measures the pool rather than the first
 * touch of memory. The burst figures are printed too, on a fresh and on a warm heap.
 *
 *  Memory per queued defer_to_thread (pool.bytes_per_queued_defer, 120 B): the Deferred with its
 * one callback inline, 72 bytes in an 80-byte malloc chunk, and the pool's 40-byte work record
 * in a 1,024-record chunk (no per-item malloc, no separate queue array).
 *
 *  Peers (bench/peers/): libuv_queue_work.c (uv_queue_work on libuv's pool of 4, same window and
 * burst), twisted_threads.py (deferToThread, callInThread + callFromThread); the raw inproc ZeroMQ
 * ping-pong is zmq_inproc.c's reactor.call_from_thread_rtt_median_us.peer.zmq_inproc.  */
#include "bench_util.h"

#include <string.h>

#include <limits.h>
#include <malloc.h>
#include <sys/resource.h>
#include <ztwist.h>

#define S_POOL 4
#define S_WINDOW 65536 /* Deferreds in flight in the windowed run */

typedef struct s_run {
    zt_reactor_t *r;  /* the reactor of this run */
    size_t n;         /* items */
    size_t window;    /* the most in flight (windowed run), or n */
    size_t submitted; /* items submitted so far */
    size_t done;      /* callbacks run (reactor thread) */
    uint64_t t0;      /* start, ns */
    uint64_t t1;      /* end, ns */
    double *samples;  /* rtt samples, us (latency run) */
    size_t nsamples;  /* samples taken */
} s_run_t;

static void
s_die(const char *what)
{
    fprintf(stderr, "bench_pool: %s\n", what);
    exit(1);
}

static zt_result_t
s_trivial(void *arg)
{
    (void)arg;
    return zt_ok_int(1);
}

static void s_submit(s_run_t *run, size_t k);

static zt_result_t
s_count(zt_result_t result, void *arg)
{
    s_run_t *run = arg;
    run->done += (size_t)zt_result_int(result);
    if (run->done == run->n) {
        run->t1 = bench_now_ns();
        zt_reactor_stop(run->r);
    } else if (run->submitted < run->n) {
        s_submit(run, 1);
    }
    return result;
}

static void
s_submit(s_run_t *run, size_t k)
{
    for (size_t i = 0; i < k && run->submitted < run->n; i++, run->submitted++) {
        zt_deferred_t *d = zt_defer_to_thread(run->r, s_trivial, NULL);
        if (zt_deferred_add_callback(d, s_count, run) != 0)
            s_die("add_callback");
        zt_deferred_unref(&d);
    }
}

static void
s_submit_defers(void *arg)
{
    s_run_t *run = arg;
    run->t0 = bench_now_ns();
    s_submit(run, run->window);
}

/* arg: {n, window, warm (0/1)} */
static void
s_defer_run(void *arg, double *out)
{
    s_run_t run = {.n = ((size_t *)arg)[0], .window = ((size_t *)arg)[1]};
    if (((size_t *)arg)[2])
        bench_warm_heap(run.n * 256);
    run.r = zt_reactor_new();
    if (!run.r || zt_reactor_suggest_thread_pool_size(run.r, S_POOL) != 0)
        s_die("reactor");
    zt_reactor_call_when_running(run.r, s_submit_defers, &run, NULL);
    zt_reactor_run(run.r);
    if (run.done != run.n)
        s_die("not every Deferred fired");
    zt_reactor_destroy(&run.r);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    out[0] = (double)run.n / ((double)(run.t1 - run.t0) / 1e9);
    out[1] = (double)ru.ru_maxrss / 1024.0;
}

static size_t
s_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void
s_queued_bytes_run(void *arg, double *out)
{
    size_t n = *(size_t *)arg;
    for (int kind = 0; kind < 2; kind++) {
        zt_reactor_t *r = zt_reactor_new();
        if (!r || zt_reactor_suggest_thread_pool_size(r, S_POOL) != 0)
            s_die("reactor");
        s_run_t run = {.r = r, .n = n, .submitted = n}; /* s_count submits no more */
        size_t before = s_heap_in_use();
        for (size_t i = 0; i < n; i++) {
            if (kind == 0) {
                if (zt_call_in_thread(r, s_trivial, NULL) != 0)
                    s_die("call_in_thread");
            } else {
                zt_deferred_t *d = zt_defer_to_thread(r, s_trivial, NULL);
                zt_deferred_add_callback(d, s_count, &run);
                zt_deferred_unref(&d);
            }
        }
        zt_pool_stats_t st;
        zt_pool_stats(zt_reactor_get_thread_pool(r), &st);
        if (st.queued != n || st.total != 0)
            s_die("the items are not all queued");
        out[kind] = (double)(s_heap_in_use() - before) / (double)n;
        /* Run them (the shutdown finishes the queue), so that everything is freed. */
        zt_reactor_stop(r);
        zt_reactor_run(r);
        zt_reactor_destroy(&r);
    }
}

/* --- round trips ----------------------------------------------------------------------------- */

static void
s_back(void *arg)
{
    s_run_t *run = arg;
    if (++run->done == run->n) {
        run->t1 = bench_now_ns();
        zt_reactor_stop(run->r);
    }
}

static zt_result_t
s_call_back(void *arg)
{
    s_run_t *run = arg;
    if (zt_reactor_call_from_thread(run->r, s_back, run) != 0)
        s_die("call_from_thread");
    return zt_ok_none();
}

static void
s_submit_calls(void *arg)
{
    s_run_t *run = arg;
    run->t0 = bench_now_ns();
    for (size_t i = 0; i < run->n; i++)
        if (zt_call_in_thread(run->r, s_call_back, run) != 0)
            s_die("call_in_thread");
}

static void
s_round_trip_run(void *arg, double *out)
{
    s_run_t run = {.n = *(size_t *)arg};
    run.r = zt_reactor_new();
    if (!run.r || zt_reactor_suggest_thread_pool_size(run.r, S_POOL) != 0)
        s_die("reactor");
    zt_reactor_call_when_running(run.r, s_submit_calls, &run, NULL);
    zt_reactor_run(run.r);
    if (run.done != run.n)
        s_die("not every call came back");
    zt_reactor_destroy(&run.r);
    out[0] = (double)run.n / ((double)(run.t1 - run.t0) / 1e9);
}

/* --- latency --------------------------------------------------------------------------------- */

static void s_ping(void *arg);

static void
s_pong(void *arg)
{
    s_run_t *run = arg;
    run->samples[run->nsamples++] = (double)(bench_now_ns() - run->t0) / 1e3;
    if (run->nsamples == run->n) {
        zt_reactor_stop(run->r);
        return;
    }
    s_ping(run);
}

static zt_result_t
s_pong_from_worker(void *arg)
{
    s_run_t *run = arg;
    if (zt_reactor_call_from_thread(run->r, s_pong, run) != 0)
        s_die("call_from_thread");
    return zt_ok_none();
}

static void
s_ping(void *arg)
{
    s_run_t *run = arg;
    run->t0 = bench_now_ns();
    if (zt_call_in_thread(run->r, s_pong_from_worker, run) != 0)
        s_die("call_in_thread");
}

static void
s_latency_run(void *arg, double *out)
{
    s_run_t run = {.n = *(size_t *)arg};
    run.samples = malloc(run.n * sizeof *run.samples);
    run.r = zt_reactor_new();
    if (!run.samples || !run.r || zt_reactor_suggest_thread_pool_size(run.r, S_POOL) != 0)
        s_die("reactor");
    zt_reactor_call_when_running(run.r, s_ping, &run, NULL);
    zt_reactor_run(run.r);
    if (run.nsamples != run.n)
        s_die("not every ping came back");
    zt_reactor_destroy(&run.r);
    out[0] = bench_quantile(run.samples, run.n, 0.5);
    out[1] = bench_quantile(run.samples, run.n, 0.99);
    free(run.samples);
}

int
main(int argc, char **argv)
{
    /* `bench_pool rtt` runs only the one-at-a-time round trip: the A/B runs of latency changes. */
    if (argc > 1 && strcmp(argv[1], "rtt") == 0) {
        size_t pings = bench_quick() ? 2000 : 20000;
        double p50[BENCH_REPS], p99[BENCH_REPS], out[2];
        for (int rep = 0; rep < BENCH_REPS; rep++) {
            bench_run_forked(s_latency_run, &pings, out, 2);
            p50[rep] = out[0];
            p99[rep] = out[1];
        }
        bench_report("pool.rtt_p50_us", p50, BENCH_REPS, "us");
        bench_report("pool.rtt_p99_us", p99, BENCH_REPS, "us");
        return 0;
    }
    size_t n = bench_quick() ? 100000 : 1000000;
    size_t trips = n / 2;
    size_t pings = bench_quick() ? 2000 : 20000;
    printf("# pool of %d threads: %zu defer_to_thread (%d in flight, then all at once), %zu round "
           "trips in flight, %zu one at a time\n",
           S_POOL, n, S_WINDOW, trips, pings);
    double rate[BENCH_REPS], burst[BENCH_REPS], warm[BENCH_REPS], rss[BENCH_REPS];
    double call_b[BENCH_REPS];
    double defer_b[BENCH_REPS], trip[BENCH_REPS], p50[BENCH_REPS], p99[BENCH_REPS];
    size_t windowed[3] = {n, S_WINDOW, 0}, all[3] = {n, n, 0}, all_warm[3] = {n, n, 1};
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double out[2];
        bench_run_forked(s_defer_run, windowed, out, 2);
        rate[rep] = out[0];
        bench_run_forked(s_defer_run, all, out, 2);
        burst[rep] = out[0];
        rss[rep] = out[1];
        bench_run_forked(s_defer_run, all_warm, out, 2);
        warm[rep] = out[0];
        bench_run_forked(s_queued_bytes_run, &n, out, 2);
        call_b[rep] = out[0];
        defer_b[rep] = out[1];
        bench_run_forked(s_round_trip_run, &trips, out, 1);
        trip[rep] = out[0];
        bench_run_forked(s_latency_run, &pings, out, 2);
        p50[rep] = out[0];
        p99[rep] = out[1];
    }
    double r = bench_report("pool.defer_to_thread_per_s", rate, BENCH_REPS, "tasks/s");
    printf("# target >= 2000000 tasks/s: %s\n", r >= 2e6 ? "met" : "MISSED");
    bench_report("pool.defer_to_thread_burst_per_s", burst, BENCH_REPS, "tasks/s");
    bench_report("pool.defer_to_thread_burst_warm_per_s", warm, BENCH_REPS, "tasks/s");
    double m = bench_report("pool.peak_rss_mb", rss, BENCH_REPS, "MB");
    printf("# target: %zu queued items in <= 128 MB (MiB, as ru_maxrss / 1024): %s (all N "
           "defer_to_thread and their Deferreds queued at once)\n",
           n, m <= 128 ? "met" : "MISSED");
    double c = bench_report("pool.bytes_per_queued_call", call_b, BENCH_REPS, "B");
    printf("# 1,000,000 queued call_in_thread: %.1f MB of heap: %s\n", c,
           c <= 128 ? "met" : "MISSED");
    bench_report("pool.bytes_per_queued_defer", defer_b, BENCH_REPS, "B");
    bench_report("pool.round_trip_per_s", trip, BENCH_REPS, "trips/s");
    bench_report("pool.rtt_p50_us", p50, BENCH_REPS, "us");
    bench_report("pool.rtt_p99_us", p99, BENCH_REPS, "us");
    printf("# target: rtt no worse than raw inproc ZeroMQ ping-pong "
           "(reactor.call_from_thread_rtt_median_us.peer.zmq_inproc)\n");
    return 0;
}
