/* casty.toml: every key of the seed's complete example, the precedence
 * rules (per-actor > [defaults.*] > built-in; programmatic > file), full
 * matches with PCRE2 patterns, first match wins, '_' names never matched,
 * discovery walking up directories, and errors with file:line:col. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "casty.h"
#include "helpers.h"

static casty_config_t *parse_ok(const char *text)
{
    casty_config_t *cfg = NULL;
    casty_config_diag_t d;
    int rc = casty_config_parse(text, strlen(text), "casty.toml", &cfg, &d);
    cr_assert_eq(rc, 0, "%s", d.text);
    return cfg;
}

static void parse_err(const char *text, const char *want_text)
{
    casty_config_t *cfg = (casty_config_t *)1;
    casty_config_diag_t d;
    cr_assert_eq(casty_config_parse(text, strlen(text), "casty.toml", &cfg, &d), CASTY_EINVAL,
                 "accepted: %s", text);
    cr_assert_null(cfg);
    cr_assert_str_eq(d.text, want_text);
}

Test(config, complete_example_maps_every_key)
{
    casty_config_t *cfg;
    casty_config_diag_t d;
    cr_assert_eq(casty_config_load("examples/casty.toml", &cfg, &d), 0, "%s", d.text);
    casty_system_config_t sc;
    casty_config_system(cfg, &sc);
    cr_assert_str_eq(sc.name, "shop");
    cr_assert_eq(sc.workers, 2);
    cr_assert_eq(sc.throughput, 64);
    casty_actor_settings_t s;
    casty_config_actor(cfg, "anyone", &s);
    cr_assert_eq(s.mailbox.capacity, 1000);
    cr_assert_eq(s.mailbox.overflow, CASTY_OVERFLOW_DROP_NEW);
    cr_assert(s.supervision.enabled);
    cr_assert_eq(s.supervision.max_restarts, 3);
    cr_assert_eq(s.supervision.within_seconds, 60.0);
    cr_assert_eq(s.sharding.num_shards, 256);
    cr_assert_eq(s.replication.replicas, 2);
    cr_assert_eq(s.replication.min_acks, 1);
    cr_assert_eq(s.replication.ack_timeout_seconds, 5.0);
    const casty_cluster_settings_t *c = casty_config_cluster(cfg);
    cr_assert_str_eq(c->host, "127.0.0.1");
    cr_assert_eq(c->port, 25520);
    cr_assert_eq(c->n_seed_nodes, 2);
    cr_assert_str_eq(c->seed_nodes[1], "127.0.0.1:25521");
    cr_assert_eq(c->n_roles, 2);
    cr_assert_str_eq(c->roles[0], "frontend");
    cr_assert_eq(c->gossip_interval_seconds, 1.0);
    cr_assert_eq(c->heartbeat_interval_seconds, 0.5);
    cr_assert_eq(c->availability_check_interval_seconds, 1.0);
    cr_assert_eq(c->failure_detector.threshold, 8.0);
    cr_assert_eq(c->failure_detector.max_sample_size, 200);
    cr_assert_eq(c->failure_detector.min_std_deviation_ms, 100.0);
    cr_assert_eq(c->failure_detector.acceptable_heartbeat_pause_ms, 3000.0);
    cr_assert_eq(c->failure_detector.first_heartbeat_estimate_ms, 1000.0);
    cr_assert(strstr(casty_config_path(cfg), "examples/casty.toml"));
    casty_config_free(cfg);
}

Test(config, exact_names_and_full_pattern_matches)
{
    casty_config_t *cfg = parse_ok("[actors.orders]\n"
                                   "mailbox = { capacity = 5 }\n"
                                   "[actors.\"child-\\\\d+\"]\n"
                                   "mailbox = { capacity = 7 }\n"
                                   "[actors.\"_hidden\"]\n"
                                   "mailbox = { capacity = 9 }\n");
    casty_actor_settings_t s;
    casty_config_actor(cfg, "orders", &s);
    cr_assert_eq(s.mailbox.capacity, 5);
    casty_config_actor(cfg, "orders-extra", &s);
    cr_assert_eq(s.mailbox.capacity, 0, "a plain name matches exactly");
    casty_config_actor(cfg, "child-42", &s);
    cr_assert_eq(s.mailbox.capacity, 7);
    casty_config_actor(cfg, "child-42-extra", &s);
    cr_assert_eq(s.mailbox.capacity, 0, "a pattern must match the whole name");
    casty_config_actor(cfg, "_hidden", &s);
    cr_assert_eq(s.mailbox.capacity, 0, "internal names are never matched");
    casty_config_actor(cfg, NULL, &s);
    cr_assert_eq(s.mailbox.capacity, 0);
    casty_config_free(cfg);
}

Test(config, first_match_wins_and_fields_merge)
{
    casty_config_t *cfg = parse_ok("[defaults.supervision]\n"
                                   "strategy = \"one_for_one\"\nmax_restarts = 3\nwithin_seconds = 30\n"
                                   "[defaults.mailbox]\ncapacity = 50\nstrategy = \"drop_oldest\"\n"
                                   "[actors.\"w-\\\\d\"]\nsupervision = { max_restarts = 10 }\n"
                                   "[actors.\"w-.*\"]\nmailbox = { capacity = 1 }\n");
    casty_actor_settings_t s;
    casty_config_actor(cfg, "w-1", &s);
    cr_assert(s.supervision.enabled, "partial override keeps the default strategy");
    cr_assert_eq(s.supervision.max_restarts, 10);
    cr_assert_eq(s.supervision.within_seconds, 30.0, "unset fields come from [defaults]");
    cr_assert_eq(s.mailbox.capacity, 50, "the second pattern is not consulted");
    cr_assert_eq(s.mailbox.overflow, CASTY_OVERFLOW_DROP_OLDEST);
    casty_config_actor(cfg, "w-22", &s);
    cr_assert_eq(s.mailbox.capacity, 1);
    cr_assert_eq(s.supervision.max_restarts, 3);
    casty_config_free(cfg);
    /* No file at all: the built-in defaults. */
    cfg = parse_ok("");
    casty_config_actor(cfg, "x", &s);
    cr_assert_eq(s.mailbox.capacity, 0);
    cr_assert(!s.supervision.enabled);
    casty_config_free(cfg);
}

