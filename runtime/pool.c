/* Message node allocation: per-worker pools of fixed-size nodes, per-thread
 * caches of small nodes for the threads that are not the system's workers,
 * heap nodes for everything else, and the workers' mailbox blocks (below,
 * "blocks").
 *
 * Worker pools. Two sizes of node: small (64 bytes, values of up to
 * MSG_SMALL_MAX bytes, most messages) and large (128 bytes, up to
 * MSG_INLINE_MAX). A worker first reuses the nodes it released itself
 * (a LIFO list per size: in a ping-pong the node just freed is still in
 * its cache). Beyond that, small nodes come from the worker's own cache of
 * bitmap slabs, as the external caches below work (nodes handed out in
 * address order, given back by other threads as bits, so neither the
 * allocating nor the releasing core reads or writes a node to move it: a
 * linked free list made the sender of a cross-core stream miss on every
 * node's link, 19% of fjthrput's time at 2 workers). Large nodes keep a
 * linked design: when the free list is empty the worker takes, in one
 * exchange, the whole stack of large nodes other workers have returned,
 * and only then carves a new slab; a worker releasing another's large node
 * collects it in a per-owner outbox and pushes the outbox onto the owner's
 * remote stack in one CAS when it holds POOL_BATCH nodes (or when it goes
 * idle). So the hot path has no malloc, no lock and no cross-thread free.
 *
 * External caches: the same for every other sending thread (the main
 * thread, the reactor, the workers of another system), for values of up to
 * EXT_VALUE_MAX bytes. A system has up to EXT_MAX caches, each held by at
 * most one thread at a time. A cache allocates 64-byte nodes from 32 KiB
 * slabs aligned to their size; a slab's header holds a bitmap of the nodes
 * given back to it, which releasing threads OR into and the holder takes
 * whole (one exchange per word) when it moves onto the slab. The holder
 * then hands out the slab's free nodes in address order, so messages sent
 * one after another lie side by side in memory, as with a bump allocator;
 * a consumer that drains one mailbox after another (the sender round-robined
 * over them) then finds the next mailbox's messages in the cache lines it
 * just read. Workers collect the bits of released nodes per slab in a small
 * table and OR them in when an entry holds POOL_BATCH nodes, when its slot
 * is wanted by another slab, or when the worker goes idle; any other thread
 * ORs a node's bit at once. The holder's path reads no node (unlike a free
 * list, whose next pointer is a miss on the line the consumer last wrote).
 *
 * Threads and caches. A thread finds the cache it holds in a system through
 * a small thread-local table keyed by the system's node id (unique over the
 * process's life, see system.c), claims one on its first send into a
 * system, and hands it back when it exits (a pthread key's destructor) or
 * when the table needs the entry for another system. Caches belong to the
 * system, not to threads: a thread that exits with nodes still in mailboxes
 * only gives its cache back, the nodes come home to it later, and the next
 * thread to claim it uses them. A table entry for a dead system is never
 * dereferenced (its node id matches no live system); when it is dropped its
 * cache is handed back only if the registry still holds that system.
 *
 * Lifetime: slabs of both kinds are freed when the system is destroyed,
 * after every mailbox was emptied; the caches hang off worker 0's pool so
 * that they live exactly as long as the worker pools.
 *
 * Heap nodes: values larger than a pool node (MSG_INLINE_MAX) or, from a
 * non-worker thread, than EXT_VALUE_MAX; non-worker senders when all caches
 * are held or memory is short. Malloc'd at the exact size, freed on
 * release. This file does not decide when a node is released (see
 * mailbox.h and actor.c). */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include "atomics.h"
#include "internal.h"
#include "reactor.h"

static_assert(sizeof(struct msg_block) == BLK_BYTES, "a block is BLK_BYTES");
static_assert(offsetof(struct msg_block, cursor) >= BLK_BYTES - CACHE_LINE,
              "a block's consumer fields share its last line");

/* ---- blocks ---------------------------------------------------------------------------
 * Each worker carves its blocks in order from a region of address space of
 * its own (BLK_REGION, mapped without reserve: untouched pages cost
 * nothing), and only it takes them: from its free list, then from the stack
 * other threads release blocks to (one CAS a block), then from the region.
 * A block in a worker's region is that worker's for good, which is what
 * lets it append to one without a hazard check (mailbox.h, "Blocks"). When
 * the region is used up, sends take nodes. */

