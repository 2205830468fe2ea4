/* Internal (not installed). The reactor: one thread per system that owns an
 * io_uring and performs every I/O and timer operation for the system, so no
 * worker ever blocks on I/O.
 *
 * Requests come from any thread through a lock-free MPSC queue plus an
 * eventfd wake-up; each completion goes back to an actor as an ordinary
 * message (casty__io_done_t) sent with casty_tell to the request's reply_to.
 * The interface is generic (read, write, fsync, fdatasync, accept, recv,
 * send, connect, close, timeout, madvise) because the file journal
 * (persist/) and the network (net/) submit to it as well as the timers
 * (timers.c) and the message pools' slab arenas (pool.c: a growing arena's
 * next chunk prefaulted, with no reply).
 *
 * The reactor depends on nothing but the public API (casty_tell), so it can
 * be created and tested on its own. */
#ifndef CASTY_REACTOR_H
#define CASTY_REACTOR_H

#include <stdint.h>

#include "casty.h"

struct casty_reactor;

enum casty__io_op {
    CASTY_IO_NOP = 0,
    CASTY_IO_READ,
    CASTY_IO_WRITE,
    CASTY_IO_FSYNC,
    CASTY_IO_FDATASYNC,
    CASTY_IO_ACCEPT,
    CASTY_IO_RECV,
    CASTY_IO_SEND,
    CASTY_IO_CONNECT,
    CASTY_IO_CLOSE,
    CASTY_IO_TIMEOUT, /* completes after `timeout_ns` with res = 0 */
    /* Multishot accept: one completion per accepted connection (res = the
     * new fd, more = 1) until the last one (more = 0: an error, such as
     * -EINVAL from a kernel without multishot accept, or the listening
     * socket shut down), after which it must be submitted again. */
    CASTY_IO_ACCEPT_MULTI,
    /* Receive into one of the reactor's provided buffers (a ring of
     * CASTY__RECV_BUFS buffers of CASTY__RECV_BUF_SIZE bytes shared by all
     * the system's sockets, so a connection waiting for data holds no
     * buffer): the completion carries a copy of the bytes in `data` (res =
     * their length); res 0 at end of stream, -ENOBUFS when every buffer was
     * in use (submit again), -EINVAL where the kernel has no provided
     * buffer rings (use CASTY_IO_RECV), or another -errno. Single-shot on
     * purpose: re-armed after the data is handled, one receive then takes
     * everything that arrived meanwhile (a multishot receive completes per
     * arrival, and measured ~28% fewer msgs/s in bench/remote). buf and len
     * are not used. */
    CASTY_IO_RECV_PROVIDED,
    /* madvise(buf, len, advice = offset), done by the kernel's io_uring
     * workers, off the submitting thread: the slab arenas prefault a chunk
     * ahead of need with MADV_POPULATE_WRITE (slab.h). res 0 or -errno
     * (-EINVAL from a kernel without the op or the advice). reply_to may be
     * CASTY_REF_NONE: the completion's tell then fails quietly (no dead
     * letter), as for any reply_to that cannot take it. */
    CASTY_IO_MADVISE,
};

#define CASTY__RECV_BUFS 64u
#define CASTY__RECV_BUF_SIZE (64u << 10)

/* One I/O request. Buffers (and the sockaddr for connect/accept) belong to
 * the submitter and must stay valid until the completion arrives. */
struct casty__io_req {
    uint8_t op;          /* enum casty__io_op */
    int fd;
    void *buf;           /* read/write/recv/send buffer; sockaddr for connect/accept */
    uint32_t len;        /* bytes; socklen for connect */
    uint64_t offset;     /* file offset for read/write (-1 = current) */
    uint64_t timeout_ns; /* CASTY_IO_TIMEOUT */
    uint64_t tag;        /* echoed in the completion */
    casty_ref_t reply_to;
};

/* The completion message: res is the io_uring result (bytes, fd, 0, or
 * -errno); more = 1 when a multishot request goes on after this one. For a
 * CASTY_IO_RECV_PROVIDED completion with res > 0, data points at the bytes
 * in the provided buffer buf_id of `lender`, lent to the message: the
 * buffer goes back to the ring when the message is dropped (right after
 * the handler returns), so copy what must outlive the handler. NULL
 * otherwise. */
CASTY_MESSAGE_DECLARE(casty__io_done_t, uint64_t tag; int32_t res; uint8_t op; uint8_t more;
                      uint16_t buf_id; const uint8_t *data; struct casty_reactor *lender;);

/* Creates the io_uring and starts the reactor thread. Returns 0, or
 * CASTY_EIOURING when the kernel refuses io_uring (too old, or
 * kernel.io_uring_disabled), CASTY_ENOMEM, or -errno. */
int casty__reactor_create(struct casty_reactor **out);

/* Cancels what is in flight (no completions are delivered after this
 * returns), stops and joins the thread, frees everything. NULL is ignored. */
void casty__reactor_destroy(struct casty_reactor *r);

/* Gives provided buffer `buf_id` back to the ring (the drop of a
 * casty__io_done_t that carried it does this). Any thread. */
void casty__reactor_buf_return(struct casty_reactor *r, uint16_t buf_id);

/* Queues a request; any thread. Returns 0 (the completion will be sent to
 * req->reply_to), CASTY_EINVAL, CASTY_ENOMEM or CASTY_ESHUTDOWN. */
int casty__reactor_submit(struct casty_reactor *r, const struct casty__io_req *req);

/* ---- the clock hook (timers.c) ------------------------------------------
 *
 * How the timer service gets the reactor thread to run expired timers off
 * the reactor's one io_uring timeout.
 *
 * The protocol: the reactor keeps at most one IORING_OP_TIMEOUT armed, for
 * the deadline the clock function last returned. It calls the clock
 * function on its own thread when that timeout expires and whenever someone
 * has called casty__reactor_clock_changed since the last call; the function
 * runs what is due at `now_ns` and returns its next deadline. A deadline
 * that moves earlier therefore takes one changed() call (an eventfd write);
 * one that moves later, or goes away, needs nothing: the old timeout fires
 * once, the function finds nothing due and returns the new deadline. With no
 * deadline the reactor sleeps in io_uring_enter with no timeout. */
#define CASTY__NO_DEADLINE UINT64_MAX

/* Runs on the reactor thread. `now_ns` is casty__reactor_now_ns(); returns
 * the next deadline on that clock, or CASTY__NO_DEADLINE. */
typedef uint64_t (*casty__reactor_clock_fn)(void *ctx, uint64_t now_ns);

/* Installs (fn != NULL) or removes (fn == NULL) the reactor's clock
 * function and asks for a first call. Waits for a running call of the
 * previous function to finish, so once this returns the previous (fn, ctx)
 * is never called again. Any thread except the reactor's own. */
void casty__reactor_set_clock(struct casty_reactor *r, casty__reactor_clock_fn fn, void *ctx);

/* The clock function's deadline may have moved earlier: have the reactor
 * call it soon. Lock-free; any thread. */
void casty__reactor_clock_changed(struct casty_reactor *r);

/* The reactor's clock: CLOCK_MONOTONIC in nanoseconds (the clock of
 * absolute io_uring timeouts). */
uint64_t casty__reactor_now_ns(void);

#endif
