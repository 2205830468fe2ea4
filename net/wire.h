/* Internal (not installed). The remoting wire format: frames, the handshake
 * and its HMAC challenge-response. Pure functions over byte buffers (no I/O,
 * no allocation, no runtime state), so the decoders can be fuzzed alone.
 *
 * All integers are little-endian. Every frame is
 *
 *     offset  size  field
 *     0       4     len       bytes after this field: 4 + body length;
 *                             4 <= len <= max_frame - 4
 *     4       1     kind      enum casty__wire_kind
 *     5       1     flags     0 (reserved: nonzero is a protocol error)
 *     6       2     reserved  0 (nonzero is a protocol error)
 *     8       len-4 body      per kind, below
 *
 * so a whole frame is len + 4 bytes and max_frame bounds the whole frame.
 *
 * HELLO (1), sent first by the connecting side, and WELCOME (2), the
 * accepting side's answer, share one body layout:
 *
 *     0   4   magic        "CSTY" = 0x59545343
 *     4   2   version      CASTY__WIRE_VERSION
 *     6   1   lane         enum casty__wire_lane of this connection
 *     7   1   hflags       bit 0: the sender requires authentication
 *     8   8   node         the sender's node id (what its refs carry)
 *     16  8   incarnation  random per system start
 *     24  2   port         the sender's listening port
 *     26  1   name_len     1..63: system (cluster) name
 *     27  1   host_len     1..255: the sender's listening host
 *     28  32  nonce        random challenge
 *     60  32  mac          WELCOME with authentication: casty__wire_mac(
 *                          key, CASTY__WIRE_ROLE_WELCOME, hello.nonce,
 *                          welcome.nonce); zero otherwise
 *     92  name_len         name bytes (no NUL)
 *     ..  host_len         host bytes (no NUL)
 *
 * Decoding checks the magic first, then the version: a frame with the right
 * magic and another version decodes to just {version} so the caller can
 * refuse it by name; everything after the version must then be exact (the
 * body length is 92 + name_len + host_len).
 *
 * AUTH (3), the connecting side's proof after a WELCOME that asked for it:
 *     0   32  mac   casty__wire_mac(key, CASTY__WIRE_ROLE_AUTH,
 *                   welcome.nonce, hello.nonce)
 *
 * REFUSE (4), sent before closing a connection that is refused:
 *     0   2   code      enum casty__wire_refusal
 *     2   1   text_len  0..255
 *     3   ..  text      human-readable reason (no NUL)
 *
 * USER (5), one message for one actor of the receiving node:
 *     0   8   actor     recipient's actor id (casty_ref_t.actor)
 *     8   8   type_id   casty_type_id() of the message type
 *     16  ..  payload   the value: raw bytes of a flat struct, or what the
 *                       type's encode wrote (len - 4 - 16 bytes)
 *
 * RESOLVE (6), "what is the ref of the actor at this path?":
 *     0   8   reply_to.node
 *     8   8   reply_to.actor
 *     16  8   tag       echoed in the answer
 *     24  2   path_len  1..255
 *     26  ..  path      "/a/b", as casty_lookup takes it (no NUL)
 *
 * HEARTBEAT (7) and HEARTBEAT_ACK (8), the control lane's keep-alive
 * (reserved for the failure detector):
 *     0   8   seq
 *     8   8   sent_ns   sender's monotonic clock */
#ifndef CASTY_NET_WIRE_H
#define CASTY_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CASTY__WIRE_MAGIC 0x59545343u /* "CSTY" little-endian */
#define CASTY__WIRE_VERSION 1u
#define CASTY__WIRE_HEADER 8u          /* len + kind + flags + reserved */
#define CASTY__WIRE_MIN_FRAME 4096u    /* smallest max_frame a system accepts */
#define CASTY__WIRE_DEFAULT_MAX_FRAME (16u << 20)
#define CASTY__WIRE_NONCE 32u
#define CASTY__WIRE_MAC 32u
#define CASTY__WIRE_KEY 32u
#define CASTY__WIRE_HELLO_FIXED 92u    /* HELLO/WELCOME body without name, host */
#define CASTY__WIRE_USER_FIXED 16u     /* USER body without payload */
#define CASTY__WIRE_RESOLVE_FIXED 26u
#define CASTY__WIRE_HEARTBEAT_BODY 16u
#define CASTY__WIRE_NAME_MAX 63u
#define CASTY__WIRE_HOST_MAX 255u
#define CASTY__WIRE_PATH_MAX 255u
#define CASTY__WIRE_TEXT_MAX 255u

enum casty__wire_kind {
    CASTY__WIRE_HELLO = 1,
    CASTY__WIRE_WELCOME = 2,
    CASTY__WIRE_AUTH = 3,
    CASTY__WIRE_REFUSE = 4,
    CASTY__WIRE_USER = 5,
    CASTY__WIRE_RESOLVE = 6,
    CASTY__WIRE_HEARTBEAT = 7,
    CASTY__WIRE_HEARTBEAT_ACK = 8,
};

enum casty__wire_lane {
    CASTY__WIRE_LANE_USER = 0,
    CASTY__WIRE_LANE_CONTROL = 1,
};

enum casty__wire_refusal {
    CASTY__WIRE_REFUSE_VERSION = 1,  /* protocol version not supported */
    CASTY__WIRE_REFUSE_NAME = 2,     /* another system/cluster name */
    CASTY__WIRE_REFUSE_AUTH = 3,     /* missing or wrong secret */
    CASTY__WIRE_REFUSE_PROTOCOL = 4, /* malformed handshake */
};

enum casty__wire_role {
    CASTY__WIRE_ROLE_WELCOME = 1, /* the accepting side proves the secret */
    CASTY__WIRE_ROLE_AUTH = 2,    /* the connecting side proves it */
};

