/*  tests/base/test_time.c - the monotonic clock  */
#include <ztwist.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void
test_time_never_goes_backwards(void **state)
{
    (void)state;
    int64_t last = zt_time_now_ns();
    for (int i = 0; i < 100000; i++) {
        int64_t now = zt_time_now_ns();
        assert_true(now >= last);
        last = now;
    }
}

static void
test_time_seconds_and_nanoseconds_share_an_origin(void **state)
{
    (void)state;
    int64_t before = zt_time_now_ns();
    double seconds = zt_time_now();
    int64_t after = zt_time_now_ns();
    /* A double holds the nanosecond count to within a microsecond for centuries of uptime. */
    assert_true(seconds * 1e9 >= (double)before - 1000.0);
    assert_true(seconds * 1e9 <= (double)after + 1000.0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_never_goes_backwards),
        cmocka_unit_test(test_time_seconds_and_nanoseconds_share_an_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
