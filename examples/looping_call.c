/*  examples/looping_call.c - call a function every second until it says stop (Twisted's
 * task.LoopingCall)
 *
 *  From Twisted's "Scheduling tasks for the future" howto: run_every_second prints a line three
 * times, one second apart (the first at once), then stops the loop; the Deferred returned by start
 * fires and its callback prints "Loop done." and stops the reactor. With --fail, the function
 * fails instead of stopping the loop, and the errback prints the failure.
 *
 *      A new second has passed.        (three times)
 *      Loop done.                      (with --fail: "Error: Failure during loop execution.")
 *
 *  One difference from the Python original, on purpose: with --fail Python prints a traceback
 * full of file paths; this errback prints the failure's one-line form, so the output is
 * deterministic.
 *
 *  usage: looping_call [--fast] [--fail]    (--fast divides every delay by 100, for the tests)  */
#include <ztwist.h>

#include <stdio.h>
#include <string.h>

typedef struct app {
    zt_reactor_t *reactor;   /* Borrowed: the reactor to stop at the end */
    zt_looping_call_t *loop; /* Owned: the LoopingCall */
    int loop_times;          /* how many lines to print */
    int loop_counter;        /* how many were printed */
    bool fail_in_the_end;    /* fail instead of stopping */
} app_t;

/* Called at every loop interval. */
static zt_result_t
run_every_second(void *arg)
{
    app_t *app = arg;
    if (app->loop_counter < app->loop_times) {
        app->loop_counter++;
        printf("A new second has passed.\n");
        return zt_ok_none();
    }
    if (app->fail_in_the_end)
        return zt_err(zt_failure_new(ZT_ERROR, "Failure during loop execution."));
    /* We looped enough times. */
    zt_looping_call_stop(app->loop);
    return zt_ok_none();
}

/* Called when the loop was stopped with success. */
static zt_result_t
on_loop_done(zt_result_t result, void *arg)
{
    app_t *app = arg;
    printf("Loop done.\n");
    zt_reactor_stop(app->reactor);
    return result;
}

/* Called when the loop failed. */
static zt_result_t
on_loop_failed(zt_result_t result, void *arg)
{
    app_t *app = arg;
    char line[256];
    zt_failure_format(zt_result_failure(result), line, sizeof line);
    printf("%s\n", line);
    zt_result_release(&result);
    zt_reactor_stop(app->reactor);
    return zt_ok_none();
}

int
main(int argc, char **argv)
{
    double scale = 1.0;
    app_t app = {.loop_times = 3};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fast") == 0)
            scale = 0.01;
        else if (strcmp(argv[i], "--fail") == 0)
            app.fail_in_the_end = true;
    }
    app.reactor = zt_reactor_new();
    if (!app.reactor)
        return 1;
    app.loop = zt_looping_call_new(zt_reactor_clock(app.reactor), run_every_second, &app);
    zt_deferred_t *done = NULL;
    if (!app.loop || zt_looping_call_start(app.loop, 1.0 * scale, true, &done) < 0) {
        zt_looping_call_destroy(&app.loop);
        zt_reactor_destroy(&app.reactor);
        return 1;
    }
    zt_deferred_add_callbacks(done, on_loop_done, on_loop_failed, &app);
    zt_deferred_unref(&done);

    int rc = zt_reactor_run(app.reactor);
    zt_looping_call_destroy(&app.loop);
    zt_reactor_destroy(&app.reactor);
    return rc == 0 ? 0 : 1;
}
