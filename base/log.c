/*  base/log.c - the log hook and its default stderr handler
 *
 *  The handler and threshold are atomics so that any thread may log while another reads the level.
 * Changing the handler is documented as a start-up call, so the handler/arg pair needs no lock.  */
#include "base/base.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ZT_LEVEL_UNSET (-1)

static _Atomic(zt_log_fn *) s_handler;      /* NULL means the default handler */
static _Atomic(void *) s_handler_arg;       /* Borrowed; the user's */
static atomic_int s_level = ZT_LEVEL_UNSET; /* threshold; unset until first read or set */

static const char *
s_level_name(zt_log_level_t level)
{
    switch (level) {
    case ZT_LOG_DEBUG:
        return "debug";
    case ZT_LOG_INFO:
        return "info";
    case ZT_LOG_WARNING:
        return "warning";
    case ZT_LOG_ERROR:
        return "error";
    case ZT_LOG_NONE:
        break;
    }
    return "none";
}

static void
s_default_handler(zt_log_level_t level, const char *file, int line, const char *func,
                  const char *message, void *arg)
{
    (void)arg;
    /* One fprintf per message so that lines from several threads do not interleave. */
    fprintf(stderr, "ztwist %s: %s (%s:%d %s)\n", s_level_name(level), message, file, line, func);
}

static zt_log_level_t
s_level_from_env(void)
{
    const char *env = getenv("ZTWIST_LOG");
    if (env) {
        for (int level = ZT_LOG_DEBUG; level <= ZT_LOG_NONE; level++)
            if (strcasecmp(env, s_level_name((zt_log_level_t)level)) == 0)
                return (zt_log_level_t)level;
    }
    return ZT_LOG_INFO;
}

void
zt_log_set_handler(zt_log_fn *handler, void *arg)
{
    atomic_store(&s_handler_arg, arg);
    atomic_store(&s_handler, handler);
}

void
zt_log_set_level(zt_log_level_t level)
{
    atomic_store(&s_level, (int)level);
}

zt_log_level_t
zt_log_level(void)
{
    int level = atomic_load_explicit(&s_level, memory_order_relaxed);
    if (level == ZT_LEVEL_UNSET) {
        int expected = ZT_LEVEL_UNSET;
        atomic_compare_exchange_strong(&s_level, &expected, (int)s_level_from_env());
        level = atomic_load(&s_level);
    }
    return (zt_log_level_t)level;
}

void
zt_log(zt_log_level_t level, const char *file, int line, const char *func, const char *fmt, ...)
{
    if (level < zt_log_level() || level >= ZT_LOG_NONE)
        return;
    char message[1024];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    if (n >= (int)sizeof message)
        memcpy(message + sizeof message - 4, "...", 4);
    zt_log_fn *handler = atomic_load(&s_handler);
    if (handler)
        handler(level, file ? file : "?", line, func ? func : "?", message,
                atomic_load(&s_handler_arg));
    else
        s_default_handler(level, file ? file : "?", line, func ? func : "?", message, NULL);
}
