/* Invariant checks on the remoting wire codec (net/wire.c), shared by the
 * libFuzzer target (tests/fuzz/fuzz_wire.c) and its Criterion smoke test
 * (tests/test_wire_fuzz_smoke.c). Whatever the bytes:
 *
 *   - casty__wire_next, walked frame by frame, agrees with the header rules
 *     worked out here independently; a header error shows with only its 8
 *     bytes, and every strict prefix of a complete frame asks for more;
 *   - each frame's body is handed to every decoder in an exact-size copy
 *     (so AddressSanitizer sees a read past body_len); the decoders of
 *     other kinds refuse it with CASTY_EPROTO, the matching one refuses it
 *     with CASTY_EPROTO or decodes values within their rules;
 *   - what decoded re-encodes to the same bytes, which decode again to the
 *     same values, and the encoder says CASTY_ENOSPC one byte short (for
 *     USER, one byte short of the prefix it writes).
 *
 * Any violation prints what broke and calls abort(). */
#ifndef CASTY_TEST_WIRE_CHECK_H
#define CASTY_TEST_WIRE_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casty/error.h"
#include "wire.h"

/* The max_frame the walk uses: small enough that random lengths hit
 * CASTY_EMSGSIZE, large enough for every valid handshake frame. */
#define WIRE_CHECK_MAX_FRAME CASTY__WIRE_MIN_FRAME

static inline void wire_check_fail(const char *what, size_t off)
{
    fprintf(stderr, "wire_check: %s (frame at offset %zu)\n", what, off);
    abort();
}

#define WIRE_CHECK(cond, what, off)                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            wire_check_fail(what, off);                                                            \
    } while (0)

static inline uint32_t wire_check_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* What casty__wire_next must return for buf[0..len), from the header rules. */
static inline long wire_check_expect_next(const uint8_t *buf, size_t len, uint32_t max_frame)
{
    if (len < CASTY__WIRE_HEADER)
        return 0;
    uint64_t flen = wire_check_le32(buf);
    if (flen < 4)
        return CASTY_EPROTO;
    if (flen + 4 > max_frame)
        return CASTY_EMSGSIZE;
    if (buf[4] < 1 || buf[4] > 8 || buf[5] != 0 || buf[6] != 0 || buf[7] != 0)
        return CASTY_EPROTO;
    return len < flen + 4 ? 0 : (long)(flen + 4);
}

static inline bool wire_check_cstr_ok(const char *s, size_t cap, size_t min, size_t max)
{
    size_t n = strnlen(s, cap);
    return n < cap && n >= min && n <= max;
}

/* Checks one decoded HELLO/WELCOME of frame fr (whose bytes are
 * frame[0..size)) against the rules and by re-encoding. */
