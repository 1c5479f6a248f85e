/*  actors/parker.c - how a pool worker waits for its next batch: spin, then sleep
 *
 *  Design notes.
 *
 *  The handover word. A worker's `signal` is IDLE (it finished its batch and no longer reads it),
 * WORK (the reactor filled a batch) or SLEEP (the worker sleeps in recv). The worker stores IDLE
 * before its idle message; the reactor hands a batch over with an exchange to WORK (seq_cst) and
 * sends "B" only if the old value was SLEEP. The parker moves IDLE -> SLEEP with a CAS before it
 * sleeps: losing the CAS to WORK means the batch came, and no message is needed. The parker
 * reads WORK with acquire, which orders the reactor's writes of the batch before the worker's
 * reads; after "B" it loads `signal` with acquire for the same reason (ThreadSanitizer cannot see
 * libzmq's own ordering).
 *
 *  Spinning. Before it sleeps, one worker in the process at a time (s_spinning, a CAS) watches
 * `signal`, so that spinning never takes more than one core:
 *    - after a deep batch (more work is likely at once) for ZT__SPIN_NS at its normal priority;
 *    - after a shallow one (one item: request-response traffic) for ZT__IDLE_SPIN_NS at
 *      SCHED_IDLE, so that it runs only on a core nothing else wants: the next item then costs no
 *      message and no wake-up, and no runnable thread waits for the spinner.
 *  A thread may leave SCHED_IDLE only if RLIMIT_NICE or CAP_SYS_NICE allows it, so the first
 * parker probes that on a throwaway thread (once per process); where it fails, and for a worker
 * whose policy is not SCHED_OTHER, shallow waits do not spin. Work always runs at the policy the
 * thread started with: a parker that cannot leave SCHED_IDLE logs and never spins at it again.
 * ZTWIST_POOL_SPIN=0 (read by the pool when it is made) turns spinning off. A detach
 * (ZT__L_ORPHANED in `link`, acquire) ends a spin and a wait.  */
#include "parker.h"

#include "base/base.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <zmq.h>

static atomic_bool s_spinning;                          /* a worker of the process is spinning */
static pthread_once_t s_probe_once = PTHREAD_ONCE_INIT; /* runs s_probe_idle once */
static bool s_idle_spin_ok; /* a thread can go to SCHED_IDLE and back (set once by s_probe_idle) */

static void *
s_probe_thread(void *arg)
{
    *(bool *)arg = zt__sched_enter_idle() && zt__sched_leave_idle();
    return NULL; /* a thread left at SCHED_IDLE just ends */
}

static void
s_probe_idle(void)
{
    pthread_t thread;
    bool ok = false;
    if (pthread_create(&thread, NULL, s_probe_thread, &ok) == 0 && pthread_join(thread, NULL) == 0)
        s_idle_spin_ok = ok;
}

bool
zt__parker_can_idle_spin(void)
{
    pthread_once(&s_probe_once, s_probe_idle);
    return s_idle_spin_ok;
}

void
zt__parker_init(zt__parker_t *pk, atomic_int *signal, _Atomic(uint32_t) *link,
                _Atomic(uint64_t) *spins, void *sock, bool spin)
{
    *pk = (zt__parker_t){.signal = signal,
                         .link = link,
                         .spins = spins,
                         .sock = sock,
                         .spin = spin,
                         .idle_spin = zt__parker_can_idle_spin() && zt__sched_is_normal()};
}

static bool
s_detached(const zt__parker_t *pk)
{
    return atomic_load_explicit(pk->link, memory_order_acquire) & ZT__L_ORPHANED;
}

/* Watch `signal` for a batch until ns have passed; true when one came. */
static bool
s_spin(const zt__parker_t *pk, int64_t ns)
{
    int64_t until = zt_time_now_ns() + ns;
    bool work = false;
    do {
        for (int i = 0; i < 64 && !work; i++)
            work = atomic_load_explicit(pk->signal, memory_order_acquire) == ZT__SIG_WORK;
    } while (!work && zt_time_now_ns() < until && !s_detached(pk));
    return work;
}

/* Spin as the design notes say, if this worker may and no other one does; true when a batch
 * came meanwhile. */
static bool
s_try_spin(zt__parker_t *pk, bool deep)
{
    bool expect_none = false;
    if (!(deep || pk->idle_spin) || !pk->spin ||
        !atomic_compare_exchange_strong(&s_spinning, &expect_none, true))
        return false;
    atomic_fetch_add_explicit(pk->spins, 1, memory_order_relaxed);
    bool work = false;
    if (deep) {
        work = s_spin(pk, ZT__SPIN_NS);
    } else if (zt__sched_enter_idle()) {
        work = s_spin(pk, ZT__IDLE_SPIN_NS);
        if (!zt__sched_leave_idle()) {
            ZT_LOG_ERROR("pool worker cannot leave SCHED_IDLE: %s", strerror(errno));
            pk->idle_spin = false;
        }
    }
    atomic_store(&s_spinning, false);
    return work;
}

bool
zt__parker_wait(zt__parker_t *pk, bool deep)
{
    if (s_try_spin(pk, deep))
        return true;
    if (s_detached(pk))
        return false;
    int expect = ZT__SIG_IDLE;
    if (!atomic_compare_exchange_strong(pk->signal, &expect, ZT__SIG_SLEEP))
        return true; /* the batch came just now */
    for (;;) {
        char cmd[8];
        int rc = zmq_recv(pk->sock, cmd, sizeof cmd, 0);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return false;
        }
        if (rc >= 1 && cmd[0] == 'B') {
            /* Reads the WORK the reactor stored after filling the batch: orders its writes. */
            atomic_load_explicit(pk->signal, memory_order_acquire);
            return true;
        }
        if (rc >= 1 && cmd[0] == 'T')
            return false;
    }
}
