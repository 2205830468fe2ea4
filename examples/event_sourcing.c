/* event_sourcing — a bank account whose state is its history.
 *
 * Shows: casty_event_sourced with a pure on_event and an on_command that
 * returns casty_persisted_then(...) (the reply runs only once the events
 * are durable), recovery when a new actor starts on the same journal, and
 * a journal shared by two systems (phase 1, then phase 2 "after a
 * restart").
 *
 *   event_sourcing               memory journal: phase 1 and phase 2 in one run
 *   event_sourcing --file DIR    file journal in DIR: run it twice; the second
 *                                run recovers what the first one persisted,
 *                                across a real process exit
 *
 * Output (memory journal):
 *     Balance: 1500, transactions: 2
 *     Recovered balance: 1500, transactions: 2
 */
#include <casty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CASTY_MESSAGE(Deposit, int64_t amount; casty_ref_t reply_to;);
CASTY_MESSAGE(GetBalance, casty_ref_t reply_to;);
CASTY_MESSAGE(Balance, int64_t balance; int64_t transactions;);
CASTY_MESSAGE(Deposited, int64_t amount;);                 /* the event */
CASTY_MESSAGE(Account, int64_t balance; int64_t transactions;); /* the state */

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, casty_strerror(rc));
        exit(1);
    }
}

/* Pure: the new state from the old one and an event. */
static void on_event(void *state, const casty_msg_t *event)
{
    Account *a = state;
    const Deposited *d = casty_msg_as(event, Deposited);
    if (d) {
        a->balance += d->amount;
        a->transactions++;
    }
}

static void reply(casty_ctx_t *ctx, const void *state, void *arg)
{
    (void)ctx;
    const Account *a = state;
    CASTY_TELL(*(casty_ref_t *)arg, Balance, .balance = a->balance, .transactions = a->transactions);
}

static casty_behavior_t *on_command(casty_ctx_t *ctx, const void *state, const casty_msg_t *cmd)
{
    (void)ctx;
    const Account *a = state;
    const Deposit *d = casty_msg_as(cmd, Deposit);
    if (d)
        return casty_persisted_then(casty_persisted(&Deposited_type, &(Deposited){d->amount}),
                                    reply, &d->reply_to, sizeof d->reply_to);
    const GetBalance *g = casty_msg_as(cmd, GetBalance);
    if (g) {
        CASTY_TELL(g->reply_to, Balance, .balance = a->balance, .transactions = a->transactions);
        return casty_same();
    }
    return casty_unhandled();
}

static casty_ref_t start_account(casty_system_t *sys, casty_journal_t *journal)
{
    static const casty_type_t *const events[] = {&Deposited_type};
    casty_event_sourced_t cfg = {
        .persistence_id = "account-1",
        .journal = journal,
        .state_type = &Account_type,
        .initial_state = &(Account){0, 0},
        .event_types = events,
        .n_event_types = 1,
        .on_event = on_event,
        .on_command = on_command,
        .snapshot_every = 100,
    };
    casty_ref_t ref;
    check(casty_spawn(sys, casty_event_sourced(&cfg), "account", NULL, &ref), "spawn");
    return ref;
}

static int deposit(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    return CASTY_TELL(target, Deposit, .amount = *(int64_t *)arg, .reply_to = reply_to);
}

static int get_balance(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, GetBalance, .reply_to = reply_to);
}

static Balance ask(casty_system_t *sys, casty_ref_t ref, casty_ask_fn fn, void *arg)
{
    casty_msg_t *r;
    check(casty_ask(sys, ref, fn, arg, 5000, &r), "ask");
    Balance b = *casty_msg_as(r, Balance);
    casty_msg_free(r);
    return b;
}

static casty_journal_t *open_journal(casty_system_t *sys, const char *dir)
{
    casty_journal_t *j;
    if (dir == NULL) {
        check(casty_memory_journal_create(&j), "memory journal");
    } else {
        char err[256] = "";
        int rc = casty_file_journal_open(sys, dir, NULL, &j, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "file journal %s: %s %s\n", dir, casty_strerror(rc), err);
            exit(1);
        }
    }
    return j;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    if (argc == 3 && strcmp(argv[1], "--file") == 0) {
        dir = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--file DIR]\n", argv[0]);
        return 2;
    }

    if (dir == NULL) {
        /* Phase 1: deposits. */
        casty_system_t *sys1;
        check(casty_system_create(NULL, &sys1), "system 1");
        casty_journal_t *journal = open_journal(sys1, NULL);
        casty_ref_t acc = start_account(sys1, journal);
        int64_t a = 500, b = 1000;
        ask(sys1, acc, deposit, &a);
        Balance bal = ask(sys1, acc, deposit, &b);
        printf("Balance: %lld, transactions: %lld\n", (long long)bal.balance,
               (long long)bal.transactions);
        check(casty_system_shutdown(sys1), "shutdown 1");

        /* Phase 2: a new system on the same journal recovers the account. */
        casty_system_t *sys2;
        check(casty_system_create(NULL, &sys2), "system 2");
        acc = start_account(sys2, journal);
        bal = ask(sys2, acc, get_balance, NULL);
        printf("Recovered balance: %lld, transactions: %lld\n", (long long)bal.balance,
               (long long)bal.transactions);
        check(casty_system_shutdown(sys2), "shutdown 2");
        casty_journal_close(journal);
        return 0;
    }

    /* File journal: deposit on the first run, recover on every later one. */
    casty_system_t *sys;
    check(casty_system_create(NULL, &sys), "system");
    casty_journal_t *journal = open_journal(sys, dir);
    casty_ref_t acc = start_account(sys, journal);
    Balance bal = ask(sys, acc, get_balance, NULL);
    if (bal.transactions == 0) {
        int64_t a = 500, b = 1000;
        ask(sys, acc, deposit, &a);
        bal = ask(sys, acc, deposit, &b);
        printf("Balance: %lld, transactions: %lld\n", (long long)bal.balance,
               (long long)bal.transactions);
    } else {
        printf("Recovered balance: %lld, transactions: %lld\n", (long long)bal.balance,
               (long long)bal.transactions);
    }
    check(casty_system_shutdown(sys), "shutdown");
    casty_journal_close(journal);
    return 0;
}
