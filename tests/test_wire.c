/* The remoting wire codec (net/wire.c): every frame kind round-trips; the
 * bytes of a HELLO and a USER header match hand-written arrays, so the
 * layout in net/wire.h is locked by a test as well as by the code;
 * casty__wire_next waits for a whole frame and judges a header from its 8
 * bytes alone; each decoder refuses truncated, padded, mislabelled and
 * malformed bodies; encoders refuse bad fields and small buffers without
 * writing; the key and MACs are the libsodium constructions the header
 * names, and a MAC binds the secret, the role and the nonces' order. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "casty/error.h"
#include "wire.h"

#define BIG 1024

/* ---- helpers --------------------------------------------------------------------------- */

static struct casty__wire_hello sample_hello(void)
{
    struct casty__wire_hello h;
    memset(&h, 0, sizeof h);
    h.version = CASTY__WIRE_VERSION;
    h.lane = CASTY__WIRE_LANE_CONTROL;
    h.hflags = CASTY__WIRE_HELLO_AUTH;
    h.node = 0x0102030405060708ull;
    h.incarnation = 0x1112131415161718ull;
    h.port = 8080;
    for (unsigned i = 0; i < CASTY__WIRE_NONCE; i++)
        h.nonce[i] = (uint8_t)(0xA0 + i);
    strcpy(h.name, "ab");
    strcpy(h.host, "h1");
    return h;
}

/* Field by field: the structs have padding. */
static void assert_hello_eq(const struct casty__wire_hello *a, const struct casty__wire_hello *b)
{
    cr_assert_eq(a->version, b->version);
    cr_assert_eq(a->lane, b->lane);
    cr_assert_eq(a->hflags, b->hflags);
    cr_assert_eq(a->node, b->node);
    cr_assert_eq(a->incarnation, b->incarnation);
    cr_assert_eq(a->port, b->port);
    cr_assert_eq(memcmp(a->nonce, b->nonce, sizeof a->nonce), 0);
    cr_assert_eq(memcmp(a->mac, b->mac, sizeof a->mac), 0);
    cr_assert_str_eq(a->name, b->name);
    cr_assert_str_eq(a->host, b->host);
}

/* Locates the one whole frame in buf[0..n). */
static struct casty__wire_frame frame_of(const uint8_t *buf, long n)
{
    struct casty__wire_frame f;
    cr_assert_gt(n, 0, "encode failed: %ld", n);
    cr_assert_eq(casty__wire_next(buf, (size_t)n, CASTY__WIRE_DEFAULT_MAX_FRAME, &f), n);
    return f;
}

/* Runs the decoder for `kind` on an exact-size copy of body[0..len), so a
 * read past the end shows under AddressSanitizer; returns its code. */
static int decode_as(uint8_t kind, const uint8_t *body, uint32_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, body, len);
    struct casty__wire_frame f = {kind, copy, len};
    int rc = CASTY_EINVAL;
    struct casty__wire_hello h;
    uint8_t mac[CASTY__WIRE_MAC];
    uint16_t code;
    char text[CASTY__WIRE_TEXT_MAX + 1];
    struct casty__wire_user u;
    struct casty__wire_resolve r;
    struct casty__wire_heartbeat hb;
    switch (kind) {
    case CASTY__WIRE_HELLO:
    case CASTY__WIRE_WELCOME:
        rc = casty__wire_decode_hello(&f, &h);
        break;
    case CASTY__WIRE_AUTH:
        rc = casty__wire_decode_auth(&f, mac);
        break;
    case CASTY__WIRE_REFUSE:
        rc = casty__wire_decode_refuse(&f, &code, text);
        break;
    case CASTY__WIRE_USER:
        rc = casty__wire_decode_user(&f, &u);
        break;
    case CASTY__WIRE_RESOLVE:
        rc = casty__wire_decode_resolve(&f, &r);
        break;
    case CASTY__WIRE_HEARTBEAT:
    case CASTY__WIRE_HEARTBEAT_ACK:
        rc = casty__wire_decode_heartbeat(&f, &hb);
        break;
    default:
        cr_assert_fail("no decoder for kind %u", kind);
    }
    free(copy);
    return rc;
}

/* Asserts that the decoder of `kind` takes body[0..len) and that every
 * other decoder refuses it, and that it is refused with one byte less
 * and with one byte more (a trailing zero). */
static void assert_exact_body(uint8_t kind, const uint8_t *body, uint32_t len, bool open_ended)
{
    cr_assert_eq(decode_as(kind, body, len), 0, "kind %u did not decode", kind);
    for (uint8_t k = CASTY__WIRE_HELLO; k <= CASTY__WIRE_HEARTBEAT_ACK; k++) {
        bool same_decoder = k == kind || (k <= CASTY__WIRE_WELCOME && kind <= CASTY__WIRE_WELCOME) ||
                            (k >= CASTY__WIRE_HEARTBEAT && kind >= CASTY__WIRE_HEARTBEAT);
        if (same_decoder)
            continue;
        /* Decoder k refuses a frame labelled with another kind. */
        struct casty__wire_frame f = {kind, body, len};
        struct casty__wire_hello h;
        uint8_t mac[CASTY__WIRE_MAC];
        uint16_t code;
        char text[CASTY__WIRE_TEXT_MAX + 1];
        struct casty__wire_user u;
        struct casty__wire_resolve r;
        struct casty__wire_heartbeat hb;
        switch (k) {
        case CASTY__WIRE_HELLO:
        case CASTY__WIRE_WELCOME:
            cr_assert_eq(casty__wire_decode_hello(&f, &h), CASTY_EPROTO);
            break;
        case CASTY__WIRE_AUTH:
            cr_assert_eq(casty__wire_decode_auth(&f, mac), CASTY_EPROTO);
            break;
        case CASTY__WIRE_REFUSE:
            cr_assert_eq(casty__wire_decode_refuse(&f, &code, text), CASTY_EPROTO);
            break;
        case CASTY__WIRE_USER:
            cr_assert_eq(casty__wire_decode_user(&f, &u), CASTY_EPROTO);
            break;
        case CASTY__WIRE_RESOLVE:
            cr_assert_eq(casty__wire_decode_resolve(&f, &r), CASTY_EPROTO);
            break;
        default:
            cr_assert_eq(casty__wire_decode_heartbeat(&f, &hb), CASTY_EPROTO);
            break;
        }
    }
    cr_assert_eq(decode_as(kind, body, len - 1), CASTY_EPROTO, "kind %u: truncated body decoded",
                 kind);
    if (!open_ended) {
        uint8_t longer[BIG];
        cr_assert_lt(len + 1, sizeof longer);
        memcpy(longer, body, len);
        longer[len] = 'x';
        cr_assert_eq(decode_as(kind, longer, len + 1), CASTY_EPROTO,
                     "kind %u: trailing byte accepted", kind);
    }
}

/* ---- round trips ------------------------------------------------------------------------- */

