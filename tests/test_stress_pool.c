/* Stress: message nodes of senders that are not the system's workers
 * (runtime/pool.c's external caches), through the public API.
 *
 * - Outside threads send at once and exit while all their messages still
 *   wait (the actors are held at a gate until every sender has exited); a
 *   second wave of threads takes over the caches the first gave back.
 *   Values too big for a pool node and sends to a stale ref (a dead letter
 *   released by the sending thread) are mixed in.
 * - More threads send at once than a system has caches for (the rest fall
 *   back to heap nodes).
 * - Systems are created and shut down over and over, with messages of
 *   exited threads still queued at shutdown, by a main thread whose
 *   thread-local table then names dead systems.
 * - One thread sends round-robin into more systems than its table holds,
 *   and keeps sending after some of them shut down.
 * - Outside threads keep sending while their system shuts down.
 * - The workers of one system send into another (workers as outside
 *   senders), and exit while their messages wait there.
 * Counts and checksums are exact. Seeded: CASTY_SEED replays the mix. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "casty.h"
#include "helpers.h"

CASTY_MESSAGE(pool_small, uint64_t value;);
CASTY_MESSAGE(pool_big, uint64_t value; unsigned char pad[160];); /* a heap node */

/* What one test's actors saw: messages handled and the sum of their values. */
struct tally {
    latch_t handled;
    uint64_t sum; /* atomic */
    latch_t gate; /* the first message of each actor waits for 1 */
};

static void tally_init(struct tally *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->handled.mu, NULL);
    pthread_cond_init(&t->handled.cv, NULL);
    pthread_mutex_init(&t->gate.mu, NULL);
    pthread_cond_init(&t->gate.cv, NULL);
}

static void tally_destroy(struct tally *t)
{
    pthread_mutex_destroy(&t->handled.mu);
    pthread_cond_destroy(&t->handled.cv);
    pthread_mutex_destroy(&t->gate.mu);
    pthread_cond_destroy(&t->gate.cv);
}

static uint64_t tally_sum(struct tally *t)
{
    return __atomic_load_n(&t->sum, __ATOMIC_RELAXED);
}

struct counter_state {
    struct tally *t;
    uint32_t gated;
};

static casty_behavior_t *counter(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    struct counter_state *s = state;
    uint64_t v;
    const pool_small *sm = casty_msg_as(msg, pool_small);
    const pool_big *bg = casty_msg_as(msg, pool_big);
    if (sm)
        v = sm->value;
    else if (bg)
        v = bg->value + bg->pad[0] + bg->pad[sizeof bg->pad - 1];
    else
        return casty_unhandled();
    if (!s->gated) {
        /* Holds this worker until the test opens the gate (deadline: a
         * lost gate fails the counts below rather than hanging). */
        latch_wait(&s->t->gate, 1, 60000);
        s->gated = 1;
    }
    __atomic_fetch_add(&s->t->sum, v, __ATOMIC_RELAXED);
    latch_add(&s->t->handled, 1);
    return casty_same();
}

static void spawn_counters(casty_system_t *sys, struct tally *t, casty_ref_t *refs, int n)
{
    struct counter_state init = {t, 0};
    for (int i = 0; i < n; i++)
        cr_assert_eq(casty_spawn(sys, casty_receive(counter, &init, sizeof init), NULL, NULL,
                                 &refs[i]),
                     0);
}

/* ---- senders that exit while their messages wait ---------------------------- */

#define GATE_ACTORS 16

struct sender_arg {
    casty_ref_t *refs;
    int nrefs;
    casty_ref_t stale;  /* a ref whose messages become dead letters at once */
    uint32_t n;         /* messages to send */
    uint64_t seed;
    uint64_t sent_sum;  /* out: sum of the values of delivered messages */
    uint32_t sent_live; /* out: messages to live actors */
    uint32_t sent_dead; /* out: messages to the stale ref */
};

