/* The scheduler: `workers` pthreads that run ready actors.
 *
 * Each worker has a LIFO slot and a bounded ring (the owner adds at the
 * back, or at the front for an actor pushed out of the LIFO slot; the owner
 * and thieves take from the front by CAS on the head). An actor made ready
 * by the actor running on a worker goes to that worker's LIFO slot, so a
 * ping-pong pair stays on one core; the slot is never stolen, and after
 * LIFO_MAX consecutive LIFO runs it yields to the ring so queued actors are
 * not starved (with nothing queued, a new streak begins). The actor a newer
 * wake-up pushes out of the slot waits in the worker's woken batch, which
 * goes to the ring's front when WAKE_BATCH have gathered or the run ends.
 * Behind a full ring a worker keeps an overflow list of its
 * own (owner only, moved into the ring as it empties). Actors made ready
 * by non-worker threads go to the injection queue (a lock-free intrusive
 * MPSC queue whose takers hold a mutex), which also takes the overflow
 * list of an actor that wakes more than OVERFLOW_SPILL others in one run.
 * An idle worker looks in its ring, the injection queue, then steals half
 * of a random victim's ring (a ring only holds real backlog: actors
 * waiting while their worker runs something else). At most half of the
 * unparked workers search at once (others park at once); a searcher spins
 * briefly, then parks on a futex. Work pushed into an empty ring or
 * injected wakes at most one parked worker, and none while another is
 * searching.
 *
 * The worker loop reads as its phases: find work, run it, or search and
 * park. This file does not know what running an actor means (actor.c). */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "atomics.h"
#include "futex.h"
#include "internal.h"

#define LIFO_MAX 32
#define INJECT_EVERY 61
#define SPIN_ROUNDS 64
#define INJECT_BATCH 32
#define OVERFLOW_SPILL (RING_SIZE / 2)

_Thread_local struct worker *casty__tls_worker;

/* ---- the ring ------------------------------------------------------------ */

static inline uint32_t head_index(uint64_t head)
{
    return (uint32_t)head;
}

/* The head word for index `index`, one change after `old`. */
static inline uint64_t head_next(uint64_t old, uint32_t index)
{
    return ((old >> 32) + 1) << 32 | index;
}

static uint32_t ring_len(struct worker *w)
{
    /* Head first: it never passes the tail read after it. */
    uint32_t head = head_index(load_acquire(&w->ring_head));
    uint32_t tail = load_acquire(&w->ring_tail);
    return tail - head;
}

/* Owner or thief: takes the front entry, or NULL. */
static struct cell *ring_pop(struct worker *w)
{
    uint64_t head = load_acquire(&w->ring_head);
    for (;;) {
        /* Acquire: pairs with the owner's release of ring_tail in ring_push. */
        uint32_t tail = load_acquire(&w->ring_tail);
        uint32_t i = head_index(head);
        if (i == tail)
            return NULL;
        struct cell *c = load_relaxed(&w->ring[i & RING_MASK]);
        /* Full barrier: the entry read above is still the front if the head
         * word (index and stamp) is unchanged. */
        if (ck_pr_cas_64_value(&w->ring_head, head, head_next(head, i + 1), &head))
            return c;
    }
}

static void inject_push_list(struct casty_system *sys, struct cell *first, struct cell *last,
                             uint32_t n);
static void notify_one(struct casty_system *sys);
static void overflow_push(struct worker *w, struct cell *c);

/* Owner only: appends c to the back of the run queue (the ring, then the
 * overflow list once the ring is full). */
static void ring_push(struct worker *w, struct cell *c)
{
    if (w->over_head == NULL) {
        uint32_t tail = w->ring_tail;
        if (tail - head_index(load_acquire(&w->ring_head)) < RING_SIZE) {
            store_relaxed(&w->ring[tail & RING_MASK], c);
            /* Release: publishes the entry to ring_pop's acquire of tail. */
            store_release(&w->ring_tail, tail + 1);
            return;
        }
    }
    overflow_push(w, c);
}

