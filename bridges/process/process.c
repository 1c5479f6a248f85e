/*  bridges/process/process.c - child processes on the reactor: spawn, pipes, reaping
 *
 *  Design notes.
 *
 *  Spawning is fork + execve. Everything the child does between the two is async-signal-safe
 * (the parent may have threads): reset every signal to its default disposition and unblock all
 * signals, dup2 the pipes onto 0, 1 and 2, chdir, execve. An exec that fails writes its errno to
 * a close-on-exec error pipe and exits with 127; the parent reads that pipe until end of file
 * (which an exec that succeeds gives at once), so a program or directory that does not exist is
 * a return code of zt_spawn_process, and that child is reaped before it returns. All signals are
 * blocked in the parent across fork, so that no ztwist signal handler runs in the child before
 * its dispositions are reset.
 *
 *  The parent's ends of the pipes are non-blocking and close-on-exec; stdout and stderr are
 * readers of the reactor, stdin a writer while bytes are queued. A write to a pipe whose reader
 * has gone raises SIGPIPE: each write blocks SIGPIPE in the reactor thread and consumes a SIGPIPE
 * it raised (sigtimedwait) before unblocking, so the process's disposition is never touched.
 *
 *  Reaping: a pidfd (pidfd_open) becomes readable when the child exits; without one, a SIGCHLD
 * callback of <ztwist/signals.h> tries waitpid(pid, WNOHANG) for this child only, and a first try
 * is queued right after the spawn, in case the child exited before the callback existed. Until
 * waitpid has returned the child, its pid cannot be reused, so signalling it is safe. At the reap
 * the output pipes are drained (what the child wrote before exiting is in them), closed, and
 * process_ended runs once (s_reap sets `ended` first).
 *
 *  Lifetime: the caller owns the process. Destroy kills and reaps a child that still runs (SIGKILL
 * cannot be ignored, so the wait is short), so no zombie outlives the object.
 *
 *  Threads: the reactor thread only.  */
#define _DEFAULT_SOURCE /* syscall() for pidfd_open, which older glibc does not wrap */

#include <ztwist/process.h>
#include <ztwist/signals.h>

#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PROC_READ_SIZE 65536 /* bytes read per readable event */
#define PROC_SIG_MAX 65      /* signals 1..64 are reset in the child */

struct zt_process {
    zt_reactor_t *reactor;                      /* Borrowed: the reactor it runs on */
    const zt_process_protocol_vtable_t *vtable; /* Borrowed: the protocol */
    void *arg;                                  /* Borrowed: its arg */
    pid_t pid;                                  /* the child */
    int in_fd;                                  /* Owned: stdin's write end, or -1 */
    int out_fd;                                 /* Owned: stdout's read end, or -1 */
    int err_fd;                                 /* Owned: stderr's read end, or -1 */
    int pidfd;                                  /* Owned: the pidfd, or -1 */
    zt_signal_id_t sigchld;                     /* the SIGCHLD callback, or 0 */
    zt_delayed_call_t *first_try;               /* Owned handle: the first waitpid, or NULL */
    bool ended;                                 /* reaped; process_ended has run or runs now */
    bool stdin_closing;                         /* close_stdin: close once the queue drains */
    bool stdin_closed;                          /* no more writes */
    bool writing;                               /* in_fd is registered as a writer */
    int in_callback;                            /* depth of our callbacks (destroy asserts) */
    char *buf;                                  /* Owned: bytes queued for stdin */
    size_t head;                                /* first unwritten byte */
    size_t end;                                 /* one past the last */
    size_t cap;                                 /* allocated */
};

/* --- helpers ------------------------------------------------------------------------------ */

static int
s_code(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return ZT_ENOTFOUND;
    case EACCES:
    case EPERM:
    case ENOEXEC:
        return ZT_EACCES;
    case ENOMEM:
    case E2BIG:
        return ZT_ENOMEM;
    default:
        return ZT_ESYS;
    }
}

