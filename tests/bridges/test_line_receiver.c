/*  tests/bridges/test_line_receiver.c - LineReceiver, after Twisted's test_basic.py
 * LineReceiverTests
 *
 *  Most tests drive the receiver without a connection (zt_protocol_make_connection with a NULL
 * transport, then zt_protocol_data_received), feeding the same bytes split in every way; the
 * fixture records each line and raw chunk and does what the test asks on a given line (switch to
 * raw mode, pause). The last tests run over TCP on 127.0.0.1: send_line, a line too long closing
 * only its own connection, and a 1 MiB line without a delimiter. The idle-timeout tests run the
 * same over TCP on a reactor made on a test clock: 30 s of silence pass in no time at all.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/line_receiver.h>
#include <ztwist/protocol.h>
#include <ztwist/reactor.h>
#include <ztwist/tcp.h>
#include <ztwist/test_clock.h>

#include "bridges/tcp_util.h"

#include <stdio.h>
#include <stdlib.h>

#define EVENTS_MAX 64

typedef struct fixture {
    zt_line_receiver_t *lr;      /* the receiver (owned through its protocol) */
    zt_protocol_t *protocol;     /* its protocol, owned by the test until a transport has it */
    char events[EVENTS_MAX][64]; /* "L:<line>" or "R:<raw>" or "X:<exceeded data>" */
    size_t nevents;              /* how many */
    size_t raw_at;               /* > 0: switch to raw mode on this line (1-based) */
    size_t pause_at;             /* > 0: pause on this line */
    size_t line_mode_after_raw;  /* > 0: the first raw chunk's bytes after this many go back */
    bool custom_exceeded;        /* line_length_exceeded is recorded instead of closing */
    size_t exceeded_len;         /* the length the last line_length_exceeded got */
    size_t lines;                /* lines received */
    int lost;                    /* connection_lost calls */
    bool lost_flag;              /* lost > 0 */
    bool made_flag;              /* connection_made ran with a transport */
    const zt_failure_type_t *lost_type; /* the reason's type */
    /* TCP */
    zt_reactor_t *reactor; /* the reactor, for the TCP tests */
    zt_factory_t *factory; /* builds receivers on this fixture */
    zt_tcp_port_t *port;   /* listening port */
    uint16_t portno;       /* its number */
    int freed;             /* free_fn calls on the user data */
    /* the idle timeout on a test clock */
    zt_test_clock_t *clock;   /* the reactor's clock: time moves only when the test advances it */
    zt_delayed_call_t *idle;  /* Owned: the connection's idle timer, while it is connected */
    zt_line_receiver_t *conn; /* Borrowed: the connection's receiver, while it is connected */
} fixture_t;

static void
record(fixture_t *fx, char kind, const char *data, size_t len)
{
    assert_true(fx->nevents < EVENTS_MAX);
    snprintf(fx->events[fx->nevents++], sizeof fx->events[0], "%c:%.*s", kind,
             (int)(len > 60 ? 60 : len), data);
}

static void
on_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg)
{
    fixture_t *fx = arg;
    fx->lines++;
    record(fx, 'L', line, len);
    if (fx->raw_at == fx->lines)
        zt_line_receiver_set_raw_mode(lr);
    if (fx->pause_at == fx->lines)
        zt_line_receiver_pause_producing(lr);
    if (len == 4 && memcmp(line, "echo", 4) == 0)
        assert_int_equal(zt_line_receiver_send_line(lr, "echoed", 6), 0);
}

static void
on_raw(zt_line_receiver_t *lr, const char *data, size_t len, void *arg)
{
    fixture_t *fx = arg;
    if (fx->line_mode_after_raw > 0 && len > fx->line_mode_after_raw) {
        size_t keep = fx->line_mode_after_raw;
        record(fx, 'R', data, keep);
        fx->line_mode_after_raw = 0;
        zt_line_receiver_set_line_mode(lr, data + keep, len - keep);
        return;
    }
    record(fx, 'R', data, len);
}

