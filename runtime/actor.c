/* Running an actor: what a worker does with a cell it took from the
 * scheduler, and the actor's life cycle.
 *
 * A run: system messages first (start, stop, watch, child terminated or
 * failed), then up to `throughput` user messages through the current
 * behavior, applying each handler's returned behavior (become, same, stop,
 * unhandled, failed, restart); then re-queue the actor, mark it idle, or
 * suspend it while it waits for its children to stop.
 *
 * Life cycle: start (pre_start, setup) -> alive -> failure handling by the
 * actor's own supervise wrapper (restart within limits / stop / escalate to
 * the parent) -> stop: children first (post-order), then post_stop,
 * watchers get casty_terminated_t, the parent is told and frees the slot.
 *
 * Also the ways messages enter a mailbox (casty_tell, casty_tell_move,
 * casty__deliver, casty__send_sys, casty__deliver_timer), bounded
 * mailboxes, dead letters, death watch and per-actor timers. It does not decide where actors run (sched.c), how
 * nodes are allocated (pool.c) or how the mailbox synchronises (mailbox.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomics.h"
#include "internal.h"
#include "remote.h"
#include "mailbox.h"
#include "timers.h"

CASTY_MESSAGE_DEFINE(casty_terminated_t);

static void begin_stop(struct worker *w, struct cell *c);
static void handle_failure(struct worker *w, struct cell *c, int code, const char *reason);
static void begin_restart(struct worker *w, struct cell *c, int code, const char *reason);

static struct worker *worker_of(struct casty_system *sys)
{
    struct worker *w = casty__tls_worker;
    return (w && w->sys == sys) ? w : NULL;
}

static casty_ref_t self_ref(const struct cell *c)
{
    return casty__cell_ref(c->sys, c->slot, c->gen);
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The cell's ext, allocated on first need. Called by the spawner (before
 * START) or the consumer; NULL when out of memory. */
struct cell_ext *casty__cell_ext(struct cell *c)
{
    /* Acquire: pairs with the release store below (another thread's). */
    struct cell_ext *e = load_acquire(&c->ext);
    if (e)
        return e;
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    /* Release: publishes the zeroed ext to producers that read it. */
    store_release(&c->ext, e);
    return e;
}

/* ---- dead letters -------------------------------------------------------------- */

/* Counts and publishes a message that was not delivered (the caller
 * releases it). DeadLetter events that are themselves undeliverable are only
 * counted (no loop). */
void casty__note_dead_letter(struct casty_system *sys, const casty_type_t *type,
                             casty_ref_t intended)
{
    ck_pr_inc_64(&sys->dead_letters);
    /* (The wire id is a hash of the name: only computed when someone listens.) */
    if (type != &casty_dead_letter_t_type && load_relaxed(&sys->nsubs_atomic) != 0) {
        casty_dead_letter_t ev = {.msg_type = type, .recipient = intended,
                                  .type_id = casty_type_id(type)};
        casty__publish(sys, &casty_dead_letter_t_type, &ev);
    }
}

void casty__note_unhandled(struct casty_system *sys, const casty_type_t *type,
                           casty_ref_t recipient)
{
    ck_pr_inc_64(&sys->unhandled);
    casty_unhandled_message_t ev = {.msg_type = type, .recipient = recipient};
    casty__publish(sys, &casty_unhandled_message_t_type, &ev);
}

void casty__dead_letter(struct casty_system *sys, struct worker *w, struct casty_msg *m,
                        casty_ref_t intended)
{
    casty__note_dead_letter(sys, m->type, intended);
    casty__msg_release(w, m);
}

/* ---- entering a mailbox ---------------------------------------------------------- */

/* Bounded mailboxes: counts the message in, or applies the overflow
 * strategy. Returns 1 to enqueue (with MSG_COUNTED), 0 when the message was
 * turned into a dead letter, CASTY_EFULL for backpressure. */
__attribute__((always_inline)) static inline int admit(struct cell *c, uint32_t *flags)
{
    if (!(load_relaxed(&c->bounded) & CELL_BOUNDED))
        return 1;
    struct cell_ext *e = load_acquire(&c->ext);
    uint32_t cap = e ? load_relaxed(&e->capacity) : 0;
    if (cap == 0)
        return 1;
    /* Full barrier (lock xadd); the consumer decrements when it pops. */
    uint32_t n = ck_pr_faa_32(&e->count, 1);
    *flags |= MSG_COUNTED;
    if (n < cap)
        return 1;
    switch (load_relaxed(&e->overflow)) {
    case CASTY_OVERFLOW_DROP_OLDEST:
        /* Enqueue; the consumer drops the oldest waiting message. */
        ck_pr_inc_32(&e->to_drop);
        return 1;
    case CASTY_OVERFLOW_BACKPRESSURE:
        ck_pr_dec_32(&e->count);
        return CASTY_EFULL;
    default:
        ck_pr_dec_32(&e->count);
        return 0;
    }
}

/* memcpy for a message's value: most are a few words, which a call into
 * the C library (through the PLT in a shared build) costs more than. */
static inline void copy_value(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    } else if (n <= 32) {
        /* (Four words, overlapping at the seam: no call, so casty_tell's
         * fast path makes none and saves no registers.) */
        uint64_t a, b, e, f;
        memcpy(&a, s, 8);
        memcpy(&b, s + 8, 8);
        memcpy(&e, s + n - 16, 8);
        memcpy(&f, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + 8, &b, 8);
        memcpy(d + n - 16, &e, 8);
        memcpy(d + n - 8, &f, 8);
    } else {
        memcpy(d, s, n);
    }
}

__attribute__((always_inline)) static inline struct casty_msg *
new_message(struct casty_system *sys, struct worker *w,
                                     const casty_type_t *type, const void *value,
                                     void *heap_value, size_t prefix)
{
    if (w && !heap_value && prefix == 0 && type->size <= MSG_TINY_MAX) {
        struct casty_msg *t = casty__msg_alloc_tiny(w);
        if (t) {
            t->type = type;
            copy_value(&t->data, value, type->size); /* (MSG_VALUE_INLINE) */
            return t;
        }
    }
    struct casty_msg *m = casty__msg_alloc(sys, w, heap_value ? prefix : prefix + type->size);
    if (m == NULL)
        return NULL;
    m->type = type;
    if (heap_value) {
        m->data = heap_value;
        m->flags = MSG_DATA_HEAP;
    } else {
        m->data = m->payload + prefix;
        copy_value(m->data, value, type->size);
    }
    return m;
}

static void drop_unsent(const casty_type_t *type, void *heap_value)
{
    if (heap_value) {
        if (type->drop)
            type->drop(heap_value);
        free(heap_value);
    }
}

/* Enqueues a user message for `to` in `sys`: a copy of `value` (type->size
 * bytes), or `heap_value` moved in. A ref whose slot was never allocated,
 * or a full drop_new mailbox, gives a dead letter at once; a stale
 * generation gives one when the actor's worker meets it. Returns 0,
 * CASTY_EFULL (backpressure) or CASTY_ENOMEM; heap_value is consumed in
 * every case. Any thread. */
__attribute__((always_inline)) static inline int deliver(struct casty_system *sys, struct worker *w,
                                                          casty_ref_t to, const casty_type_t *type,
                                                          const void *value, void *heap_value)
{
    uint32_t slot = (uint32_t)to.actor;
    uint32_t gen = (uint32_t)(to.actor >> 32);
    struct cell *c = casty__cell_lookup(sys, slot);
    uint32_t flags = 0;
    if (c && gen != 0) {
        int admitted = admit(c, &flags);
        if (admitted <= 0) {
            if (admitted == 0)
                casty__note_dead_letter(sys, type, to);
            drop_unsent(type, heap_value);
            return admitted;
        }
    }
    struct casty_msg *m = new_message(sys, w, type, value, heap_value, 0);
    if (m == NULL) {
        if (flags & MSG_COUNTED)
            ck_pr_dec_32(&c->ext->count);
        drop_unsent(type, heap_value);
        return CASTY_ENOMEM;
    }
    m->gen = gen;
    if (flags) /* (no read of the fresh node's line otherwise) */
        m->flags |= (uint8_t)flags;
    if (c == NULL || gen == 0) {
        casty__dead_letter(sys, w, m, to);
        return 0;
    }
    if (mbox_push(c, m))
        casty__schedule(sys, c);
    return 0;
}

