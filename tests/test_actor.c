/* Actors through the public API: behaviors (receive, setup, same, stopped,
 * unhandled, failed, restart), functional state, tell/tell_move, stale refs,
 * ask (reply, timeout with late reply, EDEADLK on a worker; from several
 * threads at once, replies later than the poll, second replies, shutdown
 * while asking), spawns from outside the pool, paths, names, the event
 * stream, several systems in one process, shutdown with messages in
 * flight, idle CPU, and bad input everywhere. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "casty.h"
#include "helpers.h"

CASTY_MESSAGE(add_msg, int64_t n;);
CASTY_MESSAGE(get_msg, casty_ref_t reply_to;);
CASTY_MESSAGE(value_msg, int64_t v;);
CASTY_SIGNAL(stop_sig);
CASTY_SIGNAL(other_sig);

static int ask_get(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, get_msg, .reply_to = reply_to);
}

static int64_t ask_value(casty_system_t *sys, casty_ref_t ref)
{
    casty_msg_t *reply = NULL;
    int rc = casty_ask(sys, ref, ask_get, NULL, 5000, &reply);
    cr_assert_eq(rc, 0, "ask: %s", casty_strerror(rc));
    const value_msg *v = casty_msg_as(reply, value_msg);
    cr_assert_not_null(v);
    int64_t out = v->v;
    casty_msg_free(reply);
    return out;
}

/* ---- in-place state and functional state --------------------------------- */

static casty_behavior_t *inplace_counter(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    int64_t *total = state;
    const add_msg *a = casty_msg_as(msg, add_msg);
    if (a) {
        *total += a->n;
        return casty_same();
    }
    const get_msg *g = casty_msg_as(msg, get_msg);
    if (g) {
        CASTY_TELL(g->reply_to, value_msg, .v = *total);
        return casty_same();
    }
    if (casty_msg_is(msg, stop_sig))
        return casty_stopped();
    return casty_unhandled();
}

static casty_behavior_t *functional_counter(casty_ctx_t *ctx, const casty_msg_t *msg,
                                            void *state)
{
    (void)ctx;
    const int64_t total = *(const int64_t *)state;
    const add_msg *a = casty_msg_as(msg, add_msg);
    if (a) {
        int64_t next = total + a->n;
        return casty_receive(functional_counter, &next, sizeof next);
    }
    const get_msg *g = casty_msg_as(msg, get_msg);
    if (g) {
        CASTY_TELL(g->reply_to, value_msg, .v = total);
        return casty_same();
    }
    return casty_unhandled();
}

Test(actor, inplace_state_counts_exactly)
{
    casty_system_t *sys = system_with_workers(2);
    int64_t zero = 0;
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_receive(inplace_counter, &zero, sizeof zero), "counter",
                             NULL, &ref),
                 0);
    for (int i = 1; i <= 1000; i++)
        cr_assert_eq(CASTY_TELL(ref, add_msg, .n = i), 0);
    cr_assert_eq(ask_value(sys, ref), 500500);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* 10^6 behavior transitions, each allocating a new behavior: under `make
 * asan` LeakSanitizer proves the runtime frees every replaced one. */
Test(actor, functional_state_million_transitions, .timeout = 120)
{
    casty_system_t *sys = system_with_workers(2);
    int64_t zero = 0;
    casty_ref_t ref;
    cr_assert_eq(
        casty_spawn(sys, casty_receive(functional_counter, &zero, sizeof zero), NULL, NULL, &ref),
        0);
    int64_t n = 1000000; /* not scaled: the point is 10^6 under ASan */
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(CASTY_TELL(ref, add_msg, .n = 1), 0);
    cr_assert_eq(ask_value(sys, ref), n);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- setup and restart ---------------------------------------------------- */

static latch_t setups = LATCH_INIT;

static casty_behavior_t *setup_counter(casty_ctx_t *ctx, void *arg)
{
    (void)ctx;
    latch_add(&setups, 1);
    int64_t start = *(int64_t *)arg;
    return casty_receive(inplace_counter, &start, sizeof start);
}

static casty_behavior_t *restarting(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    if (casty_msg_is(msg, other_sig))
        return casty_restart();
    return inplace_counter(ctx, msg, state);
}

Test(actor, setup_runs_before_first_message_with_its_argument)
{
    casty_system_t *sys = system_with_workers(1);
    setups.count = 0;
    int64_t start = 40;
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_setup(setup_counter, &start, sizeof start), NULL, NULL, &ref),
                 0);
    cr_assert_eq(CASTY_TELL(ref, add_msg, .n = 2), 0);
    cr_assert_eq(ask_value(sys, ref), 42);
    cr_assert_eq(latch_get(&setups), 1);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* A behavior made without state is given NULL for its state (and a setup
 * without an argument NULL for its argument), whatever its handler's
 * behavior block held before (the runtime keeps the pointer it hands out
 * in the behavior, set where the behavior is made). */
static casty_behavior_t *null_state_probe(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    const get_msg *g = casty_msg_as(msg, get_msg);
    if (g == NULL)
        return casty_unhandled();
    CASTY_TELL(g->reply_to, value_msg, .v = state == NULL);
    return casty_same();
}

static casty_behavior_t *null_arg_setup(casty_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg == NULL ? casty_receive(null_state_probe, NULL, 0) : casty_stopped();
}

Test(actor, stateless_behavior_gets_null_state)
{
    casty_system_t *sys = system_with_workers(2);
    casty_ref_t plain, set_up, stateful;
    cr_assert_eq(casty_spawn(sys, casty_receive(null_state_probe, NULL, 0), NULL, NULL, &plain), 0);
    cr_assert_eq(casty_spawn(sys, casty_setup(null_arg_setup, NULL, 0), NULL, NULL, &set_up), 0);
    int64_t zero = 0;
    cr_assert_eq(casty_spawn(sys, casty_receive(null_state_probe, &zero, sizeof zero), NULL, NULL,
                             &stateful),
                 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ask_value(sys, plain), 1);
        cr_assert_eq(ask_value(sys, set_up), 1);
        cr_assert_eq(ask_value(sys, stateful), 0);
    }
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(actor, restart_returns_to_fresh_initial_state)
{
    casty_system_t *sys = system_with_workers(2);
    int64_t start = 5;
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_receive(restarting, &start, sizeof start), NULL, NULL, &ref),
                 0);
    CASTY_TELL(ref, add_msg, .n = 10);
    cr_assert_eq(ask_value(sys, ref), 15);
    cr_assert_eq(casty_tell(ref, &other_sig_type, NULL), 0);
    cr_assert_eq(ask_value(sys, ref), 5, "restart must bring back the initial state");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- stopping, stale refs, dead letters ------------------------------------- */

