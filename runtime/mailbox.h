/* Internal (not installed). The actor mailbox: an intrusive lock-free MPSC
 * queue (Vyukov's node-based queue) whose tail pointer also carries the
 * actor's scheduling state, plus a LIFO stack for system messages.
 *
 * User queue. Producers swap `tail` to their node and then link the previous
 * tail to it; the one consumer follows `head->next`. `head` is the last node
 * consumed (the stub at first): it is released when the consumer moves past
 * it, so a node is never freed while a producer may still link to it.
 *
 * Scheduling bit. Bit 0 of `tail` set means "idle: empty and not
 * scheduled". The producer whose swap returns a tagged pointer made the
 * queue non-empty and must schedule the actor; every other producer finds it
 * already scheduled. The consumer makes an actor idle only with a CAS from
 * its last consumed node to stub|1, which fails if any producer swapped in
 * meanwhile: so an actor runs on at most one worker, and no message is left
 * behind in an idle mailbox.
 *
 * System queue. System messages are pushed on `sysq` (a Treiber stack; the
 * consumer takes the whole stack with one exchange and reverses it). A
 * system producer then claims the schedule by clearing the idle bit with a
 * CAS; the consumer, after setting the bit, re-checks `sysq` and takes the
 * schedule back if it finds work. Both sides write then read with
 * sequentially consistent operations (Dekker), so one of them always sees
 * the other and the message is never stranded.
 *
 * Blocks. An element of the user queue is a node or a block (struct
 * msg_block: a node of kind MSG_BLOCK followed by BLK_SLOTS slots of 16
 * bytes, a type and a value, four to a line; the consumer hands each out
 * as the block's `view`, a tiny node on its own line). A worker sending a
 * small value (with no drop function) to an actor whose tail is
 * a message (not idle, not the stub), in a system of more than one worker,
 * when the actor has a backlog (CELL_BACKLOG) or the sender streams to it
 * (casty_tell), puts it into the next slot of its own block at the tail,
 * publishing it with a CAS on the block's `state` (if the block is for
 * the same incarnation), or pushes a new block like a node (casty_tell,
 * tell_block; a worker's hint of the block it last started for a
 * receiver finds that block without the cell's lookup, tell_hinted). The
 * consumer reads a block's published slots in address order, so it can
 * prefetch ahead of them where a chain of nodes, each written by another
 * core a moment before, gives it one miss at a time (fjthrput's second
 * worker: docs/performance.md,
 * "Blocks in the mailbox"). Before it moves past a block, and when it has
 * caught up with one (so before it can make the actor idle), it closes
 * the block (BLK_CLOSED, by a CAS on the same word): a sender whose CAS
 * finds it closed pushes instead, so no slot is lost; and a slot goes in
 * only while its block is the tail, so each sender's order is kept. Only the
 * worker whose region holds a block appends to it, and that worker alone
 * reuses a released block, so its CAS never lands on memory that became
 * something else (no hazard pointers needed). The link to a block is
 * marked (LINK_BLOCK), and while a block has slots to read the consumer's
 * head is the block's cursor, so the pop of a node tests one bit of the
 * link it loads anyway. The cursor lies on the block's last line, which
 * only the consumer writes (it sets the cursor up when it enters the
 * block): a block of one message costs its sender two lines, as a node
 * costs one.
 *
 * Who may call what: mbox_push / mbox_push_sys / mbox_claim from any thread;
 * everything else only from the worker that holds the schedule. */
#ifndef CASTY_MAILBOX_H
#define CASTY_MAILBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "atomics.h"
#include "internal.h"

#define IDLE_BIT ((uintptr_t)1)

/* The backlog hint's changes (cell.bounded's CELL_BACKLOG), by the
 * consumer, rarely: each only when the bit changes. Atomic, because a
 * spawn that reuses the cell stores the whole word (CELL_BOUNDED) while an
 * earlier incarnation's consumer may still hold the schedule; a plain
 * read-modify-write could then lose the new bound. */
