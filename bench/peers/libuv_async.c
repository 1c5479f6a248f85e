/*  bench/peers/libuv_async.c - libuv's uv_async with a locked queue, the peer of call_from_thread
 *
 *  The usual way to call into a libuv loop from another thread: push the call on a queue under a
 *  mutex, then uv_async_send; the loop's async callback swaps the queue out under the lock and runs
 *  the calls with no lock held. Figures (with the suffix .peer.libuv), each the median of
 *  BENCH_REPS runs:
 *
 *      reactor.call_from_thread_1p_per_s       calls/s run by the loop, 1 producer thread
 *      reactor.call_from_thread_4p_per_s       calls/s run by the loop, 4 producer threads
 *      reactor.call_from_thread_rtt_median_us  one call at a time, there and back: median (us)
 *      reactor.call_from_thread_rtt_p99_us     ... and 99th percentile (us)
 *
 *  Throughput: N calls in all (1,000,000; 50,000 quick), split between the producers, timed from
 *  the release of the producers (the earliest clock reading taken by any thread leaving the start
 *  barrier, since the loop thread may be descheduled there) until the loop has run the last call.
 *  Round trip: a client thread with its own loop and queue posts one call to the main loop, which
 *  posts a reply back; the client times each exchange and sends the next only when the reply has
 *  run (20,000 exchanges; 1,000 quick). Each run's median and p99 are taken, and the median over
 *  runs is printed. The round trip pays libuv 1.44's async handshake: when the woken loop runs
 *  before the sender has left uv_async_send, the loop spins on the handle's pending flag and then
 *  calls sched_yield (bench/README.md has the measurement).
 *
 *  Design notes: a queue is filled by any thread and drained only by its loop's thread; the lock
 *  is held only to append or to swap the array out, never while a call runs. uv_async_send is the
 *  one libuv call made off the loop thread. Producers are joined before the async handle closes,
 *  so no send can reach a closed handle.  */
#include "../bench_util.h"

#include <pthread.h>
#include <uv.h>

/** A call posted to a loop. */
typedef struct {
    void (*fn)(void *arg); /* what to run on the loop thread */
    void *arg;             /* its argument; Borrowed */
} s_call_t;

/** A loop's inbox: an async handle and a locked, growable array of calls. */
typedef struct {
    uv_async_t async;     /* wakes the loop; the only handle sent to from other threads */
    pthread_mutex_t lock; /* guards calls, count and capacity */
    s_call_t *calls;      /* Owned: calls waiting, in posting order */
    size_t count;         /* calls waiting */
    size_t capacity;      /* room in calls */
    s_call_t *spare;      /* Owned: the loop thread's drained array, swapped in on the next drain */
    size_t spare_capacity; /* room in spare */
} s_inbox_t;

static void
s_die(const char *what)
{
    fprintf(stderr, "libuv_async: %s\n", what);
    exit(1);
}

static void
s_inbox_drain(uv_async_t *async)
{
    s_inbox_t *box = async->data;
    pthread_mutex_lock(&box->lock);
    s_call_t *calls = box->calls;
    size_t count = box->count, capacity = box->capacity;
    box->calls = box->spare;
    box->capacity = box->spare_capacity;
    box->count = 0;
    pthread_mutex_unlock(&box->lock);
    for (size_t i = 0; i < count; i++)
        calls[i].fn(calls[i].arg);
    box->spare = calls;
    box->spare_capacity = capacity;
}

static void
s_inbox_init(s_inbox_t *box, uv_loop_t *loop)
{
    *box = (s_inbox_t){.calls = NULL};
    if (pthread_mutex_init(&box->lock, NULL) != 0 ||
        uv_async_init(loop, &box->async, s_inbox_drain))
        s_die("cannot create an inbox");
    box->async.data = box;
}