struct msg_block *casty__blk_alloc(struct worker *w)
{
    struct msg_block *b = w->blk_free;
    if (b == NULL && load_relaxed(&w->blk_remote) != NULL)
        /* Full barrier (xchg): acquires the releases pushed. */
        b = exchange_seqcst(&w->blk_remote, (struct msg_block *)NULL);
    if (b != NULL) {
        w->blk_free = b->free_next;
        return b;
    }
    if (w->blk_base == NULL || w->blk_next == w->blk_end)
        return NULL;
    b = (struct msg_block *)(void *)w->blk_next;
    w->blk_next += BLK_BYTES;
    b->owner = w;
    return b;
}

void casty__blk_release(struct msg_block *b)
{
    struct worker *w = b->owner;
    struct msg_block *top = load_relaxed(&w->blk_remote);
    do {
        b->free_next = top;
        /* Full barrier: publishes the block (and the consumer's reads of
         * it) to the owner's exchange. */
    } while (!ck_pr_cas_ptr_value(&w->blk_remote, top, b, &top));
}

#define POOL_BATCH 64

/* Bitmap slabs: SLAB_BYTES (slab.h), aligned to their size, of 64-byte nodes (external
 * caches, small worker nodes) or 32-byte ones (tiny worker nodes); a
 * cache's `shift` says which. */
#define EXT_SHIFT 6                    /* 64-byte nodes */
#define TINY_SHIFT 5                   /* 32-byte nodes */
#define EXT_NODE_SIZE ((size_t)1 << EXT_SHIFT)
#define EXT_VALUE_MAX (EXT_NODE_SIZE - sizeof(struct casty_msg))
#define EXT_WORDS_MAX (SLAB_BYTES >> TINY_SHIFT >> 6) /* bitmap words, at most */
#define EXT_MAX 64              /* caches per system; more senders get heap nodes */
#define EXT_TLS_WAYS 4          /* systems a thread sends into without re-claiming */
#define EXT_PENDING_BITS 4
#define EXT_PENDING (1u << EXT_PENDING_BITS) /* a worker's table of released nodes, by slab */
#define EXT_SCAN 8              /* slabs looked at for free nodes before carving one */
#define EXT_SETTLE 64           /* free nodes that end the look at once */
#define EXT_PREFETCH 4          /* nodes ahead to prefetch when handing one out */
#define EXT_MIN 8               /* fewer free nodes than this: carve a new slab */

/* The head of a bitmap slab (its first slab_head_nodes(shift) nodes). */
struct ext_slab {
    /* atomic: nodes given back (bit i = node i), ORed by any thread,
     * exchanged to 0 by the holder */
    uint64_t returned[EXT_WORDS_MAX];
    /* holder only */
    alignas(CACHE_LINE) struct ext_slab *next; /* ring of the cache's slabs */
};
static_assert(sizeof(struct casty_msg) % 16 == 0 && EXT_NODE_SIZE % 16 == 0, "payload aligned");
static_assert(MSG_NODE_TINY == (1 << TINY_SHIFT) && MSG_NODE_TINY == sizeof(struct casty_msg) &&
                  MSG_TINY_MAX <= sizeof(void *),
              "a tiny node is the header, its value in place of the data pointer");

/* A slab's geometry for nodes of 1 << shift bytes. */
static inline uint32_t slab_nodes(uint32_t shift)
{
    return (uint32_t)(SLAB_BYTES >> shift);
}

static inline uint32_t slab_words(uint32_t shift)
{
    return slab_nodes(shift) / 64;
}

static inline uint32_t slab_head_nodes(uint32_t shift)
{
    return (uint32_t)((sizeof(struct ext_slab) + ((size_t)1 << shift) - 1) >> shift);
}

/* The node size of a bitmap-slab node (external, small or tiny). */
static inline uint32_t node_shift(const struct casty_msg *m)
{
    return m->owner != POOL_EXT_OWNER && (m->owner & POOL_OWNER_TINY) ? TINY_SHIFT : EXT_SHIFT;
}
static_assert(EXT_VALUE_MAX <= MSG_SMALL_MAX, "an external node is a small pool node");
static_assert(SLAB_BYTES % MSG_NODE_SIZE == 0 && SLAB_BYTES % MSG_NODE_SMALL == 0,
              "slabs hold whole nodes");

