/* timers — system timers: a repeating tick, a one-shot, and a cancel.
 *
 * Shows: casty_timer_tick (every 100 ms), casty_timer_schedule (once, after
 * 250 ms), casty_timer_cancel (one timer cancelled before it fires, the tick
 * cancelled by the actor after its third delivery), and waiting for the
 * outcome with casty_ask instead of sleeping.
 *
 * Timers fire on the reactor thread in deadline order (100, 200, 250, 300
 * ms) and one sender's messages arrive in order, so the output is always
 * the same. The cancelled timer was due at 200 ms: had it fired, it would
 * have printed before tick 3.
 *
 * Output:
 *     tick 1
 *     tick 2
 *     scheduled after 250 ms
 *     tick 3
 *     tick cancelled after 3
 */
#include <casty.h>
#include <stdio.h>
#include <stdlib.h>

CASTY_SIGNAL(Tick);
CASTY_MESSAGE(Note, char text[32];);
CASTY_MESSAGE(WhenDone, casty_ref_t reply_to;);
CASTY_SIGNAL(Done);

struct printer {
    int ticks;
    int notes;
    casty_ref_t waiting; /* who asked to hear when we are done */
};

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, casty_strerror(rc));
        exit(1);
    }
}

static void reply_if_done(struct printer *p)
{
    if (p->ticks >= 3 && p->notes >= 1 && !casty_ref_is_none(p->waiting)) {
        casty_tell(p->waiting, &Done_type, NULL);
        p->waiting = CASTY_REF_NONE;
    }
}

static casty_behavior_t *printer(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct printer *p = state;
    if (casty_msg_is(msg, Tick)) {
        /* A fourth tick could already be on its way if this actor were very
         * slow to handle the third: ignore it. */
        if (p->ticks >= 3)
            return casty_same();
        printf("tick %d\n", ++p->ticks);
        if (p->ticks == 3) {
            /* Any thread may cancel, handlers included. Once this returns
             * the tick fires no more. */
            check(casty_timer_cancel(casty_ctx_system(ctx), "tick"), "casty_timer_cancel");
            printf("tick cancelled after 3\n");
        }
    } else if (casty_msg_is(msg, Note)) {
        printf("%s\n", casty_msg_as(msg, Note)->text);
        p->notes++;
    } else if (casty_msg_is(msg, WhenDone)) {
        p->waiting = casty_msg_as(msg, WhenDone)->reply_to;
    } else {
        return casty_unhandled();
    }
    fflush(stdout);
    reply_if_done(p);
    return casty_same();
}

static int when_done(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, WhenDone, .reply_to = reply_to);
}

int main(void)
{
    casty_system_t *sys;
    check(casty_system_create(NULL, &sys), "casty_system_create");
    casty_ref_t ref;
    struct printer initial = {0};
    check(casty_spawn(sys, casty_receive(printer, &initial, sizeof initial), "printer", NULL, &ref),
          "casty_spawn");

    /* Every 100 ms, the first time after 100 ms. Signals carry no value. */
    check(casty_timer_tick(sys, "tick", ref, &Tick_type, NULL, 100), "casty_timer_tick");
    /* Once, after 250 ms. The value is copied now. */
    check(casty_timer_schedule(sys, "once", ref, &Note_type, &(Note){"scheduled after 250 ms"}, 250),
          "casty_timer_schedule");
    /* Scheduled, then cancelled before it is due: it never prints. */
    check(casty_timer_schedule(sys, "never", ref, &Note_type, &(Note){"this never prints"}, 200),
          "casty_timer_schedule");
    check(casty_timer_cancel(sys, "never"), "casty_timer_cancel");

    casty_msg_t *reply;
    check(casty_ask(sys, ref, when_done, NULL, 5000, &reply), "casty_ask");
    casty_msg_free(reply);

    check(casty_system_shutdown(sys), "casty_system_shutdown");
    return 0;
}
