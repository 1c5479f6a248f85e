/*  bench/peers/libuv_spawn.c - libuv's uv_spawn, the peer of bench_process
 *
 *  One figure, process.spawns_per_s.peer.libuv, the median of BENCH_REPS runs on a fresh loop:
 *  spawn /bin/true with its stdin, stdout and stderr on pipes (as ztwist's children have), wait
 *  for the exit callback (exit code checked), spawn the next; N children (200; 20 quick).  */
#include "../bench_util.h"

#include <uv.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct run {
    uv_loop_t loop;     /* the loop */
    uv_process_t proc;  /* the child */
    uv_pipe_t pipes[3]; /* its stdin, stdout, stderr */
    size_t left;        /* children still to spawn */
    int closing;        /* handles of the last child not closed yet */
    bool failed;        /* a child failed */
} run_t;

static void s_spawn(run_t *r);

static void
s_closed(uv_handle_t *h)
{
    run_t *r = h->data;
    if (--r->closing > 0) /* reuse the handles only once all four are closed */
        return;
    if (--r->left > 0 && !r->failed)
        s_spawn(r);
}

static void
s_exited(uv_process_t *p, int64_t status, int sig)
{
    run_t *r = p->data;
    if (status != 0 || sig != 0)
        r->failed = true;
    r->closing = 4;
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&r->pipes[i], s_closed);
    uv_close((uv_handle_t *)p, s_closed);
}

static void
s_spawn(run_t *r)
{
    char *args[] = {"true", NULL};
    uv_stdio_container_t stdio[3];
    for (int i = 0; i < 3; i++) {
        uv_pipe_init(&r->loop, &r->pipes[i], 0);
        r->pipes[i].data = r;
        stdio[i].flags = UV_CREATE_PIPE | (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
        stdio[i].data.stream = (uv_stream_t *)&r->pipes[i];
    }
    uv_process_options_t opt = {
        .exit_cb = s_exited, .file = "/bin/true", .args = args, .stdio_count = 3, .stdio = stdio};
    r->proc.data = r;
    if (uv_spawn(&r->loop, &r->proc, &opt) != 0) {
        fprintf(stderr, "libuv_spawn: uv_spawn failed\n");
        exit(1);
    }
}

static double
s_one_run(run_t *r, size_t n)
{
    uv_loop_init(&r->loop);
    r->left = n;
    uint64_t t0 = bench_now_ns();
    s_spawn(r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uint64_t t1 = bench_now_ns();
    uv_loop_close(&r->loop);
    if (r->failed || r->left != 0) {
        fprintf(stderr, "libuv_spawn: a child failed\n");
        exit(1);
    }
    return (double)n / ((double)(t1 - t0) / 1e9);
}

int
main(void)
{
    size_t n = bench_quick() ? 20 : 200;
    printf("# libuv %s: N = %zu children of /bin/true, one at a time\n", uv_version_string(), n);
    run_t *r = calloc(1, sizeof *r);
    if (!r)
        return 1;
    double runs[BENCH_REPS];
    for (size_t i = 0; i < BENCH_REPS; i++)
        runs[i] = s_one_run(r, n);
    bench_report("process.spawns_per_s.peer.libuv", runs, BENCH_REPS, "spawns/s");
    free(r);
    return 0;
}
