/*  tests/bridges/test_curve.c - CURVE keys on disk are czmq certificates: made by czmq (zcert_save)
 * and read by ztwist, made by ztwist and read by czmq (zcert_load), refused when the secret is not
 * private or the keys are not a pair; and a broker's allow-list directory of public certificates,
 * read again when it changes. This suite links czmq itself, to play the other side.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bridges/mdp_harness.h"

#include <czmq.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define HB                                                                                         \
    0.25 /* the heartbeat interval of the broker and the worker, seconds (sanitizers are slow) */

typedef struct fixture {
    char dir[64];          /* a scratch directory of this test, removed at teardown */
    zt_reactor_t *reactor; /* Owned */
    zt_broker_t *broker;   /* Owned, or NULL */
    thread_worker_t tw;    /* a worker on a thread */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/ztwist-curve-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    fx->reactor = zt_reactor_new();
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    thread_worker_stop(&fx->tw);
    zt_broker_destroy(&fx->broker);
    zt_reactor_destroy(&fx->reactor);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* dir/name into path. */
static void
in_dir(const fixture_t *fx, const char *name, char path[128])
{
    snprintf(path, 128, "%s/%s", fx->dir, name);
}

/* A certificate made by czmq, as its zmakecert tool makes one: public and secret file. */
static void
czmq_make(const char *path, char public_key[41])
{
    zcert_t *cert = zcert_new();
    assert_non_null(cert);
    zcert_set_meta(cert, "name", "made by czmq");
    assert_int_equal(zcert_save(cert, path), 0);
    memcpy(public_key, zcert_public_txt(cert), 41);
    zcert_destroy(&cert);
}

static void
test_curve_czmq_certificate_loads_in_ztwist(void **state)
{
    fixture_t *fx = *state;
    char path[128], secret[160], pub[41], got_pub[41] = "", got_sec[41] = "", only_pub[41] = "";
    in_dir(fx, "czmq.cert", path);
    czmq_make(path, pub);
    assert_int_equal(zt_curve_load_keypair(path, got_pub, got_sec), 0);
    assert_string_equal(got_pub, pub);
    char derived[41];
    assert_int_equal(zmq_curve_public(derived, got_sec), 0);
    assert_string_equal(derived, pub); /* a pair */
    /* The secret file's own name works too, and the public file gives the public key alone. */
    snprintf(secret, sizeof secret, "%s_secret", path);
    assert_int_equal(zt_curve_load_keypair(secret, got_pub, got_sec), 0);
    assert_string_equal(got_pub, pub);
    assert_int_equal(zt_curve_load_public(path, only_pub), 0);
    assert_string_equal(only_pub, pub);
}

static void
test_curve_ztwist_certificate_loads_in_czmq(void **state)
{
    fixture_t *fx = *state;
    char path[128], secret[160], pub[41], sec[41];
    in_dir(fx, "ztwist.cert", path);
    assert_int_equal(zt_curve_keypair(pub, sec), 0);
    assert_int_equal(zt_curve_save_keypair(path, pub, sec), 0);
    snprintf(secret, sizeof secret, "%s_secret", path);
    struct stat st;
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    zcert_t *cert = zcert_load(path); /* reads the secret file: both keys */
    assert_non_null(cert);
    assert_string_equal(zcert_public_txt(cert), pub);
    assert_string_equal(zcert_secret_txt(cert), sec);
    zcert_destroy(&cert);
    assert_int_equal(unlink(secret), 0);
    cert = zcert_load(path); /* the public file alone */
    assert_non_null(cert);
    assert_string_equal(zcert_public_txt(cert), pub);
    zcert_destroy(&cert);
}

static void
test_curve_load_refuses_shared_secret_missing_file_and_non_pair(void **state)
{
    fixture_t *fx = *state;
    char path[128], secret[160], pub[41], sec[41], other_pub[41], other_sec[41];
    char got_pub[41], got_sec[41];
    in_dir(fx, "k", path);
    snprintf(secret, sizeof secret, "%s_secret", path);
    assert_int_equal(zt_curve_keypair(pub, sec), 0);
    assert_int_equal(zt_curve_keypair(other_pub, other_sec), 0);
    assert_int_equal(zt_curve_load_keypair(path, got_pub, got_sec), ZT_ENOTFOUND);
    assert_int_equal(zt_curve_load_public(path, got_pub), ZT_ENOTFOUND);
    /* Saving checks the keys: not Z85, not a pair, a "_secret" name. */
    assert_int_equal(zt_curve_save_keypair(path, "short", sec), ZT_EINVAL);
    assert_int_equal(zt_curve_save_keypair(path, other_pub, sec), ZT_EINVAL);
    assert_int_equal(zt_curve_save_keypair(secret, pub, sec), ZT_EINVAL);
    assert_int_equal(zt_curve_save_keypair(path, pub, sec), 0);
    assert_int_equal(chmod(secret, 0640), 0); /* the group may read it: refused */
    assert_int_equal(zt_curve_load_keypair(path, got_pub, got_sec), ZT_EACCES);
    assert_int_equal(chmod(secret, 0600), 0);
    assert_int_equal(zt_curve_load_keypair(path, got_pub, got_sec), 0);
    /* A certificate whose public key is not its secret's: made by czmq from two halves. */
    uint8_t a[32], b[32];
    zmq_z85_decode(a, other_pub);
    zmq_z85_decode(b, sec);
    zcert_t *mixed = zcert_new_from(a, b);
    assert_int_equal(zcert_save(mixed, path), 0);
    zcert_destroy(&mixed);
    assert_int_equal(chmod(secret, 0600), 0);
    assert_int_equal(zt_curve_load_keypair(path, got_pub, got_sec), ZT_EINVAL);
    /* A public certificate alone is no key pair; a file without keys is refused. (Not a file that
     * is not ZPL at all: czmq's zconfig_load leaks its file handle on a syntax error, 130 bytes,
     * which LeakSanitizer reports; docs/design.md notes it.) */
    assert_int_equal(unlink(secret), 0);
    assert_int_equal(zt_curve_load_keypair(path, got_pub, got_sec), ZT_ENOTFOUND);
    FILE *f = fopen(secret, "w");
    assert_non_null(f);
    fputs("curve\n    public-key = \"not a key\"\n", f);
    fclose(f);
    assert_int_equal(chmod(secret, 0600), 0);
    assert_int_equal(zt_curve_load_keypair(path, got_pub, got_sec), ZT_EINVAL);
}

/* Send one request from a CURVE client with the certificate `cert` to the broker; its code. */
static int
request_as(fixture_t *fx, const char *server_pub, const char *cert)
{
    char pub[41], sec[41];
    assert_int_equal(zt_curve_load_keypair(cert, pub, sec), 0);
    zt_remote_t *client = zt_remote_new(fx->reactor);
    assert_int_equal(zt_remote_set_curve(client, server_pub, pub, sec), 0);
    assert_int_equal(zt_remote_connect(client, zt_broker_endpoint(fx->broker)), 0);
    outcome_t o = {0};
    /* Safe to retry: a slow (sanitized) worker may miss a heartbeat and be replaced. */
    zt_remote_options_t opts = {.timeout = 10, .safe_to_retry = true};
    assert_int_equal(outcome_send(fx->reactor, client, "echo", "sealed", &opts, &o), 0);
    assert_true(run_until(fx->reactor, &o.done, 20));
    if (o.code == 0)
        assert_true(zt_frames_equal_str(o.reply, 0, "sealed"));
    zt_frames_destroy(&o.reply);
    zt_remote_destroy(&client);
    return o.code;
}

static void
test_curve_broker_allow_directory_of_czmq_certificates_read_again_on_change(void **state)
{
    fixture_t *fx = *state;
    char allowed[128], broker_cert[128], worker_cert[256], client_cert[128], copy[512], pub[41];
    char server_pub[41], server_sec[41], worker_pub[41], worker_sec[41];
    in_dir(fx, "allowed", allowed);
    assert_int_equal(mkdir(allowed, 0700), 0);
    in_dir(fx, "broker", broker_cert);
    in_dir(fx, "worker", worker_cert);
    in_dir(fx, "client", client_cert);
    czmq_make(broker_cert, pub);
    czmq_make(client_cert, pub);
    /* The worker's certificate is made by czmq straight into the directory (its secret file
     * there too: the broker reads only public certificates). */
    snprintf(worker_cert, sizeof worker_cert, "%s/worker", allowed);
    czmq_make(worker_cert, pub);
    assert_int_equal(zt_curve_load_keypair(broker_cert, server_pub, server_sec), 0);
    assert_int_equal(zt_curve_load_keypair(worker_cert, worker_pub, worker_sec), 0);

    fx->broker = zt_broker_new(fx->reactor);
    zt_broker_set_heartbeat(fx->broker, HB, 3);
    assert_int_equal(zt_broker_set_curve(fx->broker, server_sec), 0);
    assert_int_equal(zt_broker_allow_directory(fx->broker, NULL), ZT_EINVAL);
    assert_int_equal(zt_broker_allow_directory(fx->broker, broker_cert), ZT_ENOTFOUND);
    assert_int_equal(zt_broker_allow_directory(fx->broker, allowed), 0);
    assert_int_equal(zt_broker_bind(fx->broker, "tcp://127.0.0.1:0"), 0);
    thread_worker_t *tw = &fx->tw;
    tw->worker = zt_mdp_worker_new(zt_broker_endpoint(fx->broker), "echo", echo_handler, NULL);
    zt_mdp_worker_set_heartbeat(tw->worker, HB, 3);
    assert_int_equal(zt_mdp_worker_set_curve(tw->worker, server_pub, worker_pub, worker_sec), 0);
    assert_int_equal(pthread_create(&tw->thread, NULL, thread_worker_main, tw), 0);
    tw->started = true;
    assert_true(run_until_workers(fx->reactor, fx->broker, 1, 10));

    /* The client's certificate is not in the directory yet: refused. */
    assert_int_equal(request_as(fx, server_pub, client_cert), ZT_EACCES);
    zt_broker_stats_t st;
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.auth_rejected, 1);
    /* Its public file copied in: the next handshake finds it. */
    snprintf(copy, sizeof copy, "cp '%s' '%s/client.pub'", client_cert, allowed);
    assert_int_equal(system(copy), 0);
    assert_int_equal(request_as(fx, server_pub, client_cert), 0);
    /* Removed again: refused again. */
    snprintf(copy, sizeof copy, "%s/client.pub", allowed);
    assert_int_equal(unlink(copy), 0);
    assert_int_equal(request_as(fx, server_pub, client_cert), ZT_EACCES);
    zt_broker_stats(fx->broker, &st);
    assert_int_equal(st.auth_rejected, 2);
    assert_int_equal(st.replies, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_curve_czmq_certificate_loads_in_ztwist, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curve_ztwist_certificate_loads_in_czmq, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_curve_load_refuses_shared_secret_missing_file_and_non_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_curve_broker_allow_directory_of_czmq_certificates_read_again_on_change, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
