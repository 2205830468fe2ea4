/* Stress and function tests of the reactor (runtime/reactor.c) on its own:
 * four threads submit NOP and short TIMEOUT requests at once and every
 * completion reaches the right actor exactly once; real file I/O (write,
 * fdatasync, read back, close) goes through requests; a TIMEOUT request
 * is not early; destroy cancels what is in flight and delivers nothing
 * afterwards; a MADVISE request populates a mapping (the slab arenas'
 * prefault), also with no one to tell. Built against Criterion and, under `make tsan`, against the
 * shim in tests/tsan_shim (so only its subset of macros is used here). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "casty.h"
#include "helpers.h"
#include "reactor.h"

#define COLLECTORS 8u
#define THREADS 4u

static casty_system_t *new_system(void)
{
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.workers = 2;
    casty_system_t *sys = NULL;
    cr_assert_eq(casty_system_create(&cfg, &sys), 0);
    return sys;
}

/* ---- many producers -------------------------------------------------------------- */

static uint32_t per_thread;
static uint8_t *seen;       /* one byte per request: completions seen (atomic adds) */
static uint32_t misrouted;  /* completions that reached the wrong actor (atomic) */
static uint32_t bad_result; /* completions with an unexpected res/op (atomic) */
static latch_t completed = LATCH_INIT;
static casty_ref_t collectors[COLLECTORS];

static uint32_t collector_of(uint64_t tag)
{
    return (uint32_t)((tag >> 32) * 31u + (uint32_t)tag) % COLLECTORS;
}

static casty_behavior_t *collector(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    const casty__io_done_t *d = casty_msg_as(msg, casty__io_done_t);
    if (d == NULL)
        return casty_unhandled();
    uint32_t me = *(uint32_t *)state;
    uint32_t thread = (uint32_t)(d->tag >> 32), i = (uint32_t)d->tag;
    if (collector_of(d->tag) != me || thread >= THREADS || i >= per_thread) {
        __atomic_fetch_add(&misrouted, 1, __ATOMIC_RELAXED);
    } else {
        uint8_t want_op = (i % 2) ? CASTY_IO_TIMEOUT : CASTY_IO_NOP;
        if (d->res != 0 || d->op != want_op)
            __atomic_fetch_add(&bad_result, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&seen[(size_t)thread * per_thread + i], 1, __ATOMIC_RELAXED);
    }
    latch_add(&completed, 1);
    return casty_same();
}

struct producer {
    pthread_t thread;
    struct casty_reactor *r;
    uint32_t index;
    uint64_t seed;
    int failed_rc;
};

static void *produce(void *p)
{
    struct producer *a = p;
    uint64_t x = a->seed | 1;
    for (uint32_t i = 0; i < per_thread; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t tag = (uint64_t)a->index << 32 | i;
        struct casty__io_req req = {
            .op = (i % 2) ? CASTY_IO_TIMEOUT : CASTY_IO_NOP,
            .fd = -1,
            .timeout_ns = x % 50000, /* 0 .. 50 us */
            .tag = tag,
            .reply_to = collectors[collector_of(tag)],
        };
        int rc = casty__reactor_submit(a->r, &req);
        if (rc != 0) {
            a->failed_rc = rc;
            return NULL;
        }
    }
    return NULL;
}

