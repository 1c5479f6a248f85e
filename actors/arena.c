/*  actors/arena.c - the pool's work items: an arena of fixed records, and the queue
 *
 *  Design notes.
 *
 *  Items are 40-byte records handed out in order from chunks of ZT__CHUNK_ITEMS (no malloc per
 * item, no header or rounding per item), and the queue is simply the run of records from the
 * cursor (qchunk, qindex) to the last one handed out: no separate array of pointers. A record
 * never moves, so its address names the item to the canceller, to a worker's batch and in the
 * result messages. Each chunk counts its live records (`live`, reactor thread only); a chunk that
 * no longer hands out records (`retired`: a newer chunk exists, or the pool is gone) is freed when
 * its count drops to 0 (one is kept as a spare), so a finished burst gives its memory back. A full
 * chunk whose records are all released is reused in place. Released records are marked
 * ZT__KIND_RELEASED, so that a stop's deadline can find the records still out (pool.c).
 *
 *  Every function here runs on the reactor thread, except zt__chunk_unpin, which a detached
 * worker calls on its own thread: once the pool has handed a chunk over (zt__chunk_hand_over),
 * its atomic `pins` (acq_rel) counts the detached workers' records, and whoever brings it to 0
 * frees the chunk. Until the hand-over `pins` only goes down (each early release makes it
 * negative), so it cannot reach 0 before the pool has added its count.  */
#include "pool_impl.h"

#include <stdlib.h>

static void
s_chunk_unlink(zt_pool_t *p, zt__chunk_t *c)
{
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        p->chunks = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    c->lprev = c->lnext = NULL;
}

/* A chunk that is retired and has no live record: kept as the pool's spare if it has none, else
 * freed. */
void
zt__chunk_drop(zt_pool_t *p, zt__chunk_t *c)
{
    s_chunk_unlink(p, c);
    if (!p->spare)
        p->spare = c;
    else
        free(c);
}

/* Release a record handed out by zt__item_new: its chunk goes when it was the last of a retired
 * one. Reactor thread. */
void
zt__item_release(zt_pool_t *p, zt__work_t *item)
{
    zt__chunk_t *c = zt__chunk_of(item);
    ZT_ASSERT(c->live > 0);
    item->kind = ZT__KIND_RELEASED;
    if (--c->live == 0 && c->retired)
        zt__chunk_drop(p, c);
}

/* A detached worker releases one of its records, on its own thread: the chunk goes with the last
 * such record once the pool has handed the chunk over (zt__chunk_hand_over). */
void
zt__chunk_unpin(zt__chunk_t *c)
{
    if (atomic_fetch_sub_explicit(&c->pins, 1, memory_order_acq_rel) == 1)
        free(c);
}

/* At a stop's deadline: the records still live in c are held by detached workers, which release
 * them with zt__chunk_unpin. pins counts those releases down (it may already be negative); adding
 * the live count hands the chunk to whoever brings pins to 0. Returns true when the pool keeps
 * the chunk (every such record was released already). */
bool
zt__chunk_hand_over(zt_pool_t *p, zt__chunk_t *c)
{
    int64_t held = (int64_t)c->live;
    c->live = 0;
    if (atomic_fetch_add_explicit(&c->pins, held, memory_order_acq_rel) + held == 0)
        return true;
    s_chunk_unlink(p, c);
    if (p->tail == c)
        p->tail = NULL;
    if (p->qchunk == c)
        p->qchunk = NULL;
    return false;
}

/* Retire a chunk: it hands out no more records, and goes with its last one. */
void
zt__chunk_retire(zt_pool_t *p, zt__chunk_t *c)
{
    c->retired = true;
    if (c->live == 0)
        zt__chunk_drop(p, c);
}

/* Hand out the next record and put it at the end of the queue; NULL when out of memory. */
zt__work_t *
zt__item_new(zt_pool_t *p)
{
    if (!p->tail || p->tail_used == ZT__CHUNK_ITEMS) {
        if (p->tail && p->tail->live == 0) {
            /* Every record of the full tail is released, so the queue is empty and its cursor
             * rests at the tail's end: start the tail over. */
            ZT_ASSERT(p->qlen == 0 && p->qchunk == p->tail);
            p->tail_used = 0;
            p->qindex = 0;
        } else {
            zt__chunk_t *c = p->spare ? p->spare : malloc(sizeof *c);
            if (!c)
                return NULL;
            p->spare = NULL;
            c->next = NULL;
            c->live = 0;
            c->retired = false;
            atomic_init(&c->pins, 0);
            c->lprev = NULL;
            c->lnext = p->chunks;
            if (p->chunks)
                p->chunks->lprev = c;
            p->chunks = c;
            if (p->tail) {
                p->tail->next = c;
                if (p->qlen == 0) { /* the cursor rests at the old tail's end */
                    p->qchunk = c;
                    p->qindex = 0;
                }
                zt__chunk_retire(p, p->tail);
            } else {
                p->qchunk = c;
                p->qindex = 0;
            }
            p->tail = c;
            p->tail_used = 0;
        }
    }
    zt__work_t *item = &p->tail->items[p->tail_used];
    item->index = (uint16_t)p->tail_used++;
    p->tail->live++;
    p->qlen++;
    return item;
}

/* Free a tombstone (an item cancelled before it started). */
void
zt__item_free_tombstone(zt__work_t *item)
{
    if (item->kind == ZT__WORK_DEFER)
        zt_deferred_unref(&item->x.d);
    else if (item->kind == ZT__WORK_MULTIPLE)
        free(item->u.call.arg);
    zt__item_release(item->u.call.pool, item); /* never run: its pool pointer is intact */
}

/* Take the queue's first item. The cursor moves on to the next chunk as soon as it passes the end
 * of one (the item just taken keeps that chunk alive meanwhile), so it never rests on a chunk that
 * may be freed. Dispatching reads no item: the worker is the first to touch them, on its own core.
 * Tombstones go to the worker too, which skips them. */
zt__work_t *
zt__queue_pop(zt_pool_t *p)
{
    if (p->qlen == 0)
        return NULL;
    zt__work_t *item = &p->qchunk->items[p->qindex++];
    p->qlen--;
    if (p->qindex == ZT__CHUNK_ITEMS && p->qchunk->next) {
        p->qchunk = p->qchunk->next;
        p->qindex = 0;
    }
    return item;
}
