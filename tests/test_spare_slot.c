/* The free slot a thread outside the pool keeps for its next spawn
 * (runtime/cells.c, "spare"), driven through casty__cell_alloc and
 * casty__cell_free_slot on running systems from threads that are no
 * workers:
 *
 * - a freed slot is kept and taken again by the thread's next alloc in
 *   the same system, the shared free stack untouched both times;
 * - only one is kept: a second freed slot of the same system goes to the
 *   stack, one of another system takes the kept one's place (which goes
 *   back to its own system, or is forgotten when that one is gone);
 * - a thread that exits gives its spare back to its system's stack, and
 *   one whose system was shut down first exits without touching it. */
#include <criterion/criterion.h>

#include "helpers.h"
#include "internal.h"

static uint32_t free_count(struct casty_system *sys)
{
    pthread_mutex_lock(&sys->free_lock);
    uint32_t n = sys->nfree;
    pthread_mutex_unlock(&sys->free_lock);
    return n;
}

static uint32_t alloc_slot(struct casty_system *sys)
{
    struct cell *c = NULL;
    cr_assert_eq(casty__cell_alloc(sys, &c), 0);
    cr_assert_not_null(c);
    return c->slot;
}

Test(spare_slot, a_freed_slot_is_kept_and_reused_without_the_free_stack)
{
    casty_system_t *sys = system_with_workers(1);
    uint32_t s = alloc_slot(sys);
    uint32_t before = free_count(sys);
    casty__cell_free_slot(sys, s);
    cr_assert_eq(free_count(sys), before, "kept by this thread, not pushed");
    cr_assert_eq(alloc_slot(sys), s, "the next alloc takes the kept slot");
    cr_assert_eq(free_count(sys), before, "and pops nothing");

    /* Only one is kept: the second of two freed slots goes to the stack. */
    uint32_t t = alloc_slot(sys);
    casty__cell_free_slot(sys, s);
    casty__cell_free_slot(sys, t);
    cr_assert_eq(free_count(sys), before, "one kept, one pushed, against one popped for t");
    cr_assert_eq(alloc_slot(sys), s);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(spare_slot, a_slot_of_another_system_takes_the_place_of_the_kept_one)
{
    casty_system_t *a = system_with_workers(1), *b = system_with_workers(1);
    uint32_t sa = alloc_slot(a), sb = alloc_slot(b);
    uint32_t a_before = free_count(a), b_before = free_count(b);
    casty__cell_free_slot(a, sa); /* kept: this thread's spare is a's */
    cr_assert_eq(free_count(a), a_before);
    casty__cell_free_slot(b, sb); /* kept in its place: a's goes back to a */
    cr_assert_eq(free_count(a), a_before + 1, "a's spare given back to a");
    cr_assert_eq(free_count(b), b_before, "b's kept");
    cr_assert_eq(alloc_slot(b), sb);
    cr_assert_eq(alloc_slot(a), sa, "a's back on top of a's stack");

    /* A spare of a system shut down is forgotten, not kept forever. */
    casty__cell_free_slot(a, sa);
    cr_assert_eq(casty_system_shutdown(a), 0);
    uint32_t s2 = alloc_slot(b);
    b_before = free_count(b);
    casty__cell_free_slot(b, s2);
    cr_assert_eq(free_count(b), b_before, "kept in place of the dead system's");
    cr_assert_eq(alloc_slot(b), s2);
    cr_assert_eq(casty_system_shutdown(b), 0);
}

struct keeper {
    struct casty_system *sys;
    uint32_t slot;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int step; /* 1: the slot is kept; 2: the thread may exit */
};

/* Allocates and frees a slot (so it keeps it), then waits for leave to
 * exit. */
static void *keep_and_exit(void *arg)
{
    struct keeper *k = arg;
    struct cell *c = NULL;
    if (casty__cell_alloc(k->sys, &c) == 0) {
        k->slot = c->slot;
        casty__cell_free_slot(k->sys, c->slot);
    }
    pthread_mutex_lock(&k->mu);
    k->step = 1;
    pthread_cond_broadcast(&k->cond);
    while (k->step != 2)
        pthread_cond_wait(&k->cond, &k->mu);
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static void keeper_start(struct keeper *k, pthread_t *th, struct casty_system *sys)
{
    *k = (struct keeper){.sys = sys};
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cond, NULL);
    cr_assert_eq(pthread_create(th, NULL, keep_and_exit, k), 0);
    pthread_mutex_lock(&k->mu);
    while (k->step != 1)
        pthread_cond_wait(&k->cond, &k->mu);
    pthread_mutex_unlock(&k->mu);
}

static void keeper_leave(struct keeper *k, pthread_t th)
{
    pthread_mutex_lock(&k->mu);
    k->step = 2;
    pthread_cond_broadcast(&k->cond);
    pthread_mutex_unlock(&k->mu);
    cr_assert_eq(pthread_join(th, NULL), 0);
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->mu);
}

Test(spare_slot, a_thread_that_exits_gives_its_slot_back)
{
    casty_system_t *sys = system_with_workers(1);
    (void)alloc_slot(sys); /* the table grows at its first alloc; this thread keeps no spare */
    uint32_t before = free_count(sys);
    struct keeper k;
    pthread_t th;
    keeper_start(&k, &th, sys);
    cr_assert_eq(free_count(sys), before - 1, "popped, then kept by the thread");
    keeper_leave(&k, th);
    cr_assert_eq(free_count(sys), before, "given back as the thread exited");
    /* On top of the stack: the next alloc from here takes it. */
    cr_assert_eq(alloc_slot(sys), k.slot);
    cr_assert_eq(casty_system_shutdown(sys), 0);
}

Test(spare_slot, a_thread_outliving_its_system_exits_without_touching_it)
{
    casty_system_t *sys = system_with_workers(1);
    struct keeper k;
    pthread_t th;
    keeper_start(&k, &th, sys);
    cr_assert_eq(casty_system_shutdown(sys), 0);
    /* (Under ASan, a give-back into the freed system would be reported.) */
    keeper_leave(&k, th);
}
