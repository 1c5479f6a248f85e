/*  ztwist/log.h - where ztwist's messages go
 *
 *  ztwist reports what a program cannot see otherwise (an unhandled failure, a dropped frame, a
 * slow callback) through one handler. The default handler writes one line per message to stderr; a
 * program routes messages into its own logging by installing a handler.
 *
 *  Threads: zt_log, zt_log_level and zt_log_set_level are safe from any thread. zt_log_set_handler
 * must be called while no other ztwist thread is logging (at start-up, before the first reactor or
 * pool exists).
 */
#ifndef ZTWIST_LOG_H
#define ZTWIST_LOG_H

#include <ztwist/common.h>

/** The severity of a message, from chatty to serious. */
typedef enum zt_log_level {
    ZT_LOG_DEBUG = 0,   /* detail for the developer of ztwist or of a program */
    ZT_LOG_INFO = 1,    /* a normal event an operator may want to see */
    ZT_LOG_WARNING = 2, /* something is wrong but nothing was lost */
    ZT_LOG_ERROR = 3,   /* something failed: a request, a connection, a callback */
    ZT_LOG_NONE = 4     /* as a threshold: log nothing */
} zt_log_level_t;

/**
 *  A log handler. It may run on any thread, so it must be thread-safe.
 *  @param level    the message's severity
 *  @param file     the source file that logged; never NULL
 *  @param line     the line in that file
 *  @param func     the function that logged; never NULL
 *  @param message  the formatted message without a trailing newline; valid only during the call
 *  @param arg      the arg given to zt_log_set_handler
 */
typedef void zt_log_fn(zt_log_level_t level, const char *file, int line, const char *func,
                       const char *message, void *arg);

/**
 *  Route every message to handler.
 *  @param handler  the new handler; NULL restores the default (stderr)
 *  @param arg      passed to the handler; borrowed, must outlive its use
 */
ZT_EXPORT void zt_log_set_handler(zt_log_fn *handler, void *arg);

/**
 *  Drop messages below level. The default is ZT_LOG_INFO, or the level named by the environment
 * variable ZTWIST_LOG (debug, info, warning, error, none) when it is set at the first message.
 *  @param level  the lowest level that is delivered; ZT_LOG_NONE silences everything
 */
ZT_EXPORT void zt_log_set_level(zt_log_level_t level);

/**
 *  The current threshold.
 *  @return the lowest level that is delivered
 */
ZT_EXPORT zt_log_level_t zt_log_level(void);

/**
 *  Log a message. Use the ZT_LOG_* macros below, which fill in the origin.
 *  @param fmt  printf format; a message longer than 1 KiB is cut with "..."
 */
ZT_EXPORT void zt_log(zt_log_level_t level, const char *file, int line, const char *func,
                      const char *fmt, ...) ZT_PRINTF(5, 6);

/** Log at a level with the caller's file, line and function. The arguments are a printf format and
 * its values. */
#define ZT_LOG_DEBUG(...) zt_log(ZT_LOG_DEBUG, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define ZT_LOG_INFO(...) zt_log(ZT_LOG_INFO, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define ZT_LOG_WARNING(...) zt_log(ZT_LOG_WARNING, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define ZT_LOG_ERROR(...) zt_log(ZT_LOG_ERROR, __FILE__, __LINE__, __func__, __VA_ARGS__)

#endif
