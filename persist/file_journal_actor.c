/* The file journal's actor: the one owner of the write path. It takes the
 * callers' requests off the stack, groups every persist and deletion that
 * arrived while the previous commit was in flight into the next group
 * commit (one write, one fdatasync, through the system's io_uring
 * reactor), acknowledges them once that fdatasync has returned (the
 * replies go out through helper actors, the ackers), keeps the
 * index (pid -> event locations) current, rolls segments, reclaims
 * segments that hold nothing live, and saves snapshots (temp file, fsync,
 * rename, directory fsync). Reads (replays, snapshot loads) are
 * file_journal_read.c's.
 *
 * The handler's phases, in order, for every message: a completion or a
 * kick or close; then reclaim space if something became dead; then start
 * the next group commit if none is in flight; then stop if closing and
 * idle.
 *
 * A commit goes WRITE -> FDATASYNC -> (directory FSYNC, for the first
 * commit into a new segment) -> acknowledge. A write error, a short write
 * that makes no progress or a failed sync poisons the journal: the failing
 * commit and everything pending answer with the error, and every later
 * persist is refused with it (the file's state after a failed fdatasync is
 * unknown, so nothing written after it may claim durability). Reopening
 * the journal recovers to the last durable commit.
 *
 * Space: a segment other than the active one whose events are all deleted
 * is unlinked. The newest DELETE record of each pid must outlive the
 * events it covers, so if such a record sits in the segment, it is first
 * rewritten into the active segment (FJ_MARKER) and the segment is
 * unlinked once that commit is durable. The open/rename/unlink system
 * calls run on the actor (metadata operations); reads, writes and syncs go
 * through the reactor. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomics.h"
#include "file_journal.h"
#include "internal.h"

const casty_type_t casty__fj_kick_type = {"casty.file_journal.kick", 0, NULL, NULL, NULL, CASTY_TYPE_LOCAL};
const casty_type_t casty__fj_close_type = {"casty.file_journal.close", 0, NULL, NULL, NULL, CASTY_TYPE_LOCAL};

enum { STAGE_WRITE = 1, STAGE_SYNC, STAGE_DIRSYNC };

static int submit_io(struct file_journal *j, uint8_t op, int fd, void *buf, uint32_t len,
                     uint64_t off, struct fj_target *t)
{
    struct casty__io_req q = {
        .op = op, .fd = fd, .buf = buf, .len = len, .offset = off,
        .tag = (uint64_t)(uintptr_t)t, .reply_to = j->actor,
    };
    return casty__reactor_submit(j->sys->reactor, &q);
}

/* ---- segments ---------------------------------------------------------------------------- */

struct fj_segment *casty__fj_segment(struct file_journal *j, uint32_t no)
{
    if (no < j->seg_base || no - j->seg_base >= j->nsegs)
        return NULL;
    return j->segs[no - j->seg_base];
}

/* Adds segment `no`, which must be above every segment added so far. */
int casty__fj_segment_add(struct file_journal *j, uint32_t no, struct fj_segment **out)
{
    if (j->nsegs == 0)
        j->seg_base = no;
    size_t slot = no - j->seg_base;
    if (slot >= j->segs_cap) {
        size_t cap = j->segs_cap ? j->segs_cap : 16;
        while (cap <= slot)
            cap *= 2;
        struct fj_segment **a = realloc(j->segs, cap * sizeof *a);
        if (a == NULL)
            return CASTY_ENOMEM;
        memset(a + j->segs_cap, 0, (cap - j->segs_cap) * sizeof *a);
        j->segs = a;
        j->segs_cap = cap;
    }
    struct fj_segment *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CASTY_ENOMEM;
    s->no = no;
    s->fd = -1;
    j->segs[slot] = s;
    j->nsegs = slot + 1;
    *out = s;
    return 0;
}

int casty__fj_segment_fd(struct file_journal *j, struct fj_segment *s)
{
    if (s->fd >= 0)
        return s->fd;
    char name[CASTY__JNAME_MAX];
    casty__jname_segment(name, s->no);
    s->fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
    return s->fd >= 0 ? s->fd : -errno;
}

