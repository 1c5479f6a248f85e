/*  futures/deferred_gc.c - unhandled failures and the collector of abandoned wait graphs
 *
 *  A Deferred's failure that nobody handled is reported when its last reference goes
 * (zt__deferred_report_unhandled, from zt__deferred_destroy), to the handler the program set or to
 * the log, and counted; in strict mode it aborts. Deferreds that wait on each other hold
 * references both ways, so a wait graph that the program abandoned is freed here by trial
 * deletion (zt__deferred_collect). See the design notes of deferred.c.  */
#include "deferred_impl.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic(zt_unhandled_fn *) s_unhandled_fn; /* NULL means the default (log) */
static _Atomic(void *) s_unhandled_arg;           /* Borrowed: the handler's arg */
static atomic_uint_least64_t s_unhandled_count;   /* unhandled failures reported */
static atomic_int s_strict = -1;                  /* 0, 1, or -1: follow ZTWIST_STRICT */

static bool
s_strict_mode(void)
{
    int strict = atomic_load(&s_strict);
    if (strict >= 0)
        return strict != 0;
    const char *env = getenv("ZTWIST_STRICT");
    return env && strcmp(env, "1") == 0;
}

void
zt__deferred_report_unhandled(const zt_failure_t *failure)
{
    atomic_fetch_add(&s_unhandled_count, 1);
    zt_unhandled_fn *handler = atomic_load(&s_unhandled_fn);
    if (handler) {
        handler(failure, atomic_load(&s_unhandled_arg));
    } else {
        char text[1024];
        zt__failure_describe(failure, text, sizeof text);
        ZT_LOG_ERROR("Unhandled error in Deferred: %s", text);
    }
    if (s_strict_mode()) {
        fprintf(stderr, "ztwist: unhandled error in Deferred in strict mode: aborting\n");
        fflush(stderr);
        abort();
    }
}

/* Whether self holds a K_CONTINUE or K_CHAIN link: a reference to another Deferred. */
static bool
s_has_links_to_deferreds(const zt_deferred_t *self)
{
    const uint8_t *kinds = zt__deferred_kinds_c(self);
    for (uint32_t i = self->head; i < self->count; i++)
        if (kinds[i] == K_CONTINUE || kinds[i] == K_CHAIN)
            return true;
    return false;
}

/* The gathered graph of zt__deferred_collect: its Deferreds, marked F_MARK while they are in it. */
typedef struct {
    zt_deferred_t **nodes;               /* Owned unless it is `local` */
    uint32_t len;                        /* Deferreds gathered */
    uint32_t cap;                        /* room in nodes */
    zt_deferred_t *local[S_STACK_LOCAL]; /* the first ones, without an allocation */
} s_graph_t;

/* Add d to the graph unless it is there already; false when the graph is full. */
static bool
s_graph_add(s_graph_t *g, zt_deferred_t *d)
{
    if (d->flags & F_MARK)
        return true;
    if (g->len == g->cap) {
        if (g->cap >= S_COLLECT_MAX_NODES)
            return false;
        zt_deferred_t **bigger = malloc(2 * g->cap * sizeof *bigger);
        if (!bigger)
            return false;
        memcpy(bigger, g->nodes, g->len * sizeof *bigger);
        if (g->nodes != g->local)
            free(g->nodes);
        g->nodes = bigger;
        g->cap *= 2;
    }
    d->flags |= F_MARK;
    g->nodes[g->len++] = d;
    return true;
}

/* For every reference d holds on another Deferred (the one it waits on, its waiters, the
 * Deferreds it chains to), add delta to that Deferred's count; with gather, first add it to the
 * graph (false when the graph is full). */