static void *sender(void *p)
{
    struct sender_arg *a = p;
    uint64_t x = a->seed | 1;
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t r = stress_rand(&x);
        uint64_t value = r >> 40;
        if (r % 64 == 0) {
            cr_assert_eq(CASTY_TELL(a->stale, pool_small, .value = value), 0);
            a->sent_dead++;
            continue;
        }
        casty_ref_t to = a->refs[(r >> 8) % (uint64_t)a->nrefs];
        if (r % 16 == 1) {
            pool_big big = {.value = value};
            big.pad[0] = 1;
            big.pad[sizeof big.pad - 1] = 2;
            cr_assert_eq(casty_tell(to, &pool_big_type, &big), 0);
            value += 3;
        } else {
            cr_assert_eq(CASTY_TELL(to, pool_small, .value = value), 0);
        }
        a->sent_live++;
        a->sent_sum += value;
    }
    return NULL;
}

/* Runs `nthreads` senders to completion (every one has exited on return);
 * adds what they sent to *live, *dead and *sum. */
static void run_senders(casty_ref_t *refs, int nrefs, casty_ref_t stale, uint32_t nthreads,
                        uint32_t per, uint64_t seed, uint64_t *live, uint64_t *dead,
                        uint64_t *sum)
{
    struct sender_arg args[8];
    pthread_t th[8];
    cr_assert(nthreads <= 8);
    for (uint32_t i = 0; i < nthreads; i++) {
        args[i] = (struct sender_arg){refs, nrefs, stale, per, seed + i * 0x9e3779b97f4a7c15ull,
                                      0, 0, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, sender, &args[i]), 0);
    }
    for (uint32_t i = 0; i < nthreads; i++) {
        cr_assert_eq(pthread_join(th[i], NULL), 0);
        *live += args[i].sent_live;
        *dead += args[i].sent_dead;
        *sum += args[i].sent_sum;
    }
}

Test(stress_pool, senders_exit_while_their_messages_wait, .timeout = 300)
{
    uint64_t seed = stress_seed("stress_pool/senders_exit");
    uint32_t per = (uint32_t)(40000 / stress_scale());
    casty_system_t *sys = system_with_workers(2);
    static struct tally t;
    tally_init(&t);
    casty_ref_t refs[GATE_ACTORS];
    spawn_counters(sys, &t, refs, GATE_ACTORS);
    /* Same slot, generation 0: a dead letter at once, released by the
     * sending thread itself. */
    casty_ref_t stale = {refs[0].node, (uint32_t)refs[0].actor};

    uint64_t live = 0, dead = 0, sum = 0;
    for (int wave = 0; wave < 3; wave++) {
        run_senders(refs, GATE_ACTORS, stale, 6, per, seed + (uint64_t)wave * 1000, &live,
                    &dead, &sum);
        if (wave == 0) {
            /* Every sender has exited; the workers are held by the gate,
             * so all the messages are still queued. */
            cr_assert_eq(latch_get(&t.handled), 0, "a message was handled before the gate");
            latch_add(&t.gate, 1);
        }
        cr_assert_eq(latch_wait(&t.handled, live, 120000), live, "wave %d: handled %lu of %lu",
                     wave, (unsigned long)latch_get(&t.handled), (unsigned long)live);
    }
    cr_assert_eq(tally_sum(&t), sum, "checksum: a node was reused while in use");
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.dead_letters, dead);
    cr_assert_eq(st.unhandled, 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(latch_get(&t.handled), live);
    tally_destroy(&t);
}

/* ---- more live senders than a system has caches ------------------------------ */

#define CROWD 72 /* more than the caches a system lends (64): the rest use heap nodes */

struct crowd_arg {
    casty_ref_t to;
    uint32_t n, index;
    pthread_barrier_t *all_sent;
};

static void *crowd_sender(void *p)
{
    struct crowd_arg *a = p;
    for (uint32_t i = 0; i < a->n; i++)
        cr_assert_eq(CASTY_TELL(a->to, pool_small, .value = a->index), 0);
    /* Hold the cache until every thread has one (or found none left). */
    pthread_barrier_wait(a->all_sent);
    for (uint32_t i = 0; i < a->n; i++)
        cr_assert_eq(CASTY_TELL(a->to, pool_small, .value = a->index), 0);
    return NULL;
}

