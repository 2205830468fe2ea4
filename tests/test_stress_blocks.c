/* Stress: mailbox blocks (runtime/mailbox.h, "Blocks"): small messages sent
 * by workers to a busy actor that has a backlog, or that the sending
 * worker streams to, go into slots of blocks that their sender appends to,
 * and the receiver closes a block before it moves past it or goes idle.
 * Checks, through real actors on two workers: nothing lost, per-sender
 * FIFO, no dead letters, and that blocks were used (some messages reached
 * the receiver in a slot), with the receiver lagging (a backlog, slots
 * appended while it reads), catching up (closing blocks and going idle
 * while senders append) and keeping up without a backlog (streamed); a
 * receiver that stops partway, whose pending slots each become one dead
 * letter; a shutdown while slots are still to be read; and where no block
 * is taken: a system of one worker, a fan-out of two messages to many
 * receivers; that a value with a drop function is dropped once per
 * message; and that messages through a stale ref, among a live one's,
 * are dead letters (a block is for one incarnation); and that a value of
 * every size a slot holds arrives with its bytes intact. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

#define SENDERS 4

CASTY_MESSAGE(blk_seq, uint64_t v;); /* sender << 32 | seq: 8 bytes, a slot's size */
CASTY_MESSAGE(blk_go, casty_ref_t to; uint32_t id; uint32_t n; uint32_t burst; bool owned;);

/* blk_seq's twin with a drop function (a value that owns something): run
 * exactly once per message, whether it came in a node or a slot. */
static atomic_ulong g_owned_drops;
static void owned_drop(void *value)
{
    (void)value;
    atomic_fetch_add(&g_owned_drops, 1);
}
static const casty_type_t blk_owned_type = {"blk_owned", sizeof(blk_seq), NULL, NULL, owned_drop,
                                            CASTY_TYPE_LOCAL};

typedef struct receiver {
    uint32_t last[SENDERS];
    uint64_t got;
    uint64_t slots; /* messages that came in a block's slot */
    uint32_t spin; /* work per message, to build a backlog */
    bool bad;
    latch_t *done;
} receiver_t;

/* Whether msg came in a block's slot rather than a node of its own. */
static bool in_slot(const casty_msg_t *msg)
{
    return ((const struct casty_msg *)msg)->owner == POOL_SLOT_OWNER;
}

static casty_behavior_t *receiver_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    receiver_t *r = state;
    const blk_seq *s = casty_msg_as(msg, blk_seq);
    if (s == NULL)
        s = casty_msg_get(msg, &blk_owned_type);
    if (s == NULL)
        return casty_unhandled();
    uint32_t id = (uint32_t)(s->v >> 32), seq = (uint32_t)s->v;
    if (id >= SENDERS || seq != r->last[id] + 1)
        r->bad = true;
    else
        r->last[id] = seq;
    if (in_slot(msg))
        r->slots++;
    for (volatile uint32_t i = 0; i < r->spin; i++)
        ;
    r->got++;
    latch_add(r->done, 1);
    return casty_same();
}

/* A sender sends `n` messages in bursts of `burst`, each burst one run (it
 * tells itself to go on), so that the receiver alternates between lagging
 * and catching up. */
typedef struct sender {
    uint32_t sent;
} sender_t;

static casty_behavior_t *sender_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    sender_t *s = state;
    const blk_go *g = casty_msg_as(msg, blk_go);
    if (g == NULL)
        return casty_unhandled();
    for (uint32_t i = 0; i < g->burst && s->sent < g->n; i++) {
        s->sent++;
        blk_seq m = {((uint64_t)g->id << 32) | s->sent};
        cr_assert_eq(casty_tell(g->to, g->owned ? &blk_owned_type : &blk_seq_type, &m), 0);
    }
    if (s->sent < g->n)
        cr_assert_eq(casty_tell(casty_ctx_self(ctx), &blk_go_type, g), 0);
    return casty_same();
}

