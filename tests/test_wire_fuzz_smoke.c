/* A seeded fuzz pass over the remoting wire codec (net/wire.c), small
 * enough for every test run: 100,000 inputs — random bytes, streams of one
 * to four valid frames of random kind and shape, and such streams damaged
 * by bit flips, byte overwrites, truncations, splices with another stream,
 * random length fields (inner ones too, with the frame's len made to
 * agree) and random header bytes. Every input must satisfy
 * tests/wire_check.h (which aborts on a violation), and intact streams
 * must decode frame for frame. The sanitizer builds add memory checking. The seed is printed;
 * CASTY_SEED replays it. tests/fuzz/fuzz_wire.c is the coverage-guided
 * version of the same checks. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "wire_check.h"

#define ITERATIONS 100000
#define MAX_FRAMES 4
#define MAX_PAYLOAD 300
#define MAX_ONE (CASTY__WIRE_HEADER + CASTY__WIRE_HELLO_FIXED + CASTY__WIRE_NAME_MAX + \
                 CASTY__WIRE_HOST_MAX)
#define BUF (2 * MAX_FRAMES * MAX_ONE) /* room for a splice of two streams */

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* n random bytes from 1..255 (a string without NUL) into s, terminated. */
static void random_string(uint64_t *rng, char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + next(rng) % 255);
    s[n] = '\0';
}

/* Short lengths most of the time, the longest sometimes. */
static size_t random_len(uint64_t *rng, size_t min, size_t max)
{
    if (next(rng) % 8 == 0)
        return next(rng) % 2 ? max : min;
    size_t small = max < 16 ? max : 16;
    return min + next(rng) % (small - min + 1);
}

/* A valid frame of random kind and shape at buf (room for MAX_ONE bytes);
 * returns its size. */
static size_t random_frame(uint64_t *rng, uint8_t *buf)
{
    uint8_t kind = (uint8_t)(1 + next(rng) % 8);
    long n = 0;
    switch (kind) {
    case CASTY__WIRE_HELLO:
    case CASTY__WIRE_WELCOME: {
        struct casty__wire_hello h;
        memset(&h, 0, sizeof h);
        h.version = CASTY__WIRE_VERSION;
        h.lane = (uint8_t)(next(rng) % 2);
        h.hflags = (uint8_t)(next(rng) % 2);
        h.node = next(rng);
        h.incarnation = next(rng);
        h.port = (uint16_t)next(rng);
        for (size_t i = 0; i < CASTY__WIRE_NONCE; i++)
            h.nonce[i] = (uint8_t)next(rng);
        if (kind == CASTY__WIRE_WELCOME && next(rng) % 2)
            for (size_t i = 0; i < CASTY__WIRE_MAC; i++)
                h.mac[i] = (uint8_t)next(rng);
        random_string(rng, h.name, random_len(rng, 1, CASTY__WIRE_NAME_MAX));
        random_string(rng, h.host, random_len(rng, 1, CASTY__WIRE_HOST_MAX));
        n = casty__wire_encode_hello(buf, MAX_ONE, kind, &h);
        break;
    }
    case CASTY__WIRE_AUTH: {
        uint8_t mac[CASTY__WIRE_MAC];
        for (size_t i = 0; i < sizeof mac; i++)
            mac[i] = (uint8_t)next(rng);
        n = casty__wire_encode_auth(buf, MAX_ONE, mac);
        break;
    }
    case CASTY__WIRE_REFUSE: {
        char text[CASTY__WIRE_TEXT_MAX + 1];
        random_string(rng, text, random_len(rng, 0, CASTY__WIRE_TEXT_MAX));
        n = casty__wire_encode_refuse(buf, MAX_ONE, (uint16_t)(next(rng) % 6), text);
        break;
    }
    case CASTY__WIRE_USER: {
        uint32_t plen = (uint32_t)(next(rng) % MAX_PAYLOAD);
        n = casty__wire_encode_user_prefix(buf, MAX_ONE, next(rng), next(rng), plen);
        for (uint32_t i = 0; i < plen; i++)
            buf[CASTY__WIRE_HEADER + CASTY__WIRE_USER_FIXED + i] = (uint8_t)next(rng);
        break;
    }
    case CASTY__WIRE_RESOLVE: {
        struct casty__wire_resolve r = {.reply_node = next(rng), .reply_actor = next(rng),
                                        .tag = next(rng)};
        random_string(rng, r.path, random_len(rng, 1, CASTY__WIRE_PATH_MAX));
        n = casty__wire_encode_resolve(buf, MAX_ONE, &r);
        break;
    }
    default: {
        struct casty__wire_heartbeat hb = {next(rng), next(rng)};
        n = casty__wire_encode_heartbeat(buf, MAX_ONE, kind, &hb);
        break;
    }
    }
    cr_assert_gt(n, 0, "encoding a random frame of kind %u failed: %ld", kind, n);
    return (size_t)n;
}

/* One to MAX_FRAMES valid frames back to back; *count gets how many and
 * *first the size of the first. */
static size_t random_stream(uint64_t *rng, uint8_t *buf, int *count, size_t *first)
{
    int frames = 1 + (int)(next(rng) % MAX_FRAMES);
    size_t len = 0;
    for (int i = 0; i < frames; i++) {
        size_t n = random_frame(rng, buf + len);
        if (i == 0)
            *first = n;
        len += n;
    }
    *count = frames;
    return len;
}

