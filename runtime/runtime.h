/*  runtime/runtime.h - the reactor's private structure, shared by the runtime's files
 *
 *  reactor.c runs the loop, the I/O registrations, signals and the counters; timers.c the heap of
 * timed calls; mailbox.c the calls from other threads; events.c the three-phase system events.
 * Everything here is for the reactor thread unless a comment says otherwise.  */
#ifndef ZTWIST_RUNTIME_H
#define ZTWIST_RUNTIME_H

#include <ztwist/reactor.h>

#include "base/base.h"

#include <stdatomic.h>

#include "timers.h"

/* A call queued by the reactor thread for the next pass, or received from the mailbox. */
typedef struct zt__call_msg {
    zt_reactor_fn *fn; /* the call */
    void *arg;         /* Borrowed: the caller's */
} zt__call_msg_t;
_Static_assert(sizeof(zt__call_msg_t) <= 16, "a mailbox message is two pointers");

/* A growable FIFO of calls (the reactor thread's own call_from_thread queue). */
typedef struct zt__call_queue {
    zt__call_msg_t *items; /* Owned */
    size_t len;            /* queued */
    size_t cap;            /* allocated */
} zt__call_queue_t;

/* A raw fd's reader or writer (io.c). */
typedef struct zt__fd_watch {
    zt_reactor_fd_fn *fn; /* the callback, or NULL when nothing watches */
    void *arg;            /* Borrowed: the caller's */
    uint64_t pass;        /* the pass it was added in: that pass's events are not for it */
} zt__fd_watch_t;

/* What the reactor watches on one fd; r->fds is indexed by fd (io.c). */
typedef struct zt__fd_reg {
    zt__fd_watch_t reader; /* add_reader's */
    zt__fd_watch_t writer; /* add_writer's */
    size_t socket;    /* 1 + the index in r->sockets of the socket whose ZMQ_FD this is, or 0 */
    unsigned watched; /* the ZT__POLLER_* bits the poller watches on it */
} zt__fd_reg_t;

/* A registered ZeroMQ socket; r->sockets[0] is the mailbox (io.c). */
typedef struct zt__socket_reg {
    void *socket;             /* Borrowed: the libzmq socket */
    int fd;                   /* its ZMQ_FD, which the poller watches */
    zt_reactor_socket_fn *fn; /* the callback; NULL for the mailbox, which is drained */
    void *arg;                /* Borrowed: the caller's */
    bool *quiet;   /* Borrowed: the owner's "left drained" flag (an rsock's, rsock.h) or NULL */
    uint64_t pass; /* the pass it was added in: that pass does not call it */
    bool ready;    /* ZMQ_EVENTS said ZMQ_POLLIN in this pass */
    bool removed;  /* removed during a pass; swept after the pass */
} zt__socket_reg_t;

/* A name given to a callback for the slow-callback warning. */
typedef struct zt__cb_name {
    void (*fn)(void); /* the callback, as a generic function pointer */
    char *name;       /* Owned */
} zt__cb_name_t;

typedef struct zt__event zt__event_t;

/* The most extension slots a reactor has (runtime/extension.h, slots.c). */
#define ZT__REACTOR_SLOTS 4

/* An extension slot: a layer above keeps its per-reactor state here (slots.c). */
typedef struct zt__slot {
    _Atomic(const void *) key; /* the owner's key, stored (release) after ptr; NULL: free */
    void *ptr;                 /* Owned by the layer above, through fini */
    zt_free_fn *fini;          /* run on ptr by zt_reactor_destroy, or NULL */
} zt__slot_t;

struct zt_reactor {
    /* --- read by other threads (mailbox.c) --- */
    atomic_bool accepting;      /* call_from_thread is accepted; false once the loop has ended */
    atomic_uint_fast64_t owner; /* zt__thread_id() of the reactor thread */
    void *mailbox;              /* Owned: the PULL socket other threads' PUSH sockets feed */
    char endpoint[64];          /* the mailbox's inproc endpoint */
    void *zmq_ctx;              /* Borrowed: the shared context (one reference held) */
    atomic_uint_fast64_t tsan_sync; /* under TSan: released by senders, acquired by the reactor */
    /* --- reactor thread only --- */
    zt__call_queue_t local;     /* calls from the reactor thread for the next pass */
    zt__call_queue_t local_run; /* the batch of local calls the current pass runs */
    zt__timers_t timers;        /* timed calls */
    struct zt__poller *poller;  /* Owned: the kernel's set of watched fds (base/poller.h) */
    zt__fd_reg_t *fds;          /* Owned: raw fds' registrations, indexed by fd, capfds long */
    size_t capfds;              /* entries in fds */
    size_t nwatches;            /* readers and writers registered */
    zt__socket_reg_t
        *sockets;       /* Owned: ZeroMQ sockets, [0] the mailbox; removed ones until swept */
    size_t nsockets;    /* entries in use */
    size_t capsockets;  /* entries allocated */
    bool sockets_dirty; /* some socket is marked removed */
    void *ready;        /* Owned: the wait's output, ZT__IO_EVENTS zt__poller_event_t */
    uint64_t pass_seq;  /* passes started; stamps registrations (zt__fd_watch_t.pass) */
    bool in_pass;       /* a pass is running (iterate is not reentrant) */
    bool mailbox_quiet; /* the mailbox was left drained (sockets[0]'s quiet flag) */
    bool ran;           /* run returned after a stop: it cannot run again */
    bool in_run;        /* run is inside its loop */
    bool running;       /* Twisted's `running`: from during-startup to during-shutdown */
    atomic_bool stop_requested;           /* stop was called */
    bool shutdown_started;                /* the shutdown event has been fired */
    bool loop_exit;                       /* the loop ends after this pass */
    bool crashed;                         /* the loop ends because of zt_reactor_crash */
    double shutdown_timeout;              /* seconds before the shutdown event is cut short */
    zt_delayed_call_t *shutdown_deadline; /* Borrowed: the internal deadline timer, or NULL */
    zt__event_t *events;                  /* Owned: the system events by name */
    zt_trigger_id_t next_trigger_id;      /* the next trigger id */
    zt_clock_t clock;                     /* the zt_clock_t view of this reactor's own timers */
    const zt_clock_t *ext_clock;          /* Borrowed: the test clock the timers run on, or NULL */
    int signal_fd;             /* the self-pipe's read end while handling signals, else -1 */
    int64_t slow_threshold_ns; /* the slow-callback threshold; 0 is off */
    zt__cb_name_t *names;      /* Owned: named callbacks */
    size_t nnames;             /* named callbacks */
    zt_reactor_stats_t stats;  /* counters (timers_pending and registrations computed on read) */
    uint64_t recv_floor;       /* mailbox pacing: the fastest sampled receive lately, in cycles */
    unsigned slow_windows;     /* mailbox pacing: lock-step windows in a row */
    zt__slot_t slots[ZT__REACTOR_SLOTS]; /* the layers above's state (slots.c) */
    struct zt__coro_state *coro; /* Owned: the coroutines (coro.c), or NULL before the first */
};

