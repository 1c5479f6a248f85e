/*  tests/futures/differential/interp.c - runs an op script against ztwist's Deferred, prints a log
 *
 *  The C half of the differential test against Twisted: twisted_run.py generates a random op
 * script and runs it against Twisted's Deferred; this program runs the same script against
 * ztwist's public Deferred API and must print the same log, line for line. run.sh compares them.
 *
 *  The script is one op a line, read from stdin (i, j: Deferred numbers below ZT_DIFF_MAX; name: a
 * label the link prints with the result it receives):
 *
 *      new i c          create Deferred i, with a canceller (printing "canceller di") when c is 1
 *      cb i name        add a callback that returns its value + 1
 *      eb i name        add an errback that recovers with 100
 *      fcb i name       add a callback that fails with a plain error
 *      both i name      add a link that passes on whatever it receives
 *      pair i name      add_callbacks(fcb, eb)
 *      wait i j name    add a callback that returns (waits for) Deferred j
 *      ewait i j name   add an errback that returns (waits for) Deferred j
 *      fire i v         fire i with the integer v; prints "fire i ok" or "fire i already"
 *      fail i           fire i with a plain error; prints "fail i ok" or "fail i already"
 *      pause i / unpause i / cancel i / chain i j
 *      timeout i s      add a timeout of s seconds on the test clock
 *      advance s        move the test clock forward s seconds
 *
 *  After the script it prints each Deferred's final state ("final i <value>|!<Type>|uncalled|
 * waiting"), drops every reference and prints how many failures were reported unhandled.
 *
 *  Two known differences, forced by C and documented in <ztwist/deferred.h>, are kept out of the
 * comparison by twisted_run.py (its docstring says how); this program runs the API as it is.
 * Exit status: 0 after a complete run, 2 on a malformed script or out of memory.  */
#include <ztwist.h>

#include <ztwist/test_clock.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZT_DIFF_MAX 16 /* how many Deferreds a script may use */

typedef struct s_interp s_interp_t;

/* The arg of one link or canceller: what it prints and what it waits for. */
typedef struct {
    char name[32];      /* the label printed with the received result */
    int target;         /* for wait/ewait: the Deferred waited for */
    s_interp_t *interp; /* Borrowed: the interpreter, for its Deferreds */
} s_link_t;

/* The interpreter's whole state. */
struct s_interp {
    zt_deferred_t *deferreds[ZT_DIFF_MAX]; /* Owned: one reference each, NULL when not created */
    s_link_t **links;                      /* Owned: every link arg, freed at the end */
    size_t link_count;                     /* how many entries of links are used */
    size_t link_cap;                       /* how many entries links has room for */
    zt_test_clock_t *clock;                /* Owned: the clock timeouts run on */
    int unhandled;                         /* failures reported unhandled so far */
};

static void
s_note(const char *name, zt_result_t result)
{
    if (zt_is_err(result))
        printf("%s:!%s\n", name, zt_failure_type(zt_result_failure(result))->name);
    else
        printf("%s:%ld\n", name, (long)zt_result_int(result));
}

static zt_result_t
s_add_one(zt_result_t result, void *arg)
{
    s_link_t *link = arg;
    s_note(link->name, result);
    return zt_ok_int(zt_result_int(result) + 1);
}

static zt_result_t
s_recover(zt_result_t result, void *arg)
{
    s_link_t *link = arg;
    s_note(link->name, result);
    zt_result_release(&result);
    return zt_ok_int(100);
}

static zt_result_t
s_fail(zt_result_t result, void *arg)
{
    s_link_t *link = arg;
    s_note(link->name, result);
    zt_result_release(&result);
    return zt_err(zt_failure_new(ZT_ERROR, "x"));
}

static zt_result_t
s_pass(zt_result_t result, void *arg)
{
    s_link_t *link = arg;
    s_note(link->name, result);
    return result;
}

static zt_result_t
s_wait(zt_result_t result, void *arg)
{
    s_link_t *link = arg;
    s_note(link->name, result);
    zt_result_release(&result);
    return zt_wait_for(zt_deferred_ref(link->interp->deferreds[link->target]));
}

static void
s_canceller(zt_deferred_t *d, void *arg)
{
    (void)d;
    s_link_t *link = arg;
    printf("canceller %s\n", link->name);
}

static void
s_on_unhandled(const zt_failure_t *failure, void *arg)
{
    (void)failure;
    s_interp_t *interp = arg;
    interp->unhandled++;
}

static s_link_t *
s_link_new(s_interp_t *interp, const char *name, int target)
{
    if (interp->link_count == interp->link_cap) {
        size_t cap = interp->link_cap ? interp->link_cap * 2 : 64;
        s_link_t **links = realloc(interp->links, cap * sizeof *links);
        if (!links)
            return NULL;
        interp->links = links;
        interp->link_cap = cap;
    }
    s_link_t *link = calloc(1, sizeof *link);
    if (!link)
        return NULL;
    snprintf(link->name, sizeof link->name, "%s", name);
    link->target = target;
    link->interp = interp;
    interp->links[interp->link_count++] = link;
    return link;
}

static bool
s_valid(const s_interp_t *interp, int i, bool must_exist)
{
    return i >= 0 && i < ZT_DIFF_MAX && (!must_exist || interp->deferreds[i]);
}

