/* Reading a file journal's directory (the format is specified in
 * journal_format.c): a segment is validated one group commit at a time and
 * a commit's records are handed on only once all of them are valid; the
 * first invalid byte is classified as a torn tail or as corruption by
 * looking for a later commit; snapshot files are read whole and checked
 * against their names. Used by recovery at open, the casty-journal tool
 * and the tests. It never writes: cutting a torn tail is the journal's
 * decision (file_journal.c). Blocking reads on the caller's thread. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "casty.h"
#include "journal_scan.h"

#define SEARCH_CHUNK (1u << 20)

long casty__jpread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (long)done;
}

/* ---- classification ---------------------------------------------------------------- */

/* True when a valid COMMIT record with an id above `above` starts anywhere
 * in [from, size): proof that commits were acknowledged after the bytes
 * that failed, so those bytes are not a torn tail. */
static int later_commit_exists(int fd, uint64_t from, uint64_t size, uint64_t above, bool *found)
{
    *found = false;
    unsigned char *buf = malloc(SEARCH_CHUNK + CASTY__JREC_MIN);
    if (buf == NULL)
        return CASTY_ENOMEM;
    int rc = 0;
    const unsigned char m0 = (unsigned char)(CASTY__JREC_MAGIC & 0xff);
    for (uint64_t base = from; base < size && !*found;) {
        size_t want = (size_t)(size - base < SEARCH_CHUNK + CASTY__JREC_MIN
                                   ? size - base
                                   : SEARCH_CHUNK + CASTY__JREC_MIN);
        long n = casty__jpread_full(fd, buf, want, base);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (n == 0)
            break;
        size_t have = (size_t)n;
        /* Start positions in this chunk; the overlap lets a record that
         * starts near its end be decoded whole. */
        size_t starts = base + have >= size || have < SEARCH_CHUNK ? have : SEARCH_CHUNK;
        for (size_t i = 0; i < starts && !*found; i++) {
            const unsigned char *hit = memchr(buf + i, m0, starts - i);
            if (hit == NULL)
                break;
            i = (size_t)(hit - buf);
            casty__jrec_t r;
            if (casty__jrec_decode(buf + i, have - i, &r, NULL, NULL) == 0 &&
                r.kind == CASTY__JREC_COMMIT && r.seq > above)
                *found = true;
        }
        base += starts;
    }
    free(buf);
    return rc;
}

/* ---- one segment -------------------------------------------------------------------------- */

struct scan {
    int fd;
    uint64_t size;
    unsigned char *buf;
    size_t cap;
    casty__jrec_t *recs; /* the current commit's records */
    uint64_t *offs;
    size_t nrecs, recs_cap;
};

static int grow_buf(struct scan *s, size_t need)
{
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 1u << 16;
    while (cap < need)
        cap *= 2;
    unsigned char *b = realloc(s->buf, cap);
    if (b == NULL)
        return CASTY_ENOMEM;
    s->buf = b;
    s->cap = cap;
    return 0;
}

static int push_rec(struct scan *s, const casty__jrec_t *r, uint64_t off)
{
    if (s->nrecs == s->recs_cap) {
        size_t cap = s->recs_cap ? s->recs_cap * 2 : 64;
        casty__jrec_t *a = realloc(s->recs, cap * sizeof *a);
        if (a == NULL)
            return CASTY_ENOMEM;
        s->recs = a;
        uint64_t *o = realloc(s->offs, cap * sizeof *o);
        if (o == NULL)
            return CASTY_ENOMEM;
        s->offs = o;
        s->recs_cap = cap;
    }
    s->recs[s->nrecs] = *r;
    s->offs[s->nrecs++] = off;
    return 0;
}

/* Records the first invalid byte (at `bad`, inside the commit that starts
 * at `commit_start`) and classifies it. */
static int fail_at(struct scan *s, casty__jscan_t *res, uint64_t commit_start, uint64_t bad,
                   const char *why)
{
    res->good_end = commit_start;
    res->bad_off = bad;
    res->why = why;
    bool later = false;
    int rc = later_commit_exists(s->fd, commit_start + 1, s->size, res->last_commit + 1, &later);
    res->status = later ? CASTY__JSCAN_CORRUPT : CASTY__JSCAN_TORN;
    return rc;
}

