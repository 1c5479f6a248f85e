/*  bench/peers/libuv_timers.c - libuv's timers, the peer of the reactor's call_later
 *
 *  Three figures (with the suffix .peer.libuv), each the median of BENCH_REPS runs on a fresh
 *  loop, with N timers (1,000,000; 50,000 in quick mode) whose delays are drawn from [0, 100] ms by
 *  a fixed-seed generator:
 *
 *      reactor.call_later_ns         ns per schedule: uv_timer_init + uv_timer_start
 *      reactor.call_later_run_s      s from the first schedule until the last timer fired
 *      reactor.call_later_cancel_ns  ns per pair: schedule all N, then stop all N
 *
 *  The handles live in one array allocated before the clock starts: libuv never allocates a timer,
 *  its caller provides the memory, so the schedule cost is init + start (the heap insertion).  */
#include "../bench_util.h"

#include <uv.h>

/** One run's loop and its count of fired timers. */
typedef struct {
    uv_loop_t loop;      /* the loop the timers run on */
    uv_timer_t *timers;  /* Owned: N handles */
    size_t n;            /* how many timers */
    size_t fired;        /* how many have fired in this run */
    uint64_t last_fired; /* bench_now_ns() when the last one fired */
} s_run_t;

/** A xorshift64 step: a fixed, cheap sequence of delays, the same in every run. */
static uint64_t
s_next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static void
s_on_timer(uv_timer_t *timer)
{
    s_run_t *run = timer->data;
    if (++run->fired == run->n)
        run->last_fired = bench_now_ns();
}

/** Schedule every timer with a random delay; returns the nanoseconds it took, and *cpu_ns the
 *  same on the thread's CPU time. */
static uint64_t
s_schedule_all(s_run_t *run, uint64_t *cpu_ns)
{
    uint64_t seed = 0x9e3779b97f4a7c15u;
    uv_update_time(&run->loop);
    uint64_t start = bench_now_ns(), cpu_start = bench_cpu_ns();
    for (size_t i = 0; i < run->n; i++) {
        uv_timer_t *t = &run->timers[i];
        uv_timer_init(&run->loop, t);
        t->data = run;
        uv_timer_start(t, s_on_timer, s_next_random(&seed) % 101, 0);
    }
    *cpu_ns = bench_cpu_ns() - cpu_start;
    return bench_now_ns() - start;
}

static void
s_close_all(s_run_t *run)
{
    for (size_t i = 0; i < run->n; i++)
        uv_close((uv_handle_t *)&run->timers[i], NULL);
    uv_run(&run->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&run->loop) != 0) {
        fprintf(stderr, "libuv_timers: the loop did not close\n");
        exit(1);
    }
}

int
main(void)
{
    size_t n = bench_quick() ? 50000 : 1000000;
    s_run_t run = {.n = n, .timers = calloc(n, sizeof(uv_timer_t))};
    if (!run.timers) {
        printf("# skipped: libuv_timers: out of memory\n");
        return 0;
    }
    printf("# libuv %s timers: N = %zu, delays in [0, 100] ms\n", uv_version_string(), n);
    double schedule_ns[BENCH_REPS], run_s[BENCH_REPS], cancel_ns[BENCH_REPS];
    double schedule_cpu[BENCH_REPS], cancel_cpu[BENCH_REPS];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        uv_loop_init(&run.loop);
        run.fired = 0;
        uint64_t start = bench_now_ns();
        uint64_t cpu;
        uint64_t took = s_schedule_all(&run, &cpu);
        uv_run(&run.loop, UV_RUN_DEFAULT);
        if (run.fired != n) {
            fprintf(stderr, "libuv_timers: %zu of %zu timers fired\n", run.fired, n);
            return 1;
        }
        schedule_ns[rep] = (double)took / (double)n;
        schedule_cpu[rep] = (double)cpu / (double)n;
        run_s[rep] = (double)(run.last_fired - start) / 1e9;
        s_close_all(&run);

        uv_loop_init(&run.loop);
        took = s_schedule_all(&run, &cpu);
        uint64_t stop_start = bench_now_ns(), stop_cpu = bench_cpu_ns();
        for (size_t i = 0; i < n; i++)
            uv_timer_stop(&run.timers[i]);
        cpu += bench_cpu_ns() - stop_cpu;
        took += bench_now_ns() - stop_start;
        cancel_ns[rep] = (double)took / (double)n;
        cancel_cpu[rep] = (double)cpu / (double)n;
        s_close_all(&run);
    }
    bench_report("reactor.call_later_ns.peer.libuv", schedule_ns, BENCH_REPS, "ns");
    bench_note("reactor.call_later_ns.peer.libuv", "on CPU time", schedule_cpu, BENCH_REPS, "ns");
    bench_report("reactor.call_later_run_s.peer.libuv", run_s, BENCH_REPS, "s");
    bench_report("reactor.call_later_cancel_ns.peer.libuv", cancel_ns, BENCH_REPS, "ns");
    bench_note("reactor.call_later_cancel_ns.peer.libuv", "on CPU time", cancel_cpu, BENCH_REPS,
               "ns");
    free(run.timers);
    return 0;
}
