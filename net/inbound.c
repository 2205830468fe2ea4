/* The inbound side of remoting: the listener actor, which accepts
 * connections on the reactor (multishot accept where the kernel has it, one
 * accept at a time where it does not), and one actor per accepted connection, which
 * runs the accepting half of the handshake (checks version, system name and
 * the shared secret; answers WELCOME or REFUSE), then decodes frames and
 * delivers each USER message to its local recipient, answers RESOLVE
 * lookups and echoes heartbeats. A frame that breaks the framing closes this
 * connection only; a message whose type id is not registered becomes a
 * dead letter carrying the id, and the connection stays. */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomics.h"
#include "remote_internal.h"

enum { OP_ACCEPT = 1, OP_RETRY = 2, OP_SEND = 3, OP_RECV = 4, OP_DEADLINE = 5 };
#define RECV_MIN_ROOM (64u << 10)

/* ---- connections ---------------------------------------------------------------------- */

void casty__conn_free(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    casty__rbuf_free(&c->in);
    casty__rbuf_free(&c->out);
    casty__rbuf_free(&c->wbuf);
    free(c);
}

static void conn_unlink(struct conn *c)
{
    struct casty_remote *rm = c->rm;
    pthread_mutex_lock(&rm->conns_lock);
    for (struct conn **pp = &rm->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&rm->conns_lock);
}

static void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    shutdown(c->fd, SHUT_RDWR);
}

static void conn_send(struct conn *c)
{
    if (c->sending)
        return;
    if (c->wbuf.len == 0) {
        if (c->out.len == 0)
            return;
        struct rbuf t = c->wbuf;
        c->wbuf = c->out;
        c->out = t;
        c->woff = 0;
    }
    if (casty__remote_submit(c->rm, CASTY_IO_SEND, c->fd, c->wbuf.p + c->woff,
                             c->wbuf.len - c->woff, OP_SEND, c->self) != 0) {
        conn_close(c);
        return;
    }
    c->sending = true;
    c->ops++;
}

/* Arms the receive: into one of the reactor's provided buffers (shared by
 * the system's sockets, so an idle connection holds no receive buffer of
 * its own), or, where the kernel has no provided buffer rings, into the
 * connection's buffer. One at a time, re-armed after what came is parsed. */
static void conn_recv(struct conn *c)
{
    int rc;
    if (c->recv_single)
        rc = casty__rbuf_reserve(&c->in, RECV_MIN_ROOM) != 0
                 ? CASTY_ENOMEM
                 : casty__remote_submit(c->rm, CASTY_IO_RECV, c->fd, c->in.p + c->in.len,
                                        c->in.cap - c->in.len, OP_RECV, c->self);
    else
        rc = casty__remote_submit(c->rm, CASTY_IO_RECV_PROVIDED, c->fd, NULL, 0, OP_RECV, c->self);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    c->ops++;
}

/* Appends an encoded frame (at most `room` bytes) with `enc`. */
static uint8_t *out_room(struct conn *c, uint32_t room)
{
    if (casty__rbuf_reserve(&c->out, room) != 0)
        return NULL;
    return c->out.p + c->out.len;
}

static void refuse(struct conn *c, uint16_t code, const char *why)
{
    casty__remote_log(c->rm, "refused a connection: %s", why);
    STAT_ADD(c->rm, connections_refused, 1);
    char text[CASTY__WIRE_TEXT_MAX + 1];
    snprintf(text, sizeof text, "%s", why); /* the wire carries at most 255 bytes */
    uint32_t room = CASTY__WIRE_HEADER + 3 + CASTY__WIRE_TEXT_MAX;
    uint8_t *p = out_room(c, room);
    long n = p ? casty__wire_encode_refuse(p, room, code, text) : -1;
    if (n > 0) {
        c->out.len += (uint32_t)n;
        c->close_after_send = true;
        c->state = CONN_AUTH; /* accept nothing more; closed once REFUSE is out */
        conn_send(c);
    } else {
        conn_close(c);
    }
}

