/* fjcreate N — actor creation throughput (Savina "Fork Join (actor
 * creation)").
 *
 * A spawner actor creates N actors and sends each one Work message, CHUNK
 * actors per handler call (it sends itself Next to do the following chunk, so
 * the new actors run in between). Each new actor, on its Work, reports to the
 * latch and stops (returns casty_stopped()). Complete when all N have
 * reported.
 *
 * msgs = N (one Work per actor; so actors/s = msgs_per_sec). The spawner's
 * Next messages to itself (N/CHUNK) are not counted. */
#include "bench.h"

enum { CHUNK = 1000 };

CASTY_SIGNAL(Next);
CASTY_SIGNAL(Work);

typedef struct spawner {
    uint64_t left;
    bench_latch_t *done;
} spawner_t;

static casty_behavior_t *child_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    if (!casty_msg_is(msg, Work))
        return casty_unhandled();
    bench_latch_arrive(*(bench_latch_t **)state, 0);
    return casty_stopped();
}

static casty_behavior_t *spawner_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    spawner_t *s = state;
    if (!casty_msg_is(msg, Next))
        return casty_unhandled();
    for (int i = 0; i < CHUNK && s->left > 0; i++, s->left--) {
        casty_ref_t child = bench_ctx_spawn(ctx, child_recv, &s->done, sizeof s->done);
        BENCH_TELL(child, Work, 0);
    }
    if (s->left > 0)
        BENCH_TELL(casty_ctx_self(ctx), Next, 0);
    return casty_same();
}

static uint64_t run(bench_run_t *r)
{
    uint64_t n = r->p[0];
    spawner_t st = {.left = n, .done = &r->done};
    casty_ref_t spawner = bench_spawn(r->sys, spawner_recv, &st, sizeof st);

    bench_start(r, n);
    BENCH_TELL(spawner, Next, 0);
    bench_wait(r);
    return n;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "fjcreate", "create N actors, send each one message, each stops on it",
        {{"n", "actors", 1, UINT64_C(1) << 32, false, 0}}, 1};
    return bench_main(&spec, run, argc, argv);
}
