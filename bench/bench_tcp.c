/*  bench/bench_tcp.c - the TCP bridge under load: ack_server and Twisted's peer under ack_load
 *
 *  Starts examples/ack_server (--mode defer --threads 4) on 127.0.0.1 port 0, then, for C = 1, 10,
 * 100 connections and a window of K = 1 (request-response) and K = 32 (pipelined), runs
 * examples/ack_load against it BENCH_REPS times and prints the median requests/s, p50 and p99
 * latency. Then the same for bench/peers/twisted_ack_server.py (LineReceiver + deferToThread, pool
 * of 4) under the same client, printed with the `.peer.twisted` suffix. Every reply is checked by
 * ack_load; a ztwist run that fails ends the benchmark with status 1, a Twisted one is skipped.
 *
 *  Sizes: N requests per run in all, split over the C connections: 200,000 pipelined and 20,000
 * request-response (a tenth with BENCH_QUICK=1); Twisted gets a fifth of that, as its figures per
 * request do not depend on N. The servers are started once and stay up across runs (warm).  */
#include "bench_util.h"

#include <errno.h>
#include <signal.h>
#include <sys/types.h>

#ifndef ZT_ACK_SERVER
#error "ZT_ACK_SERVER, ZT_ACK_LOAD and ZT_TWISTED_ACK_SERVER come from bench/CMakeLists.txt"
#endif

#define PYTHON "/usr/bin/python3"

/* A server started for the benchmark. */
typedef struct server {
    pid_t pid; /* the process, or -1 */
    long port; /* the port it listens on */
} server_t;

static server_t
start_server(char *const argv[])
{
    server_t s = {.pid = -1, .port = -1};
    int fds[2];
    if (pipe(fds) != 0)
        return s;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return s;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        if (!freopen("/dev/null", "w", stderr))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *out = fdopen(fds[0], "r");
    char line[256] = "";
    if (out && fgets(line, sizeof line, out) && strncmp(line, "listening on ", 13) == 0) {
        const char *colon = strrchr(line, ':');
        s.port = colon ? strtol(colon + 1, NULL, 10) : -1;
    }
    if (out)
        fclose(out);
    s.pid = pid;
    if (s.port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        s.pid = -1;
    }
    return s;
}

static void
stop_server(server_t *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = -1;
}

/* One ack_load run; fills per_s, p50_us, p99_us. Returns false when it failed. */
static bool
run_load(long port, long connections, long lines, long window, double out[3])
{
    char sport[16], sc[16], sl[32], sw[16];
    snprintf(sport, sizeof sport, "%ld", port);
    snprintf(sc, sizeof sc, "%ld", connections);
    snprintf(sl, sizeof sl, "%ld", lines);
    snprintf(sw, sizeof sw, "%ld", window);
    char *const argv[] = {ZT_ACK_LOAD, "--port",   sport, "--connections", sc,    "--lines",
                          sl,          "--window", sw,    "--timeout",     "300", NULL};
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[512] = "";
    bool ok = f && fgets(line, sizeof line, f);
    if (f)
        fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    unsigned long long requests = 0, errors = 0;
    double seconds = 0;
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
         sscanf(line, "requests %llu errors %llu seconds %lf per_s %lf p50_us %lf p99_us %lf",
                &requests, &errors, &seconds, &out[0], &out[1], &out[2]) == 6 &&
         errors == 0;
    if (!ok)
        fprintf(stderr, "bench_tcp: ack_load failed: %s", line);
    return ok;
}

typedef struct config {
    long connections; /* C */
    long window;      /* K */
} config_t;

static const config_t configs[] = {{1, 1}, {10, 1}, {100, 1}, {1, 32}, {10, 32}, {100, 32}};

/* Run every configuration against the server on port; suffix "" for ztwist. */
static bool
measure(long port, const char *suffix, long scale_down)
{
    bool quick = bench_quick();
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        const config_t *cf = &configs[c];
        long total = cf->window > 1 ? 200000 : 20000;
        total /= scale_down * (quick ? 10 : 1);
        long lines = total / cf->connections;
        double per_s[BENCH_REPS], p50[BENCH_REPS], p99[BENCH_REPS];
        for (int r = 0; r < BENCH_REPS; r++) {
            double out[3];
            if (!run_load(port, cf->connections, lines, cf->window, out))
                return false;
            per_s[r] = out[0];
            p50[r] = out[1];
            p99[r] = out[2];
        }
        char name[128];
        printf("# C=%ld K=%ld: %ld connections x %ld lines per run\n", cf->connections, cf->window,
               cf->connections, lines);
        snprintf(name, sizeof name, "tcp.ack_c%ld_k%ld_per_s%s", cf->connections, cf->window,
                 suffix);
        double m = bench_report(name, per_s, BENCH_REPS, "req/s");
        if (!*suffix && cf->connections == 100)
            printf("#   target: %s >= %d req/s: %s\n", name, cf->window > 1 ? 300000 : 30000,
                   m >= (cf->window > 1 ? 300000 : 30000) ? "met" : "MISSED");
        snprintf(name, sizeof name, "tcp.ack_c%ld_k%ld_p50_us%s", cf->connections, cf->window,
                 suffix);
        bench_report(name, p50, BENCH_REPS, "us");
        snprintf(name, sizeof name, "tcp.ack_c%ld_k%ld_p99_us%s", cf->connections, cf->window,
                 suffix);
        m = bench_report(name, p99, BENCH_REPS, "us");
        if (!*suffix && cf->connections == 10 && cf->window == 1)
            printf("#   target: %s <= 1000 us: %s\n", name, m <= 1000 ? "met" : "MISSED");
    }
    return true;
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    printf("# ack_server --mode defer --threads 4 and Twisted's LineReceiver + deferToThread (pool "
           "4), both under examples/ack_load on 127.0.0.1\n");
    char *const zt_argv[] = {ZT_ACK_SERVER, "--host", "127.0.0.1", "--port", "0",
                             "--mode",      "defer",  "--threads", "4",      NULL};
    server_t zt = start_server(zt_argv);
    if (zt.pid < 0) {
        fprintf(stderr, "bench_tcp: cannot start %s\n", ZT_ACK_SERVER);
        return 1;
    }
    bool ok = measure(zt.port, "", 1);
    stop_server(&zt);
    if (!ok)
        return 1;

    char *const tw_argv[] = {PYTHON, ZT_TWISTED_ACK_SERVER, "--port", "0", "--threads", "4", NULL};
    server_t tw = start_server(tw_argv);
    if (tw.pid < 0) {
        printf("# skipped: twisted_ack_server (Twisted did not start under %s)\n", PYTHON);
        return 0;
    }
    if (!measure(tw.port, ".peer.twisted", 5))
        printf("# skipped: the rest of the Twisted peer's runs (ack_load failed against it)\n");
    stop_server(&tw);
    return 0;
}