static void protocol_error(struct conn *c, const char *why)
{
    casty__remote_log(c->rm, "closing a connection: %s", why);
    STAT_ADD(c->rm, protocol_errors, 1);
    conn_close(c);
}

/* ---- handshake -------------------------------------------------------------------------- */

static void on_hello(struct conn *c, const struct casty__wire_frame *f)
{
    struct casty_remote *rm = c->rm;
    struct casty__wire_hello h;
    char why[600];
    if (f->kind != CASTY__WIRE_HELLO || casty__wire_decode_hello(f, &h) != 0) {
        refuse(c, CASTY__WIRE_REFUSE_PROTOCOL, "malformed handshake");
        return;
    }
    if (h.version != CASTY__WIRE_VERSION) {
        snprintf(why, sizeof why, "protocol version %u not supported (this node speaks %u)",
                 h.version, CASTY__WIRE_VERSION);
        refuse(c, CASTY__WIRE_REFUSE_VERSION, why);
        return;
    }
    if (strcmp(h.name, rm->sys->name) != 0) {
        snprintf(why, sizeof why, "system name \"%s\" from %s:%u is not \"%s\"", h.name, h.host,
                 h.port, rm->sys->name);
        refuse(c, CASTY__WIRE_REFUSE_NAME, why);
        return;
    }
    if (!rm->auth != !(h.hflags & CASTY__WIRE_HELLO_AUTH)) {
        snprintf(why, sizeof why, "%s:%u %s", h.host, h.port,
                 rm->auth ? "has no secret and this node requires one"
                          : "requires a secret and this node has none");
        refuse(c, CASTY__WIRE_REFUSE_AUTH, why);
        return;
    }
    struct casty__wire_hello w;
    casty__wire_random_nonce(c->nonce);
    casty__remote_hello(rm, h.lane, c->nonce, &w);
    if (rm->auth)
        casty__wire_mac(rm->key, CASTY__WIRE_ROLE_WELCOME, h.nonce, c->nonce, w.mac);
    uint32_t room = CASTY__WIRE_HEADER + CASTY__WIRE_HELLO_FIXED + CASTY__WIRE_NAME_MAX +
                    CASTY__WIRE_HOST_MAX;
    uint8_t *p = out_room(c, room);
    long n = p ? casty__wire_encode_hello(p, room, CASTY__WIRE_WELCOME, &w) : -1;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->out.len += (uint32_t)n;
    memcpy(c->hello_nonce, h.nonce, CASTY__WIRE_NONCE);
    c->lane = h.lane;
    c->peer_node = h.node;
    /* Remember who this is (for replies) only once it is authenticated. */
    snprintf(c->peer_host, sizeof c->peer_host, "%s", h.host);
    c->peer_port = h.port;
    c->peer_incarnation = h.incarnation;
    if (rm->auth) {
        c->state = CONN_AUTH;
    } else {
        c->state = CONN_OPEN;
        casty__remote_learn_address(rm, c->peer_host, c->peer_port, c->peer_node,
                                    c->peer_incarnation);
    }
    conn_send(c);
}

static void on_auth(struct conn *c, const struct casty__wire_frame *f)
{
    uint8_t mac[CASTY__WIRE_MAC];
    if (f->kind != CASTY__WIRE_AUTH || casty__wire_decode_auth(f, mac) != 0) {
        refuse(c, CASTY__WIRE_REFUSE_PROTOCOL, "expected AUTH");
        return;
    }
    if (!casty__wire_mac_ok(c->rm->key, CASTY__WIRE_ROLE_AUTH, c->nonce, c->hello_nonce, mac)) {
        char why[320];
        snprintf(why, sizeof why, "%s:%u failed to prove the shared secret", c->peer_host,
                 c->peer_port);
        refuse(c, CASTY__WIRE_REFUSE_AUTH, why);
        return;
    }
    c->state = CONN_OPEN;
    casty__remote_learn_address(c->rm, c->peer_host, c->peer_port, c->peer_node,
                                c->peer_incarnation);
}

/* ---- messages --------------------------------------------------------------------------- */