/** Post fn(arg) to the box's loop. Any thread. */
static void
s_inbox_post(s_inbox_t *box, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&box->lock);
    if (box->count == box->capacity) {
        size_t capacity = box->capacity ? box->capacity * 2 : 1024;
        s_call_t *grown = realloc(box->calls, capacity * sizeof *grown);
        if (!grown)
            s_die("out of memory");
        box->calls = grown;
        box->capacity = capacity;
    }
    box->calls[box->count++] = (s_call_t){.fn = fn, .arg = arg};
    pthread_mutex_unlock(&box->lock);
    uv_async_send(&box->async);
}

/** Close the box's handle (loop thread); its memory is freed by s_inbox_fini after the loop ran. */
static void
s_inbox_close(s_inbox_t *box)
{
    uv_close((uv_handle_t *)&box->async, NULL);
}

static void
s_inbox_fini(s_inbox_t *box)
{
    pthread_mutex_destroy(&box->lock);
    free(box->calls);
    free(box->spare);
}

/* ---- throughput: P producers, one loop ---- */

/** Shared by the loop and the producers of one throughput run. */
typedef struct {
    uv_loop_t loop;          /* the consumer's loop (main thread) */
    s_inbox_t inbox;         /* the loop's inbox */
    pthread_barrier_t start; /* releases the producers and the clock together */
    size_t per_producer;     /* calls each producer posts */
    size_t expected;         /* calls in all */
    size_t done;             /* calls run so far; loop thread only */
    uint64_t started[5];     /* bench_now_ns() as each thread left the barrier; [0] the loop's */
    uint64_t last_done;      /* bench_now_ns() when the last call ran */
} s_flood_t;

static void
s_count_call(void *arg)
{
    s_flood_t *flood = arg;
    if (++flood->done == flood->expected) {
        flood->last_done = bench_now_ns();
        uv_stop(&flood->loop);
    }
}

/** A producer thread's argument. */
typedef struct {
    s_flood_t *flood; /* the run; Borrowed */
    int index;        /* the producer's slot in flood->started, from 1 */
} s_producer_t;

static void *
s_producer(void *arg)
{
    s_producer_t *self = arg;
    s_flood_t *flood = self->flood;
    pthread_barrier_wait(&flood->start);
    flood->started[self->index] = bench_now_ns();
    for (size_t i = 0; i < flood->per_producer; i++)
        s_inbox_post(&flood->inbox, s_count_call, flood);
    return NULL;
}

/** One throughput run; returns calls per second. */
static double
s_flood_run(int producers, size_t n)
{
    s_flood_t flood = {.per_producer = n / (size_t)producers};
    flood.expected = flood.per_producer * (size_t)producers;
    if (uv_loop_init(&flood.loop) != 0)
        s_die("cannot create a loop");
    s_inbox_init(&flood.inbox, &flood.loop);
    pthread_barrier_init(&flood.start, NULL, (unsigned)producers + 1);
    pthread_t threads[4];
    s_producer_t args[4];
    for (int i = 0; i < producers; i++) {
        args[i] = (s_producer_t){.flood = &flood, .index = i + 1};
        if (pthread_create(&threads[i], NULL, s_producer, &args[i]) != 0)
            s_die("cannot start a producer");
    }
    pthread_barrier_wait(&flood.start);
    flood.started[0] = bench_now_ns();
    uv_run(&flood.loop, UV_RUN_DEFAULT);
    uint64_t start = flood.started[0];
    for (int i = 0; i < producers; i++) {
        pthread_join(threads[i], NULL);
        if (flood.started[i + 1] < start)
            start = flood.started[i + 1];
    }
    if (flood.done != flood.expected)
        s_die("the loop stopped early");
    s_inbox_close(&flood.inbox);
    uv_run(&flood.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&flood.loop) != 0)
        s_die("the loop did not close");
    s_inbox_fini(&flood.inbox);
    pthread_barrier_destroy(&flood.start);
    return (double)flood.expected / ((double)(flood.last_done - start) / 1e9);
}

/* ---- round trip: a client loop and the main loop, one call at a time ---- */

