/*  ztwist/curve.h - CURVE keys for brokers, clients and workers
 *
 *  A CURVE key pair is two 40-character Z85 strings (plus NUL): the public key, which peers may
 * know, and the secret key, which only its owner should read. zt_broker_set_curve,
 * zt_remote_set_curve and zt_mdp_worker_set_curve take them. On disk they are czmq certificates
 * (zcert): what czmq programs and its zmakecert tool write and read, ztwist reads and writes; a
 * broker's allow-list may be a directory of public certificates (zt_broker_allow_directory).
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
 *  Read a CURVE key pair from a certificate, as czmq writes it (zcert_save, the zmakecert tool) and
 * zt_curve_save_keypair does: a public file and a secret file of the same name plus "_secret", in
 * ZPL text (czmq's zconfig format) with the Z85 keys under "curve". A secret belongs in a file only
 * its owner can read, not on a command line every user of the machine sees (ps): the secret file is
 * refused when its group or others may read or write it. Any thread.
 *  @param path  the certificate's name (its public file), or its "_secret" file
 *  @return 0; ZT_ENOTFOUND (no secret file); ZT_EACCES (it cannot be read, or others may read it;
 * logged with its mode); ZT_EINVAL (not a certificate with both keys, or not a pair: the public key
 * is not the secret key's)
 */
ZT_EXPORT int zt_curve_load_keypair(const char *path, char public_key[41], char secret_key[41]);

/**
 *  Read the public key of a certificate's public file (a peer's: a broker's for its clients and
 * workers, or a client's or worker's for a broker's allow-list). Any thread.
 *  @return 0; ZT_ENOTFOUND (no such file); ZT_EACCES (it cannot be read); ZT_EINVAL (not a
 * certificate with a Z85 public key)
 */
ZT_EXPORT int zt_curve_load_public(const char *path, char public_key[41]);

/**
 *  Write a key pair as a czmq certificate: the public file at path and the secret file at path +
 * "_secret", created with mode 600 before the secret is written; what exists is overwritten. czmq's
 * zcert_load reads them. Any thread.
 *  @return 0; ZT_EINVAL (a key is not Z85 of 32 bytes, they are not a pair, or path ends in
 * "_secret"); ZT_ENOTFOUND (no such directory); ZT_EACCES; ZT_EIO (logged)
 */
ZT_EXPORT int zt_curve_save_keypair(const char *path, const char *public_key,
                                    const char *secret_key);

#endif
