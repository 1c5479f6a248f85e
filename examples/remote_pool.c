/*  examples/remote_pool.c - a broker in the reactor, worker processes, and one of them killed
 *
 *      remote_pool [--workers N] [--requests M] [--inflight K] [--worker PATH] [--quiet]
 *
 *  Starts a Majordomo broker in its reactor on tcp://127.0.0.1 (a free port), spawns N
 * echo_worker processes (5 ms of work per request) that connect to it, and sends M requests marked
 * safe to retry, K at a time. Half-way through it kills one worker with SIGKILL: the broker notices
 * the silent worker (heartbeats every 100 ms, liveness 3), tells the client its request was lost,
 * and the client sends it again to another worker. Every request completes. --quiet leaves out what
 * varies between runs (port, timings, how many requests were in the dead worker's hands). */
#include <ztwist.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_WORKERS 16

typedef struct pool {
    zt_reactor_t *reactor;   /* Owned */
    zt_broker_t *broker;     /* Owned */
    zt_remote_t *client;     /* Owned */
    pid_t pids[MAX_WORKERS]; /* the worker processes; 0 once reaped */
    int workers;             /* how many */
    long requests;           /* to send */
    long inflight;           /* kept in flight */
    long sent;               /* sent so far */
    long ended;              /* ended so far */
    long replies;            /* good replies */
    long failures;           /* failures */
    bool killed;             /* whether a worker was killed */
    bool quiet;              /* deterministic output only */
    bool done;               /* all requests ended */
} pool_t;

static void send_next(pool_t *pool);

static zt_result_t
on_end(zt_result_t r, void *arg)
{
    pool_t *pool = arg;
    if (zt_is_err(r)) {
        if (pool->failures++ == 0 && !pool->quiet)
            zt_failure_print(zt_result_failure(r), stdout);
    } else {
        pool->replies++;
    }
    zt_result_release(&r);
    pool->ended++;
    if (!pool->killed && pool->ended >= pool->requests / 2) {
        pool->killed = true;
        kill(pool->pids[0], SIGKILL);
        waitpid(pool->pids[0], NULL, 0);
        pool->pids[0] = 0;
        printf("remote_pool: killed worker 1 of %d (SIGKILL) after %ld replies\n", pool->workers,
               pool->ended);
    }
    if (pool->sent < pool->requests)
        send_next(pool);
    else if (pool->ended == pool->requests)
        pool->done = true;
    return zt_ok_none();
}

static void
send_next(pool_t *pool)
{
    char body[64];
    snprintf(body, sizeof body, "request %ld", pool->sent++);
    zt_frames_t *req = zt_frames_new();
    zt_frames_add_str(req, body);
    zt_remote_options_t options = {.timeout = 20, .safe_to_retry = true, .max_retries = 5};
    zt_deferred_t *d = zt_defer_to_remote(pool->reactor, pool->client, "echo", &req, &options);
    if (!d) {
        zt_frames_destroy(&req);
        on_end(zt_err(zt_failure_from_code(ZT_ENOMEM, "zt_defer_to_remote")), pool);
        return;
    }
    zt_deferred_add_both(d, on_end, pool);
    zt_deferred_unref(&d);
}

static pid_t
spawn_worker(const char *path, const char *endpoint, bool quiet)
{
    char *argv[] = {(char *)path, "--broker", (char *)endpoint, "--service", "echo",
                    "--delay-ms", "5",        "--heartbeat-ms", "100",       NULL};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (quiet)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, path, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? pid : 0;
}

/* Run the reactor until *flag or the deadline. */
static bool
run_until(zt_reactor_t *reactor, const bool *flag, double seconds)
{
    double deadline = zt_time_now() + seconds;
    while (!*flag && zt_time_now() < deadline)
        zt_reactor_iterate(reactor, 0.05);
    return *flag;
}

