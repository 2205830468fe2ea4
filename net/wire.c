/* The remoting wire codec: encodes and decodes the frames that net/wire.h
 * specifies byte by byte, and computes the handshake's key and MACs. It
 * does no I/O, allocates nothing and keeps no state (libsodium's own
 * one-time initialisation aside); reading and writing sockets, and deciding
 * what a frame means for a connection, is the transport's job.
 *
 * Two details the header leaves to this file:
 *
 *   key = BLAKE2b-256(key: "casty-wire-key-v1" (17 bytes, no NUL),
 *                     message: the secret's bytes without its NUL)
 *   mac = HMAC-SHA512-256(key, "casty-auth-v1" (13 bytes, no NUL) ||
 *                         role (1 byte) || first (32) || second (32))
 *
 * Validity rules beyond the layout, checked by the decoders and refused by
 * the encoders (CASTY_EINVAL): a HELLO/WELCOME lane is 0 or 1 and its
 * hflags have only CASTY__WIRE_HELLO_AUTH; a HELLO's mac is zero (a
 * WELCOME's mac is not checked here: the handshake verifies it). REFUSE
 * codes are not checked, so a peer's newer reason still reads as a refusal.
 * The version is written as given and decoded as described in wire.h. */
#include <assert.h>
#include <limits.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "casty/error.h"
#include "wire.h"

/* ---- the layout, locked ---------------------------------------------------------
 * Offsets are the spec's numbers; each is asserted to follow the previous
 * field, so a typo in either shows at compile time. */

#define FIELD_ENDS(off, type) ((off) + sizeof(type))

enum {
    HDR_LEN = 0,
    HDR_KIND = 4,
    HDR_FLAGS = 5,
    HDR_RESERVED = 6,
};
static_assert(HDR_KIND == FIELD_ENDS(HDR_LEN, uint32_t), "header kind follows len");
static_assert(HDR_FLAGS == FIELD_ENDS(HDR_KIND, uint8_t), "header flags follow kind");
static_assert(HDR_RESERVED == FIELD_ENDS(HDR_FLAGS, uint8_t), "header reserved follows flags");
static_assert(CASTY__WIRE_HEADER == FIELD_ENDS(HDR_RESERVED, uint16_t), "header is 8 bytes");
static_assert(CASTY__WIRE_HEADER == 8, "header is 8 bytes");
/* len counts the bytes after its own four: a frame is len + LEN_BYTES. */
#define LEN_BYTES ((uint32_t)sizeof(uint32_t))

enum {
    HELLO_MAGIC = 0,
    HELLO_VERSION = 4,
    HELLO_LANE = 6,
    HELLO_HFLAGS = 7,
    HELLO_NODE = 8,
    HELLO_INCARNATION = 16,
    HELLO_PORT = 24,
    HELLO_NAME_LEN = 26,
    HELLO_HOST_LEN = 27,
    HELLO_NONCE = 28,
    HELLO_MAC = 60,
};
static_assert(HELLO_VERSION == FIELD_ENDS(HELLO_MAGIC, uint32_t), "hello version follows magic");
static_assert(HELLO_LANE == FIELD_ENDS(HELLO_VERSION, uint16_t), "hello lane follows version");
static_assert(HELLO_HFLAGS == FIELD_ENDS(HELLO_LANE, uint8_t), "hello hflags follow lane");
static_assert(HELLO_NODE == FIELD_ENDS(HELLO_HFLAGS, uint8_t), "hello node follows hflags");
static_assert(HELLO_INCARNATION == FIELD_ENDS(HELLO_NODE, uint64_t), "hello incarnation follows node");
static_assert(HELLO_PORT == FIELD_ENDS(HELLO_INCARNATION, uint64_t), "hello port follows incarnation");
static_assert(HELLO_NAME_LEN == FIELD_ENDS(HELLO_PORT, uint16_t), "hello name_len follows port");
static_assert(HELLO_HOST_LEN == FIELD_ENDS(HELLO_NAME_LEN, uint8_t), "hello host_len follows name_len");
static_assert(HELLO_NONCE == FIELD_ENDS(HELLO_HOST_LEN, uint8_t), "hello nonce follows host_len");
static_assert(HELLO_MAC == HELLO_NONCE + CASTY__WIRE_NONCE, "hello mac follows nonce");
static_assert(CASTY__WIRE_HELLO_FIXED == HELLO_MAC + CASTY__WIRE_MAC, "hello fixed part ends at mac");
static_assert(CASTY__WIRE_HELLO_FIXED ==
                  sizeof(uint32_t) + sizeof(uint16_t) + 2 * sizeof(uint8_t) + 2 * sizeof(uint64_t) +
                      sizeof(uint16_t) + 2 * sizeof(uint8_t) + CASTY__WIRE_NONCE + CASTY__WIRE_MAC,
              "hello fixed part is the sum of its fields");
