/* Internal (not installed). The runtime's shared data structures: message
 * nodes, actor cells, behaviors, workers and the system object, plus the
 * internal functions that cross file boundaries (casty__ prefix).
 *
 * Ownership and threads, in one place:
 * - A cell's producer side (tail, sysq) is written by any thread with
 *   atomics; its consumer side (head, behavior, gen, status) belongs to the
 *   one worker currently running the actor (the scheduled bit, see
 *   mailbox.h, guarantees there is one).
 * - Cells are type-stable: they live in chunks that are freed only when the
 *   system is destroyed, so a stale ref can always be looked up safely; the
 *   generation in each message decides whether it still reaches the actor.
 * - Message nodes come from per-worker pools, or for any other sending
 *   thread from its cache in the system (pool.c); values too large for
 *   either are in heap nodes. */
#ifndef CASTY_INTERNAL_H
#define CASTY_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "casty.h"
#include "slab.h"

#define CACHE_LINE 64

/* ---- message nodes ------------------------------------------------------- */

enum msg_kind {
    MSG_USER = 0,
    MSG_TIMER,                /* a per-actor timer's message: payload struct timer_hdr + value */
    MSG_SYS_START,            /* struct sys_start */
    MSG_SYS_STOP,             /* struct sys_stop */
    MSG_SYS_WATCH,            /* struct sys_watch */
    MSG_SYS_UNWATCH,          /* struct sys_watch */
    MSG_SYS_CHILD_TERMINATED, /* struct sys_children */
    MSG_SYS_CHILD_FAILED,     /* struct sys_child_failed */
    MSG_BLOCK,                /* a block of slots (struct msg_block), linked in place of a node */
};

/* Kinds whose value a handler sees. */
#define MSG_IS_USER(kind) ((kind) <= MSG_TIMER)

enum msg_flag {
    MSG_DATA_HEAP = 1, /* data was malloc'd separately (tell_move): free it after drop */
    MSG_NO_DROP = 2,   /* ownership of the value moved elsewhere: skip drop */
    MSG_COUNTED = 4,   /* counted in a bounded mailbox's ext->count */
    MSG_VALUE_INLINE = 8, /* a tiny node: the value (MSG_TINY_MAX bytes at most) is
                           * stored in the `data` field itself */
    MSG_IN_SLOT = 16,     /* a block's view: a slot handed out (mailbox.h, "Blocks") */
};

/* A node's owner: the index of the worker whose pool it came from (a
 * system has at most 1024 workers), with POOL_OWNER_LARGE set for a node of
 * the pool's large class; POOL_EXT_OWNER for a node of a non-worker
 * sender's cache (pool.c; its slab says which), or POOL_HEAP_OWNER for a
 * node malloc'd on its own (both special values are tested first: they
 * have the class bit set too). The two class bits shifted down are the
 * node's class (POOL_OWNER_CLASS: 0 small, 1 large, 2 tiny). */
#define POOL_OWNER_LARGE 0x2000u
#define POOL_OWNER_TINY 0x4000u
#define POOL_OWNER_CLASS(owner) (((owner) >> 13) & 3u)
#define POOL_EXT_OWNER 0xfffeu
#define POOL_BLOCK_OWNER 0xfffdu /* a block's own node (struct msg_block) */
#define POOL_SLOT_OWNER 0xfffcu  /* a slot of a block: never released by itself */
#define POOL_HEAP_OWNER 0xffffu

struct casty_msg {
    struct casty_msg *next; /* mailbox / pool link; first member (see struct msg_link) */
    const casty_type_t *type;
    void *data;   /* the value: points at payload[] or at a heap block */
    uint32_t gen; /* generation of the target actor (stale check) */
    uint16_t owner; /* owning worker's pool, POOL_EXT_OWNER or POOL_HEAP_OWNER */
    uint8_t kind;
    uint8_t flags;
    alignas(16) unsigned char payload[];
};

/* Worker pools hand out nodes of two sizes: small ones for values of up to
 * MSG_SMALL_MAX bytes (most messages are a few words; a backlog of them
 * then takes half the memory, and half the page faults to grow it), large
 * ones for values of up to MSG_INLINE_MAX bytes. */
