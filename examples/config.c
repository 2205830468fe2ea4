/* config — settings from casty.toml.
 *
 * Shows: loading a casty.toml (the one beside this file, or the path given
 * as the argument), the effective settings of three actor names
 * (per-actor override > [defaults.*] > built-in defaults), and a system
 * created from the file, whose spawns get those settings.
 *
 * Output:
 *     system: shop, 2 workers
 *     orders: mailbox 10000 backpressure, supervision one_for_one max 10 within 60s
 *     sensor-042: mailbox 100 drop_oldest, supervision one_for_one max 3 within 60s
 *     other: mailbox 1000 drop_new, supervision one_for_one max 3 within 60s
 */
#include <casty.h>
#include <stdio.h>
#include <stdlib.h>

static const char *overflow_name(casty_overflow_t o)
{
    return o == CASTY_OVERFLOW_DROP_OLDEST   ? "drop_oldest"
           : o == CASTY_OVERFLOW_BACKPRESSURE ? "backpressure"
                                              : "drop_new";
}

static casty_behavior_t *idle(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)msg, (void)state;
    return casty_same();
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "examples/casty.toml";
    casty_config_t *cfg;
    casty_config_diag_t diag;
    int rc = casty_config_load(path, &cfg, &diag);
    if (rc < 0) {
        fprintf(stderr, "%s\n", diag.text[0] ? diag.text : casty_strerror(rc));
        return 1;
    }

    casty_system_config_t sc;
    casty_config_system(cfg, &sc); /* the file's [system]; explicit fields would win */
    casty_system_t *sys;
    rc = casty_system_create(&sc, &sys);
    if (rc < 0) {
        fprintf(stderr, "casty_system_create: %s\n", casty_strerror(rc));
        return 1;
    }
    printf("system: %s, %u workers\n", casty_system_name(sys), casty_system_workers(sys));

    const char *names[] = {"orders", "sensor-042", "other"};
    for (int i = 0; i < 3; i++) {
        casty_actor_settings_t s;
        casty_config_actor(cfg, names[i], &s);
        printf("%s: mailbox %u %s, supervision %s max %u within %gs\n", names[i],
               s.mailbox.capacity, overflow_name(s.mailbox.overflow),
               s.supervision.enabled ? "one_for_one" : "none", s.supervision.max_restarts,
               s.supervision.within_seconds);
        /* Spawned by name, each actor gets exactly these settings. */
        if (casty_spawn(sys, casty_receive(idle, NULL, 0), names[i], NULL, NULL) < 0)
            return 1;
    }

    casty_system_shutdown(sys);
    casty_config_free(cfg);
    return 0;
}
