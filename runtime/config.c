/* casty.toml: finding the file, checking it against the schema (unknown
 * keys, wrong types and out-of-range values are errors with file:line:col),
 * turning it into settings, and answering "what settings does the actor
 * called X get" with per-actor patterns compiled once by PCRE2.
 *
 * Precedence, field by field: per-actor override > [defaults.*] > built-in
 * default (and, applied by system.c, explicit programmatic options over all
 * of these). The parser itself is runtime/toml.c; this file does no I/O
 * except reading the one file. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <limits.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "casty/config.h"
#include "internal.h"
#include "toml.h"

#define MAX_FILE_BYTES (16u << 20)

/* Which fields an override sets (a bit each). */
enum {
    SET_CAPACITY = 1u << 0,
    SET_OVERFLOW = 1u << 1,
    SET_SUP_ENABLED = 1u << 2,
    SET_MAX_RESTARTS = 1u << 3,
    SET_WITHIN = 1u << 4,
    SET_SHARDS = 1u << 5,
    SET_REPLICAS = 1u << 6,
    SET_MIN_ACKS = 1u << 7,
    SET_ACK_TIMEOUT = 1u << 8,
};

struct override {
    char *pattern;
    pcre2_code *re; /* NULL: a plain name, compared exactly */
    uint32_t set;
    casty_actor_settings_t s;
};

struct casty_config {
    char path[PATH_MAX];
    char name[64];
    uint32_t workers, throughput;
    struct override defaults; /* [defaults.*], `set` says which fields */
    struct override *actors;
    size_t n_actors;
    casty_cluster_settings_t cluster;
};

/* ---- diagnostics ------------------------------------------------------------------ */

struct loader {
    casty_config_t *cfg;
    casty_config_diag_t *diag;
    const char *file;
};

static int fail_at(struct loader *l, struct casty__toml_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(struct loader *l, struct casty__toml_pos pos, const char *fmt, ...)
{
    if (l->diag) {
        casty_config_diag_t *d = l->diag;
        snprintf(d->file, sizeof d->file, "%s", l->file);
        d->line = (int)pos.line;
        d->column = (int)pos.col;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->message, sizeof d->message, fmt, ap);
        va_end(ap);
        if (pos.line)
            snprintf(d->text, sizeof d->text, "%s:%d:%d: %s", d->file, d->line, d->column,
                     d->message);
        else
            snprintf(d->text, sizeof d->text, "%s: %s", d->file, d->message);
    }
    return CASTY_EINVAL;
}

/* ---- typed getters with range checks -------------------------------------------------- */

typedef const struct casty__toml node_t;

static int get_uint(struct loader *l, node_t *v, const char *key, int64_t min, int64_t max,
                    uint32_t *out)
{
    int64_t x;
    if (casty__toml_int(v, &x) != 0)
        return fail_at(l, casty__toml_pos(v), "\"%s\" must be an integer, not %s", key,
                       casty__toml_kind_name(casty__toml_kind(v)));
    if (x < min || x > max)
        return fail_at(l, casty__toml_pos(v), "\"%s\" = %lld is out of range (%lld..%lld)", key,
                       (long long)x, (long long)min, (long long)max);
    *out = (uint32_t)x;
    return 0;
}

static int get_seconds(struct loader *l, node_t *v, const char *key, double min, bool min_open,
                       double *out)
{
    double x;
    if (casty__toml_number(v, &x) != 0)
        return fail_at(l, casty__toml_pos(v), "\"%s\" must be a number, not %s", key,
                       casty__toml_kind_name(casty__toml_kind(v)));
    if (x != x || x > 1e9 || x < min || (min_open && x == min))
        return fail_at(l, casty__toml_pos(v), "\"%s\" = %g is out of range (%s %g)", key, x,
                       min_open ? ">" : ">=", min);
    *out = x;
    return 0;
}

static int get_string(struct loader *l, node_t *v, const char *key, const char **out)
{
    size_t len;
    if (casty__toml_string(v, out, &len) != 0)
        return fail_at(l, casty__toml_pos(v), "\"%s\" must be a string, not %s", key,
                       casty__toml_kind_name(casty__toml_kind(v)));
    if (strlen(*out) != len)
        return fail_at(l, casty__toml_pos(v), "\"%s\" must not contain NUL", key);
    return 0;
}

