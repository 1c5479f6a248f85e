/*  tests/bridges/czmq_cert.c - a small czmq program that makes and reads CURVE certificates, to
 * check ztwist's certificates against czmq's own (tests/bridges/czmq_certs.sh)
 *
 *      czmq_cert make CERT     write CERT and CERT_secret with zcert_save; print the public key
 *      czmq_cert show CERT     read CERT with zcert_load; print "public secret" ("-" for no secret)
 *
 *  Exit status 0, or 1 when czmq refuses (the file is no certificate).  */
#include <czmq.h>

#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: czmq_cert make CERT | show CERT\n");
        return 2;
    }
    if (strcmp(argv[1], "make") == 0) {
        zcert_t *cert = zcert_new();
        if (!cert)
            return 1;
        zcert_set_meta(cert, "name", "made by czmq_cert");
        int rc = zcert_save(cert, argv[2]);
        if (rc == 0)
            printf("%s\n", zcert_public_txt(cert));
        zcert_destroy(&cert);
        return rc == 0 ? 0 : 1;
    }
    if (strcmp(argv[1], "show") == 0) {
        zcert_t *cert = zcert_load(argv[2]);
        if (!cert)
            return 1;
        static const byte none[32] = {0};
        bool has_secret = memcmp(zcert_secret_key(cert), none, 32) != 0;
        printf("%s %s\n", zcert_public_txt(cert), has_secret ? zcert_secret_txt(cert) : "-");
        zcert_destroy(&cert);
        return 0;
    }
    fprintf(stderr, "usage: czmq_cert make CERT | show CERT\n");
    return 2;
}