static void unknown_type(struct conn *c, casty_ref_t to, uint64_t id)
{
    struct casty_system *sys = c->rm->sys;
    STAT_ADD(c->rm, unknown_types, 1);
    ck_pr_inc_64(&sys->dead_letters);
    casty_dead_letter_t ev = {.msg_type = NULL, .recipient = to, .type_id = id};
    casty__publish(sys, &casty_dead_letter_t_type, &ev);
}

static void on_user(struct conn *c, const struct casty__wire_frame *f)
{
    struct casty_remote *rm = c->rm;
    struct casty__wire_user u;
    if (casty__wire_decode_user(f, &u) != 0) {
        protocol_error(c, "malformed USER frame");
        return;
    }
    casty_ref_t to = {rm->sys->node, u.actor};
    const casty_type_t *type = c->last_type;
    if (type == NULL || c->last_id != u.type_id) {
        type = casty__remote_type(rm, u.type_id);
        if (type == NULL) {
            unknown_type(c, to, u.type_id);
            return;
        }
        c->last_id = u.type_id;
        c->last_type = type;
    }
    STAT_ADD(rm, messages_received, 1);
    if (type->decode) {
        void *value = malloc(type->size ? type->size : 1);
        if (value == NULL || type->decode(u.payload, u.payload_len, value) != 0) {
            free(value);
            casty__note_dead_letter(rm->sys, type, to);
            return;
        }
        casty__deliver(rm->sys, to, type, NULL, value);
    } else if (u.payload_len != type->size) {
        /* The sender's struct differs from ours: never deliver a mangled value. */
        casty__note_dead_letter(rm->sys, type, to);
    } else {
        casty__deliver(rm->sys, to, type, u.payload, NULL);
    }
}

static void on_resolve(struct conn *c, const struct casty__wire_frame *f)
{
    struct casty__wire_resolve r;
    if (casty__wire_decode_resolve(f, &r) != 0) {
        protocol_error(c, "malformed RESOLVE frame");
        return;
    }
    casty_remote_resolved_t answer = {.tag = r.tag};
    answer.rc = casty_lookup(c->rm->sys, r.path, &answer.ref);
    if (answer.rc != 0)
        answer.ref = CASTY_REF_NONE;
    casty_tell((casty_ref_t){r.reply_node, r.reply_actor}, &casty_remote_resolved_t_type,
               &answer);
}

static void on_heartbeat(struct conn *c, const struct casty__wire_frame *f)
{
    struct casty__wire_heartbeat hb;
    if (casty__wire_decode_heartbeat(f, &hb) != 0) {
        protocol_error(c, "malformed HEARTBEAT frame");
        return;
    }
    uint32_t room = CASTY__WIRE_HEADER + CASTY__WIRE_HEARTBEAT_BODY;
    uint8_t *p = out_room(c, room);
    if (p == NULL)
        return;
    c->out.len += (uint32_t)casty__wire_encode_heartbeat(p, room, CASTY__WIRE_HEARTBEAT_ACK, &hb);
    conn_send(c);
}

/* Handles the whole frames at the start of buf[0..len); returns how many
 * bytes they took (the rest is a frame still arriving). */
static uint32_t parse_frames(struct conn *c, const uint8_t *buf, uint32_t len)
{
    uint32_t off = 0;
    while (c->state != CONN_CLOSING && !c->close_after_send) {
        struct casty__wire_frame f;
        long n = casty__wire_next(buf + off, len - off, c->rm->max_frame, &f);
        if (n == 0)
            break;
        if (n < 0) {
            protocol_error(c, n == CASTY_EMSGSIZE ? "frame larger than the maximum"
                                                  : "malformed frame header");
            break;
        }
        off += (uint32_t)n;
        switch (c->state) {
        case CONN_HELLO:
            on_hello(c, &f);
            break;
        case CONN_AUTH:
            on_auth(c, &f);
            break;
        default:
            if (f.kind == CASTY__WIRE_USER)
                on_user(c, &f);
            else if (f.kind == CASTY__WIRE_RESOLVE)
                on_resolve(c, &f);
            else if (f.kind == CASTY__WIRE_HEARTBEAT)
                on_heartbeat(c, &f);
            else
                protocol_error(c, "unexpected frame kind after the handshake");
            break;
        }
    }
    return off;
}

