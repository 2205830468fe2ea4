/* The actor system object: creation and shutdown, the process registry that
 * lets a bare ref find its system, spawning and stopping actors, names of
 * top-level actors, paths and counters.
 *
 * The registry is the one piece of process-wide state: casty_tell takes no
 * system argument, so a ref's node id must lead to its system. The low 8
 * bits of a local node id index a 256-entry table; the other 56 bits are
 * random, so a ref into a system that has shut down never matches a newer
 * system that reuses the index. A thread that sends from outside a system
 * counts itself in the entry's `users` while it enqueues; shutdown empties
 * the entry and then waits for `users` to drain before it frees the system.
 * (This was a process-wide rwlock: its lock and unlock, two atomics on one
 * line for every sender into every system plus the calls, were ~6% of a
 * run where the main thread feeds actors.) The count is striped: a thread
 * counts on the line of its own stripe, so that many threads feeding one
 * system from outside do not all write one line per message. A worker
 * sending within its own system skips the registry entirely. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "atomics.h"
#include "internal.h"
#include "reactor.h"
#include "remote.h"
#include "timers.h"

#define REGISTRY_SIZE 256u
#define REGISTRY_STRIPES 8u
#define MAX_WORKERS 1024u
#define DEFAULT_THROUGHPUT 64u
#define NAME_MAX_LEN 255u
#define CASTY_HOST_MAX 255u

/* Lines of their own per entry: senders into different systems share
 * nothing, and senders into one system share only the line of `sys`,
 * which they read. */
struct registry_stripe {
    alignas(CACHE_LINE) uint32_t users; /* atomic: threads between acquire and release */
};