Test(wire, hello_and_welcome_round_trip)
{
    uint8_t buf[BIG];
    struct casty__wire_hello h = sample_hello();
    long n = casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h);
    cr_assert_eq(n, (long)(CASTY__WIRE_HEADER + CASTY__WIRE_HELLO_FIXED + 2 + 2));
    struct casty__wire_frame f = frame_of(buf, n);
    cr_assert_eq(f.kind, CASTY__WIRE_HELLO);
    struct casty__wire_hello out;
    cr_assert_eq(casty__wire_decode_hello(&f, &out), 0);
    assert_hello_eq(&out, &h);

    /* A WELCOME with a mac, the longest name and host, the user lane. */
    struct casty__wire_hello w = sample_hello();
    w.lane = CASTY__WIRE_LANE_USER;
    w.hflags = 0;
    w.port = 0;
    memset(w.mac, 0x5A, sizeof w.mac);
    memset(w.name, 'n', CASTY__WIRE_NAME_MAX);
    w.name[CASTY__WIRE_NAME_MAX] = '\0';
    memset(w.host, 'h', CASTY__WIRE_HOST_MAX);
    w.host[CASTY__WIRE_HOST_MAX] = '\0';
    n = casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_WELCOME, &w);
    cr_assert_eq(n, (long)(CASTY__WIRE_HEADER + CASTY__WIRE_HELLO_FIXED + CASTY__WIRE_NAME_MAX +
                           CASTY__WIRE_HOST_MAX));
    f = frame_of(buf, n);
    cr_assert_eq(f.kind, CASTY__WIRE_WELCOME);
    cr_assert_eq(casty__wire_decode_hello(&f, &out), 0);
    assert_hello_eq(&out, &w);
}

Test(wire, auth_round_trip)
{
    uint8_t buf[BIG], mac[CASTY__WIRE_MAC], out[CASTY__WIRE_MAC];
    for (unsigned i = 0; i < CASTY__WIRE_MAC; i++)
        mac[i] = (uint8_t)(i * 7 + 1);
    long n = casty__wire_encode_auth(buf, sizeof buf, mac);
    cr_assert_eq(n, (long)(CASTY__WIRE_HEADER + CASTY__WIRE_MAC));
    struct casty__wire_frame f = frame_of(buf, n);
    cr_assert_eq(f.kind, CASTY__WIRE_AUTH);
    cr_assert_eq(casty__wire_decode_auth(&f, out), 0);
    cr_assert_eq(memcmp(out, mac, sizeof mac), 0);
}

Test(wire, refuse_round_trip)
{
    uint8_t buf[BIG];
    uint16_t code;
    char text[CASTY__WIRE_TEXT_MAX + 1];
    long n = casty__wire_encode_refuse(buf, sizeof buf, CASTY__WIRE_REFUSE_NAME,
                                       "cluster name is 'other'");
    cr_assert_eq(n, (long)(CASTY__WIRE_HEADER + 3 + strlen("cluster name is 'other'")));
    struct casty__wire_frame f = frame_of(buf, n);
    cr_assert_eq(f.kind, CASTY__WIRE_REFUSE);
    cr_assert_eq(casty__wire_decode_refuse(&f, &code, text), 0);
    cr_assert_eq(code, CASTY__WIRE_REFUSE_NAME);
    cr_assert_str_eq(text, "cluster name is 'other'");

    /* No reason (NULL or ""), and the longest reason. */
    n = casty__wire_encode_refuse(buf, sizeof buf, CASTY__WIRE_REFUSE_AUTH, NULL);
    cr_assert_eq(n, (long)(CASTY__WIRE_HEADER + 3));
    f = frame_of(buf, n);
    cr_assert_eq(casty__wire_decode_refuse(&f, &code, text), 0);
    cr_assert_eq(code, CASTY__WIRE_REFUSE_AUTH);
    cr_assert_str_eq(text, "");
    cr_assert_eq(casty__wire_encode_refuse(buf, sizeof buf, 9, ""), (long)(CASTY__WIRE_HEADER + 3));
    char longest[CASTY__WIRE_TEXT_MAX + 1];
    memset(longest, 'r', CASTY__WIRE_TEXT_MAX);
    longest[CASTY__WIRE_TEXT_MAX] = '\0';
    n = casty__wire_encode_refuse(buf, sizeof buf, CASTY__WIRE_REFUSE_PROTOCOL, longest);
    f = frame_of(buf, n);
    cr_assert_eq(casty__wire_decode_refuse(&f, &code, text), 0);
    cr_assert_str_eq(text, longest);
}

Test(wire, user_round_trip)
{
    uint8_t buf[BIG];
    const char payload[] = "payload bytes";
    uint32_t plen = (uint32_t)sizeof payload;
    long n = casty__wire_encode_user_prefix(buf, sizeof buf, 42, 0xABCDEF0123456789ull, plen);
    cr_assert_eq(n, (long)(CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED + plen),
                 "returns the whole frame's size");
    memcpy(buf + CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED, payload, plen);
    struct casty__wire_frame f = frame_of(buf, n);
    cr_assert_eq(f.kind, CASTY__WIRE_USER);
    struct casty__wire_user u;
    cr_assert_eq(casty__wire_decode_user(&f, &u), 0);
    cr_assert_eq(u.actor, 42);
    cr_assert_eq(u.type_id, 0xABCDEF0123456789ull);
    cr_assert_eq(u.payload_len, plen);
    cr_assert_eq(u.payload, buf + CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED);
    cr_assert_eq(memcmp(u.payload, payload, plen), 0);

    /* An empty payload. */
    n = casty__wire_encode_user_prefix(buf, sizeof buf, 7, 8, 0);
    cr_assert_eq(n, (long)(CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED));
    f = frame_of(buf, n);
    cr_assert_eq(casty__wire_decode_user(&f, &u), 0);
    cr_assert_eq(u.actor, 7);
    cr_assert_eq(u.type_id, 8);
    cr_assert_eq(u.payload_len, 0);
}

Test(wire, resolve_round_trip)
{
    uint8_t buf[BIG];
    struct casty__wire_resolve r = {.reply_node = 0xAAu, .reply_actor = 0xBBu, .tag = 0xCCu};
    strcpy(r.path, "/user/a/b");
    long n = casty__wire_encode_resolve(buf, sizeof buf, &r);
    cr_assert_eq(n, (long)(CASTY__WIRE_HEADER + CASTY__WIRE_RESOLVE_FIXED + strlen("/user/a/b")));
    struct casty__wire_frame f = frame_of(buf, n);
    cr_assert_eq(f.kind, CASTY__WIRE_RESOLVE);
    struct casty__wire_resolve out;
    cr_assert_eq(casty__wire_decode_resolve(&f, &out), 0);
    cr_assert_eq(out.reply_node, 0xAAu);
    cr_assert_eq(out.reply_actor, 0xBBu);
    cr_assert_eq(out.tag, 0xCCu);
    cr_assert_str_eq(out.path, "/user/a/b");

    memset(r.path, 'p', CASTY__WIRE_PATH_MAX);
    r.path[CASTY__WIRE_PATH_MAX] = '\0';
    n = casty__wire_encode_resolve(buf, sizeof buf, &r);
    f = frame_of(buf, n);
    cr_assert_eq(casty__wire_decode_resolve(&f, &out), 0);
    cr_assert_str_eq(out.path, r.path);
}