Test(stress_reactor, four_producers_every_completion_once_to_its_actor)
{
    uint64_t seed = stress_seed("stress_reactor/four_producers");
    per_thread = (uint32_t)(50000 / stress_scale());
    size_t total = (size_t)THREADS * per_thread;
    seen = calloc(total, 1);
    cr_assert_not_null(seen);
    completed.count = 0;
    misrouted = bad_result = 0;

    casty_system_t *sys = new_system();
    for (uint32_t i = 0; i < COLLECTORS; i++)
        cr_assert_eq(casty_spawn(sys, casty_receive(collector, &i, sizeof i), NULL, NULL,
                                 &collectors[i]), 0);
    struct casty_reactor *r = NULL;
    cr_assert_eq(casty__reactor_create(&r), 0);
    cr_assert_not_null(r);

    struct producer prod[THREADS];
    for (uint32_t t = 0; t < THREADS; t++) {
        prod[t] = (struct producer){.r = r, .index = t, .seed = seed + t * 0x9e3779b97f4a7c15ull};
        cr_assert_eq(pthread_create(&prod[t].thread, NULL, produce, &prod[t]), 0);
    }
    for (uint32_t t = 0; t < THREADS; t++) {
        pthread_join(prod[t].thread, NULL);
        cr_assert_eq(prod[t].failed_rc, 0, "submit failed: %d", prod[t].failed_rc);
    }
    uint64_t got = latch_wait(&completed, total, 120000);
    cr_assert_eq(got, total, "seed %llu: %llu of %zu completions arrived",
                 (unsigned long long)seed, (unsigned long long)got, total);
    casty__reactor_destroy(r);
    /* Nothing extra after destroy either. */
    cr_assert_eq(latch_wait(&completed, total + 1, 20), total);
    cr_assert_eq(__atomic_load_n(&misrouted, __ATOMIC_RELAXED), 0);
    cr_assert_eq(__atomic_load_n(&bad_result, __ATOMIC_RELAXED), 0);
    for (size_t i = 0; i < total; i++)
        cr_assert_eq(__atomic_load_n(&seen[i], __ATOMIC_RELAXED), 1,
                     "seed %llu: request %zu completed %u times", (unsigned long long)seed, i,
                     (unsigned)seen[i]);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    free(seen);
}

/* ---- one request at a time ------------------------------------------------------ */

static pthread_mutex_t last_mu = PTHREAD_MUTEX_INITIALIZER;
static casty__io_done_t last_done;
static latch_t done_count = LATCH_INIT;

static casty_behavior_t *waiter(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)state;
    const casty__io_done_t *d = casty_msg_as(msg, casty__io_done_t);
    if (d == NULL)
        return casty_unhandled();
    pthread_mutex_lock(&last_mu);
    last_done = *d;
    pthread_mutex_unlock(&last_mu);
    latch_add(&done_count, 1);
    return casty_same();
}

/* Submits one request and waits for its completion; returns its res. */
static int32_t roundtrip(struct casty_reactor *r, casty_ref_t to, struct casty__io_req req)
{
    uint64_t before = latch_get(&done_count);
    req.reply_to = to;
    cr_assert_eq(casty__reactor_submit(r, &req), 0);
    cr_assert_eq(latch_wait(&done_count, before + 1, 10000), before + 1,
                 "no completion for op %u", (unsigned)req.op);
    pthread_mutex_lock(&last_mu);
    casty__io_done_t d = last_done;
    pthread_mutex_unlock(&last_mu);
    cr_assert_eq(d.tag, req.tag);
    cr_assert_eq(d.op, req.op);
    return d.res;
}

/* A system with a waiter actor, and a reactor of the test's own. */
static void start_waiter(casty_system_t **sys, casty_ref_t *w, struct casty_reactor **r)
{
    *sys = new_system();
    cr_assert_eq(casty_spawn(*sys, casty_receive(waiter, NULL, 0), NULL, NULL, w), 0);
    *r = NULL;
    cr_assert_eq(casty__reactor_create(r), 0);
}