struct registry_entry {
    alignas(CACHE_LINE) struct casty_system *sys; /* atomic */
    struct registry_stripe stripes[REGISTRY_STRIPES];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER; /* add / remove */
static struct registry_entry registry[REGISTRY_SIZE];

CASTY_MESSAGE_DEFINE(casty_actor_started_t);
CASTY_MESSAGE_DEFINE(casty_actor_stopped_t);
CASTY_MESSAGE_DEFINE_LOCAL(casty_actor_failed_t);
CASTY_MESSAGE_DEFINE_LOCAL(casty_actor_restarted_t);
CASTY_MESSAGE_DEFINE_LOCAL(casty_dead_letter_t);
CASTY_MESSAGE_DEFINE_LOCAL(casty_unhandled_message_t);

/* ---- registry ----------------------------------------------------------------- */

static uint32_t next_stripe; /* atomic: hands threads their stripes in turn */
static _Thread_local uint32_t my_stripe = UINT32_MAX;

/* The calling thread's count in entry e. A thread always counts on the
 * same stripe, so its acquire and release pair on one counter. */
static inline uint32_t *users_of(struct registry_entry *e)
{
    if (my_stripe == UINT32_MAX)
        my_stripe = __atomic_fetch_add(&next_stripe, 1, __ATOMIC_RELAXED) % REGISTRY_STRIPES;
    return &e->stripes[my_stripe].users;
}

/* Finds the live system with this node id and returns it counted as in
 * use (release with casty__system_release, on the same thread), or NULL
 * (not counted). Nests: a thread may hold several, or the same one twice. */
struct casty_system *casty__system_acquire(uint64_t node, struct worker **w_out)
{
    if (w_out)
        *w_out = NULL;
    if (node == 0)
        return NULL;
    struct registry_entry *e = &registry[node & (REGISTRY_SIZE - 1)];
    uint32_t *users = users_of(e);
    /* Sequentially consistent increment, then load: either registry_remove's
     * wait sees this count, or this load sees the entry it emptied. */
    __atomic_fetch_add(users, 1, __ATOMIC_SEQ_CST);
    struct casty_system *sys = __atomic_load_n(&e->sys, __ATOMIC_SEQ_CST);
    if (sys && sys->node == node)
        return sys;
    __atomic_fetch_sub(users, 1, __ATOMIC_RELEASE);
    return NULL;
}

void casty__system_release(struct casty_system *sys)
{
    /* Release: everything this thread did to sys happens before the
     * remover's acquire load that sees the count drop. */
    __atomic_fetch_sub(users_of(&registry[sys->registry_index]), 1, __ATOMIC_RELEASE);
}

static int registry_add(struct casty_system *sys)
{
    uint64_t rnd;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    pthread_mutex_lock(&registry_lock);
    for (uint32_t i = 0; i < REGISTRY_SIZE; i++) {
        if (load_relaxed(&registry[i].sys) == NULL) {
            uint64_t high = rnd >> 8;
            if (high == 0)
                high = 1;
            sys->node = high << 8 | i;
            sys->registry_index = i;
            /* Release: the system's fields before the pointer. */
            store_release(&registry[i].sys, sys);
            pthread_mutex_unlock(&registry_lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return CASTY_ERANGE;
}

/* Empties sys's entry and waits until no sender still uses it (senders hold
 * an entry only while they enqueue: microseconds). Counts of a newer system
 * that took the entry meanwhile are waited for too, harmlessly. */
static void registry_remove(struct casty_system *sys)
{
    struct registry_entry *e = &registry[sys->registry_index];
    pthread_mutex_lock(&registry_lock);
    if (load_relaxed(&e->sys) == sys)
        __atomic_store_n(&e->sys, NULL, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&registry_lock);
    for (uint32_t i = 0; i < REGISTRY_STRIPES; i++)
        while (__atomic_load_n(&e->stripes[i].users, __ATOMIC_SEQ_CST) != 0)
            sched_yield();
}

/* ---- names of top-level actors (open addressing, under names_lock) ------------- */

static char tombstone;
#define TOMBSTONE (&tombstone)

static uint32_t name_hash(const char *name)
{
    return (uint32_t)XXH3_64bits(name, strlen(name));
}

static struct name_entry *names_find(struct casty_system *sys, const char *name)
{
    if (sys->names_cap == 0)
        return NULL;
    uint32_t mask = sys->names_cap - 1;
    for (uint32_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        struct name_entry *e = &sys->names[i];
        if (e->name == NULL)
            return NULL;
        if (e->name != TOMBSTONE && strcmp(e->name, name) == 0)
            return e;
    }
}

static int names_grow(struct casty_system *sys)
{
    uint32_t cap = sys->names_cap ? sys->names_cap * 2 : 64;
    struct name_entry *old = sys->names;
    uint32_t old_cap = sys->names_cap;
    struct name_entry *t = calloc(cap, sizeof *t);
    if (t == NULL)
        return CASTY_ENOMEM;
    sys->names = t;
    sys->names_cap = cap;
    sys->names_used = 0;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i].name == NULL || old[i].name == TOMBSTONE)
            continue;
        uint32_t j = name_hash(old[i].name) & (cap - 1);
        while (t[j].name)
            j = (j + 1) & (cap - 1);
        t[j] = old[i];
        sys->names_used++;
    }
    free(old);
    return 0;
}

static int names_insert(struct casty_system *sys, char *name, uint32_t slot)
{
    if ((sys->names_used + 1) * 2 > sys->names_cap) {
        int rc = names_grow(sys);
        if (rc)
            return rc;
    }
    uint32_t mask = sys->names_cap - 1;
    uint32_t i = name_hash(name) & mask;
    while (sys->names[i].name && sys->names[i].name != TOMBSTONE)
        i = (i + 1) & mask;
    if (sys->names[i].name == NULL)
        sys->names_used++;
    sys->names[i].name = name;
    sys->names[i].slot = slot;
    return 0;
}

/* Forgets c's name (if any) when it stops. Called by the stopping worker. */
void casty__names_remove(struct casty_system *sys, struct cell *c)
{
    store_release(&c->live_gen, 0u);
    struct cell_ext *e = load_acquire(&c->ext);
    if (e == NULL || load_relaxed(&e->name) == NULL)
        return;
    pthread_mutex_lock(&sys->names_lock);
    if (load_relaxed(&c->parent_slot) == 0) {
        struct name_entry *ent = names_find(sys, e->name);
        if (ent && ent->slot == c->slot)
            ent->name = TOMBSTONE;
    }
    free(e->name);
    store_relaxed(&e->name, (char *)NULL);
    pthread_mutex_unlock(&sys->names_lock);
}

/* Children, owned by the parent's worker. Named children are an intrusive
 * doubly linked list through the child cells, under the names lock, which
 * keeps casty_lookup's walks (and the uniqueness check of a new name) safe.
 * Anonymous children are entries of a table in the parent's cell_ext that
 * nothing but the parent's worker reads: spawning and reaping them takes no
 * lock, a named spawn does not walk past thousands of anonymous siblings,
 * and reaping one touches neither its cell nor its siblings' (the child's
 * worker reports its index with its slot): when children run on other
 * cores, each of those cells' lines was a cache miss on the parent's core
 * (fjcreate at 2 workers: casty__child_unlink 9-15% of the samples). */

/* Anonymous tables of at most this many entries are kept when they empty;
 * larger ones (a burst of children) are freed then. */
#define ANON_KEEP 4096u

static int anon_link(struct cell *parent, struct cell *child)
{
    struct cell_ext *e = load_relaxed(&parent->ext); /* (set by its own runs or before it started) */
    if (e == NULL && (e = casty__cell_ext(parent)) == NULL)
        return CASTY_ENOMEM;
    if (e->anon == NULL) {
        e->anon_len = 0;
        e->anon_free = ANON_NONE;
    }
    uint32_t i = e->anon_free;
    if (i != ANON_NONE) {
        e->anon_free = e->anon[i] & ~ANON_FREE_BIT;
    } else {
        if (e->anon_len == e->anon_cap) {
            uint32_t cap = e->anon_cap ? e->anon_cap * 2 : 16;
            uint32_t *grown = cap > e->anon_cap ? realloc(e->anon, cap * sizeof *grown) : NULL;
            if (grown == NULL)
                return CASTY_ENOMEM;
            e->anon = grown;
            e->anon_cap = cap;
        }
        i = e->anon_len++;
    }
    e->anon[i] = child->slot;
    child->anon_index = i;
    parent->anon_live++;
    return 0;
}

static void anon_unlink(struct cell *parent, uint32_t slot, uint32_t i)
{
    struct cell_ext *e = parent->ext;
    if (e == NULL || e->anon == NULL)
        return;
    if (i >= e->anon_len || e->anon[i] != slot) {
        /* Not where the report says (never expected): look it up. */
        for (i = 0; i < e->anon_len && e->anon[i] != slot; i++)
            ;
        if (i == e->anon_len)
            return;
    }
    e->anon[i] = ANON_FREE_BIT | e->anon_free;
    e->anon_free = i;
    if (--parent->anon_live == 0 && e->anon_cap > ANON_KEEP) {
        free(e->anon);
        e->anon = NULL;
        e->anon_cap = e->anon_len = 0;
        e->anon_free = ANON_NONE;
    }
}

int casty__child_link(struct casty_system *sys, struct cell *parent, struct cell *child,
                      bool anonymous)
{
    child->anon_child = anonymous;
    if (anonymous)
        return anon_link(parent, child);
    pthread_mutex_lock(&sys->names_lock);
    child->sib_prev = 0;
    child->sib_next = parent->first_child;
    if (parent->first_child)
        casty__cell_lookup(sys, parent->first_child)->sib_prev = child->slot;
    parent->first_child = child->slot;
    pthread_mutex_unlock(&sys->names_lock);
    return 0;
}

static void named_unlink(struct casty_system *sys, struct cell *parent, struct cell *child)
{
    pthread_mutex_lock(&sys->names_lock);
    if (child->sib_prev)
        casty__cell_lookup(sys, child->sib_prev)->sib_next = child->sib_next;
    else
        parent->first_child = child->sib_next;
    if (child->sib_next)
        casty__cell_lookup(sys, child->sib_next)->sib_prev = child->sib_prev;
    child->sib_next = child->sib_prev = 0;
    pthread_mutex_unlock(&sys->names_lock);
}

void casty__child_unlink(struct casty_system *sys, struct cell *parent, struct cell *child)
{
    if (child->anon_child)
        anon_unlink(parent, child->slot, child->anon_index);
    else
        named_unlink(sys, parent, child);
    child->anon_child = 0;
}

/* Unlinks a child its worker reported (child_ended, actor.c): an anonymous
 * one by its index, without reading its cell. */
void casty__child_unlink_reported(struct casty_system *sys, struct cell *parent,
                                  const struct sys_child *sc)
{
    if (sc->anon_index != ANON_NAMED)
        anon_unlink(parent, sc->slot, sc->anon_index);
    else
        named_unlink(sys, parent, casty__cell_lookup(sys, sc->slot));
}

/* Calls fn for every child's slot (the parent's worker). */
void casty__children_each(struct casty_system *sys, struct cell *parent,
                          void (*fn)(struct casty_system *sys, uint32_t slot, void *arg), void *arg)
{
    for (uint32_t s = parent->first_child; s != 0;) {
        uint32_t next = casty__cell_lookup(sys, s)->sib_next;
        fn(sys, s, arg);
        s = next;
    }
    struct cell_ext *e = load_relaxed(&parent->ext);
    if (e == NULL || e->anon == NULL || parent->anon_live == 0)
        return;
    for (uint32_t i = 0; i < e->anon_len; i++)
        if (!(e->anon[i] & ANON_FREE_BIT))
            fn(sys, e->anon[i], arg);
}

/* The live child of `parent` called `name`, or NULL. Under names_lock. */
static struct cell *child_named(struct casty_system *sys, struct cell *parent, const char *name)
{
    for (uint32_t s = parent->first_child; s != 0;) {
        struct cell *ch = casty__cell_lookup(sys, s);
        struct cell_ext *e = load_relaxed(&ch->ext);
        char *n = e ? load_relaxed(&e->name) : NULL;
        if (n && strcmp(n, name) == 0)
            return ch;
        s = ch->sib_next;
    }
    return NULL;
}

/* ---- create / shutdown ------------------------------------------------------------- */

void casty_system_config_init(casty_system_config_t *config)
{
    if (config == NULL)
        return;
    memset(config, 0, sizeof *config); /* name NULL: the file's, else "casty" */
}

static bool valid_system_name(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n < sizeof(((struct casty_system *)0)->name) && strpbrk(name, "/@ ") == NULL;
}

static void system_free(struct casty_system *sys)
{
    if (sys->dir && sys->free_slots)
        casty__cells_destroy(sys);
    else {
        free(sys->dir);
        free(sys->free_slots);
    }
    if (sys->workers) {
        for (uint32_t i = 0; i < sys->nworkers; i++)
            casty__pool_destroy(&sys->workers[i]);
        free(sys->workers);
    }
    casty__events_destroy(sys);
    for (uint32_t i = 0; i < sys->names_cap; i++)
        if (sys->names[i].name != TOMBSTONE)
            free(sys->names[i].name);
    free(sys->names);
    pthread_mutex_destroy(&sys->free_lock);
    pthread_mutex_destroy(&sys->inject_lock);
    pthread_mutex_destroy(&sys->idle_lock);
    pthread_mutex_destroy(&sys->names_lock);
    pthread_mutex_destroy(&sys->live_lock);
    pthread_cond_destroy(&sys->live_cond);
    pthread_rwlock_destroy(&sys->events_lock);
    free(sys);
}

int casty_system_create(const casty_system_config_t *config, casty_system_t **out)
{
    if (out == NULL)
        return CASTY_EINVAL;
    *out = NULL;
    casty_system_config_t defaults;
    casty_system_config_init(&defaults);
    if (config == NULL)
        config = &defaults;
    /* Explicit fields win over the file, the file over the defaults. */
    casty_system_config_t from_file;
    casty_config_system(config->file, &from_file);
    const char *name = config->name ? config->name : from_file.name ? from_file.name : "casty";
    uint32_t workers = config->workers ? config->workers : from_file.workers;
    uint32_t throughput = config->throughput ? config->throughput : from_file.throughput;
    if (!valid_system_name(name) || workers > MAX_WORKERS)
        return CASTY_EINVAL;

    struct casty_system *sys = aligned_alloc(CACHE_LINE, sizeof *sys);
    if (sys == NULL)
        return CASTY_ENOMEM;
    memset(sys, 0, sizeof *sys);
    strcpy(sys->name, name);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    sys->nworkers = workers ? workers : (uint32_t)(ncpu > 0 ? ncpu : 1);
    sys->throughput = throughput ? throughput : DEFAULT_THROUGHPUT;
    sys->config = config->file;
    pthread_mutexattr_t adaptive;
    pthread_mutexattr_init(&adaptive);
    /* (Held for a copy of 32 numbers: spin a little before sleeping.) */
    pthread_mutexattr_settype(&adaptive, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&sys->free_lock, &adaptive);
    pthread_mutexattr_destroy(&adaptive);
    pthread_mutex_init(&sys->inject_lock, NULL);
    casty__inject_init(sys);
    pthread_mutex_init(&sys->idle_lock, NULL);
    pthread_mutex_init(&sys->names_lock, NULL);
    pthread_mutex_init(&sys->live_lock, NULL);
    pthread_rwlock_init(&sys->events_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sys->live_cond, &ca);
    pthread_condattr_destroy(&ca);

    int rc = CASTY_ENOMEM;
    sys->dir = calloc(CELL_DIR_SIZE, sizeof(struct cell *));
    sys->free_slots = calloc(CELL_DIR_SIZE, sizeof(uint32_t *));
    sys->workers = aligned_alloc(CACHE_LINE, sys->nworkers * sizeof(struct worker));
    if (sys->dir == NULL || sys->free_slots == NULL || sys->workers == NULL)
        goto fail;
    memset(sys->workers, 0, sys->nworkers * sizeof(struct worker));
    rc = casty__reactor_create(&sys->reactor);
    if (rc)
        goto fail;
    rc = casty__timers_create(sys->reactor, &sys->timers);
    if (rc)
        goto fail_reactor;
    rc = registry_add(sys);
    if (rc)
        goto fail_timers;
    rc = casty__sched_start(sys);
    if (rc)
        goto fail_registered;
    if (config->remote) {
        rc = casty__remote_start(sys, config->remote, config->file);
        if (rc) {
            casty_system_shutdown(sys);
            return rc;
        }
    }
    *out = sys;
    return 0;

fail_registered:
    registry_remove(sys);
fail_timers:
    casty__timers_destroy(sys->timers);
fail_reactor:
    casty__reactor_destroy(sys->reactor);
fail:
    system_free(sys);
    return rc;
}

static void stop_all(struct casty_system *sys)
{
    uint32_t nchunks = load_acquire(&sys->nchunks);
    struct sys_stop stop = {.gen = 0};
    for (uint32_t ch = 0; ch < nchunks; ch++) {
        struct cell *base = load_acquire(&sys->dir[ch]);
        for (uint32_t i = 0; i < CELL_CHUNK; i++)
            if (load_acquire(&base[i].live_gen) != 0 && load_relaxed(&base[i].parent_slot) == 0)
                casty__send_sys(sys, base[i].slot, MSG_SYS_STOP, &stop, sizeof stop);
    }
}

int casty_system_shutdown(casty_system_t *sys)
{
    if (sys == NULL)
        return CASTY_EINVAL;
    struct worker *w = casty__tls_worker;
    if (w && w->sys == sys)
        return CASTY_EDEADLK;
    store_seqcst(&sys->state, (uint32_t)SYS_STOPPING);
    /* No new message is routed through this system's transport. */
    casty__remote_close(sys);
    /* No timer fires once this returns (each arg_free has run). */
    casty__timers_close(sys->timers);
    /* Stop every top-level actor (each stops its subtree first); re-send to
     * stragglers (spawned concurrently with the state change) every 100 ms
     * until none is left. The last stopper wakes this thread; the waits
     * still start at a millisecond and double, because a stopper that saw
     * the system running skips the wake-up (casty__actor_stopped). */
    uint32_t wait_ms = 1, since_stop_all_ms = 100;
    while (casty__live_count(sys) != 0) {
        if (since_stop_all_ms >= 100) {
            stop_all(sys);
            since_stop_all_ms = 0;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)wait_ms * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&sys->live_lock);
        if (casty__live_count(sys) != 0)
            pthread_cond_timedwait(&sys->live_cond, &sys->live_lock, &ts);
        pthread_mutex_unlock(&sys->live_lock);
        since_stop_all_ms += wait_ms;
        wait_ms = wait_ms * 2 > 100 ? 100 : wait_ms * 2;
    }
    registry_remove(sys);
    casty__sched_stop(sys);
    casty__timers_destroy(sys->timers);
    sys->timers = NULL;
    casty__reactor_destroy(sys->reactor);
    sys->reactor = NULL;
    casty__remote_free(sys);
    store_seqcst(&sys->state, (uint32_t)SYS_STOPPED);
    system_free(sys);
    return 0;
}