static inline void cell_backlog_set(struct cell *c)
{
    ck_pr_or_32(&c->bounded, CELL_BACKLOG);
}

static inline void cell_backlog_clear(struct cell *c)
{
    ck_pr_and_32(&c->bounded, ~CELL_BACKLOG);
}

static inline struct casty_msg *stub_of(struct cell *c)
{
    return (struct casty_msg *)(void *)&c->stub;
}

static inline struct casty_msg *untag(struct casty_msg *m)
{
    return (struct casty_msg *)((uintptr_t)m & ~IDLE_BIT);
}

/* Initialise an empty, idle mailbox. Not concurrent. */
static inline void mbox_init(struct cell *c)
{
    c->stub.next = NULL;
    c->head = stub_of(c);
    c->tail = (struct casty_msg *)((uintptr_t)stub_of(c) | IDLE_BIT);
    c->sysq = NULL;
}

/* c's links: bit 0 of a `next` in the user queue says that the element it
 * points to is a block (set by the sender that pushes the block), and a
 * link of exactly that bit (BLK_CURSOR_MARK) is a block's cursor, the
 * mailbox's head while the block has slots to read ("Blocks", above). So
 * the consumer's pop of a node tests one bit of the link it loads anyway,
 * and the head is always a plain pointer. */
#define LINK_BLOCK ((uintptr_t)1)
#define BLK_CURSOR_MARK ((struct casty_msg *)LINK_BLOCK)

static inline bool link_is_marked(const struct casty_msg *link)
{
    return ((uintptr_t)link & LINK_BLOCK) != 0;
}

static inline struct casty_msg *link_target(struct casty_msg *link)
{
    return (struct casty_msg *)((uintptr_t)link & ~LINK_BLOCK);
}

static inline struct casty_msg *blk_cursor(struct msg_block *b)
{
    return (struct casty_msg *)(void *)&b->cursor;
}

static inline struct msg_block *blk_of_cursor(struct casty_msg *cursor)
{
    return (struct msg_block *)(void *)((char *)cursor - offsetof(struct msg_block, cursor));
}

/* The consumer enters block b: its cursor (the last line, which only the
 * consumer writes; the sender that pushed the block never touches it)
 * becomes the head. */
static inline void blk_enter(struct cell *c, struct msg_block *b)
{
    b->cursor.next = BLK_CURSOR_MARK;
    b->consumed = 0;
    b->seen = 0;
    struct casty_msg *v = blk_view(b);
    v->next = NULL;
    v->gen = b->gen; /* (written before the push that linked b) */
    v->owner = POOL_SLOT_OWNER;
    v->kind = MSG_USER;
    /* (Set once: casty__msg_take's MSG_NO_DROP changes nothing for a
     * slot's type, which has no drop.) */
    v->flags = MSG_VALUE_INLINE | MSG_IN_SLOT;
    c->head = blk_cursor(b);
}

static inline struct msg_block *blk_of_view(struct casty_msg *view)
{
    return (struct msg_block *)(void *)((char *)view - offsetof(struct msg_block, view));
}

/* Slot i of block b, handed out as the block's view (a tiny node). */
static inline struct casty_msg *blk_view_of(struct msg_block *b, uint32_t i)
{
    struct casty_msg *v = blk_view(b);
    v->type = b->slots[i].type;
    v->data = (void *)(uintptr_t)b->slots[i].value;
    return v;
}

/* Appends m, linking it as `link` (m itself, or m | LINK_BLOCK for a
 * block). Returns true when the caller made the actor runnable and must
 * schedule it. Any thread. */
