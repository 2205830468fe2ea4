/* count N — one-to-one send throughput (Savina "Counting Actor").
 *
 * A producer ACTOR sends N Inc messages to a counter actor, then a Query;
 * the counter replies Total{count} to a collector actor, which opens the
 * latch with the count; main checks it equals N.
 *
 * Flow control, so memory stays bounded: the producer sends in chunks of
 * CHUNK messages; the last Inc of each chunk carries the producer's ref and
 * the counter acks it. At most WINDOW chunks are unacknowledged at once
 * (a sliding window rather than stop-and-wait, so the counter never idles
 * while the producer waits for its ack).
 *
 * msgs = N (the Inc messages; the N/CHUNK acks, the query and its reply are
 * control traffic and not counted). */
#include "bench.h"

enum { CHUNK = 1000, WINDOW = 4 };

CASTY_SIGNAL(Start);
CASTY_MESSAGE(Inc, casty_ref_t ack_to;); /* ack_to is CASTY_REF_NONE but at chunk ends */
CASTY_SIGNAL(Ack);
CASTY_MESSAGE(Query, casty_ref_t reply_to;);
CASTY_MESSAGE(Total, uint64_t count;);

typedef struct producer {
    casty_ref_t counter, collector;
    uint64_t n, sent, acks_pending;
} producer_t;

static casty_behavior_t *counter_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    uint64_t *count = state;
    const Inc *inc = casty_msg_as(msg, Inc);
    if (inc != NULL) {
        ++*count;
        if (!casty_ref_is_none(inc->ack_to))
            BENCH_TELL(inc->ack_to, Ack, 0);
        return casty_same();
    }
    const Query *q = casty_msg_as(msg, Query);
    if (q == NULL)
        return casty_unhandled();
    BENCH_TELL(q->reply_to, Total, .count = *count);
    return casty_same();
}

/* Sends the next chunk (up to CHUNK messages). */
static void send_chunk(casty_ctx_t *ctx, producer_t *s)
{
    uint64_t end = s->sent + CHUNK < s->n ? s->sent + CHUNK : s->n;
    for (; s->sent + 1 < end; s->sent++)
        BENCH_TELL(s->counter, Inc, .ack_to = CASTY_REF_NONE);
    BENCH_TELL(s->counter, Inc, .ack_to = casty_ctx_self(ctx));
    s->sent++;
    s->acks_pending++;
}

static casty_behavior_t *producer_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    producer_t *s = state;
    if (casty_msg_is(msg, Start)) {
        for (int i = 0; i < WINDOW && s->sent < s->n; i++)
            send_chunk(ctx, s);
    } else if (casty_msg_is(msg, Ack)) {
        s->acks_pending--;
        if (s->sent < s->n)
            send_chunk(ctx, s);
        else if (s->acks_pending == 0)
            BENCH_TELL(s->counter, Query, .reply_to = s->collector);
    } else {
        return casty_unhandled();
    }
    return casty_same();
}

static casty_behavior_t *collector_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    const Total *t = casty_msg_as(msg, Total);
    if (t == NULL)
        return casty_unhandled();
    bench_latch_arrive(*(bench_latch_t **)state, t->count);
    return casty_same();
}

static uint64_t run(bench_run_t *r)
{
    uint64_t n = r->p[0], zero = 0;
    bench_latch_t *done = &r->done;
    casty_ref_t counter = bench_spawn(r->sys, counter_recv, &zero, sizeof zero);
    casty_ref_t collector = bench_spawn(r->sys, collector_recv, &done, sizeof done);
    producer_t st = {.counter = counter, .collector = collector, .n = n};
    casty_ref_t producer = bench_spawn(r->sys, producer_recv, &st, sizeof st);

    bench_start(r, 1);
    BENCH_TELL(producer, Start, 0);
    uint64_t counted = bench_wait(r);
    if (counted != n)
        bench_die("count: counter saw %" PRIu64 " messages, expected %" PRIu64, counted, n);
    return n;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "count", "a producer actor sends N messages to a counter actor, then queries it",
        {{"n", "messages", 1, UINT64_C(1) << 40, false, 0}}, 1};
    return bench_main(&spec, run, argc, argv);
}
