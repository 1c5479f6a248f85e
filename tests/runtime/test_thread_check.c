/*  tests/runtime/test_thread_check.c - a reactor-only or Deferred call from the wrong thread aborts
 * in every build, naming the call and both threads
 *
 *  The check is never compiled out, so this suite proves it in the build it runs in (the default
 * build defines NDEBUG). cmocka cannot survive an abort, so each case runs its body in a forked
 * child, with the child's stderr on a pipe, and the parent checks how the child ended and what it
 * said. The child is single-threaded when it forks (cmocka runs no threads of its own).  */
#include <ztwist.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* How a forked child ended, and what it wrote to stderr. */
typedef struct {
    int status;     /* from waitpid */
    char err[4096]; /* the child's stderr, NUL-terminated (truncated) */
} child_t;

/* Run body(arg) in a forked child whose stderr is captured; the child exits 0 if body returns. */
static void
s_run_child(void (*body)(void *), void *arg, child_t *out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        body(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out->err + len, sizeof out->err - 1 - len)) > 0)
        len += (size_t)n;
    out->err[len] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &out->status, 0), pid);
}

/* The child aborted with "ztwist: <call> called from thread A, but ... (thread B) (<file>:..."
 * where A and B differ, and the file is named relative to the source root. */
static void
s_assert_thread_abort(const child_t *c, const char *call, const char *file)
{
    if (!(WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT))
        fail_msg("the child did not abort (status %#x); it said: %s", c->status, c->err);
    const char *line = strstr(c->err, "ztwist: ");
    assert_non_null(line);
    char name[64];
    unsigned long long caller = 0;
    unsigned long long owner = 0;
    assert_int_equal(sscanf(line, "ztwist: %63s called from thread %llu", name, &caller), 2);
    assert_string_equal(name, call);
    const char *own = strstr(line, "(thread ");
    assert_non_null(own);
    assert_int_equal(sscanf(own, "(thread %llu)", &owner), 1);
    assert_true(caller != 0 && owner != 0 && caller != owner);
    char where[128];
    snprintf(where, sizeof where, "(%s:", file);
    if (!strstr(line, where))
        fail_msg("the message does not name %s relative to the source root: %s", file, line);
}

/* Run fn(arg) on a new thread and wait for it. */
static void
s_on_other_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0)
        _exit(3);
    pthread_join(t, NULL);
}

static void *
s_fire(void *arg)
{
    zt_deferred_callback(arg, zt_ok_none());
    return NULL;
}

static void
s_fire_from_worker(void *arg)
{
    (void)arg;
    zt_deferred_t *d = zt_deferred_new();
    s_on_other_thread(s_fire, d);
}

static void
s_fire_on_owner(void *arg)
{
    (void)arg;
    zt_deferred_t *d = zt_deferred_new();
    if (zt_deferred_callback(d, zt_ok_none()) != 0)
        _exit(4);
    zt_deferred_unref(&d);
}

static void *
s_worker_owns_its_deferred(void *arg)
{
    s_fire_on_owner(arg);
    return NULL;
}

static void
s_fire_on_worker_owner(void *arg)
{
    s_on_other_thread(s_worker_owns_its_deferred, arg);
}

static void
s_nothing(void *arg)
{
    (void)arg;
}

static void *
s_call_later(void *arg)
{
    zt_reactor_call_later(arg, 1.0, s_nothing, NULL, NULL);
    return NULL;
}

static void
s_call_later_from_worker(void *arg)
{
    (void)arg;
    zt_reactor_t *r = zt_reactor_new();
    if (!r)
        _exit(5);
    s_on_other_thread(s_call_later, r);
}

static void
test_thread_check_deferred_fired_from_worker_aborts(void **state)
{
    (void)state;
    child_t c;
    s_run_child(s_fire_from_worker, NULL, &c);
    s_assert_thread_abort(&c, "zt_deferred_callback", "futures/deferred.c");
    assert_non_null(strstr(c.err, "a Deferred belongs to the thread that created it"));
}

static void
test_thread_check_deferred_on_its_thread_runs(void **state)
{
    (void)state;
    child_t c;
    s_run_child(s_fire_on_owner, NULL, &c);
    assert_true(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    s_run_child(s_fire_on_worker_owner, NULL, &c);
    assert_true(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    assert_null(strstr(c.err, "ztwist: "));
}

static void
test_thread_check_call_later_from_worker_aborts(void **state)
{
    (void)state;
    child_t c;
    s_run_child(s_call_later_from_worker, NULL, &c);
    s_assert_thread_abort(&c, "zt_reactor_call_later", "runtime/timers.c");
    assert_non_null(strstr(c.err, "this reactor is used only by its reactor thread"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_check_deferred_fired_from_worker_aborts),
        cmocka_unit_test(test_thread_check_deferred_on_its_thread_runs),
        cmocka_unit_test(test_thread_check_call_later_from_worker_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
