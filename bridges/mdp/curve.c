/*  bridges/mdp/curve.c - CURVE key pairs: make one, and read or write it as czmq certificates
 *
 *  A certificate is what czmq's zcert_save and its zmakecert tool write: a public file (NAME) and
 * a secret file (NAME_secret), in ZPL text, with the Z85 keys under "curve". czmq reads and writes
 * them here (zcert), so a certificate made by any czmq program works with ztwist and the other way
 * round; docs/design.md says why czmq rather than a reader of ztwist's own. zcert starts no czmq
 * thread or context (zsys), and installs no signal handler.
 *
 *  Stateless: every function is safe from any thread.  */
#include <ztwist/curve.h>
#include <ztwist/log.h>

#include "base/base.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define S_SUFFIX "_secret" /* the secret file's name: the certificate's, then this */

int
zt_curve_keypair(char public_key[41], char secret_key[41])
{
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
        ZT_LOG_ERROR("zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
        return ZT_ESYS;
    }
    return 0;
}

/* Whether the 40 characters at z85 are a Z85 key (decoded into key). */
static bool
s_decode(const char *z85, uint8_t key[32])
{
    return z85 && strlen(z85) == 40 && zmq_z85_decode(key, z85) != NULL;
}

/* The certificate's two names: base (the public file) and secret (base + "_secret"), from either
 * of them. ZT_EINVAL when a name is too long. */
static int
s_names(const char *path, char base[4096], char secret[4096])
{
    size_t len = strlen(path);
    size_t suffix = strlen(S_SUFFIX);
    if (len == 0 || len + suffix >= 4096)
        return ZT_EINVAL;
    memcpy(base, path, len + 1);
    if (len > suffix && strcmp(path + len - suffix, S_SUFFIX) == 0)
        base[len - suffix] = '\0';
    snprintf(secret, 4096, "%s%s", base, S_SUFFIX);
    return 0;
}

/* A file's state for a key: ZT_ENOTFOUND (none), ZT_EACCES (it cannot be read, or, when private,
 * group or others may read or write it; logged), or 0. */
static int
s_check_file(const char *path, bool private)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? ZT_ENOTFOUND : ZT_EACCES;
    if (!S_ISREG(st.st_mode))
        return ZT_EINVAL;
    if (private && (st.st_mode & (S_IRWXG | S_IRWXO))) {
        ZT_LOG_ERROR("CURVE secret certificate %s has mode %03o: others may read it; chmod 600 it",
                     path, (unsigned)(st.st_mode & 0777));
        return ZT_EACCES;
    }
    return 0;
}

int
zt_curve_load_keypair(const char *path, char public_key[41], char secret_key[41])
{
    char base[4096], secret[4096];
    if (!path || !public_key || !secret_key || s_names(path, base, secret) != 0)
        return ZT_EINVAL;
    int rc = s_check_file(secret, true);
    if (rc != 0)
        return rc;
    /* zcert_load reads NAME_secret when it is there, and NAME otherwise. */
    zcert_t *cert = zcert_load(base);
    if (!cert)
        return access(secret, R_OK) == 0 ? ZT_EINVAL : ZT_EACCES;
    uint8_t key[32];
    char derived[41];
    const char *pub = zcert_public_txt(cert);
    const char *sec = zcert_secret_txt(cert);
    rc = ZT_EINVAL;
    /* A secret file holds both keys; a pair only when the public key is the secret key's. */
    if (s_decode(pub, key) && s_decode(sec, key) && zmq_curve_public(derived, sec) == 0 &&
        strcmp(derived, pub) == 0) {
        memcpy(public_key, pub, 41);
        memcpy(secret_key, sec, 41);
        rc = 0;
    }
    memset(key, 0, sizeof key);
    zcert_destroy(&cert);
    return rc;
}

int
zt_curve_load_public(const char *path, char public_key[41])
{
    char base[4096], secret[4096];
    if (!path || !public_key || s_names(path, base, secret) != 0)
        return ZT_EINVAL;
    /* Only the public file: a peer's certificate comes without its secret. */
    int rc = s_check_file(path, false);
    if (rc != 0)
        return rc;
    zconfig_t *root = zconfig_load(path);
    if (!root)
        return access(path, R_OK) == 0 ? ZT_EINVAL : ZT_EACCES;
    const char *pub = zconfig_get(root, "/curve/public-key", NULL);
    uint8_t key[32];
    rc = ZT_EINVAL;
    if (s_decode(pub, key)) {
        memcpy(public_key, pub, 41);
        rc = 0;
    }
    zconfig_destroy(&root);
    return rc;
}

int
zt_curve_save_keypair(const char *path, const char *public_key, const char *secret_key)
{
    char base[4096], secret[4096];
    uint8_t pub[32], sec[32];
    char derived[41];
    if (!path || s_names(path, base, secret) != 0 || strcmp(base, path) != 0 ||
        !s_decode(public_key, pub) || !s_decode(secret_key, sec) ||
        zmq_curve_public(derived, secret_key) != 0 || strcmp(derived, public_key) != 0)
        return ZT_EINVAL;
    zcert_t *cert = zcert_new_from(pub, sec);
    memset(sec, 0, sizeof sec);
    if (!cert)
        return ZT_ENOMEM;
    zcert_set_meta(cert, "created-by", "ztwist %s", zt_version());
    /* The secret file is made private before the secret is written into it. */
    int rc = 0;
    FILE *f = fopen(secret, "w");
    if (!f || fchmod(fileno(f), 0600) != 0)
        rc = errno == EACCES ? ZT_EACCES : errno == ENOENT ? ZT_ENOTFOUND : ZT_EIO;
    if (f)
        fclose(f);
    if (rc == 0 && (zcert_save_secret(cert, secret) != 0 || zcert_save_public(cert, base) != 0))
        rc = ZT_EIO;
    if (rc != 0)
        ZT_LOG_ERROR("cannot write the CURVE certificate %s: %s", base, zt_strerror(rc));
    zcert_destroy(&cert);
    return rc;
}
