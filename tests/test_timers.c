/* System timers through the public API (casty_timer_tick/schedule/cancel)
 * with real actors: ticks repeat, one-shots fire once and never early,
 * cancelled and replaced timers never deliver, 10^5 timers are cheap to
 * start and cancel, shutdown with live timers leaks nothing, bad input is
 * refused. A "sentinel" timer due after the one under test proves a
 * negative without sleeping: the reactor fires timers in deadline order
 * and one sender's messages arrive in order, so once the sentinel has
 * arrived, an earlier timer that was going to deliver has delivered. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "casty.h"
#include "helpers.h"

CASTY_MESSAGE(timer_msg, uint32_t id; uint32_t value;);
CASTY_SIGNAL(timer_sig);

static void drop_nothing(void *value)
{
    (void)value;
}
CASTY_MESSAGE_DECLARE(owning_msg, char *text;);
CASTY_MESSAGE_DEFINE_OPS(owning_msg, NULL, NULL, drop_nothing);

#define MAX_IDS (1u << 17)
#define SENTINEL 0u
#define MAX_TIMES 16u

static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t counts[MAX_IDS];
static uint32_t last_value[MAX_IDS];
static uint64_t times[MAX_TIMES]; /* arrival times of id 4 */
static latch_t arrivals = LATCH_INIT;
static latch_t sentinel = LATCH_INIT;
static latch_t signals = LATCH_INIT;

static void reset_records(void)
{
    pthread_mutex_lock(&rec_mu);
    memset(counts, 0, sizeof counts);
    memset(last_value, 0, sizeof last_value);
    memset(times, 0, sizeof times);
    pthread_mutex_unlock(&rec_mu);
    arrivals.count = sentinel.count = signals.count = 0;
}

static uint32_t count_of(uint32_t id)
{
    pthread_mutex_lock(&rec_mu);
    uint32_t n = counts[id];
    pthread_mutex_unlock(&rec_mu);
    return n;
}

static casty_behavior_t *recorder(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)state;
    if (casty_msg_is(msg, timer_sig)) {
        latch_add(&signals, 1);
        return casty_same();
    }
    const timer_msg *m = casty_msg_as(msg, timer_msg);
    if (m == NULL)
        return casty_unhandled();
    uint64_t t = now_ns();
    pthread_mutex_lock(&rec_mu);
    uint32_t n = counts[m->id % MAX_IDS]++;
    last_value[m->id % MAX_IDS] = m->value;
    if (m->id == 4 && n < MAX_TIMES)
        times[n] = t;
    pthread_mutex_unlock(&rec_mu);
    latch_add(m->id == SENTINEL ? &sentinel : &arrivals, 1);
    return casty_same();
}

static casty_system_t *new_system(casty_ref_t *rec)
{
    reset_records();
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.workers = 2;
    casty_system_t *sys = NULL;
    cr_assert_eq(casty_system_create(&cfg, &sys), 0);
    cr_assert_eq(casty_spawn(sys, casty_receive(recorder, NULL, 0), "recorder", NULL, rec), 0);
    return sys;
}

static int schedule(casty_system_t *sys, const char *key, casty_ref_t to, uint32_t id,
                    uint32_t value, uint64_t delay_ms)
{
    return casty_timer_schedule(sys, key, to, &timer_msg_type, &(timer_msg){id, value}, delay_ms);
}

/* Waits for the sentinel, due `delay_ms` from now. */
static void await_sentinel(casty_system_t *sys, casty_ref_t rec, uint64_t delay_ms)
{
    cr_assert_eq(schedule(sys, "sentinel", rec, SENTINEL, 0, delay_ms), 0);
    cr_assert_eq(latch_wait(&sentinel, 1, delay_ms + 10000), 1, "the sentinel never came");
}

