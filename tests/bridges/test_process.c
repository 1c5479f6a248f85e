/*  tests/bridges/test_process.c - child processes: output and exit codes, stdin, environment and
 *  working directory, signals, a child that closes its pipes and runs on, no zombie ever, the
 *  error paths
 *
 *  The children are /bin/sh, /bin/cat, /bin/true, /bin/false and /bin/sleep. The reactor is
 * driven with zt_reactor_iterate until process_ended has run (bounded by a number of passes); a
 * long-running child is ended by the test with a signal, never waited out. Each test ends by
 * checking that this process has no child left to reap (waitpid(-1, WNOHANG) finds none).  */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ztwist/process.h>
#include <ztwist/reactor.h>

#include "bridges/tcp_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

typedef struct fixture {
    zt_reactor_t *reactor;      /* the reactor under test */
    zt_process_t *process;      /* the child under test, or NULL */
    char out[4096];             /* what it wrote to stdout */
    size_t out_len;             /* how much */
    char err[4096];             /* what it wrote to stderr */
    size_t err_len;             /* how much */
    int ended;                  /* process_ended calls */
    bool ended_flag;            /* ended > 0 */
    zt_process_status_t status; /* what it got */
    bool out_lost;              /* child_connection_lost(1) ran */
    bool err_lost;              /* child_connection_lost(2) ran */
    bool both_lost;             /* both did */
    bool ended_before_lost;     /* process_ended ran before the pipes were reported closed */
} fixture_t;

static void
on_out(zt_process_t *p, const char *data, size_t len, void *arg)
{
    (void)p;
    fixture_t *fx = arg;
    assert_true(fx->out_len + len < sizeof fx->out);
    memcpy(fx->out + fx->out_len, data, len);
    fx->out_len += len;
    fx->out[fx->out_len] = '\0';
}

static void
on_err(zt_process_t *p, const char *data, size_t len, void *arg)
{
    (void)p;
    fixture_t *fx = arg;
    assert_true(fx->err_len + len < sizeof fx->err);
    memcpy(fx->err + fx->err_len, data, len);
    fx->err_len += len;
    fx->err[fx->err_len] = '\0';
}

static void
on_lost(zt_process_t *p, int fd, void *arg)
{
    (void)p;
    fixture_t *fx = arg;
    if (fd == 1)
        fx->out_lost = true;
    if (fd == 2)
        fx->err_lost = true;
    fx->both_lost = fx->out_lost && fx->err_lost;
    if (fx->ended)
        fx->ended_before_lost = true;
}

static void
on_ended(zt_process_t *p, const zt_process_status_t *status, void *arg)
{
    fixture_t *fx = arg;
    assert_false(zt_process_is_running(p));
    fx->ended++;
    fx->ended_flag = true;
    fx->status = *status;
}

static const zt_process_protocol_vtable_t s_proto = {.out_received = on_out,
                                                     .err_received = on_err,
                                                     .child_connection_lost = on_lost,
                                                     .process_ended = on_ended};

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->reactor = zt_reactor_new();
    assert_non_null(fx->reactor);
    *state = fx;
    return 0;
}

static void
assert_no_child_left(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    zt_process_destroy(&fx->process);
    zt_reactor_destroy(&fx->reactor);
    free(fx);
    assert_no_child_left();
    return 0;
}

static void
spawn(fixture_t *fx, const char *exe, const char *const argv[], const char *const env[],
      const char *cwd)
{
    assert_int_equal(zt_spawn_process(fx->reactor, exe, argv, env, cwd, &s_proto, fx, &fx->process),
                     0);
    assert_true(zt_process_pid(fx->process) > 0);
}

static void
run_to_end(fixture_t *fx)
{
    assert_true(tcp_util_run_until(fx->reactor, &fx->ended_flag));
    tcp_util_spin(fx->reactor, 3);
    assert_int_equal(fx->ended, 1); /* exactly once */
    assert_no_child_left();
}

static void
test_process_true_and_false_report_exit_codes(void **state)
{
    fixture_t *fx = *state;
    spawn(fx, "/bin/true", (const char *const[]){"true", NULL}, NULL, NULL);
    run_to_end(fx);
    assert_true(fx->status.exited);
    assert_int_equal(fx->status.exit_code, 0);
    assert_int_equal(fx->status.signal, 0);
    zt_process_destroy(&fx->process);
    fx->ended = 0;
    fx->ended_flag = false;
    spawn(fx, "/bin/false", (const char *const[]){"false", NULL}, NULL, NULL);
    run_to_end(fx);
    assert_true(fx->status.exited);
    assert_int_equal(fx->status.exit_code, 1);
}

