/* Stress: the scheduler and mailboxes through the public API. 10^7
 * messages hop between 1,000 actors, sent from actors and from outside
 * threads at once; every actor's count is then read back and must sum to
 * exactly what was sent. Also: many short-lived actors spawned and stopped
 * concurrently (slot reuse), stale refs under load, and fan-outs wider than
 * a worker's ring (the spill into the injection queue), also while outside
 * threads wake actors through that queue. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "casty.h"
#include "helpers.h"

#define ACTORS 1000

CASTY_MESSAGE(hop_msg, uint32_t hops; uint32_t rnd;);
CASTY_MESSAGE(count_query, casty_ref_t reply_to;);
CASTY_MESSAGE(count_reply, uint64_t count;);

static casty_ref_t refs[ACTORS];
static latch_t done = LATCH_INIT;

struct hop_state {
    uint64_t count;
};

static casty_behavior_t *hopper(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    struct hop_state *s = state;
    const hop_msg *h = casty_msg_as(msg, hop_msg);
    if (h) {
        s->count++;
        if (h->hops == 0) {
            latch_add(&done, 1);
        } else {
            uint32_t r = h->rnd * 1103515245u + 12345u;
            cr_assert_eq(CASTY_TELL(refs[r % ACTORS], hop_msg, .hops = h->hops - 1, .rnd = r), 0);
        }
        return casty_same();
    }
    const count_query *q = casty_msg_as(msg, count_query);
    if (q) {
        CASTY_TELL(q->reply_to, count_reply, .count = s->count);
        return casty_same();
    }
    return casty_unhandled();
}

struct feeder_arg {
    uint32_t chains;
    uint32_t hops;
    uint64_t seed;
};

static void *feeder(void *p)
{
    struct feeder_arg *a = p;
    uint64_t x = a->seed | 1;
    for (uint32_t i = 0; i < a->chains; i++) {
        stress_rand(&x);
        cr_assert_eq(CASTY_TELL(refs[x % ACTORS], hop_msg, .hops = a->hops, .rnd = (uint32_t)x), 0);
    }
    return NULL;
}

static int ask_count(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, count_query, .reply_to = reply_to);
}

Test(stress_sched, ten_million_messages_exact_counts, .timeout = 300)
{
    uint64_t seed = stress_seed("stress_sched");
    casty_system_t *sys;
    cr_assert_eq(casty_system_create(NULL, &sys), 0);
    struct hop_state zero = {0};
    for (int i = 0; i < ACTORS; i++)
        cr_assert_eq(casty_spawn(sys, casty_receive(hopper, &zero, sizeof zero), NULL, NULL,
                                 &refs[i]),
                     0);
    /* 2 feeder threads x chains x (hops + 1) messages = 10^7 at scale 1. */
    uint32_t hops = 99;
    uint32_t chains = (uint32_t)(50000 / stress_scale());
    uint64_t total = 2ull * chains * (hops + 1);
    struct feeder_arg args[2] = {{chains, hops, seed}, {chains, hops, seed * 31 + 7}};
    pthread_t th[2];
    done.count = 0;
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, feeder, &args[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(latch_wait(&done, 2ull * chains, 240000), 2ull * chains, "chains lost");

    uint64_t sum = 0;
    for (int i = 0; i < ACTORS; i++) {
        casty_msg_t *reply;
        cr_assert_eq(casty_ask(sys, refs[i], ask_count, NULL, 10000, &reply), 0);
        sum += casty_msg_as(reply, count_reply)->count;
        casty_msg_free(reply);
    }
    cr_assert_eq(sum, total, "counted %lu of %lu", (unsigned long)sum, (unsigned long)total);
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.dead_letters, 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- spawn/stop churn: slots are reused while stale refs are in use ---- */

CASTY_SIGNAL(poke);
static latch_t poked = LATCH_INIT;

/* Counts its first poke on the latch its state points to, and stops. */
static casty_behavior_t *one_shot(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    if (casty_msg_is(msg, poke)) {
        latch_add(*(latch_t **)state, 1);
        return casty_stopped();
    }
    return casty_unhandled();
}

static latch_t dead = LATCH_INIT;
static void count_dead(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)ev;
    (void)arg;
    latch_add(&dead, 1);
}

