/*  runtime/reactor.c - the reactor's loop, I/O registrations, lifecycle, signals and counters
 *
 *  Design notes.
 *
 *  One poll. The loop sleeps in one poll over a zmq_pollitem_t array: slot 0 is the mailbox (a PULL
 * socket), then registered ZeroMQ sockets and raw fds (a reader and a writer on one fd are two
 * slots). zt__zpoll (base/zpoll.c) keeps zmq_poll's contract, the stable API's one way to wait on
 * ZeroMQ sockets and plain fds together (zmq_poller is a draft API in libzmq 4.3), with about half
 * its system calls per wake-up; its timeout bounds the wait by the nearest timer. It rebuilds its
 * pollfd array each call, O(registrations), which is cheap at the tens of registrations a reactor
 * has; timeouts are whole milliseconds, rounded up, so the loop
 * never wakes early and spins.
 *
 *  A pass: the poll (bounded by the nearest timer, not sleeping when calls are queued or due), the
 * ready I/O callbacks with up to ZT__MAILBOX_BATCH mailbox calls, the reactor thread's own queued
 * calls, then the due timers. Twisted's mainLoop runs timers before the poll; polling first means
 * one iterate(-1) waits for the next event and runs it, whatever it is. What a pass schedules runs
 * on the next pass.
 *
 *  Removal during a pass. Removing a registration marks its slot removed (the callback is not
 * called again, not even later in this pass) and the slots are swept after the dispatch, so the
 * indices the dispatch walks stay valid; slots added during a pass are appended and first polled
 * on the next pass.
 *
 *  Lifecycle. A reactor runs once: run fires "startup", loops until the shutdown event is over
 * (or stop's deadline cut it short), then stops accepting calls from threads and runs those it had
 * accepted (mailbox.c). No signal handler is installed unless zt_reactor_handle_signals is called:
 * its handler only writes the signal number to a non-blocking self-pipe, read by the loop.
 *
 *  Threads: the reactor thread does everything here except zt_reactor_stop (any thread: from
 * another thread it is a call through the mailbox). The signal state is process-wide, under a
 * mutex.  */
#include "runtime.h"
#include "base/zmq_ctx.h"
#include "base/zpoll.h"
#include "runtime/socket_quiet.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define ZT__MAILBOX_BATCH 4096 /* mailbox calls per pass, so timers and I/O are not starved */

/* --- accounting ------------------------------------------------------------------------ */

static uintptr_t
s_fn_addr(void (*fn)(void))
{
    uintptr_t addr = 0;
    _Static_assert(sizeof fn <= sizeof addr, "a function pointer fits in uintptr_t");
    memcpy(&addr, &fn, sizeof fn);
    return addr;
}

void
zt__reactor_account(zt_reactor_t *r, int64_t elapsed_ns, void (*fn)(void))
{
    r->stats.callbacks_run++;
    if (elapsed_ns < 0)
        elapsed_ns = 0;
    if ((uint64_t)elapsed_ns > r->stats.longest_callback_ns)
        r->stats.longest_callback_ns = (uint64_t)elapsed_ns;
    if (r->slow_threshold_ns > 0 && elapsed_ns > r->slow_threshold_ns) {
        r->stats.slow_callbacks++;
        const char *name = "unnamed";
        for (size_t i = 0; i < r->nnames; i++)
            if (r->names[i].fn == fn)
                name = r->names[i].name;
        ZT_LOG_WARNING("slow callback 0x%" PRIxPTR " (%s) held the reactor for %.3f ms "
                       "(threshold %.3f ms)",
                       s_fn_addr(fn), name, (double)elapsed_ns / 1e6,
                       (double)r->slow_threshold_ns / 1e6);
    }
}

/* --- lifecycle -------------------------------------------------------------------------- */

static int s_reg_add(zt_reactor_t *r, zt__reg_kind_t kind, void *socket, int fd, short events,
                     zt_reactor_fd_fn *fd_fn, zt_reactor_socket_fn *socket_fn, void *arg);
static void s_signals_release(zt_reactor_t *r);