static_assert(CASTY__WIRE_HELLO_FIXED == 92, "hello fixed part is 92 bytes");

enum {
    REFUSE_CODE = 0,
    REFUSE_TEXT_LEN = 2,
    REFUSE_FIXED = 3,
};
static_assert(REFUSE_TEXT_LEN == FIELD_ENDS(REFUSE_CODE, uint16_t), "refuse text_len follows code");
static_assert(REFUSE_FIXED == FIELD_ENDS(REFUSE_TEXT_LEN, uint8_t), "refuse text follows text_len");

enum {
    USER_ACTOR = 0,
    USER_TYPE_ID = 8,
};
static_assert(USER_TYPE_ID == FIELD_ENDS(USER_ACTOR, uint64_t), "user type_id follows actor");
static_assert(CASTY__WIRE_USER_FIXED == FIELD_ENDS(USER_TYPE_ID, uint64_t), "user payload follows type_id");
static_assert(CASTY__WIRE_USER_FIXED == 16, "user fixed part is 16 bytes");

enum {
    RESOLVE_REPLY_NODE = 0,
    RESOLVE_REPLY_ACTOR = 8,
    RESOLVE_TAG = 16,
    RESOLVE_PATH_LEN = 24,
};
static_assert(RESOLVE_REPLY_ACTOR == FIELD_ENDS(RESOLVE_REPLY_NODE, uint64_t), "resolve actor follows node");
static_assert(RESOLVE_TAG == FIELD_ENDS(RESOLVE_REPLY_ACTOR, uint64_t), "resolve tag follows actor");
static_assert(RESOLVE_PATH_LEN == FIELD_ENDS(RESOLVE_TAG, uint64_t), "resolve path_len follows tag");
static_assert(CASTY__WIRE_RESOLVE_FIXED == FIELD_ENDS(RESOLVE_PATH_LEN, uint16_t),
              "resolve path follows path_len");
static_assert(CASTY__WIRE_RESOLVE_FIXED == 26, "resolve fixed part is 26 bytes");

enum {
    HEARTBEAT_SEQ = 0,
    HEARTBEAT_SENT_NS = 8,
};
static_assert(HEARTBEAT_SENT_NS == FIELD_ENDS(HEARTBEAT_SEQ, uint64_t), "heartbeat sent_ns follows seq");
static_assert(CASTY__WIRE_HEARTBEAT_BODY == FIELD_ENDS(HEARTBEAT_SENT_NS, uint64_t),
              "heartbeat body is seq + sent_ns");
static_assert(CASTY__WIRE_HEARTBEAT_BODY == 16, "heartbeat body is 16 bytes");

/* The constants against the structs and the fields that carry them. */
static_assert(CASTY__WIRE_MAGIC == ((uint32_t)'C' | (uint32_t)'S' << 8 | (uint32_t)'T' << 16 |
                                    (uint32_t)'Y' << 24),
              "magic reads \"CSTY\" on the wire");
