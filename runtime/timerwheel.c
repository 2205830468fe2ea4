/* The hierarchical timer wheel (see timerwheel.h for its shape and costs):
 * placing entries by the highest 6-bit digit in which their expiry differs
 * from the wheel's clock, and advancing the clock by re-sorting only the
 * slots the new time reaches. Pure: no clock reads, no locks, no memory
 * allocation; the caller serialises calls and owns the entries.
 *
 * The invariant everything rests on: an entry in level L, slot s has an
 * expiry greater than `now` that agrees with `now` on all digits above L
 * and whose digit L is s. When the clock moves from `old` to `now`:
 * - at a level whose higher digits changed, every entry has expired (its
 *   higher digits are old's, which are below now's);
 * - at the first level whose higher digits did not change, the slots
 *   strictly between old's and now's digit have expired, and the slot equal
 *   to now's digit holds entries that now agree with `now` on one more
 *   digit: they move to a lower level (or have expired);
 * - the levels above that one are untouched, since there `now` still
 *   agrees with `old`. */
#include <stddef.h>

#include "timerwheel.h"

#define DUE_LEVEL CASTY__WHEEL_LEVELS
#define SLOT_MASK (CASTY__WHEEL_SLOTS - 1)

static void link_head(struct casty__wheel_entry **head, struct casty__wheel_entry *e)
{
    e->next = *head;
    if (*head)
        (*head)->pprev = &e->next;
    *head = e;
    e->pprev = head;
}

static void unlink_entry(struct casty__wheel *w, struct casty__wheel_entry *e)
{
    *e->pprev = e->next;
    if (e->next)
        e->next->pprev = e->pprev;
    e->pprev = NULL;
    e->next = NULL;
    if (e->level != DUE_LEVEL && w->slots[e->level][e->slot] == NULL)
        w->occupied[e->level] &= ~(UINT64_C(1) << e->slot);
}

/* Puts e where its expiry belongs relative to w->now. Keeps e->seq. */
static void place(struct casty__wheel *w, struct casty__wheel_entry *e)
{
    if (e->expires <= w->now) {
        e->level = DUE_LEVEL;
        e->slot = 0;
        link_head(&w->due, e);
        return;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(e->expires ^ w->now);
    unsigned level = msb / CASTY__WHEEL_BITS;
    unsigned slot = (unsigned)(e->expires >> (level * CASTY__WHEEL_BITS)) & SLOT_MASK;
    e->level = (uint8_t)level;
    e->slot = (uint8_t)slot;
    link_head(&w->slots[level][slot], e);
    w->occupied[level] |= UINT64_C(1) << slot;
}

void casty__wheel_init(struct casty__wheel *w, uint64_t now)
{
    *w = (struct casty__wheel){.now = now};
}

void casty__wheel_insert(struct casty__wheel *w, struct casty__wheel_entry *e, uint64_t expires)
{
    e->expires = expires;
    e->seq = w->seq++;
    place(w, e);
    w->count++;
}

bool casty__wheel_cancel(struct casty__wheel *w, struct casty__wheel_entry *e)
{
    if (e->pprev == NULL)
        return false;
    unlink_entry(w, e);
    w->count--;
    return true;
}

/* Moves every entry of *head onto the singly linked list *out, marking
 * each as out of the wheel. Returns how many moved. */
static uint64_t take_list(struct casty__wheel_entry **head, struct casty__wheel_entry **out)
{
    uint64_t n = 0;
    struct casty__wheel_entry *e = *head;
    *head = NULL;
    while (e) {
        struct casty__wheel_entry *next = e->next;
        e->pprev = NULL;
        e->next = *out;
        *out = e;
        e = next;
        n++;
    }
    return n;
}

/* Takes the slots of `level` selected by `mask` onto *out. */
static uint64_t take_slots(struct casty__wheel *w, unsigned level, uint64_t mask,
                           struct casty__wheel_entry **out)
{
    uint64_t n = 0;
    uint64_t bits = w->occupied[level] & mask;
    w->occupied[level] &= ~mask;
    while (bits) {
        unsigned slot = (unsigned)__builtin_ctzll(bits);
        bits &= bits - 1;
        n += take_list(&w->slots[level][slot], out);
    }
    return n;
}

static bool before(const struct casty__wheel_entry *a, const struct casty__wheel_entry *b)
{
    return a->expires < b->expires || (a->expires == b->expires && a->seq < b->seq);
}

/* Merge sort of a singly linked list by (expires, seq). Recursion depth is
 * log2 of the length. */
static struct casty__wheel_entry *sort_list(struct casty__wheel_entry *list)
{
    if (list == NULL || list->next == NULL)
        return list;
    struct casty__wheel_entry *slow = list, *fast = list->next;
    while (fast && fast->next) {
        slow = slow->next;
        fast = fast->next->next;
    }
    struct casty__wheel_entry *right = slow->next;
    slow->next = NULL;
    struct casty__wheel_entry *a = sort_list(list), *b = sort_list(right);
    struct casty__wheel_entry *head = NULL, **tail = &head;
    while (a && b) {
        if (before(b, a)) {
            *tail = b;
            b = b->next;
        } else {
            *tail = a;
            a = a->next;
        }
        tail = &(*tail)->next;
    }
    *tail = a ? a : b;
    return head;
}

struct casty__wheel_entry *casty__wheel_advance(struct casty__wheel *w, uint64_t now)
{
    struct casty__wheel_entry *expired = NULL, *resort = NULL;
    uint64_t nexpired = take_list(&w->due, &expired);
    uint64_t old = w->now;
    if (now > old) {
        for (unsigned level = 0; level < CASTY__WHEEL_LEVELS; level++) {
            unsigned shift = level * CASTY__WHEEL_BITS;
            unsigned high = shift + CASTY__WHEEL_BITS;
            if (high < 64 && (now >> high) != (old >> high)) {
                nexpired += take_slots(w, level, ~UINT64_C(0), &expired);
                continue;
            }
            unsigned dold = (unsigned)(old >> shift) & SLOT_MASK;
            unsigned dnow = (unsigned)(now >> shift) & SLOT_MASK;
            /* dnow > dold here: the higher digits are equal and now > old. */
            uint64_t between = ((UINT64_C(1) << dnow) - 1) & ~((UINT64_C(2) << dold) - 1);
            nexpired += take_slots(w, level, between, &expired);
            take_slots(w, level, UINT64_C(1) << dnow, &resort);
            break;
        }
        w->now = now;
    }
    w->count -= nexpired;
    w->touched += nexpired;
    while (resort) {
        struct casty__wheel_entry *e = resort;
        resort = e->next;
        w->touched++;
        if (e->expires <= now) {
            e->next = expired;
            expired = e;
            w->count--;
        } else {
            place(w, e);
        }
    }
    return sort_list(expired);
}

uint64_t casty__wheel_next(const struct casty__wheel *w)
{
    if (w->due)
        return w->now;
    for (unsigned level = 0; level < CASTY__WHEEL_LEVELS; level++) {
        if (w->occupied[level] == 0)
            continue;
        unsigned shift = level * CASTY__WHEEL_BITS;
        unsigned high = shift + CASTY__WHEEL_BITS;
        uint64_t slot = (uint64_t)__builtin_ctzll(w->occupied[level]);
        uint64_t base = high < 64 ? (w->now >> high) << high : 0;
        return base | slot << shift;
    }
    return UINT64_MAX;
}