/* One external cache. Everything but `claimed` belongs to the thread holding
 * it; the holder changes only through `claimed` (release store when handed
 * back, CAS when claimed), which orders the state between holders. */
struct pool_ext {
    uint64_t avail[EXT_WORDS_MAX]; /* free nodes of cur taken by the holder */
    struct ext_slab *cur;      /* the slab allocated from; NULL before the first */
    struct slab_arena arena;   /* where its slabs come from (nslabs: how many) */
    uint32_t word;             /* avail[0..word) are empty */
    uint32_t claimed; /* atomic: 1 while a thread holds it */
    uint16_t owner;   /* what its nodes' owner says: POOL_EXT_OWNER, or a worker's index */
    uint8_t shift;    /* its nodes are 1 << shift bytes */
};

/* A system's external caches. Entries are only ever added, under lock. */
struct pool_ext_set {
    pthread_mutex_t lock; /* claiming and adding */
    uint32_t n;
    struct pool_ext *caches[EXT_MAX];
};

/* A worker's bits of released external nodes of one slab, not yet ORed in. */
struct pool_ext_pending {
    struct ext_slab *slab;
    uint32_t count;
    uint64_t bits[EXT_WORDS_MAX];
};

/* A thread's table: the cache it holds in the system with this node id (or
 * NULL: none was free, heap nodes). node 0 = empty entry. */
struct ext_binding {
    uint64_t node;
    struct pool_ext *cache;
};

static _Thread_local struct ext_binding ext_tls[EXT_TLS_WAYS];
static _Thread_local uint32_t ext_tls_victim;
static _Thread_local bool ext_tls_keyed;

/* Set once (pthread_once): the key whose destructor hands a thread's caches
 * back when it exits. */
static pthread_once_t ext_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t ext_key;
static bool ext_key_ok;

static struct casty_msg *heap_node(size_t size)
{
    struct casty_msg *m = malloc(sizeof(struct casty_msg) + (size ? size : 1));
    if (m == NULL)
        return NULL;
    m->owner = POOL_HEAP_OWNER;
    return m;
}

/* Carves a new slab of large nodes into w's free list for them. */
static int pool_grow(struct worker *w)
{
    struct pool *p = &w->pool;
    unsigned char *slab = casty__slab_alloc(&p->arena);
    if (slab == NULL)
        return CASTY_ENOMEM;
    /* Linked in address order, so a burst of sends fills the slab front to
     * back. */
    struct casty_msg *first = NULL, **link = &first;
    for (size_t off = 0; off + MSG_NODE_SIZE <= SLAB_BYTES; off += MSG_NODE_SIZE) {
        struct casty_msg *m = (struct casty_msg *)(void *)(slab + off);
        m->owner = (uint16_t)(w->index | POOL_OWNER_LARGE);
        *link = m;
        link = &m->next;
    }
    *link = p->free[1];
    p->free[1] = first;
    return 0;
}

/* ---- external slabs ---------------------------------------------------------------- */

static struct ext_slab *ext_slab_of(const struct casty_msg *m)
{
    return (struct ext_slab *)((uintptr_t)m & ~(uintptr_t)(SLAB_BYTES - 1));
}

static uint32_t ext_index_of(const struct casty_msg *m)
{
    return (uint32_t)(((uintptr_t)m & (SLAB_BYTES - 1)) >> node_shift(m));
}

/* Gives one node back to its slab. Any thread. (Out of line, as are the
 * other external paths called from casty__msg_alloc and _release, to keep
 * the workers' paths through those two as short as they were.) */
__attribute__((noinline)) static void ext_give_back(struct casty_msg *m)
{
    uint32_t i = ext_index_of(m);
    /* Full barrier (lock or): publishes the node's release to the holder's
     * exchange in ext_take_slab. */
    ck_pr_or_64(&ext_slab_of(m)->returned[i / 64], 1ull << (i % 64));
}

/* ORs a worker's pending bits into their slab. Owner worker only. */
static void ext_pending_flush(struct pool_ext_pending *e)
{
    if (e->count == 0)
        return;
    for (uint32_t w = 0; w < EXT_WORDS_MAX; w++)
        if (e->bits[w]) {
            /* Full barrier (lock or): as in ext_give_back, for the batch. */
            ck_pr_or_64(&e->slab->returned[w], e->bits[w]);
            e->bits[w] = 0;
        }
    e->count = 0;
}

