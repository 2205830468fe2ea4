/* Internal (not installed). What the runtime calls in net/: starting and
 * stopping a system's transport, and handing it messages for refs of other
 * nodes. These calls (and casty_system_address, for casty_ref_path) are the
 * only places runtime/ reaches up into net/ (system.c, message.c, and
 * actor.c's death watch): the transport is part of a system the way
 * its reactor is, and casty_tell, which takes no system argument, must be
 * able to route a ref of another node. */
#ifndef CASTY_NET_REMOTE_H
#define CASTY_NET_REMOTE_H

#include <stdbool.h>

#include "casty.h"

struct casty_system;

/* Binds and starts listening; called by casty_system_create after the
 * scheduler runs, when config->remote is set. Returns 0 or an error code
 * (the system is then torn down by the caller). */
int casty__remote_start(struct casty_system *sys, const casty_remote_config_t *config,
                        const struct casty_config *file);

/* First step of shutdown, before the actors stop: no new sends are routed
 * through this system, the listener stops accepting. */
void casty__remote_close(struct casty_system *sys);

/* Last step, after the reactor is gone: frees everything. */
void casty__remote_free(struct casty_system *sys);

/* A message for a ref of another node. `via` is the sending worker's system
 * (NULL on other threads). With any == false only via's peers are tried, and
 * 1 is returned (nothing consumed) when via has no peer with that node: the
 * caller then tries the systems of this process. With any == true via's
 * peers are tried first, then those of every remote-enabled system.
 * Otherwise the contract of casty_tell / casty_tell_move (exactly one of
 * value / heap_value is used; heap_value is consumed). Returns 0,
 * CASTY_ESHUTDOWN (no system here knows that node: as for a local system
 * that has shut down), CASTY_ENOTSERIALIZABLE, CASTY_EMSGSIZE,
 * CASTY_ENOMEM. */
int casty__remote_tell(struct casty_system *via, casty_ref_t to, const casty_type_t *type,
                       const void *value, void *heap_value, bool any);

/* Whether a transport of this process knows `node` as a peer; *gone is set
 * when it knew it and the node has since been replaced by a restart. */
bool casty__remote_knows(uint64_t node, bool *gone);

/* A type was used locally in a remote-enabled system: remember it so that
 * messages of that type from other nodes decode. Cheap when already known. */
void casty__remote_note_type(struct casty_system *sys, const casty_type_t *type);

#endif
