/* Message types and values as the public API sees them: type ids (XXH3-64
 * of the name), typed access to a message's value, freeing a message handed
 * out by ask, ref hashing. The two send calls, and where a message goes
 * once sent, are actor.c's business. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "internal.h"

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
