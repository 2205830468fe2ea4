/* The outbound side of remoting: one actor per peer and lane (user,
 * control) that owns a TCP connection to that peer. It connects on the
 * first frame, runs the connecting half of the handshake (HELLO, WELCOME,
 * AUTH), writes frames in batches (what is in its mailbox when it flushes,
 * plus everything that arrived while a previous send was in flight), and
 * after a failure reconnects with exponential backoff. Frames wait in `out`
 * while the connection is down, bounded by the peer's queue limit
 * (remote.c counts them in); after REMOTE_GATE_AFTER_FAILURES failed
 * connects the peer is gated: what waits becomes dead letters and so does
 * what is sent to it until a connect succeeds.
 *
 * Connect, receive and every write that would block are io_uring requests
 * on the reactor, completed as casty__io_done_t messages. A write the
 * socket takes at once is made right here with a non-blocking send(2):
 * going through the reactor thread would add a thread wake-up to every
 * message's latency (bench/remote ask round trips, p50: 268 us with every
 * write on io_uring, 153 us with this).
 *
 * A connection's requests are all finished before the next connection
 * starts (state LANE_CLOSING waits for them), so a buffer is never reused
 * while the kernel may still read it. */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "atomics.h"
#include "remote_internal.h"

enum { OP_CONNECT = 1, OP_SEND = 2, OP_RECV = 3, OP_TIMER = 4, OP_DEADLINE = 5 };

/* "Write what has been appended": a lane's message to itself. */
static const casty_type_t lane_flush_type = {"casty.remote.flush", 0, NULL, NULL, NULL,
                                             CASTY_TYPE_LOCAL};
#define TAG(gen, op) ((uint64_t)(gen) << 8 | (uint64_t)(op))
#define RECV_MIN_ROOM 4096u

static void lane_failed(struct lane *l, int err);

static casty_ref_t ref_of(uint64_t node, uint64_t actor)
{
    return (casty_ref_t){node, actor};
}

/* ---- the frames waiting in `out` --------------------------------------------------- */

static int out_append(struct lane *l, const struct remote_env *env)
{
    if (l->npend == l->pend_cap) {
        uint32_t cap = l->pend_cap ? l->pend_cap * 2 : 64;
        struct pending *pend = realloc(l->pend, cap * sizeof *pend);
        if (pend == NULL)
            return CASTY_ENOMEM;
        l->pend = pend;
        l->pend_cap = cap;
    }
    int rc = casty__rbuf_reserve(&l->out, env->len);
    if (rc)
        return rc;
    l->pend[l->npend++] = (struct pending){
        .node = env->node, .actor = env->actor, .tag = env->tag, .type = env->type,
        .reply_to = env->reply_to, .off = l->out.len, .len = env->len, .kind = env->kind};
    memcpy(l->out.p + l->out.len, env->frame, env->len);
    l->out.len += env->len;
    return 0;
}

static void answer_resolve(const struct pending *pe, int rc)
{
    casty_remote_resolved_t r = {.ref = CASTY_REF_NONE, .rc = rc, .tag = pe->tag};
    casty_tell(pe->reply_to, &casty_remote_resolved_t_type, &r);
}

/* Drops the waiting frames `keep` says no to: a user message becomes a dead
 * letter, a lookup gets `resolve_rc` (or is kept when that is 0). */
static void out_purge(struct lane *l, bool (*keep)(const struct lane *, const struct pending *),
                      int resolve_rc)
{
    uint32_t w = 0, dst = 0;
    for (uint32_t i = 0; i < l->npend; i++) {
        struct pending pe = l->pend[i];
        bool k = pe.kind == ENV_RESOLVE ? resolve_rc == 0 : keep(l, &pe);
        if (!k) {
            if (pe.kind == ENV_USER) {
                ck_pr_dec_32(&l->peer->queued);
                casty__note_dead_letter(l->rm->sys, pe.type, ref_of(pe.node, pe.actor));
            } else {
                answer_resolve(&pe, resolve_rc);
            }
            continue;
        }
        if (dst != pe.off)
            memmove(l->out.p + dst, l->out.p + pe.off, pe.len);
        pe.off = dst;
        dst += pe.len;
        l->pend[w++] = pe;
    }
    l->npend = w;
    l->out.len = dst;
}

