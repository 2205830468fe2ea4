/* The slot table: where actor cells live and how a ref finds its cell.
 *
 * Cells are allocated in chunks of CELL_CHUNK through a fixed directory of
 * chunk pointers, and are never freed before the system is destroyed
 * (type-stable memory): looking up any slot number (casty__cell_lookup,
 * internal.h), even a stale or forged one, is a safe array access that
 * either finds a cell or NULL. Whether a message still reaches the actor is
 * decided by its generation (actor.c).
 *
 * Free slots are slot numbers on a stack of arrays (one array of CELL_CHUNK
 * numbers per chunk of cells, so it never runs out of room) under a mutex,
 * and each worker keeps up to SLOT_CACHE of its own in front of it (struct
 * worker's slots), taken and given back half a cache at a time: one lock
 * per 32 spawns or stops on a worker. Nothing here reads or writes a free
 * cell: a cell is usually freed on the core that ran its actor and reused
 * on the spawner's, and a stack linked through the cells (this file's
 * first design) made the spawner's core read each cell's link, a cache
 * miss after a cache miss (8% of fjcreate's samples at 2 workers) inside
 * a CAS window that any other push or pop made it retry. A thread outside
 * the pool keeps the last slot it freed for its own next spawn (spare
 * below). Slot 0 is never
 * used, so a zero ref is never valid. This file does not start or stop
 * actors. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "internal.h"
#include "mailbox.h"

#define SLOT_NONE 0u

/* The free stack's entry i (free_lock held): block i / CELL_CHUNK exists,
 * since there are fewer free slots than cells. */
static uint32_t *free_entry(struct casty_system *sys, uint32_t i)
{
    return &sys->free_slots[i >> CELL_CHUNK_BITS][i & (CELL_CHUNK - 1)];
}

/* Adds a chunk of cells and pushes its slots (free_lock held). */
static int grow_locked(struct casty_system *sys)
{
    uint32_t chunk = sys->nchunks;
    if (chunk >= CELL_DIR_SIZE)
        return CASTY_ENOMEM;
    struct cell *base = aligned_alloc(CACHE_LINE, CELL_CHUNK * sizeof(struct cell));
    uint32_t *block = malloc(CELL_CHUNK * sizeof *block);
    if (base == NULL || block == NULL) {
        free(base);
        free(block);
        return CASTY_ENOMEM;
    }
    memset(base, 0, CELL_CHUNK * sizeof(struct cell));
    for (uint32_t i = 0; i < CELL_CHUNK; i++) {
        struct cell *c = &base[i];
        c->sys = sys;
        c->slot = (chunk << CELL_CHUNK_BITS) | i;
        mbox_init(c);
    }
    sys->free_slots[chunk] = block;
    /* Release: the initialised chunk becomes visible to casty__cell_lookup. */
    store_release(&sys->dir[chunk], base);
    store_release(&sys->nchunks, chunk + 1);
    /* Highest first, so that the lowest slots are taken first. */
    for (uint32_t i = CELL_CHUNK; i-- > 0;) {
        if (base[i].slot != SLOT_NONE)
            *free_entry(sys, sys->nfree++) = base[i].slot;
    }
    return 0;
}

/* Pops up to max free slots into out (most recently freed first), growing
 * the table when none is left. Returns how many (at least one), or a
 * negative code. */
static int free_pop_many(struct casty_system *sys, uint32_t *out, uint32_t max)
{
    int rc = 0;
    pthread_mutex_lock(&sys->free_lock);
    if (sys->nfree == 0)
        rc = grow_locked(sys);
    uint32_t n = rc == 0 ? (max < sys->nfree ? max : sys->nfree) : 0;
    /* The top n entries, in runs within one array (the stack's order is
     * of no consequence: a cache takes its last entry first). */
    for (uint32_t done = 0; done < n;) {
        uint32_t first = sys->nfree - (n - done), off = first & (CELL_CHUNK - 1);
        uint32_t run = CELL_CHUNK - off < n - done ? CELL_CHUNK - off : n - done;
        memcpy(out + done, free_entry(sys, first), run * sizeof *out);
        done += run;
    }
    sys->nfree -= n;
    pthread_mutex_unlock(&sys->free_lock);
    return rc ? rc : (int)n;
}