Test(wire, heartbeat_and_ack_round_trip)
{
    uint8_t buf[BIG];
    for (uint8_t kind = CASTY__WIRE_HEARTBEAT; kind <= CASTY__WIRE_HEARTBEAT_ACK; kind++) {
        struct casty__wire_heartbeat hb = {.seq = 1000u + kind, .sent_ns = UINT64_MAX - kind};
        long n = casty__wire_encode_heartbeat(buf, sizeof buf, kind, &hb);
        cr_assert_eq(n, (long)(CASTY__WIRE_HEADER + CASTY__WIRE_HEARTBEAT_BODY));
        struct casty__wire_frame f = frame_of(buf, n);
        cr_assert_eq(f.kind, kind);
        struct casty__wire_heartbeat out;
        cr_assert_eq(casty__wire_decode_heartbeat(&f, &out), 0);
        cr_assert_eq(out.seq, hb.seq);
        cr_assert_eq(out.sent_ns, hb.sent_ns);
    }
}

Test(wire, frames_follow_one_another_in_a_stream)
{
    uint8_t buf[BIG];
    size_t at = 0;
    struct casty__wire_hello h = sample_hello();
    struct casty__wire_heartbeat hb = {1, 2};
    at += (size_t)casty__wire_encode_hello(buf + at, sizeof buf - at, CASTY__WIRE_HELLO, &h);
    at += (size_t)casty__wire_encode_heartbeat(buf + at, sizeof buf - at, CASTY__WIRE_HEARTBEAT, &hb);
    at += (size_t)casty__wire_encode_refuse(buf + at, sizeof buf - at, 1, "v");
    const uint8_t kinds[] = {CASTY__WIRE_HELLO, CASTY__WIRE_HEARTBEAT, CASTY__WIRE_REFUSE};
    size_t off = 0;
    for (size_t i = 0; i < sizeof kinds; i++) {
        struct casty__wire_frame f;
        long n = casty__wire_next(buf + off, at - off, CASTY__WIRE_MIN_FRAME, &f);
        cr_assert_gt(n, 0);
        cr_assert_eq(f.kind, kinds[i]);
        off += (size_t)n;
    }
    cr_assert_eq(off, at);
}

/* ---- exact bytes ---------------------------------------------------------------------------- */

Test(wire, hello_bytes_match_the_spec)
{
    static const uint8_t expected[] = {
        /* header: len = 4 + 96, kind HELLO, flags 0, reserved 0 */
        0x64, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        /* magic "CSTY", version 1, lane 1, hflags 1 */
        'C', 'S', 'T', 'Y', 0x01, 0x00, 0x01, 0x01,
        /* node */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
        /* incarnation */
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
        /* port 8080, name_len 2, host_len 2 */
        0x90, 0x1F, 0x02, 0x02,
        /* nonce */
        0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
        0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF,
        /* mac: zero in a HELLO */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        /* name, host */
        'a', 'b', 'h', '1',
    };
    uint8_t buf[BIG];
    struct casty__wire_hello h = sample_hello();
    long n = casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h);
    cr_assert_eq(n, (long)sizeof expected);
    cr_assert_eq(memcmp(buf, expected, sizeof expected), 0);

    /* And the hand-written bytes decode to the same values. */
    struct casty__wire_frame f = frame_of(expected, (long)sizeof expected);
    struct casty__wire_hello out;
    cr_assert_eq(casty__wire_decode_hello(&f, &out), 0);
    cr_assert_eq(out.node, 0x0102030405060708ull);
    cr_assert_eq(out.incarnation, 0x1112131415161718ull);
    cr_assert_eq(out.port, 8080);
    cr_assert_eq(out.lane, CASTY__WIRE_LANE_CONTROL);
    cr_assert_eq(out.hflags, CASTY__WIRE_HELLO_AUTH);
    cr_assert_str_eq(out.name, "ab");
    cr_assert_str_eq(out.host, "h1");
}

Test(wire, user_prefix_bytes_match_the_spec)
{
    static const uint8_t expected[] = {
        /* header: len = 4 + 16 + 5, kind USER, flags 0, reserved 0 */
        0x19, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
        /* actor */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
        /* type_id */
        0xEF, 0xBE, 0xAD, 0xDE, 0xBE, 0xBA, 0xFE, 0xCA,
    };
    uint8_t buf[BIG];
    memset(buf, 0xEE, sizeof buf);
    long n = casty__wire_encode_user_prefix(buf, sizeof buf, 0x1122334455667788ull,
                                            0xCAFEBABEDEADBEEFull, 5);
    cr_assert_eq(n, (long)sizeof expected + 5);
    cr_assert_eq(memcmp(buf, expected, sizeof expected), 0);
    cr_assert_eq(buf[sizeof expected], 0xEE, "the payload is the caller's to write");
}

Test(wire, resolve_and_heartbeat_bytes_match_the_spec)
{
    static const uint8_t resolve[] = {
        0x21, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, /* len 4 + 26 + 3 */
        0x01, 0, 0, 0, 0, 0, 0, 0,                     /* reply_to.node */
        0x02, 0, 0, 0, 0, 0, 0, 0,                     /* reply_to.actor */
        0x03, 0, 0, 0, 0, 0, 0, 0,                     /* tag */
        0x03, 0x00, '/', 'u', 'a',                     /* path_len, path */
    };
    static const uint8_t heartbeat[] = {
        0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, /* len 4 + 16, ACK */
        0x05, 0, 0, 0, 0, 0, 0, 0,                      /* seq */
        0x00, 0x01, 0, 0, 0, 0, 0, 0x80,                /* sent_ns */
    };
    uint8_t buf[BIG];
    struct casty__wire_resolve r = {.reply_node = 1, .reply_actor = 2, .tag = 3};
    strcpy(r.path, "/ua");
    cr_assert_eq(casty__wire_encode_resolve(buf, sizeof buf, &r), (long)sizeof resolve);
    cr_assert_eq(memcmp(buf, resolve, sizeof resolve), 0);
    struct casty__wire_heartbeat hb = {5, 0x8000000000000100ull};
    cr_assert_eq(casty__wire_encode_heartbeat(buf, sizeof buf, CASTY__WIRE_HEARTBEAT_ACK, &hb),
                 (long)sizeof heartbeat);
    cr_assert_eq(memcmp(buf, heartbeat, sizeof heartbeat), 0);
}

Test(wire, put_header_writes_len_kind_and_zeroes)
{
    uint8_t buf[CASTY__WIRE_HEADER];
    memset(buf, 0xFF, sizeof buf);
    casty__wire_put_header(buf, CASTY__WIRE_USER, 0x01020304);
    const uint8_t expected[] = {0x08, 0x03, 0x02, 0x01, 0x05, 0x00, 0x00, 0x00};
    cr_assert_eq(memcmp(buf, expected, sizeof expected), 0);
}

