/* Behavior values: the factories of the public API, and the copy the
 * runtime makes of an initial behavior so that restart can start over from
 * fresh state; their memory. This file does not run behaviors (see
 * actor.c).
 *
 * Memory: a spawn takes two blocks (the initial behavior, kept for
 * restarts, and the running copy) and a stop gives both back, a malloc and
 * a free each, and often on two different threads, in bursts of thousands
 * (a spawner's turn), which glibc's own per-thread cache (7 blocks a size)
 * does not absorb: ~15% of a run that spawns short-lived actors
 * (fjcreate). Blocks of up to 72 bytes (a 32-byte header and up to 40
 * bytes of state: most behaviors) are sized by class (40, 56 or 72 bytes:
 * each the most that one malloc chunk size holds, so a block takes no more
 * memory than an exact malloc would) and go back to a per-thread list for
 * their class, of up to BEH_CACHE_MAX blocks, from which the thread takes
 * first. A thread whose list is full hands further blocks, BEH_BATCH at a
 * time, to a shared list that a thread whose list is empty takes whole:
 * the spawner's worker allocates and the children's workers free, and
 * without the hand-over each of those blocks was a malloc on one thread
 * and a free into its arena, under the arena's lock, on another. A
 * thread's lists are freed when it exits; the shared list holds at most
 * BEH_SHARED_MAX blocks a class (beyond, they are freed). The shared list
 * is process state outside any system object, as malloc's arenas are: a
 * behavior is a value made before (and usable with) any system, and the
 * list holds only free memory, never anything a system could observe. Under
 * AddressSanitizer a cached block is poisoned but for its link, so that a
 * use after free of a behavior is still reported. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "internal.h"

#define BEH_CLASSES 3 /* BEH_CACHE_MAX, BEH_BATCH, BEH_SHARED_MAX: internal.h */

static const size_t beh_class_bytes[BEH_CLASSES] = {40, 56, 72};

/* A free block. Its link sits where the behavior's drop pointer was: under
 * AddressSanitizer the rest of a cached block (kind, function, state) is
 * poisoned, so that a use after free is reported, while the link stays
 * readable, for the lists and for LeakSanitizer, which skips poisoned
 * words and would otherwise find every block but a list's first leaked. */
struct beh_free {
    void *header_[2];
    struct beh_free *next;
};
_Static_assert(offsetof(struct beh_free, next) == offsetof(struct casty_behavior, drop),
               "a free block's link is its drop pointer");

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
static void cache_poison(struct beh_free *f, uint32_t c)
{
    ASAN_POISON_MEMORY_REGION(f, beh_class_bytes[c]);
    ASAN_UNPOISON_MEMORY_REGION(&f->next, sizeof f->next);
}
static void cache_unpoison(struct beh_free *f, uint32_t c)
{
    ASAN_UNPOISON_MEMORY_REGION(f, beh_class_bytes[c]);
}
static void header_unpoison(struct beh_free *f)
{
    ASAN_UNPOISON_MEMORY_REGION(f->header_, sizeof f->header_);
}
#else
static void cache_poison(struct beh_free *f, uint32_t c)
{
    (void)f;
    (void)c;
}
static void cache_unpoison(struct beh_free *f, uint32_t c)
{
    (void)f;
    (void)c;
}
static void header_unpoison(struct beh_free *f)
{
    (void)f;
}
#endif

/* A thread's lists: `cache`, the blocks it takes from first; `out`, up to
 * BEH_BATCH blocks it gave back while its cache was full, on their way to
 * the shared list. */
struct beh_list {
    struct beh_free *head, *tail;
    uint32_t count;
};
static _Thread_local struct beh_list beh_cache[BEH_CLASSES];
static _Thread_local struct beh_list beh_out[BEH_CLASSES];
static _Thread_local bool beh_keyed;
static pthread_once_t beh_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t beh_key;
static bool beh_key_ok;

/* Blocks of threads whose caches were full, for the threads that run out
 * (a spawner allocates two blocks a child; wherever the child stops, its
 * worker frees them): a stack of chains, pushed a chain at a time (CAS)
 * and taken all at once (exchange), so no pop can meet ABA. A chain's
 * first block carries the chain's last block and length in its header
 * words (out_hand_over writes them, shared_take reads them): the taker
 * visits two blocks a chain rather than every block, which another core
 * wrote last (each a cache miss, one after the other: 73% of
 * behavior_alloc's samples in fjcreate at 2 workers). The count is approximate (raised before a push, lowered after
 * a take): a bound, not an inventory. */