static_assert(CASTY__WIRE_VERSION <= UINT16_MAX, "version fits its 2-byte field");
static_assert(sizeof(((struct casty__wire_hello *)0)->nonce) == CASTY__WIRE_NONCE, "nonce array");
static_assert(sizeof(((struct casty__wire_hello *)0)->mac) == CASTY__WIRE_MAC, "mac array");
static_assert(sizeof(((struct casty__wire_hello *)0)->name) == CASTY__WIRE_NAME_MAX + 1, "name array");
static_assert(sizeof(((struct casty__wire_hello *)0)->host) == CASTY__WIRE_HOST_MAX + 1, "host array");
static_assert(sizeof(((struct casty__wire_resolve *)0)->path) == CASTY__WIRE_PATH_MAX + 1, "path array");
static_assert(CASTY__WIRE_NAME_MAX <= UINT8_MAX, "name_len is one byte");
static_assert(CASTY__WIRE_HOST_MAX <= UINT8_MAX, "host_len is one byte");
static_assert(CASTY__WIRE_TEXT_MAX <= UINT8_MAX, "text_len is one byte");
static_assert(CASTY__WIRE_PATH_MAX <= UINT16_MAX, "path_len is two bytes");
static_assert(CASTY__WIRE_HEARTBEAT_ACK == 8 && CASTY__WIRE_HELLO == 1, "kinds are 1..8");
static_assert(CASTY__WIRE_HEADER + CASTY__WIRE_HELLO_FIXED + CASTY__WIRE_NAME_MAX +
                      CASTY__WIRE_HOST_MAX <= CASTY__WIRE_MIN_FRAME,
              "the largest HELLO fits the smallest max_frame");
static_assert(CASTY__WIRE_HEADER + CASTY__WIRE_RESOLVE_FIXED + CASTY__WIRE_PATH_MAX <=
                  CASTY__WIRE_MIN_FRAME,
              "the largest RESOLVE fits the smallest max_frame");
static_assert(CASTY__WIRE_MIN_FRAME <= CASTY__WIRE_DEFAULT_MAX_FRAME, "default max_frame is allowed");

/* libsodium: crypto_auth is HMAC-SHA512-256 with 32-byte keys and tags. */
static const char key_context[] = "casty-wire-key-v1";
static const char mac_context[] = "casty-auth-v1";
#define KEY_CONTEXT_LEN (sizeof key_context - 1)
#define MAC_CONTEXT_LEN (sizeof mac_context - 1)
#define MAC_INPUT_LEN (MAC_CONTEXT_LEN + 1 + 2 * CASTY__WIRE_NONCE)
static_assert(crypto_auth_BYTES == CASTY__WIRE_MAC, "crypto_auth tags are 32 bytes");
static_assert(crypto_auth_KEYBYTES == CASTY__WIRE_KEY, "crypto_auth keys are 32 bytes");
static_assert(crypto_auth_hmacsha512256_BYTES == crypto_auth_BYTES, "crypto_auth is HMAC-SHA512-256");
static_assert(crypto_generichash_BYTES_MIN <= CASTY__WIRE_KEY &&
                  CASTY__WIRE_KEY <= crypto_generichash_BYTES_MAX,
              "BLAKE2b can make a 32-byte key");
static_assert(KEY_CONTEXT_LEN >= crypto_generichash_KEYBYTES_MIN &&
                  KEY_CONTEXT_LEN <= crypto_generichash_KEYBYTES_MAX,
              "the key context is a valid BLAKE2b key");
static_assert(MAC_INPUT_LEN == 78, "mac input: 13-byte context, role, two nonces");

/* ---- little-endian helpers -------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- framing ------------------------------------------------------------------------- */

long casty__wire_next(const uint8_t *buf, size_t len, uint32_t max_frame,
                      struct casty__wire_frame *f)
{
    if (len < CASTY__WIRE_HEADER)
        return 0;
    uint32_t flen = get32(buf + HDR_LEN);
    if (flen < CASTY__WIRE_HEADER - LEN_BYTES)
        return CASTY_EPROTO;
    uint64_t total = (uint64_t)flen + LEN_BYTES;
    if (total > max_frame || total > LONG_MAX)
        return CASTY_EMSGSIZE;
    uint8_t kind = buf[HDR_KIND];
    if (kind < CASTY__WIRE_HELLO || kind > CASTY__WIRE_HEARTBEAT_ACK)
        return CASTY_EPROTO;
    if (buf[HDR_FLAGS] != 0 || get16(buf + HDR_RESERVED) != 0)
        return CASTY_EPROTO;
    if (len < total)
        return 0;
    f->kind = kind;
    f->body = buf + CASTY__WIRE_HEADER;
    f->body_len = (uint32_t)(total - CASTY__WIRE_HEADER);
    return (long)total;
}

