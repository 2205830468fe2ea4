/* The remoting front: a system's transport state (listening socket, peers,
 * the type registry), routing casty_tell to refs of other nodes into the
 * right peer's lane, and the public remote API (lookup, address, register,
 * stats). The sockets themselves are driven by actors: lane.c (outbound)
 * and inbound.c (listener and accepted connections).
 *
 * Routing is read-mostly: every remote-enabled system of the process is on
 * one list, and each has an array of peers; both change only when a peer is
 * first met or a system starts or stops, under casty__routes_lock's write
 * side. A sender holds the read side while it hands its message to the
 * lane actor, which is what lets casty__remote_close detach a system
 * safely. The type registry is a fixed-size open-addressing table read
 * without locks (entries are published once and never move). */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <xxhash.h>

#include "atomics.h"
#include "remote_internal.h"

#define TYPES_CAP 4096u /* per system; power of two */
#define SEEN_PROBES 32u /* slots the "seen" set looks at before giving up */

pthread_rwlock_t casty__routes_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct casty_remote *remotes; /* under casty__routes_lock */

const casty_type_t casty__remote_env_type = {"casty.remote.envelope", sizeof(struct remote_env),
                                             NULL, NULL, NULL, CASTY_TYPE_LOCAL};
CASTY_MESSAGE_DEFINE(casty_remote_resolved_t);

/* ---- small helpers ---------------------------------------------------------------- */

int casty__rbuf_reserve(struct rbuf *b, uint32_t extra)
{
    if ((uint64_t)b->len + extra <= b->cap)
        return 0;
    uint64_t cap = b->cap ? b->cap : 4096;
    while (cap < (uint64_t)b->len + extra)
        cap *= 2;
    if (cap > UINT32_MAX)
        return CASTY_ENOMEM;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
        return CASTY_ENOMEM;
    b->p = p;
    b->cap = (uint32_t)cap;
    return 0;
}

void casty__rbuf_free(struct rbuf *b)
{
    free(b->p);
    *b = (struct rbuf){0};
}

void casty__remote_log(struct casty_remote *rm, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "casty: remote %s@%s:%u: %s\n", rm->sys->name, rm->host, rm->port, line);
}

int casty__parse_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *sa,
                          socklen_t *len)
{
    memset(sa, 0, sizeof *sa);
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)sa;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return 0;
    }
    char v6host[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof v6host) {
        memcpy(v6host, host + 1, n - 2);
        v6host[n - 2] = 0;
        host = v6host;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)sa;
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return 0;
    }
    return CASTY_EINVAL;
}

/* "host:port" -> host, port. The host keeps its brackets for IPv6. */
static int split_address(const char *address, char host[CASTY__WIRE_HOST_MAX + 1],
                         uint16_t *port)
{
    if (address == NULL)
        return CASTY_EINVAL;
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || (size_t)(colon - address) > CASTY__WIRE_HOST_MAX)
        return CASTY_EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == 0 || *end || p < 1 || p > 65535)
        return CASTY_EINVAL;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = 0;
    struct sockaddr_storage sa;
    socklen_t len;
    if (casty__parse_sockaddr(host, (uint16_t)p, &sa, &len))
        return CASTY_EINVAL;
    *port = (uint16_t)p;
    return 0;
}

int casty__remote_submit(struct casty_remote *rm, uint8_t op, int fd, void *buf, uint32_t len,
                         uint64_t tag, casty_ref_t reply_to)
{
    struct casty__io_req q = {.op = op, .fd = fd, .buf = buf, .len = len, .tag = tag,
                              .reply_to = reply_to};
    return casty__reactor_submit(rm->sys->reactor, &q);
}

void casty__remote_hello(struct casty_remote *rm, uint8_t lane,
                         const uint8_t nonce[CASTY__WIRE_NONCE], struct casty__wire_hello *h)
{
    memset(h, 0, sizeof *h);
    h->version = CASTY__WIRE_VERSION;
    h->lane = lane;
    h->hflags = rm->auth ? CASTY__WIRE_HELLO_AUTH : 0;
    h->node = rm->sys->node;
    h->incarnation = rm->incarnation;
    h->port = rm->port;
    memcpy(h->nonce, nonce, CASTY__WIRE_NONCE);
    snprintf(h->name, sizeof h->name, "%s", rm->sys->name);
    snprintf(h->host, sizeof h->host, "%s", rm->host);
}