/* Checks that table t only has keys from `allowed`. */
static int only_keys(struct loader *l, node_t *t, const char *where, const char *const *allowed)
{
    if (casty__toml_kind(t) != CASTY__TOML_TABLE)
        return fail_at(l, casty__toml_pos(t), "%s must be a table", where);
    for (size_t i = 0; i < casty__toml_table_len(t); i++) {
        size_t klen;
        const char *k = casty__toml_table_key_at(t, i, &klen);
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strlen(*a) == klen && memcmp(*a, k, klen) == 0;
        if (!ok)
            return fail_at(l, casty__toml_table_key_pos(t, i), "unknown key \"%.*s\" in %s",
                           (int)klen, k, where);
    }
    return 0;
}

/* ---- sections ---------------------------------------------------------------------------- */

static int load_mailbox(struct loader *l, node_t *t, const char *where, struct override *o)
{
    static const char *const keys[] = {"capacity", "strategy", NULL};
    int rc = only_keys(l, t, where, keys);
    node_t *v;
    if (rc == 0 && (v = casty__toml_table_get(t, "capacity"))) {
        rc = get_uint(l, v, "capacity", 0, INT32_MAX, &o->s.mailbox.capacity);
        o->set |= SET_CAPACITY;
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "strategy"))) {
        const char *s;
        rc = get_string(l, v, "strategy", &s);
        if (rc == 0) {
            if (strcmp(s, "drop_new") == 0)
                o->s.mailbox.overflow = CASTY_OVERFLOW_DROP_NEW;
            else if (strcmp(s, "drop_oldest") == 0)
                o->s.mailbox.overflow = CASTY_OVERFLOW_DROP_OLDEST;
            else if (strcmp(s, "backpressure") == 0)
                o->s.mailbox.overflow = CASTY_OVERFLOW_BACKPRESSURE;
            else
                rc = fail_at(l, casty__toml_pos(v),
                             "mailbox strategy \"%s\" is not one of drop_new, drop_oldest, "
                             "backpressure",
                             s);
            o->set |= SET_OVERFLOW;
        }
    }
    return rc;
}

static int load_supervision(struct loader *l, node_t *t, const char *where, struct override *o)
{
    static const char *const keys[] = {"strategy", "max_restarts", "within_seconds", NULL};
    int rc = only_keys(l, t, where, keys);
    node_t *v;
    if (rc == 0 && (v = casty__toml_table_get(t, "strategy"))) {
        const char *s;
        rc = get_string(l, v, "strategy", &s);
        if (rc == 0 && strcmp(s, "one_for_one") != 0)
            rc = fail_at(l, casty__toml_pos(v), "supervision strategy \"%s\" is not one_for_one", s);
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "max_restarts"))) {
        rc = get_uint(l, v, "max_restarts", 0, 1000000, &o->s.supervision.max_restarts);
        o->set |= SET_MAX_RESTARTS;
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "within_seconds"))) {
        rc = get_seconds(l, v, "within_seconds", 0, false, &o->s.supervision.within_seconds);
        o->set |= SET_WITHIN;
    }
    /* Any supervision table turns supervision on for who it applies to. */
    o->s.supervision.enabled = true;
    o->set |= SET_SUP_ENABLED;
    return rc;
}

static int load_sharding(struct loader *l, node_t *t, const char *where, struct override *o)
{
    static const char *const keys[] = {"num_shards", NULL};
    int rc = only_keys(l, t, where, keys);
    node_t *v;
    if (rc == 0 && (v = casty__toml_table_get(t, "num_shards"))) {
        rc = get_uint(l, v, "num_shards", 1, 1000000, &o->s.sharding.num_shards);
        o->set |= SET_SHARDS;
    }
    return rc;
}

static int load_replication(struct loader *l, node_t *t, const char *where, struct override *o)
{
    static const char *const keys[] = {"replicas", "min_acks", "ack_timeout", NULL};
    int rc = only_keys(l, t, where, keys);
    node_t *v;
    if (rc == 0 && (v = casty__toml_table_get(t, "replicas"))) {
        rc = get_uint(l, v, "replicas", 0, 64, &o->s.replication.replicas);
        o->set |= SET_REPLICAS;
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "min_acks"))) {
        rc = get_uint(l, v, "min_acks", 0, 64, &o->s.replication.min_acks);
        o->set |= SET_MIN_ACKS;
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "ack_timeout"))) {
        rc = get_seconds(l, v, "ack_timeout", 0, true, &o->s.replication.ack_timeout_seconds);
        o->set |= SET_ACK_TIMEOUT;
    }
    if (rc == 0 && (o->set & SET_MIN_ACKS) && (o->set & SET_REPLICAS) &&
        o->s.replication.min_acks > o->s.replication.replicas)
        rc = fail_at(l, casty__toml_pos(casty__toml_table_get(t, "min_acks")),
                     "min_acks (%u) exceeds replicas (%u)", o->s.replication.min_acks,
                     o->s.replication.replicas);
    return rc;
}

