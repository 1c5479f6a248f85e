/*  tests/install/consumer.c - a program built against an installed ztwist, the way a user would
 * build one  */
#include <ztwist.h>

#include <stdio.h>
#include <string.h>

int
main(void)
{
    if (strcmp(zt_strerror(ZT_ETIMEDOUT), "operation timed out") != 0)
        return 1;
    printf("consumer linked ztwist %s\n", zt_version());
    return 0;
}
