/*  tests/bridges/test_remote.c - zt_defer_to_remote against echo_worker processes on loopback:
 * a worker killed or frozen mid-request, a broker restarted, timeouts, an unreachable broker,
 * cancel, many requests in flight, CURVE keys of worker processes, and the argument checks. The
 * broker runs in this process's reactor; the workers are real processes (examples/echo_worker).  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bridges/mdp_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

extern char **environ;

#define HB_MS "100" /* the heartbeat interval of the tests, as echo_worker's --heartbeat-ms */
#define HB 0.1      /* the same, in seconds, for the broker */

typedef struct fixture {
    zt_reactor_t *reactor; /* Owned */
    zt_broker_t *broker;   /* Owned */
    zt_remote_t *client;   /* Owned */
    char endpoint[256];    /* where the broker listens */
    pid_t pids[8];         /* worker processes; 0 when none or reaped */
    int npids;             /* slots used */
    char netns[32];        /* a network namespace this test made, to delete; "" when none */
    char veth[16];         /* the host end of its veth pair, to delete; "" when none */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->reactor = zt_reactor_new();
    fx->broker = zt_broker_new(fx->reactor);
    zt_broker_set_heartbeat(fx->broker, HB, 3);
    if (zt_broker_bind(fx->broker, "tcp://127.0.0.1:0") != 0)
        return -1;
    snprintf(fx->endpoint, sizeof fx->endpoint, "%s", zt_broker_endpoint(fx->broker));
    fx->client = zt_remote_new(fx->reactor);
    zt_remote_connect(fx->client, fx->endpoint);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    for (int i = 0; i < fx->npids; i++)
        if (fx->pids[i] > 0) {
            kill(fx->pids[i], SIGKILL);
            waitpid(fx->pids[i], NULL, 0);
        }
    char cmd[128];
    if (fx->veth[0]) {
        snprintf(cmd, sizeof cmd, "ip link del %s 2>/dev/null", fx->veth);
        (void)!system(cmd);
    }
    if (fx->netns[0]) {
        snprintf(cmd, sizeof cmd, "ip netns del %s 2>/dev/null", fx->netns);
        (void)!system(cmd);
    }
    zt_remote_destroy(&fx->client);
    zt_broker_destroy(&fx->broker);
    zt_reactor_destroy(&fx->reactor);
    free(fx);
    return 0;
}