/* Actors started and not yet stopped. Sequentially consistent loads: after
 * the decrement and fence in casty__actor_stopped, the last of several
 * concurrent stoppers sees every other's decrement. */
int64_t casty__live_count(const struct casty_system *sys)
{
    int64_t n = __atomic_load_n(&sys->live, __ATOMIC_SEQ_CST);
    for (uint32_t i = 0; i < sys->nworkers; i++)
        n += __atomic_load_n(&sys->workers[i].live, __ATOMIC_SEQ_CST);
    return n;
}

static void count_spawned(struct casty_system *sys)
{
    struct worker *w = casty__tls_worker;
    if (w && w->sys == sys) {
        /* Only the owner writes its counters (others only sum them): a
         * plain add and an atomic store each, not two locked adds per
         * spawn. An increment needs no barrier: it cannot bring the sum to
         * zero, and it happens before this actor's own decrement (on this
         * thread, or on another after the messages that moved the actor
         * there). */
        store_relaxed(&w->live, load_relaxed(&w->live) + 1);
        store_relaxed(&w->spawned, load_relaxed(&w->spawned) + 1);
        return;
    }
    __atomic_fetch_add(&sys->live, 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&sys->spawned, 1, __ATOMIC_RELAXED);
}

/* Counts an actor as stopped; wakes shutdown when it was the last. */
void casty__actor_stopped(struct casty_system *sys)
{
    struct worker *w = casty__tls_worker;
    int64_t *live = w && w->sys == sys ? &w->live : &sys->live;
    if (w && w->sys == sys && load_acquire(&sys->state) == SYS_RUNNING) {
        /* The owner is the one writer of its count: no locked operation
         * per stop while the system runs. Shutdown stores the state and
         * then sums; it misses this decrement only if its store comes
         * after the load above and its sum before the store below lands,
         * and it sums again after a millisecond (casty_system_shutdown). */
        store_release(live, load_relaxed(live) - 1);
        return;
    }
    /* Stopping (or a thread outside the pool, which shares sys->live):
     * sequentially consistent, so that the last of several concurrent
     * stoppers sees every other's decrement and the sum reach zero. */
    __atomic_fetch_sub(live, 1, __ATOMIC_SEQ_CST);
    if (load_acquire(&sys->state) == SYS_RUNNING)
        return;
    if (casty__live_count(sys) == 0) {
        pthread_mutex_lock(&sys->live_lock);
        pthread_cond_broadcast(&sys->live_cond);
        pthread_mutex_unlock(&sys->live_lock);
    }
}

