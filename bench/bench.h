/* casty benchmarks — the shared harness (header only, private to bench/).
 *
 * Every benchmark is one file that defines its actors and a run function,
 * then hands both to bench_main(). This header does the rest:
 *
 *   - argument parsing: positional unsigned parameters (each with a range),
 *     `--workers N` (0 = online CPUs, the system default), `--reps R`
 *     (default 1), `-h/--help`; bad arguments print the usage on stderr and
 *     exit 2;
 *   - one fresh actor system per repetition, created before the timed phase
 *     and shut down after it;
 *   - the timed phase on the monotonic clock: the run function calls
 *     bench_start() after its set-up, then bench_wait(), which blocks the
 *     main thread on a mutex+condvar latch that the final actor opens (no
 *     sleeping, no polling);
 *   - one line per repetition, exactly:
 *       RESULT lang=casty bench=<name> params=<k=v,...> workers=<n> msgs=<n>
 *              secs=<s> msgs_per_sec=<r> maxrss_kb=<kb>
 *     (on one line), maxrss_kb from getrusage(RUSAGE_SELF).
 *
 * A run that goes wrong (a casty call fails, a count does not match, the
 * latch is not opened within BENCH_TIMEOUT_S seconds, default 300) prints a
 * line starting "bench:" on stderr (for a timeout, with the system's
 * counters) and exits 1.
 *
 * It does not define message types: each benchmark declares its own. */
#ifndef CASTY_BENCH_H
#define CASTY_BENCH_H

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "casty.h"

#define BENCH_MAX_PARAMS 4

/* ---- failure ------------------------------------------------------------ */

/* Prints "bench: <what>" on stderr and ends the process with status 1. Safe
 * from any thread (workers included): _exit skips atexit handlers that could
 * race with the running system. */
static inline _Noreturn void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline _Noreturn void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stdout);
    fflush(stderr);
    _exit(1);
}

/* Dies when a casty call returned an error code. */
static inline void bench_check(int rc, const char *what)
{
    if (rc < 0)
        bench_die("%s: %s (%s)", what, casty_strerror(rc), casty_err_name(rc));
}

/* casty_tell that dies on error (benchmarks never expect a send to fail). */
#define BENCH_TELL(ref, T, ...) bench_check(CASTY_TELL((ref), T, __VA_ARGS__), "tell " #T)

/* ---- spawning ------------------------------------------------------------- */

/* Spawns an anonymous top-level actor running casty_receive(fn, state);
 * dies on error. Any non-worker thread or handler. */
static inline casty_ref_t bench_spawn(casty_system_t *sys, casty_receive_fn fn,
                                      const void *state, size_t size)
{
    casty_ref_t ref = CASTY_REF_NONE;
    bench_check(casty_spawn(sys, casty_receive(fn, state, size), NULL, NULL, &ref), "spawn");
    return ref;
}

/* Same, from inside a handler. */
static inline casty_ref_t bench_ctx_spawn(casty_ctx_t *ctx, casty_receive_fn fn,
                                          const void *state, size_t size)
{
    casty_ref_t ref = CASTY_REF_NONE;
    bench_check(casty_ctx_spawn(ctx, casty_receive(fn, state, size), NULL, NULL, &ref),
                "ctx spawn");
    return ref;
}

/* ---- the done latch --------------------------------------------------------- */

/* Opens when `count` arrivals have happened. Each arrival adds its value to
 * `sum` (a result or a checksum the main thread verifies). Actors call
 * bench_latch_arrive from handlers; only the last one takes the mutex. */
typedef struct bench_latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint_fast64_t left; /* arrivals still expected */
    atomic_uint_fast64_t sum;  /* sum of the arrivals' values */
    bool open;                 /* guarded by mu */
} bench_latch_t;

static inline void bench_latch_init(bench_latch_t *l, uint64_t count)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&l->mu, NULL);
    atomic_init(&l->left, count);
    atomic_init(&l->sum, 0);
    l->open = false;
}