static latch_t dead_to_target = LATCH_INIT;
static casty_ref_t dead_target;

static void on_dead_letter(const casty_type_t *t, const void *ev, void *arg)
{
    (void)arg;
    cr_assert_eq(t, &casty_dead_letter_t_type);
    const casty_dead_letter_t *d = ev;
    if (casty_ref_eq(d->recipient, dead_target) && d->msg_type == &add_msg_type)
        latch_add(&dead_to_target, 1);
}

static latch_t stopped_events = LATCH_INIT;
static void on_stopped(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    const casty_actor_stopped_t *s = ev;
    if (casty_ref_eq(s->ref, *(casty_ref_t *)arg))
        latch_add(&stopped_events, 1);
}

Test(actor, stale_ref_after_stop_is_dead_letter_never_reaches_new_actor)
{
    /* One worker: every stop frees its slot into that worker's cache of
     * free cells, which hands its older half back to the shared stack
     * when full, so the old slot comes back within SLOT_CACHE stops. */
    casty_system_t *sys = system_with_workers(1);
    dead_to_target.count = 0;
    stopped_events.count = 0;
    int64_t zero = 0;
    casty_ref_t old;
    cr_assert_eq(casty_spawn(sys, casty_receive(inplace_counter, &zero, sizeof zero), NULL, NULL, &old),
                 0);
    dead_target = old;
    cr_assert_eq(casty_subscribe(sys, &casty_dead_letter_t_type, on_dead_letter, NULL), 0);
    casty_ref_t watched = old; /* whose ActorStopped the latch counts */
    cr_assert_eq(casty_subscribe(sys, &casty_actor_stopped_t_type, on_stopped, &watched), 0);
    cr_assert_eq(casty_tell(old, &stop_sig_type, NULL), 0);
    cr_assert_eq(latch_wait(&stopped_events, 1, 5000), 1);

    /* The freed slot comes back to a later spawn (a worker keeps the slots
     * it freed last for its own spawns, and hands the older ones back);
     * the old ref must not reach the actor living there. */
    casty_ref_t fresh;
    for (uint64_t stops = 1;; stops++) {
        cr_assert_lt(stops, 1000, "slot %u never reused", (uint32_t)old.actor);
        cr_assert_eq(
            casty_spawn(sys, casty_receive(inplace_counter, &zero, sizeof zero), NULL, NULL, &fresh), 0);
        if ((uint32_t)fresh.actor == (uint32_t)old.actor)
            break;
        watched = fresh;
        cr_assert_eq(casty_tell(fresh, &stop_sig_type, NULL), 0);
        cr_assert_eq(latch_wait(&stopped_events, stops + 1, 5000), stops + 1);
    }
    cr_assert_neq(fresh.actor, old.actor, "with a new generation");
    for (int i = 0; i < 10; i++)
        cr_assert_eq(CASTY_TELL(old, add_msg, .n = 1000), 0);
    cr_assert_eq(latch_wait(&dead_to_target, 10, 5000), 10);
    cr_assert_eq(ask_value(sys, fresh), 0);
    char path[128];
    cr_assert_eq(casty_ref_path(old, path, sizeof path), CASTY_ENOENT);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(actor, forged_refs_are_dead_letters_not_crashes)
{
    casty_system_t *sys = system_with_workers(1);
    casty_ref_t forged = {casty_system_node(sys), ((uint64_t)7 << 32) | 0x0fffffffu};
    cr_assert_eq(CASTY_TELL(forged, add_msg, .n = 1), 0);
    casty_ref_t zero_gen = {casty_system_node(sys), 1};
    cr_assert_eq(CASTY_TELL(zero_gen, add_msg, .n = 1), 0);
    casty_ref_t wrong_gen = {casty_system_node(sys), ((uint64_t)99 << 32) | 1};
    cr_assert_eq(CASTY_TELL(wrong_gen, add_msg, .n = 1), 0);
    cr_assert_eq(CASTY_TELL(CASTY_REF_NONE, add_msg, .n = 1), CASTY_ESHUTDOWN);
    cr_assert_eq(casty_stop(forged), 0);
    casty_system_stats_t st;
    uint64_t deadline = now_ns() + 5000000000ull;
    do
        casty_system_stats(sys, &st);
    while (st.dead_letters < 3 && now_ns() < deadline);
    cr_assert_eq(st.dead_letters, 3);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- ask ---------------------------------------------------------------------- */

static casty_ref_t parked_reply_to;
static latch_t parked = LATCH_INIT;

/* Keeps the reply_to of the first get_msg and answers only on other_sig. */
static casty_behavior_t *slow_replier(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    const get_msg *g = casty_msg_as(msg, get_msg);
    if (g) {
        parked_reply_to = g->reply_to;
        latch_add(&parked, 1);
        return casty_same();
    }
    if (casty_msg_is(msg, other_sig)) {
        CASTY_TELL(parked_reply_to, value_msg, .v = 7);
        return casty_same();
    }
    return casty_unhandled();
}

static latch_t late_dead = LATCH_INIT;
static void on_late_dead(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)arg;
    const casty_dead_letter_t *d = ev;
    if (d->msg_type == &value_msg_type)
        latch_add(&late_dead, 1);
}

/* Asks ref, which does not answer in time: CASTY_ETIMEDOUT, no sooner
 * than timeout_ms, no reply. */
static void assert_ask_times_out(casty_system_t *sys, casty_ref_t ref, uint64_t timeout_ms)
{
    casty_msg_t *reply = (casty_msg_t *)1;
    uint64_t t0 = now_ns();
    cr_assert_eq(casty_ask(sys, ref, ask_get, NULL, timeout_ms, &reply), CASTY_ETIMEDOUT);
    cr_assert_geq(now_ns() - t0, timeout_ms * 1000000ull, "returned before the timeout");
    cr_assert_null(reply);
}

Test(actor, ask_timeout_then_late_reply_is_dead_letter)
{
    casty_system_t *sys = system_with_workers(2);
    parked.count = late_dead.count = 0;
    cr_assert_eq(casty_subscribe(sys, &casty_dead_letter_t_type, on_late_dead, NULL), 0);
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_replier, NULL, 0), NULL, NULL, &ref), 0);
    assert_ask_times_out(sys, ref, 50);
    cr_assert_eq(latch_wait(&parked, 1, 5000), 1);

    /* A new ask may reuse the promise's slot; the late reply must not reach it. */
    cr_assert_eq(casty_tell(ref, &other_sig_type, NULL), 0);
    cr_assert_eq(latch_wait(&late_dead, 1, 5000), 1);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

static latch_t deadlk = LATCH_INIT;
static int deadlk_rc;

