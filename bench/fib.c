/* fib N — recursive actor creation and reply (Savina "Fibonacci").
 *
 * One actor per call: the actor computing fib(n) with n >= 2 spawns two
 * children for n-1 and n-2, waits for both Results, replies the sum to its
 * parent and stops; a leaf (n < 2) replies n and stops at once. The root's
 * result goes to the latch and main checks it against an iterative fib(N).
 *
 * msgs = the number of actors created, 2*fib(N+1) - 1 (one per call; each
 * also gets one Compute and sends one Result). */
#include "bench.h"

CASTY_MESSAGE(Compute, uint32_t n;);
CASTY_MESSAGE(Result, uint64_t value;);

typedef struct call {
    casty_ref_t parent; /* CASTY_REF_NONE for the root */
    uint64_t acc;
    int pending; /* results still expected */
    bench_latch_t *done;
} call_t;

static uint64_t fib_iter(uint64_t n, uint64_t *calls)
{
    uint64_t a = 0, b = 1; /* fib(i), fib(i+1) */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    *calls = 2 * b - 1; /* b = fib(n+1) */
    return a;
}

/* Replies `value` to the parent (or the latch, for the root) and stops. */
static casty_behavior_t *reply(call_t *s, uint64_t value)
{
    if (casty_ref_is_none(s->parent))
        bench_latch_arrive(s->done, value);
    else
        BENCH_TELL(s->parent, Result, .value = value);
    return casty_stopped();
}

static casty_behavior_t *call_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    call_t *s = state;
    const Result *res = casty_msg_as(msg, Result);
    if (res != NULL) {
        s->acc += res->value;
        return --s->pending == 0 ? reply(s, s->acc) : casty_same();
    }
    const Compute *c = casty_msg_as(msg, Compute);
    if (c == NULL)
        return casty_unhandled();
    if (c->n < 2)
        return reply(s, c->n);
    call_t child = {.parent = casty_ctx_self(ctx), .done = s->done};
    for (uint32_t k = 1; k <= 2; k++) {
        casty_ref_t ref = bench_ctx_spawn(ctx, call_recv, &child, sizeof child);
        BENCH_TELL(ref, Compute, .n = c->n - k);
    }
    s->pending = 2;
    return casty_same();
}

static uint64_t run(bench_run_t *r)
{
    uint64_t n = r->p[0], calls = 0;
    uint64_t expected = fib_iter(n, &calls);
    call_t st = {.parent = CASTY_REF_NONE, .done = &r->done};
    casty_ref_t root = bench_spawn(r->sys, call_recv, &st, sizeof st);

    bench_start(r, 1);
    BENCH_TELL(root, Compute, .n = (uint32_t)n);
    uint64_t got = bench_wait(r);
    if (got != expected)
        bench_die("fib(%" PRIu64 "): got %" PRIu64 ", expected %" PRIu64, n, got, expected);
    return calls;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "fib", "fib(N) with one actor per recursive call",
        {{"n", "the argument", 0, 40, false, 0}}, 1};
    return bench_main(&spec, run, argc, argv);
}
