/*  bench/bench_tcp.c - the TCP bridge under load: ack_server and Twisted's peer under ack_load
 *
 *  Starts examples/ack_server (--mode defer --threads 4) on 127.0.0.1 port 0, then, for C = 1, 10,
 * 100 connections and a window of K = 1 (request-response) and K = 32 (pipelined), runs
 * examples/ack_load against it BENCH_REPS times and prints the median requests/s, p50 and p99
 * latency, and the CPU time and wait for a CPU per request (see Noise below). Then the same for
 * bench/peers/twisted_ack_server.py (LineReceiver + deferToThread, pool of 4) under the same
 * client, printed with the `.peer.twisted` suffix. Every reply is checked by ack_load; a ztwist run
 * that fails ends the benchmark with status 1, a Twisted one is skipped.
 *
 *  Sizes: N requests per run in all, split over the C connections: 200,000 pipelined and 20,000
 * request-response (a tenth with BENCH_QUICK=1); Twisted gets a fifth of that, as its figures per
 * request do not depend on N. The servers are started once and stay up across runs (warm).
 *
 *  Scheduler slice (an experiment, off by default). With BENCH_TCP_SLICE_US=N (N >= 100, the
 * kernel's minimum) every process started here (both servers and the client) first asks Linux for
 * a scheduler slice of N microseconds instead of the default (1.4 ms on this 2-CPU machine):
 * sched_setattr with sched_runtime, which EEVDF (Linux >= 6.12) takes as the task's requested
 * slice, inherited by its threads and across exec; older kernels ignore it. It does not change a
 * task's share of the CPUs, only how long its turns are. Issue #6: on a busy machine most of the
 * C=10 p99 is our threads waiting for CPUs that other sessions hold; with 100 us the C=10, K=1 p99
 * was lower in 28 of 48 alternating pairs (median ratio 0.85, not significant: sign test p = 0.31)
 * and the p50 and C=100 figures did not move, so it is not on by default.
 *
 *  Noise. Next to each latency this prints `_cpu_us`, the CPU time per request of the server's and
 * the client's threads together, and `_runq_us`, the time per request they were ready to run but
 * waiting for a CPU, summed over the threads (Linux's per-thread schedstat). cpu_us barely moves
 * with the load of the machine. runq_us is not zero even on a quiet machine (six threads of ours
 * share two CPUs: about 45 us at C=10, K=1), so compare it between runs: a run whose runq_us is
 * several times that had its latencies set by the other load on the machine.  */
#define _DEFAULT_SOURCE /* syscall() for sched_setattr, which glibc does not wrap */
#include "bench_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>

#ifndef ZT_ACK_SERVER
#error "ZT_ACK_SERVER, ZT_ACK_LOAD and ZT_TWISTED_ACK_SERVER come from bench/CMakeLists.txt"
#endif

#define PYTHON "/usr/bin/python3"

/* Linux's struct sched_attr, its first version (48 bytes): the kernel reads `size` bytes. */
typedef struct sched_attr_v0 {
    uint32_t size;           /* sizeof this struct */
    uint32_t sched_policy;   /* 0: SCHED_OTHER */
    uint64_t sched_flags;    /* none */
    int32_t sched_nice;      /* the nice value (kept at the caller's) */
    uint32_t sched_priority; /* 0 for SCHED_OTHER */
    uint64_t sched_runtime;  /* SCHED_OTHER: the requested slice, ns (EEVDF, Linux >= 6.12) */
    uint64_t sched_deadline; /* SCHED_DEADLINE only */
    uint64_t sched_period;   /* SCHED_DEADLINE only */
} sched_attr_v0_t;

/* In a child before exec: ask for a scheduler slice of BENCH_TCP_SLICE_US when it is set (see the
 * header). Best effort: a kernel or a policy that refuses leaves the default. */