/* mailbox / supervision / sharding / replication tables of `t` into o. */
static int load_settings(struct loader *l, node_t *t, const char *where, struct override *o)
{
    static const char *const keys[] = {"mailbox", "supervision", "sharding", "replication", NULL};
    int rc = only_keys(l, t, where, keys);
    char sub[300];
    node_t *v;
    if (rc == 0 && (v = casty__toml_table_get(t, "mailbox"))) {
        snprintf(sub, sizeof sub, "%s.mailbox", where);
        rc = load_mailbox(l, v, sub, o);
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "supervision"))) {
        snprintf(sub, sizeof sub, "%s.supervision", where);
        rc = load_supervision(l, v, sub, o);
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "sharding"))) {
        snprintf(sub, sizeof sub, "%s.sharding", where);
        rc = load_sharding(l, v, sub, o);
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "replication"))) {
        snprintf(sub, sizeof sub, "%s.replication", where);
        rc = load_replication(l, v, sub, o);
    }
    return rc;
}

static int load_system(struct loader *l, node_t *t)
{
    static const char *const keys[] = {"name", "workers", "throughput", NULL};
    int rc = only_keys(l, t, "[system]", keys);
    node_t *v;
    if (rc == 0 && (v = casty__toml_table_get(t, "name"))) {
        const char *s;
        rc = get_string(l, v, "name", &s);
        if (rc == 0 && (strlen(s) == 0 || strlen(s) >= sizeof l->cfg->name || strpbrk(s, "/@ ")))
            rc = fail_at(l, casty__toml_pos(v),
                         "system name \"%s\" must be 1..63 bytes without '/', '@' or spaces", s);
        if (rc == 0)
            snprintf(l->cfg->name, sizeof l->cfg->name, "%s", s);
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "workers")))
        rc = get_uint(l, v, "workers", 1, 1024, &l->cfg->workers);
    if (rc == 0 && (v = casty__toml_table_get(t, "throughput")))
        rc = get_uint(l, v, "throughput", 1, 1000000, &l->cfg->throughput);
    return rc;
}

static int load_string_array(struct loader *l, node_t *v, const char *key, bool host_port,
                             char ***out, size_t *n)
{
    if (casty__toml_kind(v) != CASTY__TOML_ARRAY)
        return fail_at(l, casty__toml_pos(v), "\"%s\" must be an array of strings", key);
    size_t len = casty__toml_array_len(v);
    char **a = calloc(len ? len : 1, sizeof *a);
    if (a == NULL)
        return CASTY_ENOMEM;
    *out = a;
    for (size_t i = 0; i < len; i++) {
        node_t *e = casty__toml_array_at(v, i);
        const char *s;
        int rc = get_string(l, e, key, &s);
        if (rc)
            return rc;
        if (host_port) {
            const char *colon = strrchr(s, ':');
            char *end;
            long port = colon ? strtol(colon + 1, &end, 10) : 0;
            if (colon == NULL || colon == s || colon[1] == 0 || *end || port < 1 || port > 65535)
                return fail_at(l, casty__toml_pos(e), "seed node \"%s\" is not \"host:port\"", s);
        }
        a[i] = strdup(s);
        if (a[i] == NULL)
            return CASTY_ENOMEM;
        *n = i + 1;
    }
    return 0;
}

