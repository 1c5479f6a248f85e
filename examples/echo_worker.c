/*  examples/echo_worker.c - a Majordomo worker process that replies with the request it got
 *
 *      echo_worker --broker tcp://HOST:PORT --service NAME [--delay-ms N] [--threads N]
 *                  [--prefetch N] [--heartbeat-ms N] [--curve-cert SERVER CERT]
 *                  [--curve SERVER_PUBLIC PUBLIC SECRET]
 *
 *  --curve-cert reads this worker's key pair from a czmq certificate (CERT and CERT_secret, as
 * `ztwist-broker --keygen CERT`, czmq's zmakecert or zcert_save write it; CERT_secret is refused
 * when others may read it); SERVER is the broker's public key or its public certificate file.
 * --curve takes the secret on the command line, where ps shows it to every user of the machine.
 *
 *  Each of --threads worker connections runs on its own thread, so N requests are served at once.
 * --prefetch N lets the broker send each connection up to N requests before its first reply
 * (ztwist's extension to RFC 7, zt_mdp_worker_set_prefetch): served one after the other, but
 * carried N to a TCP segment.
 * --delay-ms makes each request take that long (simulated work). It serves until SIGINT or SIGTERM
 * and then tells the broker DISCONNECT. */
#include <ztwist.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct options {
    const char *broker;    /* the broker's endpoint */
    const char *service;   /* the service to serve */
    long delay_ms;         /* simulated work per request */
    int threads;           /* worker connections */
    int prefetch;          /* requests each connection takes at once */
    long heartbeat_ms;     /* heartbeat interval */
    const char *curve[3];  /* server public, public, secret; NULL when plain */
    const char *key_file;  /* --curve-cert: the certificate holding public and secret */
    char file_keys[3][41]; /* the server's key, and what key_file holds */
} options_t;

static zt_frames_t *
echo(const zt_frames_t *request, void *arg)
{
    const options_t *opt = arg;
    if (opt->delay_ms > 0) {
        struct timespec ts = {opt->delay_ms / 1000, (opt->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* the work this worker pretends to do */
    }
    return zt_frames_dup(request);
}

static void *
serve(void *arg)
{
    zt_mdp_worker_run(arg);
    return NULL;
}

static int
usage(void)
{
    fprintf(stderr, "usage: echo_worker --broker tcp://HOST:PORT --service NAME [--delay-ms N] "
                    "[--threads N] [--prefetch N] [--heartbeat-ms N] [--curve-cert SERVER CERT | "
                    "--curve SERVER_PUBLIC PUBLIC SECRET]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    options_t opt = {.threads = 1, .prefetch = 1, .heartbeat_ms = 2500};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--broker") == 0 && i + 1 < argc)
            opt.broker = argv[++i];
        else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc)
            opt.service = argv[++i];
        else if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc)
            opt.delay_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            opt.threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--prefetch") == 0 && i + 1 < argc)
            opt.prefetch = atoi(argv[++i]);
        else if (strcmp(argv[i], "--heartbeat-ms") == 0 && i + 1 < argc)
            opt.heartbeat_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--curve") == 0 && i + 3 < argc) {
            for (int k = 0; k < 3; k++)
                opt.curve[k] = argv[++i];
        } else if (strcmp(argv[i], "--curve-cert") == 0 && i + 2 < argc) {
            opt.curve[0] = argv[++i];
            opt.key_file = argv[++i];
        } else
            return usage();
    }
    if (opt.key_file) {
        /* SERVER: the broker's public certificate when such a file exists, else its Z85 key. */
        if (access(opt.curve[0], F_OK) == 0) {
            int err = zt_curve_load_public(opt.curve[0], opt.file_keys[0]);
            if (err != 0) {
                fprintf(stderr, "echo_worker: --curve-cert %s: %s\n", opt.curve[0],
                        zt_strerror(err));
                return 1;
            }
            opt.curve[0] = opt.file_keys[0];
        }
        int err = zt_curve_load_keypair(opt.key_file, opt.file_keys[1], opt.file_keys[2]);
        if (err != 0) {
            fprintf(stderr, "echo_worker: --curve-cert %s: %s\n", opt.key_file,
                    err == ZT_EINVAL ? "not a certificate with a key pair (czmq's zcert format)"
                                     : zt_strerror(err));
            return 1;
        }
        opt.curve[1] = opt.file_keys[1];
        opt.curve[2] = opt.file_keys[2];
    }
    if (!opt.broker || !opt.service || opt.threads < 1 || opt.threads > 256 || opt.heartbeat_ms < 1)
        return usage();

    /* Signals are taken synchronously by this thread: block them before any thread starts. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    zt_mdp_worker_t **workers = calloc((size_t)opt.threads, sizeof *workers);
    pthread_t *threads = calloc((size_t)opt.threads, sizeof *threads);
    int started = 0;
    for (int i = 0; i < opt.threads; i++) {
        workers[i] = zt_mdp_worker_new(opt.broker, opt.service, echo, &opt);
        if (!workers[i]) {
            fprintf(stderr, "echo_worker: bad --broker or --service\n");
            break;
        }
        zt_mdp_worker_set_heartbeat(workers[i], opt.heartbeat_ms / 1000.0, 3);
        if (zt_mdp_worker_set_prefetch(workers[i], (unsigned)opt.prefetch) != 0) {
            fprintf(stderr, "echo_worker: --prefetch must be 1 to 1000\n");
            break;
        }
        if (opt.curve[0] &&
            zt_mdp_worker_set_curve(workers[i], opt.curve[0], opt.curve[1], opt.curve[2]) != 0) {
            fprintf(stderr, "echo_worker: bad --curve keys\n");
            break;
        }
        if (pthread_create(&threads[i], NULL, serve, workers[i]) != 0)
            break;
        started++;
    }
    int rc = started == opt.threads ? 0 : 1;
    if (rc == 0) {
        fprintf(stderr, "echo_worker: serving '%s' at %s with %d connection(s)\n", opt.service,
                opt.broker, opt.threads);
        int sig;
        sigwait(&signals, &sig);
    }
    uint64_t served = 0;
    for (int i = 0; i < started; i++)
        zt_mdp_worker_stop(workers[i]);
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        served += zt_mdp_worker_served(workers[i]);
    }
    for (int i = 0; i < opt.threads; i++)
        zt_mdp_worker_destroy(&workers[i]);
    fprintf(stderr, "echo_worker: stopped after %llu replies\n", (unsigned long long)served);
    free(workers);
    free(threads);
    return rc;
}