static bool
s_graph_edges(s_graph_t *g, zt_deferred_t *d, int delta, bool gather)
{
    if (zt__deferred_is_waiting(d)) {
        zt_deferred_t *inner = d->result.ptr;
        if (gather && !s_graph_add(g, inner))
            return false;
        inner->refs += (uint32_t)delta;
    }
    const uint8_t *kinds = zt__deferred_kinds(d);
    const zt__deferred_link_t *links = zt__deferred_links(d);
    for (uint32_t i = d->head; i < d->count; i++) {
        if (kinds[i] == K_CONTINUE || kinds[i] == K_CHAIN) {
            zt_deferred_t *other = links[i].arg;
            if (gather && !s_graph_add(g, other))
                return false;
            other->refs += (uint32_t)delta;
        }
    }
    return true;
}

/* Free an abandoned graph of Deferreds. Waiting makes a reference cycle (the waiter holds the
 * inner Deferred, the inner Deferred's K_CONTINUE holds the waiter) and chain_deferred adds
 * references too; Python's collector frees such cycles when nothing else can reach them, and so
 * does this, by trial deletion: gather every Deferred reachable from self through the references
 * Deferreds hold on each other (at most S_COLLECT_MAX_NODES), take those references off the
 * counts, and if every count is then 0, no reference comes from outside: nothing can ever fire,
 * cancel or unpause any of them (a Deferred whose links are running is held by the runner, so it
 * never qualifies). They are freed as unreachable Python objects are: links are not run, and a
 * Failure still held is reported. Otherwise the counts are put back. Wait edges go both ways, so a
 * wait graph is found from any of its Deferreds; a Deferred reached only through another's
 * chain_deferred is found from that other one. A graph larger than the bound is left alone. */
void
zt__deferred_collect(zt_deferred_t *self)
{
    if (!zt__deferred_is_waiting(self) && !s_has_links_to_deferreds(self))
        return; /* the common case: it holds no Deferred, so it is in no cycle */
    s_graph_t g = {.len = 0, .cap = S_STACK_LOCAL};
    g.nodes = g.local;
    bool garbage = s_graph_add(&g, self);
    for (uint32_t n = 0; garbage && n < g.len; n++)
        garbage = s_graph_edges(&g, g.nodes[n], 0, true);
    if (garbage) {
        for (uint32_t n = 0; n < g.len; n++)
            s_graph_edges(&g, g.nodes[n], -1, false);
        for (uint32_t n = 0; garbage && n < g.len; n++)
            garbage = g.nodes[n]->refs == 0 && !(g.nodes[n]->flags & F_RUNNING);
        if (!garbage)
            for (uint32_t n = 0; n < g.len; n++)
                s_graph_edges(&g, g.nodes[n], 1, false);
    }
    for (uint32_t n = 0; n < g.len; n++)
        g.nodes[n]->flags &= (uint8_t)~F_MARK;
    if (garbage) {
        /* Every count is 0: cut the edges inside the graph, then free each Deferred. */
        for (uint32_t n = 0; n < g.len; n++) {
            zt_deferred_t *d = g.nodes[n];
            if (zt__deferred_is_waiting(d))
                d->result = zt_ok_none();
            for (uint32_t i = d->head; i < d->count; i++)
                if (zt__deferred_kinds(d)[i] == K_CONTINUE || zt__deferred_kinds(d)[i] == K_CHAIN)
                    zt__deferred_kinds(d)[i] = K_DEAD;
        }
        for (uint32_t n = 0; n < g.len; n++)
            zt__deferred_destroy(g.nodes[n]);
    }
    if (g.nodes != g.local)
        free(g.nodes);
}

void
zt_deferred_set_unhandled_handler(zt_unhandled_fn *handler, void *arg)
{
    atomic_store(&s_unhandled_arg, arg);
    atomic_store(&s_unhandled_fn, handler);
}

void
zt_deferred_set_strict(bool strict)
{
    atomic_store(&s_strict, strict ? 1 : 0);
}

uint64_t
zt_deferred_unhandled_count(void)
{
    return atomic_load(&s_unhandled_count);
}
