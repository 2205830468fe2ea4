/* The timer service (timers.h): keyed timers on the pure timer wheel
 * (timerwheel.c), driven by the reactor's clock hook (the clock hook in reactor.h), and
 * the system-level public API casty_timer_tick/schedule/cancel on top. It
 * knows nothing of actors: per-actor timers (actor.c) are timers whose
 * owner is the actor's id, and a timer's fn decides what firing means.
 *
 * Time. The wheel counts 1 ms ticks from the service's creation. A
 * deadline (CLOCK_MONOTONIC ns) rounds up to a tick, so a timer never fires
 * early and fires at most about 1 ms late on an idle reactor. Periodic
 * timers keep their phase: the next deadline is the previous one plus the
 * interval, never "now plus the interval", so they do not drift. A timer
 * that fires more than a whole period late (a suspended process, a
 * saturated machine) fires once and skips the periods it missed, staying in
 * phase, rather than firing a burst to catch up.
 *
 * Locking. One mutex guards the wheel, both tables and the closed flag.
 * start/cancel/cancel_owner/close take it on the caller's thread; the
 * reactor thread takes it in `expire`, advances the wheel and runs the fns
 * of the expired timers with it held. So once cancel returns, the timer's
 * fn is not running and never runs again. arg_free and free() run after
 * the mutex is released (arg_free may be slow or take its own locks).
 *
 * The reactor is told of a deadline only when it moves earlier (a start);
 * `reported` is the earliest deadline the reactor has been told of since
 * it last called expire. A cancel leaves the reactor's timeout armed: it
 * fires once, expire finds nothing due and reports the new deadline.
 *
 * Tables. Timers are found by (owner, key) in a chained hash table (XXH3 of
 * the key, seeded with the owner), and by owner in a second table of owner
 * records, each the head of that owner's list, so cancel_owner (run for
 * every stopping actor) costs O(its timers), not a scan of all timers. Both
 * tables double when their load passes 1; a failed growth only leaves the
 * chains longer. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "internal.h"
#include "reactor.h"
#include "timers.h"
#include "timerwheel.h"

#define KEY_MAX 63u
#define NS_PER_TICK 1000000ull /* 1 ms */
#define TABLE_MIN 64u

struct owner_rec;

struct timer {
    struct casty__wheel_entry entry; /* first: a returned wheel entry is its timer */
    struct timer *hnext;             /* key table chain; also a free list link */
    struct timer *onext, **opprev;   /* the owner's list */
    struct owner_rec *rec;
    uint64_t owner;
    uint64_t hash;
    uint64_t deadline_ns;
    uint64_t interval_ns; /* 0: one-shot */
    casty__timer_fn fn;
    void *arg;
    void (*arg_free)(void *arg);
    size_t keylen;
    char key[]; /* NUL-terminated */
};

struct owner_rec {
    uint64_t owner;
    uint64_t hash;
    struct owner_rec *next; /* owner table chain */
    struct timer *timers;
};

struct casty_timers {
    pthread_mutex_t lock;
    struct casty_reactor *reactor;
    uint64_t base_ns; /* tick 0 */
    bool closed;
    uint64_t reported; /* see the top comment */
    struct timer **keys;
    uint32_t keys_mask, nkeys;
    struct owner_rec **owners;
    uint32_t owners_mask, nowners;
    struct casty__wheel wheel;
};

/* ---- time ------------------------------------------------------------------------- */

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX - 1 : a + b;
}

static uint64_t tick_floor(const struct casty_timers *t, uint64_t ns)
{
    return ns <= t->base_ns ? 0 : (ns - t->base_ns) / NS_PER_TICK;
}

static uint64_t tick_ceil(const struct casty_timers *t, uint64_t ns)
{
    if (ns <= t->base_ns)
        return 0;
    uint64_t d = ns - t->base_ns;
    return d / NS_PER_TICK + (d % NS_PER_TICK != 0);
}