/* Owner only: the back of the run queue when the ring is full. A worker
 * with more ready actors than its ring holds keeps them here, in order,
 * and moves them into the ring as it empties (overflow_refill): that is
 * ordinary backlog (1024 ping-pong pairs on 2 workers), and it never
 * touches anything shared. Only an actor that wakes more than
 * OVERFLOW_SPILL others in one run hands the list to the injection queue,
 * so that idle workers can run them while it goes on (w->overflowed then
 * sends it to the back of that queue, behind them). */
static void overflow_push(struct worker *w, struct cell *c)
{
    c->next_run = NULL;
    if (w->over_tail)
        w->over_tail->next_run = c;
    else
        w->over_head = c;
    w->over_tail = c;
    w->over_len++;
    if (++w->over_run < OVERFLOW_SPILL)
        return;
    struct cell *first = w->over_head, *last = w->over_tail;
    uint32_t n = w->over_len;
    w->over_head = w->over_tail = NULL;
    w->over_len = 0;
    w->over_run = 0;
    w->overflowed = true;
    inject_push_list(w->sys, first, last, n);
}

/* Owner only: moves the overflow list's front into the ring's free room,
 * and wakes a worker for it (it is backlog: the owner has more queued). */
static void overflow_refill(struct worker *w)
{
    uint32_t tail = w->ring_tail;
    uint32_t room = RING_SIZE - (tail - head_index(load_acquire(&w->ring_head)));
    uint32_t moved = 0;
    struct cell *c = w->over_head;
    for (; c != NULL && moved < room; moved++) {
        struct cell *next = c->next_run;
        store_relaxed(&w->ring[(tail + moved) & RING_MASK], c);
        c = next;
    }
    if (moved == 0)
        return;
    w->over_head = c;
    if (c == NULL)
        w->over_tail = NULL;
    w->over_len -= moved;
    /* Release: publishes the entries to ring_pop's acquire of tail. */
    store_release(&w->ring_tail, tail + moved);
    notify_one(w->sys);
}

/* Owner only: puts c at the front of the ring, where the owner (and
 * thieves) take next: for actors a newer wake-up pushed out of the LIFO
 * slot (casty__woken_publish, when its batch does not fit whole), so that
 * a spawning actor tree is explored depth-first (most recently woken
 * first) instead of breadth-first, which would keep most of the tree alive
 * at once. Re-queued actors still go to the back (fairness). Falls back to
 * the back when the ring is full, and, if yield_to_thieves, when its CAS
 * loses to a thief. */
static void ring_push_front(struct worker *w, struct cell *c, bool yield_to_thieves)
{
    uint64_t head = load_acquire(&w->ring_head);
    for (;;) {
        uint32_t h = head_index(head);
        if (w->ring_tail - h >= RING_SIZE) {
            ring_push(w, c);
            return;
        }
        /* The slot before the front is free (the ring is not full), and no
         * thief reads it before the CAS below publishes it. */
        store_relaxed(&w->ring[(h - 1) & RING_MASK], c);
        /* Full barrier: publishes the entry with the new head; the stamp
         * makes any thief holding the old head word fail its CAS. */
        if (ck_pr_cas_64_value(&w->ring_head, head, head_next(head, h - 1), &head))
            return;
        if (yield_to_thieves) {
            /* Thieves are taking from this ring right now: go to the back
             * (a plain store) rather than race them for the head. */
            ring_push(w, c);
            return;
        }
    }
}

/* Thief: moves up to half of victim's ring into w's (empty) ring and
 * returns one of them, or NULL. */