static void
request_slice(void)
{
#ifdef SYS_sched_setattr
    const char *env = getenv("BENCH_TCP_SLICE_US");
    long us = env ? strtol(env, NULL, 10) : 0;
    if (us <= 0)
        return;
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, 0);
    sched_attr_v0_t attr = {.size = sizeof attr,
                            .sched_nice = errno ? 0 : nice_now,
                            .sched_runtime = (uint64_t)us * 1000u};
    (void)syscall(SYS_sched_setattr, 0, &attr, 0);
#endif
}

/* CPU time and time ready to run but waiting for a CPU, in ns, summed over the threads of process
 * pid, from Linux's /proc/<pid>/task/<tid>/schedstat. False where it is not readable. */
static bool
sched_totals(pid_t pid, int64_t *cpu_ns, int64_t *wait_ns)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return false;
    *cpu_ns = *wait_ns = 0;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%.20s/schedstat", (long)pid, e->d_name);
        FILE *f = fopen(path, "r");
        long long cpu = 0, wait = 0;
        if (!f)
            continue; /* the thread has just exited */
        ok = fscanf(f, "%lld %lld", &cpu, &wait) == 2;
        fclose(f);
        *cpu_ns += cpu;
        *wait_ns += wait;
    }
    closedir(dir);
    return ok;
}

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
        request_slice();
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

/* One ack_load run against the server pid on port; fills per_s, p50_us, p99_us, then the CPU time
 * and the wait for a CPU per request of server and client together, us (-1 where unknown). Returns
 * false when it failed. */
static bool
run_load(pid_t server, long port, long connections, long lines, long window, double out[5])
{
    char sport[16], sc[16], sl[32], sw[16];
    snprintf(sport, sizeof sport, "%ld", port);
    snprintf(sc, sizeof sc, "%ld", connections);
    snprintf(sl, sizeof sl, "%ld", lines);
    snprintf(sw, sizeof sw, "%ld", window);
    char *const argv[] = {ZT_ACK_LOAD, "--port",   sport, "--connections", sc,    "--lines",
                          sl,          "--window", sw,    "--timeout",     "300", NULL};
    int64_t cpu0 = 0, wait0 = 0, cpu1 = 0, wait1 = 0;
    bool have_sched = sched_totals(server, &cpu0, &wait0);
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
        request_slice();
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
    have_sched = have_sched && sched_totals(server, &cpu1, &wait1);
    unsigned long long requests = 0, errors = 0;
    double seconds = 0, client_cpu_ms = -1, client_wait_ms = -1;
    int n = sscanf(
        line,
        "requests %llu errors %llu seconds %lf per_s %lf p50_us %lf p99_us %lf cpu_ms %lf "
        "runq_ms %lf",
        &requests, &errors, &seconds, &out[0], &out[1], &out[2], &client_cpu_ms, &client_wait_ms);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 && n >= 6 && errors == 0;
    have_sched = have_sched && n == 8 && client_cpu_ms >= 0 && requests > 0;
    out[3] =
        have_sched ? ((double)(cpu1 - cpu0) / 1e3 + client_cpu_ms * 1e3) / (double)requests : -1;
    out[4] =
        have_sched ? ((double)(wait1 - wait0) / 1e3 + client_wait_ms * 1e3) / (double)requests : -1;
    if (!ok)
        fprintf(stderr, "bench_tcp: ack_load failed: %s", line);
    return ok;
}

typedef struct config {
    long connections; /* C */
    long window;      /* K */
} config_t;

static const config_t configs[] = {{1, 1}, {10, 1}, {100, 1}, {1, 32}, {10, 32}, {100, 32}};

/* The configurations run again while idle connections are held. */
static const config_t idle_configs[] = {{10, 1}, {10, 32}};

