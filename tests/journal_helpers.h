/* Test helpers for journals: a recorder actor that keeps every journal
 * reply by tag (the journal's answers are messages, so the tests go
 * through a real system and actor), waits on a reply with a deadline,
 * deterministic event payloads, and temporary directories. */
#ifndef CASTY_TEST_JOURNAL_HELPERS_H
#define CASTY_TEST_JOURNAL_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "casty.h"
#include "helpers.h"

#define JH_TIMEOUT_MS 20000u

struct jh_entry {
    uint64_t seq, type_id;
    uint32_t len;
    unsigned char *data;
};

struct jh_reply {
    bool done;
    bool loaded; /* casty_journal_loaded_t (else written) */
    int rc;
    uint64_t seq;
    bool has_batch;
    size_t n;
    struct jh_entry *e;
};

static pthread_mutex_t jh_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jh_cv = PTHREAD_COND_INITIALIZER;
static struct jh_reply *jh_replies;
static size_t jh_cap, jh_next_tag, jh_count;
static casty_ref_t jh_rec;
static size_t jh_duplicates;

static inline struct jh_reply *jh_slot(uint64_t tag)
{
    if (tag >= jh_cap) {
        size_t cap = jh_cap ? jh_cap : 1024;
        while (cap <= tag)
            cap *= 2;
        struct jh_reply *a = realloc(jh_replies, cap * sizeof *a);
        cr_assert_not_null(a);
        memset(a + jh_cap, 0, (cap - jh_cap) * sizeof *a);
        jh_replies = a;
        jh_cap = cap;
    }
    return &jh_replies[tag];
}

static inline casty_behavior_t *jh_recorder(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)state;
    const casty_journal_written_t *w = casty_msg_as(msg, casty_journal_written_t);
    const casty_journal_loaded_t *l = casty_msg_as(msg, casty_journal_loaded_t);
    if (w == NULL && l == NULL)
        return casty_unhandled();
    pthread_mutex_lock(&jh_mu);
    struct jh_reply *r = jh_slot(w ? w->tag : l->tag);
    if (r->done)
        jh_duplicates++; /* checked by jh_wait: no assertions on a worker */
    r->done = true;
    jh_count++;
    if (w) {
        r->rc = w->rc;
        r->seq = w->seq;
    } else {
        r->loaded = true;
        r->rc = l->rc;
        r->has_batch = l->batch != NULL;
        r->n = casty_journal_batch_count(l->batch);
        r->e = calloc(r->n ? r->n : 1, sizeof *r->e);
        size_t cursor = 0, i = 0;
        casty_journal_entry_t e;
        while (casty_journal_batch_next(l->batch, &cursor, &e)) {
            r->e[i].seq = e.seq;
            r->e[i].type_id = e.type_id;
            r->e[i].len = e.len;
            r->e[i].data = malloc(e.len ? e.len : 1);
            memcpy(r->e[i].data, e.data, e.len);
            i++;
        }
    }
    pthread_cond_broadcast(&jh_cv);
    pthread_mutex_unlock(&jh_mu);
    return casty_same();
}

static inline void jh_reset(void)
{
    pthread_mutex_lock(&jh_mu);
    for (size_t t = 0; t < jh_cap; t++) {
        for (size_t i = 0; i < jh_replies[t].n; i++)
            free(jh_replies[t].e[i].data);
        free(jh_replies[t].e);
    }
    free(jh_replies);
    jh_replies = NULL;
    jh_cap = jh_count = jh_duplicates = 0;
    jh_next_tag = 1;
    pthread_mutex_unlock(&jh_mu);
}

/* A system with `workers` workers and the recorder. */
static inline casty_system_t *jh_system(uint32_t workers)
{
    casty_system_t *sys = system_with_workers(workers);
    cr_assert_eq(casty_spawn(sys, casty_receive(jh_recorder, NULL, 0), NULL, NULL, &jh_rec), 0);
    return sys;
}

static inline uint64_t jh_tag(void)
{
    pthread_mutex_lock(&jh_mu);
    uint64_t t = jh_next_tag++;
    jh_slot(t);
    pthread_mutex_unlock(&jh_mu);
    return t;
}

/* Waits for the reply to tag; false after timeout_ms. No assertion, so
 * usable in a forked child. */
static inline bool jh_wait_for(uint64_t tag, uint64_t timeout_ms, struct jh_reply *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&jh_mu);
    while (!jh_slot(tag)->done)
        if (pthread_cond_timedwait(&jh_cv, &jh_mu, &ts) != 0)
            break;
    bool done = jh_slot(tag)->done;
    if (done)
        *out = *jh_slot(tag);
    pthread_mutex_unlock(&jh_mu);
    return done;
}

/* The reply for tag (a copy of its fields; entries stay in the table). */
static inline struct jh_reply jh_wait(uint64_t tag)
{
    struct jh_reply r;
    bool done = jh_wait_for(tag, JH_TIMEOUT_MS, &r);
    cr_assert(done, "no journal reply for tag %llu", (unsigned long long)tag);
    pthread_mutex_lock(&jh_mu);
    size_t dups = jh_duplicates;
    pthread_mutex_unlock(&jh_mu);
    cr_assert_eq(dups, 0, "a tag got two replies");
    return r;
}

static inline size_t jh_replies_seen(void)
{
    pthread_mutex_lock(&jh_mu);
    size_t n = jh_count;
    pthread_mutex_unlock(&jh_mu);
    return n;
}

/* ---- payloads ---------------------------------------------------------------------------- */

