/* pairs P N — P independent ping-pong pairs, N round trips each: the
 * scaling benchmark for many cores. No message crosses a pair, so with
 * enough pairs every worker has its own work; the only sharing is what the
 * scheduler adds (stealing, waking). msgs = 2 * P * N. */
#include "pingpong_actors.h"

static uint64_t run(bench_run_t *r)
{
    uint64_t pairs = r->p[0], n = r->p[1];
    casty_ref_t *pings = malloc(pairs * sizeof *pings);
    if (pings == NULL)
        bench_die("out of memory");
    for (uint64_t i = 0; i < pairs; i++) {
        casty_ref_t pong = bench_spawn(r->sys, ponger_recv, NULL, 0);
        pinger_t st = {.pong = pong, .left = n, .done = &r->done};
        pings[i] = bench_spawn(r->sys, pinger_recv, &st, sizeof st);
    }
    bench_start(r, pairs);
    for (uint64_t i = 0; i < pairs; i++)
        BENCH_TELL(pings[i], Start, 0);
    bench_wait(r);
    free(pings);
    return 2 * pairs * n;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "pairs", "P independent ping-pong pairs of N round trips each",
        {{"p", "pairs", 1, 1000000, false, 0}, {"n", "round trips per pair", 1, UINT64_C(1) << 40, false, 0}}, 2};
    return bench_main(&spec, run, argc, argv);
}