/* ---- the type registry ------------------------------------------------------------ */

static uint32_t ptr_slot(const casty_type_t *type)
{
    uint64_t x = (uint64_t)(uintptr_t)type;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(x >> 40);
}

/* Lock-free: entries are written once (id first, then the type with
 * release) and never move or go away before the system. */
const casty_type_t *casty__remote_type(struct casty_remote *rm, uint64_t id)
{
    uint32_t mask = rm->types_cap - 1;
    for (uint32_t i = (uint32_t)id & mask, n = 0; n < rm->types_cap; i = (i + 1) & mask, n++) {
        const casty_type_t *t = load_acquire(&rm->types[i].type);
        if (t == NULL)
            return NULL;
        if (rm->types[i].id == id)
            return t;
    }
    return NULL;
}

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;

static int types_insert(struct casty_remote *rm, const casty_type_t *type)
{
    uint64_t id = casty_type_id(type);
    int rc = 0;
    pthread_mutex_lock(&types_lock);
    uint32_t mask = rm->types_cap - 1;
    uint32_t i = (uint32_t)id & mask, n = 0;
    for (; n < rm->types_cap; i = (i + 1) & mask, n++) {
        const casty_type_t *t = load_relaxed(&rm->types[i].type);
        if (t == NULL)
            break;
        if (rm->types[i].id == id) {
            rc = t == type ? 0 : CASTY_EEXIST;
            goto out;
        }
    }
    if (n == rm->types_cap || rm->ntypes + 1 > rm->types_cap / 2) {
        rc = CASTY_ENOMEM;
        goto out;
    }
    rm->types[i].id = id;
    store_release(&rm->types[i].type, type);
    rm->ntypes++;
out:
    pthread_mutex_unlock(&types_lock);
    return rc;
}

/* The pointer-keyed "seen" set in front of types_insert, so that noting a
 * type on every local send costs one probe. */
static bool type_seen(struct casty_remote *rm, const casty_type_t *type)
{
    uint32_t mask = rm->types_cap - 1;
    for (uint32_t i = ptr_slot(type) & mask, n = 0; n < SEEN_PROBES; i = (i + 1) & mask, n++) {
        const casty_type_t *t = load_acquire(&rm->seen[i]);
        if (t == type)
            return true;
        if (t == NULL)
            return false;
    }
    return false;
}

static void mark_seen(struct casty_remote *rm, const casty_type_t *type)
{
    uint32_t mask = rm->types_cap - 1;
    for (uint32_t i = ptr_slot(type) & mask, n = 0; n < SEEN_PROBES; i = (i + 1) & mask, n++) {
        const casty_type_t *expected = NULL;
        if (ck_pr_cas_ptr(&rm->seen[i], (void *)expected, (void *)type) ||
            load_acquire(&rm->seen[i]) == type)
            return;
    }
}

static bool serializable(const casty_type_t *type)
{
    if (type->flags & CASTY_TYPE_LOCAL)
        return false;
    if ((type->encode == NULL) != (type->decode == NULL))
        return false;
    return !(type->drop && type->encode == NULL);
}

void casty__remote_note_type(struct casty_system *sys, const casty_type_t *type)
{
    struct casty_remote *rm = sys->remote;
    if (rm == NULL || type_seen(rm, type))
        return;
    if (serializable(type) && types_insert(rm, type) == 0)
        mark_seen(rm, type);
}

int casty_register_type(casty_system_t *sys, const casty_type_t *type)
{
    if (sys == NULL || type == NULL || type->name == NULL)
        return CASTY_EINVAL;
    if (sys->remote == NULL)
        return 0;
    if (!serializable(type))
        return CASTY_ENOTSERIALIZABLE;
    int rc = types_insert(sys->remote, type);
    if (rc == 0)
        mark_seen(sys->remote, type);
    return rc;
}