/* Start an echo_worker process; extra arguments end with NULL. Returns its slot. */
static int
spawn_worker(fixture_t *fx, const char *delay_ms, ...)
{
    char *argv[20] = {ZT_ECHO_WORKER,   "--broker", fx->endpoint, "--service",     "echo",
                      "--heartbeat-ms", HB_MS,      "--delay-ms", (char *)delay_ms};
    int argc = 9;
    va_list ap;
    va_start(ap, delay_ms);
    for (char *a = va_arg(ap, char *); a && argc < 19; a = va_arg(ap, char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    assert_int_equal(posix_spawn(&pid, ZT_ECHO_WORKER, &actions, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    fx->pids[fx->npids] = pid;
    return fx->npids++;
}

static void
kill_worker(fixture_t *fx, int slot, int sig)
{
    kill(fx->pids[slot], sig);
    if (sig == SIGKILL) {
        waitpid(fx->pids[slot], NULL, 0);
        fx->pids[slot] = 0;
    }
}

/* Iterate until the broker has handed every queued request to a worker. */
static bool
run_until_dispatched(fixture_t *fx, uint64_t requests)
{
    double deadline = zt_time_now() + 5;
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    while ((st.requests < requests || st.queued > 0) && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.01);
        zt_broker_stats(fx->broker, &st);
    }
    return st.requests >= requests && st.queued == 0;
}

/* Bind a new broker on the fixture's endpoint: the old listener closes in ZeroMQ's I/O thread, so
 * the port may still be taken for a moment; retry until a deadline. */
static void
rebind(fixture_t *fx)
{
    double deadline = zt_time_now() + 10;
    int rc;
    while ((rc = zt_broker_bind(fx->broker, fx->endpoint)) == ZT_EADDRINUSE &&
           zt_time_now() < deadline)
        zt_reactor_iterate(fx->reactor, 0.02);
    assert_int_equal(rc, 0);
}

/* ------------------------------------------------------------------------------------------- */

static void
killed_mid_request(fixture_t *fx, bool safe, outcome_t *o)
{
    int slow = spawn_worker(fx, "60000", NULL); /* holds its request for a minute */
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    zt_remote_options_t opts = {.safe_to_retry = safe, .timeout = 10};
    outcome_send(fx->reactor, fx->client, "echo", "precious", &opts, o);
    assert_true(run_until_dispatched(fx, 1));
    spawn_worker(fx, "0", NULL);
    assert_true(run_until_workers(fx->reactor, fx->broker, 2, 10));
    kill_worker(fx, slow, SIGKILL);
    assert_true(run_until(fx->reactor, &o->done, 10));
    assert_int_equal(o->fired, 1);
}

static void
test_remote_worker_killed_mid_request_safe_request_completes_elsewhere(void **state)
{
    fixture_t *fx = *state;
    outcome_t o = {0};
    killed_mid_request(fx, true, &o);
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "precious"));
    zt_remote_stats_t rs;
    zt_remote_stats(fx->client, &rs);
    assert_int_equal(rs.retries, 1);
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.workers_lost, 1);
    zt_frames_destroy(&o.reply);
}

static void
test_remote_worker_killed_mid_request_unsafe_request_fails_worker_lost(void **state)
{
    fixture_t *fx = *state;
    outcome_t o = {0};
    killed_mid_request(fx, false, &o);
    assert_int_equal(o.code, ZT_ECONNLOST);
    assert_non_null(strstr(o.message, "worker lost"));
    zt_remote_stats_t rs;
    zt_remote_stats(fx->client, &rs);
    assert_int_equal(rs.retries, 0);
    assert_int_equal(rs.failures, 1);
}

static void
test_remote_frozen_worker_expires_by_heartbeat(void **state)
{
    fixture_t *fx = *state;
    int w = spawn_worker(fx, "0", NULL);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    kill_worker(fx, w, SIGSTOP); /* alive, connected, silent */
    assert_true(run_until_workers(fx->reactor, fx->broker, 0, 10));
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.expiries, 1);
    kill_worker(fx, w, SIGCONT); /* it hears DISCONNECT or times out, reconnects, serves */
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    outcome_t o = {0};
    outcome_send(fx->reactor, fx->client, "echo", "back", NULL, &o);
    assert_true(run_until(fx->reactor, &o.done, 10));
    assert_int_equal(o.code, 0);
    zt_frames_destroy(&o.reply);
}

static void
test_remote_broker_restarted_worker_reconnects_and_serves(void **state)
{
    fixture_t *fx = *state;
    spawn_worker(fx, "0", NULL);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    outcome_t before = {0};
    outcome_send(fx->reactor, fx->client, "echo", "before", NULL, &before);
    assert_true(run_until(fx->reactor, &before.done, 10));
    assert_int_equal(before.code, 0);
    zt_broker_destroy(&fx->broker);
    fx->broker = zt_broker_new(fx->reactor);
    zt_broker_set_heartbeat(fx->broker, HB, 3);
    rebind(fx);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    outcome_t after = {0};
    outcome_send(fx->reactor, fx->client, "echo", "after", NULL, &after);
    assert_true(run_until(fx->reactor, &after.done, 10));
    assert_int_equal(after.code, 0);
    assert_true(zt_frames_equal_str(after.reply, 0, "after"));
    zt_frames_destroy(&before.reply);
    zt_frames_destroy(&after.reply);
}

