/* libFuzzer target for the remoting wire codec (net/wire.c): any byte
 * string, read as a stream of frames, must be framed by casty__wire_next
 * as the header rules say, and each frame must be refused by the decoders
 * with CASTY_EPROTO or decode to values that re-encode to the same bytes
 * (tests/wire_check.h), without crashes or out-of-bounds reads. The input
 * is copied to an exact-size buffer, and each frame body again by the
 * check, so AddressSanitizer catches any read past either end. See
 * README.md here for the command line; tests/test_wire_fuzz_smoke.c runs
 * a seeded pass of the same checks in `make test`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../wire_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    wire_check_input(buf, size);
    free(buf);
    return 0;
}
