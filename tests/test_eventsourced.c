/* Event-sourced actors over the memory journal: the seed's bank account
 * scenarios (persist and sequence numbers, replay of pre-seeded events,
 * snapshot every n, snapshot plus later events), stashing order during
 * recovery and while persisting, callbacks only after durability, and the
 * journal failure path. */
#include <criterion/criterion.h>
#include <sched.h>
#include <string.h>

#include "casty.h"
#include "helpers.h"

CASTY_MESSAGE(es_deposit, int64_t amount; casty_ref_t reply_to;);
CASTY_MESSAGE(es_get, casty_ref_t reply_to;);
CASTY_MESSAGE(es_balance, int64_t balance; int64_t count; int64_t last[4];);
CASTY_MESSAGE(es_deposited, int64_t amount;);  /* the event */
CASTY_MESSAGE(es_account, int64_t balance; int64_t count; int64_t last[4];); /* the state */

static void on_event(void *state, const casty_msg_t *event)
{
    es_account *acc = state;
    const es_deposited *d = casty_msg_as(event, es_deposited);
    cr_assert_not_null(d);
    acc->balance += d->amount;
    acc->last[acc->count % 4] = d->amount;
    acc->count++;
}

static void reply_balance(casty_ctx_t *ctx, const void *state, void *arg)
{
    (void)ctx;
    const es_account *acc = state;
    casty_ref_t to = *(casty_ref_t *)arg;
    if (!casty_ref_is_none(to))
        CASTY_TELL(to, es_balance, .balance = acc->balance, .count = acc->count);
}

static latch_t callbacks = LATCH_INIT;

static void count_callback(casty_ctx_t *ctx, const void *state, void *arg)
{
    latch_add(&callbacks, 1);
    reply_balance(ctx, state, arg);
}

static casty_behavior_t *on_command(casty_ctx_t *ctx, const void *state, const casty_msg_t *cmd)
{
    (void)ctx;
    const es_account *acc = state;
    const es_deposit *d = casty_msg_as(cmd, es_deposit);
    if (d)
        return casty_persisted_then(casty_persisted(&es_deposited_type, &(es_deposited){d->amount}),
                                    count_callback, &d->reply_to, sizeof d->reply_to);
    const es_get *g = casty_msg_as(cmd, es_get);
    if (g) {
        es_balance b = {.balance = acc->balance, .count = acc->count};
        memcpy(b.last, acc->last, sizeof b.last);
        casty_tell(g->reply_to, &es_balance_type, &b);
        return casty_same();
    }
    return casty_unhandled();
}

static const casty_type_t *const event_types[] = {&es_deposited_type};

static casty_ref_t spawn_account(casty_system_t *sys, casty_journal_t *j, const char *pid,
                                 uint32_t snapshot_every)
{
    es_account zero = {0};
    casty_event_sourced_t cfg = {
        .persistence_id = pid,
        .journal = j,
        .state_type = &es_account_type,
        .initial_state = &zero,
        .event_types = event_types,
        .n_event_types = 1,
        .on_event = on_event,
        .on_command = on_command,
        .snapshot_every = snapshot_every,
    };
    casty_behavior_t *b = casty_event_sourced(&cfg);
    cr_assert_not_null(b);
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, b, NULL, NULL, &ref), 0);
    return ref;
}

static int ask_get(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, es_get, .reply_to = reply_to);
}

static int ask_deposit(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    return CASTY_TELL(target, es_deposit, .amount = *(int64_t *)arg, .reply_to = reply_to);
}

static es_balance get_balance(casty_system_t *sys, casty_ref_t ref)
{
    casty_msg_t *r;
    cr_assert_eq(casty_ask(sys, ref, ask_get, NULL, 5000, &r), 0);
    es_balance b = *casty_msg_as(r, es_balance);
    casty_msg_free(r);
    return b;
}

/* Direct journal access from the test thread: an actor-less reply sink. */
static latch_t journal_replies = LATCH_INIT;
static casty_journal_batch_t *last_batch;
static uint64_t last_written_seq;

static casty_behavior_t *journal_sink(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    casty_journal_loaded_t *l = casty_msg_as(msg, casty_journal_loaded_t);
    if (l) {
        cr_assert_eq(l->rc, 0);
        casty_journal_batch_free(last_batch);
        last_batch = l->batch;
        l->batch = NULL; /* keep it past the handler */
    }
    const casty_journal_written_t *w = casty_msg_as(msg, casty_journal_written_t);
    if (w) {
        cr_assert_eq(w->rc, 0);
        last_written_seq = w->seq;
    }
    latch_add(&journal_replies, 1);
    return casty_same();
}

