/*  tests/futures/test_failure.c - Failure: types and subtypes, codes, messages, origins, causes,
 * copies, trapping and printing  */
#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* A program's own failure types: a parse error, and a refinement of it that carries a code. */
static ZT_FAILURE_TYPE(parse_error, "ParseError", ZT_ERROR);
static const zt_failure_type_t syntax_error = {"SyntaxError", &parse_error, ZT_EPROTO};

static void
test_failure_new_records_type_message_and_origin(void **state)
{
    (void)state;
    int line = __LINE__ + 1;
    zt_failure_t *f = zt_failure_new(&parse_error, "line %d: unexpected '%c'", 12, '}');
    assert_non_null(f);
    assert_ptr_equal(zt_failure_type(f), &parse_error);
    assert_string_equal(zt_failure_message(f), "line 12: unexpected '}'");
    assert_non_null(strstr(zt_failure_file(f), "test_failure.c"));
    assert_int_equal(zt_failure_line(f), line);
    assert_string_equal(zt_failure_func(f), "test_failure_new_records_type_message_and_origin");
    assert_null(zt_failure_cause(f));
    assert_int_equal(zt_failure_detail(f), 0);
    zt_failure_destroy(&f);
    assert_null(f);
}

static void
test_failure_new_null_type_is_error_and_null_format_is_type_name(void **state)
{
    (void)state;
    zt_failure_t *f = zt_failure_new(NULL, NULL);
    assert_ptr_equal(zt_failure_type(f), ZT_ERROR);
    assert_string_equal(zt_failure_message(f), "Error");
    zt_failure_destroy(&f);
    f = zt_failure_new(ZT_CANCELLED_ERROR, NULL);
    assert_string_equal(zt_failure_message(f), "CancelledError");
    zt_failure_destroy(&f);
}