static casty_behavior_t *asks_inside(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    (void)msg;
    casty_msg_t *reply = NULL;
    deadlk_rc = casty_ask(casty_ctx_system(ctx), casty_ctx_self(ctx), ask_get, NULL, 1000, &reply);
    latch_add(&deadlk, 1);
    return casty_same();
}

Test(actor, ask_from_worker_is_edeadlk_at_once)
{
    casty_system_t *sys = system_with_workers(1);
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_receive(asks_inside, NULL, 0), NULL, NULL, &ref), 0);
    cr_assert_eq(casty_tell(ref, &other_sig_type, NULL), 0);
    cr_assert_eq(latch_wait(&deadlk, 1, 5000), 1);
    cr_assert_eq(deadlk_rc, CASTY_EDEADLK);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

static int failing_request(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)target;
    (void)reply_to;
    (void)arg;
    return CASTY_ERANGE;
}

Test(actor, ask_bad_input_and_request_errors)
{
    casty_system_t *sys = system_with_workers(1);
    casty_msg_t *reply;
    casty_ref_t none = CASTY_REF_NONE;
    cr_assert_eq(casty_ask(NULL, none, ask_get, NULL, 10, &reply), CASTY_EINVAL);
    cr_assert_eq(casty_ask(sys, none, NULL, NULL, 10, &reply), CASTY_EINVAL);
    cr_assert_eq(casty_ask(sys, none, ask_get, NULL, 10, NULL), CASTY_EINVAL);
    cr_assert_eq(casty_ask(sys, none, failing_request, NULL, 10, &reply), CASTY_ERANGE);
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- asks and spawns from threads outside the pool -----------------------------
 * With nothing subscribed to events, a spawn from a thread outside the pool
 * (casty_ask's promise among them) starts the actor in place, without a
 * START message, and casty_ask polls for the reply briefly before it
 * sleeps (not after polls in vain: then it skips the poll for a while).
 * Threads asking at once each get their own replies and every promise
 * stops; replies later than the poll arrive, and quick ones after them; a
 * timeout still waits its whole time (and 0 does not wait); an actor
 * started in place and stopped at once handles nothing sent after the
 * stop and is gone. */
CASTY_MESSAGE(echo_req, casty_ref_t reply_to; uint64_t v;);
CASTY_MESSAGE(echo_rep, uint64_t v;);

enum { OUTSIDE_ASKERS = 4, OUTSIDE_ASKS = 2000, OUTSIDE_SPAWNS = 100 };

static casty_behavior_t *echo_plus_one(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    const echo_req *r = casty_msg_as(msg, echo_req);
    if (r == NULL)
        return casty_unhandled();
    CASTY_TELL(r->reply_to, echo_rep, .v = r->v + 1);
    return casty_same();
}

static int ask_echo(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    return CASTY_TELL(target, echo_req, .reply_to = reply_to, .v = *(const uint64_t *)arg);
}

struct outside_asker {
    casty_system_t *sys;
    casty_ref_t echo;
    uint64_t base;
    uint32_t wrong; /* replies missing, failed or not this ask's */
};

static void *ask_from_outside(void *arg)
{
    struct outside_asker *a = arg;
    for (uint64_t i = 0; i < OUTSIDE_ASKS; i++) {
        uint64_t v = a->base + i;
        casty_msg_t *reply = NULL;
        int rc = casty_ask(a->sys, a->echo, ask_echo, &v, 10000, &reply);
        const echo_rep *r = rc == 0 ? casty_msg_as(reply, echo_rep) : NULL;
        if (r == NULL || r->v != v + 1)
            a->wrong++;
        casty_msg_free(reply);
    }
    return NULL;
}

/* Waits up to timeout_ms for the system's live actors (or, with
 * `dead_letters`, its dead letters) to come to `want`. */
static bool stat_reaches(casty_system_t *sys, bool dead_letters, uint64_t want,
                         uint64_t timeout_ms)
{
    uint64_t end = now_ns() + timeout_ms * 1000000u;
    casty_system_stats_t st;
    for (;;) {
        casty_system_stats(sys, &st);
        if ((dead_letters ? st.dead_letters : st.actors_live) == want)
            return true;
        if (now_ns() > end)
            return false;
        usleep(1000);
    }
}

static bool live_actors_reach(casty_system_t *sys, uint64_t want, uint64_t timeout_ms)
{
    return stat_reaches(sys, false, want, timeout_ms);
}

Test(actor, asks_from_outside_threads_get_their_own_replies_and_leave_no_actor)
{
    casty_system_t *sys = system_with_workers(2);
    casty_ref_t echo;
    cr_assert_eq(casty_spawn(sys, casty_receive(echo_plus_one, NULL, 0), NULL, NULL, &echo), 0);
    struct outside_asker askers[OUTSIDE_ASKERS];
    pthread_t threads[OUTSIDE_ASKERS];
    for (int i = 0; i < OUTSIDE_ASKERS; i++) {
        askers[i] = (struct outside_asker){.sys = sys, .echo = echo, .base = (uint64_t)i << 32};
        cr_assert_eq(pthread_create(&threads[i], NULL, ask_from_outside, &askers[i]), 0);
    }
    for (int i = 0; i < OUTSIDE_ASKERS; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(askers[i].wrong, 0, "asker %d: %u replies wrong or missing", i,
                     askers[i].wrong);
    }
    cr_assert(live_actors_reach(sys, 1, 5000), "promise actors left alive");
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.actors_spawned, 1 + OUTSIDE_ASKERS * OUTSIDE_ASKS);
    cr_assert_eq(st.dead_letters, 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* Replies LATE_REPLY_MS after the request, by a timer straight to the
 * asker's promise: later than casty_ask's poll, within its timeout. */
enum { LATE_REPLY_MS = 2, LATE_ASKS = 20, QUICK_ASKS_AFTER = 300 };

static casty_behavior_t *replies_late(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    const echo_req *r = casty_msg_as(msg, echo_req);
    if (r == NULL)
        return casty_unhandled();
    char key[48];
    snprintf(key, sizeof key, "late-%" PRIu64, r->v);
    echo_rep rep = {.v = r->v + 1};
    casty_timer_schedule(casty_ctx_system(ctx), key, r->reply_to, &echo_rep_type, &rep,
                         LATE_REPLY_MS);
    return casty_same();
}

static uint64_t ask_echo_value(casty_system_t *sys, casty_ref_t to, uint64_t v)
{
    casty_msg_t *reply = NULL;
    int rc = casty_ask(sys, to, ask_echo, &v, 10000, &reply);
    cr_assert_eq(rc, 0, "ask: %s", casty_strerror(rc));
    const echo_rep *r = casty_msg_as(reply, echo_rep);
    cr_assert_not_null(r);
    uint64_t got = r->v;
    casty_msg_free(reply);
    return got;
}

Test(actor, asks_answered_after_the_poll_then_quick_ones_all_get_their_replies)
{
    casty_system_t *sys = system_with_workers(2);
    casty_ref_t late, quick;
    cr_assert_eq(casty_spawn(sys, casty_receive(replies_late, NULL, 0), NULL, NULL, &late), 0);
    cr_assert_eq(casty_spawn(sys, casty_receive(echo_plus_one, NULL, 0), NULL, NULL, &quick), 0);
    /* Polls that end without the reply, then asks that skip the poll. */
    for (uint64_t i = 0; i < LATE_ASKS; i++) {
        uint64_t t0 = now_ns();
        cr_assert_eq(ask_echo_value(sys, late, i), i + 1);
        cr_assert_geq(now_ns() - t0, LATE_REPLY_MS * 1000000ull, "replied before the timer");
    }
    /* Skipped polls run out, and a poll that gets its reply ends the skipping. */
    for (uint64_t i = 0; i < QUICK_ASKS_AFTER; i++)
        cr_assert_eq(ask_echo_value(sys, quick, 1000 + i), 1001 + i);
    cr_assert(live_actors_reach(sys, 2, 5000), "promise actors left alive");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* Counts ActorStarted and ActorStopped events of any actor but the two
 * the test spawned. */
struct lifecycle_watch {
    casty_ref_t mine[2];
    uint32_t others; /* atomic */
};

static void count_others(const casty_type_t *type, const void *event, void *arg)
{
    struct lifecycle_watch *lw = arg;
    casty_ref_t ref = type == &casty_actor_started_t_type
                          ? ((const casty_actor_started_t *)event)->ref
                          : ((const casty_actor_stopped_t *)event)->ref;
    if (!casty_ref_eq(ref, lw->mine[0]) && !casty_ref_eq(ref, lw->mine[1]))
        __atomic_fetch_add(&lw->others, 1, __ATOMIC_RELAXED);
}

/* A promise is the runtime's own: whether the asking thread takes the
 * reply itself (quick asks), or the poll ends first and the promise runs
 * as an actor (late replies), or the thread skips the poll after those,
 * no ActorStarted or ActorStopped is published for it, and subscribing
 * does not keep an ask from being held. */
Test(actor, ask_promises_publish_no_lifecycle_events)
{
    casty_system_t *sys = system_with_workers(2);
    struct lifecycle_watch lw = {0};
    /* (Spawned before subscribing: the callbacks read the refs.) */
    casty_behavior_t *quick_b = casty_receive(echo_plus_one, NULL, 0);
    casty_behavior_t *late_b = casty_receive(replies_late, NULL, 0);
    cr_assert_eq(casty_spawn(sys, quick_b, "quick", NULL, &lw.mine[0]), 0);
    cr_assert_eq(casty_spawn(sys, late_b, "late", NULL, &lw.mine[1]), 0);
    cr_assert_eq(casty_subscribe(sys, &casty_actor_started_t_type, count_others, &lw), 0);
    cr_assert_eq(casty_subscribe(sys, &casty_actor_stopped_t_type, count_others, &lw), 0);
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(ask_echo_value(sys, lw.mine[0], i), i + 1);
    for (uint64_t i = 0; i < 5; i++)
        cr_assert_eq(ask_echo_value(sys, lw.mine[1], i), i + 1);
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(ask_echo_value(sys, lw.mine[0], i), i + 1);
    cr_assert(live_actors_reach(sys, 2, 5000), "promise actors left alive");
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.actors_spawned, 2 + 205, "every ask spawned its promise");
    cr_assert_eq(__atomic_load_n(&lw.others, __ATOMIC_RELAXED), 0,
                 "%u lifecycle events of promises", lw.others);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* Replies twice to each request, the second time through the reactor (a
 * timer of 0 ms), a little later: it reaches a promise that has ended (the
 * asking thread ends it in place once it has the first reply), or a later
 * ask's promise in the same slot, which must not take it. */
static casty_behavior_t *replies_twice(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    const echo_req *r = casty_msg_as(msg, echo_req);
    if (r == NULL)
        return casty_unhandled();
    CASTY_TELL(r->reply_to, echo_rep, .v = r->v + 1);
    char key[48];
    snprintf(key, sizeof key, "twice-%" PRIu64, r->v);
    echo_rep again = {.v = UINT64_MAX};
    casty_timer_schedule(casty_ctx_system(ctx), key, r->reply_to, &echo_rep_type, &again, 0);
    return casty_same();
}

enum { TWICE_ASKS = 1000 };

Test(actor, second_replies_are_dead_letters_never_a_later_asks_reply)
{
    casty_system_t *sys = system_with_workers(2);
    casty_ref_t twice;
    cr_assert_eq(casty_spawn(sys, casty_receive(replies_twice, NULL, 0), NULL, NULL, &twice), 0);
    for (uint64_t i = 0; i < TWICE_ASKS; i++)
        cr_assert_eq(ask_echo_value(sys, twice, i), i + 1, "ask %" PRIu64 " took another reply", i);
    cr_assert(live_actors_reach(sys, 1, 5000), "promise actors left alive");
    uint64_t end = now_ns() + 5000000000ull;
    casty_system_stats_t st;
    do {
        casty_system_stats(sys, &st);
    } while (st.dead_letters < TWICE_ASKS && now_ns() < end && usleep(1000) == 0);
    cr_assert_eq(st.dead_letters, TWICE_ASKS);
    /* A request that fails after the promise started: the promise ends too. */
    cr_assert_eq(casty_ask(sys, twice, failing_request, NULL, 1000, &(casty_msg_t *){NULL}),
                 CASTY_ERANGE);
    cr_assert(live_actors_reach(sys, 1, 5000), "the failed ask's promise left alive");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* Takes every message and does nothing (never replies). */
static casty_behavior_t *slow_sink(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)msg;
    (void)state;
    return casty_same();
}

Test(actor, ask_timeout_without_subscribers_waits_its_time_and_zero_does_not_wait)
{
    casty_system_t *sys = system_with_workers(2);
    casty_ref_t mute;
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_sink, NULL, 0), NULL, NULL, &mute), 0);
    assert_ask_times_out(sys, mute, 30);
    uint64_t t0 = now_ns();
    casty_msg_t *reply;
    cr_assert_eq(casty_ask(sys, mute, ask_get, NULL, 0, &reply), CASTY_ETIMEDOUT);
    cr_assert_lt(now_ns() - t0, 1000000000ull, "a timeout of 0 waited");
    cr_assert(live_actors_reach(sys, 1, 5000), "timed-out promises left alive");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

static latch_t mute_got = LATCH_INIT;

static casty_behavior_t *never_replies_counting(casty_ctx_t *ctx, const casty_msg_t *msg,
                                               void *state)
{
    (void)ctx;
    (void)msg;
    (void)state;
    latch_add(&mute_got, 1);
    return casty_same();
}

struct shutdown_asker {
    casty_system_t *sys;
    casty_ref_t mute;
    int rc;
    latch_t *done;
};

static void *ask_until_shutdown(void *arg)
{
    struct shutdown_asker *a = arg;
    casty_msg_t *reply = (casty_msg_t *)1;
    a->rc = casty_ask(a->sys, a->mute, ask_get, NULL, 20000, &reply);
    if (reply != NULL)
        a->rc = 1; /* must stay NULL */
    latch_add(a->done, 1);
    return NULL;
}

/* A thread waiting in casty_ask (polling or asleep) when the system shuts
 * down returns CASTY_ESHUTDOWN then, not at its timeout. */
Test(actor, ask_waiting_when_the_system_shuts_down_returns_eshutdown)
{
    casty_system_t *sys = system_with_workers(2);
    casty_ref_t mute;
    cr_assert_eq(
        casty_spawn(sys, casty_receive(never_replies_counting, NULL, 0), NULL, NULL, &mute), 0);
    latch_t done = LATCH_INIT;
    struct shutdown_asker a = {.sys = sys, .mute = mute, .rc = 0, .done = &done};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, ask_until_shutdown, &a), 0);
    cr_assert_eq(latch_wait(&mute_got, 1, 5000), 1, "the request never arrived");
    uint64_t t0 = now_ns();
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(latch_wait(&done, 1, 5000), 1, "casty_ask did not return at shutdown");
    pthread_join(t, NULL);
    cr_assert_lt(now_ns() - t0, 5000000000ull);
    cr_assert_eq(a.rc, CASTY_ESHUTDOWN);
}