static bool keep_none(const struct lane *l, const struct pending *pe)
{
    (void)l;
    (void)pe;
    return false;
}

/* After a handshake: frames addressed to an earlier incarnation of the
 * peer must not reach the new one (its actor ids mean other actors). */
static bool keep_current_node(const struct lane *l, const struct pending *pe)
{
    return pe->node == l->conn_node;
}

/* ---- sending -------------------------------------------------------------------------- */

static void swap_buf(struct rbuf *a, struct rbuf *b)
{
    struct rbuf t = *a;
    *a = *b;
    *b = t;
}

/* Writes what the socket takes now without blocking (MSG_DONTWAIT) and
 * returns true when all of wbuf went; false when the rest must wait for
 * io_uring (the socket is full) or the connection failed. */
static bool write_now(struct lane *l)
{
    while (l->woff < l->wbuf.len) {
        ssize_t n = send(l->fd, l->wbuf.p + l->woff, l->wbuf.len - l->woff,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            STAT_ADD(l->rm, bytes_sent, n);
            l->woff += (uint32_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            lane_failed(l, -errno);
        return false;
    }
    return true;
}

static void wbuf_done(struct lane *l)
{
    STAT_ADD(l->rm, messages_sent, l->wframes);
    if (l->wframes)
        ck_pr_sub_32(&l->peer->queued, l->wframes);
    l->wbuf.len = 0;
    l->woff = 0;
    l->wframes = 0;
}

static void start_send(struct lane *l)
{
again:
    if (l->sending || l->fd < 0 || l->state == LANE_CLOSING)
        return;
    if (l->wbuf.len == 0) {
        if (l->hs.len) {
            swap_buf(&l->hs, &l->wbuf);
            l->wframes = 0;
        } else if (l->state == LANE_UP && l->out.len) {
            uint32_t users = 0;
            for (uint32_t i = 0; i < l->npend; i++)
                users += l->pend[i].kind == ENV_USER;
            swap_buf(&l->out, &l->wbuf);
            l->npend = 0;
            l->wframes = users; /* still counted in queued until written */
        } else {
            return;
        }
        l->woff = 0;
    }
    /* The common case, a socket with room, is written here on the worker:
     * handing it to the reactor thread would cost a thread wake-up on
     * every message's way (the round-trip latency). What does not fit
     * waits for an io_uring send; nothing here ever blocks. */
    if (write_now(l)) {
        wbuf_done(l);
        goto again;
    }
    if (l->state == LANE_CLOSING)
        return;
    int rc = casty__remote_submit(l->rm, CASTY_IO_SEND, l->fd, l->wbuf.p + l->woff,
                                  l->wbuf.len - l->woff, TAG(l->gen, OP_SEND), l->self);
    if (rc) {
        lane_failed(l, rc);
        return;
    }
    l->sending = true;
    l->ops++;
}

static void post_recv(struct lane *l)
{
    if (casty__rbuf_reserve(&l->in, RECV_MIN_ROOM)) {
        lane_failed(l, CASTY_ENOMEM);
        return;
    }
    int rc = casty__remote_submit(l->rm, CASTY_IO_RECV, l->fd, l->in.p + l->in.len,
                                  l->in.cap - l->in.len, TAG(l->gen, OP_RECV), l->self);
    if (rc) {
        lane_failed(l, rc);
        return;
    }
    l->ops++;
}

/* ---- connecting ----------------------------------------------------------------------- */

static void start_connect(struct lane *l)
{
    int fd = socket(l->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        l->fd = -1;
        l->state = LANE_CONNECTING;
        lane_failed(l, -errno);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    l->fd = fd;
    l->gen++;
    l->state = LANE_CONNECTING;
    l->hs.len = l->wbuf.len = l->in.len = 0;
    l->woff = 0;
    int rc = casty__remote_submit(l->rm, CASTY_IO_CONNECT, fd, &l->sa, (uint32_t)l->sa_len,
                                  TAG(l->gen, OP_CONNECT), l->self);
    if (rc) {
        lane_failed(l, rc);
        return;
    }
    l->ops++;
    /* A peer that never answers (a blackholed address, a frozen process,
     * something else listening there) must not hold what waits for it:
     * the connection has REMOTE_HANDSHAKE_MS to come up. Not counted in
     * ops: a deadline of an older connection is recognised by its gen. */
    struct casty__io_req q = {.op = CASTY_IO_TIMEOUT, .fd = -1,
                              .timeout_ns = (uint64_t)REMOTE_HANDSHAKE_MS * 1000000u,
                              .tag = TAG(l->gen, OP_DEADLINE), .reply_to = l->self};
    casty__reactor_submit(l->rm->sys->reactor, &q);
}

static void send_hello(struct lane *l)
{
    struct casty__wire_hello h;
    casty__wire_random_nonce(l->nonce);
    casty__remote_hello(l->rm, l->kind, l->nonce, &h);
    uint32_t room = CASTY__WIRE_HEADER + CASTY__WIRE_HELLO_FIXED + CASTY__WIRE_NAME_MAX +
                    CASTY__WIRE_HOST_MAX;
    if (casty__rbuf_reserve(&l->hs, room)) {
        lane_failed(l, CASTY_ENOMEM);
        return;
    }
    long n = casty__wire_encode_hello(l->hs.p + l->hs.len, room, CASTY__WIRE_HELLO, &h);
    if (n < 0) {
        lane_failed(l, (int)n);
        return;
    }
    l->hs.len += (uint32_t)n;
    l->state = LANE_HANDSHAKE;
    post_recv(l);
    start_send(l);
}

/* The peer is gated when its user lane gives up; any lane that completes a
 * handshake opens the gate again (the node is back). */
static void set_gated(struct lane *l, bool gated)
{
    l->gated = gated;
    if (l->kind == CASTY__WIRE_LANE_USER || !gated)
        store_release(&l->peer->gated, gated ? 1u : 0u);
}

/* ---- the peer's answers --------------------------------------------------------------- */

static int refusal_error(uint16_t code)
{
    return code == CASTY__WIRE_REFUSE_AUTH ? CASTY_EACCES : CASTY_ECONNREFUSED;
}

static void refused(struct lane *l, int err, const char *why)
{
    casty__remote_log(l->rm, "connection to %s:%u refused: %s", l->peer->host, l->peer->port,
                      why);
    STAT_ADD(l->rm, connections_refused, 1);
    l->refused = err;
    lane_failed(l, err);
}

static void on_welcome(struct lane *l, const struct casty__wire_frame *f)
{
    struct casty_remote *rm = l->rm;
    struct casty__wire_hello h;
    char why[160];
    if (casty__wire_decode_hello(f, &h) != 0) {
        refused(l, CASTY_EPROTO, "malformed WELCOME");
        return;
    }
    if (h.version != CASTY__WIRE_VERSION) {
        snprintf(why, sizeof why, "peer speaks protocol version %u, this node %u", h.version,
                 CASTY__WIRE_VERSION);
        refused(l, CASTY_ECONNREFUSED, why);
        return;
    }
    if (strcmp(h.name, rm->sys->name) != 0) {
        snprintf(why, sizeof why, "peer system is \"%s\", this one \"%s\"", h.name,
                 rm->sys->name);
        refused(l, CASTY_ECONNREFUSED, why);
        return;
    }
    if (!rm->auth != !(h.hflags & CASTY__WIRE_HELLO_AUTH)) {
        refused(l, CASTY_EACCES,
                rm->auth ? "peer has no secret, this node requires one"
                         : "peer requires a secret, this node has none");
        return;
    }
    if (rm->auth) {
        if (!casty__wire_mac_ok(rm->key, CASTY__WIRE_ROLE_WELCOME, l->nonce, h.nonce, h.mac)) {
            refused(l, CASTY_EACCES, "peer failed to prove the shared secret");
            return;
        }
        uint8_t mac[CASTY__WIRE_MAC];
        casty__wire_mac(rm->key, CASTY__WIRE_ROLE_AUTH, h.nonce, l->nonce, mac);
        uint32_t room = CASTY__WIRE_HEADER + CASTY__WIRE_MAC;
        if (casty__rbuf_reserve(&l->hs, room)) {
            lane_failed(l, CASTY_ENOMEM);
            return;
        }
        l->hs.len += (uint32_t)casty__wire_encode_auth(l->hs.p + l->hs.len, room, mac);
    }
    l->conn_node = h.node;
    casty__peer_learn(rm, l->peer, h.node, h.incarnation);
    l->state = LANE_UP;
    l->failures = 0;
    l->refused = 0;
    l->backoff_ms = REMOTE_BACKOFF_MIN_MS;
    set_gated(l, false);
    out_purge(l, keep_current_node, 0);
    start_send(l);
}

/* Parses what arrived; returns false when the connection failed. */
static bool parse_in(struct lane *l)
{
    uint32_t off = 0;
    bool ok = true;
    while (ok) {
        struct casty__wire_frame f;
        long n = casty__wire_next(l->in.p + off, l->in.len - off, l->rm->max_frame, &f);
        if (n == 0)
            break;
        if (n < 0) {
            casty__remote_log(l->rm, "bad frame from %s:%u: %s; closing", l->peer->host,
                              l->peer->port, casty_strerror((int)n));
            STAT_ADD(l->rm, protocol_errors, 1);
            lane_failed(l, (int)n);
            return false;
        }
        off += (uint32_t)n;
        if (f.kind == CASTY__WIRE_REFUSE) {
            uint16_t code = 0;
            char text[CASTY__WIRE_TEXT_MAX + 1] = "";
            casty__wire_decode_refuse(&f, &code, text);
            refused(l, refusal_error(code), text[0] ? text : "no reason given");
            return false;
        }
        if (l->state == LANE_HANDSHAKE && f.kind == CASTY__WIRE_WELCOME) {
            on_welcome(l, &f);
            ok = l->state == LANE_UP;
        } else if (l->state == LANE_UP && f.kind == CASTY__WIRE_HEARTBEAT_ACK) {
            /* reserved for the failure detector */
        } else {
            casty__remote_log(l->rm, "unexpected frame kind %u from %s:%u; closing", f.kind,
                              l->peer->host, l->peer->port);
            STAT_ADD(l->rm, protocol_errors, 1);
            lane_failed(l, CASTY_EPROTO);
            return false;
        }
    }
    if (!ok)
        return false;
    memmove(l->in.p, l->in.p + off, l->in.len - off);
    l->in.len -= off;
    return true;
}

/* ---- failure, close, backoff ---------------------------------------------------------- */

static void finish_close(struct lane *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    l->sending = false;
    l->hs.len = l->wbuf.len = l->in.len = 0;
    l->woff = 0;
    if (l->wframes) /* lost with the connection: at-most-once */
        ck_pr_sub_32(&l->peer->queued, l->wframes);
    l->wframes = 0;
    l->failures++;
    if (l->refused) {
        /* A refusal is a configuration mismatch: nothing waiting can go. */
        out_purge(l, keep_none, l->refused);
    } else if (l->failures >= REMOTE_GATE_AFTER_FAILURES) {
        if (!l->gated)
            casty__remote_log(l->rm, "%s:%u unreachable after %u attempts; dropping its messages",
                              l->peer->host, l->peer->port, l->failures);
        set_gated(l, true);
        out_purge(l, keep_none, 0);
    }
    l->state = LANE_BACKOFF;
    uint32_t ms = l->backoff_ms;
    l->backoff_ms = ms * 2 > REMOTE_BACKOFF_MAX_MS ? REMOTE_BACKOFF_MAX_MS : ms * 2;
    struct casty__io_req q = {.op = CASTY_IO_TIMEOUT, .fd = -1, .timeout_ns = (uint64_t)ms * 1000000u,
                              .tag = TAG(l->gen, OP_TIMER), .reply_to = l->self};
    if (casty__reactor_submit(l->rm->sys->reactor, &q) != 0)
        l->state = LANE_IDLE; /* shutting down: the next frame retries */
}

/* The connection is lost (or never came up): what was being written is
 * lost with it (at-most-once); what waits in `out` stays for the next one. */
static void lane_failed(struct lane *l, int err)
{
    (void)err;
    if (l->state == LANE_CLOSING || l->state == LANE_BACKOFF || l->state == LANE_IDLE)
        return;
    l->state = LANE_CLOSING;
    if (l->fd >= 0)
        shutdown(l->fd, SHUT_RDWR);
    if (l->ops == 0)
        finish_close(l);
}

/* ---- the actor ------------------------------------------------------------------------- */

static void on_io(struct lane *l, const casty__io_done_t *d)
{
    uint32_t gen = (uint32_t)(d->tag >> 8);
    uint8_t op = (uint8_t)(d->tag & 0xff);
    if (op == OP_DEADLINE) {
        if (gen == l->gen && (l->state == LANE_CONNECTING || l->state == LANE_HANDSHAKE)) {
            casty__remote_log(l->rm, "connection to %s:%u not up after %u ms; closing",
                              l->peer->host, l->peer->port, REMOTE_HANDSHAKE_MS);
            lane_failed(l, CASTY_ETIMEDOUT);
        }
        return;
    }
    if (op == OP_TIMER) {
        if (gen != l->gen || l->state != LANE_BACKOFF)
            return;
        l->state = LANE_IDLE;
        if (l->out.len || l->gated)
            start_connect(l);
        return;
    }
    l->ops--;
    if (l->state == LANE_CLOSING) {
        if (l->ops == 0)
            finish_close(l);
        return;
    }
    switch (op) {
    case OP_CONNECT:
        if (d->res < 0)
            lane_failed(l, d->res);
        else
            send_hello(l);
        break;
    case OP_SEND:
        l->sending = false;
        if (d->res < 0) {
            lane_failed(l, d->res);
            break;
        }
        STAT_ADD(l->rm, bytes_sent, d->res);
        l->woff += (uint32_t)d->res;
        if (l->woff >= l->wbuf.len)
            wbuf_done(l);
        start_send(l);
        break;
    case OP_RECV:
        if (d->res <= 0) {
            lane_failed(l, d->res < 0 ? d->res : -ECONNRESET);
            break;
        }
        l->in.len += (uint32_t)d->res;
        if (parse_in(l))
            post_recv(l);
        break;
    default:
        break;
    }
}

static void on_env(struct lane *l, const struct remote_env *env)
{
    if (env->kind == ENV_USER) {
        /* (A gated peer's messages are turned away by casty__remote_tell;
         * one that got here was sent before the gate closed or after
         * another lane reopened it: it waits for the next attempt.) */
        uint64_t node = l->state == LANE_UP ? l->conn_node : 0;
        if (node != 0 && env->node != node) {
            ck_pr_dec_32(&l->peer->queued);
            casty__note_dead_letter(l->rm->sys, env->type, ref_of(env->node, env->actor));
            return;
        }
    }
    if (out_append(l, env) != 0) {
        if (env->kind == ENV_USER) {
            ck_pr_dec_32(&l->peer->queued);
            casty__note_dead_letter(l->rm->sys, env->type, ref_of(env->node, env->actor));
        }
        return;
    }
    if (l->state == LANE_IDLE) {
        start_connect(l);
    } else if (l->state == LANE_UP && !l->sending && !l->flush_pending) {
        /* Write after the messages already in the mailbox are appended:
         * one send for the whole batch. */
        l->flush_pending = true;
        if (casty_tell(l->self, &lane_flush_type, NULL) != 0) {
            l->flush_pending = false;
            start_send(l);
        }
    }
}

static casty_behavior_t *lane_receive(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct lane *l = *(struct lane **)state;
    l->self = casty_ctx_self(ctx);
    const struct remote_env *env = casty_msg_get(msg, &casty__remote_env_type);
    if (env) {
        on_env(l, env);
        return casty_same();
    }
    const casty__io_done_t *d = casty_msg_as(msg, casty__io_done_t);
    if (d) {
        on_io(l, d);
        return casty_same();
    }
    if (casty_msg_type(msg) == &lane_flush_type) {
        l->flush_pending = false;
        if (l->state == LANE_UP)
            start_send(l);
        return casty_same();
    }
    return casty_unhandled();
}

static void lane_post_stop(casty_ctx_t *ctx, void *arg)
{
    (void)ctx;
    struct lane *l = arg;
    /* Requests still in flight finish with errors; the lane's memory and
     * socket are released by casty__remote_free after the reactor stops. */
    if (l->fd >= 0)
        shutdown(l->fd, SHUT_RDWR);
    l->state = LANE_CLOSING;
}

casty_behavior_t *casty__lane_behavior(struct lane *l)
{
    casty_behavior_t *b = casty_receive(lane_receive, &l, sizeof l);
    casty_lifecycle_t hooks = {.post_stop = lane_post_stop, .arg = l};
    return b ? casty_with_lifecycle(b, &hooks) : NULL;
}
