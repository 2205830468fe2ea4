/* casty — configuration from casty.toml (public).
 *
 * casty_config_load reads a casty.toml (TOML 1.0) into a casty_config_t: the
 * system section, defaults for mailboxes / supervision / sharding /
 * replication, the cluster section (parsed and validated now, used by the
 * cluster), and per-actor overrides ([actors."<pattern>"] tables). Pass it
 * to casty_system_create through casty_system_config_t.file: explicit
 * fields in the casty_system_config_t win over the file, the file over the
 * built-in defaults. At every spawn the actor's name is matched against the
 * override patterns (a full match; PCRE2 syntax, so "sensor-\\d+" works;
 * first match in file order wins; names starting with '_' are internal and
 * never matched) and the effective settings are, field by field:
 * per-actor override > [defaults.*] > built-in default; options passed to
 * casty_spawn explicitly win over all of them. */
#ifndef CASTY_CONFIG_H
#define CASTY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "system.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef struct casty_mailbox_settings {
    uint32_t capacity;         /* 0 = unbounded */
    casty_overflow_t overflow; /* "drop_new" | "drop_oldest" | "backpressure" */
} casty_mailbox_settings_t;

typedef struct casty_supervision_settings {
    bool enabled;              /* false: failures stop the actor (no strategy) */
    uint32_t max_restarts;     /* strategy = "one_for_one" */
    double within_seconds;
} casty_supervision_settings_t;

typedef struct casty_sharding_settings {
    uint32_t num_shards;
} casty_sharding_settings_t;

typedef struct casty_replication_settings {
    uint32_t replicas;
    uint32_t min_acks;
    double ack_timeout_seconds;
} casty_replication_settings_t;

/* The settings an actor gets (see casty_config_actor). */
typedef struct casty_actor_settings {
    casty_mailbox_settings_t mailbox;
    casty_supervision_settings_t supervision;
    casty_sharding_settings_t sharding;
    casty_replication_settings_t replication;
} casty_actor_settings_t;

typedef struct casty_failure_detector_settings {
    double threshold;
    uint32_t max_sample_size;
    double min_std_deviation_ms;
    double acceptable_heartbeat_pause_ms;
    double first_heartbeat_estimate_ms;
} casty_failure_detector_settings_t;

typedef struct casty_cluster_settings {
    char host[256];
    uint16_t port;
    char secret[256]; /* shared secret for remoting handshakes; "" = none */
    char **seed_nodes; /* "host:port" strings, n_seed_nodes of them */
    size_t n_seed_nodes;
    char **roles;
    size_t n_roles;
    double gossip_interval_seconds;
    double heartbeat_interval_seconds;
    double availability_check_interval_seconds;
    casty_failure_detector_settings_t failure_detector;
} casty_cluster_settings_t;

typedef struct casty_config casty_config_t;

/* Where a load error is: file, line and column (1-based; 0 when the error
 * is not about a position, e.g. a missing file) and a message. `text` is
 * the whole "casty.toml:12:7: duplicate key \"port\"" line. */
typedef struct casty_config_diag {
    char file[256];
    int line, column;
    char message[256];
    char text[600];
} casty_config_diag_t;

/* Loads `path`, or (path NULL) the first casty.toml found walking up from
 * the working directory; none found -> every default (still a valid config,
 * 0). An explicit path that does not exist -> CASTY_ENOENT. Errors in the
 * file (TOML syntax, unknown keys, wrong types, out-of-range values, bad
 * patterns) -> CASTY_EINVAL with `diag` (if not NULL) filled. On success
 * *out owns the config: free it with casty_config_free, after every system
 * created with it has shut down. */
int casty_config_load(const char *path, casty_config_t **out, casty_config_diag_t *diag);

/* Parses TOML text already in memory (`name` is used in diagnostics). */
int casty_config_parse(const char *text, size_t len, const char *name, casty_config_t **out,
                       casty_config_diag_t *diag);

void casty_config_free(casty_config_t *cfg);

/* The file the config came from ("" for defaults or parsed text). */
const char *casty_config_path(const casty_config_t *cfg);

/* The [system] section as a system config (workers / throughput 0 when the
 * file leaves them to the defaults). */
void casty_config_system(const casty_config_t *cfg, casty_system_config_t *out);

/* The effective settings for an actor called `name` (NULL: an anonymous
 * actor, which gets the defaults). */
void casty_config_actor(const casty_config_t *cfg, const char *name, casty_actor_settings_t *out);

/* The cluster section (zeroed defaults filled in). */
const casty_cluster_settings_t *casty_config_cluster(const casty_config_t *cfg);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* CASTY_CONFIG_H */
