/* threadring N R — a token passed R hops around a ring of N actors (Savina
 * "Thread Ring"): context-switch cost with one message in flight.
 *
 * Actor i forwards Token{hops_left - 1} to actor i+1 (mod N); the actor that
 * receives Token{0} opens the latch. The ring is built back to front: actors
 * are spawned from N-1 down to 0, each knowing its successor, and the last
 * link (N-1 -> 0) is set with one SetNext message before the clock starts.
 *
 * msgs = R (the hops; main's kick-off Token{R} is not counted). */
#include "bench.h"

CASTY_MESSAGE(Token, uint64_t hops_left;);
CASTY_MESSAGE(SetNext, casty_ref_t next;);

typedef struct member {
    casty_ref_t next;
    bench_latch_t *done;
} member_t;

static casty_behavior_t *member_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    member_t *s = state;
    const Token *t = casty_msg_as(msg, Token);
    if (t != NULL) {
        if (t->hops_left == 0)
            bench_latch_arrive(s->done, 0);
        else
            BENCH_TELL(s->next, Token, .hops_left = t->hops_left - 1);
        return casty_same();
    }
    const SetNext *sn = casty_msg_as(msg, SetNext);
    if (sn == NULL)
        return casty_unhandled();
    s->next = sn->next;
    return casty_same();
}

static uint64_t run(bench_run_t *r)
{
    uint64_t n = r->p[0], hops = r->p[1];
    member_t st = {.next = CASTY_REF_NONE, .done = &r->done};
    casty_ref_t last = CASTY_REF_NONE, first = CASTY_REF_NONE;
    for (uint64_t i = n; i-- > 0;) {
        first = bench_spawn(r->sys, member_recv, &st, sizeof st);
        if (i == n - 1)
            last = first;
        st.next = first;
    }
    BENCH_TELL(last, SetNext, .next = first);

    bench_start(r, 1);
    BENCH_TELL(first, Token, .hops_left = hops);
    bench_wait(r);
    return hops;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "threadring", "a token passed R hops around a ring of N actors",
        {{"n", "actors in the ring", 1, 10000000, false, 0}, {"r", "hops", 1, UINT64_C(1) << 40, false, 0}}, 2};
    return bench_main(&spec, run, argc, argv);
}
