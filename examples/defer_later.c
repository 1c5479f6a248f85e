/*  examples/defer_later.c - a function's result, 3.5 seconds from now, as a Deferred (Twisted's
 * task.deferLater)
 *
 *  From Twisted's "Scheduling tasks for the future" howto: zt_defer_later calls f 3.5 seconds
 * after it was scheduled and fires the Deferred with what f returns; the callback prints it. The
 * howto's program runs forever; this one, like its Python twin with one added reactor.stop() in
 * the callback, stops there. It prints:
 *
 *      This will run 3.5 seconds after it was scheduled: hello, world
 *
 *  usage: defer_later [--fast]    (--fast divides every delay by 100, for the tests)  */
#include <ztwist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct app {
    zt_reactor_t *reactor; /* Borrowed: the reactor to stop */
    const char *s;         /* what f mentions */
} app_t;

static zt_result_t
f(void *arg)
{
    app_t *app = arg;
    const char *text = "This will run 3.5 seconds after it was scheduled: ";
    size_t size = strlen(text) + strlen(app->s) + 1;
    char *result = malloc(size);
    if (!result)
        return zt_err(zt_failure_from_code(ZT_ENOMEM, "f"));
    snprintf(result, size, "%s%s", text, app->s);
    return zt_ok(result, free);
}

static zt_result_t
called(zt_result_t result, void *arg)
{
    app_t *app = arg;
    printf("%s\n", (const char *)zt_result_ptr(result));
    zt_reactor_stop(app->reactor);
    return result;
}

int
main(int argc, char **argv)
{
    double scale = argc > 1 && strcmp(argv[1], "--fast") == 0 ? 0.01 : 1.0;
    app_t app = {.reactor = zt_reactor_new(), .s = "hello, world"};
    if (!app.reactor)
        return 1;
    zt_deferred_t *d = zt_defer_later(zt_reactor_clock(app.reactor), 3.5 * scale, f, &app);
    if (!d) {
        zt_reactor_destroy(&app.reactor);
        return 1;
    }
    zt_deferred_add_callback(d, called, &app);
    zt_deferred_unref(&d);
    /* f will only be called once the reactor runs. */
    int rc = zt_reactor_run(app.reactor);
    zt_reactor_destroy(&app.reactor);
    return rc == 0 ? 0 : 1;
}