/* ---- peers ---------------------------------------------------------------------------- */

/* Under the routes lock (either side). */
struct peer *casty__peer_by_node(struct casty_remote *rm, uint64_t node)
{
    for (uint32_t i = 0; i < rm->npeers; i++)
        if (rm->peers[i]->node == node)
            return rm->peers[i];
    return NULL;
}

static struct peer *peer_by_address(struct casty_remote *rm, const char *host, uint16_t port)
{
    for (uint32_t i = 0; i < rm->npeers; i++)
        if (rm->peers[i]->port == port && strcmp(rm->peers[i]->host, host) == 0)
            return rm->peers[i];
    return NULL;
}

static void peer_free(struct peer *p)
{
    for (int k = 0; k < 2; k++) {
        struct lane *l = &p->lanes[k];
        if (l->fd >= 0)
            close(l->fd);
        casty__rbuf_free(&l->hs);
        casty__rbuf_free(&l->out);
        casty__rbuf_free(&l->wbuf);
        casty__rbuf_free(&l->in);
        free(l->pend);
    }
    free(p);
}

/* Under the write side of the routes lock. */
static int peer_create(struct casty_remote *rm, const char *host, uint16_t port,
                       struct peer **out)
{
    if (rm->npeers == rm->peers_cap) {
        uint32_t cap = rm->peers_cap ? rm->peers_cap * 2 : 8;
        struct peer **peers = realloc(rm->peers, cap * sizeof *peers);
        if (peers == NULL)
            return CASTY_ENOMEM;
        rm->peers = peers;
        rm->peers_cap = cap;
    }
    struct peer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return CASTY_ENOMEM;
    p->rm = rm;
    snprintf(p->host, sizeof p->host, "%s", host);
    p->port = port;
    for (int k = 0; k < 2; k++) {
        struct lane *l = &p->lanes[k];
        l->rm = rm;
        l->peer = p;
        l->kind = (uint8_t)k;
        l->fd = -1;
        l->state = LANE_IDLE;
        l->backoff_ms = REMOTE_BACKOFF_MIN_MS;
        if (casty__parse_sockaddr(host, port, &l->sa, &l->sa_len)) {
            free(p);
            return CASTY_EINVAL;
        }
    }
    for (int k = 0; k < 2; k++) {
        casty_behavior_t *b = casty__lane_behavior(&p->lanes[k]);
        int rc = b ? casty__spawn_internal(rm->sys, b, NULL, &p->lane_refs[k]) : CASTY_ENOMEM;
        if (rc) {
            if (k == 1)
                casty_stop(p->lane_refs[0]);
            /* A lane actor that started may still run: keep the peer, with
             * no address and no node, until the system frees it. */
            p->port = 0;
            p->host[0] = 0;
            rm->peers[rm->npeers++] = p;
            return rc;
        }
    }
    rm->peers[rm->npeers++] = p;
    *out = p;
    return 0;
}

int casty__peer_for_address(struct casty_remote *rm, const char *host, uint16_t port,
                            struct peer **out)
{
    pthread_rwlock_rdlock(&casty__routes_lock);
    struct peer *p = peer_by_address(rm, host, port);
    pthread_rwlock_unlock(&casty__routes_lock);
    if (p) {
        *out = p;
        return 0;
    }
    int rc = 0;
    pthread_rwlock_wrlock(&casty__routes_lock);
    p = peer_by_address(rm, host, port);
    if (p == NULL)
        rc = load_acquire(&rm->closing) ? CASTY_ESHUTDOWN : peer_create(rm, host, port, &p);
    pthread_rwlock_unlock(&casty__routes_lock);
    *out = p;
    return rc;
}

void casty__peer_learn(struct casty_remote *rm, struct peer *p, uint64_t node,
                       uint64_t incarnation)
{
    pthread_rwlock_rdlock(&casty__routes_lock);
    bool same = p->node == node;
    pthread_rwlock_unlock(&casty__routes_lock);
    if (same)
        return;
    pthread_rwlock_wrlock(&casty__routes_lock);
    if (p->node != 0 && p->node != node)
        rm->retired[rm->nretired++ % REMOTE_RETIRED] = p->node;
    p->node = node;
    p->incarnation = incarnation;
    pthread_rwlock_unlock(&casty__routes_lock);
}