void casty__wire_put_header(uint8_t *buf, uint8_t kind, uint32_t body_len)
{
    put32(buf + HDR_LEN, body_len + (CASTY__WIRE_HEADER - LEN_BYTES));
    buf[HDR_KIND] = kind;
    buf[HDR_FLAGS] = 0;
    put16(buf + HDR_RESERVED, 0);
}

/* ---- encoders ---------------------------------------------------------------------------
 * Each checks its fields (CASTY_EINVAL), then the room (CASTY_ENOSPC), and
 * only then writes: on error buf is untouched. */

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static bool valid_lane_and_flags(uint8_t lane, uint8_t hflags)
{
    return (lane == CASTY__WIRE_LANE_USER || lane == CASTY__WIRE_LANE_CONTROL) &&
           (hflags & ~CASTY__WIRE_HELLO_AUTH) == 0;
}

long casty__wire_encode_hello(uint8_t *buf, size_t cap, uint8_t kind, const struct casty__wire_hello *h)
{
    if (kind != CASTY__WIRE_HELLO && kind != CASTY__WIRE_WELCOME)
        return CASTY_EINVAL;
    size_t name_len = strnlen(h->name, sizeof h->name);
    size_t host_len = strnlen(h->host, sizeof h->host);
    if (name_len == 0 || name_len > CASTY__WIRE_NAME_MAX || host_len == 0 ||
        host_len > CASTY__WIRE_HOST_MAX)
        return CASTY_EINVAL;
    if (!valid_lane_and_flags(h->lane, h->hflags))
        return CASTY_EINVAL;
    if (kind == CASTY__WIRE_HELLO && !all_zero(h->mac, sizeof h->mac))
        return CASTY_EINVAL;
    size_t body_len = CASTY__WIRE_HELLO_FIXED + name_len + host_len;
    if (cap < CASTY__WIRE_HEADER + body_len)
        return CASTY_ENOSPC;
    casty__wire_put_header(buf, kind, (uint32_t)body_len);
    uint8_t *b = buf + CASTY__WIRE_HEADER;
    put32(b + HELLO_MAGIC, CASTY__WIRE_MAGIC);
    put16(b + HELLO_VERSION, h->version);
    b[HELLO_LANE] = h->lane;
    b[HELLO_HFLAGS] = h->hflags;
    put64(b + HELLO_NODE, h->node);
    put64(b + HELLO_INCARNATION, h->incarnation);
    put16(b + HELLO_PORT, h->port);
    b[HELLO_NAME_LEN] = (uint8_t)name_len;
    b[HELLO_HOST_LEN] = (uint8_t)host_len;
    memcpy(b + HELLO_NONCE, h->nonce, CASTY__WIRE_NONCE);
    memcpy(b + HELLO_MAC, h->mac, CASTY__WIRE_MAC);
    memcpy(b + CASTY__WIRE_HELLO_FIXED, h->name, name_len);
    memcpy(b + CASTY__WIRE_HELLO_FIXED + name_len, h->host, host_len);
    return (long)(CASTY__WIRE_HEADER + body_len);
}

long casty__wire_encode_auth(uint8_t *buf, size_t cap, const uint8_t mac[CASTY__WIRE_MAC])
{
    if (cap < CASTY__WIRE_HEADER + CASTY__WIRE_MAC)
        return CASTY_ENOSPC;
    casty__wire_put_header(buf, CASTY__WIRE_AUTH, CASTY__WIRE_MAC);
    memcpy(buf + CASTY__WIRE_HEADER, mac, CASTY__WIRE_MAC);
    return (long)(CASTY__WIRE_HEADER + CASTY__WIRE_MAC);
}

