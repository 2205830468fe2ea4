/* Running an actor: what a worker does with a cell it took from the
 * scheduler. System messages first (start, stop), then up to `throughput`
 * user messages through the current behavior, applying each handler's
 * returned behavior (become, same, stop, unhandled, failed, restart), then
 * either re-queue the actor or mark it idle. Also the two ways messages
 * enter a mailbox (casty__deliver for user messages, casty__send_sys for
 * system messages) and dead letters.
 *
 * It does not decide where actors run (sched.c), how nodes are allocated
 * (pool.c) or how the mailbox synchronises (mailbox.h). */
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "internal.h"
#include "mailbox.h"

static void stop_actor(struct worker *w, struct cell *c);

static struct worker *worker_of(struct casty_system *sys)
{
    struct worker *w = casty__tls_worker;
    return (w && w->sys == sys) ? w : NULL;
}

/* ---- entering a mailbox ---------------------------------------------------------- */

/* Enqueues a user message for `to` in `sys`: a copy of `value` (type->size
 * bytes), or `heap_value` moved in. A ref whose slot was never allocated
 * becomes a dead letter at once; a stale generation becomes one when the
 * actor's worker meets it. Returns 0 or CASTY_ENOMEM (heap_value is
 * consumed either way). Any thread. */
int casty__deliver(struct casty_system *sys, casty_ref_t to, const casty_type_t *type,
                   const void *value, void *heap_value)
{
    struct worker *w = worker_of(sys);
    uint32_t slot = (uint32_t)to.actor;
    uint32_t gen = (uint32_t)(to.actor >> 32);
    struct casty_msg *m = casty__msg_alloc(sys, w, heap_value ? 0 : type->size);
    if (m == NULL) {
        if (heap_value) {
            if (type->drop)
                type->drop(heap_value);
            free(heap_value);
        }
        return CASTY_ENOMEM;
    }
    m->type = type;
    m->gen = gen;
    if (heap_value) {
        m->data = heap_value;
        m->flags = MSG_DATA_HEAP;
    } else if (type->size) {
        memcpy(m->payload, value, type->size);
    }
    struct cell *c = casty__cell_lookup(sys, slot);
    if (c == NULL || gen == 0) {
        casty__dead_letter(sys, w, m, to);
        return 0;
    }
    if (mbox_push(c, m))
        casty__schedule(sys, c);
    return 0;
}

/* Enqueues a system message (payload copied) for the cell in `slot`.
 * Returns 0, CASTY_ENOENT (no such slot) or CASTY_ENOMEM. Any thread. */
int casty__send_sys(struct casty_system *sys, uint32_t slot, uint8_t kind, const void *payload,
                    size_t size)
{
    struct cell *c = casty__cell_lookup(sys, slot);
    if (c == NULL)
        return CASTY_ENOENT;
    struct worker *w = worker_of(sys);
    struct casty_msg *m = casty__msg_alloc(sys, w, size);
    if (m == NULL)
        return CASTY_ENOMEM;
    m->type = NULL;
    m->kind = kind;
    m->gen = 0;
    memcpy(m->payload, payload, size);
    if (mbox_push_sys(c, m))
        casty__schedule(sys, c);
    return 0;
}

/* Counts and publishes a message that cannot be delivered, then releases
 * it. DeadLetter events that are themselves undeliverable are only counted
 * (no loop). */
/* Counts and publishes a message that was not delivered (the caller
 * releases it). */
void casty__note_dead_letter(struct casty_system *sys, const casty_type_t *type,
                             casty_ref_t intended)
{
    ck_pr_inc_64(&sys->dead_letters);
    if (type != &casty_dead_letter_t_type) {
        casty_dead_letter_t ev = {.msg_type = type, .recipient = intended};
        casty__publish(sys, &casty_dead_letter_t_type, &ev);
    }
}

void casty__dead_letter(struct casty_system *sys, struct worker *w, struct casty_msg *m,
                        casty_ref_t intended)
{
    casty__note_dead_letter(sys, m->type, intended);
    casty__msg_release(w, m);
}

/* ---- applying behaviors ------------------------------------------------------------ */

static void set_current(struct cell *c, struct casty_behavior *b)
{
    if (c->behavior && c->behavior != c->initial && c->behavior != b)
        casty_behavior_free(c->behavior);
    c->behavior = b;
}

static void publish_failure(struct casty_system *sys, struct cell *c, int code, const char *why)
{
    casty_actor_failed_t ev = {
        .ref = casty__cell_ref(sys, c->slot, c->gen),
        .code = code,
        .reason = why ? why : casty_strerror(code),
    };
    casty__publish(sys, &casty_actor_failed_t_type, &ev);
}

/* Applies the behavior a handler (or setup) returned. `msg` is the message
 * being handled, NULL at start. Ownership of `next` passes to the cell. */