/* ---- casty__wire_next ------------------------------------------------------------------------ */

Test(wire, next_waits_for_the_whole_frame_byte_by_byte)
{
    struct casty__wire_hello h = sample_hello();
    struct casty__wire_resolve r = {.tag = 1};
    strcpy(r.path, "/user/x");
    struct casty__wire_heartbeat hb = {1, 2};
    uint8_t mac[CASTY__WIRE_MAC] = {1};
    long sizes[8];
    uint8_t frames[8][BIG];
    sizes[0] = casty__wire_encode_hello(frames[0], BIG, CASTY__WIRE_HELLO, &h);
    sizes[1] = casty__wire_encode_auth(frames[1], BIG, mac);
    sizes[2] = casty__wire_encode_refuse(frames[2], BIG, 1, "no");
    sizes[3] = casty__wire_encode_user_prefix(frames[3], BIG, 1, 2, 10);
    memset(frames[3] + CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED, 'u', 10);
    sizes[4] = casty__wire_encode_resolve(frames[4], BIG, &r);
    sizes[5] = casty__wire_encode_heartbeat(frames[5], BIG, CASTY__WIRE_HEARTBEAT, &hb);
    sizes[6] = casty__wire_encode_heartbeat(frames[6], BIG, CASTY__WIRE_HEARTBEAT_ACK, &hb);
    h.mac[0] = 1;
    sizes[7] = casty__wire_encode_hello(frames[7], BIG, CASTY__WIRE_WELCOME, &h);
    for (int i = 0; i < 8; i++) {
        cr_assert_gt(sizes[i], 0);
        for (long k = 0; k < sizes[i]; k++) {
            struct casty__wire_frame f = {0, NULL, 0};
            cr_assert_eq(casty__wire_next(frames[i], (size_t)k, CASTY__WIRE_MIN_FRAME, &f), 0,
                         "frame %d: %ld of %ld bytes is not a frame", i, k, sizes[i]);
            cr_assert_eq(f.body, NULL, "*f written before the frame is whole");
        }
        struct casty__wire_frame f;
        cr_assert_eq(casty__wire_next(frames[i], (size_t)sizes[i], CASTY__WIRE_MIN_FRAME, &f),
                     sizes[i]);
        cr_assert_eq(f.body, frames[i] + CASTY__WIRE_HEADER);
        cr_assert_eq(f.body_len, (uint32_t)(sizes[i] - CASTY__WIRE_HEADER));
        /* More bytes after it change nothing. */
        cr_assert_eq(casty__wire_next(frames[i], BIG, CASTY__WIRE_MIN_FRAME, &f), sizes[i]);
    }
}

/* A header with the given fields; the rest of the buffer left as is. */
static void header(uint8_t *b, uint32_t len, uint8_t kind, uint8_t flags, uint16_t reserved)
{
    b[0] = (uint8_t)len;
    b[1] = (uint8_t)(len >> 8);
    b[2] = (uint8_t)(len >> 16);
    b[3] = (uint8_t)(len >> 24);
    b[4] = kind;
    b[5] = flags;
    b[6] = (uint8_t)reserved;
    b[7] = (uint8_t)(reserved >> 8);
}

Test(wire, next_judges_a_header_from_its_eight_bytes)
{
    uint8_t b[CASTY__WIRE_HEADER];
    struct casty__wire_frame f;
    for (uint32_t len = 0; len < 4; len++) {
        header(b, len, CASTY__WIRE_USER, 0, 0);
        cr_assert_eq(casty__wire_next(b, sizeof b, CASTY__WIRE_MIN_FRAME, &f), CASTY_EPROTO,
                     "len %u", len);
        /* With 7 bytes the header is not yet complete. */
        cr_assert_eq(casty__wire_next(b, sizeof b - 1, CASTY__WIRE_MIN_FRAME, &f), 0);
    }
    /* len 4: an empty body, a whole frame in 8 bytes. */
    header(b, 4, CASTY__WIRE_USER, 0, 0);
    cr_assert_eq(casty__wire_next(b, sizeof b, CASTY__WIRE_MIN_FRAME, &f), 8);
    cr_assert_eq(f.body_len, 0);

    const uint8_t bad_kinds[] = {0, 9, 0x80, 0xFF};
    for (size_t i = 0; i < sizeof bad_kinds; i++) {
        header(b, 100, bad_kinds[i], 0, 0);
        cr_assert_eq(casty__wire_next(b, sizeof b, CASTY__WIRE_MIN_FRAME, &f), CASTY_EPROTO,
                     "kind %u", bad_kinds[i]);
    }
    for (uint8_t kind = 1; kind <= 8; kind++) {
        header(b, 100, kind, 0, 0);
        cr_assert_eq(casty__wire_next(b, sizeof b, CASTY__WIRE_MIN_FRAME, &f), 0, "kind %u", kind);
    }
    header(b, 100, CASTY__WIRE_USER, 0x01, 0);
    cr_assert_eq(casty__wire_next(b, sizeof b, CASTY__WIRE_MIN_FRAME, &f), CASTY_EPROTO);
    header(b, 100, CASTY__WIRE_USER, 0x80, 0);
    cr_assert_eq(casty__wire_next(b, sizeof b, CASTY__WIRE_MIN_FRAME, &f), CASTY_EPROTO);
    header(b, 100, CASTY__WIRE_USER, 0, 0x0001);
    cr_assert_eq(casty__wire_next(b, sizeof b, CASTY__WIRE_MIN_FRAME, &f), CASTY_EPROTO);
    header(b, 100, CASTY__WIRE_USER, 0, 0x0100);
    cr_assert_eq(casty__wire_next(b, sizeof b, CASTY__WIRE_MIN_FRAME, &f), CASTY_EPROTO);
}

Test(wire, next_refuses_a_frame_over_max_frame)
{
    uint8_t b[CASTY__WIRE_HEADER];
    struct casty__wire_frame f;
    const uint32_t max = CASTY__WIRE_MIN_FRAME;
    /* A whole frame of exactly max_frame bytes is allowed... */
    header(b, max - 4, CASTY__WIRE_USER, 0, 0);
    cr_assert_eq(casty__wire_next(b, sizeof b, max, &f), 0);
    /* ...one byte more is not, known from the header alone. */
    header(b, max - 3, CASTY__WIRE_USER, 0, 0);
    cr_assert_eq(casty__wire_next(b, sizeof b, max, &f), CASTY_EMSGSIZE);
    header(b, UINT32_MAX, CASTY__WIRE_USER, 0, 0);
    cr_assert_eq(casty__wire_next(b, sizeof b, max, &f), CASTY_EMSGSIZE);
    cr_assert_eq(casty__wire_next(b, sizeof b, UINT32_MAX, &f), CASTY_EMSGSIZE,
                 "len + 4 must not wrap");
    header(b, UINT32_MAX - 4, CASTY__WIRE_USER, 0, 0);
    cr_assert_eq(casty__wire_next(b, sizeof b, UINT32_MAX, &f), 0);
    /* The size check comes before the kind and flags checks. */
    header(b, max, 0, 0xFF, 0);
    cr_assert_eq(casty__wire_next(b, sizeof b, max, &f), CASTY_EMSGSIZE);
    /* An encoded frame against a smaller max_frame. */
    uint8_t buf[BIG];
    struct casty__wire_hello h = sample_hello();
    long n = casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h);
    cr_assert_eq(casty__wire_next(buf, (size_t)n, (uint32_t)n, &f), n);
    cr_assert_eq(casty__wire_next(buf, (size_t)n, (uint32_t)n - 1, &f), CASTY_EMSGSIZE);
}