int casty__deliver(struct casty_system *sys, casty_ref_t to, const casty_type_t *type,
                   const void *value, void *heap_value)
{
    return deliver(sys, worker_of(sys), to, type, value, heap_value);
}

/* ---- the two send calls ------------------------------------------------------------ */

static bool type_valid(const casty_type_t *type)
{
    return type != NULL && type->name != NULL && type->size <= UINT32_MAX;
}

/* A ref of another system: the sending worker's own transport first (or,
 * inside casty_ask's make_request, the asking system's), so systems of one
 * process that know each other as remote peers talk over their
 * connections; then a system of this process; then any transport that
 * knows the node. */
_Thread_local struct casty_system *casty__tls_asking;

static int tell_elsewhere(struct worker *w, casty_ref_t to, const casty_type_t *type,
                          const void *value, void *heap_value)
{
    struct casty_system *via = w ? w->sys : casty__tls_asking;
    if (via && via->remote) {
        int rc = casty__remote_tell(via, to, type, value, heap_value, false);
        if (rc != 1)
            return rc;
    }
    struct casty_system *sys = casty__system_acquire(to.node, NULL);
    if (sys == NULL)
        return casty__remote_tell(via, to, type, value, heap_value, true);
    if (sys->remote)
        casty__remote_note_type(sys, type);
    int rc = casty__deliver(sys, to, type, value, heap_value);
    casty__system_release(sys);
    return rc;
}

/* casty_tell and casty_tell_move in full. */
__attribute__((noinline)) static int tell_checked(casty_ref_t to, const casty_type_t *type,
                                                  const void *value, void *heap_value)
{
    if (!type_valid(type) || (heap_value == NULL && value == NULL && type->size > 0)) {
        free(heap_value);
        return CASTY_EINVAL;
    }
    struct worker *w = casty__tls_worker;
    if (w && w->sys->node == to.node) {
        if (w->sys->remote)
            casty__remote_note_type(w->sys, type);
        return deliver(w->sys, w, to, type, value, heap_value);
    }
    return tell_elsewhere(w, to, type, value, heap_value);
}

/* casty_tell's wake-up when it displaced the LIFO slot's occupant. */
__attribute__((noinline)) static int tell_displaced(struct worker *w, struct cell *prev)
{
    casty__schedule_displaced(w, prev);
    return 0;
}

/* Pushes m (a node or a block) from worker w and, when that woke c, puts c
 * in w's LIFO slot: casty__schedule_on, with the displaced actor's requeue
 * a tail call, so that casty_tell's fast path calls nothing and saves no
 * registers. */
static inline __attribute__((always_inline)) int push_from_worker(struct worker *w, struct cell *c,
                                                                  struct casty_msg *m,
                                                                  struct casty_msg *link)
{
    if (mbox_push_link(c, m, link)) {
        struct cell *prev = w->lifo;
        w->lifo = c;
        if (prev != NULL)
            return tell_displaced(w, prev);
    }
    return 0;
}

/* A node of class `cls` (2: tiny, the value in place of `data`) filled
 * with a copied value, as casty_tell sends it. */
static inline __attribute__((always_inline)) void node_fill(struct casty_msg *m,
                                                            const casty_type_t *type,
                                                            const void *value, size_t size,
                                                            uint32_t cls, uint32_t gen)
{
    m->type = type;
    m->kind = MSG_USER;
    if (cls == 2) {
        m->flags = MSG_VALUE_INLINE;
        copy_value(&m->data, value, size);
    } else {
        m->flags = 0;
        m->data = m->payload;
        copy_value(m->payload, value, size);
    }
    m->gen = gen;
}

/* casty_tell when the worker's free list of class `cls` is empty: refills
 * it from the pool (a bitmap word of nodes at once) and sends the node,
 * out of line so that the common path saves no registers for the call.
 * (Not by calling casty_tell again: its choice of a block would see this
 * same send a second time, as a sender streaming to the actor.) */
__attribute__((noinline)) static int tell_refilled(casty_ref_t to, const casty_type_t *type,
                                                   const void *value, struct worker *w,
                                                   uint32_t cls)
{
    struct casty_msg *m = cls == 2 ? casty__msg_alloc_tiny_slow(w)
                                   : casty__msg_alloc_slow(w->sys, w, type->size);
    if (m == NULL || m->owner == POOL_HEAP_OWNER) {
        /* No slab memory: the full path (with its own fallback). */
        if (m)
            casty__msg_release(w, m);
        return tell_checked(to, type, value, NULL);
    }
    /* (casty_tell found the cell; the refill changed nothing there.) */
    struct cell *c = casty__cell_lookup(w->sys, (uint32_t)to.actor);
    node_fill(m, type, value, type->size, cls, (uint32_t)(to.actor >> 32));
    return push_from_worker(w, c, m, m);
}

/* A slot filled with a tiny value: its type, and its bytes as a tiny
 * node's `data` holds them (the rest zero). */
static inline __attribute__((always_inline)) void blk_fill(struct blk_slot *s,
                                                           const casty_type_t *type,
                                                           const void *value, size_t size)
{
    /* (Up to MSG_TINY_MAX bytes: one word of eight, or two overlapping
     * words of four or of two, or a byte, each load of a fixed size: a
     * loop of bytes, or copy_value's longer cases, would be a call to
     * memcpy, and make this and its callers keep a frame. The two words
     * are put together in a register, not stored over each other in a
     * word on the stack: that took a register save and a stack round trip
     * on every send, eight bytes included.) */
    const unsigned char *src = value;
    uint64_t v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (size == 8) {
        memcpy(&v, src, 8);
    } else if (size >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + size - 4, 4);
        v = a | (uint64_t)b << (8 * (size - 4)); /* the overlap's bytes agree */
    } else if (size >= 2) {
        uint16_t a, b;
        memcpy(&a, src, 2);
        memcpy(&b, src + size - 2, 2);
        v = a | (uint64_t)b << (8 * (size - 2));
    } else if (size == 1) {
        v = src[0];
    }
#else
    memcpy(&v, src, size);
#endif
    s->type = type;
    s->value = v;
}

/* tell_block's second half: a new block, pushed in place of a node, with
 * the value in its first slot; a node when this worker's region has no
 * block left. */
__attribute__((noinline)) static int tell_block_new(struct worker *w, struct cell *c,
                                                    const casty_type_t *type, const void *value,
                                                    uint32_t gen)
{
    struct msg_block *b = casty__blk_alloc(w);
    if (b == NULL) /* a node (no block to be had) */
        return tell_checked(casty__cell_ref(w->sys, c->slot, gen), type, value, NULL);
    blk_fill(&b->slots[0], type, value, type->size);
    b->gen = gen;
    store_relaxed(&b->state, 1u);
    w->blk_hints[c->slot & (STREAM_SLOTS - 1)] =
        (struct blk_hint){((uint64_t)gen << 32) | c->slot, c, b, 0};
    struct casty_msg *n = blk_node(b);
    n->type = NULL;
    n->data = NULL;
    n->gen = 0;
    n->owner = POOL_BLOCK_OWNER;
    n->kind = MSG_BLOCK;
    n->flags = 0;
    return push_from_worker(w, c, n, (struct casty_msg *)((uintptr_t)n | LINK_BLOCK));
}

/* casty_tell for a value of up to MSG_TINY_MAX bytes to an actor whose
 * tail is b, a block of this worker's: into its next slot if it has one,
 * is for the same incarnation and is not closed, else a new block
 * (mailbox.h, "Blocks"). Inline in tell_tiny_busy, a leaf but for its
 * tail calls, so that it saves no registers. */
static inline __attribute__((always_inline)) int tell_block(struct worker *w, struct cell *c,
                                                            struct msg_block *b,
                                                            const casty_type_t *type,
                                                            const void *value, uint32_t gen)
{
    uint32_t st = load_relaxed(&b->state);
    if (st < BLK_SLOTS && b->gen == gen) {
        blk_fill(&b->slots[st], type, value, type->size);
        /* Full barrier: publishes the slot to blk_take's acquire. */
        if (ck_pr_cas_32(&b->state, st, st + 1)) {
            /* The line of this block's slots after the next line's, for
             * the sends to come (fresh memory the first time). */
            if (st + 6 < BLK_SLOTS)
                prefetch_for_write(&b->slots[st + 6]);
            return 0;
        }
    }
    return tell_block_new(w, c, type, value, gen);
}

