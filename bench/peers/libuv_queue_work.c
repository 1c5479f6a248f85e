/*  bench/peers/libuv_queue_work.c - libuv's uv_queue_work on its pool of 4: the peer of the pool
 *
 *  uv_queue_work runs a work callback on libuv's thread pool and then an after-work callback on the
 * loop thread: the same shape as defer_to_thread (work on a worker, completion on the reactor).
 * Figures, each the median of BENCH_REPS runs, every run in a child process of its own:
 *
 *      pool.defer_to_thread_per_s.peer.libuv        N requests of a trivial work callback, at most
 *                                                   S_WINDOW in flight (one more queued from each
 *                                                   after-work callback), timed until the last
 *                                                   after-work callback has run
 *      pool.defer_to_thread_burst_per_s.peer.libuv  the same N queued at once
 *      pool.round_trip_per_s.peer.libuv             the burst figure again: queue + after-work is
 *                                                   libuv's round trip (printed so the summary
 *                                                   lines up)
 *      pool.rtt_p50_us.peer.libuv, _p99_us          one request at a time, each queued from the
 *                                                   previous one's after-work callback
 *
 *  N is 1,000,000 (100,000 quick); 20,000 one-at-a-time requests (2,000 quick). The pool size is
 * set with UV_THREADPOOL_SIZE=4 before libuv first uses its pool; each run checks that the process
 * then has 5 threads (the loop's and 4 workers). The loop thread's CPU time per request is printed
 * as a comment.
 *
 *  The requests are caller-provided storage (128 bytes each), and they are touched before the clock
 * starts. An earlier version of this peer did not: calloc hands 128 MB this size straight from
 * mmap, so the first touch of each page happened inside the timed run, on the loop thread, and the
 * peer measured 31,000 first-touch page faults (about 100 us each on this VM while the workers run)
 * rather than libuv: 0.35-0.43M tasks/s, against 3-4M/s windowed and 5-6M/s all at once with the
 * pages touched first, which is what the issue quotes for uv_queue_work (4.6-5.4M/s). libuv's own
 * cost per request is what a program that reuses its requests pays.  */
#include "../bench_util.h"

#include <dirent.h>
#include <uv.h>

#define S_WINDOW 65536

typedef struct {
    uv_loop_t loop;   /* this run's loop */
    uv_work_t *reqs;  /* Owned: one request per item */
    size_t n;         /* requests in all */
    size_t window;    /* the most in flight */
    size_t submitted; /* requests queued so far */
    size_t done;      /* after-work callbacks run */
    uint64_t t0;      /* start, ns */
    double *samples;  /* one-at-a-time round trips, us */
} s_run_t;

static void
s_work(uv_work_t *req)
{
    (void)req;
}

static void s_after(uv_work_t *req, int status);

static void
s_queue(s_run_t *run)
{
    uv_work_t *req = &run->reqs[run->submitted++];
    req->data = run;
    if (uv_queue_work(&run->loop, req, s_work, s_after) != 0) {
        fprintf(stderr, "libuv_queue_work: uv_queue_work failed\n");
        exit(1);
    }
}

static void
s_after(uv_work_t *req, int status)
{
    (void)status;
    s_run_t *run = req->data;
    run->done++;
    if (run->samples) {
        run->samples[run->done - 1] = (double)(bench_now_ns() - run->t0) / 1e3;
        run->t0 = bench_now_ns();
    }
    if (run->submitted < run->n)
        s_queue(run);
}

/* Threads in this process, from /proc/self/task. */
static int
s_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* arg: {n, window, latency (0/1)}; out: {rate, loop-thread CPU rate} or {p50, p99} */
static void
s_run(void *arg, double *out)
{
    size_t *cfg = arg;
    s_run_t run = {.n = cfg[0], .window = cfg[1]};
    run.reqs = malloc(run.n * sizeof *run.reqs);
    if (cfg[2])
        run.samples = malloc(run.n * sizeof *run.samples);
    if (!run.reqs || (cfg[2] && !run.samples) || uv_loop_init(&run.loop) != 0)
        exit(1);
    memset(run.reqs, 0, run.n * sizeof *run.reqs); /* every page touched before the clock starts */
    run.t0 = bench_now_ns();
    uint64_t start = run.t0, cpu0 = bench_cpu_ns();
    while (run.submitted < run.window && run.submitted < run.n)
        s_queue(&run);
    uv_run(&run.loop, UV_RUN_DEFAULT);
    if (run.done != run.n)
        exit(1);
    out[0] = (double)run.n / ((double)(bench_now_ns() - start) / 1e9);
    out[1] = (double)run.n / ((double)(bench_cpu_ns() - cpu0) / 1e9);
    if (s_threads() != 5) {
        fprintf(stderr, "libuv_queue_work: %d threads, not the loop's and 4 workers\n",
                s_threads());
        exit(1);
    }
    if (run.samples) {
        out[0] = bench_quantile(run.samples, run.n, 0.5);
        out[1] = bench_quantile(run.samples, run.n, 0.99);
    }
    uv_loop_close(&run.loop);
    free(run.reqs);
    free(run.samples);
}

int
main(void)
{
    setenv("UV_THREADPOOL_SIZE", "4", 1);
    size_t n = bench_quick() ? 100000 : 1000000;
    size_t pings = bench_quick() ? 2000 : 20000;
    printf("# libuv %s uv_queue_work, pool of 4: %zu requests (%d in flight, then all at once), "
           "%zu one at a time\n",
           uv_version_string(), n, S_WINDOW, pings);
    double rate[BENCH_REPS], burst[BENCH_REPS], p50[BENCH_REPS], p99[BENCH_REPS];
    double rate_cpu[BENCH_REPS], burst_cpu[BENCH_REPS];
    size_t windowed[3] = {n, S_WINDOW, 0}, all[3] = {n, n, 0}, one[3] = {pings, 1, 1};
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double out[2];
        bench_run_forked(s_run, windowed, out, 2);
        rate[rep] = out[0];
        rate_cpu[rep] = out[1];
        bench_run_forked(s_run, all, out, 2);
        burst[rep] = out[0];
        burst_cpu[rep] = out[1];
        bench_run_forked(s_run, one, out, 2);
        p50[rep] = out[0];
        p99[rep] = out[1];
    }
    bench_report("pool.defer_to_thread_per_s.peer.libuv", rate, BENCH_REPS, "tasks/s");
    bench_note("pool.defer_to_thread_per_s.peer.libuv", "per second of the loop thread's CPU time",
               rate_cpu, BENCH_REPS, "tasks/s");
    double b =
        bench_report("pool.defer_to_thread_burst_per_s.peer.libuv", burst, BENCH_REPS, "tasks/s");
    bench_note("pool.defer_to_thread_burst_per_s.peer.libuv",
               "per second of the loop thread's CPU time", burst_cpu, BENCH_REPS, "tasks/s");
    printf("BENCH pool.round_trip_per_s.peer.libuv ");
    bench_print_value(b);
    printf(" trips/s\n");
    bench_report("pool.rtt_p50_us.peer.libuv", p50, BENCH_REPS, "us");
    bench_report("pool.rtt_p99_us.peer.libuv", p99, BENCH_REPS, "us");
    return 0;
}