Test(stress_reactor, file_write_fdatasync_read_back_close)
{
    uint64_t seed = stress_seed("stress_reactor/file_io");
    casty_system_t *sys;
    casty_ref_t w;
    struct casty_reactor *r;
    start_waiter(&sys, &w, &r);

    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/casty-reactor-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);

    enum { LEN = 1 << 16 };
    unsigned char *out = malloc(LEN), *in = malloc(LEN);
    cr_assert_not_null(out);
    cr_assert_not_null(in);
    uint64_t x = seed | 1;
    for (size_t i = 0; i < LEN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (unsigned char)x;
    }
    memset(in, 0, LEN);

    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_WRITE, .fd = fd, .buf = out,
                                                        .len = LEN, .offset = 0, .tag = 1}),
                 LEN);
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_FDATASYNC, .fd = fd,
                                                        .tag = 2}),
                 0);
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_READ, .fd = fd, .buf = in,
                                                        .len = LEN, .offset = 0, .tag = 3}),
                 LEN);
    cr_assert_eq(memcmp(in, out, LEN), 0, "read back differs from what was written");
    /* An append at the file position (offset -1), then fsync. */
    cr_assert_eq(lseek(fd, LEN, SEEK_SET), (off_t)LEN);
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_WRITE, .fd = fd, .buf = out,
                                                        .len = 100, .offset = (uint64_t)-1,
                                                        .tag = 4}),
                 100);
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_FSYNC, .fd = fd, .tag = 5}),
                 0);
    cr_assert_eq(lseek(fd, 0, SEEK_END), (off_t)LEN + 100);
    /* Reading past the end is a short read of 0 bytes, not an error. */
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_READ, .fd = fd, .buf = in,
                                                        .len = 10, .offset = 10 * LEN, .tag = 6}),
                 0);
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_CLOSE, .fd = fd, .tag = 7}),
                 0);
    cr_assert_eq(fcntl(fd, F_GETFD), -1, "the reactor closed the descriptor");
    /* Errors come back as -errno in res. */
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_READ, .fd = fd, .buf = in,
                                                        .len = 10, .tag = 8}),
                 -EBADF);

    casty__reactor_destroy(r);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    free(out);
    free(in);
}

/* Pages of [p, p + bytes) resident now (mincore). */
static size_t resident_pages(void *p, size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = bytes / page, resident = 0;
    unsigned char *vec = malloc(n);
    cr_assert_not_null(vec);
    cr_assert_eq(mincore(p, bytes, vec), 0);
    for (size_t i = 0; i < n; i++)
        resident += vec[i] & 1;
    free(vec);
    return resident;
}

/* CASTY_IO_MADVISE with MADV_POPULATE_WRITE makes every page of a fresh
 * mapping resident before its completion; with CASTY_REF_NONE as reply_to
 * (how the slab arenas submit it) it still does, and its completion, told
 * to nobody, counts no dead letter. */
Test(stress_reactor, madvise_populates_with_or_without_reply)
{
    casty_system_t *sys;
    casty_ref_t w;
    struct casty_reactor *r;
    start_waiter(&sys, &w, &r);
    enum { BYTES = 1 << 20 };
    size_t pages = BYTES / (size_t)sysconf(_SC_PAGESIZE);
    void *a = mmap(NULL, BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *b = mmap(NULL, BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(a != MAP_FAILED && b != MAP_FAILED);
    cr_assert_eq(resident_pages(a, BYTES), 0);
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_MADVISE, .fd = -1,
                                                        .buf = a, .len = BYTES,
                                                        .offset = MADV_POPULATE_WRITE, .tag = 1}),
                 0);
    cr_assert_eq(resident_pages(a, BYTES), pages);

    cr_assert_eq(resident_pages(b, BYTES), 0);
    struct casty__io_req silent = {.op = CASTY_IO_MADVISE, .fd = -1, .buf = b, .len = BYTES,
                                   .offset = MADV_POPULATE_WRITE, .reply_to = CASTY_REF_NONE};
    cr_assert_eq(casty__reactor_submit(r, &silent), 0);
    uint64_t deadline = now_ns() + 10ull * 1000000000ull;
    while (resident_pages(b, BYTES) < pages && now_ns() < deadline)
        sched_yield();
    cr_assert_eq(resident_pages(b, BYTES), pages);
    /* A request the reactor must refuse: no address. */
    struct casty__io_req bad = {.op = CASTY_IO_MADVISE, .fd = -1, .len = BYTES};
    cr_assert_eq(casty__reactor_submit(r, &bad), CASTY_EINVAL);

    casty__reactor_destroy(r);
    casty_system_stats_t st;
    casty_system_stats(sys, &st);
    cr_assert_eq(st.dead_letters, 0);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    munmap(a, BYTES);
    munmap(b, BYTES);
}

