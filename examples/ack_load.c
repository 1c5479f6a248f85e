/*  examples/ack_load.c - a load generator for ack_server (or any server answering "ack:<line>")
 *
 *  Opens C connections with zt_connect_tcp, each a LineReceiver that sends M lines "<conn>:<seq>"
 * through a sliding window of K (K = 1: request-response; K > 1: pipelined): line s goes out once
 * every line before s - K + 1 is answered. Every reply is checked: it must be "ack:" followed by a
 * line of its connection that is in the window and not answered yet. Replies may come out of
 * order (a server with a pool of workers answers in the order they finish). The
 * latency of a request is the time from the write of its line to the arrival of its reply. At the
 * end one line sums it up:
 *
 *      requests 100000 errors 0 seconds 0.512 per_s 195312 p50_us 410.2 p99_us 901.7 cpu_ms 231.0
 *      runq_ms 12.5
 *
 *  (on one line) and the exit status is 0 when every reply arrived and was right, 1 otherwise.
 * cpu_ms is the CPU time this client's threads used during the run and runq_ms the time they were
 * ready to run but waiting for a CPU (Linux's /proc/self/task/<tid>/schedstat; both -1 where that
 * is not readable). runq_ms includes waiting for the server when both share the CPUs; one several
 * times that of a quiet run says that the latencies measure a busy machine.
 *
 *  --trace FILE writes one line per reply, "<conn>:<seq> <sent> <received>", in nanoseconds on the
 * monotonic clock (zt_time_now_ns): with ack_server --trace, which logs the same "<conn>:<seq>"
 * with its own stages, and `perf sched record -k mono`, it shows where each request's time went.
 *
 *  --spawn MODE starts ack_server (from this program's directory) on 127.0.0.1 port 0 in that mode
 * with 4 threads, reads the port from its "listening on" line, runs the load against it and stops
 * it with SIGTERM (the demo does this). --check prints only "requests N errors E", which does not
 * depend on timing (the example tests compare it). --show first prints one exchange of the
 * protocol itself, connection 0's first line and the server's reply to it:
 *
 *      exchange: sent "0:0", received "ack:0:0"
 *
 *  usage: ack_load [--host H] (--port P | --spawn thread|defer) --connections C --lines M
 *                  --window K [--timeout S] [--check] [--show] [--trace FILE]  */
#include <ztwist.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct load load_t;

/* One client connection. */
typedef struct conn {
    load_t *load;             /* Borrowed: the run */
    zt_line_receiver_t *lr;   /* Borrowed: its receiver, while connected */
    size_t index;             /* which connection */
    uint64_t sent;            /* lines sent */
    uint64_t acked;           /* replies received */
    uint64_t base;            /* the oldest unanswered line */
    int64_t *sent_at;         /* Owned: write time of each line in the window, a ring of K */
    bool *answered;           /* Owned: whether each line in the window is answered, a ring */
    zt_factory_t *factory;    /* Owned: the connection's factory (its arg is this conn) */
    zt_deferred_t *connect_d; /* Owned reference: the connect Deferred */
    bool done;                /* every reply arrived, or the connection failed */
    bool closed;              /* the connection is over (lost, or never made) */
} conn_t;

struct load {
    zt_reactor_t *reactor; /* Borrowed: the reactor */
    size_t connections;    /* C */
    uint64_t lines;        /* M per connection */
    uint64_t window;       /* K */
    conn_t *conns;         /* Owned: C connections */
    double *latencies_us;  /* Owned: one per request, in arrival order */
    uint64_t nlat;         /* how many */
    uint64_t errors;       /* bad replies, failed or lost connections */
    size_t finished;       /* connections done */
    size_t closed;         /* connections over; the reactor stops when all are */
    int64_t start_ns;      /* when the first connection was made */
    int64_t end_ns;        /* when the last reply arrived */
    FILE *trace;           /* Owned: --trace's file, or NULL */
    bool started;          /* start_ns is set */
    bool show;             /* --show: print connection 0's first exchange */
};

