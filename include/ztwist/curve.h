/*  ztwist/curve.h - CURVE keys for brokers, clients and workers
 *
 *  A CURVE key pair is two 40-character Z85 strings (plus NUL): the public key, which peers may
 * know, and the secret key, which only its owner should read. zt_broker_set_curve,
 * zt_remote_set_curve and zt_mdp_worker_set_curve take them.
 *
 *  Threads: every function here is safe from any thread.  */
#ifndef ZTWIST_CURVE_H
#define ZTWIST_CURVE_H

#include <ztwist/common.h>

/**
 *  Make a CURVE key pair, as 40-character Z85 strings plus NUL. Any thread.
 *  @return 0, or ZT_ESYS when ZeroMQ was built without CURVE
 */
ZT_EXPORT int zt_curve_keypair(char public_key[41], char secret_key[41]);

/**
 *  Read a CURVE key pair from a file, as `ztwist-broker --keygen > FILE` writes it: the public and
 * then the secret key, 40-character Z85 each, separated by white space. A secret belongs in a file
 * only its owner can read, not on a command line every user of the machine sees (ps): the file is
 * refused when its group or others may read or write it. Any thread.
 *  @return 0; ZT_ENOTFOUND (no such file); ZT_EACCES (it cannot be read, or others may read it;
 * logged with its mode); ZT_EINVAL (not two Z85 keys, or not a pair: the public key is not the
 * secret key's); ZT_EIO
 */
ZT_EXPORT int zt_curve_load_keypair(const char *path, char public_key[41], char secret_key[41]);

#endif
