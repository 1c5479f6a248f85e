/*  examples/call_when_running.c - run code as soon as the reactor is running
 *
 *  Twisted's reactor.callWhenRunning: a call registered before the reactor starts runs once it is
 * running (after the "startup" event), here to greet and then ask the reactor to stop a second
 * later. The Python equivalent:
 *
 *      def hello(name):
 *          print('Hello, {}! The reactor is running.'.format(name))
 *          reactor.callLater(1, reactor.stop)
 *      reactor.callWhenRunning(hello, 'world')
 *      print('Starting the reactor')
 *      reactor.run()
 *      print('The reactor has stopped')
 *
 *  prints, as this program does:
 *
 *      Starting the reactor
 *      Hello, world! The reactor is running.
 *      The reactor has stopped
 *
 *  usage: call_when_running [--fast]    (--fast divides every delay by 100, for the tests)  */
#include <ztwist.h>

#include <stdio.h>
#include <string.h>

typedef struct app {
    zt_reactor_t *reactor; /* Borrowed: the reactor to stop */
    const char *name;      /* who to greet */
    double delay;          /* seconds from the greeting to the stop */
} app_t;

static void
stop(void *arg)
{
    zt_reactor_stop(arg);
}

static void
hello(void *arg)
{
    app_t *app = arg;
    printf("Hello, %s! The reactor is running.\n", app->name);
    zt_reactor_call_later(app->reactor, app->delay, stop, app->reactor, NULL);
}

int
main(int argc, char **argv)
{
    double scale = argc > 1 && strcmp(argv[1], "--fast") == 0 ? 0.01 : 1.0;
    zt_reactor_t *reactor = zt_reactor_new();
    if (!reactor)
        return 1;
    app_t app = {.reactor = reactor, .name = "world", .delay = 1 * scale};
    if (zt_reactor_call_when_running(reactor, hello, &app, NULL) < 0) {
        zt_reactor_destroy(&reactor);
        return 1;
    }
    printf("Starting the reactor\n");
    int rc = zt_reactor_run(reactor);
    printf("The reactor has stopped\n");
    zt_reactor_destroy(&reactor);
    return rc == 0 ? 0 : 1;
}