Test(stress_reactor, socket_send_recv_and_timeout_not_early)
{
    casty_system_t *sys;
    casty_ref_t w;
    struct casty_reactor *r;
    start_waiter(&sys, &w, &r);

    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char msg[] = "hello, reactor", buf[64];
    memset(buf, 0, sizeof buf);
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_SEND, .fd = sv[0],
                                                        .buf = msg, .len = sizeof msg, .tag = 1}),
                 (int32_t)sizeof msg);
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_RECV, .fd = sv[1],
                                                        .buf = buf, .len = sizeof buf, .tag = 2}),
                 (int32_t)sizeof msg);
    cr_assert_eq(memcmp(buf, msg, sizeof msg), 0);

    uint64_t t0 = now_ns();
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_TIMEOUT,
                                                        .timeout_ns = 20000000, .tag = 3}),
                 0);
    cr_assert_geq(now_ns() - t0, 20000000ull, "a 20 ms timeout completed early");

    casty__reactor_destroy(r);
    close(sv[0]);
    close(sv[1]);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(stress_reactor, destroy_cancels_in_flight_and_delivers_nothing_after)
{
    casty_system_t *sys;
    casty_ref_t w;
    struct casty_reactor *r;
    start_waiter(&sys, &w, &r);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char buf[16];

    uint64_t base = latch_get(&done_count);
    /* A recv that never gets data and a 60 s timeout, then a NOP: one
     * producer's requests enter the ring in order, so once the NOP has
     * completed the other two are in flight in the kernel. */
    struct casty__io_req recv = {.op = CASTY_IO_RECV, .fd = sv[1], .buf = buf, .len = sizeof buf,
                                 .tag = 100, .reply_to = w};
    struct casty__io_req slow = {.op = CASTY_IO_TIMEOUT, .timeout_ns = 60000000000ull, .tag = 101,
                                 .reply_to = w};
    cr_assert_eq(casty__reactor_submit(r, &recv), 0);
    cr_assert_eq(casty__reactor_submit(r, &slow), 0);
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_NOP, .tag = 102}), 0);
    cr_assert_eq(latch_get(&done_count), base + 1);

    uint64_t t0 = now_ns();
    casty__reactor_destroy(r);
    cr_assert_lt(now_ns() - t0, 5000000000ull, "destroy waited for the timeout");
    /* The thread is joined: nothing can arrive any more, and the kernel holds
     * no pointer into buf (writing to the peer reaches no pending recv). */
    cr_assert_eq(write(sv[0], "x", 1), 1);
    cr_assert_eq(latch_wait(&done_count, base + 2, 50), base + 1);
    close(sv[0]);
    close(sv[1]);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

/* Destroy with more in flight than the completion ring has room for
 * cancellations, plus more still queued: it returns promptly and delivers
 * nothing. */
Test(stress_reactor, destroy_with_hundreds_in_flight)
{
    casty_system_t *sys;
    casty_ref_t w;
    struct casty_reactor *r;
    start_waiter(&sys, &w, &r);
    uint64_t base = latch_get(&done_count);
    struct casty__io_req slow = {.op = CASTY_IO_TIMEOUT, .timeout_ns = 60000000000ull,
                                 .reply_to = w};
    /* 400 fit in the ring at once: after the NOP behind them completes,
     * all 400 are in the kernel. */
    for (uint32_t i = 0; i < 400; i++) {
        slow.tag = 1000 + i;
        cr_assert_eq(casty__reactor_submit(r, &slow), 0);
    }
    cr_assert_eq(roundtrip(r, w, (struct casty__io_req){.op = CASTY_IO_NOP, .tag = 999}), 0);
    for (uint32_t i = 400; i < 2000; i++) {
        slow.tag = 1000 + i;
        cr_assert_eq(casty__reactor_submit(r, &slow), 0);
    }
    uint64_t t0 = now_ns();
    casty__reactor_destroy(r);
    cr_assert_lt(now_ns() - t0, 5000000000ull, "destroy waited for the timeouts");
    cr_assert_eq(latch_wait(&done_count, base + 2, 50), base + 1);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(stress_reactor, bad_requests_are_refused)
{
    struct casty_reactor *r = NULL;
    cr_assert_eq(casty__reactor_create(&r), 0);
    struct casty__io_req req = {.op = 200};
    cr_assert_eq(casty__reactor_submit(r, &req), CASTY_EINVAL);
    cr_assert_eq(casty__reactor_submit(r, NULL), CASTY_EINVAL);
    cr_assert_eq(casty__reactor_submit(NULL, &req), CASTY_EINVAL);
    req = (struct casty__io_req){.op = CASTY_IO_READ, .fd = -1, .len = 1};
    cr_assert_eq(casty__reactor_submit(r, &req), CASTY_EINVAL);
    req = (struct casty__io_req){.op = CASTY_IO_WRITE, .fd = 0, .buf = NULL, .len = 8};
    cr_assert_eq(casty__reactor_submit(r, &req), CASTY_EINVAL);
    req = (struct casty__io_req){.op = CASTY_IO_CONNECT, .fd = 0, .buf = NULL, .len = 0};
    cr_assert_eq(casty__reactor_submit(r, &req), CASTY_EINVAL);
    casty__reactor_destroy(r);
    casty__reactor_destroy(NULL);
}

/* ---- provided receive buffers ------------------------------------------------------- */

static pthread_mutex_t got_mu = PTHREAD_MUTEX_INITIALIZER;
static char got_bytes[64];
static int32_t got_res;
static bool got_lent;
static latch_t got_count = LATCH_INIT;

/* Copies the lent bytes inside the handler: the buffer goes back to the
 * ring when the message is dropped, right after. */
static casty_behavior_t *copier(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)state;
    const casty__io_done_t *d = casty_msg_as(msg, casty__io_done_t);
    if (d == NULL)
        return casty_unhandled();
    pthread_mutex_lock(&got_mu);
    got_res = d->res;
    got_lent = d->data != NULL && d->lender != NULL;
    memset(got_bytes, 0, sizeof got_bytes);
    if (d->data && d->res > 0 && d->res <= (int32_t)sizeof got_bytes)
        memcpy(got_bytes, d->data, (size_t)d->res);
    pthread_mutex_unlock(&got_mu);
    latch_add(&got_count, 1);
    return casty_same();
}