static uint64_t handled_after_stop; /* atomic */

static casty_behavior_t *counts_messages(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)msg;
    (void)state;
    __atomic_add_fetch(&handled_after_stop, 1, __ATOMIC_RELAXED);
    return casty_same();
}

Test(actor, spawned_outside_then_stopped_at_once_handles_nothing_and_is_gone)
{
    casty_system_t *sys = system_with_workers(2);
    for (int i = 0; i < OUTSIDE_SPAWNS; i++) {
        casty_ref_t ref;
        cr_assert_eq(casty_spawn(sys, casty_receive(counts_messages, NULL, 0), NULL, NULL, &ref), 0);
        cr_assert_eq(casty_stop(ref), 0);
        cr_assert_eq(casty_tell(ref, &other_sig_type, NULL), 0);
    }
    cr_assert(live_actors_reach(sys, 0, 5000), "stopped actors left alive");
    /* (An actor counts as gone when it stops; the message behind the stop
     * becomes a dead letter when a worker reaches it, possibly later.) */
    bool all_dead = stat_reaches(sys, true, OUTSIDE_SPAWNS, 5000);
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(__atomic_load_n(&handled_after_stop, __ATOMIC_RELAXED), 0,
                 "a message sent after the stop was handled");
    cr_assert(all_dead, "dead letters %lu of %d", (unsigned long)st.dead_letters,
              OUTSIDE_SPAWNS);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- zero-copy send ---------------------------------------------------------- */

CASTY_MESSAGE_DECLARE(blob_msg, char *text; size_t len;);
static latch_t blob_drops = LATCH_INIT;
static void blob_drop(void *v)
{
    blob_msg *b = v;
    free(b->text);
    latch_add(&blob_drops, 1);
}
CASTY_MESSAGE_DEFINE_OPS(blob_msg, NULL, NULL, blob_drop);

static latch_t blob_seen = LATCH_INIT;
static const void *blob_addr;

static casty_behavior_t *blob_reader(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    const blob_msg *b = casty_msg_as(msg, blob_msg);
    cr_assert_not_null(b);
    cr_assert_str_eq(b->text, "zero-copy");
    blob_addr = b;
    latch_add(&blob_seen, 1);
    return casty_same();
}

Test(actor, tell_move_delivers_the_same_block_and_drops_once)
{
    casty_system_t *sys = system_with_workers(2);
    blob_drops.count = blob_seen.count = 0;
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_receive(blob_reader, NULL, 0), NULL, NULL, &ref), 0);
    blob_msg *b = malloc(sizeof *b);
    b->text = strdup("zero-copy");
    b->len = 9;
    cr_assert_eq(casty_tell_move(ref, &blob_msg_type, b), 0);
    cr_assert_eq(latch_wait(&blob_seen, 1, 5000), 1);
    cr_assert_eq(blob_addr, b, "the value was copied");
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(latch_get(&blob_drops), 1);
}

