/*  ztwist/signals.h - reactor callbacks for POSIX signals (SIGHUP to reload, SIGUSR1, SIGCHLD...)
 *
 *  Twisted runs signal handlers on its reactor thread; so does this. zt_signals_add installs a
 * process-wide handler for the signal that only marks it pending and writes one byte to a
 * self-pipe (async-signal-safe); the reactor reads the pipe as a reader and runs every callback
 * registered for each pending signal, on the reactor thread, never inside the signal handler.
 * Like a kernel signal, several deliveries before the reactor gets to them run each callback once.
 *
 *  Several callbacks per signal and several signals per process. The disposition a signal had
 * before its first callback comes back when its last callback is removed, and at
 * zt_reactor_destroy for every callback still registered. One reactor per process at a time uses
 * this (signals are process-wide): another gets ZT_ESTATE until the first has none left.
 *
 *  With zt_reactor_handle_signals: call it first, then add callbacks for SIGINT or SIGTERM if you
 * want them too. The handler installed here passes each delivery on to the handler it replaced
 * (when that was a function), so both the callback and the reactor's stop happen. Called in the
 * other order, zt_reactor_handle_signals replaces this handler without passing deliveries on, so
 * the callbacks for SIGINT and SIGTERM would no longer run.
 *
 *  Synchronous fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL) and SIGKILL / SIGSTOP cannot be
 * handled this way and are refused.
 *
 *  Threads: every function here is for the reactor thread only; the signal may arrive on any
 * thread.  */
#ifndef ZTWIST_SIGNALS_H
#define ZTWIST_SIGNALS_H

#include <ztwist/common.h>
#include <ztwist/reactor.h>

/** A signal callback: signum arrived (at least once since the last call). Runs on the reactor
 * thread; it may add and remove callbacks, its own included. */
typedef void zt_signal_fn(zt_reactor_t *reactor, int signum, void *arg);

/** Identifies a signal callback, for zt_signals_remove. Never 0. */
typedef uint64_t zt_signal_id_t;

/**
 *  Run fn(reactor, signum, arg) on the reactor thread whenever signum arrives, until removed.
 *  @param signum  a signal number, not SIGKILL, SIGSTOP or a synchronous fault signal
 *  @param fn      required
 *  @param arg     passed to fn; borrowed
 *  @param id_p    NULL, or receives the callback's id
 *  @return 0; ZT_EINVAL (a signal that cannot be handled, fn NULL); ZT_ESTATE (another reactor
 * has signal callbacks); ZT_ENOMEM; ZT_ESYS (logged: the pipe or the registration failed). On
 * failure nothing is installed.
 */
ZT_EXPORT int zt_signals_add(zt_reactor_t *reactor, int signum, zt_signal_fn *fn, void *arg,
                             zt_signal_id_t *id_p);

/**
 *  Remove a callback; safe from any signal callback, its own included (it is not called again).
 * The signal's previous disposition comes back with its last callback.
 *  @return 0, or ZT_ENOTFOUND (no such callback on this reactor)
 */
ZT_EXPORT int zt_signals_remove(zt_reactor_t *reactor, zt_signal_id_t id);

/** How many signal callbacks the reactor has. */
ZT_EXPORT size_t zt_signals_count(const zt_reactor_t *reactor);

#endif
