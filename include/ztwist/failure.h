/*  ztwist/failure.h - an error as a value: a type, a message, where it was made, and what caused it
 *
 *  A Failure is what travels down a Deferred's errback chain, what a worker returns when its work
 * fails and what a transport reports when a connection is lost. It is ztwist's stand-in for
 * Python's exception inside Twisted's Failure: it has a type that can be tested for (with subtypes,
 * like exception classes), a message for a person, the file, line and function that created it, and
 * an optional cause (another Failure) for wrapped errors.
 *
 *  Types are static descriptors compared by address. ztwist declares its own below (cancelled,
 * timeout ...); a program declares more with ZT_FAILURE_TYPE and tests for them with
 * zt_failure_check:
 *
 *      ZT_FAILURE_TYPE(parse_error, "ParseError", ZT_ERROR);
 *      ...
 *      zt_failure_t *f = zt_failure_new(&parse_error, "line %d: unexpected '%c'", line, c);
 *      if (zt_failure_check(f, &parse_error)) ...
 *
 *  Ownership: a Failure has exactly one owner. Calls that take a `zt_failure_t **` take ownership
 * and NULL the caller's pointer; zt_failure_dup makes an independent deep copy where two owners
 * need one.
 *
 *  Threads: a Failure is a plain object with no thread affinity: one thread at a time may use it,
 * and it may be handed to another thread (a worker returns one to the reactor). Failure types are
 * immutable and shared.  */
#ifndef ZTWIST_FAILURE_H
#define ZTWIST_FAILURE_H

#include <ztwist/common.h>

#include <stdio.h>

typedef struct zt_failure zt_failure_t;

/** A failure type: a static, immutable descriptor compared by address. A public struct so that a
 * program can declare its own types as constants; it holds no state. */
typedef struct zt_failure_type zt_failure_type_t;
struct zt_failure_type {
    const char *name; /* the type's name, as printed: "TimeoutError"; Borrowed, static */
    const zt_failure_type_t *parent; /* the more general type it refines, or NULL for the root */
    int code;                        /* the ZT_E* code it maps to, or 0 to inherit the parent's */
};

/** Declare a failure type `ident` named `name` that refines `parent` (ZT_ERROR for a plain error).
 */
#define ZT_FAILURE_TYPE(ident, name, parent) const zt_failure_type_t ident = {(name), (parent), 0}

/* ztwist's own failure types. Every type refines ZT_ERROR. */
ZT_EXPORT extern const zt_failure_type_t zt__error_type;
ZT_EXPORT extern const zt_failure_type_t zt__cancelled_error_type;
ZT_EXPORT extern const zt_failure_type_t zt__timeout_error_type;
ZT_EXPORT extern const zt_failure_type_t zt__already_called_error_type;
ZT_EXPORT extern const zt_failure_type_t zt__queue_overflow_type;
ZT_EXPORT extern const zt_failure_type_t zt__queue_underflow_type;
ZT_EXPORT extern const zt_failure_type_t zt__first_error_type;
ZT_EXPORT extern const zt_failure_type_t zt__system_error_type;
/** The root of every failure type ("Error", ZT_ESYS). */
#define ZT_ERROR (&zt__error_type)
/** The operation was cancelled ("CancelledError", ZT_ECANCELLED). */
#define ZT_CANCELLED_ERROR (&zt__cancelled_error_type)
/** A deadline passed ("TimeoutError", ZT_ETIMEDOUT). */
#define ZT_TIMEOUT_ERROR (&zt__timeout_error_type)
/** A second fire of something that fires once ("AlreadyCalledError", ZT_EALREADY). */
#define ZT_ALREADY_CALLED_ERROR (&zt__already_called_error_type)
/** A bounded queue refused an item ("QueueOverflow", ZT_EFULL). */
#define ZT_QUEUE_OVERFLOW (&zt__queue_overflow_type)
/** A queue's waiting getters hit their bound ("QueueUnderflow", ZT_EEMPTY). */
#define ZT_QUEUE_UNDERFLOW (&zt__queue_underflow_type)
/** The first failure in a group that fails on its first error ("FirstError"); the cause is the
 * failure itself and zt_failure_detail is the index of the member that failed. */
#define ZT_FIRST_ERROR (&zt__first_error_type)
/** An error reported as a ZT_E* code (a system call, the network, a peer): zt_failure_code says
 * which. */
#define ZT_SYSTEM_ERROR (&zt__system_error_type)