#define MSG_NODE_SMALL 64
#define MSG_NODE_SIZE 128
#define MSG_SMALL_MAX (MSG_NODE_SMALL - offsetof(struct casty_msg, payload))
#define MSG_INLINE_MAX (MSG_NODE_SIZE - offsetof(struct casty_msg, payload))
/* Values of up to MSG_TINY_MAX bytes sent by a worker (integers, pointers,
 * signals) take a 32-byte node: the header alone, the value in place of
 * the `data` pointer (MSG_VALUE_INLINE; its alignment is at most 8). */
#define MSG_NODE_TINY 32
#define MSG_TINY_MAX 8
#define POOL_CLASSES 3 /* 0: small, 1: large, 2: tiny */

/* Where a message's value is. */
static inline void *msg_value(const struct casty_msg *m)
{
    return (m->flags & MSG_VALUE_INLINE) ? (void *)(uintptr_t)&m->data : m->data;
}

/* The stub of a mailbox only ever uses `next`. */
struct msg_link {
    struct casty_msg *next;
};

/* A block: a node linked into a mailbox like any other (kind MSG_BLOCK),
 * followed by BLK_SLOTS slots of 16 bytes, a message's type and its value
 * (MSG_TINY_MAX bytes at most), four to a cache line. Every slot of a
 * block is for the same incarnation (`gen`). Only the worker whose region
 * it lies in appends to it (while it is the mailbox's tail), by a CAS on
 * `state`; the consumer reads the published slots in order, handing each
 * out as `view`, a tiny node of its own line, and closes the block
 * (BLK_CLOSED) before it moves past it or when it has caught up with it
 * (mailbox.h, "Blocks"). 1 KiB: 56 slots, ~18 bytes a message when full (a
 * tiny node is 32). */
#define BLK_BYTES 1024u
#define BLK_SLOTS 56u
#define BLK_CLOSED 0x80000000u
#define BLK_REGION ((size_t)1 << 28) /* address space per worker for its blocks */
struct blk_slot {
    const casty_type_t *type;
    uint64_t value; /* the value's bytes, as in a tiny node's `data` */
};
struct msg_block {
    unsigned char node[32];   /* struct casty_msg, kind MSG_BLOCK */
    uint32_t state;           /* atomic: published slots, | BLK_CLOSED */
    uint32_t gen;             /* every slot's incarnation, set before the push */
    struct worker *owner;
    struct msg_block *free_next;
    uint64_t pad;
    struct blk_slot slots[BLK_SLOTS];
    /* consumer only, on the last line (away from `state`, which the
     * sender CASes per slot). `cursor`: the mailbox's head while the block
     * has slots to read, a link whose value is BLK_CURSOR_MARK (mailbox.h);
     * viewed as a struct casty_msg, so aligned as one. `view`: the slot
     * handed out, as a tiny node (a struct casty_msg). */
    alignas(alignof(struct casty_msg)) struct msg_link cursor;
    uint32_t consumed; /* slots handed out */
    uint32_t seen;     /* published slots last read from `state` */
    alignas(alignof(struct casty_msg)) unsigned char view[32];
    unsigned char pad2[BLK_BYTES - 64 - BLK_SLOTS * 16 - 48];
};
static inline struct casty_msg *blk_node(struct msg_block *b)
{
    return (struct casty_msg *)(void *)b->node;
}
static inline struct casty_msg *blk_view(struct msg_block *b)
{
    return (struct casty_msg *)(void *)b->view;
}

struct sys_start {
    struct casty_behavior *behavior;
    uint32_t gen;
    bool quiet; /* publishes no ActorStarted / ActorStopped (cell.quiet) */
};

struct sys_stop {
    uint32_t gen; /* 0 = whatever incarnation is alive (shutdown) */
};

struct sys_watch {
    uint32_t gen; /* the watched incarnation */
    casty_ref_t watcher;
};

/* A stopped child, as its worker reports it: its slot and, for an
 * anonymous child, its index in the parent's table (ANON_NAMED for a named
 * one), so that the parent unlinks it without touching its cell. */
struct sys_child {
    uint32_t slot, anon_index;
};
#define ANON_NAMED UINT32_MAX

/* Children of one parent that stopped on one worker: a worker reports them
 * to the parent up to CHILD_BATCH to a system message (actor.c); the
 * struct fills a large node's value. */
