/* STUB — to be replaced by the io_uring reactor (see reactor.h). */
#include <stdlib.h>

#include "reactor.h"

CASTY_MESSAGE_DEFINE(casty__io_done_t);

int casty__reactor_create(struct casty_reactor **out)
{
    *out = NULL;
    return 0;
}

void casty__reactor_destroy(struct casty_reactor *r)
{
    (void)r;
}

int casty__reactor_submit(struct casty_reactor *r, const struct casty__io_req *req)
{
    (void)r;
    (void)req;
    return CASTY_ESHUTDOWN;
}
