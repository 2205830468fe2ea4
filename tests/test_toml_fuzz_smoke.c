/* A seeded mutation fuzzer for the TOML parser, small enough for every
 * test run: 50,000 inputs made by mutating the toml-test suite's valid
 * files (from ../shared/toml-test, or CASTY_TOML_TEST_DIR; built-in samples
 * when absent) with byte flips, inserted TOML punctuation, deletions,
 * duplications, splices and truncations. Each must parse into a well-formed
 * tree or fail with a sane error (tests/toml_check.h); the sanitizer builds
 * (make asan) add memory checking. The seed is printed; set CASTY_SEED
 * to replay a failure. tests/fuzz/fuzz_toml.c is the
 * coverage-guided version of the same checks. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "toml_check.h"

#define ITERATIONS 50000
#define MAX_INPUT 8192

struct sample {
    char *data;
    size_t len;
};

struct corpus {
    struct sample *v;
    size_t n, cap;
};

static const char *const builtin[] = {
    "title = \"casty\"\n[server]\nhost = 'localhost'\nport = 8080\n",
    "[[seeds]]\naddr = \"10.0.0.1\"\n[[seeds]]\naddr = \"10.0.0.2\"\n",
    "a.b.c = 1\na.b.d = [1, 2.5, \"x\", {y = true}]\n",
    "s = \"\"\"\nline \\\n  joined \\u00e9\"\"\"\nl = '''raw ''quoted'' '''\n",
    "odt = 1979-05-27T07:32:00.999-07:00\nld = 1979-05-27\nlt = 07:32:00\nldt = 1979-05-27 07:32:00\n",
    "hex = 0xDEAD_beef\noct = 0o17\nbin = 0b1010\nf = -1.5e-3\ninf = +inf\nnan = nan\n",
    "t = { a = 1, b.c = 'x', d = { e = [ [1], [2] ] } }\n# comment\r\nk = \"v\"\r\n",
    "[a.'quoted key'.\"dq\"]\nx = 1\n[a]\ny = 2\n",
};

static void corpus_add(struct corpus *c, const char *data, size_t len)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        cr_assert_not_null(c->v);
    }
    char *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, data, len);
    c->v[c->n++] = (struct sample){copy, len};
}

/* Adds the valid TOML files that files-toml-1.0.0 lists. */
static void load_suite(struct corpus *c, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/files-toml-1.0.0", dir);
    FILE *list = fopen(path, "r");
    if (!list)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), list)) {
        line[strcspn(line, "\r\n")] = '\0';
        size_t n = strlen(line);
        if (strncmp(line, "valid/", 6) != 0 || n < 5 || strcmp(line + n - 5, ".toml") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, line);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char buf[MAX_INPUT];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        corpus_add(c, buf, len);
    }
    fclose(list);
}