/* Start the ztwist-broker tool bound to bind; its endpoint goes to endpoint. Returns its slot, or
 * -1 when it did not report an endpoint (it could not bind). */
static int
try_broker_tool(fixture_t *fx, const char *bind, const char *grace_ms, char *endpoint, size_t size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char *argv[] = {ZT_BROKER_TOOL, "--bind",     (char *)bind,     "--heartbeat-ms",
                    HB_MS,          "--grace-ms", (char *)grace_ms, NULL};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    assert_int_equal(posix_spawn(&pid, ZT_BROKER_TOOL, &actions, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    fx->pids[fx->npids] = pid;
    /* "ztwist-broker: listening on ENDPOINT\n", read with a deadline; EOF when it failed. */
    char line[512] = "";
    size_t got = 0;
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    while (!strchr(line, '\n') && got < sizeof line - 1 && poll(&pfd, 1, 10000) == 1) {
        ssize_t r = read(fds[0], line + got, sizeof line - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        line[got] = '\0';
    }
    close(fds[0]);
    const char *prefix = "ztwist-broker: listening on ";
    if (!strstr(line, prefix)) {
        waitpid(pid, NULL, 0);
        return -1;
    }
    const char *found = strstr(line, prefix) + strlen(prefix);
    size_t len = strcspn(found, "\n");
    assert_true(len < size);
    memcpy(endpoint, found, len);
    endpoint[len] = '\0';
    return fx->npids++;
}

static int
spawn_broker_tool(fixture_t *fx, char *endpoint, size_t size)
{
    int slot = try_broker_tool(fx, "tcp://127.0.0.1:0", "0", endpoint, size);
    assert_true(slot >= 0);
    return slot;
}

/* Iterate until the broker at the client's end answers mmi.service "200" for echo. */
static bool
run_until_echo_served(fixture_t *fx, zt_remote_t *client)
{
    double deadline = zt_time_now() + 10;
    while (zt_time_now() < deadline) {
        outcome_t probe = {0};
        zt_remote_options_t opts = {.timeout = 1};
        outcome_send(fx->reactor, client, "mmi.service", "echo", &opts, &probe);
        if (!run_until(fx->reactor, &probe.done, 10))
            return false;
        bool ok = probe.code == 0 && zt_frames_equal_str(probe.reply, 0, "200");
        zt_frames_destroy(&probe.reply);
        if (ok)
            return true;
    }
    return false;
}

static void
test_remote_broker_process_restarted_safe_request_resent_and_served(void **state)
{
    fixture_t *fx = *state;
    int broker = spawn_broker_tool(fx, fx->endpoint, sizeof fx->endpoint);
    spawn_worker(fx, "200", NULL);
    zt_remote_t *client = zt_remote_new(fx->reactor);
    zt_remote_connect(client, fx->endpoint);
    assert_true(run_until_echo_served(fx, client));
    outcome_t o = {0};
    zt_remote_options_t opts = {.timeout = 30, .safe_to_retry = true};
    outcome_send(fx->reactor, client, "echo", "survivor", &opts, &o);
    kill_worker(fx, broker, SIGKILL);
    /* A new broker on the same endpoint (the old port may need a moment to be free), which lets
     * requests for services it does not know yet wait for 10 s while the workers come back. */
    int again = -1;
    char endpoint[256];
    double deadline = zt_time_now() + 10;
    while (again < 0 && zt_time_now() < deadline) {
        again = try_broker_tool(fx, fx->endpoint, "10000", endpoint, sizeof endpoint);
        if (again < 0)
            zt_reactor_iterate(fx->reactor, 0.05);
    }
    assert_true(again >= 0);
    assert_true(run_until(fx->reactor, &o.done, 20));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "survivor"));
    zt_remote_stats_t rs;
    zt_remote_stats(client, &rs);
    assert_true(rs.retries >= 1);
    zt_frames_destroy(&o.reply);
    zt_remote_destroy(&client);
}

static void
test_remote_broker_process_killed_mid_request_fails_connection_lost(void **state)
{
    fixture_t *fx = *state;
    int broker = spawn_broker_tool(fx, fx->endpoint, sizeof fx->endpoint);
    spawn_worker(fx, "60000", NULL);
    zt_remote_t *client = zt_remote_new(fx->reactor);
    zt_remote_connect(client, fx->endpoint);
    assert_true(run_until_echo_served(fx, client)); /* mmi.service: the worker is there */
    outcome_t o = {0};
    zt_remote_options_t opts = {.timeout = 60};
    outcome_send(fx->reactor, client, "echo", "orphan", &opts, &o);
    /* The request is in flight (at the broker or with the worker, which sleeps a minute on it)
     * when the broker dies without a word. */
    zt_remote_stats_t rs;
    zt_remote_stats(client, &rs);
    assert_int_equal(rs.in_flight, 1);
    kill_worker(fx, broker, SIGKILL);
    assert_true(run_until(fx->reactor, &o.done, 10));
    assert_int_equal(o.code, ZT_ECONNLOST);
    assert_non_null(strstr(o.message, "connection to broker"));
    assert_int_equal(o.fired, 1);
    zt_remote_destroy(&client);
}

static void
test_remote_slow_worker_request_times_out_and_late_reply_dropped(void **state)
{
    fixture_t *fx = *state;
    spawn_worker(fx, "300", NULL);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    outcome_t o = {0};
    zt_remote_options_t opts = {.timeout = 0.05};
    outcome_send(fx->reactor, fx->client, "echo", "slow", &opts, &o);
    assert_true(run_until(fx->reactor, &o.done, 10));
    assert_int_equal(o.code, ZT_ETIMEDOUT);
    assert_non_null(strstr(o.message, "no reply"));
    zt_remote_stats_t rs = {0};
    double deadline = zt_time_now() + 10;
    while (rs.late == 0 && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.02);
        zt_remote_stats(fx->client, &rs);
    }
    assert_int_equal(rs.late, 1);
    assert_int_equal(rs.timeouts, 1);
    assert_int_equal(o.fired, 1);
}