void casty__remote_learn_address(struct casty_remote *rm, const char *host, uint16_t port,
                                 uint64_t node, uint64_t incarnation)
{
    struct peer *p;
    if (casty__peer_for_address(rm, host, port, &p) == 0)
        casty__peer_learn(rm, p, node, incarnation);
}

/* ---- sending to another node ---------------------------------------------------------- */

static struct remote_env *encode_user(struct casty_remote *rm, casty_ref_t to,
                                      const casty_type_t *type, const void *value, int *rc)
{
    const uint32_t prefix = CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED;
    const size_t most = rm->max_frame - prefix; /* the largest value a frame carries */
    size_t room;
    if (type->encode == NULL) {
        if (type->size > most) {
            *rc = CASTY_EMSGSIZE;
            return NULL;
        }
        room = type->size;
    } else {
        room = type->size * 2 + 64 < most ? type->size * 2 + 64 : most;
    }
    for (;;) {
        struct remote_env *env = malloc(sizeof *env + prefix + room);
        if (env == NULL) {
            *rc = CASTY_ENOMEM;
            return NULL;
        }
        long n;
        if (type->encode) {
            n = type->encode(value, env->frame + prefix, room);
        } else {
            n = (long)type->size;
            if (n)
                memcpy(env->frame + prefix, value, (size_t)n);
        }
        if (n == CASTY_ENOSPC && room < most) {
            free(env);
            room = room * 2 < most ? room * 2 : most;
            continue;
        }
        if (n < 0 || (size_t)n > room) {
            free(env);
            /* ENOSPC at the largest frame: too large; an encoder claiming
             * more than it was given is broken. */
            *rc = n == CASTY_ENOSPC ? CASTY_EMSGSIZE : n < 0 ? (int)n : CASTY_EPROTO;
            return NULL;
        }
        long hn = casty__wire_encode_user_prefix(env->frame, prefix + (size_t)n, to.actor,
                                                 casty_type_id(type), (uint32_t)n);
        if (hn != (long)prefix + n) { /* the frame's whole size */
            free(env);
            *rc = hn < 0 ? (int)hn : CASTY_EPROTO;
            return NULL;
        }
        env->node = to.node;
        env->actor = to.actor;
        env->type = type;
        env->reply_to = CASTY_REF_NONE;
        env->tag = 0;
        env->kind = ENV_USER;
        env->len = prefix + (uint32_t)n;
        return env;
    }
}

static void drop_heap(const casty_type_t *type, void *heap_value)
{
    if (heap_value) {
        if (type->drop)
            type->drop(heap_value);
        free(heap_value);
    }
}

/* A copy-in send that was accepted owns what the value owned (the local
 * path drops its copy after delivery): the bytes went out encoded, so drop
 * a copy of the caller's value now. */
static void drop_copy(const casty_type_t *type, const void *value)
{
    if (type->drop == NULL || type->size == 0)
        return;
    void *copy = malloc(type->size);
    if (copy == NULL)
        return; /* cannot happen for real types; leaks rather than corrupts */
    memcpy(copy, value, type->size);
    type->drop(copy);
    free(copy);
}

/* A node that an address's peer had before it restarted (under the routes
 * lock). */
static bool retired(const struct casty_remote *rm, uint64_t node)
{
    for (uint32_t i = 0; i < REMOTE_RETIRED; i++)
        if (rm->retired[i] == node)
            return true;
    return false;
}

bool casty__remote_knows(uint64_t node, bool *gone)
{
    bool known = false;
    *gone = false;
    pthread_rwlock_rdlock(&casty__routes_lock);
    for (struct casty_remote *r = remotes; r && !known; r = r->next_remote) {
        if (casty__peer_by_node(r, node))
            known = true;
        else if (retired(r, node))
            known = *gone = true;
    }
    pthread_rwlock_unlock(&casty__routes_lock);
    return known;
}

