/*  examples/fan_out_callbacks.c - fan work out to remote workers and gather the results, with
 *  callbacks
 *
 *  The same program as fan_out_coro.c, with the same output: ask the workers for the squares of
 * 0..19, all at once, then gather the replies and sum them; then a second round that depends on the
 * first's result. Each step is a callback on the previous step's Deferred:
 *
 *      def fan_out(workers):
 *          def summed(squares):
 *              total = sum(squares)
 *              return workers.square(total % 100)
 *          return gatherResults([workers.square(n) for n in range(20)]).addCallback(summed)
 *
 *  The broker and the workers run in this process (examples/square_workers.h).
 *
 *  usage: fan_out_callbacks  */
#include "square_workers.h"

#define FAN_OUT 20

typedef struct job {
    square_workers_t *w; /* Borrowed */
    long total;          /* the first round's sum */
} job_t;

static zt_result_t
on_second(zt_result_t again, void *arg)
{
    job_t *job = arg;
    if (!zt_is_err(again))
        printf("then (%ld %% 100)^2 = %ld\n", job->total, (long)zt_result_int(again));
    return again;
}

static zt_result_t
on_gathered(zt_result_t gathered, void *arg)
{
    job_t *job = arg;
    if (zt_is_err(gathered))
        return gathered;
    zt_result_list_t *squares = zt_result_ptr(gathered);
    job->total = 0;
    for (size_t i = 0; i < zt_result_list_size(squares); i++)
        job->total += (long)zt_result_int(*zt_result_list_at(squares, i));
    zt_result_release(&gathered);
    printf("%d requests to %d workers: the squares of 0..%d sum to %ld\n", FAN_OUT, SQUARE_WORKERS,
           FAN_OUT - 1, job->total);
    zt_deferred_t *d = square_request(job->w, job->total % 100);
    if (!d)
        return zt_err(zt_failure_from_code(ZT_ENOMEM, "square_request"));
    zt_deferred_add_callback(d, on_second, job);
    return zt_wait_for(d); /* the chain goes on with the second round's result */
}

static zt_result_t
done(zt_result_t result, void *arg)
{
    job_t *job = arg;
    if (zt_is_err(result))
        zt_failure_print(zt_result_failure(result), stdout);
    zt_result_release(&result);
    zt_reactor_stop(job->w->reactor);
    return zt_ok_none();
}

static void
start(void *arg)
{
    job_t *job = arg;
    zt_deferred_t *ds[FAN_OUT];
    for (int n = 0; n < FAN_OUT; n++)
        ds[n] = square_request(job->w, n);
    zt_deferred_t *all = zt_gather_results(ds, FAN_OUT, true);
    for (int n = 0; n < FAN_OUT; n++)
        zt_deferred_unref(&ds[n]);
    zt_deferred_add_callback(all, on_gathered, job);
    zt_deferred_add_both(all, done, job);
    zt_deferred_unref(&all);
}

int
main(void)
{
    zt_reactor_t *r = zt_reactor_new();
    square_workers_t w;
    int rc = r ? square_workers_start(&w, r) : ZT_ENOMEM;
    job_t job = {.w = &w};
    if (rc == 0) {
        zt_reactor_call_when_running(r, start, &job, NULL);
        zt_reactor_run(r);
    } else {
        fprintf(stderr, "fan_out_callbacks: cannot start the workers\n");
    }
    if (r)
        square_workers_stop(&w);
    zt_reactor_destroy(&r);
    return rc == 0 ? 0 : 1;
}