struct fixture {
    casty_system_t *sys;
    casty_journal_t *journal;
    casty_ref_t sink;
};

static struct fixture setup_fixture(void)
{
    struct fixture f;
    cr_assert_eq(casty_system_create(NULL, &f.sys), 0);
    cr_assert_eq(casty_memory_journal_create(&f.journal), 0);
    cr_assert_eq(casty_spawn(f.sys, casty_receive(journal_sink, NULL, 0), NULL, NULL, &f.sink), 0);
    journal_replies.count = 0;
    callbacks.count = 0;
    last_batch = NULL;
    return f;
}

static void teardown_fixture(struct fixture *f)
{
    cr_assert_eq(casty_system_shutdown(f->sys), 0);
    casty_journal_close(f->journal);
    casty_journal_batch_free(last_batch);
    last_batch = NULL;
}

/* Replays pid through the sink and returns the batch (owned by the test). */
static casty_journal_batch_t *replay(struct fixture *f, const char *pid, uint64_t from)
{
    uint64_t n = latch_get(&journal_replies);
    cr_assert_eq(f->journal->ops->replay(f->journal, pid, from, f->sink, 1), 0);
    cr_assert_eq(latch_wait(&journal_replies, n + 1, 5000), n + 1);
    return last_batch;
}

Test(eventsourced, deposits_persist_with_seq_1_2_and_balance_15)
{
    struct fixture f = setup_fixture();
    casty_ref_t acc = spawn_account(f.sys, f.journal, "account-1", 0);
    int64_t ten = 10, five = 5;
    casty_msg_t *r;
    cr_assert_eq(casty_ask(f.sys, acc, ask_deposit, &ten, 5000, &r), 0);
    casty_msg_free(r);
    cr_assert_eq(casty_ask(f.sys, acc, ask_deposit, &five, 5000, &r), 0);
    cr_assert_eq(casty_msg_as(r, es_balance)->balance, 15);
    casty_msg_free(r);
    casty_journal_batch_t *b = replay(&f, "account-1", 1);
    cr_assert_eq(casty_journal_batch_count(b), 2);
    casty_journal_entry_t e;
    cr_assert(casty_journal_batch_get(b, 0, &e));
    cr_assert_eq(e.seq, 1);
    cr_assert_eq(e.type_id, casty_type_id(&es_deposited_type));
    cr_assert_eq(((const es_deposited *)e.data)->amount, 10);
    cr_assert(casty_journal_batch_get(b, 1, &e));
    cr_assert_eq(e.seq, 2);
    cr_assert_eq(((const es_deposited *)e.data)->amount, 5);
    teardown_fixture(&f);
}

static void seed_events(struct fixture *f, const char *pid, const int64_t *amounts, size_t n,
                        uint64_t first_seq)
{
    casty_journal_entry_t e[8];
    es_deposited v[8];
    for (size_t i = 0; i < n; i++) {
        v[i].amount = amounts[i];
        e[i] = (casty_journal_entry_t){first_seq + i, casty_type_id(&es_deposited_type),
                                       sizeof v[i], &v[i]};
    }
    uint64_t k = latch_get(&journal_replies);
    cr_assert_eq(f->journal->ops->persist(f->journal, pid, e, n, f->sink, 2), 0);
    cr_assert_eq(latch_wait(&journal_replies, k + 1, 5000), k + 1);
}

Test(eventsourced, preseeded_events_replay_on_start)
{
    struct fixture f = setup_fixture();
    const int64_t amounts[] = {100, 200, 300};
    seed_events(&f, "acc", amounts, 3, 1);
    casty_ref_t acc = spawn_account(f.sys, f.journal, "acc", 0);
    es_balance b = get_balance(f.sys, acc);
    cr_assert_eq(b.balance, 600);
    cr_assert_eq(b.count, 3);
    /* The next event continues the sequence. */
    int64_t one = 1;
    casty_msg_t *r;
    cr_assert_eq(casty_ask(f.sys, acc, ask_deposit, &one, 5000, &r), 0);
    casty_msg_free(r);
    casty_journal_entry_t e;
    cr_assert(casty_journal_batch_get(replay(&f, "acc", 4), 0, &e));
    cr_assert_eq(e.seq, 4);
    teardown_fixture(&f);
}