Test(config, errors_carry_file_line_column)
{
    parse_err("[system]\nworkers = 2\nworkers = 3\n",
              "casty.toml:3:1: duplicate key \"workers\"");
    parse_err("[system]\nworkerz = 2\n", "casty.toml:2:1: unknown key \"workerz\" in [system]");
    parse_err("[system]\nworkers = \"two\"\n",
              "casty.toml:2:11: \"workers\" must be an integer, not string");
    parse_err("[system]\nworkers = 0\n",
              "casty.toml:2:11: \"workers\" = 0 is out of range (1..1024)");
    parse_err("[defaults.mailbox]\nstrategy = \"drop_all\"\n",
              "casty.toml:2:12: mailbox strategy \"drop_all\" is not one of drop_new, drop_oldest, "
              "backpressure");
    parse_err("[cluster]\nseed_nodes = [\"nohost\"]\n",
              "casty.toml:2:15: seed node \"nohost\" is not \"host:port\"");
    parse_err("[clusterr]\n", "casty.toml:1:2: unknown key \"clusterr\" in the file");
    casty_config_t *cfg;
    casty_config_diag_t d;
    const char *bad = "[actors.\"sensor-(\\\\d+\"]\nmailbox = { capacity = 1 }\n";
    cr_assert_eq(casty_config_parse(bad, strlen(bad), "casty.toml", &cfg, &d), CASTY_EINVAL);
    cr_assert_eq(d.line, 1);
    cr_assert(strstr(d.message, "invalid actor pattern"), "%s", d.text);
}

Test(config, discovery_walks_up_and_missing_explicit_path_fails)
{
    char tmpl[] = "/tmp/casty-config-XXXXXX";
    char *root = mkdtemp(tmpl);
    cr_assert_not_null(root);
    char path[PATH_MAX], deep[PATH_MAX];
    snprintf(path, sizeof path, "%s/casty.toml", root);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("[system]\nname = \"found\"\n", f);
    fclose(f);
    snprintf(deep, sizeof deep, "%s/a", root);
    mkdir(deep, 0700);
    snprintf(deep, sizeof deep, "%s/a/b", root);
    mkdir(deep, 0700);
    char old[PATH_MAX];
    cr_assert_not_null(getcwd(old, sizeof old));
    cr_assert_eq(chdir(deep), 0);
    casty_config_t *cfg;
    casty_config_diag_t d;
    cr_assert_eq(casty_config_load(NULL, &cfg, &d), 0, "%s", d.text);
    casty_system_config_t sc;
    casty_config_system(cfg, &sc);
    cr_assert_str_eq(sc.name, "found");
    cr_assert_str_eq(casty_config_path(cfg), path);
    casty_config_free(cfg);
    cr_assert_eq(chdir(old), 0);
    cr_assert_eq(casty_config_load("/nonexistent/casty.toml", &cfg, &d), CASTY_ENOENT);
    cr_assert_null(cfg);
    cr_assert(strstr(d.text, "/nonexistent/casty.toml"));
    unlink(path);
    rmdir(deep);
    snprintf(deep, sizeof deep, "%s/a", root);
    rmdir(deep);
    rmdir(root);
}

