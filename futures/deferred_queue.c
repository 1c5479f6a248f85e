/*  futures/deferred_queue.c - DeferredQueue: put items, get Deferreds
 *
 *  Design notes
 *    - Two FIFOs, never both non-empty: items waiting for a getter, and getters waiting for an
 *      item. A put serves the oldest getter when there is one; a get takes the oldest item when
 *      there is one.
 *    - An item node owns its item until the item leaves: handed to a getter as zt_ok(item,
 *      free_fn) (the getter's Deferred owns it from then on, even if the fire is refused), or freed
 *      with its free_fn at destroy. So every item is freed exactly once.
 *    - A getter node holds one reference to its Deferred. A getter leaves its FIFO exactly once:
 *      popped by a put (which fires it), removed by its canceller (the Deferred then fails with
 *      ZT_CANCELLED_ERROR), or failed by destroy.
 *    - The canceller's arg is the queue. It can only run while its getter waits, and destroy fires
 *      every waiting getter, so it never runs on a destroyed queue.
 *    - Counts and lists are updated before any Deferred fires, so a chain that runs from put may
 *      put or get again.  */
#include "base/base.h"

#include <ztwist/deferred_queue.h>

#include <stdlib.h>

/* A node of either FIFO. */
typedef struct s_node {
    void *item;              /* an item FIFO: the item; Owned */
    zt_free_fn *free_fn;     /* an item FIFO: frees item, or NULL */
    zt_deferred_t *deferred; /* a getter FIFO: Owned reference to the get Deferred */
    struct s_node *next;     /* the next node, or NULL; Owned */
} s_node;

/* A singly linked FIFO. */
typedef struct s_fifo {
    s_node *head;  /* oldest node, or NULL; Owned */
    s_node *tail;  /* newest node, or NULL; Borrowed from the list */
    size_t length; /* how many nodes */
} s_fifo;

struct zt_deferred_queue {
    s_fifo items;    /* items waiting for a getter */
    s_fifo getters;  /* getters waiting for an item */
    size_t size;     /* the most items that may wait, or ZT_DEFERRED_QUEUE_UNLIMITED */
    size_t backlog;  /* the most getters that may wait, or ZT_DEFERRED_QUEUE_UNLIMITED */
    bool destroying; /* destroy is failing the getters: no more put or get */
};

static void
s_fifo_push(s_fifo *fifo, s_node *node)
{
    node->next = NULL;
    if (fifo->tail)
        fifo->tail->next = node;
    else
        fifo->head = node;
    fifo->tail = node;
    fifo->length++;
}

static s_node *
s_fifo_pop(s_fifo *fifo)
{
    s_node *node = fifo->head;
    if (!node)
        return NULL;
    fifo->head = node->next;
    if (!fifo->head)
        fifo->tail = NULL;
    fifo->length--;
    return node;
}

/* Canceller of a waiting get: take the getter out of the FIFO (the Deferred then fails). */
static void
s_cancel_get(zt_deferred_t *d, void *arg)
{
    zt_deferred_queue_t *self = arg;
    s_node *prev = NULL;
    for (s_node *node = self->getters.head; node; prev = node, node = node->next) {
        if (node->deferred != d)
            continue;
        if (prev)
            prev->next = node->next;
        else
            self->getters.head = node->next;
        if (self->getters.tail == node)
            self->getters.tail = prev;
        self->getters.length--;
        zt_deferred_unref(&node->deferred);
        free(node);
        return;
    }
}

zt_deferred_queue_t *
zt_deferred_queue_new(size_t size, size_t backlog)
{
    zt_deferred_queue_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->size = size;
    self->backlog = backlog;
    return self;
}

void
zt_deferred_queue_destroy(zt_deferred_queue_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_deferred_queue_t *self = *self_p;
    ZT_ASSERT_MSG(!self->destroying, "queue destroyed twice");
    self->destroying = true;
    for (s_node *node; (node = s_fifo_pop(&self->items));) {
        if (node->free_fn)
            node->free_fn(node->item);
        free(node);
    }
    for (s_node *node; (node = s_fifo_pop(&self->getters));) {
        zt_deferred_t *d = node->deferred;
        free(node);
        zt_deferred_errback(d, zt_failure_new(ZT_CANCELLED_ERROR, "the queue was destroyed"));
        zt_deferred_unref(&d);
    }
    free(self);
    *self_p = NULL;
}

int
zt_deferred_queue_put(zt_deferred_queue_t *self, void *item, zt_free_fn *free_fn)
{
    ZT_ASSERT(self);
    ZT_ASSERT_MSG(!self->destroying, "put on a queue being destroyed");
    s_node *getter = s_fifo_pop(&self->getters);
    if (getter) {
        zt_deferred_t *d = getter->deferred;
        free(getter);
        zt_deferred_callback(d, zt_ok(item, free_fn));
        zt_deferred_unref(&d);
        return 0;
    }
    if (self->size != ZT_DEFERRED_QUEUE_UNLIMITED && self->items.length >= self->size)
        return ZT_EFULL;
    s_node *node = malloc(sizeof(*node));
    if (!node)
        return ZT_ENOMEM;
    *node = (s_node){.item = item, .free_fn = free_fn};
    s_fifo_push(&self->items, node);
    return 0;
}

zt_deferred_t *
zt_deferred_queue_get(zt_deferred_queue_t *self)
{
    ZT_ASSERT(self);
    ZT_ASSERT_MSG(!self->destroying, "get on a queue being destroyed");
    if (self->items.head) {
        /* Allocate first, so that an item never leaves the queue without a Deferred to own it. */
        zt_deferred_t *d = zt_deferred_new();
        if (!d)
            return NULL;
        s_node *node = s_fifo_pop(&self->items);
        zt_result_t item = zt_ok(node->item, node->free_fn);
        free(node);
        zt_deferred_callback(d, item);
        return d;
    }
    if (self->backlog != ZT_DEFERRED_QUEUE_UNLIMITED && self->getters.length >= self->backlog)
        return zt_deferred_fail(zt_failure_new(ZT_QUEUE_UNDERFLOW,
                                               "%zu getters already wait on the queue (backlog)",
                                               self->getters.length));
    zt_deferred_t *d = zt_deferred_new_with_canceller(s_cancel_get, self);
    s_node *node = malloc(sizeof(*node));
    if (!d || !node) {
        zt_deferred_unref(&d);
        free(node);
        return NULL;
    }
    *node = (s_node){.deferred = zt_deferred_ref(d)};
    s_fifo_push(&self->getters, node);
    return d;
}

size_t
zt_deferred_queue_pending(const zt_deferred_queue_t *self)
{
    ZT_ASSERT(self);
    return self->items.length;
}

size_t
zt_deferred_queue_waiting(const zt_deferred_queue_t *self)
{
    ZT_ASSERT(self);
    return self->getters.length;
}

size_t
zt_deferred_queue_size(const zt_deferred_queue_t *self)
{
    ZT_ASSERT(self);
    return self->size;
}

size_t
zt_deferred_queue_backlog(const zt_deferred_queue_t *self)
{
    ZT_ASSERT(self);
    return self->backlog;
}
