/* Internal (not installed). The futex calls the scheduler's parked workers
 * and casty_ask's waiting threads sleep and wake with (Linux only, as is
 * io_uring). Private futexes: the words live in this process. */
#ifndef CASTY_FUTEX_H
#define CASTY_FUTEX_H

#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleeps while *word == expected, until a wake or, with a deadline (an
 * absolute CLOCK_MONOTONIC time; NULL for none), until then. Returns at
 * once when *word differs; may also return early (signals, spurious
 * wakes): callers check their condition again. */
static inline void casty__futex_wait(uint32_t *word, uint32_t expected,
                                     const struct timespec *deadline)
{
    if (deadline == NULL)
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
    else
        syscall(SYS_futex, word, FUTEX_WAIT_BITSET_PRIVATE, expected, deadline, NULL,
                FUTEX_BITSET_MATCH_ANY);
}

/* Wakes one thread sleeping on word. */
static inline void casty__futex_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#endif /* CASTY_FUTEX_H */
