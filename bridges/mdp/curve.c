/*  bridges/mdp/curve.c - CURVE key pairs: make one, read one from a file
 *
 *  Stateless: every function is safe from any thread.  */
#include <ztwist/curve.h>
#include <ztwist/log.h>

#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

int
zt_curve_keypair(char public_key[41], char secret_key[41])
{
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
        ZT_LOG_ERROR("zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
        return ZT_ESYS;
    }
    return 0;
}

int
zt_curve_load_keypair(const char *path, char public_key[41], char secret_key[41])
{
    if (!path || !public_key || !secret_key)
        return ZT_EINVAL;
    FILE *file = fopen(path, "r");
    if (!file) {
        int e = errno;
        if (e != ENOENT)
            ZT_LOG_ERROR("CURVE key file %s: %s", path, strerror(e));
        return e == ENOENT ? ZT_ENOTFOUND : e == EACCES ? ZT_EACCES : ZT_EIO;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fileno(file), &st) != 0) {
        rc = ZT_EIO;
    } else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        ZT_LOG_ERROR("CURVE key file %s has mode %03o: others may read it; chmod 600 it", path,
                     (unsigned)(st.st_mode & 0777));
        rc = ZT_EACCES;
    } else {
        char keys[2][64];
        char extra[2];
        /* Exactly two words of at most 63 characters, then nothing. */
        if (fscanf(file, "%63s %63s", keys[0], keys[1]) != 2 || fscanf(file, "%1s", extra) == 1 ||
            strlen(keys[0]) != 40 || strlen(keys[1]) != 40) {
            rc = ZT_EINVAL;
        } else {
            uint8_t secret[32], derived[41];
            if (!zmq_z85_decode(secret, keys[1]) ||
                zmq_curve_public((char *)derived, keys[1]) != 0 ||
                memcmp(derived, keys[0], 40) != 0) {
                rc = ZT_EINVAL;
            } else {
                memcpy(public_key, keys[0], 41);
                memcpy(secret_key, keys[1], 41);
            }
            memset(secret, 0, sizeof secret);
        }
        memset(keys, 0, sizeof keys);
    }
    fclose(file);
    return rc;
}
