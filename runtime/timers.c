/* STUB — to be replaced by the timer service (see timers.h). */
#include <stdlib.h>

#include "internal.h"
#include "timers.h"

int casty__timers_create(struct casty_reactor *r, struct casty_timers **out)
{
    (void)r;
    *out = NULL;
    return 0;
}

void casty__timers_close(struct casty_timers *t)
{
    (void)t;
}

void casty__timers_destroy(struct casty_timers *t)
{
    (void)t;
}

int casty__timers_start(struct casty_timers *t, uint64_t owner, const char *key,
                        uint64_t delay_ns, uint64_t interval_ns, casty__timer_fn fn, void *arg,
                        void (*arg_free)(void *arg))
{
    (void)t, (void)owner, (void)key, (void)delay_ns, (void)interval_ns, (void)fn;
    if (arg_free)
        arg_free(arg);
    return CASTY_ESHUTDOWN;
}

int casty__timers_cancel(struct casty_timers *t, uint64_t owner, const char *key)
{
    (void)t, (void)owner, (void)key;
    return CASTY_ENOENT;
}

void casty__timers_cancel_owner(struct casty_timers *t, uint64_t owner)
{
    (void)t, (void)owner;
}

int casty_timer_tick(casty_system_t *sys, const char *key, casty_ref_t to,
                     const casty_type_t *type, const void *value, uint64_t interval_ms)
{
    (void)sys, (void)key, (void)to, (void)type, (void)value, (void)interval_ms;
    return CASTY_ESHUTDOWN;
}

int casty_timer_schedule(casty_system_t *sys, const char *key, casty_ref_t to,
                         const casty_type_t *type, const void *value, uint64_t delay_ms)
{
    (void)sys, (void)key, (void)to, (void)type, (void)value, (void)delay_ms;
    return CASTY_ESHUTDOWN;
}

int casty_timer_cancel(casty_system_t *sys, const char *key)
{
    (void)sys, (void)key;
    return CASTY_ENOENT;
}