/* text may be NULL or "" for no reason. */
long casty__wire_encode_refuse(uint8_t *buf, size_t cap, uint16_t code, const char *text)
{
    size_t text_len = text ? strnlen(text, CASTY__WIRE_TEXT_MAX + 1) : 0;
    if (text_len > CASTY__WIRE_TEXT_MAX)
        return CASTY_EINVAL;
    size_t body_len = REFUSE_FIXED + text_len;
    if (cap < CASTY__WIRE_HEADER + body_len)
        return CASTY_ENOSPC;
    casty__wire_put_header(buf, CASTY__WIRE_REFUSE, (uint32_t)body_len);
    uint8_t *b = buf + CASTY__WIRE_HEADER;
    put16(b + REFUSE_CODE, code);
    b[REFUSE_TEXT_LEN] = (uint8_t)text_len;
    if (text_len)
        memcpy(b + REFUSE_FIXED, text, text_len);
    return (long)(CASTY__WIRE_HEADER + body_len);
}

/* Writes CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED bytes, so cap need
 * only hold those (the payload may live elsewhere, e.g. for a gathered
 * write); returns the whole frame's size, header + fixed part +
 * payload_len, as every encoder does. */
long casty__wire_encode_user_prefix(uint8_t *buf, size_t cap, uint64_t actor, uint64_t type_id,
                                    uint32_t payload_len)
{
    uint64_t total = (uint64_t)CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED + payload_len;
    /* The len field holds total - 4; the return value must hold total. */
    if (total - LEN_BYTES > UINT32_MAX || total > LONG_MAX)
        return CASTY_EINVAL;
    if (cap < CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED)
        return CASTY_ENOSPC;
    casty__wire_put_header(buf, CASTY__WIRE_USER, (uint32_t)(CASTY__WIRE_USER_FIXED + payload_len));
    uint8_t *b = buf + CASTY__WIRE_HEADER;
    put64(b + USER_ACTOR, actor);
    put64(b + USER_TYPE_ID, type_id);
    return (long)total;
}

long casty__wire_encode_resolve(uint8_t *buf, size_t cap, const struct casty__wire_resolve *r)
{
    size_t path_len = strnlen(r->path, sizeof r->path);
    if (path_len == 0 || path_len > CASTY__WIRE_PATH_MAX)
        return CASTY_EINVAL;
    size_t body_len = CASTY__WIRE_RESOLVE_FIXED + path_len;
    if (cap < CASTY__WIRE_HEADER + body_len)
        return CASTY_ENOSPC;
    casty__wire_put_header(buf, CASTY__WIRE_RESOLVE, (uint32_t)body_len);
    uint8_t *b = buf + CASTY__WIRE_HEADER;
    put64(b + RESOLVE_REPLY_NODE, r->reply_node);
    put64(b + RESOLVE_REPLY_ACTOR, r->reply_actor);
    put64(b + RESOLVE_TAG, r->tag);
    put16(b + RESOLVE_PATH_LEN, (uint16_t)path_len);
    memcpy(b + CASTY__WIRE_RESOLVE_FIXED, r->path, path_len);
    return (long)(CASTY__WIRE_HEADER + body_len);
}

long casty__wire_encode_heartbeat(uint8_t *buf, size_t cap, uint8_t kind,
                                  const struct casty__wire_heartbeat *hb)
{
    if (kind != CASTY__WIRE_HEARTBEAT && kind != CASTY__WIRE_HEARTBEAT_ACK)
        return CASTY_EINVAL;
    if (cap < CASTY__WIRE_HEADER + CASTY__WIRE_HEARTBEAT_BODY)
        return CASTY_ENOSPC;
    casty__wire_put_header(buf, kind, CASTY__WIRE_HEARTBEAT_BODY);
    uint8_t *b = buf + CASTY__WIRE_HEADER;
    put64(b + HEARTBEAT_SEQ, hb->seq);
    put64(b + HEARTBEAT_SENT_NS, hb->sent_ns);
    return (long)(CASTY__WIRE_HEADER + CASTY__WIRE_HEARTBEAT_BODY);
}

/* ---- decoders ---------------------------------------------------------------------------
 * Each checks a length against body_len before every read it covers, and
 * writes *out only on success. */

/* Copies n bytes of a string field into dst (n + 1 bytes) and terminates
 * it; false when the bytes hold a NUL. */
static bool take_string(char *dst, const uint8_t *src, size_t n)
{
    if (memchr(src, 0, n) != NULL)
        return false;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return true;
}

