/*  examples/ack_client_coro.c - 100 sequential requests to an ack server, written as a coroutine
 *
 *  The same program as ack_client_callbacks.c, with the same output: connect, then send 100 lines
 * one at a time, each after the previous one's reply. Here the loop is a loop: zt_await waits for
 * each Deferred without blocking the reactor (Twisted's inlineCallbacks):
 *
 *      @inlineCallbacks
 *      def client(pair):
 *          yield pair.connect()
 *          for i in range(100):
 *              reply = yield pair.request(f"request {i}")
 *
 *  The server is in the same process, on 127.0.0.1 (examples/ack_pair.h).
 *
 *  usage: ack_client_coro  */
#include "ack_pair.h"

#define REQUESTS 100

static zt_result_t
client(void *arg)
{
    ack_pair_t *pair = arg;
    zt_result_t connected = zt_await(ack_connect(pair));
    if (zt_is_err(connected))
        return connected;
    zt_result_release(&connected);
    printf("connected to the ack server\n");
    int acks = 0;
    for (int i = 0; i < REQUESTS; i++) {
        char line[32];
        snprintf(line, sizeof line, "request %d", i);
        zt_result_t reply = zt_await(ack_request(pair, line));
        if (zt_is_err(reply))
            return reply; /* the first failure ends the client */
        const char *text = zt_result_ptr(reply);
        if (strncmp(text, "ack:", 4) == 0 && strcmp(text + 4, line) == 0)
            acks++;
        if (i == 0 || i == REQUESTS - 1)
            printf("%s -> %s\n", line, text);
        zt_result_release(&reply);
    }
    printf("%d requests, %d acks\n", REQUESTS, acks);
    return zt_ok_int(acks);
}

static zt_result_t
done(zt_result_t result, void *arg)
{
    ack_pair_t *pair = arg;
    if (zt_is_err(result))
        zt_failure_print(zt_result_failure(result), stdout);
    zt_result_release(&result);
    ack_pair_close(pair);
    zt_reactor_stop(pair->reactor);
    return zt_ok_none();
}

static void
start(void *arg)
{
    ack_pair_t *pair = arg;
    zt_deferred_t *d = zt_coro_start(pair->reactor, client, pair);
    zt_deferred_add_both(d, done, pair);
    zt_deferred_unref(&d);
}

int
main(void)
{
    zt_reactor_t *r = zt_reactor_new();
    ack_pair_t pair;
    if (!r || ack_pair_start(&pair, r) != 0) {
        fprintf(stderr, "ack_client_coro: cannot start the server\n");
        return 1;
    }
    zt_reactor_call_when_running(r, start, &pair, NULL);
    zt_reactor_run(r);
    ack_pair_stop(&pair);
    zt_reactor_destroy(&r);
    return 0;
}
