/* casty-journal — inspects a file journal's directory without changing it:
 *
 *   casty-journal ls DIR         persistence ids with their event counts,
 *                                sequence ranges, deletion marks, snapshots
 *   casty-journal dump DIR PID   one line per stored event of PID
 *   casty-journal verify DIR     checks every checksum and commit; exit 0
 *                                when clean (a torn tail in the last segment,
 *                                which the next open cuts off, is reported
 *                                but is not corruption), 1 with the file and
 *                                offset of the first corruption
 *
 * Exit status 2 on bad usage. It reads through persist/journal_scan.c, the
 * code the journal's own recovery uses, and never writes: it is safe on a
 * journal in use (whose last commit may then show as torn). Type names are
 * not stored in the journal, so events show their type id (XXH3-64 of the
 * type's name, as casty_type_id returns). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casty.h"
#include "journal_scan.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: casty-journal ls DIR\n"
                 "       casty-journal dump DIR PID\n"
                 "       casty-journal verify DIR\n"
                 "  ls      persistence ids: live events, first and last seq, deleted up to,\n"
                 "          latest snapshot seq\n"
                 "  dump    one line per stored event of PID: seq, type id, size, file:offset\n"
                 "  verify  check every segment and snapshot; exit 0 clean, 1 corrupt\n"
                 "          (the file and offset are printed), 2 bad usage\n");
}

/* ---- per-pid summary (ls) ---------------------------------------------------------- */

struct pid_sum {
    char *pid;
    uint64_t stored;   /* event records present */
    uint64_t min_seq, max_seq;
    uint64_t deleted;  /* highest DELETE record */
    uint64_t snapshot; /* highest snapshot file's seq */
};

struct summary {
    struct pid_sum *v; /* in order of first appearance */
    size_t n, cap;
    size_t *slots; /* open addressing: index + 1 into v, 0 = empty */
    size_t nslots;
};

static bool same_pid(const struct pid_sum *p, const char *pid, size_t len)
{
    return strlen(p->pid) == len && memcmp(p->pid, pid, len) == 0;
}

static int rehash(struct summary *s)
{
    size_t n = s->nslots ? s->nslots * 2 : 256;
    size_t *t = calloc(n, sizeof *t);
    if (t == NULL)
        return CASTY_ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        size_t k = casty__jpid_hash(s->v[i].pid, strlen(s->v[i].pid)) & (n - 1);
        while (t[k])
            k = (k + 1) & (n - 1);
        t[k] = i + 1;
    }
    free(s->slots);
    s->slots = t;
    s->nslots = n;
    return 0;
}

static struct pid_sum *find_pid(struct summary *s, const char *pid, size_t len)
{
    if ((s->n + 1) * 2 > s->nslots && rehash(s) != 0)
        return NULL;
    size_t k = casty__jpid_hash(pid, len) & (s->nslots - 1);
    for (; s->slots[k]; k = (k + 1) & (s->nslots - 1))
        if (same_pid(&s->v[s->slots[k] - 1], pid, len))
            return &s->v[s->slots[k] - 1];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct pid_sum *a = realloc(s->v, cap * sizeof *a);
        if (a == NULL)
            return NULL;
        s->v = a;
        s->cap = cap;
    }
    struct pid_sum *p = &s->v[s->n];
    memset(p, 0, sizeof *p);
    if ((p->pid = strndup(pid, len)) == NULL)
        return NULL;
    s->slots[k] = ++s->n;
    return p;
}

static int ls_item(void *arg, const casty__jwalk_item_t *it)
{
    const casty__jrec_t *r = &it->rec;
    if (r->kind == CASTY__JREC_COMMIT)
        return 0;
    struct pid_sum *p = find_pid(arg, r->pid, r->pid_len);
    if (p == NULL)
        return CASTY_ENOMEM;
    switch (r->kind) {
    case CASTY__JREC_EVENT:
        p->stored++;
        if (p->min_seq == 0 || r->seq < p->min_seq)
            p->min_seq = r->seq;
        if (r->seq > p->max_seq)
            p->max_seq = r->seq;
        break;
    case CASTY__JREC_DELETE:
        if (r->seq > p->deleted)
            p->deleted = r->seq;
        break;
    case CASTY__JREC_SNAPSHOT:
        if (r->seq > p->snapshot)
            p->snapshot = r->seq;
        break;
    }
    return 0;
}

static int cmp_pid(const void *a, const void *b)
{
    return strcmp(((const struct pid_sum *)a)->pid, ((const struct pid_sum *)b)->pid);
}

/* ---- dump ---------------------------------------------------------------------------- */

struct dumped {
    uint64_t seq, type_id, segno, off;
    uint32_t size;
};

struct dump {
    const char *pid;
    size_t pid_len;
    struct dumped *v;
    size_t n, cap;
    uint64_t deleted, snapshot;
    uint32_t snapshot_size;
    uint64_t snapshot_type;
};