static void parse_in(struct conn *c)
{
    uint32_t off = parse_frames(c, c->in.p, c->in.len);
    memmove(c->in.p, c->in.p + off, c->in.len - off);
    c->in.len -= off;
}

/* ---- the connection actor --------------------------------------------------------------- */

static void on_recv(struct conn *c, const casty__io_done_t *d)
{
    if (d->res > 0) {
        STAT_ADD(c->rm, bytes_received, d->res);
        uint32_t len = (uint32_t)d->res;
        if (d->data && c->in.len == 0) {
            /* Parse in the lent buffer itself; keep only a frame's start. */
            uint32_t used = parse_frames(c, d->data, len);
            if (used < len && c->state != CONN_CLOSING) {
                if (casty__rbuf_reserve(&c->in, len - used) != 0) {
                    conn_close(c);
                    return;
                }
                memcpy(c->in.p, d->data + used, len - used);
                c->in.len = len - used;
            }
        } else {
            if (d->data) { /* after a partial frame: append, then parse */
                if (casty__rbuf_reserve(&c->in, len) != 0) {
                    conn_close(c);
                    return;
                }
                memcpy(c->in.p + c->in.len, d->data, len);
            }
            c->in.len += len;
            parse_in(c);
        }
        if (c->state != CONN_CLOSING && !c->close_after_send && !d->more)
            conn_recv(c);
        return;
    }
    if (d->op == CASTY_IO_RECV_PROVIDED && d->res == -ENOBUFS) {
        conn_recv(c); /* every shared buffer was in use for a moment */
        return;
    }
    if (d->op == CASTY_IO_RECV_PROVIDED && d->res == -EINVAL && !c->recv_single) {
        c->recv_single = true; /* no provided buffer rings in this kernel */
        conn_recv(c);
        return;
    }
    conn_close(c); /* end of stream or an error */
}

static casty_behavior_t *conn_receive(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    struct conn *c = *(struct conn **)state;
    const casty__io_done_t *d = casty_msg_as(msg, casty__io_done_t);
    if (d == NULL)
        return casty_unhandled();
    if (!d->more) /* a multishot receive stays in flight until its last completion */
        c->ops--;
    if (d->tag == OP_DEADLINE && (c->state == CONN_HELLO || c->state == CONN_AUTH)) {
        /* A client that has not finished its handshake by now is closed. */
        casty__remote_log(c->rm, "closing a connection: no handshake after %u ms",
                          REMOTE_HANDSHAKE_MS);
        conn_close(c);
    }
    if (c->state != CONN_CLOSING && d->tag != OP_DEADLINE) {
        if (d->tag == OP_SEND) {
            c->sending = false;
            if (d->res < 0) {
                conn_close(c);
            } else {
                c->woff += (uint32_t)d->res;
                if (c->woff >= c->wbuf.len) {
                    c->wbuf.len = 0;
                    c->woff = 0;
                    if (c->close_after_send && c->out.len == 0)
                        conn_close(c);
                }
                if (c->state != CONN_CLOSING)
                    conn_send(c);
            }
        } else if (d->tag == OP_RECV) {
            on_recv(c, d);
        }
    }
    if (c->state == CONN_CLOSING && c->ops == 0) {
        conn_unlink(c);
        casty__conn_free(c);
        *(struct conn **)state = NULL;
        return casty_stopped();
    }
    return casty_same();
}