/* A system of two workers whose actors run `throughput` messages a run. */
static casty_system_t *blocks_system(uint32_t throughput)
{
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.workers = 2;
    cfg.throughput = throughput;
    casty_system_t *sys = NULL;
    cr_assert_eq(casty_system_create(&cfg, &sys), 0);
    return sys;
}

/* Spawns SENDERS senders, then has each send `per_sender` messages to `to`
 * in runs of `burst`. */
static void start_senders_of(casty_system_t *sys, casty_ref_t to, uint32_t per_sender,
                             uint32_t burst, bool owned)
{
    casty_ref_t senders[SENDERS];
    sender_t ss = {0};
    for (uint32_t i = 0; i < SENDERS; i++)
        cr_assert_eq(casty_spawn(sys, casty_receive(sender_recv, &ss, sizeof ss), NULL, NULL,
                                 &senders[i]),
                     0);
    for (uint32_t i = 0; i < SENDERS; i++) {
        blk_go g = {to, i, per_sender, burst, owned};
        cr_assert_eq(casty_tell(senders[i], &blk_go_type, &g), 0);
    }
}

static void start_senders(casty_system_t *sys, casty_ref_t to, uint32_t per_sender, uint32_t burst)
{
    start_senders_of(sys, to, per_sender, burst, false);
}

/* The receiver keeps its record outside the actor (a behavior's state is
 * a copy), read by the test once the shutdown has joined the workers. */
static receiver_t *g_record;

static casty_behavior_t *recording_receiver(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    return receiver_recv(ctx, msg, g_record);
}

/* Spawns the receiver that records into rs. */
static casty_ref_t spawn_recorded(casty_system_t *sys, receiver_t *rs)
{
    g_record = rs;
    casty_ref_t recv;
    cr_assert_eq(casty_spawn(sys, casty_receive(recording_receiver, NULL, 0), NULL, NULL, &recv),
                 0);
    return recv;
}

static void run_recorded(uint32_t throughput, uint32_t spin, uint32_t burst, uint32_t per_sender)
{
    casty_system_t *sys = blocks_system(throughput);
    latch_t done = LATCH_INIT;
    receiver_t rs = {.spin = spin, .done = &done};
    casty_ref_t recv = spawn_recorded(sys, &rs);
    start_senders(sys, recv, per_sender, burst);
    uint64_t total = (uint64_t)SENDERS * per_sender;
    cr_assert_eq(latch_wait(&done, total, 60000), total, "got %lu of %lu",
                 (unsigned long)latch_get(&done), (unsigned long)total);
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(st.dead_letters, 0);
    cr_assert_not(rs.bad, "a sender's messages arrived out of order (or from no sender)");
    cr_assert_eq(rs.got, total);
    for (uint32_t i = 0; i < SENDERS; i++)
        cr_assert_eq(rs.last[i], per_sender, "sender %u: last %u of %u", i, rs.last[i],
                     per_sender);
    cr_assert(rs.slots > 0, "no message came in a block");
}

/* A slow receiver: a backlog, so slots are appended while it reads. */
Test(stress_blocks, lagging_receiver_no_loss_fifo, .timeout = 120)
{
    run_recorded(8, 200, 256, (uint32_t)(200000 / stress_scale()));
}

/* A fast receiver with a budget of 2: it keeps catching up, closing blocks
 * and going idle while the senders append. */
Test(stress_blocks, catching_up_receiver_no_loss_fifo, .timeout = 120)
{
    run_recorded(2, 0, 16, (uint32_t)(200000 / stress_scale()));
}

/* A receiver that stops itself partway, once it has handled stop_after
 * messages and one came in a slot (so that it stops with blocks in its
 * mailbox, however the threads were scheduled: when the senders ran far
 * ahead of it, its first quarter could all be nodes, each sent to an idle
 * mailbox): every message still in its blocks (and
 * nodes), or sent after, becomes exactly one dead letter. */
typedef struct stopping {
    uint64_t handled, stop_after;
    uint64_t *slots; /* the test's: messages that came in a block's slot */
    uint64_t *after_stop; /* the test's: messages handed to it after it stopped */
    bool stopped;
    latch_t *done;
} stopping_t;