/* Add a link of kind op ("cb", "eb", "fcb", "both", "pair") to d. */
static int
s_add_link(zt_deferred_t *d, const char *op, s_link_t *link)
{
    if (!strcmp(op, "cb"))
        return zt_deferred_add_callback(d, s_add_one, link);
    if (!strcmp(op, "eb"))
        return zt_deferred_add_errback(d, s_recover, link);
    if (!strcmp(op, "fcb"))
        return zt_deferred_add_callback(d, s_fail, link);
    if (!strcmp(op, "both"))
        return zt_deferred_add_both(d, s_pass, link);
    if (!strcmp(op, "pair"))
        return zt_deferred_add_callbacks(d, s_fail, s_recover, link);
    return ZT_EINVAL;
}

/* Run one script line; 0, or -1 when it is malformed or memory ran out. */
static int
s_run_line(s_interp_t *interp, const char *line)
{
    char op[16], name[24];
    int i, j;
    double x;
    if (sscanf(line, "%15s", op) != 1)
        return 0; /* a blank line */
    if (!strcmp(op, "new") && sscanf(line, "%*s %d %d", &i, &j) == 2 && s_valid(interp, i, false) &&
        !interp->deferreds[i]) {
        if (j) {
            char label[24];
            snprintf(label, sizeof label, "d%d", i);
            s_link_t *link = s_link_new(interp, label, i);
            if (!link)
                return -1;
            interp->deferreds[i] = zt_deferred_new_with_canceller(s_canceller, link);
        } else {
            interp->deferreds[i] = zt_deferred_new();
        }
        return interp->deferreds[i] ? 0 : -1;
    }
    if ((!strcmp(op, "wait") || !strcmp(op, "ewait")) &&
        sscanf(line, "%*s %d %d %23s", &i, &j, name) == 3 && s_valid(interp, i, true) &&
        s_valid(interp, j, true)) {
        s_link_t *link = s_link_new(interp, name, j);
        if (!link)
            return -1;
        if (op[0] == 'w')
            return zt_deferred_add_callback(interp->deferreds[i], s_wait, link) ? -1 : 0;
        return zt_deferred_add_errback(interp->deferreds[i], s_wait, link) ? -1 : 0;
    }
    if (!strcmp(op, "chain") && sscanf(line, "%*s %d %d", &i, &j) == 2 &&
        s_valid(interp, i, true) && s_valid(interp, j, true))
        return zt_deferred_chain_deferred(interp->deferreds[i], interp->deferreds[j]) ? -1 : 0;
    if (!strcmp(op, "fire") && sscanf(line, "%*s %d %d", &i, &j) == 2 && s_valid(interp, i, true)) {
        int rc = zt_deferred_callback(interp->deferreds[i], zt_ok_int(j));
        printf("fire %d %s\n", i, rc ? "already" : "ok");
        return 0;
    }
    if (!strcmp(op, "advance") && sscanf(line, "%*s %lf", &x) == 1) {
        zt_test_clock_advance(interp->clock, x);
        return 0;
    }
    if (!strcmp(op, "timeout") && sscanf(line, "%*s %d %lf", &i, &x) == 2 &&
        s_valid(interp, i, true))
        return zt_deferred_add_timeout(interp->deferreds[i], x, zt_test_clock_clock(interp->clock))
                   ? -1
                   : 0;
    if (sscanf(line, "%*s %d %23s", &i, name) == 2 && s_valid(interp, i, true)) {
        s_link_t *link = s_link_new(interp, name, i);
        return link && s_add_link(interp->deferreds[i], op, link) == 0 ? 0 : -1;
    }
    if (sscanf(line, "%*s %d", &i) == 1 && s_valid(interp, i, true)) {
        zt_deferred_t *d = interp->deferreds[i];
        if (!strcmp(op, "fail")) {
            int rc = zt_deferred_errback(d, zt_failure_new(ZT_ERROR, "f"));
            printf("fail %d %s\n", i, rc ? "already" : "ok");
        } else if (!strcmp(op, "pause")) {
            zt_deferred_pause(d);
        } else if (!strcmp(op, "unpause")) {
            zt_deferred_unpause(d);
        } else if (!strcmp(op, "cancel")) {
            zt_deferred_cancel(d);
        } else {
            return -1;
        }
        return 0;
    }
    return -1;
}

static void
s_print_final(const s_interp_t *interp)
{
    for (int i = 0; i < ZT_DIFF_MAX; i++) {
        const zt_deferred_t *d = interp->deferreds[i];
        if (!d)
            continue;
        const zt_result_t *result = zt_deferred_peek(d);
        if (!zt_deferred_is_called(d))
            printf("final %d uncalled\n", i);
        else if (!result)
            printf("final %d waiting\n", i);
        else if (zt_is_err(*result))
            printf("final %d !%s\n", i, zt_failure_type(zt_result_failure(*result))->name);
        else
            printf("final %d %ld\n", i, (long)zt_result_int(*result));
    }
}

int
main(void)
{
    s_interp_t interp = {.clock = zt_test_clock_new()};
    if (!interp.clock)
        return 2;
    zt_deferred_set_unhandled_handler(s_on_unhandled, &interp);
    int status = 0;
    char line[256];
    unsigned long number = 0;
    while (status == 0 && fgets(line, sizeof line, stdin)) {
        number++;
        if (s_run_line(&interp, line) != 0) {
            fprintf(stderr, "interp: line %lu: bad op or out of memory: %s", number, line);
            status = 2;
        }
    }
    s_print_final(&interp);
    for (int i = 0; i < ZT_DIFF_MAX; i++)
        zt_deferred_unref(&interp.deferreds[i]);
    printf("unhandled %d\n", interp.unhandled);
    zt_test_clock_destroy(&interp.clock);
    for (size_t k = 0; k < interp.link_count; k++)
        free(interp.links[k]);
    free(interp.links);
    zt_deferred_set_unhandled_handler(NULL, NULL);
    return status;
}
