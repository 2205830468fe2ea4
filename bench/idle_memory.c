/* idle_memory N STATE_BYTES — runtime memory per idle actor.
 *
 * Spawns N actors whose receive state is STATE_BYTES bytes, waits until
 * every one has started (its setup ran and its live state copy exists),
 * then reports the growth of the resident set divided by N. That is the
 * runtime's cost per idle actor (cell, behavior, state copies, allocator
 * overhead) plus STATE_BYTES twice (the initial template kept for restart
 * and the live copy). Prints the usual RESULT line (msgs = actors spawned)
 * and one line "MEMORY bench=idle_memory ... bytes_per_actor=<b>".
 *
 * Reproduce: build/bench/idle_memory 1000000 0 && build/bench/idle_memory 1000000 8 */
#include <sched.h>

#include "bench.h"

static atomic_uint_fast64_t started;

static void on_started(const casty_type_t *t, const void *ev, void *arg)
{
    (void)t, (void)ev, (void)arg;
    atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
}

static casty_behavior_t *idle(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)msg, (void)state;
    return casty_same();
}

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
    uint64_t n = 0, state_bytes = 0;
    if (argc < 3 || !bench_parse_u64(argv[1], 1, 50000000, &n) ||
        !bench_parse_u64(argv[2], 0, 4096, &state_bytes)) {
        fprintf(stderr, "usage: %s N STATE_BYTES   (1 <= N <= 5e7, STATE_BYTES <= 4096)\n", argv[0]);
        return 2;
    }
    casty_system_t *sys;
    bench_check(casty_system_create(NULL, &sys), "casty_system_create");
    bench_check(casty_subscribe(sys, &casty_actor_started_t_type, on_started, NULL), "subscribe");
    unsigned char state[4096] = {0};
    long before = rss_kb();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 0; i < n; i++)
        bench_check(casty_spawn(sys, casty_receive(idle, state, state_bytes), NULL, NULL, NULL),
                    "casty_spawn");
    /* Waiting for the last start event: the one place this harness polls,
     * since the events come from the workers' own threads. */
    while (atomic_load_explicit(&started, memory_order_relaxed) < n)
        sched_yield();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long after = rss_kb();
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("RESULT lang=casty bench=idle_memory params=n=%" PRIu64 ",state=%" PRIu64
           " workers=%u msgs=%" PRIu64 " secs=%.6f msgs_per_sec=%.0f maxrss_kb=%ld\n",
           n, state_bytes, casty_system_workers(sys), n, secs, (double)n / secs, bench_maxrss_kb());
    printf("MEMORY bench=idle_memory n=%" PRIu64 " state_bytes=%" PRIu64 " bytes_per_actor=%.1f\n",
           n, state_bytes, (double)(after - before) * 1024.0 / (double)n);
    bench_check(casty_system_shutdown(sys), "casty_system_shutdown");
    return 0;
}
