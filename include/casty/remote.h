/* casty — remoting: refs that reach actors of other systems over TCP (public).
 *
 * A system created with a remote config (casty_system_config_t.remote)
 * listens on host:port and sends to refs of other nodes with the same
 * casty_tell / casty_ask as local ones. A ref is {node, actor}; a node id
 * names one incarnation of one system, so a ref into a system that has been
 * restarted yields dead letters, never another actor.
 *
 * Getting a first ref to another node: casty_remote_lookup resolves a path
 * ("/pong") on a node given by address. After that, refs travel inside
 * messages: a ref received from a node works for replies as it is.
 *
 * A ref of a node that has been replaced by a restart at its address gives
 * dead letters; a ref of a node no system here has met gives
 * CASTY_ESHUTDOWN, as a ref of a local system that has shut down does.
 * Watching an actor of another node is not supported yet (CASTY_ENOTSUP).
 *
 * Delivery is at-most-once and ordered per sender-receiver pair (each
 * system sends on its own connection to each peer). Connections open on the
 * first send, are kept, and are re-opened with backoff after a failure;
 * what is sent meanwhile waits in a bounded per-peer queue (overflow ->
 * dead letters). Heartbeats and lookups go on a separate control
 * connection, never behind user messages.
 *
 * Messages cross as bytes: a flat struct (no pointers) as its raw bytes,
 * little-endian (all supported platforms are); a type with pointers needs
 * encode/decode in its descriptor. Sending a CASTY_TYPE_LOCAL type, or one
 * with a drop function and no encode, to a remote ref fails with
 * CASTY_ENOTSERIALIZABLE. The receiving system maps wire ids to types
 * through casty_register_type (types it sends are registered on the
 * way); an unknown id becomes a DeadLetter event with msg_type NULL and the
 * id, and the connection stays up.
 *
 * Addresses are numeric: an IPv4 literal, "[IPv6]", or "localhost"
 * (127.0.0.1). No name resolution happens on the runtime's threads. */
#ifndef CASTY_REMOTE_H
#define CASTY_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "message.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef struct casty_remote_config {
    /* Listening address; NULL = the config file's [cluster] host, else
     * "127.0.0.1". The same host is advertised to peers for their replies. */
    const char *host;
    /* Listening port; 0 = OS-assigned (read it back with
     * casty_system_address). */
    uint16_t port;
    /* Shared secret: when set, both sides of every connection prove they
     * know it (HMAC-SHA512-256 challenge-response) before any message is
     * accepted. NULL = the file's [cluster] secret, else none. Copied. */
    const char *secret;
    /* Largest frame (a message's value plus 24 bytes of header) sent or accepted;
     * 0 = 16 MiB. At least 4096. */
    uint32_t max_frame;
    /* Messages held per peer while it is unreachable (and not yet written);
     * beyond that they become dead letters. 0 = 65536. */
    uint32_t peer_queue;
} casty_remote_config_t;

/* Zero/NULL everywhere: the defaults. */
void casty_remote_config_init(casty_remote_config_t *config);

/* The address a remote-enabled system listens on. Writes the host (NUL-
 * terminated) into host[0..host_len) when host is not NULL, and the port
 * into *port when port is not NULL. Returns 0, CASTY_EINVAL (NULL sys, or
 * no remoting), CASTY_ENOSPC. */
int casty_system_address(const casty_system_t *sys, char *host, size_t host_len, uint16_t *port);

/* Lets `sys` decode messages of `type` arriving from other nodes. Types the
 * system sends to other nodes, or sends locally, are registered
 * automatically; register the types it only ever receives. Idempotent.
 * Returns 0 (also for a system without remoting, where it does nothing),
 * CASTY_EINVAL, CASTY_ENOTSERIALIZABLE (a type that cannot cross),
 * CASTY_EEXIST (another descriptor with the same name, i.e. the same wire
 * id), CASTY_ENOMEM (more than 2047 types). Any thread. */
int casty_register_type(casty_system_t *sys, const casty_type_t *type);

/* Resolves `path` ("/pong", "/manager/alice") on the node listening at
 * `address` ("127.0.0.1:25520") and stores its ref in *out. Connects first
 * if needed. Blocks the calling (non-worker) thread up to timeout_ms.
 * Errors: CASTY_ENOENT (no actor at that path there), CASTY_ETIMEDOUT,
 * CASTY_ECONNREFUSED (the peer refused: another system name or protocol
 * version), CASTY_EACCES (secret mismatch), CASTY_EDEADLK on a worker
 * thread, CASTY_EINVAL (bad address or path, or no remoting). */
int casty_remote_lookup(casty_system_t *sys, const char *address, const char *path,
                        uint64_t timeout_ms, casty_ref_t *out);

/* The answer to a lookup, as a message: also what an actor receives when it
 * asks with casty_remote_lookup_async. rc is 0, CASTY_ENOENT,
 * CASTY_ECONNREFUSED or CASTY_EACCES. */
CASTY_MESSAGE_DECLARE(casty_remote_resolved_t, casty_ref_t ref; int32_t rc; uint32_t pad_;
                      uint64_t tag;);

/* Non-blocking lookup, for actors: the answer arrives at reply_to as a
 * casty_remote_resolved_t carrying `tag` (none when the peer cannot be
 * reached: use a timer). Returns 0, CASTY_EINVAL, CASTY_ENOMEM or
 * CASTY_ESHUTDOWN. */
int casty_remote_lookup_async(casty_system_t *sys, const char *address, const char *path,
                              casty_ref_t reply_to, uint64_t tag);

typedef struct casty_remote_stats {
    uint64_t messages_sent;     /* user messages written to sockets */
    uint64_t messages_received; /* user messages decoded and delivered */
    uint64_t bytes_sent, bytes_received;
    uint64_t connections_accepted;
    uint64_t connections_refused; /* handshakes refused, either side */
    uint64_t protocol_errors;     /* connections closed for a bad frame */
    uint64_t unknown_types;       /* messages with an unregistered type id */
} casty_remote_stats_t;

/* Counters of a remote-enabled system (zeros otherwise). */
void casty_remote_stats(const casty_system_t *sys, casty_remote_stats_t *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* CASTY_REMOTE_H */
