/*  tests/bridges/test_mdp_codec.c - the Majordomo frame decoder: every legal layout, and the
 * malformed ones it must reject with a reason (wrong header, missing or extra frames, unknown
 * command, oversize, too many frames). The decoder is private to the library, so this suite
 * compiles bridges/mdp_codec.c in.  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mdp_codec.h"

#include <string.h>

/* Frames built from strings; "" is an empty frame. */
typedef struct frames {
    zt__mdp_frame_t f[ZT__MDP_MAX_FRAMES + 2]; /* the views */
    size_t n;                                  /* how many */
} frames_t;

static frames_t
make(size_t n, const char *const *parts)
{
    frames_t fr = {.n = n};
    for (size_t i = 0; i < n; i++)
        fr.f[i] = (zt__mdp_frame_t){parts[i], strlen(parts[i])};
    return fr;
}

#define MAKE(...)                                                                                  \
    make(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *),                        \
         (const char *const[]){__VA_ARGS__})

static int
decode(frames_t fr, zt__mdp_role_t role, zt__mdp_msg_t *m, const char **why)
{
    return zt__mdp_decode(fr.f, fr.n, role, 0, m, why);
}

static void
test_mdp_codec_client_request_at_broker_decodes(void **state)
{
    (void)state;
    zt__mdp_msg_t m;
    frames_t fr = MAKE("id", "req7", "", "MDPC01", "echo", "a", "b");
    assert_int_equal(decode(fr, ZT__MDP_AT_BROKER, &m, NULL), 0);
    assert_int_equal(m.kind, ZT__MDP_CLIENT_REQUEST);
    assert_int_equal(m.env_first, 0);
    assert_int_equal(m.env_count, 2); /* routing id plus the client's request id */
    assert_int_equal(m.service, 4);
    assert_int_equal(m.body_first, 5);
    assert_int_equal(m.body_count, 2);
}

static void
test_mdp_codec_req_socket_client_without_body_decodes(void **state)
{
    (void)state;
    zt__mdp_msg_t m;
    assert_int_equal(decode(MAKE("id", "", "MDPC01", "echo"), ZT__MDP_AT_BROKER, &m, NULL), 0);
    assert_int_equal(m.env_count, 1);
    assert_int_equal(m.body_count, 0);
}

static void
test_mdp_codec_worker_commands_at_broker_decode(void **state)
{
    (void)state;
    zt__mdp_msg_t m;
    assert_int_equal(decode(MAKE("w", "", "MDPW01", "\x01", "echo"), ZT__MDP_AT_BROKER, &m, NULL),
                     0);
    assert_int_equal(m.kind, ZT__MDP_WORKER_COMMAND);
    assert_int_equal(m.command, ZT__MDP_READY);
    assert_int_equal(m.service, 4);
    assert_int_equal(
        decode(MAKE("w", "", "MDPW01", "\x03", "c", "r", "", "x"), ZT__MDP_AT_BROKER, &m, NULL), 0);
    assert_int_equal(m.command, ZT__MDP_REPLY);
    assert_int_equal(m.env_first, 4);
    assert_int_equal(m.env_count, 2);
    assert_int_equal(m.body_first, 7);
    assert_int_equal(m.body_count, 1);
    assert_int_equal(decode(MAKE("w", "", "MDPW01", "\x04"), ZT__MDP_AT_BROKER, &m, NULL), 0);
    assert_int_equal(m.command, ZT__MDP_HEARTBEAT);
    assert_int_equal(decode(MAKE("w", "", "MDPW01", "\x05"), ZT__MDP_AT_BROKER, &m, NULL), 0);
    assert_int_equal(m.command, ZT__MDP_DISCONNECT);
}

static void
test_mdp_codec_request_at_worker_decodes(void **state)
{
    (void)state;
    zt__mdp_msg_t m;
    assert_int_equal(
        decode(MAKE("", "MDPW01", "\x02", "c", "", "body"), ZT__MDP_AT_WORKER, &m, NULL), 0);
    assert_int_equal(m.command, ZT__MDP_REQUEST);
    assert_int_equal(m.env_first, 3);
    assert_int_equal(m.env_count, 1);
    assert_int_equal(m.body_first, 5);
    assert_int_equal(m.body_count, 1);
}

static void
test_mdp_codec_reply_at_client_decodes(void **state)
{
    (void)state;
    zt__mdp_msg_t m;
    assert_int_equal(
        decode(MAKE("12345678", "", "MDPC01", "echo", "r"), ZT__MDP_AT_CLIENT, &m, NULL), 0);
    assert_int_equal(m.kind, ZT__MDP_CLIENT_REPLY);
    assert_int_equal(m.env_count, 1);
    assert_int_equal(m.service, 3);
    assert_int_equal(m.body_count, 1);
}