/* ---- spawn / stop --------------------------------------------------------------------- */

static bool valid_actor_name(const char *name)
{
    size_t n = strnlen(name, NAME_MAX_LEN + 1);
    return n > 0 && n <= NAME_MAX_LEN && strchr(name, '/') == NULL && name[0] != '$';
}

static bool spawnable(const struct casty_behavior *b)
{
    return b && (b->kind == BEH_RECEIVE || b->kind == BEH_SETUP || b->kind == BEH_SUPERVISE ||
                 b->kind == BEH_LIFECYCLE);
}

/* Registers `name` for a new cell: in the top-level table, or among the
 * parent's children. Returns 0, CASTY_EEXIST or CASTY_ENOMEM. */
static int claim_name(struct casty_system *sys, struct cell *parent, struct cell *c,
                      const char *name)
{
    struct cell_ext *e = casty__cell_ext(c);
    char *copy = strdup(name);
    if (e == NULL || copy == NULL) {
        free(copy);
        return CASTY_ENOMEM;
    }
    int rc;
    pthread_mutex_lock(&sys->names_lock);
    if (parent)
        rc = child_named(sys, parent, name) ? CASTY_EEXIST : 0;
    else
        rc = names_find(sys, name) ? CASTY_EEXIST : names_insert(sys, copy, c->slot);
    if (rc == 0)
        store_relaxed(&e->name, copy);
    pthread_mutex_unlock(&sys->names_lock);
    if (rc)
        free(copy);
    return rc;
}

