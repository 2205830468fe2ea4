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

typedef struct casty_spawn_options {
    uint32_t mailbox_capacity; /* reserved for bounded mailboxes; 0 = unbounded */
    uint32_t reserved_[7];
} casty_spawn_options_t;

/* Starts a top-level actor running `behavior` (consumed, even on error).
 * `name` may be NULL (an anonymous actor, named "$<id>"); named top-level
 * actors must have unique names: CASTY_EEXIST otherwise. Names are at most
 * 255 bytes and contain no '/'. `options` may be NULL. On success *out (if
 * not NULL) receives the ref; the actor starts asynchronously and its setup
 * runs on a worker before its first message.
 * Errors: CASTY_EINVAL, CASTY_EEXIST, CASTY_ESHUTDOWN, CASTY_ENOMEM. Any
 * thread, including handlers. */
int casty_spawn(casty_system_t *sys, casty_behavior_t *behavior, const char *name,
                const casty_spawn_options_t *options, casty_ref_t *out);

/* Asks the actor to stop (a system message, processed before its pending
 * messages, which become dead letters). Stopping an already stopped ref is
 * not an error. Returns 0, CASTY_ESHUTDOWN or CASTY_EINVAL. Any thread. */
int casty_stop(casty_ref_t ref);

/* ---- inside a handler -------------------------------------------------- */

/* The running actor's own ref. */
casty_ref_t casty_ctx_self(const casty_ctx_t *ctx);
/* The system the running actor lives in. */
casty_system_t *casty_ctx_system(const casty_ctx_t *ctx);
/* Spawns an actor from inside a handler (same rules as casty_spawn). */
int casty_ctx_spawn(casty_ctx_t *ctx, casty_behavior_t *behavior, const char *name,
                    const casty_spawn_options_t *options, casty_ref_t *out);

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
 * error make_request returned. Non-worker threads only. */
int casty_ask(casty_system_t *sys, casty_ref_t target, casty_ask_fn make_request, void *arg,
              uint64_t timeout_ms, casty_msg_t **reply);

/* Writes the ref's printable path, "casty://<system>@local/user/<name>", into
 * buf (NUL-terminated). Returns the path length, CASTY_ENOSPC when it does
 * not fit, CASTY_ENOENT for a stale ref, CASTY_ESHUTDOWN when its system is
 * gone. Any thread. */
int casty_ref_path(casty_ref_t ref, char *buf, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* CASTY_ACTOR_H */