zt_reactor_t *
zt_reactor_new(void)
{
    zt_reactor_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    atomic_init(&self->accepting, true);
    atomic_init(&self->owner, zt__thread_id());
    atomic_init(&self->stop_requested, false);
    self->signal_fd = -1;
    self->shutdown_timeout = ZT_REACTOR_SHUTDOWN_TIMEOUT;
    zt__timers_clock_init(self);
    self->zmq_ctx = zt__zmq_ctx_acquire();
    if (!self->zmq_ctx)
        goto failed;
    if (zt__mailbox_open(self) != 0)
        goto failed;
    if (s_reg_add(self, ZT__REG_MAILBOX, self->mailbox, 0, ZMQ_POLLIN, NULL, NULL, NULL) != 0)
        goto failed;
    return self;
failed:
    zt_reactor_destroy(&self);
    return NULL;
}

void
zt_reactor_destroy(zt_reactor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_reactor_t *self = *self_p;
    ZT_ASSERT_MSG(!self->in_pass && !self->in_run,
                  "zt_reactor_destroy called from inside the reactor's loop");
    zt__coro_reactor_fini(self); /* coroutines unwind first: they may cancel what they await */
    zt__slots_fini(self);        /* then the layers above, while everything else is whole */
    zt__mailbox_close(self);
    s_signals_release(self);
    zt__events_destroy(self);
    zt__timers_drop(self, &self->shutdown_deadline);
    zt__timers_fini(&self->timers);
    free(self->local.items);
    free(self->local_run.items);
    free(self->items);
    free(self->pollfds);
    free(self->regs);
    for (size_t i = 0; i < self->nnames; i++)
        free(self->names[i].name);
    free(self->names);
    if (self->zmq_ctx)
        zt__zmq_ctx_release();
    free(self);
    *self_p = NULL;
}

bool
zt_reactor_is_running(const zt_reactor_t *self)
{
    ZT_ASSERT(self);
    return self->running;
}

bool
zt_reactor_is_reactor_thread(const zt_reactor_t *self)
{
    ZT_ASSERT(self);
    return atomic_load_explicit(&self->owner, memory_order_acquire) == zt__thread_id();
}

double
zt_reactor_seconds(const zt_reactor_t *self)
{
    ZT_ASSERT(self);
    if (self->ext_clock) /* a reactor on a test clock (zt_reactor_new_with_clock) */
        return zt_clock_seconds(self->ext_clock);
    return (double)zt_time_now_ns() / 1e9;
}

const zt_clock_t *
zt_reactor_clock(zt_reactor_t *self)
{
    ZT_ASSERT(self);
    return self->ext_clock ? self->ext_clock : &self->clock;
}

/* --- registrations ---------------------------------------------------------------------- */

static zmq_pollitem_t *
s_items(zt_reactor_t *r)
{
    return r->items;
}

static int
s_reg_add(zt_reactor_t *r, zt__reg_kind_t kind, void *socket, int fd, short events,
          zt_reactor_fd_fn *fd_fn, zt_reactor_socket_fn *socket_fn, void *arg)
{
    if (r->nregs == r->capregs) {
        size_t cap = r->capregs ? r->capregs * 2 : 8;
        zmq_pollitem_t *items = realloc(r->items, cap * sizeof *items);
        if (!items)
            return ZT_ENOMEM;
        r->items = items;
        zt__reg_t *regs = realloc(r->regs, cap * sizeof *regs);
        if (!regs)
            return ZT_ENOMEM;
        r->regs = regs;
        struct pollfd *pollfds = realloc(r->pollfds, cap * sizeof *pollfds);
        if (!pollfds)
            return ZT_ENOMEM;
        r->pollfds = pollfds;
        r->capregs = cap;
    }
    s_items(r)[r->nregs] = (zmq_pollitem_t){.socket = socket, .fd = fd, .events = events};
    r->regs[r->nregs] = (zt__reg_t){.kind = kind,
                                    .fd_fn = fd_fn,
                                    .socket_fn = socket_fn,
                                    .arg = arg,
                                    .quiet = kind == ZT__REG_MAILBOX ? &r->mailbox_quiet : NULL};
    r->nregs++;
    return 0;
}

