/*  tests/bridges/test_frames.c - zt_frames_t: a multipart message's parts, copied and owned  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ztwist/frames.h>

#include <string.h>

static void
test_frames_add_copies_each_frame_in_order(void **state)
{
    (void)state;
    zt_frames_t *f = zt_frames_new();
    assert_non_null(f);
    char data[] = "abc";
    assert_int_equal(zt_frames_add(f, data, 3), 0);
    data[0] = 'x'; /* the list holds a copy */
    assert_int_equal(zt_frames_add_str(f, "second"), 0);
    assert_int_equal(zt_frames_add(f, NULL, 0), 0); /* an empty frame */
    assert_int_equal(zt_frames_count(f), 3);
    assert_memory_equal(zt_frames_data(f, 0), "abc", 3);
    assert_true(zt_frames_equal_str(f, 1, "second"));
    assert_int_equal(zt_frames_size(f, 2), 0);
    assert_non_null(zt_frames_data(f, 2));
    assert_true(zt_frames_equal_str(f, 2, ""));
    zt_frames_destroy(&f);
    assert_null(f);
}

static void
test_frames_out_of_range_and_bad_input_refused(void **state)
{
    (void)state;
    zt_frames_t *f = zt_frames_new();
    assert_int_equal(zt_frames_add(f, NULL, 1), ZT_EINVAL);
    assert_int_equal(zt_frames_add_str(f, NULL), ZT_EINVAL);
    assert_int_equal(zt_frames_count(f), 0);
    assert_null(zt_frames_data(f, 0));
    assert_int_equal(zt_frames_size(f, 5), 0);
    assert_false(zt_frames_equal_str(f, 0, ""));
    zt_frames_destroy(&f);
    zt_frames_destroy(&f); /* NULL is fine */
    zt_frames_destroy(NULL);
}

static void
test_frames_dup_is_deep_and_free_destroys(void **state)
{
    (void)state;
    zt_frames_t *f = zt_frames_new();
    for (int i = 0; i < 100; i++) /* past the first growths */
        assert_int_equal(zt_frames_add(f, &i, sizeof i), 0);
    zt_frames_t *copy = zt_frames_dup(f);
    assert_non_null(copy);
    zt_frames_destroy(&f);
    assert_int_equal(zt_frames_count(copy), 100);
    for (int i = 0; i < 100; i++) {
        int v;
        memcpy(&v, zt_frames_data(copy, (size_t)i), sizeof v);
        assert_int_equal(v, i);
    }
    zt_frames_free(copy);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_add_copies_each_frame_in_order),
        cmocka_unit_test(test_frames_out_of_range_and_bad_input_refused),
        cmocka_unit_test(test_frames_dup_is_deep_and_free_destroys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
