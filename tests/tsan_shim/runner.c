/* The runner for tests/tsan_shim/criterion/criterion.h: runs every
 * registered test in registration order, in this process, and prints a
 * Criterion-style summary. Optional argument: a substring filter. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "criterion/criterion.h"

#define MAX_TESTS 256

struct shim_test {
    const char *suite, *name;
    void (*fn)(void);
};
static struct shim_test tests[MAX_TESTS];
static int ntests;

void shim_register(const char *suite, const char *name, void (*fn)(void))
{
    if (ntests < MAX_TESTS)
        tests[ntests++] = (struct shim_test){suite, name, fn};
}

void shim_fail(const char *expr, const char *file, int line, const char *fmt, ...)
{
    fprintf(stderr, "%s:%d: assertion failed: %s:", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n[====] Synthesis: failed\n0 passed, 1 failed\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-')
            filter = argv[i];
    int run = 0;
    for (int i = 0; i < ntests; i++) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", tests[i].suite, tests[i].name);
        if (filter && !strstr(full, filter))
            continue;
        fprintf(stderr, "[RUN ] %s\n", full);
        tests[i].fn();
        fprintf(stderr, "[ OK ] %s\n", full);
        run++;
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: 0\n%d passed, 0 failed\n", run,
           run, run);
    return 0;
}
