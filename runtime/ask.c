/* casty_ask: request-reply from a non-worker thread.
 *
 * The reply goes to a promise: a short-lived internal actor whose handler
 * hands the first message to the waiting thread and stops; or, while the
 * waiting thread polls, whose mailbox that thread reads itself (the held
 * promise: ask_held), needing no record or behavior until the poll ends.
 * The promise record (a state word the waiter sleeps on, the reply) is
 * shared by the waiter and the actor and freed by whichever lets go last.
 * A reply that arrives after the timeout finds the promise decided and
 * becomes a dead letter; once the promise actor has stopped, its slot's
 * generation turns any later reply into a dead letter too, so it never
 * reaches a recycled ref. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomics.h"
#include "futex.h"
#include "internal.h"

enum promise_state { P_WAITING, P_DONE, P_TIMEDOUT, P_CANCELLED, P_NOMEM };

/* One cache line, written once by whoever decides it. The state word is
 * also the futex the waiter sleeps on: no mutex and condition variable
 * (their lines moved between the asking thread and the worker on every
 * ask, and each ask initialised and destroyed them). */
struct promise {
    uint32_t state;    /* atomic: P_WAITING until decided, by one CAS */
    uint32_t sleeping; /* atomic: 1 while the waiter may be in futex_wait */
    uint32_t refs;     /* atomic: the waiter and the actor */
    struct casty_msg *reply; /* P_DONE's reply, written before the CAS */
};

static void promise_unref(struct promise *p)
{
    if (ck_pr_faa_32(&p->refs, (uint32_t)-1) == 1)
        free(p);
}

/* Decides p (from P_WAITING to `to`): true for the one caller that does.
 * Wakes the waiter if it sleeps: the CAS and the load of `sleeping` are
 * sequentially consistent, against the waiter's store of `sleeping` and
 * load of the state (so one of the two sees the other). */
static bool promise_decide(struct promise *p, uint32_t to)
{
    if (!ck_pr_cas_32(&p->state, P_WAITING, to))
        return false;
    if (load_seqcst(&p->sleeping))
        casty__futex_wake(&p->state);
    return true;
}

static casty_behavior_t *promise_receive(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct promise *p = *(struct promise **)state;
    bool taken = false;
    if (load_acquire(&p->state) == P_WAITING) {
        struct casty_msg *copy = casty__msg_take((struct casty_msg *)msg);
        p->reply = copy; /* read by the waiter only once the CAS made it P_DONE */
        taken = promise_decide(p, copy ? P_DONE : P_NOMEM) && copy != NULL;
        if (copy != NULL && !taken)
            casty_msg_free(copy); /* the waiter timed out meanwhile */
    }
    if (!taken)
        casty__note_dead_letter(ctx->sys, msg->type, casty_ctx_self(ctx));
    return casty_stopped();
}

static void promise_drop(void *state)
{
    struct promise *p = *(struct promise **)state;
    promise_decide(p, P_CANCELLED); /* stopped without a reply: system shutdown */
    promise_unref(p);
}