#define CHILD_BATCH 11
#define CHILD_BATCH_RUNS 64 /* actor runs a worker holds a batch at most */
struct sys_children {
    uint32_t count, unused_;
    struct sys_child child[CHILD_BATCH];
};

struct sys_child_failed {
    uint32_t slot, gen;
    int code;
    char reason[]; /* NUL-terminated */
};

struct timer_hdr {
    uint64_t token; /* matched against the actor's live timers */
    uint64_t pad_;  /* keeps the value 16-byte aligned */
};

/* ---- behaviors ------------------------------------------------------------ */

enum behavior_kind {
    BEH_RECEIVE = 1,
    BEH_SETUP,
    BEH_SAME,
    BEH_STOPPED,
    BEH_UNHANDLED,
    BEH_RESTART,
    BEH_FAILED,
    BEH_SUPERVISE, /* data: struct wrapped_strategy */
    BEH_LIFECYCLE, /* data: struct wrapped_lifecycle */
    BEH_PERSIST,   /* an event-sourced command's effect (persist/eventsourced.c) */
};

struct casty_behavior {
    uint8_t kind;
    uint8_t is_static;
    uint8_t pooled; /* 0, or 1 + the size class of a block of behavior.c's per-thread cache */
    uint32_t size; /* bytes in data[] */
    union {
        casty_receive_fn receive;
        casty_setup_fn setup;
    } fn;
    void (*drop)(void *data);
    /* What the handler is given: data when size > 0, else NULL. Set where
     * a behavior is made or copied (behavior.c), so that a message's
     * delivery loads it instead of testing the size (in the header's
     * padding: no byte more). */
    void *state;
    /* State or argument bytes; for BEH_FAILED a struct failure. 32-byte
     * header, so a small state fits a 48-byte allocation. */
    alignas(16) unsigned char data[];
};
static_assert(offsetof(struct casty_behavior, data) == 32, "a behavior's header is 32 bytes");

struct failure {
    int code;
    char reason[]; /* NUL-terminated, possibly empty */
};

struct wrapped_strategy {
    casty_strategy_t strategy;
    struct casty_behavior *inner;
};

struct wrapped_lifecycle {
    casty_lifecycle_t hooks;
    struct casty_behavior *inner;
};

/* ---- actor cells ------------------------------------------------------------ */

enum cell_status {
    CELL_FREE = 0, /* never started, or stopped: messages become dead letters */
    CELL_ALIVE,
    CELL_STOPPING,   /* waiting for its children to stop; user messages wait */
    CELL_RESTARTING, /* likewise, then restarts */
};

struct ref_set {
    casty_ref_t *refs;
    uint32_t n, cap;
};

struct actor_timer {
    char key[64];
    uint64_t token;
    uint8_t periodic;
};

/* Rarely used per-actor data, allocated on first need and kept with the
 * cell (type-stable, freed with the system) so producers may read it. */
struct cell_ext {
    char *name; /* guarded by sys->names_lock */
    /* bounded mailbox: capacity/overflow set by the spawner before START
     * (relaxed atomics, read by producers); count/to_drop atomics */
    uint32_t capacity;
    uint32_t overflow;
    uint32_t count;
    uint32_t to_drop;
    /* consumer-owned */
    struct ref_set watchers; /* who watches this actor */
    struct ref_set watching; /* whom this actor watches */
    uint64_t *restarts;      /* restart times (ns), oldest first */
    uint32_t nrestarts, restarts_cap;
    struct actor_timer *timers;
    uint32_t ntimers, timers_cap;
    uint64_t timer_seq;
    /* anonymous children (system.c): anon[i] is a child's slot, or
     * ANON_FREE_BIT | the next free entry's index (ANON_NONE ends the
     * list); anon_len entries used so far */
    uint32_t *anon;
    uint32_t anon_cap, anon_len, anon_free;
};
#define ANON_FREE_BIT 0x80000000u /* (slots are below 2^28) */
#define ANON_NONE 0x7fffffffu