static casty_behavior_t *conn_setup(casty_ctx_t *ctx, void *arg)
{
    struct conn *c = *(struct conn **)arg;
    c->self = casty_ctx_self(ctx);
    /* Counted in ops like the socket's requests: the connection's memory
     * stays until the deadline has fired, even after an early close. */
    struct casty__io_req q = {.op = CASTY_IO_TIMEOUT, .fd = -1,
                              .timeout_ns = (uint64_t)REMOTE_HANDSHAKE_MS * 1000000u,
                              .tag = OP_DEADLINE, .reply_to = c->self};
    if (casty__reactor_submit(c->rm->sys->reactor, &q) == 0)
        c->ops++;
    conn_recv(c);
    if (c->state == CONN_CLOSING && c->ops == 0) {
        conn_unlink(c);
        casty__conn_free(c);
        return casty_stopped();
    }
    return casty_receive(conn_receive, &c, sizeof c);
}

/* ---- the listener ----------------------------------------------------------------------- */

/* The listener's state: multishot accept (one request, a completion per
 * connection) where the kernel has it, else one accept request at a time. */
struct listener {
    struct casty_remote *rm;
    bool single;  /* the kernel refused multishot accept */
    bool got_one; /* the multishot request produced a connection */
};

static void accept_next(struct listener *li, casty_ref_t self)
{
    struct casty_remote *rm = li->rm;
    if (load_acquire(&rm->closing))
        return;
    uint8_t op = li->single ? CASTY_IO_ACCEPT : CASTY_IO_ACCEPT_MULTI;
    if (casty__remote_submit(rm, op, rm->listen_fd, NULL, 0, OP_ACCEPT, self) != 0)
        casty__remote_log(rm, "cannot accept connections any more");
}

static void start_conn(struct casty_remote *rm, int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return;
    }
    c->rm = rm;
    c->fd = fd;
    c->state = CONN_HELLO;
    pthread_mutex_lock(&rm->conns_lock);
    c->next = rm->conns;
    rm->conns = c;
    pthread_mutex_unlock(&rm->conns_lock);
    /* A connection stopped by shutdown keeps its memory until
     * casty__remote_free (the reactor cancels its requests first); one that
     * closes by itself frees it once its requests are done. */
    casty_behavior_t *b = casty_setup(conn_setup, &c, sizeof c);
    if (b == NULL || casty__spawn_internal(rm->sys, b, NULL, NULL) != 0)
        shutdown(fd, SHUT_RDWR); /* freed with the system */
    STAT_ADD(rm, connections_accepted, 1);
}

static casty_behavior_t *listener_receive(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct listener *li = state;
    struct casty_remote *rm = li->rm;
    const casty__io_done_t *d = casty_msg_as(msg, casty__io_done_t);
    if (d == NULL)
        return casty_unhandled();
    if (d->tag == OP_RETRY) {
        accept_next(li, casty_ctx_self(ctx));
        return casty_same();
    }
    if (d->res >= 0) {
        li->got_one = true;
        if (load_acquire(&rm->closing))
            close(d->res);
        else
            start_conn(rm, d->res);
        if (li->single || !d->more)
            accept_next(li, casty_ctx_self(ctx));
    } else if (!load_acquire(&rm->closing)) {
        if (!li->single && d->res == -EINVAL && !li->got_one) {
            /* A kernel without multishot accept: one request at a time. */
            li->single = true;
            accept_next(li, casty_ctx_self(ctx));
            return casty_same();
        }
        /* EMFILE and friends: try again a little later rather than spin. */
        casty__remote_log(rm, "accept failed: %s", casty_strerror(d->res));
        struct casty__io_req q = {.op = CASTY_IO_TIMEOUT, .fd = -1, .timeout_ns = 100000000u,
                                  .tag = OP_RETRY, .reply_to = casty_ctx_self(ctx)};
        if (d->more == 0)
            casty__reactor_submit(rm->sys->reactor, &q);
    }
    return casty_same();
}

static casty_behavior_t *listener_setup(casty_ctx_t *ctx, void *arg)
{
    struct listener li = {.rm = *(struct casty_remote **)arg};
    accept_next(&li, casty_ctx_self(ctx));
    return casty_receive(listener_receive, &li, sizeof li);
}

casty_behavior_t *casty__listener_behavior(struct casty_remote *rm)
{
    return casty_setup(listener_setup, &rm, sizeof rm);
}