static void
test_failure_builtin_types_have_names_codes_and_refine_error(void **state)
{
    (void)state;
    struct {
        const zt_failure_type_t *type;
        const char *name;
        int code;
    } cases[] = {
        {ZT_ERROR, "Error", ZT_ESYS},
        {ZT_CANCELLED_ERROR, "CancelledError", ZT_ECANCELLED},
        {ZT_TIMEOUT_ERROR, "TimeoutError", ZT_ETIMEDOUT},
        {ZT_ALREADY_CALLED_ERROR, "AlreadyCalledError", ZT_EALREADY},
        {ZT_QUEUE_OVERFLOW, "QueueOverflow", ZT_EFULL},
        {ZT_QUEUE_UNDERFLOW, "QueueUnderflow", ZT_EEMPTY},
        {ZT_FIRST_ERROR, "FirstError", ZT_ESYS},
        {ZT_SYSTEM_ERROR, "SystemError", ZT_ESYS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zt_failure_t *f = zt_failure_new(cases[i].type, "case %zu", i);
        assert_string_equal(cases[i].type->name, cases[i].name);
        assert_int_equal(zt_failure_code(f), cases[i].code);
        assert_true(zt_failure_type_is(cases[i].type, ZT_ERROR));
        assert_ptr_equal(zt_failure_check(f, ZT_ERROR), ZT_ERROR);
        zt_failure_destroy(&f);
    }
}

static void
test_failure_code_is_inherited_from_nearest_ancestor(void **state)
{
    (void)state;
    zt_failure_t *parse = zt_failure_new(&parse_error, "x");
    zt_failure_t *syntax = zt_failure_new(&syntax_error, "y");
    assert_int_equal(zt_failure_code(parse), ZT_ESYS);    /* from ZT_ERROR */
    assert_int_equal(zt_failure_code(syntax), ZT_EPROTO); /* its own */
    zt_failure_destroy(&parse);
    zt_failure_destroy(&syntax);
}

static void
test_failure_check_walks_parent_chain_and_returns_first_match(void **state)
{
    (void)state;
    zt_failure_t *f = zt_failure_new(&syntax_error, "bad token");
    assert_ptr_equal(zt_failure_check(f, &syntax_error), &syntax_error);
    assert_ptr_equal(zt_failure_check(f, &parse_error), &parse_error);
    assert_ptr_equal(zt_failure_check(f, ZT_TIMEOUT_ERROR, &parse_error, ZT_ERROR), &parse_error);
    assert_null(zt_failure_check(f, ZT_TIMEOUT_ERROR, ZT_CANCELLED_ERROR));
    zt_failure_destroy(&f);
}

static void
test_failure_type_is_does_not_match_children_or_siblings(void **state)
{
    (void)state;
    assert_true(zt_failure_type_is(&syntax_error, &parse_error));
    assert_false(zt_failure_type_is(&parse_error, &syntax_error));
    assert_false(zt_failure_type_is(ZT_TIMEOUT_ERROR, ZT_CANCELLED_ERROR));
    assert_false(zt_failure_type_is(ZT_ERROR, ZT_CANCELLED_ERROR));
    assert_true(zt_failure_type_is(ZT_ERROR, ZT_ERROR));
}

static void
test_failure_from_code_is_system_error_with_strerror_message(void **state)
{
    (void)state;
    zt_failure_t *f = zt_failure_from_code(ZT_ECONNREFUSED, "connecting to %s:%d", "db", 5432);
    assert_ptr_equal(zt_failure_type(f), ZT_SYSTEM_ERROR);
    assert_int_equal(zt_failure_code(f), ZT_ECONNREFUSED);
    char expected[128];
    snprintf(expected, sizeof expected, "%s: connecting to db:5432", zt_strerror(ZT_ECONNREFUSED));
    assert_string_equal(zt_failure_message(f), expected);
    zt_failure_destroy(&f);
}

static void
test_failure_from_code_without_format_is_strerror_alone(void **state)
{
    (void)state;
    zt_failure_t *f = zt_failure_from_code(ZT_ETIMEDOUT, NULL);
    assert_string_equal(zt_failure_message(f), zt_strerror(ZT_ETIMEDOUT));
    assert_int_equal(zt_failure_code(f), ZT_ETIMEDOUT);
    /* A SystemError made from a timeout code is still a SystemError, not a TimeoutError. */
    assert_null(zt_failure_check(f, ZT_TIMEOUT_ERROR));
    zt_failure_destroy(&f);
}

static void
test_failure_from_code_non_error_code_becomes_esys(void **state)
{
    (void)state;
    zt_failure_t *zero = zt_failure_from_code(0, NULL);
    zt_failure_t *positive = zt_failure_from_code(42, "odd");
    zt_failure_t *unknown = zt_failure_from_code(-1000, NULL);
    assert_int_equal(zt_failure_code(zero), ZT_ESYS);
    assert_int_equal(zt_failure_code(positive), ZT_ESYS);
    assert_int_equal(zt_failure_code(unknown), ZT_ESYS);
    zt_failure_destroy(&zero);
    zt_failure_destroy(&positive);
    zt_failure_destroy(&unknown);
}

static void
test_failure_set_cause_owns_and_replaces_the_cause(void **state)
{
    (void)state;
    zt_failure_t *outer = zt_failure_new(ZT_FIRST_ERROR, "member 2 failed");
    zt_failure_t *first = zt_failure_new(ZT_TIMEOUT_ERROR, "first");
    zt_failure_t *second = zt_failure_new(ZT_CANCELLED_ERROR, "second");
    zt_failure_set_cause(outer, &first);
    assert_null(first);
    assert_string_equal(zt_failure_message(zt_failure_cause(outer)), "first");
    zt_failure_set_cause(outer, &second); /* the first cause is destroyed (ASan checks) */
    assert_null(second);
    assert_string_equal(zt_failure_message(zt_failure_cause(outer)), "second");
    zt_failure_t *none = NULL;
    zt_failure_set_cause(outer, &none);
    assert_null(zt_failure_cause(outer));
    zt_failure_set_cause(outer, NULL);
    assert_null(zt_failure_cause(outer));
    zt_failure_destroy(&outer);
}

static void
test_failure_detail_is_settable(void **state)
{
    (void)state;
    zt_failure_t *f = zt_failure_new(ZT_FIRST_ERROR, "member failed");
    zt_failure_set_detail(f, 7);
    assert_int_equal(zt_failure_detail(f), 7);
    zt_failure_set_detail(f, -3);
    assert_int_equal(zt_failure_detail(f), -3);
    zt_failure_destroy(&f);
}

static void
test_failure_dup_is_deep_and_independent(void **state)
{
    (void)state;
    zt_failure_t *root = zt_failure_new(ZT_TIMEOUT_ERROR, "root %d", 1);
    zt_failure_t *mid = zt_failure_new(&parse_error, "mid");
    zt_failure_t *top = zt_failure_from_code(ZT_EIO, "top");
    zt_failure_set_cause(mid, &root);
    zt_failure_set_cause(top, &mid);
    zt_failure_set_detail(top, 5);

    zt_failure_t *copy = zt_failure_dup(top);
    assert_non_null(copy);
    assert_ptr_not_equal(copy, top);
    assert_ptr_equal(zt_failure_type(copy), ZT_SYSTEM_ERROR);
    assert_int_equal(zt_failure_code(copy), ZT_EIO);
    assert_int_equal(zt_failure_detail(copy), 5);
    assert_int_equal(zt_failure_line(copy), zt_failure_line(top));
    assert_string_equal(zt_failure_func(copy), zt_failure_func(top));
    assert_ptr_not_equal(zt_failure_message(copy), zt_failure_message(top));
    assert_string_equal(zt_failure_message(copy), zt_failure_message(top));
    const zt_failure_t *c1 = zt_failure_cause(copy);
    assert_ptr_not_equal(c1, zt_failure_cause(top));
    assert_ptr_equal(zt_failure_type(c1), &parse_error);
    const zt_failure_t *c2 = zt_failure_cause(c1);
    assert_ptr_equal(zt_failure_type(c2), ZT_TIMEOUT_ERROR);
    assert_string_equal(zt_failure_message(c2), "root 1");
    assert_null(zt_failure_cause(c2));

    /* Destroying the original leaves the copy whole (ASan would see a use after free). */
    zt_failure_destroy(&top);
    assert_string_equal(zt_failure_message(zt_failure_cause(zt_failure_cause(copy))), "root 1");
    zt_failure_destroy(&copy);
}

static void
test_failure_format_writes_type_and_message_like_snprintf(void **state)
{
    (void)state;
    zt_failure_t *f = zt_failure_new(ZT_TIMEOUT_ERROR, "timed out after %d s", 3);
    char buf[64];
    int n = zt_failure_format(f, buf, sizeof buf);
    assert_string_equal(buf, "TimeoutError: timed out after 3 s");
    assert_int_equal(n, (int)strlen("TimeoutError: timed out after 3 s"));

    char small[8];
    n = zt_failure_format(f, small, sizeof small);
    assert_int_equal(n, (int)strlen("TimeoutError: timed out after 3 s"));
    assert_string_equal(small, "Timeout");
    assert_int_equal(zt_failure_format(f, NULL, 0), n);
    zt_failure_destroy(&f);
}

static void
test_failure_print_shows_origin_and_every_cause(void **state)
{
    (void)state;
    zt_failure_t *cause = zt_failure_new(ZT_TIMEOUT_ERROR, "timed out after 3 s");
    int cause_line = __LINE__ - 1;
    zt_failure_t *f = zt_failure_new(ZT_FIRST_ERROR, "member 2 failed");
    int line = __LINE__ - 1;
    zt_failure_set_cause(f, &cause);

    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream(&text, &size);
    assert_non_null(stream);
    zt_failure_print(f, stream);
    fclose(stream);

    char expected[512];
    snprintf(expected, sizeof expected,
             "Failure: FirstError: member 2 failed (test_failure.c:%d in %s)\n"
             "  caused by: TimeoutError: timed out after 3 s (test_failure.c:%d in %s)\n",
             line, __func__, cause_line, __func__);
    assert_string_equal(text, expected);
    free(text);
    zt_failure_destroy(&f);
}

static void
test_failure_long_message_is_kept_whole(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    zt_failure_t *f = zt_failure_new(ZT_ERROR, "%s!", big);
    assert_int_equal(strlen(zt_failure_message(f)), sizeof big);
    assert_int_equal(zt_failure_message(f)[sizeof big - 1], '!');
    zt_failure_destroy(&f);
}

static void
test_failure_destroy_accepts_null(void **state)
{
    (void)state;
    zt_failure_destroy(NULL);
    zt_failure_t *f = NULL;
    zt_failure_destroy(&f);
    assert_null(f);
}

static void
test_failure_long_cause_chain_destroys_without_recursion(void **state)
{
    (void)state;
    zt_failure_t *f = zt_failure_new(ZT_ERROR, "0");
    for (int i = 1; i < 100000; i++) {
        zt_failure_t *outer = zt_failure_new(ZT_ERROR, "%d", i);
        zt_failure_set_cause(outer, &f);
        f = outer;
    }
    int depth = 0;
    for (const zt_failure_t *c = f; c; c = zt_failure_cause(c))
        depth++;
    assert_int_equal(depth, 100000);
    zt_failure_destroy(&f);
}

static void
test_result_trap_matches_subtype_and_releases_failure(void **state)
{
    (void)state;
    zt_result_t r = zt_err(zt_failure_new(&syntax_error, "bad"));
    assert_null(zt_result_trap(&r, ZT_TIMEOUT_ERROR));
    assert_true(zt_is_err(r));
    assert_ptr_equal(zt_result_trap(&r, ZT_TIMEOUT_ERROR, &parse_error), &parse_error);
    assert_false(zt_is_err(r));
    assert_null(zt_result_ptr(r));
    /* A value is never trapped. */
    r = zt_ok_int(4);
    assert_null(zt_result_trap(&r, ZT_ERROR));
    assert_int_equal(zt_result_int(r), 4);
}

static void
s_count_free(void *value)
{
    int *frees = value;
    (*frees)++;
}

static void
test_result_release_frees_value_once_and_is_idempotent(void **state)
{
    (void)state;
    int frees = 0;
    zt_result_t r = zt_ok(&frees, s_count_free);
    assert_ptr_equal(zt_result_ptr(r), &frees);
    zt_result_release(&r);
    zt_result_release(&r);
    assert_int_equal(frees, 1);
    assert_null(zt_result_ptr(r));

    zt_result_t e = zt_err(zt_failure_new(ZT_ERROR, "gone"));
    zt_result_release(&e); /* ASan: the Failure is freed */
    assert_false(zt_is_err(e));
}

static void
test_result_take_moves_value_out(void **state)
{
    (void)state;
    int frees = 0;
    zt_result_t r = zt_ok(&frees, s_count_free);
    void *value = zt_result_take(&r);
    assert_ptr_equal(value, &frees);
    zt_result_release(&r);
    assert_int_equal(frees, 0); /* the caller owns it now */
    zt_result_t e = zt_err(zt_failure_new(ZT_ERROR, "kept"));
    assert_null(zt_result_take(&e));
    assert_true(zt_is_err(e));
    zt_result_release(&e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_new_records_type_message_and_origin),
        cmocka_unit_test(test_failure_new_null_type_is_error_and_null_format_is_type_name),
        cmocka_unit_test(test_failure_builtin_types_have_names_codes_and_refine_error),
        cmocka_unit_test(test_failure_code_is_inherited_from_nearest_ancestor),
        cmocka_unit_test(test_failure_check_walks_parent_chain_and_returns_first_match),
        cmocka_unit_test(test_failure_type_is_does_not_match_children_or_siblings),
        cmocka_unit_test(test_failure_from_code_is_system_error_with_strerror_message),
        cmocka_unit_test(test_failure_from_code_without_format_is_strerror_alone),
        cmocka_unit_test(test_failure_from_code_non_error_code_becomes_esys),
        cmocka_unit_test(test_failure_set_cause_owns_and_replaces_the_cause),
        cmocka_unit_test(test_failure_detail_is_settable),
        cmocka_unit_test(test_failure_dup_is_deep_and_independent),
        cmocka_unit_test(test_failure_format_writes_type_and_message_like_snprintf),
        cmocka_unit_test(test_failure_print_shows_origin_and_every_cause),
        cmocka_unit_test(test_failure_long_message_is_kept_whole),
        cmocka_unit_test(test_failure_destroy_accepts_null),
        cmocka_unit_test(test_failure_long_cause_chain_destroys_without_recursion),
        cmocka_unit_test(test_result_trap_matches_subtype_and_releases_failure),
        cmocka_unit_test(test_result_release_frees_value_once_and_is_idempotent),
        cmocka_unit_test(test_result_take_moves_value_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
