/* Internal (not installed). Slab memory for the message-node pools: slabs
 * of SLAB_BYTES, aligned to their size, carved in address order from
 * chunks mapped whole (mmap), each chunk twice the last up to
 * SLAB_CHUNK_MAX. An arena belongs to one thread at a time (the pool or
 * cache that holds it); nothing is given back before the arena is freed.
 *
 * Why not aligned_alloc per slab: glibc places 32 KiB slabs aligned to
 * 32 KiB 64 KiB apart and writes a heap header on the page after each
 * one, so every slab touched nine pages for eight pages of nodes (39.5 k
 * page faults against 31.8 k for `fjthrput 40000 100 --workers 1`, whose
 * 4 M waiting messages are all in slabs), and used twice its size of
 * address space. A chunk's pages are touched only when their slab is
 * carved, so an idle pool costs what it used before. */
#ifndef CASTY_SLAB_H
#define CASTY_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define SLAB_BYTES ((size_t)32768) /* also the slabs' alignment */

/* An arena that has grown to chunks of SLAB_PREFAULT_MIN or more (a
 * backlog of messages: a producer outrunning its consumers) maps its next
 * chunk ahead and hands it to `prefault`, which has it populated off the
 * arena's thread (the reactor's MADV_POPULATE_WRITE, pool.c), so that the
 * first touch of each page (zeroing it, ~45% of `fjthrput 40000 100
 * --workers 1`) happens on a core that has time for it. At most one chunk
 * (up to SLAB_CHUNK_MAX) is resident ahead of need, and only after the
 * arena carved SLAB_PREFAULT_MIN's worth of growth. */
#define SLAB_PREFAULT_MIN ((size_t)1 << 20)

struct slab_arena {
    unsigned char *next, *end; /* the current chunk's slabs not carved yet */
    struct slab_chunk *chunks; /* every chunk installed, newest first */
    struct slab_chunk *spare;  /* the next chunk, mapped (and prefaulting) ahead */
    uint32_t nslabs;           /* slabs carved so far */
    /* NULL: no prefault (the arena's chunks are faulted by first touch). */
    void (*prefault)(void *ctx, void *addr, size_t bytes);
    void *prefault_ctx;
};

/* A new slab (its memory zeroed, as fresh pages are), or NULL when out of
 * memory. The arena's holder only. */
void *casty__slab_alloc(struct slab_arena *a);
/* Unmaps every chunk (the spare too); the arena is empty (and usable,
 * with the same prefault hook) again. */
void casty__slab_arena_free(struct slab_arena *a);

#endif /* CASTY_SLAB_H */