static void
on_exceeded(zt_line_receiver_t *lr, const char *data, size_t len, void *arg)
{
    (void)lr;
    fixture_t *fx = arg;
    record(fx, 'X', data, len);
    fx->exceeded_len = len;
}

static void
on_lost(zt_line_receiver_t *lr, const zt_failure_t *reason, void *arg)
{
    (void)lr;
    fixture_t *fx = arg;
    fx->lost++;
    fx->lost_flag = true;
    fx->lost_type = zt_failure_type(reason);
}

static void
on_made(zt_line_receiver_t *lr, void *arg)
{
    fixture_t *fx = arg;
    fx->made_flag = zt_line_receiver_transport(lr) != NULL; /* true over TCP only */
}

static const zt_line_receiver_vtable_t receiver = {
    .connection_made = on_made,
    .line_received = on_line,
    .raw_data_received = on_raw,
    .connection_lost = on_lost,
};

static const zt_line_receiver_vtable_t receiver_custom = {
    .line_received = on_line,
    .raw_data_received = on_raw,
    .line_length_exceeded = on_exceeded,
    .connection_lost = on_lost,
};

static void
count_free(void *arg)
{
    ((fixture_t *)arg)->freed++;
}

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->lr = zt_line_receiver_new(&receiver, fx, count_free);
    assert_non_null(fx->lr);
    fx->protocol = zt_line_receiver_protocol(fx->lr);
    assert_int_equal(zt_protocol_make_connection(fx->protocol, NULL), 0);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_protocol_destroy(&fx->protocol);
    if (fx->lr)
        assert_int_equal(fx->freed, 1);
    free(fx);
    return 0;
}

static void
feed(fixture_t *fx, const char *data)
{
    zt_protocol_data_received(fx->protocol, data, strlen(data));
}

/* --- lines without a connection ------------------------------------------------------- */

static void
test_line_receiver_lines_split_anywhere_arrive_whole(void **state)
{
    fixture_t *fx = *state;
    const char *input = "first\r\nsecond line\r\n\r\nlast\r\n";
    size_t n = strlen(input);
    /* Every split into two pieces, on fresh receivers. */
    for (size_t cut = 0; cut <= n; cut++) {
        zt_protocol_destroy(&fx->protocol);
        fx->freed = 0;
        fx->nevents = fx->lines = 0;
        fx->lr = zt_line_receiver_new(&receiver, fx, count_free);
        fx->protocol = zt_line_receiver_protocol(fx->lr);
        zt_protocol_data_received(fx->protocol, input, cut);
        zt_protocol_data_received(fx->protocol, input + cut, n - cut);
        assert_int_equal(fx->nevents, 4);
        assert_string_equal(fx->events[0], "L:first");
        assert_string_equal(fx->events[1], "L:second line");
        assert_string_equal(fx->events[2], "L:");
        assert_string_equal(fx->events[3], "L:last");
    }
}

static void
test_line_receiver_byte_by_byte_keeps_the_tail_buffered(void **state)
{
    fixture_t *fx = *state;
    const char *input = "ab\r\ncd\r\nincomplete";
    for (size_t i = 0; input[i]; i++)
        zt_protocol_data_received(fx->protocol, input + i, 1);
    assert_int_equal(fx->nevents, 2);
    assert_string_equal(fx->events[1], "L:cd");
    assert_int_equal(zt_line_receiver_clear_line_buffer(fx->lr), strlen("incomplete"));
    assert_int_equal(zt_line_receiver_clear_line_buffer(fx->lr), 0);
    feed(fx, "\r\n");
    assert_string_equal(fx->events[2], "L:");
}

