/*  examples/blocking_call_from_thread.c - a worker thread waits for a result only the reactor can
 * produce
 *
 *  From Twisted's threading howto ("Getting Results"): blockingCallFromThread runs a function on
 * the reactor thread and blocks the calling worker until the result is there, waiting for a
 * Deferred if the function returns one. The howto fetches a web page; here the "page" is a
 * Deferred the reactor fires a second later with call_later. Then the worker stops the reactor
 * with call_from_thread. The Python it matches:
 *
 *      def getPage():
 *          d = defer.Deferred()
 *          reactor.callLater(1, d.callback, "<html>the page</html>")
 *          return d
 *
 *      def inThread():
 *          print("worker: asking the reactor for the page and waiting")
 *          result = threads.blockingCallFromThread(reactor, getPage)
 *          print("worker: got", result)
 *          reactor.callFromThread(reactor.stop)
 *
 *      reactor.callInThread(inThread)
 *      reactor.run()
 *
 *  Unlike Twisted, the wait has a deadline (60 s by default) and fails instead of hanging when the
 * reactor shuts down.
 *
 *  usage: blocking_call_from_thread [--fast]    (--fast divides the delay by 100, for the tests) */
#include <ztwist.h>

#include <stdio.h>
#include <string.h>

typedef struct app {
    zt_reactor_t *reactor; /* Borrowed */
    double delay;          /* seconds before the page arrives */
} app_t;

static void
fire(void *arg)
{
    zt_deferred_t *d = arg;
    zt_deferred_callback(d, zt_ok("<html>the page</html>", NULL));
    zt_deferred_unref(&d);
}

/* Runs on the reactor thread: the page arrives `delay` seconds later. */
static zt_result_t
get_page(void *arg)
{
    app_t *app = arg;
    zt_deferred_t *d = zt_deferred_new();
    if (!d)
        return zt_err(zt_failure_from_code(ZT_ENOMEM, "getPage"));
    if (zt_reactor_call_later(app->reactor, app->delay, fire, zt_deferred_ref(d), NULL) != 0) {
        zt_deferred_unref(&d); /* the timer's reference */
        zt_deferred_unref(&d);
        return zt_err(zt_failure_from_code(ZT_ENOMEM, "getPage"));
    }
    return zt_wait_for(d);
}

static void
stop(void *arg)
{
    zt_reactor_stop(arg);
}

/* Runs on a worker thread. */
static zt_result_t
in_thread(void *arg)
{
    app_t *app = arg;
    printf("worker: asking the reactor for the page and waiting\n");
    zt_result_t result = zt_blocking_call_from_thread(app->reactor, get_page, app);
    if (zt_is_err(result)) {
        char text[256];
        zt_failure_format(zt_result_failure(result), text, sizeof text);
        printf("worker: failed: %s\n", text);
    } else {
        printf("worker: got %s\n", (const char *)zt_result_ptr(result));
    }
    zt_result_release(&result);
    zt_reactor_call_from_thread(app->reactor, stop, app->reactor);
    return zt_ok_none();
}

int
main(int argc, char **argv)
{
    double scale = argc > 1 && strcmp(argv[1], "--fast") == 0 ? 0.01 : 1.0;
    zt_reactor_t *reactor = zt_reactor_new();
    if (!reactor)
        return 1;
    app_t app = {.reactor = reactor, .delay = 1 * scale};
    int rc = zt_call_in_thread(reactor, in_thread, &app);
    if (rc == 0)
        rc = zt_reactor_run(reactor);
    zt_reactor_destroy(&reactor);
    return rc == 0 ? 0 : 1;
}
