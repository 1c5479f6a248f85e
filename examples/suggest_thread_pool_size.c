/*  examples/suggest_thread_pool_size.c - grow the reactor's thread pool, and prove it
 *
 *  From Twisted's threading howto ("Managing the Reactor Thread Pool"): the reactor's pool has 0 to
 * 10 threads by default; suggestThreadPoolSize(30) lets it grow to 30. To show the pool really has
 * them, 30 blocking calls meet: each waits until all 30 are running at the same time, which only
 * 30 threads can do. The Python it matches:
 *
 *      reactor.suggestThreadPoolSize(30)
 *      pool = reactor.getThreadPool()
 *      print("thread pool: min %d, max %d threads" % (pool.min, pool.max))
 *      # 30 x reactor.callInThread(meet): meet returns once all 30 run at once, then
 *      # reactor.callFromThread(done); done prints and stops after the 30th
 *
 *  usage: suggest_thread_pool_size [--fast]    (nothing waits on time; --fast is accepted for the
 * tests)  */
#include <ztwist.h>

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define N 30

typedef struct app {
    zt_reactor_t *reactor; /* Borrowed */
    pthread_mutex_t lock;  /* guards arrived */
    pthread_cond_t cond;   /* signalled at each arrival */
    int arrived;           /* calls that are running (under lock) */
    int finished;          /* calls that reported back (reactor thread) */
} app_t;

/* Runs on the reactor thread. */
static void
done(void *arg)
{
    app_t *app = arg;
    pthread_mutex_lock(&app->lock);
    int arrived = app->arrived;
    pthread_mutex_unlock(&app->lock);
    if (++app->finished == N) {
        if (arrived == N)
            printf("%d blocking calls ran at the same time\n", N);
        zt_reactor_stop(app->reactor);
    }
}

/* Runs on a worker thread: returns once all N calls are running, or after 10 s. */
static zt_result_t
meet(void *arg)
{
    app_t *app = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&app->lock);
    app->arrived++;
    pthread_cond_broadcast(&app->cond);
    while (app->arrived < N && pthread_cond_timedwait(&app->cond, &app->lock, &until) == 0) {
    }
    int ok = app->arrived == N;
    pthread_mutex_unlock(&app->lock);
    if (!ok)
        printf("a call gave up waiting: the pool has fewer than %d threads\n", N);
    zt_reactor_call_from_thread(app->reactor, done, app);
    return zt_ok_none();
}

int
main(void)
{
    zt_reactor_t *reactor = zt_reactor_new();
    if (!reactor)
        return 1;
    app_t app = {.reactor = reactor};
    pthread_mutex_init(&app.lock, NULL);
    pthread_cond_init(&app.cond, NULL);
    int rc = zt_reactor_suggest_thread_pool_size(reactor, 30);
    zt_pool_stats_t stats;
    zt_pool_stats(zt_reactor_get_thread_pool(reactor), &stats);
    printf("thread pool: min %d, max %d threads\n", (int)stats.min, (int)stats.max);
    for (int i = 0; i < N && rc == 0; i++)
        rc = zt_call_in_thread(reactor, meet, &app);
    if (rc == 0)
        rc = zt_reactor_run(reactor);
    zt_reactor_destroy(&reactor);
    pthread_cond_destroy(&app.cond);
    pthread_mutex_destroy(&app.lock);
    return rc == 0 && app.finished == N ? 0 : 1;
}
