/* Internal (not installed). The transport's shared structures: the
 * per-system remote state, peers, outbound lanes and inbound connections,
 * and the helpers the net/ files share.
 *
 * Threads: casty_tell on any thread reads the peer tables under the
 * process-wide routes lock (read side) while it hands a message to a lane
 * actor; the lane and connection actors run on workers and own their
 * sockets; every socket operation is an io_uring request on the system's
 * reactor, completed as a casty__io_done_t message to the owning actor. */
#ifndef CASTY_NET_REMOTE_INTERNAL_H
#define CASTY_NET_REMOTE_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "casty.h"
#include "internal.h"
#include "reactor.h"
#include "remote.h"
#include "wire.h"

#define REMOTE_DEFAULT_PEER_QUEUE 65536u
#define REMOTE_RECV_CHUNK (256u << 10)
#define REMOTE_BACKOFF_MIN_MS 50u
#define REMOTE_BACKOFF_MAX_MS 2000u
/* Consecutive failed connects after which a peer counts as unreachable:
 * what waits for it, and what is sent to it until a connect succeeds,
 * becomes dead letters instead of waiting. */
#define REMOTE_GATE_AFTER_FAILURES 4u
/* How long shutdown waits for what was sent to reachable peers to be
 * written to their sockets. */
#define REMOTE_DRAIN_MS 2000u
/* Time a connection has to complete its handshake (either side), connect
 * included, before it counts as failed. */
#define REMOTE_HANDSHAKE_MS 3000u
/* Node ids remembered per system after their address restarted with a new
 * one: messages to them are dead letters rather than "unknown node". */
#define REMOTE_RETIRED 64u

/* A growable byte buffer. */
struct rbuf {
    uint8_t *p;
    uint32_t len, cap;
};

int casty__rbuf_reserve(struct rbuf *b, uint32_t extra);
void casty__rbuf_free(struct rbuf *b);

/* One message handed to a lane actor: a whole encoded frame plus what is
 * needed to report it as a dead letter. Heap-allocated and moved into the
 * lane's mailbox (type casty__remote_env_type). */
enum env_kind { ENV_USER = 0, ENV_RESOLVE = 1 };
struct remote_env {
    uint64_t node;            /* the node this is for (0: whoever is at the address) */
    uint64_t actor;           /* recipient (USER) */
    const casty_type_t *type; /* USER: the message type */
    casty_ref_t reply_to;     /* RESOLVE: who is waiting for the answer */
    uint64_t tag;             /* RESOLVE: the caller's tag */
    uint8_t kind;             /* enum env_kind */
    uint32_t len;             /* bytes in frame[] */
    uint8_t frame[];
};
extern const casty_type_t casty__remote_env_type;

/* What a lane remembers of each frame waiting in its buffer. */
struct pending {
    uint64_t node, actor, tag;
    const casty_type_t *type;
    casty_ref_t reply_to;
    uint32_t off, len;
    uint8_t kind;
};

struct casty_remote;
struct peer;

/* An outbound connection to one peer, for one lane (user or control). Owned
 * by its peer; driven by its actor. */
enum lane_state { LANE_IDLE, LANE_CONNECTING, LANE_HANDSHAKE, LANE_UP, LANE_CLOSING, LANE_BACKOFF };
struct lane {
    struct casty_remote *rm;
    struct peer *peer;
    uint8_t kind;          /* enum casty__wire_lane */
    uint8_t state;         /* enum lane_state */
    int fd;
    uint32_t gen;          /* connection generation: completions of older ones are ignored */
    uint32_t ops;          /* io requests in flight for this connection */
    bool sending;
    bool flush_pending;    /* a flush message to itself is on its way */
    uint64_t conn_node;    /* node id the current connection's WELCOME gave */
    uint8_t nonce[CASTY__WIRE_NONCE];
    struct sockaddr_storage sa;
    socklen_t sa_len;
    struct rbuf hs;        /* handshake frames to send first */
    struct rbuf out;       /* frames waiting for the connection */
    struct pending *pend;  /* one per frame in out */
    uint32_t npend, pend_cap;
    struct rbuf wbuf;      /* bytes being sent */
    uint32_t woff;
    uint32_t wframes;      /* user frames in wbuf */
    struct rbuf in;        /* received, not yet parsed */
    uint32_t failures;     /* consecutive failed connects */
    uint32_t backoff_ms;
    bool gated;            /* unreachable: drop instead of queueing */
    int refused;           /* last refusal as an error code, 0 = none */
    casty_ref_t self;      /* the lane's actor (set by the actor itself) */
};

