/*  actors/ask.c - request and reply: zt_actor_ask, zt_actor_reply, reply handles
 *
 *  Design notes. An ask is a record on the asker's reactor (its scheduler's list of pending asks)
 * holding the asker's Deferred; the message carries a pointer to it and a counted reference to the
 * asker's inbox. The reply travels back as an envelope through that inbox (or is delivered at once
 * when the replier runs on the asker's thread), and only the asker's thread touches the record:
 * it fires the Deferred unless it has fired already (timed out, cancelled) -- then the reply is
 * released and counted as dropped -- and frees the record. Every message that carries an ask is
 * answered exactly once (actor.c), so every record is freed by its reply, or by the finaliser of
 * its reactor, which fails what is still pending; a reply that finds the asker's inbox closed is
 * released and counted on the replier's thread. Nothing is leaked on either side.  */
#include "actor_impl.h"

#include <stdlib.h>

struct zt_reply {
    zt__ask_t *ask;        /* Borrowed: the record on the asker's reactor */
    zt__inbox_t *reply_to; /* Owned reference: the asker's inbox */
};

zt_failure_t *
zt__actor_stopped_failure(const char *why)
{
    return zt_failure_new(ZT_ACTOR_STOPPED_ERROR, "actor stopped: %s", why);
}

static void
s_unlink(zt__sched_t *s, zt__ask_t *ask)
{
    if (ask->prev)
        ask->prev->next = ask->next;
    else
        s->asks = ask->next;
    if (ask->next)
        ask->next->prev = ask->prev;
}

static void
s_fire(zt__ask_t *ask, zt_result_t reply)
{
    if (zt_deferred_is_called(ask->d)) { /* the asker has gone: timed out or cancelled */
        zt_result_release(&reply);
        atomic_fetch_add_explicit(&zt__dropped_replies, 1, memory_order_relaxed);
    } else {
        zt_deferred_callback(ask->d, reply);
    }
    zt_deferred_unref(&ask->d);
    free(ask);
}

void
zt__ask_deliver(zt__sched_t *s, zt__env_t *e)
{
    zt__ask_t *ask = e->ask;
    zt_result_t reply = e->reply;
    e->reply = zt_ok_none();
    zt__inbox_unref(&e->reply_to);
    zt__env_free(s, e);
    s_unlink(s, ask);
    s_fire(ask, reply);
}

/* Send reply to ask through its asker's inbox (taken in *home_p). Any thread. */
static void
s_answer(zt__ask_t *ask, zt__inbox_t **home_p, zt_result_t reply)
{
    zt__env_t *e = zt__env_new(NULL);
    if (!e) {
        zt_result_release(&reply);
        reply = zt_err(zt_failure_from_code(ZT_ENOMEM, "sending a reply"));
        /* the envelope is all we need: without it the asker would wait for ever */
        e = zt__env_new(NULL);
        ZT_ASSERT_MSG(e, "out of memory for a reply envelope");
    }
    e->kind = ZT__ENV_REPLY;
    e->ask = ask;
    e->reply = reply;
    e->reply_to = *home_p;
    *home_p = NULL;
    int rc = zt__inbox_post(e->reply_to, e);
    if (rc == 1) {
        zt__ask_deliver(e->reply_to->sched, e);
    } else if (rc < 0) { /* the asker's reactor has gone: its finaliser freed the record */
        zt_result_release(&e->reply);
        zt__inbox_unref(&e->reply_to);
        atomic_fetch_add_explicit(&zt__dropped_replies, 1, memory_order_relaxed);
        free(e);
    }
}

void
zt__ask_answer(zt__env_t *e, zt_result_t reply)
{
    zt__ask_t *ask = e->ask;
    e->ask = NULL;
    if (!ask) {
        zt_result_release(&reply);
        return;
    }
    s_answer(ask, &e->reply_to, reply);
}

void
zt__ask_fini(zt__sched_t *s)
{
    while (s->asks) {
        zt__ask_t *ask = s->asks;
        s_unlink(s, ask);
        s_fire(ask, zt_err(zt__actor_stopped_failure("the asker's reactor was destroyed")));
    }
}

zt_deferred_t *
zt_actor_ask(zt_reactor_t *r, zt_actor_t *to, zt_msg_t msg, double timeout)
{
    ZT_ASSERT(r && to);
    ZT_ASSERT_MSG(zt_reactor_is_reactor_thread(r), "zt_actor_ask called off the reactor thread");
    zt_deferred_t *d = zt_deferred_new();
    zt__sched_t *s = zt__sched_get(r);
    zt__ask_t *ask = calloc(1, sizeof *ask);
    zt__env_t *e = zt__env_new(s);
    int rc = ZT_ENOMEM;
    if (!d || !s || !ask || !e)
        goto failed;
    ask->d = zt_deferred_ref(d);
    ask->sched = s;
    e->msg = msg;
    e->ask = ask;
    e->reply_to = zt__inbox_ref(s->inbox);
    rc = zt__actor_send(to, e);
    if (rc < 0) {
        zt_deferred_unref(&ask->d);
        zt__inbox_unref(&e->reply_to);
        goto failed;
    }
    ask->next = s->asks;
    if (s->asks)
        s->asks->prev = ask;
    s->asks = ask;
    if (timeout > 0)
        zt_deferred_add_timeout(d, timeout, zt_reactor_clock(r));
    return d;
failed:
    if (msg.body && msg.free_body)
        msg.free_body(msg.body);
    free(ask);
    if (e)
        zt__env_free(s, e);
    if (d)
        zt_deferred_errback(d, zt_failure_from_code(rc, "asking an actor"));
    return d;
}

int
zt_actor_reply(zt_actor_t *self, zt_result_t reply)
{
    ZT_ASSERT(self);
    zt__env_t *e = self->current;
    if (!e || self->replied || !e->ask) {
        zt_result_release(&reply);
        return ZT_ESTATE;
    }
    self->replied = true;
    zt__ask_answer(e, reply);
    return 0;
}

zt_reply_t *
zt_actor_defer_reply(zt_actor_t *self)
{
    ZT_ASSERT(self);
    zt__env_t *e = self->current;
    if (!e || self->replied || !e->ask)
        return NULL;
    zt_reply_t *h = malloc(sizeof *h);
    if (!h)
        return NULL;
    h->ask = e->ask;
    h->reply_to = e->reply_to;
    e->ask = NULL;
    e->reply_to = NULL;
    self->replied = true;
    return h;
}

void
zt_reply_send(zt_reply_t **self_p, zt_result_t reply)
{
    ZT_ASSERT(self_p && *self_p);
    zt_reply_t *h = *self_p;
    *self_p = NULL;
    s_answer(h->ask, &h->reply_to, reply);
    free(h);
}

void
zt_reply_destroy(zt_reply_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_reply_send(self_p, zt_err(zt__actor_stopped_failure("no reply")));
}
