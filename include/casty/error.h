/* casty — error codes (public).
 *
 * Every casty function that can fail returns an int: 0 on success or a
 * negative code. Codes that mirror a POSIX condition use the negated errno
 * value (CASTY_EINVAL == -EINVAL), so a system failure passed through as
 * -errno reads the same. casty's own conditions use values below -30000.
 * casty_strerror() describes any code, casty_err_name() names it. Nothing in
 * casty reports through errno. */
#ifndef CASTY_ERROR_H
#define CASTY_ERROR_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* X(name, value, description) — the one table of casty's error codes. */
#define CASTY_ERRNO_MAP(X)                                                     \
    X(EINVAL, -EINVAL, "invalid argument")                                     \
    X(ENOMEM, -ENOMEM, "out of memory")                                        \
    X(EEXIST, -EEXIST, "name already taken")                                   \
    X(ENOENT, -ENOENT, "no such actor")                                        \
    X(ETIMEDOUT, -ETIMEDOUT, "timed out")                                      \
    X(EDEADLK, -EDEADLK, "would deadlock: blocking call on a worker thread")   \
    X(ESHUTDOWN, -ESHUTDOWN, "actor system is shut down")                      \
    X(ERANGE, -ERANGE, "value out of range")                                   \
    X(ENOSPC, -ENOSPC, "buffer too small")                                     \
    X(EFULL, -30001, "mailbox full")                                           \
    X(ENOTSERIALIZABLE, -30002, "message type has no encoder")                 \
    X(ESTALE, -30003, "stale actor reference")                                 \
    X(EFAILED, -30004, "actor failed")                                         \
    X(EIOURING, -30005, "io_uring unavailable (kernel too old or io_uring_disabled)") \
    X(ECORRUPT, -30006, "corrupt data")                                        \
    X(EPROTO, -EPROTO, "protocol error")                                       \
    X(EMSGSIZE, -EMSGSIZE, "message larger than the maximum frame")            \
    X(ECONNREFUSED, -ECONNREFUSED, "connection refused by the peer")           \
    X(EACCES, -EACCES, "authentication failed")                                \
    X(ENOTSUP, -ENOTSUP, "not supported")

enum casty_error {
#define CASTY_ERR_ENUM_(name, value, text) CASTY_##name = (value),
    CASTY_ERRNO_MAP(CASTY_ERR_ENUM_)
#undef CASTY_ERR_ENUM_
};

/* Human-readable description of `code` (a casty code or a negated errno).
 * Returns a static string; never NULL. Any thread. */
const char *casty_strerror(int code);

/* Symbolic name of `code`, e.g. "CASTY_ETIMEDOUT"; "CASTY_UNKNOWN" for codes
 * outside the table. Static string; any thread. */
const char *casty_err_name(int code);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* CASTY_ERROR_H */