/* The medians one server got, for the targets that compare two figures. */
typedef struct figures {
    double c10_k1;       /* tcp.ack_c10_k1_per_s, in the repetitions paired with idle ones */
    double c10_k32;      /* tcp.ack_c10_k32_per_s, the same */
    double idle_c10_k1;  /* tcp.ack_c10_k1_idle<N>_per_s, or 0 when not measured */
    double idle_c10_k32; /* tcp.ack_c10_k32_idle<N>_per_s, or 0 */
    double accept;       /* tcp.accept_per_s, or 0 */
} figures_t;

/* The lines per run of configuration cf. */
static long
lines_for(const config_t *cf, long scale_down)
{
    long total = cf->window > 1 ? 200000 : 20000;
    total /= scale_down * (bench_quick() ? 10 : 1);
    return total / cf->connections;
}

/* Print the figures of BENCH_REPS runs of cf (runs[r]: per_s, p50, p99, cpu, runq; cpu -1 when
 * unknown); suffix "" for ztwist; infix names the idle connections held ("" or "_idle10k").
 * Returns the median requests/s. */
static double
report_config(const config_t *cf, long scale_down, const char *infix, const char *suffix,
              double runs[BENCH_REPS][5])
{
    static const char *const what[] = {"per_s", "p50_us", "p99_us", "cpu_us", "runq_us"};
    static const char *const unit[] = {"req/s", "us", "us", "us", "us"};
    bool have_sched = true;
    for (int r = 0; r < BENCH_REPS; r++)
        have_sched = have_sched && runs[r][3] >= 0;
    printf("# C=%ld K=%ld%s: %ld connections x %ld lines per run\n", cf->connections, cf->window,
           infix, cf->connections, lines_for(cf, scale_down));
    double medians[5] = {0};
    for (int k = 0; k < (have_sched ? 5 : 3); k++) {
        double v[BENCH_REPS];
        for (int r = 0; r < BENCH_REPS; r++)
            v[r] = runs[r][k];
        char name[128];
        snprintf(name, sizeof name, "tcp.ack_c%ld_k%ld%s_%s%s", cf->connections, cf->window, infix,
                 what[k], suffix);
        medians[k] = bench_report(name, v, BENCH_REPS, unit[k]);
        if (!*suffix && !*infix && k == 0 && cf->connections == 100)
            printf("#   target: %s >= %d req/s: %s\n", name, cf->window > 1 ? 300000 : 30000,
                   medians[0] >= (cf->window > 1 ? 300000 : 30000) ? "met" : "MISSED");
        if (!*suffix && !*infix && k == 2 && cf->connections == 10 && cf->window == 1)
            printf("#   target: %s <= 1000 us: %s\n", name, medians[2] <= 1000 ? "met" : "MISSED");
    }
    if (!have_sched)
        printf("# skipped: tcp.ack_c%ld_k%ld%s_cpu_us and _runq_us (no per-thread schedstat)\n",
               cf->connections, cf->window, infix);
    return medians[0];
}

/* Run the n configurations cfs against the server pid on port, each BENCH_REPS times, and print
 * their figures; suffix "" for ztwist. */
static bool
measure(pid_t server, long port, const char *suffix, long scale_down, const config_t *cfs,
        size_t ncfs)
{
    for (size_t c = 0; c < ncfs; c++) {
        double runs[BENCH_REPS][5];
        for (int r = 0; r < BENCH_REPS; r++)
            if (!run_load(server, port, cfs[c].connections, lines_for(&cfs[c], scale_down),
                          cfs[c].window, runs[r]))
                return false;
        report_config(&cfs[c], scale_down, "", suffix, runs);
    }
    return true;
}

/* --- connections accepted and closed ------------------------------------------------------- */

#define ACCEPT_CLIENTS 2 /* client processes, started together */
#define ACCEPT_PARALLEL                                                                            \
    24 /* connections in progress at once in each (48 in all: backlogs are 128) */

/* Start one connection to 127.0.0.1:port and shut its sending side down: a blocking connect,
 * which on loopback returns once the kernel has put the connection in the server's backlog. The
 * server's close then makes it readable (end of stream). */
