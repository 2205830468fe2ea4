/* Test helpers: waiting on a condition with a deadline (never a bare
 * sleep), counters shared between handlers and the test thread, the
 * stress scale (CASTY_STRESS_SCALE divides iteration counts under the
 * sanitizers), and a system with a given number of workers. */
#ifndef CASTY_TEST_HELPERS_H
#define CASTY_TEST_HELPERS_H

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <casty.h>
#include <criterion/criterion.h>

/* A running system with `workers` workers (the test fails if it cannot be
 * created). */
static inline casty_system_t *system_with_workers(uint32_t workers)
{
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.workers = workers;
    casty_system_t *sys = NULL;
    cr_assert_eq(casty_system_create(&cfg, &sys), 0);
    return sys;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A counter with a condition variable: handlers add, tests wait. */
typedef struct latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t count;
} latch_t;

#define LATCH_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}

static inline void latch_add(latch_t *l, uint64_t n)
{
    pthread_mutex_lock(&l->mu);
    l->count += n;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static inline uint64_t latch_get(latch_t *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t n = l->count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* Waits until the count reaches `target` or `timeout_ms` passes; returns
 * the count seen last. */
static inline uint64_t latch_wait(latch_t *l, uint64_t target, uint64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (l->count < target) {
        if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) != 0)
            break;
    }
    uint64_t n = l->count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* Whether the atomic counter *c moves past its current value within
 * `timeout_ms` (an actor still at work). */
static inline bool counter_advances(const uint64_t *c, uint64_t timeout_ms)
{
    uint64_t seen = __atomic_load_n(c, __ATOMIC_RELAXED);
    uint64_t deadline = now_ns() + timeout_ms * 1000000ull;
    while (__atomic_load_n(c, __ATOMIC_RELAXED) == seen && now_ns() < deadline)
        sched_yield();
    return __atomic_load_n(c, __ATOMIC_RELAXED) != seen;
}

static inline uint64_t stress_scale(void)
{
    const char *s = getenv("CASTY_STRESS_SCALE");
    long v = s ? atol(s) : 1;
    return v > 0 ? (uint64_t)v : 1;
}

/* Prints and returns the seed for a seeded stress test (CASTY_SEED to replay). */
static inline uint64_t stress_seed(const char *test)
{
    const char *s = getenv("CASTY_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : (now_ns() ^ (uint64_t)(uintptr_t)&seed);
    fprintf(stderr, "%s: seed %llu (CASTY_SEED=%llu replays)\n", test, (unsigned long long)seed,
            (unsigned long long)seed);
    return seed;
}

/* xorshift64: the stress tests' PRNG (state must not be 0). */
static inline uint64_t stress_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

#endif
