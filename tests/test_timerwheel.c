/* The pure timer wheel (runtime/timerwheel.c): every entry comes back
 * exactly at its tick, in deadline order, across cascades between levels;
 * cancel is final; far-future expiries work; and a tick costs nothing per
 * live timer (counted through the wheel's `touched` counter, not timed). */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "helpers.h"
#include "timerwheel.h"

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Advances one tick at a time from w->now to `to`, checking that every
 * returned entry expires exactly at the tick that returned it and that the
 * list is in (expires, insertion) order. Returns how many came back and
 * adds each entry's index (entries[i]) to fired[i]. */
static uint64_t step_to(struct casty__wheel *w, uint64_t to, struct casty__wheel_entry *entries,
                        uint32_t *fired)
{
    uint64_t n = 0;
    while (w->now < to) {
        uint64_t tick = w->now + 1;
        struct casty__wheel_entry *e = casty__wheel_advance(w, tick);
        const struct casty__wheel_entry *prev = NULL;
        for (; e; e = e->next) {
            cr_assert_eq(e->expires, tick, "entry due at %llu came back at %llu",
                         (unsigned long long)e->expires, (unsigned long long)tick);
            cr_assert(!casty__wheel_pending(e));
            if (prev)
                cr_assert(prev->seq < e->seq);
            prev = e;
            fired[e - entries]++;
            n++;
        }
    }
    return n;
}

Test(timerwheel, empty_wheel)
{
    struct casty__wheel w;
    casty__wheel_init(&w, 100);
    cr_assert_eq(casty__wheel_next(&w), UINT64_MAX);
    cr_assert_null(casty__wheel_advance(&w, 1000000));
    cr_assert_eq(w.now, 1000000);
    cr_assert_null(casty__wheel_advance(&w, 5)); /* time never goes back */
    cr_assert_eq(w.now, 1000000);
    cr_assert_eq(w.count, 0);
}

Test(timerwheel, fires_in_deadline_order_when_advanced_in_one_jump)
{
    struct casty__wheel w;
    casty__wheel_init(&w, 0);
    enum { N = 1000 };
    static struct casty__wheel_entry e[N];
    uint64_t x = 12345;
    for (int i = 0; i < N; i++)
        casty__wheel_insert(&w, &e[i], 1 + rng_next(&x) % 300000);
    cr_assert_eq(w.count, N);
    struct casty__wheel_entry *list = casty__wheel_advance(&w, 300000);
    int n = 0;
    for (struct casty__wheel_entry *p = list; p; p = p->next, n++) {
        if (p->next) {
            cr_assert_leq(p->expires, p->next->expires);
            if (p->expires == p->next->expires)
                cr_assert_lt(p->seq, p->next->seq, "equal deadlines fire in insertion order");
        }
    }
    cr_assert_eq(n, N);
    cr_assert_eq(w.count, 0);
    cr_assert_eq(casty__wheel_next(&w), UINT64_MAX);
}