/* Spawns a top-level actor (parent NULL) or a child of `parent`, which must
 * be the cell the calling worker is running. */
/* casty.toml settings for an actor called `name`: a bounded mailbox when
 * the caller gave no options, a supervision wrapper when the behavior has
 * none. Returns the (possibly wrapped) behavior, NULL when out of memory
 * (the behavior is freed then). */
static casty_behavior_t *apply_config(struct casty_system *sys, casty_behavior_t *behavior,
                                      const char *name, const casty_spawn_options_t **options,
                                      casty_spawn_options_t *storage)
{
    casty_actor_settings_t s;
    casty_config_actor(sys->config, name, &s);
    if (*options == NULL && s.mailbox.capacity) {
        memset(storage, 0, sizeof *storage);
        storage->mailbox_capacity = s.mailbox.capacity;
        storage->overflow = s.mailbox.overflow;
        *options = storage;
    }
    if (s.supervision.enabled && !casty__behavior_find(behavior, BEH_SUPERVISE)) {
        casty_strategy_t st = {.max_restarts = s.supervision.max_restarts,
                               .within_seconds = s.supervision.within_seconds};
        behavior = casty_supervise(behavior, &st);
    }
    return behavior;
}

static inline __attribute__((always_inline)) int spawn_cell(struct casty_system *sys,
                                                           struct cell *parent,
                                                           casty_behavior_t *behavior,
                                                           const char *name,
                                                           const casty_spawn_options_t *options,
                                                           casty_ref_t *out, struct cell **held,
                                                           bool quiet);