Test(eventsourced, snapshot_every_3_is_saved_and_used)
{
    struct fixture f = setup_fixture();
    casty_ref_t acc = spawn_account(f.sys, f.journal, "snap", 3);
    for (int64_t i = 1; i <= 4; i++) {
        casty_msg_t *r;
        cr_assert_eq(casty_ask(f.sys, acc, ask_deposit, &i, 5000, &r), 0);
        casty_msg_free(r);
    }
    uint64_t n = latch_get(&journal_replies);
    cr_assert_eq(f.journal->ops->load_snapshot(f.journal, "snap", f.sink, 3), 0);
    cr_assert_eq(latch_wait(&journal_replies, n + 1, 5000), n + 1);
    casty_journal_entry_t e;
    cr_assert(casty_journal_batch_get(last_batch, 0, &e));
    cr_assert_eq(e.seq, 3);
    cr_assert_eq(((const es_account *)e.data)->balance, 6);
    /* Events up to the snapshot may go; recovery still sees everything. */
    cr_assert_eq(f.journal->ops->delete_events(f.journal, "snap", 3), 0);
    cr_assert_eq(f.journal->ops->delete_events(f.journal, "snap", 4), CASTY_EINVAL);
    cr_assert_eq(casty_stop(acc), 0);
    casty_ref_t again = spawn_account(f.sys, f.journal, "snap", 3);
    es_balance b = get_balance(f.sys, again);
    cr_assert_eq(b.balance, 10);
    cr_assert_eq(b.count, 4);
    teardown_fixture(&f);
}

Test(eventsourced, snapshot_plus_later_events)
{
    struct fixture f = setup_fixture();
    const int64_t early[] = {1, 1, 1};
    seed_events(&f, "sp", early, 3, 1);
    es_account snap = {.balance = 1000, .count = 3}; /* deliberately not 3: proves the snapshot is used */
    casty_journal_entry_t s = {3, casty_type_id(&es_account_type), sizeof snap, &snap};
    uint64_t n = latch_get(&journal_replies);
    cr_assert_eq(f.journal->ops->save_snapshot(f.journal, "sp", &s, f.sink, 4), 0);
    cr_assert_eq(latch_wait(&journal_replies, n + 1, 5000), n + 1);
    const int64_t later[] = {20, 30};
    seed_events(&f, "sp", later, 2, 4);
    casty_ref_t acc = spawn_account(f.sys, f.journal, "sp", 0);
    es_balance b = get_balance(f.sys, acc);
    cr_assert_eq(b.balance, 1050);
    cr_assert_eq(b.count, 5);
    teardown_fixture(&f);
}

Test(eventsourced, commands_during_recovery_and_persist_keep_order)
{
    struct fixture f = setup_fixture();
    const int64_t seeded[] = {1000};
    seed_events(&f, "order", seeded, 1, 1);
    casty_ref_t acc = spawn_account(f.sys, f.journal, "order", 0);
    /* Sent at once: the first arrive during recovery, the rest while the
     * earlier ones persist. */
    for (int64_t i = 1; i <= 200; i++)
        cr_assert_eq(CASTY_TELL(acc, es_deposit, .amount = i, .reply_to = CASTY_REF_NONE), 0);
    es_balance b = get_balance(f.sys, acc);
    cr_assert_eq(b.count, 201, "nothing dropped");
    cr_assert_eq(b.balance, 1000 + 200 * 201 / 2);
    cr_assert_eq(b.last[(b.count - 1) % 4], 200, "last applied is the last sent");
    casty_journal_batch_t *batch = replay(&f, "order", 2);
    cr_assert_eq(casty_journal_batch_count(batch), 200);
    size_t cursor = 0;
    casty_journal_entry_t e;
    for (int64_t i = 1; casty_journal_batch_next(batch, &cursor, &e); i++)
        cr_assert_eq(((const es_deposited *)e.data)->amount, i, "order kept");
    teardown_fixture(&f);
}

/* ---- a journal that holds persist replies until released, or fails them ---- */

struct gated_journal {
    casty_journal_t base;
    casty_journal_t *inner;
    pthread_mutex_t mu;
    int fail_rc;            /* != 0: persist replies with this */
    int held;               /* replies waiting */
    casty_ref_t held_to[16];
    uint64_t held_tag[16], held_seq[16];
};