int
main(int argc, char **argv)
{
    pool_t pool = {.workers = 3, .requests = 1000, .inflight = 50};
    char worker_path[4096] = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            pool.workers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
            pool.requests = atol(argv[++i]);
        else if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc)
            pool.inflight = atol(argv[++i]);
        else if (strcmp(argv[i], "--worker") == 0 && i + 1 < argc)
            snprintf(worker_path, sizeof worker_path, "%s", argv[++i]);
        else if (strcmp(argv[i], "--quiet") == 0)
            pool.quiet = true;
        else {
            fprintf(stderr, "usage: remote_pool [--workers N] [--requests M] [--inflight K] "
                            "[--worker PATH] [--quiet]\n");
            return 2;
        }
    }
    if (pool.workers < 2 || pool.workers > MAX_WORKERS || pool.requests < 2 || pool.inflight < 1)
        return 2;
    if (!worker_path[0]) {
        /* echo_worker is built next to this program. */
        snprintf(worker_path, sizeof worker_path, "%s", argv[0]);
        char *slash = strrchr(worker_path, '/');
        size_t at = slash ? (size_t)(slash - worker_path + 1) : 0;
        snprintf(worker_path + at, sizeof worker_path - at, "echo_worker");
    }
    if (pool.quiet)
        zt_log_set_level(ZT_LOG_NONE);
    else
        zt_log_set_level(ZT_LOG_ERROR);

    int rc = 1;
    pool.reactor = zt_reactor_new();
    pool.broker = zt_broker_new(pool.reactor);
    zt_broker_set_heartbeat(pool.broker, 0.1, 3);
    if (zt_broker_bind(pool.broker, "tcp://127.0.0.1:0") != 0)
        goto done;
    const char *endpoint = zt_broker_endpoint(pool.broker);
    printf("remote_pool: broker listening on tcp://127.0.0.1%s\n",
           pool.quiet ? "" : strrchr(endpoint, ':'));
    for (int i = 0; i < pool.workers; i++) {
        pool.pids[i] = spawn_worker(worker_path, endpoint, pool.quiet);
        if (!pool.pids[i]) {
            fprintf(stderr, "remote_pool: cannot start %s\n", worker_path);
            goto done;
        }
    }
    double deadline = zt_time_now() + 10;
    zt_broker_stats_t st = {0};
    while (st.workers < (uint64_t)pool.workers && zt_time_now() < deadline) {
        zt_reactor_iterate(pool.reactor, 0.05);
        zt_broker_stats(pool.broker, &st);
    }
    if (st.workers < (uint64_t)pool.workers) {
        fprintf(stderr, "remote_pool: the workers did not all connect\n");
        goto done;
    }
    printf("remote_pool: %d echo_worker processes ready\n", pool.workers);

    /* The client lives in the broker's reactor: linked to it directly, with no socket between. */
    pool.client = zt_remote_new(pool.reactor);
    if (!pool.client || zt_remote_connect_broker(pool.client, pool.broker) != 0)
        goto done;
    double t0 = zt_time_now();
    for (long i = 0; i < pool.inflight && pool.sent < pool.requests; i++)
        send_next(&pool);
    run_until(pool.reactor, &pool.done, 60);
    double elapsed = zt_time_now() - t0;
    /* The killed worker sent no DISCONNECT: the broker finds out when its heartbeats stop. */
    deadline = zt_time_now() + 10;
    zt_broker_stats(pool.broker, &st);
    while (st.workers >= (uint64_t)pool.workers && zt_time_now() < deadline) {
        zt_reactor_iterate(pool.reactor, 0.05);
        zt_broker_stats(pool.broker, &st);
    }
    if (st.workers < (uint64_t)pool.workers)
        printf("remote_pool: the broker declared the killed worker dead (heartbeats stopped)\n");
    zt_remote_stats_t cs;
    zt_remote_stats(pool.client, &cs);
    if (!pool.quiet)
        printf("remote_pool: %.0f requests/s; %llu request(s) lost with the killed worker and "
               "re-sent by the client, %llu re-queued by the broker\n",
               pool.requests / elapsed, (unsigned long long)cs.retries,
               (unsigned long long)st.retries);
    printf("remote_pool: %ld requests, %ld completed, %ld failed%s\n", pool.requests, pool.replies,
           pool.failures, pool.replies == pool.requests ? ": every request completed" : "");
    rc = pool.replies == pool.requests ? 0 : 1;
done:
    zt_remote_destroy(&pool.client);
    zt_broker_destroy(&pool.broker);
    for (int i = 0; i < pool.workers; i++)
        if (pool.pids[i] > 0) {
            kill(pool.pids[i], SIGTERM);
            waitpid(pool.pids[i], NULL, 0);
        }
    zt_reactor_destroy(&pool.reactor);
    return rc;
}