static void
test_remote_unreachable_broker_fails_unreachable(void **state)
{
    fixture_t *fx = *state;
    /* Port 1 (tcpmux) has no listener on a loopback interface. */
    zt_remote_t *lost = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_connect(lost, "tcp://127.0.0.1:1"), 0);
    outcome_t o = {0};
    zt_remote_options_t opts = {.timeout = 0.2};
    outcome_send(fx->reactor, lost, "echo", "anyone?", &opts, &o);
    assert_true(run_until(fx->reactor, &o.done, 10));
    assert_int_equal(o.code, ZT_EUNREACHABLE);
    assert_non_null(strstr(o.message, "unreachable"));
    zt_remote_destroy(&lost);
}

static void
test_remote_cancel_fails_cancelled_once(void **state)
{
    fixture_t *fx = *state;
    spawn_worker(fx, "100", NULL);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    outcome_t o = {0};
    zt_frames_t *req = zt_frames_new();
    zt_frames_add_str(req, "never mind");
    zt_deferred_t *d = zt_defer_to_remote(fx->reactor, fx->client, "echo", &req, NULL);
    zt_deferred_add_both(d, outcome_record, &o);
    zt_deferred_cancel(d);
    zt_deferred_unref(&d);
    assert_true(o.done);
    assert_int_equal(o.code, ZT_ECANCELLED);
    zt_remote_stats_t rs = {0};
    double deadline = zt_time_now() + 10;
    while (rs.late == 0 && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.02);
        zt_remote_stats(fx->client, &rs);
    }
    assert_int_equal(rs.late, 1); /* the reply came and found nobody */
    assert_int_equal(rs.in_flight, 0);
    assert_int_equal(o.fired, 1);
}

