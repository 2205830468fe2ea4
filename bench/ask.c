/* ask N [T] — casty_ask round trips from threads outside the pool.
 *
 * What a server embedding casty does per request: a thread of its own (not
 * a worker) asks an actor and blocks for the reply. T such threads (default
 * 1) each ask an echo actor of their own N times in a row, one ask at a
 * time; each ask spawns its promise, sends the request, and waits. msgs =
 * N*T asks (each a request and a reply), so msgs_per_sec is asks a second.
 *
 * Before the RESULT line, a LATENCY line gives the percentiles of the
 * round trips of every ASK_TIMED_EVERY-th ask (each timed on its thread
 * with CLOCK_MONOTONIC, including the clock reads), in microseconds. Only
 * a sample: the peers' programs (bench/peers/) read no clock per ask, and
 * two reads around every ask were ~40 ns of a ~0.5 us round trip here. */
#include <pthread.h>

#include "bench.h"

CASTY_MESSAGE(Request, casty_ref_t reply_to; uint64_t value;);
CASTY_MESSAGE(Reply, uint64_t value;);

enum { ASK_TIMEOUT_MS = 10000, ASK_TIMED_EVERY = 8 };

static casty_behavior_t *echo_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    const Request *rq = casty_msg_as(msg, Request);
    if (rq == NULL)
        return casty_unhandled();
    BENCH_TELL(rq->reply_to, Reply, .value = rq->value + 1);
    return casty_same();
}

static int make_request(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    return CASTY_TELL(target, Request, .reply_to = reply_to, .value = *(const uint64_t *)arg);
}

typedef struct asker {
    pthread_t thread;
    casty_system_t *sys;
    casty_ref_t echo;
    uint64_t n;
    uint64_t *latency_ns; /* timed_asks(n) of them */
    bench_latch_t *done;
} asker_t;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* How many of n asks are timed: asks 0, ASK_TIMED_EVERY, 2 * ... */
static uint64_t timed_asks(uint64_t n)
{
    return (n + ASK_TIMED_EVERY - 1) / ASK_TIMED_EVERY;
}

static void *asker_main(void *arg)
{
    asker_t *a = arg;
    for (uint64_t i = 0; i < a->n; i++) {
        casty_msg_t *reply;
        bool timed = i % ASK_TIMED_EVERY == 0;
        uint64_t t0 = timed ? now_ns() : 0;
        bench_check(casty_ask(a->sys, a->echo, make_request, &i, ASK_TIMEOUT_MS, &reply), "ask");
        if (timed)
            a->latency_ns[i / ASK_TIMED_EVERY] = now_ns() - t0;
        const Reply *r = casty_msg_as(reply, Reply);
        if (r == NULL || r->value != i + 1)
            bench_die("ask: reply %" PRIu64 " is wrong", i);
        casty_msg_free(reply);
    }
    bench_latch_arrive(a->done, a->n);
    return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static uint64_t run(bench_run_t *r)
{
    uint64_t n = r->p[0], t = r->p[1];
    asker_t *askers = calloc(t, sizeof *askers);
    uint64_t per = timed_asks(n);
    uint64_t *latency = malloc(per * t * sizeof *latency);
    if (askers == NULL || latency == NULL)
        bench_die("out of memory");
    for (uint64_t i = 0; i < t; i++)
        askers[i] = (asker_t){.sys = r->sys,
                              .echo = bench_spawn(r->sys, echo_recv, NULL, 0),
                              .n = n,
                              .latency_ns = latency + i * per,
                              .done = &r->done};

    bench_start(r, t);
    for (uint64_t i = 0; i < t; i++)
        if (pthread_create(&askers[i].thread, NULL, asker_main, &askers[i]) != 0)
            bench_die("ask: cannot start a thread");
    uint64_t asked = bench_wait(r);
    for (uint64_t i = 0; i < t; i++)
        pthread_join(askers[i].thread, NULL);
    if (asked != n * t)
        bench_die("ask: %" PRIu64 " asks answered, expected %" PRIu64, asked, n * t);

    uint64_t total = per * t;
    qsort(latency, total, sizeof *latency, cmp_u64);
    printf("LATENCY bench=ask p50_us=%.2f p90_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f\n",
           (double)latency[total / 2] / 1e3, (double)latency[total * 9 / 10] / 1e3,
           (double)latency[total * 99 / 100] / 1e3, (double)latency[total * 999 / 1000] / 1e3,
           (double)latency[total - 1] / 1e3);
    free(latency);
    free(askers);
    return n * t;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "ask",
        "T threads outside the pool each casty_ask an echo actor N times",
        {{"n", "asks per thread", 1, UINT64_C(1) << 32, false, 0},
         {"t", "asking threads", 1, 1024, true, 1}},
        2};
    return bench_main(&spec, run, argc, argv);
}