/* Validates the commit at `off`. Returns 0 with *ok true and *end past it,
 * 0 with *ok false after fail_at, or an error. */
static int scan_commit(struct scan *s, casty__jscan_t *res, uint64_t off, casty__jscan_fn fn,
                       void *arg, bool *ok, uint64_t *end)
{
    *ok = false;
    unsigned char hdr[CASTY__JREC_MIN];
    if (s->size - off < CASTY__JREC_MIN)
        return fail_at(s, res, off, off, "incomplete commit record");
    long n = casty__jpread_full(s->fd, hdr, sizeof hdr, off);
    if (n < 0)
        return (int)n;
    if ((size_t)n < sizeof hdr)
        return fail_at(s, res, off, off, "incomplete commit record");
    casty__jrec_t commit;
    const char *why = NULL;
    int rc = casty__jrec_decode(hdr, sizeof hdr, &commit, NULL, &why);
    if (rc == CASTY_ENOSPC || (rc == 0 && commit.kind != CASTY__JREC_COMMIT))
        return fail_at(s, res, off, off, "expected a commit record");
    if (rc != 0)
        return fail_at(s, res, off, off, why);
    if (commit.seq <= res->last_commit)
        return fail_at(s, res, off, off, "commit id does not increase");
    uint64_t region = commit.type_id;
    uint64_t start = off + CASTY__JREC_MIN;
    if (region > s->size - start)
        return fail_at(s, res, off, off, "commit runs past the end of the file");
    if (region > SIZE_MAX / 2)
        return fail_at(s, res, off, off, "commit too large");
    if ((rc = grow_buf(s, (size_t)region)) != 0)
        return rc;
    n = casty__jpread_full(s->fd, s->buf, (size_t)region, start);
    if (n < 0)
        return (int)n;
    if ((uint64_t)n < region)
        return fail_at(s, res, off, start + (uint64_t)n, "file shorter than it was");
    s->nrecs = 0;
    for (size_t p = 0; p < region;) {
        casty__jrec_t r;
        rc = casty__jrec_decode(s->buf + p, (size_t)region - p, &r, NULL, &why);
        if (rc == CASTY_ENOSPC)
            return fail_at(s, res, off, start + p, "record runs past the end of its commit");
        if (rc != 0)
            return fail_at(s, res, off, start + p, why);
        if (r.kind != CASTY__JREC_EVENT && r.kind != CASTY__JREC_DELETE)
            return fail_at(s, res, off, start + p, "unexpected record kind inside a commit");
        if ((rc = push_rec(s, &r, start + p)) != 0)
            return rc;
        p += r.len;
    }
    if (fn) {
        if ((rc = fn(arg, &commit, off)) != 0)
            return rc;
        for (size_t i = 0; i < s->nrecs; i++)
            if ((rc = fn(arg, &s->recs[i], s->offs[i])) != 0)
                return rc;
    }
    res->last_commit = commit.seq;
    res->commits++;
    res->records += s->nrecs;
    *ok = true;
    *end = start + region;
    return 0;
}

int casty__jscan_segment(int fd, uint64_t segno, uint64_t prev_commit, casty__jscan_fn fn,
                         void *arg, casty__jscan_t *res)
{
    memset(res, 0, sizeof *res);
    res->last_commit = prev_commit;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    struct scan s = {.fd = fd, .size = (uint64_t)st.st_size};
    res->size = s.size;
    if (s.size == 0)
        return 0; /* created, never written: nothing in it */
    int rc = 0;
    unsigned char hdr[CASTY__JSEG_HEADER];
    long n = casty__jpread_full(fd, hdr, sizeof hdr, 0);
    if (n < 0)
        return (int)n;
    uint64_t no = 0;
    const char *why = "incomplete segment header";
    int hrc = (size_t)n < sizeof hdr ? CASTY_ENOSPC : casty__jseg_header_decode(hdr, sizeof hdr, &no, &why);
    if (hrc != 0) {
        rc = fail_at(&s, res, 0, 0, why);
        goto out;
    }
    if (no != segno) {
        res->status = CASTY__JSCAN_CORRUPT;
        res->why = "segment number does not match the file name";
        goto out;
    }
    uint64_t off = CASTY__JSEG_HEADER;
    res->good_end = off;
    while (off < s.size) {
        bool ok;
        uint64_t end = off;
        if ((rc = scan_commit(&s, res, off, fn, arg, &ok, &end)) != 0 || !ok)
            break;
        off = res->good_end = end;
    }
out:
    free(s.buf);
    free(s.recs);
    free(s.offs);
    return rc;
}