struct cell {
    /* Line 1, the producers' line: `tail` is swapped by every send; the
     * rest is read by senders and written rarely (spawn, stop, schedule).
     * Nothing the consumer writes or reads per message lives here: a
     * consumer write (or read) on this line would bounce it between the
     * sending and the running core once per message. The stub is the
     * exception that proves it: the consumer touches it only when the
     * mailbox runs empty, right before its CAS on `tail` makes the actor
     * idle (a write to this line anyway), and the sender that wakes the
     * actor links its message to the stub right after its swap of `tail`.
     * On the consumer's line, that link was a second line moved between
     * the cores per wake-up, on both sides (one actor feeding many on 16
     * cores wakes an actor per message). */
    alignas(CACHE_LINE) struct casty_msg *tail; /* bit 0: idle (empty and unscheduled) */
    struct cell_ext *ext;   /* atomic pointer, set once */
    /* viewed as a struct casty_msg, so aligned as one */
    alignas(alignof(struct casty_msg)) struct msg_link stub;
    struct casty_system *sys;
    struct cell *next_run;  /* injection queue link */
    uint32_t slot;
    uint32_t live_gen;   /* atomic: gen while started and not stopped, else 0 */
    uint32_t alloc_gen;  /* owned by whoever holds the free slot */
    uint32_t bounded;    /* atomic: CELL_BOUNDED (ext->capacity != 0), CELL_BACKLOG */
    uint32_t parent_slot, parent_gen; /* 0 for top-level; atomic (read by shutdown) */
    /* Line 2, the consumer's line: owned by the worker running the actor
     * (sysq is pushed to by senders of system messages, which are rare). */
    alignas(CACHE_LINE) struct casty_msg *head; /* last consumed node, or the stub */
    struct casty_msg *sysq;                     /* LIFO stack of system messages */
    struct casty_behavior *behavior;            /* current */
    struct casty_behavior *initial;             /* template for restart */
    uint32_t gen;        /* consumer-owned: the incarnation running */
    /* children, changed only by the parent's worker. Named children: an
     * intrusive list through the child cells (first_child, sib_next,
     * sib_prev), under sys->names_lock, because lookups walk them.
     * Anonymous ones: a table in the parent's cell_ext (anon_live of them),
     * without the lock: nothing else reads it. */
    uint32_t first_child, sib_next, sib_prev;
    uint32_t anon_live;  /* anonymous children linked */
    uint32_t suspended;  /* atomic: 1 while waiting for children, unscheduled */
    uint32_t anon_index; /* an anonymous child's entry in its parent's table */
    uint8_t status;
    uint8_t anon_child;  /* in its parent's anonymous table (set by the parent's worker) */
    /* The runtime's own short-lived actor (casty_ask's promise): its start
     * and stop publish no ActorStarted / ActorStopped. Set at each start. */
    uint8_t quiet;
};

/* cell.bounded's bits. CELL_BACKLOG: a run of the actor ended with its
 * budget spent (a backlog, most likely), and no block has been caught up
 * with since; set and cleared by its consumer (mailbox.h,
 * cell_backlog_set). Senders on other workers then put small messages
 * into blocks (mailbox.h, "Blocks"). */
#define CELL_BOUNDED 1u
#define CELL_BACKLOG 2u

static_assert(offsetof(struct cell, head) == CACHE_LINE && sizeof(struct cell) == 2 * CACHE_LINE,
              "a cell is a producers' line and a consumer's line");

/* Cells live in chunks of CELL_CHUNK, found through a fixed directory. */
#define CELL_CHUNK_BITS 12
#define CELL_CHUNK (1u << CELL_CHUNK_BITS)
#define CELL_DIR_SIZE 65536u /* up to 2^28 cells */

/* ---- workers ------------------------------------------------------------- */

#define SLOT_CACHE 64u /* free cells a worker keeps for its own spawns */
#define STREAM_SLOTS 256u /* a worker's table of cells it streams to (actor.c, casty_tell) */
#define WAKE_BATCH 64u /* actors displaced from the LIFO slot a worker publishes at once (sched.c) */
#define RING_SIZE 256u
#define RING_MASK (RING_SIZE - 1)

struct pool_outbox {
    struct casty_msg *head, *tail;
    uint32_t count;
};

struct pool_ext_set;     /* pool.c: the system's caches for non-worker senders */
struct pool_ext_pending; /* pool.c: external nodes released, not yet given back */

struct pool_ext;         /* pool.c: a cache of small nodes in bitmap slabs */