static void
test_remote_many_in_flight_each_gets_its_own_reply(void **state)
{
    fixture_t *fx = *state;
    spawn_worker(fx, "0", "--threads", "2", NULL);
    spawn_worker(fx, "0", "--threads", "2", NULL);
    assert_true(run_until_workers(fx->reactor, fx->broker, 4, 10));
    enum { N = 200 };
    outcome_t *o = calloc(N, sizeof *o);
    for (int i = 0; i < N; i++) {
        char body[32];
        snprintf(body, sizeof body, "request %d", i);
        assert_int_equal(outcome_send(fx->reactor, fx->client, "echo", body, NULL, &o[i]), 0);
    }
    assert_true(run_until(fx->reactor, &o[N - 1].done, 10));
    for (int i = 0; i < N; i++) {
        assert_true(run_until(fx->reactor, &o[i].done, 10));
        char body[32];
        snprintf(body, sizeof body, "request %d", i);
        assert_int_equal(o[i].code, 0);
        assert_int_equal(o[i].fired, 1);
        assert_true(zt_frames_equal_str(o[i].reply, 0, body));
        zt_frames_destroy(&o[i].reply);
    }
    free(o);
}

static void
test_remote_destroy_fails_pending_requests_cancelled(void **state)
{
    fixture_t *fx = *state;
    outcome_t o = {0};
    spawn_worker(fx, "60000", NULL);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    outcome_send(fx->reactor, fx->client, "echo", "pending", NULL, &o);
    assert_false(o.done);
    zt_remote_destroy(&fx->client);
    assert_null(fx->client);
    assert_true(o.done);
    assert_int_equal(o.code, ZT_ECANCELLED);
    assert_non_null(strstr(o.message, "destroyed"));
}

/* Run a shell command; true when it succeeded. */
static bool
sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd) == 0;
}

/* A worker in another network namespace, joined to this one by a veth pair: cutting the link
 * (the host end down) must look like a lost worker to the broker. Needs root and `ip netns`. */
