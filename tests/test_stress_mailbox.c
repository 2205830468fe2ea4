/* Stress: the MPSC mailbox alone (runtime/mailbox.h) with 4 producer
 * threads x 10^6 messages and one consumer that follows the scheduling
 * protocol. Checks: nothing lost, per-producer FIFO, and the actor is never
 * "scheduled" twice (the idle bit hands the schedule to exactly one side). */
#include <criterion/criterion.h>
#include <string.h>

#include "atomics.h"
#include "helpers.h"
#include "internal.h"
#include "mailbox.h"

#define PRODUCERS 4

CASTY_MESSAGE(seq_msg, uint32_t producer; uint32_t seq;);

struct mbox_test {
    struct cell cell;
    uint64_t per_producer;
    uint32_t scheduled; /* atomic: 1 while someone holds the schedule */
    uint32_t double_schedule;
    uint32_t tokens; /* atomic: schedules handed to the consumer */
};

static struct mbox_test T;

static void *producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    for (uint32_t i = 1; i <= T.per_producer; i++) {
        struct casty_msg *m = casty__msg_alloc(NULL, NULL, sizeof(seq_msg));
        cr_assert_not_null(m);
        m->type = &seq_msg_type;
        m->gen = 1;
        seq_msg v = {id, i};
        memcpy(m->payload, &v, sizeof v);
        if (mbox_push(&T.cell, m)) {
            if (ck_pr_faa_32(&T.scheduled, 1) != 0)
                ck_pr_inc_32(&T.double_schedule);
            ck_pr_inc_32(&T.tokens);
        }
    }
    return NULL;
}

Test(stress_mailbox, four_producers_no_loss_fifo, .timeout = 120)
{
    memset(&T, 0, sizeof T);
    mbox_init(&T.cell);
    T.per_producer = 1000000 / stress_scale();
    pthread_t th[PRODUCERS];
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&th[i], NULL, producer, (void *)i);

    uint32_t last[PRODUCERS] = {0};
    uint64_t total = T.per_producer * PRODUCERS, got = 0;
    while (got < total) {
        /* Wait for the schedule, as a worker would be handed the actor. */
        while (load_acquire(&T.tokens) == 0)
            cpu_relax();
        ck_pr_dec_32(&T.tokens);
        for (;;) {
            struct casty_msg *m;
            while ((m = mbox_pop(&T.cell, NULL)) != NULL) {
                const seq_msg *v = casty_msg_as(m, seq_msg);
                cr_assert_not_null(v);
                cr_assert_eq(v->seq, last[v->producer] + 1, "producer %u: got %u after %u",
                             v->producer, v->seq, last[v->producer]);
                last[v->producer] = v->seq;
                got++;
            }
            store_seqcst(&T.scheduled, 0u);
            if (mbox_try_idle(&T.cell, NULL))
                break;
            store_seqcst(&T.scheduled, 1u); /* a message is arriving: keep going */
        }
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(got, total);
    for (int i = 0; i < PRODUCERS; i++)
        cr_assert_eq(last[i], T.per_producer);
    cr_assert_eq(T.double_schedule, 0, "the actor was scheduled twice");
    cr_assert_null(mbox_pop(&T.cell, NULL));
}

/* System messages pushed concurrently with the consumer going idle are
 * never stranded: every push either claims the schedule or is seen by the
 * consumer's re-check. */
static void *sys_producer(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < T.per_producer; i++) {
        struct casty_msg *m = casty__msg_alloc(NULL, NULL, sizeof(struct sys_stop));
        cr_assert_not_null(m);
        m->kind = MSG_SYS_STOP;
        m->type = NULL;
        if (mbox_push_sys(&T.cell, m)) {
            if (ck_pr_faa_32(&T.scheduled, 1) != 0)
                ck_pr_inc_32(&T.double_schedule);
            ck_pr_inc_32(&T.tokens);
        }
    }
    return NULL;
}

Test(stress_mailbox, system_messages_never_stranded, .timeout = 120)
{
    memset(&T, 0, sizeof T);
    mbox_init(&T.cell);
    T.per_producer = 200000 / stress_scale();
    pthread_t th[2];
    for (uintptr_t i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, i == 0 ? sys_producer : producer, (void *)i);
    uint64_t total = T.per_producer * 2, got = 0;
    uint64_t deadline = now_ns() + 60ull * 1000000000ull;
    while (got < total) {
        while (load_acquire(&T.tokens) == 0) {
            cr_assert_lt(now_ns(), deadline, "stranded: %lu of %lu", (unsigned long)got,
                         (unsigned long)total);
            cpu_relax();
        }
        ck_pr_dec_32(&T.tokens);
        for (;;) {
            struct casty_msg *s = mbox_take_sys(&T.cell);
            while (s) {
                struct casty_msg *next = s->next;
                casty__msg_release(NULL, s);
                got++;
                s = next;
            }
            struct casty_msg *m;
            while ((m = mbox_pop(&T.cell, NULL)) != NULL)
                got++;
            if (mbox_has_sys(&T.cell))
                continue;
            store_seqcst(&T.scheduled, 0u);
            if (mbox_try_idle(&T.cell, NULL)) {
                if (mbox_has_sys(&T.cell) && mbox_claim(&T.cell)) {
                    store_seqcst(&T.scheduled, 1u);
                    continue;
                }
                break;
            }
            store_seqcst(&T.scheduled, 1u);
        }
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(got, total);
    cr_assert_eq(T.double_schedule, 0);
}