static void
test_line_receiver_custom_delimiter(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_line_receiver_set_delimiter(fx->lr, "\n", 1), 0);
    feed(fx, "a\nb\r\nc");
    assert_int_equal(fx->nevents, 2);
    assert_string_equal(fx->events[0], "L:a");
    assert_string_equal(fx->events[1], "L:b\r");
    assert_int_equal(zt_line_receiver_set_delimiter(fx->lr, "<END>", 5), 0);
    feed(fx, "<EN");
    feed(fx, "D>x<END>");
    assert_int_equal(fx->nevents, 4);
    assert_string_equal(fx->events[2], "L:c");
    assert_string_equal(fx->events[3], "L:x");
}

static void
test_line_receiver_bad_settings_are_einval(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(zt_line_receiver_set_delimiter(fx->lr, NULL, 1), ZT_EINVAL);
    assert_int_equal(zt_line_receiver_set_delimiter(fx->lr, "", 0), ZT_EINVAL);
    assert_int_equal(zt_line_receiver_set_delimiter(fx->lr, "0123456789abcdefg", 17), ZT_EINVAL);
    assert_int_equal(zt_line_receiver_set_max_length(fx->lr, 0), ZT_EINVAL);
    assert_ptr_equal(zt_line_receiver_from_protocol(fx->protocol), fx->lr);
    assert_ptr_equal(zt_line_receiver_arg(fx->lr), fx);
    assert_true(zt_line_receiver_is_line_mode(fx->lr));
}

static void
test_line_receiver_send_line_without_transport_is_estate(void **state)
{
    fixture_t *fx = *state;
    assert_null(zt_line_receiver_transport(fx->lr));
    assert_int_equal(zt_line_receiver_send_line(fx->lr, "x", 1), ZT_ESTATE);
}

static void
test_line_receiver_raw_mode_gets_the_rest_of_the_data(void **state)
{
    fixture_t *fx = *state;
    fx->raw_at = 2;
    feed(fx, "one\r\ntwo\r\nraw bytes\r\nmore");
    feed(fx, " and more\r\n");
    assert_int_equal(fx->nevents, 4);
    assert_string_equal(fx->events[0], "L:one");
    assert_string_equal(fx->events[1], "L:two");
    assert_string_equal(fx->events[2], "R:raw bytes\r\nmore");
    assert_string_equal(fx->events[3], "R: and more\r\n");
    assert_false(zt_line_receiver_is_line_mode(fx->lr));
}

static void
test_line_receiver_set_line_mode_with_extra_parses_it(void **state)
{
    fixture_t *fx = *state;
    fx->raw_at = 1;
    fx->line_mode_after_raw = 3;
    feed(fx, "go\r\nRAWline A\r\nline B\r\ntail");
    assert_int_equal(fx->nevents, 4);
    assert_string_equal(fx->events[0], "L:go");
    assert_string_equal(fx->events[1], "R:RAW");
    assert_string_equal(fx->events[2], "L:line A");
    assert_string_equal(fx->events[3], "L:line B");
    assert_true(zt_line_receiver_is_line_mode(fx->lr));
    feed(fx, "\r\n");
    assert_string_equal(fx->events[4], "L:tail");
}

static void
test_line_receiver_line_of_max_length_passes_one_more_is_exceeded(void **state)
{
    fixture_t *fx = *state;
    zt_protocol_destroy(&fx->protocol);
    fx->lr = zt_line_receiver_new(&receiver_custom, fx, NULL);
    fx->protocol = zt_line_receiver_protocol(fx->lr);
    assert_int_equal(zt_line_receiver_set_max_length(fx->lr, 5), 0);
    feed(fx, "12345\r\n");
    assert_int_equal(fx->nevents, 1);
    assert_string_equal(fx->events[0], "L:12345");
    feed(fx, "123456\r\nnext\r\n");
    assert_int_equal(fx->nevents, 2);
    /* Twisted passes the line, its delimiter and the rest of the buffer. */
    assert_string_equal(fx->events[1], "X:123456\r\nnext\r\n");
    /* The buffer was cleared: later lines are parsed afresh. */
    feed(fx, "ok\r\n");
    assert_string_equal(fx->events[2], "L:ok");
    fx->lr = NULL; /* freed with the protocol, free_fn NULL */
}