struct pool {
    /* owner only: nodes the owner itself released, by class (0: small) */
    struct casty_msg *free[POOL_CLASSES];
    struct pool_ext *own;      /* owner only: where its small nodes come from */
    struct pool_ext *own_tiny; /* owner only: and its tiny ones */
    struct casty_msg *remote; /* large nodes pushed by other workers, taken whole by the owner */
    struct pool_outbox *outbox; /* per owner worker: its large nodes released here */
    struct pool_ext_pending *ext_pending; /* owner only: a small table by slab */
    struct pool_ext_set *ext; /* the same set in every worker's pool; worker 0's frees it */
    struct slab_arena arena; /* owner only: the slabs of its large nodes */
};

struct worker {
    /* shared with thieves */
    /* CAS by owner and thieves: index in the low 32 bits, a stamp bumped by
     * every change in the high 32 (the owner also moves the head backwards,
     * so an index alone could repeat with other contents: ABA). */
    alignas(CACHE_LINE) uint64_t ring_head;
    alignas(CACHE_LINE) uint32_t ring_tail; /* stored by owner only */
    struct cell *ring[RING_SIZE];
    alignas(CACHE_LINE) uint32_t wake_word; /* futex: 1 = woken */
    /* owner only */
    alignas(CACHE_LINE) struct cell *lifo;
    uint32_t lifo_streak;
    uint32_t tick; /* runs until the injection queue's turn (sched.c) */
    bool overflowed; /* the overflow list spilled into the injection queue during this run */
    struct cell *over_head, *over_tail; /* behind a full ring, linked through next_run */
    uint32_t over_len;
    uint32_t over_run; /* actors added to the overflow list during this run */
    int64_t live;      /* atomic: written by the owner, summed by others (sys->live) */
    uint64_t spawned;  /* atomic: written by the owner only (a plain add), summed by others */
    struct cell *held;     /* a child started here whose schedule this worker holds (actor.c) */
    bool after_run;        /* held, ended or woken may need work after a run (worker_main) */
    uint32_t nwoken;       /* actors displaced from the LIFO slot, not yet in the ring */
    struct cell *woken[WAKE_BATCH];
    uint32_t ended_parent; /* slot of the parent `ended` is for (actor.c) */
    uint32_t ended_runs;   /* actor runs since `ended` got its first child */
    struct sys_children ended; /* stopped children not yet reported */
    uint32_t nslots;   /* free cells cached by this worker (cells.c) */
    uint32_t slots[SLOT_CACHE];
    uint64_t rng;
    uint32_t index;
    struct casty_system *sys;
    struct pool pool;
    pthread_t thread;
    /* mailbox blocks (pool.c): owner only, then the stack others release to */
    unsigned char *blk_base, *blk_next, *blk_end;
    struct msg_block *blk_free;
    /* The cells this worker last found with a message at the tail, by the
     * low bits of their slot (actor.c, casty_tell): a second such send to
     * the same cell, with none to another cell of those bits in between,
     * starts a block. Owner only; a hint (a stale entry costs a block). */
    struct cell *streams[STREAM_SLOTS];
    /* Values smaller than this may take a block (actor.c, casty_tell):
     * MSG_TINY_MAX + 1 with more than one worker, else 0 (none; one
     * comparison tells both, where two cost every send). */
    size_t blk_size_limit;
    /* The block this worker last started for each receiver, by the low
     * bits of its slot (actor.c, casty_tell): the receiver's ref and cell
     * and the block. Owner only; a hint, taken only while the block is
     * still the cell's tail, when it is what the cell's lookup and its
     * tail would have led to. */
    struct blk_hint {
        uint64_t actor;
        struct cell *cell;
        struct msg_block *block;
        uint64_t pad; /* (32 bytes: an index is a shift) */
    } blk_hints[STREAM_SLOTS];
    alignas(CACHE_LINE) struct msg_block *blk_remote;
};

/* ---- the system ------------------------------------------------------------ */

enum system_state { SYS_RUNNING = 0, SYS_STOPPING, SYS_STOPPED };

struct subscription {
    const casty_type_t *type;
    casty_event_fn fn;
    void *arg;
    casty_ref_t actor; /* when fn == NULL */
};

struct name_entry {
    char *name; /* NULL = empty; TOMBSTONE = deleted */
    uint32_t slot;
};

