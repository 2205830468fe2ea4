/* persist REPLAY ACTORS EVENTS — the file journal (bench=journal).
 *
 * REPLAY=0: durable persists. ACTORS actors each persist EVENTS events of
 * 32 bytes, one at a time: persist one, wait for its written reply (sent
 * only after the group commit's fdatasync returned), persist the next. All
 * persists that arrive while one commit is in flight share the next one,
 * so throughput grows with the number of actors. msgs = ACTORS * EVENTS.
 *
 * REPLAY=1 or 2: replay. The events are written first (not timed): with
 * REPLAY=1 64 per persist call, so each pid's events lie in runs of 64;
 * with REPLAY=2 one per call, as REPLAY=0 writes them, so with many actors
 * every pid's events are scattered across the whole journal (one per group
 * commit): the hardest layout for a replay. Then the journal is closed and reopened (the index is rebuilt by scanning the
 * segments; the operating system's page cache is warm), then every actor
 * replays its events at once and checks the count. msgs = events replayed.
 *
 * The journal lives in a fresh directory under $TMPDIR (or /tmp), removed
 * afterwards. */
#include <dirent.h>
#include <fcntl.h>

#include "bench.h"

CASTY_SIGNAL(Start);

#define PAYLOAD 32
#define FILL_BATCH 64 /* events per persist call when filling a journal to replay */

typedef struct pactor {
    casty_journal_t *j;
    char pid[32];
    uint64_t next; /* next seq */
    uint64_t left; /* events still to persist */
    uint64_t expect; /* replay: events expected */
    uint64_t batch;  /* events per persist call */
    bench_latch_t *done;
} pactor_t;

/* Persists the next event, or (filling a journal to replay) the next
 * `batch` events in one call. */
static void persist_next(casty_ctx_t *ctx, pactor_t *a)
{
    unsigned char data[FILL_BATCH][PAYLOAD];
    casty_journal_entry_t e[FILL_BATCH];
    uint64_t n = a->batch < a->left ? a->batch : a->left;
    for (uint64_t k = 0; k < n; k++) {
        for (int i = 0; i < PAYLOAD; i++)
            data[k][i] = (unsigned char)((a->next + k) * 31 + (uint64_t)i);
        e[k] = (casty_journal_entry_t){a->next + k, 0x1234, PAYLOAD, data[k]};
    }
    bench_check(a->j->ops->persist(a->j, a->pid, e, n, casty_ctx_self(ctx), n), "persist");
    a->next += n;
}

static casty_behavior_t *writer(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    pactor_t *a = state;
    const casty_journal_written_t *w = casty_msg_as(msg, casty_journal_written_t);
    if (w) {
        bench_check(w->rc, "written reply");
        a->left -= w->tag; /* the tag is the number of events */
        if (a->left == 0) {
            bench_latch_arrive(a->done, 0);
            return casty_same();
        }
    } else if (!casty_msg_is(msg, Start)) {
        return casty_unhandled();
    }
    persist_next(ctx, a);
    return casty_same();
}

static casty_behavior_t *reader(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    pactor_t *a = state;
    const casty_journal_loaded_t *l = casty_msg_as(msg, casty_journal_loaded_t);
    if (l) {
        bench_check(l->rc, "replay reply");
        size_t n = casty_journal_batch_count(l->batch);
        if (n != a->expect)
            bench_die("%s: replayed %zu events, expected %" PRIu64, a->pid, n, a->expect);
        bench_latch_arrive(a->done, n);
        return casty_same();
    }
    if (!casty_msg_is(msg, Start))
        return casty_unhandled();
    bench_check(a->j->ops->replay(a->j, a->pid, 1, casty_ctx_self(ctx), 0), "replay");
    return casty_same();
}

static casty_journal_t *open_journal(casty_system_t *sys, const char *dir)
{
    casty_journal_t *j = NULL;
    char err[512] = "";
    int rc = casty_file_journal_open(sys, dir, NULL, &j, err, sizeof err);
    if (rc < 0)
        bench_die("open %s: %s (%s)", dir, casty_strerror(rc), err);
    return j;
}

/* Spawns the actors, sends Start and waits for all of them. */
static void run_phase(casty_system_t *sys, casty_journal_t *j, uint64_t actors, uint64_t events,
                      bool replay, uint64_t batch, bench_latch_t *done, bench_run_t *timed)
{
    if (timed)
        done = &timed->done;
    casty_ref_t *refs = malloc(actors * sizeof *refs);
    if (refs == NULL)
        bench_die("out of memory");
    for (uint64_t i = 0; i < actors; i++) {
        pactor_t a = {.j = j, .next = 1, .left = events, .expect = events, .done = done,
                      .batch = batch};
        snprintf(a.pid, sizeof a.pid, "entity-%" PRIu64, i);
        refs[i] = bench_spawn(sys, replay ? reader : writer, &a, sizeof a);
    }
    if (timed)
        bench_start(timed, actors);
    else
        bench_latch_init(done, actors);
    for (uint64_t i = 0; i < actors; i++)
        BENCH_TELL(refs[i], Start, 0);
    uint64_t sum = 0;
    if (timed) {
        sum = bench_wait(timed);
    } else if (!bench_latch_wait(done, 300, &sum)) {
        bench_die("the untimed persist phase did not finish");
    }
    if (replay && sum != actors * events)
        bench_die("replayed %" PRIu64 " events, expected %" PRIu64, sum, actors * events);
    for (uint64_t i = 0; i < actors; i++)
        casty_stop(refs[i]);
    free(refs);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

static uint64_t run(bench_run_t *r)
{
    bool replay = r->p[0] != 0;
    uint64_t actors = r->p[1], events = r->p[2];
    const char *base = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/casty-bench-journal-XXXXXX", base && base[0] ? base : "/tmp");
    if (mkdtemp(dir) == NULL)
        bench_die("mkdtemp %s: %s", dir, strerror(errno));

    casty_journal_t *j = open_journal(r->sys, dir);
    if (!replay) {
        run_phase(r->sys, j, actors, events, false, 1, NULL, r);
    } else {
        bench_latch_t written;
        run_phase(r->sys, j, actors, events, false, r->p[0] == 1 ? FILL_BATCH : 1, &written, NULL);
        bench_latch_destroy(&written);
        casty_journal_close(j);
        j = open_journal(r->sys, dir);
        run_phase(r->sys, j, actors, events, true, 1, NULL, r);
    }
    casty_journal_close(j);
    remove_dir(dir);
    return actors * events;
}

int main(int argc, char **argv)
{
    static const bench_spec_t spec = {
        "journal",
        "file journal: durable persists (REPLAY=0) or replay after reopen (REPLAY=1, 2)",
        {{"replay", "0: time durable persists; 1: time the replay (runs of 64); 2: same, "
                    "events scattered",
          0, 2, false, 0},
         {"actors", "concurrently persisting actors, one pid each", 1, 1000000, false, 0},
         {"events", "events per actor, persisted one at a time", 1, UINT64_C(1) << 32, false, 0}},
        3};
    return bench_main(&spec, run, argc, argv);
}
