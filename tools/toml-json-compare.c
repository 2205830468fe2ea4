/* toml-json-compare EXPECTED.json ACTUAL.json: compares two toml-test
 * "tagged JSON" documents as values, for tools/toml-test.sh. Objects compare
 * as unordered key sets, arrays element by element, and tagged scalars
 * {"type": T, "value": S} by what S means for T: integers and floats by
 * number (nan equals nan, -0 differs from 0), date/times by their fields
 * ("T", "t" and " " are the same separator, "Z" is "+00:00", trailing zeros
 * in fractional seconds do not count), strings and booleans byte for byte.
 * Exit 0 when equal; 1 with the first difference on stdout when not; 2 when
 * a file cannot be read or is not JSON. It knows nothing of TOML itself and
 * does not use the casty library. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 1000

enum jkind { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
    enum jkind kind;
    char *str; /* J_STR (decoded, may hold NUL), J_NUM (as written) */
    size_t len;
    bool b;
    struct jval *items; /* J_ARR elements; J_OBJ values */
    struct jval *keys;  /* J_OBJ keys (J_STR) */
    size_t n;
};

struct jparser {
    const char *s;
    size_t len, pos;
    const char *file;
};

static void die(const struct jparser *p, const char *what)
{
    fprintf(stdout, "%s: invalid JSON at byte %zu: %s\n", p->file, p->pos, what);
    exit(2);
}

static void *xrealloc(void *ptr, size_t n)
{
    void *r = realloc(ptr, n ? n : 1);
    if (!r) {
        fprintf(stdout, "toml-json-compare: out of memory\n");
        exit(2);
    }
    return r;
}

static void ws(struct jparser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos] != '\0')
        p->pos++;
}

static int hexval(struct jparser *p)
{
    if (p->pos + 4 > p->len)
        die(p, "short \\u escape");
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            die(p, "bad \\u escape");
    }
    return v;
}

static void addc(struct jval *v, size_t *cap, char c)
{
    if (v->len + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 16;
        v->str = xrealloc(v->str, *cap);
    }
    v->str[v->len++] = c;
    v->str[v->len] = '\0';
}

static void parse_str(struct jparser *p, struct jval *v)
{
    size_t cap = 0;
    memset(v, 0, sizeof(*v));
    v->kind = J_STR;
    v->str = xrealloc(NULL, 1);
    v->str[0] = '\0';
    v->len = 0;
    p->pos++; /* " */
    for (;;) {
        if (p->pos >= p->len)
            die(p, "unterminated string");
        char c = p->s[p->pos++];
        if (c == '"')
            return;
        if (c != '\\') {
            addc(v, &cap, c);
            continue;
        }
        if (p->pos >= p->len)
            die(p, "unterminated escape");
        c = p->s[p->pos++];
        switch (c) {
        case '"': case '\\': case '/': addc(v, &cap, c); break;
        case 'b': addc(v, &cap, '\b'); break;
        case 'f': addc(v, &cap, '\f'); break;
        case 'n': addc(v, &cap, '\n'); break;
        case 'r': addc(v, &cap, '\r'); break;
        case 't': addc(v, &cap, '\t'); break;
        case 'u': {
            uint32_t cp = (uint32_t)hexval(p);
            if (cp >= 0xd800 && cp <= 0xdbff && p->pos + 2 <= p->len && p->s[p->pos] == '\\' &&
                p->s[p->pos + 1] == 'u') {
                p->pos += 2;
                uint32_t lo = (uint32_t)hexval(p);
                if (lo < 0xdc00 || lo > 0xdfff)
                    die(p, "bad surrogate pair");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp < 0x80) {
                addc(v, &cap, (char)cp);
            } else if (cp < 0x800) {
                addc(v, &cap, (char)(0xc0 | (cp >> 6)));
                addc(v, &cap, (char)(0x80 | (cp & 0x3f)));
            } else if (cp < 0x10000) {
                addc(v, &cap, (char)(0xe0 | (cp >> 12)));
                addc(v, &cap, (char)(0x80 | ((cp >> 6) & 0x3f)));
                addc(v, &cap, (char)(0x80 | (cp & 0x3f)));
            } else {
                addc(v, &cap, (char)(0xf0 | (cp >> 18)));
                addc(v, &cap, (char)(0x80 | ((cp >> 12) & 0x3f)));
                addc(v, &cap, (char)(0x80 | ((cp >> 6) & 0x3f)));
                addc(v, &cap, (char)(0x80 | (cp & 0x3f)));
            }
            break;
        }
        default:
            die(p, "bad escape");
        }
    }
}

