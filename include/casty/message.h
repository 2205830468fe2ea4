/* casty — typed messages and actor references (public).
 *
 * A message type is a static descriptor casty_type_t: a name, the size of the
 * value, and optional encode/decode (for the wire) and drop (release what the
 * value owns). Its wire id is XXH3-64 of the name (casty_type_id). A handler
 * asks for a typed view with casty_msg_as(msg, Type), which is NULL when the
 * message is of another type.
 *
 * Declaring a message type (one macro):
 *
 *     CASTY_MESSAGE(Deposit, int amount; casty_ref_t reply_to;);
 *
 * defines `typedef struct Deposit {...} Deposit;` and the descriptor
 * `const casty_type_t Deposit_type`. Types shared between files: put
 * CASTY_MESSAGE_DECLARE(...) in a header and CASTY_MESSAGE_DEFINE(Deposit) in
 * one .c file. Types are compared by descriptor address, so each type must
 * have exactly one descriptor in the program.
 *
 * An actor reference casty_ref_t is a plain 16-byte value: the node that
 * hosts the actor and the actor's id (slot and generation). It can be copied,
 * compared, hashed, stored in messages and sent over the wire. A ref to an
 * actor that has stopped never reaches another actor: messages to it become
 * dead letters. */
#ifndef CASTY_MESSAGE_H
#define CASTY_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef struct casty_type {
    const char *name; /* unique, stable: the wire id is its XXH3-64 hash */
    size_t size;      /* sizeof the value; 0 for a message with no fields */
    /* Optional: serialise `value` into buf[0..cap); return the length written
     * or a negative code (CASTY_ENOSPC when cap is too small). */
    long (*encode)(const void *value, void *buf, size_t cap);
    /* Optional: rebuild a value of `size` bytes from buf[0..len); 0 or a
     * negative code. */
    int (*decode)(const void *buf, size_t len, void *value);
    /* Optional: release what a value owns (not the value's own storage). Run
     * exactly once per message: after delivery, or when it is dead-lettered
     * or dropped at shutdown. */
    void (*drop)(void *value);
    /* CASTY_TYPE_* bits; 0 for the CASTY_MESSAGE macros. */
    uint32_t flags;
} casty_type_t;

/* The type holds pointers or process-local handles and has no
 * encode/decode: it can never be sent to another node (casty_tell to a
 * remote ref answers CASTY_ENOTSERIALIZABLE). A type with a drop function
 * and no encode is treated the same way. */
#define CASTY_TYPE_LOCAL 0x1u

typedef struct casty_ref {
    uint64_t node;  /* hosting node (system) id; 0 in CASTY_REF_NONE */
    uint64_t actor; /* generation << 32 | slot */
} casty_ref_t;

#define CASTY_REF_NONE ((casty_ref_t){0, 0})

/* An opaque message as handed to a receive handler. Valid for the duration
 * of the handler call only; the runtime owns it. */
typedef struct casty_msg casty_msg_t;

#define CASTY_MESSAGE_DECLARE(T, ...)                                          \
    typedef struct T {                                                         \
        __VA_ARGS__                                                            \
    } T;                                                                       \
    extern const casty_type_t T##_type

#define CASTY_MESSAGE_DEFINE(T) const casty_type_t T##_type = {#T, sizeof(T), 0, 0, 0, 0}

/* Same, with encode/decode/drop functions (any may be NULL). */
#define CASTY_MESSAGE_DEFINE_OPS(T, enc, dec, drp)                             \
    const casty_type_t T##_type = {#T, sizeof(T), (enc), (dec), (drp), 0}

/* A type that must not leave the process (it holds pointers): see
 * CASTY_TYPE_LOCAL. */
#define CASTY_MESSAGE_DEFINE_LOCAL(T)                                          \
    const casty_type_t T##_type = {#T, sizeof(T), 0, 0, 0, CASTY_TYPE_LOCAL}

/* Declare and define in one go (single-file programs). */
#define CASTY_MESSAGE(T, ...)                                                  \
    CASTY_MESSAGE_DECLARE(T, __VA_ARGS__);                                     \
    CASTY_MESSAGE_DEFINE(T)

/* A message type with no fields (a signal): struct T with one unused byte,
 * size 0 on the wire. */
#define CASTY_SIGNAL(T)                                                        \
    typedef struct T {                                                         \
        char unused_;                                                          \
    } T;                                                                       \
    const casty_type_t T##_type = {#T, 0, 0, 0, 0, 0}

/* The wire id of a type: XXH3-64 of its name. 0 for NULL. Any thread. */
uint64_t casty_type_id(const casty_type_t *type);

/* The message's type descriptor (NULL for a NULL msg). */
const casty_type_t *casty_msg_type(const casty_msg_t *msg);

/* Pointer to the message's value, or NULL when msg is NULL or not of `type`. */
void *casty_msg_get(const casty_msg_t *msg, const casty_type_t *type);

/* Typed view: `const Deposit *d = casty_msg_as(msg, Deposit);` */
#define casty_msg_as(msg, T) ((T *)casty_msg_get((msg), &T##_type))

/* True when msg has type T. */
#define casty_msg_is(msg, T) (casty_msg_type(msg) == &T##_type)

/* Frees a message handed to the caller by casty_ask (runs the type's drop).
 * NULL is ignored. Any thread. */
void casty_msg_free(casty_msg_t *msg);

static inline bool casty_ref_eq(casty_ref_t a, casty_ref_t b)
{
    return a.node == b.node && a.actor == b.actor;
}

static inline bool casty_ref_is_none(casty_ref_t r)
{
    return r.node == 0 && r.actor == 0;
}

/* 64-bit hash of a ref (for user hash tables). */
uint64_t casty_ref_hash(casty_ref_t ref);

/* ---- sending ---------------------------------------------------------- */

/* Copy-in send: copies type->size bytes from `value` into a message and
 * enqueues it for `to`. Any thread, no system argument needed.
 *
 * Returns 0 when the message was accepted (delivered later, or turned into a
 * DeadLetter event when `to` is stale: sending to a stopped actor is not an
 * error, as in Akka). Errors: CASTY_EINVAL (NULL type, NULL value for a
 * non-empty type), CASTY_ESHUTDOWN (the ref's system is gone: no event
 * stream left to receive the dead letter), CASTY_ENOMEM. On error the value
 * is not consumed: its drop function is not run. */
int casty_tell(casty_ref_t to, const casty_type_t *type, const void *value);

/* Zero-copy send: moves ownership of a heap value (allocated with malloc,
 * of type->size bytes) into the message. The runtime runs type->drop on it
 * (if any) and then free()s it once it is delivered or dead-lettered. The
 * value is consumed in all cases, errors included (it is dropped and freed
 * before the error is returned). */
int casty_tell_move(casty_ref_t to, const casty_type_t *type, void *heap_value);

/* `CASTY_TELL(ref, Deposit, .amount = 10)` sends a compound literal. */
#define CASTY_TELL(ref, T, ...) casty_tell((ref), &T##_type, &(T){__VA_ARGS__})

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* CASTY_MESSAGE_H */