static casty_behavior_t *stopping_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    stopping_t *r = state;
    if (casty_msg_as(msg, blk_seq) == NULL)
        return casty_unhandled();
    if (r->stopped) {
        (*r->after_stop)++;
        return casty_stopped();
    }
    if (in_slot(msg))
        (*r->slots)++;
    for (volatile uint32_t i = 0; i < 200; i++)
        ;
    r->handled++;
    latch_add(r->done, 1);
    r->stopped = r->handled >= r->stop_after && *r->slots > 0;
    return r->stopped ? casty_stopped() : casty_same();
}

Test(stress_blocks, stopped_receiver_slots_become_dead_letters, .timeout = 120)
{
    casty_system_t *sys = blocks_system(8);
    uint32_t per_sender = (uint32_t)(100000 / stress_scale());
    uint64_t total = (uint64_t)SENDERS * per_sender;
    latch_t done = LATCH_INIT;
    uint64_t slots = 0, after_stop = 0; /* read once the shutdown has joined the workers */
    /* (Not a multiple of the budget: the stop comes mid-run, with more
     * slots of the same block to read.) */
    stopping_t rs = {.stop_after = total / 4 + 3, .slots = &slots, .after_stop = &after_stop,
                     .done = &done};
    casty_ref_t recv;
    cr_assert_eq(casty_spawn(sys, casty_receive(stopping_recv, &rs, sizeof rs), NULL, NULL, &recv),
                 0);
    start_senders(sys, recv, per_sender, 256);
    /* Every message is handled or a dead letter, within a deadline. */
    uint64_t deadline = now_ns() + 60ull * 1000000000ull;
    casty_system_stats_t st;
    for (;;) {
        casty_system_stats(sys, &st);
        if (latch_get(&done) + st.dead_letters >= total || now_ns() > deadline)
            break;
        sched_yield();
    }
    cr_assert_eq(casty_system_shutdown(sys), 0);
    uint64_t handled = latch_get(&done);
    cr_assert(slots > 0, "no message came in a block (handled %lu of %lu)",
              (unsigned long)handled, (unsigned long)total);
    cr_assert_eq(after_stop, 0, "%lu messages handed to the receiver after it stopped",
                 (unsigned long)after_stop);
    cr_assert(handled >= total / 4 && handled < total, "handled %lu of %lu", (unsigned long)handled,
              (unsigned long)total);
    cr_assert_eq(st.dead_letters, total - handled, "dead letters %lu, handled %lu of %lu",
                 (unsigned long)st.dead_letters, (unsigned long)handled, (unsigned long)total);
}

/* A system shut down while its receiver still has slots to read: the
 * teardown walks each mailbox from its head, which may be a block's cursor
 * (mailbox.h), and gives back every node and block (ASan / LSan check the
 * memory). */
static latch_t g_slots_seen = LATCH_INIT, g_handled = LATCH_INIT;

static casty_behavior_t *slow_slot_counter(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    if (casty_msg_as(msg, blk_seq) == NULL)
        return casty_unhandled();
    if (in_slot(msg))
        latch_add(&g_slots_seen, 1);
    for (volatile uint32_t i = 0; i < 2000; i++)
        ;
    latch_add(&g_handled, 1);
    return casty_same();
}

Test(stress_blocks, shutdown_with_slots_still_to_read, .timeout = 120)
{
    casty_system_t *sys = blocks_system(4);
    uint32_t per_sender = (uint32_t)(50000 / stress_scale());
    uint64_t total = (uint64_t)SENDERS * per_sender;
    casty_ref_t recv;
    cr_assert_eq(casty_spawn(sys, casty_receive(slow_slot_counter, NULL, 0), NULL, NULL, &recv), 0);
    start_senders(sys, recv, per_sender, 256);
    cr_assert_geq(latch_wait(&g_slots_seen, 1, 60000), 1, "no message came in a block");
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_lt(latch_get(&g_handled), total, "the receiver had drained its mailbox (%lu)",
                 (unsigned long)latch_get(&g_handled));
}

