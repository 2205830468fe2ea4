/* The slot table: where actor cells live and how a ref finds its cell.
 *
 * Cells are allocated in chunks of CELL_CHUNK through a fixed directory of
 * chunk pointers, and are never freed before the system is destroyed
 * (type-stable memory): looking up any slot number (casty__cell_lookup,
 * internal.h), even a stale or forged one, is a safe array access that
 * either finds a cell or NULL. Whether a message still reaches the actor is
 * decided by its generation (actor.c).
 *
 * Free slots sit on a lock-free stack indexed by slot number, with a tag in
 * the upper 32 bits of the top word against ABA, and each worker keeps a
 * few of its own in front of it (struct worker's slots). Slot 0 is never
 * used, so a zero ref is never valid. This file does not start or stop actors. */
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "internal.h"
#include "mailbox.h"

#define SLOT_NONE 0u

static void free_push(struct casty_system *sys, struct cell *c)
{
    uint64_t top = load_relaxed(&sys->free_top);
    for (;;) {
        store_relaxed(&c->next_free, (uint32_t)top);
        uint64_t next = ((top >> 32) + 1) << 32 | c->slot;
        /* Full barrier: publishes next_free and everything the releasing
         * thread wrote to the cell to the next popper. */
        if (ck_pr_cas_64_value(&sys->free_top, top, next, &top))
            return;
    }
}

static struct cell *free_pop(struct casty_system *sys)
{
    uint64_t top = load_acquire(&sys->free_top);
    for (;;) {
        uint32_t slot = (uint32_t)top;
        if (slot == SLOT_NONE)
            return NULL;
        struct cell *c = casty__cell_lookup(sys, slot);
        /* next_free may be stale if another thread popped this slot first;
         * the tag makes that CAS fail. Relaxed atomic read: it races with a
         * concurrent push of the same cell by design. */
        uint32_t next_slot = load_relaxed(&c->next_free);
        uint64_t next = ((top >> 32) + 1) << 32 | next_slot;
        if (ck_pr_cas_64_value(&sys->free_top, top, next, &top))
            return c;
    }
}

static int grow(struct casty_system *sys)
{
    int rc = 0;
    pthread_mutex_lock(&sys->grow_lock);
    if ((uint32_t)load_acquire(&sys->free_top) != SLOT_NONE)
        goto out; /* another thread grew meanwhile */
    uint32_t chunk = sys->nchunks;
    if (chunk >= CELL_DIR_SIZE) {
        rc = CASTY_ENOMEM;
        goto out;
    }
    struct cell *base = aligned_alloc(CACHE_LINE, CELL_CHUNK * sizeof(struct cell));
    if (base == NULL) {
        rc = CASTY_ENOMEM;
        goto out;
    }
    memset(base, 0, CELL_CHUNK * sizeof(struct cell));
    for (uint32_t i = 0; i < CELL_CHUNK; i++) {
        struct cell *c = &base[i];
        c->sys = sys;
        c->slot = (chunk << CELL_CHUNK_BITS) | i;
        mbox_init(c);
    }
    /* Release: the initialised chunk becomes visible to casty__cell_lookup. */
    store_release(&sys->dir[chunk], base);
    store_release(&sys->nchunks, chunk + 1);
    for (uint32_t i = CELL_CHUNK; i-- > 0;) {
        if (base[i].slot != SLOT_NONE)
            free_push(sys, &base[i]);
    }
out:
    pthread_mutex_unlock(&sys->grow_lock);
    return rc;
}

/* Pops up to max cells into out with one CAS; returns how many. The walk
 * down the chain reads next_free of cells that another thread may pop and
 * push again meanwhile (relaxed atomic reads): any pop or push between the
 * load of the top and the CAS changes the tag, the CAS fails, and the walk
 * starts again; without one, the chain below the top is what was walked
 * (a cell's next_free changes only while it is off the stack). */
static uint32_t free_pop_many(struct casty_system *sys, struct cell **out, uint32_t max)
{
    uint64_t top = load_acquire(&sys->free_top);
    for (;;) {
        uint32_t n = 0, slot = (uint32_t)top;
        while (n < max && slot != SLOT_NONE) {
            struct cell *c = casty__cell_lookup(sys, slot);
            if (c == NULL)
                break; /* a stale link: walk again */
            out[n++] = c;
            slot = load_relaxed(&c->next_free);
        }
        if (n == 0)
            return 0;
        if (n < max && slot != SLOT_NONE) {
            top = load_acquire(&sys->free_top);
            continue;
        }
        uint64_t next = ((top >> 32) + 1) << 32 | slot;
        /* Full barrier: acquires what the pushers wrote to the cells. */
        if (ck_pr_cas_64_value(&sys->free_top, top, next, &top))
            return n;
    }
}

/* Pushes the cells slots[0..n-1] (n >= 1) with one CAS. */
static void free_push_many(struct casty_system *sys, struct cell **slots, uint32_t n)
{
    for (uint32_t i = 0; i + 1 < n; i++)
        store_relaxed(&slots[i]->next_free, slots[i + 1]->slot);
    struct cell *last = slots[n - 1];
    uint64_t top = load_relaxed(&sys->free_top);
    for (;;) {
        store_relaxed(&last->next_free, (uint32_t)top);
        uint64_t next = ((top >> 32) + 1) << 32 | slots[0]->slot;
        /* Full barrier, as in free_push. */
        if (ck_pr_cas_64_value(&sys->free_top, top, next, &top))
            return;
    }
}

/* The calling thread's worker of sys, whose cache of free cells it may use,
 * or NULL. A worker keeps up to SLOT_CACHE free cells of its own: spawning
 * and stopping on many cores would otherwise all take turns at free_top.
 * Reusing the cell this core freed last also finds it in this core's
 * cache. */
static struct worker *slot_cache_owner(struct casty_system *sys)
{
    struct worker *w = casty__tls_worker;
    return w && w->sys == sys ? w : NULL;
}

/* Takes a free cell (its mailbox may still hold stale messages of an earlier
 * incarnation, which its generation turns into dead letters). Any thread. */
int casty__cell_alloc(struct casty_system *sys, struct cell **out)
{
    struct worker *w = slot_cache_owner(sys);
    if (w) {
        /* Empty: refill half the cache at once, with one CAS, so that the
         * next spawns touch nothing shared. */
        if (w->nslots == 0)
            w->nslots = free_pop_many(sys, w->slots, SLOT_CACHE / 2);
        if (w->nslots > 0) {
            *out = w->slots[--w->nslots];
            return 0;
        }
    }
    for (;;) {
        struct cell *c = free_pop(sys);
        if (c) {
            *out = c;
            return 0;
        }
        int rc = grow(sys);
        if (rc)
            return rc;
    }
}

/* Returns a cell's slot for reuse. Called by the worker that stopped it
 * (or by a spawn that failed, on any thread). */
void casty__cell_free_slot(struct casty_system *sys, struct cell *c)
{
    struct worker *w = slot_cache_owner(sys);
    if (w == NULL) {
        free_push(sys, c);
        return;
    }
    if (w->nslots == SLOT_CACHE) {
        /* Full: the older half goes back for other threads, in one CAS. */
        free_push_many(sys, w->slots, SLOT_CACHE / 2);
        memmove(w->slots, w->slots + SLOT_CACHE / 2, (SLOT_CACHE / 2) * sizeof w->slots[0]);
        w->nslots = SLOT_CACHE / 2;
    }
    w->slots[w->nslots++] = c;
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
            while (h) {
                struct casty_msg *next = load_acquire(&h->next);
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
}
