/* remote_peer PORT — a node for the remoting tests that kill a peer
 * process: a system named "remote-test" listening on 127.0.0.1:PORT (0 = a
 * free port) with an "echo" actor that answers every RPing with an RPong
 * to its reply_to. Prints "port N" on stdout once it listens, then runs
 * until it is killed. Built by the Makefile as $(BUILD)/tests/remote_peer;
 * the tests find it through CASTY_REMOTE_PEER. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "casty.h"

CASTY_MESSAGE(RPing, uint64_t seq; casty_ref_t reply_to;);
CASTY_MESSAGE(RPong, uint64_t seq;);

static casty_behavior_t *echo_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    const RPing *p = casty_msg_as(msg, RPing);
    if (p == NULL)
        return casty_unhandled();
    CASTY_TELL(p->reply_to, RPong, .seq = p->seq);
    return casty_same();
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    casty_remote_config_t remote;
    casty_remote_config_init(&remote);
    remote.host = "127.0.0.1";
    remote.port = (uint16_t)atoi(argv[1]);
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.name = "remote-test";
    cfg.workers = 1;
    cfg.remote = &remote;
    casty_system_t *sys;
    int rc = casty_system_create(&cfg, &sys);
    if (rc) {
        fprintf(stderr, "remote_peer: %s\n", casty_strerror(rc));
        return 1;
    }
    casty_register_type(sys, &RPing_type);
    casty_register_type(sys, &RPong_type);
    if (casty_spawn(sys, casty_receive(echo_recv, NULL, 0), "echo", NULL, NULL) != 0)
        return 1;
    uint16_t port = 0;
    rc = casty_system_address(sys, NULL, 0, &port);
    if (rc) {
        fprintf(stderr, "remote_peer: %s\n", casty_strerror(rc));
        return 1;
    }
    printf("port %u\n", port);
    fflush(stdout);
    for (;;)
        pause();
}