/* The live slot of that kind for fd or socket, or -1. */
static long
s_reg_find(const zt_reactor_t *r, zt__reg_kind_t kind, int fd, const void *socket)
{
    const zmq_pollitem_t *items = r->items;
    for (size_t i = 0; i < r->nregs; i++) {
        if (r->regs[i].kind != kind || r->regs[i].removed)
            continue;
        if (kind == ZT__REG_SOCKET ? items[i].socket == socket : items[i].fd == fd)
            return (long)i;
    }
    return -1;
}

static void
s_reg_sweep(zt_reactor_t *r)
{
    zmq_pollitem_t *items = r->items;
    size_t kept = 0;
    for (size_t i = 0; i < r->nregs; i++) {
        if (r->regs[i].removed)
            continue;
        items[kept] = items[i];
        r->regs[kept] = r->regs[i];
        kept++;
    }
    r->nregs = kept;
    r->regs_dirty = false;
}

static int
s_reg_remove(zt_reactor_t *r, zt__reg_kind_t kind, int fd, const void *socket)
{
    long i = s_reg_find(r, kind, fd, socket);
    if (i < 0)
        return ZT_ENOTFOUND;
    r->regs[i].removed = true;
    r->regs_dirty = true;
    if (!r->in_pass)
        s_reg_sweep(r);
    return 0;
}

static int
s_add_fd(zt_reactor_t *r, zt__reg_kind_t kind, int fd, zt_reactor_fd_fn *fn, void *arg)
{
    if (fd < 0 || !fn)
        return ZT_EINVAL;
    if (s_reg_find(r, kind, fd, NULL) >= 0)
        return ZT_EALREADY;
    short events = kind == ZT__REG_READER ? ZMQ_POLLIN : ZMQ_POLLOUT;
    return s_reg_add(r, kind, NULL, fd, events, fn, NULL, arg);
}

int
zt_reactor_add_reader(zt_reactor_t *self, int fd, zt_reactor_fd_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    return s_add_fd(self, ZT__REG_READER, fd, fn, arg);
}

int
zt_reactor_add_writer(zt_reactor_t *self, int fd, zt_reactor_fd_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    return s_add_fd(self, ZT__REG_WRITER, fd, fn, arg);
}

int
zt_reactor_remove_reader(zt_reactor_t *self, int fd)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    return s_reg_remove(self, ZT__REG_READER, fd, NULL);
}

int
zt_reactor_remove_writer(zt_reactor_t *self, int fd)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    return s_reg_remove(self, ZT__REG_WRITER, fd, NULL);
}

int
zt_reactor_add_socket(zt_reactor_t *self, void *socket, zt_reactor_socket_fn *fn, void *arg)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (!socket || !fn)
        return ZT_EINVAL;
    if (s_reg_find(self, ZT__REG_SOCKET, 0, socket) >= 0)
        return ZT_EALREADY;
    return s_reg_add(self, ZT__REG_SOCKET, socket, 0, ZMQ_POLLIN, NULL, fn, arg);
}

int
zt__reactor_add_socket_quiet(zt_reactor_t *self, void *socket, zt_reactor_socket_fn *fn, void *arg,
                             bool *quiet)
{
    ZT_ASSERT(quiet);
    int rc = zt_reactor_add_socket(self, socket, fn, arg);
    if (rc == 0) {
        *quiet = false;
        self->regs[self->nregs - 1].quiet = quiet;
    }
    return rc;
}

int
zt_reactor_remove_socket(zt_reactor_t *self, void *socket)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    return s_reg_remove(self, ZT__REG_SOCKET, 0, socket);
}

/* --- the loop --------------------------------------------------------------------------- */