static struct cell *ring_steal(struct worker *w, struct worker *victim)
{
    uint64_t head = load_acquire(&victim->ring_head);
    for (;;) {
        uint32_t h = head_index(head);
        uint32_t tail = load_acquire(&victim->ring_tail);
        uint32_t n = tail - h;
        if (n == 0 || n > RING_SIZE)
            return NULL;
        n = n - n / 2; /* half, rounded up */
        struct cell *batch[RING_SIZE / 2 + 1];
        for (uint32_t i = 0; i < n; i++)
            batch[i] = load_relaxed(&victim->ring[(h + i) & RING_MASK]);
        /* Full barrier; the stamp guarantees the entries read above were
         * still the front n when the CAS succeeds. */
        if (!ck_pr_cas_64_value(&victim->ring_head, head, head_next(head, h + n), &head))
            continue;
        for (uint32_t i = 1; i < n; i++)
            ring_push(w, batch[i]);
        if (n > 1)
            notify_one(w->sys);
        return batch[0];
    }
}

/* ---- the injection queue ---------------------------------------------------- */

/* An intrusive MPSC queue (the design of Dmitry Vyukov's, written here
 * from its description) through cell.next_run, with a stub cell so that it
 * is never empty of nodes: a producer exchanges the tail and then links the
 * old tail to what it added, so senders from outside the pool and spilling
 * workers never wait for a lock or for one another. Taking is for one
 * thread at a time: idle workers hold inject_lock, and take a batch each.
 *
 * inject_len counts what is queued or being queued: a producer adds before
 * its exchange, so a worker about to park sees the work (work_visible) even
 * while the link to it is not yet written; a taker that meets that gap
 * finds nothing for now and looks again. */

void casty__inject_init(struct casty_system *sys)
{
    sys->inject_stub.next_run = NULL;
    sys->inject_head = &sys->inject_stub;
    sys->inject_tail = &sys->inject_stub;
}

/* Appends the list first..last (linked through next_run). */
static void inject_link(struct casty_system *sys, struct cell *first, struct cell *last)
{
    store_relaxed(&last->next_run, (struct cell *)NULL);
    /* Full barrier (lock xchg): orders the list's links before it is
     * reachable. */
    struct cell *prev = exchange_seqcst(&sys->inject_tail, last);
    /* Release: publishes the list to the taker's acquire of this link. */
    store_release(&prev->next_run, first);
}

static void inject_push_list(struct casty_system *sys, struct cell *first, struct cell *last,
                             uint32_t n)
{
    /* Full barrier (lock xadd), before the list is reachable: see above. */
    ck_pr_faa_32(&sys->inject_len, n);
    inject_link(sys, first, last);
    notify_one(sys);
}

/* Takes the oldest queued cell, or NULL when none is reachable now (empty,
 * or a producer between its exchange and its link). Under inject_lock. */
static struct cell *inject_take(struct casty_system *sys)
{
    struct cell *stub = &sys->inject_stub;
    struct cell *head = sys->inject_head;
    /* Acquire: pairs with the release of the link in inject_link. */
    struct cell *next = load_acquire(&head->next_run);
    if (head == stub) {
        if (next == NULL)
            return NULL;
        sys->inject_head = head = next;
        next = load_acquire(&head->next_run);
    }
    if (next == NULL) {
        /* head may be the last cell: put the stub behind it, so that head
         * can leave with something still in the queue. Not when a producer
         * has already exchanged the tail: its link will follow. */
        if (head != load_acquire(&sys->inject_tail))
            return NULL;
        inject_link(sys, stub, stub);
        next = load_acquire(&head->next_run);
        if (next == NULL)
            return NULL;
    }
    sys->inject_head = next;
    return head;
}

/* Takes one injected actor and moves up to INJECT_BATCH more into w's ring. */
static struct cell *inject_pop(struct worker *w)
{
    struct casty_system *sys = w->sys;
    if (load_relaxed(&sys->inject_len) == 0)
        return NULL;
    /* Another taker is moving this work already (and wakes a worker for
     * what it leaves): look elsewhere rather than sleep on the lock. */
    if (pthread_mutex_trylock(&sys->inject_lock) != 0)
        return NULL;
    struct cell *c = inject_take(sys);
    uint32_t taken = 0, room = RING_SIZE - ring_len(w);
    if (c) {
        taken = 1;
        for (struct cell *x; taken <= INJECT_BATCH && taken <= room &&
                             (x = inject_take(sys)) != NULL;
             taken++)
            ring_push(w, x);
        /* Atomic: producers add concurrently. */
        ck_pr_sub_32(&sys->inject_len, taken);
    }
    pthread_mutex_unlock(&sys->inject_lock);
    if (taken > 1)
        notify_one(sys);
    return c;
}

