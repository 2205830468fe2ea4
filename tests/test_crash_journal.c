/* Crash safety of the file journal under SIGKILL. Each iteration forks a
 * child that opens the journal (recovering whatever the previous kill
 * left) and runs a few actors that persist events (1 to 3 per call) as
 * fast as the journal acknowledges them, save a snapshot every 16 events
 * and delete the events it covers. After every acknowledgement (rc 0) the
 * child writes what was acknowledged to a pipe. The parent kills the child
 * with SIGKILL at a random moment, then reopens the journal and checks
 * that every acknowledged event is still there (or covered by a snapshot
 * at least as new, for deleted ones), that payloads are intact, that every
 * acknowledged snapshot is there, and that the directory verifies.
 *
 * CASTY_CRASH_ITERATIONS sets the iterations (default 200, divided by
 * CASTY_STRESS_SCALE under the sanitizers); CASTY_SEED replays a run. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "journal_helpers.h"
#include "journal_scan.h"

#define CJ_PIDS 4
#define CJ_SEGMENT (16 * 1024)
#define CJ_MAX_KILL_US 40000u
#define TAG_PROBE 1u
#define TAG_EVENTS 2u
#define TAG_SNAP 3u

struct cj_ack {
    uint32_t pid;
    uint32_t snapshot; /* 1: a snapshot was acknowledged */
    uint64_t seq;
};

CASTY_SIGNAL(cj_start);

struct cj_actor {
    casty_journal_t *j;
    char pid[16];
    uint32_t idx;
    int wfd;
    uint64_t next;
    uint64_t rng;
    uint32_t since_snapshot;
};

static void cj_snapshot_state(char *buf, size_t len, const char *pid, uint64_t seq)
{
    snprintf(buf, len, "snapshot of %s at %llu", pid, (unsigned long long)seq);
}

static void cj_ack(const struct cj_actor *a, uint32_t snapshot, uint64_t seq)
{
    struct cj_ack ack = {a->idx, snapshot, seq};
    /* One write of 16 bytes on a pipe is atomic; a full pipe blocks the
     * worker, which only slows the child down until the parent reads. */
    if (write(a->wfd, &ack, sizeof ack) != (ssize_t)sizeof ack)
        _exit(30);
}

static void cj_persist_next(casty_ctx_t *ctx, struct cj_actor *a)
{
    a->rng = jh_mix(a->rng + 1);
    size_t n = 1 + a->rng % 3;
    casty_journal_entry_t ev[3];
    unsigned char bufs[3][JH_MAX_PAYLOAD];
    for (size_t i = 0; i < n; i++) {
        ev[i].seq = a->next + i;
        ev[i].type_id = JH_TYPE(a->next + i);
        ev[i].len = jh_payload(a->pid, a->next + i, bufs[i], JH_MAX_PAYLOAD);
        ev[i].data = bufs[i];
    }
    if (a->j->ops->persist(a->j, a->pid, ev, n, casty_ctx_self(ctx), TAG_EVENTS) != 0)
        _exit(31);
    a->next += n;
}

/* The child's actors: no assertions here (a failed check exits with a
 * code the parent reports). */
static casty_behavior_t *cj_receive(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct cj_actor *a = state;
    if (casty_msg_is(msg, cj_start)) {
        /* An empty persist answers with the pid's last seq. */
        if (a->j->ops->persist(a->j, a->pid, NULL, 0, casty_ctx_self(ctx), TAG_PROBE) != 0)
            _exit(32);
        return casty_same();
    }
    const casty_journal_written_t *w = casty_msg_as(msg, casty_journal_written_t);
    if (w == NULL)
        return casty_unhandled();
    if (w->rc != 0)
        _exit(33);
    switch (w->tag) {
    case TAG_PROBE:
        a->next = w->seq + 1;
        cj_persist_next(ctx, a);
        break;
    case TAG_EVENTS:
        cj_ack(a, 0, w->seq);
        if (++a->since_snapshot >= 16) {
            a->since_snapshot = 0;
            char st[64];
            cj_snapshot_state(st, sizeof st, a->pid, w->seq);
            casty_journal_entry_t e = {w->seq, 0x5a5a, (uint32_t)strlen(st), st};
            if (a->j->ops->save_snapshot(a->j, a->pid, &e, casty_ctx_self(ctx), TAG_SNAP) != 0)
                _exit(34);
        }
        cj_persist_next(ctx, a);
        break;
    case TAG_SNAP:
        cj_ack(a, 1, w->seq);
        if (a->j->ops->delete_events(a->j, a->pid, w->seq) != 0)
            _exit(35);
        break;
    }
    return casty_same();
}