/* The pending-table entry for slab s: a multiplicative hash of its number.
 * (Its number modulo the table's size used half the table when slabs came
 * from aligned_alloc, which placed them 64 KiB apart: every slab number was
 * odd, and a consumer releasing nodes of a few slabs at once kept evicting
 * its own entries, each eviction a locked OR per bitmap word for a handful of
 * bits: 357 k evictions against 6 k full batches in `fjthrput 20000 100
 * --workers 4`. The hash fixed that skew, not the evictions: counted over
 * more runs with it they vary fivefold, 85-600 k, because a consumer's
 * releases spread over more slabs than a small table holds;
 * docs/performance.md, "One actor feeding many, in batches".) */
static struct pool_ext_pending *ext_pending_entry(struct pool *p, const struct ext_slab *s)
{
    uint64_t h = (uint64_t)((uintptr_t)s / SLAB_BYTES) * 0x9e3779b97f4a7c15ull;
    return &p->ext_pending[h >> (64 - EXT_PENDING_BITS)];
}

__attribute__((noinline)) static void ext_pending_add(struct pool *p, struct casty_msg *m)
{
    struct ext_slab *s = ext_slab_of(m);
    struct pool_ext_pending *e = ext_pending_entry(p, s);
    if (e->slab != s) {
        ext_pending_flush(e);
        e->slab = s;
    }
    uint32_t i = ext_index_of(m);
    e->bits[i / 64] |= 1ull << (i % 64);
    if (++e->count >= POOL_BATCH)
        ext_pending_flush(e);
}

static uint32_t ext_returned_count(struct ext_slab *s, uint32_t shift)
{
    uint32_t n = 0;
    for (uint32_t w = 0; w < slab_words(shift); w++)
        n += (uint32_t)__builtin_popcountll(load_relaxed(&s->returned[w]));
    return n;
}

/* Makes s the cache's current slab, taking the nodes given back to it. */
static void ext_take_slab(struct pool_ext *c, struct ext_slab *s)
{
    for (uint32_t w = 0; w < slab_words(c->shift); w++)
        /* Full barrier (xchg): acquires the releases ORed in. */
        c->avail[w] = load_relaxed(&s->returned[w]) ? exchange_seqcst(&s->returned[w], 0) : 0;
    c->cur = s;
    c->word = 0;
}

static int ext_carve(struct pool_ext *c)
{
    struct ext_slab *s = casty__slab_alloc(&c->arena);
    if (s == NULL)
        return CASTY_ENOMEM;
    unsigned char *base = (unsigned char *)s;
    uint32_t head = slab_head_nodes(c->shift);
    for (uint32_t i = head; i < slab_nodes(c->shift); i++)
        ((struct casty_msg *)(void *)(base + ((size_t)i << c->shift)))->owner = c->owner;
    for (uint32_t w = 0; w < slab_words(c->shift); w++)
        c->avail[w] = ~0ull;
    c->avail[0] &= ~((1ull << head) - 1);
    memset(s->returned, 0, sizeof s->returned);
    if (c->cur) {
        s->next = c->cur->next;
        c->cur->next = s;
    } else {
        s->next = s;
    }
    c->cur = s;
    c->word = 0;
    return 0;
}

/* Moves the cache onto the slab with the most nodes given back among the
 * next few in its ring (the first with EXT_SETTLE will do), or onto a new
 * slab when none has EXT_MIN. Holder only; avail is empty. */
static int ext_refill(struct pool_ext *c)
{
    struct ext_slab *s = c->cur, *best = NULL;
    uint32_t best_n = 0;
    for (uint32_t i = 0; s && i < EXT_SCAN && i < c->arena.nslabs; i++) {
        s = s->next; /* the last one looked at may be cur itself */
        uint32_t n = ext_returned_count(s, c->shift);
        if (n > best_n) {
            best = s;
            best_n = n;
            if (n >= EXT_SETTLE)
                break;
        }
    }
    if (best_n < EXT_MIN) {
        if (ext_carve(c) == 0)
            return 0;
        if (best_n == 0)
            return CASTY_ENOMEM;
    }
    ext_take_slab(c, best);
    return 0;
}