Test(stress_pool, more_senders_than_caches, .timeout = 300)
{
    uint32_t per = (uint32_t)(2000 / stress_scale());
    casty_system_t *sys = system_with_workers(2);
    static struct tally t;
    tally_init(&t);
    latch_add(&t.gate, 1);
    casty_ref_t refs[4];
    spawn_counters(sys, &t, refs, 4);
    pthread_barrier_t all_sent;
    pthread_barrier_init(&all_sent, NULL, CROWD);
    static struct crowd_arg args[CROWD];
    pthread_t th[CROWD];
    uint64_t sum = 0;
    for (uint32_t i = 0; i < CROWD; i++) {
        args[i] = (struct crowd_arg){refs[i % 4], per, i, &all_sent};
        sum += 2ull * per * i;
        cr_assert_eq(pthread_create(&th[i], NULL, crowd_sender, &args[i]), 0);
    }
    for (uint32_t i = 0; i < CROWD; i++)
        cr_assert_eq(pthread_join(th[i], NULL), 0);
    uint64_t n = 2ull * per * CROWD;
    cr_assert_eq(latch_wait(&t.handled, n, 120000), n);
    cr_assert_eq(tally_sum(&t), sum);
    pthread_barrier_destroy(&all_sent);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    tally_destroy(&t);
}

/* ---- systems created and shut down with messages queued -------------------- */

Test(stress_pool, systems_shut_down_with_queued_messages, .timeout = 300)
{
    uint64_t seed = stress_seed("stress_pool/systems_churn");
    uint32_t rounds = (uint32_t)(40 / stress_scale()) + 4;
    uint32_t per = (uint32_t)(5000 / stress_scale());
    for (uint32_t round = 0; round < rounds; round++) {
        casty_system_t *sys = system_with_workers(1 + round % 2);
        struct tally t;
        tally_init(&t);
        casty_ref_t refs[4];
        spawn_counters(sys, &t, refs, 4);
        casty_ref_t stale = {refs[0].node, (uint32_t)refs[0].actor};
        uint64_t live = 0, dead = 0, sum = 0;
        /* The main thread sends too: its table fills with entries for
         * systems that are gone by the next rounds. */
        for (uint32_t i = 0; i < 100; i++) {
            cr_assert_eq(CASTY_TELL(refs[i % 4], pool_small, .value = i), 0);
            live++;
            sum += i;
        }
        run_senders(refs, 4, stale, 3, per, seed + round, &live, &dead, &sum);
        if (round % 2 == 0) {
            /* Shut down with (nearly) everything still queued. */
            latch_add(&t.gate, 1);
        } else {
            latch_add(&t.gate, 1);
            cr_assert_eq(latch_wait(&t.handled, live, 120000), live);
            cr_assert_eq(tally_sum(&t), sum);
        }
        cr_assert_eq(casty_system_shutdown(sys), 0);
        cr_assert_leq(latch_get(&t.handled), live);
        tally_destroy(&t);
    }
}

/* ---- outside senders racing a shutdown ---------------------------------------- */

struct racer_arg {
    casty_ref_t *refs;
    int nrefs;
    uint32_t *closed;  /* atomic: 1 once casty_system_shutdown has returned */
    uint32_t *stop;    /* atomic: 1 when the sender should end */
    latch_t *warm;     /* one arrival after the racer's first 1,000 sends */
    uint64_t ok;       /* out: sends that returned 0 */
    uint64_t refused;  /* out: sends that returned CASTY_ESHUTDOWN */
    uint64_t bad;      /* out: any other result, or 0 after shutdown returned */
};

