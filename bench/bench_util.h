/*  bench/bench_util.h - the few helpers every C benchmark and C peer shares
 *
 *  A monotonic clock and a thread CPU clock in nanoseconds, the quick-mode switch (BENCH_QUICK=1
 *  in the environment), the number of repetitions, the median and percentiles of a sample, the
 *  printing of a figure as one `BENCH <name> <value> <unit>` line followed by a '#' comment with
 *  the spread of the runs, and bench_run_forked, which runs one repetition in a child process so
 *  that every repetition starts from the same heap. Header-only (static inline) so that the peers,
 *  which do not link ztwist, can use it too.  */
#ifndef ZTWIST_BENCH_UTIL_H
#define ZTWIST_BENCH_UTIL_H

#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/wait.h>
#include <unistd.h>

/** How many times each workload runs; the median is printed. */
#define BENCH_REPS 5

/** Nanoseconds on the monotonic clock. */
static inline uint64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/** Nanoseconds of CPU time used by the calling thread: unlike bench_now_ns, it does not count the
 *  time the thread waited for a CPU, so it shows how much of a figure a busy machine added. */
static inline uint64_t
bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/** Whether BENCH_QUICK=1 asks for the small sizes. */
static inline bool
bench_quick(void)
{
    const char *q = getenv("BENCH_QUICK");
    return q && strcmp(q, "1") == 0;
}

/** qsort comparator for doubles. */
static inline int
bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/** The q-quantile (0 <= q <= 1, nearest rank) of n samples; sorts them in place. */
static inline double
bench_quantile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/** The median of n samples (the middle one, or the mean of the two middle ones); sorts in place.
 */
static inline double
bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/** Print v with about four significant digits and no exponent: 1234567, 123.5, 1.235, 0.01235. */
static inline void
bench_print_value(double v)
{
    double a = v < 0 ? -v : v;
    printf(a >= 1000 ? "%.0f" : a >= 100 ? "%.1f" : a >= 1 ? "%.3f" : "%.4g", v);
}

/** Print the median of n runs as a BENCH line, then the spread as a comment. Sorts runs.
 *  @return the median */
static inline double
bench_report(const char *name, double *runs, size_t n, const char *unit)
{
    double median = bench_median(runs, n);
    printf("BENCH %s ", name);
    bench_print_value(median);
    printf(" %s\n#   %s: median of %zu runs, min ", unit, name, n);
    bench_print_value(runs[0]);
    printf(" max ");
    bench_print_value(runs[n - 1]);
    printf("\n");
    fflush(stdout);
    return median;
}

/** A comment line with the median of n runs of another measure of figure `name`. Sorts runs. */
static inline void
bench_note(const char *name, const char *what, double *runs, size_t n, const char *unit)
{
    printf("#   %s %s: ", name, what);
    bench_print_value(bench_median(runs, n));
    printf(" %s (median of %zu runs)\n", unit, n);
    fflush(stdout);
}

/**
 *  Grow the heap by about `bytes`, touch every page and free it, keeping it (no trim): later
 *  allocations then land on pages that are already mapped, so a timed run measures the code, not
 *  first-touch page faults (about 100 us each on this VM).
 */
static inline void
bench_warm_heap(size_t bytes)
{
    enum { BLOCK = 64 * 1024 }; /* below glibc's mmap threshold: from the heap, not from mmap */
    if (!mallopt(M_TRIM_THRESHOLD, INT_MAX)) {
        fprintf(stderr, "bench: mallopt failed\n");
        exit(1);
    }
    size_t nblocks = bytes / BLOCK + 1;
    char **blocks = malloc(nblocks * sizeof *blocks);
    for (size_t i = 0; i < nblocks; i++) {
        if (!blocks || !(blocks[i] = malloc(BLOCK))) {
            fprintf(stderr, "bench: out of memory\n");
            exit(1);
        }
        memset(blocks[i], 1, BLOCK);
    }
    for (size_t i = 0; i < nblocks; i++)
        free(blocks[i]);
    free(blocks);
}

/** One repetition of a workload: fills out[0 .. nout-1] with its figures. */
typedef void bench_run_fn(void *arg, double *out);

/**
 *  Run fn(arg, out) in a child process forked for this one run, and copy its nout figures back
 *  through a pipe. Workloads that allocate and free millions of objects leave the heap scattered,
 *  and the next run in the same process is slower for it (a chain of Deferreds: 80 ns per hop on a
 *  fresh heap, 300 ns after seven runs); a fresh child gives every run the same start. A child
 *  that fails (exits non-zero, is killed, or sends too little) ends the benchmark with status 1.
 */
static inline void
bench_run_forked(bench_run_fn *fn, void *arg, double *out, size_t nout)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("bench: pipe");
        exit(1);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench: fork");
        exit(1);
    }
    if (pid == 0) {
        close(fds[0]);
        fn(arg, out);
        const char *p = (const char *)out;
        size_t left = nout * sizeof *out;
        while (left > 0) {
            ssize_t w = write(fds[1], p, left);
            if (w <= 0)
                _exit(1);
            p += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    char *p = (char *)out;
    size_t got = 0, want = nout * sizeof *out;
    while (got < want) {
        ssize_t r = read(fds[0], p + got, want - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        got != want) {
        fprintf(stderr, "bench: a run failed in its child process\n");
        exit(1);
    }
}

#endif