struct churn_arg {
    casty_system_t *sys;
    uint32_t n;
};

static void *churner(void *p)
{
    struct churn_arg *a = p;
    for (uint32_t i = 0; i < a->n; i++) {
        casty_ref_t r;
        latch_t *counter = &poked;
        cr_assert_eq(
            casty_spawn(a->sys, casty_receive(one_shot, &counter, sizeof counter), NULL, NULL, &r), 0);
        cr_assert_eq(casty_tell(r, &poke_type, NULL), 0);
        /* The second poke races with the stop: it must become a dead
         * letter, never reach the next actor that gets this slot. */
        cr_assert_eq(casty_tell(r, &poke_type, NULL), 0);
    }
    return NULL;
}

Test(stress_sched, spawn_stop_churn_stale_refs, .timeout = 300)
{
    casty_system_t *sys;
    cr_assert_eq(casty_system_create(NULL, &sys), 0);
    cr_assert_eq(casty_subscribe(sys, &casty_dead_letter_t_type, count_dead, NULL), 0);
    uint32_t per = (uint32_t)(100000 / stress_scale());
    struct churn_arg a = {sys, per};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, churner, &a);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(latch_wait(&poked, 2ull * per, 120000), 2ull * per);
    cr_assert_eq(latch_wait(&dead, 2ull * per, 120000), 2ull * per);
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.dead_letters, 2ull * per);
    cr_assert_eq(st.actors_spawned, 2ull * per);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(latch_get(&poked), 2ull * per, "a stale poke reached a new incarnation");
}

/* ---- random ping-pong with one ping outstanding per actor ---------------------
 * The pattern that exposed an ABA on the ring head (an actor run by two
 * workers at once: garbage "unhandled" messages, then a hang). Every actor
 * must get all its pongs, nothing may be unhandled or dead-lettered. */

CASTY_MESSAGE(rp_ping, casty_ref_t reply_to;);
CASTY_SIGNAL(rp_pong);
CASTY_SIGNAL(rp_start);

#define RP_ACTORS 500
static casty_ref_t rp_refs[RP_ACTORS];
static latch_t rp_done = LATCH_INIT;

struct rp_state {
    uint32_t index, left;
    uint64_t rng;
};

static void rp_send(casty_ctx_t *ctx, struct rp_state *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    uint32_t to = (uint32_t)(s->rng % (RP_ACTORS - 1));
    to += to >= s->index;
    cr_assert_eq(CASTY_TELL(rp_refs[to], rp_ping, .reply_to = casty_ctx_self(ctx)), 0);
}

static casty_behavior_t *rp_actor(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct rp_state *s = state;
    const rp_ping *p = casty_msg_as(msg, rp_ping);
    if (p) {
        cr_assert_eq(casty_tell(p->reply_to, &rp_pong_type, NULL), 0);
    } else if (casty_msg_is(msg, rp_pong)) {
        if (--s->left == 0)
            latch_add(&rp_done, 1);
        else
            rp_send(ctx, s);
    } else if (casty_msg_is(msg, rp_start)) {
        rp_send(ctx, s);
    } else {
        return casty_unhandled();
    }
    return casty_same();
}