int casty__wire_decode_hello(const struct casty__wire_frame *f, struct casty__wire_hello *out)
{
    if (f->kind != CASTY__WIRE_HELLO && f->kind != CASTY__WIRE_WELCOME)
        return CASTY_EPROTO;
    const uint8_t *b = f->body;
    if (f->body_len < HELLO_LANE || get32(b + HELLO_MAGIC) != CASTY__WIRE_MAGIC)
        return CASTY_EPROTO;
    uint16_t version = get16(b + HELLO_VERSION);
    if (version != CASTY__WIRE_VERSION) {
        /* Another version: only the version is meaningful, so the caller
         * can refuse with CASTY__WIRE_REFUSE_VERSION. */
        memset(out, 0, sizeof *out);
        out->version = version;
        return 0;
    }
    if (f->body_len < CASTY__WIRE_HELLO_FIXED)
        return CASTY_EPROTO;
    struct casty__wire_hello h;
    h.version = version;
    h.lane = b[HELLO_LANE];
    h.hflags = b[HELLO_HFLAGS];
    h.node = get64(b + HELLO_NODE);
    h.incarnation = get64(b + HELLO_INCARNATION);
    h.port = get16(b + HELLO_PORT);
    size_t name_len = b[HELLO_NAME_LEN];
    size_t host_len = b[HELLO_HOST_LEN];
    memcpy(h.nonce, b + HELLO_NONCE, CASTY__WIRE_NONCE);
    memcpy(h.mac, b + HELLO_MAC, CASTY__WIRE_MAC);
    if (!valid_lane_and_flags(h.lane, h.hflags))
        return CASTY_EPROTO;
    if (name_len == 0 || name_len > CASTY__WIRE_NAME_MAX || host_len == 0 ||
        host_len > CASTY__WIRE_HOST_MAX)
        return CASTY_EPROTO;
    if (f->body_len != CASTY__WIRE_HELLO_FIXED + name_len + host_len)
        return CASTY_EPROTO;
    if (f->kind == CASTY__WIRE_HELLO && !all_zero(h.mac, sizeof h.mac))
        return CASTY_EPROTO;
    if (!take_string(h.name, b + CASTY__WIRE_HELLO_FIXED, name_len) ||
        !take_string(h.host, b + CASTY__WIRE_HELLO_FIXED + name_len, host_len))
        return CASTY_EPROTO;
    *out = h;
    return 0;
}

int casty__wire_decode_auth(const struct casty__wire_frame *f, uint8_t mac[CASTY__WIRE_MAC])
{
    if (f->kind != CASTY__WIRE_AUTH || f->body_len != CASTY__WIRE_MAC)
        return CASTY_EPROTO;
    memcpy(mac, f->body, CASTY__WIRE_MAC);
    return 0;
}

int casty__wire_decode_refuse(const struct casty__wire_frame *f, uint16_t *code,
                              char text[CASTY__WIRE_TEXT_MAX + 1])
{
    if (f->kind != CASTY__WIRE_REFUSE || f->body_len < REFUSE_FIXED)
        return CASTY_EPROTO;
    const uint8_t *b = f->body;
    size_t text_len = b[REFUSE_TEXT_LEN];
    if (f->body_len != REFUSE_FIXED + text_len || memchr(b + REFUSE_FIXED, 0, text_len) != NULL)
        return CASTY_EPROTO;
    *code = get16(b + REFUSE_CODE);
    take_string(text, b + REFUSE_FIXED, text_len);
    return 0;
}

int casty__wire_decode_user(const struct casty__wire_frame *f, struct casty__wire_user *out)
{
    if (f->kind != CASTY__WIRE_USER || f->body_len < CASTY__WIRE_USER_FIXED)
        return CASTY_EPROTO;
    const uint8_t *b = f->body;
    out->actor = get64(b + USER_ACTOR);
    out->type_id = get64(b + USER_TYPE_ID);
    out->payload = b + CASTY__WIRE_USER_FIXED;
    out->payload_len = f->body_len - CASTY__WIRE_USER_FIXED;
    return 0;
}

