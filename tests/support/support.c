/*  tests/support/support.c - the helpers of support.h
 *
 *  The gate is the one place here that threads share: its fields are read and written only under
 * its mutex, and a waiter's wait is bounded by the gate's deadline.  */
#include "support.h"

#include <stdio.h>
#include <time.h>

zt_result_t
support_capture(zt_result_t result, void *arg)
{
    support_capture_t *c = arg;
    c->calls++;
    zt_result_release(&c->result);
    c->result = result;
    return zt_ok_none();
}

void
support_capture_release(support_capture_t *c)
{
    zt_result_release(&c->result);
}

static void
s_on_unhandled(const zt_failure_t *failure, void *arg)
{
    support_unhandled_t *u = arg;
    u->count++;
    snprintf(u->message, sizeof u->message, "%s", zt_failure_message(failure));
    zt_failure_format(failure, u->text, sizeof u->text);
}

void
support_unhandled_install(support_unhandled_t *u)
{
    zt_deferred_set_unhandled_handler(s_on_unhandled, u);
}

void
support_unhandled_remove(void)
{
    zt_deferred_set_unhandled_handler(NULL, NULL);
}

static void
s_on_log(zt_log_level_t level, const char *file, int line, const char *func, const char *message,
         void *arg)
{
    (void)file, (void)line, (void)func;
    support_log_t *log = arg;
    pthread_mutex_lock(&log->lock);
    if (level == ZT_LOG_ERROR) {
        log->errors++;
        snprintf(log->last_error, sizeof log->last_error, "%s", message);
    } else if (level == ZT_LOG_WARNING) {
        log->warnings++;
        snprintf(log->last_warning, sizeof log->last_warning, "%s", message);
    }
    pthread_mutex_unlock(&log->lock);
}

void
support_log_install(support_log_t *log)
{
    *log = (support_log_t){.errors = 0};
    pthread_mutex_init(&log->lock, NULL);
    zt_log_set_handler(s_on_log, log);
}

void
support_log_remove(support_log_t *log)
{
    zt_log_set_handler(NULL, NULL);
    pthread_mutex_destroy(&log->lock);
}

void
support_gate_init(support_gate_t *g, double seconds)
{
    *g = (support_gate_t){.seconds = seconds};
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
}

void
support_gate_fini(support_gate_t *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

void
support_gate_wait(support_gate_t *g)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)g->seconds;
    pthread_mutex_lock(&g->lock);
    g->arrived++;
    while (!g->open && pthread_cond_timedwait(&g->cond, &g->lock, &until) == 0) {
    }
    pthread_mutex_unlock(&g->lock);
}

void
support_gate_open(support_gate_t *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

int
support_gate_arrived(support_gate_t *g)
{
    pthread_mutex_lock(&g->lock);
    int n = g->arrived;
    pthread_mutex_unlock(&g->lock);
    return n;
}

bool
support_run_until(zt_reactor_t *r, support_cond_fn *cond, void *arg, double seconds)
{
    double end = zt_time_now() + seconds;
    while (!cond(arg)) {
        if (zt_time_now() > end)
            return false;
        zt_reactor_iterate(r, 0.01);
    }
    return true;
}

/* The deadline timer of support_run_with_deadline. */
typedef struct s_deadline {
    zt_reactor_t *r;      /* Borrowed: the reactor to stop */
    support_gate_t *gate; /* Borrowed: the gate to open, or NULL */
    bool fired;           /* the deadline passed */
} s_deadline_t;

static void
s_on_deadline(void *arg)
{
    s_deadline_t *d = arg;
    d->fired = true;
    if (d->gate)
        support_gate_open(d->gate);
    zt_reactor_stop(d->r);
}

bool
support_run_with_deadline(zt_reactor_t *r, double seconds, zt_reactor_fn *body, void *arg,
                          support_gate_t *gate)
{
    s_deadline_t deadline = {.r = r, .gate = gate};
    zt_delayed_call_t *timer = NULL;
    if (zt_reactor_call_later(r, seconds, s_on_deadline, &deadline, &timer) != 0 ||
        zt_reactor_call_when_running(r, body, arg, NULL) != 0) {
        zt_delayed_call_release(&timer);
        return false;
    }
    int rc = zt_reactor_run(r);
    zt_delayed_call_cancel(timer); /* 0, or ZT_EALREADY when the deadline ran */
    zt_delayed_call_release(&timer);
    return rc == 0 && !deadline.fired;
}