/* ---- decoder rejections ------------------------------------------------------------------------ */

Test(wire, every_decoder_takes_only_its_exact_body)
{
    uint8_t buf[BIG];
    struct casty__wire_hello h = sample_hello();
    long n = casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h);
    assert_exact_body(CASTY__WIRE_HELLO, buf + 8, (uint32_t)n - 8, false);
    h.mac[3] = 3;
    n = casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_WELCOME, &h);
    assert_exact_body(CASTY__WIRE_WELCOME, buf + 8, (uint32_t)n - 8, false);
    uint8_t mac[CASTY__WIRE_MAC] = {9};
    n = casty__wire_encode_auth(buf, sizeof buf, mac);
    assert_exact_body(CASTY__WIRE_AUTH, buf + 8, (uint32_t)n - 8, false);
    n = casty__wire_encode_refuse(buf, sizeof buf, 2, "why");
    assert_exact_body(CASTY__WIRE_REFUSE, buf + 8, (uint32_t)n - 8, false);
    n = casty__wire_encode_user_prefix(buf, sizeof buf, 1, 2, 0);
    assert_exact_body(CASTY__WIRE_USER, buf + 8, (uint32_t)n - 8, true);
    struct casty__wire_resolve r = {.tag = 5};
    strcpy(r.path, "/user/p");
    n = casty__wire_encode_resolve(buf, sizeof buf, &r);
    assert_exact_body(CASTY__WIRE_RESOLVE, buf + 8, (uint32_t)n - 8, false);
    struct casty__wire_heartbeat hb = {3, 4};
    n = casty__wire_encode_heartbeat(buf, sizeof buf, CASTY__WIRE_HEARTBEAT, &hb);
    assert_exact_body(CASTY__WIRE_HEARTBEAT, buf + 8, (uint32_t)n - 8, false);
    assert_exact_body(CASTY__WIRE_HEARTBEAT_ACK, buf + 8, (uint32_t)n - 8, false);
}

Test(wire, decoders_refuse_every_truncation)
{
    uint8_t buf[BIG];
    memset(buf, 0, sizeof buf);
    struct casty__wire_hello h = sample_hello();
    long sizes[4];
    uint8_t kinds[4] = {CASTY__WIRE_HELLO, CASTY__WIRE_REFUSE, CASTY__WIRE_RESOLVE,
                        CASTY__WIRE_AUTH};
    uint8_t frames[4][BIG];
    sizes[0] = casty__wire_encode_hello(frames[0], BIG, CASTY__WIRE_HELLO, &h);
    sizes[1] = casty__wire_encode_refuse(frames[1], BIG, 1, "text");
    struct casty__wire_resolve r = {.tag = 5};
    strcpy(r.path, "/p");
    sizes[2] = casty__wire_encode_resolve(frames[2], BIG, &r);
    uint8_t mac[CASTY__WIRE_MAC] = {0};
    sizes[3] = casty__wire_encode_auth(frames[3], BIG, mac);
    for (int i = 0; i < 4; i++)
        for (long k = 0; k < sizes[i] - 8; k++)
            cr_assert_eq(decode_as(kinds[i], frames[i] + 8, (uint32_t)k), CASTY_EPROTO,
                         "kind %u with %ld body bytes", kinds[i], k);
    for (uint32_t k = 0; k < CASTY__WIRE_USER_FIXED; k++)
        cr_assert_eq(decode_as(CASTY__WIRE_USER, buf, k), CASTY_EPROTO);
    for (uint32_t k = 0; k < CASTY__WIRE_HEARTBEAT_BODY + 8; k++)
        if (k != CASTY__WIRE_HEARTBEAT_BODY)
            cr_assert_eq(decode_as(CASTY__WIRE_HEARTBEAT, buf, k), CASTY_EPROTO);
    cr_assert_eq(decode_as(CASTY__WIRE_AUTH, buf, CASTY__WIRE_MAC + 1), CASTY_EPROTO);
}

/* Encodes sample_hello as `kind`, lets `edit` change the body (and return
 * its new length), and decodes it. */
static int hello_edited(uint8_t kind, uint32_t (*edit)(uint8_t *body, uint32_t len))
{
    uint8_t buf[BIG];
    struct casty__wire_hello h = sample_hello();
    long n = casty__wire_encode_hello(buf, sizeof buf, kind, &h);
    cr_assert_gt(n, 0);
    uint32_t len = edit(buf + 8, (uint32_t)n - 8);
    return decode_as(kind, buf + 8, len);
}

static uint32_t bad_magic(uint8_t *b, uint32_t len)
{
    b[0] = 'c';
    return len;
}
static uint32_t nul_in_name(uint8_t *b, uint32_t len)
{
    b[CASTY__WIRE_HELLO_FIXED + 1] = 0;
    return len;
}
static uint32_t nul_in_host(uint8_t *b, uint32_t len)
{
    b[CASTY__WIRE_HELLO_FIXED + 2] = 0;
    return len;
}
static uint32_t empty_name(uint8_t *b, uint32_t len)
{
    /* name_len 0, the name's bytes counted as the host's: still exact. */
    b[26] = 0;
    b[27] = 4;
    return len;
}
static uint32_t empty_host(uint8_t *b, uint32_t len)
{
    b[26] = 4;
    b[27] = 0;
    return len;
}
static uint32_t long_name(uint8_t *b, uint32_t len)
{
    /* name_len 64 with 64 name bytes and a 1-byte host. */
    memset(b + CASTY__WIRE_HELLO_FIXED, 'n', 64);
    b[CASTY__WIRE_HELLO_FIXED + 64] = 'h';
    b[26] = 64;
    b[27] = 1;
    (void)len;
    return CASTY__WIRE_HELLO_FIXED + 65;
}
static uint32_t lengths_past_body(uint8_t *b, uint32_t len)
{
    b[27] = 3;
    return len;
}
static uint32_t nonzero_mac(uint8_t *b, uint32_t len)
{
    b[60 + 31] = 1;
    return len;
}
static uint32_t bad_lane(uint8_t *b, uint32_t len)
{
    b[6] = 2;
    return len;
}
static uint32_t bad_hflags(uint8_t *b, uint32_t len)
{
    b[7] = 0x03;
    return len;
}
static uint32_t trailing_byte(uint8_t *b, uint32_t len)
{
    b[len] = 'x';
    return len + 1;
}
static uint32_t unchanged(uint8_t *b, uint32_t len)
{
    (void)b;
    return len;
}