static int dump_item(void *arg, const casty__jwalk_item_t *it)
{
    struct dump *d = arg;
    const casty__jrec_t *r = &it->rec;
    if (r->kind == CASTY__JREC_COMMIT || r->pid_len != d->pid_len ||
        memcmp(r->pid, d->pid, d->pid_len) != 0)
        return 0;
    if (r->kind == CASTY__JREC_DELETE) {
        if (r->seq > d->deleted)
            d->deleted = r->seq;
    } else if (r->kind == CASTY__JREC_SNAPSHOT) {
        if (r->seq > d->snapshot) {
            d->snapshot = r->seq;
            d->snapshot_size = r->payload_len;
            d->snapshot_type = r->type_id;
        }
    } else {
        if (d->n == d->cap) {
            size_t cap = d->cap ? d->cap * 2 : 256;
            struct dumped *a = realloc(d->v, cap * sizeof *a);
            if (a == NULL)
                return CASTY_ENOMEM;
            d->v = a;
            d->cap = cap;
        }
        d->v[d->n++] = (struct dumped){r->seq, r->type_id, it->segno, it->off, r->payload_len};
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

static int open_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fprintf(stderr, "casty-journal: %s: %s\n", dir, strerror(errno));
    return fd;
}

static void print_torn(const char *dir, const casty__jwalk_t *sum)
{
    if (!sum->torn)
        return;
    char name[CASTY__JNAME_MAX];
    casty__jname_segment(name, sum->last_seg);
    printf("torn tail: %s/%s:%" PRIu64 ": %s at offset %" PRIu64 "; %" PRIu64
           " bytes of an unacknowledged commit (cut off when the journal is next opened)\n",
           dir, name, sum->torn_at, sum->torn_why, sum->torn_bad, sum->torn_size - sum->torn_at);
}

static int walk(const char *dir, casty__jwalk_fn fn, void *arg, casty__jwalk_t *sum)
{
    int fd = open_dir(dir);
    if (fd < 0)
        return 1;
    char err[512];
    int rc = casty__journal_walk(fd, dir, fn, arg, sum, err, sizeof err);
    close(fd);
    if (rc == CASTY_ECORRUPT) {
        printf("corrupt: %s\n", err);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "casty-journal: %s\n", err[0] ? err : casty_strerror(rc));
        return 1;
    }
    return 0;
}

static int cmd_ls(const char *dir)
{
    struct summary s = {0};
    casty__jwalk_t sum;
    int status = walk(dir, ls_item, &s, &sum);
    if (status == 0) {
        printf("%s: %" PRIu64 " segments, %" PRIu64 " bytes, %" PRIu64 " commits, %" PRIu64
               " records, %" PRIu64 " snapshots\n",
               dir, sum.segments, sum.bytes, sum.commits, sum.records, sum.snapshots);
        print_torn(dir, &sum);
        if (s.n)
            qsort(s.v, s.n, sizeof *s.v, cmp_pid);
        printf("%-32s %10s %10s %10s %10s %10s\n", "PID", "EVENTS", "FIRST", "LAST", "DELETED",
               "SNAPSHOT");
        for (size_t i = 0; i < s.n; i++) {
            const struct pid_sum *p = &s.v[i];
            uint64_t first = p->min_seq > p->deleted ? p->min_seq : p->deleted + 1;
            uint64_t live = p->stored && p->max_seq >= first ? p->max_seq - first + 1 : 0;
            printf("%-32s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
                   p->pid, live, live ? first : 0, live ? p->max_seq : 0, p->deleted, p->snapshot);
        }
    }
    for (size_t i = 0; i < s.n; i++)
        free(s.v[i].pid);
    free(s.v);
    free(s.slots);
    return status;
}

static int cmd_dump(const char *dir, const char *pid)
{
    struct dump d = {.pid = pid, .pid_len = strlen(pid)};
    casty__jwalk_t sum;
    int status = walk(dir, dump_item, &d, &sum);
    if (status == 0) {
        print_torn(dir, &sum);
        for (size_t i = 0; i < d.n; i++) {
            const struct dumped *e = &d.v[i];
            char name[CASTY__JNAME_MAX];
            casty__jname_segment(name, e->segno);
            printf("seq=%" PRIu64 " type=%016" PRIx64 " size=%" PRIu32 " at=%s:%" PRIu64 "%s\n",
                   e->seq, e->type_id, e->size, name, e->off,
                   e->seq <= d.deleted ? " (deleted)" : "");
        }
        if (d.snapshot)
            printf("snapshot seq=%" PRIu64 " type=%016" PRIx64 " size=%" PRIu32 "\n", d.snapshot,
                   d.snapshot_type, d.snapshot_size);
        if (d.n == 0 && d.snapshot == 0 && d.deleted == 0)
            fprintf(stderr, "casty-journal: no records for '%s'\n", pid);
    }
    free(d.v);
    return status;
}

static int cmd_verify(const char *dir)
{
    casty__jwalk_t sum;
    int status = walk(dir, NULL, NULL, &sum);
    if (status == 0) {
        print_torn(dir, &sum);
        printf("ok: %s: %" PRIu64 " segments, %" PRIu64 " commits, %" PRIu64 " records, %" PRIu64
               " snapshots\n",
               dir, sum.segments, sum.commits, sum.records, sum.snapshots);
    }
    return status;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    }
    if (argc == 3 && strcmp(argv[1], "ls") == 0)
        return cmd_ls(argv[2]);
    if (argc == 4 && strcmp(argv[1], "dump") == 0)
        return cmd_dump(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argv[2]);
    if (argc > 1 && strcmp(argv[1], "ls") != 0 && strcmp(argv[1], "dump") != 0 &&
        strcmp(argv[1], "verify") != 0)
        fprintf(stderr, "casty-journal: unknown command '%s'\n", argv[1]);
    else
        fprintf(stderr, "casty-journal: wrong number of arguments\n");
    usage(stderr);
    return 2;
}