Test(stress_sched, random_ping_pong_never_runs_an_actor_twice, .timeout = 300)
{
    uint64_t seed = stress_seed("random_ping_pong");
    uint32_t pings = (uint32_t)(4000 / stress_scale());
    for (int round = 0; round < 4; round++) {
        casty_system_t *sys;
        cr_assert_eq(casty_system_create(NULL, &sys), 0);
        rp_done.count = 0;
        for (uint32_t i = 0; i < RP_ACTORS; i++) {
            struct rp_state st = {i, pings, (seed + i * 0x9e3779b97f4a7c15ull + (uint64_t)round) | 1};
            cr_assert_eq(casty_spawn(sys, casty_receive(rp_actor, &st, sizeof st), NULL, NULL,
                                     &rp_refs[i]),
                         0);
        }
        for (uint32_t i = 0; i < RP_ACTORS; i++)
            cr_assert_eq(casty_tell(rp_refs[i], &rp_start_type, NULL), 0);
        cr_assert_eq(latch_wait(&rp_done, RP_ACTORS, 120000), RP_ACTORS, "round %d: pongs lost", round);
        casty_system_stats_t st;
        casty_system_stats(sys, &st);
        cr_assert_eq(st.unhandled, 0);
        cr_assert_eq(st.dead_letters, 0);
        cr_assert_eq(casty_system_shutdown(sys), 0);
    }
}

/* ---- fan-outs wider than a worker's ring ----------------------------------------
 * Hubs each wake FAN leaves per message (more than a ring holds, so the ring
 * spills into the injection queue and the hub's run ends, queued behind its
 * leaves); every leaf answers its hub. Several hubs on two workers, many
 * rounds: exact counts, nothing unhandled or dead-lettered, and no actor's
 * handler ever entered twice at once (each actor checks a flag of its own). */

#define FAN 1000
#define HUBS 4

CASTY_MESSAGE(fan_poke, casty_ref_t hub;);
CASTY_SIGNAL(fan_back);
CASTY_SIGNAL(fan_go);

static casty_ref_t fan_leaves[HUBS][FAN];
static latch_t fan_done = LATCH_INIT;
static uint32_t fan_overlaps; /* atomic */

struct fan_leaf {
    uint32_t busy; /* atomic: 1 while the handler runs */
    uint64_t pokes;
};

struct fan_hub {
    uint32_t busy;
    uint32_t index, rounds_left, backs;
};

static void fan_enter(uint32_t *busy)
{
    if (__atomic_exchange_n(busy, 1u, __ATOMIC_ACQ_REL) != 0)
        __atomic_fetch_add(&fan_overlaps, 1, __ATOMIC_RELAXED);
}

static void fan_leave(uint32_t *busy)
{
    __atomic_store_n(busy, 0u, __ATOMIC_RELEASE);
}

static casty_behavior_t *fan_leaf_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    struct fan_leaf *s = state;
    const fan_poke *p = casty_msg_as(msg, fan_poke);
    if (p == NULL)
        return casty_unhandled();
    fan_enter(&s->busy);
    s->pokes++;
    cr_assert_eq(casty_tell(p->hub, &fan_back_type, NULL), 0);
    fan_leave(&s->busy);
    return casty_same();
}

static void fan_out(casty_ctx_t *ctx, struct fan_hub *s)
{
    for (uint32_t i = 0; i < FAN; i++)
        cr_assert_eq(CASTY_TELL(fan_leaves[s->index][i], fan_poke, .hub = casty_ctx_self(ctx)), 0);
}

static casty_behavior_t *fan_hub_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct fan_hub *s = state;
    fan_enter(&s->busy);
    if (casty_msg_is(msg, fan_go)) {
        fan_out(ctx, s);
    } else if (casty_msg_is(msg, fan_back)) {
        if (++s->backs == FAN) {
            s->backs = 0;
            if (--s->rounds_left == 0)
                latch_add(&fan_done, 1);
            else
                fan_out(ctx, s);
        }
    } else {
        fan_leave(&s->busy);
        return casty_unhandled();
    }
    fan_leave(&s->busy);
    return casty_same();
}

/* Outside threads poking leaves at random while the hubs fan out: each
 * poke of an idle leaf wakes it through the injection queue, from several
 * threads at once and while the workers' rings spill into it. The leaves
 * answer a sink, which counts. */
