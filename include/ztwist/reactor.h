/*  ztwist/reactor.h - the reactor: the actor that owns the program's state and runs every callback
 *
 *  One thread runs the reactor (zt_reactor_run). Each pass of its loop, like Twisted's mainLoop:
 *    1. sleeps in the kernel (one poll) until the nearest timer, a registered ZeroMQ socket or fd
 *       is ready, or a message arrives in the mailbox (it does not sleep when calls are due), then
 *       runs the ready callbacks and a batch of mailbox calls;
 *    2. runs the calls queued by zt_reactor_call_from_thread from the reactor thread itself, then
 *       the timed calls (zt_reactor_call_later) that are due, in (time, scheduling order).
 *  Anything scheduled during a pass (call_later(0), a reset, a call_from_thread on the reactor
 *  thread) waits for the next pass, so a callback never runs inside the call that scheduled it.
 *
 *  Lifecycle: new -> run (fires the "startup" system event, then loops) -> stop (fires "shutdown":
 *  before, during, after; bounded by the shutdown timeout) -> run returns -> destroy. A reactor
 *  runs once, as in Twisted: run on a reactor that has stopped returns ZT_ESTATE (after a crash it
 *  may run again). zt_reactor_iterate runs one pass without the system events, for tests and for
 *  embedding in another loop.
 *
 *  Decisions, each explained where it is made:
 *    - one poll over the mailbox, ZeroMQ sockets and raw fds, bounded by the nearest timer, so
 *      an idle reactor sleeps in the kernel; zmq_poll's contract with half its system calls
 *      (runtime/reactor.c, base/zpoll.c); timer waits round up to 1 ms;
 *    - timers: a binary heap with lazy, self-compacting cancellation; handles are optional and
 *      reference-counted, so a handle outlives its call (runtime/timers.c);
 *    - calls from threads are 16-byte messages over inproc ZeroMQ, one PUSH socket per producer
 *      thread; a full mailbox blocks the producer up to ZT_REACTOR_MAILBOX_TIMEOUT_MS, then fails
 *      with ZT_EFULL (runtime/mailbox.c);
 *    - system events wait on Deferreds in every phase, not only before (runtime/events.c); the
 *      shutdown is cut short after ZT_REACTOR_SHUTDOWN_TIMEOUT s, cancelling what it waits on;
 *    - no signal handler unless zt_reactor_handle_signals; czmq's own handlers are switched off;
 *    - errors from callbacks (a trigger's failure) are logged with their origin, never fatal.
 *
 *  Threads: every function here is for the reactor thread only -- the thread that created the
 *  reactor until zt_reactor_run is called, then the thread that runs it -- except the ones marked
 *  "Any thread": zt_reactor_call_from_thread and zt_reactor_stop. Every build checks the thread in
 *  reactor-only calls and aborts, naming the call and both threads. zt_reactor_destroy may be
 *  called from any one thread once run has returned (or never ran).
 *
 *  Liveness: a reactor must outlive every thread that calls it (as a libuv loop or a czmq actor
 *  must). Before zt_reactor_destroy, make sure no other thread will call into the reactor again
 *  (zt_reactor_call_from_thread, zt_reactor_stop, the thread API of <ztwist/threads.h>): join those
 *  threads, or have them finish with it. A call on a destroyed reactor is undefined behaviour,
 *  like any use of freed memory. While the reactor object lives, calls made after its loop has
 *  ended are refused with ZT_ESHUTDOWN. ztwist's own threads keep this rule: a pool worker that a
 *  stop detached never touches the reactor again.  */
#ifndef ZTWIST_REACTOR_H
#define ZTWIST_REACTOR_H

#include <ztwist/clock.h>
#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/test_clock.h>

typedef struct zt_reactor zt_reactor_t;

/** A call run by the reactor: a timed call, a call from a thread, a call when running. */
typedef void zt_reactor_fn(void *arg);

/** Called when a raw fd is readable (add_reader) or writable (add_writer), or has an error or
 * hang-up (both are told, so the read or write reports it). */
typedef void zt_reactor_fd_fn(zt_reactor_t *reactor, int fd, void *arg);

/** Called when a registered ZeroMQ socket has a message to read. The callback should read until
 * EAGAIN or a bounded batch; the socket is polled again on the next pass. */
