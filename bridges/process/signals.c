/*  bridges/process/signals.c - reactor callbacks for POSIX signals, through a self-pipe
 *
 *  Design notes.
 *
 *  Signals are process-wide, so the state here is too (statics, guarded by s_lock for the calls,
 * which are made on one reactor's thread but may race with another reactor's). One reactor at a
 * time owns it: s_owner. The signal handler touches only async-signal-safe things: s_pending[sig]
 * (a lock-free atomic set to 1: the handler may run on any thread, and volatile sig_atomic_t is
 * only meant for a handler on the thread it interrupts), one write to the pipe (non-blocking: a
 * full pipe already holds a wake-up, and the pending flag is not lost), and a call to the handler
 * it replaced when that was a function (so zt_reactor_handle_signals's stop still happens).
 * s_old[sig] and s_write_fd are set before the handler is installed and cleared only after the old
 * disposition is back, so the handler never reads them half-made.
 *
 *  The reactor side: the pipe's read end is a reader of the owning reactor. On readable it drains
 * the pipe, then for each signal whose pending flag it clears, runs that signal's callbacks in the
 * order they were added. Callbacks may add or remove callbacks: removal marks the entry dead and
 * the sweep after the pass frees it (Redis's mark-then-sweep), so iteration never sees freed
 * memory.
 *
 *  Lifetime: the state is kept in a reactor extension slot whose finaliser removes every callback
 * still registered when the reactor is destroyed, which restores the dispositions and closes the
 * pipe.
 *
 *  Threads: the calls are for the owning reactor's thread; the handler runs on any thread.  */
#include <ztwist/signals.h>

#include "base/base.h"
#include "runtime/extension.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal handler needs lock-free atomics");

#define SIG_SLOTS 65 /* signal numbers 1..64 (real-time ones included) */

typedef struct entry {
    zt_signal_id_t id;  /* never 0 */
    int signum;         /* the signal */
    zt_signal_fn *fn;   /* the callback, or NULL once removed (swept later) */
    void *arg;          /* Borrowed: its arg */
    struct entry *next; /* Owned: the next entry, in the order added */
} entry_t;

typedef struct state {
    zt_reactor_t *reactor; /* Borrowed: the owning reactor */
    entry_t *entries;      /* Owned: every callback */
    size_t count;          /* live callbacks */
    int running;           /* dispatch depth, to sweep only at the outermost */
} state_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER; /* guards what follows */
static zt_reactor_t *s_owner;             /* Borrowed: the reactor with callbacks, or NULL */
static int s_pipe[2] = {-1, -1};          /* Owned: the self-pipe */
static atomic_int s_write_fd = -1;        /* the write end, as the handler sees it */
static atomic_int s_pending[SIG_SLOTS];   /* set by the handler, cleared by dispatch */
static struct sigaction s_old[SIG_SLOTS]; /* each handled signal's old disposition */
static int s_installed[SIG_SLOTS];        /* live callbacks per signal */
static zt_signal_id_t s_next_id = 1;      /* the next id */
static const char s_slot_key = 0;         /* the reactor slot's key */

static void
s_handler(int sig)
{
    int saved = errno;
    if (sig > 0 && sig < SIG_SLOTS) {
        atomic_store(&s_pending[sig], 1);
        int fd = atomic_load(&s_write_fd);
        if (fd >= 0) {
            unsigned char byte = (unsigned char)sig;
            ssize_t n = write(fd, &byte, 1);
            (void)n;
        }
        /* Pass the delivery on to the handler this one replaced. */
        void (*old)(int) = s_old[sig].sa_handler;
        if (!(s_old[sig].sa_flags & SA_SIGINFO) && old != SIG_DFL && old != SIG_IGN && old)
            old(sig);
    }
    errno = saved;
}

static bool
s_refused(int signum)
{
    return signum <= 0 || signum >= SIG_SLOTS || signum == SIGKILL || signum == SIGSTOP ||
           signum == SIGSEGV || signum == SIGBUS || signum == SIGFPE || signum == SIGILL;
}

static void
s_sweep(state_t *st)
{
    entry_t **pp = &st->entries;
    while (*pp) {
        entry_t *e = *pp;
        if (e->fn) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        free(e);
    }
}

