/* remote [N] [ASKS] [--workers W] — remoting over loopback between two
 * processes.
 *
 * The parent forks a child that runs a system with a "sink" and an "echo"
 * actor, listening on 127.0.0.1 (free port, sent back through a pipe). The
 * parent's system looks both up, then:
 *
 *  - one-way throughput: one actor sends N 64-byte messages to the sink over
 *    one connection, keeping at most WINDOW unacknowledged (the sink acks
 *    every ACK_EVERY), so the per-peer queue never overflows; the time is
 *    from the first send to the sink's last ack;
 *  - ask round trip: the main thread asks the echo actor ASKS times, one at
 *    a time, and reports the median and 99th percentile latency;
 *  - actor round trip: an actor sends the echo actor ASKS requests, one at a
 *    time, the next when the reply arrives (no thread outside the runtime
 *    involved), same percentiles.
 *
 * Prints three RESULT lines:
 *   RESULT lang=casty bench=remote_oneway params=n=N,bytes=64 workers=W msgs=N secs=S msgs_per_sec=R maxrss_kb=K
 *   RESULT lang=casty bench=remote_ask params=n=ASKS workers=W asks=ASKS p50_us=X p99_us=Y max_us=Z
 *   RESULT lang=casty bench=remote_rtt params=n=ASKS workers=W round_trips=ASKS p50_us=X p99_us=Y max_us=Z
 * Defaults: N = 2,000,000, ASKS = 20,000, W = 1 per process (each process
 * also runs its reactor thread). */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

enum { ACK_EVERY = 8192, WINDOW = 4 * ACK_EVERY }; /* below the default peer queue */

CASTY_MESSAGE(RMsg, uint64_t seq; uint64_t pad[7];); /* 64 bytes */
CASTY_MESSAGE(RAck, uint64_t upto;);
CASTY_MESSAGE(RHello, casty_ref_t sender;);
CASTY_MESSAGE(REcho, uint64_t t; casty_ref_t reply_to;);
CASTY_SIGNAL(RStart);

_Static_assert(sizeof(RMsg) == 64, "64-byte messages");

static casty_system_t *remote_system(uint32_t workers)
{
    casty_remote_config_t remote;
    casty_remote_config_init(&remote);
    remote.host = "127.0.0.1";
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.name = "bench";
    cfg.workers = workers;
    cfg.remote = &remote;
    casty_system_t *sys;
    bench_check(casty_system_create(&cfg, &sys), "casty_system_create");
    casty_register_type(sys, &RMsg_type);
    casty_register_type(sys, &RAck_type);
    casty_register_type(sys, &RHello_type);
    casty_register_type(sys, &REcho_type);
    return sys;
}

/* ---- the child: sink and echo ---------------------------------------------------- */

typedef struct sink {
    casty_ref_t sender;
    uint64_t got, bad;
} sink_t;

static casty_behavior_t *sink_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    sink_t *s = state;
    const RMsg *m = casty_msg_as(msg, RMsg);
    if (m) {
        if (m->seq != s->got)
            s->bad++;
        s->got++;
        if (s->got % ACK_EVERY == 0)
            BENCH_TELL(s->sender, RAck, .upto = s->bad ? 0 : s->got);
        return casty_same();
    }
    const RHello *h = casty_msg_as(msg, RHello);
    if (h) {
        s->sender = h->sender;
        s->got = s->bad = 0;
        return casty_same();
    }
    return casty_unhandled();
}

static casty_behavior_t *echo_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    const REcho *e = casty_msg_as(msg, REcho);
    if (e == NULL)
        return casty_unhandled();
    BENCH_TELL(e->reply_to, REcho, .t = e->t, .reply_to = CASTY_REF_NONE);
    return casty_same();
}

static void child_main(int port_fd, uint32_t workers)
{
    casty_system_t *sys = remote_system(workers);
    sink_t st = {0};
    bench_check(casty_spawn(sys, casty_receive(sink_recv, &st, sizeof st), "sink", NULL, NULL),
                "spawn sink");
    bench_check(casty_spawn(sys, casty_receive(echo_recv, NULL, 0), "echo", NULL, NULL),
                "spawn echo");
    uint16_t port = 0;
    bench_check(casty_system_address(sys, NULL, 0, &port), "system address");
    if (write(port_fd, &port, sizeof port) != (ssize_t)sizeof port)
        _exit(1);
    close(port_fd);
    /* Runs until the parent closes the pipe's other end (or dies). */
    pause();
    _exit(0);
}

/* ---- the parent: sender ------------------------------------------------------------ */

typedef struct sender {
    casty_ref_t sink;
    uint64_t n, sent, acked;
    bench_latch_t *done;
} sender_t;

static void send_more(casty_ctx_t *ctx, sender_t *s)
{
    (void)ctx;
    while (s->sent < s->n && s->sent - s->acked < WINDOW) {
        BENCH_TELL(s->sink, RMsg, .seq = s->sent);
        s->sent++;
    }
}

static casty_behavior_t *sender_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    sender_t *s = state;
    const RAck *a = casty_msg_as(msg, RAck);
    if (a) {
        if (a->upto == 0)
            bench_die("remote: the sink saw messages out of order");
        s->acked = a->upto;
        if (s->acked >= s->n - s->n % ACK_EVERY) {
            bench_latch_arrive(s->done, s->acked);
            return casty_same();
        }
        send_more(ctx, s);
        return casty_same();
    }
    if (casty_msg_is(msg, RStart)) {
        BENCH_TELL(s->sink, RHello, .sender = casty_ctx_self(ctx));
        send_more(ctx, s);
        return casty_same();
    }
    return casty_unhandled();
}