typedef void zt_reactor_socket_fn(zt_reactor_t *reactor, void *socket, void *arg);

/** The phase of a system event a trigger runs in (Twisted's 'before', 'during', 'after'). */
typedef enum zt_event_phase {
    ZT_PHASE_BEFORE = 0, /* first; a trigger returning zt_wait_for(d) holds the next phase */
    ZT_PHASE_DURING = 1, /* second; its Deferreds hold the after phase too (a ztwist extension) */
    ZT_PHASE_AFTER = 2   /* last; its Deferreds hold the end of the event (shutdown waits) */
} zt_event_phase_t;

/** Identifies a system event trigger, for zt_reactor_remove_system_event_trigger. Never 0. */
typedef uint64_t zt_trigger_id_t;

/** The reactor's counters, filled in by zt_reactor_stats. A public struct: a snapshot to read. */
typedef struct zt_reactor_stats {
    uint64_t passes;              /* loop passes (run and iterate) */
    uint64_t callbacks_run;       /* callbacks of every kind that have run */
    uint64_t timers_pending;      /* timed calls scheduled and neither run nor cancelled */
    uint64_t mailbox_received;    /* calls received through the mailbox from other threads */
    uint64_t mailbox_pauses;      /* times the reactor stepped back from a busy mailbox so that
                                   * its producers could run ahead (see docs/reactor.md) */
    uint64_t longest_callback_ns; /* the longest a single callback held the reactor; calls from
                                   * threads are timed in groups of up to 32 when no slow-callback
                                   * threshold is set, so then it is an upper bound */
    uint64_t slow_callbacks;      /* callbacks that exceeded the slow-callback threshold */
    uint64_t registrations;       /* readers, writers and sockets registered now */
} zt_reactor_stats_t;

/** How long a cross-thread call waits for room in a full mailbox before it fails with ZT_EFULL. */
#define ZT_REACTOR_MAILBOX_TIMEOUT_MS 5000

/** The mailbox's high-water mark, set on each producer's PUSH socket and on the reactor's PULL
 * socket; ZeroMQ adds the two, so one producer thread may have about twice this many calls in
 * flight to one reactor before it waits. Small on purpose: a deep queue measured 2-4x slower than
 * one that stays in the cache (bench/bench_reactor.c), and a producer that outruns the reactor
 * should wait rather than pile up memory. */
#define ZT_REACTOR_MAILBOX_HWM 1000

/** The default bound on the shutdown event, in seconds (zt_reactor_set_shutdown_timeout). */
#define ZT_REACTOR_SHUTDOWN_TIMEOUT 10.0

/* ------------------------------------------------------------------------------------------- */
/* Lifecycle */

/**
 *  Create a reactor. It does no I/O beyond binding its inproc mailbox, installs no signal handler
 * and starts no thread. The calling thread is its thread until zt_reactor_run.
 *  @return a new reactor the caller owns, or NULL when out of memory or ZeroMQ fails (logged)
 */
ZT_EXPORT ZT_NODISCARD zt_reactor_t *zt_reactor_new(void);

/**
 *  Create a reactor whose time is a test clock's (Twisted's MemoryReactorClock): its timed calls
 * (zt_reactor_call_later), its clock (zt_reactor_clock: Deferred timeouts, LoopingCall,
 * defer_later), zt_reactor_seconds and the shutdown deadline are the test clock's, so they move
 * only with zt_test_clock_advance, which runs the calls that fall due inside the advance, as
 * Twisted's Clock does. Everything else -- I/O, the mailbox, system events -- is as on any reactor,
 * and its loop never waits for a test clock's timer: with no I/O it sleeps until woken, so a test
 * advances the clock on the reactor thread (between iterates, or from a callback).
 *  The timed calls belong to the test clock: zt_reactor_stats counts every call pending on it,
 * destroying the reactor does not drop the ones user code scheduled (cancel them, or destroy the
 * clock), and they run without the reactor's slow-callback accounting.
 *  @param clock  borrowed; must outlive the reactor; used only on the reactor thread
 *  @return a new reactor the caller owns, or NULL as zt_reactor_new
 */
ZT_EXPORT zt_reactor_t *zt_reactor_new_with_clock(zt_test_clock_t *clock);