/** Shared by the two loops of one round-trip run. */
typedef struct {
    uv_loop_t server_loop; /* the main thread's loop */
    s_inbox_t server;      /* its inbox */
    uv_loop_t client_loop; /* the client thread's loop */
    s_inbox_t client;      /* its inbox */
    size_t exchanges;      /* how many round trips to time */
    size_t done;           /* round trips completed; client thread only */
    uint64_t sent_at;      /* when the current ping was posted; client thread only */
    double *rtt_us;        /* Owned: one sample per round trip */
} s_pingpong_t;

static void s_on_pong(void *arg);

static void
s_on_ping(void *arg)
{
    s_pingpong_t *pp = arg;
    s_inbox_post(&pp->client, s_on_pong, pp);
}

static void
s_on_stop(void *arg)
{
    s_pingpong_t *pp = arg;
    s_inbox_close(&pp->server);
}

static void
s_send_ping(s_pingpong_t *pp)
{
    pp->sent_at = bench_now_ns();
    s_inbox_post(&pp->server, s_on_ping, pp);
}

static void
s_on_pong(void *arg)
{
    s_pingpong_t *pp = arg;
    pp->rtt_us[pp->done++] = (double)(bench_now_ns() - pp->sent_at) / 1e3;
    if (pp->done < pp->exchanges) {
        s_send_ping(pp);
    } else {
        s_inbox_post(&pp->server, s_on_stop, pp);
        s_inbox_close(&pp->client);
    }
}

static void *
s_client(void *arg)
{
    s_pingpong_t *pp = arg;
    s_send_ping(pp);
    uv_run(&pp->client_loop, UV_RUN_DEFAULT);
    return NULL;
}

/** One round-trip run: fills *median_us and *p99_us. */
static void
s_pingpong_run(size_t exchanges, double *median_us, double *p99_us)
{
    s_pingpong_t pp = {.exchanges = exchanges, .rtt_us = calloc(exchanges, sizeof(double))};
    if (!pp.rtt_us || uv_loop_init(&pp.server_loop) || uv_loop_init(&pp.client_loop))
        s_die("cannot set up the round trip");
    s_inbox_init(&pp.server, &pp.server_loop);
    s_inbox_init(&pp.client, &pp.client_loop);
    pthread_t client;
    if (pthread_create(&client, NULL, s_client, &pp) != 0)
        s_die("cannot start the client");
    uv_run(&pp.server_loop, UV_RUN_DEFAULT);
    pthread_join(client, NULL);
    if (pp.done != exchanges)
        s_die("the round trips stopped early");
    if (uv_loop_close(&pp.server_loop) || uv_loop_close(&pp.client_loop))
        s_die("a loop did not close");
    s_inbox_fini(&pp.server);
    s_inbox_fini(&pp.client);
    *median_us = bench_median(pp.rtt_us, exchanges);
    *p99_us = bench_quantile(pp.rtt_us, exchanges, 0.99);
    free(pp.rtt_us);
}

int
main(void)
{
    bool quick = bench_quick();
    size_t n = quick ? 50000 : 1000000;
    size_t exchanges = quick ? 1000 : 20000;
    printf("# libuv %s uv_async + mutex queue: %zu calls per throughput run, %zu round trips\n",
           uv_version_string(), n, exchanges);
    double one[BENCH_REPS], four[BENCH_REPS], median[BENCH_REPS], p99[BENCH_REPS];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        one[rep] = s_flood_run(1, n);
        four[rep] = s_flood_run(4, n);
        s_pingpong_run(exchanges, &median[rep], &p99[rep]);
    }
    bench_report("reactor.call_from_thread_1p_per_s.peer.libuv", one, BENCH_REPS, "calls/s");
    bench_report("reactor.call_from_thread_4p_per_s.peer.libuv", four, BENCH_REPS, "calls/s");
    bench_report("reactor.call_from_thread_rtt_median_us.peer.libuv", median, BENCH_REPS, "us");
    bench_report("reactor.call_from_thread_rtt_p99_us.peer.libuv", p99, BENCH_REPS, "us");
    return 0;
}