static int
s_cloexec_nonblock(int fd, bool nonblock)
{
    int fdfl = fcntl(fd, F_GETFD);
    int fl = fcntl(fd, F_GETFL);
    if (fdfl < 0 || fl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0 ||
        (nonblock && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -1;
    return 0;
}

static void
s_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* write() without SIGPIPE reaching the process: block it in this thread, and consume one the
 * write raised. Returns write's result, errno kept. */
static ssize_t
s_write_quiet(int fd, const void *data, size_t len)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(fd, data, len);
    int err = errno;
    if (n < 0 && err == EPIPE) {
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) && !sigismember(&old, SIGPIPE)) {
            struct timespec zero = {0, 0};
            sigtimedwait(&pipe_set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return n;
}

/* --- the child ---------------------------------------------------------------------------- */

/* In the child, after fork: only async-signal-safe calls. Never returns. */
static void
s_child(const int fds[3], int err_fd, const char *exe, char *const argv[], char *const envp[],
        const char *cwd)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < PROC_SIG_MAX; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int err = 0;
    for (int i = 0; i < 3 && !err; i++)
        if (dup2(fds[i], i) < 0)
            err = errno;
    if (!err && cwd && chdir(cwd) != 0)
        err = errno;
    if (!err) {
        execve(exe, argv, envp);
        err = errno;
    }
    ssize_t n = write(err_fd, &err, sizeof err);
    (void)n;
    _exit(127);
}

/* Fork and exec; on success *pid_p is the child. The child's ends of the pipes are the callers'
 * to close. Returns 0 or a ZT_E* code (the child, if any, reaped). */
static int
s_fork_exec(const int child_fds[3], const char *exe, char *const argv[], char *const envp[],
            const char *cwd, pid_t *pid_p)
{
    int errpipe[2];
    if (pipe(errpipe) != 0)
        return s_code(errno);
    if (s_cloexec_nonblock(errpipe[0], false) != 0 || s_cloexec_nonblock(errpipe[1], false) != 0) {
        close(errpipe[0]);
        close(errpipe[1]);
        return ZT_ESYS;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        s_child(child_fds, errpipe[1], exe, argv, envp, cwd);
    int fork_err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(errpipe[1]);
    if (pid < 0) {
        close(errpipe[0]);
        ZT_LOG_ERROR("cannot fork to run %s: %s", exe, strerror(fork_err));
        return s_code(fork_err);
    }
    int child_err = 0;
    ssize_t n;
    do
        n = read(errpipe[0], &child_err, sizeof child_err);
    while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof child_err) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return s_code(child_err);
    }
    *pid_p = pid;
    return 0;
}

/* --- reading, writing, reaping ------------------------------------------------------------ */

static void s_reap(zt_process_t *self, int status);

/* Read what is there from an output pipe; at end of file close it. Returns false at EOF. */
static bool
s_read_once(zt_process_t *self, int *fd)
{
    char buf[PROC_READ_SIZE];
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n > 0) {
        bool out = fd == &self->out_fd;
        void (*cb)(zt_process_t *, const char *, size_t, void *) =
            out ? self->vtable->out_received : self->vtable->err_received;
        if (cb) {
            self->in_callback++;
            cb(self, buf, (size_t)n, self->arg);
            self->in_callback--;
        }
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return false;
    int which = fd == &self->out_fd ? 1 : 2;
    zt_reactor_remove_reader(self->reactor, *fd);
    s_close(fd);
    if (self->vtable->child_connection_lost) {
        self->in_callback++;
        self->vtable->child_connection_lost(self, which, self->arg);
        self->in_callback--;
    }
    return false;
}

static void
s_on_output(zt_reactor_t *r, int fd, void *arg)
{
    (void)r;
    zt_process_t *self = arg;
    int *slot = fd == self->out_fd ? &self->out_fd : &self->err_fd;
    if (*slot == fd)
        s_read_once(self, slot);
}

static void
s_stop_writing(zt_process_t *self)
{
    if (self->writing)
        zt_reactor_remove_writer(self->reactor, self->in_fd);
    self->writing = false;
}

static void
s_close_stdin_now(zt_process_t *self)
{
    s_stop_writing(self);
    s_close(&self->in_fd);
    self->stdin_closed = true;
    self->head = self->end = 0;
}

static void s_on_writable(zt_reactor_t *r, int fd, void *arg);

/* Write what is queued; register as a writer when the pipe is full. */
static void
s_flush(zt_process_t *self)
{
    while (self->in_fd >= 0 && self->head < self->end) {
        ssize_t n = s_write_quiet(self->in_fd, self->buf + self->head, self->end - self->head);
        if (n > 0) {
            self->head += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!self->writing &&
                zt_reactor_add_writer(self->reactor, self->in_fd, s_on_writable, self) == 0)
                self->writing = true;
            return;
        }
        s_close_stdin_now(self); /* EPIPE: the child closed its stdin; drop what is queued */
        return;
    }
    self->head = self->end = 0;
    s_stop_writing(self);
    if (self->stdin_closing)
        s_close_stdin_now(self);
}

static void
s_on_writable(zt_reactor_t *r, int fd, void *arg)
{
    (void)r;
    (void)fd;
    s_flush(arg);
}

static void
s_try_reap(zt_process_t *self)
{
    if (self->ended)
        return;
    int status = 0;
    pid_t got;
    do
        got = waitpid(self->pid, &status, WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == self->pid)
        s_reap(self, status);
    else if (got < 0)
        ZT_LOG_ERROR("waitpid(%ld) failed: %s", (long)self->pid, strerror(errno));
}