/* Poll for at most timeout_ms (-1: no bound) and run what is ready. */
static int
s_poll_and_dispatch(zt_reactor_t *r, long timeout_ms)
{
    int64_t delay = zt__timers_next_delay_ns(r, zt_time_now_ns());
    if (delay >= 0) {
        long timer_ms = (long)((delay + 999999) / 1000000);
        if (timeout_ms < 0 || timer_ms < timeout_ms)
            timeout_ms = timer_ms;
    }
    if (r->local.len > 0 || (atomic_load(&r->stop_requested) && !r->shutdown_started) ||
        r->loop_exit)
        timeout_ms = 0;
    size_t n = r->nregs;
    /* A socket its owner left drained (the mailbox: only the drain below receives on it) can only
     * become readable through its ZMQ_FD; one the wait finds not readable is left drained too. */
    for (size_t i = 0; i < n; i++)
        if (r->regs[i].quiet)
            s_items(r)[i].events = (short)(ZMQ_POLLIN | (*r->regs[i].quiet ? ZT__ZPOLL_QUIET : 0));
    int rc = zt__zpoll(r->items, (int)n, timeout_ms, r->pollfds);
    for (size_t i = 0; i < n && rc >= 0; i++)
        if (r->regs[i].quiet && s_items(r)[i].revents == 0)
            *r->regs[i].quiet = true;
    if (rc < 0) {
        if (zmq_errno() == EINTR)
            return 0;
        ZT_LOG_ERROR("poll failed: %s", zmq_strerror(zmq_errno()));
        return ZT_ESYS;
    }
    for (size_t i = 0; i < n && rc > 0; i++) {
        /* Re-read each slot: a callback may have grown (moved) the arrays or removed a slot. */
        short revents = s_items(r)[i].revents;
        if (revents == 0 || r->regs[i].removed)
            continue;
        zt__reg_t reg = r->regs[i];
        int64_t t0 = zt_time_now_ns();
        switch (reg.kind) {
        case ZT__REG_MAILBOX:
            r->mailbox_quiet = zt__mailbox_drain(r, ZT__MAILBOX_BATCH) < ZT__MAILBOX_BATCH;
            break;
        case ZT__REG_READER:
        case ZT__REG_WRITER:
            reg.fd_fn(r, s_items(r)[i].fd, reg.arg);
            zt__reactor_account(r, zt_time_now_ns() - t0, ZT__FN(reg.fd_fn));
            break;
        case ZT__REG_SOCKET:
            reg.socket_fn(r, s_items(r)[i].socket, reg.arg);
            zt__reactor_account(r, zt_time_now_ns() - t0, ZT__FN(reg.socket_fn));
            break;
        }
    }
    return 0;
}

static int
s_pass(zt_reactor_t *r, long timeout_ms)
{
    ZT_ASSERT_MSG(!r->in_pass, "zt_reactor_iterate called from inside a reactor callback");
    r->in_pass = true;
    r->stats.passes++;
    int rc = s_poll_and_dispatch(r, timeout_ms);
    zt__local_run(r);
    zt__timers_run_due(r);
    if (r->regs_dirty)
        s_reg_sweep(r);
    r->in_pass = false;
    return rc;
}

int
zt_reactor_iterate(zt_reactor_t *self, double timeout)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    long timeout_ms = -1;
    if (timeout >= 0)
        timeout_ms = timeout > 1e6 ? 1000000000L : (long)ceil(timeout * 1000.0);
    return s_pass(self, timeout_ms);
}

static void
s_shutdown_done(void *arg)
{
    zt_reactor_t *r = arg;
    r->loop_exit = true;
    zt__timers_drop(r, &r->shutdown_deadline);
}

static void
s_shutdown_deadline(void *arg)
{
    zt_reactor_t *r = arg;
    zt__timers_drop(r, &r->shutdown_deadline);
    ZT_LOG_ERROR("shutdown did not finish within %.3f s", r->shutdown_timeout);
    zt__events_cut_short(r, "shutdown");
}

static void
s_start_shutdown(zt_reactor_t *r)
{
    r->shutdown_started = true;
    r->shutdown_deadline = zt__timers_schedule(r, r->shutdown_timeout, s_shutdown_deadline, r);
    if (zt__events_fire(r, "shutdown", s_shutdown_done) != 0) {
        ZT_LOG_ERROR("cannot fire the shutdown event (it is firing already)");
        s_shutdown_done(r);
    }
}