static void
test_process_stdout_and_stderr_are_separate(void **state)
{
    fixture_t *fx = *state;
    spawn(fx, "/bin/sh",
          (const char *const[]){"sh", "-c", "echo to-out; echo to-err >&2; exit 3", NULL}, NULL,
          NULL);
    run_to_end(fx);
    assert_string_equal(fx->out, "to-out\n");
    assert_string_equal(fx->err, "to-err\n");
    assert_true(fx->status.exited);
    assert_int_equal(fx->status.exit_code, 3);
}

static void
test_process_cat_echoes_stdin_until_closed(void **state)
{
    fixture_t *fx = *state;
    spawn(fx, "/bin/cat", (const char *const[]){"cat", NULL}, NULL, NULL);
    assert_int_equal(zt_process_write(fx->process, "hello ", 6), 0);
    assert_int_equal(zt_process_write(fx->process, "cat", 3), 0);
    assert_int_equal(zt_process_close_stdin(fx->process), 0);
    assert_int_equal(zt_process_close_stdin(fx->process), ZT_ESTATE);
    assert_int_equal(zt_process_write(fx->process, "late", 4), ZT_ESTATE);
    run_to_end(fx);
    assert_string_equal(fx->out, "hello cat");
    assert_int_equal(fx->status.exit_code, 0);
}

static void
test_process_large_stdin_is_written_without_blocking(void **state)
{
    fixture_t *fx = *state;
    /* More than a pipe holds: the rest waits in the queue while the reactor runs. wc counts. */
    spawn(fx, "/bin/sh", (const char *const[]){"sh", "-c", "wc -c", NULL}, NULL, NULL);
    static char big[1 << 20];
    memset(big, 'z', sizeof big);
    assert_int_equal(zt_process_write(fx->process, big, sizeof big), 0);
    assert_int_equal(zt_process_close_stdin(fx->process), 0);
    run_to_end(fx);
    assert_int_equal(atoi(fx->out), (int)sizeof big);
}

static void
test_process_env_and_cwd_are_applied(void **state)
{
    fixture_t *fx = *state;
    char dir[] = "/tmp/zt-proc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    spawn(fx, "/bin/sh", (const char *const[]){"sh", "-c", "echo \"$ZT_VAR\"; pwd", NULL},
          (const char *const[]){"ZT_VAR=hi there", "PATH=/bin:/usr/bin", NULL}, dir);
    run_to_end(fx);
    char want[128];
    snprintf(want, sizeof want, "hi there\n%s\n", dir);
    assert_string_equal(fx->out, want);
    rmdir(dir);
}

static void
test_process_empty_env_is_empty(void **state)
{
    fixture_t *fx = *state;
    spawn(fx, "/bin/sh", (const char *const[]){"sh", "-c", "echo \"[${HOME-unset}]\"", NULL},
          (const char *const[]){NULL}, NULL);
    run_to_end(fx);
    assert_string_equal(fx->out, "[unset]\n");
}

static void
test_process_signal_ends_child_with_that_signal(void **state)
{
    fixture_t *fx = *state;
    spawn(fx, "/bin/cat", (const char *const[]){"cat", NULL}, NULL, NULL);
    tcp_util_spin(fx->reactor, 3);
    assert_true(zt_process_is_running(fx->process));
    assert_int_equal(fx->ended, 0);
    assert_int_equal(zt_process_signal(fx->process, SIGTERM), 0);
    run_to_end(fx);
    assert_false(fx->status.exited);
    assert_int_equal(fx->status.signal, SIGTERM);
    assert_int_equal(fx->status.exit_code, -1);
    assert_int_equal(zt_process_signal(fx->process, SIGTERM), ZT_ESTATE);
    assert_int_equal(zt_process_kill(fx->process), ZT_ESTATE);
}

static void
test_process_kill_ends_child(void **state)
{
    fixture_t *fx = *state;
    spawn(fx, "/bin/sleep", (const char *const[]){"sleep", "60", NULL}, NULL, NULL);
    assert_int_equal(zt_process_signal(fx->process, 0), ZT_EINVAL);
    assert_int_equal(zt_process_kill(fx->process), 0);
    run_to_end(fx);
    assert_int_equal(fx->status.signal, SIGKILL);
}

static void
test_process_closing_pipes_then_running_is_reported_at_exit(void **state)
{
    fixture_t *fx = *state;
    spawn(fx, "/bin/sh",
          (const char *const[]){"sh", "-c", "exec 0<&- 1>&- 2>&-; exec /bin/sleep 60", NULL}, NULL,
          NULL);
    assert_true(tcp_util_run_until(fx->reactor, &fx->both_lost));
    tcp_util_spin(fx->reactor, 3);
    assert_int_equal(fx->ended, 0); /* the pipes are gone, the child is not */
    assert_true(zt_process_is_running(fx->process));
    /* Its stdin is closed: writes are dropped without SIGPIPE killing us. */
    zt_process_write(fx->process, "x", 1);
    assert_int_equal(zt_process_signal(fx->process, SIGTERM), 0);
    run_to_end(fx);
    assert_int_equal(fx->status.signal, SIGTERM);
    assert_false(fx->ended_before_lost);
}

