/* The memory journal: events and snapshots per persistence id in process
 * memory, behind one mutex. Every operation completes at once and replies
 * from the calling thread (with casty_tell, which needs no system), so one
 * journal can serve several systems in one process — the seed's "phase 2:
 * recovery" runs a second system on the first one's journal. For tests and
 * examples: nothing survives the process. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "casty.h"

struct stored {
    uint64_t seq;
    uint64_t type_id;
    uint32_t len;
    unsigned char *data;
};

struct pid_log {
    char *pid;
    struct stored *events; /* seqs first_seq .. first_seq + n - 1 */
    size_t n, cap;
    uint64_t last_seq; /* 0: none ever */
    struct stored snapshot; /* data NULL: none */
    bool has_snapshot;
};

struct memory_journal {
    casty_journal_t base;
    pthread_mutex_t mu;
    struct pid_log *logs; /* open addressing on XXH3(pid) */
    size_t cap, used;
};

static uint64_t pid_hash(const char *pid)
{
    return XXH3_64bits(pid, strlen(pid));
}

/* The log of pid, created when `create`; NULL when absent or out of memory. */
static struct pid_log *find_log(struct memory_journal *mj, const char *pid, bool create)
{
    if (create && (mj->used + 1) * 2 > mj->cap) {
        size_t cap = mj->cap ? mj->cap * 2 : 64;
        struct pid_log *t = calloc(cap, sizeof *t);
        if (t == NULL)
            return NULL;
        for (size_t i = 0; i < mj->cap; i++) {
            if (mj->logs[i].pid == NULL)
                continue;
            size_t j = pid_hash(mj->logs[i].pid) & (cap - 1);
            while (t[j].pid)
                j = (j + 1) & (cap - 1);
            t[j] = mj->logs[i];
        }
        free(mj->logs);
        mj->logs = t;
        mj->cap = cap;
    }
    if (mj->cap == 0)
        return NULL;
    size_t i = pid_hash(pid) & (mj->cap - 1);
    for (; mj->logs[i].pid; i = (i + 1) & (mj->cap - 1))
        if (strcmp(mj->logs[i].pid, pid) == 0)
            return &mj->logs[i];
    if (!create)
        return NULL;
    mj->logs[i].pid = strdup(pid);
    if (mj->logs[i].pid == NULL)
        return NULL;
    mj->used++;
    return &mj->logs[i];
}

static int copy_stored(struct stored *s, const casty_journal_entry_t *e)
{
    s->data = malloc(e->len ? e->len : 1);
    if (s->data == NULL)
        return CASTY_ENOMEM;
    if (e->len)
        memcpy(s->data, e->data, e->len);
    s->seq = e->seq;
    s->type_id = e->type_id;
    s->len = e->len;
    return 0;
}

static void reply_written(casty_ref_t to, uint64_t tag, int rc, uint64_t seq)
{
    CASTY_TELL(to, casty_journal_written_t, .tag = tag, .rc = rc, .seq = seq);
}

static void reply_loaded(casty_ref_t to, uint64_t tag, int rc, casty_journal_batch_t *b)
{
    casty_journal_loaded_t m = {.tag = tag, .rc = rc, .batch = b};
    if (casty_tell(to, &casty_journal_loaded_t_type, &m) != 0)
        casty_journal_batch_free(b); /* not sent: still ours */
}

static int mj_persist(casty_journal_t *j, const char *pid, const casty_journal_entry_t *events,
                      size_t n, casty_ref_t reply_to, uint64_t tag)
{
    struct memory_journal *mj = (struct memory_journal *)j;
    if (pid == NULL || (n > 0 && events == NULL))
        return CASTY_EINVAL;
    int rc = 0;
    uint64_t last = 0;
    pthread_mutex_lock(&mj->mu);
    struct pid_log *log = find_log(mj, pid, true);
    if (log == NULL) {
        rc = CASTY_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (events[i].seq != log->last_seq + 1 + i || (events[i].len && !events[i].data)) {
            rc = CASTY_EINVAL;
            goto out;
        }
    }
    if (log->n + n > log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 16;
        while (cap < log->n + n)
            cap *= 2;
        struct stored *a = realloc(log->events, cap * sizeof *a);
        if (a == NULL) {
            rc = CASTY_ENOMEM;
            goto out;
        }
        log->events = a;
        log->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        rc = copy_stored(&log->events[log->n + i], &events[i]);
        if (rc) {
            while (i-- > 0)
                free(log->events[log->n + i].data);
            goto out;
        }
    }
    log->n += n;
    log->last_seq += n;
    last = log->last_seq;
out:
    pthread_mutex_unlock(&mj->mu);
    if (rc == 0)
        reply_written(reply_to, tag, 0, last);
    return rc;
}

