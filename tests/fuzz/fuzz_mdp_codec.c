/*  tests/fuzz/fuzz_mdp_codec.c - libFuzzer target for the Majordomo frame decoder
 *
 *  The input is a role byte, then frames as [length byte][bytes]. Every decode must either reject
 * the message with a reason or return indexes that stay inside the frames it was given.
 *      cmake -DZT_FUZZ=ON -DCMAKE_C_COMPILER=clang ... && ./fuzz_mdp_codec -max_total_time=60  */
#include "bridges/mdp/mdp_codec.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    zt__mdp_role_t role = (zt__mdp_role_t)(data[0] % 3);
    zt__mdp_frame_t frames[ZT__MDP_MAX_FRAMES + 8];
    size_t n = 0;
    size_t at = 1;
    while (at < size && n < sizeof frames / sizeof frames[0]) {
        size_t len = data[at++];
        if (len > size - at)
            len = size - at;
        frames[n++] = (zt__mdp_frame_t){data + at, len};
        at += len;
    }
    zt__mdp_msg_t m;
    const char *why = NULL;
    int rc = zt__mdp_decode(frames, n, role, 4096, &m, &why);
    if (rc != 0) {
        if (rc != ZT_EPROTO || !why)
            abort();
        return 0;
    }
    if (m.env_first + m.env_count > n || m.body_first + m.body_count > n)
        abort();
    if (m.service != SIZE_MAX && (m.service >= n || frames[m.service].size == 0))
        abort();
    return 0;
}