static struct beh_free *beh_shared[BEH_CLASSES];
static uint32_t beh_shared_count[BEH_CLASSES];

/* Pushes f, poisoned, on l. */
static void list_push(struct beh_list *l, struct beh_free *f, uint32_t c)
{
    cache_poison(f, c);
    f->next = l->head;
    if (l->head == NULL)
        l->tail = f;
    l->head = f;
    l->count++;
}

static void list_free(struct beh_list *l, uint32_t c)
{
    while (l->head) {
        struct beh_free *next = l->head->next;
        cache_unpoison(l->head, c);
        free(l->head);
        l->head = next;
    }
    l->tail = NULL;
    l->count = 0;
}

static void beh_cache_drain(void *arg)
{
    (void)arg;
    for (uint32_t c = 0; c < BEH_CLASSES; c++) {
        list_free(&beh_cache[c], c);
        list_free(&beh_out[c], c);
    }
    beh_keyed = false; /* a free from a later destructor registers again */
}

static void beh_key_create(void)
{
    beh_key_ok = pthread_key_create(&beh_key, beh_cache_drain) == 0;
}

/* Registers the thread's lists to be freed when it exits; false when that
 * cannot be done (the caller must not keep blocks in them then). */
__attribute__((noinline)) static bool beh_register(void)
{
    pthread_once(&beh_key_once, beh_key_create);
    /* Without the key a thread's lists would stay until the process ends. */
    if (!beh_key_ok || pthread_setspecific(beh_key, beh_cache) != 0)
        return false;
    beh_keyed = true;
    return true;
}

static inline bool beh_ensure_keyed(void)
{
    return beh_keyed || beh_register();
}

/* Moves the thread's out list to the shared list (or frees it when the
 * shared list is at its bound). */
static void out_hand_over(uint32_t c)
{
    struct beh_list *out = &beh_out[c];
    if (load_relaxed(&beh_shared_count[c]) >= BEH_SHARED_MAX) {
        list_free(out, c);
        return;
    }
    ck_pr_add_32(&beh_shared_count[c], out->count);
    header_unpoison(out->head); /* poisoned again by shared_take */
    out->head->header_[0] = out->tail;
    out->head->header_[1] = (void *)(uintptr_t)out->count;
    struct beh_free *top = load_relaxed(&beh_shared[c]);
    for (;;) {
        out->tail->next = top;
        /* Full barrier: publishes the chain's links to the taker's
         * exchange in shared_take. */
        if (ck_pr_cas_ptr_value(&beh_shared[c], top, out->head, &top))
            break;
    }
    *out = (struct beh_list){0};
}

/* Takes every block of the shared list into the thread's (empty) cache. */
static void shared_take(uint32_t c)
{
    if (load_relaxed(&beh_shared[c]) == NULL || !beh_ensure_keyed())
        return;
    /* Full barrier (xchg): acquires the links written before the pushes. */
    struct beh_free *chain = exchange_seqcst(&beh_shared[c], (struct beh_free *)NULL);
    if (chain == NULL)
        return;
    uint32_t n = 0;
    struct beh_free *tail = chain;
    for (struct beh_free *f = chain; f != NULL; f = tail->next) {
        tail = f->header_[0];
        n += (uint32_t)(uintptr_t)f->header_[1];
        cache_poison(f, c);
    }
    ck_pr_sub_32(&beh_shared_count[c], n);
    beh_cache[c] = (struct beh_list){chain, tail, n};
}

uint32_t casty__behavior_shared_blocks(void)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < BEH_CLASSES; c++)
        n += load_relaxed(&beh_shared_count[c]);
    return n;
}

/* A block for a behavior of `bytes` in all (header included), its
 * `pooled` set to its class + 1 when it has one. Not initialised. */
