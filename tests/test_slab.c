/* The pools' slab arena (runtime/slab.c): slabs are aligned to their size,
 * zeroed, writable end to end and disjoint, across chunks of growing size
 * (past the largest, SLAB_CHUNK_MAX); freeing the arena leaves it usable. */
#include <criterion/criterion.h>
#include <stdlib.h>

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
