/*  futures/failure.c - Failure: an error as a value, with a type, a message, an origin and a cause
 *
 *  A Failure is one allocation: the struct followed by its message. Types are static descriptors
 * compared by address; a type refines its parent, and a type's code is inherited from the nearest
 * ancestor that declares one. One static Failure (out of memory) exists so that a Deferred can
 * always be failed even when no Failure can be allocated; destroy recognises it and leaves it.  */
#include "futures.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zt_failure {
    const zt_failure_type_t *type; /* Borrowed, static: never NULL */
    const char *message;           /* Owned with the struct (it follows it), or static */
    const char *file;              /* Borrowed, static: the origin's source file */
    const char *func;              /* Borrowed, static: the origin's function */
    int line;                      /* the origin's line */
    int code;                      /* the ZT_E* code it was made from, or 0 to use the type's */
    intptr_t detail;               /* type-specific integer (FirstError's member index) */
    zt_failure_t *cause;           /* Owned: the failure this one wraps, or NULL */
};

const zt_failure_type_t zt__error_type = {"Error", NULL, ZT_ESYS};
const zt_failure_type_t zt__cancelled_error_type = {"CancelledError", &zt__error_type,
                                                    ZT_ECANCELLED};
const zt_failure_type_t zt__timeout_error_type = {"TimeoutError", &zt__error_type, ZT_ETIMEDOUT};
const zt_failure_type_t zt__already_called_error_type = {"AlreadyCalledError", &zt__error_type,
                                                         ZT_EALREADY};
const zt_failure_type_t zt__queue_overflow_type = {"QueueOverflow", &zt__error_type, ZT_EFULL};
const zt_failure_type_t zt__queue_underflow_type = {"QueueUnderflow", &zt__error_type, ZT_EEMPTY};
const zt_failure_type_t zt__first_error_type = {"FirstError", &zt__error_type, 0};
const zt_failure_type_t zt__system_error_type = {"SystemError", &zt__error_type, 0};

/* The last-resort out-of-memory Failure: immutable, shared, never freed. */
static zt_failure_t s_nomem = {
    .type = &zt__system_error_type,
    .message = "out of memory",
    .file = __FILE__,
    .func = "zt__failure_nomem",
    .line = __LINE__,
    .code = ZT_ENOMEM,
};

/* Allocate a Failure whose message is fmt formatted with prefix in front ("" for none). */
static zt_failure_t *
s_new(const zt_failure_type_t *type, int code, const char *file, int line, const char *func,
      const char *prefix, const char *fmt, va_list ap)
{
    if (!type)
        type = ZT_ERROR;
    size_t prefix_len = strlen(prefix);
    size_t text_len = 0;
    if (fmt) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        text_len = n > 0 ? (size_t)n : 0;
    } else if (prefix_len == 0) {
        text_len = strlen(type->name);
    }
    zt_failure_t *self = malloc(sizeof *self + prefix_len + text_len + 1);
    if (!self)
        return NULL;
    char *message = (char *)(self + 1);
    memcpy(message, prefix, prefix_len);
    if (fmt)
        vsnprintf(message + prefix_len, text_len + 1, fmt, ap);
    else if (prefix_len == 0)
        memcpy(message, type->name, text_len + 1);
    message[prefix_len + text_len] = '\0';
    *self = (zt_failure_t){
        .type = type,
        .message = message,
        .file = file ? file : "?",
        .func = func ? func : "?",
        .line = line,
        .code = code,
    };
    return self;
}

zt_failure_t *
zt_failure_new_at(const zt_failure_type_t *type, const char *file, int line, const char *func,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zt_failure_t *self = s_new(type, 0, file, line, func, "", fmt, ap);
    va_end(ap);
    return self;
}

zt_failure_t *
zt_failure_from_code_at(int code, const char *file, int line, const char *func, const char *fmt,
                        ...)
{
    if (code >= 0 || code < ZT_ERROR_LAST)
        code = ZT_ESYS;
    /* The message is the code's name alone, or "name: text". */
    char prefix[64];
    snprintf(prefix, sizeof prefix, fmt ? "%s: " : "%s", zt_strerror(code));
    va_list ap;
    va_start(ap, fmt);
    zt_failure_t *self = s_new(ZT_SYSTEM_ERROR, code, file, line, func, prefix, fmt, ap);
    va_end(ap);
    return self;
}

zt_failure_t *
zt__failure_nomem(void)
{
    zt_failure_t *self = zt_failure_from_code(ZT_ENOMEM, NULL);
    return self ? self : &s_nomem;
}

void
zt_failure_destroy(zt_failure_t **self_p)
{
    if (!self_p)
        return;
    zt_failure_t *self = *self_p;
    *self_p = NULL;
    /* The cause chain is freed iteratively: a long chain of wrapped errors needs no stack. */
    while (self) {
        zt_failure_t *cause = self->cause;
        if (self != &s_nomem)
            free(self);
        self = cause;
    }
}