static int load_cluster(struct loader *l, node_t *t)
{
    static const char *const keys[] = {"host", "port", "seed_nodes", "roles", "gossip",
                                       "heartbeat", "failure_detector", "secret", NULL};
    casty_cluster_settings_t *c = &l->cfg->cluster;
    int rc = only_keys(l, t, "[cluster]", keys);
    node_t *v;
    uint32_t port;
    if (rc == 0 && (v = casty__toml_table_get(t, "host"))) {
        const char *s;
        rc = get_string(l, v, "host", &s);
        if (rc == 0 && (s[0] == 0 || strlen(s) >= sizeof c->host))
            rc = fail_at(l, casty__toml_pos(v), "host must be 1..255 bytes");
        if (rc == 0)
            snprintf(c->host, sizeof c->host, "%s", s);
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "port"))) {
        rc = get_uint(l, v, "port", 0, 65535, &port);
        c->port = (uint16_t)port;
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "secret"))) {
        const char *s;
        rc = get_string(l, v, "secret", &s);
        if (rc == 0 && (s[0] == 0 || strlen(s) >= sizeof c->secret))
            rc = fail_at(l, casty__toml_pos(v), "secret must be 1..255 bytes");
        if (rc == 0)
            snprintf(c->secret, sizeof c->secret, "%s", s);
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "seed_nodes")))
        rc = load_string_array(l, v, "seed_nodes", true, &c->seed_nodes, &c->n_seed_nodes);
    if (rc == 0 && (v = casty__toml_table_get(t, "roles")))
        rc = load_string_array(l, v, "roles", false, &c->roles, &c->n_roles);
    if (rc == 0 && (v = casty__toml_table_get(t, "gossip"))) {
        static const char *const gk[] = {"interval", NULL};
        rc = only_keys(l, v, "[cluster.gossip]", gk);
        node_t *x = casty__toml_table_get(v, "interval");
        if (rc == 0 && x)
            rc = get_seconds(l, x, "interval", 0, true, &c->gossip_interval_seconds);
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "heartbeat"))) {
        static const char *const hk[] = {"interval", "availability_check_interval", NULL};
        rc = only_keys(l, v, "[cluster.heartbeat]", hk);
        node_t *x;
        if (rc == 0 && (x = casty__toml_table_get(v, "interval")))
            rc = get_seconds(l, x, "interval", 0, true, &c->heartbeat_interval_seconds);
        if (rc == 0 && (x = casty__toml_table_get(v, "availability_check_interval")))
            rc = get_seconds(l, x, "availability_check_interval", 0, true,
                             &c->availability_check_interval_seconds);
    }
    if (rc == 0 && (v = casty__toml_table_get(t, "failure_detector"))) {
        static const char *const fk[] = {"threshold", "max_sample_size", "min_std_deviation_ms",
                                         "acceptable_heartbeat_pause_ms",
                                         "first_heartbeat_estimate_ms", NULL};
        casty_failure_detector_settings_t *f = &c->failure_detector;
        rc = only_keys(l, v, "[cluster.failure_detector]", fk);
        node_t *x;
        if (rc == 0 && (x = casty__toml_table_get(v, "threshold")))
            rc = get_seconds(l, x, "threshold", 0, true, &f->threshold);
        if (rc == 0 && (x = casty__toml_table_get(v, "max_sample_size")))
            rc = get_uint(l, x, "max_sample_size", 1, 1000000, &f->max_sample_size);
        if (rc == 0 && (x = casty__toml_table_get(v, "min_std_deviation_ms")))
            rc = get_seconds(l, x, "min_std_deviation_ms", 0, true, &f->min_std_deviation_ms);
        if (rc == 0 && (x = casty__toml_table_get(v, "acceptable_heartbeat_pause_ms")))
            rc = get_seconds(l, x, "acceptable_heartbeat_pause_ms", 0, false,
                             &f->acceptable_heartbeat_pause_ms);
        if (rc == 0 && (x = casty__toml_table_get(v, "first_heartbeat_estimate_ms")))
            rc = get_seconds(l, x, "first_heartbeat_estimate_ms", 0, true,
                             &f->first_heartbeat_estimate_ms);
    }
    return rc;
}

static bool is_plain_name(const char *p)
{
    return strpbrk(p, "\\^$.|?*+()[]{}") == NULL;
}

static int load_actors(struct loader *l, node_t *t)
{
    if (casty__toml_kind(t) != CASTY__TOML_TABLE)
        return fail_at(l, casty__toml_pos(t), "[actors] must be a table");
    size_t n = casty__toml_table_len(t);
    l->cfg->actors = calloc(n ? n : 1, sizeof *l->cfg->actors);
    if (l->cfg->actors == NULL)
        return CASTY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t klen;
        const char *key = casty__toml_table_key_at(t, i, &klen);
        struct casty__toml_pos kpos = casty__toml_table_key_pos(t, i);
        struct override *o = &l->cfg->actors[i];
        l->cfg->n_actors = i + 1;
        if (klen == 0 || strlen(key) != klen)
            return fail_at(l, kpos, "empty or NUL-containing actor pattern");
        o->pattern = strndup(key, klen);
        if (o->pattern == NULL)
            return CASTY_ENOMEM;
        if (!is_plain_name(o->pattern)) {
            int err;
            PCRE2_SIZE off;
            o->re = pcre2_compile((PCRE2_SPTR)o->pattern, klen,
                                  PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &err, &off, NULL);
            if (o->re == NULL) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(err, msg, sizeof msg);
                /* The column of the offending character: the key's column,
                 * one for the opening quote, then the offset. */
                struct casty__toml_pos at = {kpos.line, kpos.col + 1 + (uint32_t)off};
                return fail_at(l, at, "invalid actor pattern \"%s\": %s (at offset %zu)",
                               o->pattern, (const char *)msg, (size_t)off);
            }
        }
        char where[300];
        snprintf(where, sizeof where, "[actors.\"%s\"]", o->pattern);
        int rc = load_settings(l, casty__toml_table_value_at(t, i), where, o);
        if (rc)
            return rc;
    }
    return 0;
}