/* One sender feeding many receivers round-robin (fjthrput's shape): one
 * open block per receiver at a time, each receiver's messages in order.
 * (The sender's runs are kept short: a run's woken actors reach another
 * worker only once WAKE_BATCH have gathered or the run ends, so with one
 * run sending everything, receivers left over from a batch never ran
 * before the sends were over.) */
#define FAN 96

typedef struct fan_receiver {
    uint32_t index;
    uint32_t *last;  /* the test's: last seq seen, per receiver */
    uint64_t *slots; /* the test's: messages that came in a slot, per receiver */
    bool *bad;       /* the test's: per receiver */
    latch_t *done;
} fan_receiver_t;

static casty_behavior_t *fan_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    fan_receiver_t *r = state;
    const blk_seq *s = casty_msg_as(msg, blk_seq);
    if (s == NULL)
        return casty_unhandled();
    if ((uint32_t)s->v != r->last[r->index] + 1)
        r->bad[r->index] = true;
    r->last[r->index] = (uint32_t)s->v;
    if (in_slot(msg))
        r->slots[r->index]++;
    for (volatile uint32_t i = 0; i < 100; i++)
        ; /* slower than the sender: a backlog per receiver */
    latch_add(r->done, 1);
    return casty_same();
}

/* A fan-out's receivers and what each saw (read by the test once the
 * shutdown has joined the workers). */
typedef struct fan {
    uint32_t n;
    casty_ref_t *to;
    uint32_t *last;
    uint64_t *slots;
    bool *bad;
    latch_t done;
} fan_t;

/* Spawns n receivers into f (whose latch the caller initialised). */
static void fan_spawn(casty_system_t *sys, fan_t *f, uint32_t n)
{
    f->n = n;
    f->to = calloc(n, sizeof *f->to);
    f->last = calloc(n, sizeof *f->last);
    f->slots = calloc(n, sizeof *f->slots);
    f->bad = calloc(n, sizeof *f->bad);
    cr_assert(f->to && f->last && f->slots && f->bad);
    for (uint32_t i = 0; i < n; i++) {
        fan_receiver_t r = {i, f->last, f->slots, f->bad, &f->done};
        cr_assert_eq(casty_spawn(sys, casty_receive(fan_recv, &r, sizeof r), NULL, NULL, &f->to[i]),
                     0);
    }
}

/* After the shutdown: every receiver got messages 1..rounds, in order.
 * Returns how many came in a slot; frees the records. */
static uint64_t fan_check(fan_t *f, uint32_t rounds)
{
    uint64_t in_slots = 0;
    for (uint32_t i = 0; i < f->n; i++) {
        cr_assert_not(f->bad[i], "receiver %u: out of order", i);
        cr_assert_eq(f->last[i], rounds, "receiver %u: last %u of %u", i, f->last[i], rounds);
        in_slots += f->slots[i];
    }
    free(f->to);
    free(f->last);
    free(f->slots);
    free(f->bad);
    return in_slots;
}

typedef struct fan_sender {
    const casty_ref_t *to;
    uint32_t n, sent; /* rounds to send, rounds sent */
} fan_sender_t;

CASTY_SIGNAL(blk_fan_go);

static casty_behavior_t *fan_send(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    fan_sender_t *s = state;
    if (!casty_msg_is(msg, blk_fan_go))
        return casty_unhandled();
    /* 64 rounds a run, then it tells itself to go on: between its runs the
     * receivers run too, on either worker, so each builds a backlog
     * however the threads are placed. */
    for (uint32_t r = 0; r < 64 && s->sent < s->n; r++) {
        s->sent++;
        for (uint32_t i = 0; i < FAN; i++) {
            blk_seq m = {s->sent};
            cr_assert_eq(casty_tell(s->to[i], &blk_seq_type, &m), 0);
        }
    }
    if (s->sent < s->n)
        cr_assert_eq(CASTY_TELL(casty_ctx_self(ctx), blk_fan_go, 0), 0);
    return casty_same();
}