Test(wire, hello_decoder_refusals)
{
    for (uint8_t kind = CASTY__WIRE_HELLO; kind <= CASTY__WIRE_WELCOME; kind++) {
        cr_assert_eq(hello_edited(kind, unchanged), 0);
        cr_assert_eq(hello_edited(kind, bad_magic), CASTY_EPROTO);
        cr_assert_eq(hello_edited(kind, nul_in_name), CASTY_EPROTO);
        cr_assert_eq(hello_edited(kind, nul_in_host), CASTY_EPROTO);
        cr_assert_eq(hello_edited(kind, empty_name), CASTY_EPROTO);
        cr_assert_eq(hello_edited(kind, empty_host), CASTY_EPROTO);
        cr_assert_eq(hello_edited(kind, long_name), CASTY_EPROTO);
        cr_assert_eq(hello_edited(kind, lengths_past_body), CASTY_EPROTO);
        cr_assert_eq(hello_edited(kind, bad_lane), CASTY_EPROTO);
        cr_assert_eq(hello_edited(kind, bad_hflags), CASTY_EPROTO);
        cr_assert_eq(hello_edited(kind, trailing_byte), CASTY_EPROTO);
    }
    /* The mac must be zero in a HELLO; a WELCOME carries one. */
    cr_assert_eq(hello_edited(CASTY__WIRE_HELLO, nonzero_mac), CASTY_EPROTO);
    cr_assert_eq(hello_edited(CASTY__WIRE_WELCOME, nonzero_mac), 0);
}

Test(wire, hello_of_another_version_decodes_to_its_version_only)
{
    uint8_t buf[BIG];
    struct casty__wire_hello h = sample_hello();
    h.version = 2;
    long n = casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h);
    struct casty__wire_frame f = frame_of(buf, n);
    struct casty__wire_hello out;
    memset(&out, 0xCC, sizeof out);
    cr_assert_eq(casty__wire_decode_hello(&f, &out), 0);
    struct casty__wire_hello zero;
    memset(&zero, 0, sizeof zero);
    zero.version = 2;
    cr_assert_eq(memcmp(&out, &zero, sizeof out), 0, "only the version is set");

    /* Whatever follows the version: a body of just magic and version... */
    const uint8_t v7[] = {'C', 'S', 'T', 'Y', 0x07, 0x00};
    cr_assert_eq(decode_as(CASTY__WIRE_WELCOME, v7, sizeof v7), 0);
    f = (struct casty__wire_frame){CASTY__WIRE_WELCOME, v7, sizeof v7};
    cr_assert_eq(casty__wire_decode_hello(&f, &out), 0);
    cr_assert_eq(out.version, 7);
    /* ...but not without the whole version, nor with a bad magic. */
    cr_assert_eq(decode_as(CASTY__WIRE_HELLO, v7, 5), CASTY_EPROTO);
    const uint8_t bad[] = {'C', 'S', 'T', 'X', 0x07, 0x00};
    cr_assert_eq(decode_as(CASTY__WIRE_HELLO, bad, sizeof bad), CASTY_EPROTO);
    /* Version 0 is another version too. */
    const uint8_t v0[] = {'C', 'S', 'T', 'Y', 0x00, 0x00};
    f = (struct casty__wire_frame){CASTY__WIRE_HELLO, v0, sizeof v0};
    cr_assert_eq(casty__wire_decode_hello(&f, &out), 0);
    cr_assert_eq(out.version, 0);
    /* The right version with a short body is refused. */
    const uint8_t v1[] = {'C', 'S', 'T', 'Y', 0x01, 0x00};
    cr_assert_eq(decode_as(CASTY__WIRE_HELLO, v1, sizeof v1), CASTY_EPROTO);
}

Test(wire, refuse_resolve_and_fixed_size_decoder_refusals)
{
    uint8_t buf[BIG];
    /* REFUSE: NUL in the text, text_len past the body, trailing bytes. */
    long n = casty__wire_encode_refuse(buf, sizeof buf, 1, "abc");
    uint8_t *b = buf + 8;
    uint32_t len = (uint32_t)n - 8;
    cr_assert_eq(decode_as(CASTY__WIRE_REFUSE, b, len), 0);
    b[4] = 0;
    cr_assert_eq(decode_as(CASTY__WIRE_REFUSE, b, len), CASTY_EPROTO, "NUL in text");
    b[4] = 'b';
    b[2] = 4;
    cr_assert_eq(decode_as(CASTY__WIRE_REFUSE, b, len), CASTY_EPROTO, "text_len past the body");
    b[2] = 2;
    cr_assert_eq(decode_as(CASTY__WIRE_REFUSE, b, len), CASTY_EPROTO, "trailing byte");
    b[2] = 3;
    cr_assert_eq(decode_as(CASTY__WIRE_REFUSE, b, len), 0);

    /* RESOLVE: NUL in the path, empty path, path_len over 255, lengths. */
    struct casty__wire_resolve r = {.tag = 5};
    strcpy(r.path, "/ab");
    n = casty__wire_encode_resolve(buf, sizeof buf, &r);
    len = (uint32_t)n - 8;
    cr_assert_eq(decode_as(CASTY__WIRE_RESOLVE, b, len), 0);
    b[CASTY__WIRE_RESOLVE_FIXED + 1] = 0;
    cr_assert_eq(decode_as(CASTY__WIRE_RESOLVE, b, len), CASTY_EPROTO, "NUL in path");
    b[CASTY__WIRE_RESOLVE_FIXED + 1] = 'a';
    b[24] = 0;
    cr_assert_eq(decode_as(CASTY__WIRE_RESOLVE, b, CASTY__WIRE_RESOLVE_FIXED), CASTY_EPROTO,
                 "empty path");
    b[24] = 2;
    cr_assert_eq(decode_as(CASTY__WIRE_RESOLVE, b, len), CASTY_EPROTO, "trailing byte");
    b[24] = 4;
    cr_assert_eq(decode_as(CASTY__WIRE_RESOLVE, b, len), CASTY_EPROTO, "path_len past the body");
    /* path_len 256 with 256 path bytes. */
    memset(b + CASTY__WIRE_RESOLVE_FIXED, 'p', 256);
    b[24] = 0x00;
    b[25] = 0x01;
    cr_assert_eq(decode_as(CASTY__WIRE_RESOLVE, b, CASTY__WIRE_RESOLVE_FIXED + 256), CASTY_EPROTO,
                 "path of 256 bytes");
    b[24] = 0xFF;
    b[25] = 0x00;
    cr_assert_eq(decode_as(CASTY__WIRE_RESOLVE, b, CASTY__WIRE_RESOLVE_FIXED + 255), 0);

    /* Fixed-size bodies: one byte short or long. */
    cr_assert_eq(decode_as(CASTY__WIRE_AUTH, b, CASTY__WIRE_MAC - 1), CASTY_EPROTO);
    cr_assert_eq(decode_as(CASTY__WIRE_AUTH, b, CASTY__WIRE_MAC + 1), CASTY_EPROTO);
    cr_assert_eq(decode_as(CASTY__WIRE_HEARTBEAT, b, CASTY__WIRE_HEARTBEAT_BODY + 1), CASTY_EPROTO);
    cr_assert_eq(decode_as(CASTY__WIRE_HEARTBEAT_ACK, b, CASTY__WIRE_HEARTBEAT_BODY - 1),
                 CASTY_EPROTO);
    cr_assert_eq(decode_as(CASTY__WIRE_USER, b, CASTY__WIRE_USER_FIXED - 1), CASTY_EPROTO);
    cr_assert_eq(decode_as(CASTY__WIRE_USER, b, CASTY__WIRE_USER_FIXED), 0);
}

