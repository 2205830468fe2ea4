/* Internal (not installed). Reading a file journal's directory: validating
 * segments commit by commit, telling a torn tail from corruption, reading
 * snapshot files. Shared by the journal's recovery at open
 * (file_journal.c), the inspector (tools/casty-journal.c) and the tests.
 * Read-only: it never writes, truncates or removes anything. */
#ifndef CASTY_JOURNAL_SCAN_H
#define CASTY_JOURNAL_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journal_format.h"

/* ---- one segment ------------------------------------------------------------------- */

enum casty__jscan_status {
    CASTY__JSCAN_CLEAN = 0, /* every byte belongs to a valid commit */
    CASTY__JSCAN_TORN,      /* ends in a torn commit: cut at good_end */
    CASTY__JSCAN_CORRUPT,   /* invalid bytes before a later valid commit */
};

typedef struct casty__jscan {
    int status;
    uint64_t size;        /* the file's size */
    uint64_t good_end;    /* end of the last valid commit (0: not even a header) */
    uint64_t bad_off;     /* TORN/CORRUPT: the first invalid byte found */
    const char *why;      /* TORN/CORRUPT: what was wrong there (static) */
    uint64_t last_commit; /* id of the last valid commit (prev_commit if none) */
    uint64_t commits, records;
} casty__jscan_t;

/* Called for each record of each valid commit, in file order, the COMMIT
 * record first; `off` is the record's offset in the file. rec's pointers
 * are valid during the call only. A non-zero return stops the scan and is
 * returned. */
typedef int (*casty__jscan_fn)(void *arg, const casty__jrec_t *rec, uint64_t off);

/* Scans the segment open on fd whose file name says `segno`; commit ids
 * must exceed prev_commit. Fills *res. Returns 0 (whatever the status),
 * -errno when reading fails, CASTY_ENOMEM, or fn's return. A commit is
 * reported to fn only once all of it has been validated. Caller's thread;
 * blocking reads. */
int casty__jscan_segment(int fd, uint64_t segno, uint64_t prev_commit, casty__jscan_fn fn,
                         void *arg, casty__jscan_t *res);

/* ---- snapshot files ------------------------------------------------------------------ */

/* Reads and validates the snapshot file `name` in dirfd: one SNAPSHOT
 * record filling the file, whose pid hashes to the name's hash and whose
 * seq is the name's. On success returns 0, *buf (free() it) holds the file
 * and *rec points into it. Errors: CASTY_ECORRUPT (*why says what),
 * CASTY_ENOMEM, -errno. */
int casty__jsnap_read(int dirfd, const char *name, void **buf, casty__jrec_t *rec,
                      const char **why);

/* ---- the whole directory ------------------------------------------------------------- */

typedef struct casty__jwalk_item {
    const char *file; /* the file's name in the directory */
    uint64_t segno;   /* its segment number; 0 for a snapshot file */
    uint64_t off;     /* the record's offset in the file */
    casty__jrec_t rec;
} casty__jwalk_item_t;

typedef int (*casty__jwalk_fn)(void *arg, const casty__jwalk_item_t *item);

typedef struct casty__jwalk {
    uint64_t segments, bytes, commits, records, snapshots, temps;
    uint64_t first_seg, last_seg; /* 0 when there is no segment */
    uint64_t last_commit;
    bool torn;                    /* the last segment ends in a torn commit */
    uint64_t torn_at;             /* ... to be cut at this offset */
    uint64_t torn_bad;            /* the first invalid byte */
    uint64_t torn_size;           /* the segment's size */
    const char *torn_why;
} casty__jwalk_t;

/* Validates every segment (in number order) and every snapshot file of
 * the journal directory open on dirfd, calling fn (may be NULL) for each
 * record as casty__jscan_segment does, then for each snapshot file's
 * record. A torn tail in the LAST segment is not an error: *sum says where
 * it is. Returns 0; CASTY_ECORRUPT with "DIR/FILE:OFFSET: why" in err
 * (dirname is only used in messages); -errno (with the file in err);
 * CASTY_ENOMEM; or fn's non-zero return. */
int casty__journal_walk(int dirfd, const char *dirname, casty__jwalk_fn fn, void *arg,
                        casty__jwalk_t *sum, char *err, size_t err_len);

/* Lists the directory: segment numbers ascending, snapshot and temp file
 * names. Free with casty__jdir_free. 0, CASTY_ENOMEM or -errno. */
typedef struct casty__jdir {
    uint64_t *segs;
    size_t nsegs;
    char **snaps;
    size_t nsnaps;
    char **temps;
    size_t ntemps;
} casty__jdir_t;

int casty__jdir_list(int dirfd, casty__jdir_t *out);
void casty__jdir_free(casty__jdir_t *d);

/* pread until len bytes or EOF; returns the bytes read or -errno. */
long casty__jpread_full(int fd, void *buf, size_t len, uint64_t off);

#endif
