/* The file journal's front: casty_file_journal_open (locking the directory
 * and recovering it into the in-memory index), the journal operations that
 * callers run on any thread, close, and the pid table they share with the
 * journal actor. It does no I/O after open: every request goes to the
 * journal actor (file_journal_actor.c, file_journal_read.c), which answers
 * with a message. docs/file-journal.md is the guide; the on-disk format is
 * specified in journal_format.c.
 *
 * A request's life on the caller's side: validate, encode the records
 * (checksums are computed here, in parallel on the callers' threads), take
 * the pid's shard lock, check the sequence numbers against next_seq,
 * reserve them, push the request on the actor's stack while still holding
 * the lock (so one pid's requests reach the actor in sequence order),
 * unlock, and kick the actor if the stack was empty. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomics.h"
#include "file_journal.h"
#include "internal.h"
#include "journal_scan.h"

/* ---- the pid table ------------------------------------------------------------------ */

struct fj_shard *casty__fj_shard(struct file_journal *j, uint64_t hash)
{
    return &j->shards[hash >> 58]; /* FJ_SHARDS == 64: the top 6 bits */
}
static_assert(FJ_SHARDS == 64, "shard selection takes the hash's top 6 bits");

static int shard_grow(struct fj_shard *s)
{
    size_t cap = s->cap ? s->cap * 2 : 16;
    struct fj_slot *t = calloc(cap, sizeof *t);
    if (t == NULL)
        return CASTY_ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].p == NULL)
            continue;
        size_t k = (size_t)s->slots[i].hash & (cap - 1);
        while (t[k].p)
            k = (k + 1) & (cap - 1);
        t[k] = s->slots[i];
    }
    free(s->slots);
    s->slots = t;
    s->cap = cap;
    return 0;
}

struct fj_pid *casty__fj_pid_find(struct fj_shard *s, const char *pid, size_t len, uint64_t hash,
                                  bool create)
{
    if (create && (s->used + 1) * 4 > s->cap * 3 && shard_grow(s) != 0)
        return NULL;
    if (s->cap == 0)
        return NULL;
    size_t k = (size_t)hash & (s->cap - 1);
    for (; s->slots[k].p; k = (k + 1) & (s->cap - 1)) {
        struct fj_pid *p = s->slots[k].p;
        if (s->slots[k].hash == hash && p->len == len && memcmp(p->pid, pid, len) == 0)
            return p;
    }
    if (!create)
        return NULL;
    struct fj_pid *p = calloc(1, sizeof *p + len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p->pid, pid, len);
    p->pid[len] = 0;
    p->len = (uint16_t)len;
    p->hash = hash;
    p->next_seq = 1;
    s->slots[k] = (struct fj_slot){hash, p};
    s->used++;
    return p;
}

/* ---- replies --------------------------------------------------------------------------- */

void casty__fj_reply_written(casty_ref_t to, uint64_t tag, int rc, uint64_t seq)
{
    casty_journal_written_t m = {.tag = tag, .rc = rc, .seq = seq};
    (void)casty_tell(to, &casty_journal_written_t_type, &m);
}

void casty__fj_reply_loaded(casty_ref_t to, uint64_t tag, int rc, casty_journal_batch_t *b)
{
    casty_journal_loaded_t m = {.tag = tag, .rc = rc, .batch = b};
    if (casty_tell(to, &casty_journal_loaded_t_type, &m) != 0)
        casty_journal_batch_free(b); /* not sent: still ours */
}

/* ---- the caller's side ------------------------------------------------------------------ */

/* The pid's length, or 0 when it is not a valid pid (NULL, empty, longer
 * than the format allows). */
static size_t pid_length(const char *pid)
{
    if (pid == NULL)
        return 0;
    size_t n = strnlen(pid, CASTY__JREC_PID_MAX + 1);
    return n <= CASTY__JREC_PID_MAX ? n : 0;
}