int casty__spawn_in(struct casty_system *sys, struct cell *parent, casty_behavior_t *behavior,
                    const char *name, const casty_spawn_options_t *options, casty_ref_t *out)
{
    casty_spawn_options_t storage;
    if (sys && sys->config && spawnable(behavior)) {
        behavior = apply_config(sys, behavior, name, &options, &storage);
        if (behavior == NULL) {
            if (out)
                *out = CASTY_REF_NONE;
            return CASTY_ENOMEM;
        }
    }
    return spawn_cell(sys, parent, behavior, name, options, out, NULL, false);
}

int casty__spawn_internal(struct casty_system *sys, casty_behavior_t *behavior, const char *name,
                          casty_ref_t *out)
{
    return spawn_cell(sys, NULL, behavior, name, NULL, out, NULL, false);
}

int casty__spawn_promise(struct casty_system *sys, casty_behavior_t *behavior, casty_ref_t *out)
{
    return spawn_cell(sys, NULL, behavior, NULL, NULL, out, NULL, true);
}

int casty__spawn_held(struct casty_system *sys, casty_behavior_t *behavior, casty_ref_t *out,
                      struct cell **held)
{
    *held = NULL;
    return spawn_cell(sys, NULL, behavior, NULL, NULL, out, held, true);
}

/* Inline in its two callers: a spawn from a handler (casty__spawn_in) is
 * otherwise three calls deep, each with its prologue. */
