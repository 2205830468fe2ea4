/* Event-sourced actors: casty_event_sourced() and the persist effects.
 *
 * The behavior is a setup (run again on every restart) that creates the
 * actor's runtime record and starts recovery, then a receive that is a
 * small state machine:
 *
 *   RECOVERING  load_snapshot -> (decode the state) -> replay(seq + 1)
 *               -> apply every event with on_event -> RUNNING
 *   RUNNING     commands go to on_command; casty_persisted(...) encodes
 *               the events with the next sequence numbers and hands them to
 *               the journal -> PERSISTING
 *   PERSISTING  on the journal's reply: failure fails the actor (its
 *               supervisor decides; the callback never runs, so no reply
 *               claims success); success applies the events, runs the
 *               callback, maybe saves a snapshot -> RUNNING
 *
 * Commands that arrive while RECOVERING or PERSISTING are stashed (copied
 * out of the mailbox) and handled in arrival order afterwards. Journal
 * replies carry a tag with this incarnation's epoch, so a reply addressed
 * to an earlier incarnation (the ref survives restarts) is ignored.
 *
 * Events and states are typed values: flat types are stored as their bytes,
 * others through their type's encode/decode. This file uses only the
 * journal interface, never a particular journal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "internal.h"

enum { TAG_SNAPSHOT_LOAD = 1, TAG_REPLAY, TAG_PERSIST, TAG_SNAPSHOT_SAVE };

#define MAX_ENCODED (16u << 20)

/* The configuration, shared by every incarnation (owned by the setup
 * behavior, freed with it). */
struct es_def {
    char *pid;
    casty_journal_t *journal;
    const casty_type_t *state_type;
    uint64_t state_type_id;
    unsigned char *initial_state;
    const casty_type_t **event_types;
    uint64_t *event_type_ids;
    size_t n_event_types;
    casty_apply_event_fn on_event;
    casty_command_fn on_command;
    uint32_t snapshot_every;
};

/* One event waiting to be persisted: its type and value (owned). */
struct pending_event {
    const casty_type_t *type;
    void *value;
};

/* The data of a BEH_PERSIST behavior. */
struct persist_effect {
    struct pending_event *events;
    size_t n, cap;
    casty_persisted_fn callback;
    void *arg;
};

enum phase { RECOVERING, RUNNING, PERSISTING };

/* One incarnation's record (the receive behavior's state, freed with it). */
struct es_actor {
    const struct es_def *def;
    enum phase phase;
    uint64_t epoch;
    uint64_t seq; /* last event applied */
    void *state;
    struct persist_effect *pending; /* while PERSISTING (owned) */
    struct casty_msg **stash;       /* heap copies, oldest first from stash_head */
    size_t stash_head, stash_n, stash_cap;
};

static uint64_t next_epoch;

/* ---- persist effects --------------------------------------------------------------- */

static void effect_free_parts(struct persist_effect *e)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->events[i].type->drop)
            e->events[i].type->drop(e->events[i].value);
        free(e->events[i].value);
    }
    free(e->events);
    free(e->arg);
    e->events = NULL;
    e->arg = NULL;
    e->n = e->cap = 0;
}

static void effect_drop(void *data)
{
    effect_free_parts(data);
}

static struct persist_effect *effect_of(casty_behavior_t *b)
{
    return (struct persist_effect *)(void *)b->data;
}

casty_behavior_t *casty_persisted_add(casty_behavior_t *effect, const casty_type_t *type,
                                      const void *event)
{
    if (effect == NULL || effect->kind != BEH_PERSIST || type == NULL ||
        (event == NULL && type->size > 0))
        goto fail;
    struct persist_effect *e = effect_of(effect);
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 2;
        struct pending_event *a = realloc(e->events, cap * sizeof *a);
        if (a == NULL)
            goto fail;
        e->events = a;
        e->cap = cap;
    }
    void *copy = malloc(type->size ? type->size : 1);
    if (copy == NULL)
        goto fail;
    if (type->size)
        memcpy(copy, event, type->size);
    e->events[e->n++] = (struct pending_event){type, copy};
    return effect;
