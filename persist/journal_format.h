/* Internal (not installed). The file journal's on-disk format: record and
 * segment-header codecs and the file names, specified byte by byte at the
 * top of journal_format.c. Everything here is pure (bytes in, values or an
 * error out; no I/O, no allocation), so it can be fuzzed on its own
 * (tests/fuzz/fuzz_journal_record.c). */
#ifndef CASTY_JOURNAL_FORMAT_H
#define CASTY_JOURNAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- records ------------------------------------------------------------------ */

#define CASTY__JREC_MAGIC 0x31524A43u /* "CJR1" as little-endian bytes */
#define CASTY__JREC_HEADER 32u        /* fixed part before the pid */
#define CASTY__JREC_TRAILER 8u        /* the checksum after the payload */
#define CASTY__JREC_MIN (CASTY__JREC_HEADER + CASTY__JREC_TRAILER)
#define CASTY__JREC_PID_MAX 4096u
#define CASTY__JREC_PAYLOAD_MAX (1u << 30)
#define CASTY__JREC_MAX (CASTY__JREC_MIN + CASTY__JREC_PID_MAX + CASTY__JREC_PAYLOAD_MAX)

enum casty__jrec_kind {
    CASTY__JREC_EVENT = 1,    /* one event of pid, seq, type_id, payload */
    CASTY__JREC_DELETE = 2,   /* pid's events with seq <= `seq` are deleted */
    CASTY__JREC_COMMIT = 3,   /* opens a group commit: seq = commit id, type_id = region bytes */
    CASTY__JREC_SNAPSHOT = 4, /* a snapshot file's one record */
};

/* A decoded record. `pid` and `payload` point into the decoded buffer. */
typedef struct casty__jrec {
    uint32_t len; /* total bytes of the record */
    uint8_t kind;
    uint16_t pid_len;
    uint32_t payload_len;
    uint64_t seq;
    uint64_t type_id;
    const char *pid; /* pid_len bytes, not NUL-terminated */
    const void *payload;
} casty__jrec_t;

/* Bytes a record with these lengths takes (no overflow for lengths within
 * the maxima above). */
static inline size_t casty__jrec_size(size_t pid_len, size_t payload_len)
{
    return CASTY__JREC_MIN + pid_len + payload_len;
}

/* Writes one record of casty__jrec_size(pid_len, payload_len) bytes at buf.
 * The caller keeps the lengths within the maxima. Returns the size. */
size_t casty__jrec_encode(void *buf, uint8_t kind, const char *pid, uint16_t pid_len, uint64_t seq,
                          uint64_t type_id, const void *payload, uint32_t payload_len);

/* Decodes the record at the start of buf[0..avail). Returns 0 and fills
 * *out; CASTY_ENOSPC when avail is shorter than the record (then *need, if
 * not NULL, is the bytes needed to decide: the header size while the header
 * is incomplete, else the record's declared length); or CASTY_ECORRUPT,
 * with *why (if not NULL) a static description. Never reads past
 * buf[avail - 1]. */
int casty__jrec_decode(const void *buf, size_t avail, casty__jrec_t *out, size_t *need,
                       const char **why);

/* The total length field of an encoded record (trusted input: a record
 * this process encoded). */
uint32_t casty__jrec_len_at(const void *buf);

/* ---- segment headers ------------------------------------------------------------ */

#define CASTY__JSEG_HEADER 32u
#define CASTY__JSEG_VERSION 1u

void casty__jseg_header_encode(void *buf, uint64_t segno);
/* 0 and *segno; CASTY_ENOSPC when avail < CASTY__JSEG_HEADER; CASTY_ECORRUPT
 * with *why. */
int casty__jseg_header_decode(const void *buf, size_t avail, uint64_t *segno, const char **why);

/* ---- file names ----------------------------------------------------------------- */

#define CASTY__JNAME_MAX 64u /* enough for every name below plus NUL */

/* "seg-<16 hex>.log" */
void casty__jname_segment(char *buf, uint64_t segno);
bool casty__jname_parse_segment(const char *name, uint64_t *segno);
/* "snap-<16 hex hash of pid>-<16 hex seq>.snap" */
void casty__jname_snapshot(char *buf, uint64_t pid_hash, uint64_t seq);
bool casty__jname_parse_snapshot(const char *name, uint64_t *pid_hash, uint64_t *seq);
/* Names that end in ".tmp": snapshots being written. */
bool casty__jname_is_temp(const char *name);

/* The hash naming a pid's snapshot files: XXH3-64 of the pid's bytes. */
uint64_t casty__jpid_hash(const char *pid, size_t len);

#endif
