/* big N W — many-to-many messaging (Savina "Big").
 *
 * W actors; each sends N Pings, one at a time, each to a random other actor
 * (xorshift64*, seeded per actor), and sends the next Ping when the Pong for
 * the previous one comes back. Every actor answers every Ping it gets, also
 * after it has finished its own N. An actor reports to the latch when its
 * N-th Pong arrives; complete when all W have reported.
 *
 * msgs = 2*N*W (N*W pings + N*W pongs; main's Start kick-offs are not
 * counted). */
#include "bench.h"

CASTY_SIGNAL(Start);
CASTY_MESSAGE(Ping, casty_ref_t reply_to;);
CASTY_SIGNAL(Pong);

typedef struct peer {
    const casty_ref_t *peers; /* all W refs; written before any Start */
    uint64_t w, index, left, rng;
    bench_latch_t *done;
} peer_t;

static void send_ping(casty_ctx_t *ctx, peer_t *s)
{
    uint64_t to = s->index;
    if (s->w > 1) {
        to = bench_rand(&s->rng) % (s->w - 1);
        to += to >= s->index;
    }
    BENCH_TELL(s->peers[to], Ping, .reply_to = casty_ctx_self(ctx));
}

static casty_behavior_t *peer_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    peer_t *s = state;
    const Ping *p = casty_msg_as(msg, Ping);
    if (p != NULL) {
        BENCH_TELL(p->reply_to, Pong, 0);
    } else if (casty_msg_is(msg, Pong)) {
        if (--s->left == 0)
            bench_latch_arrive(s->done, 0);
        else
            send_ping(ctx, s);
    } else if (casty_msg_is(msg, Start)) {
        send_ping(ctx, s);
    } else {
        return casty_unhandled();
    }
    return casty_same();
}

static uint64_t run(bench_run_t *r)
{
    uint64_t n = r->p[0], w = r->p[1];
    casty_ref_t *peers = malloc(w * sizeof *peers);
    if (peers == NULL)
        bench_die("out of memory");
    for (uint64_t i = 0; i < w; i++) {
        peer_t st = {.peers = peers, .w = w, .index = i, .left = n,
                     .rng = bench_mix(i + 1) | 1, .done = &r->done};
        peers[i] = bench_spawn(r->sys, peer_recv, &st, sizeof st);
    }

    bench_start(r, w);
    for (uint64_t i = 0; i < w; i++)
        BENCH_TELL(peers[i], Start, 0);
    bench_wait(r);
    /* Every actor has its N pongs, so no ping is in flight: safe to free. */
    free(peers);
    return 2 * n * w;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "big", "W actors each ping random peers N times (one ping outstanding each)",
        {{"n", "pings per actor", 1, UINT64_C(1) << 32, false, 0}, {"w", "actors", 1, 10000000, false, 0}}, 2};
    return bench_main(&spec, run, argc, argv);
}