/* The deadline for the reactor: when `tick` begins. */
static uint64_t tick_deadline(const struct casty_timers *t, uint64_t tick)
{
    if (tick == UINT64_MAX)
        return CASTY__NO_DEADLINE;
    if (tick > (UINT64_MAX - 1 - t->base_ns) / NS_PER_TICK)
        return UINT64_MAX - 1;
    return t->base_ns + tick * NS_PER_TICK;
}

static uint64_t next_deadline(const struct casty_timers *t)
{
    return tick_deadline(t, casty__wheel_next(&t->wheel));
}

/* A periodic timer's next deadline after firing at `now` for `prev`: the
 * first point of its phase that is still ahead. */
static uint64_t next_period(uint64_t prev, uint64_t interval, uint64_t now)
{
    uint64_t next = add_sat(prev, interval);
    if (next > now || next >= UINT64_MAX - 1)
        return next;
    uint64_t missed = (now - prev) / interval;
    uint64_t step = missed + 1 > UINT64_MAX / interval ? UINT64_MAX : (missed + 1) * interval;
    return add_sat(prev, step);
}

/* Brings the wheel's clock up to `now` when that expires nothing, so new
 * timers are placed relative to the present (an idle wheel's clock is
 * only moved by expire). Under the lock. */
static void refresh_clock(struct casty_timers *t, uint64_t now_tick)
{
    if (casty__wheel_next(&t->wheel) > now_tick) {
        struct casty__wheel_entry *none = casty__wheel_advance(&t->wheel, now_tick);
        (void)none; /* NULL: nothing expires before the wheel's next tick */
    }
}

/* ---- tables (under the lock) ----------------------------------------------------- */

static uint64_t key_hash(uint64_t owner, const char *key, size_t len)
{
    return XXH3_64bits_withSeed(key, len, owner);
}

static uint64_t owner_hash(uint64_t owner)
{
    return XXH3_64bits(&owner, sizeof owner);
}

static struct timer *key_find(struct casty_timers *t, uint64_t owner, const char *key,
                              size_t len, uint64_t hash)
{
    for (struct timer *tm = t->keys[hash & t->keys_mask]; tm; tm = tm->hnext)
        if (tm->hash == hash && tm->owner == owner && tm->keylen == len &&
            memcmp(tm->key, key, len) == 0)
            return tm;
    return NULL;
}

static void keys_grow(struct casty_timers *t)
{
    uint32_t n = (t->keys_mask + 1) * 2;
    if (n == 0)
        return;
    struct timer **b = calloc(n, sizeof *b);
    if (b == NULL)
        return; /* longer chains, still correct */
    for (uint32_t i = 0; i <= t->keys_mask; i++) {
        struct timer *tm = t->keys[i];
        while (tm) {
            struct timer *next = tm->hnext;
            tm->hnext = b[tm->hash & (n - 1)];
            b[tm->hash & (n - 1)] = tm;
            tm = next;
        }
    }
    free(t->keys);
    t->keys = b;
    t->keys_mask = n - 1;
}

static void key_link(struct casty_timers *t, struct timer *tm)
{
    if (t->nkeys >= t->keys_mask + 1)
        keys_grow(t);
    struct timer **b = &t->keys[tm->hash & t->keys_mask];
    tm->hnext = *b;
    *b = tm;
    t->nkeys++;
}

static void key_unlink(struct casty_timers *t, struct timer *tm)
{
    struct timer **p = &t->keys[tm->hash & t->keys_mask];
    while (*p != tm)
        p = &(*p)->hnext;
    *p = tm->hnext;
    tm->hnext = NULL;
    t->nkeys--;
}

static struct owner_rec *owner_find(struct casty_timers *t, uint64_t owner, uint64_t hash)
{
    for (struct owner_rec *o = t->owners[hash & t->owners_mask]; o; o = o->next)
        if (o->owner == owner)
            return o;
    return NULL;
}

static void owners_grow(struct casty_timers *t)
{
    uint32_t n = (t->owners_mask + 1) * 2;
    if (n == 0)
        return;
    struct owner_rec **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (uint32_t i = 0; i <= t->owners_mask; i++) {
        struct owner_rec *o = t->owners[i];
        while (o) {
            struct owner_rec *next = o->next;
            o->next = b[o->hash & (n - 1)];
            b[o->hash & (n - 1)] = o;
            o = next;
        }
    }
    free(t->owners);
    t->owners = b;
    t->owners_mask = n - 1;
}

