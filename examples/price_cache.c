/*  examples/price_cache.c - a price cache service of actors (issue #16's user story)
 *
 *  Three parts, each the only owner of its state:
 *    - an ingest actor takes price ticks and forwards them to the cache, counting them;
 *    - the cache actor owns the table of prices, answers asks for a price, and journals each
 * update with a blocking write on the worker pool (zt_defer_to_thread) that its handler awaits:
 * it runs as a coroutine (ZT_ACTOR_CORO), so it takes its next message only after the write;
 *    - the client (the reactor's start function) sends ticks, asks the ingest actor to sync (which
 * asks the cache in turn: an ask answered with another ask's Deferred), then asks for prices.
 *  Ownership, at each step: a tick's body is allocated by the client, belongs to the ingest actor
 * once sent, is moved to the cache, taken by the cache's handler (zt_msg_take) and handed to the
 * worker, which frees it after writing.
 *
 *  usage: price_cache [--fast]    (nothing waits here; --fast is accepted for the tests) */
#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TICK = 1, GET = 2, SYNC = 3 };
enum { MAX_SYMBOLS = 8 };

typedef struct tick {
    char symbol[8]; /* the instrument */
    long cents;     /* its new price */
    FILE *journal;  /* Borrowed: where the cache's write goes */
} tick_t;

typedef struct cache {
    char symbols[MAX_SYMBOLS][8]; /* the table: symbols ... */
    long cents[MAX_SYMBOLS];      /* ... and their prices */
    int n;                        /* entries in use */
} cache_t;

typedef struct ingest {
    zt_actor_t *cache; /* Owned reference: where ticks go */
    int forwarded;     /* ticks forwarded */
} ingest_t;

typedef struct app {
    zt_reactor_t *r; /* the reactor */
    FILE *journal;   /* Owned: the cache's journal */
    cache_t cache;   /* the cache actor's state */
    ingest_t ingest; /* the ingest actor's state */
    zt_actor_t *in;  /* Owned reference: the ingest actor */
    int answers;     /* price asks answered */
} app_t;

/* --- the cache ------------------------------------------------------------------------------ */

/* Runs on a worker thread: the blocking write. Frees the tick, which it owns. */
static zt_result_t
write_journal(void *arg)
{
    tick_t *t = arg;
    int rc = fprintf(t->journal, "%s %ld\n", t->symbol, t->cents);
    fflush(t->journal);
    free(t);
    return rc < 0 ? zt_err(zt_failure_from_code(ZT_EIO, "journal write")) : zt_ok_none();
}

static int
cache_find(const cache_t *c, const char *symbol)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->symbols[i], symbol) == 0)
            return i;
    return -1;
}

static zt_result_t
cache_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    cache_t *c = state;
    if (msg->tag == TICK) {
        tick_t *t = msg->body;
        int i = cache_find(c, t->symbol);
        if (i < 0 && c->n < MAX_SYMBOLS) {
            i = c->n++;
            strcpy(c->symbols[i], t->symbol);
        }
        if (i >= 0)
            c->cents[i] = t->cents;
        /* the write blocks: it goes to the pool, and this coroutine waits for it */
        zt_msg_take(msg);
        return zt_await(zt_defer_to_thread(zt_actor_reactor(self), write_journal, t));
    }
    if (msg->tag == GET) {
        int i = cache_find(c, msg->body);
        if (i < 0) { /* an error for the asker; the cache goes on */
            zt_actor_reply(
                self, zt_err(zt_failure_new(ZT_ERROR, "no price for %s", (const char *)msg->body)));
            return zt_ok_none();
        }
        return zt_ok_int(c->cents[i]);
    }
    return zt_ok_none(); /* SYNC: every earlier message has been handled */
}

/* --- the ingest actor ------------------------------------------------------------------------ */

