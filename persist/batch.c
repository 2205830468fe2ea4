/* Journal batches: the one-heap-block form in which a journal hands a run
 * of entries (events, or a snapshot) to an actor, and the two reply message
 * types. Layout: a header, then entries back to back, each a fixed part
 * (seq, type id, length) followed by its bytes padded to 8. This file does
 * not know about any journal. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "casty.h"

struct casty_journal_batch {
    size_t count;
    size_t used; /* bytes of data[] in use */
    size_t cap;  /* bytes of data[] allocated */
    alignas(8) unsigned char data[];
};

struct entry_head {
    uint64_t seq;
    uint64_t type_id;
    uint32_t len;
    uint32_t pad_;
};

static void drop_loaded(void *value)
{
    casty_journal_loaded_t *m = value;
    casty_journal_batch_free(m->batch);
    m->batch = NULL;
}

CASTY_MESSAGE_DEFINE_LOCAL(casty_journal_written_t);
CASTY_MESSAGE_DEFINE_OPS(casty_journal_loaded_t, NULL, NULL, drop_loaded);

static size_t padded(uint32_t len)
{
    return ((size_t)len + 7u) & ~(size_t)7u;
}

casty_journal_batch_t *casty_journal_batch_new(void)
{
    casty_journal_batch_t *b = malloc(sizeof *b + 256);
    if (b) {
        b->count = b->used = 0;
        b->cap = 256;
    }
    return b;
}

int casty_journal_batch_add(casty_journal_batch_t **bp, uint64_t seq, uint64_t type_id,
                            const void *data, uint32_t len)
{
    if (bp == NULL || *bp == NULL || (len && data == NULL))
        return CASTY_EINVAL;
    casty_journal_batch_t *b = *bp;
    size_t need = sizeof(struct entry_head) + padded(len);
    if (b->used + need > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->used + need)
            cap *= 2;
        casty_journal_batch_t *nb = realloc(b, sizeof *b + cap);
        if (nb == NULL)
            return CASTY_ENOMEM;
        nb->cap = cap;
        *bp = b = nb;
    }
    struct entry_head h = {seq, type_id, len, 0};
    memcpy(b->data + b->used, &h, sizeof h);
    if (len)
        memcpy(b->data + b->used + sizeof h, data, len);
    b->used += need;
    b->count++;
    return 0;
}

void casty_journal_batch_free(casty_journal_batch_t *b)
{
    free(b);
}

size_t casty_journal_batch_count(const casty_journal_batch_t *b)
{
    return b ? b->count : 0;
}

bool casty_journal_batch_next(const casty_journal_batch_t *b, size_t *cursor,
                              casty_journal_entry_t *out)
{
    if (b == NULL || cursor == NULL || out == NULL || *cursor >= b->used)
        return false;
    struct entry_head h;
    memcpy(&h, b->data + *cursor, sizeof h);
    out->seq = h.seq;
    out->type_id = h.type_id;
    out->len = h.len;
    out->data = b->data + *cursor + sizeof h;
    *cursor += sizeof h + padded(h.len);
    return true;
}

bool casty_journal_batch_get(const casty_journal_batch_t *b, size_t i, casty_journal_entry_t *out)
{
    if (b == NULL || i >= b->count)
        return false;
    size_t cursor = 0;
    for (size_t k = 0; k < i; k++)
        if (!casty_journal_batch_next(b, &cursor, out))
            return false;
    return casty_journal_batch_next(b, &cursor, out);
}

void casty_journal_close(casty_journal_t *j)
{
    if (j && j->ops && j->ops->close)
        j->ops->close(j);
}
