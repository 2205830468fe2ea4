/* The file journal's on-disk format: its specification (this comment) and
 * the pure codec for records, segment headers and file names. It does no
 * I/O and allocates nothing; reading files is journal_scan.c's job, writing
 * them the journal's (file_journal*.c).
 *
 * THE DIRECTORY
 *
 *   seg-<N>.log              segment N (N: 16 lowercase hex digits), the log
 *   snap-<H>-<S>.snap        the snapshot of the pid whose hash is H, at seq S
 *   *.tmp                    a snapshot being written (removed at open)
 *
 * H is XXH3-64 (seed 0) of the pid's bytes, S the snapshot's sequence
 * number, both as 16 lowercase hex digits. Segment numbers start at 1 and
 * only grow; segments may be missing from the front or the middle (space
 * reclaimed after deletions), never reused.
 *
 * All integers are little-endian. XXH3 below is XXH3-64 with seed 0.
 *
 * A SEGMENT is a 32-byte header followed by group commits:
 *
 *   offset size  field
 *        0    8  magic "CASTYJNL"
 *        8    4  version, 1
 *       12    4  header length, 32
 *       16    8  segment number N (must match the file name)
 *       24    8  XXH3 of bytes 0..23
 *
 * A GROUP COMMIT is a COMMIT record whose `type_id` field is the byte
 * length L of the region that follows it, then exactly L bytes of EVENT and
 * DELETE records. Each group commit is written with one write request
 * (continued after a short write) and made durable with one fdatasync;
 * nothing it holds is acknowledged before that returns, and the next
 * commit is written only after it, so at most the last commit of the last
 * segment can be torn, and a commit is all or nothing. Commit ids (the
 * COMMIT record's seq) increase strictly through the segments in order (by
 * 1 per commit, with gaps where segments were reclaimed).
 *
 * A RECORD:
 *
 *   offset size  field
 *        0    4  magic 0x31524A43 ("CJR1")
 *        4    4  length: the whole record, 40 + pid_len + payload_len
 *        8    1  kind: 1 EVENT, 2 DELETE, 3 COMMIT, 4 SNAPSHOT
 *        9    1  flags, 0 (reserved)
 *       10    2  pid_len: 0 for COMMIT, else 1..4096
 *       12    4  payload_len: <= 2^30; 0 for COMMIT and DELETE
 *       16    8  seq: EVENT/SNAPSHOT its sequence number (>= 1); DELETE
 *                the highest deleted seq (>= 1); COMMIT the commit id (>= 1)
 *       24    8  type_id: EVENT/SNAPSHOT XXH3 of the type's name
 *                (casty_type_id); COMMIT the region length L; DELETE 0
 *       32  pid  the persistence id's bytes (no NUL)
 *        .  pay  the payload (the serialized event or state)
 *        .    8  XXH3 of every byte of the record before this field
 *
 * A record is valid when every rule above holds and the checksum matches.
 * Type NAMES are not stored: the journal interface carries only type ids.
 *
 * A SNAPSHOT FILE is exactly one SNAPSHOT record; its pid must hash to H
 * and its seq equal S. It is written to a .tmp file, fsynced, renamed to
 * its name and the directory fsynced, so a .snap file is never partial.
 *
 * RECOVERY (journal_scan.c) reads each segment's commits in order. The
 * first invalid byte found — a bad header, a bad record, a region that runs
 * past the end of the file, commit ids that do not increase — ends the
 * scan at the start of the commit holding it (C). Beyond C the scan looks
 * for any valid COMMIT record whose id is greater than the last good
 * commit id + 1: a commit written after the bad one was acknowledged, so
 * the bad bytes were once durable: corruption. Without one, the bytes from
 * C on are the torn tail of the one commit that was being written when the
 * process or machine stopped (never acknowledged). In the last segment a
 * torn tail is cut off (truncated to C, reported on stderr); anywhere else,
 * and corruption anywhere, makes the open fail with CASTY_ECORRUPT and
 * "file:offset". Within the last commit a torn write and a bit flip look
 * the same: both are cut. */
#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "casty.h"
#include "journal_format.h"

/* The record header as a struct, only to lock the offsets above: the codec
 * reads and writes bytes with explicit little-endian helpers, so the host's
 * byte order and padding never reach the disk. */