static struct fj_req *req_new(uint8_t kind, size_t bytes, casty_ref_t reply_to, uint64_t tag)
{
    struct fj_req *r = malloc(sizeof *r + bytes);
    if (r) {
        memset(r, 0, sizeof *r);
        r->kind = kind;
        r->reply_to = reply_to;
        r->tag = tag;
        r->len = (uint32_t)bytes;
    }
    return r;
}

/* Pushes r; true when the stack was empty (the caller then kicks). */
static bool push(struct file_journal *j, struct fj_req *r)
{
    /* Relaxed: a first guess for the CAS, which re-reads on failure; r->next
     * is published by the CAS. */
    struct fj_req *top = load_relaxed(&j->incoming);
    do {
        store_relaxed(&r->next, top);
        /* Full barrier (lock cmpxchg): publishes the request's contents;
         * pairs with the actor's exchange in take_requests. */
    } while (!ck_pr_cas_ptr_value(&j->incoming, top, r, &top));
    return top == NULL;
}

/* Tells the actor to take the stack. The push that found the stack empty
 * sends it; the kick message orders the push before the actor's take. */
static void kick(struct file_journal *j)
{
    /* Relaxed: kick_lost is only a hint to send one more kick; the kick
     * message itself carries the synchronisation. */
    store_relaxed(&j->kick_lost, 0u);
    char none = 0;
    if (casty_tell(j->actor, &casty__fj_kick_type, &none) == CASTY_ENOMEM)
        store_relaxed(&j->kick_lost, 1u);
}

/* Kicks after a push that found the stack empty, or when a kick was lost. */
static void kick_if(struct file_journal *j, bool was_empty)
{
    /* Relaxed: the hint only; see kick(). */
    if (was_empty || load_relaxed(&j->kick_lost))
        kick(j);
}

static int fj_persist(casty_journal_t *jj, const char *pid, const casty_journal_entry_t *events,
                      size_t n, casty_ref_t reply_to, uint64_t tag)
{
    struct file_journal *j = (struct file_journal *)jj;
    size_t plen = pid_length(pid);
    if (plen == 0 || (n > 0 && events == NULL) || n > UINT32_MAX)
        return CASTY_EINVAL;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const casty_journal_entry_t *e = &events[i];
        if ((e->len && e->data == NULL) || e->len > CASTY__JREC_PAYLOAD_MAX ||
            e->seq != events[0].seq + i || e->seq == 0)
            return CASTY_EINVAL;
        bytes += casty__jrec_size(plen, e->len);
        if (bytes > UINT32_MAX)
            return CASTY_EINVAL;
    }
    /* Acquire: pairs with the actor's release store when a write fails. */
    int poisoned = load_acquire(&j->poisoned);
    if (poisoned)
        return poisoned;
    struct fj_req *r = req_new(FJ_PERSIST, bytes, reply_to, tag);
    if (r == NULL)
        return CASTY_ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        at += casty__jrec_encode(r->bytes + at, CASTY__JREC_EVENT, pid, (uint16_t)plen,
                                 events[i].seq, events[i].type_id, events[i].data, events[i].len);
    r->nrec = (uint32_t)n;
    uint64_t hash = casty__jpid_hash(pid, plen);
    struct fj_shard *s = casty__fj_shard(j, hash);
    int rc = 0;
    bool was_empty = false;
    pthread_mutex_lock(&s->mu);
    struct fj_pid *p = casty__fj_pid_find(s, pid, plen, hash, true);
    if (p == NULL) {
        rc = CASTY_ENOMEM;
    } else if (n > 0 && events[0].seq != p->next_seq) {
        rc = CASTY_EINVAL; /* does not continue the log */
    } else {
        p->next_seq += n;
        r->p = p;
        r->seq = p->next_seq - 1;
        was_empty = push(j, r);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        free(r);
        return rc;
    }
    kick_if(j, was_empty);
    return 0;
}

/* Looks pid up without creating it. */
static struct fj_pid *lookup(struct file_journal *j, const char *pid, size_t plen)
{
    uint64_t hash = casty__jpid_hash(pid, plen);
    struct fj_shard *s = casty__fj_shard(j, hash);
    pthread_mutex_lock(&s->mu);
    struct fj_pid *p = casty__fj_pid_find(s, pid, plen, hash, false);
    pthread_mutex_unlock(&s->mu);
    return p;
}