/* A free node of the cache, or NULL when out of memory. Holder only. */
static struct casty_msg *ext_take(struct pool_ext *c)
{
    for (;;) {
        for (; c->word < slab_words(c->shift); c->word++) {
            uint64_t b = c->avail[c->word];
            if (b) {
                c->avail[c->word] = b & (b - 1);
                uint32_t i = c->word * 64 + (uint32_t)__builtin_ctzll(b);
                unsigned char *node = (unsigned char *)c->cur + ((size_t)i << c->shift);
                /* Nodes go out in address order, and a node's line was last
                 * read by the consumer's core (or never touched): ask for a
                 * few nodes ahead now, for writing, so that the send's
                 * exchange does not wait for the line. (A prefetch past the
                 * slab's end is harmless.) */
                prefetch_for_write(node + ((size_t)EXT_PREFETCH << c->shift));
                return (struct casty_msg *)(void *)node;
            }
        }
        if (ext_refill(c) != 0)
            return NULL;
    }
}

/* A worker's refill of its free list (class 0 or 2) from its cache: every
 * free node of the cache's current bitmap word at once (up to 64, in
 * address order), linked through `next`; NULL when out of memory. One
 * word's worth of sends then take their nodes inline (casty_tell) instead
 * of a bitmap step each. */
static struct casty_msg *ext_take_word(struct pool_ext *c)
{
    for (;;) {
        for (; c->word < slab_words(c->shift); c->word++) {
            uint64_t b = c->avail[c->word];
            if (b == 0)
                continue;
            c->avail[c->word] = 0;
            unsigned char *base = (unsigned char *)c->cur + ((size_t)c->word * 64 << c->shift);
            struct casty_msg *head = NULL, **link = &head;
            do {
                struct casty_msg *m =
                    (struct casty_msg *)(void *)(base + ((size_t)__builtin_ctzll(b) << c->shift));
                *link = m;
                link = &m->next;
                b &= b - 1;
            } while (b);
            *link = NULL;
            return head;
        }
        if (ext_refill(c) != 0)
            return NULL;
    }
}

/* ---- which cache a thread holds -------------------------------------------------- */

/* Claims a free cache of `sys`, adding one if none is free and there is
 * room. NULL when none can be had. Any non-worker thread; rare (a thread's
 * first send into a system). */
static struct pool_ext *ext_claim(struct casty_system *sys)
{
    struct pool_ext_set *set = sys->workers[0].pool.ext;
    if (set == NULL)
        return NULL;
    struct pool_ext *c = NULL;
    pthread_mutex_lock(&set->lock);
    for (uint32_t i = 0; i < set->n && c == NULL; i++)
        /* Full barrier: acquires the previous holder's state, published by
         * its release store in ext_unbind. */
        if (ck_pr_cas_32(&set->caches[i]->claimed, 0, 1))
            c = set->caches[i];
    if (c == NULL && set->n < EXT_MAX) {
        c = calloc(1, sizeof *c);
        if (c) {
            c->shift = EXT_SHIFT;
            c->word = slab_words(EXT_SHIFT); /* nothing taken yet: the first take carves */
            c->claimed = 1;
            c->owner = POOL_EXT_OWNER;
            set->caches[set->n++] = c;
        }
    }
    pthread_mutex_unlock(&set->lock);
    return c;
}

/* Drops a table entry, handing its cache back if its system still lives
 * (acquiring it in the registry keeps it alive meanwhile; a dead system's
 * caches were freed with it). May nest in the caller's acquire of another
 * system (casty_tell); acquires nest. */
static void ext_unbind(struct ext_binding *b)
{
    if (b->cache) {
        struct casty_system *sys = casty__system_acquire(b->node, NULL);
        if (sys) {
            /* Release: publishes our state of the cache to the next
             * holder's CAS in ext_claim. */
            store_release(&b->cache->claimed, 0u);
            casty__system_release(sys);
        }
    }
    b->node = 0;
    b->cache = NULL;
}

static void ext_thread_exit(void *arg)
{
    struct ext_binding *table = arg;
    for (uint32_t i = 0; i < EXT_TLS_WAYS; i++)
        ext_unbind(&table[i]);
    ext_tls_keyed = false; /* a send from a later destructor registers again */
}