static void free_push_many(struct casty_system *sys, const uint32_t *slots, uint32_t n)
{
    pthread_mutex_lock(&sys->free_lock);
    for (uint32_t done = 0; done < n;) {
        uint32_t off = sys->nfree & (CELL_CHUNK - 1);
        uint32_t run = CELL_CHUNK - off < n - done ? CELL_CHUNK - off : n - done;
        memcpy(free_entry(sys, sys->nfree), slots + done, run * sizeof *slots);
        sys->nfree += run;
        done += run;
    }
    pthread_mutex_unlock(&sys->free_lock);
}

/* The cell of a slot from the free stack (a valid one: its chunk was
 * published before the slot was pushed), without casty__cell_lookup's
 * checks for forged refs. */
static inline struct cell *free_cell(struct casty_system *sys, uint32_t slot)
{
    return &load_relaxed(&sys->dir[slot >> CELL_CHUNK_BITS])[slot & (CELL_CHUNK - 1)];
}

/* The calling thread's worker of sys, whose cache of free cells it may use,
 * or NULL. A worker keeps up to SLOT_CACHE free cells of its own: spawning
 * and stopping on many cores would otherwise all take turns at free_lock.
 * Reusing the cell this core freed last also finds it in this core's
 * cache. */
static struct worker *slot_cache_owner(struct casty_system *sys)
{
    struct worker *w = casty__tls_worker;
    return w && w->sys == sys ? w : NULL;
}

/* The one free slot a thread outside the pool keeps, of the system whose
 * node id is `node` (0: none): the last slot it freed, taken by its next
 * spawn in that system. casty_ask spawns its promise and frees it on the
 * asking thread on every ask, and took free_lock twice an ask, its line
 * pulled from the core that had it last each time. A system's node id is
 * never reused (random high bits), so a spare of a system that has been
 * shut down matches no live one and is simply forgotten (its cell went
 * with the system's); when the thread exits, a pthread key's destructor
 * gives the spare back to its system if that still runs, so threads that
 * come and go do not take a slot each for good; so does a slot of another
 * system freed by the same thread (spare_keep). */
struct spare_slot {
    uint64_t node;
    uint32_t slot;
};
static _Thread_local struct spare_slot spare;
static _Thread_local bool spare_armed; /* the key's destructor will run for this thread */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static bool spare_keyed;

static void spare_give_back(void *unused)
{
    (void)unused;
    struct spare_slot s = spare;
    spare.node = 0;
    /* (A system's acquire fails once it has been shut down, or its id was
     * never live: its spare is forgotten.) */
    struct casty_system *sys = s.node ? casty__system_acquire(s.node, NULL) : NULL;
    if (sys) {
        free_push_many(sys, &s.slot, 1);
        casty__system_release(sys);
    }
}

static void spare_key_create(void)
{
    spare_keyed = pthread_key_create(&spare_key, spare_give_back) == 0;
}

/* Keeps slot as this thread's spare: true when kept. A spare of another
 * system is given back first (the thread has moved on to this one; the
 * other may be gone), one of this system kept (the new slot goes to the
 * stack). */
static bool spare_keep(struct casty_system *sys, uint32_t slot)
{
    if (spare.node == sys->node)
        return false;
    if (spare.node != 0)
        spare_give_back(NULL);
    if (!spare_armed) {
        pthread_once(&spare_once, spare_key_create);
        /* (Any non-NULL value: the destructor runs only for those.) */
        if (!spare_keyed || pthread_setspecific(spare_key, &spare) != 0)
            return false;
        spare_armed = true;
    }
    spare.slot = slot;
    spare.node = sys->node;
    return true;
}

/* Takes a free cell (its mailbox may still hold stale messages of an earlier
 * incarnation, which its generation turns into dead letters). Any thread. */