Test(timers, tick_delivers_repeatedly)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    cr_assert_eq(casty_timer_tick(sys, "tick", rec, &timer_msg_type, &(timer_msg){1, 7}, 50), 0);
    uint64_t n = latch_wait(&arrivals, 3, 300);
    cr_assert_geq(n, 3, "a 50 ms tick delivered %llu times in 300 ms", (unsigned long long)n);
    cr_assert_eq(casty_timer_cancel(sys, "tick"), 0);
    cr_assert_eq(casty_timer_cancel(sys, "tick"), CASTY_ENOENT);
    /* After the cancel returns nothing more is sent: a sentinel that
     * outlives two more periods finds the count unchanged. */
    uint32_t after = count_of(1);
    await_sentinel(sys, rec, 120);
    cr_assert_eq(count_of(1), after);
    pthread_mutex_lock(&rec_mu);
    cr_assert_eq(last_value[1], 7, "each firing sends the value copied at start");
    pthread_mutex_unlock(&rec_mu);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(timers, one_shot_fires_exactly_once)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    cr_assert_eq(schedule(sys, "once", rec, 2, 0, 20), 0);
    cr_assert_eq(latch_wait(&arrivals, 1, 5000), 1);
    /* The thing under test is that nothing more arrives: a timed wait. */
    cr_assert_eq(latch_wait(&arrivals, 2, 100), 1);
    cr_assert_eq(count_of(2), 1);
    cr_assert_eq(casty_timer_cancel(sys, "once"), CASTY_ENOENT, "a fired one-shot is not live");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(timers, zero_delay_fires_promptly_and_signals_need_no_value)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    cr_assert_eq(casty_timer_schedule(sys, "now", rec, &timer_sig_type, NULL, 0), 0);
    cr_assert_eq(latch_wait(&signals, 1, 5000), 1);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(timers, never_fires_early)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    uint64_t t0 = now_ns();
    cr_assert_eq(casty_timer_tick(sys, "t", rec, &timer_msg_type, &(timer_msg){4, 0}, 20), 0);
    cr_assert_geq(latch_wait(&arrivals, 5, 5000), 5);
    cr_assert_eq(casty_timer_cancel(sys, "t"), 0);
    pthread_mutex_lock(&rec_mu);
    for (uint32_t k = 0; k < 5; k++)
        cr_assert_geq(times[k], t0 + (k + 1) * 20000000ull, "tick %u came %lld us early", k + 1,
                      (long long)(t0 + (k + 1) * 20000000ull - times[k]) / 1000);
    pthread_mutex_unlock(&rec_mu);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(timers, cancelled_timer_never_fires)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    cr_assert_eq(schedule(sys, "c1", rec, 5, 0, 150), 0);
    cr_assert_eq(casty_timer_tick(sys, "c2", rec, &timer_msg_type, &(timer_msg){5, 0}, 100), 0);
    cr_assert_eq(casty_timer_cancel(sys, "c1"), 0);
    cr_assert_eq(casty_timer_cancel(sys, "c2"), 0);
    await_sentinel(sys, rec, 300);
    cr_assert_eq(count_of(5), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(timers, replaced_timer_never_fires_its_old_message)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    /* one-shot replaced by a later one-shot */
    cr_assert_eq(schedule(sys, "k", rec, 6, 1, 150), 0);
    cr_assert_eq(schedule(sys, "k", rec, 6, 2, 200), 0);
    /* tick replaced by a one-shot */
    cr_assert_eq(casty_timer_tick(sys, "r", rec, &timer_msg_type, &(timer_msg){7, 1}, 100), 0);
    cr_assert_eq(schedule(sys, "r", rec, 7, 2, 150), 0);
    await_sentinel(sys, rec, 350);
    pthread_mutex_lock(&rec_mu);
    cr_assert_eq(counts[6], 1);
    cr_assert_eq(last_value[6], 2);
    cr_assert_eq(counts[7], 1);
    cr_assert_eq(last_value[7], 2);
    pthread_mutex_unlock(&rec_mu);
    cr_assert_eq(casty_timer_cancel(sys, "k"), CASTY_ENOENT);
    cr_assert_eq(casty_timer_cancel(sys, "r"), CASTY_ENOENT);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(timers, hundred_thousand_timers_scheduled_and_cancelled)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    enum { N = 100000 };
    char key[32];
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < N; i++) {
        snprintf(key, sizeof key, "t%u", i);
        /* Spread over levels: 1 s .. about 28 h. */
        cr_assert_eq(schedule(sys, key, rec, 1 + i % 1000, 0, 1000 + (uint64_t)i * 1000), 0);
    }
    uint64_t t1 = now_ns();
    for (uint32_t i = 0; i < N; i++) {
        snprintf(key, sizeof key, "t%u", i);
        cr_assert_eq(casty_timer_cancel(sys, key), 0);
    }
    uint64_t t2 = now_ns();
    cr_assert_eq(casty_timer_cancel(sys, "t0"), CASTY_ENOENT);
    fprintf(stderr, "timers: %d schedules %.0f ns each, cancels %.0f ns each\n", N,
            (double)(t1 - t0) / N, (double)(t2 - t1) / N);
    /* Generous bound (sanitizer builds, busy CI); a scan per call would
     * take minutes. */
    cr_assert_lt(t2 - t0, 10000000000ull);
    await_sentinel(sys, rec, 1);
    cr_assert_eq(latch_get(&arrivals), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(timers, ten_thousand_timers_each_fire_once)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    uint64_t seed = stress_seed("timers/ten_thousand_timers_each_fire_once");
    uint64_t x = seed | 1;
    enum { N = 10000 };
    char key[32];
    for (uint32_t i = 1; i <= N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        snprintf(key, sizeof key, "f%u", i);
        cr_assert_eq(schedule(sys, key, rec, i, i, x % 100), 0);
    }
    cr_assert_eq(latch_wait(&arrivals, N, 20000), N);
    cr_assert_eq(latch_wait(&arrivals, N + 1, 50), N);
    pthread_mutex_lock(&rec_mu);
    for (uint32_t i = 1; i <= N; i++)
        cr_assert_eq(counts[i], 1, "seed %llu: timer %u fired %u times", (unsigned long long)seed,
                     i, counts[i]);
    pthread_mutex_unlock(&rec_mu);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(timers, shutdown_with_live_timers_leaks_nothing)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    char key[32];
    for (uint32_t i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "tick%u", i);
        cr_assert_eq(casty_timer_tick(sys, key, rec, &timer_msg_type, &(timer_msg){1, i},
                                      1 + i % 5), 0);
        snprintf(key, sizeof key, "once%u", i);
        cr_assert_eq(schedule(sys, key, rec, 2, i, i % 50), 0);
        snprintf(key, sizeof key, "late%u", i);
        cr_assert_eq(schedule(sys, key, rec, 3, i, 3600000), 0);
    }
    /* Shut down while they are firing. */
    cr_assert_geq(latch_wait(&arrivals, 2000, 10000), 2000);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(timers, bad_input)
{
    casty_ref_t rec;
    casty_system_t *sys = new_system(&rec);
    const timer_msg v = {1, 1};
    char long_key[65];
    memset(long_key, 'k', 64);
    long_key[64] = '\0';
    cr_assert_eq(casty_timer_tick(NULL, "k", rec, &timer_msg_type, &v, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_tick(sys, NULL, rec, &timer_msg_type, &v, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_tick(sys, "", rec, &timer_msg_type, &v, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_tick(sys, long_key, rec, &timer_msg_type, &v, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_tick(sys, "k", rec, NULL, &v, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_tick(sys, "k", rec, &timer_msg_type, NULL, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_tick(sys, "k", rec, &timer_msg_type, &v, 0), CASTY_EINVAL);
    cr_assert_eq(casty_timer_schedule(NULL, "k", rec, &timer_msg_type, &v, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_schedule(sys, "", rec, &timer_msg_type, &v, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_schedule(sys, "k", rec, NULL, &v, 10), CASTY_EINVAL);
    /* A type whose values own resources cannot be sent more than once. */
    owning_msg o = {NULL};
    cr_assert_eq(casty_timer_schedule(sys, "k", rec, &owning_msg_type, &o, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_tick(sys, "k", rec, &owning_msg_type, &o, 10), CASTY_EINVAL);
    cr_assert_eq(casty_timer_cancel(NULL, "k"), CASTY_EINVAL);
    cr_assert_eq(casty_timer_cancel(sys, NULL), CASTY_EINVAL);
    cr_assert_eq(casty_timer_cancel(sys, long_key), CASTY_EINVAL);
    cr_assert_eq(casty_timer_cancel(sys, "nobody"), CASTY_ENOENT);
    /* 63 bytes is the longest key; a huge delay is simply far away. */
    long_key[63] = '\0';
    cr_assert_eq(casty_timer_schedule(sys, long_key, rec, &timer_msg_type, &v, UINT64_MAX), 0);
    cr_assert_eq(casty_timer_tick(sys, "big", rec, &timer_msg_type, &v, UINT64_MAX), 0);
    cr_assert_eq(casty_timer_cancel(sys, long_key), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- CASTY_ESHUTDOWN once shutdown has closed the timers ---------------------- */

static latch_t probe_started = LATCH_INIT;
static int probe_start_rc, probe_cancel_rc;

static casty_behavior_t *prober(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)msg, (void)state;
    latch_add(&probe_started, 1);
    casty_system_t *sys = casty_ctx_system(ctx);
    casty_ref_t self = casty_ctx_self(ctx);
    uint64_t deadline = now_ns() + 20000000000ull;
    int rc;
    /* Poll, with a deadline, for the condition under test: shutdown (which
     * waits for this handler) closes the timers first. */
    while ((rc = casty_timer_schedule(sys, "probe", self, &timer_sig_type, NULL, 3600000)) == 0 &&
           now_ns() < deadline)
        sched_yield();
    __atomic_store_n(&probe_start_rc, rc, __ATOMIC_SEQ_CST);
    __atomic_store_n(&probe_cancel_rc, casty_timer_cancel(sys, "probe"), __ATOMIC_SEQ_CST);
    return casty_same();
}

Test(timers, start_after_close_is_eshutdown)
{
    casty_system_t *sys = NULL;
    cr_assert_eq(casty_system_create(NULL, &sys), 0);
    casty_ref_t p;
    cr_assert_eq(casty_spawn(sys, casty_receive(prober, NULL, 0), NULL, NULL, &p), 0);
    cr_assert_eq(casty_tell(p, &timer_sig_type, NULL), 0);
    cr_assert_eq(latch_wait(&probe_started, 1, 5000), 1);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(__atomic_load_n(&probe_start_rc, __ATOMIC_SEQ_CST), CASTY_ESHUTDOWN);
    cr_assert_eq(__atomic_load_n(&probe_cancel_rc, __ATOMIC_SEQ_CST), CASTY_ENOENT);
}
