/* casty — event sourcing and journals (public).
 *
 * A journal stores, per persistence id (pid), an ordered log of events
 * (sequence numbers 1, 2, 3, ...) and optionally the latest snapshot of the
 * state. It is a small table of asynchronous operations (casty_journal_ops_t):
 * each accepted operation answers exactly once with a message to the
 * `reply_to` ref given to it, so actors never block on storage:
 *
 *   persist, save_snapshot         -> casty_journal_written_t {tag, rc, seq}
 *   replay, load_snapshot          -> casty_journal_loaded_t  {tag, rc, batch}
 *
 * rc 0 means done (for writes: durable, as the journal defines it), a
 * negative code means failed (CASTY_ENOSPC, -EIO, ...). An operation that
 * returns an error itself is not accepted and sends nothing.
 *
 * Two journals ship: memory (tests, examples; one journal may serve several
 * systems in one process) and file (segment files written through the
 * system's io_uring reactor with group commit; see docs/persistence.md).
 *
 * casty_event_sourced() builds an actor behavior on top of a journal:
 * recovery (snapshot, then the events after it) before the first command,
 * commands stashed while recovering or persisting, events applied with a
 * pure on_event, and callbacks run only once the journal says durable. */
#ifndef CASTY_PERSISTENCE_H
#define CASTY_PERSISTENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "message.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* ---- journal entries and batches ---------------------------------------------- */

/* One stored event (or snapshot): its sequence number, the XXH3-64 id of its
 * type's name (casty_type_id), and its serialized bytes. */
typedef struct casty_journal_entry {
    uint64_t seq;
    uint64_t type_id;
    uint32_t len;
    const void *data;
} casty_journal_entry_t;

/* An immutable run of entries handed from a journal to an actor (inside a
 * casty_journal_loaded_t). One heap block; entries in sequence order. */
typedef struct casty_journal_batch casty_journal_batch_t;

/* For journal implementations: a batch that grows as entries are added.
 * casty_journal_batch_add copies `len` bytes; it returns 0 or CASTY_ENOMEM
 * (the batch is unchanged then) and may move the batch (*b is updated). */
casty_journal_batch_t *casty_journal_batch_new(void);
int casty_journal_batch_add(casty_journal_batch_t **b, uint64_t seq, uint64_t type_id,
                            const void *data, uint32_t len);
void casty_journal_batch_free(casty_journal_batch_t *b);
size_t casty_journal_batch_count(const casty_journal_batch_t *b);
/* Iterates: start with *cursor = 0; each call fills *out with the next
 * entry and returns true, false at the end. `out->data` points into the
 * batch. */
bool casty_journal_batch_next(const casty_journal_batch_t *b, size_t *cursor,
                              casty_journal_entry_t *out);
/* Entry i (0-based; a walk from the start); false when out of range. */
bool casty_journal_batch_get(const casty_journal_batch_t *b, size_t i, casty_journal_entry_t *out);

/* Replies. `seq`: for persist, the last sequence number written; for
 * save_snapshot, the snapshot's. The batch of a loaded message belongs to
 * the message (its drop frees it): use it inside the handler only. */
CASTY_MESSAGE_DECLARE(casty_journal_written_t, uint64_t tag; int rc; uint64_t seq;);
CASTY_MESSAGE_DECLARE(casty_journal_loaded_t, uint64_t tag; int rc; casty_journal_batch_t *batch;);

/* ---- the journal interface --------------------------------------------------------- */

typedef struct casty_journal casty_journal_t;

