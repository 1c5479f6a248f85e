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

int
main(int argc, char **argv)
{
    const char *binds[16];
    int bind_count = 0;
    long heartbeat_ms = 2500;
    int liveness = 3;
    long queue_limit = ZT_BROKER_QUEUE_LIMIT;
    long grace_ms = 0;
    long queue_mb = (long)(ZT_BROKER_QUEUE_BYTES >> 20);
    const char *secret = NULL;
    const char *secret_file = NULL;
    const char *allow_dir = NULL;
    char file_keys[2][41];
    const char *allowed[256];
    int allowed_count = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc && bind_count < 16)
            binds[bind_count++] = argv[++i];
        else if (strcmp(argv[i], "--heartbeat-ms") == 0 && i + 1 < argc)
            heartbeat_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--liveness") == 0 && i + 1 < argc)
            liveness = atoi(argv[++i]);
        else if (strcmp(argv[i], "--queue-limit") == 0 && i + 1 < argc)
            queue_limit = atol(argv[++i]);
        else if (strcmp(argv[i], "--queue-mb") == 0 && i + 1 < argc)
            queue_mb = atol(argv[++i]);
        else if (strcmp(argv[i], "--grace-ms") == 0 && i + 1 < argc)
            grace_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--curve-secret") == 0 && i + 1 < argc)
            secret = argv[++i];
        else if (strcmp(argv[i], "--curve-cert") == 0 && i + 1 < argc)
            secret_file = argv[++i];
        else if (strcmp(argv[i], "--allow-dir") == 0 && i + 1 < argc)
            allow_dir = argv[++i];
        else if (strcmp(argv[i], "--allow") == 0 && i + 1 < argc && allowed_count < 256)
            allowed[allowed_count++] = argv[++i];
        else if (strcmp(argv[i], "--keygen") == 0 && i + 1 < argc) {
            char pub[41], sec[41];
            int err = zt_curve_keypair(pub, sec);
            if (err == 0)
                err = zt_curve_save_keypair(argv[i + 1], pub, sec);
            memset(sec, 0, sizeof sec);
            if (err != 0) {
                fprintf(stderr, "ztwist-broker: --keygen %s: %s\n", argv[i + 1], zt_strerror(err));
                return 1;
            }
            printf("ztwist-broker: CURVE public key %s (certificate %s, secret %s_secret)\n", pub,
                   argv[i + 1], argv[i + 1]);
            return 0;
        } else
            return usage();
    }
    if (bind_count == 0 || heartbeat_ms < 1 || liveness < 1 || queue_limit < 1 || queue_mb < 1 ||
        (secret && secret_file))
        return usage();
    if (secret_file) {
        int err = zt_curve_load_keypair(secret_file, file_keys[0], file_keys[1]);
        if (err != 0) {
            fprintf(stderr, "ztwist-broker: --curve-cert %s: %s\n", secret_file,
                    err == ZT_EINVAL ? "not a certificate with a key pair (czmq's zcert format)"
                                     : zt_strerror(err));
            return 1;
        }
        secret = file_keys[1];
        printf("ztwist-broker: CURVE public key %s\n", file_keys[0]);
    }

    zt_reactor_t *reactor = zt_reactor_new();
    zt_broker_t *broker = reactor ? zt_broker_new(reactor) : NULL;
    int rc = 1;
    if (!broker)
        goto done;
    if (zt_broker_set_heartbeat(broker, heartbeat_ms / 1000.0, liveness) != 0 ||
        zt_broker_set_queue_limit(broker, (size_t)queue_limit) != 0 ||
        zt_broker_set_queue_bytes(broker, (size_t)queue_mb << 20) != 0 ||
        zt_broker_set_unknown_grace(broker, grace_ms / 1000.0) != 0)
        goto done;
    if (secret && zt_broker_set_curve(broker, secret) != 0) {
        fprintf(stderr, "ztwist-broker: --curve-secret is not a Z85 key\n");
        goto done;
    }
    for (int i = 0; i < allowed_count; i++)
        if (zt_broker_allow_key(broker, allowed[i]) != 0) {
            fprintf(stderr, "ztwist-broker: --allow %s is not a Z85 key\n", allowed[i]);
            goto done;
        }
    if (allow_dir) {
        int err = zt_broker_allow_directory(broker, allow_dir);
        if (err != 0) {
            fprintf(stderr, "ztwist-broker: --allow-dir %s: %s\n", allow_dir, zt_strerror(err));
            goto done;
        }
    }
    for (int i = 0; i < bind_count; i++) {
        int err = zt_broker_bind(broker, binds[i]);
        if (err != 0) {
            fprintf(stderr, "ztwist-broker: cannot bind %s: %s\n", binds[i], zt_strerror(err));
            goto done;
        }
        printf("ztwist-broker: listening on %s\n", zt_broker_endpoint(broker));
    }
    fflush(stdout);
    zt_reactor_handle_signals(reactor);
    zt_reactor_run(reactor);
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
    rc = 0;
done:
    zt_broker_destroy(&broker);
    zt_reactor_destroy(&reactor);
    return rc;
}