static bool past(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

static void deadline_after(struct timespec *ts, uint64_t ms)
{
    if (ms > 1000ull * 3600 * 24 * 365)
        ms = 1000ull * 3600 * 24 * 365;
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* How long casty_ask waits for a reply before it sleeps on the promise's
 * futex: first ASK_SPIN_LOOKS looks with a pause between them (~7.5 us at
 * this machine's ~29 ns pause), then up to ASK_YIELD_NS more looks
 * between sched_yield calls (which hand the core to any thread that needs
 * it, a worker among them, when there are more runnable threads than
 * cores). A reply within that time costs the asker no futex sleep and the
 * replying worker no futex wake; most local ones arrive within it, since
 * the request's round trip through an idle system is about a microsecond
 * while a sleep and a wake-up of the asker took 10-20 (docs/performance.md,
 * "Asking from outside the pool"). The spin is counted, not timed: a clock
 * read per look delayed each look by its cost, and the clock is read only
 * once the yielding starts. (An ask whose poll ends without the reply
 * counts its timeout from the poll's end: up to ~50 us late.)
 *
 * Only where the reply is likely that quick: not for a ref of another
 * node (a network round trip is ~100 us; polling through it took cores
 * from the reactors and workers that carry it: remote ask p50 101 -> 130
 * us, p99 213 -> 250-530 us on two cores), and not for a thread whose
 * last polls were in vain (a slow actor): after each poll that ends
 * without the reply, the thread skips it for twice as many asks as the
 * last time (1, 2, 4 ... ASK_SKIP_MAX), and a reply within a poll ends
 * the skipping. */
#define ASK_SPIN_LOOKS 256u
#define ASK_YIELD_NS 40000u
#define ASK_SKIP_MAX 64u

static _Thread_local uint32_t ask_skip;    /* asks left that do not poll */
static _Thread_local uint32_t ask_backoff; /* the last skip's length */

/* The state of a poll (await_promise, ask_held). */
struct poll {
    uint32_t looks;                /* so far */
    struct timespec yield_start;   /* set at look ASK_SPIN_LOOKS */
};

/* One step of a poll: false once it has spun and then yielded for
 * ASK_YIELD_NS, else true after a pause or a yield. */
static bool poll_on(struct poll *poll)
{
    if (++poll->looks < ASK_SPIN_LOOKS) {
        cpu_relax();
        return true;
    }
    if (poll->looks == ASK_SPIN_LOOKS) {
        clock_gettime(CLOCK_MONOTONIC, &poll->yield_start);
    } else {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t yielded = (uint64_t)(now.tv_sec - poll->yield_start.tv_sec) * 1000000000u +
                           (uint64_t)now.tv_nsec - (uint64_t)poll->yield_start.tv_nsec;
        if (yielded >= ASK_YIELD_NS)
            return false;
    }
    sched_yield();
    return true;
}

/* Ends a poll: a reply within it ends the skipping (ASK_SKIP_MAX), a poll
 * in vain doubles it. */
static void poll_ended(bool replied)
{
    if (replied) {
        ask_backoff = 0;
        return;
    }
    ask_backoff = ask_backoff == 0 ? 1 : ask_backoff < ASK_SKIP_MAX ? 2 * ask_backoff : ASK_SKIP_MAX;
    ask_skip = ask_backoff;
}

/* A new promise, P_WAITING, and the behavior of the actor that decides it
 * (holding one of its two references), or NULL for both when out of
 * memory. */
static struct promise *promise_new(casty_behavior_t **b)
{
    struct promise *p = calloc(1, sizeof *p);
    *b = NULL;
    if (p == NULL)
        return NULL;
    p->state = P_WAITING;
    p->refs = 2;
    *b = casty_receive_with_drop(promise_receive, &p, sizeof p, promise_drop);
    if (*b == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

/* Waits for p until decided or the deadline (polling first when asked
 * to), then returns casty_ask's result, stopping the promise actor if it
 * timed out, and lets p go. */
static int await_promise(struct promise *p, casty_ref_t promise_ref, bool polling,
                         uint64_t timeout_ms, casty_msg_t **reply)
{
    if (polling) {
        struct poll poll = {0};
        bool decided;
        while (!(decided = load_acquire(&p->state) != P_WAITING) && poll_on(&poll))
            ;
        poll_ended(decided);
    }
    /* Sleep until decided or the deadline, then decide it ourselves. */
    struct timespec deadline;
    uint32_t state = load_acquire(&p->state);
    if (state == P_WAITING)
        deadline_after(&deadline, timeout_ms);
    while ((state = load_acquire(&p->state)) == P_WAITING) {
        store_seqcst(&p->sleeping, 1u);
        if (load_seqcst(&p->state) == P_WAITING)
            casty__futex_wait(&p->state, P_WAITING, &deadline);
        store_relaxed(&p->sleeping, 0u);
        if (load_acquire(&p->state) == P_WAITING && past(&deadline))
            promise_decide(p, P_TIMEDOUT); /* fails when a reply won the race */
    }
    if (state == P_DONE)
        *reply = p->reply;
    if (state == P_TIMEDOUT)
        casty_stop(promise_ref);
    promise_unref(p);
    return state == P_DONE        ? 0
           : state == P_TIMEDOUT ? CASTY_ETIMEDOUT
           : state == P_NOMEM    ? CASTY_ENOMEM /* (the reply could not be copied) */
                                 : CASTY_ESHUTDOWN;
}

/* The behavior a held promise is spawned with: never run (casty__held_adopt
 * replaces it before a worker can run the actor), but a behavior all the
 * same, so that the actor is one like any other while held. */
static casty_behavior_t *held_receive(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    casty__note_dead_letter(ctx->sys, msg->type, casty_ctx_self(ctx));
    return casty_stopped();
}
static struct casty_behavior held_b = {.kind = BEH_RECEIVE, .is_static = 1, .fn.receive = held_receive};

/* casty_ask through a held promise (casty__spawn_held): this thread keeps
 * the promise's schedule and polls its mailbox for the reply, and ends the
 * actor itself when it comes. Held, the promise needs no record and no
 * behavior of its own: they are made only when the poll ends without the
 * reply (or a stop arrives: at shutdown), and the promise then goes on as
 * an actor that this thread sleeps on. The system is pinned for as long as
 * the promise is held (registry_remove waits for it), since ending the
 * held promise touches it. CASTY__NOT_HELD when the promise could not be
 * held; nothing was sent then. */
static int ask_held(struct casty_system *sys, casty_ref_t target, casty_ask_fn make_request,
                    void *arg, uint64_t timeout_ms, casty_msg_t **reply)
{
    struct casty_system *pinned = casty__system_acquire(sys->node, NULL);
    if (pinned == NULL)
        return CASTY__NOT_HELD;
    struct cell *held;
    casty_ref_t reply_to;
    int rc = casty__spawn_held(sys, &held_b, &reply_to, &held);
    if (rc == 0) {
        casty__tls_asking = sys;
        rc = make_request(target, reply_to, arg);
        casty__tls_asking = NULL;
        if (rc)
            casty__held_finish(sys, held);
    }
    if (rc) {
        casty__system_release(pinned);
        return rc;
    }

    struct poll poll = {0};
    enum held_look look;
    do {
        struct casty_msg *copy = NULL;
        look = casty__held_look(sys, held, &copy);
        if (look == HELD_REPLY) {
            casty__held_finish(sys, held);
            casty__system_release(pinned);
            poll_ended(true);
            *reply = copy;
            return copy ? 0 : CASTY_ENOMEM;
        }
    } while (look == HELD_NOTHING && poll_on(&poll));
    if (look == HELD_NOTHING)
        poll_ended(false);

    casty_behavior_t *b;
    struct promise *p = promise_new(&b);
    if (p == NULL) {
        casty__held_finish(sys, held); /* a later reply is a dead letter */
        casty__system_release(pinned);
        return CASTY_ENOMEM;
    }
    casty__held_adopt(sys, held, b);
    casty__system_release(pinned);
    return await_promise(p, reply_to, false, timeout_ms, reply);
}

int casty_ask(casty_system_t *sys, casty_ref_t target, casty_ask_fn make_request, void *arg,
              uint64_t timeout_ms, casty_msg_t **reply)
{
    if (reply)
        *reply = NULL;
    if (sys == NULL || make_request == NULL || reply == NULL)
        return CASTY_EINVAL;
    if (casty__tls_worker != NULL)
        return CASTY_EDEADLK;
    if (load_acquire(&sys->state) != SYS_RUNNING)
        return CASTY_ESHUTDOWN;

    /* Whether to poll: for a ref of this system, unless this thread's
     * recent polls were in vain (see ASK_SKIP_MAX) or the timeout is 0.
     * Polling, the promise is held where it can be (ask_held). (Read
     * before the request goes: once it has, a casty_system_shutdown on
     * another thread may free sys, unless this thread holds it.) */
    bool polling = target.node == sys->node && timeout_ms != 0;
    if (polling && ask_skip > 0) {
        ask_skip--;
        polling = false;
    }
    if (polling) {
        int rc = ask_held(sys, target, make_request, arg, timeout_ms, reply);
        if (rc != CASTY__NOT_HELD)
            return rc;
    }

    casty_behavior_t *b;
    struct promise *p = promise_new(&b);
    if (p == NULL)
        return CASTY_ENOMEM;
    casty_ref_t reply_to;
    int rc = casty__spawn_promise(sys, b, &reply_to); /* consumes b */
    if (rc == 0) {
        casty__tls_asking = sys;
        rc = make_request(target, reply_to, arg);
        casty__tls_asking = NULL;
        if (rc)
            casty_stop(reply_to);
    }
    if (rc) {
        promise_unref(p);
        return rc;
    }
    return await_promise(p, reply_to, polling, timeout_ms, reply);
}
