/*  tests/base/test_log.c - the log hook: routing, thresholds, truncation, and logging from many
 * threads  */
#include <ztwist.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct {
    pthread_mutex_t lock; /* guards the fields below: the handler may run on any thread */
    int count;            /* messages received */
    zt_log_level_t level; /* level of the last message */
    char file[256];       /* origin of the last message */
    char func[64];        /* function of the last message */
    int line;             /* line of the last message */
    char message[2048];   /* text of the last message */
} capture_t;

static void
s_capture(zt_log_level_t level, const char *file, int line, const char *func, const char *message,
          void *arg)
{
    capture_t *cap = arg;
    pthread_mutex_lock(&cap->lock);
    cap->count++;
    cap->level = level;
    cap->line = line;
    snprintf(cap->file, sizeof cap->file, "%s", file);
    snprintf(cap->func, sizeof cap->func, "%s", func);
    snprintf(cap->message, sizeof cap->message, "%s", message);
    pthread_mutex_unlock(&cap->lock);
}

static int
setup(void **state)
{
    capture_t *cap = calloc(1, sizeof *cap);
    pthread_mutex_init(&cap->lock, NULL);
    zt_log_set_handler(s_capture, cap);
    zt_log_set_level(ZT_LOG_DEBUG);
    *state = cap;
    return 0;
}

static int
teardown(void **state)
{
    capture_t *cap = *state;
    zt_log_set_handler(NULL, NULL);
    zt_log_set_level(ZT_LOG_INFO);
    pthread_mutex_destroy(&cap->lock);
    free(cap);
    return 0;
}

static void
test_log_handler_receives_message_with_origin(void **state)
{
    capture_t *cap = *state;
    int line = __LINE__ + 1;
    ZT_LOG_WARNING("disk %s is %d%% full", "sda", 91);
    assert_int_equal(cap->count, 1);
    assert_int_equal(cap->level, ZT_LOG_WARNING);
    assert_string_equal(cap->message, "disk sda is 91% full");
    assert_non_null(strstr(cap->file, "test_log.c"));
    assert_string_equal(cap->func, "test_log_handler_receives_message_with_origin");
    assert_int_equal(cap->line, line);
}

static void
test_log_below_threshold_is_dropped(void **state)
{
    capture_t *cap = *state;
    zt_log_set_level(ZT_LOG_ERROR);
    assert_int_equal(zt_log_level(), ZT_LOG_ERROR);
    ZT_LOG_DEBUG("hidden");
    ZT_LOG_INFO("hidden");
    ZT_LOG_WARNING("hidden");
    assert_int_equal(cap->count, 0);
    ZT_LOG_ERROR("shown");
    assert_int_equal(cap->count, 1);
    zt_log_set_level(ZT_LOG_NONE);
    ZT_LOG_ERROR("hidden");
    assert_int_equal(cap->count, 1);
}

static void
test_log_long_message_is_cut_with_ellipsis(void **state)
{
    capture_t *cap = *state;
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ZT_LOG_INFO("%s", big);
    assert_int_equal(cap->count, 1);
    size_t len = strlen(cap->message);
    assert_int_equal(len, 1023);
    assert_string_equal(cap->message + len - 3, "...");
}

static void
test_log_default_handler_writes_one_line_to_stderr(void **state)
{
    (void)state;
    char path[] = "/tmp/ztwist-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    zt_log_set_handler(NULL, NULL);
    ZT_LOG_ERROR("the %s went away", "peer");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char text[512] = {0};
    assert_true(pread(fd, text, sizeof text - 1, 0) > 0);
    close(fd);
    unlink(path);
    assert_non_null(strstr(text, "error: the peer went away"));
    assert_non_null(strstr(text, "test_log.c"));
    assert_int_equal(strchr(text, '\n') - text + 1, (long)strlen(text));
}

enum { THREADS = 4, PER_THREAD = 1000 };

static void *
s_log_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++)
        ZT_LOG_INFO("message %d", i);
    return NULL;
}

static void
test_log_from_many_threads_delivers_every_message(void **state)
{
    capture_t *cap = *state;
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, s_log_many, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(cap->count, THREADS * PER_THREAD);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_handler_receives_message_with_origin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_below_threshold_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_long_message_is_cut_with_ellipsis, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_default_handler_writes_one_line_to_stderr, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_from_many_threads_delivers_every_message, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
