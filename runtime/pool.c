/* Message node allocation: per-worker pools of fixed-size nodes, and heap
 * nodes for everything else.
 *
 * A worker allocates from its own free list; when that is empty it takes, in
 * one exchange, the whole stack of nodes other workers have returned, and
 * only then carves a new slab. A worker that releases a node owned by
 * another worker does not touch that worker's free list: it collects such
 * nodes in a per-owner outbox and pushes the outbox onto the owner's remote
 * stack in one CAS when it holds POOL_BATCH nodes (or when it goes idle).
 * So the hot path has no malloc, no lock and no cross-thread free.
 *
 * Non-worker threads (and workers sending into another system) get heap
 * nodes, malloc'd at the exact size and freed on release. Values larger
 * than MSG_INLINE_MAX also get heap nodes. Slabs are freed when the system
 * is destroyed. This file does not decide when a node is released (see
 * mailbox.h and actor.c). */
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "internal.h"

#define POOL_SLAB_NODES 256
#define POOL_BATCH 64

static struct casty_msg *heap_node(size_t size)
{
    struct casty_msg *m = malloc(sizeof(struct casty_msg) + (size ? size : 1));
    if (m == NULL)
        return NULL;
    m->owner = POOL_HEAP_OWNER;
    return m;
}

static int pool_grow(struct worker *w)
{
    struct pool *p = &w->pool;
    if (p->nslabs == p->slabs_cap) {
        uint32_t cap = p->slabs_cap ? p->slabs_cap * 2 : 16;
        void **slabs = realloc(p->slabs, cap * sizeof(void *));
        if (slabs == NULL)
            return CASTY_ENOMEM;
        p->slabs = slabs;
        p->slabs_cap = cap;
    }
    unsigned char *slab = aligned_alloc(CACHE_LINE, (size_t)POOL_SLAB_NODES * MSG_NODE_SIZE);
    if (slab == NULL)
        return CASTY_ENOMEM;
    p->slabs[p->nslabs++] = slab;
    for (uint32_t i = 0; i < POOL_SLAB_NODES; i++) {
        struct casty_msg *m = (struct casty_msg *)(void *)(slab + (size_t)i * MSG_NODE_SIZE);
        m->owner = (uint16_t)w->index;
        m->next = p->free;
        p->free = m;
    }
    p->nfree += POOL_SLAB_NODES;
    return 0;
}

/* Returns a node able to hold `size` bytes, its data pointing at payload[],
 * or NULL when out of memory. `w` is the calling thread's worker if it
 * belongs to `sys`, else NULL. */
struct casty_msg *casty__msg_alloc(struct casty_system *sys, struct worker *w, size_t size)
{
    (void)sys;
    struct casty_msg *m;
    if (w == NULL || size > MSG_INLINE_MAX) {
        m = heap_node(size);
    } else {
        struct pool *p = &w->pool;
        if (p->free == NULL) {
            /* Full barrier: acquires the nodes other workers pushed. */
            p->free = ck_pr_fas_ptr(&p->remote, NULL);
            if (p->free == NULL && pool_grow(w) != 0)
                return heap_node(size);
        }
        m = p->free;
        p->free = m->next;
    }
    if (m == NULL)
        return NULL;
    m->data = m->payload;
    m->flags = 0;
    m->kind = MSG_USER;
    return m;
}

/* Runs the value's drop (unless its ownership moved) and frees a heap data
 * block. Leaves the node itself alone. */
void casty__msg_drop_value(struct casty_msg *m)
{
    if (m->kind == MSG_USER) {
        if (!(m->flags & MSG_NO_DROP) && m->type && m->type->drop && m->data)
            m->type->drop(m->data);
        if (m->flags & MSG_DATA_HEAP)
            free(m->data);
    }
    m->flags = MSG_NO_DROP;
    m->data = NULL;
}

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

/* Releases a node after its value is done with: drops the value, then
 * returns the node to its pool. `w` is the releasing worker (NULL during
 * system destruction, when pool nodes are simply abandoned to their slabs). */
void casty__msg_release(struct worker *w, struct casty_msg *m)
{
    casty__msg_drop_value(m);
    if (m->owner == POOL_HEAP_OWNER) {
        free(m);
        return;
    }
    if (w == NULL)
        return;
    if (m->owner == w->index) {
        m->next = w->pool.free;
        w->pool.free = m;
        return;
    }
    struct pool_outbox *o = &w->pool.outbox[m->owner];
    m->next = NULL;
    if (o->tail)
        o->tail->next = m;
    else
        o->head = m;
    o->tail = m;
    if (++o->count >= POOL_BATCH)
        outbox_flush(w, m->owner);
}

int casty__pool_init(struct worker *w, uint32_t nworkers)
{
    memset(&w->pool, 0, sizeof w->pool);
    w->pool.outbox = calloc(nworkers, sizeof(struct pool_outbox));
    return w->pool.outbox ? 0 : CASTY_ENOMEM;
}

/* Returns every outbox to its owner (called when a worker goes idle). */
void casty__pool_flush(struct worker *w)
{
    for (uint32_t i = 0; i < w->sys->nworkers; i++)
        if (i != w->index)
            outbox_flush(w, i);
}

void casty__pool_destroy(struct worker *w)
{
    struct pool *p = &w->pool;
    for (uint32_t i = 0; i < p->nslabs; i++)
        free(p->slabs[i]);
    free(p->slabs);
    free(p->outbox);
    memset(p, 0, sizeof *p);
}
