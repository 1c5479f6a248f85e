/*  ztwist/frames.h - a multipart message's parts: the body of a remote request or reply
 *
 *  A zt_frames_t is an ordered list of byte frames, each a copy the list owns. zt_defer_to_remote
 * takes one as a request's body and fires with one as the reply (<ztwist/remote.h>); a worker's
 * handler gets one and returns one (<ztwist/mdp_worker.h>).
 *
 *  Threads: any thread; the calls touch no shared state (a zt_frames_t belongs to one thread at a
 * time).  */
#ifndef ZTWIST_FRAMES_H
#define ZTWIST_FRAMES_H

#include <ztwist/common.h>

/** An ordered list of byte frames: a request's or a reply's body. */
typedef struct zt_frames zt_frames_t;

/** Create an empty list. @return a list the caller owns, or NULL when out of memory */
ZT_EXPORT ZT_NODISCARD zt_frames_t *zt_frames_new(void);

/** Destroy a list and NULL the pointer. @param self_p  NULL or a NULL list does nothing */
ZT_EXPORT void zt_frames_destroy(zt_frames_t **self_p);

/** Destroy a list given as a plain pointer: the zt_free_fn of a Deferred's reply value. */
ZT_EXPORT void zt_frames_free(void *frames);

/**
 *  Append a copy of size bytes at data.
 *  @param data  NULL only when size is 0
 *  @return 0; ZT_EINVAL (data NULL with size > 0); ZT_ENOMEM
 */
ZT_EXPORT int zt_frames_add(zt_frames_t *self, const void *data, size_t size);

/** Append a copy of a string, without its NUL. @return as zt_frames_add */
ZT_EXPORT int zt_frames_add_str(zt_frames_t *self, const char *s);

/** A deep copy. @return a list the caller owns, or NULL when out of memory */
ZT_EXPORT ZT_NODISCARD zt_frames_t *zt_frames_dup(const zt_frames_t *self);

/** How many frames the list holds. */
ZT_EXPORT size_t zt_frames_count(const zt_frames_t *self);

/** Frame index's bytes, borrowed from the list (valid until it changes); NULL when out of range. */
ZT_EXPORT const void *zt_frames_data(const zt_frames_t *self, size_t index);

/** Frame index's size; 0 when out of range. */
ZT_EXPORT size_t zt_frames_size(const zt_frames_t *self, size_t index);

/** Whether frame index holds exactly the string s (without its NUL). */
ZT_EXPORT bool zt_frames_equal_str(const zt_frames_t *self, size_t index, const char *s);

#endif
