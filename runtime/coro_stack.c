/*  runtime/coro_stack.c - coroutine stacks: one mapping each, with a guard page below
 *
 *  A stack is mapped read-write with mmap and its lowest page is then made inaccessible with
 * mprotect. Stacks grow down, so a coroutine that overflows its stack touches the guard page and
 * the process stops with SIGSEGV at an address inside it, rather than writing over whatever lies
 * below. Pages are given memory only when first touched, so a suspended coroutine costs the pages
 * its deepest call reached. valgrind is told where each stack lies (VALGRIND_STACK_REGISTER) when
 * its header is available, so it follows the switches.  */
#include "coro_ctx.h"

#include <ztwist/common.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef ZT_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

size_t
zt__stack_page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}

int
zt__stack_map(zt__stack_t *self, size_t size)
{
    size_t page = zt__stack_page_size();
    size = (size + page - 1) / page * page;
    size_t map_size = size + page;
    /* A private mapping of /dev/zero is anonymous memory in plain POSIX (MAP_ANONYMOUS is not). */
    int fd = open("/dev/zero", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return ZT_ENOMEM;
    void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return ZT_ENOMEM;
    if (mprotect(map, page, PROT_NONE) != 0) {
        munmap(map, map_size);
        return ZT_ENOMEM;
    }
    *self = (zt__stack_t){.map = map, .map_size = map_size, .lo = (char *)map + page, .size = size};
#ifdef ZT_HAVE_VALGRIND_H
    self->vg_id = VALGRIND_STACK_REGISTER(self->lo, (char *)self->lo + size);
#endif
    return 0;
}

void
zt__stack_unmap(zt__stack_t *self)
{
    if (!self->map)
        return;
#ifdef ZT_HAVE_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(self->vg_id);
#endif
    munmap(self->map, self->map_size);
    *self = (zt__stack_t){0};
}
