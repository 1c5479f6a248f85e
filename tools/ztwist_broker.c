/*  tools/ztwist_broker.c - the standalone Majordomo broker
 *
 *      ztwist-broker --bind tcp://HOST:PORT [--bind ...] [--heartbeat-ms N] [--liveness N]
 *                    [--queue-limit N] [--queue-mb N] [--grace-ms N]
 *                    [--curve-cert CERT | --curve-secret KEY] [--allow PUBLIC_KEY ...]
 *                    [--allow-dir DIR]
 *      ztwist-broker --keygen CERT
 *
 *  --queue-mb bounds the bytes of all the requests the broker stores at once (default 256 MiB,
 * ZT_BROKER_QUEUE_BYTES); past it a new request gets "queue full".
 *
 *  Runs a zt_broker_t in a reactor until SIGINT or SIGTERM, then prints its counters. It prints
 * "ztwist-broker: listening on ENDPOINT" (with the real port when PORT is 0) on stdout once bound.
 * --keygen writes a new CURVE key pair as a czmq certificate (CERT, the public file to give to
 * clients and workers, and CERT_secret, mode 600), prints the public key and exits. --curve-cert
 * reads the broker's key pair from such a certificate (one made by czmq's zmakecert or zcert_save
 * too), which keeps the secret off the command line, where ps shows it to every user. --allow-dir
 * lets in the keys of the public certificates in DIR, read again when its files change (czmq's
 * zcertstore convention); --allow lists keys one by one. */
#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
usage(void)
{
    fprintf(stderr, "usage: ztwist-broker --bind tcp://HOST:PORT [--bind ...] [--heartbeat-ms N] "
                    "[--liveness N] [--queue-limit N] [--queue-mb N] [--grace-ms N] "
                    "[--curve-cert CERT | --curve-secret KEY] [--allow PUBLIC_KEY]... "
                    "[--allow-dir DIR] | --keygen CERT\n");
    return 2;
}

/* The command line, parsed. */
typedef struct {
    const char *binds[16];    /* Borrowed from argv: the endpoints to bind */
    int bind_count;           /* endpoints in binds */
    long heartbeat_ms;        /* --heartbeat-ms */
    int liveness;             /* --liveness */
    long queue_limit;         /* --queue-limit */
    long grace_ms;            /* --grace-ms */
    long queue_mb;            /* --queue-mb */
    const char *secret;       /* --curve-secret, or the certificate's secret; Borrowed */
    const char *secret_file;  /* --curve-cert; Borrowed */
    const char *allow_dir;    /* --allow-dir; Borrowed */
    char file_keys[2][41];    /* the certificate's public and secret keys */
    const char *allowed[256]; /* --allow keys; Borrowed */
    int allowed_count;        /* keys in allowed */
} s_options_t;

/* --keygen CERT: write a certificate pair and say its public key. Returns the exit status. */
static int
s_keygen(const char *cert)
{
    char pub[41], sec[41];
    int err = zt_curve_keypair(pub, sec);
    if (err == 0)
        err = zt_curve_save_keypair(cert, pub, sec);
    memset(sec, 0, sizeof sec);
    if (err != 0) {
        fprintf(stderr, "ztwist-broker: --keygen %s: %s\n", cert, zt_strerror(err));
        return 1;
    }
    printf("ztwist-broker: CURVE public key %s (certificate %s, secret %s_secret)\n", pub, cert,
           cert);
    return 0;
}

/* Parse argv into *o. Returns -1 to go on, or the exit status (usage, --keygen). */
static int
s_parse(int argc, char **argv, s_options_t *o)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc && o->bind_count < 16)
            o->binds[o->bind_count++] = argv[++i];
        else if (strcmp(argv[i], "--heartbeat-ms") == 0 && i + 1 < argc)
            o->heartbeat_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--liveness") == 0 && i + 1 < argc)
            o->liveness = atoi(argv[++i]);
        else if (strcmp(argv[i], "--queue-limit") == 0 && i + 1 < argc)
            o->queue_limit = atol(argv[++i]);
        else if (strcmp(argv[i], "--queue-mb") == 0 && i + 1 < argc)
            o->queue_mb = atol(argv[++i]);
        else if (strcmp(argv[i], "--grace-ms") == 0 && i + 1 < argc)
            o->grace_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--curve-secret") == 0 && i + 1 < argc)
            o->secret = argv[++i];
        else if (strcmp(argv[i], "--curve-cert") == 0 && i + 1 < argc)
            o->secret_file = argv[++i];
        else if (strcmp(argv[i], "--allow-dir") == 0 && i + 1 < argc)
            o->allow_dir = argv[++i];
        else if (strcmp(argv[i], "--allow") == 0 && i + 1 < argc && o->allowed_count < 256)
            o->allowed[o->allowed_count++] = argv[++i];
        else if (strcmp(argv[i], "--keygen") == 0 && i + 1 < argc)
            return s_keygen(argv[i + 1]);
        else
            return usage();
    }
    if (o->bind_count == 0 || o->heartbeat_ms < 1 || o->liveness < 1 || o->queue_limit < 1 ||
        o->queue_mb < 1 || (o->secret && o->secret_file))
        return usage();
    if (o->secret_file) {
        int err = zt_curve_load_keypair(o->secret_file, o->file_keys[0], o->file_keys[1]);
        if (err != 0) {
            fprintf(stderr, "ztwist-broker: --curve-cert %s: %s\n", o->secret_file,
                    err == ZT_EINVAL ? "not a certificate with a key pair (czmq's zcert format)"
                                     : zt_strerror(err));
            return 1;
        }
        o->secret = o->file_keys[1];
        printf("ztwist-broker: CURVE public key %s\n", o->file_keys[0]);
    }
    return -1;
}

