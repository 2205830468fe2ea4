/* A minimal in-process stand-in for Criterion's test macros, used only for
 * the ThreadSanitizer build of the stress tests: Criterion's runner crashes
 * under -fsanitize=thread (Snaipe/Criterion#274), so `make tsan` compiles the
 * same test files against this header and tests/tsan_shim/runner.c, which
 * runs each test in turn in one process. A failed assertion prints where
 * and why and exits with status 1. Only the subset the stress tests use. */
#ifndef CASTY_TSAN_SHIM_CRITERION_H
#define CASTY_TSAN_SHIM_CRITERION_H

#include <string.h>

void shim_register(const char *suite, const char *name, void (*fn)(void));
_Noreturn void shim_fail(const char *expr, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define Test(suite, name, ...)                                                 \
    static void suite##_##name(void);                                          \
    __attribute__((constructor)) static void shim_reg_##suite##_##name(void)   \
    {                                                                          \
        shim_register(#suite, #name, suite##_##name);                          \
    }                                                                          \
    static void suite##_##name(void)

#define SHIM_CHECK_(ok, expr, ...)                                             \
    ((ok) ? (void)0 : shim_fail(expr, __FILE__, __LINE__, " " __VA_ARGS__))
#define cr_assert(c, ...) SHIM_CHECK_(!!(c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) SHIM_CHECK_(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_fail(...) shim_fail("cr_assert_fail", __FILE__, __LINE__, " " __VA_ARGS__)
#define cr_assert_eq(a, b, ...) SHIM_CHECK_((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) SHIM_CHECK_((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) SHIM_CHECK_((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) SHIM_CHECK_((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) SHIM_CHECK_((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) SHIM_CHECK_((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...) SHIM_CHECK_((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) SHIM_CHECK_((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...)                                     \
    SHIM_CHECK_(((a) - (b)) <= (eps) && ((b) - (a)) <= (eps), #a " ~= " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) SHIM_CHECK_(strcmp((a), (b)) != 0, #a " differs from " #b, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) SHIM_CHECK_(strcmp((a), (b)) == 0, #a " equals " #b, __VA_ARGS__)

#endif