Test(stress_blocks, one_sender_many_receivers_in_order, .timeout = 120)
{
    casty_system_t *sys = blocks_system(4);
    uint32_t n = (uint32_t)(20000 / stress_scale());
    fan_t fan = {.done = LATCH_INIT};
    fan_spawn(sys, &fan, FAN);
    fan_sender_t fs = {fan.to, n, 0};
    casty_ref_t sender;
    cr_assert_eq(casty_spawn(sys, casty_receive(fan_send, &fs, sizeof fs), NULL, NULL, &sender), 0);
    cr_assert_eq(CASTY_TELL(sender, blk_fan_go, 0), 0);
    uint64_t total = (uint64_t)FAN * n;
    cr_assert_eq(latch_wait(&fan.done, total, 60000), total, "got %lu of %lu",
                 (unsigned long)latch_get(&fan.done), (unsigned long)total);
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_eq(st.dead_letters, 0);
    cr_assert(fan_check(&fan, n) > 0, "no message came in a block");
}

/* With one worker there is no consumer on another core to read ahead for,
 * so every message is a node (actor.c, casty_tell): the same senders and
 * lagging receiver as above, on one worker, get all their messages, in
 * order, and none in a slot. */
Test(stress_blocks, one_worker_takes_no_blocks, .timeout = 120)
{
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.workers = 1;
    cfg.throughput = 8;
    casty_system_t *sys = NULL;
    cr_assert_eq(casty_system_create(&cfg, &sys), 0);
    latch_t done = LATCH_INIT;
    receiver_t rs = {.spin = 200, .done = &done};
    casty_ref_t recv = spawn_recorded(sys, &rs);
    uint32_t per_sender = (uint32_t)(20000 / stress_scale());
    start_senders(sys, recv, per_sender, 256);
    uint64_t total = (uint64_t)SENDERS * per_sender;
    cr_assert_eq(latch_wait(&done, total, 60000), total, "got %lu of %lu",
                 (unsigned long)latch_get(&done), (unsigned long)total);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_not(rs.bad, "a sender's messages arrived out of order (or from no sender)");
    cr_assert_eq(rs.got, total);
    cr_assert_eq(rs.slots, 0, "%lu messages came in a block", (unsigned long)rs.slots);
}

/* A receiver that keeps up, with a budget it never spends (so it never
 * gets the backlog hint): a sender that finds its tail a message twice in
 * a row streams to it (its worker's table, actor.c), and its messages go
 * into blocks all the same. */
Test(stress_blocks, streamed_receiver_without_backlog_gets_slots, .timeout = 120)
{
    run_recorded(100000, 0, 256, (uint32_t)(200000 / stress_scale()));
}

/* One sender sending two messages to each of many more receivers than a
 * worker's table of streams holds (and none runs long enough to get the
 * backlog hint): every message is a node, not a block of 1 KiB per
 * receiver; all arrive, in order. */
#define WIDE_FAN (4 * STREAM_SLOTS)

typedef struct wide_sender {
    const casty_ref_t *to;
} wide_sender_t;

static casty_behavior_t *wide_send(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    wide_sender_t *s = state;
    if (!casty_msg_is(msg, blk_fan_go))
        return casty_unhandled();
    for (uint32_t round = 1; round <= 2; round++)
        for (uint32_t i = 0; i < WIDE_FAN; i++) {
            blk_seq m = {round};
            cr_assert_eq(casty_tell(s->to[i], &blk_seq_type, &m), 0);
        }
    return casty_same();
}

Test(stress_blocks, wide_fan_out_takes_no_blocks, .timeout = 120)
{
    casty_system_t *sys = blocks_system(64);
    fan_t fan = {.done = LATCH_INIT};
    fan_spawn(sys, &fan, WIDE_FAN);
    wide_sender_t ws = {fan.to};
    casty_ref_t sender;
    cr_assert_eq(casty_spawn(sys, casty_receive(wide_send, &ws, sizeof ws), NULL, NULL, &sender),
                 0);
    cr_assert_eq(CASTY_TELL(sender, blk_fan_go, 0), 0);
    uint64_t total = 2 * (uint64_t)WIDE_FAN;
    cr_assert_eq(latch_wait(&fan.done, total, 60000), total, "got %lu of %lu",
                 (unsigned long)latch_get(&fan.done), (unsigned long)total);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    uint64_t in_slots = fan_check(&fan, 2);
    cr_assert_eq(in_slots, 0, "%lu messages came in a block", (unsigned long)in_slots);
}