/* The connection's work is over (all its replies, or an error). */
static void
conn_finish(conn_t *c)
{
    if (c->done)
        return;
    c->done = true;
    if (++c->load->finished == c->load->connections)
        c->load->end_ns = zt_time_now_ns();
}

/* The connection is gone (lost, or never made): stop when every one is. */
static void
conn_closed(conn_t *c)
{
    conn_finish(c);
    if (c->closed)
        return;
    c->closed = true;
    if (++c->load->closed == c->load->connections)
        zt_reactor_stop(c->load->reactor);
}

/* Send the next line of c. */
static void
conn_send(conn_t *c)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%zu:%llu", c->index, (unsigned long long)c->sent);
    c->sent_at[c->sent % c->load->window] = zt_time_now_ns();
    c->answered[c->sent % c->load->window] = false;
    if (zt_line_receiver_send_line(c->lr, line, (size_t)n) != 0) {
        c->load->errors++;
        conn_finish(c);
        return;
    }
    c->sent++;
}

static void
on_made(zt_line_receiver_t *lr, void *arg)
{
    conn_t *c = arg;
    c->lr = lr;
    if (!c->load->started) {
        c->load->started = true;
        c->load->start_ns = zt_time_now_ns();
    }
    zt_transport_set_tcp_no_delay(zt_line_receiver_transport(lr), true);
    while (c->sent < c->load->lines && c->sent < c->base + c->load->window && !c->done)
        conn_send(c);
}

static void
on_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg)
{
    conn_t *c = arg;
    load_t *load = c->load;
    /* "ack:<conn>:<seq>" with seq in the window and not answered yet. */
    char text[80];
    uint64_t seq = 0;
    size_t index = 0;
    char tail = 0;
    bool ok = len > 4 && len < sizeof text && memcmp(line, "ack:", 4) == 0;
    if (ok) {
        memcpy(text, line + 4, len - 4);
        text[len - 4] = 0;
        unsigned long long s = 0;
        ok = sscanf(text, "%zu:%llu%c", &index, &s, &tail) == 2 && index == c->index;
        seq = s;
    }
    ok = ok && seq >= c->base && seq < c->sent && !c->answered[seq % load->window];
    if (!ok) {
        fprintf(stderr, "ack_load: connection %zu: unexpected reply '%.*s'\n", c->index,
                (int)(len > 60 ? 60 : len), line);
        load->errors++;
        conn_finish(c);
        zt_transport_abort_connection(zt_line_receiver_transport(lr));
        return;
    }
    int64_t now = zt_time_now_ns();
    if (load->trace)
        fprintf(load->trace, "%zu:%llu %lld %lld\n", c->index, (unsigned long long)seq,
                (long long)c->sent_at[seq % load->window], (long long)now);
    if (load->show && c->index == 0 && seq == 0)
        printf("exchange: sent \"%zu:%llu\", received \"%.*s\"\n", c->index,
               (unsigned long long)seq, (int)len, line);
    load->latencies_us[load->nlat++] = (double)(now - c->sent_at[seq % load->window]) / 1000.0;
    c->answered[seq % load->window] = true;
    c->acked++;
    while (c->base < c->sent && c->answered[c->base % load->window])
        c->base++;
    if (c->acked == load->lines) {
        conn_finish(c);
        zt_transport_lose_connection(zt_line_receiver_transport(lr));
        return;
    }
    while (c->sent < load->lines && c->sent < c->base + load->window && !c->done)
        conn_send(c);
}

static void
on_lost(zt_line_receiver_t *lr, const zt_failure_t *reason, void *arg)
{
    (void)lr;
    conn_t *c = arg;
    c->lr = NULL;
    if (!c->done) {
        char text[256];
        zt_failure_format(reason, text, sizeof text);
        fprintf(stderr, "ack_load: connection %zu lost after %llu replies: %s\n", c->index,
                (unsigned long long)c->acked, text);
        c->load->errors++;
    }
    conn_closed(c);
}

static const zt_line_receiver_vtable_t load_protocol = {
    .connection_made = on_made,
    .line_received = on_line,
    .connection_lost = on_lost,
};

