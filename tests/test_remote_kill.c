/* Remoting with a peer in another process that is killed (SIGKILL) in the
 * middle of a stream: no hang, dead letters for what could not go, and the
 * node reached again when a new process listens on the same port. The peer
 * is tests/helpers/remote_peer.c, found through CASTY_REMOTE_PEER (the
 * Makefile builds it and sets it for every test target). */
#include <criterion/criterion.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "casty.h"
#include "helpers.h"

#define WAIT_MS 15000

extern char **environ;

/* The same types as tests/helpers/remote_peer.c (wire ids are the names'
 * hashes); their descriptors are defined once, in test_remote.c. */
CASTY_MESSAGE_DECLARE(RPing, uint64_t seq; casty_ref_t reply_to;);
CASTY_MESSAGE_DECLARE(RPong, uint64_t seq;);
CASTY_SIGNAL(KGo);

/* Starts the peer on `port` (0: a free one); returns its pid and the port
 * it listens on. */
static pid_t start_peer(uint16_t port, uint16_t *bound)
{
    const char *path = getenv("CASTY_REMOTE_PEER");
    if (path == NULL)
        path = "build/tests/remote_peer";
    cr_assert_eq(access(path, X_OK), 0, "%s: not built (make builds it for the test targets)",
                 path);
    int out[2];
    cr_assert_eq(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char arg[16];
    snprintf(arg, sizeof arg, "%u", port);
    char *argv[] = {(char *)path, arg, NULL};
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, path, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    unsigned p = 0;
    cr_assert_eq(fscanf(f, "port %u", &p), 1, "the peer did not start");
    fclose(f);
    *bound = (uint16_t)p;
    return pid;
}

static void kill_peer(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Streams `n` pings as fast as it can and counts the pongs. */
typedef struct streamer {
    casty_ref_t target;
    uint64_t n;
    latch_t *pongs;
} streamer_t;

static casty_behavior_t *streamer_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    streamer_t *s = state;
    if (casty_msg_is(msg, KGo)) {
        for (uint64_t i = 0; i < s->n; i++)
            CASTY_TELL(s->target, RPing, .seq = i, .reply_to = casty_ctx_self(ctx));
        return casty_same();
    }
    if (casty_msg_is(msg, RPong)) {
        latch_add(s->pongs, 1);
        return casty_same();
    }
    return casty_unhandled();
}

static casty_ref_t stream(casty_system_t *sys, casty_ref_t target, uint64_t n, latch_t *pongs)
{
    streamer_t st = {.target = target, .n = n, .pongs = pongs};
    casty_ref_t ref;
    cr_assert_eq(casty_spawn(sys, casty_receive(streamer_recv, &st, sizeof st), NULL, NULL, &ref),
                 0);
    CASTY_TELL(ref, KGo);
    return ref;
}

static void count_dead_pings(const casty_type_t *event_type, const void *event, void *arg)
{
    (void)event_type;
    const casty_dead_letter_t *d = event;
    if (d->msg_type == &RPing_type)
        latch_add(arg, 1);
}

static casty_ref_t lookup_echo(casty_system_t *sys, uint16_t port)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    casty_ref_t ref = CASTY_REF_NONE;
    int rc = CASTY_ETIMEDOUT;
    for (int i = 0; i < 10 && rc != 0; i++)
        rc = casty_remote_lookup(sys, addr, "/echo", 2000, &ref);
    cr_assert_eq(rc, 0, "lookup /echo at %s: %s", addr, casty_strerror(rc));
    return ref;
}

Test(remote_kill, a_peer_killed_mid_stream_then_back_on_the_same_port)
{
    uint16_t port;
    pid_t peer = start_peer(0, &port);

    casty_remote_config_t remote;
    casty_remote_config_init(&remote);
    remote.host = "127.0.0.1";
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.name = "remote-test";
    cfg.workers = 2;
    cfg.remote = &remote;
    casty_system_t *a;
    cr_assert_eq(casty_system_create(&cfg, &a), 0);
    casty_register_type(a, &RPong_type);
    latch_t dead = LATCH_INIT;
    cr_assert_eq(casty_subscribe(a, &casty_dead_letter_t_type, count_dead_pings, &dead), 0);

    casty_ref_t echo = lookup_echo(a, port);
    const uint64_t n = 50000; /* below the default peer queue: none refused up front */
    latch_t pongs = LATCH_INIT;
    stream(a, echo, n, &pongs);
    /* Mid-stream: some answers are back, more are on their way. */
    cr_assert_geq(latch_wait(&pongs, 100, WAIT_MS), 100);
    kill_peer(peer);

    /* No hang, and dead letters: the stream may have been written to the
     * socket whole before the kill (then what the peer had not read is lost
     * with it: at-most-once), so keep sending until the lane has found the
     * address dead and turns messages away as dead letters. */
    uint64_t deadline = now_ns() + (uint64_t)WAIT_MS * 1000000u;
    latch_t late_pongs = LATCH_INIT; /* outlives the streamers: none can arrive */
    while (latch_get(&dead) == 0 && now_ns() < deadline) {
        stream(a, echo, 10, &late_pongs);
        latch_wait(&dead, 1, 50); /* a bounded wait on the condition itself */
    }
    cr_assert_geq(latch_get(&dead), 1, "no dead letters after the peer was killed");
    cr_assert_leq(latch_get(&pongs), n);
    cr_assert_eq(latch_get(&late_pongs), 0, "a killed process answered");

    /* A new process on the same port: a new node, reached again. */
    uint16_t again;
    peer = start_peer(port, &again);
    cr_assert_eq(again, port);
    casty_ref_t echo2 = lookup_echo(a, port);
    cr_assert_neq(echo2.node, echo.node, "a restarted process must be a new node");
    latch_t pongs2 = LATCH_INIT;
    stream(a, echo2, 1000, &pongs2);
    cr_assert_eq(latch_wait(&pongs2, 1000, WAIT_MS), 1000);
    /* The killed node's ref: dead letters, not the new node's actors. */
    uint64_t before = latch_get(&dead);
    latch_t pongs3 = LATCH_INIT;
    stream(a, echo, 10, &pongs3);
    cr_assert_eq(latch_wait(&dead, before + 10, WAIT_MS), before + 10);
    cr_assert_eq(latch_get(&pongs3), 0);

    casty_system_shutdown(a);
    kill_peer(peer);
}
