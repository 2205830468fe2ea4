/* Invariant checks on the journal record codec (persist/journal_format.c),
 * shared by the libFuzzer target (tests/fuzz/fuzz_journal_record.c) and
 * its Criterion smoke test (tests/test_journal_fuzz_smoke.c): whatever the
 * bytes, decoding either yields a record that lies inside the input and
 * re-encodes to the same bytes, or fails with CASTY_ENOSPC (asking for
 * more than it was given) or CASTY_ECORRUPT (with a reason). Returns NULL
 * when every check holds, or what was violated. */
#ifndef CASTY_TEST_JOURNAL_RECORD_CHECK_H
#define CASTY_TEST_JOURNAL_RECORD_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "casty/error.h"
#include "journal_format.h"

/* Decodes data[0..size) and checks the outcome; *rc_out gets decode's rc. */
static inline const char *journal_record_check(const unsigned char *data, size_t size, int *rc_out)
{
    casty__jrec_t r;
    size_t need = 0;
    const char *why = NULL;
    int rc = casty__jrec_decode(data, size, &r, &need, &why);
    if (rc_out)
        *rc_out = rc;
    if (rc == CASTY_ENOSPC)
        return need > size && need <= CASTY__JREC_MAX ? NULL : "CASTY_ENOSPC with a bad `need`";
    if (rc == CASTY_ECORRUPT)
        return why && why[0] ? NULL : "CASTY_ECORRUPT without a reason";
    if (rc != 0)
        return "decode returned an unexpected code";
    if (r.len > size || r.len != casty__jrec_size(r.pid_len, r.payload_len))
        return "decoded record does not fit the input";
    if (r.pid != (const char *)data + CASTY__JREC_HEADER ||
        (const unsigned char *)r.payload != data + CASTY__JREC_HEADER + r.pid_len)
        return "decoded pointers outside the record";
    if (r.kind < CASTY__JREC_EVENT || r.kind > CASTY__JREC_SNAPSHOT || r.seq == 0)
        return "decoded record breaks a validity rule";
    unsigned char *again = malloc(r.len);
    if (again == NULL)
        return NULL;
    casty__jrec_encode(again, r.kind, r.pid, r.pid_len, r.seq, r.type_id, r.payload, r.payload_len);
    int same = memcmp(again, data, r.len) == 0;
    free(again);
    if (!same)
        return "re-encoding a decoded record gives other bytes";
    /* A strict prefix of a record is never a record. */
    if (casty__jrec_decode(data, r.len - 1, NULL, NULL, NULL) == 0)
        return "a truncated record decoded";
    return NULL;
}

/* The segment header codec, on the same bytes. */
static inline const char *journal_segment_check(const unsigned char *data, size_t size)
{
    uint64_t segno = 0;
    const char *why = NULL;
    int rc = casty__jseg_header_decode(data, size, &segno, &why);
    if (rc == CASTY_ENOSPC)
        return size < CASTY__JSEG_HEADER ? NULL : "segment header: CASTY_ENOSPC with enough bytes";
    if (rc == CASTY_ECORRUPT)
        return why ? NULL : "segment header: CASTY_ECORRUPT without a reason";
    if (rc != 0)
        return "segment header: unexpected code";
    unsigned char again[CASTY__JSEG_HEADER];
    casty__jseg_header_encode(again, segno);
    return memcmp(again, data, sizeof again) == 0 ? NULL : "segment header does not re-encode";
}

#endif