static struct casty_behavior *behavior_alloc(size_t bytes)
{
    uint32_t c = 0;
    while (c < BEH_CLASSES && bytes > beh_class_bytes[c])
        c++;
    struct casty_behavior *b;
    if (c == BEH_CLASSES) {
        b = malloc(bytes);
        if (b)
            b->pooled = 0;
        return b;
    }
    struct beh_list *l = &beh_cache[c];
    if (l->head == NULL)
        shared_take(c);
    if (l->head) {
        struct beh_free *f = l->head;
        l->head = f->next;
        if (l->head == NULL)
            l->tail = NULL;
        else /* taken next; likely written last by another core */
            __builtin_prefetch(l->head, 1);
        l->count--;
        cache_unpoison(f, c);
        b = (struct casty_behavior *)(void *)f;
    } else {
        b = malloc(beh_class_bytes[c]);
        if (b == NULL)
            return NULL;
    }
    b->pooled = (uint8_t)(c + 1);
    return b;
}

static void behavior_release(struct casty_behavior *b)
{
    if (!b->pooled || !beh_ensure_keyed()) {
        free(b);
        return;
    }
    uint32_t c = b->pooled - 1u;
    struct beh_free *f = (struct beh_free *)(void *)b;
    if (beh_cache[c].count < BEH_CACHE_MAX) {
        list_push(&beh_cache[c], f, c);
        return;
    }
    list_push(&beh_out[c], f, c);
    if (beh_out[c].count >= BEH_BATCH)
        out_hand_over(c);
}

/* Not static: the run compares a handler's result with it directly. */
struct casty_behavior casty__same_b = {.kind = BEH_SAME, .is_static = 1};
static struct casty_behavior stopped_b = {.kind = BEH_STOPPED, .is_static = 1};
static struct casty_behavior unhandled_b = {.kind = BEH_UNHANDLED, .is_static = 1};
static struct casty_behavior restart_b = {.kind = BEH_RESTART, .is_static = 1};

static struct casty_behavior *behavior_new(uint8_t kind, const void *data, size_t size)
{
    if (size > UINT32_MAX || (size > 0 && data == NULL))
        return NULL;
    struct casty_behavior *b = behavior_alloc(sizeof *b + size);
    if (b == NULL)
        return NULL;
    uint8_t pooled = b->pooled;
    memset(b, 0, sizeof *b);
    b->pooled = pooled;
    b->kind = kind;
    b->size = (uint32_t)size;
    if (size) {
        memcpy(b->data, data, size);
        b->state = b->data;
    }
    return b;
}

casty_behavior_t *casty_receive(casty_receive_fn fn, const void *state, size_t state_size)
{
    return casty_receive_with_drop(fn, state, state_size, NULL);
}

casty_behavior_t *casty_receive_with_drop(casty_receive_fn fn, const void *state,
                                          size_t state_size, void (*drop)(void *state))
{
    if (fn == NULL)
        return NULL;
    struct casty_behavior *b = behavior_new(BEH_RECEIVE, state, state_size);
    if (b) {
        b->fn.receive = fn;
        b->drop = drop;
    }
    return b;
}

casty_behavior_t *casty_setup(casty_setup_fn fn, const void *arg, size_t arg_size)
{
    if (fn == NULL)
        return NULL;
    struct casty_behavior *b = behavior_new(BEH_SETUP, arg, arg_size);
    if (b)
        b->fn.setup = fn;
    return b;
}

/* A behavior of any kind over a copy of `data`, whose `drop` releases what
 * the copy owns. For persist/ (setup with owned config, persist effects). */
struct casty_behavior *casty__behavior_make(uint8_t kind, const void *data, size_t size,
                                            void (*drop)(void *data))
{
    struct casty_behavior *b = behavior_new(kind, data, size);
    if (b)
        b->drop = drop;
    return b;
}

casty_behavior_t *casty_same(void) { return &casty__same_b; }
casty_behavior_t *casty_stopped(void) { return &stopped_b; }
casty_behavior_t *casty_unhandled(void) { return &unhandled_b; }
casty_behavior_t *casty_restart(void) { return &restart_b; }

casty_behavior_t *casty_failed(int code, const char *reason)
{
    size_t len = reason ? strlen(reason) : 0;
    struct casty_behavior *b = behavior_alloc(sizeof *b + sizeof(struct failure) + len + 1);
    if (b == NULL)
        return NULL;
    uint8_t pooled = b->pooled;
    memset(b, 0, sizeof *b);
    b->pooled = pooled;
    b->kind = BEH_FAILED;
    struct failure *f = (struct failure *)(void *)b->data;
    f->code = code;
    memcpy(f->reason, reason ? reason : "", len + 1);
    return b;
}