/* A value with a drop function, streamed to a receiver that lags: each
 * message's value is dropped exactly once after delivery, however it came
 * (a node, or a slot of a block, if such a value goes into one). */
Test(stress_blocks, owned_values_are_dropped_once_each, .timeout = 120)
{
    casty_system_t *sys = blocks_system(8);
    latch_t done = LATCH_INIT;
    receiver_t rs = {.spin = 200, .done = &done};
    atomic_store(&g_owned_drops, 0);
    casty_ref_t recv = spawn_recorded(sys, &rs);
    uint32_t per_sender = (uint32_t)(50000 / stress_scale());
    start_senders_of(sys, recv, per_sender, 256, true);
    uint64_t total = (uint64_t)SENDERS * per_sender;
    cr_assert_eq(latch_wait(&done, total, 60000), total, "got %lu of %lu",
                 (unsigned long)latch_get(&done), (unsigned long)total);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_not(rs.bad, "a sender's messages arrived out of order (or from no sender)");
    cr_assert_eq(atomic_load(&g_owned_drops), total, "%lu drops for %lu messages",
                 (unsigned long)atomic_load(&g_owned_drops), (unsigned long)total);
}

/* One sender sending in runs of four to a lagging receiver through its ref
 * and through a stale one (the same slot, another incarnation): every slot
 * of a block is for one incarnation, so each change takes a new block. The
 * live ref's messages all arrive, in order, some in slots; each stale one
 * is one dead letter. */
typedef struct stale_sender {
    casty_ref_t live, stale;
    uint32_t n, sent; /* messages to send through each ref, sent through each */
} stale_sender_t;

static casty_behavior_t *stale_send(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    stale_sender_t *s = state;
    if (!casty_msg_is(msg, blk_fan_go))
        return casty_unhandled();
    for (uint32_t r = 0; r < 64 && s->sent < s->n; r++) {
        for (uint32_t i = 0; i < 4 && s->sent < s->n; i++) {
            s->sent++;
            blk_seq m = {s->sent}; /* sender 0's sequence */
            cr_assert_eq(casty_tell(s->live, &blk_seq_type, &m), 0);
        }
        for (uint32_t i = 0; i < 4; i++) {
            blk_seq m = {0};
            cr_assert_eq(casty_tell(s->stale, &blk_seq_type, &m), 0);
        }
    }
    if (s->sent < s->n)
        cr_assert_eq(CASTY_TELL(casty_ctx_self(ctx), blk_fan_go, 0), 0);
    return casty_same();
}

Test(stress_blocks, stale_refs_interleaved_become_dead_letters, .timeout = 120)
{
    casty_system_t *sys = blocks_system(8);
    latch_t done = LATCH_INIT;
    receiver_t rs = {.spin = 200, .done = &done};
    casty_ref_t recv = spawn_recorded(sys, &rs);
    uint32_t n = (uint32_t)(40000 / stress_scale()) & ~3u;
    stale_sender_t ss = {recv, recv, n, 0};
    ss.stale.actor += (uint64_t)1 << 32;
    casty_ref_t sender;
    cr_assert_eq(casty_spawn(sys, casty_receive(stale_send, &ss, sizeof ss), NULL, NULL, &sender),
                 0);
    cr_assert_eq(CASTY_TELL(sender, blk_fan_go, 0), 0);
    cr_assert_eq(latch_wait(&done, n, 60000), n, "got %lu of %u", (unsigned long)latch_get(&done),
                 n);
    /* The last stale ones may still be on their way: within a deadline. */
    uint64_t deadline = now_ns() + 60ull * 1000000000ull;
    casty_system_stats_t st;
    for (;;) {
        casty_system_stats(sys, &st);
        if (st.dead_letters >= n || now_ns() > deadline)
            break;
        sched_yield();
    }
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_not(rs.bad, "the live ref's messages arrived out of order");
    cr_assert_eq(rs.got, n);
    cr_assert_eq(rs.last[0], n);
    cr_assert_eq(st.dead_letters, n, "%lu dead letters for %u stale sends",
                 (unsigned long)st.dead_letters, n);
    cr_assert(rs.slots > 0, "no message came in a block");
}