/* ---- snapshot files ----------------------------------------------------------------------- */

int casty__jsnap_read(int dirfd, const char *name, void **buf, casty__jrec_t *rec,
                      const char **why)
{
    *buf = NULL;
    uint64_t hash, seq;
    if (!casty__jname_parse_snapshot(name, &hash, &seq)) {
        *why = "not a snapshot file name";
        return CASTY_ECORRUPT;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    rc = CASTY_ECORRUPT;
    *why = "snapshot file size out of range";
    if (st.st_size < (off_t)CASTY__JREC_MIN || (uint64_t)st.st_size > CASTY__JREC_MAX)
        goto out;
    size_t size = (size_t)st.st_size;
    unsigned char *b = malloc(size);
    if (b == NULL) {
        rc = CASTY_ENOMEM;
        goto out;
    }
    long n = casty__jpread_full(fd, b, size, 0);
    if (n < 0) {
        free(b);
        rc = (int)n;
        goto out;
    }
    rc = casty__jrec_decode(b, (size_t)n, rec, NULL, why);
    if (rc == CASTY_ENOSPC) {
        *why = "snapshot file shorter than its record";
        rc = CASTY_ECORRUPT;
    } else if (rc == 0 && (rec->kind != CASTY__JREC_SNAPSHOT || rec->len != (uint64_t)n)) {
        *why = "not exactly one snapshot record";
        rc = CASTY_ECORRUPT;
    } else if (rc == 0 && (casty__jpid_hash(rec->pid, rec->pid_len) != hash || rec->seq != seq)) {
        *why = "snapshot record does not match the file name";
        rc = CASTY_ECORRUPT;
    }
    if (rc == 0)
        *buf = b;
    else
        free(b);
out:
    close(fd);
    return rc;
}

/* ---- the directory ------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int push_name(char ***v, size_t *n, const char *name)
{
    /* Capacity: 8, then doubling (grown when n reaches a power of two). */
    if (*n == 0 || (*n >= 8 && (*n & (*n - 1)) == 0)) {
        size_t cap = *n ? *n * 2 : 8;
        char **a = realloc(*v, cap * sizeof *a);
        if (a == NULL)
            return CASTY_ENOMEM;
        *v = a;
    }
    if (((*v)[*n] = strdup(name)) == NULL)
        return CASTY_ENOMEM;
    (*n)++;
    return 0;
}

void casty__jdir_free(casty__jdir_t *d)
{
    free(d->segs);
    for (size_t i = 0; i < d->nsnaps; i++)
        free(d->snaps[i]);
    free(d->snaps);
    for (size_t i = 0; i < d->ntemps; i++)
        free(d->temps[i]);
    free(d->temps);
    memset(d, 0, sizeof *d);
}

int casty__jdir_list(int dirfd, casty__jdir_t *out)
{
    memset(out, 0, sizeof *out);
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int rc = 0;
    size_t segs_cap = 0;
    struct dirent *e;
    errno = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        uint64_t a, b;
        if (casty__jname_parse_segment(e->d_name, &a)) {
            if (out->nsegs == segs_cap) {
                size_t cap = segs_cap ? segs_cap * 2 : 16;
                uint64_t *v = realloc(out->segs, cap * sizeof *v);
                if (v == NULL) {
                    rc = CASTY_ENOMEM;
                    break;
                }
                out->segs = v;
                segs_cap = cap;
            }
            out->segs[out->nsegs++] = a;
        } else if (casty__jname_parse_snapshot(e->d_name, &a, &b)) {
            rc = push_name(&out->snaps, &out->nsnaps, e->d_name);
        } else if (casty__jname_is_temp(e->d_name)) {
            rc = push_name(&out->temps, &out->ntemps, e->d_name);
        }
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    closedir(d);
    if (rc != 0) {
        casty__jdir_free(out);
        return rc;
    }
    if (out->nsegs)
        qsort(out->segs, out->nsegs, sizeof *out->segs, cmp_u64);
    if (out->nsnaps)
        qsort(out->snaps, out->nsnaps, sizeof *out->snaps, cmp_str);
    return 0;
}