struct casty_system {
    uint64_t node;
    char name[64];
    uint32_t nworkers;
    uint32_t throughput;
    uint32_t registry_index;
    uint32_t state; /* enum system_state; atomic */
    struct worker *workers;
    uint32_t exit; /* workers leave their loop; atomic */
    const struct casty_config *config; /* casty.toml settings (not owned), or NULL */
    struct casty_reactor *reactor; /* reactor.c: the io_uring thread */
    struct casty_timers *timers;   /* timers.c: keyed timers on the reactor */
    struct casty_remote *remote;   /* net/remote.c: the TCP transport, or NULL */

    /* slot table */
    struct cell **dir;         /* CELL_DIR_SIZE chunk pointers, published with release */
    uint32_t nchunks;          /* atomic; chunks allocated */
    /* (A line of their own: the lock's writes would otherwise take the
     * line of the fields above, which every send reads, from the cores
     * that send.) */
    alignas(CACHE_LINE) pthread_mutex_t free_lock; /* the free-slot stack and growing (cells.c) */
    uint32_t nfree;            /* free slots on the stack (free_lock) */
    uint32_t **free_slots;     /* CELL_DIR_SIZE arrays of CELL_CHUNK free slots */

    /* injection queue (sends from non-worker threads, spawning fan-outs): an
     * intrusive MPSC queue through cell.next_run (sched.c). Producers
     * exchange the tail without a lock; takers hold inject_lock. */
    alignas(CACHE_LINE) struct cell *inject_tail; /* atomic */
    uint32_t inject_len;                          /* atomic: queued or being queued */
    alignas(CACHE_LINE) pthread_mutex_t inject_lock;
    struct cell *inject_head; /* under inject_lock */
    struct cell inject_stub;  /* only its next_run is used */

    /* parking */
    alignas(CACHE_LINE) uint32_t nparked;   /* atomic */
    uint32_t nsearching;                    /* atomic */
    pthread_mutex_t idle_lock;
    uint32_t *idle;                         /* stack of parked worker indexes */
    uint32_t nidle;

    /* names of top-level actors */
    pthread_mutex_t names_lock;
    struct name_entry *names;
    uint32_t names_cap, names_used;

    /* event stream */
    pthread_rwlock_t events_lock;
    struct subscription *subs;
    uint32_t nsubs, subs_cap;
    uint32_t nsubs_atomic; /* fast "anyone listening?" check */

    /* lifecycle and stats (atomics). live and spawned count here what
     * threads outside the pool do; each worker counts its own in struct
     * worker (casty__live_count sums them), so that spawning and stopping on
     * many cores share no line. live can go below zero in one place (an
     * actor spawned on one worker and stopped on another): only the sum is
     * a count. */
    alignas(CACHE_LINE) int64_t live;
    uint64_t spawned;
    uint64_t dead_letters;
    uint64_t unhandled;
    pthread_mutex_t live_lock;
    pthread_cond_t live_cond;
};

struct casty_ctx {
    struct cell *cell;
    struct worker *worker;
    struct casty_system *sys;
};

/* ---- internal functions ------------------------------------------------------ */

/* The worker the calling thread is, or NULL for non-worker threads. */
extern _Thread_local struct worker *casty__tls_worker;
/* The system a non-worker thread is asking through (casty_ask sets it while
 * make_request runs), so its sends to other nodes use that system's
 * connections; NULL otherwise. */
extern _Thread_local struct casty_system *casty__tls_asking;

static inline casty_ref_t casty__cell_ref(const struct casty_system *sys, uint32_t slot,
                                          uint32_t gen)
{
    return (casty_ref_t){sys->node, ((uint64_t)gen << 32) | slot};
}

/* pool.c */
struct casty_msg *casty__msg_alloc_tiny_slow(struct worker *w);
struct casty_msg *casty__msg_alloc_slow(struct casty_system *sys, struct worker *w, size_t size);

/* The first node of w's free list of class `cls` (0 small, 2 tiny), taken;
 * NULL when the list is empty. Owner only. */
static inline struct casty_msg *casty__pool_pop(struct worker *w, uint32_t cls)
{
    struct casty_msg *m = w->pool.free[cls];
    if (m != NULL)
        w->pool.free[cls] = m->next;
    return m;
}

