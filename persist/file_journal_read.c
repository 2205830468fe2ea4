/* The file journal's reads, on the journal actor: replays and snapshot
 * loads. Both read through the system's io_uring reactor, so no worker
 * ever waits on the disk.
 *
 * A replay walks the pid's index (seq -> segment, offset, length) one
 * window at a time: the events whose bytes fall in at most WINDOW_BLOCKS
 * blocks of BLOCK_SIZE bytes. It pins those blocks in a cache shared by
 * every replay, reads the missing ones, and when all are in, checks each
 * event (checksum, kind, pid, seq), appends it to its batch and moves on.
 * Replays that start together (every entity of a node recovering at once)
 * walk the same blocks and share each read. A window is described by its
 * seq range and looked up in the index again when it is decoded, so
 * deletions meanwhile are respected and nothing points into the index
 * across a wait.
 *
 * The cache keeps up to CACHE_BYTES of unpinned blocks (LRU). Pinned bytes
 * are bounded too: a replay whose next window would pin more than
 * PIN_BYTES (while anything else is pinned) waits in a FIFO until blocks
 * are released. A block is valid up to the segment's durable size when its
 * read was issued; an event beyond that (the segment grew since) gets a
 * fresh block, and the old one lives until its last pin goes.
 *
 * It does not write, and does not keep the recently written bytes: a
 * replay of events just persisted reads them back (from the page cache). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_journal.h"
#include "internal.h"

#define BLOCK_SHIFT 18u
#define BLOCK_SIZE (1u << BLOCK_SHIFT)
#define WINDOW_BLOCKS 16u
#define CACHE_BYTES ((size_t)64 << 20)
#define PIN_BYTES ((size_t)256 << 20)
#define BUCKETS 4096u

enum block_state { B_LOADING = 1, B_READY, B_FAILED };

struct replay;

struct block {
    struct fj_target t;
    uint32_t seg;
    uint64_t no;       /* block number in the segment */
    unsigned char *data;
    uint32_t valid;    /* bytes of data that hold the file's durable bytes */
    uint32_t expect;   /* what the read was asked for */
    uint8_t state;
    bool in_table;
    bool in_lru;
    int err;
    uint32_t pins;
    struct replay **waiters;
    uint32_t nwaiters, waiters_cap;
    struct block *hnext;
    struct block *lprev, *lnext;
};

struct replay {
    struct fj_req *req; /* p, reply_to, tag */
    uint64_t next;      /* next seq to deliver */
    uint64_t last;      /* the last seq to deliver */
    uint64_t win_last;  /* the last seq of the window being loaded */
    casty_journal_batch_t *batch;
    struct block **pins;
    uint32_t npins, pins_cap;
    uint32_t missing; /* pinned blocks still loading */
    int err;
    struct replay *qnext; /* the throttled FIFO */
};

struct snap_load {
    struct fj_target t;
    struct fj_req *req;
    int fd;
    unsigned char *buf;
    size_t len, done;
    uint64_t seq;
};

struct fj_read {
    struct block *buckets[BUCKETS];
    struct block *lru_head, *lru_tail; /* head: most recently used */
    size_t lru_bytes;
    size_t pinned_bytes;
    uint32_t inflight; /* reads submitted, not completed */
    uint32_t replays;  /* replays started, not answered */
    struct replay *throttled, *throttled_tail;
    unsigned char *scratch; /* an event that spans blocks */
    size_t scratch_cap;
    struct want *want; /* the window being chosen */
    uint32_t want_cap;
};

int casty__fj_read_init(struct file_journal *j)
{
    j->rd = calloc(1, sizeof *j->rd);
    return j->rd ? 0 : CASTY_ENOMEM;
}

static void block_free(struct block *b)
{
    free(b->data);
    free(b->waiters);
    free(b);
}

void casty__fj_read_destroy(struct file_journal *j)
{
    struct fj_read *rd = j->rd;
    if (rd == NULL)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        for (struct block *b = rd->buckets[i], *next; b; b = next) {
            next = b->hnext;
            block_free(b);
        }
    }
    free(rd->scratch);
    free(rd->want);
    free(rd);
    j->rd = NULL;
}