/* The owner's record, created if needed; NULL when out of memory. */
static struct owner_rec *owner_get(struct casty_timers *t, uint64_t owner)
{
    uint64_t hash = owner_hash(owner);
    struct owner_rec *o = owner_find(t, owner, hash);
    if (o)
        return o;
    o = malloc(sizeof *o);
    if (o == NULL)
        return NULL;
    if (t->nowners >= t->owners_mask + 1)
        owners_grow(t);
    o->owner = owner;
    o->hash = hash;
    o->timers = NULL;
    struct owner_rec **b = &t->owners[hash & t->owners_mask];
    o->next = *b;
    *b = o;
    t->nowners++;
    return o;
}

static void owner_remove(struct casty_timers *t, struct owner_rec *o)
{
    struct owner_rec **p = &t->owners[o->hash & t->owners_mask];
    while (*p != o)
        p = &(*p)->next;
    *p = o->next;
    t->nowners--;
    free(o);
}

static void owner_link(struct owner_rec *o, struct timer *tm)
{
    tm->rec = o;
    tm->onext = o->timers;
    if (o->timers)
        o->timers->opprev = &tm->onext;
    o->timers = tm;
    tm->opprev = &o->timers;
}

/* Takes tm out of the wheel and both tables (freeing its owner's record
 * when it was the last); the caller frees it after unlocking. */
static void detach(struct casty_timers *t, struct timer *tm)
{
    casty__wheel_cancel(&t->wheel, &tm->entry);
    key_unlink(t, tm);
    *tm->opprev = tm->onext;
    if (tm->onext)
        tm->onext->opprev = tm->opprev;
    if (tm->rec->timers == NULL)
        owner_remove(t, tm->rec);
}

/* Runs arg_free and frees each timer of a list linked through hnext.
 * Outside the lock. */
static void free_timers(struct timer *list)
{
    while (list) {
        struct timer *next = list->hnext;
        if (list->arg_free)
            list->arg_free(list->arg);
        free(list);
        list = next;
    }
}

/* ---- the reactor's side --------------------------------------------------------------- */

/* The clock function (reactor thread): fires what is due at `now_ns`, with
 * the lock held, and returns the next deadline. */
static uint64_t expire(void *ctx, uint64_t now_ns)
{
    struct casty_timers *t = ctx;
    struct timer *done = NULL;
    pthread_mutex_lock(&t->lock);
    struct casty__wheel_entry *e = casty__wheel_advance(&t->wheel, tick_floor(t, now_ns));
    while (e) {
        struct casty__wheel_entry *next = e->next; /* insert below reuses it */
        struct timer *tm = (struct timer *)e;
        tm->fn(tm->arg);
        if (tm->interval_ns) {
            tm->deadline_ns = next_period(tm->deadline_ns, tm->interval_ns, now_ns);
            casty__wheel_insert(&t->wheel, &tm->entry, tick_ceil(t, tm->deadline_ns));
        } else {
            detach(t, tm);
            tm->hnext = done;
            done = tm;
        }
        e = next;
    }
    uint64_t deadline = next_deadline(t);
    t->reported = deadline;
    pthread_mutex_unlock(&t->lock);
    free_timers(done);
    return deadline;
}

/* ---- the service ------------------------------------------------------------------------ */

int casty__timers_create(struct casty_reactor *r, struct casty_timers **out)
{
    if (out == NULL)
        return CASTY_EINVAL;
    *out = NULL;
    if (r == NULL)
        return CASTY_EINVAL;
    struct casty_timers *t = calloc(1, sizeof *t);
    if (t == NULL)
        return CASTY_ENOMEM;
    t->keys = calloc(TABLE_MIN, sizeof *t->keys);
    t->owners = calloc(TABLE_MIN, sizeof *t->owners);
    if (t->keys == NULL || t->owners == NULL) {
        free(t->keys);
        free(t->owners);
        free(t);
        return CASTY_ENOMEM;
    }
    t->keys_mask = t->owners_mask = TABLE_MIN - 1;
    pthread_mutex_init(&t->lock, NULL);
    t->reactor = r;
    t->base_ns = casty__reactor_now_ns();
    t->reported = CASTY__NO_DEADLINE;
    casty__wheel_init(&t->wheel, 0);
    casty__reactor_set_clock(r, expire, t);
    *out = t;
    return 0;
}

