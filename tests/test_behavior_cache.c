/* The behavior blocks' caches (runtime/behavior.c), driven from two plain
 * threads so that every count is exact: one thread allocates behaviors
 * (casty_receive), another frees them (casty_behavior_free), as a
 * spawner's worker and its children's workers do.
 *
 * - the freeing thread keeps BEH_CACHE_MAX blocks and hands the rest to
 *   the shared list, which the allocating thread (its own cache empty)
 *   takes whole: the very blocks freed elsewhere come back, no malloc;
 * - the shared list stops at BEH_SHARED_MAX blocks; the rest are freed. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "casty.h"
#include "internal.h"

static casty_behavior_t *noop(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)msg;
    (void)state;
    return casty_same();
}

struct batch {
    casty_behavior_t **blocks;
    size_t n;
};

/* One state word: a 40-byte block, the smallest class. */
static void alloc_all(struct batch *b)
{
    uint64_t word = 7;
    for (size_t i = 0; i < b->n; i++) {
        b->blocks[i] = casty_receive(noop, &word, sizeof word);
        cr_assert_not_null(b->blocks[i]);
    }
}

static void *free_all(void *p)
{
    struct batch *b = p;
    for (size_t i = 0; i < b->n; i++)
        casty_behavior_free(b->blocks[i]);
    return NULL;
}

/* Frees the batch on a new thread, which exits afterwards (its own cache
 * is then freed). */
static void free_elsewhere(struct batch *b)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_all, b), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

Test(behavior_cache, blocks_freed_elsewhere_come_back_to_the_allocator)
{
    enum { N = 4 * BEH_CACHE_MAX };
    cr_assert_eq(casty__behavior_shared_blocks(), 0);
    struct batch first = {calloc(N, sizeof(void *)), N};
    struct batch second = {calloc(N, sizeof(void *)), N};
    cr_assert(first.blocks && second.blocks);
    alloc_all(&first);
    casty_behavior_t **freed = malloc(N * sizeof *freed);
    cr_assert_not_null(freed);
    memcpy(freed, first.blocks, N * sizeof *freed);
    qsort(freed, N, sizeof *freed, cmp_ptr);

    free_elsewhere(&first);
    cr_assert_eq(casty__behavior_shared_blocks(), N - BEH_CACHE_MAX,
                 "the freeing thread keeps %d blocks and hands on the rest",
                 BEH_CACHE_MAX);

    alloc_all(&second);
    cr_assert_eq(casty__behavior_shared_blocks(), 0, "the allocator took the shared list");
    size_t reused = 0;
    for (size_t i = 0; i < N; i++)
        reused += bsearch(&second.blocks[i], freed, N, sizeof *freed, cmp_ptr) != NULL;
    cr_assert_geq(reused, N - BEH_CACHE_MAX, "only %zu of %d blocks freed elsewhere came back",
                  reused, N - BEH_CACHE_MAX);

    free_elsewhere(&second);
    free(freed);
    free(first.blocks);
    free(second.blocks);
}

Test(behavior_cache, shared_list_is_bounded)
{
    enum { N = BEH_SHARED_MAX + 4 * BEH_CACHE_MAX };
    struct batch b = {calloc(N, sizeof(void *)), N};
    cr_assert_not_null(b.blocks);
    alloc_all(&b);
    free_elsewhere(&b);
    cr_assert_eq(casty__behavior_shared_blocks(), BEH_SHARED_MAX);
    /* Taken whole by the next allocation here, and usable. */
    casty_behavior_t *one = casty_receive(noop, NULL, 0);
    cr_assert_not_null(one);
    cr_assert_eq(casty__behavior_shared_blocks(), 0);
    casty_behavior_free(one);
    free(b.blocks);
}
