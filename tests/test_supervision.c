/* Supervision and lifecycle: one-for-one restarts within a sliding window,
 * the decider by error code, escalation up to a grandparent, explicit
 * restart, the failing message dropped and the next one handled by the new
 * incarnation, and the exact order of lifecycle hooks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "casty.h"
#include "helpers.h"

CASTY_MESSAGE(fail_msg, int code;);
CASTY_MESSAGE(work_msg, int n;);
CASTY_MESSAGE(sup_get_msg, casty_ref_t reply_to;);
CASTY_MESSAGE(count_msg, int handled; int setups;);
CASTY_SIGNAL(spawn_sig);

static latch_t restarted = LATCH_INIT, failed = LATCH_INIT, stopped = LATCH_INIT,
               dead_fail = LATCH_INIT;
static casty_ref_t watched_ref;
static char last_restart_reason[128];
static int setups;

static void on_event(const casty_type_t *t, const void *ev, void *arg)
{
    (void)arg;
    if (t == &casty_actor_restarted_t_type) {
        const casty_actor_restarted_t *r = ev;
        if (casty_ref_eq(r->ref, watched_ref)) {
            snprintf(last_restart_reason, sizeof last_restart_reason, "%s",
                     r->reason ? r->reason : "");
            latch_add(&restarted, 1);
        }
    } else if (t == &casty_actor_failed_t_type) {
        if (casty_ref_eq(((const casty_actor_failed_t *)ev)->ref, watched_ref))
            latch_add(&failed, 1);
    } else if (t == &casty_actor_stopped_t_type) {
        if (casty_ref_eq(((const casty_actor_stopped_t *)ev)->ref, watched_ref))
            latch_add(&stopped, 1);
    } else if (t == &casty_dead_letter_t_type) {
        const casty_dead_letter_t *d = ev;
        if (d->msg_type == &fail_msg_type && casty_ref_eq(d->recipient, watched_ref))
            latch_add(&dead_fail, 1);
    }
}

static casty_system_t *supervised_system(void)
{
    casty_system_t *sys;
    cr_assert_eq(casty_system_create(NULL, &sys), 0);
    restarted.count = failed.count = stopped.count = dead_fail.count = 0;
    setups = 0;
    const casty_type_t *types[] = {&casty_actor_restarted_t_type, &casty_actor_failed_t_type,
                                   &casty_actor_stopped_t_type, &casty_dead_letter_t_type};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(casty_subscribe(sys, types[i], on_event, NULL), 0);
    return sys;
}

/* A worker with a per-incarnation count: fails on fail_msg, counts work. */
static casty_behavior_t *worker(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    int *handled = state;
    const fail_msg *f = casty_msg_as(msg, fail_msg);
    if (f)
        return f->code ? casty_failed(f->code, "boom") : casty_restart();
    if (casty_msg_is(msg, work_msg)) {
        ++*handled;
        return casty_same();
    }
    const sup_get_msg *g = casty_msg_as(msg, sup_get_msg);
    if (g) {
        CASTY_TELL(g->reply_to, count_msg, .handled = *handled, .setups = setups);
        return casty_same();
    }
    return casty_unhandled();
}

static casty_behavior_t *worker_setup(casty_ctx_t *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    setups++; /* only touched by this actor's worker, one at a time */
    int zero = 0;
    return casty_receive(worker, &zero, sizeof zero);
}

static int ask_get(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, sup_get_msg, .reply_to = reply_to);
}

static count_msg ask_count(casty_system_t *sys, casty_ref_t ref)
{
    casty_msg_t *reply;
    cr_assert_eq(casty_ask(sys, ref, ask_get, NULL, 5000, &reply), 0);
    count_msg out = *casty_msg_as(reply, count_msg);
    casty_msg_free(reply);
    return out;
}

static casty_ref_t spawn_supervised(casty_system_t *sys, const casty_strategy_t *s)
{
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_supervise(casty_setup(worker_setup, NULL, 0), s), NULL,
                             NULL, &ref),
                 0);
    watched_ref = ref;
    return ref;
}