/* ---- parking -------------------------------------------------------------- */

static bool work_visible(struct casty_system *sys)
{
    if (load_seqcst(&sys->inject_len) != 0)
        return true;
    for (uint32_t i = 0; i < sys->nworkers; i++)
        if (ring_len(&sys->workers[i]) != 0)
            return true;
    return false;
}

/* Wakes one parked worker, unless none is parked or one is searching. Called
 * after publishing stealable work. */
static void notify_one(struct casty_system *sys)
{
    /* Sequentially consistent fence: orders the work just published before
     * reading the parked count; pairs with the fence in park(). */
    fence_seqcst();
    if (load_relaxed(&sys->nsearching) != 0 || load_relaxed(&sys->nparked) == 0)
        return;
    pthread_mutex_lock(&sys->idle_lock);
    struct worker *w = NULL;
    if (sys->nidle > 0) {
        w = &sys->workers[sys->idle[--sys->nidle]];
        store_relaxed(&sys->nparked, sys->nparked - 1);
    }
    pthread_mutex_unlock(&sys->idle_lock);
    if (w) {
        store_release(&w->wake_word, 1u);
        casty__futex_wake(&w->wake_word);
    }
}

static bool idle_remove(struct casty_system *sys, struct worker *w)
{
    bool removed = false;
    pthread_mutex_lock(&sys->idle_lock);
    for (uint32_t i = 0; i < sys->nidle; i++) {
        if (sys->idle[i] == w->index) {
            sys->idle[i] = sys->idle[--sys->nidle];
            store_relaxed(&sys->nparked, sys->nparked - 1);
            removed = true;
            break;
        }
    }
    pthread_mutex_unlock(&sys->idle_lock);
    return removed;
}

/* Parks w until notified. Returns true instead when work became visible
 * meanwhile: the caller then searches even past the searchers' limit (a
 * worker that saw work never sleeps on it). */
static bool park(struct worker *w)
{
    struct casty_system *sys = w->sys;
    casty__pool_flush(w);
    casty__cells_flush(w);
    store_relaxed(&w->wake_word, 0u);
    pthread_mutex_lock(&sys->idle_lock);
    sys->idle[sys->nidle++] = w->index;
    store_relaxed(&sys->nparked, sys->nparked + 1);
    pthread_mutex_unlock(&sys->idle_lock);
    /* Pairs with the fence in notify_one: either the notifier sees us parked
     * or we see its work here. */
    fence_seqcst();
    if (work_visible(sys) || load_acquire(&sys->exit)) {
        if (idle_remove(sys, w))
            return true;
        /* Someone already chose us: consume that wake-up below. */
    }
    while (load_acquire(&w->wake_word) == 0)
        casty__futex_wait(&w->wake_word, 0, NULL);
    return false;
}

/* ---- finding work ---------------------------------------------------------------- */

static uint32_t next_rand(struct worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)w->rng;
}

static struct cell *steal_any(struct worker *w)
{
    struct casty_system *sys = w->sys;
    uint32_t n = sys->nworkers;
    if (n < 2)
        return NULL;
    uint32_t start = next_rand(w) % n;
    for (uint32_t i = 0; i < n; i++) {
        struct worker *victim = &sys->workers[(start + i) % n];
        if (victim == w)
            continue;
        struct cell *c = ring_steal(w, victim);
        if (c)
            return c;
    }
    return NULL;
}