/* tell_tiny_busy's node: a tiny node, as casty_tell would send it. Out
 * of line, so that tell_tiny_busy's block path saves no registers. */
__attribute__((noinline)) static int tell_tiny_node(struct worker *w, struct cell *c,
                                                    const casty_type_t *type, const void *value,
                                                    uint32_t gen)
{
    struct casty_msg *m = casty__pool_pop(w, 2);
    if (m == NULL)
        return tell_refilled(casty__cell_ref(w->sys, c->slot, gen), type, value, w, 2);
    node_fill(m, type, value, type->size, 2, gen);
    return push_from_worker(w, c, m, m);
}

/* casty_tell's tiny case in a system of more than one worker when the
 * receiver's tail t is a message (not idle, not the stub): a block when t
 * is this worker's own block (which was taken by the same rule: it goes
 * on), or the actor has a backlog or this worker streams to it; else a
 * tiny node. Out of line, so that casty_tell's path for one worker, for an
 * idle receiver and for larger values keeps none of this in its
 * registers. */
__attribute__((noinline)) static int tell_tiny_busy(struct worker *w, struct cell *c,
                                                    const casty_type_t *type, const void *value,
                                                    struct casty_msg *t, uint32_t gen)
{
    /* (The arguments in casty_tell's order, type and value where its own
     * are: fewer moves before the jump.) */
    if (w->blk_base != NULL && (size_t)((unsigned char *)t - w->blk_base) < BLK_REGION)
        return tell_block(w, c, (struct msg_block *)(void *)t, type, value, gen);
    struct cell **seen = &w->streams[c->slot & (STREAM_SLOTS - 1)];
    if ((load_relaxed(&c->bounded) & CELL_BACKLOG) || *seen == c)
        return tell_block_new(w, c, type, value, gen);
    *seen = c;
    return tell_tiny_node(w, c, type, value, gen);
}

/* (gcc's noipa, not just noinline, for tell_hinted: with the latter gcc
 * split the hint into its fields in the caller, which then computed the
 * entry's address twice and moved four registers before the jump. clang
 * has no noipa.) */
#if defined(__has_attribute)
#if __has_attribute(noipa)
#define TELL_HINTED_ATTR __attribute__((noipa))
#endif
#endif
#ifndef TELL_HINTED_ATTR
#define TELL_HINTED_ATTR __attribute__((noinline))
#endif

/* casty_tell's tiny case, in a system of more than one worker, for a
 * receiver whose ref matches h, this worker's hint for its low bits: the
 * block this worker last started for it (tell_block_new). While that block
 * is the cell's tail, the next slot of it, which is what the cell's
 * lookup, its flags and tell_tiny_busy's test of the tail's region would
 * have led to (the cell and its flags are the hint's incarnation's: one
 * that had no bound, or it would have taken no block); else what
 * casty_tell does after them. The block is read only once it is the
 * tail, so in use: this worker alone reuses its blocks. Out of line, so
 * that casty_tell's path for nodes keeps none of this in its registers. */
TELL_HINTED_ATTR static int tell_hinted(struct worker *w, const struct blk_hint *h,
                                        const casty_type_t *type, const void *value, uint32_t gen)
{
    struct cell *c = h->cell;
    struct msg_block *b = h->block;
    struct casty_msg *t = load_relaxed(&c->tail);
    if (t == blk_node(b))
        return tell_block(w, c, b, type, value, gen);
    /* (A stale ref's hint, to a cell spawned again with a bound since:
     * the bound's path, as casty_tell would take it.) */
    if (load_relaxed(&c->bounded) & CELL_BOUNDED)
        return tell_checked(casty__cell_ref(w->sys, c->slot, gen), type, value, NULL);
    if (!((uintptr_t)t & IDLE_BIT) && t != stub_of(c))
        return tell_tiny_busy(w, c, type, value, t, gen);
    return tell_tiny_node(w, c, type, value, gen);
}

/* A handler's send is the hottest path there is. Its common case, a copied
 * value of up to MSG_SMALL_MAX bytes from a worker to a live slot of its
 * own system (one without a remote transport), no mailbox bound, is
 * written out here with no call but the wake-up: callgrind counted 168
 * instructions a message from casty_tell through casty__deliver to the
 * push, half of them calls, register saves and argument moves. Anything
 * else takes tell_checked, which does the same in that case (keep the two
 * in step: tests/test_actor.c, "sends from a handler"). */
int casty_tell(casty_ref_t to, const casty_type_t *type, const void *value)
{
    struct worker *w = casty__tls_worker;
    if (w == NULL || type == NULL || type->name == NULL || value == NULL)
        return tell_checked(to, type, value, NULL);
    struct casty_system *sys = w->sys;
    uint32_t gen = (uint32_t)(to.actor >> 32);
    size_t size = type->size;
    if (sys->node != to.node || gen == 0)
        return tell_checked(to, type, value, NULL);
    /* The block this worker last started for the receiver, if it still
     * is the receiver's tail: tell_hinted, without the cell's lookup.
     * (Where blocks are taken: see below. Before the test of a remote
     * transport, which a hint implies there is not: a system's transport
     * starts before it has an actor, and with one no send comes here.) */
    if (size < w->blk_size_limit && type->drop == NULL) {
        struct blk_hint *h = &w->blk_hints[(uint32_t)to.actor & (STREAM_SLOTS - 1)];
        if (h->actor == to.actor)
            return tell_hinted(w, h, type, value, gen);
    }
    if (sys->remote)
        return tell_checked(to, type, value, NULL);
    struct cell *c = casty__cell_lookup(sys, (uint32_t)to.actor);
    if (c == NULL)
        return tell_checked(to, type, value, NULL);
    /* (The flag on the cell's own line, not the ext's capacity: a parent
     * keeps an ext for its children's table, and reading it was a second
     * cache miss per message to it from another core.) */
    uint32_t cflags = load_relaxed(&c->bounded);
    if (cflags & CELL_BOUNDED)
        return tell_checked(to, type, value, NULL);
    uint32_t cls = 0;
    if (size <= MSG_TINY_MAX) {
        /* A block, whose slots the consumer reads ahead of, for a tail
         * that is a message (the actor is not idle; its mailbox holds the
         * message at the tail, or held it a moment ago) when the actor
         * has a backlog (its last run spent its budget) or this worker
         * streams to it: the second send in a row of this worker's (by
         * its table of the cells it last found busy) to find the tail a
         * message. A receiver that keeps up has no backlog, and one that
         * gets a message or two from a fan-out to more cells than the
         * table holds would take a block of 1 KiB for each
         * (docs/performance.md, "Blocks for receivers that keep up: a
         * table of streams"). With one worker there is no consumer on
         * another core to read ahead for, and a node costs less. A value
         * with a drop function takes a node: its drop runs when its node
         * is released, and a block releases no slot by itself. (Tested
         * only on this branch: larger values, which take no block, pay
         * nothing for it.) */
        if (sys->nworkers > 1 && type->drop == NULL) {
            struct casty_msg *t = load_relaxed(&c->tail);
            if (!((uintptr_t)t & IDLE_BIT) && t != stub_of(c))
                return tell_tiny_busy(w, c, type, value, t, gen);
        }
        cls = 2;
    } else if (size > MSG_SMALL_MAX) {
        /* (Tested here, not with the checks above: a tiny value, the
         * commonest, pays one comparison of its size, not two.) */
        return tell_checked(to, type, value, NULL);
    }
    struct casty_msg *m = casty__pool_pop(w, cls);
    if (m == NULL)
        return tell_refilled(to, type, value, w, cls);
    node_fill(m, type, value, size, cls, gen);
    return push_from_worker(w, c, m, m);
}

int casty_tell_move(casty_ref_t to, const casty_type_t *type, void *heap_value)
{
    if (heap_value == NULL)
        return CASTY_EINVAL;
    return tell_checked(to, type, NULL, heap_value);
}

/* A per-actor timer's message: like casty__deliver, tagged with the
 * timer's token so the actor can discard it if the timer was cancelled
 * meanwhile. Called on the reactor thread. */
