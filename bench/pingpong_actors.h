/* The ping and pong actors shared by bench/pingpong.c (one pair) and
 * bench/pairs.c (many independent pairs). Private to bench/. */
#ifndef CASTY_BENCH_PINGPONG_ACTORS_H
#define CASTY_BENCH_PINGPONG_ACTORS_H

#include "bench.h"

CASTY_SIGNAL(Start);
CASTY_MESSAGE(Ping, casty_ref_t reply_to;);
CASTY_SIGNAL(Pong);

typedef struct pinger {
    casty_ref_t pong;
    uint64_t left; /* pongs still expected */
    bench_latch_t *done;
} pinger_t;

static casty_behavior_t *ponger_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    const Ping *p = casty_msg_as(msg, Ping);
    if (p == NULL)
        return casty_unhandled();
    BENCH_TELL(p->reply_to, Pong, 0);
    return casty_same();
}

/* Sends a Ping on Start and after each Pong; opens the latch after the
 * last expected Pong. */
static casty_behavior_t *pinger_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    pinger_t *s = state;
    if (casty_msg_is(msg, Pong)) {
        if (--s->left == 0) {
            bench_latch_arrive(s->done, 0);
            return casty_same();
        }
    } else if (!casty_msg_is(msg, Start)) {
        return casty_unhandled();
    }
    BENCH_TELL(s->pong, Ping, .reply_to = casty_ctx_self(ctx));
    return casty_same();
}

#endif