/* Values of every size a slot holds (1 to MSG_TINY_MAX bytes, one type
 * each), sent in runs to a lagging receiver: each arrives with its bytes
 * intact, however it came (a slot puts the bytes of a value shorter than
 * eight together from two overlapping loads), and some of every size in a
 * slot. Message k of size s has bytes tiny_byte(s, k, 0..s-1). */
static casty_type_t g_tiny_types[MSG_TINY_MAX + 1];
static const char *const g_tiny_names[MSG_TINY_MAX + 1] = {
    NULL, "tiny1", "tiny2", "tiny3", "tiny4", "tiny5", "tiny6", "tiny7", "tiny8"};

static unsigned char tiny_byte(uint32_t size, uint32_t k, uint32_t j)
{
    return (unsigned char)(k * 7u + j * 37u + size * 101u);
}

typedef struct tiny_record {
    uint32_t got[MSG_TINY_MAX + 1];   /* messages of each size, so far */
    uint64_t slots[MSG_TINY_MAX + 1]; /* of which came in a slot */
    bool bad;
    latch_t *done;
} tiny_record_t;

static tiny_record_t *g_tiny;

static casty_behavior_t *tiny_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    tiny_record_t *r = g_tiny;
    for (uint32_t s = 1; s <= MSG_TINY_MAX; s++) {
        const unsigned char *v = casty_msg_get(msg, &g_tiny_types[s]);
        if (v == NULL)
            continue;
        uint32_t k = r->got[s]++;
        for (uint32_t j = 0; j < s; j++)
            if (v[j] != tiny_byte(s, k, j))
                r->bad = true;
        if (in_slot(msg))
            r->slots[s]++;
        for (volatile uint32_t i = 0; i < 200; i++)
            ; /* slower than the sender: a backlog */
        latch_add(r->done, 1);
        return casty_same();
    }
    return casty_unhandled();
}

typedef struct tiny_sender {
    casty_ref_t to;
    uint32_t n, k; /* messages of each size to send, sent */
} tiny_sender_t;

static casty_behavior_t *tiny_send(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    tiny_sender_t *s = state;
    if (!casty_msg_is(msg, blk_fan_go))
        return casty_unhandled();
    for (uint32_t r = 0; r < 64 && s->k < s->n; r++, s->k++)
        for (uint32_t size = 1; size <= MSG_TINY_MAX; size++) {
            unsigned char v[MSG_TINY_MAX];
            for (uint32_t j = 0; j < size; j++)
                v[j] = tiny_byte(size, s->k, j);
            cr_assert_eq(casty_tell(s->to, &g_tiny_types[size], v), 0);
        }
    if (s->k < s->n)
        cr_assert_eq(CASTY_TELL(casty_ctx_self(ctx), blk_fan_go, 0), 0);
    return casty_same();
}

Test(stress_blocks, values_of_every_tiny_size_arrive_intact, .timeout = 120)
{
    for (uint32_t s = 1; s <= MSG_TINY_MAX; s++)
        g_tiny_types[s] = (casty_type_t){g_tiny_names[s], s, NULL, NULL, NULL, CASTY_TYPE_LOCAL};
    casty_system_t *sys = blocks_system(8);
    latch_t done = LATCH_INIT;
    tiny_record_t rec = {.done = &done};
    g_tiny = &rec;
    casty_ref_t recv;
    cr_assert_eq(casty_spawn(sys, casty_receive(tiny_recv, NULL, 0), NULL, NULL, &recv), 0);
    uint32_t n = (uint32_t)(20000 / stress_scale());
    tiny_sender_t ts = {recv, n, 0};
    casty_ref_t sender;
    cr_assert_eq(casty_spawn(sys, casty_receive(tiny_send, &ts, sizeof ts), NULL, NULL, &sender),
                 0);
    cr_assert_eq(CASTY_TELL(sender, blk_fan_go, 0), 0);
    uint64_t total = (uint64_t)MSG_TINY_MAX * n;
    cr_assert_eq(latch_wait(&done, total, 60000), total, "got %lu of %lu",
                 (unsigned long)latch_get(&done), (unsigned long)total);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert_not(rec.bad, "a value arrived with bytes it was not sent with");
    for (uint32_t s = 1; s <= MSG_TINY_MAX; s++) {
        cr_assert_eq(rec.got[s], n, "size %u: %u of %u", s, rec.got[s], n);
        cr_assert(rec.slots[s] > 0, "no value of %u bytes came in a slot", s);
    }
}

