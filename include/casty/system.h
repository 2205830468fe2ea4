/* casty — the actor system and its event stream (public).
 *
 * A system owns a pool of `workers` scheduler threads and every actor
 * spawned in it. Several systems may live in one process; each has its own
 * node id, and refs carry it, so casty_tell needs no system argument. */
#ifndef CASTY_SYSTEM_H
#define CASTY_SYSTEM_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "message.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct casty_config;

typedef struct casty_system_config {
    const char *name;    /* system name in paths; NULL = the file's, else "casty". Copied. */
    uint32_t workers;    /* scheduler threads; 0 = the file's, else online CPUs */
    uint32_t throughput; /* messages an actor handles per run; 0 = the file's, else 64 */
    /* A loaded casty.toml (casty/config.h), or NULL. Its [system] values fill
     * the fields left 0/NULL above, and its per-actor settings apply at
     * every spawn. Not copied: it must outlive the system. */
    const struct casty_config *file;
    /* Remoting (casty/remote.h): when not NULL the system listens for
     * other nodes and can send to their refs. Not copied. */
    const struct casty_remote_config *remote;
} casty_system_config_t;

/* Fills `config` with the defaults (all zero/NULL: take the file's value or
 * the built-in one). */
void casty_system_config_init(casty_system_config_t *config);

/* Creates and starts a system. `config` may be NULL (defaults). On success
 * *out owns the system until casty_system_shutdown.
 * Errors: CASTY_EINVAL (bad config, name longer than 63 bytes or with '/'
 * or '@'), CASTY_ENOMEM, CASTY_ERANGE (too many systems in this process or
 * more than 1024 workers), or a pthread failure as -errno. */
int casty_system_create(const casty_system_config_t *config, casty_system_t **out);

/* Stops every actor, joins every thread, drops undelivered messages and
 * frees the system. Afterwards refs into it answer CASTY_ESHUTDOWN.
 * Returns 0, CASTY_EINVAL (NULL) or CASTY_EDEADLK when called from one of
 * the system's own worker threads (nothing is done then). Call it once. */
int casty_system_shutdown(casty_system_t *sys);

const char *casty_system_name(const casty_system_t *sys);
uint32_t casty_system_workers(const casty_system_t *sys);
uint64_t casty_system_node(const casty_system_t *sys);

/* Counters, read without locking (each value is exact at some recent point). */
typedef struct casty_system_stats {
    uint64_t actors_live;       /* started and not yet stopped */
    uint64_t actors_spawned;
    uint64_t dead_letters;
    uint64_t unhandled;
} casty_system_stats_t;

void casty_system_stats(const casty_system_t *sys, casty_system_stats_t *out);

/* ---- event stream ------------------------------------------------------- */

/* Events are ordinary message types. Started / stopped are published for
 * every actor spawned with casty_spawn or casty_ctx_spawn, not for
 * casty_ask's promises (the runtime's own temporary refs). */
CASTY_MESSAGE_DECLARE(casty_actor_started_t, casty_ref_t ref;);
CASTY_MESSAGE_DECLARE(casty_actor_stopped_t, casty_ref_t ref;);
/* `reason` points into a static or runtime-owned string valid during
 * delivery only: copy it to keep it. */
CASTY_MESSAGE_DECLARE(casty_actor_failed_t, casty_ref_t ref; int code; const char *reason;);
/* A supervised actor was restarted after a failure (code 0 and reason
 * "restart requested" for an explicit casty_restart()). */
CASTY_MESSAGE_DECLARE(casty_actor_restarted_t, casty_ref_t ref; int code; const char *reason;);
/* msg_type is NULL for a message that arrived from another node with a type
 * id this system has not registered (casty_register_type); type_id is the
 * wire id in both cases. */
CASTY_MESSAGE_DECLARE(casty_dead_letter_t, const casty_type_t *msg_type; casty_ref_t recipient;
                      uint64_t type_id;);
CASTY_MESSAGE_DECLARE(casty_unhandled_message_t, const casty_type_t *msg_type; casty_ref_t recipient;);

/* Called on the publishing thread (any thread: a worker, a user thread
 * calling casty_tell); must be quick and thread-safe. */
typedef void (*casty_event_fn)(const casty_type_t *event_type, const void *event, void *arg);

/* Subscribes a callback (fn, arg) or an actor (casty_subscribe_actor) to
 * events of exactly `event_type`. Subscribing the same (fn, arg) or actor
 * twice to one type delivers once. Returns 0, CASTY_EINVAL, CASTY_ENOMEM,
 * CASTY_ESHUTDOWN. Any thread. Callbacks run on the publishing thread; an
 * actor receives the event as a message of `event_type`. */
int casty_subscribe(casty_system_t *sys, const casty_type_t *event_type, casty_event_fn fn,
                    void *arg);
int casty_subscribe_actor(casty_system_t *sys, const casty_type_t *event_type,
                          casty_ref_t subscriber);
/* Removes a subscription; CASTY_ENOENT when there was none. */
int casty_unsubscribe(casty_system_t *sys, const casty_type_t *event_type, casty_event_fn fn,
                      void *arg);
int casty_unsubscribe_actor(casty_system_t *sys, const casty_type_t *event_type,
                            casty_ref_t subscriber);

/* Publishes a user event of any type to its subscribers. Any thread. */
int casty_publish(casty_system_t *sys, const casty_type_t *event_type, const void *event);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* CASTY_SYSTEM_H */