static zt_result_t
ingest_receive(zt_actor_t *self, void *state, zt_msg_t *msg)
{
    ingest_t *in = state;
    if (msg->tag == TICK) { /* move the message on: it belongs to the cache now */
        if (zt_actor_tell(in->cache, *msg) == 0) {
            zt_msg_take(msg);
            in->forwarded++;
        }
        return zt_ok_none();
    }
    /* SYNC: reply when the cache has handled everything forwarded before */
    printf("ingest: %d ticks forwarded\n", in->forwarded);
    return zt_wait_for(
        zt_actor_ask(zt_actor_reactor(self), in->cache, zt_msg(SYNC, NULL, NULL), 5));
}

/* --- the client ------------------------------------------------------------------------------ */

static const char *s_asked[] = {"ACME", "INIT", "NOPE"};

static zt_result_t
print_price(zt_result_t result, void *arg)
{
    app_t *app = arg;
    const char *symbol = s_asked[app->answers++];
    if (zt_is_err(result))
        printf("%s: %s\n", symbol, zt_failure_message(zt_result_failure(result)));
    else
        printf("%s %ld.%02ld\n", symbol, (long)zt_result_int(result) / 100,
               (long)zt_result_int(result) % 100);
    if (app->answers == 3)
        zt_reactor_stop(app->r);
    zt_result_release(&result);
    return zt_ok_none();
}

static zt_result_t
synced(zt_result_t result, void *arg)
{
    app_t *app = arg;
    zt_result_release(&result);
    for (int i = 0; i < 3; i++) { /* the body is a static string: nothing to free */
        zt_deferred_t *d =
            zt_actor_ask(app->r, app->ingest.cache, zt_msg(GET, (void *)s_asked[i], NULL), 5);
        zt_deferred_add_both(d, print_price, app);
        zt_deferred_unref(&d);
    }
    return zt_ok_none();
}

static void
start(void *arg)
{
    app_t *app = arg;
    zt_actor_spec_t cache_spec = {
        .receive = cache_receive, .arg = &app->cache, .flags = ZT_ACTOR_CORO};
    zt_actor_spec_t ingest_spec = {.receive = ingest_receive, .arg = &app->ingest};
    if (zt_actor_spawn(app->r, &cache_spec, &app->ingest.cache) < 0 ||
        zt_actor_spawn(app->r, &ingest_spec, &app->in) < 0) {
        zt_reactor_stop(app->r);
        return;
    }
    static const struct {
        const char *symbol;
        long cents;
    } ticks[] = {{"ACME", 10010}, {"INIT", 725}, {"ACME", 10075}, {"ZETA", 42}, {"ACME", 10150}};
    for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++) {
        tick_t *t = calloc(1, sizeof *t);
        if (!t)
            break;
        strcpy(t->symbol, ticks[i].symbol);
        t->cents = ticks[i].cents;
        t->journal = app->journal;
        if (zt_actor_tell(app->in, zt_msg(TICK, t, free)) < 0)
            free(t); /* a failed send leaves the body with us */
    }
    zt_deferred_t *d = zt_actor_ask(app->r, app->in, zt_msg(SYNC, NULL, NULL), 5);
    zt_deferred_add_both(d, synced, app);
    zt_deferred_unref(&d);
}

int
main(void)
{
    app_t app = {.r = zt_reactor_new(), .journal = tmpfile()};
    if (!app.r || !app.journal)
        return 1;
    zt_reactor_call_when_running(app.r, start, &app, NULL);
    int rc = zt_reactor_run(app.r);
    zt_actor_stats_t st;
    zt_actor_stats(app.ingest.cache, &st);
    printf("cache: %llu messages handled, %llu dead letters\n", (unsigned long long)st.handled,
           (unsigned long long)st.dead_letters);
    zt_actor_stop(app.in);
    zt_actor_stop(app.ingest.cache);
    zt_actor_unref(&app.in);
    zt_actor_unref(&app.ingest.cache);
    zt_reactor_destroy(&app.r);
    rewind(app.journal);
    int lines = 0;
    for (int ch; (ch = fgetc(app.journal)) != EOF;)
        lines += ch == '\n';
    fclose(app.journal);
    printf("journal: %d lines written on the pool\n", lines);
    return rc == 0 ? 0 : 1;
}
