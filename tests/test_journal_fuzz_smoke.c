/* A seeded fuzz pass over the file journal's record codec, small enough
 * for every test run: 100,000 inputs — random bytes, valid records of
 * random shape, and valid records mutated by bit flips, byte overwrites,
 * truncations, length-field edits and splices. Every input must satisfy
 * tests/journal_record_check.h; random bytes and damaged records must be
 * rejected with an error (never decode); intact records must decode. The
 * sanitizer builds add memory checking. The seed is printed; CASTY_SEED
 * replays it. tests/fuzz/fuzz_journal_record.c is the coverage-guided
 * version of the same checks. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "journal_record_check.h"

#define ITERATIONS 100000
#define MAX_PID 40
#define MAX_PAYLOAD 300
#define BUF (CASTY__JREC_MIN + MAX_PID + MAX_PAYLOAD + 64)

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A valid record of random shape at buf; returns its length. */
static size_t random_record(uint64_t *rng, unsigned char *buf)
{
    uint8_t kind = (uint8_t)(1 + next(rng) % 4);
    char pid[MAX_PID];
    uint16_t pid_len = kind == CASTY__JREC_COMMIT ? 0 : (uint16_t)(1 + next(rng) % MAX_PID);
    for (uint16_t i = 0; i < pid_len; i++)
        pid[i] = (char)('a' + next(rng) % 26);
    unsigned char payload[MAX_PAYLOAD];
    uint32_t payload_len = 0;
    if (kind == CASTY__JREC_EVENT || kind == CASTY__JREC_SNAPSHOT)
        payload_len = (uint32_t)(next(rng) % MAX_PAYLOAD);
    for (uint32_t i = 0; i < payload_len; i++)
        payload[i] = (unsigned char)next(rng);
    uint64_t seq = 1 + next(rng) % 1000000;
    uint64_t type_id = kind == CASTY__JREC_DELETE ? 0 : next(rng);
    return casty__jrec_encode(buf, kind, pid, pid_len, seq, type_id, payload, payload_len);
}

static void check(const unsigned char *data, size_t size, int *rc)
{
    /* An exact-size copy, so ASan sees any read past the end. */
    unsigned char *copy = malloc(size ? size : 1);
    cr_assert_not_null(copy);
    memcpy(copy, data, size);
    const char *why = journal_record_check(copy, size, rc);
    cr_assert_null(why, "%s (%zu bytes)", why, size);
    why = journal_segment_check(copy, size);
    cr_assert_null(why, "%s", why);
    free(copy);
}

Test(journal_fuzz, decoder_survives_random_and_damaged_records)
{
    uint64_t seed = stress_seed("journal_fuzz");
    uint64_t rng = seed | 1;
    unsigned char buf[BUF + 64];
    uint64_t rejected = 0, decoded = 0;
    for (int it = 0; it < ITERATIONS; it++) {
        int mode = (int)(next(&rng) % 8);
        int rc;
        if (mode == 0) {
            /* random bytes, sometimes starting with the magic */
            size_t n = next(&rng) % sizeof buf;
            for (size_t i = 0; i < n; i++)
                buf[i] = (unsigned char)next(&rng);
            if (n >= 4 && next(&rng) % 2)
                memcpy(buf, "CJR1", 4);
            check(buf, n, &rc);
            cr_assert_neq(rc, 0, "random bytes decoded as a record");
            rejected++;
            continue;
        }
        size_t len = random_record(&rng, buf);
        if (mode == 1) {
            /* intact, maybe followed by more bytes */
            size_t extra = next(&rng) % 64;
            for (size_t i = 0; i < extra; i++)
                buf[len + i] = (unsigned char)next(&rng);
            check(buf, len + extra, &rc);
            cr_assert_eq(rc, 0, "a valid record did not decode");
            decoded++;
            continue;
        }
        unsigned char orig[BUF + 64];
        memcpy(orig, buf, len);
        switch (mode) {
        case 2: /* one bit flipped */
            buf[next(&rng) % len] ^= (unsigned char)(1u << (next(&rng) % 8));
            break;
        case 3: { /* a few bytes overwritten */
            int n = 1 + (int)(next(&rng) % 4);
            for (int k = 0; k < n; k++) {
                size_t at = next(&rng) % len;
                unsigned char old = buf[at];
                while (buf[at] == old)
                    buf[at] = (unsigned char)next(&rng);
            }
            break;
        }
        case 4: /* truncated */
            len = next(&rng) % len;
            break;
        case 5: { /* a length field edited */
            size_t at = (size_t[]){4, 10, 12}[next(&rng) % 3];
            buf[at] = (unsigned char)(buf[at] + 1 + next(&rng) % 255);
            break;
        }
        case 6: { /* the second half of another record spliced in */
            unsigned char other[BUF];
            size_t olen = random_record(&rng, other);
            size_t cut = CASTY__JREC_HEADER + next(&rng) % (len - CASTY__JREC_HEADER);
            size_t from = next(&rng) % olen;
            size_t n = olen - from < len - cut ? olen - from : len - cut;
            if (n == 0 || memcmp(buf + cut, other + from, n) == 0)
                buf[cut] ^= 0x80;
            else
                memcpy(buf + cut, other + from, n);
            break;
        }
        default: /* a header field set to an out-of-range value */
            buf[8 + next(&rng) % 2] = (unsigned char)(5 + next(&rng) % 250);
            break;
        }
        /* Overwrites can land twice on one byte and put it back. */
        if (mode != 4 && memcmp(orig, buf, len) == 0)
            buf[0] ^= 1;
        check(buf, len, &rc);
        cr_assert_neq(rc, 0, "a damaged record (mode %d) decoded", mode);
        rejected++;
    }
    cr_assert_gt(decoded, ITERATIONS / 16);
    cr_assert_gt(rejected, ITERATIONS / 2);
}
