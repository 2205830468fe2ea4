/* event_stream — watching the runtime's events.
 *
 * Shows: subscribing a callback to event types (casty_actor_started_t,
 * casty_actor_stopped_t, casty_dead_letter_t) and what produces each: a
 * spawn, a stop, and a message sent to an actor that has stopped.
 *
 * Output:
 *     started: casty://events@local/user/worker
 *     stopped: worker
 *     dead letter: Ping to worker
 */
#include <casty.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

CASTY_SIGNAL(Ping);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int events;
static casty_ref_t worker_ref;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, casty_strerror(rc));
        exit(1);
    }
}

/* Runs on the thread that published the event. */
static void on_event(const casty_type_t *type, const void *event, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    if (type == &casty_actor_started_t_type) {
        char path[128];
        if (casty_ref_path(((const casty_actor_started_t *)event)->ref, path, sizeof path) > 0)
            printf("started: %s\n", path);
    } else if (type == &casty_actor_stopped_t_type) {
        if (casty_ref_eq(((const casty_actor_stopped_t *)event)->ref, worker_ref))
            printf("stopped: worker\n");
    } else if (type == &casty_dead_letter_t_type) {
        const casty_dead_letter_t *d = event;
        printf("dead letter: %s to %s\n", d->msg_type->name,
               casty_ref_eq(d->recipient, worker_ref) ? "worker" : "?");
    }
    fflush(stdout);
    events++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void wait_events(int n)
{
    pthread_mutex_lock(&mu);
    while (events < n)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static casty_behavior_t *idle(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)msg, (void)state;
    return casty_same();
}

int main(void)
{
    casty_system_config_t cfg;
    casty_system_config_init(&cfg);
    cfg.name = "events";
    casty_system_t *sys;
    check(casty_system_create(&cfg, &sys), "casty_system_create");
    check(casty_subscribe(sys, &casty_actor_started_t_type, on_event, NULL), "subscribe");
    check(casty_subscribe(sys, &casty_actor_stopped_t_type, on_event, NULL), "subscribe");
    check(casty_subscribe(sys, &casty_dead_letter_t_type, on_event, NULL), "subscribe");

    pthread_mutex_lock(&mu); /* worker_ref is set before the callback reads it */
    check(casty_spawn(sys, casty_receive(idle, NULL, 0), "worker", NULL, &worker_ref), "spawn");
    pthread_mutex_unlock(&mu);
    wait_events(1);
    check(casty_stop(worker_ref), "stop");
    wait_events(2);
    check(casty_tell(worker_ref, &Ping_type, NULL), "tell"); /* nobody home */
    wait_events(3);

    check(casty_unsubscribe(sys, &casty_actor_stopped_t_type, on_event, NULL), "unsubscribe");
    check(casty_system_shutdown(sys), "casty_system_shutdown");
    return 0;
}
