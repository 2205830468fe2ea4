/* The TOML parser's API (runtime/toml.c): the tree and its accessors, the
 * positions kept for keys and values, the line, column and wording of
 * errors (duplicate keys, redefined tables, bad escapes, bad dates, bad
 * encoding), and the nesting limit. Conformance to the whole TOML 1.0 spec
 * is tools/toml-test.sh's job; these pin down what config code relies on. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casty/error.h"
#include "toml.h"

static struct casty__toml *parse_ok(const char *src)
{
    struct casty__toml *root = NULL;
    struct casty__toml_error err;
    int rc = casty__toml_parse(src, strlen(src), &root, &err);
    cr_assert_eq(rc, 0, "parse failed: %u:%u: %s\n--- input:\n%s", err.line, err.col, err.msg, src);
    cr_assert_not_null(root);
    return root;
}

/* Asserts the parse fails at line:col with a message containing `want`. */
static void parse_fails(const char *src, size_t len, uint32_t line, uint32_t col, const char *want)
{
    struct casty__toml *root = (struct casty__toml *)1;
    struct casty__toml_error err;
    int rc = casty__toml_parse(src, len, &root, &err);
    cr_assert_eq(rc, CASTY_EINVAL, "expected failure, got %d for:\n%s", rc, src);
    cr_assert_null(root);
    cr_assert(strstr(err.msg, want) != NULL, "message \"%s\" lacks \"%s\"", err.msg, want);
    cr_assert(err.line == line && err.col == col, "error at %u:%u (%s), expected %u:%u", err.line,
              err.col, err.msg, line, col);
}

static void fails(const char *src, uint32_t line, uint32_t col, const char *want)
{
    parse_fails(src, strlen(src), line, col, want);
}

static int64_t get_int(const struct casty__toml *t, const char *path)
{
    int64_t v = 0;
    cr_assert_eq(casty__toml_int(casty__toml_get_path(t, path), &v), 0, "no integer at %s", path);
    return v;
}

static const char *get_str(const struct casty__toml *t, const char *path)
{
    const char *s = NULL;
    cr_assert_eq(casty__toml_string(casty__toml_get_path(t, path), &s, NULL), 0, "no string at %s",
                 path);
    return s;
}

Test(toml, config_shaped_document_and_accessors)
{
    struct casty__toml *root = parse_ok("# casty.toml\n"
                                        "name = \"node-1\"\n"
                                        "[server]\n"
                                        "host = 'localhost'\n"
                                        "port = 8080\n"
                                        "ratio = 0.75\n"
                                        "tls.enabled = true\n"
                                        "[[seeds]]\n"
                                        "addr = \"10.0.0.1:2552\"\n"
                                        "[[seeds]]\n"
                                        "addr = \"10.0.0.2:2552\"\n"
                                        "[limits]\n"
                                        "sizes = [1, 2, 3]\n"
                                        "started = 2024-03-01T12:30:00.25+01:00\n");
    cr_assert_eq(casty__toml_kind(root), CASTY__TOML_TABLE);
    cr_assert_eq(casty__toml_table_len(root), 4);
    cr_assert_str_eq(get_str(root, "name"), "node-1");
    cr_assert_str_eq(get_str(root, "server.host"), "localhost");
    cr_assert_eq(get_int(root, "server.port"), 8080);

    const struct casty__toml *server = casty__toml_table_get(root, "server");
    double ratio;
    cr_assert_eq(casty__toml_float(casty__toml_table_get(server, "ratio"), &ratio), 0);
    cr_assert_float_eq(ratio, 0.75, 1e-12);
    bool on = false;
    cr_assert_eq(casty__toml_bool(casty__toml_get_path(server, "tls.enabled"), &on), 0);
    cr_assert(on);

    /* Keys in document order, with their positions. */
    size_t klen;
    cr_assert_str_eq(casty__toml_table_key_at(server, 0, &klen), "host");
    cr_assert_eq(klen, 4);
    cr_assert_str_eq(casty__toml_table_key_at(server, 3, NULL), "tls");
    cr_assert_null(casty__toml_table_key_at(server, 4, NULL));
    size_t idx;
    cr_assert(casty__toml_table_find(server, "port", 4, &idx));
    cr_assert_eq(idx, 1);
    struct casty__toml_pos kp = casty__toml_table_key_pos(server, idx);
    cr_assert(kp.line == 5 && kp.col == 1);
    struct casty__toml_pos vp = casty__toml_pos(casty__toml_table_value_at(server, idx));
    cr_assert(vp.line == 5 && vp.col == 8);

    const struct casty__toml *seeds = casty__toml_table_get(root, "seeds");
    cr_assert_eq(casty__toml_kind(seeds), CASTY__TOML_ARRAY);
    cr_assert_eq(casty__toml_array_len(seeds), 2);
    cr_assert_str_eq(get_str(casty__toml_array_at(seeds, 1), "addr"), "10.0.0.2:2552");
    cr_assert_null(casty__toml_array_at(seeds, 2));

    const struct casty__toml *sizes = casty__toml_get_path(root, "limits.sizes");
    cr_assert_eq(casty__toml_array_len(sizes), 3);
    int64_t third;
    cr_assert_eq(casty__toml_int(casty__toml_array_at(sizes, 2), &third), 0);
    cr_assert_eq(third, 3);

    struct casty__toml_datetime dt;
    const struct casty__toml *started = casty__toml_get_path(root, "limits.started");
    cr_assert_eq(casty__toml_kind(started), CASTY__TOML_DATETIME);
    cr_assert_str_eq(casty__toml_kind_name(casty__toml_kind(started)), "datetime");
    cr_assert_eq(casty__toml_datetime(started, &dt), 0);
    cr_assert(dt.year == 2024 && dt.month == 3 && dt.day == 1 && dt.hour == 12 && dt.minute == 30 &&
              dt.second == 0);
    cr_assert_eq(dt.nanosecond, 250000000);
    cr_assert_eq(dt.frac_digits, 2);
    cr_assert_eq(dt.offset_minutes, 60);
    casty__toml_free(root);
}

