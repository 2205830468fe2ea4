/* Internal (not installed). The file journal's shared state, split over
 * three files:
 *
 *   file_journal.c        open (recovery into the index), the operations
 *                         callers run on any thread, close, the pid table
 *   file_journal_actor.c  the journal actor: group commit, segments,
 *                         deletions and space reclaim, snapshot saves;
 *                         the ackers that send the persists' replies
 *   file_journal_read.c   replays through a block cache, snapshot loads
 *
 * Who touches what:
 * - Callers (any thread) encode their records, check sequence numbers
 *   under a pid-table shard lock and push a request on `incoming`, a
 *   Treiber stack; a push that finds it empty sends the actor a kick.
 * - The journal actor (one actor spawned on the system; so one thread at a
 *   time) owns everything marked "actor" below: segments, the index, the
 *   commit in flight, the caches. No lock guards those.
 * - Fields marked "shard" are read and written under their shard's mutex,
 *   by callers and by the actor.
 * - The ackers get lists of answered requests by message and touch
 *   nothing else but acks_out. */
#ifndef CASTY_FILE_JOURNAL_H
#define CASTY_FILE_JOURNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

#include "casty.h"
#include "journal_format.h"
#include "reactor.h"

#define FJ_SHARDS 64u
#define FJ_DEFAULT_SEGMENT_BYTES (UINT64_C(64) << 20)
/* Persists are answered by up to FJ_ACKERS helper actors (one per worker),
 * in parallel and off the journal actor. */
#define FJ_ACKERS 4u
/* A group commit stops growing here (one request larger than this is
 * still written whole, alone). */
#define FJ_COMMIT_MAX (8u << 20)

enum fj_req_kind {
    FJ_PERSIST = 1, /* bytes: nrec EVENT records; seq: the last one's seq */
    FJ_DELETE,      /* bytes: one DELETE record; seq: deleted up to */
    FJ_MARKER,      /* the actor's own copy of a DELETE record (space reclaim) */
    FJ_REPLAY,      /* seq: from */
    FJ_SAVE_SNAP,   /* bytes: one SNAPSHOT record; seq: its seq */
    FJ_LOAD_SNAP,
};

/* A request, from the caller who made it to the actor (then actor-owned). */
struct fj_req {
    struct fj_req *next; /* stack, then pending FIFO or commit list */
    struct fj_pid *p;
    casty_ref_t reply_to;
    uint64_t tag;
    uint64_t seq;
    uint64_t off; /* actor: where bytes[0] lands in its segment */
    uint32_t nrec;
    uint32_t len; /* bytes used */
    uint8_t kind;
    alignas(8) unsigned char bytes[];
};

/* Where one live event is: segment number, offset and length. */
struct fj_loc {
    uint64_t seq;
    uint64_t off;
    uint32_t seg;
    uint32_t len;
};

struct fj_pid {
    uint64_t hash; /* XXH3 of the pid, also its snapshot files' name */
    uint16_t len;
    /* shard */
    uint64_t next_seq;     /* the seq the next persist must start with */
    uint64_t snap_seq;     /* the latest durable snapshot's seq; 0 = none (the actor writes it) */
    uint64_t deleted_upto; /* events <= this are forgotten (delete_events) */
    /* actor */
    struct fj_loc *locs; /* live events: locs[head..n), seq ascending */
    size_t head, n, cap;
    uint64_t last_seq;        /* highest durable event seq */
    uint64_t durable_deleted; /* the highest durable DELETE record */
    uint32_t marker_seg;      /* the segment holding that record; 0 = none */
    char pid[];               /* NUL-terminated */
};

/* A slot of the pid table: the hash beside the pointer, so a probe reads
 * no pid it does not match. */
struct fj_slot {
    uint64_t hash;
    struct fj_pid *p; /* NULL: empty */
};

struct fj_shard {
    alignas(64) pthread_mutex_t mu;
    struct fj_slot *slots; /* open addressing on hash */
    size_t cap, used;
};

struct fj_segment {
    uint32_t no;
    int fd;        /* -1 until first needed */
    uint64_t size; /* durable bytes */
    uint64_t live; /* live events indexed here */
    struct fj_pid **markers; /* pids whose latest DELETE record may be here */
    uint32_t nmarkers, markers_cap;
    uint32_t reads; /* reads in flight on fd */
    bool needs_dirsync; /* its directory entry is not known durable yet */
    bool evacuating;    /* its live DELETE records are being rewritten */
};

/* What an io_uring completion's tag points at. */
enum fj_target_kind { FJ_T_COMMIT = 1, FJ_T_BLOCK, FJ_T_SNAP_SAVE, FJ_T_SNAP_LOAD };
struct fj_target {
    uint8_t kind;
};

