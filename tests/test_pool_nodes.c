/* The workers' node pools (runtime/pool.c) driven directly, one thread
 * playing two workers, so that every step is deterministic:
 *
 * - small and large nodes released by the other worker, or by a thread
 *   outside the pool, come back to their owner (no new memory while its
 *   own nodes are free again);
 * - a random interleaving of allocations and releases, by the owner, by
 *   the other worker and by a thread that is no worker, never hands out a
 *   node that is still live, and every value survives intact until its
 *   release;
 * - the size classes' boundaries (MSG_SMALL_MAX, MSG_INLINE_MAX) and tiny
 *   nodes (values of up to MSG_TINY_MAX bytes in the header). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

struct fake {
    struct casty_system *sys;
    struct worker workers[2];
};

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof *f);
    f->sys = calloc(1, sizeof *f->sys);
    cr_assert_not_null(f->sys);
    f->sys->nworkers = 2;
    f->sys->workers = f->workers;
    for (uint32_t i = 0; i < 2; i++) {
        f->workers[i].index = i;
        f->workers[i].sys = f->sys;
        cr_assert_eq(casty__pool_init(&f->workers[i], 2), 0);
    }
}

static void fake_destroy(struct fake *f)
{
    for (uint32_t i = 2; i-- > 0;)
        casty__pool_destroy(&f->workers[i]);
    free(f->sys);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

enum { ROUNDS = 4 };

/* ROUNDS times: allocates n nodes of `size` from worker 0 and has worker 1
 * release them all (and flush, as it does going idle). The nodes come back
 * to worker 0: all rounds together use at most n + `slack` distinct nodes
 * (slack: what is left of a slab begun), where memory that never came back
 * would need ROUNDS * n. */
static void comes_back_from(size_t size, uint32_t n, uint32_t slack, bool tiny, bool outside)
{
    struct fake f;
    fake_init(&f);
    struct casty_msg **seen = calloc((size_t)ROUNDS * n, sizeof *seen);
    cr_assert_not_null(seen);
    for (uint32_t round = 0; round < ROUNDS; round++) {
        struct casty_msg **batch = seen + (size_t)round * n;
        for (uint32_t i = 0; i < n; i++) {
            batch[i] = tiny ? casty__msg_alloc_tiny(&f.workers[0])
                            : casty__msg_alloc(f.sys, &f.workers[0], size);
            cr_assert_not_null(batch[i]);
            cr_assert_neq(batch[i]->owner, POOL_HEAP_OWNER, "a pool node for %zu bytes", size);
            cr_assert_eq((batch[i]->owner & POOL_OWNER_TINY) != 0, tiny);
            batch[i]->type = NULL;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (outside)
                casty__msg_release_outside(f.sys, batch[i]);
            else
                casty__msg_release(&f.workers[1], batch[i]);
        }
        casty__pool_flush(&f.workers[1]);
    }
    qsort(seen, (size_t)ROUNDS * n, sizeof *seen, cmp_ptr);
    uint32_t distinct = 0;
    for (size_t i = 0; i < (size_t)ROUNDS * n; i++)
        distinct += i == 0 || seen[i] != seen[i - 1];
    cr_assert_leq(distinct, n + slack, "%u nodes of %zu bytes for %u rounds of %u", distinct, size,
                  ROUNDS, n);
    free(seen);
    fake_destroy(&f);
}

static void comes_back(size_t size, uint32_t n, uint32_t slack, bool tiny)
{
    comes_back_from(size, n, slack, tiny, false);
}

/* Released by a thread outside the pool that knows the system (casty_ask's
 * held promise releasing the reply's node): every class comes back too. */
Test(pool_nodes, nodes_released_outside_the_pool_come_back)
{
    comes_back_from(8, 3000, 512, false, true);
    comes_back_from(MSG_INLINE_MAX, 3000, 256, false, true);
    comes_back_from(MSG_TINY_MAX, 5000, 1024, true, true);
}

Test(pool_nodes, small_nodes_released_elsewhere_come_back)
{
    /* 400 fit in one slab; 3000 span several. */
    comes_back(8, 400, 512, false);
    comes_back(MSG_SMALL_MAX, 3000, 512, false);
}

Test(pool_nodes, large_nodes_released_elsewhere_come_back)
{
    comes_back(MSG_SMALL_MAX + 1, 200, 256, false);
    comes_back(MSG_INLINE_MAX, 3000, 256, false);
}

Test(pool_nodes, tiny_nodes_released_elsewhere_come_back)
{
    /* 1,000 fit in one slab of 32-byte nodes; 5,000 span several. */
    comes_back(MSG_TINY_MAX, 1000, 1024, true);
    comes_back(MSG_TINY_MAX, 5000, 1024, true);
}

