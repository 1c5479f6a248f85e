/*  ztwist/deferred_list.h - wait for a group of Deferreds: DeferredList, gather_results, race
 *
 *  Twisted's DeferredList, gatherResults and race. Each takes an array of member Deferreds and
 * returns one Deferred that fires when the group is settled:
 *
 *      zt_deferred_list_new   all members fired (or the first success / first failure, by flag);
 *                             fires with a zt_result_list_t of every member's (success, result)
 *      zt_gather_results      all members succeeded: a zt_result_list_t; or the first failure,
 *                             wrapped in a ZT_FIRST_ERROR
 *      zt_race                the first member to succeed wins and the others are cancelled;
 *                             fails with ZT_FAILURE_GROUP when every member failed
 *
 *  The members. The group takes its own reference to each member (the caller keeps its own) and
 * appends one callback/errback pair to each, so links added to a member before the call shape what
 * the group sees and links added after see what the group leaves (below). The group drops its
 * reference to a member when that member's result reaches it. Every member must fire eventually or
 * be cancelled (cancelling the group cancels them all): a member that is dropped by everyone else
 * without ever firing keeps itself and the group alive, as it would keep a Python frame waiting.
 *
 *  The results. The group's Deferred fires with zt_ok(list, zt_result_list_free): an opaque
 * zt_result_list_t, in the order of the input array, one entry per member with a success flag and
 * the member's result. A callback reads it in place (zt_result_ptr(r) gives the list, borrowed),
 * or takes it with zt_result_take and later zt_result_list_destroy; entries can be taken out one by
 * one with zt_result_list_take. What happens to a member's result when it reaches the group, while
 * the group has not fired yet:
 *    - a value that owns something (a free_fn) moves into the list, and the member's chain goes on
 *      with no value (None): a value has one owner in C;
 *    - a value with no free_fn (an int, a borrowed pointer) is copied into the list and the
 *      member's chain goes on with it unchanged, as in Twisted;
 *    - a failure, with ZT_DEFERRED_LIST_CONSUME_ERRORS: moves into the list, and the member's
 *      chain goes on with None, so it is never reported unhandled (Twisted's consumeErrors);
 *    - a failure, without it: the list keeps a copy (zt_failure_dup) and the member's chain keeps
 *      the original, which is reported unhandled when the member goes, unless a link added to the
 *      member handles it. This is Twisted's behaviour, and the reason consume_errors exists.
 *  Once the group has fired (fire-on-one flags, race), later members' results are not recorded:
 *  they pass through the member untouched, except that a failure is still consumed (replaced by
 *  None) with CONSUME_ERRORS, and always in a race.
 *
 *  Cancelling the group's Deferred before it fires cancels every member that has not delivered
 * yet (Twisted's DeferredList.cancel); the group then fires as its members' results dictate
 * (usually a list of CancelledError entries, or a FirstError). When a member cannot answer
 * at once (it is paused), the group's Deferred fails with its own ZT_CANCELLED_ERROR and the
 * member's late result passes through (a difference: Twisted's DeferredList.cancel does not
 * fail the list itself, which stays unfired until the member answers). Cancelling after the group
 * fired does nothing.
 *
 *  Threads: every function here is for the thread that owns the Deferreds (the reactor thread).  */
#ifndef ZTWIST_DEFERRED_LIST_H
#define ZTWIST_DEFERRED_LIST_H

#include <ztwist/common.h>
#include <ztwist/deferred.h>
#include <ztwist/failure.h>
#include <ztwist/result.h>

/** The results of a group of Deferreds, one entry per member, in input order. Opaque. */
typedef struct zt_result_list zt_result_list_t;

/** Flags of zt_deferred_list_new; combine with `|`. */
typedef enum zt_deferred_list_flag {
    /** Fire with the list as soon as one member succeeds; zt_result_list_index names it. When every
     * member fails, fire with the full list anyway (Twisted). An empty list then never fires. */
    ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK = 1,
    /** Fail as soon as one member fails, with a ZT_FIRST_ERROR whose cause is that member's
     * failure and whose zt_failure_detail is its index. */
    ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK = 2,
    /** Take members' failures over: the member's chain goes on with None instead, so nothing is
     * reported unhandled twice (see the header comment). */
    ZT_DEFERRED_LIST_CONSUME_ERRORS = 4
} zt_deferred_list_flag_t;

/** zt_result_list_index when no single member fired the list. */
#define ZT_RESULT_LIST_NO_INDEX SIZE_MAX

ZT_EXPORT extern const zt_failure_type_t zt__failure_group_type;
/** The failure of a race in which every member failed ("FailureGroup", ZT_ESYS): the cause is the
 * failure of the first member (index 0), zt_failure_detail the number of members. */
#define ZT_FAILURE_GROUP (&zt__failure_group_type)

