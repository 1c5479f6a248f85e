/*  futures/deferred_list.c - DeferredList, gather_results and race
 *
 *  A group watches its members through one callback/errback pair per member and fires its own
 * Deferred when the flags say the group is settled.
 *
 *  Design notes
 *    - A group (s_group) holds: one reference to its own Deferred for its whole life (to test
 *      whether it has fired and to fire it), one reference to each member until that member's
 *      result reaches the group's pair, and the result list until it is handed to the Deferred.
 *    - The group's memory is freed when `holds` reaches 0. holds counts the members whose pair has
 *      not run yet, plus temporary holds by code that may make members deliver while it runs (the
 *      constructor, the canceller): a delivery can free the group otherwise.
 *    - Every member delivers exactly once (its pair runs once), so every slot's reference is
 *      dropped exactly once and finished counts to count exactly once.
 *    - When the last member delivers, the group's Deferred has fired (by the group, or earlier by
 *      a cancel): so the canceller, whose arg is the group, can never run on a freed group.
 *    - The group fires its Deferred only while it has not been fired (zt_deferred_is_called), so a
 *      cancel that fired it first is never answered with a refused second fire.
 *    - A member's cancel is made with a temporary reference: the member's chain may drop the last
 *      other reference while cancel still runs.  */
#include "base/base.h"

#include <ztwist/deferred_list.h>

#include <stdlib.h>

const zt_failure_type_t zt__failure_group_type = {"FailureGroup", &zt__error_type, 0};

/* One member's entry in a result list. */
typedef struct s_entry {
    zt_result_t result; /* the member's value or failure; Owned; zt_ok_none() until done */
    bool done;          /* the member's result reached the group before it fired */
    bool succeeded;     /* the result was a value */
} s_entry;

struct zt_result_list {
    size_t size;       /* how many entries */
    size_t index;      /* the member whose value fired the list, or ZT_RESULT_LIST_NO_INDEX */
    s_entry entries[]; /* one per member, in input order */
};

typedef struct s_group s_group;

/* The arg of the pair added to one member. */
typedef struct s_slot {
    s_group *group;        /* Borrowed: the group the slot lives in */
    size_t index;          /* the member's position in the input array */
    zt_deferred_t *member; /* Owned reference until the member delivers; then NULL */
} s_slot;

struct s_group {
    zt_deferred_t *deferred;   /* Owned reference: the Deferred the group fires */
    zt_result_list_t *results; /* Owned until handed to deferred (or dropped); then NULL */
    size_t count;              /* how many members */
    size_t finished;           /* how many members have delivered */
    size_t holds;              /* pending members plus temporary holds; the group is freed at 0 */
    int flags;                 /* ZT_DEFERRED_LIST_* */
    bool race;                 /* a race: the winner cancels the rest; all failed -> FailureGroup */
    s_slot slots[];            /* one per member */
};

static zt_result_list_t *
s_list_new(size_t size)
{
    zt_result_list_t *self = calloc(1, sizeof(*self) + size * sizeof(s_entry));
    if (!self)
        return NULL;
    self->size = size;
    self->index = ZT_RESULT_LIST_NO_INDEX;
    for (size_t i = 0; i < size; i++)
        self->entries[i].result = zt_ok_none();
    return self;
}

void
zt_result_list_destroy(zt_result_list_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_result_list_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        zt_result_release(&self->entries[i].result);
    free(self);
    *self_p = NULL;
}

void
zt_result_list_free(void *self)
{
    zt_result_list_t *list = self;
    zt_result_list_destroy(&list);
}

size_t
zt_result_list_size(const zt_result_list_t *self)
{
    ZT_ASSERT(self);
    return self->size;
}

static const s_entry *
s_entry_at(const zt_result_list_t *self, size_t i)
{
    ZT_ASSERT(self);
    ZT_ASSERT_MSG(i < self->size, "result list index out of range");
    return &self->entries[i];
}

bool
zt_result_list_is_done(const zt_result_list_t *self, size_t i)
{
    return s_entry_at(self, i)->done;
}

bool
zt_result_list_succeeded(const zt_result_list_t *self, size_t i)
{
    return s_entry_at(self, i)->succeeded;
}

const zt_result_t *
zt_result_list_at(const zt_result_list_t *self, size_t i)
{
    return &s_entry_at(self, i)->result;
}

void *
zt_result_list_ptr(const zt_result_list_t *self, size_t i)
{
    return zt_result_ptr(s_entry_at(self, i)->result);
}

intptr_t
zt_result_list_int(const zt_result_list_t *self, size_t i)
{
    return zt_result_int(s_entry_at(self, i)->result);
}