static void
test_line_receiver_no_delimiter_is_exceeded_at_max_plus_delimiter(void **state)
{
    fixture_t *fx = *state;
    zt_protocol_destroy(&fx->protocol);
    fx->lr = zt_line_receiver_new(&receiver_custom, fx, NULL);
    fx->protocol = zt_line_receiver_protocol(fx->lr);
    assert_int_equal(zt_line_receiver_set_max_length(fx->lr, 5), 0);
    feed(fx, "123456"); /* 6 < 5 + 2: maybe the delimiter comes next */
    assert_int_equal(fx->nevents, 0);
    feed(fx, "7");
    assert_int_equal(fx->nevents, 1);
    assert_string_equal(fx->events[0], "X:1234567");
    assert_int_equal(fx->exceeded_len, 7);
    fx->lr = NULL;
}

static void
test_line_receiver_pause_holds_lines_until_resume(void **state)
{
    fixture_t *fx = *state;
    fx->pause_at = 1;
    feed(fx, "a\r\nb\r\nc\r\n");
    assert_int_equal(fx->nevents, 1);
    feed(fx, "d\r\n");
    assert_int_equal(fx->nevents, 1);
    zt_line_receiver_resume_producing(fx->lr);
    assert_int_equal(fx->nevents, 4);
    assert_string_equal(fx->events[1], "L:b");
    assert_string_equal(fx->events[3], "L:d");
}

static void
test_line_receiver_connection_lost_reaches_the_receiver(void **state)
{
    fixture_t *fx = *state;
    zt_protocol_connection_lost(fx->protocol, NULL);
    assert_int_equal(fx->lost, 1);
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
    zt_protocol_connection_lost(fx->protocol, NULL); /* once only */
    assert_int_equal(fx->lost, 1);
}

/* --- over TCP ------------------------------------------------------------------------- */

static zt_protocol_t *
build(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f;
    (void)addr;
    zt_line_receiver_t *lr = zt_line_receiver_new(&receiver, arg, NULL);
    return lr ? zt_line_receiver_protocol(lr) : NULL;
}

static const zt_factory_vtable_t factory = {.build_protocol = build};

static int
setup_tcp(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->reactor = zt_reactor_new();
    fx->factory = zt_factory_new(&factory, fx);
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, fx->factory, 0, "127.0.0.1", &fx->port), 0);
    zt_address_t addr;
    zt_tcp_port_get_host(fx->port, &addr);
    fx->portno = addr.port;
    *state = fx;
    return 0;
}

static int
teardown_tcp(void **state)
{
    fixture_t *fx = *state;
    zt_tcp_port_lose_connections(fx->port, true);
    tcp_util_spin(fx->reactor, 5);
    zt_tcp_port_destroy(&fx->port);
    zt_factory_destroy(&fx->factory);
    zt_reactor_destroy(&fx->reactor);
    free(fx);
    return 0;
}

static void
test_line_receiver_send_line_appends_the_delimiter(void **state)
{
    fixture_t *fx = *state;
    int fd = tcp_util_connect(fx->portno);
    assert_true(tcp_util_send_all(fd, "echo\r\n", 6));
    char buf[16];
    bool eof = false;
    assert_int_equal(tcp_util_read(fx->reactor, fd, buf, sizeof buf, 8, &eof), 8);
    assert_memory_equal(buf, "echoed\r\n", 8);
    assert_true(fx->made_flag);
    close(fd);
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
}

