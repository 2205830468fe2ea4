/* Internal (not installed). The timer service: keyed timers on a
 * hierarchical timer wheel, driven by the reactor. Pure wheel logic lives in
 * timerwheel.c (time comes in as an argument); this layer owns the keys, the
 * lock and the reactor timeout.
 *
 * A timer runs `fn(arg)` on the reactor thread when it fires. Timers are
 * keyed by (owner, key): owner 0 is the system's key space, any other value
 * an actor's (actor.c uses the actor's ref id). Starting a timer whose
 * (owner, key) is live replaces it. `fn` runs with the service's lock held,
 * and cancel takes that lock, so once casty__timers_cancel returns the
 * timer's fn is not running and will never run again. `arg_free(arg)` runs
 * exactly once per started timer: when a one-shot has fired, or when the
 * timer is cancelled, replaced, or destroyed with the service. fn must not
 * call back into the timer service. */
#ifndef CASTY_TIMERS_H
#define CASTY_TIMERS_H

#include <stdint.h>

#include "reactor.h"

struct casty_timers;

typedef void (*casty__timer_fn)(void *arg);

int casty__timers_create(struct casty_reactor *r, struct casty_timers **out);
/* Cancels every timer (arg_free runs for each) and makes later starts fail
 * with CASTY_ESHUTDOWN. Safe to call concurrently with the other calls;
 * idempotent. The reactor stays usable. */
void casty__timers_close(struct casty_timers *t);
/* Closes (if not yet) and frees the service; no other call may be running
 * or follow. NULL is ignored. */
void casty__timers_destroy(struct casty_timers *t);

/* delay_ns: first firing; interval_ns: 0 for a one-shot, else the period.
 * Returns 0, CASTY_EINVAL (bad key), CASTY_ENOMEM or CASTY_ESHUTDOWN; on
 * every error arg_free(arg) has already run (the argument is consumed).
 * Any thread except from inside a timer fn. A periodic timer that falls more
 * than a period behind fires once and skips the missed periods. */
int casty__timers_start(struct casty_timers *t, uint64_t owner, const char *key,
                        uint64_t delay_ns, uint64_t interval_ns, casty__timer_fn fn, void *arg,
                        void (*arg_free)(void *arg));
/* Returns 0 or CASTY_ENOENT. */
int casty__timers_cancel(struct casty_timers *t, uint64_t owner, const char *key);
/* Cancels every timer of `owner`. */
void casty__timers_cancel_owner(struct casty_timers *t, uint64_t owner);

#endif