typedef struct casty_journal_ops {
    const char *name;
    /* Appends n events for pid. Their seqs must continue the pid's log
     * (first = last stored + 1): otherwise CASTY_EINVAL and no reply.
     * Replies casty_journal_written_t once all n are durable, or with
     * rc < 0 when they are not (then none of them is stored). */
    int (*persist)(casty_journal_t *j, const char *pid, const casty_journal_entry_t *events,
                   size_t n, casty_ref_t reply_to, uint64_t tag);
    /* Replies casty_journal_loaded_t with every stored event of pid whose
     * seq >= from_seq, in order (an empty batch for an unknown pid). */
    int (*replay)(casty_journal_t *j, const char *pid, uint64_t from_seq, casty_ref_t reply_to,
                  uint64_t tag);
    /* Stores `state` (its seq = the last event it includes) as pid's
     * latest snapshot; replies casty_journal_written_t when durable. */
    int (*save_snapshot)(casty_journal_t *j, const char *pid, const casty_journal_entry_t *state,
                         casty_ref_t reply_to, uint64_t tag);
    /* Replies casty_journal_loaded_t whose batch holds pid's latest
     * snapshot, or no entry when there is none. */
    int (*load_snapshot)(casty_journal_t *j, const char *pid, casty_ref_t reply_to, uint64_t tag);
    /* Forgets pid's events with seq <= upto_seq (they must be covered by a
     * snapshot: CASTY_EINVAL otherwise). Synchronous: 0 or a negative code. */
    int (*delete_events)(casty_journal_t *j, const char *pid, uint64_t upto_seq);
    /* Frees the journal. Only once no actor uses it any more. */
    void (*close)(casty_journal_t *j);
} casty_journal_ops_t;

/* Every journal starts with this; implementations embed it first. */
struct casty_journal {
    const casty_journal_ops_t *ops;
};

/* Closes any journal (NULL is ignored). */
void casty_journal_close(casty_journal_t *j);

/* The memory journal: thread-safe, replies at once (from the calling
 * thread); may be shared by several systems in one process. */
int casty_memory_journal_create(casty_journal_t **out);

/* The file journal: see docs/persistence.md. */
typedef struct casty_file_journal_options {
    uint64_t segment_bytes; /* roll to a new segment past this size; 0 = 64 MiB */
    uint32_t reserved_[8];
} casty_file_journal_options_t;

/* Opens (creating if needed) the journal in directory `dir`, recovering it
 * first: a torn or corrupt record at the tail of the last segment is cut
 * off (and reported on stderr with file and offset); corruption anywhere
 * else fails with CASTY_ECORRUPT and the file and offset in `err` (if not
 * NULL, err_len bytes). Writes go through `sys`'s reactor; close the
 * journal after the systems using it have shut down. */
int casty_file_journal_open(casty_system_t *sys, const char *dir,
                            const casty_file_journal_options_t *opts, casty_journal_t **out,
                            char *err, size_t err_len);

/* ---- event-sourced actors ------------------------------------------------------------- */

/* Applies one event to the state, in place. Pure: no I/O, no sends. */
typedef void (*casty_apply_event_fn)(void *state, const casty_msg_t *event);

/* Handles a command given the current state (read-only). Returns
 * casty_persisted(...) to persist events, or casty_same(), casty_unhandled(),
 * casty_stopped(), casty_failed(...). */
typedef casty_behavior_t *(*casty_command_fn)(casty_ctx_t *ctx, const void *state,
                                              const casty_msg_t *cmd);

typedef struct casty_event_sourced {
    const char *persistence_id;          /* copied; unique per entity */
    casty_journal_t *journal;            /* not owned */
    const casty_type_t *state_type;      /* the state as a message type (flat, or encode/decode) */
    const void *initial_state;           /* copied */
    const casty_type_t *const *event_types; /* the events this entity persists */
    size_t n_event_types;
    casty_apply_event_fn on_event;
    casty_command_fn on_command;
    uint32_t snapshot_every; /* save a snapshot every n events; 0 = never */
} casty_event_sourced_t;

/* The behavior of an event-sourced actor (everything in cfg is copied but
 * the journal). NULL on bad config or out of memory. */
casty_behavior_t *casty_event_sourced(const casty_event_sourced_t *cfg);

/* Effects a command handler returns. casty_persisted copies one event;
 * casty_persisted_add appends another to the same effect (all are persisted
 * atomically, in order); casty_persisted_then sets the callback that runs
 * once they are durable and applied, with the new state and a copy of
 * `arg` (arg_size bytes) — typically the reply. On allocation failure these
 * return NULL (the runtime then fails the actor with CASTY_ENOMEM) and free
 * `effect`. */
typedef void (*casty_persisted_fn)(casty_ctx_t *ctx, const void *state, void *arg);
casty_behavior_t *casty_persisted(const casty_type_t *type, const void *event);
casty_behavior_t *casty_persisted_add(casty_behavior_t *effect, const casty_type_t *type,
                                      const void *event);
casty_behavior_t *casty_persisted_then(casty_behavior_t *effect, casty_persisted_fn callback,
                                       const void *arg, size_t arg_size);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* CASTY_PERSISTENCE_H */