static void ext_key_create(void)
{
    ext_key_ok = pthread_key_create(&ext_key, ext_thread_exit) == 0;
}

/* The calling thread's cache in `sys`, claimed now (the slow path of
 * ext_cache). NULL: heap nodes for this thread in this system. */
static struct pool_ext *ext_bind(struct casty_system *sys)
{
    if (!ext_tls_keyed) {
        pthread_once(&ext_key_once, ext_key_create);
        /* Without the key the cache stays held until the system goes. */
        if (ext_key_ok)
            pthread_setspecific(ext_key, ext_tls);
        ext_tls_keyed = true;
    }
    struct ext_binding *b = NULL;
    for (uint32_t i = 0; i < EXT_TLS_WAYS && b == NULL; i++)
        if (ext_tls[i].node == 0)
            b = &ext_tls[i];
    if (b == NULL) {
        b = &ext_tls[ext_tls_victim++ % EXT_TLS_WAYS];
        ext_unbind(b);
    }
    b->cache = ext_claim(sys);
    b->node = sys->node;
    return b->cache;
}

static inline struct pool_ext *ext_cache(struct casty_system *sys)
{
    uint64_t node = sys->node;
    for (uint32_t i = 0; i < EXT_TLS_WAYS; i++)
        if (ext_tls[i].node == node)
            return ext_tls[i].cache;
    return ext_bind(sys);
}

__attribute__((noinline)) static struct casty_msg *ext_alloc(struct casty_system *sys,
                                                              size_t size)
{
    struct pool_ext *c = ext_cache(sys);
    struct casty_msg *m = c ? ext_take(c) : NULL;
    return m ? m : heap_node(size);
}

/* Frees a cache and its slabs. */
static void ext_cache_destroy(struct pool_ext *c)
{
    casty__slab_arena_free(&c->arena);
    free(c);
}

static void ext_set_destroy(struct pool_ext_set *set)
{
    for (uint32_t i = 0; i < set->n; i++)
        ext_cache_destroy(set->caches[i]);
    pthread_mutex_destroy(&set->lock);
    free(set);
}

/* ---- allocation and release ------------------------------------------------------ */

/* casty__msg_alloc (internal.h) past its inline case: a node able to hold
 * `size` bytes, its data pointing at payload[], or NULL when out of
 * memory. Without a worker (w NULL): the thread's cache in `sys` (a heap
 * node without a system: the tests of mailbox.h). */
struct casty_msg *casty__msg_alloc_slow(struct casty_system *sys, struct worker *w, size_t size)
{
    struct casty_msg *m;
    if (w == NULL) {
        m = (sys && size <= EXT_VALUE_MAX) ? ext_alloc(sys, size) : heap_node(size);
    } else if (size > MSG_INLINE_MAX) {
        m = heap_node(size);
    } else if (size <= MSG_SMALL_MAX) {
        struct pool *p = &w->pool;
        m = p->free[0];
        if (m == NULL)
            m = ext_take_word(p->own);
        if (m != NULL)
            p->free[0] = m->next;
        else
            m = heap_node(size);
    } else {
        struct pool *p = &w->pool;
        if (p->free[1] == NULL) {
            /* Full barrier: acquires the nodes other workers pushed. */
            p->free[1] = exchange_seqcst(&p->remote, NULL);
            if (p->free[1] == NULL && pool_grow(w) != 0)
                return heap_node(size);
        }
        m = p->free[1];
        p->free[1] = m->next;
        /* The next free node most likely came back from another core:
         * start fetching it (its link is read by the next allocation). */
        if (p->free[1])
            prefetch_for_write(p->free[1]);
    }
    if (m == NULL)
        return NULL;
    m->data = m->payload;
    m->flags = 0;
    m->kind = MSG_USER;
    return m;
}

/* casty__msg_alloc_tiny (internal.h) when w's free list is empty. */
struct casty_msg *casty__msg_alloc_tiny_slow(struct worker *w)
{
    struct pool *p = &w->pool;
    struct casty_msg *m = p->free[2];
    if (m == NULL && (m = ext_take_word(p->own_tiny)) == NULL)
        return NULL;
    p->free[2] = m->next;
    m->flags = MSG_VALUE_INLINE;
    m->kind = MSG_USER;
    return m;
}