static void builtin_defaults(casty_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->defaults.s.supervision.max_restarts = 3;
    c->defaults.s.supervision.within_seconds = 60;
    c->defaults.s.sharding.num_shards = 100;
    c->defaults.s.replication.ack_timeout_seconds = 5;
    snprintf(c->cluster.host, sizeof c->cluster.host, "127.0.0.1");
    c->cluster.port = 25520;
    c->cluster.gossip_interval_seconds = 1;
    c->cluster.heartbeat_interval_seconds = 1;
    c->cluster.availability_check_interval_seconds = 1;
    c->cluster.failure_detector = (casty_failure_detector_settings_t){8, 1000, 100, 3000, 1000};
}

static int load_tree(struct loader *l, node_t *root)
{
    static const char *const top[] = {"system", "defaults", "cluster", "actors", NULL};
    int rc = only_keys(l, root, "the file", top);
    node_t *v;
    if (rc == 0 && (v = casty__toml_table_get(root, "system")))
        rc = load_system(l, v);
    if (rc == 0 && (v = casty__toml_table_get(root, "defaults")))
        rc = load_settings(l, v, "[defaults]", &l->cfg->defaults);
    if (rc == 0 && (v = casty__toml_table_get(root, "cluster")))
        rc = load_cluster(l, v);
    if (rc == 0 && (v = casty__toml_table_get(root, "actors")))
        rc = load_actors(l, v);
    return rc;
}

/* ---- public ------------------------------------------------------------------------------ */

void casty_config_free(casty_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n_actors; i++) {
        free(cfg->actors[i].pattern);
        pcre2_code_free(cfg->actors[i].re);
    }
    free(cfg->actors);
    for (size_t i = 0; i < cfg->cluster.n_seed_nodes; i++)
        free(cfg->cluster.seed_nodes[i]);
    free(cfg->cluster.seed_nodes);
    for (size_t i = 0; i < cfg->cluster.n_roles; i++)
        free(cfg->cluster.roles[i]);
    free(cfg->cluster.roles);
    free(cfg);
}

