/*  examples/ack_client_callbacks.c - 100 sequential requests to an ack server, with callbacks
 *
 *  The same program as ack_client_coro.c, with the same output: connect, then send 100 lines one
 * at a time, each after the previous one's reply. Here each step is a callback, and the loop's
 * counter lives in a struct, as in Twisted without inlineCallbacks:
 *
 *      def client(pair):
 *          state = {"i": 0}
 *          def on_reply(reply):
 *              state["i"] += 1
 *              if state["i"] < 100:
 *                  return pair.request(f"request {state['i']}").addCallback(on_reply)
 *          return pair.connect().addCallback(lambda _: pair.request("request 0")
 *                                             .addCallback(on_reply))
 *
 *  The server is in the same process, on 127.0.0.1 (examples/ack_pair.h).
 *
 *  usage: ack_client_callbacks  */
#include "ack_pair.h"

#define REQUESTS 100

typedef struct client {
    ack_pair_t *pair; /* Borrowed */
    int i;            /* the request waiting for its reply */
    int acks;         /* correct replies */
    char line[32];    /* request i's line */
} client_t;

static void finish(client_t *c, zt_result_t result);
static zt_result_t on_reply(zt_result_t reply, void *arg);

static void
send_request(client_t *c)
{
    snprintf(c->line, sizeof c->line, "request %d", c->i);
    zt_deferred_t *d = ack_request(c->pair, c->line);
    zt_deferred_add_both(d, on_reply, c);
    zt_deferred_unref(&d);
}

static zt_result_t
on_reply(zt_result_t reply, void *arg)
{
    client_t *c = arg;
    if (zt_is_err(reply)) {
        finish(c, reply); /* the first failure ends the client */
        return zt_ok_none();
    }
    const char *text = zt_result_ptr(reply);
    if (strncmp(text, "ack:", 4) == 0 && strcmp(text + 4, c->line) == 0)
        c->acks++;
    if (c->i == 0 || c->i == REQUESTS - 1)
        printf("%s -> %s\n", c->line, text);
    zt_result_release(&reply);
    if (++c->i < REQUESTS) {
        send_request(c);
    } else {
        printf("%d requests, %d acks\n", REQUESTS, c->acks);
        finish(c, zt_ok_int(c->acks));
    }
    return zt_ok_none();
}

static zt_result_t
on_connected(zt_result_t result, void *arg)
{
    client_t *c = arg;
    if (zt_is_err(result)) {
        finish(c, result);
        return zt_ok_none();
    }
    zt_result_release(&result);
    printf("connected to the ack server\n");
    send_request(c);
    return zt_ok_none();
}

static void
finish(client_t *c, zt_result_t result)
{
    if (zt_is_err(result))
        zt_failure_print(zt_result_failure(result), stdout);
    zt_result_release(&result);
    ack_pair_close(c->pair);
    zt_reactor_stop(c->pair->reactor);
}

static void
start(void *arg)
{
    client_t *c = arg;
    zt_deferred_t *d = ack_connect(c->pair);
    zt_deferred_add_both(d, on_connected, c);
    zt_deferred_unref(&d);
}

int
main(void)
{
    zt_reactor_t *r = zt_reactor_new();
    ack_pair_t pair;
    if (!r || ack_pair_start(&pair, r) != 0) {
        fprintf(stderr, "ack_client_callbacks: cannot start the server\n");
        return 1;
    }
    client_t c = {.pair = &pair};
    zt_reactor_call_when_running(r, start, &c, NULL);
    zt_reactor_run(r);
    ack_pair_stop(&pair);
    zt_reactor_destroy(&r);
    return 0;
}