Test(toml, getters_check_kinds_and_lookups_take_null)
{
    struct casty__toml *root = parse_ok("i = 1\nf = 1.0\ns = \"x\"\nt = {}\n");
    const struct casty__toml *i = casty__toml_table_get(root, "i");
    double f;
    const char *s;
    bool b;
    int64_t n;
    struct casty__toml_datetime dt;
    cr_assert_eq(casty__toml_float(i, &f), CASTY_EINVAL, "integers are not floats");
    cr_assert_eq(casty__toml_string(i, &s, NULL), CASTY_EINVAL);
    cr_assert_eq(casty__toml_bool(i, &b), CASTY_EINVAL);
    cr_assert_eq(casty__toml_datetime(i, &dt), CASTY_EINVAL);
    cr_assert_eq(casty__toml_int(casty__toml_table_get(root, "f"), &n), CASTY_EINVAL);
    cr_assert_eq(casty__toml_number(i, &f), 0, "number takes integers too");
    cr_assert_eq(f, 1.0);
    cr_assert_eq(casty__toml_number(casty__toml_table_get(root, "f"), &f), 0);
    cr_assert_eq(casty__toml_number(casty__toml_table_get(root, "s"), &f), CASTY_EINVAL);
    cr_assert_eq(casty__toml_int(NULL, &n), CASTY_EINVAL);
    cr_assert_null(casty__toml_table_get(root, "missing"));
    cr_assert_null(casty__toml_table_get(NULL, "i"));
    cr_assert_null(casty__toml_table_get(i, "x"), "a scalar is not a table");
    cr_assert_null(casty__toml_get_path(root, "i.x"));
    cr_assert_null(casty__toml_get_path(root, "missing.x"));
    cr_assert_eq(casty__toml_table_len(i), 0);
    cr_assert_eq(casty__toml_array_len(i), 0);
    cr_assert_eq(casty__toml_table_len(casty__toml_table_get(root, "t")), 0);
    casty__toml_free(root);
    casty__toml_free(NULL);
}