/* A node for a value of `size` bytes (a user value, or a system message's
 * payload), or NULL when out of memory. `w` is the calling thread's worker
 * if it belongs to `sys`, else NULL. Inline for the common case, a small
 * node off the worker's own free list: every send takes one. */
static inline struct casty_msg *casty__msg_alloc(struct casty_system *sys, struct worker *w,
                                                 size_t size)
{
    struct casty_msg *m;
    if (w == NULL || size > MSG_SMALL_MAX || (m = casty__pool_pop(w, 0)) == NULL)
        return casty__msg_alloc_slow(sys, w, size);
    m->data = m->payload;
    m->flags = 0;
    m->kind = MSG_USER;
    return m;
}

/* A tiny node of worker w (MSG_VALUE_INLINE set: the value goes in place
 * of the data pointer), or NULL when out of memory. Inline likewise. */
static inline struct casty_msg *casty__msg_alloc_tiny(struct worker *w)
{
    struct casty_msg *m = casty__pool_pop(w, 2);
    if (m == NULL)
        return casty__msg_alloc_tiny_slow(w);
    m->flags = MSG_VALUE_INLINE;
    m->kind = MSG_USER;
    return m;
}
void casty__msg_release(struct worker *w, struct casty_msg *m);
void casty__msg_release_outside(struct casty_system *sys, struct casty_msg *m);
void casty__msg_drop_value(struct casty_msg *m);
int casty__pool_init(struct worker *w, uint32_t nworkers);
void casty__pool_flush(struct worker *w);
void casty__cells_flush(struct worker *w);
void casty__pool_destroy(struct worker *w);
struct msg_block *casty__blk_alloc(struct worker *w);
void casty__blk_release(struct msg_block *b);

/* cells.c */
/* The cell in `slot`, or NULL for slot 0 or a chunk never allocated. Any
 * thread. Inline: every send looks its target up. */
static inline struct cell *casty__cell_lookup(struct casty_system *sys, uint32_t slot)
{
    uint32_t chunk = slot >> CELL_CHUNK_BITS;
    if (slot == 0 || chunk >= CELL_DIR_SIZE)
        return NULL;
    /* Acquire: pairs with the release store that published the chunk. */
    struct cell *base = __atomic_load_n(&sys->dir[chunk], __ATOMIC_ACQUIRE);
    return base ? &base[slot & (CELL_CHUNK - 1)] : NULL;
}
int casty__cell_alloc(struct casty_system *sys, struct cell **out);
void casty__cell_free_slot(struct casty_system *sys, uint32_t slot);
void casty__cells_destroy(struct casty_system *sys);

/* sched.c */
void casty__inject_init(struct casty_system *sys);
int casty__sched_start(struct casty_system *sys);
void casty__sched_stop(struct casty_system *sys);
void casty__schedule(struct casty_system *sys, struct cell *c);
void casty__schedule_displaced(struct worker *w, struct cell *prev);
void casty__woken_publish(struct worker *w);
/* casty__schedule from w, a worker of c's system (known to the caller):
 * c takes w's LIFO slot; whoever held it goes to the ring. Inline: every
 * send that wakes an actor does this. */
static inline void casty__schedule_on(struct worker *w, struct cell *c)
{
    struct cell *prev = w->lifo;
    w->lifo = c;
    if (prev != NULL)
        casty__schedule_displaced(w, prev);
}
void casty__schedule_requeue(struct worker *w, struct cell *c);

/* actor.c */
_Static_assert(sizeof(struct sys_children) <= MSG_INLINE_MAX, "a batch fits a large node");
void casty__run_actor(struct worker *w, struct cell *c);
void casty__children_report(struct worker *w); /* sends w's batch of stopped children */
bool casty__start_spawned(struct worker *w, struct cell *c, struct casty_behavior *b,
                          uint32_t gen);
bool casty__start_spawned_outside(struct casty_system *sys, struct cell *c,
                                  struct casty_behavior *b, uint32_t gen, bool hold, bool quiet);
