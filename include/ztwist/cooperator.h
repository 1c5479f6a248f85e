/*  ztwist/cooperator.h - run long iterations a step at a time without starving the reactor
 *  (Twisted's task.Cooperator, cooperate and coiterate)
 *
 *  A cooperator runs its tasks in passes scheduled on a clock (the reactor's: zt_reactor_clock).
 * Each pass runs one step of each runnable task in turn, round after round, until its time slice
 * is used up (or its step bound is reached), then yields to the clock, so the reactor serves I/O
 * and timers between passes. A task is a step function called again and again until it says it is
 * done:
 *
 *      zt_result_t step(bool *done, void *arg)
 *
 * Returning a value (released) means one step done; a failure ends the task with that failure; a
 * Deferred makes the task wait for it (the other tasks go on) and the task fails if the Deferred
 * does. Setting *done ends the task after this step (a Deferred returned with it is still waited
 * for).
 *
 *  A task can be paused (pauses nest), resumed and stopped; zt_cooperative_task_when_done gives a
 * Deferred fired when it ends: with no value when done, with the failure of a failed step, with
 * ZT_CANCELLED_ERROR when stopped.
 *
 *  Time: the slice is measured on the monotonic clock (<ztwist/time.h>), the passes are scheduled
 * on the given clock; with a test clock, bound each pass by steps (zt_cooperator_set_max_steps)
 * and give passes a delay (zt_cooperator_set_pass_delay) for tests that do not depend on timing.
 *
 *  Threads: every function here is for the thread that uses the clock (the reactor thread).  */
#ifndef ZTWIST_COOPERATOR_H
#define ZTWIST_COOPERATOR_H

#include <ztwist/clock.h>
#include <ztwist/common.h>
#include <ztwist/deferred.h>

typedef struct zt_cooperator zt_cooperator_t;
typedef struct zt_cooperative_task zt_cooperative_task_t;

/** One step of a task; see the header's comment for what it returns. done is false on entry. */
typedef zt_result_t zt_cooperator_step_fn(bool *done, void *arg);

/** Twisted's default time slice per pass, in seconds. */
#define ZT_COOPERATOR_TIME_SLICE 0.01

/**
 *  Create a cooperator.
 *  @param clock       required; borrowed, must outlive the cooperator
 *  @param time_slice  seconds of steps per pass; <= 0 means ZT_COOPERATOR_TIME_SLICE
 *  @return a new cooperator the caller owns, or NULL when out of memory or clock is NULL
 */
ZT_EXPORT ZT_NODISCARD zt_cooperator_t *zt_cooperator_new(const zt_clock_t *clock,
                                                          double time_slice);

/**
 *  Stop every task (their Deferreds fail with ZT_CANCELLED_ERROR), destroy the cooperator and NULL
 * the pointer. Task handles stay valid until released. Never from a step.
 *  @param self_p  NULL or a NULL cooperator does nothing
 */
ZT_EXPORT void zt_cooperator_destroy(zt_cooperator_t **self_p);

/**
 *  End each pass after at most max_steps steps too (0, the default: the time slice alone).
 *  @return 0
 */
ZT_EXPORT int zt_cooperator_set_max_steps(zt_cooperator_t *self, size_t max_steps);

/**
 *  Wait this long between passes (Twisted's Cooperator scheduler). The default, 0, runs the next
 * pass on the reactor's next loop pass, after its I/O and timers. A test clock runs calls that fall
 * due during an advance inside that advance, so on a test clock set a delay d > 0 and advance by d
 * to run one pass.
 *  @return 0, or ZT_EINVAL when seconds is negative or not a number
 */
ZT_EXPORT int zt_cooperator_set_pass_delay(zt_cooperator_t *self, double seconds);

/**
 *  Add a task (Twisted's cooperate). Its first step runs in a later pass, never in this call.
 *  @param fn       the step; required
 *  @param arg      passed to fn
 *  @param free_fn  called once on arg when the task ends (done, failed or stopped); NULL for none
 *  @param task_p   NULL, or receives a handle the caller owns (zt_cooperative_task_release)
 *  @return 0; ZT_EINVAL (fn NULL); ZT_ESHUTDOWN (the cooperator was stopped); ZT_ENOMEM. On
 * failure fn never runs and free_fn is not called.
 */
ZT_EXPORT int zt_cooperator_cooperate(zt_cooperator_t *self, zt_cooperator_step_fn *fn, void *arg,
                                      zt_free_fn *free_fn, zt_cooperative_task_t **task_p);

/**
 *  Add a task and return its Deferred (Twisted's coiterate).
 *  @return a Deferred the caller owns, fired as zt_cooperative_task_when_done's; NULL on the
 * failures of zt_cooperator_cooperate (fn never runs then)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_coiterate(zt_cooperator_t *self, zt_cooperator_step_fn *fn,
                                                   void *arg, zt_free_fn *free_fn);

/**
 *  Stop every task and refuse new ones (Twisted's Cooperator.stop).
 */
ZT_EXPORT void zt_cooperator_stop(zt_cooperator_t *self);

/** How many tasks have not ended. */
ZT_EXPORT size_t zt_cooperator_task_count(const zt_cooperator_t *self);

/**
 *  A Deferred fired when the task ends (Twisted's whenDone): with no value when done, the step's
 * failure when it failed, ZT_CANCELLED_ERROR when stopped; already fired when the task has ended.
 *  @return a new Deferred the caller owns, or NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_cooperative_task_when_done(zt_cooperative_task_t *self);

/** Pause the task (pauses nest). @return 0, or ZT_ESTATE when it has ended */
ZT_EXPORT int zt_cooperative_task_pause(zt_cooperative_task_t *self);

/** Undo one pause. @return 0; ZT_ESTATE when it has ended or is not paused */
ZT_EXPORT int zt_cooperative_task_resume(zt_cooperative_task_t *self);

/** Stop the task: it ends with ZT_CANCELLED_ERROR. A Deferred it waits on is left alone. @return
 * 0, or ZT_ESTATE when it has ended */
ZT_EXPORT int zt_cooperative_task_stop(zt_cooperative_task_t *self);

/** Whether the task has ended (done, failed or stopped). */
ZT_EXPORT bool zt_cooperative_task_is_done(const zt_cooperative_task_t *self);

/** How many steps the task has run. */
ZT_EXPORT uint64_t zt_cooperative_task_steps(const zt_cooperative_task_t *self);

/**
 *  Release a task handle and NULL the pointer; the task goes on.
 *  @param self_p  NULL or a NULL handle does nothing
 */
ZT_EXPORT void zt_cooperative_task_release(zt_cooperative_task_t **self_p);

#endif
