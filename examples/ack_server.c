/*  examples/ack_server.c - a line server whose every line is handled on a worker thread
 *
 *  Each line a client sends is answered "ack:<line>\r\n". The answer is made on a worker of the
 * reactor's thread pool, as a server does with blocking work (a database call, a file read), and
 * written by the reactor thread, the only one that may touch a transport:
 *
 *    --mode thread  zt_call_in_thread(work); the worker hands the reply back with
 *                   zt_reactor_call_from_thread(deliver)          (Twisted: callInThread +
 *                   callFromThread)
 *    --mode defer   zt_defer_to_thread(work) and a callback that writes the reply
 *                   (Twisted: deferToThread(...).addCallback(...))
 *
 *  A reply may come back after its client has gone: each job holds a reference to its connection's
 * state, which holds a reference to the transport (zt_transport_ref), so the reply finds a closed
 * transport, is dropped and the job freed; nothing is used after it is freed.
 *
 *  Flow control: a connection stops delivering lines (zt_line_receiver_pause_producing, which also
 * stops reading) while ACK_MAX_IN_FLIGHT of its lines are on the workers, or while more than 64 KiB
 * of its replies wait to be sent (the connection's state is registered as its transport's
 * producer). A client that sends without reading therefore holds a bounded amount of the server's
 * memory, and everyone else is served meanwhile. A line longer than 16 KiB closes that connection
 * only (LineReceiver's default).
 *
 *  The first line of output is "listening on HOST:PORT" (the real port when 0 was asked for); the
 * server stops cleanly on SIGINT or SIGTERM, closing its connections and its pool, and prints a
 * summary on stderr.
 *
 *  --trace FILE writes one line per reply, "<line> <read> <start> <done> <deliver>": when the line
 * was read on the reactor, when a worker started and finished it, and when its reply was handed to
 * the transport, in nanoseconds on the monotonic clock (zt_time_now_ns), so that they compare with
 * ack_load --trace and with `perf sched record -k mono` (issue #6 found where the p99 of a busy
 * machine goes with them).
 *
 *  usage: ack_server [--host H] --port P --mode thread|defer [--threads N] [--work-ms W]
 *                    [--trace FILE]  */
#include <ztwist.h>
#include <ztwist/threads.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Lines of one connection on the workers at most; delivery resumes below half of it. */
#define ACK_MAX_IN_FLIGHT 1024

typedef enum ack_mode { MODE_THREAD, MODE_DEFER } ack_mode_t;

typedef struct server {
    zt_reactor_t *reactor; /* Borrowed: the reactor */
    ack_mode_t mode;       /* how lines reach the workers */
    long work_ms;          /* simulated work per line, on the worker */
    zt_tcp_port_t *port;   /* Owned: the listening port */
    uint64_t lines;        /* lines received */
    uint64_t replies;      /* replies written */
    uint64_t dropped;      /* replies whose connection had gone */
    uint64_t refused;      /* lines the pool refused (shutting down, full) */
    FILE *trace;           /* Owned: --trace's file, or NULL */
} server_t;

/* A connection's state: freed when the connection is over and no job refers to it. */
typedef struct conn {
    server_t *server;          /* Borrowed: the server (lives until run returns) */
    unsigned refs;             /* 1 for the protocol + 1 per job */
    zt_transport_t *transport; /* Owned reference, from connection_made; NULL before */
    zt_line_receiver_t *lr;    /* Borrowed: the receiver, NULL once the connection is over */
    size_t in_flight;          /* lines on the workers */
    bool write_paused;         /* the transport asked us to pause (its buffer is full) */
    bool delivery_paused;      /* we paused the receiver */
} conn_t;

/* One line on its way through a worker and back. */
typedef struct job {
    server_t *server; /* Borrowed: the server (lives until run returns) */
    conn_t *conn;     /* Owned reference: the connection's state */
    size_t len;       /* the line's length */
    char *reply;      /* Owned: "ack:<line>\r\n", made by the worker */
    size_t reply_len; /* its length */
    int64_t read_ns;  /* --trace: when the line was read (reactor) */
    int64_t start_ns; /* --trace: when a worker started it */
    int64_t done_ns;  /* --trace: when the worker finished it */
    char line[];      /* the line (copied) */
} job_t;

static void
conn_unref(void *arg)
{
    conn_t *conn = arg;
    if (--conn->refs > 0)
        return;
    zt_transport_unref(&conn->transport);
    free(conn);
}

