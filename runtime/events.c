/* The event stream: subscriptions by exact event type, and publication to
 * callbacks (run on the publishing thread) and to actors (sent as ordinary
 * messages). Subscribers are copied out under the read lock and called
 * without it, so a callback may itself publish, send or subscribe. */
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "internal.h"

#define PUBLISH_STACK 16

static bool same_sub(const struct subscription *s, const casty_type_t *type, casty_event_fn fn,
                     void *arg, casty_ref_t actor)
{
    if (s->type != type || s->fn != fn)
        return false;
    return fn ? s->arg == arg : casty_ref_eq(s->actor, actor);
}

static int add_sub(struct casty_system *sys, const casty_type_t *type, casty_event_fn fn,
                   void *arg, casty_ref_t actor)
{
    if (sys == NULL || type == NULL || (fn == NULL && casty_ref_is_none(actor)))
        return CASTY_EINVAL;
    if (load_acquire(&sys->state) == SYS_STOPPED)
        return CASTY_ESHUTDOWN;
    int rc = 0;
    pthread_rwlock_wrlock(&sys->events_lock);
    for (uint32_t i = 0; i < sys->nsubs; i++)
        if (same_sub(&sys->subs[i], type, fn, arg, actor))
            goto out; /* a duplicate delivers once */
    if (sys->nsubs == sys->subs_cap) {
        uint32_t cap = sys->subs_cap ? sys->subs_cap * 2 : 8;
        struct subscription *subs = realloc(sys->subs, cap * sizeof *subs);
        if (subs == NULL) {
            rc = CASTY_ENOMEM;
            goto out;
        }
        sys->subs = subs;
        sys->subs_cap = cap;
    }
    sys->subs[sys->nsubs++] = (struct subscription){type, fn, arg, actor};
    store_release(&sys->nsubs_atomic, sys->nsubs);
out:
    pthread_rwlock_unlock(&sys->events_lock);
    return rc;
}

static int remove_sub(struct casty_system *sys, const casty_type_t *type, casty_event_fn fn,
                      void *arg, casty_ref_t actor)
{
    if (sys == NULL || type == NULL)
        return CASTY_EINVAL;
    int rc = CASTY_ENOENT;
    pthread_rwlock_wrlock(&sys->events_lock);
    for (uint32_t i = 0; i < sys->nsubs; i++) {
        if (same_sub(&sys->subs[i], type, fn, arg, actor)) {
            sys->subs[i] = sys->subs[--sys->nsubs];
            store_release(&sys->nsubs_atomic, sys->nsubs);
            rc = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&sys->events_lock);
    return rc;
}

int casty_subscribe(casty_system_t *sys, const casty_type_t *event_type, casty_event_fn fn,
                    void *arg)
{
    if (fn == NULL)
        return CASTY_EINVAL;
    return add_sub(sys, event_type, fn, arg, CASTY_REF_NONE);
}

int casty_subscribe_actor(casty_system_t *sys, const casty_type_t *event_type,
                          casty_ref_t subscriber)
{
    if (casty_ref_is_none(subscriber))
        return CASTY_EINVAL;
    return add_sub(sys, event_type, NULL, NULL, subscriber);
}

int casty_unsubscribe(casty_system_t *sys, const casty_type_t *event_type, casty_event_fn fn,
                      void *arg)
{
    if (fn == NULL)
        return CASTY_EINVAL;
    return remove_sub(sys, event_type, fn, arg, CASTY_REF_NONE);
}

int casty_unsubscribe_actor(casty_system_t *sys, const casty_type_t *event_type,
                            casty_ref_t subscriber)
{
    return remove_sub(sys, event_type, NULL, NULL, subscriber);
}

/* Delivers `event` to the subscribers of exactly `type`. Any thread. */
void casty__publish(struct casty_system *sys, const casty_type_t *type, const void *event)
{
    if (load_acquire(&sys->nsubs_atomic) == 0)
        return;
    struct subscription stack[PUBLISH_STACK];
    struct subscription *found = stack;
    uint32_t n = 0;
    pthread_rwlock_rdlock(&sys->events_lock);
    for (uint32_t i = 0; i < sys->nsubs; i++) {
        if (sys->subs[i].type != type)
            continue;
        if (n == PUBLISH_STACK && found == stack) {
            found = malloc(sys->nsubs * sizeof *found);
            if (found == NULL) {
                found = stack; /* deliver to the first PUBLISH_STACK only */
                break;
            }
            memcpy(found, stack, sizeof stack);
        }
        found[n++] = sys->subs[i];
    }
    pthread_rwlock_unlock(&sys->events_lock);
    for (uint32_t i = 0; i < n; i++) {
        if (found[i].fn)
            found[i].fn(type, event, found[i].arg);
        else
            casty_tell(found[i].actor, type, event);
    }
    if (found != stack)
        free(found);
}

int casty_publish(casty_system_t *sys, const casty_type_t *event_type, const void *event)
{
    if (sys == NULL || event_type == NULL || (event == NULL && event_type->size > 0))
        return CASTY_EINVAL;
    casty__publish(sys, event_type, event);
    return 0;
}

void casty__events_destroy(struct casty_system *sys)
{
    free(sys->subs);
    sys->subs = NULL;
    sys->nsubs = sys->subs_cap = 0;
}