static void apply_next(struct worker *w, struct cell *c, struct casty_behavior *next,
                       const struct casty_msg *msg)
{
    struct casty_system *sys = w->sys;
    for (int depth = 0;; depth++) {
        if (next == NULL || depth > 64) {
            casty_behavior_free(next);
            publish_failure(sys, c, next ? CASTY_EINVAL : CASTY_ENOMEM,
                            next ? "setup nested too deeply" : "out of memory building behavior");
            stop_actor(w, c);
            return;
        }
        switch (next->kind) {
        case BEH_SAME:
            if (c->behavior == NULL) {
                publish_failure(sys, c, CASTY_EINVAL, "setup returned same");
                stop_actor(w, c);
            }
            return;
        case BEH_RECEIVE:
            set_current(c, next);
            return;
        case BEH_SETUP: {
            struct casty_ctx ctx = {c, w, sys};
            struct casty_behavior *r = next->fn.setup(&ctx, next->size ? next->data : NULL);
            if (next != c->initial)
                casty_behavior_free(next);
            next = r;
            continue;
        }
        case BEH_STOPPED:
            stop_actor(w, c);
            return;
        case BEH_UNHANDLED:
            if (msg) {
                ck_pr_inc_64(&sys->unhandled);
                casty_unhandled_message_t ev = {
                    .msg_type = msg->type,
                    .recipient = casty__cell_ref(sys, c->slot, c->gen),
                };
                casty__publish(sys, &casty_unhandled_message_t_type, &ev);
            }
            if (c->behavior == NULL) {
                publish_failure(sys, c, CASTY_EINVAL, "setup returned unhandled");
                stop_actor(w, c);
            }
            return;
        case BEH_RESTART:
            set_current(c, NULL);
            next = casty__behavior_instantiate(c->initial);
            continue;
        case BEH_FAILED: {
            const struct failure *f = (const struct failure *)(const void *)next->data;
            publish_failure(sys, c, f->code, f->reason[0] ? f->reason : NULL);
            casty_behavior_free(next);
            stop_actor(w, c);
            return;
        }
        default:
            publish_failure(sys, c, CASTY_EINVAL, "not a behavior");
            stop_actor(w, c);
            return;
        }
    }
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void start_actor(struct worker *w, struct cell *c, const struct sys_start *s)
{
    struct casty_system *sys = w->sys;
    c->gen = s->gen;
    c->status = CELL_ALIVE;
    c->initial = s->behavior;
    c->behavior = NULL;
    casty_actor_started_t ev = {.ref = casty__cell_ref(sys, c->slot, c->gen)};
    casty__publish(sys, &casty_actor_started_t_type, &ev);
    if (load_acquire(&sys->state) != SYS_RUNNING) {
        stop_actor(w, c); /* spawned while the system was stopping */
        return;
    }
    apply_next(w, c, casty__behavior_instantiate(c->initial), NULL);
}

static void stop_actor(struct worker *w, struct cell *c)
{
    struct casty_system *sys = w->sys;
    set_current(c, NULL);
    casty_behavior_free(c->initial);
    c->initial = NULL;
    c->status = CELL_FREE;
    casty__names_remove(sys, c);
    casty_actor_stopped_t ev = {.ref = casty__cell_ref(sys, c->slot, c->gen)};
    casty__publish(sys, &casty_actor_stopped_t_type, &ev);
    /* The slot may be reused at once: a new incarnation's START arrives as
     * a system message, which the idle protocol never strands. */
    casty__cell_free_slot(sys, c);
    casty__actor_stopped(sys);
}

static void process_sys(struct worker *w, struct cell *c)
{
    struct casty_msg *m = mbox_take_sys(c);
    while (m) {
        struct casty_msg *next = m->next;
        if (m->kind == MSG_SYS_START) {
            start_actor(w, c, (const struct sys_start *)m->data);
        } else if (m->kind == MSG_SYS_STOP) {
            const struct sys_stop *s = (const struct sys_stop *)m->data;
            if (c->status == CELL_ALIVE && (s->gen == 0 || s->gen == c->gen))
                stop_actor(w, c);
        }
        casty__msg_release(w, m);
        m = next;
    }
}

/* ---- the run ------------------------------------------------------------------------- */

static void invoke(struct worker *w, struct cell *c, struct casty_msg *m)
{
    struct casty_ctx ctx = {c, w, w->sys};
    struct casty_behavior *b = c->behavior;
    struct casty_behavior *next = b->fn.receive(&ctx, m, b->size ? b->data : NULL);
    if (next != casty_same())
        apply_next(w, c, next, m);
}

/* Runs actor c on worker w: at most `throughput` user messages, system
 * messages before each. Called only by the worker holding c's schedule. */
void casty__run_actor(struct worker *w, struct cell *c)
{
    struct casty_system *sys = w->sys;
    uint32_t budget = sys->throughput;
    process_sys(w, c);
    while (budget > 0) {
        struct casty_msg *m = mbox_pop(c, w);
        if (m == NULL)
            break;
        budget--;
        if (m->gen != c->gen || c->status != CELL_ALIVE) {
            /* Perhaps a START for this generation is waiting. */
            if (mbox_has_sys(c))
                process_sys(w, c);
            if (m->gen != c->gen || c->status != CELL_ALIVE) {
                casty__note_dead_letter(sys, m->type, casty__cell_ref(sys, c->slot, m->gen));
                casty__msg_drop_value(m); /* the node itself stays as the queue head */
                continue;
            }
        }
        invoke(w, c, m);
        if (load_relaxed(&c->sysq) != NULL)
            process_sys(w, c);
    }
    if (budget == 0 || mbox_has_sys(c) || !mbox_try_idle(c, w)) {
        casty__schedule_requeue(w, c);
        return;
    }
    /* Idle now; a system message pushed just before may have found us
     * still scheduled (see mailbox.h): take the schedule back for it. */
    if (mbox_has_sys(c) && mbox_claim(c))
        casty__schedule_requeue(w, c);
}