static void parse_val(struct jparser *p, struct jval *v, int depth)
{
    memset(v, 0, sizeof(*v));
    if (depth > MAX_DEPTH)
        die(p, "nested too deeply");
    ws(p);
    if (p->pos >= p->len)
        die(p, "unexpected end");
    char c = p->s[p->pos];
    if (c == '"') {
        parse_str(p, v);
    } else if (c == '[' || c == '{') {
        bool obj = c == '{';
        size_t cap = 0;
        v->kind = obj ? J_OBJ : J_ARR;
        p->pos++;
        ws(p);
        if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
            p->pos++;
            return;
        }
        for (;;) {
            if (v->n == cap) {
                cap = cap ? cap * 2 : 4;
                v->items = xrealloc(v->items, cap * sizeof(*v->items));
                if (obj)
                    v->keys = xrealloc(v->keys, cap * sizeof(*v->keys));
            }
            if (obj) {
                ws(p);
                if (p->pos >= p->len || p->s[p->pos] != '"')
                    die(p, "expected a key");
                parse_str(p, &v->keys[v->n]);
                ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':')
                    die(p, "expected ':'");
                p->pos++;
            }
            parse_val(p, &v->items[v->n++], depth + 1);
            ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
                p->pos++;
                return;
            }
            die(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    } else if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "true", 4) == 0) {
        v->kind = J_BOOL, v->b = true, p->pos += 4;
    } else if (p->len - p->pos >= 5 && memcmp(p->s + p->pos, "false", 5) == 0) {
        v->kind = J_BOOL, v->b = false, p->pos += 5;
    } else if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "null", 4) == 0) {
        v->kind = J_NULL, p->pos += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        size_t b = p->pos;
        while (p->pos < p->len && strchr("+-.eE0123456789", p->s[p->pos]) && p->s[p->pos] != '\0')
            p->pos++;
        v->kind = J_NUM;
        v->len = p->pos - b;
        v->str = xrealloc(NULL, v->len + 1);
        memcpy(v->str, p->s + b, v->len);
        v->str[v->len] = '\0';
    } else {
        die(p, "unexpected character");
    }
}

static void load(const char *file, struct jval *v)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stdout, "%s: %s\n", file, strerror(errno));
        exit(2);
    }
    size_t cap = 4096, n = 0;
    char *buf = xrealloc(NULL, cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    struct jparser p = {buf, n, 0, file};
    parse_val(&p, v, 0);
    ws(&p);
    if (p.pos != p.len)
        die(&p, "trailing characters");
    free(buf);
}

/* ---- comparison ---------------------------------------------------------------- */

static const struct jval *obj_get(const struct jval *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->keys[i].len == strlen(key) && memcmp(o->keys[i].str, key, o->keys[i].len) == 0)
            return &o->items[i];
    return NULL;
}

/* {"type": string, "value": string} and nothing else. */
static bool is_tagged(const struct jval *v, const char **type, const struct jval **value)
{
    if (v->kind != J_OBJ || v->n != 2)
        return false;
    const struct jval *t = obj_get(v, "type"), *s = obj_get(v, "value");
    if (!t || !s || t->kind != J_STR || s->kind != J_STR)
        return false;
    *type = t->str;
    *value = s;
    return true;
}