/* Each malformed layout is rejected with ZT_EPROTO and a reason. */
static void
expect_reject(frames_t fr, zt__mdp_role_t role, const char *reason_part)
{
    zt__mdp_msg_t m;
    const char *why = NULL;
    assert_int_equal(decode(fr, role, &m, &why), ZT_EPROTO);
    assert_non_null(why);
    assert_non_null(strstr(why, reason_part));
}

static void
test_mdp_codec_wrong_header_rejected(void **state)
{
    (void)state;
    expect_reject(MAKE("id", "", "MDPC02", "echo"), ZT__MDP_AT_BROKER, "header");
    expect_reject(MAKE("", "MDPC01", "\x02"), ZT__MDP_AT_WORKER, "header");
    expect_reject(MAKE("x", "MDPW01", "\x02"), ZT__MDP_AT_WORKER, "not empty");
    expect_reject(MAKE("12345678", "", "MDPW01", "\x04"), ZT__MDP_AT_CLIENT, "worker header");
}

static void
test_mdp_codec_missing_frames_rejected(void **state)
{
    (void)state;
    expect_reject(MAKE("id", "", "MDPC01"), ZT__MDP_AT_BROKER, "service");
    expect_reject(MAKE("id", ""), ZT__MDP_AT_BROKER, "header");
    expect_reject(MAKE("id", "MDPC01", "echo"), ZT__MDP_AT_BROKER, "delimiter");
    expect_reject(MAKE("w", "", "MDPW01"), ZT__MDP_AT_BROKER, "command");
    expect_reject(MAKE("w", "", "MDPW01", "\x01"), ZT__MDP_AT_BROKER, "READY");
    expect_reject(MAKE("w", "", "MDPW01", "\x03", "c"), ZT__MDP_AT_BROKER, "empty frame");
    expect_reject(MAKE("w", "", "MDPW01", "\x03", "", "x"), ZT__MDP_AT_BROKER, "empty client");
    expect_reject(MAKE("", "MDPW01"), ZT__MDP_AT_WORKER, "too few");
    zt__mdp_msg_t m;
    assert_int_equal(zt__mdp_decode(NULL, 0, ZT__MDP_AT_BROKER, 0, &m, NULL), ZT_EPROTO);
}

static void
test_mdp_codec_ready_prefetch_frame_optional_and_checked(void **state)
{
    (void)state;
    zt__mdp_msg_t m;
    assert_int_equal(decode(MAKE("w", "", "MDPW01", "\x01", "echo"), ZT__MDP_AT_BROKER, &m, NULL),
                     0);
    assert_int_equal(m.prefetch, 1);
    assert_int_equal(
        decode(MAKE("w", "", "MDPW01", "\x01", "echo", "25"), ZT__MDP_AT_BROKER, &m, NULL), 0);
    assert_int_equal(m.prefetch, 25);
    assert_int_equal(m.service, 4);
    assert_int_equal(
        decode(MAKE("w", "", "MDPW01", "\x01", "echo", "1000"), ZT__MDP_AT_BROKER, &m, NULL), 0);
    assert_int_equal(m.prefetch, 1000);
    expect_reject(MAKE("w", "", "MDPW01", "\x01", "echo", "0"), ZT__MDP_AT_BROKER, "prefetch");
    expect_reject(MAKE("w", "", "MDPW01", "\x01", "echo", "1001"), ZT__MDP_AT_BROKER, "prefetch");
    expect_reject(MAKE("w", "", "MDPW01", "\x01", "echo", "07"), ZT__MDP_AT_BROKER, "prefetch");
    expect_reject(MAKE("w", "", "MDPW01", "\x01", "echo", "-1"), ZT__MDP_AT_BROKER, "prefetch");
    expect_reject(MAKE("w", "", "MDPW01", "\x01", "echo", ""), ZT__MDP_AT_BROKER, "prefetch");
    expect_reject(MAKE("w", "", "MDPW01", "\x01", "echo", "12345"), ZT__MDP_AT_BROKER, "prefetch");
    expect_reject(MAKE("w", "", "MDPW01", "\x01", "echo", "2", "x"), ZT__MDP_AT_BROKER, "READY");
}

static void
test_mdp_codec_extra_frames_rejected(void **state)
{
    (void)state;
    expect_reject(MAKE("w", "", "MDPW01", "\x04", "x"), ZT__MDP_AT_BROKER, "extra");
    expect_reject(MAKE("w", "", "MDPW01", "\x01", "echo", "x"), ZT__MDP_AT_BROKER, "READY");
    expect_reject(MAKE("", "MDPW01", "\x05", "x"), ZT__MDP_AT_WORKER, "extra");
    expect_reject(MAKE("w", "r", "", "MDPW01", "\x04"), ZT__MDP_AT_BROKER, "address stack");
}