/* Every undelivered message is dropped exactly once at shutdown: no leak
 * (checked by LSan under make asan) and no double drop (checked here). */

Test(actor, shutdown_with_messages_in_flight_drops_each_once)
{
    casty_system_t *sys = system_with_workers(2);
    blob_drops.count = 0;
    casty_ref_t sinks[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(casty_spawn(sys, casty_receive(slow_sink, NULL, 0), NULL, NULL, &sinks[i]), 0);
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        blob_msg v = {strdup("payload"), 7};
        if (i % 2) {
            cr_assert_eq(casty_tell(sinks[i % 8], &blob_msg_type, &v), 0);
        } else {
            blob_msg *h = malloc(sizeof *h);
            *h = v;
            cr_assert_eq(casty_tell_move(sinks[i % 8], &blob_msg_type, h), 0);
        }
    }
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(latch_get(&blob_drops), (uint64_t)n);
}

/* ---- unhandled, failure, events ------------------------------------------------ */

static latch_t unhandled_seen = LATCH_INIT;
static void on_unhandled(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)arg;
    const casty_unhandled_message_t *u = ev;
    if (u->msg_type == &other_sig_type)
        latch_add(&unhandled_seen, 1);
}

static casty_behavior_t *only_adds(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    if (casty_msg_is(msg, add_msg))
        return casty_same();
    if (casty_msg_is(msg, stop_sig))
        return casty_failed(CASTY_ERANGE, "asked to fail");
    return casty_unhandled();
}

static latch_t failed_seen = LATCH_INIT;
static void on_failed(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)arg;
    const casty_actor_failed_t *f = ev;
    if (f->code == CASTY_ERANGE && strcmp(f->reason, "asked to fail") == 0)
        latch_add(&failed_seen, 1);
}