fail:
    casty_behavior_free(effect);
    return NULL;
}

casty_behavior_t *casty_persisted(const casty_type_t *type, const void *event)
{
    struct persist_effect e = {0};
    casty_behavior_t *b = casty__behavior_make(BEH_PERSIST, &e, sizeof e, effect_drop);
    return b ? casty_persisted_add(b, type, event) : NULL;
}

casty_behavior_t *casty_persisted_then(casty_behavior_t *effect, casty_persisted_fn callback,
                                       const void *arg, size_t arg_size)
{
    if (effect == NULL || effect->kind != BEH_PERSIST || callback == NULL ||
        (arg_size && arg == NULL))
        goto fail;
    struct persist_effect *e = effect_of(effect);
    free(e->arg);
    e->arg = NULL;
    if (arg_size) {
        e->arg = malloc(arg_size);
        if (e->arg == NULL)
            goto fail;
        memcpy(e->arg, arg, arg_size);
    }
    e->callback = callback;
    return effect;
fail:
    casty_behavior_free(effect);
    return NULL;
}

/* ---- encoding ------------------------------------------------------------------------- */

/* Serialises a value of `type` into a malloc'd buffer. */
static int encode_value(const casty_type_t *type, const void *value, void **out, uint32_t *len)
{
    if (type->encode == NULL) {
        *out = malloc(type->size ? type->size : 1);
        if (*out == NULL)
            return CASTY_ENOMEM;
        if (type->size)
            memcpy(*out, value, type->size);
        *len = (uint32_t)type->size;
        return 0;
    }
    for (size_t cap = 256;; cap *= 2) {
        void *buf = malloc(cap);
        if (buf == NULL)
            return CASTY_ENOMEM;
        long n = type->encode(value, buf, cap);
        if (n >= 0) {
            *out = buf;
            *len = (uint32_t)n;
            return 0;
        }
        free(buf);
        if (n != CASTY_ENOSPC || cap >= MAX_ENCODED)
            return n == CASTY_ENOSPC ? CASTY_ERANGE : (int)n;
    }
}

/* Rebuilds a value of `type` (type->size bytes at `value`) from a record. */
static int decode_value(const casty_type_t *type, const void *data, uint32_t len, void *value)
{
    if (type->decode)
        return type->decode(data, len, value);
    if (len != type->size)
        return CASTY_ECORRUPT;
    if (len)
        memcpy(value, data, len);
    return 0;
}

static const casty_type_t *event_type_by_id(const struct es_def *d, uint64_t id)
{
    for (size_t i = 0; i < d->n_event_types; i++)
        if (d->event_type_ids[i] == id)
            return d->event_types[i];
    return NULL;
}

/* Calls on_event with a message view of `value`. */
static void apply_event(struct es_actor *a, const casty_type_t *type, void *value)
{
    struct casty_msg view;
    memset(&view, 0, sizeof view);
    view.type = type;
    view.data = value;
    view.kind = MSG_USER;
    view.owner = POOL_HEAP_OWNER;
    a->def->on_event(a->state, &view);
}

/* ---- the actor --------------------------------------------------------------------------- */

static uint64_t tag_of(const struct es_actor *a, int kind)
{
    return a->epoch << 4 | (uint64_t)kind;
}

static casty_behavior_t *fail(const char *what, int rc)
{
    char reason[160];
    snprintf(reason, sizeof reason, "event sourcing: %s: %s", what, casty_strerror(rc));
    return casty_failed(rc, reason);
}

static int stash_push(struct es_actor *a, const casty_msg_t *msg)
{
    if (a->stash_head + a->stash_n == a->stash_cap) {
        if (a->stash_head > 0) {
            memmove(a->stash, a->stash + a->stash_head, a->stash_n * sizeof *a->stash);
            a->stash_head = 0;
        } else {
            size_t cap = a->stash_cap ? a->stash_cap * 2 : 16;
            struct casty_msg **s = realloc(a->stash, cap * sizeof *s);
            if (s == NULL)
                return CASTY_ENOMEM;
            a->stash = s;
            a->stash_cap = cap;
        }
    }
    struct casty_msg *copy = casty__msg_take((struct casty_msg *)msg);
    if (copy == NULL)
        return CASTY_ENOMEM;
    a->stash[a->stash_head + a->stash_n++] = copy;
    return 0;
}