static void segment_remove(struct file_journal *j, struct fj_segment *s)
{
    char name[CASTY__JNAME_MAX];
    casty__jname_segment(name, s->no);
    if (s->fd >= 0)
        close(s->fd);
    /* Not synced: a segment that comes back after a crash holds only
     * deleted events and superseded DELETE records, which recovery skips. */
    if (unlinkat(j->dirfd, name, 0) != 0 && errno != ENOENT)
        fprintf(stderr, "casty: file journal %s/%s: cannot remove: %s\n", j->dir, name,
                strerror(errno));
    casty__fj_read_forget_segment(j, s->no);
    j->segs[s->no - j->seg_base] = NULL;
    free(s->markers);
    free(s);
    size_t skip = 0;
    while (skip < j->nsegs && j->segs[skip] == NULL)
        skip++;
    if (skip) {
        memmove(j->segs, j->segs + skip, (j->nsegs - skip) * sizeof *j->segs);
        memset(j->segs + j->nsegs - skip, 0, skip * sizeof *j->segs);
        j->nsegs -= skip;
        j->seg_base += (uint32_t)skip;
    }
}

/* Opens the next segment for appending. Its header goes out with the
 * first commit into it, and that commit syncs the directory too. */
static int roll(struct file_journal *j)
{
    uint32_t no = j->nsegs ? j->seg_base + (uint32_t)j->nsegs : 1;
    if (no == 0)
        return CASTY_ERANGE; /* 2^32 segments */
    char name[CASTY__JNAME_MAX];
    casty__jname_segment(name, no);
    int fd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    struct fj_segment *s;
    int rc = casty__fj_segment_add(j, no, &s);
    if (rc) {
        close(fd);
        (void)unlinkat(j->dirfd, name, 0);
        return rc;
    }
    s->fd = fd;
    s->needs_dirsync = true;
    if (j->active && j->active->live == 0)
        j->reclaim_due = true;
    j->active = s;
    return 0;
}

/* ---- the index ---------------------------------------------------------------------------- */

int casty__fj_index_append(struct file_journal *j, struct fj_pid *p, uint64_t seq, uint64_t off,
                           uint32_t seg, uint32_t len)
{
    if (p->n == p->cap) {
        if (p->head > p->n / 2) {
            /* reuse the room that deletions left at the front */
            memmove(p->locs, p->locs + p->head, (p->n - p->head) * sizeof *p->locs);
            p->n -= p->head;
            p->head = 0;
        } else {
            size_t cap = p->cap ? p->cap * 2 : 8;
            struct fj_loc *a = realloc(p->locs, cap * sizeof *a);
            if (a == NULL)
                return CASTY_ENOMEM;
            p->locs = a;
            p->cap = cap;
        }
    }
    p->locs[p->n++] = (struct fj_loc){.seq = seq, .off = off, .seg = seg, .len = len};
    struct fj_segment *s = casty__fj_segment(j, seg);
    if (s)
        s->live++;
    return 0;
}

static void note_marker(struct file_journal *j, struct fj_pid *p, uint32_t segno)
{
    if (p->marker_seg == segno)
        return;
    p->marker_seg = segno;
    struct fj_segment *s = casty__fj_segment(j, segno);
    if (s == NULL)
        return;
    if (s->nmarkers == s->markers_cap) {
        uint32_t cap = s->markers_cap ? s->markers_cap * 2 : 4;
        struct fj_pid **a = realloc(s->markers, cap * sizeof *a);
        if (a == NULL)
            return; /* only costs the segment's reclaim */
        s->markers = a;
        s->markers_cap = cap;
    }
    s->markers[s->nmarkers++] = p;
}

void casty__fj_index_delete(struct file_journal *j, struct fj_pid *p, uint64_t upto,
                            uint32_t marker_seg)
{
    if (upto >= p->durable_deleted) {
        p->durable_deleted = upto;
        note_marker(j, p, marker_seg);
    }
    while (p->head < p->n && p->locs[p->head].seq <= upto) {
        struct fj_segment *s = casty__fj_segment(j, p->locs[p->head].seg);
        if (s && --s->live == 0)
            j->reclaim_due = true;
        p->head++;
    }
    if (p->head == p->n)
        p->head = p->n = 0;
}

/* ---- space reclaim ------------------------------------------------------------------------- */

