/* fjthrput N A [S] — fork-join throughput (Savina "Fork Join (throughput)").
 *
 * A sender sends N Work messages to each of A actors, round-robin (so
 * every actor has work from the start). Each message costs what Savina's
 * costs: its performComputation, the square of a sine (savina_work; the
 * angle varies with the message so that no compiler folds it). After its
 * N-th message an actor reports done to the latch with its checksum (which
 * keeps the work from being optimised away). Complete when all A actors
 * have reported. (Until 2026-11-26 each message cost 40 rounds of a 64-bit
 * mix instead, ~150 ns, six to eight times Savina's work, which hid the
 * runtime's own cost: docs/performance.md, "fjthrput with Savina's work".)
 *
 * The sender (S): 0 (the default) an actor, as in the peers, whose sender
 * is the main goroutine (Go) or process (Erlang), scheduled on the same W
 * threads as everything else; 1 the main thread, outside the pool: W
 * workers plus one more busy thread (more cores than W at 1 worker, more
 * threads than cores at W = cores). S=1 measures the path of a
 * thread that is not a worker feeding the system (runtime/pool.c's
 * external caches, the injection queue).
 *
 * msgs = N*A (the Work messages; the done reports are latch arrivals, not
 * messages). */
#include "bench.h"

#include <math.h>

CASTY_MESSAGE(Work, uint64_t seed;);
CASTY_SIGNAL(Go);

typedef struct worker {
    uint64_t left;
    double acc;
    bench_latch_t *done;
} worker_t;

typedef struct sender {
    const casty_ref_t *actors;
    uint64_t n, a;
} sender_t;

/* Savina's ForkJoinConfig.performComputation(37.2): sin(theta) squared,
 * with theta moved by the message's seed (in [37.2, 38.2)). The peers do
 * the same (bench/peers). */
static double savina_work(uint64_t seed)
{
    double s = sin(37.2 + (double)(seed & 1023) / 1024.0);
    return s * s;
}

static casty_behavior_t *worker_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    worker_t *s = state;
    const Work *w = casty_msg_as(msg, Work);
    if (w == NULL)
        return casty_unhandled();
    s->acc += savina_work(w->seed);
    if (--s->left == 0)
        bench_latch_arrive(s->done, (uint64_t)s->acc | 1);
    return casty_same();
}

static void send_all(const sender_t *s)
{
    for (uint64_t k = 0; k < s->n; k++)
        for (uint64_t i = 0; i < s->a; i++)
            BENCH_TELL(s->actors[i], Work, .seed = k);
}

/* The sender actor: sends everything when told Go. */
static casty_behavior_t *sender_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    if (!casty_msg_is(msg, Go))
        return casty_unhandled();
    send_all(state);
    return casty_same();
}

static uint64_t run(bench_run_t *r)
{
    uint64_t n = r->p[0], a = r->p[1];
    bool outside = r->p[2] != 0;
    casty_ref_t *actors = malloc(a * sizeof *actors);
    if (actors == NULL)
        bench_die("out of memory");
    worker_t st = {.left = n, .done = &r->done};
    for (uint64_t i = 0; i < a; i++)
        actors[i] = bench_spawn(r->sys, worker_recv, &st, sizeof st);
    sender_t ss = {.actors = actors, .n = n, .a = a};
    casty_ref_t sender = outside ? CASTY_REF_NONE : bench_spawn(r->sys, sender_recv, &ss, sizeof ss);

    bench_start(r, a);
    if (outside)
        send_all(&ss);
    else
        BENCH_TELL(sender, Go, 0);
    bench_wait(r);
    free(actors);
    return n * a;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "fjthrput",
        "N small-computation messages to each of A actors",
        {{"n", "messages per actor", 1, UINT64_C(1) << 32, false, 0},
         {"a", "actors", 1, 10000000, false, 0},
         {"s", "sender: 0 an actor, 1 the main thread", 0, 1, true, 0}},
        3};
    return bench_main(&spec, run, argc, argv);
}