/* Answers a read of a pid the journal has never seen: an empty batch, at
 * once, from the calling thread. */
static int reply_empty(casty_ref_t reply_to, uint64_t tag)
{
    casty_journal_batch_t *b = casty_journal_batch_new();
    if (b == NULL)
        return CASTY_ENOMEM;
    casty__fj_reply_loaded(reply_to, tag, 0, b);
    return 0;
}

/* A read request (replay or snapshot load) for a known pid. Pids are never
 * removed, so p stays valid without the lock. */
static int push_read(struct file_journal *j, uint8_t kind, struct fj_pid *p, uint64_t seq,
                     casty_ref_t reply_to, uint64_t tag)
{
    struct fj_req *r = req_new(kind, 0, reply_to, tag);
    if (r == NULL)
        return CASTY_ENOMEM;
    r->p = p;
    r->seq = seq;
    kick_if(j, push(j, r));
    return 0;
}

static int fj_replay(casty_journal_t *jj, const char *pid, uint64_t from_seq, casty_ref_t reply_to,
                     uint64_t tag)
{
    struct file_journal *j = (struct file_journal *)jj;
    size_t plen = pid_length(pid);
    if (plen == 0)
        return CASTY_EINVAL;
    struct fj_pid *p = lookup(j, pid, plen);
    if (p == NULL)
        return reply_empty(reply_to, tag);
    return push_read(j, FJ_REPLAY, p, from_seq, reply_to, tag);
}

static int fj_load_snapshot(casty_journal_t *jj, const char *pid, casty_ref_t reply_to,
                            uint64_t tag)
{
    struct file_journal *j = (struct file_journal *)jj;
    size_t plen = pid_length(pid);
    if (plen == 0)
        return CASTY_EINVAL;
    struct fj_pid *p = lookup(j, pid, plen);
    if (p == NULL)
        return reply_empty(reply_to, tag);
    return push_read(j, FJ_LOAD_SNAP, p, 0, reply_to, tag);
}

static int fj_save_snapshot(casty_journal_t *jj, const char *pid, const casty_journal_entry_t *state,
                            casty_ref_t reply_to, uint64_t tag)
{
    struct file_journal *j = (struct file_journal *)jj;
    size_t plen = pid_length(pid);
    if (plen == 0 || state == NULL || (state->len && state->data == NULL) ||
        state->len > CASTY__JREC_PAYLOAD_MAX || state->seq == 0)
        return CASTY_EINVAL;
    struct fj_req *r = req_new(FJ_SAVE_SNAP, casty__jrec_size(plen, state->len), reply_to, tag);
    if (r == NULL)
        return CASTY_ENOMEM;
    casty__jrec_encode(r->bytes, CASTY__JREC_SNAPSHOT, pid, (uint16_t)plen, state->seq,
                       state->type_id, state->data, state->len);
    r->seq = state->seq;
    uint64_t hash = casty__jpid_hash(pid, plen);
    struct fj_shard *s = casty__fj_shard(j, hash);
    int rc = 0;
    bool was_empty = false;
    pthread_mutex_lock(&s->mu);
    struct fj_pid *p = casty__fj_pid_find(s, pid, plen, hash, true);
    if (p == NULL) {
        rc = CASTY_ENOMEM;
    } else if (state->seq >= p->next_seq) {
        rc = CASTY_EINVAL; /* a snapshot of events that were never persisted */
    } else {
        r->p = p;
        was_empty = push(j, r);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        free(r);
        return rc;
    }
    kick_if(j, was_empty);
    return 0;
}