/**
 *  Destroy a reactor and NULL the pointer. Pending timed calls and registrations are dropped
 * without running; mailbox calls that never ran are counted and logged; the reactor's thread pool,
 * if it was never shut down, is stopped and destroyed. No other thread may call into the reactor
 * from the moment destroy starts (the liveness rule above). Every zt_delayed_call_t handle must
 * have been released first (an assertion). Never call it from one of the reactor's callbacks.
 *  @param self_p  NULL or a NULL reactor does nothing
 */
ZT_EXPORT void zt_reactor_destroy(zt_reactor_t **self_p);

/**
 *  Run the reactor on the calling thread until it stops: fire "startup", loop, and when
 * zt_reactor_stop is called fire "shutdown" and return. The calling thread becomes the reactor
 * thread. When nothing is due the thread sleeps in the kernel.
 *  @return 0 after a stop or a crash; ZT_ESYS when polling failed (logged; the loop ended without
 * the shutdown event); ZT_ESTATE when the reactor is running, or has stopped
 * already (a reactor is not restartable after a stop, as in Twisted)
 */
ZT_EXPORT int zt_reactor_run(zt_reactor_t *self);

/**
 *  Ask the reactor to stop: after the current pass it fires the "shutdown" event and run returns
 * when the event is over (or its timeout passed). A stop before run makes run shut down right after
 * startup. Any thread: from another thread the request travels through the mailbox.
 *  @return 0; ZT_ESTATE (reactor thread) when a stop was already requested; ZT_ESHUTDOWN when the
 * reactor has finished running; the codes of zt_reactor_call_from_thread
 */
ZT_EXPORT int zt_reactor_stop(zt_reactor_t *self);

/**
 *  Leave the loop after the current pass without firing "shutdown" (Twisted's crash). For tests
 * and emergencies. As in Twisted, run may be called again after a crash: it fires "startup" again
 * (its triggers ran once, so only ones added since run).
 *  @return 0; ZT_ESTATE when run is not in its loop or shutdown has begun
 */
ZT_EXPORT int zt_reactor_crash(zt_reactor_t *self);

/**
 *  Run one pass: wait up to timeout seconds for I/O, a message or the nearest timer (no wait when
 * a call is due), and run what is ready and due. So `while (!done) zt_reactor_iterate(r, -1);`
 * waits for events one pass at a time. Fires no system event. Not reentrant: never call it from a
 * callback of the same reactor (an assertion).
 *  @param timeout  the longest wait in seconds; 0 polls without sleeping; < 0 waits until something
 * happens
 *  @return 0, or ZT_ESYS when polling failed (logged)
 */
ZT_EXPORT int zt_reactor_iterate(zt_reactor_t *self, double timeout);

/** Twisted's `running`: true from the during phase of "startup" until the during phase of
 * "shutdown", while run is in its loop; false before run, in before-startup triggers, and after. */
ZT_EXPORT bool zt_reactor_is_running(const zt_reactor_t *self);

/**
 *  Whether the calling thread is the reactor's thread: the one running it, or the one that created
 *  it while it has not run. Twisted's isInIOThread. Safe from any thread, on a reactor that is
 *  alive; other layers use it to refuse calls that would wait on the reactor from its own thread.
 */
ZT_EXPORT bool zt_reactor_is_reactor_thread(const zt_reactor_t *self);

/** The reactor's time in seconds: the monotonic clock of <ztwist/time.h>, or the test clock's time
 * for a reactor made by zt_reactor_new_with_clock. */
ZT_EXPORT double zt_reactor_seconds(const zt_reactor_t *self);

/**
 *  The reactor as a zt_clock_t (for zt_deferred_add_timeout, LoopingCall, defer_later); for a
 * reactor made by zt_reactor_new_with_clock, the test clock's interface.
 *  @return a pointer borrowed from the reactor, valid until it is destroyed
 */
ZT_EXPORT const zt_clock_t *zt_reactor_clock(zt_reactor_t *self);

/* ------------------------------------------------------------------------------------------- */
/* Timed calls: Twisted's callLater and DelayedCall */