/**
 *  Create a Failure. Use the zt_failure_new macro, which records the caller's file, line and
 * function.
 *  @param type  the failure's type; NULL means ZT_ERROR
 *  @param fmt   printf format of the message; NULL means the type's name
 *  @return a new Failure the caller owns, or NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_failure_t *zt_failure_new_at(const zt_failure_type_t *type,
                                                       const char *file, int line, const char *func,
                                                       const char *fmt, ...) ZT_PRINTF(5, 6);
#define zt_failure_new(type, ...)                                                                  \
    zt_failure_new_at((type), __FILE__, __LINE__, __func__, __VA_ARGS__)

/**
 *  Create a ZT_SYSTEM_ERROR Failure for a ZT_E* code, with the caller's origin. The message is
 *  zt_strerror(code) followed by ": " and the formatted text, when fmt is not NULL. A code that is
 *  not a ZT_E* error (0, positive, unknown) is stored as ZT_ESYS.
 *  @return a new Failure the caller owns, or NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_failure_t *zt_failure_from_code_at(int code, const char *file, int line,
                                                             const char *func, const char *fmt, ...)
    ZT_PRINTF(5, 6);
#define zt_failure_from_code(code, ...)                                                            \
    zt_failure_from_code_at((code), __FILE__, __LINE__, __func__, __VA_ARGS__)

/**
 *  Destroy a Failure and its cause chain, and NULL the pointer.
 *  @param self_p  pointer to the Failure; NULL or a NULL Failure does nothing
 */
ZT_EXPORT void zt_failure_destroy(zt_failure_t **self_p);

/**
 *  A deep copy: same type, message, origin, code, detail and a copy of the cause chain.
 *  @return a new Failure the caller owns, or NULL when out of memory
 */
ZT_EXPORT ZT_NODISCARD zt_failure_t *zt_failure_dup(const zt_failure_t *self);

/**
 *  Attach a cause, replacing (and destroying) any earlier one.
 *  @param cause_p  the cause; ownership moves to self and *cause_p becomes NULL. NULL or *NULL
 * removes the cause.
 */
ZT_EXPORT void zt_failure_set_cause(zt_failure_t *self, zt_failure_t **cause_p);

/** The failure's type. Never NULL. */
ZT_EXPORT const zt_failure_type_t *zt_failure_type(const zt_failure_t *self);

/** The message, valid as long as the Failure. Never NULL. */
ZT_EXPORT const char *zt_failure_message(const zt_failure_t *self);

/** The cause, borrowed from self, or NULL. */
ZT_EXPORT const zt_failure_t *zt_failure_cause(const zt_failure_t *self);

/** The source file that created the Failure (static string; never NULL). */
ZT_EXPORT const char *zt_failure_file(const zt_failure_t *self);

/** The line that created the Failure. */
ZT_EXPORT int zt_failure_line(const zt_failure_t *self);

/** The function that created the Failure (static string; never NULL). */
ZT_EXPORT const char *zt_failure_func(const zt_failure_t *self);

/**
 *  The ZT_E* code of the failure: the code it was made from, or else its type's (inherited from the
 * parent when the type says 0). Always negative.
 */
ZT_EXPORT int zt_failure_code(const zt_failure_t *self);

/** A type-specific integer: ZT_FIRST_ERROR's member index; 0 unless set. */
ZT_EXPORT intptr_t zt_failure_detail(const zt_failure_t *self);

/** Set the type-specific integer. */
ZT_EXPORT void zt_failure_set_detail(zt_failure_t *self, intptr_t detail);

/**
 *  Test the failure's type against one or more types, as Twisted's Failure.check: the failure
 * matches a type when its type is that type or refines it. Use the macro, which ends the list for
 * you.
 *  @return the first of the given types that matches, or NULL
 */
ZT_EXPORT const zt_failure_type_t *zt_failure_check_(const zt_failure_t *self, ...);
#define zt_failure_check(self, ...)                                                                \
    zt_failure_check_((self), __VA_ARGS__, (const zt_failure_type_t *)0)

/**
 *  Whether type is the same as, or refines, ancestor.
 */
ZT_EXPORT bool zt_failure_type_is(const zt_failure_type_t *type, const zt_failure_type_t *ancestor);

/**
 *  Format the one-line form, "TimeoutError: message", into buf, as snprintf does.
 *  @return the length the full line needs, not counting the terminating NUL
 */
ZT_EXPORT int zt_failure_format(const zt_failure_t *self, char *buf, size_t size);

/**
 *  Print the full form: the one-line form with its origin, then each cause in the chain, one per
 * line, e.g. Failure: FirstError: member 2 failed (defer.c:88 in s_on_member) caused by:
 * TimeoutError: timed out after 3 s (app.c:12 in fetch)
 *  @param stream  where to print; NULL means stderr
 */
ZT_EXPORT void zt_failure_print(const zt_failure_t *self, FILE *stream);

#endif
