/*  runtime/reactor.c - the reactor's loop, I/O registrations, lifecycle, signals and counters
 *
 *  Design notes.
 *
 *  One wait. The loop sleeps in the kernel on every registered fd, ZeroMQ socket and the mailbox at
 * once (io.c: epoll on Linux, poll(2) elsewhere, a set kept between waits so a pass costs what is
 * ready, not what is registered); the wait's timeout is the nearest timer, whole milliseconds
 * rounded up, so the loop never wakes early and spins.
 *
 *  A pass: the wait (bounded by the nearest timer, not sleeping when calls are queued or due), the
 * ready I/O callbacks with a batch of mailbox calls, the reactor thread's own queued calls, then
 * the due timers. Twisted's mainLoop runs timers before the poll; waiting first means one
 * iterate(-1) waits for the next event and runs it, whatever it is. What a pass schedules runs on
 * the next pass; a registration removed during a pass is not called again, one added during a
 * pass is first watched in the next (io.c).
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

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    if (zt__io_init(self) != 0)
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
    zt__io_fini(self);
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

/* --- the loop --------------------------------------------------------------------------- */

/* The wait's bound: timeout_ms (-1: none), shortened by the nearest timer; 0 when something is
 * due now. */
static long
s_wait_ms(zt_reactor_t *r, long timeout_ms)
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
    return timeout_ms;
}

static int
s_pass(zt_reactor_t *r, long timeout_ms)
{
    ZT_ASSERT_MSG(!r->in_pass, "zt_reactor_iterate called from inside a reactor callback");
    r->in_pass = true;
    r->stats.passes++;
    r->pass_seq++;
    int rc = zt__io_poll(r, s_wait_ms(r, timeout_ms));
    zt__local_run(r);
    zt__timers_run_due(r);
    zt__io_sweep(r);
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
    stats->registrations = zt__io_registrations(self);
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
    rc = zt_reactor_add_reader(self, s_sig_pipe[0], s_sig_readable, NULL);
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