Test(stress_reactor, provided_buffer_receives_lend_and_give_back)
{
    casty_system_t *sys = new_system();
    casty_ref_t c;
    cr_assert_eq(casty_spawn(sys, casty_receive(copier, NULL, 0), NULL, NULL, &c), 0);
    struct casty_reactor *r = NULL;
    cr_assert_eq(casty__reactor_create(&r), 0);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    /* Many more receives than the ring has buffers: each must come back. */
    const uint32_t rounds = CASTY__RECV_BUFS * 8;
    for (uint32_t i = 0; i < rounds; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "chunk %u", i);
        cr_assert_eq(write(sv[0], text, (size_t)n), n);
        uint64_t before = latch_get(&got_count);
        struct casty__io_req q = {.op = CASTY_IO_RECV_PROVIDED, .fd = sv[1], .tag = i,
                                  .reply_to = c};
        cr_assert_eq(casty__reactor_submit(r, &q), 0);
        cr_assert_eq(latch_wait(&got_count, before + 1, 10000), before + 1);
        pthread_mutex_lock(&got_mu);
        int32_t res = got_res;
        bool lent = got_lent;
        bool same = res == n && memcmp(got_bytes, text, (size_t)n) == 0;
        pthread_mutex_unlock(&got_mu);
        if (res == -EINVAL && i == 0) /* a kernel without provided buffer rings */
            break;
        cr_assert(lent && same, "round %u: res %d lent %d", i, res, lent);
    }
    /* End of stream: res 0, nothing lent. */
    close(sv[0]);
    uint64_t before = latch_get(&got_count);
    struct casty__io_req q = {.op = CASTY_IO_RECV_PROVIDED, .fd = sv[1], .tag = 9,
                              .reply_to = c};
    cr_assert_eq(casty__reactor_submit(r, &q), 0);
    cr_assert_eq(latch_wait(&got_count, before + 1, 10000), before + 1);
    pthread_mutex_lock(&got_mu);
    cr_assert(got_res == 0 || got_res == -EINVAL);
    cr_assert(!got_lent);
    pthread_mutex_unlock(&got_mu);
    /* The system first: a completion's buffer goes back to the reactor when
     * its message is released, which can be after the handler ran (the
     * node stays the mailbox's head until the actor moves past it or goes
     * idle), so the reactor must outlive the actor's messages. */
    cr_assert_eq(casty_system_shutdown(sys), 0);
    casty__reactor_destroy(r);
    close(sv[1]);
}
