/* libFuzzer target for the file journal's record codec
 * (persist/journal_format.c): any byte string must decode into a record
 * that re-encodes to the same bytes, or fail with CASTY_ENOSPC or
 * CASTY_ECORRUPT (tests/journal_record_check.h), without crashes or
 * out-of-bounds reads. The input is copied to an exact-size buffer so
 * AddressSanitizer catches any read past its end. See README.md here for
 * the command line; tests/test_journal_fuzz_smoke.c runs a seeded pass of
 * the same checks in `make test`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../journal_record_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    int rc;
    const char *why = journal_record_check(buf, size, &rc);
    if (why == NULL)
        why = journal_segment_check(buf, size);
    if (why) {
        fprintf(stderr, "fuzz_journal_record: %s (decode rc %d, %zu bytes)\n", why, rc, size);
        abort();
    }
    free(buf);
    return 0;
}