struct walk_seg {
    casty__jwalk_fn fn;
    void *arg;
    const char *file;
    uint64_t segno;
};

static int walk_record(void *arg, const casty__jrec_t *rec, uint64_t off)
{
    struct walk_seg *w = arg;
    casty__jwalk_item_t item = {.file = w->file, .segno = w->segno, .off = off, .rec = *rec};
    return w->fn(w->arg, &item);
}

int casty__journal_walk(int dirfd, const char *dirname, casty__jwalk_fn fn, void *arg,
                        casty__jwalk_t *sum, char *err, size_t err_len)
{
    char dummy[1];
    if (err == NULL || err_len == 0) {
        err = dummy;
        err_len = sizeof dummy;
    }
    err[0] = 0;
    memset(sum, 0, sizeof *sum);
    casty__jdir_t dir;
    int rc = casty__jdir_list(dirfd, &dir);
    if (rc != 0) {
        snprintf(err, err_len, "%s: cannot list: %s", dirname, casty_strerror(rc));
        return rc;
    }
    sum->temps = dir.ntemps;
    for (size_t i = 0; i < dir.nsegs && rc == 0; i++) {
        char name[CASTY__JNAME_MAX];
        casty__jname_segment(name, dir.segs[i]);
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = -errno;
            snprintf(err, err_len, "%s/%s: %s", dirname, name, casty_strerror(rc));
            break;
        }
        struct walk_seg w = {fn, arg, name, dir.segs[i]};
        casty__jscan_t res;
        rc = casty__jscan_segment(fd, dir.segs[i], sum->last_commit, fn ? walk_record : NULL, &w,
                                  &res);
        close(fd);
        if (rc != 0) {
            if (err[0] == 0)
                snprintf(err, err_len, "%s/%s: %s", dirname, name, casty_strerror(rc));
            break;
        }
        sum->segments++;
        sum->bytes += res.size;
        sum->commits += res.commits;
        sum->records += res.records;
        sum->last_commit = res.last_commit;
        if (sum->first_seg == 0)
            sum->first_seg = dir.segs[i];
        sum->last_seg = dir.segs[i];
        bool last = i + 1 == dir.nsegs;
        if (res.status == CASTY__JSCAN_TORN && last) {
            sum->torn = true;
            sum->torn_at = res.good_end;
            sum->torn_bad = res.bad_off;
            sum->torn_size = res.size;
            sum->torn_why = res.why;
        } else if (res.status != CASTY__JSCAN_CLEAN) {
            rc = CASTY_ECORRUPT;
            snprintf(err, err_len, "%s/%s:%" PRIu64 ": %s%s", dirname, name, res.bad_off, res.why,
                     res.status == CASTY__JSCAN_TORN ? " (torn commit in a segment that is not the last)"
                                                     : "");
        }
    }
    for (size_t i = 0; i < dir.nsnaps && rc == 0; i++) {
        void *buf = NULL;
        casty__jrec_t rec;
        const char *why = NULL;
        rc = casty__jsnap_read(dirfd, dir.snaps[i], &buf, &rec, &why);
        if (rc == CASTY_ECORRUPT) {
            snprintf(err, err_len, "%s/%s:0: %s", dirname, dir.snaps[i], why);
        } else if (rc != 0) {
            snprintf(err, err_len, "%s/%s: %s", dirname, dir.snaps[i], casty_strerror(rc));
        } else {
            sum->snapshots++;
            if (fn) {
                casty__jwalk_item_t item = {.file = dir.snaps[i], .segno = 0, .off = 0, .rec = rec};
                rc = fn(arg, &item);
            }
        }
        free(buf);
    }
    casty__jdir_free(&dir);
    return rc;
}