static void es_actor_free(void *state)
{
    struct es_actor *a = *(struct es_actor **)state;
    for (size_t i = 0; i < a->stash_n; i++)
        casty_msg_free(a->stash[a->stash_head + i]);
    free(a->stash);
    if (a->pending) {
        effect_free_parts(a->pending);
        free(a->pending);
    }
    if (a->def->state_type->drop)
        a->def->state_type->drop(a->state);
    free(a->state);
    free(a);
}

/* Hands the effect's events to the journal. Returns NULL (now PERSISTING)
 * or a failure behavior. Takes the effect. */
static casty_behavior_t *start_persist(casty_ctx_t *ctx, struct es_actor *a, casty_behavior_t *eff)
{
    struct persist_effect *e = effect_of(eff);
    casty_journal_entry_t *entries = calloc(e->n ? e->n : 1, sizeof *entries);
    int rc = entries ? 0 : CASTY_ENOMEM;
    size_t encoded = 0;
    for (; rc == 0 && encoded < e->n; encoded++) {
        void *buf;
        uint32_t len;
        rc = encode_value(e->events[encoded].type, e->events[encoded].value, &buf, &len);
        if (rc)
            break;
        entries[encoded] = (casty_journal_entry_t){a->seq + 1 + encoded,
                                                   casty_type_id(e->events[encoded].type), len,
                                                   buf};
    }
    if (rc == 0)
        rc = a->def->journal->ops->persist(a->def->journal, a->def->pid, entries, e->n,
                                           casty_ctx_self(ctx), tag_of(a, TAG_PERSIST));
    for (size_t i = 0; entries && i < encoded; i++)
        free((void *)entries[i].data);
    free(entries);
    if (rc) {
        casty_behavior_free(eff);
        return fail("persist", rc);
    }
    /* Keep the effect's parts; the behavior shell can go. */
    a->pending = malloc(sizeof *a->pending);
    if (a->pending == NULL) {
        casty_behavior_free(eff);
        return fail("persist", CASTY_ENOMEM);
    }
    *a->pending = *e;
    memset(e, 0, sizeof *e);
    casty_behavior_free(eff);
    a->phase = PERSISTING;
    return NULL;
}

/* Runs one command. Returns the behavior to hand back to the runtime
 * (casty_same() when nothing special happened). */
static casty_behavior_t *run_command(casty_ctx_t *ctx, struct es_actor *a, const casty_msg_t *cmd)
{
    casty_behavior_t *r = a->def->on_command(ctx, a->state, cmd);
    if (r == NULL)
        return fail("command handler", CASTY_ENOMEM);
    if (r->kind == BEH_PERSIST) {
        casty_behavior_t *f = start_persist(ctx, a, r);
        return f ? f : casty_same();
    }
    if (r->kind == BEH_UNHANDLED) {
        casty__note_unhandled(ctx->sys, casty_msg_type(cmd), casty_ctx_self(ctx));
        return casty_same();
    }
    if (r->kind == BEH_RECEIVE || r->kind == BEH_SETUP) {
        casty_behavior_free(r);
        return fail("command handler", CASTY_EINVAL); /* an entity cannot become something else */
    }
    return r;
}

/* Handles stashed commands while RUNNING. */
static casty_behavior_t *unstash(casty_ctx_t *ctx, struct es_actor *a)
{
    while (a->phase == RUNNING && a->stash_n > 0) {
        struct casty_msg *m = a->stash[a->stash_head++];
        a->stash_n--;
        casty_behavior_t *r = run_command(ctx, a, m);
        casty_msg_free(m);
        if (r != casty_same())
            return r;
    }
    if (a->stash_n == 0)
        a->stash_head = 0;
    return casty_same();
}

