/* The reactor: one thread per system that owns an io_uring. It turns
 * requests from any thread (reactor.h) into SQEs, sends each completion to
 * the request's reply_to as a casty__io_done_t, and keeps the one timeout
 * the timer service runs on (the clock hook in reactor.h). It does not know what the
 * requests are for, owns no buffers, and never blocks anywhere but in
 * io_uring_enter.
 *
 * Threads. casty__reactor_submit, casty__reactor_clock_changed and
 * casty__reactor_set_clock run on any thread; everything else runs on the
 * reactor thread, which alone touches the ring once create has returned.
 *
 * Requests travel through a Treiber stack: a producer pushes its node with
 * a CAS; the reactor takes the whole stack with one exchange and reverses
 * it, so each producer's requests reach the ring in the order it submitted
 * them. A push that finds the stack empty writes the eventfd; one that
 * finds it non-empty need not: the push that made it non-empty has written
 * (or is about to write) the eventfd, and the reactor takes the whole stack
 * after that wake-up. The reactor always keeps one read of the eventfd in
 * the ring, so a wake-up completes its io_uring_enter.
 *
 * The loop, in phases (reactor_main): take the requests pushed since last
 * time; turn as many into SQEs as the completion ring has room for (so it
 * never overflows); call the clock function if its timeout expired or a
 * caller said its deadline moved; re-arm the one clock timeout if the
 * deadline changed; submit and wait for at least one completion; handle
 * the completions. With nothing in flight but the eventfd read and no
 * deadline, the wait has no timeout: an idle reactor uses no CPU.
 *
 * SQE user_data: a request's node pointer (malloc'd, so 16-byte aligned and
 * its low bits 0), or a small tag in the low 3 bits for the reactor's own
 * operations (the eventfd read, the clock timeout with its generation in
 * the high bits, and fire-and-forget removes and cancels).
 *
 * Shutdown: destroy sets `closing` and wakes the thread, which frees what
 * it had not submitted, cancels everything in flight (requests, the
 * eventfd read, the clock timeout) and reaps until no SQE is outstanding,
 * delivering nothing, so the kernel holds no pointer into anyone's buffers
 * when destroy returns. Nodes still on the stack are freed after the join. */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "reactor.h"

static void io_done_drop(void *value)
{
    casty__io_done_t *d = value;
    if (d->lender)
        casty__reactor_buf_return(d->lender, d->buf_id);
}
const casty_type_t casty__io_done_t_type = {"casty__io_done_t", sizeof(casty__io_done_t), NULL,
                                            NULL, io_done_drop, CASTY_TYPE_LOCAL};

#define RING_ENTRIES 256u
/* Completion-ring slots kept for the reactor's own SQEs (eventfd read,
 * clock timeout, its remove, cancels), so requests never overflow it. */
#define RESERVED_CQES 8u

enum ud_tag {
    UD_OP = 0,     /* a request: user_data is its struct op */
    UD_WAKE = 1,   /* the eventfd read */
    UD_CLOCK = 2,  /* the clock timeout; generation << 3 */
    UD_IGNORE = 3, /* a remove or cancel: nothing to do on completion */
};
#define UD_TAG_MASK 7u

struct op {
    struct op *next;                    /* stack / pending list */
    struct op *inext, **ipprev;         /* in-flight list (reactor thread) */
    struct casty__io_req req;           /* a copy of the request */
    struct __kernel_timespec ts;        /* CASTY_IO_TIMEOUT */
    socklen_t addrlen;                  /* CASTY_IO_ACCEPT: in/out address length */
    bool cancelling;                    /* drain: a cancel for it is in the ring */
};

struct casty_reactor {
    /* shared with other threads */
    struct op *incoming;      /* Treiber stack of requests; atomic */
    uint32_t closing;         /* set once by destroy; atomic */
    uint32_t clock_changed;   /* 1 = call the clock function soon; atomic */
    int efd;                  /* eventfd: the wake-up */
    pthread_mutex_t clock_lock; /* guards clock_fn/clock_ctx and each call */
    casty__reactor_clock_fn clock_fn;
    void *clock_ctx;

