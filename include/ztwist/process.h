/*  ztwist/process.h - child processes: spawnProcess and ProcessProtocol
 *
 *  zt_spawn_process starts a program with its argv, environment and working directory, its
 * standard input, output and error connected to pipes that the reactor serves: what the child
 * writes reaches out_received / err_received, zt_process_write feeds its stdin, and process_ended
 * runs exactly once, with the exit code or the terminating signal, when the child has exited and
 * been reaped -- whether or not it closed its pipes first. Whatever the child wrote before it
 * exited is delivered before process_ended; output from a grandchild that still holds the pipes
 * afterwards is not.
 *
 *  No zombie: the child is reaped on the reactor as soon as it exits, through a pidfd where the
 * kernel has pidfd_open (Linux 5.3), else through a SIGCHLD callback (<ztwist/signals.h>).
 * Destroying a process whose child still runs kills it (SIGKILL) and reaps it before returning.
 *
 *  Destroy every process before its reactor: its pipes and its reaping are registered there, as a
 * TCP connection's socket is.
 *
 *  The parent's descriptors: every descriptor ztwist makes is close-on-exec, so a child inherits
 * only its three pipes; descriptors the program made itself without close-on-exec are inherited.
 *
 *  Threads: every function here is for the reactor thread only.  */
#ifndef ZTWIST_PROCESS_H
#define ZTWIST_PROCESS_H

#include <ztwist/common.h>
#include <ztwist/reactor.h>

#include <sys/types.h>

typedef struct zt_process zt_process_t;

/** How a child ended (Twisted's ProcessDone / ProcessTerminated). A public value type. */
typedef struct zt_process_status {
    bool exited;   /* it called exit: exit_code holds the code; otherwise a signal killed it */
    int exit_code; /* the exit code (0 to 255) when exited, else -1 */
    int signal;    /* the signal that killed it when !exited, else 0 */
} zt_process_status_t;

/** A process protocol's callbacks (Twisted's ProcessProtocol). Any may be NULL. The vtable is
 * borrowed and must outlive the process. Data is borrowed for the call. */
typedef struct zt_process_protocol_vtable {
    /** The child wrote to its standard output (outReceived). */
    void (*out_received)(zt_process_t *process, const char *data, size_t len, void *arg);
    /** The child wrote to its standard error (errReceived). */
    void (*err_received)(zt_process_t *process, const char *data, size_t len, void *arg);
    /** The child closed its standard output, or its standard error (fd 1 or 2), while it may
     * still run (childConnectionLost). */
    void (*child_connection_lost)(zt_process_t *process, int fd, void *arg);
    /** The child has exited and been reaped (processEnded). Runs once. Do not destroy the
     * process from here: schedule it. */
    void (*process_ended)(zt_process_t *process, const zt_process_status_t *status, void *arg);
} zt_process_protocol_vtable_t;

/**
 *  Start a child process (Twisted's reactor.spawnProcess).
 *  @param executable  the program's path (not searched in PATH: give "/bin/sh", not "sh");
 * required
 *  @param argv        the arguments, argv[0] first, NULL-terminated; required, argv[0] required
 *  @param env         "NAME=value" strings, NULL-terminated; NULL inherits this process's
 * environment; an empty list gives an empty one
 *  @param cwd         the child's working directory; NULL keeps this process's
 *  @param vtable      required; borrowed
 *  @param arg         passed to every callback; borrowed
 *  @param process_p   receives the process, which the caller owns (zt_process_destroy)
 *  @return 0; ZT_EINVAL (a missing argument, an env entry without '='); ZT_ENOTFOUND (no such
 * program or working directory); ZT_EACCES (not executable, or the directory is not
 * accessible); ZT_ENOMEM; ZT_ESYS (logged). On failure no callback runs and no child is left
 * behind (one that was started is reaped).
 */
ZT_EXPORT int zt_spawn_process(zt_reactor_t *reactor, const char *executable,
                               const char *const argv[], const char *const env[], const char *cwd,
                               const zt_process_protocol_vtable_t *vtable, void *arg,
                               zt_process_t **process_p);

/**
 *  Queue bytes for the child's standard input (copied; written as the pipe takes them, never
 * blocking). When the child has closed its standard input the bytes are dropped.
 *  @return 0; ZT_ESTATE (stdin closed by zt_process_close_stdin, or by the child); ZT_ENOMEM
 */
ZT_EXPORT int zt_process_write(zt_process_t *self, const void *data, size_t len);

/**
 *  Close the child's standard input once the queued bytes are written (Twisted's closeStdin), so
 * that the child reads end of file.
 *  @return 0; ZT_ESTATE when it is closed already
 */
ZT_EXPORT int zt_process_close_stdin(zt_process_t *self);

/**
 *  Send a signal to the child (Twisted's signalProcess).
 *  @return 0; ZT_EINVAL (not a signal); ZT_ESTATE when the child has ended already (Twisted's
 * ProcessExitedAlready); ZT_ESYS
 */
ZT_EXPORT int zt_process_signal(zt_process_t *self, int signum);

/** Kill the child: zt_process_signal(self, SIGKILL). @return as zt_process_signal */
ZT_EXPORT int zt_process_kill(zt_process_t *self);

/** The child's process id (it stays valid, as a number, after the child ended). */
ZT_EXPORT pid_t zt_process_pid(const zt_process_t *self);

/** Whether the child has not been reaped yet (process_ended has not run). */
ZT_EXPORT bool zt_process_is_running(const zt_process_t *self);

/**
 *  Destroy a process and NULL the pointer. A child still running is killed (SIGKILL) and reaped
 * before this returns; process_ended does not run then. Never from one of its own callbacks.
 *  @param self_p  NULL or a NULL process does nothing
 */
ZT_EXPORT void zt_process_destroy(zt_process_t **self_p);

#endif