static struct cell *find_local_work(struct worker *w)
{
    struct cell *c;
    /* A countdown rather than a modulo: this runs before every actor. */
    if (w->tick == 0) {
        w->tick = INJECT_EVERY - 1;
        if ((c = inject_pop(w)) != NULL)
            return c;
    } else {
        w->tick--;
    }
    if (w->lifo) {
        c = w->lifo;
        if (w->lifo_streak < LIFO_MAX || ring_len(w) == 0) {
            /* At the limit with nothing queued to yield to: a new streak
             * (so take_local_work's inline test keeps passing). */
            w->lifo = NULL;
            w->lifo_streak = w->lifo_streak < LIFO_MAX ? w->lifo_streak + 1 : 1;
            return c;
        }
        /* Yield the LIFO slot to the queued actors. */
        w->lifo = NULL;
        w->lifo_streak = 0;
        ring_push(w, c);
    }
    w->lifo_streak = 0;
    /* Until the ring yields an actor or the overflow list is empty: thieves
     * can empty the ring between the length test and the pop, and a worker
     * that then searched and parked would strand its overflow list, which
     * only it can reach and no other worker's search or park sees (all
     * workers parked with actors queued: the stress test's 10^7 hops hung
     * about once in 20-50 runs beside another test). A round after a failed
     * pop finds the ring empty, so it moves actors from the list (or the
     * list is empty and the loop ends). */
    for (;;) {
        if (w->over_head != NULL && ring_len(w) <= RING_SIZE / 2)
            overflow_refill(w);
        if ((c = ring_pop(w)) != NULL)
            return c;
        if (w->over_head == NULL)
            return inject_pop(w);
    }
}

/* Whether one more worker may search: at most half of the workers that
 * are not parked search at once (Go's rule). More thieves than that only
 * take turns at the same few ring heads, and each failed CAS there delays
 * the owner pushing new work (fjthrput at 4 workers of 16 cores: 2.4 M
 * msgs/s without this limit, 9.1 M with it; docs/performance.md, "On 16
 * cores"). A worker refused here parks; the searchers that stay wake it
 * when they find more than they take. */
static bool may_search(struct casty_system *sys)
{
    uint32_t searching = load_relaxed(&sys->nsearching);
    uint32_t active = sys->nworkers - load_relaxed(&sys->nparked);
    return 2 * searching < active;
}

static struct cell *search(struct worker *w, bool saw_work)
{
    struct casty_system *sys = w->sys;
    if (!saw_work && !may_search(sys))
        return inject_pop(w);
    ck_pr_inc_32(&sys->nsearching);
    struct cell *c = NULL;
    for (int round = 0; round < SPIN_ROUNDS && !load_relaxed(&sys->exit); round++) {
        if ((c = inject_pop(w)) != NULL || (c = steal_any(w)) != NULL)
            break;
        /* After a short spin, yield instead: when the process has more
         * runnable threads than cores (a thread outside the pool feeding
         * it, another system's workers, the reactor), a searching worker
         * would otherwise hold a core that the thread it waits for needs. */
        if (round < 8) {
            /* (Sixteen pauses, ~460 ns on the development VM, between
             * looks at the rings; work injected by a thread outside the
             * pool, a casty_ask's request above all, is looked for after
             * every pause: one load of a line only injections write. Every
             * fourth pause left a request waiting ~60 ns on average: ask's
             * p50 0.49 -> 0.39 us looking every pause.) */
            for (int i = 0; i < 16; i++) {
                cpu_relax();
                if (load_relaxed(&sys->inject_len) != 0)
                    break;
            }
        } else {
            sched_yield();
        }
    }
    ck_pr_dec_32(&sys->nsearching);
    if (c && work_visible(sys))
        notify_one(sys);
    return c;
}

/* find_local_work's common case inline: not the injection queue's turn,
 * and the LIFO slot's actor, within its streak (the same steps). */
static inline struct cell *take_local_work(struct worker *w)
{
    struct cell *c = w->lifo;
    if (c != NULL && w->tick != 0 && w->lifo_streak < LIFO_MAX) {
        w->tick--;
        w->lifo = NULL;
        w->lifo_streak++;
        return c;
    }
    return find_local_work(w);
}

