/*  examples/fan_out_coro.c - fan work out to remote workers and gather the results, as a coroutine
 *
 *  The same program as fan_out_callbacks.c, with the same output: ask the workers for the squares
 * of 0..19, all at once, then gather the replies and sum them; then a second round that depends on
 * the first's result. With zt_await each step follows the previous one in the code (Twisted's
 * inlineCallbacks):
 *
 *      @inlineCallbacks
 *      def fan_out(workers):
 *          squares = yield gatherResults([workers.square(n) for n in range(20)])
 *          total = sum(squares)
 *          again = yield workers.square(total % 100)
 *
 *  The broker and the workers run in this process (examples/square_workers.h).
 *
 *  usage: fan_out_coro  */
#include "square_workers.h"

#define FAN_OUT 20

static zt_result_t
fan_out(void *arg)
{
    square_workers_t *w = arg;
    zt_deferred_t *ds[FAN_OUT];
    for (int n = 0; n < FAN_OUT; n++)
        ds[n] = square_request(w, n);
    zt_result_t gathered = zt_await(zt_gather_results(ds, FAN_OUT, true));
    for (int n = 0; n < FAN_OUT; n++)
        zt_deferred_unref(&ds[n]);
    if (zt_is_err(gathered))
        return gathered;
    zt_result_list_t *squares = zt_result_ptr(gathered);
    long total = 0;
    for (size_t i = 0; i < zt_result_list_size(squares); i++)
        total += (long)zt_result_list_int(squares, i);
    zt_result_release(&gathered);
    printf("%d requests to %d workers: the squares of 0..%d sum to %ld\n", FAN_OUT, SQUARE_WORKERS,
           FAN_OUT - 1, total);
    zt_result_t again = zt_await(square_request(w, total % 100));
    if (zt_is_err(again))
        return again;
    printf("then (%ld %% 100)^2 = %ld\n", total, (long)zt_result_int(again));
    return again;
}

static zt_result_t
done(zt_result_t result, void *arg)
{
    square_workers_t *w = arg;
    if (zt_is_err(result))
        zt_failure_print(zt_result_failure(result), stdout);
    zt_result_release(&result);
    zt_reactor_stop(w->reactor);
    return zt_ok_none();
}

static void
start(void *arg)
{
    square_workers_t *w = arg;
    zt_deferred_t *d = zt_coro_start(w->reactor, fan_out, w);
    zt_deferred_add_both(d, done, w);
    zt_deferred_unref(&d);
}

int
main(void)
{
    zt_reactor_t *r = zt_reactor_new();
    square_workers_t w;
    int rc = r ? square_workers_start(&w, r) : ZT_ENOMEM;
    if (rc == 0) {
        zt_reactor_call_when_running(r, start, &w, NULL);
        zt_reactor_run(r);
    } else {
        fprintf(stderr, "fan_out_coro: cannot start the workers\n");
    }
    if (r)
        square_workers_stop(&w);
    zt_reactor_destroy(&r);
    return rc == 0 ? 0 : 1;
}
