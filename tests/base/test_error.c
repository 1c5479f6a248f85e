/*  tests/base/test_error.c - error codes and their names  */
#include <ztwist.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static void
test_error_every_code_has_a_distinct_name(void **state)
{
    (void)state;
    for (int a = ZT_ERROR_LAST; a <= 0; a++) {
        assert_string_not_equal(zt_strerror(a), "unknown error");
        for (int b = ZT_ERROR_LAST; b < a; b++)
            assert_string_not_equal(zt_strerror(a), zt_strerror(b));
    }
}

static void
test_error_unknown_code_is_named_unknown(void **state)
{
    (void)state;
    assert_string_equal(zt_strerror(ZT_ERROR_LAST - 1), "unknown error");
    assert_string_equal(zt_strerror(1), "unknown error");
    assert_string_equal(zt_strerror(-1000000), "unknown error");
}

static void
test_error_codes_are_negative_and_ok_is_zero(void **state)
{
    (void)state;
    assert_int_equal(ZT_OK, 0);
    assert_true(ZT_EINVAL < 0);
    assert_string_equal(zt_strerror(ZT_OK), "success");
    assert_string_equal(zt_strerror(ZT_ETIMEDOUT), "operation timed out");
}

static void
test_error_version_is_major_minor_patch(void **state)
{
    (void)state;
    int major = -1, minor = -1, patch = -1;
    char tail = 0;
    assert_int_equal(sscanf(zt_version(), "%d.%d.%d%c", &major, &minor, &patch, &tail), 3);
    assert_true(major >= 0 && minor >= 0 && patch >= 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_every_code_has_a_distinct_name),
        cmocka_unit_test(test_error_unknown_code_is_named_unknown),
        cmocka_unit_test(test_error_codes_are_negative_and_ok_is_zero),
        cmocka_unit_test(test_error_version_is_major_minor_patch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