static inline void bench_latch_destroy(bench_latch_t *l)
{
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

/* One arrival carrying `value`. Any thread. The sum is added (relaxed) before
 * the acq_rel decrement, so the last arriver's decrement publishes every
 * earlier addition; the mutex then publishes it to the waiter. */
static inline void bench_latch_arrive(bench_latch_t *l, uint64_t value)
{
    if (value)
        atomic_fetch_add_explicit(&l->sum, value, memory_order_relaxed);
    uint64_t before = atomic_fetch_sub_explicit(&l->left, 1, memory_order_acq_rel);
    if (before == 0)
        bench_die("latch: more arrivals than expected");
    if (before != 1)
        return;
    pthread_mutex_lock(&l->mu);
    l->open = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* Blocks the calling (non-worker) thread until the latch opens or
 * `limit_s` seconds pass. Returns true when it opened; *sum receives the
 * sum of the arrivals' values. */
static inline bool bench_latch_wait(bench_latch_t *l, long limit_s, uint64_t *sum)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += limit_s;
    pthread_mutex_lock(&l->mu);
    while (!l->open) {
        if (pthread_cond_timedwait(&l->cv, &l->mu, &deadline) != 0 && !l->open)
            break;
    }
    bool open = l->open;
    pthread_mutex_unlock(&l->mu);
    *sum = atomic_load_explicit(&l->sum, memory_order_relaxed);
    return open;
}

/* ---- arguments ---------------------------------------------------------- */

typedef struct bench_param {
    const char *name; /* key in params=, e.g. "n" */
    const char *help; /* one line for the usage text */
    uint64_t min, max;
    /* An optional parameter (only after the required ones) takes `def`
     * when left out, and shows in params= only when it differs from it (so
     * a run with the defaults reads like the peers' runs). */
    bool optional;
    uint64_t def;
} bench_param_t;

typedef struct bench_spec {
    const char *name; /* bench=<name> */
    const char *what; /* one line: what the benchmark measures */
    bench_param_t params[BENCH_MAX_PARAMS];
    int nparams;
} bench_spec_t;

static inline void bench_usage(const bench_spec_t *s, FILE *out)
{
    fprintf(out, "usage: %s", s->name);
    for (int i = 0; i < s->nparams; i++) {
        fputs(s->params[i].optional ? " [" : " ", out);
        for (const char *c = s->params[i].name; *c; c++)
            fputc(toupper((unsigned char)*c), out);
        if (s->params[i].optional)
            fputc(']', out);
    }
    fprintf(out, " [--workers N] [--reps R]\n  %s\n", s->what);
    for (int i = 0; i < s->nparams; i++)
        fprintf(out, "  %-10s %s (%" PRIu64 "..%" PRIu64 "%s)\n", s->params[i].name,
                s->params[i].help, s->params[i].min, s->params[i].max,
                s->params[i].optional ? ", optional" : "");
    fprintf(out, "  --workers N scheduler threads; 0 = online CPUs (default 0)\n"
                 "  --reps R    repetitions, one RESULT line each (default 1)\n");
}

static inline _Noreturn void bench_bad_args(const bench_spec_t *s, const char *fmt,
                                            const char *arg)
{
    fprintf(stderr, "%s: ", s->name);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    bench_usage(s, stderr);
    exit(2);
}

/* Parses a whole decimal number in [min, max]. */
static inline bool bench_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (text == NULL || *text < '0' || *text > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ---- the run -------------------------------------------------------------- */

/* What a run function gets and fills in. */
typedef struct bench_run {
    casty_system_t *sys;
    const uint64_t *p; /* the positional parameters, in spec order */
    bench_latch_t done;
    struct timespec t0, t1;
    bool started, finished;
} bench_run_t;

/* Sets the run up, times it (bench_start .. bench_wait), checks its result
 * and returns the number of messages the timed phase counts. */
typedef uint64_t (*bench_run_fn)(bench_run_t *run);

/* Arms the latch for `arrivals` and starts the clock: call after set-up,
 * right before the kick-off message. */
static inline void bench_start(bench_run_t *run, uint64_t arrivals)
{
    bench_latch_init(&run->done, arrivals);
    run->started = true;
    clock_gettime(CLOCK_MONOTONIC, &run->t0);
}

/* Waits for the latch, stops the clock, returns the arrivals' sum. Dies
 * after BENCH_TIMEOUT_S seconds (default 300), printing the system's
 * counters, so a lost message never hangs a run. */
static inline uint64_t bench_wait(bench_run_t *run)
{
    const char *env = getenv("BENCH_TIMEOUT_S");
    long limit = env ? strtol(env, NULL, 10) : 0;
    uint64_t sum = 0;
    if (!bench_latch_wait(&run->done, limit > 0 ? limit : 300, &sum)) {
        casty_system_stats_t st = {0};
        casty_system_stats(run->sys, &st);
        bench_die("timed out waiting for completion: %" PRIuFAST64
                  " arrivals missing; actors_live=%" PRIu64 " spawned=%" PRIu64
                  " dead_letters=%" PRIu64 " unhandled=%" PRIu64,
                  atomic_load(&run->done.left), st.actors_live, st.actors_spawned,
                  st.dead_letters, st.unhandled);
    }
    clock_gettime(CLOCK_MONOTONIC, &run->t1);
    run->finished = true;
    return sum;
}

static inline long bench_maxrss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* Parses argv against `spec`, then for each repetition: creates a system,
 * calls `fn`, shuts the system down, prints the RESULT line. Returns the
 * process exit status (0); failures exit from inside. */
static inline int bench_main(const bench_spec_t *spec, bench_run_fn fn, int argc, char **argv)
{
    uint64_t p[BENCH_MAX_PARAMS] = {0};
    uint64_t workers = 0, reps = 1;
    int npos = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            bench_usage(spec, stdout);
            exit(0);
        } else if (strcmp(a, "--workers") == 0 || strcmp(a, "--reps") == 0) {
            bool is_workers = a[2] == 'w';
            if (i + 1 >= argc)
                bench_bad_args(spec, "%s needs a value", a);
            const char *v = argv[++i];
            if (!bench_parse_u64(v, is_workers ? 0 : 1, is_workers ? 1024 : 1000000,
                                 is_workers ? &workers : &reps))
                bench_bad_args(spec, is_workers ? "--workers needs a number 0..1024, got '%s'"
                                                : "--reps needs a number >= 1, got '%s'",
                               v);
        } else if (a[0] == '-') {
            bench_bad_args(spec, "unknown option '%s'", a);
        } else if (npos >= spec->nparams) {
            bench_bad_args(spec, "too many arguments at '%s'", a);
        } else {
            const bench_param_t *bp = &spec->params[npos];
            if (!bench_parse_u64(a, bp->min, bp->max, &p[npos]))
                bench_bad_args(spec, "bad value '%s' (see the ranges below)", a);
            npos++;
        }
    }
    for (; npos < spec->nparams && spec->params[npos].optional; npos++)
        p[npos] = spec->params[npos].def;
    if (npos != spec->nparams)
        bench_bad_args(spec, "%s", "missing arguments");

    char params[256];
    size_t off = 0;
    for (int i = 0; i < spec->nparams; i++)
        if (!spec->params[i].optional || p[i] != spec->params[i].def)
            off += (size_t)snprintf(params + off, sizeof params - off, "%s%s=%" PRIu64,
                                    i ? "," : "", spec->params[i].name, p[i]);

    for (uint64_t r = 0; r < reps; r++) {
        casty_system_config_t cfg;
        casty_system_config_init(&cfg);
        cfg.name = "bench";
        cfg.workers = (uint32_t)workers;
        bench_run_t run = {.p = p};
        bench_check(casty_system_create(&cfg, &run.sys), "system create");
        uint32_t nworkers = casty_system_workers(run.sys);

        uint64_t msgs = fn(&run);
        if (!run.started || !run.finished)
            bench_die("%s: run function did not call bench_start/bench_wait", spec->name);

        bench_check(casty_system_shutdown(run.sys), "system shutdown");
        bench_latch_destroy(&run.done);

        double secs = (double)(run.t1.tv_sec - run.t0.tv_sec) +
                      (double)(run.t1.tv_nsec - run.t0.tv_nsec) / 1e9;
        uint64_t rate = secs > 0 ? (uint64_t)((double)msgs / secs) : 0;
        printf("RESULT lang=casty bench=%s params=%s workers=%" PRIu32 " msgs=%" PRIu64
               " secs=%.6f msgs_per_sec=%" PRIu64 " maxrss_kb=%ld\n",
               spec->name, params, nworkers, msgs, secs, rate, bench_maxrss_kb());
        fflush(stdout);
    }
    return 0;
}

/* ---- small helpers shared by several benchmarks --------------------------- */

/* xorshift64*: a fast per-actor PRNG (state must not be 0). */
static inline uint64_t bench_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A small integer mix (splitmix64 finaliser), used as per-message work. */
static inline uint64_t bench_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

#endif /* CASTY_BENCH_H */
