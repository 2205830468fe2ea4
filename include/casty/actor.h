/* casty — behaviors, actor context, spawning (public).
 *
 * A behavior is an immutable value that says how an actor handles its next
 * message. Factories build them:
 *
 *   casty_receive(fn, &state, sizeof state)  handle messages with fn; the
 *                                            runtime keeps its own copy of
 *                                            the state bytes and passes fn a
 *                                            mutable pointer to that copy
 *   casty_setup(fn, &arg, sizeof arg)        run fn when the actor starts
 *                                            (and again on restart); fn
 *                                            returns the behavior to use
 *   casty_same()        keep the current behavior (and its state)
 *   casty_stopped()     stop this actor after this message
 *   casty_unhandled()   the message was not understood (UnhandledMessage)
 *   casty_failed(code, reason)   the handler failed (supervision decides;
 *                                unsupervised actors stop)
 *   casty_restart()     restart from the initial behavior with fresh state
 *
 * Functional state: a handler returns casty_receive(next_fn, &new_state,
 * sizeof new_state); the runtime frees the previous behavior and its state,
 * so a chain of a million transitions holds one state at a time. In-place
 * state: mutate *state and return casty_same() (no allocation).
 *
 * Ownership: a behavior returned by a factory belongs to whoever receives it
 * next — casty_spawn (always, even when it fails) or the runtime (when
 * returned from a handler). Factories return NULL when out of memory; the
 * runtime treats a NULL behavior from a handler as casty_failed(CASTY_ENOMEM).
 * casty_same/stopped/unhandled/restart are static values; freeing them is a
 * no-op. */
#ifndef CASTY_ACTOR_H
#define CASTY_ACTOR_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef struct casty_system casty_system_t;
typedef struct casty_ctx casty_ctx_t;
typedef struct casty_behavior casty_behavior_t;

/* A receive handler: called on a worker thread, one message at a time per
 * actor. `state` points to the actor's copy of its state (NULL when the
 * state size is 0). Returns the next behavior. */
typedef casty_behavior_t *(*casty_receive_fn)(casty_ctx_t *ctx, const casty_msg_t *msg,
                                              void *state);

/* A setup function: called on a worker thread when the actor starts (and on
 * every restart), before any message. `arg` points to the behavior's copy of
 * its argument bytes. Returns the behavior to run. */
typedef casty_behavior_t *(*casty_setup_fn)(casty_ctx_t *ctx, void *arg);

/* Behaviors whose state or argument owns resources: `drop` releases what
 * the bytes own (not the bytes), run once when that copy is discarded. */
casty_behavior_t *casty_receive(casty_receive_fn fn, const void *state, size_t state_size);
casty_behavior_t *casty_receive_with_drop(casty_receive_fn fn, const void *state,
                                          size_t state_size, void (*drop)(void *state));
casty_behavior_t *casty_setup(casty_setup_fn fn, const void *arg, size_t arg_size);
casty_behavior_t *casty_same(void);
casty_behavior_t *casty_stopped(void);
casty_behavior_t *casty_unhandled(void);
casty_behavior_t *casty_restart(void);
/* `reason` is copied. */
casty_behavior_t *casty_failed(int code, const char *reason);

/* Frees a behavior that was built but never handed to the runtime. NULL and
 * the static behaviors are ignored. */
void casty_behavior_free(casty_behavior_t *behavior);

/* ---- spawning --------------------------------------------------------- */

typedef enum casty_overflow {
    CASTY_OVERFLOW_DROP_NEW = 0, /* the new message becomes a dead letter (default) */
    CASTY_OVERFLOW_DROP_OLDEST,  /* the oldest waiting message becomes a dead letter */
    CASTY_OVERFLOW_BACKPRESSURE, /* the send returns CASTY_EFULL; nothing is enqueued */
} casty_overflow_t;

typedef struct casty_spawn_options {
    uint32_t mailbox_capacity; /* user messages waiting; 0 = unbounded (default) */
    casty_overflow_t overflow; /* what a send to a full mailbox does */
    uint32_t reserved_[6];
} casty_spawn_options_t;

/* Starts a top-level actor running `behavior` (consumed, even on error).
 * `name` may be NULL (an anonymous actor, named "$<id>"); named top-level
 * actors must have unique names: CASTY_EEXIST otherwise. Names are at most
 * 255 bytes, contain no '/' and do not start with '$'. `options` may be
 * NULL. On success *out (if not NULL) receives the ref; the actor starts
 * asynchronously and its setup runs on a worker before its first message.
 * Errors: CASTY_EINVAL, CASTY_EEXIST, CASTY_ESHUTDOWN, CASTY_ENOMEM. Any
 * thread, including handlers. */
int casty_spawn(casty_system_t *sys, casty_behavior_t *behavior, const char *name,
                const casty_spawn_options_t *options, casty_ref_t *out);

/* Asks the actor to stop (a system message, processed before its pending
 * messages, which become dead letters). Its children stop first, then its
 * post_stop hook runs, then it is gone. Stopping an already stopped ref is
 * not an error. Returns 0, CASTY_ESHUTDOWN or CASTY_EINVAL. Any thread. */
int casty_stop(casty_ref_t ref);

/* Finds an actor by path: "/manager/alice" (top-level "manager", its child
 * "alice"). Returns 0 and *out, CASTY_ENOENT, CASTY_EINVAL. Any thread. */
int casty_lookup(casty_system_t *sys, const char *path, casty_ref_t *out);

/* ---- supervision and lifecycle --------------------------------------------- */