/* ---- the file applied by a running system ---------------------------------------- */

CASTY_MESSAGE(cfg_fail, int code;);
static latch_t restarts = LATCH_INIT, stops = LATCH_INIT;

static void on_event(const casty_type_t *t, const void *ev, void *arg)
{
    (void)ev;
    (void)arg;
    latch_add(t == &casty_actor_restarted_t_type ? &restarts : &stops, 1);
}

static casty_behavior_t *fragile(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)state;
    if (casty_msg_is(msg, cfg_fail))
        return casty_failed(CASTY_ERANGE, "fragile");
    return casty_same();
}

static casty_behavior_t *parent(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    if (casty_msg_is(msg, cfg_fail)) {
        casty_ref_t child;
        cr_assert_eq(casty_ctx_spawn(ctx, casty_receive(fragile, NULL, 0), "worker-7", NULL, &child), 0);
        CASTY_TELL(child, cfg_fail, .code = 1);
    }
    return casty_same();
}

Test(config, system_applies_file_settings_to_children_and_explicit_fields_win)
{
    casty_config_t *cfg = parse_ok("[system]\nname = \"fromfile\"\nworkers = 1\n"
                                   "[actors.\"worker-\\\\d+\"]\nsupervision = { max_restarts = 5 }\n"
                                   "[actors.gate]\nmailbox = { capacity = 1, strategy = \"backpressure\" }\n");
    casty_system_config_t sc;
    casty_system_config_init(&sc);
    sc.file = cfg;
    sc.workers = 2; /* explicit: wins over the file's 1 */
    casty_system_t *sys;
    cr_assert_eq(casty_system_create(&sc, &sys), 0);
    cr_assert_str_eq(casty_system_name(sys), "fromfile");
    cr_assert_eq(casty_system_workers(sys), 2);
    restarts.count = stops.count = 0;
    cr_assert_eq(casty_subscribe(sys, &casty_actor_restarted_t_type, on_event, NULL), 0);
    /* A child named worker-7 is supervised by the file: it restarts. */
    casty_ref_t p;
    cr_assert_eq(casty_spawn(sys, casty_receive(parent, NULL, 0), "boss", NULL, &p), 0);
    CASTY_TELL(p, cfg_fail, .code = 1);
    cr_assert_eq(latch_wait(&restarts, 1, 5000), 1);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    casty_config_free(cfg);
}

static casty_behavior_t *answer_recv(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    (void)msg;
    (void)state;
    return casty_same();
}

/* [cluster] secret reaches the transport: two systems loading the same file
 * authenticate each other; one without it is refused. */
Test(config, cluster_secret_is_used_by_remoting)
{
    parse_err("[cluster]\nsecret = \"\"\n", "casty.toml:2:10: secret must be 1..255 bytes");
    casty_config_t *cfg = parse_ok("[cluster]\nhost = \"127.0.0.1\"\nsecret = \"s3cret\"\n");
    cr_assert_str_eq(casty_config_cluster(cfg)->secret, "s3cret");
    casty_remote_config_t remote;
    casty_remote_config_init(&remote); /* host and secret from the file */
    casty_system_config_t sc;
    casty_system_config_init(&sc);
    sc.name = "cfg";
    sc.workers = 1;
    sc.file = cfg;
    sc.remote = &remote;
    casty_system_t *a, *b, *plain;
    cr_assert_eq(casty_system_create(&sc, &a), 0);
    cr_assert_eq(casty_system_create(&sc, &b), 0);
    sc.file = NULL;
    cr_assert_eq(casty_system_create(&sc, &plain), 0);
    cr_assert_eq(casty_spawn(b, casty_receive(answer_recv, NULL, 0), "x", NULL, NULL), 0);
    char addr[96];
    uint16_t port;
    char host[64];
    cr_assert_eq(casty_system_address(b, host, sizeof host, &port), 0);
    snprintf(addr, sizeof addr, "%s:%u", host, port);
    casty_ref_t ref;
    cr_assert_eq(casty_remote_lookup(a, addr, "/x", 10000, &ref), 0);
    cr_assert_eq(casty_remote_lookup(plain, addr, "/x", 10000, &ref), CASTY_EACCES);
    casty_system_shutdown(a);
    casty_system_shutdown(b);
    casty_system_shutdown(plain);
    casty_config_free(cfg);
}