/* What a run may leave to do (one flag tested after every run): a held
 * child to let go, a batch of stopped children to report once it has
 * waited CHILD_BATCH_RUNS runs, woken actors to publish (last: the other
 * two can wake more). */
static void after_run(struct worker *w)
{
    if (w->held != NULL)
        casty__release_held(w);
    if (w->ended.count > 0 && ++w->ended_runs >= CHILD_BATCH_RUNS)
        casty__children_report(w);
    casty__woken_publish(w);
    w->after_run = w->ended.count > 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct casty_system *sys = w->sys;
    casty__tls_worker = w;
    bool saw_work = false;
    while (!load_acquire(&sys->exit)) {
        struct cell *c = take_local_work(w);
        if (c == NULL && w->ended.count > 0) {
            casty__children_report(w); /* may make the parent local work */
            casty__woken_publish(w);
            c = find_local_work(w);
        }
        if (c == NULL)
            c = search(w, saw_work);
        if (c == NULL) {
            saw_work = park(w);
            continue;
        }
        saw_work = false;
        w->over_run = 0;
        casty__run_actor(w, c);
        if (w->after_run)
            after_run(w);
    }
    casty__pool_flush(w);
    casty__tls_worker = NULL;
    return NULL;
}

/* ---- scheduling entry points --------------------------------------------------- */

/* Makes c runnable. From one of sys's workers: into its LIFO slot; the
 * previous occupant moves to the ring's front (most recently woken run
 * first; a spawning tree is explored depth first), or, if it has started
 * and thieves are taking from the ring at that moment (the CAS on the head
 * fails), to the back. Always the back was measured: on 16 cores it
 * spared one actor feeding many the CAS retries (0.83 M failed CASes per
 * 2 M messages), but on 2 cores `big` lost 35% at 2 workers (17.9 ->
 * 11.6 M msgs/s). From anywhere else: the injection queue. */
void casty__schedule(struct casty_system *sys, struct cell *c)
{
    struct worker *w = casty__tls_worker;
    if (w && w->sys == sys) {
        casty__schedule_on(w, c);
        return;
    }
    inject_push_list(sys, c, c, 1);
}

/* casty__schedule_on's second half: prev, displaced from w's LIFO slot,
 * waits in w->woken until WAKE_BATCH have gathered or the run ends
 * (after_run), and then goes to the ring with the others at once. One
 * actor feeding many on many cores (fjthrput) made every message a
 * wake-up, and each wake-up a push on a ring head that the idle workers
 * were stealing from: the sender's worker spent most of its time waiting
 * for that line (docs/performance.md, "One actor feeding many, in batches").
 * In a batch the sender touches the ring and the parked workers' lines
 * once per WAKE_BATCH wake-ups, and a thief takes several at a time. */
void casty__schedule_displaced(struct worker *w, struct cell *prev)
{
    w->woken[w->nwoken++] = prev;
    w->after_run = true;
    if (w->nwoken == WAKE_BATCH)
        casty__woken_publish(w);
}

static bool all_started(struct cell *const *cells, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (cells[i]->status != CELL_ALIVE)
            return false;
    return true;
}

/* Moves w->woken to the ring's front, the most recently woken first (a
 * spawning tree is explored depth first), or, if they have all started
 * and thieves are taking from the ring at that moment (the CAS on the
 * head fails), to the back. Always the back was measured: on 16 cores it
 * spared one actor feeding many the CAS retries, but on 2 cores `big` lost
 * 35% at 2 workers (17.9 -> 11.6 M msgs/s), since its actors woken at
 * random then ran in FIFO order. Wakes a worker only when the ring held no
 * backlog: for a ring that did, one was woken (or was searching, or none
 * was parked) when it was pushed. */