Test(wire, decoders_leave_out_alone_on_refusal)
{
    uint8_t junk[CASTY__WIRE_HELLO_FIXED + 8];
    memset(junk, 0, sizeof junk);
    struct casty__wire_frame f = {CASTY__WIRE_HELLO, junk, sizeof junk};
    struct casty__wire_hello h, before;
    memset(&h, 0x77, sizeof h);
    memcpy(&before, &h, sizeof h);
    cr_assert_eq(casty__wire_decode_hello(&f, &h), CASTY_EPROTO);
    cr_assert_eq(memcmp(&h, &before, sizeof h), 0);
    struct casty__wire_resolve r, rbefore;
    memset(&r, 0x77, sizeof r);
    memcpy(&rbefore, &r, sizeof r);
    f.kind = CASTY__WIRE_RESOLVE;
    cr_assert_eq(casty__wire_decode_resolve(&f, &r), CASTY_EPROTO);
    cr_assert_eq(memcmp(&r, &rbefore, sizeof r), 0);
}

/* ---- encoder refusals -------------------------------------------------------------------------- */

Test(wire, encoders_say_enospc_without_writing)
{
    uint8_t buf[BIG];
    struct casty__wire_hello h = sample_hello();
    struct casty__wire_resolve r = {.tag = 1};
    strcpy(r.path, "/user/x");
    struct casty__wire_heartbeat hb = {1, 2};
    uint8_t mac[CASTY__WIRE_MAC] = {1};
    long full[6] = {
        casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h),
        casty__wire_encode_auth(buf, sizeof buf, mac),
        casty__wire_encode_refuse(buf, sizeof buf, 1, "no"),
        casty__wire_encode_user_prefix(buf, sizeof buf, 1, 2, 100),
        casty__wire_encode_resolve(buf, sizeof buf, &r),
        casty__wire_encode_heartbeat(buf, sizeof buf, CASTY__WIRE_HEARTBEAT, &hb),
    };
    for (int i = 0; i < 6; i++) {
        long caps[] = {0, 1, CASTY__WIRE_HEADER,
                       i == 3 ? (long)(CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED - 1) : full[i] - 1};
        for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
            size_t cap = (size_t)caps[c];
            memset(buf, 0xAB, sizeof buf);
            long n;
            switch (i) {
            case 0: n = casty__wire_encode_hello(buf, cap, CASTY__WIRE_HELLO, &h); break;
            case 1: n = casty__wire_encode_auth(buf, cap, mac); break;
            case 2: n = casty__wire_encode_refuse(buf, cap, 1, "no"); break;
            case 3: n = casty__wire_encode_user_prefix(buf, cap, 1, 2, 100); break;
            case 4: n = casty__wire_encode_resolve(buf, cap, &r); break;
            default: n = casty__wire_encode_heartbeat(buf, cap, CASTY__WIRE_HEARTBEAT, &hb); break;
            }
            cr_assert_eq(n, CASTY_ENOSPC, "encoder %d, cap %zu", i, cap);
            for (size_t k = 0; k < sizeof buf; k++)
                cr_assert_eq(buf[k], 0xAB, "encoder %d wrote with cap %zu", i, cap);
        }
    }
    /* USER: cap need hold only the prefix written; the size returned is
     * the whole frame's, payload included. */
    cr_assert_eq(casty__wire_encode_user_prefix(buf, 23, 1, 2, 100), CASTY_ENOSPC);
    memset(buf, 0xAB, sizeof buf);
    cr_assert_eq(casty__wire_encode_user_prefix(buf, 24, 1, 2, 100), 24 + 100);
    cr_assert_eq(buf[24], 0xAB);
}

Test(wire, encoders_say_einval_for_bad_fields)
{
    uint8_t buf[BIG];
    struct casty__wire_hello h = sample_hello();
    cr_assert_eq(casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_AUTH, &h), CASTY_EINVAL);
    cr_assert_eq(casty__wire_encode_hello(buf, sizeof buf, 0, &h), CASTY_EINVAL);
    h.name[0] = '\0';
    cr_assert_eq(casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h), CASTY_EINVAL);
    h = sample_hello();
    memset(h.name, 'n', sizeof h.name); /* 64 bytes, no NUL */
    cr_assert_eq(casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h), CASTY_EINVAL);
    h = sample_hello();
    h.host[0] = '\0';
    cr_assert_eq(casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h), CASTY_EINVAL);
    h = sample_hello();
    memset(h.host, 'h', sizeof h.host); /* 256 bytes, no NUL */
    cr_assert_eq(casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h), CASTY_EINVAL);
    h = sample_hello();
    h.lane = 2;
    cr_assert_eq(casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h), CASTY_EINVAL);
    h = sample_hello();
    h.hflags = 0x80;
    cr_assert_eq(casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h), CASTY_EINVAL);
    h = sample_hello();
    h.mac[0] = 1;
    cr_assert_eq(casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_HELLO, &h), CASTY_EINVAL,
                 "a HELLO carries no mac");
    cr_assert_gt(casty__wire_encode_hello(buf, sizeof buf, CASTY__WIRE_WELCOME, &h), 0);
    /* A bad field is reported before a small buffer. */
    h.name[0] = '\0';
    cr_assert_eq(casty__wire_encode_hello(buf, 0, CASTY__WIRE_WELCOME, &h), CASTY_EINVAL);

    char text[CASTY__WIRE_TEXT_MAX + 2];
    memset(text, 't', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    cr_assert_eq(casty__wire_encode_refuse(buf, sizeof buf, 1, text), CASTY_EINVAL);

    struct casty__wire_resolve r = {.tag = 1};
    cr_assert_eq(casty__wire_encode_resolve(buf, sizeof buf, &r), CASTY_EINVAL, "empty path");
    memset(r.path, 'p', sizeof r.path); /* 256 bytes, no NUL */
    cr_assert_eq(casty__wire_encode_resolve(buf, sizeof buf, &r), CASTY_EINVAL);

    struct casty__wire_heartbeat hb = {1, 2};
    cr_assert_eq(casty__wire_encode_heartbeat(buf, sizeof buf, CASTY__WIRE_USER, &hb), CASTY_EINVAL);

    /* A payload whose frame would not fit the 32-bit len field. */
    cr_assert_eq(casty__wire_encode_user_prefix(buf, SIZE_MAX, 1, 2, UINT32_MAX), CASTY_EINVAL);
    cr_assert_eq(casty__wire_encode_user_prefix(buf, SIZE_MAX, 1, 2, UINT32_MAX - 19), CASTY_EINVAL);
}