int
zt_reactor_run(zt_reactor_t *self)
{
    ZT_ASSERT(self);
    if (self->ran || self->in_run)
        return ZT_ESTATE;
    atomic_store(&self->owner, zt__thread_id());
    self->in_run = true;
    int rc = zt__events_fire(self, "startup", NULL);
    if (rc == ZT_ESTATE)
        ZT_LOG_WARNING("run: the startup event was already firing");
    int status = 0;
    while (!self->loop_exit) {
        if ((status = s_pass(self, -1)) != 0)
            break; /* polling failed (logged): the loop cannot go on */
        if (atomic_load(&self->stop_requested) && !self->shutdown_started)
            s_start_shutdown(self);
    }
    self->running = false;
    if (self->crashed) {
        /* Twisted's crash: no shutdown, and run may be called again. */
        self->crashed = false;
        self->loop_exit = false;
        self->in_run = false;
        return 0;
    }
    self->ran = true;
    zt__mailbox_quiesce(self);
    self->in_run = false;
    return status;
}

static void
s_stop_from_thread(void *arg)
{
    zt_reactor_t *r = arg;
    atomic_store(&r->stop_requested, true);
}

int
zt_reactor_stop(zt_reactor_t *self)
{
    ZT_ASSERT(self);
    /* Another thread must not touch the reactor, which might be gone: the mailbox checks, and
     * says whether this is the reactor thread (for which the reactor cannot vanish meanwhile). */
    bool local = false;
    int rc = zt__call_from_thread(self, s_stop_from_thread, self, &local);
    if (rc != 0)
        return rc;
    /* On the reactor thread the call was queued locally; the flag is also set now. */
    if (local && atomic_exchange(&self->stop_requested, true))
        return ZT_ESTATE;
    return 0;
}

int
zt_reactor_crash(zt_reactor_t *self)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (!self->in_run || self->shutdown_started)
        return ZT_ESTATE;
    self->loop_exit = true;
    self->crashed = true;
    return 0;
}

int
zt_reactor_set_shutdown_timeout(zt_reactor_t *self, double seconds)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (!(seconds > 0))
        return ZT_EINVAL;
    self->shutdown_timeout = seconds;
    return 0;
}

/* --- observability ---------------------------------------------------------------------- */

void
zt_reactor_stats(const zt_reactor_t *self, zt_reactor_stats_t *stats)
{
    ZT_ASSERT(self && stats);
    *stats = self->stats;
    stats->timers_pending = self->ext_clock ? zt_clock_delayed_calls(self->ext_clock, NULL, 0)
                                            : zt__timers_pending(&self->timers);
    size_t regs = 0;
    for (size_t i = 0; i < self->nregs; i++)
        regs += self->regs[i].kind != ZT__REG_MAILBOX && !self->regs[i].removed &&
                !(self->signal_fd >= 0 && self->regs[i].kind == ZT__REG_READER &&
                  ((zmq_pollitem_t *)self->items)[i].fd == self->signal_fd);
    stats->registrations = regs;
}

int
zt_reactor_set_slow_callback_threshold(zt_reactor_t *self, double seconds)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    if (!(seconds >= 0))
        return ZT_EINVAL;
    self->slow_threshold_ns = (int64_t)llround(fmin(seconds, 1e9) * 1e9);
    return 0;
}

int
zt_reactor_set_callback_name_(zt_reactor_t *self, void (*fn)(void), const char *name)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    for (size_t i = 0; i < self->nnames; i++) {
        if (self->names[i].fn != fn)
            continue;
        free(self->names[i].name);
        self->names[i] = self->names[--self->nnames];
        break;
    }
    if (!name)
        return 0;
    size_t len = strlen(name) + 1;
    char *copy = malloc(len);
    zt__cb_name_t *names = copy ? realloc(self->names, (self->nnames + 1) * sizeof *names) : NULL;
    if (!names) {
        free(copy);
        return ZT_ENOMEM;
    }
    memcpy(copy, name, len);
    self->names = names;
    self->names[self->nnames++] = (zt__cb_name_t){.fn = fn, .name = copy};
    return 0;
}