#define POKERS 3

static latch_t sink_backs = LATCH_INIT;

static casty_behavior_t *sink_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    if (!casty_msg_is(msg, fan_back))
        return casty_unhandled();
    latch_add(&sink_backs, 1);
    return casty_same();
}

struct poker_arg {
    casty_ref_t sink;
    uint64_t seed;
    uint32_t pokes;
};

static void *poker(void *p)
{
    struct poker_arg *a = p;
    uint64_t x = a->seed | 1;
    for (uint32_t i = 0; i < a->pokes; i++) {
        stress_rand(&x);
        casty_ref_t leaf = fan_leaves[(x >> 32) % HUBS][(x >> 8) % FAN];
        cr_assert_eq(CASTY_TELL(leaf, fan_poke, .hub = a->sink), 0);
    }
    return NULL;
}

static void fan_run(uint32_t pokers)
{
    uint32_t rounds = (uint32_t)(200 / stress_scale()) + 2;
    fan_done.count = 0; /* (both tests use the latches, one after the other) */
    sink_backs.count = 0;
    casty_system_t *sys = system_with_workers(2);
    struct fan_leaf leaf0 = {0, 0};
    for (uint32_t h = 0; h < HUBS; h++)
        for (uint32_t i = 0; i < FAN; i++)
            cr_assert_eq(casty_spawn(sys, casty_receive(fan_leaf_recv, &leaf0, sizeof leaf0), NULL,
                                     NULL, &fan_leaves[h][i]),
                         0);
    casty_ref_t hubs[HUBS];
    for (uint32_t h = 0; h < HUBS; h++) {
        struct fan_hub st = {0, h, rounds, 0};
        cr_assert_eq(casty_spawn(sys, casty_receive(fan_hub_recv, &st, sizeof st), NULL, NULL,
                                 &hubs[h]),
                     0);
    }
    casty_ref_t sink;
    cr_assert_eq(casty_spawn(sys, casty_receive(sink_recv, NULL, 0), NULL, NULL, &sink), 0);
    uint64_t seed = stress_seed("stress_sched/fan_outs");
    pthread_t th[POKERS];
    struct poker_arg args[POKERS];
    uint32_t per = (uint32_t)(40000 / stress_scale()) + 100;
    for (uint32_t i = 0; i < pokers; i++) {
        args[i] = (struct poker_arg){sink, seed + i * 0x9e3779b97f4a7c15ull, per};
        pthread_create(&th[i], NULL, poker, &args[i]);
    }
    for (uint32_t h = 0; h < HUBS; h++)
        cr_assert_eq(casty_tell(hubs[h], &fan_go_type, NULL), 0);
    for (uint32_t i = 0; i < pokers; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(latch_wait(&fan_done, HUBS, 240000), HUBS, "a hub never finished its rounds");
    uint64_t want = (uint64_t)pokers * per;
    cr_assert_eq(latch_wait(&sink_backs, want, 240000), want, "an outside poke was lost");
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.unhandled, 0);
    cr_assert_eq(st.dead_letters, 0);
    cr_assert_eq(__atomic_load_n(&fan_overlaps, __ATOMIC_RELAXED), 0,
                 "an actor's handler ran twice at once");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(stress_sched, fan_outs_wider_than_the_ring, .timeout = 300)
{
    fan_run(0);
}

Test(stress_sched, outside_wake_ups_race_ring_spills, .timeout = 300)
{
    fan_run(POKERS);
}

/* ---- backlog deeper than the rings -------------------------------------------------
 * 2048 ping-pong pairs on 2 workers, two balls in flight per pair: about
 * 2000 ready actors per worker, far more than a ring holds, each run waking
 * one or two (so the backlog lives in the workers' overflow lists, moved
 * into the rings as they empty, and is stolen from there). Exact counts, no
 * dead letters, and no handler entered twice at once. */
#define BL_PAIRS 2048
#define BL_BALLS 2

static casty_ref_t bl_pings[BL_PAIRS];
static latch_t bl_done = LATCH_INIT;

struct bl_state {
    uint32_t busy; /* atomic: 1 while the handler runs */
    casty_ref_t partner;
    uint32_t left; /* the pinger's round trips still to make */
    uint32_t back; /* the ponger: replies sent */
};

static casty_behavior_t *bl_actor(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct bl_state *s = state;
    const rp_ping *p = casty_msg_as(msg, rp_ping);
    fan_enter(&s->busy);
    if (p) { /* the ponger */
        s->back++;
        cr_assert_eq(casty_tell(p->reply_to, &rp_pong_type, NULL), 0);
    } else if (casty_msg_is(msg, rp_pong)) { /* the pinger */
        if (--s->left == 0)
            latch_add(&bl_done, 1);
        else if (s->left >= BL_BALLS)
            cr_assert_eq(CASTY_TELL(s->partner, rp_ping, .reply_to = casty_ctx_self(ctx)), 0);
    } else if (casty_msg_is(msg, rp_start)) {
        for (int i = 0; i < BL_BALLS; i++)
            cr_assert_eq(CASTY_TELL(s->partner, rp_ping, .reply_to = casty_ctx_self(ctx)), 0);
    } else {
        fan_leave(&s->busy);
        return casty_unhandled();
    }
    fan_leave(&s->busy);
    return casty_same();
}

Test(stress_sched, backlog_deeper_than_the_rings, .timeout = 300)
{
    uint32_t trips = (uint32_t)(400 / stress_scale()) + BL_BALLS;
    bl_done.count = 0;
    casty_system_t *sys = system_with_workers(2);
    for (uint32_t i = 0; i < BL_PAIRS; i++) {
        struct bl_state pong = {0};
        casty_ref_t ponger;
        cr_assert_eq(casty_spawn(sys, casty_receive(bl_actor, &pong, sizeof pong), NULL, NULL, &ponger),
                     0);
        struct bl_state ping = {.partner = ponger, .left = trips};
        cr_assert_eq(casty_spawn(sys, casty_receive(bl_actor, &ping, sizeof ping), NULL, NULL,
                                 &bl_pings[i]),
                     0);
    }
    for (uint32_t i = 0; i < BL_PAIRS; i++)
        cr_assert_eq(casty_tell(bl_pings[i], &rp_start_type, NULL), 0);
    cr_assert_eq(latch_wait(&bl_done, BL_PAIRS, 240000), BL_PAIRS, "a pair lost a ball");
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.unhandled, 0);
    cr_assert_eq(st.dead_letters, 0);
    cr_assert_eq(st.actors_live, 2 * BL_PAIRS);
    cr_assert_eq(st.actors_spawned, 2 * BL_PAIRS);
    cr_assert_eq(__atomic_load_n(&fan_overlaps, __ATOMIC_RELAXED), 0,
                 "an actor's handler ran twice at once");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- spawning on workers -------------------------------------------------------------
 * A spawner actor spawns rounds of children on a 2-worker system; each child
 * counts its first poke and stops (its slot freed by the spawner's worker,
 * into that worker's cache of free cells, and reused by the next rounds).
 * Each round also pokes the previous round's children again through their
 * now stale refs: every such poke must be a dead letter, never reach the
 * actor now living in the slot. Spawn and stop counts live on the workers'
 * own lines: the sums must be exact, and shutdown (which waits for the live
 * sum to reach zero) must finish. */
#define SW_CHILDREN 200

CASTY_SIGNAL(sw_round);
static latch_t sw_poked = LATCH_INIT;
static latch_t sw_dead = LATCH_INIT;

struct sw_state {
    uint32_t rounds_left;
    casty_ref_t previous[SW_CHILDREN];
    bool have_previous;
};

static casty_behavior_t *sw_spawner(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct sw_state *s = state;
    if (!casty_msg_is(msg, sw_round))
        return casty_unhandled();
    for (uint32_t i = 0; i < SW_CHILDREN; i++) {
        if (s->have_previous)
            cr_assert_eq(casty_tell(s->previous[i], &poke_type, NULL), 0);
        casty_ref_t child;
        latch_t *counter = &sw_poked;
        cr_assert_eq(
            casty_ctx_spawn(ctx, casty_receive(one_shot, &counter, sizeof counter), NULL, NULL, &child),
            0);
        cr_assert_eq(casty_tell(child, &poke_type, NULL), 0);
        s->previous[i] = child;
    }
    s->have_previous = true;
    if (--s->rounds_left > 0)
        cr_assert_eq(casty_tell(casty_ctx_self(ctx), &sw_round_type, NULL), 0);
    return casty_same();
}

static void sw_count_dead(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)arg;
    const casty_dead_letter_t *d = ev;
    if (d->msg_type == &poke_type)
        latch_add(&sw_dead, 1);
}

Test(stress_sched, worker_spawns_count_and_reuse_slots_exactly, .timeout = 300)
{
    uint32_t rounds = (uint32_t)(500 / stress_scale()) + 2;
    sw_poked.count = 0;
    sw_dead.count = 0;
    casty_system_t *sys = system_with_workers(2);
    cr_assert_eq(casty_subscribe(sys, &casty_dead_letter_t_type, sw_count_dead, NULL), 0);
    struct sw_state *st0 = calloc(1, sizeof *st0);
    cr_assert_not_null(st0);
    st0->rounds_left = rounds;
    casty_ref_t spawner;
    cr_assert_eq(casty_spawn(sys, casty_receive(sw_spawner, st0, sizeof *st0), NULL, NULL, &spawner),
                 0);
    free(st0);
    cr_assert_eq(casty_tell(spawner, &sw_round_type, NULL), 0);
    uint64_t children = (uint64_t)rounds * SW_CHILDREN;
    uint64_t stale = (uint64_t)(rounds - 1) * SW_CHILDREN;
    cr_assert_eq(latch_wait(&sw_poked, children, 120000), children);
    cr_assert_eq(latch_wait(&sw_dead, stale, 120000), stale);
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.actors_spawned, 1 + children);
    cr_assert_leq(st.actors_live, 1 + children);
    cr_assert_eq(st.unhandled, 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(latch_get(&sw_poked), children, "a stale poke reached a new incarnation");
}

/* ---- free cells shared by workers and outside threads ----------------------------------
 * Four spawners (on two workers) take free cells half a cache at a time,
 * their children's cells come back from both workers and go to the shared
 * stack when a cache is full or its worker parks, and two outside threads
 * take and give back single cells at the same time. A cell handed out twice makes two live actors share a slot:
 * the first one's poke becomes a dead letter (the counts below fail) or
 * reaches the wrong incarnation. */
#define FS_SPAWNERS 4

Test(stress_sched, free_cells_shared_by_workers_and_outside_threads, .timeout = 300)
{
    uint32_t rounds = (uint32_t)(200 / stress_scale()) + 2;
    uint32_t per = (uint32_t)(50000 / stress_scale());
    sw_poked.count = 0;
    sw_dead.count = 0;
    poked.count = 0; /* (the TSan build runs every test in one process) */
    casty_system_t *sys = system_with_workers(2);
    cr_assert_eq(casty_subscribe(sys, &casty_dead_letter_t_type, sw_count_dead, NULL), 0);
    struct sw_state *st0 = calloc(1, sizeof *st0);
    cr_assert_not_null(st0);
    st0->rounds_left = rounds;
    casty_ref_t spawners[FS_SPAWNERS];
    for (int i = 0; i < FS_SPAWNERS; i++)
        cr_assert_eq(casty_spawn(sys, casty_receive(sw_spawner, st0, sizeof *st0), NULL, NULL,
                                 &spawners[i]),
                     0);
    free(st0);
    struct churn_arg a = {sys, per};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, churner, &a);
    for (int i = 0; i < FS_SPAWNERS; i++)
        cr_assert_eq(casty_tell(spawners[i], &sw_round_type, NULL), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    uint64_t children = (uint64_t)FS_SPAWNERS * rounds * SW_CHILDREN;
    /* Stale pokes: the spawners' to their previous round's children, and
     * each churner's second poke. */
    uint64_t stale = (uint64_t)FS_SPAWNERS * (rounds - 1) * SW_CHILDREN + 2ull * per;
    cr_assert_eq(latch_wait(&sw_poked, children, 120000), children);
    cr_assert_eq(latch_wait(&poked, 2ull * per, 120000), 2ull * per);
    cr_assert_eq(latch_wait(&sw_dead, stale, 120000), stale);
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.actors_spawned, FS_SPAWNERS + children + 2ull * per);
    cr_assert_eq(st.unhandled, 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(latch_get(&sw_poked), children, "a stale poke reached a new incarnation");
    cr_assert_eq(latch_get(&poked), 2ull * per, "a stale poke reached a new incarnation");
    cr_assert_eq(latch_get(&sw_dead), stale);
}

/* ---- the LIFO slot does not starve the ring ------------------------------------------
 * On one worker, a pair bounces a ball for ever through the LIFO slot (each
 * wakes the other). On its first turn the pair's first actor also pokes a
 * third actor, which the ball then pushes out of the LIFO slot into the
 * ring: it must still run (after at most LIFO_MAX runs of the pair), while
 * the ball keeps flying. Fails (times out) if the LIFO slot never yields. */
CASTY_MESSAGE(lifo_ball, casty_ref_t to; bool first;);
static uint64_t lifo_bounces; /* atomic */
static uint32_t lifo_stop;    /* atomic */
static latch_t lifo_poked = LATCH_INIT;

static casty_behavior_t *lifo_bouncer(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    casty_ref_t bystander = *(casty_ref_t *)state;
    if (casty_msg_is(msg, poke)) { /* warming up: started and idle */
        latch_add(&lifo_poked, 1);
        return casty_same();
    }
    const lifo_ball *b = casty_msg_as(msg, lifo_ball);
    if (b == NULL)
        return casty_unhandled();
    __atomic_add_fetch(&lifo_bounces, 1, __ATOMIC_RELAXED);
    if (b->first)
        cr_assert_eq(casty_tell(bystander, &poke_type, NULL), 0);
    if (!__atomic_load_n(&lifo_stop, __ATOMIC_RELAXED))
        cr_assert_eq(CASTY_TELL(b->to, lifo_ball, .to = casty_ctx_self(ctx), .first = false), 0);
    return casty_same();
}

/* Counts each poke into the latch its state points at. */
static casty_behavior_t *poke_counter(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    if (!casty_msg_is(msg, poke))
        return casty_unhandled();
    latch_add(*(latch_t **)state, 1);
    return casty_same();
}

Test(stress_sched, lifo_pair_does_not_starve_the_ring, .timeout = 60)
{
    casty_system_t *sys = system_with_workers(1);
    casty_ref_t bystander, a, b;
    latch_t *counts = &lifo_poked;
    cr_assert_eq(casty_spawn(sys, casty_receive(poke_counter, &counts, sizeof counts), NULL, NULL,
                             &bystander),
                 0);
    cr_assert_eq(casty_spawn(sys, casty_receive(lifo_bouncer, &bystander, sizeof bystander), NULL,
                             NULL, &a),
                 0);
    cr_assert_eq(casty_spawn(sys, casty_receive(lifo_bouncer, &bystander, sizeof bystander), NULL,
                             NULL, &b),
                 0);
    /* All three started and idle first, so that each send between them
     * schedules its recipient on the worker (the LIFO slot), and the ball
     * pushes the bystander out of that slot into the ring. */
    cr_assert_eq(casty_tell(bystander, &poke_type, NULL), 0);
    cr_assert_eq(casty_tell(a, &poke_type, NULL), 0);
    cr_assert_eq(casty_tell(b, &poke_type, NULL), 0);
    cr_assert_eq(latch_wait(&lifo_poked, 3, 10000), 3);
    cr_assert_eq(CASTY_TELL(a, lifo_ball, .to = b, .first = true), 0);
    cr_assert_eq(latch_wait(&lifo_poked, 4, 10000), 4, "the actor in the ring never ran");
    cr_assert(counter_advances(&lifo_bounces, 10000), "the ball stopped");
    __atomic_store_n(&lifo_stop, 1, __ATOMIC_RELAXED);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* A handler that wakes many actors and goes on running: the actors it
 * woke wait in its worker's batch (runtime/sched.c, casty__schedule_displaced)
 * only until WAKE_BATCH have gathered, then become stealable, so the other
 * worker runs most of them while the handler still runs. A batch held until
 * the end of the handler's run would leave none run here (the handler waits
 * for half of them, 20 s at most). */
#define WAKER_LEAVES 512

static latch_t waker_leaves_ran = LATCH_INIT;
static latch_t waker_done = LATCH_INIT;
static uint64_t waker_seen; /* atomic: leaves run while the handler ran */

static casty_behavior_t *long_waker(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    const casty_ref_t *leaves = *(casty_ref_t *const *)state;
    if (!casty_msg_is(msg, poke))
        return casty_unhandled();
    for (uint32_t i = 0; i < WAKER_LEAVES; i++)
        cr_assert_eq(casty_tell(leaves[i], &poke_type, NULL), 0);
    uint64_t seen = latch_wait(&waker_leaves_ran, 2 * WAKER_LEAVES + WAKER_LEAVES / 2, 20000);
    __atomic_store_n(&waker_seen, seen - 2 * WAKER_LEAVES, __ATOMIC_RELAXED);
    latch_add(&waker_done, 1);
    return casty_same();
}

Test(stress_sched, actors_woken_by_a_long_handler_run_elsewhere_meanwhile, .timeout = 60)
{
    waker_leaves_ran.count = 0;
    waker_done.count = 0;
    casty_system_t *sys = system_with_workers(2);
    static casty_ref_t leaves[WAKER_LEAVES];
    latch_t *counts = &waker_leaves_ran;
    for (uint32_t i = 0; i < WAKER_LEAVES; i++)
        cr_assert_eq(casty_spawn(sys, casty_receive(poke_counter, &counts, sizeof counts), NULL,
                                 NULL, &leaves[i]),
                     0);
    const casty_ref_t *table = leaves;
    casty_ref_t waker;
    cr_assert_eq(casty_spawn(sys, casty_receive(long_waker, &table, sizeof table), NULL, NULL,
                             &waker),
                 0);
    /* Every leaf started and idle first (twice: the second round's pokes
     * find them idle), so that the waker's sends schedule them on its
     * worker. */
    for (uint32_t round = 1; round <= 2; round++) {
        for (uint32_t i = 0; i < WAKER_LEAVES; i++)
            cr_assert_eq(casty_tell(leaves[i], &poke_type, NULL), 0);
        cr_assert_eq(latch_wait(&waker_leaves_ran, round * WAKER_LEAVES, 20000),
                     round * WAKER_LEAVES);
    }
    cr_assert_eq(casty_tell(waker, &poke_type, NULL), 0);
    cr_assert_eq(latch_wait(&waker_done, 1, 30000), 1);
    cr_assert_geq(__atomic_load_n(&waker_seen, __ATOMIC_RELAXED), WAKER_LEAVES / 2,
                  "the actors a running handler woke waited for its end");
    cr_assert_eq(latch_wait(&waker_leaves_ran, 3 * WAKER_LEAVES, 20000), 3 * WAKER_LEAVES,
                 "a woken actor never ran");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}