static bool
accept_start(struct pollfd *p, long port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || shutdown(fd, SHUT_WR) != 0) {
        close(fd);
        return false;
    }
    *p = (struct pollfd){.fd = fd, .events = POLLIN};
    return true;
}

/* Close a finished connection with a reset (linger 0): the server closed first, so its side would
 * otherwise wait in TIME_WAIT, and a run's tens of thousands of those slow the next runs down. The
 * same for both servers. */
static void
accept_close(int fd)
{
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
}

/* One client: total connections, ACCEPT_PARALLEL at a time, each made, shut down for writing at
 * once and closed when the server has closed its end. Returns false when one failed. */
static bool
accept_client(long port, long total)
{
    struct pollfd p[ACCEPT_PARALLEL];
    long started = 0, done = 0;
    for (int i = 0; i < ACCEPT_PARALLEL; i++) {
        p[i] = (struct pollfd){.fd = -1};
        if (started < total && !accept_start(&p[i], port))
            return false;
        started += p[i].fd >= 0;
    }
    while (done < total) {
        if (poll(p, ACCEPT_PARALLEL, 30000) <= 0)
            return false;
        for (int i = 0; i < ACCEPT_PARALLEL; i++) {
            if (!p[i].revents)
                continue;
            char buf[64];
            ssize_t r = recv(p[i].fd, buf, sizeof buf, 0);
            if (r > 0)
                continue; /* a server may say something first */
            if (r < 0 && errno != ECONNRESET)
                return false;
            accept_close(p[i].fd);
            p[i] = (struct pollfd){.fd = -1};
            done++;
            if (started < total) {
                if (!accept_start(&p[i], port))
                    return false;
                started++;
            }
        }
    }
    return true;
}

/* One run: ACCEPT_CLIENTS client processes, released together, make total connections between
 * them. Returns connections per second from the release until the last client is done, or -1
 * when one failed; *client_cpu_us: the clients' CPU time per connection. */