static void
test_remote_netns_cut_link_seen_as_worker_loss(void **state)
{
    fixture_t *fx = *state;
    if (geteuid() != 0 || !sh("ip netns list >/dev/null 2>&1")) {
        skip();
        return;
    }
    int id = (int)(getpid() % 250);
    snprintf(fx->netns, sizeof fx->netns, "zt-remote-%d", (int)getpid());
    snprintf(fx->veth, sizeof fx->veth, "ztr%da", id);
    if (!sh("ip netns add %s 2>/dev/null", fx->netns)) {
        fx->netns[0] = '\0';
        skip();
        return;
    }
    if (!sh("ip link add %s type veth peer name ztr%db 2>/dev/null", fx->veth, id)) {
        fx->veth[0] = '\0';
        skip();
        return;
    }
    assert_true(sh("ip link set ztr%db netns %s", id, fx->netns));
    assert_true(
        sh("ip addr add 10.213.%d.1/30 dev %s && ip link set %s up", id, fx->veth, fx->veth));
    assert_true(sh("ip netns exec %s sh -c 'ip addr add 10.213.%d.2/30 dev ztr%db && "
                   "ip link set ztr%db up && ip link set lo up'",
                   fx->netns, id, id, id));
    /* A broker listening on the host end. */
    zt_remote_destroy(&fx->client);
    zt_broker_destroy(&fx->broker);
    fx->broker = zt_broker_new(fx->reactor);
    zt_broker_set_heartbeat(fx->broker, HB, 3);
    char bind[64];
    snprintf(bind, sizeof bind, "tcp://10.213.%d.1:0", id);
    assert_int_equal(zt_broker_bind(fx->broker, bind), 0);
    snprintf(fx->endpoint, sizeof fx->endpoint, "%s", zt_broker_endpoint(fx->broker));
    fx->client = zt_remote_new(fx->reactor);
    zt_remote_connect(fx->client, fx->endpoint);
    /* The worker runs inside the namespace: `ip netns exec` execs it, so the pid is the worker's.
     */
    char *argv[] = {"/usr/sbin/ip", "netns",      "exec",      fx->netns, ZT_ECHO_WORKER,
                    "--broker",     fx->endpoint, "--service", "echo",    "--heartbeat-ms",
                    HB_MS,          "--delay-ms", "60000",     NULL};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    assert_int_equal(posix_spawn(&pid, "/usr/sbin/ip", &actions, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    fx->pids[fx->npids++] = pid;
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    outcome_t o = {0};
    zt_remote_options_t opts = {.timeout = 60};
    outcome_send(fx->reactor, fx->client, "echo", "across", &opts, &o);
    assert_true(run_until_dispatched(fx, 1));
    assert_true(sh("ip link set %s down", fx->veth)); /* the cable is cut */
    assert_true(run_until(fx->reactor, &o.done, 10));
    assert_int_equal(o.code, ZT_ECONNLOST);
    assert_non_null(strstr(o.message, "worker lost"));
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.expiries, 1);
    assert_int_equal(st.workers, 0);
}

static void
test_remote_invalid_arguments_refused(void **state)
{
    fixture_t *fx = *state;
    zt_frames_t *req = zt_frames_new();
    assert_null(zt_defer_to_remote(fx->reactor, fx->client, NULL, &req, NULL));
    assert_null(zt_defer_to_remote(fx->reactor, fx->client, "", &req, NULL));
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_null(zt_defer_to_remote(fx->reactor, fx->client, longname, &req, NULL));
    assert_non_null(req); /* refused: still the caller's */
    zt_remote_t *unconnected = zt_remote_new(fx->reactor);
    assert_null(zt_defer_to_remote(fx->reactor, unconnected, "echo", &req, NULL));
    assert_int_equal(zt_remote_set_curve(unconnected, "bad", "bad", "bad"), ZT_EINVAL);
    assert_int_equal(zt_remote_connect(unconnected, NULL), ZT_EINVAL);
    assert_int_equal(zt_remote_connect(unconnected, "nonsense://"), ZT_EINVAL);
    zt_remote_destroy(&unconnected);
    assert_int_equal(zt_remote_connect(fx->client, fx->endpoint), ZT_ESTATE);
    /* Frames: copies, bounds and edge cases. */
    assert_int_equal(zt_frames_add(req, NULL, 3), ZT_EINVAL);
    assert_int_equal(zt_frames_add(req, NULL, 0), 0);
    assert_int_equal(zt_frames_count(req), 1);
    assert_int_equal(zt_frames_size(req, 0), 0);
    assert_non_null(zt_frames_data(req, 0));
    assert_null(zt_frames_data(req, 1));
    assert_int_equal(zt_frames_size(req, 1), 0);
    assert_false(zt_frames_equal_str(req, 1, ""));
    zt_frames_destroy(&req);
    assert_null(req);
    zt_frames_destroy(&req);
    assert_null(zt_mdp_worker_new(fx->endpoint, "mmi.service", echo_handler, NULL));
    assert_null(zt_mdp_worker_new(fx->endpoint, "echo", NULL, NULL));
    assert_null(zt_mdp_worker_new(NULL, "echo", echo_handler, NULL));
    zt_mdp_worker_t *w = zt_mdp_worker_new(fx->endpoint, "echo", echo_handler, NULL);
    assert_int_equal(zt_mdp_worker_set_heartbeat(w, 0, 3), ZT_EINVAL);
    assert_int_equal(zt_mdp_worker_set_reconnect(w, 1, 0.5), ZT_EINVAL);
    assert_int_equal(zt_mdp_worker_set_curve(w, "a", "b", "c"), ZT_EINVAL);
    assert_int_equal(zt_mdp_worker_stop(w), 0); /* before run: run returns at once */
    assert_int_equal(zt_mdp_worker_run(w), 0);
    zt_mdp_worker_destroy(&w);
}

static void
test_remote_curve_worker_processes_listed_key_serves_other_refused(void **state)
{
    fixture_t *fx = *state;
    char server_pub[41], server_sec[41], worker_pub[41], worker_sec[41], rogue_pub[41],
        rogue_sec[41], client_pub[41], client_sec[41];
    zt_curve_keypair(server_pub, server_sec);
    zt_curve_keypair(worker_pub, worker_sec);
    zt_curve_keypair(rogue_pub, rogue_sec);
    zt_curve_keypair(client_pub, client_sec);
    zt_remote_destroy(&fx->client);
    zt_broker_destroy(&fx->broker);
    fx->broker = zt_broker_new(fx->reactor);
    zt_broker_set_heartbeat(fx->broker, HB, 3);
    zt_broker_set_curve(fx->broker, server_sec);
    zt_broker_allow_key(fx->broker, worker_pub);
    zt_broker_allow_key(fx->broker, client_pub);
    rebind(fx);
    spawn_worker(fx, "0", "--curve", server_pub, rogue_pub, rogue_sec, NULL);
    zt_broker_stats_t st = {0};
    double deadline = zt_time_now() + 10;
    while (st.auth_rejected == 0 && zt_time_now() < deadline) {
        zt_reactor_iterate(fx->reactor, 0.02);
        zt_broker_stats(fx->broker, &st);
    }
    assert_true(st.auth_rejected >= 1);
    assert_int_equal(st.workers, 0);
    /* The listed worker reads its keys from a certificate (echo_worker --curve-cert). */
    char key_dir[] = "/tmp/ztwist-worker-key-XXXXXX";
    assert_non_null(mkdtemp(key_dir));
    char cert[64], secret[80];
    snprintf(cert, sizeof cert, "%s/worker", key_dir);
    snprintf(secret, sizeof secret, "%s_secret", cert);
    assert_int_equal(zt_curve_save_keypair(cert, worker_pub, worker_sec), 0);
    spawn_worker(fx, "0", "--curve-cert", server_pub, cert, NULL);
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));
    unlink(secret);
    unlink(cert);
    rmdir(key_dir);
    fx->client = zt_remote_new(fx->reactor);
    zt_remote_set_curve(fx->client, server_pub, client_pub, client_sec);
    zt_remote_connect(fx->client, fx->endpoint);
    outcome_t o = {0};
    zt_remote_options_t opts = {.safe_to_retry = true}; /* a slow (sanitized) worker may expire */
    outcome_send(fx->reactor, fx->client, "echo", "sealed", &opts, &o);
    assert_true(run_until(fx->reactor, &o.done, 10));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "sealed"));
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.workers, 1); /* the rogue never got in */
    zt_frames_destroy(&o.reply);
}

