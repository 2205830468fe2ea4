/* Per-actor timers (casty_ctx_timer_*): periodic and one-shot delivery to
 * the actor itself, cancellation that also discards a message that had
 * already fired, replacement by key, and cancellation when the actor stops
 * or restarts. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "casty.h"
#include "helpers.h"

CASTY_MESSAGE(tmr_cmd, int op;);
CASTY_MESSAGE(tmr_tick, int from;);
CASTY_SIGNAL(tmr_marker);

enum { OP_TICK50 = 1, OP_FIRED_THEN_CANCEL, OP_REPLACE, OP_TICK_THEN_STOP, OP_TICK_THEN_FAIL };

static latch_t ticks = LATCH_INIT, markers = LATCH_INIT, old_ticks = LATCH_INIT,
               new_ticks = LATCH_INIT;

static void spin_ms(int ms)
{
    /* Blocks the actor on purpose so a timer fires into its mailbox. */
    uint64_t end = now_ns() + (uint64_t)ms * 1000000ull;
    while (now_ns() < end)
        ;
}

static casty_behavior_t *timed(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    const tmr_cmd *c = casty_msg_as(msg, tmr_cmd);
    if (c) {
        switch (c->op) {
        case OP_TICK50:
            cr_assert_eq(casty_ctx_timer_tick(ctx, "tick", &tmr_tick_type, &(tmr_tick){1}, 50), 0);
            break;
        case OP_FIRED_THEN_CANCEL:
            cr_assert_eq(casty_ctx_timer_schedule(ctx, "once", &tmr_tick_type, &(tmr_tick){9}, 1), 0);
            spin_ms(60);
            cr_assert_eq(casty_ctx_timer_cancel(ctx, "once"), 0);
            cr_assert_eq(casty_ctx_timer_cancel(ctx, "once"), CASTY_ENOENT);
            casty_tell(casty_ctx_self(ctx), &tmr_marker_type, NULL);
            break;
        case OP_REPLACE:
            cr_assert_eq(casty_ctx_timer_schedule(ctx, "k", &tmr_tick_type, &(tmr_tick){1}, 1), 0);
            spin_ms(40); /* the first one has fired into the mailbox */
            cr_assert_eq(casty_ctx_timer_schedule(ctx, "k", &tmr_tick_type, &(tmr_tick){2}, 1), 0);
            break;
        case OP_TICK_THEN_STOP:
            cr_assert_eq(casty_ctx_timer_tick(ctx, "t", &tmr_tick_type, &(tmr_tick){1}, 5), 0);
            return casty_stopped();
        case OP_TICK_THEN_FAIL:
            cr_assert_eq(casty_ctx_timer_tick(ctx, "t", &tmr_tick_type, &(tmr_tick){1}, 5), 0);
            spin_ms(30);
            return casty_restart();
        }
        return casty_same();
    }
    const tmr_tick *t = casty_msg_as(msg, tmr_tick);
    if (t) {
        latch_add(&ticks, 1);
        latch_add(t->from == 1 ? &old_ticks : &new_ticks, 1);
        return casty_same();
    }
    if (casty_msg_is(msg, tmr_marker)) {
        latch_add(&markers, 1);
        return casty_same();
    }
    return casty_unhandled();
}

static casty_system_t *sys_with_actor(casty_ref_t *ref)
{
    casty_system_t *sys;
    cr_assert_eq(casty_system_create(NULL, &sys), 0);
    ticks.count = markers.count = old_ticks.count = new_ticks.count = 0;
    cr_assert_eq(casty_spawn(sys, casty_receive(timed, NULL, 0), NULL, NULL, ref), 0);
    return sys;
}

Test(actor_timers, tick_every_50ms_delivers_at_least_3_in_300ms)
{
    casty_ref_t ref;
    casty_system_t *sys = sys_with_actor(&ref);
    uint64_t t0 = now_ns();
    CASTY_TELL(ref, tmr_cmd, .op = OP_TICK50);
    cr_assert_geq(latch_wait(&ticks, 3, 1000), 3);
    cr_assert_lt(now_ns() - t0, 300000000ull, "3 ticks of 50 ms took over 300 ms");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(actor_timers, cancel_discards_a_message_that_already_fired)
{
    casty_ref_t ref;
    casty_system_t *sys = sys_with_actor(&ref);
    CASTY_TELL(ref, tmr_cmd, .op = OP_FIRED_THEN_CANCEL);
    cr_assert_eq(latch_wait(&markers, 1, 5000), 1);
    cr_assert_eq(latch_get(&ticks), 0, "a cancelled timer's message was delivered");
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(actor_timers, replaced_timer_never_delivers_the_old_message)
{
    casty_ref_t ref;
    casty_system_t *sys = sys_with_actor(&ref);
    CASTY_TELL(ref, tmr_cmd, .op = OP_REPLACE);
    cr_assert_eq(latch_wait(&new_ticks, 1, 5000), 1);
    cr_assert_eq(latch_get(&old_ticks), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

static latch_t tick_dead = LATCH_INIT;
static void on_dead(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)arg;
    if (((const casty_dead_letter_t *)ev)->msg_type == &tmr_tick_type)
        latch_add(&tick_dead, 1);
}

static latch_t actor_stopped = LATCH_INIT;
static void on_stopped(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)ev;
    (void)arg;
    latch_add(&actor_stopped, 1);
}

Test(actor_timers, timers_die_with_the_actor)
{
    casty_ref_t ref;
    casty_system_t *sys = sys_with_actor(&ref);
    tick_dead.count = actor_stopped.count = 0;
    cr_assert_eq(casty_subscribe(sys, &casty_dead_letter_t_type, on_dead, NULL), 0);
    cr_assert_eq(casty_subscribe(sys, &casty_actor_stopped_t_type, on_stopped, NULL), 0);
    CASTY_TELL(ref, tmr_cmd, .op = OP_TICK_THEN_STOP);
    cr_assert_eq(latch_wait(&actor_stopped, 1, 5000), 1);
    /* A live 5 ms tick would produce dead letters within 100 ms: that
     * absence is what is tested. */
    struct timespec t = {0, 100 * 1000 * 1000};
    nanosleep(&t, NULL);
    cr_assert_eq(latch_get(&tick_dead), 0);
    cr_assert_eq(latch_get(&ticks), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(actor_timers, restart_cancels_timers_and_discards_fired_ones)
{
    casty_ref_t ref;
    casty_system_t *sys = sys_with_actor(&ref);
    CASTY_TELL(ref, tmr_cmd, .op = OP_TICK_THEN_FAIL);
    casty_tell(ref, &tmr_marker_type, NULL);
    cr_assert_eq(latch_wait(&markers, 1, 5000), 1);
    struct timespec t = {0, 50 * 1000 * 1000};
    nanosleep(&t, NULL); /* as above: a surviving 5 ms tick would show */
    cr_assert_eq(latch_get(&ticks), 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(actor_timers, bad_input)
{
    casty_ref_t ref;
    casty_system_t *sys = sys_with_actor(&ref);
    cr_assert_eq(casty_ctx_timer_tick(NULL, "k", &tmr_tick_type, &(tmr_tick){1}, 5), CASTY_EINVAL);
    cr_assert_eq(casty_ctx_timer_cancel(NULL, "k"), CASTY_EINVAL);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}