/* Sets the string lengths of the frame at buf (or, for fixed-size bodies,
 * its body length) to random values, out of range at times, and its len
 * to agree; returns the new body length. The bytes past the old frame are
 * whatever buf held. */
static uint32_t reshape(uint64_t *rng, uint8_t *buf)
{
    uint8_t kind = buf[4];
    uint8_t *b = buf + CASTY__WIRE_HEADER;
    uint32_t body;
    if (kind == CASTY__WIRE_HELLO || kind == CASTY__WIRE_WELCOME) {
        uint8_t name_len = (uint8_t)(next(rng) % 8 == 0 ? 0 : 1 + next(rng) % 70);
        uint8_t host_len = (uint8_t)(next(rng) % 8 == 0 ? 0 : 1 + next(rng) % 255);
        b[26] = name_len;
        b[27] = host_len;
        body = CASTY__WIRE_HELLO_FIXED + name_len + host_len;
    } else if (kind == CASTY__WIRE_RESOLVE) {
        uint16_t path_len = (uint16_t)(next(rng) % 8 == 0 ? 0 : 1 + next(rng) % 300);
        b[24] = (uint8_t)path_len;
        b[25] = (uint8_t)(path_len >> 8);
        body = CASTY__WIRE_RESOLVE_FIXED + path_len;
    } else if (kind == CASTY__WIRE_REFUSE) {
        uint8_t text_len = (uint8_t)next(rng);
        b[2] = text_len;
        body = 3u + text_len;
    } else {
        body = (uint32_t)(next(rng) % 48);
    }
    casty__wire_put_header(buf, kind, body);
    return body;
}

/* wire_check_input on an exact-size copy, so ASan sees a read past the end. */
static int check(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    cr_assert_not_null(copy);
    memcpy(copy, data, size);
    int decoded = wire_check_input(copy, size);
    free(copy);
    return decoded;
}

Test(wire_fuzz, codec_survives_random_and_damaged_frames)
{
    uint64_t seed = stress_seed("wire_fuzz");
    uint64_t rng = seed | 1;
    static uint8_t buf[BUF], other[BUF];
    uint64_t intact = 0, damaged = 0, random_inputs = 0, frames_decoded = 0;
    for (int it = 0; it < ITERATIONS; it++) {
        int mode = (int)(next(&rng) % 10);
        if (mode == 0) {
            /* random bytes, sometimes behind a plausible header */
            size_t n = next(&rng) % 512;
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)next(&rng);
            if (n >= 8 && next(&rng) % 2) {
                casty__wire_put_header(buf, (uint8_t)(1 + next(&rng) % 8), (uint32_t)(n - 8));
                if (n >= 12 && next(&rng) % 2)
                    memcpy(buf + 8, "CSTY", 4);
            }
            frames_decoded += (uint64_t)check(buf, n);
            random_inputs++;
            continue;
        }
        int count;
        size_t first;
        size_t len = random_stream(&rng, buf, &count, &first);
        if (mode == 1) {
            /* intact */
            int decoded = check(buf, len);
            cr_assert_eq(decoded, count, "an intact stream of %d frames decoded %d", count,
                         decoded);
            frames_decoded += (uint64_t)decoded;
            intact++;
            continue;
        }
        switch (mode) {
        case 2: /* one bit flipped */
            buf[next(&rng) % len] ^= (uint8_t)(1u << (next(&rng) % 8));
            break;
        case 3: { /* a few bytes overwritten */
            int n = 1 + (int)(next(&rng) % 4);
            for (int k = 0; k < n; k++)
                buf[next(&rng) % len] = (uint8_t)next(&rng);
            break;
        }
        case 4: /* truncated */
            len = next(&rng) % len;
            break;
        case 5: { /* the tail of another stream spliced in at a random point */
            int ocount;
            size_t ofirst;
            size_t olen = random_stream(&rng, other, &ocount, &ofirst);
            size_t cut = next(&rng) % len;
            size_t from = next(&rng) % olen;
            memcpy(buf + cut, other + from, olen - from);
            len = cut + (olen - from);
            break;
        }
        case 6: { /* a length field inside the first frame set at random */
            size_t at;
            switch (next(&rng) % 3) {
            case 0: at = 0; break;                       /* the frame's len */
            case 1: at = 8 + 26 + next(&rng) % 2; break; /* HELLO name/host, REFUSE, ... */
            default: at = 8 + 24 + next(&rng) % 2; break; /* RESOLVE path_len */
            }
            if (at < first)
                buf[at] = (uint8_t)next(&rng);
            break;
        }
        case 7: /* the first frame's inner lengths set at random, its len to match */
            len = CASTY__WIRE_HEADER + reshape(&rng, buf);
            break;
        case 8: /* a random 32-bit len */
            buf[0] = (uint8_t)next(&rng);
            buf[1] = (uint8_t)next(&rng);
            buf[2] = (uint8_t)(next(&rng) % 4 == 0 ? next(&rng) : 0);
            buf[3] = (uint8_t)(next(&rng) % 4 == 0 ? next(&rng) : 0);
            break;
        default: /* a header byte past len set at random */
            buf[4 + next(&rng) % 4] = (uint8_t)next(&rng);
            break;
        }
        frames_decoded += (uint64_t)check(buf, len);
        damaged++;
    }
    cr_assert_gt(intact, ITERATIONS / 16);
    cr_assert_gt(damaged, ITERATIONS / 2);
    cr_assert_gt(random_inputs, ITERATIONS / 16);
    cr_assert_gt(frames_decoded, intact);
}
