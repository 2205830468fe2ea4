/* Stress: two systems in one process exchange 10^6 messages each way over
 * their TCP connections, from several sender actors per side at once;
 * every message must arrive exactly once and in order per sender (the
 * per-pair ordering remoting promises). Runs under ThreadSanitizer in
 * `make tsan` (with the full count: the transport's threads are the point). */
#include <criterion/criterion.h>

#include "casty.h"
#include "helpers.h"

#define SENDERS 4
#define TOTAL 1000000u /* per direction */
#define WAIT_MS 600000

CASTY_MESSAGE(SMsg, uint32_t sender; uint32_t seq;);
CASTY_SIGNAL(SGo);

typedef struct sink {
    uint32_t next[SENDERS];
    latch_t *got, *bad;
} sink_t;

static casty_behavior_t *sink_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    sink_t *s = state;
    const SMsg *m = casty_msg_as(msg, SMsg);
    if (m == NULL)
        return casty_unhandled();
    if (m->sender >= SENDERS || m->seq != s->next[m->sender])
        latch_add(s->bad, 1);
    else
        s->next[m->sender]++;
    /* Count in batches: the latch's mutex is not what is being tested. */
    uint32_t total = 0;
    for (int i = 0; i < SENDERS; i++)
        total += s->next[i];
    if (total % 1000 == 0 || total == TOTAL)
        latch_add(s->got, 1);
    return casty_same();
}

typedef struct sender {
    casty_ref_t sink;
    uint32_t id, n;
} sender_t;

static casty_behavior_t *sender_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    sender_t *s = state;
    if (!casty_msg_is(msg, SGo))
        return casty_unhandled();
    for (uint32_t i = 0; i < s->n; i++)
        cr_assert_eq(CASTY_TELL(s->sink, SMsg, .sender = s->id, .seq = i), 0);
    return casty_same();
}

static casty_system_t *node(void)
{
    casty_remote_config_t remote;
    casty_remote_config_init(&remote);
    remote.host = "127.0.0.1";
    remote.peer_queue = TOTAL + 16; /* nothing may be dropped */
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.name = "stress";
    cfg.workers = 2;
    cfg.remote = &remote;
    casty_system_t *sys;
    cr_assert_eq(casty_system_create(&cfg, &sys), 0);
    cr_assert_eq(casty_register_type(sys, &SMsg_type), 0);
    return sys;
}

Test(stress_remote, a_million_each_way_exactly_once_in_order_per_sender, .timeout = 900)
{
    casty_system_t *sys[2] = {node(), node()};
    latch_t got[2] = {LATCH_INIT, LATCH_INIT}, bad[2] = {LATCH_INIT, LATCH_INIT};
    casty_ref_t sinks[2];
    for (int i = 0; i < 2; i++) {
        sink_t st = {.got = &got[i], .bad = &bad[i]};
        cr_assert_eq(casty_spawn(sys[i], casty_receive(sink_recv, &st, sizeof st), "sink", NULL,
                                 &sinks[i]),
                     0);
    }
    casty_ref_t remote_sink[2];
    for (int i = 0; i < 2; i++) {
        char host[64], addr[96];
        uint16_t port;
        cr_assert_eq(casty_system_address(sys[1 - i], host, sizeof host, &port), 0);
        snprintf(addr, sizeof addr, "%s:%u", host, port);
        cr_assert_eq(casty_remote_lookup(sys[i], addr, "/sink", 10000, &remote_sink[i]), 0);
    }
    casty_ref_t senders[2][SENDERS];
    for (int i = 0; i < 2; i++)
        for (uint32_t k = 0; k < SENDERS; k++) {
            sender_t st = {.sink = remote_sink[i], .id = k, .n = TOTAL / SENDERS};
            cr_assert_eq(casty_spawn(sys[i], casty_receive(sender_recv, &st, sizeof st), NULL,
                                     NULL, &senders[i][k]),
                         0);
        }
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < SENDERS; k++)
            CASTY_TELL(senders[i][k], SGo);
    /* sink i counts a batch every 1000 messages: TOTAL / 1000 batches. */
    for (int i = 0; i < 2; i++) {
        uint64_t seen = latch_wait(&got[i], TOTAL / 1000, WAIT_MS);
        cr_assert_eq(seen, TOTAL / 1000, "sink %d got %llu thousand of %u", i,
                     (unsigned long long)seen, TOTAL / 1000);
        cr_assert_eq(latch_get(&bad[i]), 0, "sink %d saw a message out of order", i);
    }
    for (int i = 0; i < 2; i++) {
        casty_remote_stats_t st;
        casty_remote_stats(sys[i], &st);
        cr_assert_geq(st.messages_received, TOTAL);
        cr_assert_eq(st.protocol_errors, 0);
        cr_assert_eq(st.unknown_types, 0);
    }
    casty_system_shutdown(sys[0]);
    casty_system_shutdown(sys[1]);
}