    /* reactor thread only (and create/destroy around its life) */
    struct io_uring ring;
    bool short_waits; /* under Valgrind: see wait_and_reap */
    pthread_t thread;
    struct op *pending_head, *pending_tail; /* taken off the stack, not yet in the ring */
    struct op *inflight;      /* requests in the ring */
    uint32_t outstanding;     /* SQEs whose CQE has not been handled */
    uint32_t cq_entries;
    uint64_t wake_buf;        /* the eventfd read's target */
    bool wake_armed;
    bool clock_due;           /* the clock timeout expired */
    uint64_t clock_want;      /* deadline the clock function returned */
    uint64_t clock_armed;     /* deadline of the armed timeout, or CASTY__NO_DEADLINE */
    uint64_t clock_gen;       /* generation of the armed timeout */
    struct __kernel_timespec clock_ts[2]; /* by generation parity: never rewritten before submission */
    /* provided receive buffers, set up on the first CASTY_IO_RECV_PROVIDED;
     * buffers are lent to completion messages and given back from any
     * thread under buf_lock (the ring's tail has one writer at a time) */
    struct io_uring_buf_ring *bufring;
    unsigned char *bufs;
    int bufs_state; /* 0 not tried, 1 ready, -1 unavailable */
    pthread_mutex_t buf_lock;
};

#define RECV_BGID 1

uint64_t casty__reactor_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct __kernel_timespec ns_to_ts(uint64_t ns)
{
    return (struct __kernel_timespec){.tv_sec = (long long)(ns / 1000000000ull),
                                      .tv_nsec = (long long)(ns % 1000000000ull)};
}