static zt_protocol_t *
build(zt_factory_t *factory, const zt_address_t *addr, void *arg)
{
    (void)factory;
    (void)addr;
    zt_line_receiver_t *lr = zt_line_receiver_new(&load_protocol, arg, NULL);
    return lr ? zt_line_receiver_protocol(lr) : NULL;
}

static void
on_failed(zt_factory_t *factory, const zt_failure_t *reason, void *arg)
{
    (void)factory;
    conn_t *c = arg;
    char text[256];
    zt_failure_format(reason, text, sizeof text);
    fprintf(stderr, "ack_load: connection %zu cannot connect: %s\n", c->index, text);
    c->load->errors++;
    conn_closed(c);
}

static const zt_factory_vtable_t load_factory = {
    .build_protocol = build,
    .client_connection_failed = on_failed,
};

static void
on_timeout(void *arg)
{
    load_t *load = arg;
    fprintf(stderr, "ack_load: timed out with %zu of %zu connections done\n", load->finished,
            load->connections);
    load->errors++;
    for (size_t i = 0; i < load->connections; i++) {
        conn_t *c = &load->conns[i];
        zt_deferred_cancel(c->connect_d); /* a connection still being made */
        if (c->lr)
            zt_transport_abort_connection(zt_line_receiver_transport(c->lr));
    }
}

/* CPU time and time spent ready to run but waiting for a CPU, in nanoseconds, summed over this
 * process's threads (the first two fields of Linux's per-thread schedstat). False where /proc does
 * not have them. */