/* Pause or resume the delivery of lines to match the connection's load. */
static void
conn_update(conn_t *conn)
{
    if (!conn->lr)
        return;
    bool busy = conn->in_flight >= ACK_MAX_IN_FLIGHT ||
                (conn->delivery_paused && conn->in_flight >= ACK_MAX_IN_FLIGHT / 2);
    bool pause = conn->write_paused || busy;
    if (pause && !conn->delivery_paused) {
        conn->delivery_paused = true;
        zt_line_receiver_pause_producing(conn->lr);
    } else if (!pause && conn->delivery_paused) {
        conn->delivery_paused = false;
        zt_line_receiver_resume_producing(conn->lr);
    }
}

static void
job_free(job_t *job)
{
    conn_unref(job->conn);
    free(job->reply);
    free(job);
}

/* On a worker: the "blocking work", then the reply. */
static zt_result_t
work(void *arg)
{
    job_t *job = arg;
    if (job->server->trace)
        job->start_ns = zt_time_now_ns();
    if (job->server->work_ms > 0) {
        struct timespec ts = {.tv_sec = job->server->work_ms / 1000,
                              .tv_nsec = (job->server->work_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* stands for blocking work; not synchronisation */
    }
    job->reply = malloc(job->len + 6);
    if (!job->reply)
        return zt_err(zt_failure_from_code(ZT_ENOMEM, "reply"));
    memcpy(job->reply, "ack:", 4);
    memcpy(job->reply + 4, job->line, job->len);
    memcpy(job->reply + 4 + job->len, "\r\n", 2);
    job->reply_len = job->len + 6;
    if (job->server->trace)
        job->done_ns = zt_time_now_ns();
    return zt_ok_none();
}

/* On the reactor thread: write the reply if the connection is still there. */
static void
deliver(void *arg)
{
    job_t *job = arg;
    conn_t *conn = job->conn;
    conn->in_flight--;
    if (job->reply && zt_transport_is_connected(conn->transport) &&
        zt_transport_write(conn->transport, job->reply, job->reply_len) == 0) {
        job->server->replies++;
        if (job->server->trace)
            fprintf(job->server->trace, "%.*s %lld %lld %lld %lld\n", (int)job->len, job->line,
                    (long long)job->read_ns, (long long)job->start_ns, (long long)job->done_ns,
                    (long long)zt_time_now_ns());
    } else
        job->server->dropped++;
    conn_update(conn);
    job_free(job);
}

/* --mode thread: the worker does the work and sends the reply back itself. */
static zt_result_t
work_then_call_back(void *arg)
{
    job_t *job = arg;
    zt_result_t r = work(job);
    zt_result_release(&r);
    int rc = zt_reactor_call_from_thread(job->server->reactor, deliver, job);
    if (rc != 0) {
        /* The reactor has finished: the transport may only be touched on its thread, so the job
         * is left behind (this happens only at exit, and the pool drains before that). */
        fprintf(stderr, "ack_server: reply lost: %s\n", zt_strerror(rc));
    }
    return zt_ok_none();
}

/* --mode defer: the Deferred's callback, on the reactor thread. */
static zt_result_t
on_done(zt_result_t result, void *arg)
{
    job_t *job = arg;
    if (zt_is_err(result)) {
        zt_failure_print(zt_result_failure(result), stderr);
        free(job->reply);
        job->reply = NULL;
    }
    zt_result_release(&result);
    deliver(job);
    return zt_ok_none();
}

static void
on_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg)
{
    (void)lr;
    conn_t *conn = arg;
    server_t *server = conn->server;
    server->lines++;
    job_t *job = malloc(sizeof *job + len);
    if (!job) {
        server->refused++;
        return;
    }
    *job = (job_t){.server = server, .conn = conn, .len = len};
    if (server->trace)
        job->read_ns = zt_time_now_ns();
    conn->refs++;
    conn->in_flight++;
    memcpy(job->line, line, len);
    if (server->mode == MODE_THREAD) {
        int rc = zt_call_in_thread(server->reactor, work_then_call_back, job);
        if (rc != 0) {
            server->refused++;
            conn->in_flight--;
            job_free(job);
        }
    } else {
        zt_deferred_t *d = zt_defer_to_thread(server->reactor, work, job);
        if (!d) {
            server->refused++;
            conn->in_flight--;
            job_free(job);
            return;
        }
        zt_deferred_add_both(d, on_done, job);
        zt_deferred_unref(&d);
    }
    conn_update(conn);
}

/* The transport's buffer passed its high-water mark (the connection's state is its producer). */
static void
on_pause(void *arg)
{
    conn_t *conn = arg;
    conn->write_paused = true;
    conn_update(conn);
}

/* ... and drained to its low-water mark. */
static void
on_resume(void *arg)
{
    conn_t *conn = arg;
    conn->write_paused = false;
    conn_update(conn);
}

static const zt_producer_vtable_t conn_producer = {
    .pause_producing = on_pause,
    .resume_producing = on_resume,
};

static void
on_made(zt_line_receiver_t *lr, void *arg)
{
    conn_t *conn = arg;
    zt_transport_t *t = zt_line_receiver_transport(lr);
    conn->transport = zt_transport_ref(t);
    conn->lr = lr;
    zt_transport_set_tcp_no_delay(t, true);
    zt_transport_register_producer(t, &conn_producer, conn, true);
}

static void
on_lost(zt_line_receiver_t *lr, const zt_failure_t *reason, void *arg)
{
    (void)lr;
    (void)reason;
    conn_t *conn = arg;
    conn->lr = NULL;
}

static const zt_line_receiver_vtable_t ack_protocol = {
    .connection_made = on_made,
    .line_received = on_line,
    .connection_lost = on_lost,
};

static zt_protocol_t *
build(zt_factory_t *factory, const zt_address_t *addr, void *arg)
{
    (void)factory;
    (void)addr;
    conn_t *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    *conn = (conn_t){.server = arg, .refs = 1};
    zt_line_receiver_t *lr = zt_line_receiver_new(&ack_protocol, conn, conn_unref);
    if (!lr) {
        free(conn);
        return NULL;
    }
    return zt_line_receiver_protocol(lr);
}

static const zt_factory_vtable_t ack_factory = {.build_protocol = build};

/* Before shutdown: stop listening and close every connection (replies still in flight are
 * dropped when they come back). */
static zt_result_t
before_shutdown(void *arg)
{
    server_t *server = arg;
    zt_deferred_t *d = zt_tcp_port_stop_listening(server->port);
    zt_deferred_unref(&d);
    zt_tcp_port_lose_connections(server->port, true);
    return zt_ok_none();
}

static int
usage(void)
{
    fprintf(stderr, "usage: ack_server [--host H] --port P --mode thread|defer [--threads N] "
                    "[--work-ms W] [--trace FILE]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *trace = NULL;
    long port = -1, threads = 4;
    server_t server = {.mode = MODE_DEFER, .work_ms = 0};
    bool have_mode = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0)
            port = strtol(v, NULL, 10);
        else if (strcmp(a, "--threads") == 0)
            threads = strtol(v, NULL, 10);
        else if (strcmp(a, "--work-ms") == 0)
            server.work_ms = strtol(v, NULL, 10);
        else if (strcmp(a, "--trace") == 0)
            trace = v;
        else if (strcmp(a, "--mode") == 0 &&
                 (strcmp(v, "thread") == 0 || strcmp(v, "defer") == 0)) {
            server.mode = strcmp(v, "thread") == 0 ? MODE_THREAD : MODE_DEFER;
            have_mode = true;
        } else
            return usage();
        i++;
    }
    if (port < 0 || port > 65535 || threads < 1 || server.work_ms < 0 || !have_mode)
        return usage();

    zt_reactor_t *reactor = zt_reactor_new();
    zt_factory_t *factory = zt_factory_new(&ack_factory, &server);
    if (!reactor || !factory) {
        fprintf(stderr, "ack_server: out of memory\n");
        return 1;
    }
    server.reactor = reactor;
    int rc = zt_listen_tcp(reactor, (uint16_t)port, factory, 128, host, &server.port);
    if (rc != 0) {
        fprintf(stderr, "ack_server: cannot listen on %s:%ld: %s\n", host, port, zt_strerror(rc));
        zt_factory_destroy(&factory);
        zt_reactor_destroy(&reactor);
        return 1;
    }
    if (trace && !(server.trace = fopen(trace, "w"))) {
        fprintf(stderr, "ack_server: cannot open %s\n", trace);
        zt_tcp_port_destroy(&server.port);
        zt_factory_destroy(&factory);
        zt_reactor_destroy(&reactor);
        return 1;
    }
    zt_reactor_suggest_thread_pool_size(reactor, (size_t)threads);
    zt_reactor_handle_signals(reactor);
    zt_reactor_add_system_event_trigger(reactor, ZT_PHASE_BEFORE, "shutdown", before_shutdown,
                                        &server, NULL);
    zt_address_t addr;
    zt_tcp_port_get_host(server.port, &addr);
    printf("listening on %s:%u\n", addr.host, (unsigned)addr.port);
    fflush(stdout);

    zt_reactor_run(reactor);

    fprintf(stderr,
            "ack_server: %llu lines, %llu replies, %llu dropped (client gone), %llu refused\n",
            (unsigned long long)server.lines, (unsigned long long)server.replies,
            (unsigned long long)server.dropped, (unsigned long long)server.refused);
    zt_tcp_port_destroy(&server.port);
    zt_factory_destroy(&factory);
    zt_reactor_destroy(&reactor);
    if (server.trace)
        fclose(server.trace); /* after the reactor: its shutdown delivers the last replies */
    return 0;
}