/* Runs the value's drop (unless its ownership moved) and frees a heap data
 * block. Leaves the node itself alone. */
void casty__msg_drop_value(struct casty_msg *m)
{
    if (m->kind == MSG_USER) {
        if (!(m->flags & MSG_NO_DROP) && m->type && m->type->drop && msg_value(m))
            m->type->drop(msg_value(m));
        if (m->flags & MSG_DATA_HEAP)
            free(m->data);
    }
    m->flags = MSG_NO_DROP;
    m->data = NULL;
}

/* Pushes w's outbox of `owner`'s large nodes onto that owner's remote
 * stack. */
static void outbox_flush(struct worker *w, uint32_t owner)
{
    struct pool_outbox *o = &w->pool.outbox[owner];
    if (o->count == 0)
        return;
    struct pool *dst = &w->sys->workers[owner].pool;
    struct casty_msg *top = load_relaxed(&dst->remote);
    do {
        store_relaxed(&o->tail->next, top);
        /* Full barrier: publishes the batch to the owner's exchange in
         * casty__msg_alloc. */
    } while (!ck_pr_cas_ptr_value(&dst->remote, top, o->head, &top));
    o->head = o->tail = NULL;
    o->count = 0;
}

/* Whether releasing m has a value to drop or a heap block to free (a read
 * only: a node released by another core is then not written to). */
static inline bool has_value_to_drop(const struct casty_msg *m)
{
    if (m->kind != MSG_USER)
        return false;
    if (m->flags & MSG_DATA_HEAP)
        return true;
    return !(m->flags & MSG_NO_DROP) && m->type && m->type->drop && msg_value(m);
}

/* Releases a node after its value is done with: drops the value, then
 * returns the node to its pool. `w` is the releasing worker, NULL for any
 * other thread (a dead letter at send time; system destruction, when worker
 * nodes are simply abandoned to their slabs). */
void casty__msg_release(struct worker *w, struct casty_msg *m)
{
    if (m->owner == POOL_BLOCK_OWNER) {
        casty__blk_release((struct msg_block *)(void *)m);
        return;
    }
    if (has_value_to_drop(m))
        casty__msg_drop_value(m);
    uint32_t owner = m->owner;
    if (owner == POOL_HEAP_OWNER) {
        free(m);
        return;
    }
    bool large = owner != POOL_EXT_OWNER && (owner & POOL_OWNER_LARGE);
    if (w == NULL) {
        if (!large)
            ext_give_back(m);
        return;
    }
    if (!large) {
        if ((owner & ~POOL_OWNER_TINY) == w->index) {
            uint32_t cls = owner & POOL_OWNER_TINY ? 2 : 0;
            m->next = w->pool.free[cls];
            w->pool.free[cls] = m;
        } else {
            /* Another worker's small or tiny node, or an external one: a
             * bit for its slab, without writing to the node. */
            ext_pending_add(&w->pool, m);
        }
        return;
    }
    owner &= ~POOL_OWNER_LARGE;
    if (owner == w->index) {
        m->next = w->pool.free[1];
        w->pool.free[1] = m;
        return;
    }
    struct pool_outbox *o = &w->pool.outbox[owner];
    m->next = NULL;
    if (o->tail)
        o->tail->next = m;
    else
        o->head = m;
    o->tail = m;
    if (++o->count >= POOL_BATCH)
        outbox_flush(w, owner);
}

/* casty__msg_release for a thread outside the pool that knows m's system
 * (one holding an actor's schedule: casty_ask's held promise): a worker's
 * large node goes back onto its owner's remote stack (one node, one CAS),
 * where casty__msg_release without a worker would abandon it to its slab
 * until the system ends; anything else as casty__msg_release does. */
void casty__msg_release_outside(struct casty_system *sys, struct casty_msg *m)
{
    uint32_t owner = m->owner;
    if (owner == POOL_HEAP_OWNER || owner == POOL_EXT_OWNER || owner == POOL_BLOCK_OWNER ||
        !(owner & POOL_OWNER_LARGE)) {
        casty__msg_release(NULL, m);
        return;
    }
    if (has_value_to_drop(m))
        casty__msg_drop_value(m);
    struct pool *dst = &sys->workers[owner & ~POOL_OWNER_LARGE].pool;
    struct casty_msg *top = load_relaxed(&dst->remote);
    do {
        store_relaxed(&m->next, top);
        /* Full barrier: publishes the node to the owner's exchange in
         * casty__msg_alloc, as outbox_flush does for a batch. */
    } while (!ck_pr_cas_ptr_value(&dst->remote, top, m, &top));
}