static void queue_pending(struct file_journal *j, struct fj_req *r)
{
    r->next = NULL;
    if (j->pend_tail)
        j->pend_tail->next = r;
    else
        j->pend_head = r;
    j->pend_tail = r;
}

/* Rewrites p's newest DELETE record into the active segment. False when
 * out of memory (the segment then stays until a later reclaim). */
static bool evacuate_marker(struct file_journal *j, struct fj_pid *p)
{
    struct fj_req *r = malloc(sizeof *r + casty__jrec_size(p->len, 0));
    if (r == NULL)
        return false;
    memset(r, 0, sizeof *r);
    r->kind = FJ_MARKER;
    r->p = p;
    r->seq = p->durable_deleted;
    r->len = (uint32_t)casty__jrec_encode(r->bytes, CASTY__JREC_DELETE, p->pid, p->len,
                                          p->durable_deleted, 0, NULL, 0);
    queue_pending(j, r);
    return true;
}

static void reclaim(struct file_journal *j)
{
    j->reclaim_due = false;
    /* Acquire: pairs with the release store in poison(). */
    if (load_acquire(&j->poisoned) || j->nsegs == 0)
        return;
    uint32_t first = j->seg_base, end = j->seg_base + (uint32_t)j->nsegs;
    for (uint32_t no = first; no != end; no++) {
        struct fj_segment *s = casty__fj_segment(j, no);
        if (s == NULL || s == j->active || s->live != 0 || s->reads != 0)
            continue;
        bool held = false, queued = true;
        for (uint32_t m = 0; m < s->nmarkers; m++) {
            struct fj_pid *p = s->markers[m];
            if (p->marker_seg != s->no)
                continue;
            held = true;
            if (!s->evacuating)
                queued = evacuate_marker(j, p) && queued;
        }
        if (held) {
            s->evacuating = queued;
            continue;
        }
        segment_remove(j, s);
    }
}

/* ---- acknowledgements ------------------------------------------------------------------------- */

/* Persists are answered by the ackers, helper actors, so that the journal
 * actor can start the next commit while thousands of replies go out on
 * other workers. Each reply_to is always served by the same acker, and an
 * acker handles its batches in order, so one actor's replies arrive in the
 * order of its persists. */
struct ack_batch {
    struct fj_req *list;
    struct file_journal *j;
    int rc;
};

static void free_reqs(struct fj_req *r)
{
    while (r) {
        struct fj_req *next = r->next;
        free(r);
        r = next;
    }
}

static void drop_ack_batch(void *value)
{
    struct ack_batch *b = value;
    free_reqs(b->list); /* dead-lettered at shutdown: nobody to answer */
    b->list = NULL;
}

static const casty_type_t ack_batch_type = {"casty.file_journal.acks", sizeof(struct ack_batch),
                                            NULL, NULL, drop_ack_batch, CASTY_TYPE_LOCAL};

static void reply_all(struct fj_req *r, int rc)
{
    while (r) {
        struct fj_req *next = r->next;
        casty__fj_reply_written(r->reply_to, r->tag, rc, r->seq);
        free(r);
        r = next;
    }
}

static casty_behavior_t *acker_receive(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)state;
    struct ack_batch *b = casty_msg_get(msg, &ack_batch_type);
    if (b == NULL)
        return casty_unhandled();
    reply_all(b->list, b->rc);
    b->list = NULL;
    /* Read before the decrement: once the count is 0 the journal may be
     * closed and freed. The last batch out kicks the actor, which may be
     * waiting for idleness to close. */
    casty_ref_t actor = b->j->actor;
    /* Full barrier (lock xadd): pairs with the actor's acquire load in idle(). */
    if (ck_pr_faa_32(&b->j->acks_out, (uint32_t)-1) == 1) {
        char none = 0;
        (void)casty_tell(actor, &casty__fj_kick_type, &none);
    }
    return casty_same();
}

casty_behavior_t *casty__fj_acker_behavior(struct file_journal *j)
{
    return casty_receive(acker_receive, &j, sizeof j);
}

/* Answers a list of persists with rc, through the ackers (directly when
 * there is only one worker). Consumes the list. */