Test(timerwheel, cascades_across_levels_and_fires_exactly_on_time)
{
    struct casty__wheel w;
    casty__wheel_init(&w, 0);
    /* Boundaries of levels 0..3 and their neighbours. */
    static const uint64_t at[] = {1,    2,    63,   64,    65,    127,   128,   4095,
                                  4096, 4097, 8191, 40000, 262143, 262144, 262145, 300000};
    enum { N = sizeof at / sizeof at[0] };
    struct casty__wheel_entry e[N];
    uint32_t fired[N] = {0};
    for (int i = 0; i < N; i++)
        casty__wheel_insert(&w, &e[i], at[i]);
    cr_assert_eq(step_to(&w, 300000, e, fired), N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(fired[i], 1, "entry %d (tick %llu) fired %u times", i,
                     (unsigned long long)at[i], fired[i]);
    cr_assert_eq(w.count, 0);
}

Test(timerwheel, inserting_mid_way_places_relative_to_now)
{
    struct casty__wheel w;
    casty__wheel_init(&w, 0);
    cr_assert_null(casty__wheel_advance(&w, 4000)); /* now = 4000: digit 0 = 32, digit 1 = 62 */
    struct casty__wheel_entry e[4];
    uint32_t fired[4] = {0};
    casty__wheel_insert(&w, &e[0], 4001);
    casty__wheel_insert(&w, &e[1], 4032); /* crosses the level-0 wrap */
    casty__wheel_insert(&w, &e[2], 4096); /* crosses the level-1 wrap */
    casty__wheel_insert(&w, &e[3], 12345);
    cr_assert_eq(casty__wheel_next(&w), 4001);
    cr_assert_eq(step_to(&w, 12345, e, fired), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(fired[i], 1);
}

Test(timerwheel, due_entries_come_back_on_the_next_advance)
{
    struct casty__wheel w;
    casty__wheel_init(&w, 500);
    struct casty__wheel_entry a, b;
    casty__wheel_insert(&w, &a, 500); /* == now */
    casty__wheel_insert(&w, &b, 3);   /* in the past */
    cr_assert_eq(casty__wheel_next(&w), 500);
    struct casty__wheel_entry *list = casty__wheel_advance(&w, 500);
    cr_assert_eq(list, &b, "earlier deadline first");
    cr_assert_eq(list->next, &a);
    cr_assert_null(list->next->next);
    cr_assert_eq(w.count, 0);
}

Test(timerwheel, cancel_is_final_and_idempotent)
{
    struct casty__wheel w;
    casty__wheel_init(&w, 0);
    struct casty__wheel_entry a, b, c, d;
    cr_assert(!casty__wheel_cancel(&w, &(struct casty__wheel_entry){0}));
    casty__wheel_insert(&w, &a, 10);
    casty__wheel_insert(&w, &b, 10);
    casty__wheel_insert(&w, &c, 5000);
    casty__wheel_insert(&w, &d, 0); /* due */
    cr_assert(casty__wheel_cancel(&w, &a));
    cr_assert(!casty__wheel_cancel(&w, &a));
    cr_assert(casty__wheel_cancel(&w, &c));
    cr_assert(casty__wheel_cancel(&w, &d));
    cr_assert_eq(w.count, 1);
    cr_assert_eq(casty__wheel_next(&w), 10);
    struct casty__wheel_entry *list = casty__wheel_advance(&w, 100000);
    cr_assert_eq(list, &b);
    cr_assert_null(list->next);
    cr_assert(!casty__wheel_cancel(&w, &b), "a returned entry is no longer in the wheel");
    cr_assert_eq(casty__wheel_next(&w), UINT64_MAX);
    /* A returned entry may be inserted again. */
    casty__wheel_insert(&w, &b, 100010);
    cr_assert_eq(casty__wheel_advance(&w, 100010), &b);
}

Test(timerwheel, far_future_expiries)
{
    struct casty__wheel w;
    casty__wheel_init(&w, 7);
    struct casty__wheel_entry a, b, c, d;
    casty__wheel_insert(&w, &a, UINT64_C(1) << 40);
    casty__wheel_insert(&w, &b, (UINT64_C(1) << 40) + 1);
    casty__wheel_insert(&w, &c, UINT64_C(1) << 63);
    casty__wheel_insert(&w, &d, UINT64_MAX);
    uint64_t next = casty__wheel_next(&w);
    cr_assert_gt(next, 7);
    cr_assert_leq(next, UINT64_C(1) << 40);
    cr_assert_null(casty__wheel_advance(&w, (UINT64_C(1) << 40) - 1));
    cr_assert_eq(casty__wheel_advance(&w, UINT64_C(1) << 40), &a);
    cr_assert_eq(casty__wheel_next(&w), (UINT64_C(1) << 40) + 1);
    cr_assert_eq(casty__wheel_advance(&w, (UINT64_C(1) << 40) + 1), &b);
    cr_assert_null(casty__wheel_advance(&w, (UINT64_C(1) << 63) - 1));
    cr_assert_eq(casty__wheel_advance(&w, UINT64_C(1) << 63), &c);
    cr_assert_null(casty__wheel_advance(&w, UINT64_MAX - 1));
    cr_assert_eq(casty__wheel_advance(&w, UINT64_MAX), &d);
    cr_assert_eq(w.count, 0);
}

/* The reactor's way of driving the wheel: sleep until next(), advance to
 * it. Every entry must come back exactly at its tick, however far apart
 * the deadlines are, and next() must never pass an entry. */
Test(timerwheel, jumping_to_next_never_skips_an_entry)
{
    uint64_t seed = stress_seed("timerwheel/jumping_to_next_never_skips_an_entry");
    uint64_t x = seed | 1;
    struct casty__wheel w;
    casty__wheel_init(&w, rng_next(&x) % 1000000);
    enum { N = 20000 };
    static struct casty__wheel_entry e[N];
    static uint32_t fired[N];
    uint64_t start = w.now;
    for (int i = 0; i < N; i++) {
        fired[i] = 0;
        int shift = (int)(rng_next(&x) % 40); /* deadlines spread over every level in use */
        casty__wheel_insert(&w, &e[i], start + 1 + (rng_next(&x) & ((UINT64_C(1) << shift) - 1)));
    }
    uint64_t returned = 0, wakes = 0;
    for (uint64_t t; (t = casty__wheel_next(&w)) != UINT64_MAX; wakes++) {
        cr_assert_geq(t, w.now);
        for (struct casty__wheel_entry *p = casty__wheel_advance(&w, t); p; p = p->next) {
            cr_assert_eq(p->expires, t, "seed %llu: due %llu, back at %llu",
                         (unsigned long long)seed, (unsigned long long)p->expires,
                         (unsigned long long)t);
            fired[p - e]++;
            returned++;
        }
    }
    cr_assert_eq(returned, N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(fired[i], 1);
    /* Each entry moves down at most once per level: bounded wake-ups. */
    cr_assert_leq(wakes, (uint64_t)N * CASTY__WHEEL_LEVELS);
}

/* 10^5 live timers: a tick that reaches no occupied slot touches no entry;
 * over their whole lives, each entry is touched at most once per level it
 * starts above, plus once to expire; cancelling them all costs one unlink
 * each and leaves the wheel empty. */
Test(timerwheel, hundred_thousand_timers_cost_o1_per_tick)
{
    struct casty__wheel w;
    casty__wheel_init(&w, 0);
    enum { N = 100000, FIRST = 100000, SPAN = 1000000 };
    struct casty__wheel_entry *e = calloc(N, sizeof *e);
    uint32_t *fired = calloc(N, sizeof *fired);
    cr_assert_not_null(e);
    cr_assert_not_null(fired);
    uint64_t x = 99;
    for (int i = 0; i < N; i++)
        casty__wheel_insert(&w, &e[i], FIRST + rng_next(&x) % SPAN);
    cr_assert_eq(w.count, N);

    /* 1000 ticks far from every deadline: nothing touched at all. */
    for (uint64_t tick = 1; tick <= 1000; tick++)
        cr_assert_null(casty__wheel_advance(&w, tick));
    cr_assert_eq(w.touched, 0, "idle ticks touched %llu entries", (unsigned long long)w.touched);

    /* Cancel every other one: O(1) each, and they never come back. */
    for (int i = 0; i < N; i += 2)
        cr_assert(casty__wheel_cancel(&w, &e[i]));
    cr_assert_eq(w.count, N / 2);
    cr_assert_eq(w.touched, 0);

    /* Tick by tick through the whole span. */
    uint64_t max_per_tick = 0, before = w.touched, n = 0;
    while (w.now < FIRST + SPAN) {
        uint64_t t0 = w.touched;
        n += step_to(&w, w.now + 1, e, fired);
        if (w.touched - t0 > max_per_tick)
            max_per_tick = w.touched - t0;
    }
    cr_assert_eq(n, N / 2);
    for (int i = 0; i < N; i++)
        cr_assert_eq(fired[i], (uint32_t)(i % 2), "entry %d fired %u times", i, fired[i]);
    /* Deadlines below 2^20 ticks sit in levels 0..3: at most 3 moves and 1
     * expiry per entry. */
    uint64_t total = w.touched - before;
    cr_assert_leq(total, (uint64_t)(N / 2) * 4, "touched %llu for %d timers",
                  (unsigned long long)total, N / 2);
    /* The busiest tick is a cascade: the one level-3 slot the clock has just
     * reached (262144 ticks, about a quarter of the span) moves down whole.
     * That is the hierarchical wheel's amortisation, not a scan: it is a
     * fraction of the live timers and each of them pays for it once. */
    cr_assert_lt(max_per_tick, (uint64_t)N / 2 / 3, "one tick touched %llu entries",
                 (unsigned long long)max_per_tick);
    cr_assert_eq(w.count, 0);
    free(e);
    free(fired);
}
