/* quickstart — the smallest casty program.
 *
 * Shows: declaring message types, a receive handler that reads its message
 * with casty_msg_as and returns casty_same(), spawning an actor, a
 * fire-and-forget send with CASTY_TELL, and casty_ask to wait for a reply.
 *
 * Output:
 *     Hello, Alice!
 *     Hello, Bob!
 */
#include <casty.h>
#include <stdio.h>
#include <stdlib.h>

/* reply_to is optional: the greeter answers with Greeted when it is set. */
CASTY_MESSAGE(Greet, char name[32]; casty_ref_t reply_to;);
CASTY_SIGNAL(Greeted); /* a message with no fields */

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, casty_strerror(rc));
        exit(1);
    }
}

/* The greeter has no state (state is NULL). */
static casty_behavior_t *greeter(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)state;
    const Greet *g = casty_msg_as(msg, Greet);
    if (!g)
        return casty_unhandled();
    printf("Hello, %s!\n", g->name);
    if (!casty_ref_is_none(g->reply_to))
        casty_tell(g->reply_to, &Greeted_type, NULL);
    return casty_same();
}

/* casty_ask calls this to send the request with its temporary reply_to. */
static int greet_bob(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, Greet, .name = "Bob", .reply_to = reply_to);
}

int main(void)
{
    casty_system_t *sys;
    check(casty_system_create(NULL, &sys), "casty_system_create");

    casty_ref_t greeter_ref;
    check(casty_spawn(sys, casty_receive(greeter, NULL, 0), "greeter", NULL, &greeter_ref),
          "casty_spawn");

    /* Fire and forget. */
    check(CASTY_TELL(greeter_ref, Greet, .name = "Alice"), "casty_tell");

    /* One sender's messages arrive in order, so once Bob has been greeted,
     * Alice has been too. */
    casty_msg_t *reply;
    check(casty_ask(sys, greeter_ref, greet_bob, NULL, 5000, &reply), "casty_ask");
    casty_msg_free(reply);

    check(casty_system_shutdown(sys), "casty_system_shutdown");
    return 0;
}