static void
s_on_pidfd(zt_reactor_t *r, int fd, void *arg)
{
    (void)r;
    (void)fd;
    s_try_reap(arg);
}

static void
s_on_sigchld(zt_reactor_t *r, int signum, void *arg)
{
    (void)r;
    (void)signum;
    s_try_reap(arg);
}

static void
s_first_try(void *arg)
{
    zt_process_t *self = arg;
    zt_delayed_call_release(&self->first_try);
    s_try_reap(self);
}

/* Stop watching the child: the pidfd or the SIGCHLD callback, and the first try. */
static void
s_unwatch(zt_process_t *self)
{
    if (self->pidfd >= 0) {
        zt_reactor_remove_reader(self->reactor, self->pidfd);
        s_close(&self->pidfd);
    }
    if (self->sigchld) {
        zt_signals_remove(self->reactor, self->sigchld);
        self->sigchld = 0;
    }
    if (self->first_try) {
        zt_delayed_call_cancel(self->first_try);
        zt_delayed_call_release(&self->first_try);
    }
}

static void
s_reap(zt_process_t *self, int status)
{
    self->ended = true;
    s_unwatch(self);
    /* What the child wrote before exiting is in the pipes: deliver it first. */
    while (self->out_fd >= 0 && s_read_once(self, &self->out_fd))
        ;
    while (self->err_fd >= 0 && s_read_once(self, &self->err_fd))
        ;
    for (int *fd = &self->out_fd; fd; fd = fd == &self->out_fd ? &self->err_fd : NULL) {
        if (*fd >= 0) {
            zt_reactor_remove_reader(self->reactor, *fd);
            s_close(fd);
        }
    }
    s_close_stdin_now(self);
    zt_process_status_t st = {.exited = WIFEXITED(status) != 0,
                              .exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                              .signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0};
    if (self->vtable->process_ended) {
        self->in_callback++;
        self->vtable->process_ended(self, &st, self->arg);
        self->in_callback--;
    }
}

/* Whether to try pidfd_open: tests turn it off to exercise the SIGCHLD path on kernels that have
 * it (zt__process_set_pidfd, for the test that links the static library). */
static bool s_use_pidfd = true;

void zt__process_set_pidfd(bool on);

void
zt__process_set_pidfd(bool on)
{
    s_use_pidfd = on;
}

/* Watch the child: a pidfd, or a SIGCHLD callback and a first waitpid on the next pass. */
static int
s_watch(zt_process_t *self)
{
#if defined(SYS_pidfd_open)
    self->pidfd = s_use_pidfd ? (int)syscall(SYS_pidfd_open, self->pid, 0) : -1;
    if (self->pidfd >= 0) {
        if (s_cloexec_nonblock(self->pidfd, true) == 0 &&
            zt_reactor_add_reader(self->reactor, self->pidfd, s_on_pidfd, self) == 0)
            return 0;
        s_close(&self->pidfd);
    }
#endif
    int rc = zt_signals_add(self->reactor, SIGCHLD, s_on_sigchld, self, &self->sigchld);
    if (rc == 0)
        rc = zt_reactor_call_later(self->reactor, 0, s_first_try, self, &self->first_try);
    return rc;
}

/* --- the calls ---------------------------------------------------------------------------- */

static int
s_check_args(const char *exe, const char *const argv[], const char *const env[],
             const zt_process_protocol_vtable_t *vtable, zt_process_t **process_p)
{
    if (!exe || !*exe || !argv || !argv[0] || !vtable || !process_p)
        return ZT_EINVAL;
    for (size_t i = 0; env && env[i]; i++)
        if (!strchr(env[i], '=') || env[i][0] == '=')
            return ZT_EINVAL;
    return 0;
}

/* The pipes: parent ends non-blocking and close-on-exec; child ends close-on-exec (dup2 clears
 * it on 0, 1, 2). pipes[i][0] reads. Returns 0 or ZT_ESYS (all closed). */
static int
s_make_pipes(int pipes[3][2])
{
    for (int i = 0; i < 3; i++)
        pipes[i][0] = pipes[i][1] = -1;
    for (int i = 0; i < 3; i++) {
        if (pipe(pipes[i]) != 0)
            goto failed;
        int parent_end = i == 0 ? 1 : 0;
        if (s_cloexec_nonblock(pipes[i][parent_end], true) != 0 ||
            s_cloexec_nonblock(pipes[i][1 - parent_end], false) != 0)
            goto failed;
    }
    return 0;
failed:
    ZT_LOG_ERROR("cannot make a child's pipes: %s", strerror(errno));
    for (int i = 0; i < 3; i++) {
        s_close(&pipes[i][0]);
        s_close(&pipes[i][1]);
    }
    return ZT_ESYS;
}

