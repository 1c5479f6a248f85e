/*  examples/blocking_methods_in_order.c - several blocking calls, in order, on one worker thread
 *
 *  From Twisted's threading howto ("Utility Methods"): callMultipleInThread runs a list of calls
 * one after the other in the same thread. The Python original never stops; this one stops the
 * reactor from the last call:
 *
 *      def aSillyBlockingMethodOne(x):
 *          import time
 *          time.sleep(2)
 *          print(x)
 *
 *      def aSillyBlockingMethodTwo(x):
 *          print(x)
 *          reactor.callFromThread(reactor.stop)
 *
 *      commands = [(aSillyBlockingMethodOne, ["Calling First Method"], {}),
 *                  (aSillyBlockingMethodTwo, ["Calling Second Method"], {})]
 *      threads.callMultipleInThread(commands)
 *      reactor.run()
 *
 *  usage: blocking_methods_in_order [--fast]    (--fast divides the delay by 100, for the tests) */
#include <ztwist.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

/* One call's argument. */
typedef struct call {
    zt_reactor_t *reactor; /* Borrowed: the reactor to stop */
    const char *x;         /* Borrowed: what to print */
    double seconds;        /* how long to block */
} call_t;

static void
stop(void *arg)
{
    zt_reactor_stop(arg);
}

static zt_result_t
a_silly_blocking_method_one(void *arg)
{
    call_t *call = arg;
    struct timespec ts = {.tv_sec = (time_t)call->seconds,
                          .tv_nsec = (long)((call->seconds - (double)(time_t)call->seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    printf("%s\n", call->x);
    return zt_ok_none();
}

static zt_result_t
a_silly_blocking_method_two(void *arg)
{
    call_t *call = arg;
    printf("%s\n", call->x);
    zt_reactor_call_from_thread(call->reactor, stop, call->reactor);
    return zt_ok_none();
}

int
main(int argc, char **argv)
{
    double scale = argc > 1 && strcmp(argv[1], "--fast") == 0 ? 0.01 : 1.0;
    zt_reactor_t *reactor = zt_reactor_new();
    if (!reactor)
        return 1;
    call_t one = {.reactor = reactor, .x = "Calling First Method", .seconds = 2 * scale};
    call_t two = {.reactor = reactor, .x = "Calling Second Method"};
    /* run both methods sequentially in a thread */
    zt_thread_call_t commands[] = {
        {.fn = a_silly_blocking_method_one, .arg = &one},
        {.fn = a_silly_blocking_method_two, .arg = &two},
    };
    int rc = zt_call_multiple_in_thread(reactor, commands, 2);
    if (rc == 0)
        rc = zt_reactor_run(reactor);
    zt_reactor_destroy(&reactor);
    return rc == 0 ? 0 : 1;
}