int casty__remote_tell(struct casty_system *via, casty_ref_t to, const casty_type_t *type,
                       const void *value, void *heap_value, bool any)
{
    pthread_rwlock_rdlock(&casty__routes_lock);
    struct casty_remote *rm = NULL;
    struct peer *p = NULL;
    if (via && via->remote && !load_acquire(&via->remote->closing)) {
        rm = via->remote;
        p = casty__peer_by_node(rm, to.node);
    }
    for (struct casty_remote *r = remotes; p == NULL && any && r; r = r->next_remote) {
        if ((p = casty__peer_by_node(r, to.node)) != NULL)
            rm = r;
    }
    if (p == NULL) {
        /* A node that was replaced by a restart at its address: its actors
         * are gone, so this is a dead letter (of the system that knew it). */
        struct casty_remote *knew = NULL;
        if (via && via->remote && retired(via->remote, to.node))
            knew = via->remote;
        for (struct casty_remote *r = remotes; knew == NULL && any && r; r = r->next_remote)
            if (retired(r, to.node))
                knew = r;
        if (knew) {
            casty__note_dead_letter(knew->sys, type, to);
            pthread_rwlock_unlock(&casty__routes_lock);
            drop_heap(type, heap_value);
            if (heap_value == NULL)
                drop_copy(type, value);
            return 0;
        }
        pthread_rwlock_unlock(&casty__routes_lock);
        if (!any)
            return 1;
        drop_heap(type, heap_value);
        return CASTY_ESHUTDOWN;
    }
    int rc = 0;
    if (!serializable(type)) {
        rc = CASTY_ENOTSERIALIZABLE;
        goto out;
    }
    struct remote_env *env = encode_user(rm, to, type, heap_value ? heap_value : value, &rc);
    if (env == NULL)
        goto out;
    if (load_acquire(&p->gated) ||
        ck_pr_faa_32(&p->queued, 1) >= rm->peer_queue) {
        if (!load_acquire(&p->gated))
            ck_pr_dec_32(&p->queued);
        free(env);
        casty__note_dead_letter(rm->sys, type, to);
        goto out;
    }
    rc = casty__deliver(rm->sys, p->lane_refs[CASTY__WIRE_LANE_USER], &casty__remote_env_type,
                        NULL, env);
    if (rc)
        ck_pr_dec_32(&p->queued);
    else if (!type_seen(rm, type))
        casty__remote_note_type(rm->sys, type);
out:
    pthread_rwlock_unlock(&casty__routes_lock);
    drop_heap(type, heap_value); /* encoded, or refused: tell_move consumes in every case */
    if (rc == 0 && heap_value == NULL)
        drop_copy(type, value); /* accepted: consumed, as a local casty_tell's copy is */
    return rc;
}

/* ---- lookup ------------------------------------------------------------------------------ */

int casty_remote_lookup_async(casty_system_t *sys, const char *address, const char *path,
                              casty_ref_t reply_to, uint64_t tag)
{
    if (sys == NULL || sys->remote == NULL || path == NULL || path[0] != '/' ||
        strlen(path) > CASTY__WIRE_PATH_MAX)
        return CASTY_EINVAL;
    struct casty_remote *rm = sys->remote;
    char host[CASTY__WIRE_HOST_MAX + 1];
    uint16_t port;
    int rc = split_address(address, host, &port);
    if (rc)
        return rc;
    struct peer *p;
    rc = casty__peer_for_address(rm, host, port, &p);
    if (rc)
        return rc;
    struct casty__wire_resolve r = {.reply_node = reply_to.node, .reply_actor = reply_to.actor,
                                    .tag = tag};
    snprintf(r.path, sizeof r.path, "%s", path);
    uint32_t cap = CASTY__WIRE_HEADER + CASTY__WIRE_RESOLVE_FIXED + CASTY__WIRE_PATH_MAX;
    struct remote_env *env = malloc(sizeof *env + cap);
    if (env == NULL)
        return CASTY_ENOMEM;
    long n = casty__wire_encode_resolve(env->frame, cap, &r);
    if (n < 0) {
        free(env);
        return (int)n;
    }
    env->node = 0;
    env->actor = 0;
    env->type = NULL;
    env->reply_to = reply_to;
    env->tag = tag;
    env->kind = ENV_RESOLVE;
    env->len = (uint32_t)n;
    return casty_tell_move(p->lane_refs[CASTY__WIRE_LANE_CONTROL], &casty__remote_env_type, env);
}

