/* mailbox P M — many-to-one send throughput into one contended mailbox.
 *
 * P producer actors each send M Item messages to one receiver, which opens
 * the latch once it has received all P*M of them.
 *
 * Flow control, so memory stays bounded: each producer sends in chunks of
 * CHUNK messages; the last Item of a chunk carries the producer's ref and the
 * receiver acks it; a producer keeps at most WINDOW chunks unacknowledged.
 *
 * msgs = P*M (the Items; acks and the Start kick-offs are not counted). */
#include "bench.h"

enum { CHUNK = 1000, WINDOW = 4 };

CASTY_SIGNAL(Start);
CASTY_MESSAGE(Item, casty_ref_t ack_to;); /* ack_to is CASTY_REF_NONE but at chunk ends */
CASTY_SIGNAL(Ack);

typedef struct receiver {
    uint64_t received, expected;
    bench_latch_t *done;
} receiver_t;

typedef struct producer {
    casty_ref_t receiver;
    uint64_t m, sent;
} producer_t;

static casty_behavior_t *receiver_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    receiver_t *s = state;
    const Item *it = casty_msg_as(msg, Item);
    if (it == NULL)
        return casty_unhandled();
    if (!casty_ref_is_none(it->ack_to))
        BENCH_TELL(it->ack_to, Ack, 0);
    if (++s->received == s->expected)
        bench_latch_arrive(s->done, s->received);
    return casty_same();
}

static void send_chunk(casty_ctx_t *ctx, producer_t *s)
{
    uint64_t end = s->sent + CHUNK < s->m ? s->sent + CHUNK : s->m;
    for (; s->sent + 1 < end; s->sent++)
        BENCH_TELL(s->receiver, Item, .ack_to = CASTY_REF_NONE);
    BENCH_TELL(s->receiver, Item, .ack_to = casty_ctx_self(ctx));
    s->sent++;
}

static casty_behavior_t *producer_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    producer_t *s = state;
    if (casty_msg_is(msg, Start)) {
        for (int i = 0; i < WINDOW && s->sent < s->m; i++)
            send_chunk(ctx, s);
    } else if (casty_msg_is(msg, Ack)) {
        if (s->sent < s->m)
            send_chunk(ctx, s);
    } else {
        return casty_unhandled();
    }
    return casty_same();
}

static uint64_t run(bench_run_t *r)
{
    uint64_t p = r->p[0], m = r->p[1];
    receiver_t rs = {.expected = p * m, .done = &r->done};
    casty_ref_t receiver = bench_spawn(r->sys, receiver_recv, &rs, sizeof rs);
    casty_ref_t *producers = malloc(p * sizeof *producers);
    if (producers == NULL)
        bench_die("out of memory");
    producer_t ps = {.receiver = receiver, .m = m};
    for (uint64_t i = 0; i < p; i++)
        producers[i] = bench_spawn(r->sys, producer_recv, &ps, sizeof ps);

    bench_start(r, 1);
    for (uint64_t i = 0; i < p; i++)
        BENCH_TELL(producers[i], Start, 0);
    uint64_t got = bench_wait(r);
    free(producers);
    if (got != p * m)
        bench_die("mailbox: receiver saw %" PRIu64 " messages, expected %" PRIu64, got, p * m);
    return p * m;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "mailbox", "P producer actors send M messages each to one receiver",
        {{"p", "producers", 1, 100000, false, 0}, {"m", "messages per producer", 1, UINT64_C(1) << 32, false, 0}},
        2};
    return bench_main(&spec, run, argc, argv);
}