int casty__deliver_timer(struct casty_system *sys, casty_ref_t to, const casty_type_t *type,
                         const void *value, uint64_t token)
{
    struct cell *c = casty__cell_lookup(sys, (uint32_t)to.actor);
    if (c == NULL)
        return CASTY_ENOENT;
    struct casty_msg *m = new_message(sys, worker_of(sys), type, value, NULL,
                                      sizeof(struct timer_hdr));
    if (m == NULL)
        return CASTY_ENOMEM;
    ((struct timer_hdr *)(void *)m->payload)->token = token;
    m->kind = MSG_TIMER;
    m->gen = (uint32_t)(to.actor >> 32);
    if (mbox_push(c, m))
        casty__schedule(sys, c);
    return 0;
}

/* Enqueues a system message (payload copied) for the cell in `slot`.
 * Returns 0, CASTY_ENOENT (no such slot) or CASTY_ENOMEM. Any thread. */
int casty__send_sys(struct casty_system *sys, uint32_t slot, uint8_t kind, const void *payload,
                    size_t size)
{
    struct cell *c = casty__cell_lookup(sys, slot);
    if (c == NULL)
        return CASTY_ENOENT;
    struct casty_msg *m = casty__msg_alloc(sys, worker_of(sys), size);
    if (m == NULL)
        return CASTY_ENOMEM;
    m->type = NULL;
    m->kind = kind;
    m->gen = 0;
    copy_value(m->payload, payload, size);
    bool run = mbox_push_sys(c, m);
    /* A suspended actor holds its schedule without being queued: the
     * first system message after it suspended wakes it. Sequentially
     * consistent load after the push; pairs with suspend(). */
    if (!run && load_seqcst(&c->suspended) && ck_pr_cas_32(&c->suspended, 1, 0))
        run = true;
    if (run)
        casty__schedule(sys, c);
    return 0;
}

/* ---- behaviors ------------------------------------------------------------------ */

static bool is_initial_part(const struct cell *c, const struct casty_behavior *b)
{
    return b == c->initial || b == casty__behavior_unwrap(c->initial);
}

static void set_current(struct cell *c, struct casty_behavior *b)
{
    if (c->behavior && c->behavior != b && !is_initial_part(c, c->behavior))
        casty_behavior_free(c->behavior);
    c->behavior = b;
}

static const casty_lifecycle_t *hooks_of(const struct cell *c)
{
    /* Hooks come only in a wrapper: no call for a plain initial behavior. */
    if (c->initial == NULL ||
        (c->initial->kind != BEH_LIFECYCLE && c->initial->kind != BEH_SUPERVISE))
        return NULL;
    const struct wrapped_lifecycle *l = casty__behavior_find(c->initial, BEH_LIFECYCLE);
    return l ? &l->hooks : NULL;
}

#define RUN_HOOK(w, c, name)                                                   \
    do {                                                                       \
        const casty_lifecycle_t *h_ = hooks_of(c);                             \
        if (h_ && h_->name) {                                                  \
            struct casty_ctx ctx_ = {(c), (w), (w)->sys};                      \
            h_->name(&ctx_, h_->arg);                                          \
        }                                                                      \
    } while (0)

static void publish_ref_event(struct casty_system *sys, const casty_type_t *type,
                              const struct cell *c, int code, const char *why)
{
    casty_actor_failed_t ev = {.ref = self_ref(c), .code = code, .reason = why};
    casty__publish(sys, type, &ev); /* failed and restarted share one layout */
}

/* Applies the behavior a handler (or setup) returned. `msg` is the message
 * being handled, NULL at start. Ownership of `next` passes to the cell. */
static void apply_next(struct worker *w, struct cell *c, struct casty_behavior *next,
                       const struct casty_msg *msg)
{
    struct casty_system *sys = w->sys;
    for (int depth = 0;; depth++) {
        if (next == NULL) {
            handle_failure(w, c, CASTY_ENOMEM, "out of memory building a behavior");
            return;
        }
        if (depth > 64) {
            casty_behavior_free(next);
            handle_failure(w, c, CASTY_EINVAL, "setup nested too deeply");
            return;
        }
        switch (next->kind) {
        case BEH_SAME:
            if (c->behavior == NULL)
                handle_failure(w, c, CASTY_EINVAL, "setup returned same");
            return;
        case BEH_RECEIVE:
            set_current(c, next);
            return;
        case BEH_SETUP: {
            struct casty_ctx ctx = {c, w, sys};
            struct casty_behavior *r = next->fn.setup(&ctx, next->state);
            if (!is_initial_part(c, next))
                casty_behavior_free(next);
            next = r;
            continue;
        }
        case BEH_SUPERVISE:
        case BEH_LIFECYCLE: {
            /* Wrappers only mean something on the initial behavior. */
            struct casty_behavior *inner = casty__behavior_unwrap(next);
            if (next == c->initial) {
                next = inner;
                continue;
            }
            struct casty_behavior **link =
                next->kind == BEH_SUPERVISE ? &((struct wrapped_strategy *)(void *)next->data)->inner
                                            : &((struct wrapped_lifecycle *)(void *)next->data)->inner;
            struct casty_behavior *detached = *link;
            *link = NULL;
            casty_behavior_free(next);
            next = detached;
            continue;
        }
        case BEH_STOPPED:
            begin_stop(w, c);
            return;
        case BEH_UNHANDLED:
            if (msg)
                casty__note_unhandled(sys, msg->type, self_ref(c));
            if (c->behavior == NULL)
                handle_failure(w, c, CASTY_EINVAL, "setup returned unhandled");
            return;
        case BEH_RESTART:
            begin_restart(w, c, 0, "restart requested");
            return;
        case BEH_PERSIST:
            casty_behavior_free(next);
            handle_failure(w, c, CASTY_EINVAL, "casty_persisted outside an event-sourced actor");
            return;
        case BEH_FAILED: {
            const struct failure *f = (const struct failure *)(const void *)next->data;
            int code = f->code;
            char reason[256];
            snprintf(reason, sizeof reason, "%s", (const char *)f + offsetof(struct failure, reason));
            casty_behavior_free(next);
            handle_failure(w, c, code, reason[0] ? reason : NULL);
            return;
        }
        default:
            handle_failure(w, c, CASTY_EINVAL, "not a behavior");
            return;
        }
    }
}

/* ---- per-actor timers --------------------------------------------------------------- */

static uint64_t timer_owner(const struct cell *c)
{
    return self_ref(c).actor;
}

static struct actor_timer *timer_find_key(struct cell_ext *e, const char *key)
{
    for (uint32_t i = 0; i < e->ntimers; i++)
        if (strcmp(e->timers[i].key, key) == 0)
            return &e->timers[i];
    return NULL;
}

static void timer_remove(struct cell_ext *e, struct actor_timer *t)
{
    *t = e->timers[--e->ntimers];
}

static void timers_clear(struct cell *c)
{
    struct cell_ext *e = load_relaxed(&c->ext);
    if (e && e->ntimers) {
        e->ntimers = 0;
        casty__timers_cancel_owner(c->sys->timers, timer_owner(c));
    }
}

/* True when a MSG_TIMER message belongs to a live timer (and forgets a
 * one-shot that has now fired). */
static bool timer_message_live(struct cell *c, const struct casty_msg *m)
{
    uint64_t token = ((const struct timer_hdr *)(const void *)m->payload)->token;
    struct cell_ext *e = load_relaxed(&c->ext);
    for (uint32_t i = 0; e && i < e->ntimers; i++) {
        if (e->timers[i].token == token) {
            if (!e->timers[i].periodic)
                timer_remove(e, &e->timers[i]);
            return true;
        }
    }
    return false;
}

struct actor_timer_arg {
    struct casty_system *sys;
    casty_ref_t to;
    const casty_type_t *type;
    uint64_t token;
    alignas(16) unsigned char value[];
};

static void actor_timer_fire(void *arg)
{
    struct actor_timer_arg *a = arg;
    casty__deliver_timer(a->sys, a->to, a->type, a->value, a->token);
}