static uint64_t rng(uint64_t *s)
{
    /* splitmix64: one state word, good enough spread for mutations. */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t below(uint64_t *s, size_t n)
{
    return n ? (size_t)(rng(s) % n) : 0;
}

static const char *const tokens[] = {
    "[", "]", "[[", "]]", "{", "}", "=", ".", ",", "#", "\"", "'", "\"\"\"", "'''", "\\",
    "\\u", "\\U0010FFFF", "\\uD800", "\n", "\r\n", "\r", "\t", " ", "0x", "0o", "0b", "e", "E",
    "_", "+", "-", ":", "T", "Z", "z", "inf", "nan", "true", "false", "1979-05-27", "07:32:00",
    "1979-05-27T07:32:00Z", ".999", "+01:00", "9223372036854775807", "9223372036854775808",
    "\xc3\xa9", "\xff", "\xc3", "\xed\xa0\x80", "\xef\xbb\xbf", "\x7f", "\x01", "a", "a.b",
    "[a]", "[[a]]", "a = 1", "a = {}", "a = []",
};

/* Applies 1-8 random mutations to `in`, writing at most MAX_INPUT bytes. */
static size_t mutate(uint64_t *s, const struct corpus *c, const struct sample *in, char *out)
{
    size_t len = in->len < MAX_INPUT ? in->len : MAX_INPUT;
    memcpy(out, in->data, len);
    int rounds = 1 + (int)below(s, 8);
    for (int r = 0; r < rounds; r++) {
        size_t at = below(s, len + 1);
        switch (below(s, 7)) {
        case 0: /* flip a byte */
            if (len)
                out[below(s, len)] ^= (char)(1u << below(s, 8));
            break;
        case 1: /* random byte */
            if (len)
                out[below(s, len)] = (char)rng(s);
            break;
        case 2: { /* insert a token */
            const char *t = tokens[below(s, sizeof(tokens) / sizeof(tokens[0]))];
            size_t tl = strlen(t);
            if (len + tl > MAX_INPUT)
                break;
            memmove(out + at + tl, out + at, len - at);
            memcpy(out + at, t, tl);
            len += tl;
            break;
        }
        case 3: { /* delete a range */
            size_t n = below(s, 16) + 1;
            if (at + n > len)
                n = len - at;
            memmove(out + at, out + at + n, len - at - n);
            len -= n;
            break;
        }
        case 4: { /* duplicate a range (repeats nest brackets) */
            if (!len)
                break;
            size_t from = below(s, len);
            size_t n = below(s, 64) + 1;
            if (from + n > len)
                n = len - from;
            if (len + n > MAX_INPUT)
                break;
            char piece[64];
            memcpy(piece, out + from, n);
            memmove(out + at + n, out + at, len - at);
            memcpy(out + at, piece, n);
            len += n;
            break;
        }
        case 5: { /* splice the tail of another sample */
            const struct sample *o = &c->v[below(s, c->n)];
            size_t from = below(s, o->len + 1);
            size_t n = o->len - from;
            if (at + n > MAX_INPUT)
                n = MAX_INPUT - at;
            memcpy(out + at, o->data + from, n);
            len = at + n;
            break;
        }
        default: /* truncate */
            len = at;
            break;
        }
    }
    return len;
}

Test(toml_fuzz, mutated_inputs_parse_or_fail_cleanly, .timeout = 300)
{
    struct corpus c = {0};
    const char *dir = getenv("CASTY_TOML_TEST_DIR");
    load_suite(&c, dir ? dir : "../shared/toml-test");
    bool from_suite = c.n > 0;
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        corpus_add(&c, builtin[i], strlen(builtin[i]));

    uint64_t seed = stress_seed("toml_fuzz/mutated_inputs_parse_or_fail_cleanly");
    fprintf(stderr, "toml_fuzz: %zu samples from %s\n", c.n,
            from_suite ? "the toml-test suite and built-ins" : "built-ins only");

    uint64_t s = seed;
    char *buf = malloc(MAX_INPUT);
    cr_assert_not_null(buf);
    size_t ok = 0;
    for (int i = 0; i < ITERATIONS; i++) {
        const struct sample *in = &c.v[below(&s, c.n)];
        size_t len = mutate(&s, &c, in, buf);
        /* An exact-size copy, so the sanitizer sees any read past len. */
        char *src = malloc(len ? len : 1);
        cr_assert_not_null(src);
        memcpy(src, buf, len);
        struct casty__toml *root = NULL;
        struct casty__toml_error err;
        int rc = casty__toml_parse(src, len, &root, &err);
        const char *why = toml_check_result(src, len, rc, root, &err);
        cr_assert_null(why, "seed %" PRIu64 " iteration %d: %s (rc %d, %u:%u: %s)", seed, i, why, rc,
                       err.line, err.col, rc ? err.msg : "");
        ok += rc == 0;
        casty__toml_free(root);
        free(src);
    }
    fprintf(stderr, "toml_fuzz: %zu of %d mutated inputs parsed\n", ok, ITERATIONS);
    /* Mutations are light enough that some inputs stay valid; if none did,
     * the loop was only exercising the first error path. */
    cr_assert_gt(ok, 0, "no mutated input parsed");
    cr_assert_lt(ok, ITERATIONS, "every mutated input parsed");

    /* The unmutated samples: the suite's valid files must all parse. */
    for (size_t i = 0; i < c.n; i++) {
        struct casty__toml *root;
        struct casty__toml_error err;
        int rc = casty__toml_parse(c.v[i].data, c.v[i].len, &root, &err);
        cr_assert_eq(rc, 0, "sample %zu: %u:%u: %s", i, err.line, err.col, err.msg);
        cr_assert_null(toml_check_tree(root, 0));
        casty__toml_free(root);
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.v[i].data);
    free(c.v);
    free(buf);
}