static void
test_line_receiver_long_line_closes_only_its_connection(void **state)
{
    fixture_t *fx = *state;
    int good = tcp_util_connect(fx->portno);
    int bad = tcp_util_connect(fx->portno);
    int fl = fcntl(bad, F_GETFL);
    fcntl(bad, F_SETFL, fl | O_NONBLOCK);
    /* 1 MiB without a delimiter: the server closes after max_length + 2 bytes. */
    size_t len = 1u << 20, sent = 0;
    char *junk = malloc(len);
    assert_non_null(junk);
    memset(junk, 'j', len);
    bool eof = false;
    char buf[256];
    for (int i = 0; i < TCP_UTIL_PASSES && !eof; i++) {
        if (sent < len) {
            ssize_t n = send(bad, junk + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                eof = true; /* reset by the server */
        }
        zt_reactor_iterate(fx->reactor, 0.001);
        ssize_t n = recv(bad, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            eof = true;
    }
    assert_true(eof);
    free(junk);
    /* The other connection is still served. */
    assert_true(tcp_util_send_all(good, "echo\r\n", 6));
    assert_int_equal(tcp_util_read(fx->reactor, good, buf, sizeof buf, 8, &eof), 8);
    assert_memory_equal(buf, "echoed\r\n", 8);
    assert_false(eof);
    assert_int_equal(zt_tcp_port_connection_count(fx->port), 1);
    close(bad);
    close(good);
}

/* --- an idle timeout on a test clock (Twisted's TimeoutMixin over a MemoryReactorClock) --------
 */

#define IDLE_TIMEOUT 30.0 /* seconds of silence before the server drops a connection */

/* The idle timer ran out: drop the connection, as TimeoutMixin.timeoutConnection does. */
static void
on_idle(void *arg)
{
    fixture_t *fx = arg;
    zt_transport_lose_connection(zt_line_receiver_transport(fx->conn));
}

static void
idle_made(zt_line_receiver_t *lr, void *arg)
{
    fixture_t *fx = arg;
    fx->conn = lr;
    fx->made_flag = true;
    assert_int_equal(zt_reactor_call_later(fx->reactor, IDLE_TIMEOUT, on_idle, fx, &fx->idle), 0);
}

/* Every line restarts the silence (TimeoutMixin.resetTimeout). */
static void
idle_line(zt_line_receiver_t *lr, const char *line, size_t len, void *arg)
{
    (void)lr;
    fixture_t *fx = arg;
    fx->lines++;
    record(fx, 'L', line, len);
    assert_int_equal(zt_delayed_call_reset(fx->idle, IDLE_TIMEOUT), 0);
}

static void
idle_lost(zt_line_receiver_t *lr, const zt_failure_t *reason, void *arg)
{
    fixture_t *fx = arg;
    zt_delayed_call_cancel(fx->idle); /* 0, or ZT_EALREADY when it is what dropped us */
    zt_delayed_call_release(&fx->idle);
    fx->conn = NULL;
    on_lost(lr, reason, arg);
}

static const zt_line_receiver_vtable_t idle_receiver = {
    .connection_made = idle_made,
    .line_received = idle_line,
    .connection_lost = idle_lost,
};

static zt_protocol_t *
build_idle(zt_factory_t *f, const zt_address_t *addr, void *arg)
{
    (void)f;
    (void)addr;
    zt_line_receiver_t *lr = zt_line_receiver_new(&idle_receiver, arg, NULL);
    return lr ? zt_line_receiver_protocol(lr) : NULL;
}

static const zt_factory_vtable_t idle_factory = {.build_protocol = build_idle};

static int
setup_idle(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->clock = zt_test_clock_new();
    assert_non_null(fx->clock);
    fx->reactor = zt_reactor_new_with_clock(fx->clock);
    assert_non_null(fx->reactor);
    fx->factory = zt_factory_new(&idle_factory, fx);
    assert_int_equal(zt_listen_tcp(fx->reactor, 0, fx->factory, 0, "127.0.0.1", &fx->port), 0);
    zt_address_t addr;
    zt_tcp_port_get_host(fx->port, &addr);
    fx->portno = addr.port;
    *state = fx;
    return 0;
}

static int
teardown_idle(void **state)
{
    fixture_t *fx = *state;
    zt_test_clock_t *clock = fx->clock; /* outlives the reactor, which teardown_tcp destroys */
    teardown_tcp(state);
    zt_test_clock_destroy(&clock);
    return 0;
}

/* Whether the client's end is still open: no EOF and no error waiting on it. */
static bool
client_open(int fd)
{
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void
test_line_receiver_idle_timeout_on_test_clock_drops_after_30s_silence(void **state)
{
    fixture_t *fx = *state;
    int fd = tcp_util_connect(fx->portno);
    assert_true(fd >= 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    assert_true(zt_delayed_call_is_active(fx->idle));
    assert_true(zt_delayed_call_get_time(fx->idle) == IDLE_TIMEOUT);
    /* 29 s of silence: still connected, however many passes the reactor makes. */
    assert_int_equal(zt_test_clock_advance(fx->clock, 29), 0);
    tcp_util_spin(fx->reactor, 5);
    assert_false(fx->lost_flag);
    assert_true(client_open(fd));
    assert_int_equal(zt_tcp_port_connection_count(fx->port), 1);
    /* One more second: the timer runs inside the advance and the connection is dropped. */
    assert_int_equal(zt_test_clock_advance(fx->clock, 1), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_ptr_equal(fx->lost_type, ZT_CONNECTION_DONE);
    char buf[8];
    bool eof = false;
    assert_int_equal(tcp_util_read(fx->reactor, fd, buf, sizeof buf, sizeof buf, &eof), 0);
    assert_true(eof);
    assert_null(fx->idle);
    assert_true(zt_reactor_seconds(fx->reactor) == 30.0);
    close(fd);
}

static void
test_line_receiver_idle_timeout_on_test_clock_restarts_on_each_line(void **state)
{
    fixture_t *fx = *state;
    int fd = tcp_util_connect(fx->portno);
    assert_true(fd >= 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->made_flag));
    assert_int_equal(zt_test_clock_advance(fx->clock, 20), 0);
    assert_true(tcp_util_send_all(fd, "still here\r\n", 12));
    size_t want = 1;
    for (int i = 0; i < TCP_UTIL_PASSES && fx->lines < want; i++)
        zt_reactor_iterate(fx->reactor, 0.01);
    assert_int_equal(fx->lines, 1);
    assert_true(zt_delayed_call_get_time(fx->idle) == 50.0); /* 30 s after the line, at 20 */
    /* At 49 the first deadline (30) is long past, yet the line moved it: still open. */
    assert_int_equal(zt_test_clock_advance(fx->clock, 29), 0);
    tcp_util_spin(fx->reactor, 5);
    assert_false(fx->lost_flag);
    assert_true(client_open(fd));
    assert_int_equal(zt_test_clock_advance(fx->clock, 1), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx->lost_flag));
    assert_string_equal(fx->events[0], "L:still here");
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_receiver_lines_split_anywhere_arrive_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_line_receiver_byte_by_byte_keeps_the_tail_buffered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_receiver_custom_delimiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_receiver_bad_settings_are_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_line_receiver_send_line_without_transport_is_estate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_receiver_raw_mode_gets_the_rest_of_the_data,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_receiver_set_line_mode_with_extra_parses_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_line_receiver_line_of_max_length_passes_one_more_is_exceeded, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_line_receiver_no_delimiter_is_exceeded_at_max_plus_delimiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_receiver_pause_holds_lines_until_resume, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_line_receiver_connection_lost_reaches_the_receiver,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_receiver_send_line_appends_the_delimiter,
                                        setup_tcp, teardown_tcp),
        cmocka_unit_test_setup_teardown(test_line_receiver_long_line_closes_only_its_connection,
                                        setup_tcp, teardown_tcp),
        cmocka_unit_test_setup_teardown(
            test_line_receiver_idle_timeout_on_test_clock_drops_after_30s_silence, setup_idle,
            teardown_idle),
        cmocka_unit_test_setup_teardown(
            test_line_receiver_idle_timeout_on_test_clock_restarts_on_each_line, setup_idle,
            teardown_idle),
    };
    return cmocka_run_group_tests_name("line_receiver", tests, NULL, NULL);
}
