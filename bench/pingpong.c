/* pingpong N — latency of one request/reply pair (Savina "PingPong").
 *
 * Two actors: ping sends Ping{reply_to=self} to pong, pong answers Pong; after
 * N round trips ping opens the latch. The main thread's Start is the kick-off
 * and is not counted: msgs = 2N (N pings + N pongs). */
#include "pingpong_actors.h"

static uint64_t run(bench_run_t *r)
{
    uint64_t n = r->p[0];
    casty_ref_t pong = bench_spawn(r->sys, ponger_recv, NULL, 0);
    pinger_t st = {.pong = pong, .left = n, .done = &r->done};
    casty_ref_t ping = bench_spawn(r->sys, pinger_recv, &st, sizeof st);

    bench_start(r, 1);
    BENCH_TELL(ping, Start, 0);
    bench_wait(r);
    return 2 * n;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "pingpong", "two actors exchange N request/reply round trips",
        {{"n", "round trips", 1, UINT64_C(1) << 40, false, 0}}, 1};
    return bench_main(&spec, run, argc, argv);
}