/* A node we send to: known by the address we connect to, and (after a
 * handshake) by its node id. Never freed before the system. */
struct peer {
    struct casty_remote *rm;
    char host[CASTY__WIRE_HOST_MAX + 1];
    uint16_t port;
    uint64_t node;        /* 0 until learned; written under the routes lock */
    uint64_t incarnation;
    uint32_t queued;      /* atomic: user messages accepted, not yet written to the socket */
    uint32_t gated;       /* atomic: copy of the user lane's gated flag */
    struct lane lanes[2]; /* indexed by enum casty__wire_lane */
    casty_ref_t lane_refs[2];
};

/* An accepted connection. Freed by its actor once no request is in flight,
 * or by casty__remote_free when the system stops with requests in flight. */
enum conn_state { CONN_HELLO, CONN_AUTH, CONN_OPEN, CONN_CLOSING };
struct conn {
    struct casty_remote *rm;
    int fd;
    uint8_t state;
    uint8_t lane;
    uint32_t ops;
    bool sending, close_after_send;
    bool recv_single;     /* plain receives: the kernel has no provided buffers */
    uint64_t peer_node;
    uint64_t peer_incarnation;
    char peer_host[CASTY__WIRE_HOST_MAX + 1];
    uint16_t peer_port;
    uint8_t hello_nonce[CASTY__WIRE_NONCE];
    uint8_t nonce[CASTY__WIRE_NONCE];
    struct rbuf in;
    struct rbuf out, wbuf;
    uint32_t woff;
    /* one-entry cache of the last type id looked up */
    uint64_t last_id;
    const casty_type_t *last_type;
    struct conn *next; /* rm->conns */
    casty_ref_t self;
};

struct type_entry {
    uint64_t id;
    const casty_type_t *type;
};

struct casty_remote {
    struct casty_system *sys;
    struct casty_remote *next_remote; /* the process's list, under the routes lock */
    char host[CASTY__WIRE_HOST_MAX + 1];
    uint16_t port;
    int listen_fd;
    uint64_t incarnation;
    bool auth;
    uint8_t key[CASTY__WIRE_KEY];
    uint32_t max_frame;
    uint32_t peer_queue;
    uint32_t closing;      /* atomic */
    casty_ref_t listener;

    /* under the routes lock */
    struct peer **peers;
    uint32_t npeers, peers_cap;
    uint64_t retired[REMOTE_RETIRED]; /* ring of replaced node ids */
    uint32_t nretired;
    /* lock-free reads, inserts under a mutex (remote.c) */
    struct type_entry *types; /* open addressing by id; cap a power of two */
    uint32_t ntypes, types_cap;
    const casty_type_t **seen; /* pointer-keyed set of types_cap entries */

    pthread_mutex_t conns_lock;
    struct conn *conns;

    casty_remote_stats_t stats; /* atomics */
};

/* The process-wide lock over every system's peers and types. */
extern pthread_rwlock_t casty__routes_lock;

/* remote.c */
struct peer *casty__peer_by_node(struct casty_remote *rm, uint64_t node);
/* Finds or creates (starting its lane actors) the peer at host:port.
 * Takes the routes lock itself. */
int casty__peer_for_address(struct casty_remote *rm, const char *host, uint16_t port,
                            struct peer **out);
/* A handshake said node `node` is the one at host:port. */
void casty__peer_learn(struct casty_remote *rm, struct peer *p, uint64_t node,
                       uint64_t incarnation);
void casty__remote_learn_address(struct casty_remote *rm, const char *host, uint16_t port,
                                 uint64_t node, uint64_t incarnation);
const casty_type_t *casty__remote_type(struct casty_remote *rm, uint64_t id);
int casty__parse_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *sa,
                          socklen_t *len);
void casty__remote_log(struct casty_remote *rm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void casty__remote_hello(struct casty_remote *rm, uint8_t lane,
                         const uint8_t nonce[CASTY__WIRE_NONCE], struct casty__wire_hello *h);
int casty__remote_submit(struct casty_remote *rm, uint8_t op, int fd, void *buf, uint32_t len,
                         uint64_t tag, casty_ref_t reply_to);

/* lane.c */
casty_behavior_t *casty__lane_behavior(struct lane *l);
/* inbound.c */
casty_behavior_t *casty__listener_behavior(struct casty_remote *rm);
void casty__conn_free(struct conn *c);

#define STAT_ADD(rm, field, n) ck_pr_add_64(&(rm)->stats.field, (uint64_t)(n))

#endif