static casty_behavior_t *on_snapshot_loaded(casty_ctx_t *ctx, struct es_actor *a,
                                            const casty_journal_loaded_t *l)
{
    if (l->rc)
        return fail("load snapshot", l->rc);
    casty_journal_entry_t e;
    if (casty_journal_batch_get(l->batch, 0, &e)) {
        if (e.type_id != a->def->state_type_id)
            return fail("snapshot of another state type", CASTY_ECORRUPT);
        if (a->def->state_type->drop)
            a->def->state_type->drop(a->state);
        int rc = decode_value(a->def->state_type, e.data, e.len, a->state);
        if (rc)
            return fail("decode snapshot", rc);
        a->seq = e.seq;
    }
    const struct es_def *d = a->def;
    int rc = d->journal->ops->replay(d->journal, d->pid, a->seq + 1, casty_ctx_self(ctx),
                                     tag_of(a, TAG_REPLAY));
    return rc ? fail("replay", rc) : casty_same();
}

static casty_behavior_t *on_replayed(casty_ctx_t *ctx, struct es_actor *a,
                                     const casty_journal_loaded_t *l)
{
    if (l->rc)
        return fail("replay", l->rc);
    const struct es_def *d = a->def;
    size_t cursor = 0;
    casty_journal_entry_t e;
    void *value = NULL;
    size_t value_cap = 0;
    while (casty_journal_batch_next(l->batch, &cursor, &e)) {
        const casty_type_t *type = event_type_by_id(d, e.type_id);
        if (type == NULL || e.seq != a->seq + 1) {
            free(value);
            return fail(type ? "replay: gap in sequence numbers" : "replay: unknown event type",
                        CASTY_ECORRUPT);
        }
        if (type->size > value_cap || value == NULL) {
            free(value);
            value_cap = type->size ? type->size : 1;
            value = malloc(value_cap);
            if (value == NULL)
                return fail("replay", CASTY_ENOMEM);
        }
        int rc = decode_value(type, e.data, e.len, value);
        if (rc) {
            free(value);
            return fail("replay: decode event", rc);
        }
        apply_event(a, type, value);
        if (type->drop)
            type->drop(value);
        a->seq = e.seq;
    }
    free(value);
    a->phase = RUNNING;
    return unstash(ctx, a);
}

static void maybe_snapshot(casty_ctx_t *ctx, struct es_actor *a, uint64_t before)
{
    uint32_t every = a->def->snapshot_every;
    if (every == 0 || a->seq / every == before / every)
        return;
    void *buf;
    uint32_t len;
    if (encode_value(a->def->state_type, a->state, &buf, &len) != 0)
        return; /* a missed snapshot only costs a longer replay */
    casty_journal_entry_t e = {a->seq, a->def->state_type_id, len, buf};
    a->def->journal->ops->save_snapshot(a->def->journal, a->def->pid, &e, casty_ctx_self(ctx),
                                        tag_of(a, TAG_SNAPSHOT_SAVE));
    free(buf);
}

static casty_behavior_t *on_persisted(casty_ctx_t *ctx, struct es_actor *a,
                                      const casty_journal_written_t *w)
{
    struct persist_effect *e = a->pending;
    a->pending = NULL;
    if (w->rc) {
        effect_free_parts(e);
        free(e);
        return fail("persist", w->rc);
    }
    uint64_t before = a->seq;
    for (size_t i = 0; i < e->n; i++)
        apply_event(a, e->events[i].type, e->events[i].value);
    a->seq += e->n;
    if (e->callback)
        e->callback(ctx, a->state, e->arg);
    effect_free_parts(e);
    free(e);
    maybe_snapshot(ctx, a, before);
    a->phase = RUNNING;
    return unstash(ctx, a);
}