static inline void wire_check_hello(const struct casty__wire_frame *fr, const uint8_t *frame,
                                    size_t size, const struct casty__wire_hello *h, size_t off)
{
    if (h->version != CASTY__WIRE_VERSION) {
        /* Decodes to {version} alone, from a body with the right magic. */
        struct casty__wire_hello zero;
        memset(&zero, 0, sizeof zero);
        zero.version = h->version;
        WIRE_CHECK(memcmp(&zero, h, sizeof zero) == 0, "other version: fields besides version set",
                   off);
        WIRE_CHECK(fr->body_len >= 6 && wire_check_le32(fr->body) == CASTY__WIRE_MAGIC &&
                       (fr->body[4] | fr->body[5] << 8) == h->version,
                   "other version: not from the magic and version bytes", off);
        return;
    }
    WIRE_CHECK(wire_check_cstr_ok(h->name, sizeof h->name, 1, CASTY__WIRE_NAME_MAX),
               "hello: bad name", off);
    WIRE_CHECK(wire_check_cstr_ok(h->host, sizeof h->host, 1, CASTY__WIRE_HOST_MAX),
               "hello: bad host", off);
    WIRE_CHECK(h->lane <= CASTY__WIRE_LANE_CONTROL && (h->hflags & ~CASTY__WIRE_HELLO_AUTH) == 0,
               "hello: bad lane or hflags", off);
    if (fr->kind == CASTY__WIRE_HELLO) {
        uint8_t acc = 0;
        for (size_t i = 0; i < CASTY__WIRE_MAC; i++)
            acc |= h->mac[i];
        WIRE_CHECK(acc == 0, "hello: nonzero mac decoded", off);
    }
    uint8_t again[CASTY__WIRE_HEADER + CASTY__WIRE_HELLO_FIXED + CASTY__WIRE_NAME_MAX +
                  CASTY__WIRE_HOST_MAX];
    long n = casty__wire_encode_hello(again, sizeof again, fr->kind, h);
    WIRE_CHECK(n == (long)size && memcmp(again, frame, size) == 0, "hello: re-encoding differs",
               off);
    WIRE_CHECK(casty__wire_encode_hello(again, size - 1, fr->kind, h) == CASTY_ENOSPC,
               "hello: no CASTY_ENOSPC one byte short", off);
    struct casty__wire_frame f2;
    struct casty__wire_hello h2;
    WIRE_CHECK(casty__wire_next(again, size, WIRE_CHECK_MAX_FRAME, &f2) == n &&
                   casty__wire_decode_hello(&f2, &h2) == 0,
               "hello: re-encoding does not decode", off);
    WIRE_CHECK(h2.version == h->version && h2.lane == h->lane && h2.hflags == h->hflags &&
                   h2.node == h->node && h2.incarnation == h->incarnation && h2.port == h->port &&
                   memcmp(h2.nonce, h->nonce, sizeof h->nonce) == 0 &&
                   memcmp(h2.mac, h->mac, sizeof h->mac) == 0 && strcmp(h2.name, h->name) == 0 &&
                   strcmp(h2.host, h->host) == 0,
               "hello: re-encoding decodes to other values", off);
}

/* Decodes fr's body (an exact-size copy) with every decoder; returns
 * whether the decoder for fr->kind accepted it. */