bool casty__fj_read_idle(const struct file_journal *j)
{
    return j->rd->inflight == 0 && j->rd->replays == 0;
}

/* ---- the index ------------------------------------------------------------------------------ */

size_t casty__fj_locate(const struct fj_pid *p, uint64_t seq)
{
    size_t lo = p->head, hi = p->n;
    if (lo == hi || seq <= p->locs[lo].seq)
        return lo;
    /* Live events are consecutive: try the direct position first. */
    uint64_t d = seq - p->locs[lo].seq;
    if (d < hi - lo && p->locs[lo + d].seq == seq)
        return lo + (size_t)d;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->locs[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- the block cache --------------------------------------------------------------------------- */

static size_t bucket_of(uint32_t seg, uint64_t no)
{
    uint64_t h = ((uint64_t)seg * 0x9E3779B97F4A7C15ull) ^ (no * 0xC2B2AE3D27D4EB4Full);
    return (size_t)(h >> 52) & (BUCKETS - 1);
}

static struct block *table_find(struct fj_read *rd, uint32_t seg, uint64_t no)
{
    for (struct block *b = rd->buckets[bucket_of(seg, no)]; b; b = b->hnext)
        if (b->seg == seg && b->no == no)
            return b;
    return NULL;
}

static void lru_unlink(struct fj_read *rd, struct block *b)
{
    if (!b->in_lru)
        return;
    if (b->lprev)
        b->lprev->lnext = b->lnext;
    else
        rd->lru_head = b->lnext;
    if (b->lnext)
        b->lnext->lprev = b->lprev;
    else
        rd->lru_tail = b->lprev;
    b->lprev = b->lnext = NULL;
    b->in_lru = false;
    rd->lru_bytes -= b->expect;
}

static void table_remove(struct fj_read *rd, struct block *b)
{
    if (!b->in_table)
        return;
    struct block **pp = &rd->buckets[bucket_of(b->seg, b->no)];
    while (*pp != b)
        pp = &(*pp)->hnext;
    *pp = b->hnext;
    b->hnext = NULL;
    b->in_table = false;
    lru_unlink(rd, b);
}

/* Frees b once nothing needs it: out of the table, unpinned, no read. */
static void block_maybe_free(struct block *b)
{
    if (!b->in_table && b->pins == 0 && b->state != B_LOADING)
        block_free(b);
}

static void evict(struct fj_read *rd)
{
    while (rd->lru_bytes > CACHE_BYTES && rd->lru_tail) {
        struct block *b = rd->lru_tail;
        table_remove(rd, b);
        block_maybe_free(b);
    }
}

static void pin(struct fj_read *rd, struct block *b)
{
    if (b->pins++ == 0) {
        lru_unlink(rd, b);
        rd->pinned_bytes += b->expect;
    }
}

static void unpin(struct fj_read *rd, struct block *b)
{
    if (--b->pins > 0)
        return;
    rd->pinned_bytes -= b->expect;
    if (b->in_table && b->state == B_READY) {
        b->lnext = rd->lru_head;
        if (rd->lru_head)
            rd->lru_head->lprev = b;
        else
            rd->lru_tail = b;
        rd->lru_head = b;
        b->in_lru = true;
        rd->lru_bytes += b->expect;
        evict(rd);
    } else {
        block_maybe_free(b);
    }
}

void casty__fj_read_forget_segment(struct file_journal *j, uint32_t segno)
{
    struct fj_read *rd = j->rd;
    for (size_t i = 0; i < BUCKETS; i++) {
        for (struct block *b = rd->buckets[i], *next; b; b = next) {
            next = b->hnext;
            if (b->seg == segno) {
                table_remove(rd, b);
                block_maybe_free(b);
            }
        }
    }
}

static int add_waiter(struct block *b, struct replay *r)
{
    if (b->nwaiters == b->waiters_cap) {
        uint32_t cap = b->waiters_cap ? b->waiters_cap * 2 : 4;
        struct replay **a = realloc(b->waiters, cap * sizeof *a);
        if (a == NULL)
            return CASTY_ENOMEM;
        b->waiters = a;
        b->waiters_cap = cap;
    }
    b->waiters[b->nwaiters++] = r;
    return 0;
}

/* A new block of segment s, its read submitted. */
static struct block *block_load(struct file_journal *j, struct fj_segment *s, uint64_t no, int *rc)
{
    struct fj_read *rd = j->rd;
    uint64_t base = no << BLOCK_SHIFT;
    if (base >= s->size) {
        *rc = CASTY_ECORRUPT; /* the index points past the segment's end */
        return NULL;
    }
    uint64_t want = s->size - base < BLOCK_SIZE ? s->size - base : BLOCK_SIZE;
    int fd = casty__fj_segment_fd(j, s);
    if (fd < 0) {
        *rc = fd;
        return NULL;
    }
    struct block *b = calloc(1, sizeof *b);
    if (b == NULL || (b->data = malloc(want)) == NULL) {
        free(b);
        *rc = CASTY_ENOMEM;
        return NULL;
    }
    b->t.kind = FJ_T_BLOCK;
    b->seg = s->no;
    b->no = no;
    b->expect = (uint32_t)want;
    b->state = B_LOADING;
    struct casty__io_req q = {.op = CASTY_IO_READ, .fd = fd, .buf = b->data, .len = b->expect,
                              .offset = base, .tag = (uint64_t)(uintptr_t)b, .reply_to = j->actor};
    *rc = casty__reactor_submit(j->sys->reactor, &q);
    if (*rc) {
        block_free(b);
        return NULL;
    }
    s->reads++;
    rd->inflight++;
    size_t k = bucket_of(b->seg, no);
    b->hnext = rd->buckets[k];
    rd->buckets[k] = b;
    b->in_table = true;
    return b;
}

/* ---- replays -------------------------------------------------------------------------------------- */

static void release_pins(struct file_journal *j, struct replay *r)
{
    for (uint32_t i = 0; i < r->npins; i++)
        unpin(j->rd, r->pins[i]);
    r->npins = 0;
}

static void finish(struct file_journal *j, struct replay *r, int rc)
{
    release_pins(j, r);
    struct fj_req *q = r->req;
    if (rc) {
        casty_journal_batch_free(r->batch);
        r->batch = NULL;
    }
    casty__fj_reply_loaded(q->reply_to, q->tag, rc, r->batch);
    free(q);
    free(r->pins);
    free(r);
    j->rd->replays--;
}

static struct block *pinned(const struct replay *r, uint32_t seg, uint64_t no)
{
    for (uint32_t i = 0; i < r->npins; i++)
        if (r->pins[i]->seg == seg && r->pins[i]->no == no)
            return r->pins[i];
    return NULL;
}

static int add_pin(struct fj_read *rd, struct replay *r, struct block *b)
{
    if (r->npins == r->pins_cap) {
        uint32_t cap = r->pins_cap ? r->pins_cap * 2 : WINDOW_BLOCKS;
        struct block **a = realloc(r->pins, cap * sizeof *a);
        if (a == NULL)
            return CASTY_ENOMEM;
        r->pins = a;
        r->pins_cap = cap;
    }
    pin(rd, b);
    r->pins[r->npins++] = b;
    return 0;
}

static void report_corrupt(struct file_journal *j, const struct fj_loc *l, const char *why)
{
    char name[CASTY__JNAME_MAX];
    casty__jname_segment(name, l->seg);
    fprintf(stderr, "casty: file journal %s/%s:%" PRIu64 ": %s\n", j->dir, name, l->off, why);
}

/* The bytes of the event at l, from r's pinned blocks (copied into the
 * scratch buffer when they span blocks); NULL when they are not all there. */
static const unsigned char *event_bytes(struct file_journal *j, const struct replay *r,
                                        const struct fj_loc *l)
{
    struct fj_read *rd = j->rd;
    uint64_t b0 = l->off >> BLOCK_SHIFT, b1 = (l->off + l->len - 1) >> BLOCK_SHIFT;
    if (b0 == b1) {
        const struct block *b = pinned(r, l->seg, b0);
        uint64_t at = l->off - (b0 << BLOCK_SHIFT);
        return b && b->state == B_READY && at + l->len <= b->valid ? b->data + at : NULL;
    }
    if (rd->scratch_cap < l->len) {
        unsigned char *s = realloc(rd->scratch, l->len);
        if (s == NULL)
            return NULL;
        rd->scratch = s;
        rd->scratch_cap = l->len;
    }
    size_t done = 0;
    for (uint64_t no = b0; no <= b1; no++) {
        const struct block *b = pinned(r, l->seg, no);
        uint64_t at = no == b0 ? l->off - (b0 << BLOCK_SHIFT) : 0;
        uint64_t n = BLOCK_SIZE - at < l->len - done ? BLOCK_SIZE - at : l->len - done;
        if (b == NULL || b->state != B_READY || at + n > b->valid)
            return NULL;
        memcpy(rd->scratch + done, b->data + at, n);
        done += n;
    }
    return rd->scratch;
}

/* Checks and appends the window's events (r->next .. r->win_last). */
static int decode_window(struct file_journal *j, struct replay *r)
{
    struct fj_pid *p = r->req->p;
    for (size_t i = casty__fj_locate(p, r->next); i < p->n && p->locs[i].seq <= r->win_last; i++) {
        const struct fj_loc *l = &p->locs[i];
        const unsigned char *bytes = event_bytes(j, r, l);
        if (bytes == NULL) {
            report_corrupt(j, l, "event beyond the bytes read (segment shorter than indexed)");
            return CASTY_ECORRUPT;
        }
        casty__jrec_t rec;
        const char *why = "not the indexed event";
        int rc = casty__jrec_decode(bytes, l->len, &rec, NULL, &why);
        if (rc != 0 || rec.kind != CASTY__JREC_EVENT || rec.len != l->len || rec.seq != l->seq ||
            rec.pid_len != p->len || memcmp(rec.pid, p->pid, p->len) != 0) {
            report_corrupt(j, l, rc == CASTY_ECORRUPT ? why : "not the indexed event");
            return CASTY_ECORRUPT;
        }
        rc = casty_journal_batch_add(&r->batch, rec.seq, rec.type_id, rec.payload, rec.payload_len);
        if (rc)
            return rc;
    }
    r->next = r->win_last + 1;
    return 0;
}

/* The cached block (seg, no) holding at least `need` bytes, pinned for r;
 * read from the segment when absent or too short (the segment has grown
 * since it was read). r waits on it while it loads. */
static int acquire(struct file_journal *j, struct replay *r, uint32_t seg, uint64_t no,
                   uint64_t need)
{
    struct fj_read *rd = j->rd;
    struct block *b = table_find(rd, seg, no);
    if (b && ((b->state == B_READY && b->valid < need) ||
              (b->state == B_LOADING && b->expect < need))) {
        table_remove(rd, b);
        block_maybe_free(b);
        b = NULL;
    }
    int rc = 0;
    if (b == NULL) {
        struct fj_segment *s = casty__fj_segment(j, seg);
        b = s ? block_load(j, s, no, &rc) : NULL;
        if (b == NULL)
            return rc ? rc : CASTY_ECORRUPT;
    }
    if ((rc = add_pin(rd, r, b)) != 0)
        return rc;
    if (b->state == B_LOADING) {
        if ((rc = add_waiter(b, r)) != 0)
            return rc;
        r->missing++;
    }
    return 0;
}

struct want {
    uint32_t seg;
    uint64_t no;
    uint64_t need; /* bytes of the block that must be valid */
};

/* Adds the blocks of event l to w[0..*n) (room for WINDOW_BLOCKS, or for
 * the one event alone when it is larger); false when they do not fit and
 * the window already has an event. */
static bool want_event(struct fj_read *rd, const struct fj_loc *l, bool first, uint32_t *n)
{
    uint64_t b0 = l->off >> BLOCK_SHIFT, b1 = (l->off + l->len - 1) >> BLOCK_SHIFT;
    struct want *w = rd->want;
    uint32_t add = 0;
    for (uint64_t no = b0; no <= b1; no++) {
        bool seen = false;
        for (uint32_t k = 0; k < *n && !seen; k++)
            seen = w[k].seg == l->seg && w[k].no == no;
        add += !seen;
    }
    if (*n + add > WINDOW_BLOCKS && !first)
        return false;
    if (*n + add > rd->want_cap) {
        uint32_t cap = *n + add > WINDOW_BLOCKS ? *n + add : WINDOW_BLOCKS;
        struct want *a = realloc(rd->want, cap * sizeof *a);
        if (a == NULL)
            return false;
        rd->want = w = a;
        rd->want_cap = cap;
    }
    for (uint64_t no = b0; no <= b1; no++) {
        uint64_t need = l->off + l->len - (no << BLOCK_SHIFT);
        if (need > BLOCK_SIZE)
            need = BLOCK_SIZE;
        uint32_t k = 0;
        while (k < *n && !(w[k].seg == l->seg && w[k].no == no))
            k++;
        if (k == *n)
            w[(*n)++] = (struct want){l->seg, no, need};
        else if (need > w[k].need)
            w[k].need = need;
    }
    return true;
}

/* Pins the blocks of the next window (from index `first`) and starts
 * their reads. Returns 0 (r->missing says whether to wait), THROTTLED, or
 * an error. */
#define THROTTLED 1
static int start_window(struct file_journal *j, struct replay *r, size_t first)
{
    struct fj_read *rd = j->rd;
    struct fj_pid *p = r->req->p;
    uint32_t n = 0;
    for (size_t i = first; i < p->n && p->locs[i].seq <= r->last; i++) {
        if (!want_event(rd, &p->locs[i], i == first, &n))
            break;
        r->win_last = p->locs[i].seq;
        if (n >= WINDOW_BLOCKS)
            break;
    }
    if (n == 0)
        return CASTY_ENOMEM;
    size_t new_bytes = 0;
    for (uint32_t k = 0; k < n; k++) {
        struct block *b = table_find(rd, rd->want[k].seg, rd->want[k].no);
        if (b == NULL || b->pins == 0)
            new_bytes += BLOCK_SIZE;
    }
    if (rd->pinned_bytes && rd->pinned_bytes + new_bytes > PIN_BYTES)
        return THROTTLED;
    for (uint32_t k = 0; k < n; k++) {
        int rc = acquire(j, r, rd->want[k].seg, rd->want[k].no, rd->want[k].need);
        if (rc)
            return rc;
    }
    return 0;
}

/* Runs r until it waits for blocks or is answered (0), or until its next
 * window must wait for pinned bytes to drop (THROTTLED: the caller queues
 * it). */
static int advance(struct file_journal *j, struct replay *r)
{
    struct fj_pid *p = r->req->p;
    for (;;) {
        if (r->err) {
            finish(j, r, r->err);
            return 0;
        }
        size_t first = casty__fj_locate(p, r->next);
        if (first >= p->n || p->locs[first].seq > r->last) {
            finish(j, r, 0);
            return 0;
        }
        int rc = start_window(j, r, first);
        if (rc == THROTTLED) {
            release_pins(j, r);
            return THROTTLED;
        }
        if (rc < 0) {
            r->err = rc;
            /* Blocks it already waits for will resume it, to be answered
             * then: it must stay on their waiter lists until they load. */
            if (r->missing)
                return 0;
            continue;
        }
        if (r->missing)
            return 0; /* block_done resumes it */
        r->err = decode_window(j, r);
        release_pins(j, r);
    }
}

static void throttle(struct fj_read *rd, struct replay *r, bool at_head)
{
    r->qnext = NULL;
    if (rd->throttled == NULL) {
        rd->throttled = rd->throttled_tail = r;
    } else if (at_head) {
        r->qnext = rd->throttled;
        rd->throttled = r;
    } else {
        rd->throttled_tail->qnext = r;
        rd->throttled_tail = r;
    }
}

/* Resumes throttled replays, in order, while pinned bytes allow. */
static void unthrottle(struct file_journal *j)
{
    struct fj_read *rd = j->rd;
    while (rd->throttled && rd->pinned_bytes < PIN_BYTES / 2) {
        struct replay *r = rd->throttled;
        rd->throttled = r->qnext;
        if (rd->throttled == NULL)
            rd->throttled_tail = NULL;
        if (advance(j, r) == THROTTLED) {
            throttle(rd, r, true);
            break;
        }
    }
}

void casty__fj_replay_start(struct file_journal *j, struct fj_req *req)
{
    struct replay *r = calloc(1, sizeof *r);
    casty_journal_batch_t *b = r ? casty_journal_batch_new() : NULL;
    if (b == NULL) {
        free(r);
        casty__fj_reply_loaded(req->reply_to, req->tag, CASTY_ENOMEM, NULL);
        free(req);
        return;
    }
    struct fj_pid *p = req->p;
    struct fj_shard *s = casty__fj_shard(j, p->hash);
    pthread_mutex_lock(&s->mu);
    uint64_t deleted = p->deleted_upto;
    pthread_mutex_unlock(&s->mu);
    r->req = req;
    r->batch = b;
    r->next = req->seq > deleted ? req->seq : deleted + 1;
    r->last = p->last_seq;
    j->rd->replays++;
    /* Behind earlier throttled replays, to keep their order. */
    if (j->rd->throttled || advance(j, r) == THROTTLED)
        throttle(j->rd, r, false);
    unthrottle(j);
}

static void block_done(struct file_journal *j, struct block *b, const casty__io_done_t *d)
{
    struct fj_read *rd = j->rd;
    rd->inflight--;
    struct fj_segment *s = casty__fj_segment(j, b->seg);
    if (s && --s->reads == 0 && s->live == 0)
        j->reclaim_due = true;
    if (d->res < 0) {
        b->state = B_FAILED;
        b->err = d->res;
        table_remove(rd, b);
    } else {
        b->state = B_READY;
        b->valid = (uint32_t)d->res < b->expect ? (uint32_t)d->res : b->expect;
    }
    /* Hold b while its waiters run: they may release their pins on it. */
    b->pins++;
    struct replay **w = b->waiters;
    uint32_t n = b->nwaiters;
    b->waiters = NULL;
    b->nwaiters = b->waiters_cap = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct replay *r = w[i];
        if (b->state == B_FAILED && r->err == 0)
            r->err = b->err;
        if (--r->missing > 0)
            continue;
        if (r->err == 0)
            r->err = decode_window(j, r);
        release_pins(j, r);
        if (advance(j, r) == THROTTLED)
            throttle(rd, r, false);
    }
    free(w);
    /* The hold kept the last waiter's unpin from finishing the job. */
    if (b->pins == 1)
        unpin(rd, b); /* to the LRU, or freed */
    else
        b->pins--;
    unthrottle(j);
}

/* ---- snapshot loads ------------------------------------------------------------------------------- */

static void snap_load_end(struct file_journal *j, struct snap_load *op, int rc)
{
    struct fj_req *r = op->req;
    casty_journal_batch_t *b = NULL;
    if (rc == 0) {
        casty__jrec_t rec;
        const char *why = "not the snapshot expected";
        struct fj_pid *p = r->p;
        rc = casty__jrec_decode(op->buf, op->len, &rec, NULL, &why);
        if (rc == 0 && (rec.kind != CASTY__JREC_SNAPSHOT || rec.len != op->len ||
                        rec.seq != op->seq || rec.pid_len != p->len ||
                        memcmp(rec.pid, p->pid, p->len) != 0))
            rc = CASTY_ECORRUPT;
        if (rc != 0) {
            char name[CASTY__JNAME_MAX];
            casty__jname_snapshot(name, p->hash, op->seq);
            fprintf(stderr, "casty: file journal %s/%s:0: %s\n", j->dir, name, why);
            rc = CASTY_ECORRUPT;
        } else if ((b = casty_journal_batch_new()) == NULL) {
            rc = CASTY_ENOMEM;
        } else if ((rc = casty_journal_batch_add(&b, rec.seq, rec.type_id, rec.payload,
                                                 rec.payload_len)) != 0) {
            casty_journal_batch_free(b);
            b = NULL;
        }
    }
    if (op->fd >= 0)
        close(op->fd);
    casty__fj_reply_loaded(r->reply_to, r->tag, rc, b);
    free(op->buf);
    free(op);
    free(r);
}

void casty__fj_snap_load_start(struct file_journal *j, struct fj_req *r)
{
    /* The actor is the only writer of snap_seq: no lock to read it here. */
    uint64_t seq = r->p->snap_seq;
    if (seq == 0) {
        casty_journal_batch_t *b = casty_journal_batch_new();
        casty__fj_reply_loaded(r->reply_to, r->tag, b ? 0 : CASTY_ENOMEM, b);
        free(r);
        return;
    }
    struct snap_load *op = calloc(1, sizeof *op);
    if (op == NULL) {
        casty__fj_reply_loaded(r->reply_to, r->tag, CASTY_ENOMEM, NULL);
        free(r);
        return;
    }
    op->t.kind = FJ_T_SNAP_LOAD;
    op->req = r;
    op->seq = seq;
    char name[CASTY__JNAME_MAX];
    casty__jname_snapshot(name, r->p->hash, seq);
    op->fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc = 0;
    if (op->fd < 0 || fstat(op->fd, &st) != 0)
        rc = -errno;
    else if (st.st_size < (off_t)CASTY__JREC_MIN || (uint64_t)st.st_size > CASTY__JREC_MAX)
        rc = CASTY_ECORRUPT;
    else if ((op->buf = malloc((size_t)st.st_size)) == NULL)
        rc = CASTY_ENOMEM;
    if (rc == 0) {
        op->len = (size_t)st.st_size;
        struct casty__io_req q = {.op = CASTY_IO_READ, .fd = op->fd, .buf = op->buf,
                                  .len = (uint32_t)op->len, .offset = 0,
                                  .tag = (uint64_t)(uintptr_t)op, .reply_to = j->actor};
        rc = casty__reactor_submit(j->sys->reactor, &q);
    }
    if (rc) {
        snap_load_end(j, op, rc);
        return;
    }
    j->rd->inflight++;
}

static void snap_load_io(struct file_journal *j, struct snap_load *op, const casty__io_done_t *d)
{
    j->rd->inflight--;
    int rc = d->res < 0 ? d->res : 0;
    if (rc == 0 && d->res == 0)
        rc = CASTY_ECORRUPT; /* the file is shorter than it was */
    if (rc == 0) {
        op->done += (size_t)d->res;
        if (op->done < op->len) {
            struct casty__io_req q = {.op = CASTY_IO_READ, .fd = op->fd, .buf = op->buf + op->done,
                                      .len = (uint32_t)(op->len - op->done), .offset = op->done,
                                      .tag = (uint64_t)(uintptr_t)op, .reply_to = j->actor};
            rc = casty__reactor_submit(j->sys->reactor, &q);
            if (rc == 0) {
                j->rd->inflight++;
                return;
            }
        }
    }
    snap_load_end(j, op, rc);
}

void casty__fj_read_io(struct file_journal *j, struct fj_target *t, const casty__io_done_t *d)
{
    if (t->kind == FJ_T_BLOCK)
        block_done(j, (struct block *)t, d);
    else if (t->kind == FJ_T_SNAP_LOAD)
        snap_load_io(j, (struct snap_load *)t, d);
}