static void *racer(void *p)
{
    struct racer_arg *a = p;
    for (uint64_t i = 0; !__atomic_load_n(a->stop, __ATOMIC_ACQUIRE); i++) {
        uint32_t closed = __atomic_load_n(a->closed, __ATOMIC_ACQUIRE);
        int rc = CASTY_TELL(a->refs[i % (uint64_t)a->nrefs], pool_small, .value = 1);
        if (rc == 0 && !closed)
            a->ok++;
        else if (rc == CASTY_ESHUTDOWN)
            __atomic_fetch_add(&a->refused, 1, __ATOMIC_RELAXED); /* the test polls it */
        else
            a->bad++;
        if (i == 1000)
            latch_add(a->warm, 1);
    }
    return NULL;
}

/* Threads keep sending while the system shuts down: the registry keeps the
 * system alive for a send in progress (no use after free under ASan/TSan),
 * a send that starts after casty_system_shutdown returned is refused, and
 * nothing is handled that was not accepted. */
Test(stress_pool, outside_senders_race_shutdown, .timeout = 300)
{
    uint32_t rounds = (uint32_t)(60 / stress_scale()) + 4;
    for (uint32_t round = 0; round < rounds; round++) {
        casty_system_t *sys = system_with_workers(1 + round % 2);
        struct tally t;
        tally_init(&t);
        latch_add(&t.gate, 1); /* no gating here */
        casty_ref_t refs[3];
        spawn_counters(sys, &t, refs, 3);
        uint32_t closed = 0, stop = 0;
        latch_t warm = LATCH_INIT;
        struct racer_arg args[3];
        pthread_t th[3];
        for (int i = 0; i < 3; i++) {
            args[i] = (struct racer_arg){refs, 3, &closed, &stop, &warm, 0, 0, 0};
            cr_assert_eq(pthread_create(&th[i], NULL, racer, &args[i]), 0);
        }
        cr_assert_eq(latch_wait(&warm, 3, 60000), 3);
        cr_assert_eq(casty_system_shutdown(sys), 0);
        __atomic_store_n(&closed, 1, __ATOMIC_RELEASE);
        /* Let every racer see `closed` and be refused a few times. */
        uint64_t deadline = now_ns() + 60000000000ull;
        for (int i = 0; i < 3; i++)
            while (__atomic_load_n(&args[i].refused, __ATOMIC_RELAXED) < 100 &&
                   now_ns() < deadline)
                sched_yield();
        __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
        uint64_t ok = 0;
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(pthread_join(th[i], NULL), 0);
            cr_assert_eq(args[i].bad, 0, "round %u racer %d: %llu sends neither accepted nor "
                         "refused (or accepted after shutdown)", round, i,
                         (unsigned long long)args[i].bad);
            cr_assert_geq(args[i].refused, 100);
            ok += args[i].ok;
        }
        cr_assert_geq(ok, 3000);
        cr_assert_leq(latch_get(&t.handled), ok);
        tally_destroy(&t);
    }
}

/* ---- one thread, more systems than its table holds -------------------------- */

#define MANY_SYSTEMS 7 /* more than a thread's table of caches (4) */

struct many_arg {
    casty_ref_t refs[MANY_SYSTEMS];
    uint32_t per;                 /* rounds; each sends one message into each system */
    uint64_t sent[MANY_SYSTEMS];  /* sum of the values sent into each */
    latch_t phase1_done, go_on;   /* the thread, then the test, add 1 */
};

static void many_round(struct many_arg *a, uint32_t nsys)
{
    for (uint32_t i = 0; i < a->per; i++)
        for (uint32_t s = 0; s < nsys; s++) {
            cr_assert_eq(CASTY_TELL(a->refs[s], pool_small, .value = i), 0);
            a->sent[s] += i;
        }
}

/* All systems, then (after the test shut the last four down, so this
 * thread's table names dead systems) the first three again. */
static void *many_sender(void *p)
{
    struct many_arg *a = p;
    many_round(a, MANY_SYSTEMS);
    latch_add(&a->phase1_done, 1);
    cr_assert_eq(latch_wait(&a->go_on, 1, 120000), 1);
    many_round(a, 3);
    return NULL;
}

