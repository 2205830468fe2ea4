/* corelat [ROUNDS] — the machine's cache-line round trip between CPUs: a
 * probe of the hardware, not a casty benchmark (no actor system).
 *
 * Two threads, pinned to CPU A and CPU B, pass one cache line back and
 * forth ROUNDS times (default 100000): each waits for the other's value,
 * then writes its own. The time per round trip is what any hand-over
 * between two cores costs at least: a message to an actor running on the
 * other core, a stolen actor, a wake-up. On a virtual machine it also
 * depends on where the host puts the virtual CPUs at the moment: on the
 * 2-core development VMs it is ~100 ns at some times and ~450-550 ns at
 * others (two host cores sharing a cache, or not), and every benchmark at 2
 * workers moves with it (`big` 38 M msgs/s against 18 M). bench-compare
 * runs this before each benchmark at more than 1 worker so that its table
 * says which of the two a row ran under.
 *
 * A is the first CPU this process may run on; B is each of the others in
 * turn (up to 64 of them). Each pair is timed 5 times and its median kept;
 * one line:
 *
 *   RESULT lang=c bench=corelat params=rounds=<n> cpus=<a>-<b>,... pairs=<k>
 *          min_ns=<x> median_ns=<y> max_ns=<z>
 *
 * over the pairs (on one line). Exits 2 on a bad argument, 1 when fewer
 * than two CPUs are available or a thread cannot be pinned. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_PAIRS = 64, TIMINGS = 5 };
#define NOT_READY UINT64_MAX

struct probe {
    _Alignas(64) atomic_uint_fast64_t line; /* the line passed back and forth */
    _Alignas(64) uint64_t rounds;
    int cpu_b;
    int pin_error;
};

static int pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* B: answers each odd value v with v + 1. */
static void *responder(void *arg)
{
    struct probe *p = arg;
    p->pin_error = pin_to(p->cpu_b);
    atomic_store_explicit(&p->line, 0, memory_order_release); /* ready */
    for (uint64_t i = 0; i < p->rounds; i++) {
        uint64_t want = 2 * i + 1;
        while (atomic_load_explicit(&p->line, memory_order_acquire) != want)
            ;
        atomic_store_explicit(&p->line, want + 1, memory_order_release);
    }
    return NULL;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds per round trip between the calling thread's CPU and cpu_b,
 * or a negative value when B could not be pinned. */
static double time_pair(int cpu_b, uint64_t rounds)
{
    static struct probe p;
    atomic_store(&p.line, NOT_READY);
    p.rounds = rounds;
    p.cpu_b = cpu_b;
    p.pin_error = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, responder, &p) != 0)
        return -1;
    /* The clock starts once B runs where it was pinned. (A responder that
     * failed to pin still answers; the result is dropped.) */
    while (atomic_load_explicit(&p.line, memory_order_acquire) == NOT_READY)
        ;
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < rounds; i++) {
        atomic_store_explicit(&p.line, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&p.line, memory_order_acquire) != 2 * i + 2)
            ;
    }
    uint64_t elapsed = now_ns() - start;
    pthread_join(t, NULL);
    if (p.pin_error != 0)
        return -1;
    return (double)elapsed / (double)rounds;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    uint64_t rounds = 100000;
    if (argc > 2 || (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
        fprintf(stderr, "usage: corelat [ROUNDS]\n  cache-line round trip between the first "
                        "allowed CPU and each other one (ROUNDS 1..100000000, default 100000)\n");
        return argc == 2 ? 0 : 2;
    }
    if (argc == 2) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (errno || end == argv[1] || *end || argv[1][0] == '-' || v < 1 || v > 100000000) {
            fprintf(stderr, "corelat: ROUNDS must be 1..100000000, got '%s'\n", argv[1]);
            return 2;
        }
        rounds = v;
    }

    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
        perror("corelat: sched_getaffinity");
        return 1;
    }
    int cpus[MAX_PAIRS + 1], ncpus = 0;
    for (int c = 0; c < CPU_SETSIZE && ncpus <= MAX_PAIRS; c++)
        if (CPU_ISSET(c, &allowed))
            cpus[ncpus++] = c;
    if (ncpus < 2) {
        fprintf(stderr, "corelat: needs two CPUs, this process may use %d\n", ncpus);
        return 1;
    }
    if (pin_to(cpus[0]) != 0) {
        fprintf(stderr, "corelat: cannot pin to CPU %d\n", cpus[0]);
        return 1;
    }

    double pair_ns[MAX_PAIRS];
    char pairs[MAX_PAIRS * 12] = "";
    size_t used = 0;
    for (int i = 1; i < ncpus; i++) {
        double t[TIMINGS];
        for (int k = 0; k < TIMINGS; k++) {
            t[k] = time_pair(cpus[i], rounds);
            if (t[k] < 0) {
                fprintf(stderr, "corelat: cannot pin to CPU %d\n", cpus[i]);
                return 1;
            }
        }
        qsort(t, TIMINGS, sizeof t[0], cmp_double);
        pair_ns[i - 1] = t[TIMINGS / 2];
        used += (size_t)snprintf(pairs + used, sizeof pairs - used, "%s%d-%d", i > 1 ? "," : "",
                                 cpus[0], cpus[i]);
    }
    int npairs = ncpus - 1;
    qsort(pair_ns, (size_t)npairs, sizeof pair_ns[0], cmp_double);
    double median = npairs % 2 ? pair_ns[npairs / 2]
                               : (pair_ns[npairs / 2 - 1] + pair_ns[npairs / 2]) / 2;
    printf("RESULT lang=c bench=corelat params=rounds=%" PRIu64 " cpus=%s pairs=%d min_ns=%.0f "
           "median_ns=%.0f max_ns=%.0f\n",
           rounds, pairs, npairs, pair_ns[0], median, pair_ns[npairs - 1]);
    return 0;
}
