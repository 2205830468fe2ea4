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
 * first; a thread's lists are freed when it exits. Under AddressSanitizer
 * a cached block is poisoned, so that a use after free of a behavior is
 * still reported. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BEH_CLASSES 3
#define BEH_CACHE_MAX 1024 /* per class and thread */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define cache_poison(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define cache_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define cache_poison(p, n) ((void)(p), (void)(n))
#define cache_unpoison(p, n) ((void)(p), (void)(n))
#endif

static const size_t beh_class_bytes[BEH_CLASSES] = {40, 56, 72};

struct beh_free {
    struct beh_free *next;
};

static _Thread_local struct beh_free *beh_cache[BEH_CLASSES];
static _Thread_local uint32_t beh_cached[BEH_CLASSES];
static _Thread_local bool beh_keyed;
static pthread_once_t beh_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t beh_key;
static bool beh_key_ok;

static void beh_cache_drain(void *arg)
{
    (void)arg;
    for (uint32_t c = 0; c < BEH_CLASSES; c++) {
        while (beh_cache[c]) {
            cache_unpoison(beh_cache[c], beh_class_bytes[c]);
            struct beh_free *next = beh_cache[c]->next;
            free(beh_cache[c]);
            beh_cache[c] = next;
        }
        beh_cached[c] = 0;
    }
    beh_keyed = false; /* a free from a later destructor registers again */
}

static void beh_key_create(void)
{
    beh_key_ok = pthread_key_create(&beh_key, beh_cache_drain) == 0;
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
    if (beh_cache[c]) {
        cache_unpoison(beh_cache[c], beh_class_bytes[c]);
        b = (struct casty_behavior *)(void *)beh_cache[c];
        beh_cache[c] = beh_cache[c]->next;
        beh_cached[c]--;
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
    uint32_t c = b->pooled ? b->pooled - 1u : 0;
    if (!b->pooled || beh_cached[c] >= BEH_CACHE_MAX) {
        free(b);
        return;
    }
    if (!beh_keyed) {
        pthread_once(&beh_key_once, beh_key_create);
        /* Without the key a thread's list stays until the process ends. */
        if (!beh_key_ok || pthread_setspecific(beh_key, beh_cache) != 0) {
            free(b);
            return;
        }
        beh_keyed = true;
    }
    struct beh_free *f = (struct beh_free *)(void *)b;
    f->next = beh_cache[c];
    beh_cache[c] = f;
    beh_cached[c]++;
    cache_poison(f, beh_class_bytes[c]);
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
    if (size)
        memcpy(b->data, data, size);
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

void casty_behavior_free(casty_behavior_t *b)
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
    return b;
}