const zt_failure_t *
zt_result_list_failure(const zt_result_list_t *self, size_t i)
{
    return zt_result_failure(s_entry_at(self, i)->result);
}

zt_result_t
zt_result_list_take(zt_result_list_t *self, size_t i)
{
    s_entry_at(self, i);
    zt_result_t taken = self->entries[i].result;
    self->entries[i].result = zt_ok_none();
    return taken;
}

size_t
zt_result_list_index(const zt_result_list_t *self)
{
    ZT_ASSERT(self);
    return self->index;
}

/* Drop one hold; the last frees the group. */
static void
s_group_release(s_group *group)
{
    ZT_ASSERT(group->holds > 0);
    if (--group->holds > 0)
        return;
    zt_result_list_destroy(&group->results);
    zt_deferred_unref(&group->deferred);
    free(group);
}

/* Whether member results are still recorded: the group has not fired. */
static bool
s_group_is_open(const s_group *group)
{
    return group->results && !zt_deferred_is_called(group->deferred);
}

/* Cancel member i if it has not delivered, holding a reference across the cancel. */
static void
s_cancel_member(s_group *group, size_t i)
{
    if (!group->slots[i].member)
        return;
    zt_deferred_t *member = zt_deferred_ref(group->slots[i].member);
    zt_deferred_cancel(member);
    zt_deferred_unref(&member);
}

/* The group's canceller: cancel every member still pending (Twisted's DeferredList.cancel). */
static void
s_group_cancel(zt_deferred_t *d, void *arg)
{
    (void)d;
    s_group *group = arg;
    group->holds++;
    for (size_t i = 0; i < group->count; i++)
        s_cancel_member(group, i);
    s_group_release(group);
}

/* Fire the group's Deferred with the result list. */
static void
s_group_fire_list(s_group *group)
{
    zt_result_list_t *results = group->results;
    group->results = NULL;
    zt_deferred_callback(group->deferred, zt_ok(results, zt_result_list_free));
}

/* Fail the group's Deferred with a FirstError wrapping sub (taken over) from member i. */
static void
s_group_fail_first(s_group *group, size_t i, zt_failure_t *sub)
{
    zt_result_list_destroy(&group->results);
    char text[256] = "out of memory";
    if (sub)
        zt_failure_format(sub, text, sizeof text);
    zt_failure_t *first = zt_failure_new(ZT_FIRST_ERROR, "member %zu failed: %s", i, text);
    if (first) {
        zt_failure_set_detail(first, (intptr_t)i);
        zt_failure_set_cause(first, &sub);
    }
    zt_failure_destroy(&sub);
    zt_deferred_errback(group->deferred, first);
}

/* Fail a race whose members all failed: a FailureGroup caused by member 0's failure. */
static void
s_group_fail_all(s_group *group)
{
    zt_result_t cause = zt_ok_none();
    if (group->count > 0)
        cause = zt_result_list_take(group->results, 0);
    zt_result_list_destroy(&group->results);
    zt_failure_t *sub = zt_result_failure(cause);
    char text[256] = "no members";
    if (sub)
        zt_failure_format(sub, text, sizeof text);
    zt_failure_t *all = zt_failure_new(ZT_FAILURE_GROUP,
                                       "all %zu Deferreds of the race failed; "
                                       "the first: %s",
                                       group->count, text);
    if (all) {
        zt_failure_set_detail(all, (intptr_t)group->count);
        zt_failure_set_cause(all, &sub);
    }
    zt_failure_destroy(&sub);
    zt_deferred_errback(group->deferred, all);
}

/* Record a member's result in the open group; return what the member's chain goes on with. */
static zt_result_t
s_group_record(s_group *group, size_t i, zt_result_t result)
{
    s_entry *entry = &group->results->entries[i];
    entry->done = true;
    entry->succeeded = !zt_is_err(result);
    if (entry->succeeded) {
        entry->result = result;
        return result.free_fn ? zt_ok_none() : result;
    }
    if (group->race || (group->flags & ZT_DEFERRED_LIST_CONSUME_ERRORS)) {
        entry->result = result;
        return zt_ok_none();
    }
    entry->result = zt_err(zt_failure_dup(zt_result_failure(result)));
    return result;
}

/* A member's result reached its slot: record it, fire the group when settled, and return what
 * the member's chain goes on with. */
