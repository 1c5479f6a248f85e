/*  tests/support/support.h - the helpers every test suite may use, linked into each of them
 *
 *  One copy of what the suites kept writing again:
 *    - a capture: a Deferred link that keeps the last result it got, and counts its calls;
 *    - an unhandled-failure counter, installed as the Deferred unhandled handler for one test;
 *    - a log capture: counts errors and warnings logged through zt_log, keeps the last of each;
 *    - a gate: a condition worker threads wait on until the test opens it, bounded by a deadline so
 *      that a broken test fails instead of hanging;
 *    - a reactor fixture: run a reactor until a condition holds, or with a deadline timer that
 *      stops it, so that no wait in a test is unbounded;
 *    - the test clock itself is the library's (<ztwist/test_clock.h>): time that moves only when a
 *      test advances it, for every test that needs time without waiting for it.
 *
 *  Names start with support_. State lives in the caller's fixture, never in statics (except the
 * unhandled handler, which the library itself keeps process-wide).  */
#ifndef ZTWIST_TESTS_SUPPORT_H
#define ZTWIST_TESTS_SUPPORT_H

#include <ztwist.h>
#include <ztwist/test_clock.h>

#include <pthread.h>
#include <stdbool.h>

/* --- capture -------------------------------------------------------------------------------- */

/* What a capture link saw. Zero-initialise it; release it with support_capture_release. */
typedef struct support_capture {
    int calls;          /* how many times the link ran */
    zt_result_t result; /* the last result received; Owned */
} support_capture_t;

/* A zt_deferred_fn: keeps the result it receives in arg (a support_capture_t) and leaves None. */
zt_result_t support_capture(zt_result_t result, void *arg);

/* Release the kept result. */
void support_capture_release(support_capture_t *c);

/* --- unhandled failures ---------------------------------------------------------------------- */

/* The unhandled Deferred failures reported while installed. */
typedef struct support_unhandled {
    int count;         /* failures reported */
    char message[256]; /* the last one's zt_failure_message */
    char text[256];    /* the last one as zt_failure_format writes it */
} support_unhandled_t;

/* Make u the unhandled handler (zt_deferred_set_unhandled_handler). */
void support_unhandled_install(support_unhandled_t *u);

/* Put the default handler back. */
void support_unhandled_remove(void);

/* --- log capture ----------------------------------------------------------------------------- */

/* What was logged while installed. Fields are written under lock (any thread may log); read them
 * after the threads that log have been joined, or from the thread that logs. */
typedef struct support_log {
    pthread_mutex_t lock;    /* guards the fields below while installed */
    int errors;              /* messages logged at ZT_LOG_ERROR */
    int warnings;            /* messages logged at ZT_LOG_WARNING */
    char last_error[1024];   /* the last error's message */
    char last_warning[1024]; /* the last warning's message */
} support_log_t;

/* Clear log and make it the zt_log handler. */
void support_log_install(support_log_t *log);

/* Put the default log handler back; log keeps what it captured. */
void support_log_remove(support_log_t *log);

/* --- gate ------------------------------------------------------------------------------------ */

/* A condition threads wait on until the test opens it. */
typedef struct support_gate {
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t cond;  /* signalled when the gate opens */
    bool open;            /* the gate is open: waiters return */
    int arrived;          /* how many waiters reached the gate */
    double seconds;       /* the longest a waiter waits before it gives up */
} support_gate_t;

/* A closed gate whose waiters give up after seconds. */
void support_gate_init(support_gate_t *g, double seconds);
void support_gate_fini(support_gate_t *g);
/* Count an arrival, then wait until the gate is open or its deadline passed. Any thread. */
void support_gate_wait(support_gate_t *g);
/* Open the gate and wake every waiter. Any thread. */
void support_gate_open(support_gate_t *g);
/* How many waiters have arrived. Any thread. */
int support_gate_arrived(support_gate_t *g);

/* --- reactor fixture ------------------------------------------------------------------------- */

/* A condition a test waits for. */
typedef bool support_cond_fn(void *arg);

/* Iterate r (passes of at most 10 ms) until cond(arg) holds; false when seconds of real time
 * passed first. */
bool support_run_until(zt_reactor_t *r, support_cond_fn *cond, void *arg, double seconds);

/* Run r with body(arg) as its first callback and a deadline timer seconds away that opens gate
 * (when not NULL, so that blocked work can finish) and stops the reactor. The body or what it
 * starts must stop the reactor. Returns true when run returned before the deadline. */
bool support_run_with_deadline(zt_reactor_t *r, double seconds, zt_reactor_fn *body, void *arg,
                               support_gate_t *gate);

#endif
