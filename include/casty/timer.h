/* casty — timers (public).
 *
 * Timers send a message to an actor after a delay (schedule, one-shot) or
 * every interval (tick). They are driven by the system's reactor thread
 * (one io_uring timeout for the nearest deadline, a hierarchical timer wheel
 * behind it), so live timers cost O(1) each per tick, not a scan.
 *
 * Keys name timers: starting a timer with the key of a live one replaces it
 * (the old one never fires again). Keys are strings of 1..63 bytes, copied.
 * System timers (casty_timer_*) share one key space per system; per-actor
 * timers (casty_ctx_timer_*) are keyed per actor, always target the actor
 * itself, and are cancelled when it stops or restarts. After a cancel
 * returns, that timer fires no more; for per-actor timers, a message that
 * had already fired but not yet been handled is discarded too.
 *
 * Each firing sends a copy of the value, so types with a drop function
 * (values that own resources) are refused with CASTY_EINVAL. Deadlines
 * round up to the next millisecond (a timer never fires early); a periodic
 * timer that falls more than a period behind (a stalled machine) fires once
 * and skips the missed periods rather than bursting. */
#ifndef CASTY_TIMER_H
#define CASTY_TIMER_H

#include <stdint.h>

#include "actor.h"
#include "message.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* Sends a copy of `value` (type->size bytes, copied now) to `to` every
 * `interval_ms` (>= 1), the first time after one interval. Returns 0,
 * CASTY_EINVAL, CASTY_ENOMEM or CASTY_ESHUTDOWN. Any thread. */
int casty_timer_tick(casty_system_t *sys, const char *key, casty_ref_t to,
                     const casty_type_t *type, const void *value, uint64_t interval_ms);

/* Sends a copy of `value` to `to` once, after `delay_ms` (0 = as soon as the
 * reactor runs). Same returns. Any thread. */
int casty_timer_schedule(casty_system_t *sys, const char *key, casty_ref_t to,
                         const casty_type_t *type, const void *value, uint64_t delay_ms);

/* Cancels the system timer `key`. Returns 0 or CASTY_ENOENT (no such live
 * timer; a fired one-shot is no longer live). Any thread. */
int casty_timer_cancel(casty_system_t *sys, const char *key);

/* Per-actor timers: inside a handler, targeting the running actor. */
int casty_ctx_timer_tick(casty_ctx_t *ctx, const char *key, const casty_type_t *type,
                         const void *value, uint64_t interval_ms);
int casty_ctx_timer_schedule(casty_ctx_t *ctx, const char *key, const casty_type_t *type,
                             const void *value, uint64_t delay_ms);
int casty_ctx_timer_cancel(casty_ctx_t *ctx, const char *key);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* CASTY_TIMER_H */