/* --- signals ---------------------------------------------------------------------------- */

static pthread_mutex_t s_sig_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the state below */
static zt_reactor_t *s_sig_reactor;  /* Borrowed: the reactor handling signals, or NULL */
static int s_sig_pipe[2] = {-1, -1}; /* Owned: the self-pipe */
static volatile sig_atomic_t s_sig_write_fd = -1; /* the write end, as the handler sees it */
static struct sigaction s_sig_old_int;            /* SIGINT's disposition before */
static struct sigaction s_sig_old_term;           /* SIGTERM's disposition before */

static void
s_sig_handler(int sig)
{
    int saved = errno;
    unsigned char byte = (unsigned char)sig;
    if (s_sig_write_fd >= 0) {
        ssize_t n = write(s_sig_write_fd, &byte, 1); /* full pipe: a stop is pending anyway */
        (void)n;
    }
    errno = saved;
}

static void
s_sig_readable(zt_reactor_t *r, int fd, void *arg)
{
    (void)arg;
    unsigned char buf[64];
    ssize_t n;
    int last = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        last = buf[n - 1];
    if (last == 0)
        return;
    ZT_LOG_INFO("received %s: stopping the reactor", last == SIGINT ? "SIGINT" : "SIGTERM");
    int rc = zt_reactor_stop(r);
    if (rc != 0 && rc != ZT_ESTATE)
        ZT_LOG_ERROR("cannot stop on a signal: %s", zt_strerror(rc));
}

static int
s_set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    int fdfl = fcntl(fd, F_GETFD);
    if (fl < 0 || fdfl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

int
zt_reactor_handle_signals(zt_reactor_t *self)
{
    ZT_ASSERT(self);
    ZT__ASSERT_REACTOR_THREAD(self);
    pthread_mutex_lock(&s_sig_lock);
    int rc = 0;
    if (s_sig_reactor) {
        rc = s_sig_reactor == self ? 0 : ZT_ESTATE;
        goto done;
    }
    rc = ZT_ESYS;
    if (pipe(s_sig_pipe) != 0 || s_set_flags(s_sig_pipe[0]) != 0 ||
        s_set_flags(s_sig_pipe[1]) != 0) {
        ZT_LOG_ERROR("cannot make the signal pipe: %s", strerror(errno));
        goto failed;
    }
    rc = s_reg_add(self, ZT__REG_READER, NULL, s_sig_pipe[0], ZMQ_POLLIN, s_sig_readable, NULL,
                   NULL);
    if (rc != 0)
        goto failed;
    s_sig_write_fd = s_sig_pipe[1];
    struct sigaction sa = {.sa_handler = s_sig_handler};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &s_sig_old_int);
    sigaction(SIGTERM, &sa, &s_sig_old_term);
    s_sig_reactor = self;
    self->signal_fd = s_sig_pipe[0];
    goto done;
failed:
    for (int i = 0; i < 2; i++) {
        if (s_sig_pipe[i] >= 0)
            close(s_sig_pipe[i]);
        s_sig_pipe[i] = -1;
    }
done:
    pthread_mutex_unlock(&s_sig_lock);
    return rc;
}

static void
s_signals_release(zt_reactor_t *r)
{
    pthread_mutex_lock(&s_sig_lock);
    if (s_sig_reactor == r) {
        sigaction(SIGINT, &s_sig_old_int, NULL);
        sigaction(SIGTERM, &s_sig_old_term, NULL);
        s_sig_write_fd = -1;
        close(s_sig_pipe[0]);
        close(s_sig_pipe[1]);
        s_sig_pipe[0] = s_sig_pipe[1] = -1;
        s_sig_reactor = NULL;
        r->signal_fd = -1;
    }
    pthread_mutex_unlock(&s_sig_lock);
}