static inline __attribute__((always_inline)) int spawn_cell(struct casty_system *sys,
                                                           struct cell *parent,
                                                           casty_behavior_t *behavior,
                                                           const char *name,
                                                           const casty_spawn_options_t *options,
                                                           casty_ref_t *out, struct cell **held,
                                                           bool quiet)
{
    int rc = CASTY_EINVAL;
    if (out)
        *out = CASTY_REF_NONE;
    if (sys == NULL || !spawnable(behavior) || (name && !valid_actor_name(name)) ||
        (options && (unsigned)options->overflow > CASTY_OVERFLOW_BACKPRESSURE))
        goto fail_behavior;
    rc = CASTY_ESHUTDOWN;
    if (load_acquire(&sys->state) != SYS_RUNNING || (parent && parent->status != CELL_ALIVE))
        goto fail_behavior;

    struct cell *c;
    rc = casty__cell_alloc(sys, &c);
    if (rc)
        goto fail_behavior;
    uint32_t gen = c->alloc_gen + 1;
    if (gen == 0)
        gen = 1;
    c->alloc_gen = gen;
    store_relaxed(&c->parent_slot, parent ? parent->slot : 0u);
    store_relaxed(&c->parent_gen, parent ? parent->gen : 0u);
    if (name) {
        rc = claim_name(sys, parent, c, name);
        if (rc)
            goto fail_slot;
    }
    uint32_t capacity = options ? options->mailbox_capacity : 0;
    struct cell_ext *e = capacity ? casty__cell_ext(c) : load_acquire(&c->ext);
    if (capacity && e == NULL) {
        rc = CASTY_ENOMEM;
        goto fail_name;
    }
    uint32_t overflow = capacity ? (uint32_t)options->overflow : 0u;
    /* (Stored only when they change: senders read this line on every
     * tell, and a reused cell usually keeps its ext and its bound.) */
    if (e && (load_relaxed(&e->capacity) != capacity || load_relaxed(&e->overflow) != overflow)) {
        store_relaxed(&e->overflow, overflow);
        store_relaxed(&e->capacity, capacity);
    }
    if (load_relaxed(&c->bounded) != (capacity != 0))
        store_relaxed(&c->bounded, capacity != 0 ? 1u : 0u);
    if (parent && (rc = casty__child_link(sys, parent, c, name == NULL)) != 0)
        goto fail_name;
    count_spawned(sys);
    store_release(&c->live_gen, gen);
    struct worker *w = casty__tls_worker;
    struct sys_start start = {.behavior = behavior, .gen = gen, .quiet = quiet};
    /* (A worker never spawns a quiet actor: casty_ask refuses to run on
     * one.) */
    bool started = w == NULL ? casty__start_spawned_outside(sys, c, behavior, gen, held != NULL,
                                                            quiet)
                             : !quiet && w->sys == sys && casty__start_spawned(w, c, behavior, gen);
    if (started && held != NULL && w == NULL)
        *held = c;
    rc = started   ? 0
         : held    ? CASTY__NOT_HELD
                   : casty__send_sys(sys, c->slot, MSG_SYS_START, &start, sizeof start);
    if (rc) {
        /* Out of memory for one node, or a held start that could not
         * start in place: undo as if it had started and stopped. */
        if (parent)
            casty__child_unlink(sys, parent, c);
        casty__names_remove(sys, c);
        casty__actor_stopped(sys);
        goto fail_slot;
    }
    if (out)
        *out = casty__cell_ref(sys, c->slot, gen);
    return 0;

fail_name:
    casty__names_remove(sys, c);
fail_slot:
    casty__cell_free_slot(sys, c->slot);
fail_behavior:
    casty_behavior_free(behavior);
    return rc;
}

int casty_spawn(casty_system_t *sys, casty_behavior_t *behavior, const char *name,
                const casty_spawn_options_t *options, casty_ref_t *out)
{
    return casty__spawn_in(sys, NULL, behavior, name, options, out);
}

int casty_ctx_spawn(casty_ctx_t *ctx, casty_behavior_t *behavior, const char *name,
                    const casty_spawn_options_t *options, casty_ref_t *out)
{
    if (ctx == NULL) {
        casty_behavior_free(behavior);
        if (out)
            *out = CASTY_REF_NONE;
        return CASTY_EINVAL;
    }
    return casty__spawn_in(ctx->sys, ctx->cell, behavior, name, options, out);
}

int casty_ctx_stop(casty_ctx_t *ctx, casty_ref_t ref)
{
    if (ctx == NULL)
        return CASTY_EINVAL;
    return casty_stop(ref);
}

int casty_stop(casty_ref_t ref)
{
    uint32_t gen = (uint32_t)(ref.actor >> 32);
    if (gen == 0)
        return CASTY_EINVAL;
    struct sys_stop stop = {.gen = gen};
    struct worker *w = casty__tls_worker;
    if (w && w->sys->node == ref.node) {
        int rc = casty__send_sys(w->sys, (uint32_t)ref.actor, MSG_SYS_STOP, &stop, sizeof stop);
        return rc == CASTY_ENOENT ? 0 : rc;
    }
    struct casty_system *sys = casty__system_acquire(ref.node, NULL);
    if (sys == NULL)
        return CASTY_ESHUTDOWN;
    int rc = casty__send_sys(sys, (uint32_t)ref.actor, MSG_SYS_STOP, &stop, sizeof stop);
    casty__system_release(sys);
    return rc == CASTY_ENOENT ? 0 : rc;
}

/* ---- context, paths, stats -------------------------------------------------------------- */

casty_ref_t casty_ctx_self(const casty_ctx_t *ctx)
{
    if (ctx == NULL)
        return CASTY_REF_NONE;
    return casty__cell_ref(ctx->sys, ctx->cell->slot, ctx->cell->gen);
}

casty_ref_t casty_ctx_parent(const casty_ctx_t *ctx)
{
    if (ctx == NULL || ctx->cell->parent_slot == 0)
        return CASTY_REF_NONE;
    return casty__cell_ref(ctx->sys, ctx->cell->parent_slot, ctx->cell->parent_gen);
}