struct jrec_header {
    uint32_t magic;
    uint32_t len;
    uint8_t kind;
    uint8_t flags;
    uint16_t pid_len;
    uint32_t payload_len;
    uint64_t seq;
    uint64_t type_id;
};
static_assert(offsetof(struct jrec_header, magic) == 0, "record magic at 0");
static_assert(offsetof(struct jrec_header, len) == 4, "record length at 4");
static_assert(offsetof(struct jrec_header, kind) == 8, "record kind at 8");
static_assert(offsetof(struct jrec_header, flags) == 9, "record flags at 9");
static_assert(offsetof(struct jrec_header, pid_len) == 10, "record pid_len at 10");
static_assert(offsetof(struct jrec_header, payload_len) == 12, "record payload_len at 12");
static_assert(offsetof(struct jrec_header, seq) == 16, "record seq at 16");
static_assert(offsetof(struct jrec_header, type_id) == 24, "record type_id at 24");
static_assert(sizeof(struct jrec_header) == CASTY__JREC_HEADER, "record header is 32 bytes");
static_assert(CASTY__JREC_MIN == 40, "a COMMIT record is 40 bytes");
static_assert(CASTY__JREC_MAX < UINT32_MAX, "record lengths fit the 32-bit length field");

struct jseg_header {
    char magic[8];
    uint32_t version;
    uint32_t header_len;
    uint64_t segno;
    uint64_t checksum;
};
static_assert(offsetof(struct jseg_header, version) == 8, "segment version at 8");
static_assert(offsetof(struct jseg_header, header_len) == 12, "segment header length at 12");
static_assert(offsetof(struct jseg_header, segno) == 16, "segment number at 16");
static_assert(offsetof(struct jseg_header, checksum) == 24, "segment checksum at 24");
static_assert(sizeof(struct jseg_header) == CASTY__JSEG_HEADER, "segment header is 32 bytes");

static const char seg_magic[8] = {'C', 'A', 'S', 'T', 'Y', 'J', 'N', 'L'};

/* ---- little-endian helpers ------------------------------------------------------ */

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- records ----------------------------------------------------------------------- */

size_t casty__jrec_encode(void *buf, uint8_t kind, const char *pid, uint16_t pid_len, uint64_t seq,
                          uint64_t type_id, const void *payload, uint32_t payload_len)
{
    unsigned char *p = buf;
    size_t len = casty__jrec_size(pid_len, payload_len);
    put32(p + offsetof(struct jrec_header, magic), CASTY__JREC_MAGIC);
    put32(p + offsetof(struct jrec_header, len), (uint32_t)len);
    p[offsetof(struct jrec_header, kind)] = kind;
    p[offsetof(struct jrec_header, flags)] = 0;
    put16(p + offsetof(struct jrec_header, pid_len), pid_len);
    put32(p + offsetof(struct jrec_header, payload_len), payload_len);
    put64(p + offsetof(struct jrec_header, seq), seq);
    put64(p + offsetof(struct jrec_header, type_id), type_id);
    if (pid_len)
        memcpy(p + CASTY__JREC_HEADER, pid, pid_len);
    if (payload_len)
        memcpy(p + CASTY__JREC_HEADER + pid_len, payload, payload_len);
    size_t body = len - CASTY__JREC_TRAILER;
    put64(p + body, XXH3_64bits(p, body));
    return len;
}

uint32_t casty__jrec_len_at(const void *buf)
{
    return get32((const unsigned char *)buf + offsetof(struct jrec_header, len));
}

static int corrupt(const char **why, const char *what)
{
    if (why)
        *why = what;
    return CASTY_ECORRUPT;
}