/**
 *  Watch a group of Deferreds and fire when they are settled (Twisted's DeferredList). Without
 * flags, the returned Deferred fires with a zt_result_list_t once every member has fired; an empty
 * group fires at once with an empty list.
 *  @param deferreds  the members; borrowed array (not kept), the group takes its own reference to
 * each member. May be NULL when count is 0. A member may appear more than once.
 *  @param count      how many members
 *  @param flags      0, or ZT_DEFERRED_LIST_* flags combined with `|`
 *  @return a new Deferred, one reference owned by the caller, which may already have fired (members
 * that fired before the call are seen at once); NULL when out of memory (no member is touched)
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_deferred_list_new(zt_deferred_t *const *deferreds,
                                                           size_t count, int flags);

/**
 *  Gather the values of a group of Deferreds (Twisted's gatherResults): fires with a
 * zt_result_list_t whose entries all succeeded, or fails at the first member failure with a
 * ZT_FIRST_ERROR (cause: the failure, or a copy of it without consume_errors; detail: the index).
 * It is zt_deferred_list_new with ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK.
 *  @param consume_errors  as ZT_DEFERRED_LIST_CONSUME_ERRORS
 *  @return as zt_deferred_list_new
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_gather_results(zt_deferred_t *const *deferreds,
                                                        size_t count, bool consume_errors);

/**
 *  Race a group of Deferreds (newer Twisted's race): the first member to succeed wins, the group
 * fires with a zt_result_list_t whose zt_result_list_index is the winner's (its value is the
 * winner's entry; members that failed earlier have theirs), and every other member that has not
 * fired yet is cancelled. When every member fails, the group fails with ZT_FAILURE_GROUP. Member
 * failures are always consumed (the member's chain goes on with None). Cancelling the returned
 * Deferred cancels every member. An empty race fails at once with ZT_FAILURE_GROUP (Twisted's
 * never fires; a Deferred that can never fire is a trap in C).
 *  @return as zt_deferred_list_new
 */
ZT_EXPORT ZT_NODISCARD zt_deferred_t *zt_race(zt_deferred_t *const *deferreds, size_t count);

/**
 *  How many entries the list has: the number of members.
 */
ZT_EXPORT size_t zt_result_list_size(const zt_result_list_t *self);

/**
 *  Whether member i had fired when the list was delivered. Always true in a list delivered after
 * every member fired; false for members still pending when a fire-on-one list or a race fired.
 *  @param i  an index below zt_result_list_size (asserted)
 */
ZT_EXPORT bool zt_result_list_is_done(const zt_result_list_t *self, size_t i);

/**
 *  Whether member i succeeded (Twisted's SUCCESS flag of the (success, result) pair). False for a
 * member that failed or had not fired.
 *  @param i  an index below zt_result_list_size (asserted)
 */
ZT_EXPORT bool zt_result_list_succeeded(const zt_result_list_t *self, size_t i);

/**
 *  Member i's result: a value or a failure, zt_ok_none() when not done or already taken.
 *  @param i  an index below zt_result_list_size (asserted)
 *  @return a pointer borrowed from the list, valid while the list lives; never NULL
 */
ZT_EXPORT const zt_result_t *zt_result_list_at(const zt_result_list_t *self, size_t i);

/**
 *  Shorthand for zt_result_ptr(*zt_result_list_at(self, i)): member i's value, borrowed; NULL for a
 * failure.
 */
ZT_EXPORT void *zt_result_list_ptr(const zt_result_list_t *self, size_t i);

/** Shorthand for zt_result_int(*zt_result_list_at(self, i)); 0 for a failure. */
ZT_EXPORT intptr_t zt_result_list_int(const zt_result_list_t *self, size_t i);

/**
 *  Shorthand for zt_result_failure(*zt_result_list_at(self, i)): member i's failure, borrowed from
 * the list; NULL for a value.
 */
ZT_EXPORT const zt_failure_t *zt_result_list_failure(const zt_result_list_t *self, size_t i);

/**
 *  Take member i's result out of the list: the caller owns it (and releases it with
 * zt_result_release or passes it on), and the entry becomes zt_ok_none(); its done and success
 * flags are unchanged.
 *  @param i  an index below zt_result_list_size (asserted)
 */
ZT_EXPORT ZT_NODISCARD zt_result_t zt_result_list_take(zt_result_list_t *self, size_t i);

/**
 *  The member whose value fired the list: in a FIRE_ON_ONE_CALLBACK list or a race, the winner's
 * index (Twisted's (result, index) pair); ZT_RESULT_LIST_NO_INDEX in a list that fired because
 * every member fired.
 */
ZT_EXPORT size_t zt_result_list_index(const zt_result_list_t *self);

/**
 *  Destroy a list taken out of a result (zt_result_take), releasing every result still in it, and
 * NULL the pointer.
 *  @param self_p  NULL or a NULL list does nothing
 */
ZT_EXPORT void zt_result_list_destroy(zt_result_list_t **self_p);

/**
 *  The zt_free_fn the group's Deferred fires with: zt_result_list_destroy for a plain pointer.
 *  @param self  a zt_result_list_t, or NULL (nothing happens)
 */
ZT_EXPORT void zt_result_list_free(void *self);

#endif