Test(events, unhandled_and_failed_are_published)
{
    casty_system_t *sys = system_with_workers(1);
    unhandled_seen.count = failed_seen.count = stopped_events.count = 0;
    casty_ref_t ref;
    cr_assert_eq(casty_subscribe(sys, &casty_unhandled_message_t_type, on_unhandled, NULL), 0);
    cr_assert_eq(casty_subscribe(sys, &casty_actor_failed_t_type, on_failed, NULL), 0);
    cr_assert_eq(casty_spawn(sys, casty_receive(only_adds, NULL, 0), NULL, NULL, &ref), 0);
    cr_assert_eq(casty_subscribe(sys, &casty_actor_stopped_t_type, on_stopped, &ref), 0);
    cr_assert_eq(casty_tell(ref, &other_sig_type, NULL), 0);
    cr_assert_eq(latch_wait(&unhandled_seen, 1, 5000), 1);
    cr_assert_eq(casty_tell(ref, &stop_sig_type, NULL), 0);
    cr_assert_eq(latch_wait(&failed_seen, 1, 5000), 1);
    cr_assert_eq(latch_wait(&stopped_events, 1, 5000), 1, "unsupervised failure stops the actor");
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.unhandled, 1);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

static latch_t started_seen = LATCH_INIT;
static casty_ref_t listener_ref;
static void on_started(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)arg;
    const casty_actor_started_t *s = ev;
    if (!casty_ref_eq(s->ref, listener_ref))
        latch_add(&started_seen, 1);
}

static latch_t actor_events = LATCH_INIT;
static casty_behavior_t *event_listener(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    const casty_actor_started_t *ev = casty_msg_as(msg, casty_actor_started_t);
    /* Its own start may be published after it subscribed: not counted. */
    if (ev && !casty_ref_eq(ev->ref, casty_ctx_self(ctx)))
        latch_add(&actor_events, 1);
    return casty_same();
}

Test(events, duplicate_subscription_delivers_once_and_unsubscribe_stops)
{
    casty_system_t *sys = system_with_workers(1);
    started_seen.count = actor_events.count = 0;
    casty_ref_t listener;
    cr_assert_eq(casty_spawn(sys, casty_receive(event_listener, NULL, 0), NULL, NULL, &listener), 0);
    listener_ref = listener;
    cr_assert_eq(casty_subscribe(sys, &casty_actor_started_t_type, on_started, NULL), 0);
    cr_assert_eq(casty_subscribe(sys, &casty_actor_started_t_type, on_started, NULL), 0);
    cr_assert_eq(casty_subscribe_actor(sys, &casty_actor_started_t_type, listener), 0);
    cr_assert_eq(casty_subscribe_actor(sys, &casty_actor_started_t_type, listener), 0);
    casty_ref_t a;
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_sink, NULL, 0), NULL, NULL, &a), 0);
    cr_assert_eq(latch_wait(&started_seen, 1, 5000), 1);
    cr_assert_eq(latch_wait(&actor_events, 1, 5000), 1);
    /* A second spawn is a sync point: its started event comes after the first's. */
    cr_assert_eq(casty_unsubscribe(sys, &casty_actor_started_t_type, on_started, NULL), 0);
    cr_assert_eq(casty_unsubscribe(sys, &casty_actor_started_t_type, on_started, NULL), CASTY_ENOENT);
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_sink, NULL, 0), NULL, NULL, &a), 0);
    cr_assert_eq(latch_wait(&actor_events, 2, 5000), 2);
    cr_assert_eq(latch_get(&started_seen), 1, "duplicate or stale callback delivery");
    cr_assert_eq(latch_get(&actor_events), 2);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- names, paths, types, errors --------------------------------------------------- */

Test(actor, names_are_unique_and_paths_printable)
{
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.name = "app";
    cfg.workers = 1;
    casty_system_t *sys;
    cr_assert_eq(casty_system_create(&cfg, &sys), 0);
    casty_ref_t a, b;
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_sink, NULL, 0), "alice", NULL, &a), 0);
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_sink, NULL, 0), "alice", NULL, &b), CASTY_EEXIST);
    cr_assert(casty_ref_is_none(b));
    char path[64];
    cr_assert_eq(casty_ref_path(a, path, sizeof path), (int)strlen("casty://app@local/user/alice"));
    cr_assert_str_eq(path, "casty://app@local/user/alice");
    cr_assert_eq(casty_ref_path(a, path, 10), CASTY_ENOSPC);
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_sink, NULL, 0), "a/b", NULL, &b), CASTY_EINVAL);
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_sink, NULL, 0), "", NULL, &b), CASTY_EINVAL);
    cr_assert_eq(casty_spawn(sys, NULL, "x", NULL, &b), CASTY_EINVAL);
    cr_assert_eq(casty_spawn(NULL, casty_receive(slow_sink, NULL, 0), "x", NULL, &b), CASTY_EINVAL);
    cr_assert_eq(casty_spawn(sys, casty_same(), "x", NULL, &b), CASTY_EINVAL);
    /* After alice stops, the name is free again. */
    stopped_events.count = 0;
    cr_assert_eq(casty_subscribe(sys, &casty_actor_stopped_t_type, on_stopped, &a), 0);
    cr_assert_eq(casty_stop(a), 0);
    cr_assert_eq(latch_wait(&stopped_events, 1, 5000), 1);
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_sink, NULL, 0), "alice", NULL, &b), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(message, type_id_is_xxh3_of_name_and_msg_as_checks_type)
{
    cr_assert_eq(casty_type_id(&add_msg_type), XXH3_64bits("add_msg", 7));
    cr_assert_eq(casty_type_id(NULL), 0);
    cr_assert_null(casty_msg_get(NULL, &add_msg_type));
    cr_assert_null(casty_msg_type(NULL));
    casty_msg_free(NULL);
    cr_assert_eq(casty_tell(CASTY_REF_NONE, NULL, NULL), CASTY_EINVAL);
    cr_assert_eq(casty_tell(CASTY_REF_NONE, &add_msg_type, NULL), CASTY_EINVAL);
    cr_assert_eq(casty_tell_move(CASTY_REF_NONE, &add_msg_type, NULL), CASTY_EINVAL);
}

Test(error, strerror_covers_the_table_and_errno)
{
    cr_assert_str_eq(casty_strerror(CASTY_ETIMEDOUT), "timed out");
    cr_assert_str_eq(casty_strerror(CASTY_EFULL), "mailbox full");
    cr_assert_str_eq(casty_err_name(CASTY_EDEADLK), "CASTY_EDEADLK");
    cr_assert_str_eq(casty_err_name(12345), "CASTY_UNKNOWN");
    cr_assert_str_eq(casty_strerror(0), "success");
    cr_assert_str_eq(casty_strerror(-EPIPE), "Broken pipe");
    cr_assert_str_eq(casty_strerror(-99999), "unknown error");
}

