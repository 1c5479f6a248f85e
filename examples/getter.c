/*  examples/getter.c - Twisted's Getter example: choosing between the callback and errback chains
 *
 *  From Twisted's Deferred howto. A Getter simulates a delayed result: 2 seconds after
 * getDummyData(x) it fires its Deferred, with x * 3 when x is even and with a ValueError when x is
 * odd. A callback added by getDummyData turns the number into "Result: N" on its way to the
 * caller's callback. getDummyData(3) therefore reaches the errback and getDummyData(4) prints
 * "Result: 12"; the reactor stops after 4 seconds.
 *
 *  One difference from the Python original, on purpose: Python's errback writes
 * str(failure), a multi-line "[Failure instance: Traceback ...]", to stderr, so the order of the
 * two outputs depends on buffering. This errback prints the failure's one-line form to stdout, so
 * the output is deterministic:
 *
 *      ValueError: You used an odd number!
 *      Result: 12
 *
 *  usage: getter [--fast]    (--fast divides every delay by 100, for the tests)  */
#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ZT_FAILURE_TYPE(value_error, "ValueError", ZT_ERROR);

typedef struct getter {
    zt_reactor_t *reactor; /* Borrowed: where the delayed result is scheduled */
    double delay;          /* seconds until the result */
    zt_deferred_t *d;      /* Owned reference: the Deferred to fire, or NULL once fired */
    int x;                 /* the input */
} getter_t;

/* The Deferred mechanism signals errors: here, odd numbers are bad. Fires the callback or the
 * errback chain depending on the result. */
static void
got_results(void *arg)
{
    getter_t *self = arg;
    if (!self->d) {
        printf("Nowhere to put results\n");
        return;
    }
    zt_deferred_t *d = self->d;
    self->d = NULL;
    if (self->x % 2 == 0)
        zt_deferred_callback(d, zt_ok_int(self->x * 3));
    else
        zt_deferred_errback(d, zt_failure_new(&value_error, "You used an odd number!"));
    zt_deferred_unref(&d);
}

/* Converts the number to "HTML": shows a callback passing its own result to the next one. */
static zt_result_t
to_html(zt_result_t result, void *arg)
{
    (void)arg;
    char *html = malloc(32);
    if (!html)
        return zt_err(zt_failure_from_code(ZT_ENOMEM, "to_html"));
    snprintf(html, 32, "Result: %ld", (long)zt_result_int(result));
    return zt_ok(html, free);
}

/* Simulates a delayed result with call_later; the output of got_results passes through to_html
 * on its way to the caller's callbacks. */
static zt_deferred_t *
get_dummy_data(getter_t *self, int x)
{
    self->x = x;
    self->d = zt_deferred_new();
    if (!self->d)
        return zt_deferred_fail(zt_failure_from_code(ZT_ENOMEM, "getDummyData"));
    zt_deferred_t *d = zt_deferred_ref(self->d);
    if (zt_reactor_call_later(self->reactor, self->delay, got_results, self, NULL) < 0) {
        zt_deferred_unref(&self->d);
        zt_deferred_errback(d, zt_failure_from_code(ZT_ENOMEM, "getDummyData"));
    }
    zt_deferred_add_callback(d, to_html, NULL);
    return d;
}

static zt_result_t
print_data(zt_result_t result, void *arg)
{
    (void)arg;
    printf("%s\n", (const char *)zt_result_ptr(result));
    return result;
}

static zt_result_t
print_error(zt_result_t result, void *arg)
{
    (void)arg;
    char line[256];
    zt_failure_format(zt_result_failure(result), line, sizeof line);
    printf("%s\n", line);
    zt_result_release(&result);
    return zt_ok_none();
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

    /* This series of callbacks and errbacks will print an error message. */
    getter_t g1 = {.reactor = reactor, .delay = 2 * scale};
    zt_deferred_t *d = get_dummy_data(&g1, 3);
    zt_deferred_add_callback(d, print_data, NULL);
    zt_deferred_add_errback(d, print_error, NULL);
    zt_deferred_unref(&d);

    /* This series of callbacks and errbacks will print "Result: 12". */
    getter_t g2 = {.reactor = reactor, .delay = 2 * scale};
    d = get_dummy_data(&g2, 4);
    zt_deferred_add_callback(d, print_data, NULL);
    zt_deferred_add_errback(d, print_error, NULL);
    zt_deferred_unref(&d);

    zt_reactor_call_later(reactor, 4 * scale, stop, reactor, NULL);
    int rc = zt_reactor_run(reactor);
    zt_reactor_destroy(&reactor);
    return rc == 0 ? 0 : 1;
}
