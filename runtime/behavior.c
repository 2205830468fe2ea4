/* Behavior values: the factories of the public API, and the copy the
 * runtime makes of an initial behavior so that restart can start over from
 * fresh state. This file does not run behaviors (see actor.c). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Not static: the run compares a handler's result with it directly. */
struct casty_behavior casty__same_b = {.kind = BEH_SAME, .is_static = 1};
static struct casty_behavior stopped_b = {.kind = BEH_STOPPED, .is_static = 1};
static struct casty_behavior unhandled_b = {.kind = BEH_UNHANDLED, .is_static = 1};
static struct casty_behavior restart_b = {.kind = BEH_RESTART, .is_static = 1};

static struct casty_behavior *behavior_new(uint8_t kind, const void *data, size_t size)
{
    if (size > UINT32_MAX || (size > 0 && data == NULL))
        return NULL;
    struct casty_behavior *b = malloc(sizeof *b + size);
    if (b == NULL)
        return NULL;
    memset(b, 0, sizeof *b);
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
    struct casty_behavior *b = malloc(sizeof *b + sizeof(struct failure) + len + 1);
    if (b == NULL)
        return NULL;
    memset(b, 0, sizeof *b);
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
        free(b);
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
    struct casty_behavior *b = malloc(sizeof *b + initial->size);
    if (b == NULL)
        return NULL;
    memcpy(b, initial, sizeof *b + initial->size);
    return b;
}