/* Actor-to-actor round trips, one outstanding: the latency an actor sees
 * for a request/reply with an actor of the other process. */
typedef struct rtt {
    casty_ref_t echo;
    uint64_t n, done;
    uint64_t *lat;
    bench_latch_t *finished;
} rtt_t;

static uint64_t now_ns(void);

static casty_behavior_t *rtt_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    rtt_t *s = state;
    const REcho *e = casty_msg_as(msg, REcho);
    if (e) {
        s->lat[s->done++] = now_ns() - e->t;
        if (s->done == s->n) {
            bench_latch_arrive(s->finished, s->done);
            return casty_same();
        }
    } else if (!casty_msg_is(msg, RStart)) {
        return casty_unhandled();
    }
    BENCH_TELL(s->echo, REcho, .t = now_ns(), .reply_to = casty_ctx_self(ctx));
    return casty_same();
}

static int ask_echo(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    return CASTY_TELL(target, REcho, .t = *(uint64_t *)arg, .reply_to = reply_to);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint64_t n = 2000000, asks = 20000;
    uint32_t workers = 1;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc &&
            bench_parse_u64(argv[++i], 1, 1024, &v)) {
            workers = (uint32_t)v;
        } else if (pos == 0 && bench_parse_u64(argv[i], ACK_EVERY, UINT64_C(1) << 40, &v)) {
            n = v - v % ACK_EVERY;
            pos++;
        } else if (pos == 1 && bench_parse_u64(argv[i], 100, UINT64_C(1) << 30, &v)) {
            asks = v;
            pos++;
        } else {
            fprintf(stderr, "usage: remote [N >= %d] [ASKS >= 100] [--workers W]\n", ACK_EVERY);
            return 2;
        }
    }
    int fds[2];
    if (pipe(fds) != 0)
        bench_die("pipe");
    pid_t child = fork();
    if (child < 0)
        bench_die("fork");
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the parent */
        close(fds[0]);
        child_main(fds[1], workers);
    }
    close(fds[1]);
    uint16_t port = 0;
    if (read(fds[0], &port, sizeof port) != (ssize_t)sizeof port)
        bench_die("remote: the child did not start");
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);

    casty_system_t *sys = remote_system(workers);
    casty_ref_t sink, echo;
    bench_check(casty_remote_lookup(sys, addr, "/sink", 10000, &sink), "lookup /sink");
    bench_check(casty_remote_lookup(sys, addr, "/echo", 10000, &echo), "lookup /echo");

    /* one-way throughput */
    bench_latch_t done;
    bench_latch_init(&done, 1);
    sender_t st = {.sink = sink, .n = n, .done = &done};
    casty_ref_t sender = bench_spawn(sys, sender_recv, &st, sizeof st);
    uint64_t t0 = now_ns();
    BENCH_TELL(sender, RStart);
    uint64_t acked;
    if (!bench_latch_wait(&done, 120, &acked))
        bench_die("remote: one-way run did not finish in 120 s");
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("RESULT lang=casty bench=remote_oneway params=n=%" PRIu64 ",bytes=64 workers=%" PRIu32
           " msgs=%" PRIu64 " secs=%.6f msgs_per_sec=%.0f maxrss_kb=%ld\n",
           n, workers, n, secs, (double)n / secs, bench_maxrss_kb());
    fflush(stdout);
    bench_latch_destroy(&done);

    /* ask round trips */
    uint64_t *lat = malloc(asks * sizeof *lat);
    if (lat == NULL)
        bench_die("out of memory");
    for (uint64_t i = 0; i < asks; i++) {
        casty_msg_t *reply = NULL;
        uint64_t t = now_ns();
        bench_check(casty_ask(sys, echo, ask_echo, &t, 5000, &reply), "ask echo");
        lat[i] = now_ns() - t;
        casty_msg_free(reply);
    }
    qsort(lat, asks, sizeof *lat, cmp_u64);
    printf("RESULT lang=casty bench=remote_ask params=n=%" PRIu64 " workers=%" PRIu32
           " asks=%" PRIu64 " p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
           asks, workers, asks, (double)lat[asks / 2] / 1e3, (double)lat[asks * 99 / 100] / 1e3,
           (double)lat[asks - 1] / 1e3);
    fflush(stdout);

    /* actor-to-actor round trips */
    bench_latch_t finished;
    bench_latch_init(&finished, 1);
    rtt_t rs = {.echo = echo, .n = asks, .lat = lat, .finished = &finished};
    casty_ref_t pinger = bench_spawn(sys, rtt_recv, &rs, sizeof rs);
    BENCH_TELL(pinger, RStart);
    uint64_t total;
    if (!bench_latch_wait(&finished, 120, &total))
        bench_die("remote: round trips did not finish in 120 s");
    bench_latch_destroy(&finished);
    qsort(lat, asks, sizeof *lat, cmp_u64);
    printf("RESULT lang=casty bench=remote_rtt params=n=%" PRIu64 " workers=%" PRIu32
           " round_trips=%" PRIu64 " p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
           asks, workers, asks, (double)lat[asks / 2] / 1e3, (double)lat[asks * 99 / 100] / 1e3,
           (double)lat[asks - 1] / 1e3);
    free(lat);
    casty_system_shutdown(sys);
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    return 0;
}