enum held_look { HELD_NOTHING, HELD_REPLY, HELD_SYSTEM };
void casty__held_release(struct casty_system *sys, struct cell *c);
void casty__held_adopt(struct casty_system *sys, struct cell *c, struct casty_behavior *b);
enum held_look casty__held_look(struct casty_system *sys, struct cell *c, struct casty_msg **reply);
void casty__held_finish(struct casty_system *sys, struct cell *c);
void casty__release_held(struct worker *w);
struct cell_ext *casty__cell_ext(struct cell *c);
int casty__deliver_timer(struct casty_system *sys, casty_ref_t to, const casty_type_t *type,
                         const void *value, uint64_t token);
int casty__deliver(struct casty_system *sys, casty_ref_t to, const casty_type_t *type,
                   const void *value, void *heap_value);
int casty__send_sys(struct casty_system *sys, uint32_t slot, uint8_t kind, const void *payload,
                    size_t size);
void casty__dead_letter(struct casty_system *sys, struct worker *w, struct casty_msg *m,
                        casty_ref_t intended);
void casty__note_dead_letter(struct casty_system *sys, const casty_type_t *type,
                             casty_ref_t intended);
void casty__note_unhandled(struct casty_system *sys, const casty_type_t *type,
                           casty_ref_t recipient);
struct casty_msg *casty__msg_take(struct casty_msg *m);

/* behavior.c */
extern struct casty_behavior casty__same_b; /* what casty_same() returns */
struct casty_behavior *casty__behavior_instantiate(struct casty_behavior *initial);
struct casty_behavior *casty__behavior_unwrap(struct casty_behavior *b);
const void *casty__behavior_find(const struct casty_behavior *b, uint8_t kind);
struct casty_behavior *casty__behavior_make(uint8_t kind, const void *data, size_t size,
                                            void (*drop)(void *data));
/* Behavior blocks' caches: a thread keeps up to BEH_CACHE_MAX blocks a size
 * class; beyond, it hands them BEH_BATCH at a time to a shared list of at
 * most BEH_SHARED_MAX a class, which a thread whose cache is empty takes. */
#define BEH_CACHE_MAX 1024
#define BEH_BATCH 256
#define BEH_SHARED_MAX 65536
uint32_t casty__behavior_shared_blocks(void); /* all classes; for tests */

/* events.c */
void casty__publish(struct casty_system *sys, const casty_type_t *type, const void *event);
void casty__events_destroy(struct casty_system *sys);

/* system.c */
struct casty_system *casty__system_acquire(uint64_t node, struct worker **w_out);
void casty__system_release(struct casty_system *sys);
void casty__actor_stopped(struct casty_system *sys);
int64_t casty__live_count(const struct casty_system *sys);
void casty__names_remove(struct casty_system *sys, struct cell *c);
int casty__child_link(struct casty_system *sys, struct cell *parent, struct cell *child,
                      bool anonymous);
void casty__child_unlink(struct casty_system *sys, struct cell *parent, struct cell *child);
void casty__child_unlink_reported(struct casty_system *sys, struct cell *parent,
                                  const struct sys_child *sc);
void casty__children_each(struct casty_system *sys, struct cell *parent,
                          void (*fn)(struct casty_system *sys, uint32_t slot, void *arg), void *arg);
int casty__spawn_in(struct casty_system *sys, struct cell *parent, casty_behavior_t *behavior,
                    const char *name, const casty_spawn_options_t *options, casty_ref_t *out);
/* A top-level actor of the runtime's own (ask promises, journal actors):
 * casty.toml settings never apply to it. */
int casty__spawn_internal(struct casty_system *sys, casty_behavior_t *behavior, const char *name,
                          casty_ref_t *out);
/* casty_ask's promise: casty__spawn_internal without a name, for an actor
 * whose start and stop publish no lifecycle events (cell.quiet). */
int casty__spawn_promise(struct casty_system *sys, casty_behavior_t *behavior, casty_ref_t *out);
/* casty__spawn_promise from a thread outside the pool, keeping the new
 * actor's schedule: *held is then its cell (the caller is its consumer
 * until casty__held_adopt or casty__held_finish). Returns CASTY__NOT_HELD,
 * with nothing spawned and the behavior freed, when the actor could not
 * start in place (a stale system message holds the cell's schedule, or
 * the system is stopping); a negative code on other failures. */
#define CASTY__NOT_HELD 1
int casty__spawn_held(struct casty_system *sys, casty_behavior_t *behavior, casty_ref_t *out,
                      struct cell **held);

#endif