static inline bool mbox_push_link(struct cell *c, struct casty_msg *m, struct casty_msg *link)
{
    store_relaxed(&m->next, (struct casty_msg *)NULL);
    /* Full barrier (lock xchg). Orders m's contents before m becomes the
     * tail; pairs with the consumer's CAS in mbox_try_idle. */
    struct casty_msg *prev = exchange_seqcst(&c->tail, m);
    bool was_idle = ((uintptr_t)prev & IDLE_BIT) != 0;
    /* Release: publishes m (and its payload) to the consumer's acquire load
     * of prev->next in mbox_pop. */
    store_release(&untag(prev)->next, link);
    return was_idle;
}

static inline bool mbox_push(struct cell *c, struct casty_msg *m)
{
    return mbox_push_link(c, m, m);
}

/* casty__msg_release's common case, inline: a value without a drop in a
 * node of the releasing worker's own pool goes straight back on its free
 * list (what casty__msg_release would do, without the call). Without a
 * worker (a thread outside the pool holding c's schedule: casty_ask's held
 * promise), casty__msg_release_outside, which gives large nodes back. */
static inline void mbox_release(const struct cell *c, struct worker *w, struct casty_msg *m)
{
    if (w == NULL) {
        casty__msg_release_outside(c->sys, m);
        return;
    }
    uint32_t owner = m->owner;
    if ((owner & ~(POOL_OWNER_LARGE | POOL_OWNER_TINY)) == w->index &&
        !(m->flags & MSG_DATA_HEAP) &&
        (m->kind != MSG_USER || m->type == NULL || m->type->drop == NULL)) {
        /* (A free node's flags and data are set again when it is taken.) */
        uint32_t cls = POOL_OWNER_CLASS(owner);
        m->next = w->pool.free[cls];
        w->pool.free[cls] = m;
        return;
    }
    casty__msg_release(w, m);
}

/* blk_take once the slots last seen are consumed: reads the published
 * state (and closes the block when asked to and nothing more came). */
static __attribute__((noinline)) struct casty_msg *blk_take_slow(struct msg_block *b, bool close)
{
    uint32_t i = b->consumed;
    /* Acquire: pairs with the publishing CAS in casty_tell. */
    uint32_t st = load_acquire(&b->state);
    for (;;) {
        b->seen = st & ~BLK_CLOSED;
        if (i < b->seen) {
            b->consumed = i + 1;
            return blk_view_of(b, i);
        }
        /* (A full block needs no close: no sender's CAS can publish past
         * BLK_SLOTS.) */
        if ((st & BLK_CLOSED) || !close || st == BLK_SLOTS)
            return NULL;
        /* Full barrier; on failure st is the published state. */
        if (ck_pr_cas_32_value(&b->state, st, st | BLK_CLOSED, &st))
            return NULL;
    }
}

/* Hands out slot i of block b, the next one (published, i < b->seen). */
static inline struct casty_msg *blk_hand_out(struct msg_block *b, uint32_t i)
{
    b->consumed = i + 1;
    return blk_view_of(b, i);
}

/* Before handing out slot i, an eighth (i & 7 == 0, two lines): the two
 * lines after the next two; and the element after this block, once
 * linked: its first line and, if it is a block, its first slots' lines
 * and its consumer's line. */
static inline void blk_prefetch_ahead(struct msg_block *b, uint32_t i)
{
    if (i + 12 < BLK_SLOTS)
        __builtin_prefetch(&b->slots[i + 12]);
    if (i + 16 < BLK_SLOTS)
        __builtin_prefetch(&b->slots[i + 16]);
    struct casty_msg *nx = link_target(load_relaxed(&blk_node(b)->next));
    if (nx != NULL) {
        __builtin_prefetch(nx);
        __builtin_prefetch((const char *)nx + BLK_BYTES - 32);
        __builtin_prefetch((const char *)nx + 64);
        __builtin_prefetch((const char *)nx + 128);
        __builtin_prefetch((const char *)nx + 192);
    }
}

/* The next published slot of block b, or NULL when it has none left; with
 * `close` (the consumer is about to move past it), the block is then also
 * closed, so that a sender that has not published by then pushes instead. */