void casty__woken_publish(struct worker *w)
{
    uint32_t n = w->nwoken;
    if (n == 0)
        return;
    w->nwoken = 0;
    uint64_t head = load_acquire(&w->ring_head);
    bool had_backlog = w->ring_tail != head_index(head);
    for (;;) {
        uint32_t h = head_index(head);
        if (w->over_head != NULL || w->ring_tail - h + n > RING_SIZE) {
            /* No room at the front: one at a time, as far as it goes. */
            for (uint32_t i = 0; i < n; i++)
                ring_push_front(w, w->woken[i], w->woken[i]->status == CELL_ALIVE);
            break;
        }
        /* The n slots before the front are free, and no thief reads them
         * before the CAS below publishes them. */
        for (uint32_t i = 0; i < n; i++)
            store_relaxed(&w->ring[(h - 1 - i) & RING_MASK], w->woken[i]);
        /* Full barrier: publishes the entries with the new head. */
        if (ck_pr_cas_64_value(&w->ring_head, head, head_next(head, h - n), &head))
            break;
        /* (Their statuses only now: each is a line that the core which ran
         * the actor last wrote, and this worker holds their schedules, so
         * they cannot change meanwhile.) */
        if (all_started(w->woken, n)) {
            for (uint32_t i = 0; i < n; i++)
                ring_push(w, w->woken[i]);
            break;
        }
    }
    if (!had_backlog)
        notify_one(w->sys);
}

/* Re-queues the actor w just ran (it still has messages): the ring's back.
 * Into an empty ring it is no backlog (w runs it next), so no other worker
 * is woken to steal it: waking one would only move a producer/consumer pair
 * apart onto two cores. */
void casty__schedule_requeue(struct worker *w, struct cell *c)
{
    if (w->overflowed) {
        /* It woke more actors than the ring holds, and the older ones went
         * to the injection queue: it queues behind them, so that an actor
         * spawning (or waking) thousands of others cannot run again before
         * they do, holding them all alive. */
        w->overflowed = false;
        inject_push_list(w->sys, c, c, 1);
        return;
    }
    bool backlog = ring_len(w) != 0 || w->lifo != NULL;
    ring_push(w, c);
    if (backlog)
        notify_one(w->sys);
}

int casty__sched_start(struct casty_system *sys)
{
    uint32_t n = sys->nworkers;
    sys->idle = calloc(n, sizeof(uint32_t));
    if (sys->idle == NULL)
        return CASTY_ENOMEM;
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (uint64_t)time(NULL);
    for (uint32_t i = 0; i < n; i++) {
        struct worker *w = &sys->workers[i];
        w->index = i;
        w->sys = sys;
        w->rng = (seed + i * 0x9e3779b97f4a7c15ull) | 1;
        w->blk_size_limit = n > 1 ? MSG_TINY_MAX + 1 : 0;
        int rc = casty__pool_init(w, n);
        if (rc)
            return rc;
    }
    for (uint32_t i = 0; i < n; i++) {
        int rc = pthread_create(&sys->workers[i].thread, NULL, worker_main, &sys->workers[i]);
        if (rc) {
            store_release(&sys->exit, 1u);
            for (uint32_t j = 0; j < i; j++) {
                store_release(&sys->workers[j].wake_word, 1u);
                casty__futex_wake(&sys->workers[j].wake_word);
            }
            for (uint32_t j = 0; j < i; j++)
                pthread_join(sys->workers[j].thread, NULL);
            return -rc;
        }
    }
    return 0;
}

/* Tells every worker to leave its loop, wakes them, joins them. */
void casty__sched_stop(struct casty_system *sys)
{
    store_seqcst(&sys->exit, 1u);
    for (uint32_t i = 0; i < sys->nworkers; i++) {
        store_release(&sys->workers[i].wake_word, 1u);
        casty__futex_wake(&sys->workers[i].wake_word);
    }
    for (uint32_t i = 0; i < sys->nworkers; i++)
        pthread_join(sys->workers[i].thread, NULL);
    free(sys->idle);
    sys->idle = NULL;
}