static int fj_delete_events(casty_journal_t *jj, const char *pid, uint64_t upto_seq)
{
    struct file_journal *j = (struct file_journal *)jj;
    size_t plen = pid_length(pid);
    if (plen == 0)
        return CASTY_EINVAL;
    struct fj_req *r = req_new(FJ_DELETE, casty__jrec_size(plen, 0), CASTY_REF_NONE, 0);
    if (r == NULL)
        return CASTY_ENOMEM;
    uint64_t hash = casty__jpid_hash(pid, plen);
    struct fj_shard *s = casty__fj_shard(j, hash);
    int rc = 0;
    bool pushed = false, was_empty = false;
    pthread_mutex_lock(&s->mu);
    struct fj_pid *p = casty__fj_pid_find(s, pid, plen, hash, false);
    if (p == NULL || p->snap_seq == 0 || p->snap_seq < upto_seq) {
        rc = CASTY_EINVAL; /* not covered by a (durable) snapshot */
    } else {
        /* Only events already accepted can be deleted: a later persist
         * must not land below the deletion mark. */
        uint64_t upto = upto_seq < p->next_seq - 1 ? upto_seq : p->next_seq - 1;
        /* Acquire: pairs with the actor's release store on a write error. */
        int poisoned = load_acquire(&j->poisoned);
        if (upto > p->deleted_upto && poisoned) {
            rc = poisoned;
        } else if (upto > p->deleted_upto) {
            p->deleted_upto = upto;
            casty__jrec_encode(r->bytes, CASTY__JREC_DELETE, pid, (uint16_t)plen, upto, 0, NULL, 0);
            r->p = p;
            r->seq = upto;
            was_empty = push(j, r);
            pushed = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!pushed) {
        free(r);
        return rc;
    }
    kick_if(j, was_empty);
    return 0;
}

/* ---- close -------------------------------------------------------------------------------- */

static void free_pids(struct file_journal *j)
{
    for (size_t i = 0; i < FJ_SHARDS; i++) {
        struct fj_shard *s = &j->shards[i];
        for (size_t k = 0; k < s->cap; k++) {
            struct fj_pid *p = s->slots[k].p;
            if (p) {
                free(p->locs);
                free(p);
            }
        }
        free(s->slots);
        pthread_mutex_destroy(&s->mu);
    }
}

static void journal_free(struct file_journal *j)
{
    /* Requests pushed after the actor stopped were never taken. Full
     * barrier (xchg), like the actor's take; the close handshake (or the
     * shutdown's joins) already ordered every push before this. */
    struct fj_req *r = exchange_seqcst(&j->incoming, NULL);
    while (r) {
        struct fj_req *next = r->next;
        free(r);
        r = next;
    }
    casty__fj_free_state(j);
    casty__fj_read_destroy(j);
    free_pids(j);
    if (j->dirfd >= 0)
        close(j->dirfd);
    if (j->lockfd >= 0)
        close(j->lockfd); /* releases the flock */
    pthread_mutex_destroy(&j->stop_mu);
    pthread_cond_destroy(&j->stop_cv);
    free(j->dir);
    free(j);
}

/* With the system still running, the actor is asked to finish what is in
 * flight and stop; close waits for its post_stop. After a shutdown the
 * actor is gone (the tell answers CASTY_ESHUTDOWN) and the reactor with it,
 * so nothing can touch the journal's buffers any more. */
static void fj_close(casty_journal_t *jj)
{
    struct file_journal *j = (struct file_journal *)jj;
    char none = 0;
    if (!casty_ref_is_none(j->actor) && casty_tell(j->actor, &casty__fj_close_type, &none) == 0) {
        pthread_mutex_lock(&j->stop_mu);
        while (!j->stopped)
            pthread_cond_wait(&j->stop_cv, &j->stop_mu);
        pthread_mutex_unlock(&j->stop_mu);
    }
    /* The ackers are idle (the actor stopped once none had work) and keep
     * nothing of the journal's. */
    for (uint32_t i = 0; i < j->nackers; i++)
        (void)casty_stop(j->ackers[i]);
    journal_free(j);
}

static const casty_journal_ops_t file_ops = {
    .name = "file",
    .persist = fj_persist,
    .replay = fj_replay,
    .save_snapshot = fj_save_snapshot,
    .load_snapshot = fj_load_snapshot,
    .delete_events = fj_delete_events,
    .close = fj_close,
};

/* ---- recovery ------------------------------------------------------------------------------ */

struct recovery {
    struct file_journal *j;
    char *err;
    size_t err_len;
    /* superseded snapshot files, removed once the scan is done */
    char (*stale)[CASTY__JNAME_MAX];
    size_t nstale, stale_cap;
};

static int note_stale(struct recovery *rc, uint64_t hash, uint64_t seq)
{
    if (rc->nstale == rc->stale_cap) {
        size_t cap = rc->stale_cap ? rc->stale_cap * 2 : 16;
        void *a = realloc(rc->stale, cap * sizeof *rc->stale);
        if (a == NULL)
            return CASTY_ENOMEM;
        rc->stale = a;
        rc->stale_cap = cap;
    }
    casty__jname_snapshot(rc->stale[rc->nstale++], hash, seq);
    return 0;
}

static struct fj_pid *recover_pid(struct file_journal *j, const casty__jrec_t *rec)
{
    uint64_t hash = casty__jpid_hash(rec->pid, rec->pid_len);
    /* Single-threaded here; the lock keeps the table's discipline simple. */
    struct fj_shard *s = casty__fj_shard(j, hash);
    pthread_mutex_lock(&s->mu);
    struct fj_pid *p = casty__fj_pid_find(s, rec->pid, rec->pid_len, hash, true);
    pthread_mutex_unlock(&s->mu);
    return p;
}

/* Applies one record of a valid commit (or a snapshot file) to the index,
 * in log order: what the actor does when the same records become durable. */
static int recover_item(void *arg, const casty__jwalk_item_t *it)
{
    struct recovery *rcv = arg;
    struct file_journal *j = rcv->j;
    const casty__jrec_t *rec = &it->rec;
    if (rec->kind == CASTY__JREC_COMMIT) {
        j->commit_id = rec->seq;
        return 0;
    }
    struct fj_pid *p = recover_pid(j, rec);
    if (p == NULL)
        return CASTY_ENOMEM;
    switch (rec->kind) {
    case CASTY__JREC_EVENT:
        if (rec->seq <= p->last_seq) {
            snprintf(rcv->err, rcv->err_len,
                     "%s/%s:%" PRIu64 ": event %" PRIu64 " of '%s' after event %" PRIu64, j->dir,
                     it->file, it->off, rec->seq, p->pid, p->last_seq);
            return CASTY_ECORRUPT;
        }
        p->last_seq = rec->seq;
        if (rec->seq <= p->durable_deleted)
            return 0;
        return casty__fj_index_append(j, p, rec->seq, it->off, (uint32_t)it->segno, rec->len);
    case CASTY__JREC_DELETE:
        casty__fj_index_delete(j, p, rec->seq, (uint32_t)it->segno);
        return 0;
    case CASTY__JREC_SNAPSHOT:
        if (rec->seq > p->snap_seq) {
            if (p->snap_seq && note_stale(rcv, p->hash, p->snap_seq) != 0)
                return CASTY_ENOMEM;
            p->snap_seq = rec->seq;
            return 0;
        }
        return note_stale(rcv, p->hash, rec->seq);
    default:
        return 0;
    }
}

/* After the scan: each pid's live events must run without a gap from its
 * deletion mark; its next seq follows everything it has. */
static int finish_pids(struct file_journal *j, char *err, size_t err_len)
{
    for (size_t i = 0; i < FJ_SHARDS; i++) {
        struct fj_shard *s = &j->shards[i];
        for (size_t k = 0; k < s->cap; k++) {
            struct fj_pid *p = s->slots[k].p;
            if (p == NULL)
                continue;
            uint64_t expect = p->durable_deleted + 1;
            for (size_t x = p->head; x < p->n; x++, expect++) {
                if (p->locs[x].seq != expect) {
                    char name[CASTY__JNAME_MAX];
                    casty__jname_segment(name, p->locs[x].seg);
                    snprintf(err, err_len,
                             "%s/%s:%" PRIu64 ": events %" PRIu64 "..%" PRIu64
                             " of '%s' are missing",
                             j->dir, name, p->locs[x].off, expect, p->locs[x].seq - 1, p->pid);
                    return CASTY_ECORRUPT;
                }
            }
            uint64_t last = p->last_seq;
            if (p->snap_seq > last)
                last = p->snap_seq;
            if (p->durable_deleted > last)
                last = p->durable_deleted;
            p->next_seq = last + 1;
            p->deleted_upto = p->durable_deleted;
        }
    }
    return 0;
}

/* Cuts the torn tail off the last segment, durably, so that new commits
 * never sit before stale bytes. */
static int cut_torn_tail(struct file_journal *j, const casty__jwalk_t *sum, char *err,
                         size_t err_len)
{
    char name[CASTY__JNAME_MAX];
    casty__jname_segment(name, sum->last_seg);
    int fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || ftruncate(fd, (off_t)sum->torn_at) != 0 || fdatasync(fd) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    if (rc) {
        snprintf(err, err_len, "%s/%s: cannot cut the torn tail: %s", j->dir, name,
                 casty_strerror(rc));
        return rc;
    }
    fprintf(stderr,
            "casty: file journal %s/%s:%" PRIu64 ": torn commit cut off (%s at offset %" PRIu64
            "; %" PRIu64 " bytes removed)\n",
            j->dir, name, sum->torn_at, sum->torn_why, sum->torn_bad, sum->torn_size - sum->torn_at);
    return 0;
}

static int recover(struct file_journal *j, char *err, size_t err_len)
{
    casty__jdir_t dir;
    int rc = casty__jdir_list(j->dirfd, &dir);
    if (rc) {
        snprintf(err, err_len, "%s: cannot list: %s", j->dir, casty_strerror(rc));
        return rc;
    }
    /* Snapshots that were being written when the last process stopped. */
    for (size_t i = 0; i < dir.ntemps; i++)
        (void)unlinkat(j->dirfd, dir.temps[i], 0);
    for (size_t i = 0; i < dir.nsegs && rc == 0; i++) {
        if (dir.segs[i] == 0 || dir.segs[i] > UINT32_MAX) {
            snprintf(err, err_len, "%s: segment number %" PRIu64 " out of range", j->dir,
                     dir.segs[i]);
            rc = CASTY_ECORRUPT;
            break;
        }
        struct fj_segment *seg;
        rc = casty__fj_segment_add(j, (uint32_t)dir.segs[i], &seg);
    }
    casty__jdir_free(&dir);
    if (rc)
        return rc;

    struct recovery rcv = {.j = j, .err = err, .err_len = err_len};
    casty__jwalk_t sum;
    rc = casty__journal_walk(j->dirfd, j->dir, recover_item, &rcv, &sum, err, err_len);
    if (rc == 0 && sum.torn)
        rc = cut_torn_tail(j, &sum, err, err_len);
    for (size_t i = 0; rc == 0 && i < rcv.nstale; i++)
        (void)unlinkat(j->dirfd, rcv.stale[i], 0);
    free(rcv.stale);
    if (rc == 0)
        rc = finish_pids(j, err, err_len);
    if (rc)
        return rc;

    /* Segment sizes; the last one becomes the active segment. */
    for (size_t i = 0; i < j->nsegs; i++) {
        struct fj_segment *seg = j->segs[i];
        if (seg == NULL)
            continue;
        char name[CASTY__JNAME_MAX];
        casty__jname_segment(name, seg->no);
        struct stat st;
        if (fstatat(j->dirfd, name, &st, 0) != 0) {
            rc = -errno;
            snprintf(err, err_len, "%s/%s: %s", j->dir, name, casty_strerror(rc));
            return rc;
        }
        seg->size = (uint64_t)st.st_size;
        j->active = seg;
    }
    if (j->active) {
        char name[CASTY__JNAME_MAX];
        casty__jname_segment(name, j->active->no);
        j->active->fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
        if (j->active->fd < 0) {
            rc = -errno;
            snprintf(err, err_len, "%s/%s: %s", j->dir, name, casty_strerror(rc));
            return rc;
        }
        /* A segment created just before a crash may not have a durable
         * directory entry yet: the first commit into it syncs the directory. */
        j->active->needs_dirsync = true;
    }
    j->reclaim_due = true;
    return 0;
}

/* ---- open ---------------------------------------------------------------------------------- */

static int open_dir(struct file_journal *j, char *err, size_t err_len)
{
    if (mkdir(j->dir, 0755) != 0 && errno != EEXIST) {
        int rc = -errno;
        snprintf(err, err_len, "%s: cannot create: %s", j->dir, casty_strerror(rc));
        return rc;
    }
    j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dirfd < 0) {
        int rc = -errno;
        snprintf(err, err_len, "%s: cannot open: %s", j->dir, casty_strerror(rc));
        return rc;
    }
    /* One writer per directory: a second open (in this process or
     * another) would interleave commits. The lock is taken on a descriptor
     * of its own that never goes to io_uring: a request in flight holds a
     * reference to its file, and a killed process's ring is torn down
     * asynchronously, which would keep the lock past the process's death. */
    j->lockfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->lockfd < 0 || flock(j->lockfd, LOCK_EX | LOCK_NB) != 0) {
        int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        snprintf(err, err_len, "%s: %s", j->dir,
                 rc == -EBUSY ? "already open by another journal" : casty_strerror(rc));
        return rc;
    }
    return 0;
}

