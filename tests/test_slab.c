/* The pools' slab arena (runtime/slab.c): slabs are aligned to their size,
 * zeroed, writable end to end and disjoint, across chunks of growing size
 * (past the largest, SLAB_CHUNK_MAX); freeing the arena leaves it usable;
 * an arena with a prefault hook maps each chunk of SLAB_PREFAULT_MIN and
 * more one ahead, hands it to the hook, and carves it next. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "slab.h"

enum { NSLABS = 600 }; /* chunks of 8, 16, ... 256 slabs: 504, then a second 256 */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static void carve_and_check(struct slab_arena *a)
{
    static unsigned char *slabs[NSLABS];
    for (uint32_t i = 0; i < NSLABS; i++) {
        unsigned char *s = casty__slab_alloc(a);
        cr_assert_not_null(s, "slab %u", i);
        cr_assert_eq((uintptr_t)s % SLAB_BYTES, 0, "slab %u at %p is not aligned", i, (void *)s);
        cr_assert(s[0] == 0 && s[SLAB_BYTES / 2] == 0 && s[SLAB_BYTES - 1] == 0,
                  "slab %u is not zeroed", i);
        s[0] = (unsigned char)i;
        s[SLAB_BYTES - 1] = (unsigned char)~i;
        slabs[i] = s;
    }
    cr_assert_eq(a->nslabs, NSLABS);
    /* Nothing overwrote another slab's ends... */
    for (uint32_t i = 0; i < NSLABS; i++)
        cr_assert(slabs[i][0] == (unsigned char)i && slabs[i][SLAB_BYTES - 1] == (unsigned char)~i,
                  "slab %u was overwritten", i);
    /* ...because no two overlap. */
    qsort(slabs, NSLABS, sizeof slabs[0], cmp_ptr);
    for (uint32_t i = 1; i < NSLABS; i++)
        cr_assert_geq((uintptr_t)slabs[i] - (uintptr_t)slabs[i - 1], SLAB_BYTES,
                      "slabs %p and %p overlap", (void *)slabs[i - 1], (void *)slabs[i]);
}

Test(slab, slabs_are_aligned_zeroed_and_disjoint_across_chunks)
{
    struct slab_arena a = {0};
    carve_and_check(&a);
    casty__slab_arena_free(&a);
    cr_assert_null(a.chunks);
    cr_assert_eq(a.nslabs, 0);
    /* Usable again after being freed. */
    carve_and_check(&a);
    casty__slab_arena_free(&a);
}

/* The ranges an arena handed to its prefault hook, which populates them as
 * the reactor would (MADV_POPULATE_WRITE), here on the arena's thread. */
enum { MAX_PREFAULTS = 16 };
static struct {
    unsigned char *addr;
    size_t bytes;
} prefaults[MAX_PREFAULTS];
static uint32_t nprefaults;

static void record_prefault(void *ctx, void *addr, size_t bytes)
{
    cr_assert_eq(ctx, (void *)prefaults, "the hook gets its context");
    cr_assert_lt(nprefaults, MAX_PREFAULTS);
    cr_assert_eq(madvise(addr, bytes, MADV_POPULATE_WRITE), 0);
    prefaults[nprefaults].addr = addr;
    prefaults[nprefaults].bytes = bytes;
    nprefaults++;
}

Test(slab, a_growing_arena_prefaults_its_next_chunk_and_carves_it_next)
{
    struct slab_arena a = {.prefault = record_prefault, .prefault_ctx = prefaults};
    nprefaults = 0;
    /* Chunks of 8, 16, 32 (1 MiB: the first to have its successor mapped
     * ahead), 64, 128, 256 and 256 slabs: five handed to the hook by the
     * time the last of them is installed, the fifth the spare after it. */
    uint32_t chunk_slabs[] = {8, 16, 32, 64, 128, 256, 256};
    uint32_t carved = 0;
    for (uint32_t k = 0; k < sizeof chunk_slabs / sizeof chunk_slabs[0]; k++) {
        unsigned char *first = casty__slab_alloc(&a);
        cr_assert_not_null(first);
        carved++;
        if ((size_t)chunk_slabs[k] * SLAB_BYTES > SLAB_PREFAULT_MIN) {
            /* Installed from the spare handed over with the chunk before. */
            cr_assert_geq(nprefaults, 1);
            uint32_t j = k - 3; /* the spare mapped when chunk k - 1 was installed */
            cr_assert_lt(j, nprefaults);
            cr_assert_eq(first, prefaults[j].addr, "chunk %u: not the prefaulted one", k);
            cr_assert_eq(prefaults[j].bytes, (size_t)chunk_slabs[k] * SLAB_BYTES);
        }
        cr_assert(first[0] == 0 && first[SLAB_BYTES - 1] == 0);
        for (uint32_t i = 1; i < chunk_slabs[k]; i++, carved++) {
            unsigned char *s = casty__slab_alloc(&a);
            cr_assert_eq(s, first + (size_t)i * SLAB_BYTES, "chunk %u carved out of order", k);
            s[0] = 1;
        }
    }
    cr_assert_eq(a.nslabs, carved);
    cr_assert_eq(nprefaults, 5);
    cr_assert_not_null(a.spare, "the next chunk is mapped ahead");
    /* Freed with its spare still unused; then usable again, hook and all. */
    casty__slab_arena_free(&a);
    cr_assert_null(a.chunks);
    cr_assert_null(a.spare);
    cr_assert_eq(a.nslabs, 0);
    carve_and_check(&a);
    cr_assert_eq(nprefaults, 10);
    casty__slab_arena_free(&a);
}