static int ctx_timer_start(casty_ctx_t *ctx, const char *key, const casty_type_t *type,
                           const void *value, uint64_t delay_ms, uint64_t interval_ms)
{
    if (ctx == NULL || key == NULL || type == NULL || type->drop ||
        (value == NULL && type->size > 0))
        return CASTY_EINVAL;
    size_t klen = strnlen(key, 64);
    if (klen == 0 || klen > 63)
        return CASTY_EINVAL;
    struct cell *c = ctx->cell;
    struct cell_ext *e = casty__cell_ext(c);
    if (e == NULL)
        return CASTY_ENOMEM;
    struct actor_timer *t = timer_find_key(e, key);
    if (t == NULL) {
        if (e->ntimers == e->timers_cap) {
            uint32_t cap = e->timers_cap ? e->timers_cap * 2 : 4;
            struct actor_timer *a = realloc(e->timers, cap * sizeof *a);
            if (a == NULL)
                return CASTY_ENOMEM;
            e->timers = a;
            e->timers_cap = cap;
        }
        t = &e->timers[e->ntimers++];
        memcpy(t->key, key, klen + 1);
    }
    t->token = ++e->timer_seq;
    t->periodic = interval_ms != 0;
    struct actor_timer_arg *a = malloc(sizeof *a + type->size);
    if (a == NULL) {
        timer_remove(e, t);
        return CASTY_ENOMEM;
    }
    a->sys = ctx->sys;
    a->to = self_ref(c);
    a->type = type;
    a->token = t->token;
    if (type->size)
        memcpy(a->value, value, type->size);
    int rc = casty__timers_start(ctx->sys->timers, timer_owner(c), key, delay_ms * 1000000ull,
                                 interval_ms * 1000000ull, actor_timer_fire, a, free);
    if (rc) {
        t = timer_find_key(e, key);
        if (t)
            timer_remove(e, t);
    }
    return rc;
}

int casty_ctx_timer_tick(casty_ctx_t *ctx, const char *key, const casty_type_t *type,
                         const void *value, uint64_t interval_ms)
{
    if (interval_ms == 0)
        return CASTY_EINVAL;
    return ctx_timer_start(ctx, key, type, value, interval_ms, interval_ms);
}

int casty_ctx_timer_schedule(casty_ctx_t *ctx, const char *key, const casty_type_t *type,
                             const void *value, uint64_t delay_ms)
{
    return ctx_timer_start(ctx, key, type, value, delay_ms, 0);
}

int casty_ctx_timer_cancel(casty_ctx_t *ctx, const char *key)
{
    if (ctx == NULL || key == NULL)
        return CASTY_EINVAL;
    struct cell_ext *e = load_relaxed(&ctx->cell->ext);
    struct actor_timer *t = e ? timer_find_key(e, key) : NULL;
    if (t == NULL)
        return CASTY_ENOENT;
    timer_remove(e, t);
    casty__timers_cancel(ctx->sys->timers, timer_owner(ctx->cell), key);
    return 0;
}

/* ---- death watch ------------------------------------------------------------------------ */

static int set_add(struct ref_set *s, casty_ref_t r)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (casty_ref_eq(s->refs[i], r))
            return 0;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 4;
        casty_ref_t *a = realloc(s->refs, cap * sizeof *a);
        if (a == NULL)
            return CASTY_ENOMEM;
        s->refs = a;
        s->cap = cap;
    }
    s->refs[s->n++] = r;
    return 0;
}

static bool set_remove(struct ref_set *s, casty_ref_t r)
{
    for (uint32_t i = 0; i < s->n; i++) {
        if (casty_ref_eq(s->refs[i], r)) {
            s->refs[i] = s->refs[--s->n];
            return true;
        }
    }
    return false;
}

/* Sends a watch-related system message to `target` in whatever system it
 * lives. Returns CASTY_ENOENT when the target can never answer. */
static int send_watch(casty_ref_t target, uint8_t kind, casty_ref_t watcher)
{
    struct sys_watch sw = {.gen = (uint32_t)(target.actor >> 32), .watcher = watcher};
    struct worker *w = casty__tls_worker;
    if (w && w->sys->node == target.node)
        return casty__send_sys(w->sys, (uint32_t)target.actor, kind, &sw, sizeof sw);
    struct casty_system *sys = casty__system_acquire(target.node, NULL);
    if (sys == NULL)
        return CASTY_ENOENT;
    int rc = casty__send_sys(sys, (uint32_t)target.actor, kind, &sw, sizeof sw);
    casty__system_release(sys);
    return rc;
}

int casty_ctx_watch(casty_ctx_t *ctx, casty_ref_t target)
{
    if (ctx == NULL || casty_ref_is_none(target))
        return CASTY_EINVAL;
    bool gone;
    if (target.node != ctx->sys->node && casty__remote_knows(target.node, &gone) && !gone)
        return CASTY_ENOTSUP; /* across nodes: needs the cluster's failure detector */
    struct cell_ext *e = casty__cell_ext(ctx->cell);
    if (e == NULL || set_add(&e->watching, target) != 0)
        return CASTY_ENOMEM;
    casty_ref_t self = self_ref(ctx->cell);
    if (send_watch(target, MSG_SYS_WATCH, self) != 0 || (uint32_t)(target.actor >> 32) == 0)
        CASTY_TELL(self, casty_terminated_t, .ref = target); /* already gone */
    return 0;
}

int casty_ctx_unwatch(casty_ctx_t *ctx, casty_ref_t target)
{
    if (ctx == NULL || casty_ref_is_none(target))
        return CASTY_EINVAL;
    struct cell_ext *e = load_relaxed(&ctx->cell->ext);
    if (e && set_remove(&e->watching, target))
        send_watch(target, MSG_SYS_UNWATCH, self_ref(ctx->cell));
    return 0;
}

/* A casty_terminated_t reaches the handler only while the actor watches
 * that ref, and only once. */
static bool terminated_wanted(struct cell *c, const struct casty_msg *m)
{
    const casty_terminated_t *t = msg_value(m);
    struct cell_ext *e = load_relaxed(&c->ext);
    return e && set_remove(&e->watching, t->ref);
}

/* ---- children ------------------------------------------------------------------------------ */

static bool has_children(const struct cell *c)
{
    return c->first_child != 0 || c->anon_live != 0;
}

static void stop_child(struct casty_system *sys, uint32_t slot, void *arg)
{
    (void)arg;
    struct cell *child = casty__cell_lookup(sys, slot);
    struct sys_stop stop = {.gen = load_relaxed(&child->live_gen)};
    if (stop.gen)
        casty__send_sys(sys, slot, MSG_SYS_STOP, &stop, sizeof stop);
}

