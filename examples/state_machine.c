/* state_machine — switching behaviors.
 *
 * Shows: an actor as a finite state machine. A shopping cart has three
 * states, each its own receive function: empty, active and checked_out. A
 * handler moves to another state by returning casty_receive(other_fn,
 * &state, sizeof state); each state only understands the messages that make
 * sense in it (the others are casty_unhandled()).
 *
 * Output:
 *     Total: $100.00
 *     Receipt: 2 items, $100.00
 */
#include <casty.h>
#include <stdio.h>
#include <stdlib.h>

CASTY_MESSAGE(AddItem, char name[32]; long price_cents;);
CASTY_MESSAGE(GetTotal, casty_ref_t reply_to;);
CASTY_MESSAGE(Checkout, casty_ref_t reply_to;);
CASTY_MESSAGE(Total, long cents;);
CASTY_MESSAGE(Receipt, int items; long cents;);

typedef struct cart {
    int items;
    long cents;
} cart_t;

static casty_behavior_t *active(casty_ctx_t *ctx, const casty_msg_t *msg, void *state);
static casty_behavior_t *checked_out(casty_ctx_t *ctx, const casty_msg_t *msg, void *state);

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, casty_strerror(rc));
        exit(1);
    }
}

/* empty: no state. The first item makes the cart active. */
static casty_behavior_t *empty(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx, (void)state;
    if (casty_msg_is(msg, AddItem)) {
        cart_t cart = {.items = 1, .cents = casty_msg_as(msg, AddItem)->price_cents};
        return casty_receive(active, &cart, sizeof cart);
    }
    if (casty_msg_is(msg, GetTotal)) {
        CASTY_TELL(casty_msg_as(msg, GetTotal)->reply_to, Total, .cents = 0);
        return casty_same();
    }
    return casty_unhandled(); /* nothing to check out */
}

/* active: items can be added; Checkout issues a receipt and closes the cart. */
static casty_behavior_t *active(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    const cart_t *cart = state;
    if (casty_msg_is(msg, AddItem)) {
        cart_t next = {cart->items + 1, cart->cents + casty_msg_as(msg, AddItem)->price_cents};
        return casty_receive(active, &next, sizeof next);
    }
    if (casty_msg_is(msg, GetTotal)) {
        CASTY_TELL(casty_msg_as(msg, GetTotal)->reply_to, Total, .cents = cart->cents);
        return casty_same();
    }
    if (casty_msg_is(msg, Checkout)) {
        CASTY_TELL(casty_msg_as(msg, Checkout)->reply_to, Receipt, .items = cart->items,
                   .cents = cart->cents);
        return casty_receive(checked_out, cart, sizeof *cart);
    }
    return casty_unhandled();
}

/* checked_out: final; the total can still be read, nothing can be added. */
static casty_behavior_t *checked_out(casty_ctx_t *ctx, const casty_msg_t *msg, void *state)
{
    (void)ctx;
    const cart_t *cart = state;
    if (casty_msg_is(msg, GetTotal)) {
        CASTY_TELL(casty_msg_as(msg, GetTotal)->reply_to, Total, .cents = cart->cents);
        return casty_same();
    }
    return casty_unhandled();
}

static int get_total(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, GetTotal, .reply_to = reply_to);
}

static int checkout(casty_ref_t target, casty_ref_t reply_to, void *arg)
{
    (void)arg;
    return CASTY_TELL(target, Checkout, .reply_to = reply_to);
}

int main(void)
{
    casty_system_t *sys;
    check(casty_system_create(NULL, &sys), "casty_system_create");

    casty_ref_t cart;
    check(casty_spawn(sys, casty_receive(empty, NULL, 0), "cart", NULL, &cart), "casty_spawn");

    check(CASTY_TELL(cart, AddItem, .name = "keyboard", .price_cents = 7550), "casty_tell");
    check(CASTY_TELL(cart, AddItem, .name = "mouse", .price_cents = 2450), "casty_tell");

    casty_msg_t *reply;
    check(casty_ask(sys, cart, get_total, NULL, 5000, &reply), "casty_ask GetTotal");
    const Total *t = casty_msg_as(reply, Total);
    if (t)
        printf("Total: $%ld.%02ld\n", t->cents / 100, t->cents % 100);
    casty_msg_free(reply);

    check(casty_ask(sys, cart, checkout, NULL, 5000, &reply), "casty_ask Checkout");
    const Receipt *r = casty_msg_as(reply, Receipt);
    if (r)
        printf("Receipt: %d items, $%ld.%02ld\n", r->items, r->cents / 100, r->cents % 100);
    casty_msg_free(reply);

    check(casty_system_shutdown(sys), "casty_system_shutdown");
    return 0;
}