/**
 *  Call fn(arg) after seconds. Never runs before this returns, not even with 0; calls due at the
 * same time run in the order they were scheduled.
 *  @param seconds  the delay; negative counts as 0
 *  @param fn       the call; required
 *  @param arg      passed to fn; borrowed
 *  @param call_p   NULL for fire-and-forget; otherwise receives a handle the caller owns and must
 * release with zt_delayed_call_release (which does not cancel). The handle stays valid after the
 * call ran or was cancelled, so is_active and cancel on it are always safe. On a reactor made by
 * zt_reactor_new_with_clock the call is the test clock's, and runs inside zt_test_clock_advance.
 *  @return 0; ZT_EINVAL when fn is NULL or seconds is not a number; ZT_ENOMEM. On failure fn never
 * runs and *call_p is left alone.
 */
ZT_EXPORT int zt_reactor_call_later(zt_reactor_t *self, double seconds, zt_reactor_fn *fn,
                                    void *arg, zt_delayed_call_t **call_p);

/* The handle's functions -- zt_delayed_call_cancel, reset, delay, get_time, is_active, is_called,
 * is_cancelled, release -- are the clock interface's (<ztwist/clock.h>): the same for a call on the
 * reactor's own timers and for one on a test clock. */

/* ------------------------------------------------------------------------------------------- */
/* Calls from other threads */

/**
 *  Run fn(arg) on the reactor thread on a later pass (Twisted's callFromThread). Any thread,
 * including the reactor thread, where the call is queued for the next pass, never run inline. Calls
 * from one thread run in the order they were made; a sleeping reactor wakes at once. Calls made
 * before run run after startup. When the producer's share of the mailbox is full (about 2 x
 * ZT_REACTOR_MAILBOX_HWM calls), the call waits up to ZT_REACTOR_MAILBOX_TIMEOUT_MS for the reactor
 * to catch up, then fails with ZT_EFULL and logs: nothing is dropped silently.
 *  @param fn   the call; required
 *  @param arg  passed to fn; borrowed, and handed to the reactor thread
 *  @return 0 (fn will run, unless the reactor is destroyed without running: destroy logs the
 * count of calls it dropped); ZT_EINVAL when fn is NULL; ZT_ESHUTDOWN when the reactor's loop has
 * ended (the reactor must still be alive: see Liveness above); ZT_EFULL; ZT_ESYS when ZeroMQ fails
 * (logged). On failure fn never runs.
 */
ZT_EXPORT int zt_reactor_call_from_thread(zt_reactor_t *self, zt_reactor_fn *fn, void *arg);

/* ------------------------------------------------------------------------------------------- */
/* System events: Twisted's three-phase events */

/**
 *  Run fn(arg) once the reactor is running (Twisted's callWhenRunning): at once when it is running
 * already, otherwise as an after-startup trigger.
 *  @param id_p  NULL, or receives the trigger's id (0 when fn ran at once)
 *  @return 0; ZT_EINVAL when fn is NULL; ZT_ENOMEM
 */
ZT_EXPORT int zt_reactor_call_when_running(zt_reactor_t *self, zt_reactor_fn *fn, void *arg,
                                           zt_trigger_id_t *id_p);

/**
 *  Add a trigger to a system event's phase (Twisted's addSystemEventTrigger). When the event fires
 * its triggers run once each, phase by phase, each phase in the order they were added; a trigger is
 * removed once it has run. A trigger returning zt_wait_for(d) holds the next phase until d fires; a
 * failure (returned, or from d) is logged with its origin and does not stop the event.
 *  @param event  "startup", "shutdown" or any name (copied)
 *  @param id_p   NULL, or receives the trigger's id
 *  @return 0; ZT_EINVAL when fn or event is NULL or phase is not a phase; ZT_ENOMEM
 */
ZT_EXPORT int zt_reactor_add_system_event_trigger(zt_reactor_t *self, zt_event_phase_t phase,
                                                  const char *event, zt_maybe_fn *fn, void *arg,
                                                  zt_trigger_id_t *id_p);

/**
 *  Remove a trigger that has not run (or a before trigger that ran while its event still waits).
 *  @return 0; ZT_ENOTFOUND when no such trigger is waiting
 */
ZT_EXPORT int zt_reactor_remove_system_event_trigger(zt_reactor_t *self, zt_trigger_id_t id);

/**
 *  Fire a system event by name (Twisted's fireSystemEvent): run its before triggers, wait for their
 * Deferreds, then its during and after triggers. Firing "startup" or "shutdown" by hand runs their
 * triggers but does not start or stop the loop.
 *  @return 0; ZT_EINVAL when event is NULL; ZT_ESTATE when that event is firing already
 */