static _Noreturn void cj_child(const char *dir, int wfd, uint64_t seed)
{
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.workers = 2;
    casty_system_t *sys = NULL;
    if (casty_system_create(&cfg, &sys) != 0)
        _exit(40);
    casty_file_journal_options_t opts = {.segment_bytes = CJ_SEGMENT};
    casty_journal_t *j = NULL;
    char err[512];
    if (casty_file_journal_open(sys, dir, &opts, &j, err, sizeof err) != 0) {
        fprintf(stderr, "crash child: open: %s\n", err);
        _exit(41);
    }
    for (uint32_t i = 0; i < CJ_PIDS; i++) {
        struct cj_actor a = {.j = j, .idx = i, .wfd = wfd, .rng = seed ^ i};
        snprintf(a.pid, sizeof a.pid, "crash-%u", i);
        casty_ref_t ref;
        if (casty_spawn(sys, casty_receive(cj_receive, &a, sizeof a), NULL, NULL, &ref) != 0 ||
            CASTY_TELL(ref, cj_start, 0) != 0)
            _exit(42);
    }
    for (;;)
        pause(); /* until SIGKILL */
}

/* Reads acknowledgements until the deadline (0: until EOF). */
static void cj_read_acks(int rfd, uint64_t deadline_ns, uint64_t *acked, uint64_t *snap_acked,
                         uint64_t *count)
{
    struct cj_ack buf[256];
    size_t have = 0; /* bytes of a partial record kept in buf */
    for (;;) {
        int wait_ms = -1;
        if (deadline_ns) {
            uint64_t now = now_ns();
            if (now >= deadline_ns)
                return;
            wait_ms = (int)((deadline_ns - now + 999999) / 1000000);
        }
        struct pollfd pfd = {.fd = rfd, .events = POLLIN};
        int pr = poll(&pfd, 1, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue; /* the deadline is checked at the top */
        ssize_t n = read(rfd, (char *)buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EOF: the child is gone */
        have += (size_t)n;
        size_t whole = have / sizeof *buf;
        for (size_t i = 0; i < whole; i++) {
            cr_assert_lt(buf[i].pid, CJ_PIDS);
            uint64_t *slot = buf[i].snapshot ? &snap_acked[buf[i].pid] : &acked[buf[i].pid];
            if (buf[i].seq > *slot)
                *slot = buf[i].seq;
            *count += !buf[i].snapshot;
        }
        have -= whole * sizeof *buf;
        memmove(buf, (char *)buf + whole * sizeof *buf, have);
    }
}

/* Reopens the journal and checks every acknowledgement against it. */
static void cj_verify(const char *dir, const uint64_t *acked, const uint64_t *snap_acked,
                      uint64_t iteration, uint64_t *cuts)
{
    /* The open's report of a torn tail goes to a file, printed only when a
     * check fails (it is expected after most kills). */
    char cap[300];
    snprintf(cap, sizeof cap, "%s.stderr", dir);
    fflush(stderr);
    int cfd = open(cap, O_RDWR | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(cfd, 0);
    int saved = dup(2);
    dup2(cfd, 2);
    casty_system_t *sys = jh_system(1);
    casty_file_journal_options_t opts = {.segment_bytes = CJ_SEGMENT};
    casty_journal_t *j = NULL;
    char err[512] = "";
    int rc = casty_file_journal_open(sys, dir, &opts, &j, err, sizeof err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char report[2048];
    ssize_t rn = pread(cfd, report, sizeof report - 1, 0);
    report[rn > 0 ? rn : 0] = 0;
    close(cfd);
    unlink(cap);
    *cuts += strstr(report, "torn commit cut off") != NULL;
    cr_assert_eq(rc, 0, "iteration %llu: reopen failed: %s (%s)\nreport: %s",
                 (unsigned long long)iteration, casty_strerror(rc), err, report);

    for (uint32_t i = 0; i < CJ_PIDS; i++) {
        char pid[16];
        snprintf(pid, sizeof pid, "crash-%u", i);
        struct jh_reply r = jh_replay(j, pid, 1);
        cr_assert_eq(r.rc, 0);
        uint64_t first = r.n ? r.e[0].seq : 0;
        uint64_t last = r.n ? first + r.n - 1 : 0;
        if (r.n)
            jh_expect_events(&r, pid, first, last);
        uint64_t tag = jh_tag();
        cr_assert_eq(j->ops->load_snapshot(j, pid, jh_rec, tag), 0);
        struct jh_reply s = jh_wait(tag);
        cr_assert_eq(s.rc, 0);
        uint64_t snap = s.n ? s.e[0].seq : 0;
        if (s.n) {
            char st[64];
            cj_snapshot_state(st, sizeof st, pid, snap);
            cr_assert_eq(s.e[0].len, strlen(st));
            cr_assert_eq(memcmp(s.e[0].data, st, s.e[0].len), 0);
        }
        cr_assert(first <= 1 || snap >= first - 1,
                  "iteration %llu: %s: events below %llu deleted without a snapshot (snapshot %llu)",
                  (unsigned long long)iteration, pid, (unsigned long long)first,
                  (unsigned long long)snap);
        uint64_t have = last > snap ? last : snap;
        cr_assert_geq(have, acked[i],
                      "iteration %llu: %s: event %llu was acknowledged, the journal has up to %llu"
                      "\nreport: %s",
                      (unsigned long long)iteration, pid, (unsigned long long)acked[i],
                      (unsigned long long)have, report);
        cr_assert_geq(snap, snap_acked[i],
                      "iteration %llu: %s: snapshot %llu was acknowledged, found %llu",
                      (unsigned long long)iteration, pid, (unsigned long long)snap_acked[i],
                      (unsigned long long)snap);
    }
    casty_journal_close(j);
    cr_assert_eq(casty_system_shutdown(sys), 0);

    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    casty__jwalk_t sum;
    rc = casty__journal_walk(dfd, dir, NULL, NULL, &sum, err, sizeof err);
    close(dfd);
    cr_assert_eq(rc, 0, "iteration %llu: verify: %s", (unsigned long long)iteration, err);
    cr_assert(!sum.torn, "a reopened journal has no torn tail left");
}

Test(crash_journal, sigkill_loses_no_acknowledged_event)
{
    jh_reset();
    uint64_t seed = stress_seed("crash_journal");
    const char *env = getenv("CASTY_CRASH_ITERATIONS");
    uint64_t iterations = env ? strtoull(env, NULL, 10) : 200 / stress_scale();
    if (iterations == 0)
        iterations = 1;
    char dir[256];
    jh_tmpdir(dir, sizeof dir, "crash");
    uint64_t acked[CJ_PIDS] = {0}, snap_acked[CJ_PIDS] = {0};
    uint64_t total = 0, cuts = 0, rng = seed | 1;
    uint64_t t0 = now_ns();
    for (uint64_t it = 0; it < iterations; it++) {
        rng = jh_mix(rng + it);
        /* A tenth of the kills land right away (during start-up and
         * recovery); the rest anywhere in the first 40 ms. */
        uint64_t kill_us = rng % 10 == 0 ? rng % 2000 : (rng >> 8) % CJ_MAX_KILL_US;
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        fflush(stdout);
        fflush(stderr);
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
            close(fds[0]);
            cj_child(dir, fds[1], jh_mix(seed ^ it));
        }
        close(fds[1]);
        cj_read_acks(fds[0], now_ns() + kill_us * 1000, acked, snap_acked, &total);
        kill(child, SIGKILL);
        int status = 0;
        cr_assert_eq(waitpid(child, &status, 0), child);
        cj_read_acks(fds[0], 0, acked, snap_acked, &total);
        close(fds[0]);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "iteration %llu: the child stopped by itself (status %d, exit code %d)",
                  (unsigned long long)it, status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        cj_verify(dir, acked, snap_acked, it, &cuts);
    }
    fprintf(stderr,
            "crash_journal: %llu kills in %.1f s, %llu events acknowledged and found, %llu torn "
            "tails cut\n",
            (unsigned long long)iterations, (double)(now_ns() - t0) / 1e9,
            (unsigned long long)total, (unsigned long long)cuts);
    jh_rmdir(dir);
}
