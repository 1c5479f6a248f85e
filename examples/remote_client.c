/*  examples/remote_client.c - send requests to a Majordomo service and report how it went
 *
 *      remote_client --broker tcp://HOST:PORT --service NAME [--requests N] [--inflight K]
 *                    [--size BYTES] [--timeout S] [--retry] [--wait] [--quiet]
 *                    [--curve-cert SERVER CERT]
 *
 *  --curve-cert uses CURVE with this client's key pair from a czmq certificate (CERT and
 * CERT_secret, as `ztwist-broker --keygen CERT`, czmq's zmakecert or zcert_save write it); SERVER
 * is the broker's public certificate file, or its Z85 public key.
 *  --wait first waits until the service has a worker (zt_remote_wait_for_service, which asks the
 * broker RFC 8's "mmi.service"), for up to 10 s, so that a script may start the broker, the
 * workers and this client at once.
 *  Keeps K requests in flight from the reactor (each one a Deferred from zt_defer_to_remote) until
 * N have ended, checks every reply is its request echoed, and prints the counts, then requests/s
 * and the p50/p99 latency (not with --quiet, which keeps the output deterministic for tests). */
#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct run {
    zt_reactor_t *reactor;       /* Borrowed */
    zt_remote_t *client;         /* Borrowed */
    const char *service;         /* the service */
    long requests;               /* requests to send */
    long inflight;               /* requests kept in flight */
    size_t size;                 /* request size in bytes */
    zt_remote_options_t options; /* per request */
    long sent;                   /* requests sent so far */
    long ended;                  /* requests ended */
    long replies;                /* good replies */
    long failures;               /* failures and wrong replies */
    char first_failure[256];     /* the first failure's message */
    double *latency;             /* seconds per request, by index; Owned */
} run_t;

typedef struct call {
    run_t *run;     /* Borrowed */
    long index;     /* which request */
    double started; /* when it was sent */
} call_t;

static void send_next(run_t *run);

static void
fill(char *buf, size_t size, long index)
{
    for (size_t i = 0; i < size; i++)
        buf[i] = (char)('a' + (index + (long)i) % 26);
}

static zt_result_t
on_end(zt_result_t r, void *arg)
{
    call_t *call = arg;
    run_t *run = call->run;
    run->latency[call->index] = zt_time_now() - call->started;
    if (zt_is_err(r)) {
        if (run->failures++ == 0)
            zt_failure_format(zt_result_failure(r), run->first_failure, sizeof run->first_failure);
    } else {
        const zt_frames_t *reply = zt_result_ptr(r);
        char expect[65536];
        fill(expect, run->size, call->index);
        if (zt_frames_count(reply) == 1 && zt_frames_size(reply, 0) == run->size &&
            memcmp(zt_frames_data(reply, 0), expect, run->size) == 0)
            run->replies++;
        else if (run->failures++ == 0)
            snprintf(run->first_failure, sizeof run->first_failure, "a reply did not match");
    }
    zt_result_release(&r);
    free(call);
    run->ended++;
    if (run->sent < run->requests)
        send_next(run);
    else if (run->ended == run->requests)
        zt_reactor_stop(run->reactor);
    return zt_ok_none();
}

static void
send_next(run_t *run)
{
    call_t *call = malloc(sizeof *call);
    call->run = run;
    call->index = run->sent++;
    char body[65536];
    fill(body, run->size, call->index);
    zt_frames_t *req = zt_frames_new();
    zt_frames_add(req, body, run->size);
    call->started = zt_time_now();
    zt_deferred_t *d =
        zt_defer_to_remote(run->reactor, run->client, run->service, &req, &run->options);
    if (!d) {
        zt_frames_destroy(&req);
        on_end(zt_err(zt_failure_from_code(ZT_ENOMEM, "zt_defer_to_remote refused")), call);
        return;
    }
    zt_deferred_add_both(d, on_end, call);
    zt_deferred_unref(&d);
}

static void
start(void *arg)
{
    run_t *run = arg;
    for (long i = 0; i < run->inflight && run->sent < run->requests; i++)
        send_next(run);
}

static zt_result_t
on_service(zt_result_t r, void *arg)
{
    int *status = arg; /* 1 when the service has a worker, -1 when not within the time */
    *status = zt_is_err(r) ? -1 : 1;
    zt_result_release(&r);
    return zt_ok_none();
}

