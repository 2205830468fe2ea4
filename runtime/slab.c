/* Slab memory for the message-node pools: 32 KiB slabs, aligned to their
 * size, carved from chunks mapped whole (see slab.h for why). */
#include <string.h>
#include <sys/mman.h>

#include "slab.h"

#define SLAB_CHUNK_MIN (8 * SLAB_BYTES)   /* the first chunk: 256 KiB */
#define SLAB_CHUNK_MAX (256 * SLAB_BYTES) /* 8 MiB */

/* The head of each chunk's mapping: where it starts and how long it is,
 * for munmap, and where its aligned slabs are. It takes the mapping's
 * first bytes, which lie before the first aligned slab (the mapping asks
 * for one slab more than it carves). */
struct slab_chunk {
    struct slab_chunk *next;
    size_t bytes;          /* mapped */
    unsigned char *first;  /* the first aligned slab */
    size_t carve;          /* bytes of slabs from `first` */
};

/* Maps a chunk for `bytes` of slabs. The mapping is one slab longer, so
 * that its aligned part holds `bytes` and its first page holds the
 * chunk's header; the spare pages at either end are never touched and
 * cost only address space. */
static struct slab_chunk *chunk_map(size_t bytes)
{
    size_t mapped = bytes + SLAB_BYTES;
    void *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct slab_chunk *c = p;
    c->next = NULL;
    c->bytes = mapped;
    c->first = (unsigned char *)(((uintptr_t)p + sizeof(struct slab_chunk) + SLAB_BYTES - 1) &
                                 ~(uintptr_t)(SLAB_BYTES - 1));
    c->carve = bytes;
    return c;
}

/* The size of the chunk after one of `bytes` (0: the first). */
static size_t next_chunk_bytes(size_t bytes)
{
    if (bytes == 0)
        return SLAB_CHUNK_MIN;
    return bytes * 2 <= SLAB_CHUNK_MAX ? bytes * 2 : SLAB_CHUNK_MAX;
}

/* Makes chunk c the arena's current one; then, for an arena grown to
 * SLAB_PREFAULT_MIN chunks, maps the next one ahead and has it prefaulted
 * (slab.h). */
static void chunk_install(struct slab_arena *a, struct slab_chunk *c)
{
    c->next = a->chunks;
    a->chunks = c;
    a->next = c->first;
    a->end = c->first + c->carve;
    if (a->prefault == NULL || c->carve < SLAB_PREFAULT_MIN || a->spare != NULL)
        return;
    a->spare = chunk_map(next_chunk_bytes(c->carve));
    if (a->spare != NULL)
        a->prefault(a->prefault_ctx, a->spare->first, a->spare->carve);
}

void *casty__slab_alloc(struct slab_arena *a)
{
    if (a->next == a->end) {
        struct slab_chunk *c = a->spare;
        a->spare = NULL;
        if (c == NULL)
            c = chunk_map(next_chunk_bytes(a->chunks ? a->chunks->carve : 0));
        if (c == NULL)
            return NULL;
        chunk_install(a, c);
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
    if (a->spare != NULL)
        munmap(a->spare, a->spare->bytes);
    void (*prefault)(void *, void *, size_t) = a->prefault;
    void *prefault_ctx = a->prefault_ctx;
    memset(a, 0, sizeof *a);
    a->prefault = prefault; /* (the hook stays: usable again as it was) */
    a->prefault_ctx = prefault_ctx;
}