ZT_EXPORT int zt_reactor_fire_system_event(zt_reactor_t *self, const char *event);

/**
 *  Bound the shutdown event: after this many seconds run stops waiting for the triggers' Deferreds,
 * logs which phase was waiting, finishes the remaining phases and returns.
 *  @param seconds  > 0; the default is ZT_REACTOR_SHUTDOWN_TIMEOUT
 *  @return 0, or ZT_EINVAL
 */
ZT_EXPORT int zt_reactor_set_shutdown_timeout(zt_reactor_t *self, double seconds);

/* ------------------------------------------------------------------------------------------- */
/* I/O: raw file descriptors and ZeroMQ sockets polled by the loop */

/**
 *  Call fn when fd is readable, on every pass it is (level-triggered), until removed.
 *  @param fd   a descriptor the caller owns; ztwist never closes it
 *  @return 0; ZT_EINVAL (fd < 0, fn NULL); ZT_EALREADY when fd has a reader; ZT_ENOMEM
 */
ZT_EXPORT int zt_reactor_add_reader(zt_reactor_t *self, int fd, zt_reactor_fd_fn *fn, void *arg);

/** As zt_reactor_add_reader, for writability. @return as zt_reactor_add_reader */
ZT_EXPORT int zt_reactor_add_writer(zt_reactor_t *self, int fd, zt_reactor_fd_fn *fn, void *arg);

/**
 *  Stop watching fd for reading. Safe from any callback, including fd's own: the callback is not
 * called again, not even later in the same pass.
 *  @return 0, or ZT_ENOTFOUND
 */
ZT_EXPORT int zt_reactor_remove_reader(zt_reactor_t *self, int fd);

/** As zt_reactor_remove_reader, for writing. @return 0, or ZT_ENOTFOUND */
ZT_EXPORT int zt_reactor_remove_writer(zt_reactor_t *self, int fd);

/**
 *  Call fn when a ZeroMQ socket has a message (ZMQ_POLLIN), until removed. For actors and bridges.
 *  @param socket  a libzmq socket (void *) made on the shared context, used only on the reactor
 * thread; borrowed, never closed by ztwist
 *  @return 0; ZT_EINVAL; ZT_EALREADY when the socket is registered; ZT_ENOMEM
 */
ZT_EXPORT int zt_reactor_add_socket(zt_reactor_t *self, void *socket, zt_reactor_socket_fn *fn,
                                    void *arg);

/** Stop polling a socket; safe from any callback. @return 0, or ZT_ENOTFOUND */
ZT_EXPORT int zt_reactor_remove_socket(zt_reactor_t *self, void *socket);

/* ------------------------------------------------------------------------------------------- */
/* Signals */

/**
 *  Opt in to graceful stop on SIGINT and SIGTERM: the signal handler only writes to a self-pipe
 * (async-signal-safe) that the reactor reads as a reader, then calls zt_reactor_stop. By default a
 * reactor installs no handler. The previous dispositions come back at destroy. One reactor per
 * process at a time.
 *  @return 0; ZT_ESTATE when another reactor handles signals; ZT_ESYS (logged)
 */
ZT_EXPORT int zt_reactor_handle_signals(zt_reactor_t *self);

/* ------------------------------------------------------------------------------------------- */
/* Observability */

/**
 *  Fill stats with the reactor's counters.
 *  @param stats  required
 */
ZT_EXPORT void zt_reactor_stats(const zt_reactor_t *self, zt_reactor_stats_t *stats);

/**
 *  Log a warning, naming the callback's address and registered name, whenever one callback holds
 * the reactor longer than seconds.
 *  @param seconds  the threshold; 0 (the default) turns the watchdog off
 *  @return 0, or ZT_EINVAL when seconds < 0
 */
ZT_EXPORT int zt_reactor_set_slow_callback_threshold(zt_reactor_t *self, double seconds);

/**
 *  Give a callback function a name for the slow-callback warning. Use the macro, which accepts any
 * callback type.
 *  @param name  copied; NULL removes the name
 *  @return 0, or ZT_ENOMEM
 */
ZT_EXPORT int zt_reactor_set_callback_name_(zt_reactor_t *self, void (*fn)(void), const char *name);
#define zt_reactor_set_callback_name(self, fn, name)                                               \
    zt_reactor_set_callback_name_((self), (void (*)(void))(fn), (name))

#endif