/* ---- systems ---------------------------------------------------------------------------- */

Test(system, several_systems_in_one_process_talk_and_die_independently)
{
    casty_system_t *s1 = system_with_workers(1), *s2 = system_with_workers(2), *s3 = system_with_workers(1);
    cr_assert_neq(casty_system_node(s1), casty_system_node(s2));
    int64_t zero = 0;
    casty_ref_t c2, c3;
    cr_assert_eq(casty_spawn(s2, casty_receive(inplace_counter, &zero, sizeof zero), "c", NULL, &c2), 0);
    cr_assert_eq(casty_spawn(s3, casty_receive(inplace_counter, &zero, sizeof zero), "c", NULL, &c3), 0);
    cr_assert_eq(CASTY_TELL(c2, add_msg, .n = 2), 0);
    cr_assert_eq(CASTY_TELL(c3, add_msg, .n = 3), 0);
    cr_assert_eq(ask_value(s1 /* asks may go through any system */, c2), 2);
    cr_assert_eq(ask_value(s3, c3), 3);
    cr_assert_eq(casty_system_shutdown(s2), 0);
    /* Refs into a system that is gone: a clear error, never a crash. */
    cr_assert_eq(CASTY_TELL(c2, add_msg, .n = 1), CASTY_ESHUTDOWN);
    cr_assert_eq(casty_stop(c2), CASTY_ESHUTDOWN);
    char path[64];
    cr_assert_eq(casty_ref_path(c2, path, sizeof path), CASTY_ESHUTDOWN);
    cr_assert_eq(CASTY_TELL(c3, add_msg, .n = 1), 0);
    cr_assert_eq(ask_value(s1, c3), 4);
    cr_assert_eq(casty_system_shutdown(s1), 0);
    cr_assert_eq(casty_system_shutdown(s3), 0);
}

Test(system, bad_config_is_rejected)
{
    casty_system_t *sys = (casty_system_t *)1;
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.name = "a/b";
    cr_assert_eq(casty_system_create(&cfg, &sys), CASTY_EINVAL);
    cr_assert_null(sys);
    cfg.name = "";
    cr_assert_eq(casty_system_create(&cfg, &sys), CASTY_EINVAL);
    cfg.name = "ok";
    cfg.workers = 100000;
    cr_assert_eq(casty_system_create(&cfg, &sys), CASTY_EINVAL);
    cr_assert_eq(casty_system_create(NULL, NULL), CASTY_EINVAL);
    cr_assert_eq(casty_system_shutdown(NULL), CASTY_EINVAL);
}

Test(system, defaults_use_online_cpus)
{
    casty_system_t *sys;
    cr_assert_eq(casty_system_create(NULL, &sys), 0);
    cr_assert_eq(casty_system_workers(sys), (uint32_t)sysconf(_SC_NPROCESSORS_ONLN));
    cr_assert_str_eq(casty_system_name(sys), "casty");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

static double process_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* An idle system parks every worker: CPU time over a second of idleness
 * stays near zero. (A timed wait is the thing under test here.) */
Test(system, idle_system_burns_no_cpu)
{
    casty_system_t *sys = system_with_workers(0);
    casty_ref_t ref;
    int64_t zero = 0;
    cr_assert_eq(casty_spawn(sys, casty_receive(inplace_counter, &zero, sizeof zero), NULL, NULL, &ref), 0);
    for (int i = 0; i < 1000; i++)
        CASTY_TELL(ref, add_msg, .n = 1);
    cr_assert_eq(ask_value(sys, ref), 1000);
    double before = process_cpu_seconds();
    struct timespec one_second = {1, 0};
    nanosleep(&one_second, NULL);
    double used = process_cpu_seconds() - before;
    cr_assert_lt(used, 0.05, "idle system used %.3f s of CPU in 1 s", used);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

static latch_t spawned_inside = LATCH_INIT;
static casty_behavior_t *spawner(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    (void)msg;
    int rc = casty_system_shutdown(casty_ctx_system(ctx));
    cr_assert_eq(rc, CASTY_EDEADLK);
    casty_ref_t child;
    int64_t zero = 0;
    rc = casty_ctx_spawn(ctx, casty_receive(inplace_counter, &zero, sizeof zero), NULL, NULL, &child);
    cr_assert_eq(rc, 0);
    CASTY_TELL(child, add_msg, .n = 1);
    latch_add(&spawned_inside, 1);
    return casty_same();
}

Test(system, shutdown_from_handler_is_edeadlk_and_handlers_spawn)
{
    casty_system_t *sys = system_with_workers(2);
    spawned_inside.count = 0;
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_receive(spawner, NULL, 0), NULL, NULL, &ref), 0);
    for (int i = 0; i < 100; i++)
        casty_tell(ref, &other_sig_type, NULL);
    cr_assert_eq(latch_wait(&spawned_inside, 100, 5000), 100);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* Where the kernel refuses io_uring (here: a seccomp filter that makes
 * io_uring_setup fail with ENOSYS, as an old kernel would), system creation
 * fails with CASTY_EIOURING and a message naming the cause. Runs in a child
 * process: the filter cannot be removed once installed. */
Test(system, no_io_uring_is_a_clear_error)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            _exit(2);
        casty_system_t *sys = (casty_system_t *)1;
        int rc = casty_system_create(NULL, &sys);
        _exit(rc == CASTY_EIOURING && sys == NULL &&
                      strstr(casty_strerror(rc), "io_uring") != NULL
                  ? 0
                  : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "child status %d", WEXITSTATUS(status));
}

/* ---- sends from a handler ------------------------------------------------------
 * A worker's casty_tell has a written-out common case (a copied value of up
 * to 32 bytes to a live slot without a bound) and hands everything else to
 * the fully checked path. From inside a handler: bad input is refused as
 * from any thread; values of every node class (tiny, small, small's upper
 * edge, an odd size between, large, heap) arrive intact and in order; a
 * stale generation and a slot never allocated become dead letters; a
 * signal with no value goes. */
CASTY_SIGNAL(probe_sig);
CASTY_MESSAGE(tiny_msg, uint32_t seq;);
CASTY_MESSAGE(pair_msg, uint64_t seq, check;);
CASTY_MESSAGE(edge_msg, uint64_t w[4];);  /* MSG_SMALL_MAX: the largest small value */
CASTY_MESSAGE(odd_msg, uint32_t w[5];);   /* 20 bytes: the copy's words overlap */
CASTY_MESSAGE(large_msg, uint64_t w[8];);
CASTY_MESSAGE(huge_msg, uint64_t w[40];);