static zt_result_t
s_deliver(s_slot *slot, zt_result_t result)
{
    s_group *group = slot->group;
    size_t i = slot->index;
    zt_deferred_t *member = slot->member;
    slot->member = NULL;
    group->finished++;
    bool failed = zt_is_err(result);
    bool consume = group->race || (group->flags & ZT_DEFERRED_LIST_CONSUME_ERRORS);
    zt_result_t out = result;

    if (!s_group_is_open(group)) {
        if (failed && consume) {
            zt_result_release(&result);
            out = zt_ok_none();
        }
    } else if (failed && (group->flags & ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK)) {
        zt_failure_t *sub;
        if (consume) {
            sub = zt_result_failure(result);
            out = zt_ok_none();
        } else {
            sub = zt_failure_dup(zt_result_failure(result));
        }
        s_group_fail_first(group, i, sub);
    } else {
        out = s_group_record(group, i, result);
        if (!failed && (group->flags & ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK)) {
            group->results->index = i;
            if (group->race) {
                /* As Twisted's race: the losers are cancelled before the winner is announced.
                 * Closing the group first makes their results pass through, consumed. */
                zt_result_list_t *results = group->results;
                group->results = NULL;
                for (size_t j = 0; j < group->count; j++)
                    s_cancel_member(group, j);
                group->results = results;
            }
            s_group_fire_list(group);
        } else if (group->finished == group->count) {
            if (group->race)
                s_group_fail_all(group);
            else
                s_group_fire_list(group);
        }
    }
    s_group_release(group);
    zt_deferred_unref(&member);
    return out;
}

static zt_result_t
s_on_result(zt_result_t result, void *arg)
{
    return s_deliver(arg, result);
}

/* Build a group over count > 0 members and attach it to each. */
static zt_deferred_t *
s_group_start(zt_deferred_t *const *deferreds, size_t count, int flags, bool race)
{
    ZT_ASSERT(deferreds);
    s_group *group = calloc(1, sizeof(*group) + count * sizeof(s_slot));
    if (!group)
        return NULL;
    group->results = s_list_new(count);
    group->deferred = zt_deferred_new_with_canceller(s_group_cancel, group);
    if (!group->results || !group->deferred) {
        zt_result_list_destroy(&group->results);
        zt_deferred_unref(&group->deferred);
        free(group);
        return NULL;
    }
    group->count = count;
    group->flags = flags;
    group->race = race;
    /* Every member counts as pending until it delivers, plus one hold for this constructor: an
     * already-fired member delivers inside add_callbacks below. */
    group->holds = count + 1;
    for (size_t i = 0; i < count; i++) {
        ZT_ASSERT_MSG(deferreds[i], "a member Deferred is NULL");
        group->slots[i] =
            (s_slot){.group = group, .index = i, .member = zt_deferred_ref(deferreds[i])};
    }
    zt_deferred_t *caller = zt_deferred_ref(group->deferred);
    for (size_t i = 0; i < count; i++) {
        int rc = zt_deferred_add_callbacks(group->slots[i].member, s_on_result, s_on_result,
                                           &group->slots[i]);
        if (rc < 0) {
            zt_result_t out = s_deliver(
                &group->slots[i],
                zt_err(zt_failure_from_code(rc, "could not watch member %zu of the group", i)));
            zt_result_release(&out);
        }
    }
    s_group_release(group);
    return caller;
}

zt_deferred_t *
zt_deferred_list_new(zt_deferred_t *const *deferreds, size_t count, int flags)
{
    ZT_ASSERT_MSG((flags & ~7) == 0, "unknown ZT_DEFERRED_LIST_* flag");
    if (count > 0)
        return s_group_start(deferreds, count, flags, false);
    if (flags & ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK)
        return zt_deferred_new(); /* nothing can succeed: never fires, as in Twisted */
    zt_result_list_t *empty = s_list_new(0);
    if (!empty)
        return NULL;
    return zt_deferred_succeed(zt_ok(empty, zt_result_list_free));
}

zt_deferred_t *
zt_gather_results(zt_deferred_t *const *deferreds, size_t count, bool consume_errors)
{
    return zt_deferred_list_new(deferreds, count,
                                ZT_DEFERRED_LIST_FIRE_ON_ONE_ERRBACK |
                                    (consume_errors ? ZT_DEFERRED_LIST_CONSUME_ERRORS : 0));
}

zt_deferred_t *
zt_race(zt_deferred_t *const *deferreds, size_t count)
{
    if (count > 0)
        return s_group_start(
            deferreds, count,
            ZT_DEFERRED_LIST_FIRE_ON_ONE_CALLBACK | ZT_DEFERRED_LIST_CONSUME_ERRORS, true);
    zt_failure_t *none = zt_failure_new(ZT_FAILURE_GROUP, "a race of no Deferreds has no winner");
    return zt_deferred_fail(none);
}