static void acknowledge(struct file_journal *j, struct fj_req *list, int rc)
{
    if (j->nackers < 2) {
        reply_all(list, rc);
        return;
    }
    struct fj_req *head[FJ_ACKERS] = {0}, *tail[FJ_ACKERS] = {0};
    while (list) {
        struct fj_req *r = list;
        list = r->next;
        r->next = NULL;
        uint32_t a = (uint32_t)(casty_ref_hash(r->reply_to) % j->nackers);
        if (tail[a])
            tail[a]->next = r;
        else
            head[a] = r;
        tail[a] = r;
    }
    for (uint32_t a = 0; a < j->nackers; a++) {
        if (head[a] == NULL)
            continue;
        struct ack_batch b = {head[a], j, rc};
        /* Full barrier (lock xadd): counted before the acker can finish. */
        ck_pr_faa_32(&j->acks_out, 1u);
        if (casty_tell(j->ackers[a], &ack_batch_type, &b) != 0) {
            /* Full barrier (lock xadd): not sent after all; answered here. */
            ck_pr_faa_32(&j->acks_out, (uint32_t)-1);
            reply_all(head[a], rc);
        }
    }
}

/* ---- group commit --------------------------------------------------------------------------- */

/* Collects the persists of `list` (freeing the rest) into *out. */
static void collect_persists(struct fj_req *list, struct fj_req **out)
{
    while (list) {
        struct fj_req *r = list;
        list = r->next;
        if (r->kind == FJ_PERSIST) {
            r->next = *out;
            *out = r;
        } else {
            free(r);
        }
    }
}

/* A write or sync failed: nothing more is written by this journal. */
static void poison(struct file_journal *j, int rc)
{
    /* Release: pairs with the callers' acquire loads in persist. */
    store_release(&j->poisoned, rc);
    fprintf(stderr, "casty: file journal %s: write failed (%s); refusing further writes\n", j->dir,
            casty_strerror(rc));
    struct fj_commit *c = &j->commit;
    struct fj_req *failed = NULL;
    collect_persists(c->reqs, &failed); /* older than the pending ones */
    collect_persists(j->pend_head, &failed);
    c->reqs = c->reqs_tail = NULL;
    c->busy = false;
    j->pend_head = j->pend_tail = NULL;
    /* Newest first: put them back in order. */
    struct fj_req *ordered = NULL;
    while (failed) {
        struct fj_req *r = failed;
        failed = r->next;
        r->next = ordered;
        ordered = r;
    }
    acknowledge(j, ordered, rc);
}