static void
s_on_readable(zt_reactor_t *r, int fd, void *arg)
{
    state_t *st = arg;
    unsigned char buf[64];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    st->running++;
    for (int sig = 1; sig < SIG_SLOTS; sig++) {
        if (!atomic_exchange(&s_pending[sig], 0))
            continue;
        for (entry_t *e = st->entries; e; e = e->next)
            if (e->fn && e->signum == sig)
                e->fn(r, sig, e->arg);
    }
    if (--st->running == 0)
        s_sweep(st);
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

/* Close the pipe and give up ownership; s_lock held, no callback left. */
static void
s_release(state_t *st)
{
    zt_reactor_remove_reader(st->reactor, s_pipe[0]);
    atomic_store(&s_write_fd, -1);
    close(s_pipe[0]);
    close(s_pipe[1]);
    s_pipe[0] = s_pipe[1] = -1;
    s_owner = NULL;
}

/* The first callback of a reactor: make the pipe, register it. s_lock held. */
static int
s_acquire(zt_reactor_t *r, state_t *st)
{
    if (pipe(s_pipe) != 0 || s_set_flags(s_pipe[0]) != 0 || s_set_flags(s_pipe[1]) != 0)
        goto failed;
    if (zt_reactor_add_reader(r, s_pipe[0], s_on_readable, st) != 0)
        goto failed;
    atomic_store(&s_write_fd, s_pipe[1]);
    s_owner = r;
    return 0;
failed:
    ZT_LOG_ERROR("cannot set up the signal pipe: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        if (s_pipe[i] >= 0)
            close(s_pipe[i]);
        s_pipe[i] = -1;
    }
    return ZT_ESYS;
}

static void s_fini(void *ptr);

static state_t *
s_state(zt_reactor_t *r)
{
    state_t *st = zt__reactor_slot(r, &s_slot_key);
    if (st)
        return st;
    st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->reactor = r;
    if (zt__reactor_set_slot(r, &s_slot_key, st, s_fini) != 0) {
        ZT_LOG_ERROR("no reactor extension slot left for signal callbacks");
        free(st);
        return NULL;
    }
    return st;
}

int
zt_signals_add(zt_reactor_t *reactor, int signum, zt_signal_fn *fn, void *arg, zt_signal_id_t *id_p)
{
    ZT_ASSERT(reactor);
    if (!fn || s_refused(signum))
        return ZT_EINVAL;
    state_t *st = s_state(reactor);
    if (!st)
        return ZT_ENOMEM;
    entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return ZT_ENOMEM;
    pthread_mutex_lock(&s_lock);
    int rc = 0;
    if (s_owner && s_owner != reactor) {
        rc = ZT_ESTATE;
        goto done;
    }
    if (!s_owner && (rc = s_acquire(reactor, st)) != 0)
        goto done;
    if (s_installed[signum] == 0) {
        struct sigaction sa = {.sa_handler = s_handler};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(signum, NULL, &s_old[signum]) != 0 || sigaction(signum, &sa, NULL) != 0) {
            ZT_LOG_ERROR("cannot handle signal %d: %s", signum, strerror(errno));
            rc = ZT_ESYS;
            if (st->count == 0)
                s_release(st);
            goto done;
        }
    }
    s_installed[signum]++;
    *e = (entry_t){.id = s_next_id++, .signum = signum, .fn = fn, .arg = arg};
    entry_t **pp = &st->entries;
    while (*pp)
        pp = &(*pp)->next;
    *pp = e;
    e = NULL;
    st->count++;
    if (id_p)
        *id_p = (*pp)->id;
done:
    pthread_mutex_unlock(&s_lock);
    free(e);
    return rc;
}

/* Mark e removed, and restore the signal's disposition with its last callback. s_lock held. */
static void
s_remove(state_t *st, entry_t *e)
{
    int sig = e->signum;
    e->fn = NULL;
    st->count--;
    if (--s_installed[sig] == 0) {
        sigaction(sig, &s_old[sig], NULL);
        atomic_store(&s_pending[sig], 0);
    }
    if (st->count == 0)
        s_release(st);
}

int
zt_signals_remove(zt_reactor_t *reactor, zt_signal_id_t id)
{
    ZT_ASSERT(reactor);
    state_t *st = zt__reactor_slot(reactor, &s_slot_key);
    if (!st || id == 0)
        return ZT_ENOTFOUND;
    int rc = ZT_ENOTFOUND;
    pthread_mutex_lock(&s_lock);
    for (entry_t *e = st->entries; e; e = e->next) {
        if (e->id == id && e->fn) {
            s_remove(st, e);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&s_lock);
    if (st->running == 0)
        s_sweep(st);
    return rc;
}

size_t
zt_signals_count(const zt_reactor_t *reactor)
{
    ZT_ASSERT(reactor);
    const state_t *st = zt__reactor_slot(reactor, &s_slot_key);
    return st ? st->count : 0;
}

static void
s_fini(void *ptr)
{
    state_t *st = ptr;
    pthread_mutex_lock(&s_lock);
    for (entry_t *e = st->entries; e; e = e->next)
        if (e->fn)
            s_remove(st, e);
    pthread_mutex_unlock(&s_lock);
    s_sweep(st);
    free(st);
}