static inline uint64_t jh_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t jh_pid_hash(const char *pid)
{
    uint64_t h = 1469598103934665603ull;
    for (; *pid; pid++)
        h = (h ^ (unsigned char)*pid) * 1099511628211ull;
    return h;
}

/* The payload of (pid, seq): 1..max bytes; returns its length. */
static inline uint32_t jh_payload(const char *pid, uint64_t seq, unsigned char *buf, uint32_t max)
{
    uint64_t h = jh_mix(jh_pid_hash(pid) ^ seq);
    uint32_t len = 1 + (uint32_t)(h % max);
    for (uint32_t i = 0; i < len; i++) {
        if (i % 8 == 0)
            h = jh_mix(h + i);
        buf[i] = (unsigned char)(h >> (8 * (i % 8)));
    }
    return len;
}

#define JH_MAX_PAYLOAD 200u
#define JH_TYPE(seq) (0x1000u + (seq) % 7u)

/* Sends one persist of events first..first+n-1 of pid; returns the call's rc. */
static inline int jh_persist_async(casty_journal_t *j, const char *pid, uint64_t first, size_t n,
                            uint64_t tag)
{
    casty_journal_entry_t ev[16];
    unsigned char bufs[16][JH_MAX_PAYLOAD];
    cr_assert_leq(n, 16);
    for (size_t i = 0; i < n; i++) {
        ev[i].seq = first + i;
        ev[i].type_id = JH_TYPE(first + i);
        ev[i].len = jh_payload(pid, first + i, bufs[i], JH_MAX_PAYLOAD);
        ev[i].data = bufs[i];
    }
    return j->ops->persist(j, pid, ev, n, jh_rec, tag);
}

/* Persists events first..first+n-1 and waits: the call's rc if it failed,
 * else the reply's rc. */
static inline int jh_persist(casty_journal_t *j, const char *pid, uint64_t first, size_t n)
{
    uint64_t tag = jh_tag();
    int rc = jh_persist_async(j, pid, first, n, tag);
    if (rc)
        return rc;
    struct jh_reply r = jh_wait(tag);
    cr_assert(!r.loaded);
    if (r.rc == 0)
        cr_assert_eq(r.seq, first + n - 1);
    return r.rc;
}

static inline struct jh_reply jh_replay(casty_journal_t *j, const char *pid, uint64_t from)
{
    uint64_t tag = jh_tag();
    cr_assert_eq(j->ops->replay(j, pid, from, jh_rec, tag), 0);
    struct jh_reply r = jh_wait(tag);
    cr_assert(r.loaded);
    return r;
}

/* Asserts that r holds exactly events first..last of pid, payloads intact. */
static inline void jh_expect_events(const struct jh_reply *r, const char *pid, uint64_t first,
                             uint64_t last)
{
    cr_assert_eq(r->rc, 0, "replay of %s failed: %d", pid, r->rc);
    uint64_t want = last >= first ? last - first + 1 : 0;
    cr_assert_eq(r->n, want, "replay of %s: %zu events, expected %llu (%llu..%llu)", pid, r->n,
                 (unsigned long long)want, (unsigned long long)first, (unsigned long long)last);
    unsigned char buf[JH_MAX_PAYLOAD];
    for (size_t i = 0; i < r->n; i++) {
        const struct jh_entry *e = &r->e[i];
        cr_assert_eq(e->seq, first + i, "%s: entry %zu has seq %llu", pid, i,
                     (unsigned long long)e->seq);
        cr_assert_eq(e->type_id, JH_TYPE(e->seq));
        uint32_t len = jh_payload(pid, e->seq, buf, JH_MAX_PAYLOAD);
        cr_assert_eq(e->len, len, "%s: seq %llu length", pid, (unsigned long long)e->seq);
        cr_assert_eq(memcmp(e->data, buf, len), 0, "%s: seq %llu payload", pid,
                     (unsigned long long)e->seq);
    }
}

/* ---- directories ---------------------------------------------------------------------------- */

static inline void jh_tmpdir(char *out, size_t len, const char *what)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, len, "%s/casty-%s-XXXXXX", base && base[0] ? base : "/tmp", what);
    cr_assert_not_null(mkdtemp(out), "mkdtemp %s: %s", out, strerror(errno));
}

/* Removes a journal directory (flat: files only). */
static inline void jh_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Files in dir whose names start with prefix and end with suffix. */
static inline size_t jh_count_named(const char *dir, const char *prefix, const char *suffix)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0, plen = strlen(prefix), slen = strlen(suffix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        n += len >= plen + slen && strncmp(e->d_name, prefix, plen) == 0 &&
             strcmp(e->d_name + len - slen, suffix) == 0;
    }
    closedir(d);
    return n;
}

/* Number of files in dir whose names start with prefix. */
static inline size_t jh_count_files(const char *dir, const char *prefix)
{
    return jh_count_named(dir, prefix, "");
}

/* Finished snapshot files ("snap-....snap"; a save in flight is a
 * "snap-....tmp" until its rename). */
static inline size_t jh_count_snapshots(const char *dir)
{
    return jh_count_named(dir, "snap-", ".snap");
}

static inline casty_journal_t *jh_open(casty_system_t *sys, const char *dir, uint64_t segment_bytes)
{
    casty_file_journal_options_t opts = {.segment_bytes = segment_bytes};
    casty_journal_t *j = NULL;
    char err[512] = "";
    int rc = casty_file_journal_open(sys, dir, &opts, &j, err, sizeof err);
    cr_assert_eq(rc, 0, "open %s: %s (%s)", dir, casty_strerror(rc), err);
    cr_assert_not_null(j);
    return j;
}

#endif
