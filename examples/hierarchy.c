/* hierarchy — a manager actor with children.
 *
 * Shows: spawning children with casty_ctx_spawn (names unique among
 * siblings), finding an actor by path with casty_lookup, forwarding a
 * request with its reply_to, and stopping a parent, which stops its
 * children first.
 *
 * Output:
 *     [alice] working on: implement login
 *     [bob] working on: write tests
 *     found /manager/bob
 */
#include <casty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CASTY_MESSAGE(Hire, char name[16];);
CASTY_MESSAGE(Assign, char worker[16]; char task[48]; casty_ref_t reply_to;);
CASTY_MESSAGE(Work, char task[48]; casty_ref_t reply_to;);
CASTY_SIGNAL(Done);

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, casty_strerror(rc));
        exit(1);
    }
}

/* A worker knows its own name (its state) and does what it is told. */
static casty_behavior_t *worker(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    const char *name = state;
    const Work *w = casty_msg_as(msg, Work);
    if (!w)
        return casty_unhandled();
    printf("[%s] working on: %s\n", name, w->task);
    fflush(stdout);
    casty_tell(w->reply_to, &Done_type, NULL);
    return casty_same();
}

/* The manager hires workers as children and forwards assignments. */
static casty_behavior_t *manager(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)state;
    const Hire *h = casty_msg_as(msg, Hire);
    if (h) {
        char name[16];
        snprintf(name, sizeof name, "%s", h->name);
        check(casty_ctx_spawn(ctx, casty_receive(worker, name, sizeof name), h->name, NULL, NULL),
              "hire");
        return casty_same();
    }
    const Assign *a = casty_msg_as(msg, Assign);
    if (a) {
        char path[40];
        snprintf(path, sizeof path, "/manager/%s", a->worker);
        casty_ref_t w;
        check(casty_lookup(casty_ctx_system(ctx), path, &w), path);
        Work work = {.reply_to = a->reply_to};
        memcpy(work.task, a->task, sizeof work.task);
        casty_tell(w, &Work_type, &work);
        return casty_same();
    }
    return casty_unhandled();
}

struct assignment {
    const char *worker, *task;
};

static int assign(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    const struct assignment *as = arg;
    Assign a = {.reply_to = reply_to};
    snprintf(a.worker, sizeof a.worker, "%s", as->worker);
    snprintf(a.task, sizeof a.task, "%s", as->task);
    return casty_tell(target, &Assign_type, &a);
}

int main(void)
{
    casty_system_t *sys;
    check(casty_system_create(NULL, &sys), "casty_system_create");
    casty_ref_t mgr;
    check(casty_spawn(sys, casty_receive(manager, NULL, 0), "manager", NULL, &mgr), "spawn");
    check(CASTY_TELL(mgr, Hire, .name = "alice"), "hire alice");
    check(CASTY_TELL(mgr, Hire, .name = "bob"), "hire bob");

    /* One assignment at a time, so the output order is fixed. */
    struct assignment jobs[] = {{"alice", "implement login"}, {"bob", "write tests"}};
    for (int i = 0; i < 2; i++) {
        casty_msg_t *done;
        check(casty_ask(sys, mgr, assign, &jobs[i], 5000, &done), "assign");
        casty_msg_free(done);
    }

    casty_ref_t bob;
    check(casty_lookup(sys, "/manager/bob", &bob), "lookup");
    printf("found /manager/bob\n");

    check(casty_stop(mgr), "stop"); /* alice and bob stop first */
    check(casty_system_shutdown(sys), "casty_system_shutdown");
    return 0;
}
