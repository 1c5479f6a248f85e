/*  bridges/mdp/frames.c - a multipart message's parts (zt_frames_t): owned copies in order
 *
 *  A growable array of (bytes, size) pairs; each frame is its own allocation, so a frame's
 * pointer stays valid while frames are added after it. Empty frames allocate nothing. */
#include <ztwist/frames.h>

#include "base/base.h"

#include <stdlib.h>
#include <string.h>

typedef struct s_part {
    uint8_t *data; /* the bytes; Owned; NULL when size is 0 */
    size_t size;   /* how many */
} s_part_t;

struct zt_frames {
    s_part_t *parts; /* the frames; Owned array */
    size_t count;    /* frames in use */
    size_t cap;      /* frames allocated */
};

zt_frames_t *
zt_frames_new(void)
{
    return calloc(1, sizeof(zt_frames_t));
}

void
zt_frames_destroy(zt_frames_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zt_frames_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free(self->parts[i].data);
    free(self->parts);
    free(self);
    *self_p = NULL;
}

void
zt_frames_free(void *frames)
{
    zt_frames_t *f = frames;
    zt_frames_destroy(&f);
}

int
zt_frames_add(zt_frames_t *self, const void *data, size_t size)
{
    ZT_ASSERT(self);
    if (!data && size > 0)
        return ZT_EINVAL;
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 4;
        s_part_t *grown = realloc(self->parts, cap * sizeof *grown);
        if (!grown)
            return ZT_ENOMEM;
        self->parts = grown;
        self->cap = cap;
    }
    uint8_t *copy = NULL;
    if (size > 0) {
        copy = malloc(size);
        if (!copy)
            return ZT_ENOMEM;
        memcpy(copy, data, size);
    }
    self->parts[self->count++] = (s_part_t){copy, size};
    return 0;
}

int
zt_frames_add_str(zt_frames_t *self, const char *s)
{
    if (!s)
        return ZT_EINVAL;
    return zt_frames_add(self, s, strlen(s));
}

zt_frames_t *
zt_frames_dup(const zt_frames_t *self)
{
    ZT_ASSERT(self);
    zt_frames_t *copy = zt_frames_new();
    for (size_t i = 0; copy && i < self->count; i++)
        if (zt_frames_add(copy, self->parts[i].data, self->parts[i].size) != 0)
            zt_frames_destroy(&copy);
    return copy;
}

size_t
zt_frames_count(const zt_frames_t *self)
{
    ZT_ASSERT(self);
    return self->count;
}

const void *
zt_frames_data(const zt_frames_t *self, size_t index)
{
    ZT_ASSERT(self);
    if (index >= self->count)
        return NULL;
    return self->parts[index].data ? (const void *)self->parts[index].data : (const void *)"";
}

size_t
zt_frames_size(const zt_frames_t *self, size_t index)
{
    ZT_ASSERT(self);
    return index < self->count ? self->parts[index].size : 0;
}

bool
zt_frames_equal_str(const zt_frames_t *self, size_t index, const char *s)
{
    ZT_ASSERT(self && s);
    if (index >= self->count)
        return false;
    size_t n = strlen(s);
    return self->parts[index].size == n && (n == 0 || memcmp(self->parts[index].data, s, n) == 0);
}