Test(toml, every_scalar_kind)
{
    struct casty__toml *root = parse_ok("hex = 0xdead_BEEF\noct = 0o755\nbin = -0\nbig = -9223372036854775808\n"
                                        "pinf = +inf\nnnan = -nan\nexp = 6.626e-34\n"
                                        "ld = 1979-05-27\nlt = 07:32:00.999999999999\n"
                                        "ldt = 1979-05-27 07:32:00\nodt = 1979-05-27T07:32:00z\n");
    cr_assert_eq(get_int(root, "hex"), 0xdeadbeef);
    cr_assert_eq(get_int(root, "oct"), 0755);
    cr_assert_eq(get_int(root, "bin"), 0);
    cr_assert_eq(get_int(root, "big"), INT64_MIN);
    double f;
    cr_assert_eq(casty__toml_float(casty__toml_table_get(root, "pinf"), &f), 0);
    cr_assert(isinf(f) && f > 0);
    cr_assert_eq(casty__toml_float(casty__toml_table_get(root, "nnan"), &f), 0);
    cr_assert(isnan(f));
    cr_assert_eq(casty__toml_float(casty__toml_table_get(root, "exp"), &f), 0);
    cr_assert_eq(f, 6.626e-34, "floats are read exactly (strtod in the C locale)");

    static const struct {
        const char *key;
        enum casty__toml_kind kind;
    } kinds[] = {{"ld", CASTY__TOML_DATE_LOCAL},
                 {"lt", CASTY__TOML_TIME_LOCAL},
                 {"ldt", CASTY__TOML_DATETIME_LOCAL},
                 {"odt", CASTY__TOML_DATETIME}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        cr_assert_eq(casty__toml_kind(casty__toml_table_get(root, kinds[i].key)), kinds[i].kind, "%s",
                     kinds[i].key);
    struct casty__toml_datetime dt;
    cr_assert_eq(casty__toml_datetime(casty__toml_table_get(root, "lt"), &dt), 0);
    cr_assert_eq(dt.nanosecond, 999999999, "fraction truncated to nanoseconds");
    cr_assert_eq(dt.frac_digits, 9);
    cr_assert_eq(dt.year, 0, "a local time has no date");
    casty__toml_free(root);
}

Test(toml, strings_escapes_and_multiline_forms)
{
    struct casty__toml *root =
        parse_ok("a = \"tab\\there \\u00e9 \\U0001F600 \\\"q\\\"\"\n"
                 "b = 'C:\\raw\\path'\n"
                 "c = \"\"\"\nfirst\r\nsecond \\\n    joined\"\"\"\n"
                 "d = '''\n''quoted'' '''''\n"
                 "e = \"nul\\u0000inside\"\n");
    cr_assert_str_eq(get_str(root, "a"), "tab\there \xc3\xa9 \xf0\x9f\x98\x80 \"q\"");
    cr_assert_str_eq(get_str(root, "b"), "C:\\raw\\path");
    cr_assert_str_eq(get_str(root, "c"), "first\nsecond joined",
                     "leading newline trimmed, CRLF read as LF, line-ending backslash");
    cr_assert_str_eq(get_str(root, "d"), "''quoted'' ''");
    const char *s;
    size_t len;
    cr_assert_eq(casty__toml_string(casty__toml_table_get(root, "e"), &s, &len), 0);
    cr_assert_eq(len, 10);
    cr_assert_eq(memcmp(s, "nul\0inside", 11), 0, "bytes, then a NUL after them");
    casty__toml_free(root);
}

Test(toml, keys_quoted_dotted_and_with_nul)
{
    struct casty__toml *root = parse_ok("\"a.b\" = 1\n'x y'.z = 2\n\"k\\u0000\" = 3\n"
                                        "site.\"google.com\" = true\n  1.2 = 4\n");
    cr_assert_not_null(casty__toml_table_get(root, "a.b"));
    cr_assert_null(casty__toml_get_path(root, "a.b"), "get_path splits at dots");
    cr_assert_eq(get_int(casty__toml_table_get(root, "x y"), "z"), 2);
    cr_assert_not_null(casty__toml_table_getn(root, "k\0", 2));
    cr_assert_null(casty__toml_table_get(root, "k"));
    cr_assert_not_null(casty__toml_table_get(casty__toml_table_get(root, "site"), "google.com"));
    cr_assert_eq(get_int(root, "1.2"), 4);
    size_t idx;
    cr_assert(casty__toml_table_find(root, "1", 1, &idx));
    struct casty__toml_pos p = casty__toml_table_key_pos(root, idx);
    cr_assert(p.line == 5 && p.col == 3);
    casty__toml_free(root);
}

Test(toml, positions_count_code_points_and_crlf_lines)
{
    struct casty__toml *root = parse_ok("\xef\xbb\xbf"
                                        "a = 1\r\n"
                                        "\"\xc3\xa9t\xc3\xa9\" = \"\xe2\x82\xac\" # comment \xe2\x9c\x93\r\n"
                                        "[t]\r\n"
                                        "  k = [\r\n    1,\r\n    \"x\"]\r\n");
    size_t idx;
    cr_assert(casty__toml_table_find(root, "\xc3\xa9t\xc3\xa9", 5, &idx));
    cr_assert_eq(casty__toml_table_key_pos(root, idx).line, 2);
    struct casty__toml_pos vp = casty__toml_pos(casty__toml_table_value_at(root, idx));
    cr_assert(vp.line == 2 && vp.col == 9, "value at %u:%u", vp.line, vp.col);
    const struct casty__toml *t = casty__toml_table_get(root, "t");
    struct casty__toml_pos tp = casty__toml_pos(t);
    cr_assert(tp.line == 3 && tp.col == 1, "a [header] table is where its header is");
    const struct casty__toml *k = casty__toml_table_get(t, "k");
    struct casty__toml_pos x = casty__toml_pos(casty__toml_array_at(k, 1));
    cr_assert(x.line == 6 && x.col == 5, "element at %u:%u", x.line, x.col);
    casty__toml_free(root);
}

Test(toml, input_need_not_be_nul_terminated)
{
    const char src[] = "a = 12345";
    struct casty__toml *root;
    struct casty__toml_error err;
    cr_assert_eq(casty__toml_parse(src, 7, &root, &err), 0); /* "a = 123" */
    cr_assert_eq(get_int(root, "a"), 123);
    casty__toml_free(root);

    cr_assert_eq(casty__toml_parse(NULL, 0, &root, NULL), 0, "empty input is an empty table");
    cr_assert_eq(casty__toml_table_len(root), 0);
    casty__toml_free(root);
    cr_assert_eq(casty__toml_parse("x = ", 4, &root, NULL), CASTY_EINVAL, "err may be NULL");
}

Test(toml, duplicate_keys)
{
    fails("[server]\nport = 80\nport = 81\n", 3, 1, "duplicate key \"port\"");
    fails("a.b = 1\n  a.b = 2\n", 2, 3, "duplicate key \"a.b\"");
    fails("\"x y\" = 1\n'x y' = 2\n", 2, 1, "duplicate key \"'x y'\"");
    fails("t = {a = 1, a = 2}\n", 1, 13, "duplicate key \"a\"");
    fails("a = 1\na.b = 2\n", 2, 1, "key \"a\" is an integer, not a table");
}

Test(toml, redefined_tables)
{
    fails("[a]\nx = 1\n[b]\n[a]\n", 4, 1, "table [a] defined twice");
    fails("[a.b]\n[a]\n[a.b]\n", 3, 1, "table [a.b] defined twice");
    fails("[a]\nb.c = 1\n[a.b]\n", 3, 1, "table [a.b] already defined by dotted keys");
    fails("a = {b = 1}\n[a]\n", 2, 1, "table [a] already defined as an inline table");
    fails("a = {b = 1}\n[a.c]\n", 2, 1, "cannot add to inline table \"a\"");
    fails("a = {b = 1}\na.c = 2\n", 2, 1, "cannot add keys to inline table \"a\"");
    fails("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", 4, 1, "dotted keys outside its [header]");
    fails("a = []\n[[a]]\n", 2, 1, "cannot append to static array \"a\"");
    fails("[[a]]\n[a]\n", 2, 1, "table [a] already defined as an array of tables");
    fails("[a]\n[[a]]\n", 2, 1, "[[a]] but \"a\" is already a table");

    /* What is allowed: implicit tables defined later, sub-tables of dotted
     * tables, and [[x]] element tables reopened per element. */
    struct casty__toml *root = parse_ok("[a.b.c]\n[a]\nx = 1\n[fruit]\napple.color = 'red'\n"
                                        "[fruit.apple.texture]\nsmooth = true\n"
                                        "[[p]]\n[p.q]\nn = 1\n[[p]]\n[p.q]\nn = 2\n");
    cr_assert_eq(get_int(root, "a.x"), 1);
    cr_assert_not_null(casty__toml_get_path(root, "fruit.apple.texture.smooth"));
    const struct casty__toml *p = casty__toml_table_get(root, "p");
    cr_assert_eq(casty__toml_array_len(p), 2);
    cr_assert_eq(get_int(casty__toml_array_at(p, 1), "q.n"), 2);
    casty__toml_free(root);
}

Test(toml, bad_escapes)
{
    fails("s = \"a\\qb\"\n", 1, 7, "invalid escape \\q");
    fails("s = \"\\uD800\"\n", 1, 6, "not a Unicode scalar value");
    fails("s = \"\\U00110000\"\n", 1, 6, "not a Unicode scalar value");
    fails("s = \"\\u12\"\n", 1, 6, "\\u escape needs 4 hex digits");
    fails("s = \"\\x41\"\n", 1, 6, "invalid escape \\x");
    fails("s = \"\"\"a \\ b\"\"\"\n", 1, 10, "backslash followed by whitespace");
    fails("s = \"tab\x01\"\n", 1, 9, "control character 0x01 in string");
    fails("s = \"open\n", 1, 10, "newline in a single-line string");
    fails("s = '''never closed\n", 1, 5, "unterminated multi-line string");
}

Test(toml, bad_dates_and_numbers)
{
    fails("d = 2023-02-29\n", 1, 5, "day out of range for its month");
    fails("d = 2023-13-01\n", 1, 5, "month out of range");
    fails("d = 2023-01-01T24:00:00\n", 1, 5, "hour out of range");
    fails("d = 2023-01-01T23:60:00\n", 1, 5, "minute out of range");
    fails("d = 23:59:61\n", 1, 5, "second out of range");
    fails("d = 2023-01-01T10:00\n", 1, 5, "seconds are required");
    fails("d = 2023-01-01T10:00:00+25:00\n", 1, 5, "time offset out of range");
    fails("d = 2023-1-01\n", 1, 5, "invalid date");
    fails("n = 9223372036854775808\n", 1, 5, "integer out of range");
    fails("n = 0x8000000000000000\n", 1, 5, "integer out of range");
    fails("n = 012\n", 1, 5, "leading zero");
    fails("n = 1__0\n", 1, 5, "invalid number");
    fails("n = 1e999\n", 1, 5, "float out of range");
    fails("n = 1.\n", 1, 5, "digits required after '.'");
    fails("b = True\n", 1, 5, "invalid value");

    struct casty__toml *root = parse_ok("leap = 2024-02-29\ns60 = 23:59:60\n");
    casty__toml_free(root);
}

Test(toml, encoding_errors)
{
    fails("a = 1\nb = \"\xc3\x28\"\n", 2, 6, "invalid UTF-8");
    fails("a = \"\xed\xa0\x80\"\n", 1, 6, "invalid UTF-8"); /* an encoded surrogate */
    fails("a = \"\xc0\xaf\"\n", 1, 6, "invalid UTF-8");     /* overlong */
    fails("a = 1\rb = 2\n", 1, 6, "carriage return not followed by a line feed");
    fails("# comment \x7f\n", 1, 11, "control character 0x7f in comment");
    parse_fails("a = \"x\0y\"\n", 10, 1, 7, "control character 0x00 in string");
}

Test(toml, syntax_errors_point_at_the_offender)
{
    fails("a = 1 b = 2\n", 1, 7, "expected end of line after value, found 'b'");
    fails("= 1\n", 1, 1, "expected a key, found '='");
    fails("a 1\n", 1, 3, "expected '=' after key");
    fails("a = [1 2]\n", 1, 8, "expected ',' or ']' in array");
    fails("a = {x = 1,}\n", 1, 12, "trailing comma in inline table");
    fails("a = {x = 1\n}\n", 1, 11, "newline in inline table");
    fails("[a\n", 1, 3, "expected ']' to close the table header");
    fails("[[a] ]\n", 1, 4, "expected ']]' to close the table header");
    fails("a = \n", 1, 5, "expected a value, found end of line");
    fails("\"\"\"k\"\"\" = 1\n", 1, 1, "a multi-line string cannot be a key");
}

static char *nested(const char *open, const char *mid, const char *close, int depth)
{
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
    char *s = malloc(4 + (size_t)depth * (lo + lc) + lm + 2);
    char *o = s;
    memcpy(o, "x = ", 4), o += 4;
    for (int i = 0; i < depth; i++)
        memcpy(o, open, lo), o += lo;
    memcpy(o, mid, lm), o += lm;
    for (int i = 0; i < depth; i++)
        memcpy(o, close, lc), o += lc;
    *o++ = '\n';
    *o = '\0';
    return s;
}

/* pre a.a.a...(parts) post */
static char *dotted_key(int parts, const char *pre, const char *post)
{
    char *s = malloc(strlen(pre) + 2 * (size_t)parts + strlen(post) + 1);
    size_t o = (size_t)sprintf(s, "%s", pre);
    for (int i = 0; i < parts; i++)
        o += (size_t)sprintf(s + o, i ? ".a" : "a");
    sprintf(s + o, "%s", post);
    return s;
}

Test(toml, nesting_is_bounded)
{
    /* x sits at depth 1 in the root, so 128 levels of brackets fit. */
    char *ok = nested("[", "1", "]", CASTY__TOML_MAX_DEPTH);
    struct casty__toml *root = parse_ok(ok);
    const struct casty__toml *v = casty__toml_table_get(root, "x");
    for (int i = 1; i < CASTY__TOML_MAX_DEPTH; i++)
        v = casty__toml_array_at(v, 0);
    int64_t one;
    cr_assert_eq(casty__toml_int(casty__toml_array_at(v, 0), &one), 0);
    casty__toml_free(root);
    free(ok);

    char *deep = nested("[", "1", "]", CASTY__TOML_MAX_DEPTH + 1);
    fails(deep, 1, 5 + CASTY__TOML_MAX_DEPTH, "nesting deeper than 128 levels");
    free(deep);
    deep = nested("{a=", "1", "}", CASTY__TOML_MAX_DEPTH + 1);
    fails(deep, 1, 5 + 3 * CASTY__TOML_MAX_DEPTH, "nesting deeper than 128 levels");
    free(deep);

    /* Far too deep must fail cleanly, not exhaust the stack. */
    deep = nested("[", "", "", 1000000);
    struct casty__toml_error err;
    cr_assert_eq(casty__toml_parse(deep, strlen(deep), &root, &err), CASTY_EINVAL);
    cr_assert(strstr(err.msg, "nesting") != NULL, "%s", err.msg);
    free(deep);

    /* Table headers and dotted keys count too: a header of 129 parts
     * makes a table at depth 129; a dotted key of 130 parts puts its
     * last table there (the value itself is a scalar). */
    char *hdr = dotted_key(CASTY__TOML_MAX_DEPTH + 1, "[", "]\n");
    cr_assert_eq(casty__toml_parse(hdr, strlen(hdr), &root, &err), CASTY_EINVAL);
    cr_assert(strstr(err.msg, "nesting") != NULL, "%s", err.msg);
    free(hdr);
    char *dk = dotted_key(CASTY__TOML_MAX_DEPTH + 1, "", " = 1\n");
    root = parse_ok(dk);
    casty__toml_free(root);
    free(dk);
    dk = dotted_key(CASTY__TOML_MAX_DEPTH + 2, "", " = 1\n");
    cr_assert_eq(casty__toml_parse(dk, strlen(dk), &root, &err), CASTY_EINVAL);
    cr_assert(strstr(err.msg, "nesting") != NULL, "%s", err.msg);
    free(dk);
}

Test(toml, large_tables_find_every_key_and_every_duplicate)
{
    enum { N = 5000 };
    size_t cap = (size_t)N * 24 + 64;
    char *src = malloc(cap);
    size_t o = 0;
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(src + o, cap - o, "key%d = %d\n", i, i);
    struct casty__toml *root;
    struct casty__toml_error err;
    cr_assert_eq(casty__toml_parse(src, o, &root, &err), 0, "%s", err.msg);
    cr_assert_eq(casty__toml_table_len(root), N);
    for (int i = 0; i < N; i += 7) {
        char k[16];
        snprintf(k, sizeof(k), "key%d", i);
        int64_t v;
        cr_assert_eq(casty__toml_int(casty__toml_table_get(root, k), &v), 0);
        cr_assert_eq(v, i);
        cr_assert_str_eq(casty__toml_table_key_at(root, (size_t)i, NULL), k);
    }
    casty__toml_free(root);

    o += (size_t)snprintf(src + o, cap - o, "key%d = 0\n", N / 2);
    cr_assert_eq(casty__toml_parse(src, o, &root, &err), CASTY_EINVAL);
    cr_assert_eq(err.line, N + 1);
    char want[40];
    snprintf(want, sizeof(want), "duplicate key \"key%d\"", N / 2);
    cr_assert_str_eq(err.msg, want);
    free(src);
}