casty_system_t *casty_ctx_system(const casty_ctx_t *ctx)
{
    return ctx ? ctx->sys : NULL;
}

/* Writes "/a/b/c" for cell c into buf (reversed walk up the parents).
 * Under names_lock. Returns the length or CASTY_ENOSPC. */
static int path_of(struct casty_system *sys, struct cell *c, char *buf, size_t len)
{
    const char *parts[64];
    char anon[64][16];
    int n = 0;
    for (struct cell *x = c; x && n < 64;) {
        struct cell_ext *e = load_relaxed(&x->ext);
        const char *name = e ? load_relaxed(&e->name) : NULL;
        if (name == NULL) {
            snprintf(anon[n], sizeof anon[n], "$%u", x->slot);
            name = anon[n];
        }
        parts[n++] = name;
        uint32_t p = load_relaxed(&x->parent_slot);
        x = p ? casty__cell_lookup(sys, p) : NULL;
    }
    size_t used = 0;
    for (int i = n - 1; i >= 0; i--) {
        int k = snprintf(buf + used, len - used, "/%s", parts[i]);
        if (k < 0 || (size_t)k >= len - used)
            return CASTY_ENOSPC;
        used += (size_t)k;
    }
    return (int)used;
}

int casty_ref_path(casty_ref_t ref, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return CASTY_EINVAL;
    struct casty_system *sys = casty__system_acquire(ref.node, NULL);
    if (sys == NULL)
        return CASTY_ESHUTDOWN;
    uint32_t slot = (uint32_t)ref.actor, gen = (uint32_t)(ref.actor >> 32);
    struct cell *c = casty__cell_lookup(sys, slot);
    int n = CASTY_ENOENT;
    pthread_mutex_lock(&sys->names_lock);
    if (c && gen != 0 && load_acquire(&c->live_gen) == gen) {
        /* A system that listens for other nodes is named by its address. */
        char host[CASTY_HOST_MAX + 1];
        uint16_t port = 0;
        if (sys->remote == NULL || casty_system_address(sys, host, sizeof host, &port) != 0)
            n = snprintf(buf, len, "casty://%s@local/user", sys->name);
        else
            n = snprintf(buf, len, "casty://%s@%s:%u/user", sys->name, host, port);
        if (n < 0 || (size_t)n >= len) {
            n = CASTY_ENOSPC;
        } else {
            int k = path_of(sys, c, buf + n, len - (size_t)n);
            n = k < 0 ? k : n + k;
        }
    }
    pthread_mutex_unlock(&sys->names_lock);
    casty__system_release(sys);
    return n;
}

int casty_lookup(casty_system_t *sys, const char *path, casty_ref_t *out)
{
    if (out)
        *out = CASTY_REF_NONE;
    if (sys == NULL || path == NULL || out == NULL || path[0] != '/')
        return CASTY_EINVAL;
    int rc = CASTY_ENOENT;
    struct cell *c = NULL;
    pthread_mutex_lock(&sys->names_lock);
    for (const char *p = path + 1; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char seg[NAME_MAX_LEN + 1];
        if (n == 0 || n > NAME_MAX_LEN) {
            rc = n == 0 && end == NULL ? rc : CASTY_EINVAL;
            c = n == 0 && end == NULL ? c : NULL;
            break;
        }
        memcpy(seg, p, n);
        seg[n] = 0;
        if (c == NULL) {
            struct name_entry *e = names_find(sys, seg);
            c = e ? casty__cell_lookup(sys, e->slot) : NULL;
        } else {
            c = child_named(sys, c, seg);
        }
        if (c == NULL)
            break;
        p += n;
        if (*p == '/')
            p++;
    }
    uint32_t gen = c ? load_acquire(&c->live_gen) : 0;
    if (c && gen) {
        *out = casty__cell_ref(sys, c->slot, gen);
        rc = 0;
    }
    pthread_mutex_unlock(&sys->names_lock);
    return rc;
}

const char *casty_system_name(const casty_system_t *sys)
{
    return sys ? sys->name : NULL;
}

uint32_t casty_system_workers(const casty_system_t *sys)
{
    return sys ? sys->nworkers : 0;
}

uint64_t casty_system_node(const casty_system_t *sys)
{
    return sys ? sys->node : 0;
}

void casty_system_stats(const casty_system_t *sys, casty_system_stats_t *out)
{
    if (sys == NULL || out == NULL)
        return;
    int64_t live = casty__live_count(sys);
    uint64_t spawned = load_relaxed(&sys->spawned);
    for (uint32_t i = 0; i < sys->nworkers; i++)
        spawned += load_relaxed(&sys->workers[i].spawned);
    out->actors_live = live > 0 ? (uint64_t)live : 0;
    out->actors_spawned = spawned;
    out->dead_letters = load_relaxed(&sys->dead_letters);
    out->unhandled = load_relaxed(&sys->unhandled);
}
