/* casty — a multi-threaded actor runtime in C. Umbrella header.
 * See README.md and docs/ for the guides. */
#ifndef CASTY_H
#define CASTY_H

#include "casty/error.h"
#include "casty/message.h"
#include "casty/actor.h"
#include "casty/system.h"
#include "casty/timer.h"
#include "casty/persistence.h"
#include "casty/config.h"
#include "casty/remote.h"

#define CASTY_VERSION_MAJOR 0
#define CASTY_VERSION_MINOR 1
#define CASTY_VERSION_PATCH 0

#endif /* CASTY_H */