static double
accept_run(long port, long total, double *client_cpu_us)
{
    int go[2], done[2];
    if (pipe(go) != 0)
        return -1;
    if (pipe(done) != 0) {
        close(go[0]);
        close(go[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pids[ACCEPT_CLIENTS];
    int started = 0;
    for (; started < ACCEPT_CLIENTS; started++) {
        long share = total / ACCEPT_CLIENTS + (started < total % ACCEPT_CLIENTS);
        if ((pids[started] = fork()) < 0)
            break;
        if (pids[started] == 0) {
            close(go[1]);
            close(done[0]);
            char c;
            bool ok = read(go[0], &c, 1) == 1 && accept_client(port, share);
            c = ok ? 'y' : 'n';
            _exit(write(done[1], &c, 1) == 1 && ok ? 0 : 1);
        }
    }
    close(go[0]);
    close(done[1]);
    uint64_t t0 = bench_now_ns();
    char release[ACCEPT_CLIENTS] = {0};
    bool ok = started == ACCEPT_CLIENTS && write(go[1], release, sizeof release) == sizeof release;
    close(go[1]);
    int finished = 0;
    char c;
    while (ok && finished < ACCEPT_CLIENTS && read(done[0], &c, 1) == 1)
        finished += c == 'y';
    uint64_t t1 = bench_now_ns();
    close(done[0]);
    double cpu_us = 0;
    for (int i = 0; i < started; i++) {
        int status = 0;
        struct rusage ru;
        if (wait4(pids[i], &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            ok = false;
        cpu_us += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    }
    if (!ok || finished < ACCEPT_CLIENTS)
        return -1;
    *client_cpu_us = cpu_us / (double)total;
    return (double)total / ((double)(t1 - t0) / 1e9);
}

/* tcp.accept_per_s against the server on port. */
static bool
measure_accept(pid_t server, long port, const char *suffix, long scale_down, figures_t *fig)
{
    long total = (bench_quick() ? 4000 : 20000) / scale_down;
    double per_s[BENCH_REPS], cpu[BENCH_REPS], client_cpu[BENCH_REPS];
    bool have_sched = true;
    for (int r = 0; r < BENCH_REPS; r++) {
        int64_t cpu0 = 0, cpu1 = 0, wait = 0;
        have_sched = have_sched && sched_totals(server, &cpu0, &wait);
        if ((per_s[r] = accept_run(port, total, &client_cpu[r])) < 0) {
            fprintf(stderr, "bench_tcp: a connection failed\n");
            return false;
        }
        have_sched = have_sched && sched_totals(server, &cpu1, &wait);
        cpu[r] = (double)(cpu1 - cpu0) / 1e3 / (double)total;
    }
    printf("# accept: %ld connections per run from %d client processes, %d at a time each: "
           "connect, shut down sending, read the server's close, close with a reset\n",
           total, ACCEPT_CLIENTS, ACCEPT_PARALLEL);
    char name[64];
    snprintf(name, sizeof name, "tcp.accept_per_s%s", suffix);
    fig->accept = bench_report(name, per_s, BENCH_REPS, "conn/s");
    if (have_sched)
        bench_note(name, "server CPU time per connection", cpu, BENCH_REPS, "us");
    bench_note(name,
               "client CPU time per connection (the clients' processes; the same for both "
               "servers)",
               client_cpu, BENCH_REPS, "us");
    return true;
}

/* --- idle connections ---------------------------------------------------------------------- */

#define IDLE_BATCH 100 /* connections opened at once: under the servers' listen backlog (128) */

/* Idle connections held open while the load runs. */
typedef struct idle {
    int *fds; /* Owned: the connections */
    size_t n; /* how many are open */
} idle_t;

/* Close them with a reset (linger 0): no TIME_WAIT, so repetitions do not run out of ports. */
static void
idle_close(idle_t *idle)
{
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    for (size_t i = 0; i < idle->n; i++) {
        (void)setsockopt(idle->fds[i], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(idle->fds[i]);
    }
    free(idle->fds);
    *idle = (idle_t){0};
}

/* Open count connections to the server on port, IDLE_BATCH at a time, each answered once
 * ("idle\r\n" -> "ack:idle\r\n") so that the server has accepted it; then they say nothing. */
static bool
idle_open(idle_t *idle, long port, size_t count)
{
    idle->fds = calloc(count, sizeof *idle->fds);
    if (!idle->fds)
        return false;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 60};
    while (idle->n < count) {
        size_t first = idle->n, batch = count - first < IDLE_BATCH ? count - first : IDLE_BATCH;
        for (size_t i = 0; i < batch; i++) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0)
                return false;
            idle->fds[idle->n++] = fd;
            if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
                connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
                send(fd, "idle\r\n", 6, MSG_NOSIGNAL) != 6)
                return false;
        }
        for (size_t i = first; i < idle->n; i++) {
            char buf[16];
            size_t got = 0;
            while (got < 10) {
                ssize_t r = recv(idle->fds[i], buf + got, sizeof buf - got, 0);
                if (r <= 0)
                    return false;
                got += (size_t)r;
            }
            if (got != 10 || memcmp(buf, "ack:idle\r\n", 10) != 0)
                return false;
        }
    }
    return true;
}

/* How many idle connections this run holds: 10,000 (1,000 quick), or 0 when the open-file limit
 * is too low for them (the soft limit is raised to the hard one first; children inherit it). */
static size_t
idle_count(void)
{
    size_t want = bench_quick() ? 1000 : 10000;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want + 512) {
        printf("# skipped: the idle-connection figures (%zu connections need an open-file limit "
               "over %zu; it is %llu)\n",
               want, want + 512, (unsigned long long)rl.rlim_cur);
        return 0;
    }
    return want;
}

/* The idle_configs without and with idle_n idle connections, paired: each repetition runs both
 * configurations without, opens the idle connections, runs both with them and closes them, so
 * that the two sides of each ratio are measured minutes apart at most. */
static bool
measure_idle(pid_t pid, long port, const char *suffix, long scale_down, size_t idle_n,
             bool print_plain, figures_t *fig)
{
    enum { NCF = sizeof idle_configs / sizeof idle_configs[0] };
    double plain[NCF][BENCH_REPS][5], idle_runs[NCF][BENCH_REPS][5];
    double open_s[BENCH_REPS];
    for (int r = 0; r < BENCH_REPS; r++) {
        for (int c = 0; c < NCF; c++)
            if (!run_load(pid, port, idle_configs[c].connections,
                          lines_for(&idle_configs[c], scale_down), idle_configs[c].window,
                          plain[c][r]))
                return false;
        idle_t idle = {0};
        uint64_t t0 = bench_now_ns();
        if (!idle_open(&idle, port, idle_n)) {
            fprintf(stderr, "bench_tcp: cannot open idle connection %zu: %s\n", idle.n,
                    strerror(errno));
            idle_close(&idle);
            return false;
        }
        open_s[r] = (double)(bench_now_ns() - t0) / 1e9;
        /* Let the kernel send the delayed ACKs of the 10,000 answers before the clock starts. */
        struct timespec settle = {.tv_nsec = 500000000};
        nanosleep(&settle, NULL);
        bool ok = true;
        for (int c = 0; c < NCF && ok; c++)
            ok = run_load(pid, port, idle_configs[c].connections,
                          lines_for(&idle_configs[c], scale_down), idle_configs[c].window,
                          idle_runs[c][r]);
        idle_close(&idle);
        if (!ok)
            return false;
        /* The server handles the resets of the idle connections before the next run. */
        nanosleep(&settle, NULL);
    }
    printf("# %zu idle connections, opened (and answered once each) in %.2f s (median)\n", idle_n,
           bench_median(open_s, BENCH_REPS));
    char infix[32];
    snprintf(infix, sizeof infix, "_idle%zuk", idle_n / 1000);
    for (int c = 0; c < NCF; c++) {
        const config_t *cf = &idle_configs[c];
        double base;
        if (print_plain) {
            base = report_config(cf, scale_down, "", suffix, plain[c]);
        } else {
            double v[BENCH_REPS];
            for (int r = 0; r < BENCH_REPS; r++)
                v[r] = plain[c][r][0];
            base = bench_median(v, BENCH_REPS);
            printf("#   tcp.ack_c%ld_k%ld_per_s%s in the same repetitions, without idle "
                   "connections: %.0f req/s\n",
                   cf->connections, cf->window, suffix, base);
        }
        double m = report_config(cf, scale_down, infix, suffix, idle_runs[c]);
        *(cf->window > 1 ? &fig->idle_c10_k32 : &fig->idle_c10_k1) = m;
        *(cf->window > 1 ? &fig->c10_k32 : &fig->c10_k1) = base;
        if (!*suffix)
            printf("#   target: tcp.ack_c%ld_k%ld%s_per_s >= 80%% of tcp.ack_c%ld_k%ld_per_s "
                   "(%.0f, same repetitions): %.0f%%, %s\n",
                   cf->connections, cf->window, infix, cf->connections, cf->window, base,
                   100 * m / base, m >= 0.8 * base ? "met" : "MISSED");
    }
    return true;
}

/* What a run measures: everything, or one group (for A/B runs: `bench_tcp c10`, `bench_tcp
 * accept`). */
typedef enum part { PART_ALL, PART_C10, PART_ACCEPT } part_t;

/* Against one server: the configurations, accept, then the C=10 ones with idle connections. */
static bool
measure_server(pid_t pid, long port, const char *suffix, long scale_down, size_t idle_n,
               part_t part, figures_t *fig)
{
    if (part == PART_ALL &&
        !measure(pid, port, suffix, scale_down, configs, sizeof configs / sizeof configs[0]))
        return false;
    if (part != PART_C10 && !measure_accept(pid, port, suffix, scale_down, fig))
        return false;
    if (part == PART_ACCEPT)
        return true;
    if (idle_n == 0)
        return part == PART_ALL || measure(pid, port, suffix, scale_down, idle_configs,
                                           sizeof idle_configs / sizeof idle_configs[0]);
    return measure_idle(pid, port, suffix, scale_down, idle_n, part == PART_C10, fig);
}

/* The targets that compare ztwist with Twisted, from the same run. */
static void
print_peer_targets(const figures_t *zt, const figures_t *tw, size_t idle_n)
{
    if (tw->accept > 0)
        printf("#   target: tcp.accept_per_s >= 3x Twisted's (%.0f): %.1fx, %s\n", tw->accept,
               zt->accept / tw->accept, zt->accept >= 3 * tw->accept ? "met" : "MISSED");
    if (idle_n > 0 && tw->idle_c10_k1 > 0)
        printf("#   target: tcp.ack_c10_k1_idle%zuk_per_s >= 3x Twisted's (%.0f): %.1fx, %s\n",
               idle_n / 1000, tw->idle_c10_k1, zt->idle_c10_k1 / tw->idle_c10_k1,
               zt->idle_c10_k1 >= 3 * tw->idle_c10_k1 ? "met" : "MISSED");
}

int
main(int argc, char **argv)
{
    part_t part = PART_ALL;
    if (argc > 1 && strcmp(argv[1], "c10") == 0)
        part = PART_C10;
    else if (argc > 1 && strcmp(argv[1], "accept") == 0)
        part = PART_ACCEPT;
    else if (argc > 1) {
        fprintf(stderr, "usage: bench_tcp [c10 | accept]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("# ack_server --mode defer --threads 4 and Twisted's LineReceiver + deferToThread (pool "
           "4), both under examples/ack_load on 127.0.0.1\n");
    const char *slice = getenv("BENCH_TCP_SLICE_US");
    long slice_us = slice ? strtol(slice, NULL, 10) : 0;
    if (slice_us > 0)
        printf("# scheduler slice asked for every process: %ld us (BENCH_TCP_SLICE_US)\n",
               slice_us);
    size_t idle_n = idle_count(); /* before the servers start: they inherit the limit */
    char *const zt_argv[] = {ZT_ACK_SERVER, "--host", "127.0.0.1", "--port", "0",
                             "--mode",      "defer",  "--threads", "4",      NULL};
    server_t zt = start_server(zt_argv);
    if (zt.pid < 0) {
        fprintf(stderr, "bench_tcp: cannot start %s\n", ZT_ACK_SERVER);
        return 1;
    }
    figures_t zt_fig = {0}, tw_fig = {0};
    bool ok = measure_server(zt.pid, zt.port, "", 1, idle_n, part, &zt_fig);
    stop_server(&zt);
    if (!ok)
        return 1;

    const char *no_peer = getenv("BENCH_TCP_NO_PEER");
    if (no_peer && strcmp(no_peer, "1") == 0) {
        printf("# skipped: twisted_ack_server (BENCH_TCP_NO_PEER=1)\n");
        return 0;
    }
    char *const tw_argv[] = {PYTHON, ZT_TWISTED_ACK_SERVER, "--port", "0", "--threads", "4", NULL};
    server_t tw = start_server(tw_argv);
    if (tw.pid < 0) {
        printf("# skipped: twisted_ack_server (Twisted did not start under %s)\n", PYTHON);
        return 0;
    }
    if (!measure_server(tw.pid, tw.port, ".peer.twisted", 5, idle_n, part, &tw_fig))
        printf("# skipped: the rest of the Twisted peer's runs (a run failed against it)\n");
    stop_server(&tw);
    print_peer_targets(&zt_fig, &tw_fig, idle_n);
    return 0;
}