/* slab.h's prefault, for a worker's own arenas: the reactor has the chunk
 * populated (CASTY_IO_MADVISE, MADV_POPULATE_WRITE), by the kernel's
 * io_uring workers on whatever core has time; nobody waits for it. */
static void arena_prefault(void *ctx, void *addr, size_t bytes)
{
    struct casty_system *sys = ctx;
    if (sys->reactor == NULL || bytes > UINT32_MAX)
        return;
    struct casty__io_req q = {.op = CASTY_IO_MADVISE,
                              .fd = -1,
                              .buf = addr,
                              .len = (uint32_t)bytes,
                              .offset = MADV_POPULATE_WRITE,
                              .reply_to = CASTY_REF_NONE};
    (void)casty__reactor_submit(sys->reactor, &q);
}

/* Sets up w's pool (w->index and w->sys already set; worker 0 first, whose
 * pool also creates the system's set of external caches). */
int casty__pool_init(struct worker *w, uint32_t nworkers)
{
    struct pool *p = &w->pool;
    memset(p, 0, sizeof *p);
    p->outbox = calloc(nworkers, sizeof(struct pool_outbox));
    p->ext_pending = calloc(EXT_PENDING, sizeof(struct pool_ext_pending));
    p->own = calloc(1, sizeof *p->own);
    p->own_tiny = calloc(1, sizeof *p->own_tiny);
    if (p->outbox == NULL || p->ext_pending == NULL || p->own == NULL || p->own_tiny == NULL)
        return CASTY_ENOMEM;
    p->own->shift = EXT_SHIFT;
    p->own->word = slab_words(EXT_SHIFT); /* nothing taken yet: the first take carves */
    p->own->owner = (uint16_t)w->index;
    p->own_tiny->shift = TINY_SHIFT;
    p->own_tiny->word = slab_words(TINY_SHIFT);
    p->own_tiny->owner = (uint16_t)(w->index | POOL_OWNER_TINY);
    p->arena.prefault = p->own->arena.prefault = p->own_tiny->arena.prefault = arena_prefault;
    p->arena.prefault_ctx = p->own->arena.prefault_ctx = p->own_tiny->arena.prefault_ctx = w->sys;
    void *region = mmap(NULL, BLK_REGION, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region != MAP_FAILED) {
        w->blk_base = w->blk_next = region;
        w->blk_end = w->blk_base + BLK_REGION;
    }
    if (w->index != 0) {
        p->ext = w->sys->workers[0].pool.ext;
        return 0;
    }
    p->ext = calloc(1, sizeof *p->ext);
    if (p->ext == NULL)
        return CASTY_ENOMEM;
    pthread_mutex_init(&p->ext->lock, NULL);
    return 0;
}

/* Returns every outbox to its owner and every external node released to its
 * slab (called when a worker goes idle, and when it exits). */
void casty__pool_flush(struct worker *w)
{
    for (uint32_t i = 0; i < w->sys->nworkers; i++)
        if (i != w->index)
            outbox_flush(w, i);
    for (uint32_t i = 0; i < EXT_PENDING; i++)
        ext_pending_flush(&w->pool.ext_pending[i]);
}

/* Frees w's slabs; worker 0's also frees the external caches. Single-
 * threaded, after every mailbox was emptied (casty__cells_destroy). */
void casty__pool_destroy(struct worker *w)
{
    struct pool *p = &w->pool;
    if (w->blk_base)
        munmap(w->blk_base, BLK_REGION);
    w->blk_base = w->blk_next = w->blk_end = NULL;
    casty__slab_arena_free(&p->arena);
    free(p->outbox);
    free(p->ext_pending);
    if (p->own)
        ext_cache_destroy(p->own);
    if (p->own_tiny)
        ext_cache_destroy(p->own_tiny);
    if (w->index == 0 && p->ext)
        ext_set_destroy(p->ext);
    memset(p, 0, sizeof *p);
}