int casty__jrec_decode(const void *buf, size_t avail, casty__jrec_t *out, size_t *need,
                       const char **why)
{
    const unsigned char *p = buf;
    if (avail < CASTY__JREC_HEADER) {
        /* Even a partial header can already be wrong: say so early, so a
         * scan does not wait for bytes that cannot make it right. */
        if (avail >= 4 && get32(p) != CASTY__JREC_MAGIC)
            return corrupt(why, "bad record magic");
        if (need)
            *need = CASTY__JREC_HEADER;
        return CASTY_ENOSPC;
    }
    casty__jrec_t r;
    if (get32(p + offsetof(struct jrec_header, magic)) != CASTY__JREC_MAGIC)
        return corrupt(why, "bad record magic");
    r.len = get32(p + offsetof(struct jrec_header, len));
    r.kind = p[offsetof(struct jrec_header, kind)];
    uint8_t flags = p[offsetof(struct jrec_header, flags)];
    r.pid_len = get16(p + offsetof(struct jrec_header, pid_len));
    r.payload_len = get32(p + offsetof(struct jrec_header, payload_len));
    r.seq = get64(p + offsetof(struct jrec_header, seq));
    r.type_id = get64(p + offsetof(struct jrec_header, type_id));
    if (r.kind < CASTY__JREC_EVENT || r.kind > CASTY__JREC_SNAPSHOT)
        return corrupt(why, "unknown record kind");
    if (flags != 0)
        return corrupt(why, "reserved record flags set");
    if (r.pid_len > CASTY__JREC_PID_MAX)
        return corrupt(why, "pid too long");
    if (r.payload_len > CASTY__JREC_PAYLOAD_MAX)
        return corrupt(why, "payload too long");
    if ((uint64_t)r.len != casty__jrec_size(r.pid_len, r.payload_len))
        return corrupt(why, "record length does not match its parts");
    if (r.seq == 0)
        return corrupt(why, "sequence number 0");
    if (r.kind == CASTY__JREC_COMMIT) {
        if (r.pid_len != 0 || r.payload_len != 0)
            return corrupt(why, "commit record with a pid or payload");
    } else {
        if (r.pid_len == 0)
            return corrupt(why, "record without a pid");
        if (r.kind == CASTY__JREC_DELETE && (r.payload_len != 0 || r.type_id != 0))
            return corrupt(why, "delete record with a payload or type");
    }
    if (avail < r.len) {
        if (need)
            *need = r.len;
        return CASTY_ENOSPC;
    }
    size_t body = r.len - CASTY__JREC_TRAILER;
    if (get64(p + body) != XXH3_64bits(p, body))
        return corrupt(why, "checksum mismatch");
    r.pid = (const char *)p + CASTY__JREC_HEADER;
    r.payload = p + CASTY__JREC_HEADER + r.pid_len;
    if (out)
        *out = r;
    return 0;
}

/* ---- segment headers ---------------------------------------------------------------- */

void casty__jseg_header_encode(void *buf, uint64_t segno)
{
    unsigned char *p = buf;
    memcpy(p + offsetof(struct jseg_header, magic), seg_magic, sizeof seg_magic);
    put32(p + offsetof(struct jseg_header, version), CASTY__JSEG_VERSION);
    put32(p + offsetof(struct jseg_header, header_len), CASTY__JSEG_HEADER);
    put64(p + offsetof(struct jseg_header, segno), segno);
    put64(p + offsetof(struct jseg_header, checksum),
          XXH3_64bits(p, offsetof(struct jseg_header, checksum)));
}

int casty__jseg_header_decode(const void *buf, size_t avail, uint64_t *segno, const char **why)
{
    const unsigned char *p = buf;
    if (avail < CASTY__JSEG_HEADER)
        return CASTY_ENOSPC;
    if (memcmp(p, seg_magic, sizeof seg_magic) != 0)
        return corrupt(why, "bad segment magic");
    if (get64(p + offsetof(struct jseg_header, checksum)) !=
        XXH3_64bits(p, offsetof(struct jseg_header, checksum)))
        return corrupt(why, "segment header checksum mismatch");
    if (get32(p + offsetof(struct jseg_header, version)) != CASTY__JSEG_VERSION)
        return corrupt(why, "unsupported segment version");
    if (get32(p + offsetof(struct jseg_header, header_len)) != CASTY__JSEG_HEADER)
        return corrupt(why, "bad segment header length");
    if (segno)
        *segno = get64(p + offsetof(struct jseg_header, segno));
    return 0;
}

/* ---- file names ----------------------------------------------------------------------- */

void casty__jname_segment(char *buf, uint64_t segno)
{
    snprintf(buf, CASTY__JNAME_MAX, "seg-%016" PRIx64 ".log", segno);
}

void casty__jname_snapshot(char *buf, uint64_t pid_hash, uint64_t seq)
{
    snprintf(buf, CASTY__JNAME_MAX, "snap-%016" PRIx64 "-%016" PRIx64 ".snap", pid_hash, seq);
}

/* Parses exactly 16 lowercase hex digits. */
static bool parse_hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

bool casty__jname_parse_segment(const char *name, uint64_t *segno)
{
    return strlen(name) == 4 + 16 + 4 && memcmp(name, "seg-", 4) == 0 &&
           strcmp(name + 20, ".log") == 0 && parse_hex16(name + 4, segno);
}

bool casty__jname_parse_snapshot(const char *name, uint64_t *pid_hash, uint64_t *seq)
{
    return strlen(name) == 5 + 16 + 1 + 16 + 5 && memcmp(name, "snap-", 5) == 0 &&
           name[21] == '-' && strcmp(name + 38, ".snap") == 0 && parse_hex16(name + 5, pid_hash) &&
           parse_hex16(name + 22, seq);
}

bool casty__jname_is_temp(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".tmp") == 0;
}

uint64_t casty__jpid_hash(const char *pid, size_t len)
{
    return XXH3_64bits(pid, len);
}