/* Set the broker up as the options say and bind it; false (said on stderr) when it cannot be. */
static bool
s_configure(zt_broker_t *broker, const s_options_t *o)
{
    if (zt_broker_set_heartbeat(broker, o->heartbeat_ms / 1000.0, o->liveness) != 0 ||
        zt_broker_set_queue_limit(broker, (size_t)o->queue_limit) != 0 ||
        zt_broker_set_queue_bytes(broker, (size_t)o->queue_mb << 20) != 0 ||
        zt_broker_set_unknown_grace(broker, o->grace_ms / 1000.0) != 0)
        return false;
    if (o->secret && zt_broker_set_curve(broker, o->secret) != 0) {
        fprintf(stderr, "ztwist-broker: --curve-secret is not a Z85 key\n");
        return false;
    }
    for (int i = 0; i < o->allowed_count; i++)
        if (zt_broker_allow_key(broker, o->allowed[i]) != 0) {
            fprintf(stderr, "ztwist-broker: --allow %s is not a Z85 key\n", o->allowed[i]);
            return false;
        }
    if (o->allow_dir) {
        int err = zt_broker_allow_directory(broker, o->allow_dir);
        if (err != 0) {
            fprintf(stderr, "ztwist-broker: --allow-dir %s: %s\n", o->allow_dir, zt_strerror(err));
            return false;
        }
    }
    for (int i = 0; i < o->bind_count; i++) {
        int err = zt_broker_bind(broker, o->binds[i]);
        if (err != 0) {
            fprintf(stderr, "ztwist-broker: cannot bind %s: %s\n", o->binds[i], zt_strerror(err));
            return false;
        }
        printf("ztwist-broker: listening on %s\n", zt_broker_endpoint(broker));
    }
    return true;
}

static void
s_print_stats(const zt_broker_t *broker)
{
    zt_broker_stats_t st;
    zt_broker_stats(broker, &st);
    printf("ztwist-broker: %llu requests, %llu replies, %llu dropped, %llu expired workers, "
           "%llu lost requests, %llu queue full, %llu bytes full, %llu unknown service, "
           "%llu keys rejected, %llu failed handshakes\n",
           (unsigned long long)st.requests, (unsigned long long)st.replies,
           (unsigned long long)st.drops, (unsigned long long)st.expiries,
           (unsigned long long)st.workers_lost, (unsigned long long)st.queue_full,
           (unsigned long long)st.bytes_full, (unsigned long long)st.unknown_service,
           (unsigned long long)st.auth_rejected, (unsigned long long)st.handshake_failed);
}

int
main(int argc, char **argv)
{
    s_options_t o = {.heartbeat_ms = 2500,
                     .liveness = 3,
                     .queue_limit = ZT_BROKER_QUEUE_LIMIT,
                     .queue_mb = (long)(ZT_BROKER_QUEUE_BYTES >> 20)};
    int status = s_parse(argc, argv, &o);
    if (status >= 0)
        return status;
    zt_reactor_t *reactor = zt_reactor_new();
    zt_broker_t *broker = reactor ? zt_broker_new(reactor) : NULL;
    int rc = 1;
    if (broker && s_configure(broker, &o)) {
        fflush(stdout);
        zt_reactor_handle_signals(reactor);
        zt_reactor_run(reactor);
        s_print_stats(broker);
        rc = 0;
    }
    zt_broker_destroy(&broker);
    zt_reactor_destroy(&reactor);
    return rc;
}
