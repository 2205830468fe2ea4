/* request_reply — two actors talking through a reply_to ref.
 *
 * Shows: request/reply between actors. A handler must not block (casty_ask
 * on a worker thread returns CASTY_EDEADLK), so the monitor puts its own ref,
 * casty_ctx_self(ctx), in the request's reply_to and handles the answer as
 * its next message. main waits for the whole exchange with one casty_ask to
 * the monitor, which replies Done after it has printed the balance. The
 * monitor keeps its state in place: it mutates *state and returns
 * casty_same().
 *
 * Output:
 *     Balance: 100
 */
#include <casty.h>
#include <stdio.h>
#include <stdlib.h>

/* The account's protocol. */
CASTY_MESSAGE(Deposit, long amount;);
CASTY_MESSAGE(GetBalance, casty_ref_t reply_to;);
CASTY_MESSAGE(Balance, long balance;);
/* The monitor's protocol. */
CASTY_MESSAGE(Check, casty_ref_t reply_to;);
CASTY_SIGNAL(Done);

typedef struct monitor {
    casty_ref_t account;   /* whom to ask */
    casty_ref_t requester; /* who asked us to check */
} monitor_t;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, casty_strerror(rc));
        exit(1);
    }
}

static casty_behavior_t *account(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    long *balance = state;
    if (casty_msg_is(msg, Deposit)) {
        *balance += casty_msg_as(msg, Deposit)->amount;
        return casty_same();
    }
    if (casty_msg_is(msg, GetBalance)) {
        CASTY_TELL(casty_msg_as(msg, GetBalance)->reply_to, Balance, .balance = *balance);
        return casty_same();
    }
    return casty_unhandled();
}

static casty_behavior_t *monitor(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    monitor_t *m = state;
    if (casty_msg_is(msg, Check)) {
        m->requester = casty_msg_as(msg, Check)->reply_to;
        CASTY_TELL(m->account, GetBalance, .reply_to = casty_ctx_self(ctx));
        return casty_same();
    }
    if (casty_msg_is(msg, Balance)) {
        printf("Balance: %ld\n", casty_msg_as(msg, Balance)->balance);
        casty_tell(m->requester, &Done_type, NULL);
        return casty_same();
    }
    return casty_unhandled();
}

static int send_check(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, Check, .reply_to = reply_to);
}

int main(void)
{
    casty_system_t *sys;
    check(casty_system_create(NULL, &sys), "casty_system_create");

    casty_ref_t acc, mon;
    long balance = 0;
    check(casty_spawn(sys, casty_receive(account, &balance, sizeof balance), "account", NULL, &acc),
          "casty_spawn account");
    monitor_t m = {.account = acc, .requester = CASTY_REF_NONE};
    check(casty_spawn(sys, casty_receive(monitor, &m, sizeof m), "monitor", NULL, &mon),
          "casty_spawn monitor");

    check(CASTY_TELL(acc, Deposit, .amount = 100), "casty_tell");

    /* Blocks until the monitor replies Done: no sleeping, no polling. */
    casty_msg_t *done;
    check(casty_ask(sys, mon, send_check, NULL, 5000, &done), "casty_ask");
    casty_msg_free(done);

    check(casty_system_shutdown(sys), "casty_system_shutdown");
    return 0;
}