static int gj_persist(casty_journal_t *j, const char *pid, const casty_journal_entry_t *ev,
                      size_t n, casty_ref_t reply_to, uint64_t tag)
{
    struct gated_journal *g = (struct gated_journal *)j;
    pthread_mutex_lock(&g->mu);
    cr_assert_lt(g->held, 16);
    g->held_to[g->held] = reply_to;
    g->held_tag[g->held] = tag;
    g->held_seq[g->held++] = ev[n - 1].seq;
    pthread_mutex_unlock(&g->mu);
    (void)pid;
    return 0;
}

static void gj_release(struct gated_journal *g)
{
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < g->held; i++)
        CASTY_TELL(g->held_to[i], casty_journal_written_t, .tag = g->held_tag[i], .rc = g->fail_rc,
                   .seq = g->held_seq[i]);
    g->held = 0;
    pthread_mutex_unlock(&g->mu);
}

static int gj_replay(casty_journal_t *j, const char *pid, uint64_t from, casty_ref_t to, uint64_t tag)
{
    struct gated_journal *g = (struct gated_journal *)j;
    return g->inner->ops->replay(g->inner, pid, from, to, tag);
}

static int gj_load(casty_journal_t *j, const char *pid, casty_ref_t to, uint64_t tag)
{
    struct gated_journal *g = (struct gated_journal *)j;
    return g->inner->ops->load_snapshot(g->inner, pid, to, tag);
}

static const casty_journal_ops_t gated_ops = {
    .name = "gated", .persist = gj_persist, .replay = gj_replay, .load_snapshot = gj_load,
};

static int held_count(struct gated_journal *g)
{
    pthread_mutex_lock(&g->mu);
    int n = g->held;
    pthread_mutex_unlock(&g->mu);
    return n;
}

static latch_t acc_failed = LATCH_INIT;
static void on_failed(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t;
    (void)arg;
    if (((const casty_actor_failed_t *)ev)->code == -EIO)
        latch_add(&acc_failed, 1);
}

static latch_t replies = LATCH_INIT;
static casty_behavior_t *reply_counter(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    if (casty_msg_is(msg, es_balance))
        latch_add(&replies, 1);
    return casty_same();
}

static void run_gated(int fail_rc)
{
    struct fixture f = setup_fixture();
    struct gated_journal g = {.base = {&gated_ops}, .inner = f.journal, .fail_rc = fail_rc};
    pthread_mutex_init(&g.mu, NULL);
    replies.count = acc_failed.count = 0;
    cr_assert_eq(casty_subscribe(f.sys, &casty_actor_failed_t_type, on_failed, NULL), 0);
    casty_ref_t client;
    cr_assert_eq(casty_spawn(f.sys, casty_receive(reply_counter, NULL, 0), NULL, NULL, &client), 0);
    casty_ref_t acc = spawn_account(f.sys, &g.base, "gated", 0);
    CASTY_TELL(acc, es_deposit, .amount = 5, .reply_to = client);
    uint64_t deadline = now_ns() + 5000000000ull;
    while (held_count(&g) == 0 && now_ns() < deadline)
        sched_yield();
    cr_assert_eq(held_count(&g), 1, "persist reached the journal");
    cr_assert_eq(latch_get(&callbacks), 0, "no reply before the journal says durable");
    cr_assert_eq(latch_get(&replies), 0);
    gj_release(&g);
    if (fail_rc == 0) {
        cr_assert_eq(latch_wait(&replies, 1, 5000), 1);
        cr_assert_eq(latch_get(&callbacks), 1);
    } else {
        cr_assert_eq(latch_wait(&acc_failed, 1, 5000), 1, "the failure is published");
        cr_assert_eq(latch_get(&callbacks), 0, "no reply claims success");
        cr_assert_eq(latch_get(&replies), 0);
    }
    teardown_fixture(&f);
    pthread_mutex_destroy(&g.mu);
}

Test(eventsourced, callback_runs_only_after_durable)
{
    run_gated(0);
}

Test(eventsourced, journal_failure_stops_the_actor_without_success_reply)
{
    run_gated(-EIO);
}

Test(eventsourced, bad_config_and_misuse)
{
    cr_assert_null(casty_event_sourced(NULL));
    casty_event_sourced_t cfg = {0};
    cr_assert_null(casty_event_sourced(&cfg));
    cr_assert_null(casty_persisted(NULL, NULL));
    cr_assert_null(casty_persisted_then(NULL, count_callback, NULL, 0));
    cr_assert_null(casty_persisted_add(casty_same(), &es_deposited_type, &(es_deposited){1}));
}