struct lookup_req {
    casty_system_t *sys;
    const char *address, *path;
};

static int send_lookup(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)target;
    struct lookup_req *q = arg;
    return casty_remote_lookup_async(q->sys, q->address, q->path, reply_to, 0);
}

int casty_remote_lookup(casty_system_t *sys, const char *address, const char *path,
                        uint64_t timeout_ms, casty_ref_t *out)
{
    if (sys == NULL || sys->remote == NULL || out == NULL)
        return CASTY_EINVAL;
    struct lookup_req q = {sys, address, path};
    casty_msg_t *reply = NULL;
    int rc = casty_ask(sys, CASTY_REF_NONE, send_lookup, &q, timeout_ms, &reply);
    if (rc)
        return rc;
    const casty_remote_resolved_t *r = casty_msg_as(reply, casty_remote_resolved_t);
    rc = r ? r->rc : CASTY_EPROTO;
    if (rc == 0)
        *out = r->ref;
    casty_msg_free(reply);
    return rc;
}

/* ---- address, stats -------------------------------------------------------------------- */

void casty_remote_config_init(casty_remote_config_t *config)
{
    if (config)
        memset(config, 0, sizeof *config);
}

int casty_system_address(const casty_system_t *sys, char *host, size_t host_len, uint16_t *port)
{
    if (sys == NULL || sys->remote == NULL)
        return CASTY_EINVAL;
    if (host) {
        if (strlen(sys->remote->host) >= host_len)
            return CASTY_ENOSPC;
        strcpy(host, sys->remote->host);
    }
    if (port)
        *port = sys->remote->port;
    return 0;
}

void casty_remote_stats(const casty_system_t *sys, casty_remote_stats_t *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (sys == NULL || sys->remote == NULL)
        return;
    const casty_remote_stats_t *s = &sys->remote->stats;
    out->messages_sent = load_relaxed(&s->messages_sent);
    out->messages_received = load_relaxed(&s->messages_received);
    out->bytes_sent = load_relaxed(&s->bytes_sent);
    out->bytes_received = load_relaxed(&s->bytes_received);
    out->connections_accepted = load_relaxed(&s->connections_accepted);
    out->connections_refused = load_relaxed(&s->connections_refused);
    out->protocol_errors = load_relaxed(&s->protocol_errors);
    out->unknown_types = load_relaxed(&s->unknown_types);
}

/* ---- start / close / free ------------------------------------------------------------- */

static int listen_socket(struct casty_remote *rm)
{
    struct sockaddr_storage sa;
    socklen_t len;
    if (casty__parse_sockaddr(rm->host, rm->port, &sa, &len))
        return CASTY_EINVAL;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 512) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        rm->port = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)(void *)&sa)->sin_port
                                                 : ((struct sockaddr_in6 *)(void *)&sa)->sin6_port);
    rm->listen_fd = fd;
    return 0;
}