zt_failure_t *
zt_failure_dup(const zt_failure_t *self)
{
    ZT_ASSERT(self);
    zt_failure_t *head = NULL;
    zt_failure_t **tail = &head;
    for (const zt_failure_t *f = self; f; f = f->cause) {
        size_t len = strlen(f->message);
        zt_failure_t *copy = malloc(sizeof *copy + len + 1);
        if (!copy) {
            zt_failure_destroy(&head);
            return NULL;
        }
        char *message = (char *)(copy + 1);
        memcpy(message, f->message, len + 1);
        *copy = *f;
        copy->message = message;
        copy->cause = NULL;
        *tail = copy;
        tail = &copy->cause;
    }
    return head;
}

void
zt_failure_set_cause(zt_failure_t *self, zt_failure_t **cause_p)
{
    ZT_ASSERT(self);
    zt_failure_t *cause = cause_p ? *cause_p : NULL;
    if (cause_p)
        *cause_p = NULL;
    if (self == &s_nomem) {
        /* The shared out-of-memory Failure is immutable: the cause is dropped. */
        zt_failure_destroy(&cause);
        return;
    }
    ZT_ASSERT_MSG(cause != self, "zt_failure_set_cause: a failure cannot cause itself");
    zt_failure_destroy(&self->cause);
    self->cause = cause;
}

const zt_failure_type_t *
zt_failure_type(const zt_failure_t *self)
{
    ZT_ASSERT(self);
    return self->type;
}

const char *
zt_failure_message(const zt_failure_t *self)
{
    ZT_ASSERT(self);
    return self->message;
}

const zt_failure_t *
zt_failure_cause(const zt_failure_t *self)
{
    ZT_ASSERT(self);
    return self->cause;
}

const char *
zt_failure_file(const zt_failure_t *self)
{
    ZT_ASSERT(self);
    return self->file;
}

int
zt_failure_line(const zt_failure_t *self)
{
    ZT_ASSERT(self);
    return self->line;
}

const char *
zt_failure_func(const zt_failure_t *self)
{
    ZT_ASSERT(self);
    return self->func;
}

int
zt_failure_code(const zt_failure_t *self)
{
    ZT_ASSERT(self);
    if (self->code < 0)
        return self->code;
    for (const zt_failure_type_t *t = self->type; t; t = t->parent)
        if (t->code < 0)
            return t->code;
    return ZT_ESYS;
}

intptr_t
zt_failure_detail(const zt_failure_t *self)
{
    ZT_ASSERT(self);
    return self->detail;
}

void
zt_failure_set_detail(zt_failure_t *self, intptr_t detail)
{
    ZT_ASSERT(self);
    if (self != &s_nomem)
        self->detail = detail;
}

bool
zt_failure_type_is(const zt_failure_type_t *type, const zt_failure_type_t *ancestor)
{
    for (const zt_failure_type_t *t = type; t; t = t->parent)
        if (t == ancestor)
            return true;
    return false;
}

const zt_failure_type_t *
zt_failure_check_(const zt_failure_t *self, ...)
{
    ZT_ASSERT(self);
    const zt_failure_type_t *match = NULL;
    va_list ap;
    va_start(ap, self);
    for (const zt_failure_type_t *t = va_arg(ap, const zt_failure_type_t *); t;
         t = va_arg(ap, const zt_failure_type_t *)) {
        if (zt_failure_type_is(self->type, t)) {
            match = t;
            break;
        }
    }
    va_end(ap);
    return match;
}

int
zt_failure_format(const zt_failure_t *self, char *buf, size_t size)
{
    ZT_ASSERT(self);
    return snprintf(buf, size, "%s: %s", self->type->name, self->message);
}

/* The file's last path component: origins print as "deferred.c:88", not the full build path. */
static const char *
s_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int
zt__failure_describe(const zt_failure_t *self, char *buf, size_t size)
{
    ZT_ASSERT(self);
    size_t total = 0;
    for (const zt_failure_t *f = self; f; f = f->cause) {
        size_t room = total < size ? size - total : 0;
        int n = snprintf(room ? buf + total : NULL, room, "%s%s: %s (%s:%d in %s)",
                         f == self ? "" : "; caused by: ", f->type->name, f->message,
                         s_basename(f->file), f->line, f->func);
        if (n < 0)
            return n;
        total += (size_t)n;
    }
    return (int)total;
}

void
zt_failure_print(const zt_failure_t *self, FILE *stream)
{
    ZT_ASSERT(self);
    if (!stream)
        stream = stderr;
    for (const zt_failure_t *f = self; f; f = f->cause)
        fprintf(stream, "%s%s: %s (%s:%d in %s)\n",
                f == self ? "Failure: " : "  caused by: ", f->type->name, f->message,
                s_basename(f->file), f->line, f->func);
}
