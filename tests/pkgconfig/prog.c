/* An out-of-tree casty program, built by tests/pkgconfig_test.sh against an
 * installed casty with `cc prog.c $(pkg-config --cflags --libs casty)`: it
 * proves the installed headers compile alone and libcasty.so links and runs.
 * Spawns an adder actor, asks it 2 + 3 and prints "casty 0.1.0: 2 + 3 = 5". */
#include <casty.h>
#include <stdio.h>

CASTY_MESSAGE(Add, int a; int b; casty_ref_t reply_to;);
CASTY_MESSAGE(Sum, int value;);

static casty_behavior_t *adder(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)state;
    const Add *add = casty_msg_as(msg, Add);
    if (!add)
        return casty_unhandled();
    CASTY_TELL(add->reply_to, Sum, .value = add->a + add->b);
    return casty_same();
}

static int ask_add(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, Add, .a = 2, .b = 3, .reply_to = reply_to);
}

int main(void)
{
    casty_system_t *sys;
    casty_ref_t ref;
    casty_msg_t *reply = NULL;
    int rc = casty_system_create(NULL, &sys);
    if (rc < 0) {
        fprintf(stderr, "casty_system_create: %s\n", casty_strerror(rc));
        return 1;
    }
    rc = casty_spawn(sys, casty_receive(adder, NULL, 0), "adder", NULL, &ref);
    if (rc == 0)
        rc = casty_ask(sys, ref, ask_add, NULL, 5000, &reply);
    if (rc == 0) {
        const Sum *sum = casty_msg_as(reply, Sum);
        if (sum)
            printf("casty %d.%d.%d: 2 + 3 = %d\n", CASTY_VERSION_MAJOR, CASTY_VERSION_MINOR,
                   CASTY_VERSION_PATCH, sum->value);
        casty_msg_free(reply);
    }
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", casty_err_name(rc), casty_strerror(rc));
    int src = casty_system_shutdown(sys);
    if (src < 0)
        fprintf(stderr, "casty_system_shutdown: %s\n", casty_strerror(src));
    return rc < 0 || src < 0;
}