/* ---- authentication ------------------------------------------------------------------------------ */

Test(wire, key_derivation_is_deterministic_blake2b)
{
    uint8_t a[CASTY__WIRE_KEY], b[CASTY__WIRE_KEY], c[CASTY__WIRE_KEY], e[CASTY__WIRE_KEY];
    casty__wire_key_from_secret("s3cret", a);
    casty__wire_key_from_secret("s3cret", b);
    casty__wire_key_from_secret("s3cret!", c);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_neq(memcmp(a, c, sizeof a), 0);
    casty__wire_key_from_secret("", e);
    cr_assert_neq(memcmp(a, e, sizeof a), 0);
    /* The construction net/wire.c documents: keyed BLAKE2b-256 with the
     * casty context as the key and the secret as the message. */
    uint8_t want[CASTY__WIRE_KEY];
    cr_assert_eq(sodium_init() >= 0, true);
    crypto_generichash(want, sizeof want, (const unsigned char *)"s3cret", 6,
                       (const unsigned char *)"casty-wire-key-v1", 17);
    cr_assert_eq(memcmp(a, want, sizeof a), 0);
}

Test(wire, mac_is_hmac_sha512_256_of_context_role_and_nonces)
{
    uint8_t key[CASTY__WIRE_KEY], n1[CASTY__WIRE_NONCE], n2[CASTY__WIRE_NONCE];
    uint8_t mac[CASTY__WIRE_MAC], want[CASTY__WIRE_MAC];
    casty__wire_key_from_secret("s3cret", key);
    for (unsigned i = 0; i < CASTY__WIRE_NONCE; i++) {
        n1[i] = (uint8_t)i;
        n2[i] = (uint8_t)(255 - i);
    }
    casty__wire_mac(key, CASTY__WIRE_ROLE_WELCOME, n1, n2, mac);
    crypto_auth_hmacsha512256_state st;
    uint8_t role = CASTY__WIRE_ROLE_WELCOME;
    crypto_auth_hmacsha512256_init(&st, key, sizeof key);
    crypto_auth_hmacsha512256_update(&st, (const unsigned char *)"casty-auth-v1", 13);
    crypto_auth_hmacsha512256_update(&st, &role, 1);
    crypto_auth_hmacsha512256_update(&st, n1, sizeof n1);
    crypto_auth_hmacsha512256_update(&st, n2, sizeof n2);
    crypto_auth_hmacsha512256_final(&st, want);
    cr_assert_eq(memcmp(mac, want, sizeof mac), 0);
}

Test(wire, mac_binds_secret_role_and_nonce_order)
{
    uint8_t key[CASTY__WIRE_KEY], other[CASTY__WIRE_KEY];
    uint8_t hello_nonce[CASTY__WIRE_NONCE], welcome_nonce[CASTY__WIRE_NONCE];
    uint8_t mac[CASTY__WIRE_MAC];
    casty__wire_key_from_secret("shared", key);
    casty__wire_key_from_secret("not shared", other);
    casty__wire_random_nonce(hello_nonce);
    casty__wire_random_nonce(welcome_nonce);
    cr_assert_neq(memcmp(hello_nonce, welcome_nonce, sizeof hello_nonce), 0);

    /* The WELCOME's proof. */
    casty__wire_mac(key, CASTY__WIRE_ROLE_WELCOME, hello_nonce, welcome_nonce, mac);
    uint8_t again[CASTY__WIRE_MAC];
    casty__wire_mac(key, CASTY__WIRE_ROLE_WELCOME, hello_nonce, welcome_nonce, again);
    cr_assert_eq(memcmp(mac, again, sizeof mac), 0, "deterministic");
    cr_assert(casty__wire_mac_ok(key, CASTY__WIRE_ROLE_WELCOME, hello_nonce, welcome_nonce, mac));
    cr_assert_not(casty__wire_mac_ok(other, CASTY__WIRE_ROLE_WELCOME, hello_nonce, welcome_nonce,
                                     mac), "another secret");
    cr_assert_not(casty__wire_mac_ok(key, CASTY__WIRE_ROLE_WELCOME, welcome_nonce, hello_nonce, mac),
                  "nonces swapped");
    cr_assert_not(casty__wire_mac_ok(key, CASTY__WIRE_ROLE_AUTH, hello_nonce, welcome_nonce, mac),
                  "another role");
    /* Reflecting the WELCOME's proof back is not an AUTH proof. */
    cr_assert_not(casty__wire_mac_ok(key, CASTY__WIRE_ROLE_AUTH, welcome_nonce, hello_nonce, mac));
    for (unsigned bit = 0; bit < 8 * CASTY__WIRE_MAC; bit += 37) {
        uint8_t bad[CASTY__WIRE_MAC];
        memcpy(bad, mac, sizeof bad);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_not(casty__wire_mac_ok(key, CASTY__WIRE_ROLE_WELCOME, hello_nonce, welcome_nonce,
                                         bad));
    }
    hello_nonce[0] ^= 1;
    cr_assert_not(casty__wire_mac_ok(key, CASTY__WIRE_ROLE_WELCOME, hello_nonce, welcome_nonce, mac),
                  "another nonce");

    /* The AUTH proof, through the AUTH frame. */
    hello_nonce[0] ^= 1;
    casty__wire_mac(key, CASTY__WIRE_ROLE_AUTH, welcome_nonce, hello_nonce, mac);
    uint8_t buf[BIG], got[CASTY__WIRE_MAC];
    struct casty__wire_frame f = frame_of(buf, casty__wire_encode_auth(buf, sizeof buf, mac));
    cr_assert_eq(casty__wire_decode_auth(&f, got), 0);
    cr_assert(casty__wire_mac_ok(key, CASTY__WIRE_ROLE_AUTH, welcome_nonce, hello_nonce, got));
    cr_assert_not(casty__wire_mac_ok(key, CASTY__WIRE_ROLE_WELCOME, welcome_nonce, hello_nonce, got));
}

Test(wire, random_nonces_differ)
{
    uint8_t a[CASTY__WIRE_NONCE], b[CASTY__WIRE_NONCE], zero[CASTY__WIRE_NONCE] = {0};
    casty__wire_random_nonce(a);
    casty__wire_random_nonce(b);
    cr_assert_neq(memcmp(a, b, sizeof a), 0);
    cr_assert_neq(memcmp(a, zero, sizeof a), 0);
}