static casty_behavior_t *es_receive(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    struct es_actor *a = *(struct es_actor **)state;
    const casty_journal_loaded_t *l = casty_msg_as(msg, casty_journal_loaded_t);
    const casty_journal_written_t *w = casty_msg_as(msg, casty_journal_written_t);
    uint64_t tag = l ? l->tag : w ? w->tag : 0;
    if (l || w) {
        if (tag >> 4 != a->epoch)
            return casty_same(); /* for an earlier incarnation */
        switch (tag & 15) {
        case TAG_SNAPSHOT_LOAD:
            return l ? on_snapshot_loaded(ctx, a, l) : casty_same();
        case TAG_REPLAY:
            return l ? on_replayed(ctx, a, l) : casty_same();
        case TAG_PERSIST:
            return w && a->phase == PERSISTING ? on_persisted(ctx, a, w) : casty_same();
        default:
            return casty_same(); /* snapshot saved (or not: only replay gets longer) */
        }
    }
    if (a->phase != RUNNING) {
        int rc = stash_push(a, msg);
        return rc ? fail("stash", rc) : casty_same();
    }
    return run_command(ctx, a, msg);
}

static casty_behavior_t *es_setup(casty_ctx_t *ctx, void *arg)
{
    const struct es_def *d = *(const struct es_def **)arg;
    struct es_actor *a = calloc(1, sizeof *a);
    void *st = malloc(d->state_type->size ? d->state_type->size : 1);
    if (a == NULL || st == NULL) {
        free(a);
        free(st);
        return casty_failed(CASTY_ENOMEM, "event sourcing: out of memory");
    }
    memcpy(st, d->initial_state, d->state_type->size);
    a->def = d;
    a->state = st;
    a->phase = RECOVERING;
    a->epoch = ck_pr_faa_64(&next_epoch, 1) + 1;
    casty_behavior_t *b = casty_receive_with_drop(es_receive, &a, sizeof a, es_actor_free);
    if (b == NULL) {
        free(st);
        free(a);
        return casty_failed(CASTY_ENOMEM, "event sourcing: out of memory");
    }
    int rc = d->journal->ops->load_snapshot(d->journal, d->pid, casty_ctx_self(ctx),
                                            tag_of(a, TAG_SNAPSHOT_LOAD));
    if (rc) {
        casty_behavior_free(b);
        return fail("load snapshot", rc);
    }
    return b;
}

static void es_def_free(void *arg)
{
    struct es_def *d = *(struct es_def **)arg;
    free(d->pid);
    free(d->initial_state);
    free(d->event_types);
    free(d->event_type_ids);
    free(d);
}

casty_behavior_t *casty_event_sourced(const casty_event_sourced_t *cfg)
{
    if (cfg == NULL || cfg->persistence_id == NULL || cfg->persistence_id[0] == 0 ||
        cfg->journal == NULL || cfg->journal->ops == NULL || cfg->state_type == NULL ||
        cfg->initial_state == NULL || cfg->on_event == NULL || cfg->on_command == NULL ||
        (cfg->n_event_types > 0 && cfg->event_types == NULL))
        return NULL;
    struct es_def *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    size_t nt = cfg->n_event_types;
    d->pid = strdup(cfg->persistence_id);
    d->initial_state = malloc(cfg->state_type->size ? cfg->state_type->size : 1);
    d->event_types = malloc((nt ? nt : 1) * sizeof *d->event_types);
    d->event_type_ids = malloc((nt ? nt : 1) * sizeof *d->event_type_ids);
    if (!d->pid || !d->initial_state || !d->event_types || !d->event_type_ids) {
        es_def_free(&d);
        return NULL;
    }
    memcpy(d->initial_state, cfg->initial_state, cfg->state_type->size);
    for (size_t i = 0; i < nt; i++) {
        d->event_types[i] = cfg->event_types[i];
        d->event_type_ids[i] = casty_type_id(cfg->event_types[i]);
    }
    d->n_event_types = nt;
    d->journal = cfg->journal;
    d->state_type = cfg->state_type;
    d->state_type_id = casty_type_id(cfg->state_type);
    d->on_event = cfg->on_event;
    d->on_command = cfg->on_command;
    d->snapshot_every = cfg->snapshot_every;
    casty_behavior_t *b = casty__behavior_make(BEH_SETUP, &d, sizeof d, es_def_free);
    if (b == NULL) {
        es_def_free(&d);
        return NULL;
    }
    b->fn.setup = es_setup;
    return b;
}