typedef enum casty_directive {
    CASTY_RESTART = 0, /* back to the initial behavior with fresh state */
    CASTY_STOP,        /* stop the actor */
    CASTY_ESCALATE,    /* stop it and fail its parent with the same failure */
} casty_directive_t;

/* Decides what to do with a failure; runs on the failing actor's worker. */
typedef casty_directive_t (*casty_decider_fn)(int code, const char *reason, void *arg);

/* One-for-one supervision: the failing actor alone is acted upon. Restarts
 * are counted per actor in a sliding window: a failure that would be the
 * (max_restarts + 1)-th restart within `within_seconds` stops the actor
 * instead. within_seconds <= 0 counts restarts forever. decider NULL =
 * always restart. */
typedef struct casty_strategy {
    uint32_t max_restarts;
    double within_seconds;
    casty_decider_fn decider;
    void *decider_arg;
} casty_strategy_t;

/* Wraps `behavior` (consumed) so that failures of this actor are handled by
 * `strategy` (copied). NULL when out of memory or on NULL arguments (the
 * behavior is freed then). */
casty_behavior_t *casty_supervise(casty_behavior_t *behavior, const casty_strategy_t *strategy);

/* Lifecycle hooks, each optional; all run on the actor's worker with a
 * valid ctx. pre_start: before the first message. post_stop: after the last
 * message and after every child has stopped, exactly once. pre_restart: on
 * restart, before the children are stopped and the state is discarded.
 * post_restart: after the restart, before the next message. */
typedef struct casty_lifecycle {
    void (*pre_start)(casty_ctx_t *ctx, void *arg);
    void (*post_stop)(casty_ctx_t *ctx, void *arg);
    void (*pre_restart)(casty_ctx_t *ctx, void *arg);
    void (*post_restart)(casty_ctx_t *ctx, void *arg);
    void *arg;
} casty_lifecycle_t;

/* Wraps `behavior` (consumed) with lifecycle hooks (copied). NULL when out
 * of memory or on NULL arguments (the behavior is freed then). */
casty_behavior_t *casty_with_lifecycle(casty_behavior_t *behavior, const casty_lifecycle_t *hooks);

/* ---- inside a handler -------------------------------------------------- */

/* The running actor's own ref. */
casty_ref_t casty_ctx_self(const casty_ctx_t *ctx);
/* Its parent (CASTY_REF_NONE for a top-level actor). */
casty_ref_t casty_ctx_parent(const casty_ctx_t *ctx);
/* The system the running actor lives in. */
casty_system_t *casty_ctx_system(const casty_ctx_t *ctx);

/* Spawns a child of the running actor. Names are unique among siblings
 * (CASTY_EEXIST). A child stops when its parent stops (before it) and when
 * its parent restarts. Errors as casty_spawn, plus CASTY_ESHUTDOWN while the
 * running actor is stopping or restarting. */
int casty_ctx_spawn(casty_ctx_t *ctx, casty_behavior_t *behavior, const char *name,
                    const casty_spawn_options_t *options, casty_ref_t *out);

/* Stops `ref` (typically a child, or the actor itself); as casty_stop. */
int casty_ctx_stop(casty_ctx_t *ctx, casty_ref_t ref);

/* Death watch: when `target` stops, the running actor receives a
 * casty_terminated_t message carrying target's ref, exactly once; watching
 * a ref that is already stopped delivers it at once. Watching twice is one
 * watch. After casty_ctx_unwatch no casty_terminated_t for target is
 * delivered, even one already on its way. Returns 0 or CASTY_EINVAL /
 * CASTY_ENOMEM, or CASTY_ENOTSUP for an actor of another node (remote
 * death watch comes with the cluster's failure detector; a ref of a node
 * that has been replaced by a restart is already stopped and is watched
 * as such). */
int casty_ctx_watch(casty_ctx_t *ctx, casty_ref_t target);
int casty_ctx_unwatch(casty_ctx_t *ctx, casty_ref_t target);

CASTY_MESSAGE_DECLARE(casty_terminated_t, casty_ref_t ref;);

/* ---- ask ---------------------------------------------------------------- */

/* Builds and sends the request; `reply_to` is a temporary ref that accepts
 * exactly one reply. Return 0 or a negative code (which casty_ask returns). */
typedef int (*casty_ask_fn)(casty_ref_t target, casty_ref_t reply_to, void *arg);

/* Sends a request built by `make_request` and blocks the calling thread
 * until the first reply arrives or `timeout_ms` elapses. On success *reply
 * receives the reply message; the caller frees it with casty_msg_free().
 * Errors: CASTY_ETIMEDOUT (a reply arriving later becomes a dead letter),
 * CASTY_EDEADLK when called on a worker thread (inside a handler — use a
 * reply-to ref instead), CASTY_EINVAL, CASTY_ESHUTDOWN, CASTY_ENOMEM, or the
 * error make_request returned. Non-worker threads only. For a ref of this
 * system the caller polls for the reply up to 50 us (spinning, then
 * yielding) before it sleeps, unless its recent polls ended without one
 * (docs/actors.md, "ask"). */
int casty_ask(casty_system_t *sys, casty_ref_t target, casty_ask_fn make_request, void *arg,
              uint64_t timeout_ms, casty_msg_t **reply);

/* Writes the ref's printable path, "casty://<system>@local/user/<name>"
 * ("casty://<system>@<host>:<port>/user/<name>" for a system with remoting), into
 * buf (NUL-terminated). Returns the path length, CASTY_ENOSPC when it does
 * not fit, CASTY_ENOENT for a stale ref, CASTY_ESHUTDOWN when its system is
 * gone. Any thread. */
int casty_ref_path(casty_ref_t ref, char *buf, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* CASTY_ACTOR_H */