/* Wait until the service has a worker; false after 10 s. */
static bool
wait_for_service(run_t *run)
{
    int status = 0;
    zt_deferred_t *d = zt_remote_wait_for_service(run->client, run->service, 10);
    if (!d)
        return false;
    zt_deferred_add_both(d, on_service, &status);
    zt_deferred_unref(&d);
    while (status == 0)
        zt_reactor_iterate(run->reactor, 0.05);
    return status == 1;
}

/* Use CURVE: the broker's key from its public certificate (or SERVER itself, a Z85 key), ours
 * from our certificate. */
static int
load_curve(zt_remote_t *client, const char *server, const char *cert)
{
    char server_key[41], pub[41], sec[41];
    int err = access(server, F_OK) == 0 ? zt_curve_load_public(server, server_key) : 0;
    if (err == 0)
        err = zt_curve_load_keypair(cert, pub, sec);
    if (err == 0)
        err =
            zt_remote_set_curve(client, access(server, F_OK) == 0 ? server_key : server, pub, sec);
    memset(sec, 0, sizeof sec);
    if (err != 0)
        fprintf(stderr, "remote_client: --curve-cert %s %s: %s\n", server, cert, zt_strerror(err));
    return err;
}

static int
compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int
usage(void)
{
    fprintf(stderr, "usage: remote_client --broker tcp://HOST:PORT --service NAME [--requests N] "
                    "[--inflight K] [--size BYTES] [--timeout S] [--retry] [--wait] [--quiet] "
                    "[--curve-cert SERVER CERT]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    const char *broker = NULL;
    bool quiet = false;
    bool wait = false;
    const char *curve_server = NULL; /* --curve-cert: the broker's certificate or key */
    const char *curve_cert = NULL;   /* and ours */
    run_t run = {.requests = 1000, .inflight = 10, .size = 64};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--broker") == 0 && i + 1 < argc)
            broker = argv[++i];
        else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc)
            run.service = argv[++i];
        else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
            run.requests = atol(argv[++i]);
        else if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc)
            run.inflight = atol(argv[++i]);
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            run.size = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            run.options.timeout = atof(argv[++i]);
        else if (strcmp(argv[i], "--retry") == 0)
            run.options.safe_to_retry = true;
        else if (strcmp(argv[i], "--quiet") == 0)
            quiet = true;
        else if (strcmp(argv[i], "--wait") == 0)
            wait = true;
        else if (strcmp(argv[i], "--curve-cert") == 0 && i + 2 < argc) {
            curve_server = argv[++i];
            curve_cert = argv[++i];
        } else
            return usage();
    }
    if (!broker || !run.service || run.requests < 1 || run.inflight < 1 || run.size > 65536)
        return usage();
    if (quiet)
        zt_log_set_level(ZT_LOG_NONE);
    run.latency = calloc((size_t)run.requests, sizeof *run.latency);
    run.reactor = zt_reactor_new();
    run.client = zt_remote_new(run.reactor);
    if (run.client && curve_cert && load_curve(run.client, curve_server, curve_cert) != 0)
        return 1;
    if (!run.client || zt_remote_connect(run.client, broker) != 0) {
        fprintf(stderr, "remote_client: cannot connect to %s\n", broker);
        return 1;
    }
    if (wait && !wait_for_service(&run)) {
        fprintf(stderr, "remote_client: service '%s' has no worker at %s\n", run.service, broker);
        return 1;
    }
    zt_reactor_call_when_running(run.reactor, start, &run, NULL);
    double t0 = zt_time_now();
    zt_reactor_run(run.reactor);
    double elapsed = zt_time_now() - t0;
    printf("remote_client: %ld requests, %ld replies, %ld failures\n", run.requests, run.replies,
           run.failures);
    if (run.failures)
        printf("remote_client: first failure: %s\n", run.first_failure);
    if (!quiet) {
        qsort(run.latency, (size_t)run.requests, sizeof *run.latency, compare);
        printf("remote_client: %.0f requests/s, p50 %.1f us, p99 %.1f us (%ld in flight, %zu "
               "bytes)\n",
               run.requests / elapsed, run.latency[run.requests / 2] * 1e6,
               run.latency[(run.requests * 99) / 100] * 1e6, run.inflight, run.size);
    }
    zt_remote_destroy(&run.client);
    zt_reactor_destroy(&run.reactor);
    free(run.latency);
    return run.failures ? 1 : 0;
}