/* Wait for a service with zt_remote_wait_for_service; its outcome lands in o. */
static void
wait_for(fixture_t *fx, zt_remote_t *client, const char *service, double timeout, outcome_t *o)
{
    (void)fx;
    zt_deferred_t *d = zt_remote_wait_for_service(client, service, timeout);
    assert_non_null(d);
    zt_deferred_add_both(d, outcome_record, o);
    zt_deferred_unref(&d);
}

static void
test_remote_wait_for_service_fires_once_a_worker_announces(void **state)
{
    fixture_t *fx = *state;
    outcome_t waited = {0};
    wait_for(fx, fx->client, "echo", 30, &waited);
    bool never = false;
    run_until(fx->reactor, &never, 0.3); /* several "404"s: still waiting */
    assert_false(waited.done);
    spawn_worker(fx, "0", NULL);
    assert_true(run_until(fx->reactor, &waited.done, 30));
    assert_int_equal(waited.code, 0);
    assert_int_equal(waited.fired, 1);
    /* The service is there: a request is served. */
    outcome_t o = {0};
    outcome_send(fx->reactor, fx->client, "echo", "there", NULL, &o);
    assert_true(run_until(fx->reactor, &o.done, 10));
    assert_int_equal(o.code, 0);
    assert_true(zt_frames_equal_str(o.reply, 0, "there"));
    zt_frames_destroy(&o.reply);
}

