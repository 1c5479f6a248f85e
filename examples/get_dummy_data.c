/*  examples/get_dummy_data.c - Twisted's first Deferred example: a result that arrives later
 *
 *  The classic from Twisted's Deferred howto: getDummyData(3) returns a Deferred at once and asks
 * the reactor to fire it 2 seconds later with 3 * 3; a callback prints the result; the reactor is
 * stopped after 4 seconds. It prints what the Python original prints:
 *
 *      getDummyData called
 *      Starting the reactor
 *      Result received: 9
 *
 *  usage: get_dummy_data [--fast]    (--fast divides every delay by 100, for the tests)  */
#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the timer needs to fire the Deferred: Python's `deferred.callback, inputData * 3`. */
typedef struct pending {
    zt_deferred_t *d; /* Owned reference: the Deferred to fire */
    int value;        /* what to fire it with */
} pending_t;

static void
fire(void *arg)
{
    pending_t *p = arg;
    zt_deferred_callback(p->d, zt_ok_int(p->value));
    zt_deferred_unref(&p->d);
    free(p);
}

/* A dummy that simulates a delayed result: the Deferred fires `delay` seconds later with
 * input * 3. */
static zt_deferred_t *
get_dummy_data(zt_reactor_t *reactor, int input, double delay)
{
    printf("getDummyData called\n");
    zt_deferred_t *d = zt_deferred_new();
    pending_t *p = malloc(sizeof *p);
    if (!d || !p) {
        free(p);
        zt_deferred_unref(&d);
        return zt_deferred_fail(zt_failure_from_code(ZT_ENOMEM, "getDummyData"));
    }
    *p = (pending_t){.d = zt_deferred_ref(d), .value = input * 3};
    if (zt_reactor_call_later(reactor, delay, fire, p, NULL) < 0) {
        zt_deferred_unref(&p->d);
        free(p);
        zt_deferred_errback(d, zt_failure_from_code(ZT_ENOMEM, "getDummyData"));
    }
    return d;
}

static zt_result_t
print_data(zt_result_t result, void *arg)
{
    (void)arg;
    printf("Result received: %ld\n", (long)zt_result_int(result));
    return result;
}

static void
stop(void *arg)
{
    zt_reactor_stop(arg);
}

int
main(int argc, char **argv)
{
    double scale = argc > 1 && strcmp(argv[1], "--fast") == 0 ? 0.01 : 1.0;
    zt_reactor_t *reactor = zt_reactor_new();
    if (!reactor)
        return 1;

    zt_deferred_t *d = get_dummy_data(reactor, 3, 2 * scale);
    zt_deferred_add_callback(d, print_data, NULL);
    zt_deferred_unref(&d);

    /* Set up the end of the process by asking the reactor to stop itself 4 seconds from now. */
    zt_reactor_call_later(reactor, 4 * scale, stop, reactor, NULL);
    printf("Starting the reactor\n");
    int rc = zt_reactor_run(reactor);
    zt_reactor_destroy(&reactor);
    return rc == 0 ? 0 : 1;
}
