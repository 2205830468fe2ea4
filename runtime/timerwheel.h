/* Internal (not installed). A hierarchical timer wheel: pure logic, no
 * clock, no locks, no allocation. Time is a count of abstract ticks passed
 * in by the caller (timers.c uses 1 ms ticks); the caller owns every entry
 * and serialises every call.
 *
 * Shape: CASTY__WHEEL_LEVELS levels of 64 slots. Level L slot s holds the
 * entries whose expiry agrees with `now` on every 6-bit digit above digit L
 * and has digit L == s (always > now's digit L). 11 levels of 6 bits cover
 * the whole 64-bit tick range, so there is no overflow list and no expiry
 * is too far away.
 *
 * Costs: insert and cancel are O(1) (an intrusive doubly linked slot list
 * and one bit in the level's occupancy word). Advancing the clock visits
 * at most one slot per level that needs re-sorting (the slot the new time
 * has just reached), finds occupied slots through the occupancy words, and
 * touches only entries that expire or move down a level. An entry moves
 * down at most once per level in its life, so a live timer costs O(1)
 * amortised however many ticks pass; a tick that crosses no occupied slot
 * touches no entry at all. `touched` counts every entry moved or expired,
 * so tests can check that. */
#ifndef CASTY_TIMERWHEEL_H
#define CASTY_TIMERWHEEL_H

#include <stdbool.h>
#include <stdint.h>

#define CASTY__WHEEL_BITS 6
#define CASTY__WHEEL_SLOTS (1u << CASTY__WHEEL_BITS)
#define CASTY__WHEEL_LEVELS 11 /* 11 * 6 = 66 >= 64 bits of ticks */

/* Embed one in the caller's timer. Fields are the wheel's; read `expires`
 * only. */
struct casty__wheel_entry {
    struct casty__wheel_entry *next;
    struct casty__wheel_entry **pprev; /* NULL when not in the wheel */
    uint64_t expires;                  /* tick */
    uint64_t seq;                      /* insertion order, for stable firing order */
    uint8_t level;                     /* CASTY__WHEEL_LEVELS: the due list */
    uint8_t slot;
};

struct casty__wheel {
    uint64_t now;     /* every entry with expires <= now is in `due` or returned */
    uint64_t seq;     /* next insertion number */
    uint64_t count;   /* entries in the wheel (slots and due list) */
    uint64_t touched; /* cumulative: entries moved between slots or expired by advance */
    uint64_t occupied[CASTY__WHEEL_LEVELS]; /* bit s: slot s is non-empty */
    struct casty__wheel_entry *due;         /* expired, not yet returned by advance */
    struct casty__wheel_entry *slots[CASTY__WHEEL_LEVELS][CASTY__WHEEL_SLOTS];
};

/* Starts an empty wheel at tick `now`. */
void casty__wheel_init(struct casty__wheel *w, uint64_t now);

/* Adds `e` (which must not be in a wheel) to expire at tick `expires`. An
 * expiry at or before w->now is due: the next advance returns it. O(1). */
void casty__wheel_insert(struct casty__wheel *w, struct casty__wheel_entry *e, uint64_t expires);

/* Removes `e` if it is in the wheel. Returns true when it was, false when it
 * was not (never inserted, already cancelled, or already returned). O(1). */
bool casty__wheel_cancel(struct casty__wheel *w, struct casty__wheel_entry *e);

static inline bool casty__wheel_pending(const struct casty__wheel_entry *e)
{
    return e->pprev != NULL;
}

/* Moves the clock to `now` (a time before w->now counts as w->now) and
 * returns the entries that have expired (expires <= now), taken out of the
 * wheel, linked through `next` and sorted by (expires, insertion order);
 * NULL when none. The caller may re-insert a returned entry, which reuses
 * its `next`: read `next` first. */
struct casty__wheel_entry *casty__wheel_advance(struct casty__wheel *w, uint64_t now);

/* A tick at which the caller should next call advance: no entry expires
 * before it, and advancing to it makes progress (it returns entries or
 * moves some to lower levels, after which this gets more precise). w->now
 * when entries are due, UINT64_MAX when the wheel is empty. O(levels). */
uint64_t casty__wheel_next(const struct casty__wheel *w);

#endif