int casty_config_parse(const char *text, size_t len, const char *name, casty_config_t **out,
                       casty_config_diag_t *diag)
{
    if (out == NULL || (text == NULL && len > 0))
        return CASTY_EINVAL;
    *out = NULL;
    if (diag)
        memset(diag, 0, sizeof *diag);
    casty_config_t *cfg = malloc(sizeof *cfg);
    if (cfg == NULL)
        return CASTY_ENOMEM;
    builtin_defaults(cfg);
    struct loader l = {cfg, diag, name ? name : "casty.toml"};
    struct casty__toml *root = NULL;
    struct casty__toml_error err;
    int rc = casty__toml_parse(text ? text : "", len, &root, &err);
    if (rc == CASTY_EINVAL)
        rc = fail_at(&l, (struct casty__toml_pos){err.line, err.col}, "%s", err.msg);
    if (rc == 0)
        rc = load_tree(&l, root);
    casty__toml_free(root);
    if (rc) {
        casty_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* Reads a whole file (at most MAX_FILE_BYTES). */
static int read_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    char *b = malloc(MAX_FILE_BYTES + 1);
    if (b == NULL) {
        fclose(f);
        return CASTY_ENOMEM;
    }
    size_t n = fread(b, 1, MAX_FILE_BYTES + 1, f);
    int rc = ferror(f) ? -EIO : n > MAX_FILE_BYTES ? CASTY_ERANGE : 0;
    fclose(f);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* The first casty.toml from the working directory upwards, or "" when none. */
static int discover(char *out, size_t cap)
{
    char dir[PATH_MAX];
    if (getcwd(dir, sizeof dir) == NULL)
        return -errno;
    for (;;) {
        int n = snprintf(out, cap, "%s/casty.toml", strcmp(dir, "/") == 0 ? "" : dir);
        struct stat st;
        if (n > 0 && (size_t)n < cap && stat(out, &st) == 0 && S_ISREG(st.st_mode))
            return 0;
        char *slash = strrchr(dir, '/');
        if (slash == NULL || strcmp(dir, "/") == 0)
            break;
        if (slash == dir)
            slash[1] = 0;
        else
            *slash = 0;
    }
    out[0] = 0;
    return 0;
}

int casty_config_load(const char *path, casty_config_t **out, casty_config_diag_t *diag)
{
    if (out == NULL)
        return CASTY_EINVAL;
    *out = NULL;
    if (diag)
        memset(diag, 0, sizeof *diag);
    char found[PATH_MAX];
    if (path == NULL) {
        int rc = discover(found, sizeof found);
        if (rc)
            return rc;
        if (found[0] == 0) /* no file anywhere: every default */
            return casty_config_parse("", 0, "(defaults)", out, diag);
        path = found;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len);
    if (rc) {
        struct loader l = {NULL, diag, path};
        fail_at(&l, (struct casty__toml_pos){0, 0}, "cannot read: %s", casty_strerror(rc));
        return rc == -ENOENT ? CASTY_ENOENT : rc;
    }
    rc = casty_config_parse(text, len, path, out, diag);
    free(text);
    if (rc == 0)
        snprintf((*out)->path, sizeof (*out)->path, "%s", path);
    return rc;
}

const char *casty_config_path(const casty_config_t *cfg)
{
    return cfg ? cfg->path : "";
}

void casty_config_system(const casty_config_t *cfg, casty_system_config_t *out)
{
    if (out == NULL)
        return;
    casty_system_config_init(out);
    if (cfg == NULL)
        return;
    if (cfg->name[0])
        out->name = cfg->name;
    out->workers = cfg->workers;
    out->throughput = cfg->throughput;
    out->file = cfg;
}

const casty_cluster_settings_t *casty_config_cluster(const casty_config_t *cfg)
{
    return cfg ? &cfg->cluster : NULL;
}

/* Copies the fields `o` sets into `s`. */
static void merge(casty_actor_settings_t *s, const struct override *o)
{
    if (o->set & SET_CAPACITY)
        s->mailbox.capacity = o->s.mailbox.capacity;
    if (o->set & SET_OVERFLOW)
        s->mailbox.overflow = o->s.mailbox.overflow;
    if (o->set & SET_SUP_ENABLED)
        s->supervision.enabled = true;
    if (o->set & SET_MAX_RESTARTS)
        s->supervision.max_restarts = o->s.supervision.max_restarts;
    if (o->set & SET_WITHIN)
        s->supervision.within_seconds = o->s.supervision.within_seconds;
    if (o->set & SET_SHARDS)
        s->sharding.num_shards = o->s.sharding.num_shards;
    if (o->set & SET_REPLICAS)
        s->replication.replicas = o->s.replication.replicas;
    if (o->set & SET_MIN_ACKS)
        s->replication.min_acks = o->s.replication.min_acks;
    if (o->set & SET_ACK_TIMEOUT)
        s->replication.ack_timeout_seconds = o->s.replication.ack_timeout_seconds;
}

static bool pattern_matches(const struct override *o, const char *name)
{
    if (o->re == NULL)
        return strcmp(o->pattern, name) == 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(o->re, NULL);
    if (md == NULL)
        return false;
    int rc = pcre2_match(o->re, (PCRE2_SPTR)name, strlen(name), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0; /* anchored at both ends: a full match */
}

void casty_config_actor(const casty_config_t *cfg, const char *name, casty_actor_settings_t *out)
{
    if (out == NULL)
        return;
    static const casty_config_t *const none = NULL;
    casty_config_t builtin;
    if (cfg == none) {
        builtin_defaults(&builtin);
        cfg = &builtin;
    }
    *out = cfg->defaults.s;
    out->supervision.enabled = (cfg->defaults.set & SET_SUP_ENABLED) != 0;
    if (name == NULL || name[0] == '_')
        return;
    for (size_t i = 0; i < cfg->n_actors; i++) {
        if (pattern_matches(&cfg->actors[i], name)) {
            merge(out, &cfg->actors[i]);
            return; /* first match in file order wins */
        }
    }
}