static inline struct casty_msg *blk_take(struct msg_block *b, bool close)
{
    uint32_t i = b->consumed;
    if (i < b->seen) {
        if ((i & 7) == 0)
            blk_prefetch_ahead(b, i);
        return blk_hand_out(b, i);
    }
    return blk_take_slow(b, close);
}

/* mbox_pop with block b at the head (its cursor): its next published slot,
 * else the element after it once linked. */
static struct casty_msg *mbox_pop_block(struct cell *c, struct worker *w, struct msg_block *b)
{
    for (;;) {
        struct casty_msg *s = blk_take(b, false);
        if (s != NULL)
            return s;
        /* Acquire: pairs with the release store in mbox_push_link. */
        struct casty_msg *next = load_acquire(&blk_node(b)->next);
        /* Moving past it, or caught up with it: closed first, and a slot
         * published meanwhile taken first. */
        s = blk_take(b, true);
        if (s != NULL)
            return s;
        if (next == NULL) {
            /* Caught up: the block, closed with every slot consumed, is
             * from now on a consumed node like any other (the head, its
             * `next` the link to what comes after), so mbox_try_idle has
             * no block to look for after a pop that found nothing. And
             * the backlog is gone: the hint is cleared here rather than
             * at every idle (a stale hint costs one block, whose end
             * clears it). */
            c->head = blk_node(b);
            if (load_relaxed(&c->bounded) & CELL_BACKLOG)
                cell_backlog_clear(c);
            return NULL;
        }
        mbox_release(c, w, blk_node(b));
        if (!link_is_marked(next)) {
            c->head = next;
            return next;
        }
        b = (struct msg_block *)(void *)link_target(next);
        blk_enter(c, b);
    }
}

/* mbox_pop when the link it loaded is marked: the head is a block's cursor
 * (its slots still to read), or the element linked after the head is a
 * block. Out of line: a node's pop, inline in the run loop, then keeps its
 * registers. */
static __attribute__((noinline)) struct casty_msg *mbox_pop_marked(struct cell *c, struct worker *w,
                                                                  struct casty_msg *head,
                                                                  struct casty_msg *next)
{
    struct msg_block *b;
    if (next == BLK_CURSOR_MARK) {
        b = blk_of_cursor(head);
    } else {
        if (head != stub_of(c))
            mbox_release(c, w, head);
        b = (struct msg_block *)(void *)link_target(next);
        blk_enter(c, b);
    }
    return mbox_pop_block(c, w, b);
}

/* Takes the next message (a node, or a slot of a block), or NULL when none
 * is visible yet. The node returned (or the block of the slot) stays owned
 * by the queue as its head until the consumer moves past it or
 * mbox_try_idle releases it through `release`. Consumer only. */
static inline struct casty_msg *mbox_pop(struct cell *c, struct worker *w)
{
    struct casty_msg *head = c->head;
    /* Acquire: pairs with the release store in mbox_push_link. */
    struct casty_msg *next = load_acquire(&head->next);
    if (next == NULL)
        return NULL;
    if (__builtin_expect(link_is_marked(next), 0)) {
        if (next == BLK_CURSOR_MARK) {
            /* A block's next slot, when it is not one whose turn it is to
             * look for the element after the block (blk_take). */
            struct msg_block *b = blk_of_cursor(head);
            uint32_t i = b->consumed;
            if (i < b->seen && (i & 7) != 0)
                return blk_hand_out(b, i);
        }
        return mbox_pop_marked(c, w, head, next);
    }
    if (head != stub_of(c))
        mbox_release(c, w, head);
    c->head = next;
    return next;
}

/* Tries to mark the actor idle. Returns true on success (the caller no
 * longer holds the schedule), false when a message is arriving (the caller
 * still holds it). Consumer only. */