static void
test_mdp_codec_unknown_or_misdirected_command_rejected(void **state)
{
    (void)state;
    expect_reject(MAKE("w", "", "MDPW01", "\x07"), ZT__MDP_AT_BROKER, "unknown command");
    expect_reject(MAKE("w", "", "MDPW01", "\x01\x01", "x"), ZT__MDP_AT_BROKER, "one byte");
    expect_reject(MAKE("w", "", "MDPW01", "\x02", "c", "", "x"), ZT__MDP_AT_BROKER, "REQUEST");
    expect_reject(MAKE("", "MDPW01", "\x01", "echo"), ZT__MDP_AT_WORKER, "READY");
    expect_reject(MAKE("", "MDPW01", "\x03", "c", "", "x"), ZT__MDP_AT_WORKER, "REPLY");
}

static void
test_mdp_codec_oversize_rejected(void **state)
{
    (void)state;
    zt__mdp_msg_t m;
    const char *why = NULL;
    frames_t fr = MAKE("id", "", "MDPC01", "echo", "0123456789");
    assert_int_equal(zt__mdp_decode(fr.f, fr.n, ZT__MDP_AT_BROKER, 16, &m, &why), ZT_EPROTO);
    assert_non_null(strstr(why, "too large"));
    assert_int_equal(zt__mdp_decode(fr.f, fr.n, ZT__MDP_AT_BROKER, 64, &m, &why), 0);
    char name[ZT__MDP_MAX_SERVICE + 2];
    memset(name, 's', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    expect_reject(MAKE("id", "", "MDPC01", name), ZT__MDP_AT_BROKER, "service");
    expect_reject(MAKE("id", "", "MDPC01", ""), ZT__MDP_AT_BROKER, "service");
    /* An address frame fits the broker's packed envelope: one size byte each. */
    char address[ZT__MDP_MAX_ADDRESS + 2];
    memset(address, 'a', sizeof address - 1);
    address[sizeof address - 1] = '\0';
    expect_reject(MAKE("id", address, "", "MDPC01", "echo"), ZT__MDP_AT_BROKER, "address frame");
    address[ZT__MDP_MAX_ADDRESS] = '\0';
    zt__mdp_msg_t ok;
    assert_int_equal(
        decode(MAKE("id", address, "", "MDPC01", "echo"), ZT__MDP_AT_BROKER, &ok, NULL), 0);
}

static void
test_mdp_codec_too_many_frames_rejected(void **state)
{
    (void)state;
    frames_t fr = {.n = ZT__MDP_MAX_FRAMES + 1};
    for (size_t i = 0; i < fr.n; i++)
        fr.f[i] = (zt__mdp_frame_t){"x", 1};
    expect_reject(fr, ZT__MDP_AT_BROKER, "too many");
    frames_t deep = MAKE("a", "b", "c", "d", "e", "f", "g", "h", "i", "", "MDPC01", "s");
    expect_reject(deep, ZT__MDP_AT_BROKER, "too deep");
}

static void
test_mdp_codec_frame_is_compares_exactly(void **state)
{
    (void)state;
    zt__mdp_frame_t f = {"MDPC01", 6};
    assert_true(zt__mdp_frame_is(&f, "MDPC01"));
    assert_false(zt__mdp_frame_is(&f, "MDPC0"));
    assert_false(zt__mdp_frame_is(&f, "MDPC011"));
    zt__mdp_frame_t empty = {NULL, 0};
    assert_true(zt__mdp_frame_is(&empty, ""));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mdp_codec_client_request_at_broker_decodes),
        cmocka_unit_test(test_mdp_codec_req_socket_client_without_body_decodes),
        cmocka_unit_test(test_mdp_codec_worker_commands_at_broker_decode),
        cmocka_unit_test(test_mdp_codec_request_at_worker_decodes),
        cmocka_unit_test(test_mdp_codec_reply_at_client_decodes),
        cmocka_unit_test(test_mdp_codec_wrong_header_rejected),
        cmocka_unit_test(test_mdp_codec_missing_frames_rejected),
        cmocka_unit_test(test_mdp_codec_ready_prefetch_frame_optional_and_checked),
        cmocka_unit_test(test_mdp_codec_extra_frames_rejected),
        cmocka_unit_test(test_mdp_codec_unknown_or_misdirected_command_rejected),
        cmocka_unit_test(test_mdp_codec_oversize_rejected),
        cmocka_unit_test(test_mdp_codec_too_many_frames_rejected),
        cmocka_unit_test(test_mdp_codec_frame_is_compares_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