casty_behavior_t *casty_supervise(casty_behavior_t *behavior, const casty_strategy_t *strategy)
{
    if (behavior == NULL || strategy == NULL || behavior->is_static) {
        casty_behavior_free(behavior);
        return NULL;
    }
    struct wrapped_strategy w = {*strategy, behavior};
    struct casty_behavior *b = behavior_new(BEH_SUPERVISE, &w, sizeof w);
    if (b == NULL)
        casty_behavior_free(behavior);
    return b;
}

casty_behavior_t *casty_with_lifecycle(casty_behavior_t *behavior, const casty_lifecycle_t *hooks)
{
    if (behavior == NULL || hooks == NULL || behavior->is_static) {
        casty_behavior_free(behavior);
        return NULL;
    }
    struct wrapped_lifecycle w = {*hooks, behavior};
    struct casty_behavior *b = behavior_new(BEH_LIFECYCLE, &w, sizeof w);
    if (b == NULL)
        casty_behavior_free(behavior);
    return b;
}

/* The behavior inside any supervise/lifecycle wrappers. */
struct casty_behavior *casty__behavior_unwrap(struct casty_behavior *b)
{
    while (b && (b->kind == BEH_SUPERVISE || b->kind == BEH_LIFECYCLE)) {
        b = b->kind == BEH_SUPERVISE ? ((struct wrapped_strategy *)(void *)b->data)->inner
                                     : ((struct wrapped_lifecycle *)(void *)b->data)->inner;
    }
    return b;
}

/* The data of the outermost wrapper of `kind` around b, or NULL. */
const void *casty__behavior_find(const struct casty_behavior *b, uint8_t kind)
{
    while (b && (b->kind == BEH_SUPERVISE || b->kind == BEH_LIFECYCLE)) {
        if (b->kind == kind)
            return b->data;
        b = b->kind == BEH_SUPERVISE ? ((const struct wrapped_strategy *)(const void *)b->data)->inner
                                     : ((const struct wrapped_lifecycle *)(const void *)b->data)->inner;
    }
    return NULL;
}

/* casty_behavior_free's general case: wrappers, drops, full caches. */
__attribute__((noinline)) static void behavior_free_any(struct casty_behavior *b)
{
    while (b && !b->is_static) {
        struct casty_behavior *inner = NULL;
        if (b->kind == BEH_SUPERVISE)
            inner = ((struct wrapped_strategy *)(void *)b->data)->inner;
        else if (b->kind == BEH_LIFECYCLE)
            inner = ((struct wrapped_lifecycle *)(void *)b->data)->inner;
        else if (b->drop && b->size)
            b->drop(b->data);
        behavior_release(b);
        b = inner;
    }
}

void casty_behavior_free(casty_behavior_t *b)
{
    /* The common case without the general loop's frame: a pooled receive
     * behavior that owns nothing, back on this thread's list while it has
     * room. */
    if (b && b->kind == BEH_RECEIVE && b->pooled && b->drop == NULL && beh_keyed) {
        uint32_t c = b->pooled - 1u;
        if (beh_cache[c].count < BEH_CACHE_MAX) {
            list_push(&beh_cache[c], (struct beh_free *)(void *)b, c);
            return;
        }
    }
    behavior_free_any(b);
}

/* The behavior an actor starts with, given its initial behavior (which the
 * cell keeps for restarts), inside any wrappers: the initial itself when it has no state to
 * mutate or owns resources (drop), otherwise a private copy of it. NULL when
 * out of memory. */
struct casty_behavior *casty__behavior_instantiate(struct casty_behavior *initial)
{
    initial = casty__behavior_unwrap(initial);
    if (initial->kind != BEH_RECEIVE || initial->size == 0 || initial->drop)
        return initial;
    struct casty_behavior *b = behavior_alloc(sizeof *b + initial->size);
    if (b == NULL)
        return NULL;
    uint8_t pooled = b->pooled;
    memcpy(b, initial, sizeof *b + initial->size);
    b->pooled = pooled;
    b->state = b->data; /* (its own copy's: size > 0 here) */
    return b;
}