static void
test_remote_wait_for_service_without_worker_times_out(void **state)
{
    fixture_t *fx = *state;
    outcome_t waited = {0};
    wait_for(fx, fx->client, "nobody", 0.3, &waited);
    assert_true(run_until(fx->reactor, &waited.done, 10));
    assert_int_equal(waited.code, ZT_ETIMEDOUT);
    assert_int_equal(waited.fired, 1);
    assert_non_null(strstr(waited.message, "nobody"));
    zt_remote_stats_t rs;
    zt_remote_stats(fx->client, &rs);
    assert_true(rs.requests >= 2); /* it asked again after the first "404" */
    assert_int_equal(rs.in_flight, 0);
}

static void
test_remote_wait_for_service_cancel_and_destroy_fail_cancelled(void **state)
{
    fixture_t *fx = *state;
    /* Refused at once: no service, a bad timeout, a client that is not connected. */
    assert_null(zt_remote_wait_for_service(fx->client, NULL, 1));
    assert_null(zt_remote_wait_for_service(fx->client, "", 1));
    assert_null(zt_remote_wait_for_service(fx->client, "echo", 0));
    zt_remote_t *idle = zt_remote_new(fx->reactor);
    assert_null(zt_remote_wait_for_service(idle, "echo", 1));
    zt_remote_destroy(&idle);
    /* Cancelled: fails once, and its question in flight is withdrawn. */
    zt_deferred_t *d = zt_remote_wait_for_service(fx->client, "nobody", 30);
    assert_non_null(d);
    outcome_t cancelled = {0};
    zt_deferred_add_both(d, outcome_record, &cancelled);
    zt_deferred_cancel(d);
    zt_deferred_unref(&d);
    assert_true(cancelled.done);
    assert_int_equal(cancelled.code, ZT_ECANCELLED);
    assert_int_equal(cancelled.fired, 1);
    /* The client destroyed while a wait sleeps between questions, and while one asks. */
    outcome_t sleeping = {0}, asking = {0};
    wait_for(fx, fx->client, "nobody", 30, &sleeping);
    bool never = false;
    run_until(fx->reactor, &never, 0.3);
    wait_for(fx, fx->client, "other", 30, &asking);
    assert_false(sleeping.done);
    zt_remote_destroy(&fx->client);
    assert_true(sleeping.done && asking.done);
    assert_int_equal(sleeping.code, ZT_ECANCELLED);
    assert_int_equal(asking.code, ZT_ECANCELLED);
    assert_int_equal(sleeping.fired, 1);
    assert_int_equal(asking.fired, 1);
    run_until(fx->reactor, &never, 0.3); /* nothing of theirs runs after: the timers are gone */
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_remote_worker_killed_mid_request_safe_request_completes_elsewhere, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_worker_killed_mid_request_unsafe_request_fails_worker_lost, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_remote_frozen_worker_expires_by_heartbeat, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_broker_restarted_worker_reconnects_and_serves,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_broker_process_killed_mid_request_fails_connection_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_broker_process_restarted_safe_request_resent_and_served, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_slow_worker_request_times_out_and_late_reply_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_unreachable_broker_fails_unreachable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_cancel_fails_cancelled_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_many_in_flight_each_gets_its_own_reply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_destroy_fails_pending_requests_cancelled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_netns_cut_link_seen_as_worker_loss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_invalid_arguments_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_wait_for_service_fires_once_a_worker_announces,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_wait_for_service_without_worker_times_out,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_wait_for_service_cancel_and_destroy_fail_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_curve_worker_processes_listed_key_serves_other_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