int
zt_spawn_process(zt_reactor_t *reactor, const char *executable, const char *const argv[],
                 const char *const env[], const char *cwd,
                 const zt_process_protocol_vtable_t *vtable, void *arg, zt_process_t **process_p)
{
    int rc = s_check_args(executable, argv, env, vtable, process_p);
    if (rc != 0 || !reactor)
        return rc ? rc : ZT_EINVAL;
    zt_process_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZT_ENOMEM;
    *self = (zt_process_t){.reactor = reactor,
                           .vtable = vtable,
                           .arg = arg,
                           .in_fd = -1,
                           .out_fd = -1,
                           .err_fd = -1,
                           .pidfd = -1};
    int pipes[3][2];
    rc = s_make_pipes(pipes);
    if (rc != 0) {
        free(self);
        return rc;
    }
    const int child_fds[3] = {pipes[0][0], pipes[1][1], pipes[2][1]};
    rc = s_fork_exec(child_fds, executable, (char *const *)argv, env ? (char *const *)env : environ,
                     cwd, &self->pid);
    for (int i = 0; i < 3; i++)
        close(child_fds[i]);
    self->in_fd = pipes[0][1];
    self->out_fd = pipes[1][0];
    self->err_fd = pipes[2][0];
    if (rc == 0 && (zt_reactor_add_reader(reactor, self->out_fd, s_on_output, self) != 0 ||
                    zt_reactor_add_reader(reactor, self->err_fd, s_on_output, self) != 0 ||
                    s_watch(self) != 0))
        rc = ZT_ENOMEM;
    if (rc != 0) {
        if (self->pid > 0) {
            zt_process_destroy(&self);
            return rc;
        }
        s_close(&self->in_fd);
        s_close(&self->out_fd);
        s_close(&self->err_fd);
        free(self);
        return rc;
    }
    *process_p = self;
    return 0;
}

int
zt_process_write(zt_process_t *self, const void *data, size_t len)
{
    ZT_ASSERT(self && (data || len == 0));
    if (self->stdin_closed || self->stdin_closing)
        return ZT_ESTATE;
    if (len == 0)
        return 0;
    if (self->end + len > self->cap) {
        if (self->head > 0) {
            memmove(self->buf, self->buf + self->head, self->end - self->head);
            self->end -= self->head;
            self->head = 0;
        }
        size_t cap = self->cap ? self->cap : 4096;
        while (cap < self->end + len)
            cap *= 2;
        char *buf = realloc(self->buf, cap);
        if (!buf)
            return ZT_ENOMEM;
        self->buf = buf;
        self->cap = cap;
    }
    memcpy(self->buf + self->end, data, len);
    self->end += len;
    s_flush(self);
    return 0;
}

int
zt_process_close_stdin(zt_process_t *self)
{
    ZT_ASSERT(self);
    if (self->stdin_closed || self->stdin_closing)
        return ZT_ESTATE;
    self->stdin_closing = true;
    s_flush(self);
    return 0;
}

int
zt_process_signal(zt_process_t *self, int signum)
{
    ZT_ASSERT(self);
    if (signum <= 0 || signum >= PROC_SIG_MAX)
        return ZT_EINVAL;
    if (self->ended)
        return ZT_ESTATE;
    if (kill(self->pid, signum) != 0)
        return errno == EINVAL ? ZT_EINVAL : ZT_ESYS;
    return 0;
}

int
zt_process_kill(zt_process_t *self)
{
    return zt_process_signal(self, SIGKILL);
}

pid_t
zt_process_pid(const zt_process_t *self)
{
    ZT_ASSERT(self);
    return self->pid;
}

bool
zt_process_is_running(const zt_process_t *self)
{
    ZT_ASSERT(self);
    return !self->ended;
}

void
zt_process_destroy(zt_process_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_process_t *self = *self_p;
    ZT_ASSERT_MSG(self->in_callback == 0, "zt_process_destroy from one of the process's callbacks");
    s_unwatch(self);
    if (!self->ended && self->pid > 0) {
        kill(self->pid, SIGKILL);
        while (waitpid(self->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        self->ended = true;
    }
    s_close_stdin_now(self);
    if (self->out_fd >= 0)
        zt_reactor_remove_reader(self->reactor, self->out_fd);
    if (self->err_fd >= 0)
        zt_reactor_remove_reader(self->reactor, self->err_fd);
    s_close(&self->out_fd);
    s_close(&self->err_fd);
    free(self->buf);
    free(self);
    *self_p = NULL;
}