/* ThreadSanitizer cannot see the ordering libzmq's lock-free pipes give a message's sender and
 * receiver (libzmq is not instrumented), so under TSan the mailbox adds an atomic release/acquire
 * pair that states it (see mailbox.c). Other builds rely on libzmq's own barriers. */
#if defined(__SANITIZE_THREAD__)
#define ZT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZT__TSAN 1
#endif
#endif

/* Reactor-only calls check the calling thread in every build (zt__thread_id is in base.h). */
#define ZT__ASSERT_REACTOR_THREAD(r)                                                               \
    ZT__CHECK_THREAD(atomic_load_explicit(&(r)->owner, memory_order_relaxed),                      \
                     "this reactor is used only by its reactor thread")

/* Count a callback that ran for elapsed_ns and warn when it was slow (reactor.c). */
void zt__reactor_account(zt_reactor_t *r, int64_t elapsed_ns, void (*fn)(void));

/* Convert a callback to the generic function pointer type the accounting uses. */
#define ZT__FN(fn) ((void (*)(void))(fn))

/* mailbox.c */
int zt__mailbox_open(zt_reactor_t *r);
/* Drain and run up to max mailbox calls; returns how many ran. */
size_t zt__mailbox_drain(zt_reactor_t *r, size_t max);
/* Stop accepting calls and wait until no thread is sending; then run everything still queued. */
void zt__mailbox_quiesce(zt_reactor_t *r);
/* Unregister, close every producer's socket for r and the mailbox; logs calls that never ran. */
void zt__mailbox_close(zt_reactor_t *r);
int zt__queue_push(zt__call_queue_t *q, zt_reactor_fn *fn, void *arg);
/* zt_reactor_call_from_thread, telling whether the caller is the reactor thread (*local: the call
 * was queued locally), decided while the reactor is known to be alive; any thread. */
int zt__call_from_thread(zt_reactor_t *r, zt_reactor_fn *fn, void *arg, bool *local);
/* Run the local calls queued before this pass; returns how many ran. */
size_t zt__local_run(zt_reactor_t *r);

/* slots.c: run every slot's finaliser (in zt_reactor_destroy, right after the coroutines). */
void zt__slots_fini(zt_reactor_t *r);
/* coro.c: resume or cancel every suspended coroutine and free their state; first in destroy. */
void zt__coro_reactor_fini(zt_reactor_t *r);
/* io.c: the I/O registrations and the wait */
/* zt_reactor_add_socket for an rsock: *quiet (Borrowed: it must outlive the registration) true
 * means nothing used the socket since it was found drained (rsock.h). */
int zt__io_add_socket(zt_reactor_t *self, void *socket, zt_reactor_socket_fn *fn, void *arg,
                      bool *quiet);
int zt__io_init(zt_reactor_t *r);
void zt__io_fini(zt_reactor_t *r);
/* Wait up to timeout_ms (-1: no bound) for I/O and run the ready callbacks; ZT_ESYS when the wait
 * failed (logged). */
int zt__io_poll(zt_reactor_t *r, long timeout_ms);
/* After a pass: drop the sockets removed during it. */
void zt__io_sweep(zt_reactor_t *r);
/* Readers, writers and sockets registered, not counting the reactor's own. */
size_t zt__io_registrations(const zt_reactor_t *r);

/* events.c */
int zt__events_fire(zt_reactor_t *r, const char *name, zt_reactor_fn *on_done);
void zt__events_destroy(zt_reactor_t *r);
/* The shutdown deadline passed: cancel what the current phase waits on, then move on. */
void zt__events_cut_short(zt_reactor_t *r, const char *name);

#endif
