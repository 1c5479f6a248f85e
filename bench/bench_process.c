/*  bench/bench_process.c - spawning children on the reactor (peer: twisted_process.py)
 *
 *  One figure, the median of BENCH_REPS runs on a fresh reactor:
 *
 *      process.spawns_per_s   spawn /bin/true, wait for process_ended (exit code checked), spawn
 *                             the next; N children (200; 20 quick)
 *
 *  Each spawn is fork + execve with three pipes, reaping through a pidfd; the figure includes the
 *  child's own start-up and exit, which dominates, as it does for the Twisted peer.  */
#include "bench_util.h"

#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct run {
    bool ended;  /* process_ended ran */
    bool failed; /* ... with something other than exit 0 */
} run_t;

static void
s_ended(zt_process_t *p, const zt_process_status_t *st, void *arg)
{
    (void)p;
    run_t *r = arg;
    r->ended = true;
    r->failed = !st->exited || st->exit_code != 0;
}

static const zt_process_protocol_vtable_t s_vt = {.process_ended = s_ended};

static double
s_one_run(size_t n)
{
    zt_reactor_t *reactor = zt_reactor_new();
    if (!reactor)
        exit(1);
    const char *const argv[] = {"true", NULL};
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        run_t r = {0};
        zt_process_t *p = NULL;
        if (zt_spawn_process(reactor, "/bin/true", argv, NULL, NULL, &s_vt, &r, &p) != 0) {
            fprintf(stderr, "bench_process: spawn failed\n");
            exit(1);
        }
        while (!r.ended)
            zt_reactor_iterate(reactor, 1.0);
        zt_process_destroy(&p);
        if (r.failed) {
            fprintf(stderr, "bench_process: /bin/true did not exit 0\n");
            exit(1);
        }
    }
    uint64_t t1 = bench_now_ns();
    zt_reactor_destroy(&reactor);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

int
main(void)
{
    size_t n = bench_quick() ? 20 : 200;
    printf("# bench_process: N = %zu children of /bin/true, one at a time\n", n);
    double runs[BENCH_REPS];
    for (size_t i = 0; i < BENCH_REPS; i++)
        runs[i] = s_one_run(n);
    bench_report("process.spawns_per_s", runs, BENCH_REPS, "spawns/s");
    return 0;
}
