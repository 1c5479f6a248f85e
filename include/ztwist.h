/*  ztwist.h - the umbrella header: everything a ztwist program needs
 *
 *  ztwist is Twisted's programming model in C: a reactor actor that runs every callback, a pool of
 * worker actors for blocking work, Deferreds that carry results and failures, and bridges to TCP
 * and to worker processes on other machines. Actors talk by messages over inproc ZeroMQ; where
 * shared memory carries data between threads for speed (the pool's batches, the mailbox's producer
 * records, the Majordomo worker's socket loan, the actors' inbox) it stays inside one file, with
 * the invariant that keeps it safe stated there and in docs/model.md.
 *
 *  Threads. Almost every call is for the thread that runs the reactor. These are the calls that are
 * safe from any thread, and the only ones:
 *    - zt_strerror, zt_version, zt_time_now, zt_time_now_ns
 *    - zt_log, zt_log_level, zt_log_set_level
 *    - zt_deferred_unhandled_count
 *    - zt_reactor_call_from_thread, zt_reactor_stop, zt_reactor_is_reactor_thread
 *    - zt_call_in_thread, zt_call_in_thread_with_callback, zt_call_multiple_in_thread,
 *      zt_blocking_call_from_thread(_timeout) (not on the reactor thread), zt_thread_is_cancelled,
 *      zt_thread_is_worker
 *    - zt_actor_tell, zt_actor_stop, zt_actor_ref, zt_actor_unref, zt_actor_is_alive,
 *      zt_actor_reactor, zt_actor_register, zt_actor_unregister, zt_actor_whereis, zt_reply_send,
 *      zt_reply_destroy, zt_actor_dead_letters, zt_actor_dropped_replies
 *    - zt_mdp_worker_stop, zt_mdp_worker_served, zt_curve_*, zt_frames_* (a list is
 *      used by one thread at a time)
 *  Values rather than calls: a zt_failure_t and a zt_result_t that holds no Deferred have no thread
 *  affinity; one thread at a time may use one, and it may be handed to another thread.
 */
#ifndef ZTWIST_H
#define ZTWIST_H

#include <ztwist/common.h>
#include <ztwist/log.h>
#include <ztwist/time.h>
#include <ztwist/failure.h>
#include <ztwist/result.h>
#include <ztwist/clock.h>
#include <ztwist/deferred.h>
#include <ztwist/deferred_list.h>
#include <ztwist/deferred_lock.h>
#include <ztwist/deferred_queue.h>
#include <ztwist/reactor.h>
#include <ztwist/coro.h>
#include <ztwist/test_clock.h>
#include <ztwist/looping_call.h>
#include <ztwist/defer_later.h>
#include <ztwist/cooperator.h>
#include <ztwist/pool.h>
#include <ztwist/threads.h>
#include <ztwist/actor.h>
#include <ztwist/supervisor.h>
#include <ztwist/protocol.h>
#include <ztwist/resolve.h>
#include <ztwist/tcp.h>
#include <ztwist/unix.h>
#include <ztwist/udp.h>
#include <ztwist/signals.h>
#include <ztwist/process.h>
#include <ztwist/line_receiver.h>
#include <ztwist/curve.h>
#include <ztwist/frames.h>
#include <ztwist/remote.h>
#include <ztwist/broker.h>
#include <ztwist/mdp_worker.h>

#endif