Test(stress_pool, one_thread_many_systems, .timeout = 300)
{
    uint32_t per = (uint32_t)(4000 / stress_scale());
    casty_system_t *sys[MANY_SYSTEMS];
    struct tally *t = calloc(MANY_SYSTEMS, sizeof *t);
    cr_assert_not_null(t);
    static struct many_arg a;
    memset(&a, 0, sizeof a);
    a.phase1_done = (latch_t)LATCH_INIT;
    a.go_on = (latch_t)LATCH_INIT;
    a.per = per;
    for (int s = 0; s < MANY_SYSTEMS; s++) {
        casty_system_config_t cfg;
        casty_system_config_init(&cfg);
        cfg.workers = 1;
        cr_assert_eq(casty_system_create(&cfg, &sys[s]), 0);
        tally_init(&t[s]);
        latch_add(&t[s].gate, 1);
        spawn_counters(sys[s], &t[s], &a.refs[s], 1);
    }
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, many_sender, &a), 0);
    cr_assert_eq(latch_wait(&a.phase1_done, 1, 120000), 1);
    for (int s = 0; s < MANY_SYSTEMS; s++) {
        cr_assert_eq(latch_wait(&t[s].handled, per, 120000), per, "system %d", s);
        cr_assert_eq(tally_sum(&t[s]), a.sent[s]);
    }
    for (int s = 3; s < MANY_SYSTEMS; s++)
        cr_assert_eq(casty_system_shutdown(sys[s]), 0);
    latch_add(&a.go_on, 1);
    cr_assert_eq(pthread_join(th, NULL), 0);
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(latch_wait(&t[s].handled, 2ull * per, 120000), 2ull * per, "system %d", s);
        cr_assert_eq(tally_sum(&t[s]), a.sent[s]);
        cr_assert_eq(casty_system_shutdown(sys[s]), 0);
    }
    for (int s = 0; s < MANY_SYSTEMS; s++)
        tally_destroy(&t[s]);
    free(t);
}

/* ---- workers of one system sending into another ------------------------------ */

struct forwarder_state {
    casty_ref_t to;
    latch_t *forwarded;
};

static casty_behavior_t *forwarder(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    struct forwarder_state *s = state;
    const pool_small *sm = casty_msg_as(msg, pool_small);
    if (sm == NULL)
        return casty_unhandled();
    cr_assert_eq(CASTY_TELL(s->to, pool_small, .value = sm->value), 0);
    latch_add(s->forwarded, 1);
    return casty_same();
}

Test(stress_pool, workers_send_into_another_system, .timeout = 300)
{
    uint32_t per = (uint32_t)(50000 / stress_scale());
    casty_system_t *dst = system_with_workers(2);
    static struct tally t;
    static latch_t forwarded = LATCH_INIT;
    tally_init(&t);
    forwarded.count = 0;
    casty_ref_t counters[4];
    spawn_counters(dst, &t, counters, 4);
    uint64_t sum = 0, n = 0;
    /* Twice: a source system's workers claim caches in dst and exit (the
     * source shuts down) while their messages wait at dst's gate (the
     * first time); the next source system's workers take the caches over. */
    for (int gen = 0; gen < 2; gen++) {
        casty_system_t *src = system_with_workers(2);
        casty_ref_t fwd[4];
        for (int i = 0; i < 4; i++) {
            struct forwarder_state st = {counters[i], &forwarded};
            cr_assert_eq(casty_spawn(src, casty_receive(forwarder, &st, sizeof st), NULL, NULL,
                                     &fwd[i]),
                         0);
        }
        for (uint32_t i = 0; i < per; i++) {
            cr_assert_eq(CASTY_TELL(fwd[i % 4], pool_small, .value = i), 0);
            sum += i;
            n++;
        }
        cr_assert_eq(latch_wait(&forwarded, n, 120000), n);
        cr_assert_eq(casty_system_shutdown(src), 0);
        if (gen == 0) {
            cr_assert_eq(latch_get(&t.handled), 0);
            latch_add(&t.gate, 1);
        }
        cr_assert_eq(latch_wait(&t.handled, n, 120000), n);
    }
    cr_assert_eq(tally_sum(&t), sum);
    cr_assert_eq(casty_system_shutdown(dst), 0);
    tally_destroy(&t);
}