int casty__cell_alloc(struct casty_system *sys, struct cell **out)
{
    struct worker *w = slot_cache_owner(sys);
    uint32_t slot;
    if (w == NULL) {
        if (spare.node == sys->node) {
            spare.node = 0;
            *out = free_cell(sys, spare.slot);
            return 0;
        }
        int rc = free_pop_many(sys, &slot, 1);
        if (rc < 0)
            return rc;
        *out = free_cell(sys, slot);
        return 0;
    }
    /* Empty: refill half the cache at once, so that the next spawns touch
     * nothing shared. */
    if (w->nslots == 0) {
        int rc = free_pop_many(sys, w->slots, SLOT_CACHE / 2);
        if (rc < 0)
            return rc;
        w->nslots = (uint32_t)rc;
    }
    *out = free_cell(sys, w->slots[--w->nslots]);
    /* The cell of the spawn after next (both lines: the spawn writes
     * both), likely last written by another core: one spawn ahead was too
     * close to hide the miss (fjcreate at 2 workers, perf: the spawn's
     * share 16.6% -> 15.0% of the samples). */
    if (w->nslots > 1) {
        struct cell *ahead = free_cell(sys, w->slots[w->nslots - 2]);
        __builtin_prefetch(ahead, 1);
        __builtin_prefetch((char *)ahead + CACHE_LINE, 1);
    }
    return 0;
}

/* Returns a slot for reuse, without touching its cell. Called by the worker
 * that stopped its actor or its parent's (or by a spawn that failed, on any
 * thread). */
void casty__cell_free_slot(struct casty_system *sys, uint32_t slot)
{
    struct worker *w = slot_cache_owner(sys);
    if (w == NULL) {
        if (!spare_keep(sys, slot))
            free_push_many(sys, &slot, 1);
        return;
    }
    if (w->nslots == SLOT_CACHE) {
        /* Full: the older half goes back for other threads. */
        free_push_many(sys, w->slots, SLOT_CACHE / 2);
        memmove(w->slots, w->slots + SLOT_CACHE / 2, (SLOT_CACHE / 2) * sizeof w->slots[0]);
        w->nslots = SLOT_CACHE / 2;
    }
    w->slots[w->nslots++] = slot;
}

/* Hands all of w's cached free cells back to the shared stack: when w
 * parks, so that the cells it freed do not wait for it while other threads
 * spawn. Owner only. */
void casty__cells_flush(struct worker *w)
{
    if (w->nslots == 0)
        return;
    free_push_many(w->sys, w->slots, w->nslots);
    w->nslots = 0;
}

/* Frees all chunks: single-threaded, after every worker has exited. Each
 * cell's remaining messages (and pending system messages) are released. */
void casty__cells_destroy(struct casty_system *sys)
{
    uint32_t n = sys->nchunks;
    for (uint32_t ch = 0; ch < n; ch++) {
        struct cell *base = sys->dir[ch];
        for (uint32_t i = 0; i < CELL_CHUNK; i++) {
            struct cell *c = &base[i];
            struct casty_msg *m = mbox_take_sys(c);
            while (m) {
                struct casty_msg *next = m->next;
                if (m->kind == MSG_SYS_START)
                    casty_behavior_free(((struct sys_start *)m->data)->behavior);
                casty__msg_release(NULL, m);
                m = next;
            }
            struct casty_msg *h = c->head;
            if (h->next == BLK_CURSOR_MARK)
                h = blk_node(blk_of_cursor(h));
            while (h) {
                struct casty_msg *next = link_target(load_acquire(&h->next));
                if (h != stub_of(c))
                    casty__msg_release(NULL, h);
                h = next;
            }
            if (c->behavior && c->behavior != casty__behavior_unwrap(c->initial))
                casty_behavior_free(c->behavior);
            casty_behavior_free(c->initial);
            struct cell_ext *e = c->ext;
            if (e) {
                free(e->name);
                free(e->watchers.refs);
                free(e->watching.refs);
                free(e->restarts);
                free(e->timers);
                free(e->anon);
                free(e);
            }
        }
        free(base);
    }
    free(sys->dir);
    for (uint32_t ch = 0; ch < n; ch++)
        free(sys->free_slots[ch]);
    free(sys->free_slots);
}