static inline __attribute__((always_inline)) bool mbox_try_idle(struct cell *c,
                                                               struct worker *w)
{
    struct casty_msg *head = c->head;
    struct casty_msg *stub = stub_of(c);
    /* (A block's cursor at the head has a link too, BLK_CURSOR_MARK: a
     * block with slots to read is not empty. Every run tries this only
     * after a pop that found nothing, which leaves no cursor; a thread
     * holding a promise (casty__held_release) may let it go after a slot:
     * then the actor keeps its schedule, and the run it gets catches up.) */
    if (load_acquire(&head->next) != NULL)
        return false;
    void *idle = (void *)((uintptr_t)stub | IDLE_BIT);
    /* Full barrier (each CAS below); pairs with the producers' swap in
     * mbox_push and the claim CAS in mbox_claim. */
    if (head == stub)
        return ck_pr_cas_ptr(&c->tail, stub, idle);
    /* The stub is not in the chain (it was consumed earlier), so no
     * producer can be linking to it: safe to reset. `head` must point at
     * it before the CAS: once the actor is idle, the next worker to run it
     * may read `head` at once. */
    store_relaxed(&c->stub.next, (struct casty_msg *)NULL);
    c->head = stub;
    if (!ck_pr_cas_ptr(&c->tail, head, idle)) {
        c->head = head; /* still ours: a message is arriving */
        return false;
    }
    /* No producer can reach `head` any more (the tail moved past it). */
    mbox_release(c, w, head);
    return true;
}

/* Clears the idle bit if set. Returns true when this caller took the
 * schedule and must run/schedule the actor. Any thread. */
static inline bool mbox_claim(struct cell *c)
{
    struct casty_msg *t = load_seqcst(&c->tail);
    while ((uintptr_t)t & IDLE_BIT) {
        /* Full barrier; the same word the producers swap. */
        if (ck_pr_cas_ptr_value(&c->tail, t, untag(t), &t))
            return true;
    }
    return false;
}

/* Pushes a system message; returns true when the caller must schedule the
 * actor. Any thread. */
static inline bool mbox_push_sys(struct cell *c, struct casty_msg *m)
{
    struct casty_msg *top = load_relaxed(&c->sysq);
    do {
        store_relaxed(&m->next, top);
        /* Full barrier: publishes m to the consumer's exchange in
         * mbox_take_sys, and orders the push before the claim below. */
    } while (!ck_pr_cas_ptr_value(&c->sysq, top, m, &top));
    return mbox_claim(c);
}

/* True when system messages are waiting (sequentially consistent: the
 * consumer's half of the Dekker pair with mbox_push_sys). */
static inline bool mbox_has_sys(struct cell *c)
{
    return load_seqcst(&c->sysq) != NULL;
}

/* Lets the schedule go as a run ends: false when the actor is idle now;
 * true when the caller still holds the schedule (a message or a system
 * message is waiting, or arrived meanwhile) and must queue the actor again.
 * A system message pushed just before the actor went idle may have found it
 * still scheduled: the schedule is then taken back for it. Consumer only.
 * (Always inline: every run ends here; GCC kept a plain inline copy out of
 * line, 15 more instructions a message in pingpong.) */
static inline __attribute__((always_inline)) bool mbox_keep_schedule(struct cell *c,
                                                                  struct worker *w)
{
    if (mbox_has_sys(c) || !mbox_try_idle(c, w))
        return true;
    return mbox_has_sys(c) && mbox_claim(c);
}

/* Takes all waiting system messages, oldest first. Consumer only. */
static inline struct casty_msg *mbox_take_sys(struct cell *c)
{
    if (load_relaxed(&c->sysq) == NULL)
        return NULL;
    /* Full barrier: acquires the pushes' contents. */
    struct casty_msg *m = exchange_seqcst(&c->sysq, NULL);
    struct casty_msg *fifo = NULL;
    while (m) {
        struct casty_msg *next = m->next;
        m->next = fifo;
        fifo = m;
        m = next;
    }
    return fifo;
}

#endif