int casty_file_journal_open(casty_system_t *sys, const char *dir,
                            const casty_file_journal_options_t *opts, casty_journal_t **out,
                            char *err, size_t err_len)
{
    char dummy[1];
    if (err == NULL || err_len == 0) {
        err = dummy;
        err_len = sizeof dummy;
    }
    err[0] = 0;
    if (out)
        *out = NULL;
    if (sys == NULL || dir == NULL || dir[0] == 0 || out == NULL) {
        snprintf(err, err_len, "invalid argument");
        return CASTY_EINVAL;
    }
    struct file_journal *j = calloc(1, sizeof *j);
    if (j == NULL || (j->dir = strdup(dir)) == NULL) {
        free(j);
        return CASTY_ENOMEM;
    }
    j->base.ops = &file_ops;
    j->sys = sys;
    j->dirfd = j->lockfd = -1;
    j->segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : FJ_DEFAULT_SEGMENT_BYTES;
    j->commit.t.kind = FJ_T_COMMIT;
    for (size_t i = 0; i < FJ_SHARDS; i++)
        pthread_mutex_init(&j->shards[i].mu, NULL);
    pthread_mutex_init(&j->stop_mu, NULL);
    pthread_cond_init(&j->stop_cv, NULL);

    int rc = casty__fj_read_init(j);
    if (rc == 0)
        rc = open_dir(j, err, err_len);
    if (rc == 0)
        rc = recover(j, err, err_len);
    uint32_t nackers = casty_system_workers(sys);
    nackers = nackers < FJ_ACKERS ? nackers : FJ_ACKERS;
    for (; rc == 0 && j->nackers < nackers; j->nackers++) {
        casty_behavior_t *b = casty__fj_acker_behavior(j);
        rc = b ? casty__spawn_internal(sys, b, NULL, &j->ackers[j->nackers]) : CASTY_ENOMEM;
    }
    if (rc == 0) {
        casty_behavior_t *b = casty__fj_actor_behavior(j);
        rc = b ? casty__spawn_internal(sys, b, NULL, &j->actor) : CASTY_ENOMEM;
        if (rc)
            snprintf(err, err_len, "%s: cannot start the journal actor: %s", j->dir,
                     casty_strerror(rc));
    }
    if (rc) {
        if (err[0] == 0)
            snprintf(err, err_len, "%s: %s", j->dir, casty_strerror(rc));
        j->actor = CASTY_REF_NONE;
        for (uint32_t i = 0; i < j->nackers; i++)
            (void)casty_stop(j->ackers[i]);
        journal_free(j);
        return rc;
    }
    *out = &j->base;
    return 0;
}