static void stop_children(struct worker *w, struct cell *c)
{
    /* Children that stopped on this worker and wait in its batch: report
     * them now, so that this run (it suspends next) takes them at once
     * instead of after the batch's next flush (fib: a run per parent). */
    if (w->ended.count > 0 && w->ended_parent == c->slot)
        casty__children_report(w);
    casty__children_each(w->sys, c, stop_child, NULL);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void start_actor(struct worker *w, struct cell *c, const struct sys_start *s)
{
    struct casty_system *sys = w->sys;
    c->gen = s->gen;
    c->status = CELL_ALIVE;
    c->quiet = s->quiet;
    c->initial = s->behavior;
    c->behavior = NULL;
    if (!s->quiet) {
        casty_actor_started_t ev = {.ref = self_ref(c)};
        casty__publish(sys, &casty_actor_started_t_type, &ev);
    }
    if (load_acquire(&sys->state) != SYS_RUNNING) {
        begin_stop(w, c); /* spawned while the system was stopping */
        return;
    }
    RUN_HOOK(w, c, pre_start);
    apply_next(w, c, casty__behavior_instantiate(c->initial), NULL);
}

/* The behavior of an actor started by casty__start_spawned until its first
 * message: makes the running copy of the initial behavior (what START's
 * run would have done), then hands it the message. Static, so that
 * nothing frees it; a stop or restart before the first message replaces
 * it as any behavior. Costs the run's hot path nothing (it is an ordinary
 * handler), where a "not yet copied" test would cost every run. */
static casty_behavior_t *first_message(casty_ctx_t *ctx, const casty_msg_t *msg, void *unused)
{
    (void)unused;
    struct cell *c = ctx->cell;
    struct casty_behavior *running = casty__behavior_instantiate(c->initial);
    if (running == NULL) {
        apply_next(ctx->worker, c, NULL, NULL); /* the failure, as START's run would */
        return casty_same();
    }
    c->behavior = running; /* (a receive: what apply_next would do, minus freeing this one) */
    return running->fn.receive(ctx, msg, running->state);
}
static struct casty_behavior first_message_b = {
    .kind = BEH_RECEIVE, .is_static = 1, .fn.receive = first_message};

/* Starts a freshly spawned actor from its spawner's worker, without the
 * START system message, where that does what the message would: a plain
 * receive behavior (setup and wrappers run user code, which belongs on the
 * child's own run) in a running system. The spawner claims the child's
 * schedule (mailbox.h), so it is the child's only consumer while it sets
 * the consumer-owned fields, and lets the schedule go as a run ends. The
 * running copy of the behavior is left to the child's first message
 * (first_message_b, above), on the worker that will use and free it. A
 * spawn then costs no system node, no push and pop of it and no run that
 * only starts the child. Returns false, having changed nothing, when the
 * START message must be sent instead: another behavior, the system
 * stopping, or the claim lost to the sender of a stale system message (the
 * slot's previous actor's) holding the schedule. */
static bool start_in_place(struct casty_system *sys, struct cell *c, struct casty_behavior *b,
                           uint32_t gen, bool publish, bool quiet)
{
    if (b->kind != BEH_RECEIVE || load_acquire(&sys->state) != SYS_RUNNING || !mbox_claim(c))
        return false;
    c->gen = gen;
    c->status = CELL_ALIVE;
    c->quiet = quiet;
    c->initial = b;
    c->behavior = &first_message_b;
    if (publish) {
        casty_actor_started_t ev = {.ref = self_ref(c)};
        casty__publish(sys, &casty_actor_started_t_type, &ev);
    }
    return true;
}

bool casty__start_spawned(struct worker *w, struct cell *c, struct casty_behavior *b, uint32_t gen)
{
    if (!start_in_place(w->sys, c, b, gen, true, false))
        return false;
    /* The schedule stays with this worker until the spawner's next spawn
     * or the end of its run (casty__release_held): a spawner that tells the
     * child at once, the common case, leaves a message there, and the
     * child is then queued without a CAS, where letting it go now would
     * take a CAS to idle and the message's push would queue it anyway.
     * The child starts at most one wake-up later than it would have: a
     * queued child waits in this worker's LIFO slot, which only this
     * worker takes from, until the next wake-up moves it to the ring or
     * the run ends. Messages that other threads push meanwhile wait for
     * the release too (at most the rest of the spawner's run). */
    if (w->held != NULL)
        casty__release_held(w);
    w->held = c;
    w->after_run = true;
    return true;
}

/* casty__start_spawned for a spawn from a thread outside the pool (main,
 * a server's thread, casty_ask's promise): the same start in place, and
 * the schedule let go at once. Nobody holds the new ref yet, so the
 * mailbox is empty unless a stale system message of the slot's previous
 * actor came in; the actor is queued then, as that message's push would
 * have. A START message from outside was an injection, a wake-up of a
 * parked worker to take it, and a run that only started the actor: with a
 * request sent right after (casty_ask), two actors became runnable at once
 * and the second woke another worker (docs/performance.md, "Asking from
 * outside the pool"). Only while nothing subscribes to events, and without
 * publishing ActorStarted (a subscription that races with the spawn may
 * miss it, as it may with START): the event stays published by a worker,
 * never by casty_spawn's caller inside the call (a callback taking a lock
 * the caller holds around casty_spawn, as examples/event_stream.c does,
 * would deadlock). A quiet actor (casty_ask's promise, cell.quiet) has no
 * ActorStarted to publish, and starts in place whoever subscribes; with
 * `hold`, the caller keeps the schedule (casty__spawn_held). */
bool casty__start_spawned_outside(struct casty_system *sys, struct cell *c,
                                  struct casty_behavior *b, uint32_t gen, bool hold, bool quiet)
{
    if ((!quiet && load_acquire(&sys->nsubs_atomic) != 0) ||
        !start_in_place(sys, c, b, gen, false, quiet))
        return false;
    if (!hold)
        casty__held_release(sys, c);
    return true;
}

/* ---- an actor held by a thread outside the pool ------------------------------------------
 * casty_ask's promise, started in place with its schedule kept by the
 * asking thread (casty__spawn_held): while the thread polls for the
 * reply it is the actor's consumer and takes the reply from the mailbox
 * itself, so the worker that replies only pushes a node (no run of the
 * promise, no wake-up, no heap copy on its side), and then stops the
 * actor itself (casty__held_finish). Held, the actor needs no behavior
 * of its own (nothing runs it): it is spawned with a static one, and only
 * when the thread stops polling does it get the behavior it runs from
 * then on as any actor (casty__held_adopt). */

/* Lets the schedule of a held actor go: queued when something arrived. */
void casty__held_release(struct casty_system *sys, struct cell *c)
{
    if (mbox_keep_schedule(c, NULL))
        casty__schedule(sys, c);
}

/* Gives a held actor the behavior it runs from now on, in place of the
 * static one it was spawned with (never run: a worker runs the actor only
 * once its schedule is let go, here), and lets the schedule go. The new
 * behavior starts at the first message (first_message_b), as it would
 * have from the spawn. */
void casty__held_adopt(struct casty_system *sys, struct cell *c, struct casty_behavior *b)
{
    casty_behavior_free(c->initial); /* (static: nothing to free, but say so) */
    c->initial = b;
    casty__held_release(sys, c);
}

/* One look at a held actor's mailbox. HELD_REPLY with *reply the copy of
 * the first user message of this incarnation (NULL when out of memory),
 * whose node stays the mailbox's; HELD_SYSTEM when a system message waits
 * (a stop, at shutdown: the caller lets the schedule go and the actor
 * handles it); HELD_NOTHING otherwise. Messages of an earlier incarnation
 * of the slot on the way are dead letters, as on a worker. */
enum held_look casty__held_look(struct casty_system *sys, struct cell *c, struct casty_msg **reply)
{
    for (;;) {
        if (mbox_has_sys(c))
            return HELD_SYSTEM;
        struct casty_msg *m = mbox_pop(c, NULL);
        if (m == NULL)
            return HELD_NOTHING;
        if (m->gen == c->gen && m->kind == MSG_USER && !(m->flags & MSG_COUNTED)) {
            *reply = casty__msg_take(m);
            return HELD_REPLY;
        }
        if (m->kind == MSG_USER)
            casty__note_dead_letter(sys, m->type, casty__cell_ref(sys, c->slot, m->gen));
        casty__msg_drop_value(m);
    }
}

/* Stops a held actor in place after its reply: what finish_stop does for
 * a top-level actor without a name, watchers, timers or children (all a
 * promise is), except ActorStopped, which is not published for an actor
 * whose start was not (casty__start_spawned_outside). Then lets the
 * schedule go: anything sent meanwhile is queued, and a worker turns it
 * into dead letters (the cell is free). */
void casty__held_finish(struct casty_system *sys, struct cell *c)
{
    c->behavior = NULL; /* first_message_b: static */
    casty_behavior_free(c->initial);
    c->initial = NULL;
    c->status = CELL_FREE;
    casty__names_remove(sys, c); /* (no name: clears live_gen) */
    casty__cell_free_slot(sys, c->slot);
    casty__actor_stopped(sys);
    casty__held_release(sys, c);
}

/* Lets the held child's schedule go (after each run in worker_main; at the
 * spawner's next spawn): the child is queued when a message or a system
 * message arrived meanwhile (no CAS then), made idle otherwise. */
void casty__release_held(struct worker *w)
{
    struct cell *c = w->held;
    w->held = NULL;
    if (mbox_keep_schedule(c, w))
        casty__schedule_on(w, c);
}

/* ---- children's ends, reported in batches ---------------------------------------------------
 * A child that stops is unlinked and its slot freed by its parent, which
 * a CHILD_TERMINATED system message tells. The worker collects the ends of
 * one parent's children (CHILD_BATCH a message) and reports them when the
 * parent changes, when the batch is full, when the worker runs out of
 * local work (worker_main, before it searches or parks) or CHILD_BATCH_RUNS
 * actor runs after the first: a spawner whose short-lived children run on
 * other workers then receives a system message per batch rather than per
 * child (each a node, a CAS on its system stack and a wake-up check). A
 * parent waiting for its children to stop (stopping, restarting) waits at
 * most that much longer. */
void casty__children_report(struct worker *w)
{
    if (w->ended.count == 0)
        return;
    size_t size = offsetof(struct sys_children, child) + w->ended.count * sizeof(struct sys_child);
    casty__send_sys(w->sys, w->ended_parent, MSG_SYS_CHILD_TERMINATED, &w->ended, size);
    w->ended.count = 0;
    w->ended_runs = 0;
}

static void child_ended(struct worker *w, uint32_t parent, struct cell *c)
{
    /* A parent queued in this worker's LIFO slot (the usual case when the
     * child's last act was to reply to it: fib) is one whose schedule this
     * worker holds, since only the owner takes from that slot: the child
     * is unlinked and its slot freed here, as the parent would on the
     * report (child_terminated), without the system message. Only for a
     * parent that is alive: a stopping or restarting one has more to do
     * when its last child is gone, on its own run. */
    struct cell *p = w->lifo;
    if (p != NULL && p->slot == parent && p->status == CELL_ALIVE &&
        p->gen == load_relaxed(&c->parent_gen)) {
        casty__child_unlink(w->sys, p, c);
        casty__cell_free_slot(w->sys, c->slot);
        return;
    }
    if (w->ended.count > 0 && w->ended_parent != parent)
        casty__children_report(w);
    w->ended_parent = parent;
    w->ended.child[w->ended.count++] =
        (struct sys_child){.slot = c->slot, .anon_index = c->anon_child ? c->anon_index : ANON_NAMED};
    w->after_run = true;
    if (w->ended.count == CHILD_BATCH)
        casty__children_report(w);
}

/* The last step of stopping: every child is gone. */
static void finish_stop(struct worker *w, struct cell *c)
{
    struct casty_system *sys = w->sys;
    RUN_HOOK(w, c, post_stop);
    set_current(c, NULL);
    casty_behavior_free(c->initial);
    c->initial = NULL;
    c->status = CELL_FREE;
    casty_ref_t self = self_ref(c);
    bool quiet = c->quiet; /* (read before the slot can be reused) */
    struct cell_ext *e = load_relaxed(&c->ext);
    /* (Only when there is something to clear: the ext's first line is
     * also where senders read the mailbox bound.) */
    if (e && (e->watchers.n | e->watching.n | e->nrestarts) != 0) {
        for (uint32_t i = 0; i < e->watchers.n; i++)
            CASTY_TELL(e->watchers.refs[i], casty_terminated_t, .ref = self);
        for (uint32_t i = 0; i < e->watching.n; i++)
            send_watch(e->watching.refs[i], MSG_SYS_UNWATCH, self);
        e->watchers.n = e->watching.n = 0;
        e->nrestarts = 0;
    }
    casty__names_remove(sys, c);
    uint32_t parent = load_relaxed(&c->parent_slot);
    if (parent) {
        /* The parent unlinks this cell and frees the slot. */
        child_ended(w, parent, c);
    } else {
        /* The slot may be reused at once: a new incarnation's START
         * arrives as a system message, which the idle protocol never
         * strands, or its spawner claims the schedule, which it can only
         * once this run has let it go (casty__start_spawned). */
        casty__cell_free_slot(sys, c->slot);
    }
    /* Published last: a subscriber that sees it may spawn into the slot. */
    if (!quiet) {
        casty_actor_stopped_t ev = {.ref = self};
        casty__publish(sys, &casty_actor_stopped_t_type, &ev);
    }
    casty__actor_stopped(sys);
}

static void begin_stop(struct worker *w, struct cell *c)
{
    if (c->status == CELL_FREE || c->status == CELL_STOPPING)
        return;
    c->status = CELL_STOPPING;
    timers_clear(c);
    if (!has_children(c)) {
        finish_stop(w, c);
        return;
    }
    stop_children(w, c); /* finish_stop runs when the last one is gone */
}

static void complete_restart(struct worker *w, struct cell *c)
{
    /* A setup that keeps failing restarts again from in here: bound the
     * recursion (the restart limit bounds the total). */
    static _Thread_local int depth;
    c->status = CELL_ALIVE;
    if (depth >= 16) {
        handle_failure(w, c, CASTY_EFAILED, "restart keeps failing");
        return;
    }
    depth++;
    apply_next(w, c, casty__behavior_instantiate(c->initial), NULL);
    depth--;
    if (c->status == CELL_ALIVE)
        RUN_HOOK(w, c, post_restart);
}

static void begin_restart(struct worker *w, struct cell *c, int code, const char *reason)
{
    if (c->status != CELL_ALIVE)
        return;
    publish_ref_event(w->sys, &casty_actor_restarted_t_type, c, code, reason);
    RUN_HOOK(w, c, pre_restart);
    timers_clear(c);
    set_current(c, NULL);
    c->status = CELL_RESTARTING;
    if (!has_children(c)) {
        complete_restart(w, c);
        return;
    }
    stop_children(w, c); /* complete_restart runs when the last one is gone */
}

/* True when one more restart now stays within the strategy's limit. */
static bool restart_allowed(struct cell *c, const casty_strategy_t *s)
{
    struct cell_ext *e = casty__cell_ext(c);
    if (e == NULL)
        return false;
    uint64_t now = monotonic_ns();
    if (s->within_seconds > 0) {
        uint64_t window = (uint64_t)(s->within_seconds * 1e9);
        uint32_t keep = 0;
        for (uint32_t i = 0; i < e->nrestarts; i++)
            if (now - e->restarts[i] < window)
                e->restarts[keep++] = e->restarts[i];
        e->nrestarts = keep;
    }
    if (e->nrestarts >= s->max_restarts)
        return false;
    if (e->nrestarts == e->restarts_cap) {
        uint32_t cap = e->restarts_cap ? e->restarts_cap * 2 : 4;
        uint64_t *a = realloc(e->restarts, cap * sizeof *a);
        if (a == NULL)
            return false;
        e->restarts = a;
        e->restarts_cap = cap;
    }
    e->restarts[e->nrestarts++] = now;
    return true;
}

/* A failure of this actor (its handler, its setup, or a child escalating):
 * its own supervise wrapper decides; without one it stops. */
static void handle_failure(struct worker *w, struct cell *c, int code, const char *reason)
{
    struct casty_system *sys = w->sys;
    if (c->status != CELL_ALIVE && c->status != CELL_RESTARTING)
        return;
    const struct wrapped_strategy *ws = casty__behavior_find(c->initial, BEH_SUPERVISE);
    casty_directive_t d = CASTY_STOP;
    if (ws && code != CASTY_EFAILED)
        d = ws->strategy.decider ? ws->strategy.decider(code, reason, ws->strategy.decider_arg)
                                 : CASTY_RESTART;
    if (d == CASTY_RESTART && c->status == CELL_ALIVE && restart_allowed(c, &ws->strategy)) {
        begin_restart(w, c, code, reason);
        return;
    }
    publish_ref_event(sys, &casty_actor_failed_t_type, c, code,
                      reason ? reason : casty_strerror(code));
    uint32_t parent = load_relaxed(&c->parent_slot);
    if (d == CASTY_ESCALATE && parent) {
        size_t len = reason ? strlen(reason) : 0;
        if (len > 255)
            len = 255;
        unsigned char buf[sizeof(struct sys_child_failed) + 256];
        struct sys_child_failed *f = (struct sys_child_failed *)(void *)buf;
        f->slot = c->slot;
        f->gen = c->gen;
        f->code = code;
        memcpy(f->reason, reason ? reason : "", len);
        f->reason[len] = 0;
        casty__send_sys(sys, parent, MSG_SYS_CHILD_FAILED, f, sizeof *f + len + 1);
    }
    c->status = c->status == CELL_RESTARTING ? CELL_ALIVE : c->status;
    begin_stop(w, c);
}

static void child_terminated(struct worker *w, struct cell *c, const struct sys_child *sc)
{
    casty__child_unlink_reported(w->sys, c, sc);
    casty__cell_free_slot(w->sys, sc->slot);
    if (has_children(c))
        return;
    if (c->status == CELL_STOPPING)
        finish_stop(w, c);
    else if (c->status == CELL_RESTARTING)
        complete_restart(w, c);
}

static void watched(struct worker *w, struct cell *c, const struct sys_watch *sw, bool add)
{
    bool alive = c->status != CELL_FREE && sw->gen == c->gen;
    if (!add) {
        struct cell_ext *e = load_relaxed(&c->ext);
        if (alive && e)
            set_remove(&e->watchers, sw->watcher);
        return;
    }
    struct cell_ext *e = alive ? casty__cell_ext(c) : NULL;
    if (e == NULL || set_add(&e->watchers, sw->watcher) != 0) {
        casty_ref_t target = casty__cell_ref(w->sys, c->slot, sw->gen);
        CASTY_TELL(sw->watcher, casty_terminated_t, .ref = target);
    }
}

static void process_sys(struct worker *w, struct cell *c)
{
    struct casty_msg *m = mbox_take_sys(c);
    while (m) {
        struct casty_msg *next = m->next;
        switch (m->kind) {
        case MSG_SYS_START:
            start_actor(w, c, (const struct sys_start *)m->data);
            break;
        case MSG_SYS_STOP: {
            const struct sys_stop *s = (const struct sys_stop *)m->data;
            if (s->gen == 0 || s->gen == c->gen)
                begin_stop(w, c);
            break;
        }
        case MSG_SYS_WATCH:
        case MSG_SYS_UNWATCH:
            watched(w, c, (const struct sys_watch *)m->data, m->kind == MSG_SYS_WATCH);
            break;
        case MSG_SYS_CHILD_TERMINATED: {
            const struct sys_children *ended = (const struct sys_children *)m->data;
            for (uint32_t i = 0; i < ended->count; i++)
                child_terminated(w, c, &ended->child[i]);
            break;
        }
        case MSG_SYS_CHILD_FAILED: {
            const struct sys_child_failed *f = (const struct sys_child_failed *)m->data;
            handle_failure(w, c, f->code, f->reason[0] ? f->reason : NULL);
            break;
        }
        default:
            break;
        }
        casty__msg_release(w, m);
        m = next;
    }
}

/* ---- the run ------------------------------------------------------------------------- */

/* Runs the current behavior's handler on m; ctx is the run's (the same
 * for every message of it, built once). True when the handler returned a
 * behavior to apply (which may have changed the actor's status). */
static bool invoke(struct worker *w, struct cell *c, struct casty_ctx *ctx, struct casty_msg *m)
{
    struct casty_behavior *b = c->behavior;
    struct casty_behavior *next = b->fn.receive(ctx, m, b->state);
    if (next == &casty__same_b)
        return false;
    apply_next(w, c, next, m);
    return true;
}

/* What to do with a popped user message: deliver it (true) or not. Drops
 * (dead letters, drop_oldest victims, stale timers) are handled here. */
static bool admit_popped(struct worker *w, struct cell *c, struct casty_msg *m)
{
    struct casty_system *sys = w->sys;
    if (m->flags & MSG_COUNTED) {
        struct cell_ext *e = c->ext;
        ck_pr_dec_32(&e->count);
        uint32_t d = load_relaxed(&e->to_drop);
        while (d > 0) {
            if (ck_pr_cas_32_value(&e->to_drop, d, d - 1, &d)) {
                casty__note_dead_letter(sys, m->type, casty__cell_ref(sys, c->slot, m->gen));
                casty__msg_drop_value(m);
                return false;
            }
        }
    }
    if (m->gen != c->gen || c->status == CELL_FREE) {
        /* Perhaps a START for this generation is waiting. */
        if (mbox_has_sys(c))
            process_sys(w, c);
        if (m->gen != c->gen || c->status == CELL_FREE) {
            if (m->kind == MSG_USER)
                casty__note_dead_letter(sys, m->type, casty__cell_ref(sys, c->slot, m->gen));
            casty__msg_drop_value(m); /* the node itself stays as the queue head */
            return false;
        }
    }
    if ((m->kind == MSG_TIMER && !timer_message_live(c, m)) ||
        (m->type == &casty_terminated_t_type && !terminated_wanted(c, m))) {
        casty__msg_drop_value(m);
        return false;
    }
    return true;
}

/* Parks an actor that waits for its children: it keeps its schedule (so
 * user messages do not queue it) until a system message wakes it. Returns
 * true when one already has (the caller keeps running it). */
static bool suspend(struct cell *c)
{
    /* Sequentially consistent store then load; pairs with casty__send_sys. */
    store_seqcst(&c->suspended, 1u);
    return mbox_has_sys(c) && ck_pr_cas_32(&c->suspended, 1, 0);
}

static bool waiting_for_children(const struct cell *c)
{
    return c->status == CELL_STOPPING || c->status == CELL_RESTARTING;
}

/* Delivers a block's slot (view, of this incarnation, to an actor that is
 * alive), then the block's next published slots, up to the budget, while
 * nothing else needs a look. Every slot of a block is a plain user message
 * of the block's incarnation (never counted by a bound, never a timer's,
 * never a Terminated, whose value does not fit a slot), so the rest need
 * only the actor still alive, no system message waiting (the only thing
 * that changes the incarnation) and no overflow; the end of what is
 * published (a close, the element after) is mbox_pop's, and an overflow
 * ends the run (run_actor's loop).
 * Returns the budget left. Out of line, and given the budget by value:
 * run_actor's loop keeps its registers for nodes. */
static_assert(sizeof(casty_terminated_t) > MSG_TINY_MAX, "a Terminated never goes into a slot");

static __attribute__((noinline)) uint32_t run_slots(struct worker *w, struct cell *c,
                                                    struct casty_ctx *ctx, struct casty_msg *view,
                                                    uint32_t budget)
{
    struct msg_block *b = blk_of_view(view);
    for (;;) {
        /* The actor's status looked at only when the handler returned a
         * behavior to apply: nothing else in a turn changes it (a stop
         * from elsewhere is a system message, below). */
        if (invoke(w, c, ctx, view) && c->status != CELL_ALIVE)
            return budget;
        if (budget == 0 || load_relaxed(&c->sysq) != NULL || w->overflowed)
            return budget;
        /* blk_take without the close: a block caught up with, or moved
         * past, is mbox_pop's. (It hands out every slot as the same view,
         * refilled.) */
        if (blk_take(b, false) == NULL)
            return budget;
        budget--;
    }
}

/* Runs actor c on worker w: at most `throughput` user messages, system
 * messages before each. Called only by the worker holding c's schedule. */
void casty__run_actor(struct worker *w, struct cell *c)
{
    uint32_t budget = w->sys->throughput;
    struct casty_ctx ctx = {c, w, w->sys};
    w->overflowed = false;
again:
    if (load_relaxed(&c->sysq) != NULL)
        process_sys(w, c);
    while (budget > 0 && !waiting_for_children(c)) {
        struct casty_msg *m = mbox_pop(c, w);
        if (m == NULL)
            break;
        budget--;
        /* The next message's node, if already linked, was most likely
         * written by another core: start loading it while this one runs.
         * (m->next shares m's line, which admit_popped reads anyway.) */
        struct casty_msg *after = load_relaxed(&m->next);
        if (after != NULL)
            __builtin_prefetch(after);
        /* The common case in one test (a plain user message of this
         * incarnation for a live actor, not counted by a bound, in a node);
         * a block's slot goes to run_slots with the block's next ones; the
         * rest is admit_popped's. */
        bool run = __builtin_expect((m->flags & (MSG_COUNTED | MSG_IN_SLOT)) == 0 &&
                                        m->gen == c->gen && c->status == CELL_ALIVE &&
                                        m->kind == MSG_USER && m->type != &casty_terminated_t_type,
                                    1);
        if (!run) {
            if ((m->flags & MSG_IN_SLOT) && m->gen == c->gen && c->status == CELL_ALIVE)
                budget = run_slots(w, c, &ctx, m, budget);
            else
                run = admit_popped(w, c, m) && c->status == CELL_ALIVE;
        }
        if (run)
            invoke(w, c, &ctx, m);
        if (load_relaxed(&c->sysq) != NULL)
            process_sys(w, c);
        if (w->overflowed)
            break; /* let the actors it woke run first (casty__schedule_requeue) */
    }
    if (waiting_for_children(c)) {
        if (suspend(c))
            goto again;
        return;
    }
    if (budget == 0 && !(load_relaxed(&c->bounded) & CELL_BACKLOG))
        cell_backlog_set(c);
    if (budget == 0 || w->overflowed || mbox_keep_schedule(c, w))
        casty__schedule_requeue(w, c);
}
