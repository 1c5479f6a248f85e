/*  examples/load_remote_data.c - load data on a worker, use it on the reactor thread
 *
 *  The safe way to get a blocking result into reactor code, from Twisted's threading howto
 * ("Running Code In Threads" and "Invoking Twisted From Other Threads"): the slow load runs on a
 * worker thread (call_in_thread) and hands its result back with call_from_thread, so the callback
 * runs on the reactor thread, where touching the program's state is safe. Each step prints which
 * thread it ran on. The Python it matches:
 *
 *      def where():
 *          return "reactor thread" if isInIOThread() else "worker thread"
 *
 *      def loadRemoteData(callback):
 *          print("loadRemoteData runs in the", where())
 *          time.sleep(1)  # the slow, blocking part
 *          data = "42 records"
 *          reactor.callFromThread(callback, data)
 *
 *      def onData(data):
 *          print("onData got %s in the %s" % (data, where()))
 *          reactor.stop()
 *
 *      def start():
 *          print("start runs in the", where())
 *          reactor.callInThread(loadRemoteData, onData)
 *
 *      reactor.callWhenRunning(start)
 *      reactor.run()
 *
 *  usage: load_remote_data [--fast]    (--fast divides the delay by 100, for the tests)  */
#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct app {
    zt_reactor_t *reactor;   /* Borrowed */
    double seconds;          /* how long the load blocks */
    zt_reactor_fn *callback; /* where the data goes, on the reactor thread */
    char *data;              /* Owned: the loaded data, handed from the worker to the reactor */
} app_t;

static const char *
where(void)
{
    return zt_thread_is_worker() ? "worker thread" : "reactor thread";
}

/* Runs on a worker thread. */
static zt_result_t
load_remote_data(void *arg)
{
    app_t *app = arg;
    printf("loadRemoteData runs in the %s\n", where());
    struct timespec ts = {.tv_sec = (time_t)app->seconds,
                          .tv_nsec = (long)((app->seconds - (double)(time_t)app->seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) { /* the slow, blocking part */
    }
    char *data = malloc(16);
    if (data)
        strcpy(data, "42 records");
    app->data = data;
    /* never call back directly from here: hand the result to the reactor thread */
    if (zt_reactor_call_from_thread(app->reactor, app->callback, app) != 0)
        return zt_err(zt_failure_from_code(ZT_ESHUTDOWN, "the reactor is gone"));
    return zt_ok_none();
}

/* Runs on the reactor thread. */
static void
on_data(void *arg)
{
    app_t *app = arg;
    printf("onData got %s in the %s\n", app->data ? app->data : "nothing", where());
    free(app->data);
    app->data = NULL;
    zt_reactor_stop(app->reactor);
}

static void
start(void *arg)
{
    app_t *app = arg;
    printf("start runs in the %s\n", where());
    if (zt_call_in_thread(app->reactor, load_remote_data, app) != 0)
        zt_reactor_stop(app->reactor);
}

int
main(int argc, char **argv)
{
    double scale = argc > 1 && strcmp(argv[1], "--fast") == 0 ? 0.01 : 1.0;
    zt_reactor_t *reactor = zt_reactor_new();
    if (!reactor)
        return 1;
    app_t app = {.reactor = reactor, .seconds = 1 * scale, .callback = on_data};
    zt_reactor_call_when_running(reactor, start, &app, NULL);
    int rc = zt_reactor_run(reactor);
    zt_reactor_destroy(&reactor);
    free(app.data);
    return rc == 0 ? 0 : 1;
}