Test(pool_nodes, class_boundaries)
{
    struct fake f;
    fake_init(&f);
    struct {
        size_t size;
        bool large, heap;
    } cases[] = {{0, false, false},
                 {MSG_SMALL_MAX, false, false},
                 {MSG_SMALL_MAX + 1, true, false},
                 {MSG_INLINE_MAX, true, false},
                 {MSG_INLINE_MAX + 1, false, true}};
    struct casty_msg *t = casty__msg_alloc_tiny(&f.workers[1]);
    cr_assert_not_null(t);
    cr_assert_eq(t->owner, 1u | POOL_OWNER_TINY);
    cr_assert(t->flags & MSG_VALUE_INLINE);
    cr_assert_eq(msg_value(t), (void *)&t->data, "a tiny node's value is in its header");
    t->type = NULL;
    casty__msg_release(&f.workers[0], t);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct casty_msg *m = casty__msg_alloc(f.sys, &f.workers[1], cases[i].size);
        cr_assert_not_null(m);
        cr_assert_eq(m->data, m->payload);
        if (cases[i].heap) {
            cr_assert_eq(m->owner, POOL_HEAP_OWNER, "%zu bytes", cases[i].size);
        } else {
            cr_assert_eq(m->owner & ~POOL_OWNER_LARGE, 1u, "%zu bytes", cases[i].size);
            cr_assert_eq((m->owner & POOL_OWNER_LARGE) != 0, cases[i].large, "%zu bytes",
                         cases[i].size);
        }
        memset(m->payload, 0xa5, cases[i].size);
        m->type = NULL;
        casty__msg_release(&f.workers[1], m);
    }
    fake_destroy(&f);
}

/* ---- random interleaving ---------------------------------------------------- */

struct live {
    struct casty_msg *m;
    size_t size;
    uint64_t tag;
};

static void fill(struct live *l)
{
    unsigned char *v = msg_value(l->m);
    for (size_t i = 0; i < l->size; i++)
        v[i] = (unsigned char)(l->tag >> (8 * (i % 8)));
}

static void check(const struct live *l)
{
    const unsigned char *v = msg_value(l->m);
    for (size_t i = 0; i < l->size; i++)
        cr_assert_eq(v[i], (unsigned char)(l->tag >> (8 * (i % 8))),
                     "value of node %p (tag %llu) overwritten at byte %zu", (void *)l->m,
                     (unsigned long long)l->tag, i);
}

/* The live nodes, by address: an open-addressing set (never full: at most
 * MAX_LIVE of SET_SIZE). */
enum { MAX_LIVE = 4096, SET_SIZE = 16384, STEPS = 400000 };

static struct casty_msg *live_set[SET_SIZE];

static uint32_t set_index(const struct casty_msg *m)
{
    return (uint32_t)(((uintptr_t)m >> 5) * 0x9e3779b97f4a7c15ull >> 50) % SET_SIZE;
}

static bool set_insert(struct casty_msg *m)
{
    uint32_t i = set_index(m);
    for (; live_set[i]; i = (i + 1) % SET_SIZE)
        if (live_set[i] == m)
            return false;
    live_set[i] = m;
    return true;
}

static void set_remove(struct casty_msg *m)
{
    uint32_t i = set_index(m);
    while (live_set[i] != m)
        i = (i + 1) % SET_SIZE;
    live_set[i] = NULL;
    /* Re-insert the rest of the cluster, so that lookups still find them. */
    for (i = (i + 1) % SET_SIZE; live_set[i]; i = (i + 1) % SET_SIZE) {
        struct casty_msg *moved = live_set[i];
        live_set[i] = NULL;
        set_insert(moved);
    }
}

Test(pool_nodes, random_interleaving_never_hands_out_a_live_node)
{
    uint64_t seed = stress_seed("pool_nodes/random_interleaving");
    uint64_t x = seed | 1;
    struct fake f;
    fake_init(&f);
    struct live *live = calloc(MAX_LIVE, sizeof *live);
    cr_assert_not_null(live);
    uint32_t nlive = 0;
    for (uint64_t step = 0; step < STEPS; step++) {
        uint64_t r = stress_rand(&x);
        bool alloc = nlive == 0 || (nlive < MAX_LIVE && (r & 3) < 2);
        if (alloc) {
            struct worker *w = &f.workers[(r >> 8) & 1];
            size_t size = (r >> 16) % (MSG_INLINE_MAX + 8);
            /* Values of up to 8 bytes in tiny nodes half of the time. */
            bool tiny = size <= MSG_TINY_MAX && (r >> 30) & 1;
            struct casty_msg *m = tiny ? casty__msg_alloc_tiny(w) : casty__msg_alloc(f.sys, w, size);
            cr_assert_not_null(m);
            m->type = NULL;
            cr_assert(set_insert(m), "step %llu: a live node handed out again (seed %llu)",
                      (unsigned long long)step, (unsigned long long)seed);
            live[nlive] = (struct live){m, size, step ^ seed};
            fill(&live[nlive++]);
        } else {
            uint32_t i = (uint32_t)((r >> 8) % nlive);
            check(&live[i]);
            /* Released by either worker or, for a small node, by a thread
             * that is none (large worker nodes never are: such a thread
             * only releases the nodes it allocated, or all at shutdown). */
            uint32_t who = (uint32_t)((r >> 40) % 3);
            if (who == 2 && live[i].size > MSG_SMALL_MAX)
                who = 0;
            set_remove(live[i].m);
            casty__msg_release(who == 2 ? NULL : &f.workers[who], live[i].m);
            live[i] = live[--nlive];
        }
        if ((r >> 50) % 1000 == 0) /* a worker goes idle now and then */
            casty__pool_flush(&f.workers[(r >> 60) & 1]);
    }
    for (uint32_t i = 0; i < nlive; i++) {
        check(&live[i]);
        set_remove(live[i].m);
        casty__msg_release(&f.workers[0], live[i].m);
    }
    free(live);
    fake_destroy(&f);
}
