/* supervision — an unreliable worker that crashes and is restarted.
 *
 * Shows: failing a handler with casty_failed(code, reason), supervising a
 * behavior with a one-for-one strategy (at most 3 restarts a minute), the
 * restart going back to fresh state (setup runs again), the failing message
 * being dropped, and the next message reaching the new incarnation. The
 * restart is visible on the event stream (casty_actor_restarted_t, printed
 * to stderr).
 *
 * Output:
 *     Processed: hello
 */
#include <casty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CASTY_MESSAGE(Job, char text[32]; casty_ref_t reply_to;);
CASTY_SIGNAL(Ok);

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, casty_strerror(rc));
        exit(1);
    }
}

static casty_behavior_t *unreliable(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)state;
    const Job *j = casty_msg_as(msg, Job);
    if (!j)
        return casty_unhandled();
    if (strcmp(j->text, "crash") == 0)
        return casty_failed(CASTY_EINVAL, "asked to crash");
    printf("Processed: %s\n", j->text);
    if (!casty_ref_is_none(j->reply_to))
        casty_tell(j->reply_to, &Ok_type, NULL);
    return casty_same();
}

static casty_behavior_t *start_worker(casty_ctx_t *ctx, void *arg)
{
    (void)ctx, (void)arg;
    return casty_receive(unreliable, NULL, 0);
}

static void on_restart(const casty_type_t *type, const void *event, void *arg)
{
    (void)type, (void)arg;
    const casty_actor_restarted_t *r = event;
    fprintf(stderr, "(worker restarted after: %s)\n", r->reason);
}

static int send_hello(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, Job, .text = "hello", .reply_to = reply_to);
}

int main(void)
{
    casty_system_t *sys;
    check(casty_system_create(NULL, &sys), "casty_system_create");
    check(casty_subscribe(sys, &casty_actor_restarted_t_type, on_restart, NULL), "subscribe");

    casty_strategy_t one_for_one = {.max_restarts = 3, .within_seconds = 60};
    casty_ref_t w;
    check(casty_spawn(sys, casty_supervise(casty_setup(start_worker, NULL, 0), &one_for_one),
                      "worker", NULL, &w),
          "spawn");

    check(CASTY_TELL(w, Job, .text = "crash"), "tell");
    casty_msg_t *ok;
    check(casty_ask(sys, w, send_hello, NULL, 5000, &ok), "ask");
    casty_msg_free(ok);

    check(casty_system_shutdown(sys), "casty_system_shutdown");
    return 0;
}