static bool parse_float(const char *s, double *out)
{
    const char *t = s;
    bool neg = false;
    if (*t == '+' || *t == '-')
        neg = *t++ == '-';
    if (strcmp(t, "nan") == 0) {
        *out = NAN;
        return true;
    }
    if (strcmp(t, "inf") == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return *s != '\0' && *end == '\0';
}

struct dtv {
    int f[6];  /* year month day hour minute second, -1 when absent */
    char frac[16];
    int offset; /* minutes; INT32_MIN when local */
};

static bool dig(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_dt(const char *s, struct dtv *d)
{
    memset(d, 0, sizeof(*d));
    for (int i = 0; i < 6; i++)
        d->f[i] = -1;
    d->offset = INT32_MIN;
    if (strlen(s) >= 10 && s[4] == '-') {
        if (!dig(s, 4, &d->f[0]) || !dig(s + 5, 2, &d->f[1]) || s[7] != '-' || !dig(s + 8, 2, &d->f[2]))
            return false;
        s += 10;
        if (*s == '\0')
            return true;
        if (*s != 'T' && *s != 't' && *s != ' ')
            return false;
        s++;
    }
    if (strlen(s) < 8 || !dig(s, 2, &d->f[3]) || s[2] != ':' || !dig(s + 3, 2, &d->f[4]) || s[5] != ':' ||
        !dig(s + 6, 2, &d->f[5]))
        return false;
    s += 8;
    if (*s == '.') {
        size_t n = 0;
        for (s++; *s >= '0' && *s <= '9'; s++)
            if (n + 1 < sizeof(d->frac))
                d->frac[n++] = *s;
        while (n > 0 && d->frac[n - 1] == '0')
            d->frac[--n] = '\0';
    }
    if (*s == '\0')
        return true;
    if (*s == 'Z' || *s == 'z') {
        d->offset = 0;
        return s[1] == '\0';
    }
    int oh, om;
    if ((*s == '+' || *s == '-') && dig(s + 1, 2, &oh) && s[3] == ':' && dig(s + 4, 2, &om) && s[6] == '\0') {
        d->offset = (*s == '-' ? -1 : 1) * (oh * 60 + om);
        return true;
    }
    return false;
}

static bool scalar_eq(const char *type, const struct jval *a, const struct jval *b)
{
    if (strcmp(type, "integer") == 0) {
        char *ea, *eb;
        errno = 0;
        long long x = strtoll(a->str, &ea, 10), y = strtoll(b->str, &eb, 10);
        return errno == 0 && *ea == '\0' && *eb == '\0' && a->len > 0 && b->len > 0 && x == y;
    }
    if (strcmp(type, "float") == 0) {
        double x, y;
        if (!parse_float(a->str, &x) || !parse_float(b->str, &y))
            return false;
        if (isnan(x) || isnan(y))
            return isnan(x) && isnan(y);
        return x == y && signbit(x) == signbit(y);
    }
    if (strcmp(type, "datetime") == 0 || strcmp(type, "datetime-local") == 0 ||
        strcmp(type, "date-local") == 0 || strcmp(type, "time-local") == 0) {
        struct dtv x, y;
        if (!parse_dt(a->str, &x) || !parse_dt(b->str, &y))
            return false;
        return memcmp(x.f, y.f, sizeof(x.f)) == 0 && strcmp(x.frac, y.frac) == 0 && x.offset == y.offset;
    }
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

static const char *kind_name(const struct jval *v)
{
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    const char *t;
    const struct jval *s;
    return is_tagged(v, &t, &s) ? t : names[v->kind];
}

static void describe(const struct jval *v)
{
    const char *t;
    const struct jval *s;
    if (is_tagged(v, &t, &s))
        printf("%s \"%s\"", t, s->str);
    else
        printf("%s", kind_name(v));
}

static bool equal(const struct jval *want, const struct jval *got, char *path, size_t plen, size_t cap)
{
    const char *tw, *tg;
    const struct jval *sw, *sg;
    bool tagged_w = is_tagged(want, &tw, &sw), tagged_g = is_tagged(got, &tg, &sg);
    bool ok = true;
    if (tagged_w || tagged_g) {
        ok = tagged_w && tagged_g && strcmp(tw, tg) == 0 && scalar_eq(tw, sw, sg);
    } else if (want->kind != got->kind) {
        ok = false;
    } else if (want->kind == J_ARR) {
        if (want->n != got->n) {
            printf("at %s: expected an array of %zu, got %zu elements\n", plen ? path : "(root)",
                   want->n, got->n);
            return false;
        }
        for (size_t i = 0; i < want->n; i++) {
            int w = snprintf(path + plen, cap - plen, "[%zu]", i);
            size_t np = plen + (w > 0 ? (size_t)w : 0);
            if (!equal(&want->items[i], &got->items[i], path, np < cap ? np : cap - 1, cap))
                return false;
        }
        path[plen] = '\0';
        return true;
    } else if (want->kind == J_OBJ) {
        for (size_t i = 0; i < want->n; i++) {
            const struct jval *g = NULL;
            for (size_t j = 0; j < got->n && !g; j++)
                if (got->keys[j].len == want->keys[i].len &&
                    memcmp(got->keys[j].str, want->keys[i].str, want->keys[i].len) == 0)
                    g = &got->items[j];
            int w = snprintf(path + plen, cap - plen, ".%s", want->keys[i].str);
            size_t np = plen + (w > 0 ? (size_t)w : 0);
            np = np < cap ? np : cap - 1;
            if (!g) {
                printf("at %s: missing key\n", path);
                return false;
            }
            if (!equal(&want->items[i], g, path, np, cap))
                return false;
        }
        path[plen] = '\0';
        if (got->n != want->n) {
            printf("at %s: %zu keys expected, got %zu (extra or duplicated keys)\n",
                   plen ? path : "(root)", want->n, got->n);
            return false;
        }
        return true;
    } else {
        ok = want->kind == got->kind && want->len == got->len && want->b == got->b &&
             (want->len == 0 || memcmp(want->str, got->str, want->len) == 0);
    }
    if (!ok) {
        printf("at %s: expected ", plen ? path : "(root)");
        describe(want);
        printf(", got ");
        describe(got);
        printf("\n");
    }
    return ok;
}

static void jfree(struct jval *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        if (v->keys)
            jfree(&v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: toml-json-compare EXPECTED.json ACTUAL.json\n");
        return 2;
    }
    struct jval want, got;
    load(argv[1], &want);
    load(argv[2], &got);
    char path[4096];
    path[0] = '\0';
    bool same = equal(&want, &got, path, 0, sizeof(path));
    jfree(&want);
    jfree(&got);
    return same ? 0 : 1;
}