int casty__wire_decode_resolve(const struct casty__wire_frame *f, struct casty__wire_resolve *out)
{
    if (f->kind != CASTY__WIRE_RESOLVE || f->body_len < CASTY__WIRE_RESOLVE_FIXED)
        return CASTY_EPROTO;
    const uint8_t *b = f->body;
    size_t path_len = get16(b + RESOLVE_PATH_LEN);
    if (path_len == 0 || path_len > CASTY__WIRE_PATH_MAX ||
        f->body_len != CASTY__WIRE_RESOLVE_FIXED + path_len ||
        memchr(b + CASTY__WIRE_RESOLVE_FIXED, 0, path_len) != NULL)
        return CASTY_EPROTO;
    out->reply_node = get64(b + RESOLVE_REPLY_NODE);
    out->reply_actor = get64(b + RESOLVE_REPLY_ACTOR);
    out->tag = get64(b + RESOLVE_TAG);
    take_string(out->path, b + CASTY__WIRE_RESOLVE_FIXED, path_len);
    return 0;
}

int casty__wire_decode_heartbeat(const struct casty__wire_frame *f, struct casty__wire_heartbeat *out)
{
    if ((f->kind != CASTY__WIRE_HEARTBEAT && f->kind != CASTY__WIRE_HEARTBEAT_ACK) ||
        f->body_len != CASTY__WIRE_HEARTBEAT_BODY)
        return CASTY_EPROTO;
    out->seq = get64(f->body + HEARTBEAT_SEQ);
    out->sent_ns = get64(f->body + HEARTBEAT_SENT_NS);
    return 0;
}

/* ---- authentication ------------------------------------------------------------------------ */

/* libsodium's one-time set-up: idempotent and thread-safe, so every
 * function that uses libsodium calls it rather than keeping a flag here.
 * It fails only when the platform has no usable random source, and a
 * handshake without one is unsafe, so that aborts (as libsodium does). */
static void sodium_ready(void)
{
    if (sodium_init() < 0)
        abort();
}

/* secret: a NUL-terminated string, not NULL. */
void casty__wire_key_from_secret(const char *secret, uint8_t key[CASTY__WIRE_KEY])
{
    sodium_ready();
    crypto_generichash(key, CASTY__WIRE_KEY, (const unsigned char *)secret, strlen(secret),
                       (const unsigned char *)key_context, KEY_CONTEXT_LEN);
}

/* The bytes the mac covers (MAC_INPUT_LEN of them, into in). */
static void mac_input(uint8_t in[MAC_INPUT_LEN], uint8_t role, const uint8_t first[CASTY__WIRE_NONCE],
                      const uint8_t second[CASTY__WIRE_NONCE])
{
    memcpy(in, mac_context, MAC_CONTEXT_LEN);
    in[MAC_CONTEXT_LEN] = role;
    memcpy(in + MAC_CONTEXT_LEN + 1, first, CASTY__WIRE_NONCE);
    memcpy(in + MAC_CONTEXT_LEN + 1 + CASTY__WIRE_NONCE, second, CASTY__WIRE_NONCE);
}

void casty__wire_mac(const uint8_t key[CASTY__WIRE_KEY], uint8_t role,
                     const uint8_t first[CASTY__WIRE_NONCE],
                     const uint8_t second[CASTY__WIRE_NONCE], uint8_t mac[CASTY__WIRE_MAC])
{
    uint8_t in[MAC_INPUT_LEN];
    sodium_ready();
    mac_input(in, role, first, second);
    crypto_auth(mac, in, sizeof in, key);
}

bool casty__wire_mac_ok(const uint8_t key[CASTY__WIRE_KEY], uint8_t role,
                        const uint8_t first[CASTY__WIRE_NONCE],
                        const uint8_t second[CASTY__WIRE_NONCE],
                        const uint8_t mac[CASTY__WIRE_MAC])
{
    uint8_t in[MAC_INPUT_LEN];
    sodium_ready();
    mac_input(in, role, first, second);
    return crypto_auth_verify(mac, in, sizeof in, key) == 0;
}

void casty__wire_random_nonce(uint8_t nonce[CASTY__WIRE_NONCE])
{
    sodium_ready();
    randombytes_buf(nonce, CASTY__WIRE_NONCE);
}