int casty__remote_start(struct casty_system *sys, const casty_remote_config_t *config,
                        const struct casty_config *file)
{
    const casty_cluster_settings_t *cluster = file ? casty_config_cluster(file) : NULL;
    const char *host = config->host ? config->host
                       : cluster && cluster->host[0] ? cluster->host
                                                      : "127.0.0.1";
    const char *secret = config->secret ? config->secret
                         : cluster && cluster->secret[0] ? cluster->secret
                                                          : NULL;
    uint32_t max_frame = config->max_frame ? config->max_frame : CASTY__WIRE_DEFAULT_MAX_FRAME;
    if (strlen(host) > CASTY__WIRE_HOST_MAX || max_frame < CASTY__WIRE_MIN_FRAME ||
        (secret && secret[0] == 0))
        return CASTY_EINVAL;
    struct casty_remote *rm = calloc(1, sizeof *rm);
    if (rm == NULL)
        return CASTY_ENOMEM;
    rm->types_cap = TYPES_CAP;
    rm->types = calloc(TYPES_CAP, sizeof *rm->types);
    rm->seen = calloc(TYPES_CAP, sizeof *rm->seen);
    if (rm->types == NULL || rm->seen == NULL) {
        free(rm->types);
        free(rm->seen);
        free(rm);
        return CASTY_ENOMEM;
    }
    rm->sys = sys;
    rm->listen_fd = -1;
    snprintf(rm->host, sizeof rm->host, "%s", host);
    rm->port = config->port;
    rm->max_frame = max_frame;
    rm->peer_queue = config->peer_queue ? config->peer_queue : REMOTE_DEFAULT_PEER_QUEUE;
    if (getrandom(&rm->incarnation, sizeof rm->incarnation, 0) != (ssize_t)sizeof rm->incarnation)
        rm->incarnation = sys->node * 0x9e3779b97f4a7c15ull;
    if (secret) {
        rm->auth = true;
        casty__wire_key_from_secret(secret, rm->key);
    }
    pthread_mutex_init(&rm->conns_lock, NULL);
    sys->remote = rm;
    types_insert(rm, &casty_remote_resolved_t_type);
    int rc = listen_socket(rm);
    if (rc == 0) {
        casty_behavior_t *b = casty__listener_behavior(rm);
        rc = b ? casty__spawn_internal(sys, b, NULL, &rm->listener) : CASTY_ENOMEM;
    }
    if (rc) {
        casty__remote_free(sys);
        return rc;
    }
    pthread_rwlock_wrlock(&casty__routes_lock);
    rm->next_remote = remotes;
    remotes = rm;
    pthread_rwlock_unlock(&casty__routes_lock);
    return 0;
}

/* True while some reachable peer still has messages not yet written. */
static bool unsent(struct casty_remote *rm)
{
    bool busy = false;
    pthread_rwlock_rdlock(&casty__routes_lock);
    for (uint32_t i = 0; i < rm->npeers && !busy; i++)
        busy = load_acquire(&rm->peers[i]->queued) != 0 && !load_acquire(&rm->peers[i]->gated);
    pthread_rwlock_unlock(&casty__routes_lock);
    return busy;
}

void casty__remote_close(struct casty_system *sys)
{
    struct casty_remote *rm = sys->remote;
    if (rm == NULL)
        return;
    /* What actors sent before shutdown began (a last reply, typically) gets
     * a bounded chance to reach the sockets before the lanes stop. */
    uint64_t deadline = casty__reactor_now_ns() + (uint64_t)REMOTE_DRAIN_MS * 1000000u;
    while (!load_acquire(&rm->closing) && unsent(rm) && casty__reactor_now_ns() < deadline) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    pthread_rwlock_wrlock(&casty__routes_lock);
    store_release(&rm->closing, 1u);
    for (struct casty_remote **pp = &remotes; *pp; pp = &(*pp)->next_remote) {
        if (*pp == rm) {
            *pp = rm->next_remote;
            break;
        }
    }
    pthread_rwlock_unlock(&casty__routes_lock);
    if (rm->listen_fd >= 0)
        shutdown(rm->listen_fd, SHUT_RDWR);
}

void casty__remote_free(struct casty_system *sys)
{
    struct casty_remote *rm = sys->remote;
    if (rm == NULL)
        return;
    casty__remote_close(sys);
    for (uint32_t i = 0; i < rm->npeers; i++)
        peer_free(rm->peers[i]);
    free(rm->peers);
    for (struct conn *c = rm->conns, *next; c; c = next) {
        next = c->next;
        casty__conn_free(c);
    }
    if (rm->listen_fd >= 0)
        close(rm->listen_fd);
    pthread_mutex_destroy(&rm->conns_lock);
    free(rm->types);
    free(rm->seen);
    sodium_memzero(rm->key, sizeof rm->key);
    free(rm);
    sys->remote = NULL;
}