static int mj_replay(casty_journal_t *j, const char *pid, uint64_t from_seq, casty_ref_t reply_to,
                     uint64_t tag)
{
    struct memory_journal *mj = (struct memory_journal *)j;
    if (pid == NULL)
        return CASTY_EINVAL;
    casty_journal_batch_t *b = casty_journal_batch_new();
    if (b == NULL)
        return CASTY_ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&mj->mu);
    struct pid_log *log = find_log(mj, pid, false);
    for (size_t i = 0; log && i < log->n && rc == 0; i++) {
        const struct stored *s = &log->events[i];
        if (s->seq >= from_seq)
            rc = casty_journal_batch_add(&b, s->seq, s->type_id, s->data, s->len);
    }
    pthread_mutex_unlock(&mj->mu);
    if (rc) {
        casty_journal_batch_free(b);
        return rc;
    }
    reply_loaded(reply_to, tag, 0, b);
    return 0;
}

static int mj_save_snapshot(casty_journal_t *j, const char *pid, const casty_journal_entry_t *state,
                            casty_ref_t reply_to, uint64_t tag)
{
    struct memory_journal *mj = (struct memory_journal *)j;
    if (pid == NULL || state == NULL || (state->len && state->data == NULL))
        return CASTY_EINVAL;
    struct stored s;
    if (copy_stored(&s, state) != 0)
        return CASTY_ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&mj->mu);
    struct pid_log *log = find_log(mj, pid, true);
    if (log == NULL) {
        rc = CASTY_ENOMEM;
    } else if (state->seq > log->last_seq) {
        rc = CASTY_EINVAL; /* a snapshot of events that were never stored */
    } else {
        if (log->has_snapshot)
            free(log->snapshot.data);
        log->snapshot = s;
        log->has_snapshot = true;
    }
    pthread_mutex_unlock(&mj->mu);
    if (rc) {
        free(s.data);
        return rc;
    }
    reply_written(reply_to, tag, 0, state->seq);
    return 0;
}

static int mj_load_snapshot(casty_journal_t *j, const char *pid, casty_ref_t reply_to,
                            uint64_t tag)
{
    struct memory_journal *mj = (struct memory_journal *)j;
    if (pid == NULL)
        return CASTY_EINVAL;
    casty_journal_batch_t *b = casty_journal_batch_new();
    if (b == NULL)
        return CASTY_ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&mj->mu);
    struct pid_log *log = find_log(mj, pid, false);
    if (log && log->has_snapshot)
        rc = casty_journal_batch_add(&b, log->snapshot.seq, log->snapshot.type_id,
                                     log->snapshot.data, log->snapshot.len);
    pthread_mutex_unlock(&mj->mu);
    if (rc) {
        casty_journal_batch_free(b);
        return rc;
    }
    reply_loaded(reply_to, tag, 0, b);
    return 0;
}

static int mj_delete_events(casty_journal_t *j, const char *pid, uint64_t upto_seq)
{
    struct memory_journal *mj = (struct memory_journal *)j;
    if (pid == NULL)
        return CASTY_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&mj->mu);
    struct pid_log *log = find_log(mj, pid, false);
    if (log == NULL || !log->has_snapshot || log->snapshot.seq < upto_seq) {
        rc = CASTY_EINVAL;
    } else {
        size_t k = 0;
        while (k < log->n && log->events[k].seq <= upto_seq)
            free(log->events[k++].data);
        memmove(log->events, log->events + k, (log->n - k) * sizeof *log->events);
        log->n -= k;
    }
    pthread_mutex_unlock(&mj->mu);
    return rc;
}

static void mj_close(casty_journal_t *j)
{
    struct memory_journal *mj = (struct memory_journal *)j;
    for (size_t i = 0; i < mj->cap; i++) {
        struct pid_log *log = &mj->logs[i];
        if (log->pid == NULL)
            continue;
        for (size_t k = 0; k < log->n; k++)
            free(log->events[k].data);
        free(log->events);
        if (log->has_snapshot)
            free(log->snapshot.data);
        free(log->pid);
    }
    free(mj->logs);
    pthread_mutex_destroy(&mj->mu);
    free(mj);
}

static const casty_journal_ops_t memory_ops = {
    .name = "memory",
    .persist = mj_persist,
    .replay = mj_replay,
    .save_snapshot = mj_save_snapshot,
    .load_snapshot = mj_load_snapshot,
    .delete_events = mj_delete_events,
    .close = mj_close,
};

int casty_memory_journal_create(casty_journal_t **out)
{
    if (out == NULL)
        return CASTY_EINVAL;
    struct memory_journal *mj = calloc(1, sizeof *mj);
    if (mj == NULL)
        return CASTY_ENOMEM;
    mj->base.ops = &memory_ops;
    pthread_mutex_init(&mj->mu, NULL);
    *out = &mj->base;
    return 0;
}
