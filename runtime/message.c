/* Message types and values as the public API sees them: type ids (XXH3-64
 * of the name), typed access to a message's value, freeing a message handed
 * out by ask, ref hashing, and the two send calls. Where a message goes once
 * sent is actor.c's business. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "internal.h"
#include "remote.h"

uint64_t casty_type_id(const casty_type_t *type)
{
    if (type == NULL || type->name == NULL)
        return 0;
    return XXH3_64bits(type->name, strlen(type->name));
}

const casty_type_t *casty_msg_type(const casty_msg_t *msg)
{
    return msg ? msg->type : NULL;
}

void *casty_msg_get(const casty_msg_t *msg, const casty_type_t *type)
{
    if (msg == NULL || msg->type != type || !MSG_IS_USER(msg->kind))
        return NULL;
    return msg_value(msg);
}

/* Copies a delivered message (in a handler) into a heap node the caller may
 * keep and later free with casty_msg_free; the value's ownership (drop, heap
 * block) moves to the copy, so the runtime will not drop the original.
 * NULL when out of memory (the original is untouched then). */
struct casty_msg *casty__msg_take(struct casty_msg *m)
{
    size_t size = m->type->size;
    bool heap_data = (m->flags & MSG_DATA_HEAP) != 0;
    struct casty_msg *copy = malloc(sizeof *copy + (heap_data ? 1 : size + 1));
    if (copy == NULL)
        return NULL;
    copy->next = NULL;
    copy->type = m->type;
    copy->gen = 0;
    copy->owner = POOL_HEAP_OWNER;
    copy->kind = MSG_USER; /* a timer's message is a plain message once taken */
    if (heap_data) {
        copy->data = m->data;
        copy->flags = MSG_DATA_HEAP;
        m->flags = (uint8_t)(m->flags & ~MSG_DATA_HEAP);
    } else {
        copy->data = copy->payload;
        copy->flags = 0;
        memcpy(copy->payload, msg_value(m), size);
    }
    m->flags |= MSG_NO_DROP;
    return copy;
}

void casty_msg_free(casty_msg_t *msg)
{
    if (msg == NULL)
        return;
    /* Only heap nodes are ever handed to user code to free. */
    casty__msg_release(NULL, msg);
}

uint64_t casty_ref_hash(casty_ref_t ref)
{
    return XXH3_64bits(&ref, sizeof ref);
}

static bool type_valid(const casty_type_t *type)
{
    return type != NULL && type->name != NULL && type->size <= UINT32_MAX;
}

/* A ref of another system: the sending worker's own transport first (or,
 * inside casty_ask's make_request, the asking system's), so systems of one
 * process that know each other as remote peers talk over their
 * connections; then a system of this process; then any transport that
 * knows the node. */
_Thread_local struct casty_system *casty__tls_asking;

static int tell_elsewhere(struct worker *w, casty_ref_t to, const casty_type_t *type,
                          const void *value, void *heap_value)
{
    struct casty_system *via = w ? w->sys : casty__tls_asking;
    if (via && via->remote) {
        int rc = casty__remote_tell(via, to, type, value, heap_value, false);
        if (rc != 1)
            return rc;
    }
    struct casty_system *sys = casty__system_acquire(to.node, NULL);
    if (sys == NULL)
        return casty__remote_tell(via, to, type, value, heap_value, true);
    if (sys->remote)
        casty__remote_note_type(sys, type);
    int rc = casty__deliver(sys, to, type, value, heap_value);
    casty__system_release(sys);
    return rc;
}

int casty_tell(casty_ref_t to, const casty_type_t *type, const void *value)
{
    if (!type_valid(type) || (value == NULL && type->size > 0))
        return CASTY_EINVAL;
    struct worker *w = casty__tls_worker;
    if (w && w->sys->node == to.node) {
        if (w->sys->remote)
            casty__remote_note_type(w->sys, type);
        return casty__deliver_from(w, to, type, value, NULL);
    }
    return tell_elsewhere(w, to, type, value, NULL);
}

int casty_tell_move(casty_ref_t to, const casty_type_t *type, void *heap_value)
{
    if (!type_valid(type) || heap_value == NULL) {
        if (heap_value) {
            free(heap_value);
        }
        return CASTY_EINVAL;
    }
    struct worker *w = casty__tls_worker;
    if (w && w->sys->node == to.node) {
        if (w->sys->remote)
            casty__remote_note_type(w->sys, type);
        return casty__deliver_from(w, to, type, NULL, heap_value);
    }
    return tell_elsewhere(w, to, type, NULL, heap_value);
}