static inline bool wire_check_frame(const struct casty__wire_frame *orig, const uint8_t *frame,
                                    size_t size, size_t off)
{
    uint8_t *copy = malloc(orig->body_len ? orig->body_len : 1);
    if (copy == NULL)
        return false;
    memcpy(copy, orig->body, orig->body_len);
    const struct casty__wire_frame fr = {orig->kind, copy, orig->body_len};
    const struct casty__wire_frame *f = &fr;
    uint8_t again[CASTY__WIRE_HEADER + CASTY__WIRE_RESOLVE_FIXED + CASTY__WIRE_PATH_MAX];
    struct casty__wire_frame f2;
    long n;

    struct casty__wire_hello h;
    int rc = casty__wire_decode_hello(f, &h);
    bool hello_kind = f->kind == CASTY__WIRE_HELLO || f->kind == CASTY__WIRE_WELCOME;
    WIRE_CHECK(rc == 0 || rc == CASTY_EPROTO, "hello: unexpected code", off);
    WIRE_CHECK(hello_kind || rc != 0, "hello decoder took another kind", off);
    bool ok = hello_kind && rc == 0;
    if (hello_kind && rc == 0)
        wire_check_hello(f, frame, size, &h, off);

    uint8_t mac[CASTY__WIRE_MAC];
    rc = casty__wire_decode_auth(f, mac);
    WIRE_CHECK(rc == 0 || rc == CASTY_EPROTO, "auth: unexpected code", off);
    WIRE_CHECK(f->kind == CASTY__WIRE_AUTH || rc != 0, "auth decoder took another kind", off);
    if (f->kind == CASTY__WIRE_AUTH && rc == 0) {
        ok = true;
        n = casty__wire_encode_auth(again, sizeof again, mac);
        WIRE_CHECK(n == (long)size && memcmp(again, frame, size) == 0, "auth: re-encoding differs",
                   off);
        WIRE_CHECK(casty__wire_encode_auth(again, size - 1, mac) == CASTY_ENOSPC,
                   "auth: no CASTY_ENOSPC one byte short", off);
        uint8_t mac2[CASTY__WIRE_MAC];
        WIRE_CHECK(casty__wire_next(again, size, WIRE_CHECK_MAX_FRAME, &f2) == n &&
                       casty__wire_decode_auth(&f2, mac2) == 0 && memcmp(mac, mac2, sizeof mac) == 0,
                   "auth: re-encoding decodes to other values", off);
    }

    uint16_t code;
    char text[CASTY__WIRE_TEXT_MAX + 1];
    rc = casty__wire_decode_refuse(f, &code, text);
    WIRE_CHECK(rc == 0 || rc == CASTY_EPROTO, "refuse: unexpected code", off);
    WIRE_CHECK(f->kind == CASTY__WIRE_REFUSE || rc != 0, "refuse decoder took another kind", off);
    if (f->kind == CASTY__WIRE_REFUSE && rc == 0) {
        ok = true;
        WIRE_CHECK(wire_check_cstr_ok(text, sizeof text, 0, CASTY__WIRE_TEXT_MAX),
                   "refuse: bad text", off);
        n = casty__wire_encode_refuse(again, sizeof again, code, text);
        WIRE_CHECK(n == (long)size && memcmp(again, frame, size) == 0,
                   "refuse: re-encoding differs", off);
        WIRE_CHECK(casty__wire_encode_refuse(again, size - 1, code, text) == CASTY_ENOSPC,
                   "refuse: no CASTY_ENOSPC one byte short", off);
        uint16_t code2;
        char text2[CASTY__WIRE_TEXT_MAX + 1];
        WIRE_CHECK(casty__wire_next(again, size, WIRE_CHECK_MAX_FRAME, &f2) == n &&
                       casty__wire_decode_refuse(&f2, &code2, text2) == 0 && code2 == code &&
                       strcmp(text2, text) == 0,
                   "refuse: re-encoding decodes to other values", off);
    }

    struct casty__wire_user u;
    rc = casty__wire_decode_user(f, &u);
    WIRE_CHECK(rc == 0 || rc == CASTY_EPROTO, "user: unexpected code", off);
    WIRE_CHECK(f->kind == CASTY__WIRE_USER || rc != 0, "user decoder took another kind", off);
    if (f->kind == CASTY__WIRE_USER && rc == 0) {
        ok = true;
        WIRE_CHECK(u.payload == f->body + CASTY__WIRE_USER_FIXED &&
                       u.payload_len == f->body_len - CASTY__WIRE_USER_FIXED,
                   "user: payload is not the rest of the body", off);
        uint8_t *buf = malloc(size);
        if (buf) {
            /* cap covers the prefix only: the payload is the caller's. */
            n = casty__wire_encode_user_prefix(buf, CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED,
                                               u.actor, u.type_id, u.payload_len);
            WIRE_CHECK(n == (long)size, "user: re-encoding has another size", off);
            WIRE_CHECK(casty__wire_encode_user_prefix(buf, CASTY__WIRE_HEADER +
                                                               CASTY__WIRE_USER_FIXED - 1,
                                                      u.actor, u.type_id,
                                                      u.payload_len) == CASTY_ENOSPC,
                       "user: no CASTY_ENOSPC one byte short of the prefix", off);
            memcpy(buf + CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED, u.payload, u.payload_len);
            WIRE_CHECK(memcmp(buf, frame, size) == 0, "user: re-encoding differs", off);
            struct casty__wire_user u2;
            WIRE_CHECK(casty__wire_next(buf, size, WIRE_CHECK_MAX_FRAME, &f2) == n &&
                           casty__wire_decode_user(&f2, &u2) == 0 && u2.actor == u.actor &&
                           u2.type_id == u.type_id && u2.payload_len == u.payload_len &&
                           memcmp(u2.payload, u.payload, u.payload_len) == 0,
                       "user: re-encoding decodes to other values", off);
            free(buf);
        }
    }

    struct casty__wire_resolve r;
    rc = casty__wire_decode_resolve(f, &r);
    WIRE_CHECK(rc == 0 || rc == CASTY_EPROTO, "resolve: unexpected code", off);
    WIRE_CHECK(f->kind == CASTY__WIRE_RESOLVE || rc != 0, "resolve decoder took another kind", off);
    if (f->kind == CASTY__WIRE_RESOLVE && rc == 0) {
        ok = true;
        WIRE_CHECK(wire_check_cstr_ok(r.path, sizeof r.path, 1, CASTY__WIRE_PATH_MAX),
                   "resolve: bad path", off);
        n = casty__wire_encode_resolve(again, sizeof again, &r);
        WIRE_CHECK(n == (long)size && memcmp(again, frame, size) == 0,
                   "resolve: re-encoding differs", off);
        WIRE_CHECK(casty__wire_encode_resolve(again, size - 1, &r) == CASTY_ENOSPC,
                   "resolve: no CASTY_ENOSPC one byte short", off);
        struct casty__wire_resolve r2;
        WIRE_CHECK(casty__wire_next(again, size, WIRE_CHECK_MAX_FRAME, &f2) == n &&
                       casty__wire_decode_resolve(&f2, &r2) == 0 &&
                       r2.reply_node == r.reply_node && r2.reply_actor == r.reply_actor &&
                       r2.tag == r.tag && strcmp(r2.path, r.path) == 0,
                   "resolve: re-encoding decodes to other values", off);
    }

    struct casty__wire_heartbeat hb;
    bool hb_kind = f->kind == CASTY__WIRE_HEARTBEAT || f->kind == CASTY__WIRE_HEARTBEAT_ACK;
    rc = casty__wire_decode_heartbeat(f, &hb);
    WIRE_CHECK(rc == 0 || rc == CASTY_EPROTO, "heartbeat: unexpected code", off);
    WIRE_CHECK(hb_kind || rc != 0, "heartbeat decoder took another kind", off);
    if (hb_kind && rc == 0) {
        ok = true;
        n = casty__wire_encode_heartbeat(again, sizeof again, f->kind, &hb);
        WIRE_CHECK(n == (long)size && memcmp(again, frame, size) == 0,
                   "heartbeat: re-encoding differs", off);
        WIRE_CHECK(casty__wire_encode_heartbeat(again, size - 1, f->kind, &hb) == CASTY_ENOSPC,
                   "heartbeat: no CASTY_ENOSPC one byte short", off);
        struct casty__wire_heartbeat hb2;
        WIRE_CHECK(casty__wire_next(again, size, WIRE_CHECK_MAX_FRAME, &f2) == n &&
                       casty__wire_decode_heartbeat(&f2, &hb2) == 0 && hb2.seq == hb.seq &&
                       hb2.sent_ns == hb.sent_ns,
                   "heartbeat: re-encoding decodes to other values", off);
    }

    free(copy);
    return ok;
}