enum { SENDS = 300, SEND_KINDS = 6 };
static const casty_type_t nameless_type = {NULL, 8, 0, 0, 0, 0};
static const casty_type_t oversized_type = {"oversized", (size_t)UINT32_MAX + 1, 0, 0, 0, 0};
static int probe_rc[6];
static latch_t probed = LATCH_INIT;
static latch_t received = LATCH_INIT;
static latch_t send_dead = LATCH_INIT;
static uint32_t received_bad; /* atomic */

struct recorder {
    uint64_t next[SEND_KINDS];
};

static void check_seq(struct recorder *r, int kind, uint64_t seq, bool intact)
{
    if (!intact || seq != r->next[kind])
        __atomic_add_fetch(&received_bad, 1, __ATOMIC_RELAXED);
    r->next[kind] = seq + 1;
    latch_add(&received, 1);
}

static casty_behavior_t *recorder_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    struct recorder *r = state;
    const tiny_msg *t = casty_msg_as(msg, tiny_msg);
    const pair_msg *p = casty_msg_as(msg, pair_msg);
    const edge_msg *e = casty_msg_as(msg, edge_msg);
    const large_msg *l = casty_msg_as(msg, large_msg);
    const huge_msg *h = casty_msg_as(msg, huge_msg);
    const odd_msg *o = casty_msg_as(msg, odd_msg);
    if (t) {
        check_seq(r, 0, t->seq, true);
    } else if (p) {
        check_seq(r, 1, p->seq, p->check == ~p->seq);
    } else if (e) {
        check_seq(r, 2, e->w[0],
                  e->w[1] == e->w[0] + 1 && e->w[2] == e->w[0] + 2 && e->w[3] == e->w[0] * 3 + 1);
    } else if (l) {
        check_seq(r, 3, l->w[0], l->w[7] == l->w[0] * 7 + 1);
    } else if (h) {
        check_seq(r, 4, h->w[0], h->w[39] == h->w[0] * 39 + 1);
    } else if (o) {
        check_seq(r, 5, o->w[0],
                  o->w[1] == o->w[0] + 1 && o->w[2] == o->w[0] + 2 && o->w[3] == o->w[0] + 3 &&
                      o->w[4] == o->w[0] + 4);
    } else if (casty_msg_is(msg, other_sig)) {
        latch_add(&received, 1);
    } else {
        return casty_unhandled();
    }
    return casty_same();
}

static casty_behavior_t *prober_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    casty_ref_t rec = *(casty_ref_t *)state;
    if (!casty_msg_is(msg, probe_sig))
        return casty_unhandled();
    uint64_t word = 1;
    casty_ref_t stale = rec, unallocated = rec;
    stale.actor ^= (uint64_t)1 << 32;          /* another generation of the slot */
    unallocated.actor = (uint64_t)7 << 32 | 0x0ffffff0u; /* a slot no chunk holds */
    probe_rc[0] = casty_tell(rec, NULL, &word);
    probe_rc[1] = casty_tell(rec, &nameless_type, &word);
    probe_rc[2] = casty_tell(rec, &pair_msg_type, NULL);
    probe_rc[3] = casty_tell(rec, &oversized_type, &word);
    probe_rc[4] = CASTY_TELL(stale, tiny_msg, .seq = 0);
    probe_rc[5] = CASTY_TELL(unallocated, tiny_msg, .seq = 0);
    for (uint64_t i = 0; i < SENDS; i++) {
        bool ok = CASTY_TELL(rec, tiny_msg, .seq = (uint32_t)i) == 0;
        ok = ok && CASTY_TELL(rec, pair_msg, .seq = i, .check = ~i) == 0;
        ok = ok && CASTY_TELL(rec, edge_msg, .w = {i, i + 1, i + 2, i * 3 + 1}) == 0;
        uint32_t j = (uint32_t)i;
        ok = ok && CASTY_TELL(rec, odd_msg, .w = {j, j + 1, j + 2, j + 3, j + 4}) == 0;
        ok = ok && CASTY_TELL(rec, large_msg, .w = {i, 0, 0, 0, 0, 0, 0, i * 7 + 1}) == 0;
        huge_msg big = {{0}};
        big.w[0] = i;
        big.w[39] = i * 39 + 1;
        ok = ok && casty_tell(rec, &huge_msg_type, &big) == 0;
        if (!ok)
            __atomic_add_fetch(&received_bad, 1, __ATOMIC_RELAXED);
    }
    if (casty_tell(rec, &other_sig_type, NULL) != 0)
        __atomic_add_fetch(&received_bad, 1, __ATOMIC_RELAXED);
    latch_add(&probed, 1);
    return casty_same();
}

static void count_send_dead(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)arg;
    if (((const casty_dead_letter_t *)ev)->msg_type == &tiny_msg_type)
        latch_add(&send_dead, 1);
}

Test(actor, sends_from_a_handler_check_input_and_deliver_every_size)
{
    casty_system_t *sys = system_with_workers(1);
    cr_assert_eq(casty_subscribe(sys, &casty_dead_letter_t_type, count_send_dead, NULL), 0);
    struct recorder r0 = {{0}};
    casty_ref_t rec, prober;
    cr_assert_eq(casty_spawn(sys, casty_receive(recorder_recv, &r0, sizeof r0), NULL, NULL, &rec), 0);
    cr_assert_eq(casty_spawn(sys, casty_receive(prober_recv, &rec, sizeof rec), NULL, NULL, &prober),
                 0);
    cr_assert_eq(casty_tell(prober, &probe_sig_type, NULL), 0);
    cr_assert_eq(latch_wait(&probed, 1, 10000), 1);
    cr_assert_eq(probe_rc[0], CASTY_EINVAL, "NULL type");
    cr_assert_eq(probe_rc[1], CASTY_EINVAL, "a type without a name");
    cr_assert_eq(probe_rc[2], CASTY_EINVAL, "no value for a sized type");
    cr_assert_eq(probe_rc[3], CASTY_EINVAL, "a size past 32 bits");
    cr_assert_eq(probe_rc[4], 0, "a stale generation is a dead letter, not an error");
    cr_assert_eq(probe_rc[5], 0, "an unallocated slot is a dead letter, not an error");
    uint64_t want = (uint64_t)SENDS * SEND_KINDS + 1;
    cr_assert_eq(latch_wait(&received, want, 10000), want);
    cr_assert_eq(latch_wait(&send_dead, 2, 10000), 2);
    cr_assert_eq(__atomic_load_n(&received_bad, __ATOMIC_RELAXED), 0,
                 "a value arrived damaged, out of order, or a send failed");
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.unhandled, 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}