static int commit_reserve(struct fj_commit *c, size_t need)
{
    if (c->len + need <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : 1u << 16;
    while (cap < c->len + need)
        cap *= 2;
    unsigned char *b = realloc(c->buf, cap);
    if (b == NULL)
        return CASTY_ENOMEM;
    c->buf = b;
    c->cap = cap;
    return 0;
}

static void commit_done(struct file_journal *j)
{
    struct fj_commit *c = &j->commit;
    struct fj_segment *s = c->seg;
    struct fj_req *acks = NULL, *acks_tail = NULL;
    s->size = c->off + c->len;
    if (c->dirsync)
        s->needs_dirsync = false;
    for (struct fj_req *r = c->reqs, *next; r; r = next) {
        next = r->next;
        struct fj_pid *p = r->p;
        switch (r->kind) {
        case FJ_PERSIST: {
            uint64_t seq = r->seq + 1 - r->nrec;
            for (uint32_t k = 0, at = 0; k < r->nrec; k++, seq++) {
                uint32_t len = casty__jrec_len_at(r->bytes + at);
                if (seq > p->durable_deleted &&
                    casty__fj_index_append(j, p, seq, r->off + at, s->no, len) != 0)
                    fprintf(stderr, "casty: file journal %s: out of memory indexing '%s'\n",
                            j->dir, p->pid);
                at += len;
            }
            if (r->nrec)
                p->last_seq = r->seq;
            r->next = NULL;
            if (acks_tail)
                acks_tail->next = r;
            else
                acks = r;
            acks_tail = r;
            continue; /* freed once answered */
        }
        case FJ_DELETE:
        case FJ_MARKER:
            casty__fj_index_delete(j, p, r->seq, s->no);
            j->reclaim_due = true;
            break;
        default:
            break;
        }
        free(r);
    }
    c->reqs = c->reqs_tail = NULL;
    c->busy = false;
    acknowledge(j, acks, 0);
}

/* Takes pending requests into one buffer and writes it. */
static void start_commit(struct file_journal *j)
{
    struct fj_commit *c = &j->commit;
    if (c->busy || j->pend_head == NULL)
        return;
    int rc;
    if (j->active == NULL || j->active->size >= j->segment_bytes) {
        if ((rc = roll(j)) != 0) {
            poison(j, rc);
            return;
        }
    }
    struct fj_segment *s = j->active;
    c->seg = s;
    c->off = s->size;
    c->len = c->done = 0;
    c->dirsync = s->needs_dirsync;
    size_t head = s->size == 0 ? CASTY__JSEG_HEADER : 0;
    if ((rc = commit_reserve(c, head + CASTY__JREC_MIN)) != 0) {
        poison(j, rc);
        return;
    }
    if (head)
        casty__jseg_header_encode(c->buf, s->no);
    c->len = head + CASTY__JREC_MIN;
    size_t region = 0;
    while (j->pend_head) {
        struct fj_req *r = j->pend_head;
        bool first = c->reqs == NULL;
        if (!first && (region + r->len > FJ_COMMIT_MAX ||
                       s->size + c->len + r->len > j->segment_bytes))
            break;
        if ((rc = commit_reserve(c, r->len)) != 0) {
            poison(j, rc);
            return;
        }
        j->pend_head = r->next;
        if (j->pend_head == NULL)
            j->pend_tail = NULL;
        r->next = NULL;
        r->off = c->off + c->len;
        memcpy(c->buf + c->len, r->bytes, r->len);
        c->len += r->len;
        region += r->len;
        if (c->reqs_tail)
            c->reqs_tail->next = r;
        else
            c->reqs = r;
        c->reqs_tail = r;
    }
    c->busy = true;
    if (region == 0) {
        /* Only empty persists (n == 0): everything before them is already
         * durable, since commits run one at a time. Nothing is written. */
        c->len = 0;
        c->dirsync = false;
        commit_done(j);
        return;
    }
    casty__jrec_encode(c->buf + head, CASTY__JREC_COMMIT, NULL, 0, ++j->commit_id, region, NULL, 0);
    c->stage = STAGE_WRITE;
    if ((rc = submit_io(j, CASTY_IO_WRITE, s->fd, c->buf, (uint32_t)c->len, c->off, &c->t)) != 0)
        poison(j, rc);
}

static void commit_io(struct file_journal *j, const casty__io_done_t *d)
{
    struct fj_commit *c = &j->commit;
    int rc = d->res < 0 ? d->res : 0;
    if (rc == 0) {
        switch (c->stage) {
        case STAGE_WRITE:
            if (d->res == 0) {
                rc = -EIO; /* no progress */
                break;
            }
            c->done += (size_t)d->res;
            if (c->done < c->len) {
                rc = submit_io(j, CASTY_IO_WRITE, c->seg->fd, c->buf + c->done,
                               (uint32_t)(c->len - c->done), c->off + c->done, &c->t);
            } else {
                c->stage = STAGE_SYNC;
                rc = submit_io(j, CASTY_IO_FDATASYNC, c->seg->fd, NULL, 0, 0, &c->t);
            }
            break;
        case STAGE_SYNC:
            if (c->dirsync) {
                c->stage = STAGE_DIRSYNC;
                rc = submit_io(j, CASTY_IO_FSYNC, j->dirfd, NULL, 0, 0, &c->t);
            } else {
                commit_done(j);
            }
            break;
        case STAGE_DIRSYNC:
            commit_done(j);
            break;
        }
    }
    if (rc)
        poison(j, rc);
}

/* ---- snapshot saves ---------------------------------------------------------------------------- */

struct snap_save {
    struct fj_target t;
    struct snap_save *prev, *next; /* j->snap_inflight */
    struct fj_req *req;
    int fd;
    uint8_t stage;
    size_t done;
    char tmp[CASTY__JNAME_MAX + 24];
    char name[CASTY__JNAME_MAX];
};

static void snap_save_unlink(struct file_journal *j, struct snap_save *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        j->snap_inflight = op->next;
    if (op->next)
        op->next->prev = op->prev;
}

static void snap_save_end(struct file_journal *j, struct snap_save *op, int rc)
{
    struct fj_req *r = op->req;
    snap_save_unlink(j, op);
    if (op->fd >= 0)
        close(op->fd);
    if (rc) {
        if (op->stage != STAGE_DIRSYNC)
            (void)unlinkat(j->dirfd, op->tmp, 0);
    } else {
        /* Latest wins: the previous snapshot's file goes, or this one if a
         * later snapshot finished first. The same seq again replaced the
         * file in place (the rename). */
        struct fj_pid *p = r->p;
        struct fj_shard *sh = casty__fj_shard(j, p->hash);
        pthread_mutex_lock(&sh->mu);
        uint64_t old = p->snap_seq;
        if (r->seq > old)
            p->snap_seq = r->seq;
        pthread_mutex_unlock(&sh->mu);
        uint64_t stale = r->seq > old ? old : r->seq < old ? r->seq : 0;
        if (stale) {
            char name[CASTY__JNAME_MAX];
            casty__jname_snapshot(name, p->hash, stale);
            (void)unlinkat(j->dirfd, name, 0);
        }
    }
    casty__fj_reply_written(r->reply_to, r->tag, rc, r->seq);
    free(r);
    free(op);
    j->snap_saves--;
}

static void snap_save_start(struct file_journal *j, struct fj_req *r)
{
    struct snap_save *op = calloc(1, sizeof *op);
    if (op == NULL) {
        casty__fj_reply_written(r->reply_to, r->tag, CASTY_ENOMEM, r->seq);
        free(r);
        return;
    }
    j->snap_saves++;
    op->next = j->snap_inflight;
    if (op->next)
        op->next->prev = op;
    j->snap_inflight = op;
    op->t.kind = FJ_T_SNAP_SAVE;
    op->req = r;
    op->fd = -1;
    casty__jname_snapshot(op->name, r->p->hash, r->seq);
    snprintf(op->tmp, sizeof op->tmp, "%.*s.%" PRIu64 ".tmp", (int)(strlen(op->name) - 5),
             op->name, ++j->tmp_counter);
    op->fd = openat(j->dirfd, op->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (op->fd < 0) {
        snap_save_end(j, op, -errno);
        return;
    }
    op->stage = STAGE_WRITE;
    int rc = submit_io(j, CASTY_IO_WRITE, op->fd, r->bytes, r->len, 0, &op->t);
    if (rc)
        snap_save_end(j, op, rc);
}

static void snap_save_io(struct file_journal *j, struct snap_save *op, const casty__io_done_t *d)
{
    struct fj_req *r = op->req;
    int rc = d->res < 0 ? d->res : 0;
    if (rc == 0) {
        switch (op->stage) {
        case STAGE_WRITE:
            if (d->res == 0) {
                rc = -EIO;
                break;
            }
            op->done += (size_t)d->res;
            if (op->done < r->len) {
                rc = submit_io(j, CASTY_IO_WRITE, op->fd, r->bytes + op->done,
                               (uint32_t)(r->len - op->done), op->done, &op->t);
            } else {
                op->stage = STAGE_SYNC;
                rc = submit_io(j, CASTY_IO_FSYNC, op->fd, NULL, 0, 0, &op->t);
            }
            break;
        case STAGE_SYNC:
            close(op->fd);
            op->fd = -1;
            if (renameat(j->dirfd, op->tmp, j->dirfd, op->name) != 0) {
                rc = -errno;
                break;
            }
            op->stage = STAGE_DIRSYNC;
            rc = submit_io(j, CASTY_IO_FSYNC, j->dirfd, NULL, 0, 0, &op->t);
            break;
        case STAGE_DIRSYNC:
            snap_save_end(j, op, 0);
            return;
        }
    }
    if (rc)
        snap_save_end(j, op, rc);
}

/* ---- the actor --------------------------------------------------------------------------------- */

static void take_requests(struct file_journal *j)
{
    /* Full barrier (xchg): acquires the requests pushed by the callers'
     * CAS in push(). */
    struct fj_req *stack = exchange_seqcst(&j->incoming, NULL);
    struct fj_req *fifo = NULL;
    while (stack) {
        struct fj_req *next = stack->next;
        stack->next = fifo;
        fifo = stack;
        stack = next;
    }
    /* Acquire: pairs with the release store in poison(). */
    int poisoned = load_acquire(&j->poisoned);
    struct fj_req *failed = NULL; /* persists refused, newest first */
    while (fifo) {
        struct fj_req *r = fifo;
        fifo = r->next;
        r->next = NULL;
        switch (r->kind) {
        case FJ_PERSIST:
        case FJ_DELETE:
            if (poisoned)
                collect_persists(r, &failed);
            else
                queue_pending(j, r);
            break;
        case FJ_REPLAY:
            casty__fj_replay_start(j, r);
            break;
        case FJ_LOAD_SNAP:
            casty__fj_snap_load_start(j, r);
            break;
        case FJ_SAVE_SNAP:
            snap_save_start(j, r);
            break;
        default:
            free(r);
            break;
        }
    }
    if (failed) {
        struct fj_req *ordered = NULL;
        while (failed) {
            struct fj_req *r = failed;
            failed = r->next;
            r->next = ordered;
            ordered = r;
        }
        acknowledge(j, ordered, poisoned);
    }
}

static void on_io_done(struct file_journal *j, const casty__io_done_t *d)
{
    struct fj_target *t = (struct fj_target *)(uintptr_t)d->tag;
    switch (t->kind) {
    case FJ_T_COMMIT:
        commit_io(j, d);
        break;
    case FJ_T_SNAP_SAVE:
        snap_save_io(j, (struct snap_save *)t, d);
        break;
    default:
        casty__fj_read_io(j, t, d);
        break;
    }
}

static bool idle(const struct file_journal *j)
{
    /* Acquire: pairs with the ackers' decrements. */
    return !j->commit.busy && j->pend_head == NULL && j->snap_saves == 0 &&
           load_acquire(&j->acks_out) == 0 && casty__fj_read_idle(j);
}

static casty_behavior_t *journal_receive(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    struct file_journal *j = *(struct file_journal **)state;
    const casty_type_t *type = casty_msg_type(msg);
    if (type == &casty__io_done_t_type)
        on_io_done(j, casty_msg_get(msg, type));
    else if (type == &casty__fj_kick_type)
        take_requests(j);
    else if (type == &casty__fj_close_type)
        j->closing = true;
    else
        return casty_unhandled();
    if (j->reclaim_due)
        reclaim(j);
    if (!j->commit.busy) {
        /* Requests pushed while this message was handled (the actors just
         * acknowledged persist again at once) join this commit rather than
         * wait a whole commit for their kick to be handled. */
        take_requests(j);
        start_commit(j);
    }
    if (j->closing && idle(j))
        return casty_stopped();
    return casty_same();
}

static void journal_stopped(casty_ctx_t *ctx, void *arg)
{
    (void)ctx;
    struct file_journal *j = arg;
    pthread_mutex_lock(&j->stop_mu);
    j->stopped = true;
    pthread_cond_broadcast(&j->stop_cv);
    pthread_mutex_unlock(&j->stop_mu);
}

casty_behavior_t *casty__fj_actor_behavior(struct file_journal *j)
{
    casty_lifecycle_t hooks = {.post_stop = journal_stopped, .arg = j};
    return casty_with_lifecycle(casty_receive(journal_receive, &j, sizeof j), &hooks);
}

/* Frees what the actor owned; the actor is gone (close). */
void casty__fj_free_state(struct file_journal *j)
{
    struct fj_commit *c = &j->commit;
    for (struct fj_req *r = c->reqs, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    for (struct fj_req *r = j->pend_head, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    free(c->buf);
    /* Saves a shutdown cut short (a close waits for them): their I/O ended
     * with the reactor; the temporary file is left unfinished, so it goes.
     * Their callers were never answered: the system that would have
     * delivered the answer is gone. */
    for (struct snap_save *op = j->snap_inflight, *next; op; op = next) {
        next = op->next;
        if (op->fd >= 0)
            close(op->fd);
        if (op->stage != STAGE_DIRSYNC)
            (void)unlinkat(j->dirfd, op->tmp, 0);
        free(op->req);
        free(op);
    }
    j->snap_inflight = NULL;
    for (size_t i = 0; i < j->nsegs; i++) {
        struct fj_segment *s = j->segs[i];
        if (s == NULL)
            continue;
        if (s->fd >= 0)
            close(s->fd);
        free(s->markers);
        free(s);
    }
    free(j->segs);
}