#define CASTY__WIRE_HELLO_AUTH 0x01u /* hflags bit */

/* A frame located in a buffer: its body points into that buffer. */
struct casty__wire_frame {
    uint8_t kind;
    const uint8_t *body;
    uint32_t body_len;
};

struct casty__wire_hello {
    uint16_t version;
    uint8_t lane;
    uint8_t hflags;
    uint64_t node;
    uint64_t incarnation;
    uint16_t port;
    uint8_t nonce[CASTY__WIRE_NONCE];
    uint8_t mac[CASTY__WIRE_MAC];
    char name[CASTY__WIRE_NAME_MAX + 1]; /* NUL-terminated */
    char host[CASTY__WIRE_HOST_MAX + 1]; /* NUL-terminated */
};

struct casty__wire_user {
    uint64_t actor;
    uint64_t type_id;
    const uint8_t *payload; /* points into the frame */
    uint32_t payload_len;
};

struct casty__wire_resolve {
    uint64_t reply_node, reply_actor;
    uint64_t tag;
    char path[CASTY__WIRE_PATH_MAX + 1]; /* NUL-terminated */
};

struct casty__wire_heartbeat {
    uint64_t seq;
    uint64_t sent_ns;
};

/* ---- framing --------------------------------------------------------------- */

/* Looks for the first frame in buf[0..len). Returns its whole size
 * (CASTY__WIRE_HEADER + body) and fills *f when buf holds all of it; 0 when
 * more bytes are needed (fewer than a header, or a body still partly
 * missing); CASTY_EMSGSIZE when the whole frame (len + 4) exceeds max_frame
 * (the connection must close: the stream cannot be resynchronised);
 * CASTY_EPROTO for len < 4, an unknown kind, or nonzero flags/reserved.
 * The header is checked as soon as it is complete, before the body arrives. */
long casty__wire_next(const uint8_t *buf, size_t len, uint32_t max_frame,
                      struct casty__wire_frame *f);

/* Writes a frame header for a body of body_len bytes into buf (at least
 * CASTY__WIRE_HEADER bytes). */
void casty__wire_put_header(uint8_t *buf, uint8_t kind, uint32_t body_len);

/* ---- encoders: write one whole frame into buf[0..cap) ----------------------
 * Return the frame size, CASTY_ENOSPC when cap is too small, CASTY_EINVAL
 * for out-of-range fields (empty or too-long name/host/path/text). */

long casty__wire_encode_hello(uint8_t *buf, size_t cap, uint8_t kind /* HELLO or WELCOME */,
                              const struct casty__wire_hello *h);
long casty__wire_encode_auth(uint8_t *buf, size_t cap, const uint8_t mac[CASTY__WIRE_MAC]);
long casty__wire_encode_refuse(uint8_t *buf, size_t cap, uint16_t code, const char *text);
/* USER: header and the fixed part only; the caller writes payload_len bytes
 * of payload right after the CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED
 * bytes this writes. */
long casty__wire_encode_user_prefix(uint8_t *buf, size_t cap, uint64_t actor, uint64_t type_id,
                                    uint32_t payload_len);
long casty__wire_encode_resolve(uint8_t *buf, size_t cap, const struct casty__wire_resolve *r);
long casty__wire_encode_heartbeat(uint8_t *buf, size_t cap, uint8_t kind /* HEARTBEAT or _ACK */,
                                  const struct casty__wire_heartbeat *hb);

/* ---- decoders: one frame's body (f->kind must match) -------------------------
 * Return 0, or CASTY_EPROTO for a body of the wrong kind, size or content
 * (bad magic, lengths out of range or not matching the body, NUL bytes in
 * strings, a nonzero mac in HELLO). Never read outside f->body[0..body_len). */

int casty__wire_decode_hello(const struct casty__wire_frame *f, struct casty__wire_hello *out);
int casty__wire_decode_auth(const struct casty__wire_frame *f, uint8_t mac[CASTY__WIRE_MAC]);
int casty__wire_decode_refuse(const struct casty__wire_frame *f, uint16_t *code,
                              char text[CASTY__WIRE_TEXT_MAX + 1]);
int casty__wire_decode_user(const struct casty__wire_frame *f, struct casty__wire_user *out);
int casty__wire_decode_resolve(const struct casty__wire_frame *f, struct casty__wire_resolve *out);
int casty__wire_decode_heartbeat(const struct casty__wire_frame *f, struct casty__wire_heartbeat *out);

/* ---- authentication (libsodium: crypto_generichash, crypto_auth) ------------- */

/* Derives the 32-byte HMAC key from the shared secret (BLAKE2b of the
 * secret with a fixed casty context). */
void casty__wire_key_from_secret(const char *secret, uint8_t key[CASTY__WIRE_KEY]);

/* mac = HMAC-SHA512-256(key, "casty-auth-v1" || role || first || second). */
void casty__wire_mac(const uint8_t key[CASTY__WIRE_KEY], uint8_t role,
                     const uint8_t first[CASTY__WIRE_NONCE],
                     const uint8_t second[CASTY__WIRE_NONCE], uint8_t mac[CASTY__WIRE_MAC]);

/* Constant-time check of a mac made as above. */
bool casty__wire_mac_ok(const uint8_t key[CASTY__WIRE_KEY], uint8_t role,
                        const uint8_t first[CASTY__WIRE_NONCE],
                        const uint8_t second[CASTY__WIRE_NONCE],
                        const uint8_t mac[CASTY__WIRE_MAC]);

/* Fills a nonce with random bytes (libsodium randombytes_buf). */
void casty__wire_random_nonce(uint8_t nonce[CASTY__WIRE_NONCE]);

#endif /* CASTY_NET_WIRE_H */
