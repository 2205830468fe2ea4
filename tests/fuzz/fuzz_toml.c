/* libFuzzer target for the TOML parser (runtime/toml.c): any byte string
 * must either parse into a well-formed tree or fail with a sane error
 * (tests/toml_check.h), without crashes, leaks or out-of-bounds reads.
 * The input is copied to an exact-size buffer so AddressSanitizer catches
 * any read past `len` (the parser must not need a terminating NUL).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Iruntime \
 *       runtime/toml.c tests/fuzz/fuzz_toml.c -o fuzz_toml
 *   ./fuzz_toml -dict=... CORPUS_DIR ../shared/toml-test/valid
 *
 * Not part of `make`; tests/test_toml_fuzz_smoke.c runs a seeded
 * mutation loop over the same checks in the ordinary test suite. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../toml_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = malloc(size ? size : 1);
    if (!src)
        return 0;
    memcpy(src, data, size);
    struct casty__toml *root = NULL;
    struct casty__toml_error err;
    int rc = casty__toml_parse(src, size, &root, &err);
    const char *why = toml_check_result(src, size, rc, root, &err);
    if (why) {
        fprintf(stderr, "fuzz_toml: %s (rc %d, %u:%u: %s)\n", why, rc, err.line, err.col,
                rc ? err.msg : "");
        abort();
    }
    casty__toml_free(root);
    free(src);
    return 0;
}