/* Walks data[0..len) as a stream of frames, checking each as above, until
 * the data ends, a frame is incomplete or a header is refused. Returns how
 * many frames the decoder of their kind accepted. */
static int wire_check_input(const uint8_t *data, size_t len)
{
    int decoded = 0;
    size_t off = 0;
    for (;;) {
        const uint8_t *p = data + off;
        size_t rest = len - off;
        struct casty__wire_frame f;
        long r = casty__wire_next(p, rest, WIRE_CHECK_MAX_FRAME, &f);
        WIRE_CHECK(r == wire_check_expect_next(p, rest, WIRE_CHECK_MAX_FRAME),
                   "casty__wire_next disagrees with the header rules", off);
        if (r < 0) {
            /* A bad header is known from its 8 bytes alone. */
            WIRE_CHECK(casty__wire_next(p, CASTY__WIRE_HEADER, WIRE_CHECK_MAX_FRAME, &f) == r,
                       "a header error needed more than the header", off);
            return decoded;
        }
        if (r == 0)
            return decoded;
        size_t size = (size_t)r;
        WIRE_CHECK(f.body == p + CASTY__WIRE_HEADER && f.body_len == size - CASTY__WIRE_HEADER &&
                       f.kind == p[4],
                   "casty__wire_next located the frame wrongly", off);
        for (size_t k = 0; k < size; k++) {
            struct casty__wire_frame g;
            WIRE_CHECK(casty__wire_next(p, k, WIRE_CHECK_MAX_FRAME, &g) == 0,
                       "a strict prefix of a frame did not ask for more", off);
        }
        if (wire_check_frame(&f, p, size, off))
            decoded++;
        off += size;
    }
}

#endif