void casty__timers_close(struct casty_timers *t)
{
    if (t == NULL)
        return;
    struct timer *all = NULL;
    pthread_mutex_lock(&t->lock);
    if (!t->closed) {
        t->closed = true;
        for (uint32_t i = 0; i <= t->owners_mask; i++) {
            struct owner_rec *o = t->owners[i];
            t->owners[i] = NULL;
            while (o) {
                struct owner_rec *next = o->next;
                for (struct timer *tm = o->timers, *tn; tm; tm = tn) {
                    tn = tm->onext;
                    casty__wheel_cancel(&t->wheel, &tm->entry);
                    tm->hnext = all;
                    all = tm;
                }
                free(o);
                o = next;
            }
        }
        memset(t->keys, 0, (t->keys_mask + 1) * sizeof *t->keys);
        t->nkeys = t->nowners = 0;
    }
    pthread_mutex_unlock(&t->lock);
    free_timers(all);
}

void casty__timers_destroy(struct casty_timers *t)
{
    if (t == NULL)
        return;
    /* After this the reactor never calls expire with t again. */
    casty__reactor_set_clock(t->reactor, NULL, NULL);
    casty__timers_close(t);
    free(t->keys);
    free(t->owners);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static size_t key_length(const char *key)
{
    if (key == NULL)
        return 0;
    size_t n = strnlen(key, KEY_MAX + 1);
    return n > KEY_MAX ? 0 : n;
}

int casty__timers_start(struct casty_timers *t, uint64_t owner, const char *key,
                        uint64_t delay_ns, uint64_t interval_ns, casty__timer_fn fn, void *arg,
                        void (*arg_free)(void *arg))
{
    int rc = CASTY_EINVAL;
    size_t len = key_length(key);
    if (t == NULL || fn == NULL || len == 0)
        goto fail_arg;
    rc = CASTY_ENOMEM;
    struct timer *tm = malloc(sizeof *tm + len + 1);
    if (tm == NULL)
        goto fail_arg;
    memset(tm, 0, sizeof *tm);
    memcpy(tm->key, key, len + 1);
    tm->keylen = len;
    tm->owner = owner;
    tm->hash = key_hash(owner, key, len);
    tm->interval_ns = interval_ns;
    tm->fn = fn;
    tm->arg = arg;
    tm->arg_free = arg_free;
    uint64_t now = casty__reactor_now_ns();
    tm->deadline_ns = add_sat(now, delay_ns);

    bool earlier = false;
    struct timer *old = NULL;
    pthread_mutex_lock(&t->lock);
    rc = CASTY_ESHUTDOWN;
    if (t->closed)
        goto fail_locked;
    rc = CASTY_ENOMEM;
    struct owner_rec *o = owner_get(t, owner);
    if (o == NULL)
        goto fail_locked;
    old = key_find(t, owner, key, len, tm->hash);
    uint64_t now_tick = tick_floor(t, now);
    refresh_clock(t, now_tick);
    uint64_t expires = tm->deadline_ns <= now ? now_tick : tick_ceil(t, tm->deadline_ns);
    casty__wheel_insert(&t->wheel, &tm->entry, expires);
    key_link(t, tm);
    owner_link(o, tm);
    if (old)
        detach(t, old); /* the owner keeps tm, so its record stays */
    uint64_t deadline = next_deadline(t);
    if (deadline < t->reported) {
        t->reported = deadline;
        earlier = true;
    }
    pthread_mutex_unlock(&t->lock);
    if (old) {
        old->hnext = NULL;
        free_timers(old);
    }
    if (earlier)
        casty__reactor_clock_changed(t->reactor);
    return 0;

fail_locked:
    pthread_mutex_unlock(&t->lock);
    free(tm);
fail_arg:
    if (arg_free)
        arg_free(arg);
    return rc;
}

int casty__timers_cancel(struct casty_timers *t, uint64_t owner, const char *key)
{
    size_t len = key_length(key);
    if (t == NULL || len == 0)
        return CASTY_EINVAL;
    uint64_t hash = key_hash(owner, key, len);
    pthread_mutex_lock(&t->lock);
    struct timer *tm = key_find(t, owner, key, len, hash);
    if (tm)
        detach(t, tm);
    pthread_mutex_unlock(&t->lock);
    if (tm == NULL)
        return CASTY_ENOENT;
    tm->hnext = NULL;
    free_timers(tm);
    return 0;
}

void casty__timers_cancel_owner(struct casty_timers *t, uint64_t owner)
{
    if (t == NULL)
        return;
    struct timer *all = NULL;
    pthread_mutex_lock(&t->lock);
    struct owner_rec *o = owner_find(t, owner, owner_hash(owner));
    if (o) {
        for (struct timer *tm = o->timers, *tn; tm; tm = tn) {
            tn = tm->onext;
            casty__wheel_cancel(&t->wheel, &tm->entry);
            key_unlink(t, tm);
            tm->hnext = all;
            all = tm;
        }
        owner_remove(t, o);
    }
    pthread_mutex_unlock(&t->lock);
    free_timers(all);
}

/* ---- the system-level API ------------------------------------------------------------- */

/* A system timer's argument: where to send, and the value copied at start.
 * Types with a drop function are refused (CASTY_EINVAL): each firing sends
 * a bitwise copy that the receiver's drop would release, so a second firing
 * would hand out what the first already released. */
struct sys_timer {
    casty_ref_t to;
    const casty_type_t *type;
    alignas(16) unsigned char value[];
};

static void sys_timer_fire(void *arg)
{
    struct sys_timer *s = arg;
    /* A stopped target makes a dead letter; a vanished system answers
     * CASTY_ESHUTDOWN. Neither is the timer's to report. */
    (void)casty_tell(s->to, s->type, s->value);
}

static uint64_t ms_to_ns(uint64_t ms)
{
    return ms > (UINT64_MAX - 1) / NS_PER_TICK ? UINT64_MAX - 1 : ms * NS_PER_TICK;
}

static int sys_timer_start(casty_system_t *sys, const char *key, casty_ref_t to,
                           const casty_type_t *type, const void *value, uint64_t delay_ms,
                           uint64_t interval_ms)
{
    if (sys == NULL || key_length(key) == 0 || type == NULL || type->name == NULL ||
        type->drop != NULL || (value == NULL && type->size > 0))
        return CASTY_EINVAL;
    struct casty_timers *t = sys->timers;
    if (t == NULL)
        return CASTY_ESHUTDOWN;
    struct sys_timer *s = malloc(sizeof *s + type->size);
    if (s == NULL)
        return CASTY_ENOMEM;
    s->to = to;
    s->type = type;
    if (type->size)
        memcpy(s->value, value, type->size);
    return casty__timers_start(t, 0, key, ms_to_ns(delay_ms),
                               interval_ms ? ms_to_ns(interval_ms) : 0, sys_timer_fire, s, free);
}

int casty_timer_tick(casty_system_t *sys, const char *key, casty_ref_t to,
                     const casty_type_t *type, const void *value, uint64_t interval_ms)
{
    if (interval_ms == 0)
        return CASTY_EINVAL;
    return sys_timer_start(sys, key, to, type, value, interval_ms, interval_ms);
}

int casty_timer_schedule(casty_system_t *sys, const char *key, casty_ref_t to,
                         const casty_type_t *type, const void *value, uint64_t delay_ms)
{
    return sys_timer_start(sys, key, to, type, value, delay_ms, 0);
}

int casty_timer_cancel(casty_system_t *sys, const char *key)
{
    if (sys == NULL || key_length(key) == 0)
        return CASTY_EINVAL;
    if (sys->timers == NULL)
        return CASTY_ENOENT;
    return casty__timers_cancel(sys->timers, 0, key);
}