struct fj_commit {
    struct fj_target t;
    bool busy;
    uint8_t stage; /* FJ_STAGE_* in file_journal_actor.c */
    bool dirsync;
    unsigned char *buf;
    size_t len, cap, done;
    uint64_t off; /* segment offset of buf[0] */
    struct fj_segment *seg;
    struct fj_req *reqs, *reqs_tail;
};

struct fj_read; /* file_journal_read.c */

struct file_journal {
    casty_journal_t base;
    casty_system_t *sys;
    casty_ref_t actor;
    casty_ref_t ackers[FJ_ACKERS];
    uint32_t nackers;
    uint32_t next_acker; /* actor: round robin */
    char *dir;
    int dirfd;  /* the directory: *at() calls and its fsyncs */
    int lockfd; /* the directory again, holding its flock */
    uint64_t segment_bytes;

    /* any thread */
    struct fj_req *incoming; /* Treiber stack of requests; atomic */
    uint32_t kick_lost;      /* a kick could not be sent: the next push sends one; atomic */
    int poisoned;            /* 0, or the write error that stopped all writes; atomic */
    uint32_t acks_out;       /* batches of acknowledgements at the ackers; atomic */
    struct fj_shard shards[FJ_SHARDS];
    pthread_mutex_t stop_mu; /* the close handshake */
    pthread_cond_t stop_cv;
    bool stopped; /* the actor has stopped (post_stop ran) */

    /* actor */
    bool closing;
    struct fj_segment **segs; /* segs[i]: segment seg_base + i, NULL once removed */
    uint32_t seg_base;
    size_t nsegs, segs_cap;
    struct fj_segment *active; /* appended to; NULL before the first write */
    uint64_t commit_id;        /* the last commit id written */
    struct fj_req *pend_head, *pend_tail; /* persists and deletions waiting for a commit */
    struct fj_commit commit;
    bool reclaim_due;
    uint64_t tmp_counter;
    uint32_t snap_saves; /* in flight */
    /* the saves in flight (file_journal_actor.c), freed with the journal
     * when a shutdown stopped the actor before their I/O completed */
    struct snap_save *snap_inflight;
    struct fj_read *rd;
};

extern const casty_type_t casty__fj_kick_type;
extern const casty_type_t casty__fj_close_type;

/* file_journal.c: the pid table. Caller holds the shard's mutex. Returns
 * NULL when absent (create false) or out of memory. */
struct fj_shard *casty__fj_shard(struct file_journal *j, uint64_t hash);
struct fj_pid *casty__fj_pid_find(struct fj_shard *s, const char *pid, size_t len, uint64_t hash,
                                  bool create);

/* file_journal_actor.c */
casty_behavior_t *casty__fj_actor_behavior(struct file_journal *j);
casty_behavior_t *casty__fj_acker_behavior(struct file_journal *j);
struct fj_segment *casty__fj_segment(struct file_journal *j, uint32_t no);
int casty__fj_segment_add(struct file_journal *j, uint32_t no, struct fj_segment **out);
int casty__fj_segment_fd(struct file_journal *j, struct fj_segment *s);
int casty__fj_index_append(struct file_journal *j, struct fj_pid *p, uint64_t seq, uint64_t off,
                           uint32_t seg, uint32_t len);
void casty__fj_index_delete(struct file_journal *j, struct fj_pid *p, uint64_t upto,
                            uint32_t marker_seg);
void casty__fj_free_state(struct file_journal *j);

/* file_journal_read.c */
int casty__fj_read_init(struct file_journal *j);
void casty__fj_read_destroy(struct file_journal *j);
void casty__fj_replay_start(struct file_journal *j, struct fj_req *req);
void casty__fj_snap_load_start(struct file_journal *j, struct fj_req *req);
void casty__fj_read_io(struct file_journal *j, struct fj_target *t, const casty__io_done_t *done);
bool casty__fj_read_idle(const struct file_journal *j);
void casty__fj_read_forget_segment(struct file_journal *j, uint32_t segno);
/* The index of the first live event of p with seq >= seq (p->n if none). */
size_t casty__fj_locate(const struct fj_pid *p, uint64_t seq);

/* Replies (any thread). A loaded reply that cannot be sent frees its batch. */
void casty__fj_reply_written(casty_ref_t to, uint64_t tag, int rc, uint64_t seq);
void casty__fj_reply_loaded(casty_ref_t to, uint64_t tag, int rc, casty_journal_batch_t *b);

#endif
