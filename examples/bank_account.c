/* bank_account — functional state and ask.
 *
 * Shows: an actor whose state is a value. Each Deposit or Withdraw returns
 * casty_receive(account, &new_state, sizeof new_state): the runtime frees
 * the old behavior and its state, so nothing is mutated in place. main
 * talks to the actor with casty_ask; requests carry a reply_to ref and the
 * actor answers with a reply message.
 *
 * Output:
 *     Balance: 100
 *     Withdraw: insufficient funds (balance=100)
 */
#include <casty.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

CASTY_MESSAGE(Deposit, long amount;);
CASTY_MESSAGE(Withdraw, long amount; casty_ref_t reply_to;);
CASTY_MESSAGE(GetBalance, casty_ref_t reply_to;);
CASTY_MESSAGE(Balance, long balance;);
CASTY_MESSAGE(WithdrawResult, bool ok; long balance;);

typedef struct account {
    long balance;
} account_t;

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
    const account_t *acc = state;

    if (casty_msg_is(msg, Deposit)) {
        const Deposit *d = casty_msg_as(msg, Deposit);
        account_t next = {.balance = acc->balance + d->amount};
        return casty_receive(account, &next, sizeof next);
    }
    if (casty_msg_is(msg, Withdraw)) {
        const Withdraw *w = casty_msg_as(msg, Withdraw);
        bool ok = w->amount <= acc->balance;
        account_t next = {.balance = ok ? acc->balance - w->amount : acc->balance};
        CASTY_TELL(w->reply_to, WithdrawResult, .ok = ok, .balance = next.balance);
        return casty_receive(account, &next, sizeof next);
    }
    if (casty_msg_is(msg, GetBalance)) {
        CASTY_TELL(casty_msg_as(msg, GetBalance)->reply_to, Balance, .balance = acc->balance);
        return casty_same();
    }
    return casty_unhandled();
}

/* Request builders for casty_ask: `reply_to` accepts exactly one reply. */
static int get_balance(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, GetBalance, .reply_to = reply_to);
}

static int withdraw(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    return CASTY_TELL(target, Withdraw, .amount = *(const long *)arg, .reply_to = reply_to);
}

int main(void)
{
    casty_system_t *sys;
    check(casty_system_create(NULL, &sys), "casty_system_create");

    casty_ref_t acc;
    account_t initial = {.balance = 0};
    check(casty_spawn(sys, casty_receive(account, &initial, sizeof initial), "account", NULL, &acc),
          "casty_spawn");

    check(CASTY_TELL(acc, Deposit, .amount = 100), "casty_tell");

    casty_msg_t *reply;
    check(casty_ask(sys, acc, get_balance, NULL, 5000, &reply), "casty_ask GetBalance");
    const Balance *b = casty_msg_as(reply, Balance);
    if (b)
        printf("Balance: %ld\n", b->balance);
    casty_msg_free(reply);

    long amount = 500;
    check(casty_ask(sys, acc, withdraw, &amount, 5000, &reply), "casty_ask Withdraw");
    const WithdrawResult *r = casty_msg_as(reply, WithdrawResult);
    if (r && r->ok)
        printf("Withdraw: ok (balance=%ld)\n", r->balance);
    else if (r)
        printf("Withdraw: insufficient funds (balance=%ld)\n", r->balance);
    casty_msg_free(reply);

    check(casty_system_shutdown(sys), "casty_system_shutdown");
    return 0;
}
