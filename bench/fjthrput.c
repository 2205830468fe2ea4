/* fjthrput N A — fork-join throughput (Savina "Fork Join (throughput)").
 *
 * The main thread sends N Work messages to each of A actors, round-robin (so
 * every actor has work from the start). Each message costs a little CPU
 * (WORK_ROUNDS rounds of an integer mix); after its N-th message an actor
 * reports done to the latch with its checksum (which keeps the work from
 * being optimised away). Complete when all A actors have reported.
 *
 * msgs = N*A (the Work messages; the done reports are latch arrivals, not
 * messages). */
#include "bench.h"

enum { WORK_ROUNDS = 40 };

CASTY_MESSAGE(Work, uint64_t seed;);

typedef struct worker {
    uint64_t left, acc;
    bench_latch_t *done;
} worker_t;

static casty_behavior_t *worker_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    worker_t *s = state;
    const Work *w = casty_msg_as(msg, Work);
    if (w == NULL)
        return casty_unhandled();
    uint64_t x = w->seed;
    for (int i = 0; i < WORK_ROUNDS; i++)
        x = bench_mix(x + (uint64_t)i);
    s->acc += x;
    if (--s->left == 0)
        bench_latch_arrive(s->done, s->acc | 1);
    return casty_same();
}

static uint64_t run(bench_run_t *r)
{
    uint64_t n = r->p[0], a = r->p[1];
    casty_ref_t *actors = malloc(a * sizeof *actors);
    if (actors == NULL)
        bench_die("out of memory");
    worker_t st = {.left = n, .done = &r->done};
    for (uint64_t i = 0; i < a; i++)
        actors[i] = bench_spawn(r->sys, worker_recv, &st, sizeof st);

    bench_start(r, a);
    for (uint64_t k = 0; k < n; k++)
        for (uint64_t i = 0; i < a; i++)
            BENCH_TELL(actors[i], Work, .seed = k);
    bench_wait(r);
    free(actors);
    return n * a;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "fjthrput", "N small-computation messages to each of A actors",
        {{"n", "messages per actor", 1, UINT64_C(1) << 32}, {"a", "actors", 1, 10000000}}, 2};
    return bench_main(&spec, run, argc, argv);
}
