/*  examples/a_silly_blocking_method.c - run a blocking function on the reactor's thread pool
 *
 *  The first example of Twisted's threading howto ("Running Code In Threads"): a function that
 * blocks for 2 seconds runs on a worker thread with call_in_thread, so the reactor stays free. The
 * Python original never stops; this one stops the reactor from the worker with call_from_thread:
 *
 *      def aSillyBlockingMethod(x):
 *          import time
 *          time.sleep(2)
 *          print(x)
 *          reactor.callFromThread(reactor.stop)
 *
 *      reactor.callInThread(aSillyBlockingMethod, "2 seconds have passed")
 *      reactor.run()
 *
 *  usage: a_silly_blocking_method [--fast]    (--fast divides the delay by 100, for the tests)  */
#include <ztwist.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

/* What the worker needs: Python's argument x, and the reactor to stop. */
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

static void
sleep_for(double seconds)
{
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Runs on a worker thread: blocking here does not block the reactor. */
static zt_result_t
a_silly_blocking_method(void *arg)
{
    call_t *call = arg;
    sleep_for(call->seconds);
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
    call_t call = {.reactor = reactor, .x = "2 seconds have passed", .seconds = 2 * scale};
    /* run method in thread */
    int rc = zt_call_in_thread(reactor, a_silly_blocking_method, &call);
    if (rc == 0)
        rc = zt_reactor_run(reactor);
    zt_reactor_destroy(&reactor);
    return rc == 0 ? 0 : 1;
}