static bool
sched_totals(int64_t *cpu_ns, int64_t *wait_ns)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return false;
    *cpu_ns = *wait_ns = 0;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/schedstat", e->d_name);
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

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
quantile(const double *v, uint64_t n, double q)
{
    if (n == 0)
        return 0;
    uint64_t i = (uint64_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int
usage(void)
{
    fprintf(stderr, "usage: ack_load [--host H] (--port P | --spawn thread|defer) --connections C "
                    "--lines M --window K [--timeout S] [--check] [--show] [--trace FILE]\n");
    return 2;
}

/* Start ack_server from argv0's directory on port 0 in mode; returns its pid (or -1) and its port
 * in *port, read from its first line. quiet sends its stderr to /dev/null. */
static pid_t
spawn_server(const char *argv0, const char *mode, bool quiet, long *port)
{
    char path[4096];
    const char *slash = strrchr(argv0, '/');
    int dir_len = slash ? (int)(slash - argv0) : 1;
    snprintf(path, sizeof path, "%.*s/ack_server", dir_len, slash ? argv0 : ".");
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        if (quiet) {
            FILE *null = freopen("/dev/null", "w", stderr);
            (void)null;
        }
        execl(path, path, "--host", "127.0.0.1", "--port", "0", "--mode", mode, "--threads", "4",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *out = fdopen(fds[0], "r");
    char line[256] = "";
    if (!out || !fgets(line, sizeof line, out) || strncmp(line, "listening on ", 13) != 0) {
        fprintf(stderr, "ack_load: %s did not start\n", path);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        if (out)
            fclose(out);
        return -1;
    }
    fclose(out);
    const char *colon = strrchr(line, ':');
    *port = colon ? strtol(colon + 1, NULL, 10) : -1;
    return pid;
}

int
main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = -1, connections = 1, lines = 1000, window = 1;
    double timeout = 120;
    const char *spawn = NULL;
    const char *trace = NULL;
    bool check_only = false;
    bool show = false;
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--check") == 0 || strcmp(argv[i], "--show") == 0) {
            *(strcmp(argv[i], "--check") == 0 ? &check_only : &show) = true;
            i--;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--spawn") == 0 && (strcmp(v, "thread") == 0 || strcmp(v, "defer") == 0))
            spawn = v;
        else if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0)
            port = strtol(v, NULL, 10);
        else if (strcmp(a, "--connections") == 0)
            connections = strtol(v, NULL, 10);
        else if (strcmp(a, "--lines") == 0)
            lines = strtol(v, NULL, 10);
        else if (strcmp(a, "--window") == 0)
            window = strtol(v, NULL, 10);
        else if (strcmp(a, "--timeout") == 0)
            timeout = strtod(v, NULL);
        else if (strcmp(a, "--trace") == 0)
            trace = v;
        else
            return usage();
    }
    FILE *trace_file = NULL;
    if (trace && !(trace_file = fopen(trace, "w"))) {
        fprintf(stderr, "ack_load: cannot open %s\n", trace);
        return 1;
    }
    pid_t server = -1;
    if (spawn) {
        server = spawn_server(argv[0], spawn, check_only, &port);
        if (server < 0)
            return 1;
    }
    if (port <= 0 || port > 65535 || connections < 1 || lines < 1 || window < 1 || timeout <= 0)
        return usage();

    load_t load = {.connections = (size_t)connections,
                   .lines = (uint64_t)lines,
                   .window = (uint64_t)window,
                   .trace = trace_file,
                   .show = show};
    load.reactor = zt_reactor_new();
    load.conns = calloc(load.connections, sizeof *load.conns);
    load.latencies_us = malloc(load.connections * load.lines * sizeof *load.latencies_us);
    if (!load.reactor || !load.conns || !load.latencies_us) {
        fprintf(stderr, "ack_load: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < load.connections; i++) {
        load.conns[i] = (conn_t){.load = &load, .index = i};
        conn_t *c = &load.conns[i];
        c->sent_at = calloc(load.window, sizeof(int64_t));
        c->answered = calloc(load.window, sizeof(bool));
        c->factory = zt_factory_new(&load_factory, c);
        if (!c->sent_at || !c->answered || !c->factory)
            return 1;
        /* The factory's callbacks report a failure; the Deferred is kept to cancel it. */
        c->connect_d = zt_connect_tcp(load.reactor, host, (uint16_t)port, c->factory, 10);
        if (!c->connect_d)
            return 1;
    }
    zt_delayed_call_t *deadline = NULL;
    zt_reactor_call_later(load.reactor, timeout, on_timeout, &load, &deadline);

    int64_t cpu0 = 0, wait0 = 0, cpu1 = 0, wait1 = 0;
    bool have_sched = sched_totals(&cpu0, &wait0);
    zt_reactor_run(load.reactor);
    have_sched = have_sched && sched_totals(&cpu1, &wait1);

    if (zt_delayed_call_is_active(deadline))
        zt_delayed_call_cancel(deadline);
    zt_delayed_call_release(&deadline);
    uint64_t total = load.nlat;
    double seconds = load.started ? (double)(load.end_ns - load.start_ns) / 1e9 : 0;
    qsort(load.latencies_us, total, sizeof(double), cmp_double);
    bool ok = load.errors == 0 && total == load.connections * load.lines;
    if (server > 0) {
        int status = 0;
        kill(server, SIGTERM);
        if (waitpid(server, &status, 0) != server || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "ack_load: ack_server did not exit cleanly\n");
            ok = false;
        }
    }
    if (check_only)
        printf("requests %llu errors %llu\n", (unsigned long long)total,
               (unsigned long long)load.errors);
    else
        printf("requests %llu errors %llu seconds %.3f per_s %.0f p50_us %.1f p99_us %.1f cpu_ms "
               "%.1f runq_ms %.1f\n",
               (unsigned long long)total, (unsigned long long)load.errors, seconds,
               seconds > 0 ? (double)total / seconds : 0.0,
               quantile(load.latencies_us, total, 0.50), quantile(load.latencies_us, total, 0.99),
               have_sched ? (double)(cpu1 - cpu0) / 1e6 : -1.0,
               have_sched ? (double)(wait1 - wait0) / 1e6 : -1.0);
    for (size_t i = 0; i < load.connections; i++) {
        zt_deferred_unref(&load.conns[i].connect_d);
        zt_factory_destroy(&load.conns[i].factory);
        free(load.conns[i].sent_at);
        free(load.conns[i].answered);
    }
    free(load.conns);
    free(load.latencies_us);
    if (load.trace)
        fclose(load.trace);
    zt_reactor_destroy(&load.reactor);
    return ok ? 0 : 1;
}