static void wake(struct casty_reactor *r)
{
    uint64_t one = 1;
    /* Only fails with EAGAIN when the counter would overflow, which the
     * reactor's reads prevent; a lost write would be redundant anyway. */
    while (write(r->efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* ---- any thread ----------------------------------------------------------------- */

static bool valid_request(const struct casty__io_req *q)
{
    switch (q->op) {
    case CASTY_IO_NOP:
    case CASTY_IO_TIMEOUT:
        return true;
    case CASTY_IO_FSYNC:
    case CASTY_IO_FDATASYNC:
    case CASTY_IO_CLOSE:
    case CASTY_IO_ACCEPT:
    case CASTY_IO_ACCEPT_MULTI:
    case CASTY_IO_RECV_PROVIDED:
        return q->fd >= 0;
    case CASTY_IO_READ:
    case CASTY_IO_WRITE:
    case CASTY_IO_RECV:
    case CASTY_IO_SEND:
        return q->fd >= 0 && (q->buf != NULL || q->len == 0);
    case CASTY_IO_CONNECT:
        return q->fd >= 0 && q->buf != NULL && q->len > 0;
    case CASTY_IO_MADVISE:
        return q->buf != NULL && q->len > 0;
    default:
        return false;
    }
}

int casty__reactor_submit(struct casty_reactor *r, const struct casty__io_req *req)
{
    if (r == NULL || req == NULL || !valid_request(req))
        return CASTY_EINVAL;
    /* Acquire: pairs with destroy's release store; a late submit is refused
     * rather than queued behind the final drain. */
    if (load_acquire(&r->closing))
        return CASTY_ESHUTDOWN;
    struct op *op = malloc(sizeof *op);
    if (op == NULL)
        return CASTY_ENOMEM;
    memset(op, 0, sizeof *op);
    op->req = *req;
    /* Relaxed: only a first guess for the CAS, which re-reads on failure.
     * op->next is published by the CAS, so its store can be relaxed too. */
    struct op *top = load_relaxed(&r->incoming);
    do {
        store_relaxed(&op->next, top);
        /* Full barrier (lock cmpxchg): publishes the node's contents;
         * pairs with the reactor's exchange in take_requests. */
    } while (!ck_pr_cas_ptr_value(&r->incoming, top, op, &top));
    if (top == NULL)
        wake(r);
    return 0;
}

void casty__reactor_clock_changed(struct casty_reactor *r)
{
    /* Full barrier (xchg); pairs with the reactor's exchange in run_clock.
     * A flag already set means a wake-up is on its way. */
    if (exchange_seqcst(&r->clock_changed, 1) == 0)
        wake(r);
}

void casty__reactor_set_clock(struct casty_reactor *r, casty__reactor_clock_fn fn, void *ctx)
{
    pthread_mutex_lock(&r->clock_lock);
    r->clock_fn = fn;
    r->clock_ctx = ctx;
    pthread_mutex_unlock(&r->clock_lock);
    casty__reactor_clock_changed(r);
}

/* ---- the reactor thread ----------------------------------------------------------- */

/* An SQE, handing the queued ones to the kernel first if the ring is full. */
static struct io_uring_sqe *get_sqe(struct casty_reactor *r)
{
    struct io_uring_sqe *sqe;
    while ((sqe = io_uring_get_sqe(&r->ring)) == NULL)
        io_uring_submit(&r->ring);
    r->outstanding++;
    return sqe;
}

static void arm_wake(struct casty_reactor *r)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    io_uring_prep_read(sqe, r->efd, &r->wake_buf, sizeof r->wake_buf, 0);
    io_uring_sqe_set_data64(sqe, UD_WAKE);
    r->wake_armed = true;
}

static void take_requests(struct casty_reactor *r)
{
    /* Relaxed: a cheap look before the exchange. A push it misses wrote the
     * eventfd after pushing, which brings the reactor round again. */
    if (load_relaxed(&r->incoming) == NULL)
        return;
    /* Full barrier (xchg): acquires the nodes pushed by submit's CAS. */
    struct op *stack = exchange_seqcst(&r->incoming, NULL);
    struct op *fifo = NULL, *last = stack;
    while (stack) {
        struct op *next = stack->next;
        stack->next = fifo;
        fifo = stack;
        stack = next;
    }
    if (r->pending_tail)
        r->pending_tail->next = fifo;
    else
        r->pending_head = fifo;
    r->pending_tail = last;
}

static void prep_request(struct io_uring_sqe *sqe, struct op *op)
{
    struct casty__io_req *q = &op->req;
    switch (q->op) {
    case CASTY_IO_NOP:
        io_uring_prep_nop(sqe);
        break;
    case CASTY_IO_READ:
        io_uring_prep_read(sqe, q->fd, q->buf, q->len, q->offset);
        break;
    case CASTY_IO_WRITE:
        io_uring_prep_write(sqe, q->fd, q->buf, q->len, q->offset);
        break;
    case CASTY_IO_FSYNC:
        io_uring_prep_fsync(sqe, q->fd, 0);
        break;
    case CASTY_IO_FDATASYNC:
        io_uring_prep_fsync(sqe, q->fd, IORING_FSYNC_DATASYNC);
        break;
    case CASTY_IO_ACCEPT:
        op->addrlen = (socklen_t)q->len;
        io_uring_prep_accept(sqe, q->fd, q->buf, q->buf ? &op->addrlen : NULL, SOCK_CLOEXEC);
        break;
    case CASTY_IO_ACCEPT_MULTI:
        io_uring_prep_multishot_accept(sqe, q->fd, NULL, NULL, SOCK_CLOEXEC);
        break;
    case CASTY_IO_RECV:
        io_uring_prep_recv(sqe, q->fd, q->buf, q->len, 0);
        break;
    case CASTY_IO_RECV_PROVIDED:
        io_uring_prep_recv(sqe, q->fd, NULL, CASTY__RECV_BUF_SIZE, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = RECV_BGID;
        break;
    case CASTY_IO_SEND:
        io_uring_prep_send(sqe, q->fd, q->buf, q->len, MSG_NOSIGNAL);
        break;
    case CASTY_IO_CONNECT:
        io_uring_prep_connect(sqe, q->fd, q->buf, (socklen_t)q->len);
        break;
    case CASTY_IO_CLOSE:
        io_uring_prep_close(sqe, q->fd);
        break;
    case CASTY_IO_TIMEOUT:
        op->ts = ns_to_ts(q->timeout_ns);
        io_uring_prep_timeout(sqe, &op->ts, 0, 0);
        break;
    case CASTY_IO_MADVISE:
        io_uring_prep_madvise(sqe, q->buf, (off_t)q->len, (int)q->offset);
        break;
    }
    io_uring_sqe_set_data(sqe, op);
}

static bool bufs_ready(struct casty_reactor *r);
static void deliver(struct casty_reactor *r, struct op *op, int32_t res, bool more, bool lent,
                    uint16_t bid);

/* Moves pending requests into the ring while the completion ring has room. */
static void submit_requests(struct casty_reactor *r)
{
    while (r->pending_head && r->outstanding + RESERVED_CQES < r->cq_entries) {
        struct op *op = r->pending_head;
        r->pending_head = op->next;
        if (r->pending_head == NULL)
            r->pending_tail = NULL;
        if (op->req.op == CASTY_IO_RECV_PROVIDED && !bufs_ready(r)) {
            deliver(r, op, -EINVAL, false, false, 0); /* no provided buffers here */
            free(op);
            continue;
        }
        prep_request(get_sqe(r), op);
        op->inext = r->inflight;
        if (r->inflight)
            r->inflight->ipprev = &op->inext;
        r->inflight = op;
        op->ipprev = &r->inflight;
    }
}

/* Calls the clock function when its timeout expired or its owner said the
 * deadline moved. */
static void run_clock(struct casty_reactor *r)
{
    /* Relaxed look, then a full barrier (xchg) that pairs with the one in
     * casty__reactor_clock_changed; a flag set after the look comes with an
     * eventfd write, so it is seen on the next round. */
    if (load_relaxed(&r->clock_changed) && exchange_seqcst(&r->clock_changed, 0))
        r->clock_due = true;
    if (!r->clock_due)
        return;
    r->clock_due = false;
    uint64_t want = CASTY__NO_DEADLINE;
    pthread_mutex_lock(&r->clock_lock);
    if (r->clock_fn)
        want = r->clock_fn(r->clock_ctx, casty__reactor_now_ns());
    pthread_mutex_unlock(&r->clock_lock);
    r->clock_want = want;
}

/* Keeps exactly one absolute timeout armed, for clock_want. */
static void arm_clock(struct casty_reactor *r)
{
    if (r->clock_want == r->clock_armed)
        return;
    struct io_uring_sqe *sqe;
    if (r->clock_armed != CASTY__NO_DEADLINE) {
        sqe = get_sqe(r);
        io_uring_prep_timeout_remove(sqe, r->clock_gen << 3 | UD_CLOCK, 0);
        io_uring_sqe_set_data64(sqe, UD_IGNORE);
        r->clock_armed = CASTY__NO_DEADLINE;
    }
    if (r->clock_want == CASTY__NO_DEADLINE)
        return;
    r->clock_gen++;
    struct __kernel_timespec *ts = &r->clock_ts[r->clock_gen & 1];
    *ts = ns_to_ts(r->clock_want);
    sqe = get_sqe(r);
    io_uring_prep_timeout(sqe, ts, 0, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(sqe, r->clock_gen << 3 | UD_CLOCK);
    r->clock_armed = r->clock_want;
}

static void deliver(struct casty_reactor *r, struct op *op, int32_t res, bool more, bool lent,
                    uint16_t bid);

static void complete_request(struct casty_reactor *r, struct op *op, int32_t res,
                             bool deliver_it, bool lent, uint16_t bid)
{
    *op->ipprev = op->inext;
    if (op->inext)
        op->inext->ipprev = op->ipprev;
    if (op->req.op == CASTY_IO_TIMEOUT && res == -ETIME)
        res = 0;
    if (deliver_it)
        deliver(r, op, res, false, lent, bid);
    free(op);
}

/* ---- provided receive buffers ---------------------------------------------------- */

/* Reactor thread: registers the buffer ring on first use. */
static bool bufs_ready(struct casty_reactor *r)
{
    if (r->bufs_state == 0) {
        r->bufs_state = -1;
        size_t ring_bytes = CASTY__RECV_BUFS * sizeof(struct io_uring_buf);
        void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
                         -1, 0);
        if (mem == MAP_FAILED)
            return false;
        struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem,
                                       .ring_entries = CASTY__RECV_BUFS,
                                       .bgid = RECV_BGID};
        r->bufs = malloc((size_t)CASTY__RECV_BUFS * CASTY__RECV_BUF_SIZE);
        if (r->bufs == NULL || io_uring_register_buf_ring(&r->ring, &reg, 0) != 0) {
            /* A kernel without provided buffer rings (before 5.19). */
            free(r->bufs);
            r->bufs = NULL;
            munmap(mem, ring_bytes);
        } else {
            r->bufring = mem;
            io_uring_buf_ring_init(r->bufring);
            for (unsigned i = 0; i < CASTY__RECV_BUFS; i++)
                io_uring_buf_ring_add(r->bufring, r->bufs + (size_t)i * CASTY__RECV_BUF_SIZE,
                                      CASTY__RECV_BUF_SIZE, (unsigned short)i,
                                      io_uring_buf_ring_mask(CASTY__RECV_BUFS), (int)i);
            io_uring_buf_ring_advance(r->bufring, CASTY__RECV_BUFS);
            r->bufs_state = 1;
        }
    }
    return r->bufs_state == 1;
}

void casty__reactor_buf_return(struct casty_reactor *r, uint16_t buf_id)
{
    pthread_mutex_lock(&r->buf_lock);
    io_uring_buf_ring_add(r->bufring, r->bufs + (size_t)buf_id * CASTY__RECV_BUF_SIZE,
                          CASTY__RECV_BUF_SIZE, buf_id, io_uring_buf_ring_mask(CASTY__RECV_BUFS),
                          0);
    /* The advance is a release store of the tail: the kernel sees the entry. */
    io_uring_buf_ring_advance(r->bufring, 1);
    pthread_mutex_unlock(&r->buf_lock);
}

/* Delivers one completion of `op` (more: the request goes on), lending it
 * provided buffer `bid` when `lent`. */
static void deliver(struct casty_reactor *r, struct op *op, int32_t res, bool more, bool lent,
                    uint16_t bid)
{
    casty__io_done_t done;
    memset(&done, 0, sizeof done);
    done.tag = op->req.tag;
    done.res = res;
    done.op = op->req.op;
    done.more = more;
    if (lent) {
        done.buf_id = bid;
        done.data = r->bufs + (size_t)bid * CASTY__RECV_BUF_SIZE;
        done.lender = r;
    }
    /* The message owns the loan from here (its drop gives the buffer back,
     * also when the reply_to is gone and it becomes a dead letter). A
     * reply_to whose system is gone answers CASTY_ESHUTDOWN: nothing took
     * it (nor on any other error), so give it back here. */
    if (casty_tell(op->req.reply_to, &casty__io_done_t_type, &done) != 0 && lent)
        casty__reactor_buf_return(r, bid);
}

static void handle_cqe(struct casty_reactor *r, uint64_t ud, int32_t res, uint32_t flags,
                       bool closing)
{
    if ((ud & UD_TAG_MASK) == UD_OP) {
        struct op *op = (struct op *)(uintptr_t)ud;
        bool lent = (flags & IORING_CQE_F_BUFFER) != 0;
        uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
        if (lent && (closing || res <= 0)) {
            casty__reactor_buf_return(r, bid); /* nothing to hand over */
            lent = false;
        }
        if (flags & IORING_CQE_F_MORE) {
            if (!closing)
                deliver(r, op, res, true, lent, bid);
            return;
        }
        r->outstanding--;
        complete_request(r, op, res, !closing, lent, bid);
        return;
    }
    r->outstanding--;
    switch (ud & UD_TAG_MASK) {
    case UD_WAKE:
        r->wake_armed = false;
        if (!closing)
            arm_wake(r);
        break;
    case UD_CLOCK:
        /* The armed timeout's completion, whatever its result, means
         * nothing is armed any more; older generations are stale. */
        if ((ud >> 3) == r->clock_gen)
            r->clock_armed = CASTY__NO_DEADLINE;
        /* -ETIME: the deadline passed (a stale generation that fired before
         * its remove only costs one early call). -ECANCELED: removed. */
        if (res == -ETIME && !closing)
            r->clock_due = true;
        break;
    default:
        break;
    }
}

/* Submits what is queued, waits for at least one completion and handles
 * every completion there is. */
static void wait_and_reap(struct casty_reactor *r, bool closing)
{
    int rc;
    if (r->short_waits) {
        /* Valgrind runs one thread at a time and keeps its lock across
         * io_uring_enter: every other thread would stop until a completion
         * came. There, wait 1 ms at a time and yield (a point where
         * Valgrind lets the other threads run) in between. */
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
        struct io_uring_cqe *first;
        rc = io_uring_submit_and_wait_timeout(&r->ring, &first, 1, &ts, NULL);
        sched_yield();
    } else {
        rc = io_uring_submit_and_wait(&r->ring, 1);
    }
    /* -EINTR: a signal; -EBUSY/-EAGAIN: the kernel wants the completion ring
     * drained first. Either way handle what is there and come back. */
    (void)rc;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&r->ring, head, cqe)
    {
        handle_cqe(r, cqe->user_data, cqe->res, cqe->flags, closing);
        n++;
    }
    io_uring_cq_advance(&r->ring, n);
}

/* The shutdown phase: nothing more is delivered; everything in flight is
 * cancelled and reaped. Each cancel adds a completion of its own, so they
 * are issued only while the completion ring has room, reaping in between.
 * Cancels may use the reserve that requests leave free, so the first round
 * always issues some, and each round's cancels complete promptly: the
 * wait between rounds never blocks on a long request. */
static void drain(struct casty_reactor *r)
{
    while (r->pending_head) {
        struct op *op = r->pending_head;
        r->pending_head = op->next;
        free(op);
    }
    r->pending_tail = NULL;
    r->clock_want = CASTY__NO_DEADLINE;
    arm_clock(r);
    struct io_uring_sqe *sqe;
    if (r->wake_armed) {
        sqe = get_sqe(r);
        io_uring_prep_cancel64(sqe, UD_WAKE, 0);
        io_uring_sqe_set_data64(sqe, UD_IGNORE);
    }
    for (bool budget_left = false; !budget_left;) {
        budget_left = true;
        for (struct op *op = r->inflight; op; op = op->inext) {
            if (op->cancelling)
                continue;
            if (r->outstanding >= r->cq_entries) {
                budget_left = false;
                break;
            }
            sqe = get_sqe(r);
            io_uring_prep_cancel(sqe, op, 0);
            io_uring_sqe_set_data64(sqe, UD_IGNORE);
            op->cancelling = true;
        }
        if (!budget_left)
            wait_and_reap(r, true); /* completed requests leave the list */
    }
    /* A request that was running and could not be cancelled (-EALREADY)
     * still completes: wait for it. */
    while (r->outstanding > 0)
        wait_and_reap(r, true);
}

static void *reactor_main(void *arg)
{
    struct casty_reactor *r = arg;
    arm_wake(r);
    /* Acquire: pairs with destroy's release store of `closing`. */
    while (!load_acquire(&r->closing)) {
        take_requests(r);
        submit_requests(r);
        run_clock(r);
        arm_clock(r);
        wait_and_reap(r, false);
    }
    drain(r);
    return NULL;
}

/* ---- create / destroy ---------------------------------------------------------------- */

/* The operations the reactor relies on; a kernel that lacks one is treated
 * as having no usable io_uring. */
static const uint8_t required_ops[] = {
    IORING_OP_NOP,     IORING_OP_READ,           IORING_OP_WRITE,  IORING_OP_FSYNC,
    IORING_OP_ACCEPT,  IORING_OP_RECV,           IORING_OP_SEND,   IORING_OP_CONNECT,
    IORING_OP_CLOSE,   IORING_OP_TIMEOUT,        IORING_OP_TIMEOUT_REMOVE,
    IORING_OP_ASYNC_CANCEL,
};

static bool ring_supports_all(struct io_uring *ring)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (probe == NULL)
        return false;
    bool ok = true;
    for (size_t i = 0; i < sizeof required_ops; i++)
        ok = ok && io_uring_opcode_supported(probe, required_ops[i]);
    io_uring_free_probe(probe);
    return ok;
}