Test(supervision, restart_limit_two_then_stop_rest_dead_letters)
{
    casty_system_t *sys = supervised_system();
    casty_strategy_t s = {.max_restarts = 2, .within_seconds = 60};
    casty_ref_t ref = spawn_supervised(sys, &s);
    CASTY_TELL(ref, work_msg, .n = 1);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(CASTY_TELL(ref, fail_msg, .code = CASTY_ERANGE), 0);
    cr_assert_eq(latch_wait(&stopped, 1, 5000), 1);
    cr_assert_eq(latch_get(&restarted), 2, "restarted, restarted, stopped");
    cr_assert_eq(latch_get(&failed), 1);
    cr_assert_eq(latch_wait(&dead_fail, 2, 5000), 2, "the remaining two are dead letters");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(supervision, restart_gives_fresh_state_and_next_message_reaches_new_incarnation)
{
    casty_system_t *sys = supervised_system();
    casty_strategy_t s = {.max_restarts = 10, .within_seconds = 60};
    casty_ref_t ref = spawn_supervised(sys, &s);
    CASTY_TELL(ref, work_msg, .n = 1);
    CASTY_TELL(ref, work_msg, .n = 2);
    count_msg c = ask_count(sys, ref);
    cr_assert_eq(c.handled, 2);
    cr_assert_eq(c.setups, 1);
    CASTY_TELL(ref, fail_msg, .code = CASTY_ERANGE);
    CASTY_TELL(ref, work_msg, .n = 3);
    c = ask_count(sys, ref);
    cr_assert_eq(c.handled, 1, "state reset, the message after the failure handled");
    cr_assert_eq(c.setups, 2, "setup ran again");
    cr_assert_eq(latch_get(&restarted), 1);
    cr_assert_str_eq(last_restart_reason, "boom");
    /* Explicit restart (casty_restart()) works the same way. */
    CASTY_TELL(ref, fail_msg, .code = 0);
    c = ask_count(sys, ref);
    cr_assert_eq(c.handled, 0);
    cr_assert_eq(c.setups, 3);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(supervision, window_expiry_resets_the_count)
{
    casty_system_t *sys = supervised_system();
    casty_strategy_t s = {.max_restarts = 1, .within_seconds = 0.2};
    casty_ref_t ref = spawn_supervised(sys, &s);
    CASTY_TELL(ref, fail_msg, .code = CASTY_ERANGE);
    cr_assert_eq(latch_wait(&restarted, 1, 5000), 1);
    /* The window itself is under test: let it pass. */
    struct timespec t = {0, 300 * 1000 * 1000};
    nanosleep(&t, NULL);
    CASTY_TELL(ref, fail_msg, .code = CASTY_ERANGE);
    cr_assert_eq(latch_wait(&restarted, 2, 5000), 2, "a restart outside the window is allowed");
    CASTY_TELL(ref, fail_msg, .code = CASTY_ERANGE); /* second within 0.2 s: over the limit */
    cr_assert_eq(latch_wait(&stopped, 1, 5000), 1);
    cr_assert_eq(latch_get(&restarted), 2);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

static casty_directive_t by_code(int code, const char *reason, void *arg)
{
    (void)reason;
    (void)arg;
    return code == CASTY_ERANGE ? CASTY_RESTART : CASTY_STOP;
}

Test(supervision, decider_by_code)
{
    casty_system_t *sys = supervised_system();
    casty_strategy_t s = {.max_restarts = 10, .within_seconds = 60, .decider = by_code};
    casty_ref_t ref = spawn_supervised(sys, &s);
    CASTY_TELL(ref, fail_msg, .code = CASTY_ERANGE);
    cr_assert_eq(latch_wait(&restarted, 1, 5000), 1);
    CASTY_TELL(ref, fail_msg, .code = CASTY_EINVAL);
    cr_assert_eq(latch_wait(&stopped, 1, 5000), 1);
    cr_assert_eq(latch_get(&restarted), 1);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(supervision, unsupervised_failure_stops_and_publishes)
{
    casty_system_t *sys = supervised_system();
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_setup(worker_setup, NULL, 0), NULL, NULL, &ref), 0);
    watched_ref = ref;
    CASTY_TELL(ref, fail_msg, .code = CASTY_ERANGE);
    cr_assert_eq(latch_wait(&stopped, 1, 5000), 1);
    cr_assert_eq(latch_get(&failed), 1);
    cr_assert_eq(latch_get(&restarted), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- escalation: grandparent (restart) <- parent (escalate) <- child (escalate) ---- */

static casty_directive_t always_escalate(int code, const char *reason, void *arg)
{
    (void)code;
    (void)reason;
    (void)arg;
    return CASTY_ESCALATE;
}

static casty_ref_t grandchild_ref;
static latch_t tree_ready = LATCH_INIT;

static casty_behavior_t *chain_node(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    int depth = *(int *)state;
    if (casty_msg_is(msg, spawn_sig)) {
        casty_strategy_t esc = {.max_restarts = 10, .within_seconds = 60, .decider = always_escalate};
        int next = depth + 1;
        casty_ref_t child;
        cr_assert_eq(casty_ctx_spawn(ctx, casty_supervise(casty_receive(chain_node, &next, sizeof next), &esc),
                                     depth == 0 ? "parent" : "child", NULL, &child),
                     0);
        if (next < 2)
            casty_tell(child, &spawn_sig_type, NULL);
        else {
            grandchild_ref = child;
            latch_add(&tree_ready, 1);
        }
        return casty_same();
    }
    const fail_msg *f = casty_msg_as(msg, fail_msg);
    if (f)
        return casty_failed(f->code, "deep failure");
    return casty_same();
}

Test(supervision, escalate_reaches_the_grandparent_strategy)
{
    casty_system_t *sys = supervised_system();
    tree_ready.count = 0;
    casty_strategy_t restart = {.max_restarts = 10, .within_seconds = 60};
    int zero = 0;
    casty_ref_t g;
    cr_assert_eq(casty_spawn(sys, casty_supervise(casty_receive(chain_node, &zero, sizeof zero), &restart),
                             "grandparent", NULL, &g),
                 0);
    watched_ref = g;
    casty_tell(g, &spawn_sig_type, NULL);
    cr_assert_eq(latch_wait(&tree_ready, 1, 5000), 1);
    casty_ref_t r;
    cr_assert_eq(casty_lookup(sys, "/grandparent/parent/child", &r), 0);
    CASTY_TELL(grandchild_ref, fail_msg, .code = CASTY_ERANGE);
    cr_assert_eq(latch_wait(&restarted, 1, 5000), 1, "the grandparent restarted");
    cr_assert_str_eq(last_restart_reason, "deep failure");
    /* Its children were stopped by the restart. */
    uint64_t deadline = now_ns() + 5000000000ull;
    while (casty_lookup(sys, "/grandparent/parent", &r) == 0 && now_ns() < deadline)
        sched_yield();
    cr_assert_eq(casty_lookup(sys, "/grandparent/parent", &r), CASTY_ENOENT);
    cr_assert_eq(casty_lookup(sys, "/grandparent", &r), 0, "the grandparent lives on");
    cr_assert_eq(latch_get(&stopped), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(supervision, top_level_escalate_stops)
{
    casty_system_t *sys = supervised_system();
    casty_strategy_t esc = {.max_restarts = 10, .within_seconds = 60, .decider = always_escalate};
    casty_ref_t ref = spawn_supervised(sys, &esc);
    CASTY_TELL(ref, fail_msg, .code = CASTY_ERANGE);
    cr_assert_eq(latch_wait(&stopped, 1, 5000), 1);
    cr_assert_eq(latch_get(&restarted), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* ---- lifecycle hook order ----------------------------------------------------- */

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static char hooks_seen[256];
static latch_t hook_count = LATCH_INIT;

static void note(const char *what)
{
    pthread_mutex_lock(&hook_mu);
    strncat(hooks_seen, what, sizeof hooks_seen - strlen(hooks_seen) - 1);
    strncat(hooks_seen, " ", sizeof hooks_seen - strlen(hooks_seen) - 1);
    pthread_mutex_unlock(&hook_mu);
    latch_add(&hook_count, 1);
}

static void h_pre_start(casty_ctx_t *c, void *a) { (void)c, (void)a; note("pre_start"); }
static void h_post_stop(casty_ctx_t *c, void *a) { (void)c, (void)a; note("post_stop"); }
static void h_pre_restart(casty_ctx_t *c, void *a) { (void)c, (void)a; note("pre_restart"); }
static void h_post_restart(casty_ctx_t *c, void *a) { (void)c, (void)a; note("post_restart"); }

static casty_behavior_t *hooked_setup(casty_ctx_t *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    note("setup");
    int zero = 0;
    return casty_receive(worker, &zero, sizeof zero);
}

Test(lifecycle, hook_order_on_start_restart_and_shutdown)
{
    casty_system_t *sys = supervised_system();
    hooks_seen[0] = 0;
    hook_count.count = 0;
    casty_lifecycle_t hooks = {h_pre_start, h_post_stop, h_pre_restart, h_post_restart, NULL};
    casty_strategy_t s = {.max_restarts = 5, .within_seconds = 60};
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys,
                             casty_supervise(casty_with_lifecycle(casty_setup(hooked_setup, NULL, 0), &hooks), &s),
                             NULL, NULL, &ref),
                 0);
    CASTY_TELL(ref, work_msg, .n = 1);
    ask_count(sys, ref);
    cr_assert_eq(latch_get(&hook_count), 2);
    CASTY_TELL(ref, fail_msg, .code = CASTY_ERANGE);
    ask_count(sys, ref);
    cr_assert_eq(latch_get(&hook_count), 5);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_str_eq(hooks_seen, "pre_start setup pre_restart setup post_restart post_stop ");
}

Test(lifecycle, wrappers_reject_null)
{
    casty_lifecycle_t hooks = {0};
    casty_strategy_t s = {0};
    cr_assert_null(casty_with_lifecycle(NULL, &hooks));
    cr_assert_null(casty_supervise(NULL, &s));
    cr_assert_null(casty_with_lifecycle(casty_receive(worker, NULL, 0), NULL));
    cr_assert_null(casty_supervise(casty_receive(worker, NULL, 0), NULL));
}
