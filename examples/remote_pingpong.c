/* remote_pingpong — two actor systems ping-pong over TCP.
 *
 *   remote_pingpong --listen 127.0.0.1:25520 [--n N]
 *       serves a "pong" actor; exits after answering N pings (default 10000);
 *       port 0 takes a free port (printed)
 *   remote_pingpong --connect 127.0.0.1:25520 [--n N]
 *       looks up /pong there, sends N pings one at a time, prints the rate
 *   remote_pingpong --local [--n N]
 *       both systems in this process, talking over loopback TCP
 *
 * Both sides must use the same system name ("pingpong"); a ref received in a
 * message (Ping.reply_to) is all the pong side needs to answer. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casty.h"

CASTY_MESSAGE(Ping, uint64_t seq; casty_ref_t reply_to;);
CASTY_MESSAGE(Pong, uint64_t seq;);

typedef struct done_latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} done_latch_t;

static void latch_set(done_latch_t *l)
{
    pthread_mutex_lock(&l->mu);
    l->done = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void latch_wait(done_latch_t *l)
{
    pthread_mutex_lock(&l->mu);
    while (!l->done)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

/* ---- pong ------------------------------------------------------------------- */

typedef struct ponger {
    uint64_t left;
    done_latch_t *done;
} ponger_t;

static casty_behavior_t *pong_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    ponger_t *s = state;
    const Ping *p = casty_msg_as(msg, Ping);
    if (p == NULL)
        return casty_unhandled();
    CASTY_TELL(p->reply_to, Pong, .seq = p->seq);
    if (--s->left == 0)
        latch_set(s->done);
    return casty_same();
}

/* ---- ping ------------------------------------------------------------------- */

typedef struct pinger {
    casty_ref_t pong;
    uint64_t n, got;
    done_latch_t *done;
} pinger_t;

CASTY_SIGNAL(Start);

static casty_behavior_t *ping_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    pinger_t *s = state;
    const Pong *p = casty_msg_as(msg, Pong);
    if (p) {
        if (p->seq != s->got + 1) {
            fprintf(stderr, "remote_pingpong: pong %llu out of order\n",
                    (unsigned long long)p->seq);
            return casty_failed(CASTY_EPROTO, "out of order");
        }
        if (++s->got == s->n) {
            latch_set(s->done);
            return casty_same();
        }
    } else if (!casty_msg_is(msg, Start)) {
        return casty_unhandled();
    }
    CASTY_TELL(s->pong, Ping, .seq = s->got + 1, .reply_to = casty_ctx_self(ctx));
    return casty_same();
}

/* ---- helpers ------------------------------------------------------------------ */

static casty_system_t *start_system(const char *host, uint16_t port)
{
    casty_remote_config_t remote;
    casty_remote_config_init(&remote);
    remote.host = host;
    remote.port = port;
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.name = "pingpong";
    cfg.remote = &remote;
    casty_system_t *sys;
    int rc = casty_system_create(&cfg, &sys);
    if (rc) {
        fprintf(stderr, "remote_pingpong: cannot start a system on %s:%u: %s\n", host, port,
                casty_strerror(rc));
        exit(1);
    }
    casty_register_type(sys, &Ping_type);
    casty_register_type(sys, &Pong_type);
    return sys;
}

static int split(const char *addr, char *host, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= cap)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    *port = (uint16_t)atoi(colon + 1);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static done_latch_t pong_done = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
static done_latch_t ping_done = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static casty_system_t *serve(const char *host, uint16_t port, uint64_t n)
{
    casty_system_t *sys = start_system(host, port);
    ponger_t st = {.left = n, .done = &pong_done};
    int rc = casty_spawn(sys, casty_receive(pong_recv, &st, sizeof st), "pong", NULL, NULL);
    if (rc) {
        fprintf(stderr, "remote_pingpong: spawn: %s\n", casty_strerror(rc));
        exit(1);
    }
    return sys;
}

static int play(const char *address, uint64_t n)
{
    casty_system_t *sys = start_system("127.0.0.1", 0);
    casty_ref_t pong;
    int rc = CASTY_ETIMEDOUT;
    /* The server may still be starting: retry the lookup for a while. */
    for (int attempt = 0; attempt < 50 && rc == CASTY_ETIMEDOUT; attempt++)
        rc = casty_remote_lookup(sys, address, "/pong", 200, &pong);
    if (rc) {
        fprintf(stderr, "remote_pingpong: lookup of /pong at %s: %s\n", address,
                casty_strerror(rc));
        casty_system_shutdown(sys);
        return 1;
    }
    pinger_t st = {.pong = pong, .n = n, .done = &ping_done};
    casty_ref_t ping;
    casty_spawn(sys, casty_receive(ping_recv, &st, sizeof st), "ping", NULL, &ping);
    double t0 = now_s();
    CASTY_TELL(ping, Start);
    latch_wait(&ping_done);
    double secs = now_s() - t0;
    printf("remote_pingpong: %llu round trips in %.3f s: %.0f round trips/s, %.1f us each\n",
           (unsigned long long)n, secs, (double)n / secs, secs * 1e6 / (double)n);
    casty_system_shutdown(sys);
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen = NULL, *connect = NULL;
    bool local = false;
    uint64_t n = 10000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc)
            connect = argv[++i];
        else if (strcmp(argv[i], "--local") == 0)
            local = true;
        else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else
            goto usage;
    }
    if (n == 0 || (!!listen + !!connect + local) != 1)
        goto usage;
    char host[256];
    uint16_t port;
    if (listen) {
        if (split(listen, host, sizeof host, &port) != 0)
            goto usage;
        casty_system_t *sys = serve(host, port, n);
        char bound[256];
        casty_system_address(sys, bound, sizeof bound, &port);
        printf("remote_pingpong: serving /pong on %s:%u\n", bound, port);
        fflush(stdout);
        latch_wait(&pong_done);
        printf("remote_pingpong: answered %llu pings\n", (unsigned long long)n);
        casty_system_shutdown(sys);
        return 0;
    }
    if (connect)
        return play(connect, n);
    casty_system_t *server = serve("127.0.0.1", 0, n);
    uint16_t server_port = 0;
    if (casty_system_address(server, NULL, 0, &server_port) != 0) {
        fprintf(stderr, "remote_pingpong: the server has no address\n");
        casty_system_shutdown(server);
        return 1;
    }
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%u", server_port);
    int rc = play(address, n);
    latch_wait(&pong_done);
    printf("remote_pingpong: answered %llu pings\n", (unsigned long long)n);
    casty_system_shutdown(server);
    return rc;
usage:
    fprintf(stderr, "usage: remote_pingpong (--listen HOST:PORT | --connect HOST:PORT | --local) "
                    "[--n N]\n");
    return 2;
}