/* io_uring_setup's failures that mean "no io_uring here": ENOSYS (kernel
 * without it, or a sandbox like gVisor), EPERM (kernel.io_uring_disabled = 2,
 * or = 1 and the caller is not in kernel.io_uring_group; also a seccomp
 * filter such as Docker's default profile), EACCES (an LSM), EINVAL (a
 * kernel too old for the parameters). ENOMEM/EMFILE/ENFILE are resource
 * limits and pass through as themselves. */
static int setup_error(int rc)
{
    switch (rc) {
    case -ENOSYS:
    case -EPERM:
    case -EACCES:
    case -EINVAL:
    case -EOPNOTSUPP:
        return CASTY_EIOURING;
    case -ENOMEM:
        return CASTY_ENOMEM;
    default:
        return rc;
    }
}

int casty__reactor_create(struct casty_reactor **out)
{
    if (out == NULL)
        return CASTY_EINVAL;
    *out = NULL;
    struct casty_reactor *r = calloc(1, sizeof *r);
    if (r == NULL)
        return CASTY_ENOMEM;
    r->clock_want = r->clock_armed = CASTY__NO_DEADLINE;

    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    int rc = io_uring_queue_init_params(RING_ENTRIES, &r->ring, &params);
    if (rc < 0) {
        rc = setup_error(rc);
        goto fail_free;
    }
    /* NODROP (5.5): completions are never lost. */
    rc = CASTY_EIOURING;
    if (!(params.features & IORING_FEAT_NODROP) || !ring_supports_all(&r->ring))
        goto fail_ring;
    r->cq_entries = params.cq_entries;
    /* Valgrind's preload library names it (no valgrind.h needed). */
    const char *preload = getenv("LD_PRELOAD");
    r->short_waits = preload != NULL && strstr(preload, "vgpreload") != NULL;
    r->efd = eventfd(0, EFD_CLOEXEC);
    if (r->efd < 0) {
        rc = -errno;
        goto fail_ring;
    }
    pthread_mutex_init(&r->clock_lock, NULL);
    pthread_mutex_init(&r->buf_lock, NULL);

    /* The reactor thread takes no signals: they go to the application's
     * threads, and io_uring_enter is not interrupted for nothing. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&r->thread, NULL, reactor_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        goto fail_efd;
    pthread_setname_np(r->thread, "casty-reactor");
    *out = r;
    return 0;

fail_efd:
    pthread_mutex_destroy(&r->clock_lock);
    close(r->efd);
fail_ring:
    io_uring_queue_exit(&r->ring);
fail_free:
    free(r);
    return rc;
}

void casty__reactor_destroy(struct casty_reactor *r)
{
    if (r == NULL)
        return;
    /* Release: pairs with the reactor's and submitters' acquire loads. */
    store_release(&r->closing, 1u);
    wake(r);
    pthread_join(r->thread, NULL);
    /* Submits that raced with the closing flag: never in the ring. Full
     * barrier (xchg), like take_requests, though the join already orders
     * the reactor's last take before this. */
    struct op *op = exchange_seqcst(&r->incoming, NULL);
    while (op) {
        struct op *next = op->next;
        free(op);
        op = next;
    }
    if (r->bufring) {
        io_uring_unregister_buf_ring(&r->ring, RECV_BGID);
        munmap(r->bufring, CASTY__RECV_BUFS * sizeof(struct io_uring_buf));
    }
    free(r->bufs);
    io_uring_queue_exit(&r->ring);
    close(r->efd);
    pthread_mutex_destroy(&r->clock_lock);
    pthread_mutex_destroy(&r->buf_lock);
    free(r);
}