static void
test_process_destroy_while_running_leaves_no_zombie(void **state)
{
    fixture_t *fx = *state;
    spawn(fx, "/bin/cat", (const char *const[]){"cat", NULL}, NULL, NULL);
    pid_t pid = zt_process_pid(fx->process);
    zt_process_destroy(&fx->process);
    assert_null(fx->process);
    assert_int_equal(fx->ended, 0); /* destroy does not call back */
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_no_child_left();
}

static void
test_process_missing_program_or_directory_fails_at_once(void **state)
{
    fixture_t *fx = *state;
    zt_process_t *p = NULL;
    assert_int_equal(zt_spawn_process(fx->reactor, "/nonexistent/zt-program",
                                      (const char *const[]){"x", NULL}, NULL, NULL, &s_proto, fx,
                                      &p),
                     ZT_ENOTFOUND);
    assert_int_equal(zt_spawn_process(fx->reactor, "/bin/true", (const char *const[]){"true", NULL},
                                      NULL, "/nonexistent-zt-dir", &s_proto, fx, &p),
                     ZT_ENOTFOUND);
    assert_int_equal(zt_spawn_process(fx->reactor, "/etc/passwd",
                                      (const char *const[]){"passwd", NULL}, NULL, NULL, &s_proto,
                                      fx, &p),
                     ZT_EACCES);
    assert_null(p);
    tcp_util_spin(fx->reactor, 3);
    assert_int_equal(fx->ended, 0); /* a call that fails never calls back */
    assert_no_child_left();
}

static void
test_process_malformed_arguments_are_refused(void **state)
{
    fixture_t *fx = *state;
    zt_process_t *p = NULL;
    assert_int_equal(zt_spawn_process(fx->reactor, "/bin/true", NULL, NULL, NULL, &s_proto, fx, &p),
                     ZT_EINVAL);
    assert_int_equal(zt_spawn_process(fx->reactor, "/bin/true", (const char *const[]){NULL}, NULL,
                                      NULL, &s_proto, fx, &p),
                     ZT_EINVAL);
    assert_int_equal(zt_spawn_process(fx->reactor, NULL, (const char *const[]){"x", NULL}, NULL,
                                      NULL, &s_proto, fx, &p),
                     ZT_EINVAL);
    assert_int_equal(zt_spawn_process(fx->reactor, "/bin/true", (const char *const[]){"x", NULL},
                                      (const char *const[]){"NOEQUALS", NULL}, NULL, &s_proto, fx,
                                      &p),
                     ZT_EINVAL);
    assert_int_equal(zt_spawn_process(fx->reactor, "/bin/true", (const char *const[]){"x", NULL},
                                      NULL, NULL, NULL, fx, &p),
                     ZT_EINVAL);
    assert_null(p);
    assert_no_child_left();
}

/* bridges/process/process.c's switch for the SIGCHLD path (this suite links the static library). */
void zt__process_set_pidfd(bool on);

static void
test_process_sigchld_path_reaps_and_reports(void **state)
{
    fixture_t *fx = *state;
    zt__process_set_pidfd(false);
    spawn(fx, "/bin/sh", (const char *const[]){"sh", "-c", "echo via-sigchld; exit 7", NULL}, NULL,
          NULL);
    zt_process_t *second = NULL;
    fixture_t fx2 = {.reactor = fx->reactor};
    assert_int_equal(zt_spawn_process(fx->reactor, "/bin/cat", (const char *const[]){"cat", NULL},
                                      NULL, NULL, &s_proto, &fx2, &second),
                     0);
    zt__process_set_pidfd(true);
    assert_true(tcp_util_run_until(fx->reactor, &fx->ended_flag));
    assert_string_equal(fx->out, "via-sigchld\n");
    assert_int_equal(fx->status.exit_code, 7);
    assert_int_equal(fx2.ended, 0); /* the other child's SIGCHLD callback did not take this one */
    assert_int_equal(zt_process_kill(second), 0);
    assert_true(tcp_util_run_until(fx->reactor, &fx2.ended_flag));
    assert_int_equal(fx2.status.signal, SIGKILL);
    assert_int_equal(fx->ended, 1);
    zt_process_destroy(&second);
    assert_no_child_left();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_process_true_and_false_report_exit_codes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_process_stdout_and_stderr_are_separate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_process_cat_echoes_stdin_until_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_process_large_stdin_is_written_without_blocking, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_process_env_and_cwd_are_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_empty_env_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_signal_ends_child_with_that_signal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_process_kill_ends_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_closing_pipes_then_running_is_reported_at_exit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_destroy_while_running_leaves_no_zombie, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_process_missing_program_or_directory_fails_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_malformed_arguments_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_process_sigchld_path_reaps_and_reports, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("process", tests, NULL, NULL);
}