/* A sender that moves between the workers: its runs are short (a round to
 * each receiver, then it tells itself to go on), so the worker that is not
 * running it steals it now and then. A worker appends only to its own block
 * while that block is the receiver's tail (casty_tell's hint included):
 * appending to the block it started on its earlier visit, with the
 * sender's later messages from the other worker queued after it, would
 * deliver them out of order. The sender goes on until it has moved at
 * least MOVES_WANTED times (or sent MOVE_ROUNDS_MAX rounds). */
#define MOVES_WANTED 200u
#define MOVE_ROUNDS_MAX 200000u

typedef struct moving_sender {
    const casty_ref_t *to;
    uint32_t sent;  /* rounds sent */
    uint32_t moves; /* runs on another worker than the run before */
    int32_t last_worker;
    uint32_t *moves_out;    /* the test's, read after the shutdown */
    atomic_uint *rounds_out; /* the test's: set when the sender is done */
} moving_sender_t;

static casty_behavior_t *moving_send(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    moving_sender_t *s = state;
    if (!casty_msg_is(msg, blk_fan_go))
        return casty_unhandled();
    int32_t here = (int32_t)casty__tls_worker->index;
    if (s->last_worker >= 0 && here != s->last_worker)
        s->moves++;
    s->last_worker = here;
    s->sent++;
    for (uint32_t i = 0; i < FAN; i++) {
        blk_seq m = {s->sent};
        cr_assert_eq(casty_tell(s->to[i], &blk_seq_type, &m), 0);
    }
    if (s->moves < MOVES_WANTED && s->sent < MOVE_ROUNDS_MAX)
        cr_assert_eq(CASTY_TELL(casty_ctx_self(ctx), blk_fan_go, 0), 0);
    else
    {
        *s->moves_out = s->moves;
        atomic_store(s->rounds_out, s->sent);
    }
    return casty_same();
}

Test(stress_blocks, sender_moving_between_workers_keeps_its_order, .timeout = 120)
{
    casty_system_t *sys = blocks_system(4);
    fan_t fan = {.done = LATCH_INIT};
    fan_spawn(sys, &fan, FAN);
    uint32_t moves = 0;
    atomic_uint rounds = 0;
    moving_sender_t ms = {fan.to, 0, 0, -1, &moves, &rounds};
    casty_ref_t sender;
    cr_assert_eq(casty_spawn(sys, casty_receive(moving_send, &ms, sizeof ms), NULL, NULL, &sender),
                 0);
    cr_assert_eq(CASTY_TELL(sender, blk_fan_go, 0), 0);
    /* Every receiver gets every round the sender sent: wait for the
     * sender's count, then for the messages. */
    uint64_t deadline = now_ns() + 60ull * 1000000000ull;
    while (atomic_load(&rounds) == 0 && now_ns() < deadline)
        sched_yield();
    uint32_t n = atomic_load(&rounds);
    cr_assert(n > 0, "the sender did not finish");
    uint64_t total = (uint64_t)FAN * n;
    cr_assert_eq(latch_wait(&fan.done, total, 60000), total, "got %lu of %lu",
                 (unsigned long)latch_get(&fan.done), (unsigned long)total);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    cr_assert(fan_check(&fan, n) > 0, "no message came in a block");
    cr_assert_geq(moves, 1, "the sender never moved to the other worker (%u rounds)", n);
}
