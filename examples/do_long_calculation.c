/*  examples/do_long_calculation.c - get a worker thread's result as a Deferred
 *
 *  From Twisted's threading howto ("Getting Results"): deferToThread runs a function on the pool
 * and returns a Deferred that fires, on the reactor thread, with what the function returned. The
 * Python original never stops; this one stops the reactor once it has printed the result:
 *
 *      def doLongCalculation():
 *          # .... do long calculation here ...
 *          return 3
 *
 *      def printResult(x):
 *          print(x)
 *          reactor.stop()
 *
 *      d = threads.deferToThread(doLongCalculation)
 *      d.addCallback(printResult)
 *      reactor.run()
 *
 *  usage: do_long_calculation [--fast]    (nothing waits here; --fast is accepted for the tests) */
#include <ztwist.h>

#include <stdio.h>

/* Runs on a worker thread. */
static zt_result_t
do_long_calculation(void *arg)
{
    (void)arg;
    /* .... do long calculation here ... */
    return zt_ok_int(3);
}

/* Runs on the reactor thread, when the Deferred fires. */
static zt_result_t
print_result(zt_result_t x, void *arg)
{
    printf("%ld\n", (long)zt_result_int(x));
    zt_reactor_stop(arg);
    return x;
}

int
main(void)
{
    zt_reactor_t *reactor = zt_reactor_new();
    if (!reactor)
        return 1;
    /* run method in thread and get result as a Deferred */
    zt_deferred_t *d = zt_defer_to_thread(reactor, do_long_calculation, NULL);
    zt_deferred_add_callback(d, print_result, reactor);
    zt_deferred_unref(&d);
    int rc = zt_reactor_run(reactor);
    zt_reactor_destroy(&reactor);
    return rc == 0 ? 0 : 1;
}
