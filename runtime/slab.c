/* Slab memory for the message-node pools: 32 KiB slabs, aligned to their
 * size, carved from chunks mapped whole (see slab.h for why). */
#include <string.h>
#include <sys/mman.h>

#include "slab.h"

#define SLAB_CHUNK_MIN (8 * SLAB_BYTES)   /* the first chunk: 256 KiB */
#define SLAB_CHUNK_MAX (256 * SLAB_BYTES) /* 8 MiB */

/* The head of each chunk's mapping: where it starts and how long it is,
 * for munmap. It takes the mapping's first bytes, which lie before the
 * first aligned slab (the mapping asks for one slab more than it
 * carves). */
struct slab_chunk {
    struct slab_chunk *next;
    size_t bytes;
};

/* Maps a chunk for `bytes` of slabs and makes it the arena's current one.
 * The mapping is one slab longer, so that its aligned part holds `bytes`
 * and its first page holds the chunk's header; the spare pages at either
 * end are never touched and cost only address space. */
static int map_chunk(struct slab_arena *a, size_t bytes)
{
    size_t mapped = bytes + SLAB_BYTES;
    void *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    uintptr_t first = ((uintptr_t)p + sizeof(struct slab_chunk) + SLAB_BYTES - 1) &
                      ~(uintptr_t)(SLAB_BYTES - 1);
    struct slab_chunk *c = p;
    c->next = a->chunks;
    c->bytes = mapped;
    a->chunks = c;
    a->next = (unsigned char *)first;
    a->end = a->next + bytes;
    return 0;
}

void *casty__slab_alloc(struct slab_arena *a)
{
    if (a->next == a->end) {
        size_t bytes = a->chunks ? a->chunks->bytes - SLAB_BYTES : SLAB_CHUNK_MIN / 2;
        bytes = bytes * 2 <= SLAB_CHUNK_MAX ? bytes * 2 : SLAB_CHUNK_MAX;
        if (map_chunk(a, bytes) != 0)
            return NULL;
    }
    void *slab = a->next;
    a->next += SLAB_BYTES;
    a->nslabs++;
    return slab;
}

void casty__slab_arena_free(struct slab_arena *a)
{
    for (struct slab_chunk *c = a->chunks, *next; c != NULL; c = next) {
        next = c->next;
        munmap(c, c->bytes);
    }
    memset(a, 0, sizeof *a);
}
