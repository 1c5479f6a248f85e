/*  tests/fuzz/fuzz_line_receiver.c - libFuzzer target for the LineReceiver's parser
 *
 *  The input's first bytes choose the settings (delimiter, maximum length, how the rest is split
 * into reads, whether line_length_exceeded is the user's); the rest is fed to a LineReceiver with
 * no connection, in pieces. Lines starting with 'R' switch to raw mode; raw chunks containing 'L'
 * switch back to line mode, handing the bytes after the 'L' back as extra data (Twisted's
 * setLineMode(extra)); a line "P" pauses and the next piece resumes. Checked on every input:
 *    - no line contains the delimiter, and none is longer than the maximum;
 *    - every byte fed is accounted for exactly once: in a line (plus its delimiter), a raw chunk,
 *      the data given to line_length_exceeded, or the buffer left at the end.
 *  Build: cmake -DZT_FUZZ=ON -DCMAKE_C_COMPILER=clang; run: fuzz_line_receiver -max_total_time=20
 */
#include <ztwist/line_receiver.h>
#include <ztwist/protocol.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct state {
    zt_line_receiver_t *lr; /* the receiver under test */
    const char *delimiter;  /* its delimiter */
    size_t delimiter_len;   /* its length */
    size_t max_length;      /* its maximum line length */
    size_t accounted;       /* bytes seen in lines (+ delimiter), raw chunks and exceeded data */
    bool custom_exceeded;   /* line_length_exceeded is ours (else the default, without a peer) */
    size_t dropped;         /* bytes the default line_length_exceeded dropped */
    bool paused;            /* we paused the receiver */
} state_t;

static void
on_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg)
{
    state_t *st = arg;
    if (len > st->max_length)
        abort();
    for (size_t i = 0; i + st->delimiter_len <= len; i++)
        if (memcmp(line + i, st->delimiter, st->delimiter_len) == 0)
            abort();
    st->accounted += len + st->delimiter_len;
    if (len > 0 && line[0] == 'R')
        zt_line_receiver_set_raw_mode(lr);
    if (len == 1 && line[0] == 'P') {
        zt_line_receiver_pause_producing(lr);
        st->paused = true;
    }
}

static void
on_raw(zt_line_receiver_t *lr, const char *data, size_t len, void *arg)
{
    state_t *st = arg;
    const char *l = memchr(data, 'L', len);
    if (!l) {
        st->accounted += len;
        return;
    }
    size_t keep = (size_t)(l - data) + 1;
    st->accounted += keep;
    zt_line_receiver_set_line_mode(lr, data + keep, len - keep);
}

static void
on_exceeded(zt_line_receiver_t *lr, const char *data, size_t len, void *arg)
{
    (void)lr;
    state_t *st = arg;
    if (len == 0)
        abort();
    volatile char touch = data[0] ^ data[len - 1]; /* the data must be readable */
    (void)touch;
    st->accounted += len;
}

static const zt_line_receiver_vtable_t custom = {
    .line_received = on_line,
    .raw_data_received = on_raw,
    .line_length_exceeded = on_exceeded,
};

static const zt_line_receiver_vtable_t plain = {
    .line_received = on_line,
    .raw_data_received = on_raw,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *delimiters[] = {"\r\n", "\n", "\r\n\r\n", "ab", "aab", "x"};
    if (size < 3)
        return 0;
    state_t st = {.custom_exceeded = data[0] & 1};
    st.delimiter = delimiters[(data[0] >> 1) % 6];
    st.delimiter_len = strlen(st.delimiter);
    st.max_length = 1 + data[1] % 64;
    size_t piece = 1 + data[2] % 17;
    data += 3;
    size -= 3;
    st.lr = zt_line_receiver_new(st.custom_exceeded ? &custom : &plain, &st, NULL);
    if (!st.lr)
        return 0;
    zt_protocol_t *p = zt_line_receiver_protocol(st.lr);
    zt_line_receiver_set_delimiter(st.lr, st.delimiter, st.delimiter_len);
    zt_line_receiver_set_max_length(st.lr, st.max_length);
    zt_protocol_make_connection(p, NULL);
    for (size_t at = 0; at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        if (st.paused) {
            st.paused = false;
            zt_line_receiver_resume_producing(st.lr);
        }
        zt_protocol_data_received(p, (const char *)data + at, n);
    }
    if (st.paused)
        zt_line_receiver_resume_producing(st.lr);
    size_t left = zt_line_receiver_clear_line_buffer(st.lr);
    /* Without our line_length_exceeded the default drops the buffer (no connection to close):
     * only then may bytes be missing. */
    if (st.custom_exceeded && st.accounted + left != size)
        abort();
    if (st.accounted + left > size)
        abort();
    zt_protocol_connection_lost(p, NULL);
    zt_protocol_destroy(&p);
    return 0;
}
