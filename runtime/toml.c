/* The TOML 1.0 parser behind casty__toml_parse (see toml.h for the tree and
 * its accessors): bytes in, a tree or the first error out. It does no I/O,
 * keeps no global state and reads floats through an explicit "C" locale, so
 * it is tested alone and behaves the same in any process. It does not
 * write TOML, keep comments, or accept anything beyond TOML 1.0 (no \e or
 * \x escapes, no newlines in inline tables, seconds are required).
 *
 * Structure: one pre-pass checks the encoding (valid UTF-8, no carriage
 * return outside CRLF), so the recursive-descent parser after it works on
 * bytes and never meets a half character. The parser keeps the current
 * line and column as it advances, so every node and error gets a position
 * without rescanning.
 *
 * The subtle part is which tables may be extended by what. Each table
 * records how it came to exist, and the rules follow from that:
 *
 *   IMPLICIT  made as a step of a [x.y.z] header path. A later [x.y] may
 *             define it once (it becomes DEFINED); dotted keys may add to
 *             it (it becomes DOTTED, so no header can define it later).
 *   DEFINED   named by a [header] (or an element of [[header]]). No second
 *             header may name it; dotted keys from elsewhere may not enter
 *             it (toml-lang/toml#846); headers may pass through it.
 *   DOTTED    made by a dotted key (a.b = 1 makes a). Dotted keys may add
 *             to it; headers may pass through it ([a.c]) but not name it.
 *   INLINE    an inline table { ... }: complete when it closes. Nothing
 *             may add to it or pass through it.
 *
 * Arrays are STATIC (a value [ ... ], closed like an inline table) or
 * TABLES (made by [[header]]: a header path passing through one enters its
 * last element). A key that names a scalar can be neither entered nor
 * redefined.
 *
 * Depth: every container knows its depth below the root, and making one
 * deeper than CASTY__TOML_MAX_DEPTH fails, which bounds the parser's own
 * recursion and that of anything walking the tree. Tables with many keys
 * get a hash index so that duplicate checks stay linear overall. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strtod_l; the Makefile defines it, the fuzz build may not */
#endif
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casty/error.h"
#include "toml.h"

/* ---- the tree ------------------------------------------------------------ */

enum origin {
    /* tables */
    ORIGIN_ROOT,
    ORIGIN_IMPLICIT,
    ORIGIN_DEFINED,
    ORIGIN_DOTTED,
    ORIGIN_INLINE,
    /* arrays */
    ORIGIN_STATIC,
    ORIGIN_TABLES,
};

struct kv {
    char *key; /* NUL-terminated; may also hold NUL */
    size_t keylen;
    struct casty__toml_pos pos;
    struct casty__toml *val;
};

struct casty__toml {
    uint8_t kind;   /* enum casty__toml_kind */
    uint8_t origin; /* enum origin, containers only */
    uint16_t depth; /* containers: 0 for the root */
    struct casty__toml_pos pos;
    union {
        struct {
            struct kv *items;
            size_t len, cap;
            size_t *index; /* item number + 1 per slot, 0 empty; NULL while small */
            size_t index_cap;
        } tab;
        struct {
            struct casty__toml **items;
            size_t len, cap;
        } arr;
        struct {
            char *ptr;
            size_t len;
        } str;
        int64_t i;
        double f;
        bool b;
        struct casty__toml_datetime dt;
    } u;
};

#define INDEX_FROM 8 /* tables with more keys than this get a hash index */

static void node_free(struct casty__toml *v)
{
    if (!v)
        return;
    switch (v->kind) {
    case CASTY__TOML_TABLE:
        for (size_t i = 0; i < v->u.tab.len; i++) {
            free(v->u.tab.items[i].key);
            node_free(v->u.tab.items[i].val); /* depth-bounded recursion */
        }
        free(v->u.tab.items);
        free(v->u.tab.index);
        break;
    case CASTY__TOML_ARRAY:
        for (size_t i = 0; i < v->u.arr.len; i++)
            node_free(v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case CASTY__TOML_STRING:
        free(v->u.str.ptr);
        break;
    default:
        break;
    }
    free(v);
}

static struct casty__toml *node_new(enum casty__toml_kind kind, struct casty__toml_pos pos)
{
    struct casty__toml *v = calloc(1, sizeof(*v));
    if (v) {
        v->kind = (uint8_t)kind;
        v->pos = pos;
    }
    return v;
}

/* FNV-1a: keys are short and attacker-controlled input only costs time
 * proportional to the collisions it can build in one document. */
static size_t hash_key(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 0x100000001b3ull;
    }
    return (size_t)(h ^ (h >> 32));
}

static struct kv *table_lookup(const struct casty__toml *t, const char *key, size_t keylen)
{
    if (t->u.tab.index) {
        size_t mask = t->u.tab.index_cap - 1;
        for (size_t s = hash_key(key, keylen) & mask;; s = (s + 1) & mask) {
            size_t at = t->u.tab.index[s];
            if (at == 0)
                return NULL;
            struct kv *e = &t->u.tab.items[at - 1];
            if (e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
                return e;
        }
    }
    for (size_t i = 0; i < t->u.tab.len; i++) {
        struct kv *e = &t->u.tab.items[i];
        if (e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
            return e;
    }
    return NULL;
}

static void index_put(struct casty__toml *t, size_t item)
{
    size_t mask = t->u.tab.index_cap - 1;
    const struct kv *e = &t->u.tab.items[item];
    size_t s = hash_key(e->key, e->keylen) & mask;
    while (t->u.tab.index[s] != 0)
        s = (s + 1) & mask;
    t->u.tab.index[s] = item + 1;
}

/* Keeps the index at most half full, rebuilding it when it grows. */
static int index_grow(struct casty__toml *t)
{
    size_t need = t->u.tab.len + 1;
    if (need <= INDEX_FROM || need * 2 <= t->u.tab.index_cap)
        return 0;
    size_t cap = t->u.tab.index_cap ? t->u.tab.index_cap : 32;
    while (cap < need * 2)
        cap *= 2;
    size_t *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return CASTY_ENOMEM;
    free(t->u.tab.index);
    t->u.tab.index = idx;
    t->u.tab.index_cap = cap;
    for (size_t i = 0; i < t->u.tab.len; i++)
        index_put(t, i);
    return 0;
}

/* Adds key -> val; on success the table owns both `key` and `val`, on
 * failure the caller still does. The key must not be present. */
static int table_insert(struct casty__toml *t, char *key, size_t keylen,
                        struct casty__toml_pos pos, struct casty__toml *val)
{
    if (t->u.tab.len == t->u.tab.cap) {
        size_t cap = t->u.tab.cap ? t->u.tab.cap * 2 : 4;
        struct kv *items = realloc(t->u.tab.items, cap * sizeof(*items));
        if (!items)
            return CASTY_ENOMEM;
        t->u.tab.items = items;
        t->u.tab.cap = cap;
    }
    if (index_grow(t) != 0)
        return CASTY_ENOMEM;
    size_t i = t->u.tab.len++;
    t->u.tab.items[i] = (struct kv){key, keylen, pos, val};
    if (t->u.tab.index)
        index_put(t, i);
    return 0;
}

/* Appends; on failure the caller still owns `val`. */
static int array_push(struct casty__toml *a, struct casty__toml *val)
{
    if (a->u.arr.len == a->u.arr.cap) {
        size_t cap = a->u.arr.cap ? a->u.arr.cap * 2 : 4;
        struct casty__toml **items = realloc(a->u.arr.items, cap * sizeof(*items));
        if (!items)
            return CASTY_ENOMEM;
        a->u.arr.items = items;
        a->u.arr.cap = cap;
    }
    a->u.arr.items[a->u.arr.len++] = val;
    return 0;
}

/* ---- parser state and errors ----------------------------------------------- */

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    uint32_t line, col; /* of s[pos] */
    struct casty__toml *root;
    struct casty__toml *cur; /* the table that key/value lines go to */
    struct casty__toml_error *err;
    int rc; /* the first failure, kept when later ones cascade */
    locale_t c_locale; /* made on the first float */
};

static struct casty__toml_pos here(const struct parser *p)
{
    return (struct casty__toml_pos){p->line, p->col};
}

__attribute__((format(printf, 3, 4))) static int fail_at(struct parser *p,
                                                         struct casty__toml_pos at,
                                                         const char *fmt, ...)
{
    if (p->rc != 0)
        return p->rc;
    p->rc = CASTY_EINVAL;
    if (p->err) {
        p->err->line = at.line;
        p->err->col = at.col;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
        va_end(ap);
    }
    return p->rc;
}

static int oom(struct parser *p)
{
    if (p->rc != 0)
        return p->rc;
    p->rc = CASTY_ENOMEM;
    if (p->err) {
        p->err->line = p->line;
        p->err->col = p->col;
        snprintf(p->err->msg, sizeof(p->err->msg), "out of memory");
    }
    return p->rc;
}

/* Describes the byte at the current position for messages. */
static const char *describe(const struct parser *p, char *buf, size_t cap)
{
    if (p->pos >= p->len)
        return "end of input";
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '\n' || c == '\r')
        return "end of line";
    if (c >= 0x21 && c < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else if (c < 0x80)
        snprintf(buf, cap, "byte 0x%02x", c);
    else
        snprintf(buf, cap, "a non-ASCII character");
    return buf;
}

/* ---- cursor ------------------------------------------------------------- */

static inline int peek(const struct parser *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static inline int peek_at(const struct parser *p, size_t k)
{
    return p->pos + k < p->len ? (unsigned char)p->s[p->pos + k] : -1;
}

/* Columns count code points: continuation bytes do not advance them. */
static inline void adv(struct parser *p)
{
    unsigned char c = (unsigned char)p->s[p->pos++];
    if (c == '\n') {
        p->line++;
        p->col = 1;
    } else if ((c & 0xc0) != 0x80) {
        p->col++;
    }
}

static inline void adv_n(struct parser *p, size_t n)
{
    while (n--)
        adv(p);
}

static void skip_ws(struct parser *p)
{
    while (peek(p) == ' ' || peek(p) == '\t')
        adv(p);
}

/* True at LF or CRLF (the pre-pass guarantees CR is always followed by LF). */
static inline bool at_newline(const struct parser *p)
{
    return peek(p) == '\n' || peek(p) == '\r';
}

static void skip_newline(struct parser *p)
{
    if (peek(p) == '\r')
        adv(p);
    adv(p);
}

static inline bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static inline bool is_bare(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-';
}

/* ---- encoding pre-pass ---------------------------------------------------- */

/* Length of the UTF-8 sequence at s[0..n) if it is a valid scalar value
 * (no overlong forms, no surrogates, at most U+10FFFF), else 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static int check_encoding(struct parser *p)
{
    const unsigned char *s = (const unsigned char *)p->s;
    size_t i = p->pos;
    uint32_t line = p->line, col = p->col;
    while (i < p->len) {
        if (s[i] == '\r' && (i + 1 >= p->len || s[i + 1] != '\n'))
            return fail_at(p, (struct casty__toml_pos){line, col},
                           "carriage return not followed by a line feed");
        size_t n = utf8_len(s + i, p->len - i);
        if (n == 0)
            return fail_at(p, (struct casty__toml_pos){line, col}, "invalid UTF-8");
        if (s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += n;
    }
    return 0;
}

/* ---- string buffer --------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
    if (b->cap - b->len > more)
        return 0; /* room for `more` and a NUL */
    size_t cap = b->cap ? b->cap : 32;
    while (cap - b->len <= more) {
        if (cap > SIZE_MAX / 2)
            return CASTY_ENOMEM;
        cap *= 2;
    }
    char *np = realloc(b->p, cap);
    if (!np)
        return CASTY_ENOMEM;
    b->p = np;
    b->cap = cap;
    return 0;
}

static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return CASTY_ENOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_addc(struct buf *b, char c)
{
    return buf_add(b, &c, 1);
}

/* Makes sure b->p is a NUL-terminated string even when nothing was added. */
static int buf_finish(struct buf *b)
{
    if (buf_reserve(b, 0) != 0)
        return CASTY_ENOMEM;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_add_utf8(struct buf *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        out[0] = (char)(0xf0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_add(b, out, n);
}

/* ---- strings ----------------------------------------------------------------- */

/* Characters allowed as-is inside any string or comment: tab, printable
 * ASCII and everything non-ASCII (already checked to be valid UTF-8). */
static inline bool is_text(int c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int bad_char_in_string(struct parser *p)
{
    if (peek(p) < 0)
        return fail_at(p, here(p), "unterminated string");
    if (at_newline(p))
        return fail_at(p, here(p), "newline in a single-line string");
    return fail_at(p, here(p), "control character 0x%02x in string", peek(p));
}

/* The escape at the backslash under the cursor (not a line-ending one). */
static int parse_escape(struct parser *p, struct buf *out)
{
    struct casty__toml_pos at = here(p);
    adv(p); /* the backslash */
    int c = peek(p);
    char simple = 0;
    switch (c) {
    case 'b': simple = '\b'; break;
    case 't': simple = '\t'; break;
    case 'n': simple = '\n'; break;
    case 'f': simple = '\f'; break;
    case 'r': simple = '\r'; break;
    case '"': simple = '"'; break;
    case '\\': simple = '\\'; break;
    case 'u':
    case 'U': {
        size_t digits = c == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t i = 1; i <= digits; i++) {
            int h = peek_at(p, i);
            uint32_t d;
            if (h >= '0' && h <= '9')
                d = (uint32_t)(h - '0');
            else if (h >= 'a' && h <= 'f')
                d = (uint32_t)(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
                d = (uint32_t)(h - 'A' + 10);
            else
                return fail_at(p, at, "\\%c escape needs %zu hex digits", c, digits);
            cp = (cp << 4) | d; /* 8 digits fit: 0xFFFFFFFF is caught below */
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return fail_at(p, at, "escape \\%c%0*X is not a Unicode scalar value", c,
                           (int)digits, cp);
        adv_n(p, digits + 1);
        return buf_add_utf8(out, cp) ? oom(p) : 0;
    }
    default:
        if (c >= 0x21 && c < 0x7f)
            return fail_at(p, at, "invalid escape \\%c", c);
        return fail_at(p, at, "invalid escape: backslash followed by %s",
                       c == ' ' || c == '\t' ? "whitespace" : c < 0 ? "end of input" : "a control character");
    }
    adv(p);
    return buf_addc(out, simple) ? oom(p) : 0;
}

/* In a multi-line basic string, at a backslash: true when only whitespace
 * stands between it and the end of the line (a line-ending backslash). */
static bool at_line_ending_backslash(const struct parser *p)
{
    size_t k = 1;
    while (peek_at(p, k) == ' ' || peek_at(p, k) == '\t')
        k++;
    return peek_at(p, k) == '\n' || peek_at(p, k) == '\r';
}

/* Counts the run of `q` under the cursor. In a multi-line string a run of
 * three to five closes it (the first one or two belong to the content). */
static size_t quote_run(const struct parser *p, int q)
{
    size_t n = 0;
    while (peek_at(p, n) == q)
        n++;
    return n;
}

/* Parses any of the four string forms at the opening quote into `out`
 * (NUL-terminated). Multi-line strings are allowed only when `multi_ok`
 * (not in keys); CRLF inside them becomes LF. */
static int parse_string(struct parser *p, struct buf *out, bool multi_ok)
{
    struct casty__toml_pos start = here(p);
    int q = peek(p);
    bool literal = q == '\'';
    bool multi = peek_at(p, 1) == q && peek_at(p, 2) == q;
    if (multi && !multi_ok)
        return fail_at(p, start, "a multi-line string cannot be a key");

    if (!multi) {
        adv(p);
        for (;;) {
            int c = peek(p);
            if (c == q) {
                adv(p);
                return buf_finish(out) ? oom(p) : 0;
            }
            if (c == '\\' && !literal) {
                if (parse_escape(p, out) != 0)
                    return p->rc;
                continue;
            }
            if (c < 0 || !is_text(c))
                return bad_char_in_string(p);
            if (buf_addc(out, (char)c))
                return oom(p);
            adv(p);
        }
    }

    adv_n(p, 3);
    if (at_newline(p)) /* a newline right after the opening quotes is trimmed */
        skip_newline(p);
    for (;;) {
        int c = peek(p);
        if (c < 0)
            return fail_at(p, start, "unterminated multi-line string");
        if (c == q) {
            size_t n = quote_run(p, q);
            if (n >= 3) {
                if (n > 5)
                    return fail_at(p, here(p), "too many quotes closing a multi-line string");
                if (buf_add(out, literal ? "''" : "\"\"", n - 3))
                    return oom(p);
                adv_n(p, n);
                return buf_finish(out) ? oom(p) : 0;
            }
            if (buf_add(out, literal ? "''" : "\"\"", n))
                return oom(p);
            adv_n(p, n);
            continue;
        }
        if (at_newline(p)) {
            skip_newline(p);
            if (buf_addc(out, '\n'))
                return oom(p);
            continue;
        }
        if (c == '\\' && !literal) {
            if (at_line_ending_backslash(p)) {
                adv(p);
                while (peek(p) == ' ' || peek(p) == '\t' || at_newline(p))
                    adv(p);
                continue;
            }
            if (parse_escape(p, out) != 0)
                return p->rc;
            continue;
        }
        if (!is_text(c))
            return fail_at(p, here(p), "control character 0x%02x in string", c);
        if (buf_addc(out, (char)c))
            return oom(p);
        adv(p);
    }
}

/* ---- keys ----------------------------------------------------------------- */

struct seg {
    char *s; /* still readable (for messages) after a table takes it */
    size_t len;
    struct casty__toml_pos pos;
    bool owned; /* false once a table owns s */
};

struct keypath {
    struct seg *v;
    size_t n, cap;
    struct seg small[8];
};

static void keypath_init(struct keypath *k)
{
    k->v = k->small;
    k->n = 0;
    k->cap = sizeof(k->small) / sizeof(k->small[0]);
}

static void keypath_free(struct keypath *k)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->v[i].owned)
            free(k->v[i].s);
    if (k->v != k->small)
        free(k->v);
}

static int keypath_push(struct keypath *k, struct seg s)
{
    if (k->n == k->cap) {
        size_t cap = k->cap * 2;
        struct seg *v = malloc(cap * sizeof(*v));
        if (!v)
            return CASTY_ENOMEM;
        memcpy(v, k->v, k->n * sizeof(*v));
        if (k->v != k->small)
            free(k->v);
        k->v = v;
        k->cap = cap;
    }
    k->v[k->n++] = s;
    return 0;
}

/* Writes segments [0, n) as TOML would spell them, quoting those that are
 * not bare, truncating to fit `cap`. */
static const char *format_path(char *buf, size_t cap, const struct keypath *k, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
#define PUT(ch)                                                                \
    do {                                                                       \
        if (o + 1 < cap) {                                                     \
            buf[o++] = (char)(ch);                                             \
            buf[o] = '\0';                                                     \
        }                                                                      \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        const struct seg *s = &k->v[i];
        bool bare = s->len > 0, apos = false;
        for (size_t j = 0; j < s->len; j++) {
            bare = bare && is_bare((unsigned char)s->s[j]);
            apos = apos || s->s[j] == '\'';
        }
        /* 'literal' unless it holds a quote; "basic" then, escaping. */
        char q = bare ? 0 : apos ? '"' : '\'';
        if (i > 0)
            PUT('.');
        if (q)
            PUT(q);
        for (size_t j = 0; j < s->len; j++) {
            unsigned char c = (unsigned char)s->s[j];
            if (q == '"' && (c == '"' || c == '\\'))
                PUT('\\');
            PUT(c < 0x20 || c == 0x7f ? '?' : c);
        }
        if (q)
            PUT(q);
    }
#undef PUT
    if (o + 1 >= cap && cap > 4) {
        /* Full: end in "..." without splitting a UTF-8 sequence. */
        size_t cut = cap - 4;
        while (cut > 0 && ((unsigned char)buf[cut] & 0xc0) == 0x80)
            cut--;
        memcpy(buf + cut, "...", 4);
    }
    return buf;
}

/* Parses a (possibly dotted) key at the cursor, and the whitespace after it. */
static int parse_key(struct parser *p, struct keypath *k)
{
    for (;;) {
        struct seg s = {NULL, 0, here(p), true};
        int c = peek(p);
        if (c == '"' || c == '\'') {
            struct buf b = {0};
            if (parse_string(p, &b, false) != 0) {
                free(b.p);
                return p->rc;
            }
            s.s = b.p;
            s.len = b.len;
        } else if (is_bare(c)) {
            size_t from = p->pos;
            while (is_bare(peek(p)))
                adv(p);
            s.len = p->pos - from;
            s.s = malloc(s.len + 1);
            if (!s.s)
                return oom(p);
            memcpy(s.s, p->s + from, s.len);
            s.s[s.len] = '\0';
        } else {
            char d[32];
            return fail_at(p, here(p), "expected a key, found %s", describe(p, d, sizeof(d)));
        }
        if (k->n > CASTY__TOML_MAX_DEPTH) {
            /* Its tables alone would nest too deep; stop before the key
             * path grows with the input. */
            free(s.s);
            return fail_at(p, s.pos, "nesting deeper than %d levels", CASTY__TOML_MAX_DEPTH);
        }
        if (keypath_push(k, s) != 0) {
            free(s.s);
            return oom(p);
        }
        skip_ws(p);
        if (peek(p) != '.')
            return 0;
        adv(p);
        skip_ws(p);
    }
}

/* ---- scalars: numbers, booleans, dates and times --------------------------- */

static bool digits_at(const char *t, size_t n, size_t i, size_t count)
{
    if (i + count > n)
        return false;
    for (size_t j = i; j < i + count; j++)
        if (!is_digit((unsigned char)t[j]))
            return false;
    return true;
}

static unsigned num2(const char *t)
{
    return (unsigned)(t[0] - '0') * 10u + (unsigned)(t[1] - '0');
}

static unsigned days_in_month(unsigned year, unsigned month)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* HH:MM:SS[.frac] at t[*i]; advances *i. Returns NULL or what is wrong. */
static const char *parse_time(const char *t, size_t n, size_t *i, struct casty__toml_datetime *dt)
{
    size_t k = *i;
    if (!digits_at(t, n, k, 2) || k + 2 >= n || t[k + 2] != ':' || !digits_at(t, n, k + 3, 2))
        return "invalid time (expected HH:MM:SS)";
    if (k + 5 >= n || t[k + 5] != ':' || !digits_at(t, n, k + 6, 2))
        return "invalid time: seconds are required (HH:MM:SS)";
    unsigned h = num2(t + k), m = num2(t + k + 3), s = num2(t + k + 6);
    if (h > 23)
        return "hour out of range (00-23)";
    if (m > 59)
        return "minute out of range (00-59)";
    if (s > 60)
        return "second out of range (00-60)";
    dt->hour = (uint8_t)h;
    dt->minute = (uint8_t)m;
    dt->second = (uint8_t)s;
    k += 8;
    if (k < n && t[k] == '.') {
        k++;
        if (k >= n || !is_digit((unsigned char)t[k]))
            return "invalid time: digits required after '.'";
        uint32_t ns = 0;
        unsigned digits = 0;
        for (; k < n && is_digit((unsigned char)t[k]); k++) {
            if (digits < 9) {
                ns = ns * 10 + (uint32_t)(t[k] - '0');
                digits++;
            }
        }
        dt->frac_digits = (uint8_t)digits;
        for (unsigned d = digits; d < 9; d++)
            ns *= 10;
        dt->nanosecond = ns;
    }
    *i = k;
    return NULL;
}

/* A date, date-time or time token. Returns NULL or what is wrong. */
static const char *parse_datetime(const char *t, size_t n, struct casty__toml_datetime *dt,
                                  enum casty__toml_kind *kind)
{
    size_t i = 0;
    const char *why;
    memset(dt, 0, sizeof(*dt));
    size_t lead = 0;
    while (lead < n && is_digit((unsigned char)t[lead]))
        lead++;
    if (lead < n && t[lead] == ':') {
        if ((why = parse_time(t, n, &i, dt)) != NULL)
            return why;
        *kind = CASTY__TOML_TIME_LOCAL;
        return i == n ? NULL : "invalid time: unexpected characters after it";
    }
    if (!digits_at(t, n, 0, 4) || n < 10 || t[4] != '-' || !digits_at(t, n, 5, 2) || t[7] != '-' ||
        !digits_at(t, n, 8, 2) || (n > 10 && is_digit((unsigned char)t[10])))
        return "invalid date (expected YYYY-MM-DD)";
    unsigned year = num2(t) * 100 + num2(t + 2), month = num2(t + 5), day = num2(t + 8);
    if (month < 1 || month > 12)
        return "month out of range (01-12)";
    if (day < 1 || day > days_in_month(year, month))
        return "day out of range for its month";
    dt->year = (uint16_t)year;
    dt->month = (uint8_t)month;
    dt->day = (uint8_t)day;
    i = 10;
    if (i == n) {
        *kind = CASTY__TOML_DATE_LOCAL;
        return NULL;
    }
    if (t[i] != 'T' && t[i] != 't' && t[i] != ' ')
        return "invalid date-time: expected 'T' or a space between date and time";
    i++;
    if ((why = parse_time(t, n, &i, dt)) != NULL)
        return why;
    if (i == n) {
        *kind = CASTY__TOML_DATETIME_LOCAL;
        return NULL;
    }
    if (t[i] == 'Z' || t[i] == 'z') {
        i++;
    } else if (t[i] == '+' || t[i] == '-') {
        if (!digits_at(t, n, i + 1, 2) || i + 3 >= n || t[i + 3] != ':' || !digits_at(t, n, i + 4, 2))
            return "invalid time offset (expected Z or +HH:MM)";
        unsigned oh = num2(t + i + 1), om = num2(t + i + 4);
        if (oh > 23 || om > 59)
            return "time offset out of range";
        int off = (int)(oh * 60 + om);
        dt->offset_minutes = (int16_t)(t[i] == '-' ? -off : off);
        i += 6;
    } else {
        return "invalid date-time: unexpected characters after the time";
    }
    if (i != n)
        return "invalid date-time: unexpected characters after the offset";
    *kind = CASTY__TOML_DATETIME;
    return NULL;
}

/* Checks t[0..n) is digits with single underscores between them, each a
 * valid digit in `radix`. */
static bool digit_run_ok(const char *t, size_t n, int radix)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)t[i];
        if (c == '_') {
            if (i == 0 || i + 1 == n || t[i + 1] == '_')
                return false;
            continue;
        }
        bool ok = radix == 16 ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
                              : (c >= '0' && c < '0' + radix);
        if (!ok)
            return false;
    }
    return true;
}

static int digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* Accumulates a checked run into a magnitude; false past `limit`. */
static bool accumulate(const char *t, size_t n, unsigned radix, uint64_t limit, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '_')
            continue;
        uint64_t d = (uint64_t)digit_value((unsigned char)t[i]);
        if (v > (limit - d) / radix)
            return false;
        v = v * radix + d;
    }
    *out = v;
    return true;
}

/* A float token (not inf/nan): float = dec-int ( frac [exp] / exp ), where
 * the integer part may not have leading zeros but the fraction and the
 * exponent may. Each digit run is validated here (underscores only between
 * digits); the value is then read by strtod_l in the "C" locale, which
 * rounds correctly. Overflow to infinity is an error: TOML leaves it
 * undefined, and a config value of "1e999" is surely a mistake. */
static int parse_float_token(struct parser *p, struct casty__toml_pos at, const char *t, size_t n,
                             double *out)
{
    size_t i = (t[0] == '+' || t[0] == '-') ? 1 : 0;
    size_t int_from = i;
    while (i < n && (is_digit((unsigned char)t[i]) || t[i] == '_'))
        i++;
    size_t int_len = i - int_from;
    if (!digit_run_ok(t + int_from, int_len, 10))
        return fail_at(p, at, "invalid float: bad integer part");
    if (int_len > 1 && t[int_from] == '0')
        return fail_at(p, at, "invalid float: leading zero");
    bool has_frac = false, has_exp = false;
    if (i < n && t[i] == '.') {
        size_t from = ++i;
        while (i < n && (is_digit((unsigned char)t[i]) || t[i] == '_'))
            i++;
        if (!digit_run_ok(t + from, i - from, 10))
            return fail_at(p, at, "invalid float: digits required after '.'");
        has_frac = true;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        size_t from = i;
        while (i < n && (is_digit((unsigned char)t[i]) || t[i] == '_'))
            i++;
        if (!digit_run_ok(t + from, i - from, 10))
            return fail_at(p, at, "invalid float: bad exponent");
        has_exp = true;
    }
    if (i != n || !(has_frac || has_exp))
        return fail_at(p, at, "invalid number");

    char small[64];
    char *clean = n < sizeof(small) ? small : malloc(n + 1);
    if (!clean)
        return oom(p);
    size_t o = 0;
    for (size_t j = 0; j < n; j++)
        if (t[j] != '_')
            clean[o++] = t[j];
    clean[o] = '\0';
    if (p->c_locale == (locale_t)0) {
        p->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (p->c_locale == (locale_t)0) {
            if (clean != small)
                free(clean);
            return oom(p);
        }
    }
    double v = strtod_l(clean, NULL, p->c_locale);
    if (clean != small)
        free(clean);
    if (isinf(v))
        return fail_at(p, at, "float out of range");
    *out = v;
    return 0;
}

/* Characters a number, boolean, date or time can be made of. */
static inline bool is_token(int c)
{
    return is_bare(c) || c == '+' || c == '.' || c == ':';
}

static bool token_is(const char *t, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(t, word, n) == 0;
}

/* A bare value at the cursor: boolean, number, date/time. Fills *v. */
static int parse_bare_value(struct parser *p, struct casty__toml *v)
{
    struct casty__toml_pos at = here(p);
    size_t b = p->pos, e = b;
    while (e < p->len && is_token((unsigned char)p->s[e]))
        e++;
    /* A date, a space and a time are one date-time. */
    if (e - b == 10 && digits_at(p->s + b, p->len - b, 0, 4) && p->s[b + 4] == '-' && e + 1 < p->len &&
        p->s[e] == ' ' && is_digit((unsigned char)p->s[e + 1])) {
        e++;
        while (e < p->len && is_token((unsigned char)p->s[e]))
            e++;
    }
    const char *t = p->s + b;
    size_t n = e - b;
    if (n == 0) {
        char d[32];
        return fail_at(p, at, "expected a value, found %s", describe(p, d, sizeof(d)));
    }
    adv_n(p, n);

    if (token_is(t, n, "true") || token_is(t, n, "false")) {
        v->kind = CASTY__TOML_BOOL;
        v->u.b = t[0] == 't';
        return 0;
    }
    /* Digits then '-' or ':' can only be meant as a date or a time
     * (an exponent sign follows 'e'), so say so when it is malformed. */
    size_t lead = 0;
    while (lead < n && is_digit((unsigned char)t[lead]))
        lead++;
    bool is_dt = lead > 0 && lead < n && (t[lead] == '-' || t[lead] == ':');
    if (is_dt) {
        enum casty__toml_kind kind;
        const char *why = parse_datetime(t, n, &v->u.dt, &kind);
        if (why)
            return fail_at(p, at, "%s", why);
        v->kind = (uint8_t)kind;
        return 0;
    }

    size_t i = 0;
    bool neg = false;
    if (t[0] == '+' || t[0] == '-') {
        neg = t[0] == '-';
        i = 1;
    }
    if (token_is(t + i, n - i, "inf") || token_is(t + i, n - i, "nan")) {
        v->kind = CASTY__TOML_FLOAT;
        v->u.f = t[i] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        return 0;
    }
    if (i == n || !is_digit((unsigned char)t[i])) {
        if (t[0] >= 'A' && t[0] != '_')
            return fail_at(p, at, "invalid value (strings need quotes)");
        return fail_at(p, at, "invalid number");
    }
    if (t[0] == '0' && n > 2 && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
        unsigned radix = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
        uint64_t mag;
        if (!digit_run_ok(t + 2, n - 2, (int)radix))
            return fail_at(p, at, "invalid %s integer",
                           radix == 16 ? "hexadecimal" : radix == 8 ? "octal" : "binary");
        if (!accumulate(t + 2, n - 2, radix, INT64_MAX, &mag))
            return fail_at(p, at, "integer out of range (64-bit signed)");
        v->kind = CASTY__TOML_INTEGER;
        v->u.i = (int64_t)mag;
        return 0;
    }
    for (size_t j = i; j < n; j++) {
        if (t[j] == '.' || t[j] == 'e' || t[j] == 'E') {
            v->kind = CASTY__TOML_FLOAT;
            return parse_float_token(p, at, t, n, &v->u.f);
        }
    }
    if (!digit_run_ok(t + i, n - i, 10))
        return fail_at(p, at, "invalid number");
    if (n - i > 1 && t[i] == '0')
        return fail_at(p, at, "invalid integer: leading zero");
    uint64_t mag;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (!accumulate(t + i, n - i, 10, limit, &mag))
        return fail_at(p, at, "integer out of range (64-bit signed)");
    v->kind = CASTY__TOML_INTEGER;
    v->u.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

/* ---- values ---------------------------------------------------------------- */

static int parse_value(struct parser *p, uint16_t depth, struct casty__toml **out);
static int parse_keyval(struct parser *p, struct casty__toml *table);

static int new_container(struct parser *p, enum casty__toml_kind kind, enum origin origin,
                         uint16_t depth, struct casty__toml_pos pos, struct casty__toml **out)
{
    if (depth > CASTY__TOML_MAX_DEPTH)
        return fail_at(p, pos, "nesting deeper than %d levels", CASTY__TOML_MAX_DEPTH);
    struct casty__toml *v = node_new(kind, pos);
    if (!v)
        return oom(p);
    v->origin = (uint8_t)origin;
    v->depth = depth;
    *out = v;
    return 0;
}

/* Whitespace and a comment, up to (not over) the end of the line. */
static int skip_ws_comment(struct parser *p)
{
    skip_ws(p);
    if (peek(p) != '#')
        return 0;
    adv(p);
    while (peek(p) >= 0 && !at_newline(p)) {
        if (!is_text(peek(p)))
            return fail_at(p, here(p), "control character 0x%02x in comment", peek(p));
        adv(p);
    }
    return 0;
}

/* Whitespace, comments and newlines, as allowed between array elements. */
static int skip_ws_comment_nl(struct parser *p)
{
    for (;;) {
        if (skip_ws_comment(p) != 0)
            return p->rc;
        if (!at_newline(p))
            return 0;
        skip_newline(p);
    }
}

static int parse_array(struct parser *p, uint16_t depth, struct casty__toml **out)
{
    struct casty__toml *a;
    if (new_container(p, CASTY__TOML_ARRAY, ORIGIN_STATIC, depth, here(p), &a) != 0)
        return p->rc;
    adv(p); /* [ */
    for (;;) {
        if (skip_ws_comment_nl(p) != 0)
            goto fail;
        if (peek(p) == ']')
            break;
        struct casty__toml *item;
        if (parse_value(p, (uint16_t)(depth + 1), &item) != 0)
            goto fail;
        if (array_push(a, item) != 0) {
            node_free(item);
            oom(p);
            goto fail;
        }
        if (skip_ws_comment_nl(p) != 0)
            goto fail;
        if (peek(p) == ',') {
            adv(p);
            continue;
        }
        if (peek(p) == ']')
            break;
        char d[32];
        fail_at(p, here(p), "expected ',' or ']' in array, found %s", describe(p, d, sizeof(d)));
        goto fail;
    }
    adv(p); /* ] */
    *out = a;
    return 0;
fail:
    node_free(a);
    return p->rc;
}

static int parse_inline_table(struct parser *p, uint16_t depth, struct casty__toml **out)
{
    struct casty__toml *t;
    if (new_container(p, CASTY__TOML_TABLE, ORIGIN_INLINE, depth, here(p), &t) != 0)
        return p->rc;
    adv(p); /* { */
    skip_ws(p);
    if (peek(p) != '}') {
        for (;;) {
            if (parse_keyval(p, t) != 0)
                goto fail;
            skip_ws(p);
            if (peek(p) == ',') {
                adv(p);
                skip_ws(p);
                if (peek(p) == '}') {
                    fail_at(p, here(p), "trailing comma in inline table");
                    goto fail;
                }
                continue;
            }
            if (peek(p) == '}')
                break;
            char d[32];
            if (at_newline(p))
                fail_at(p, here(p), "newline in inline table");
            else
                fail_at(p, here(p), "expected ',' or '}' in inline table, found %s",
                        describe(p, d, sizeof(d)));
            goto fail;
        }
    }
    adv(p); /* } */
    *out = t;
    return 0;
fail:
    node_free(t);
    return p->rc;
}

/* Parses the value at the cursor. `depth` is the depth the value would
 * have as a container. */
static int parse_value(struct parser *p, uint16_t depth, struct casty__toml **out)
{
    int c = peek(p);
    if (c == '[')
        return parse_array(p, depth, out);
    if (c == '{')
        return parse_inline_table(p, depth, out);
    struct casty__toml *v = node_new(CASTY__TOML_STRING, here(p));
    if (!v)
        return oom(p);
    if (c == '"' || c == '\'') {
        struct buf b = {0};
        if (parse_string(p, &b, true) != 0) {
            free(b.p);
            free(v);
            return p->rc;
        }
        v->u.str.ptr = b.p;
        v->u.str.len = b.len;
    } else if (parse_bare_value(p, v) != 0) {
        free(v);
        return p->rc;
    }
    *out = v;
    return 0;
}

/* ---- key/value lines and table headers -------------------------------------- */

static const char *kind_article(const struct casty__toml *v)
{
    switch (v->kind) {
    case CASTY__TOML_TABLE: return "a table";
    case CASTY__TOML_ARRAY: return "an array";
    case CASTY__TOML_STRING: return "a string";
    case CASTY__TOML_INTEGER: return "an integer";
    case CASTY__TOML_FLOAT: return "a float";
    case CASTY__TOML_BOOL: return "a boolean";
    default: return "a date/time";
    }
}

/* Moves segment i's string into `t` under a new container; *out is it. */
static int add_table(struct parser *p, struct casty__toml *t, struct keypath *k, size_t i,
                     enum casty__toml_kind kind, enum origin origin, struct casty__toml **out)
{
    struct casty__toml *n;
    if (new_container(p, kind, origin, (uint16_t)(t->depth + 1), k->v[i].pos, &n) != 0)
        return p->rc;
    if (table_insert(t, k->v[i].s, k->v[i].len, k->v[i].pos, n) != 0) {
        node_free(n);
        return oom(p);
    }
    k->v[i].owned = false;
    *out = n;
    return 0;
}

/* key = value, into `table` (the current section, or an inline table). */
static int parse_keyval(struct parser *p, struct casty__toml *table)
{
    struct keypath k;
    char path[96];
    keypath_init(&k);
    struct casty__toml *v = NULL;
    if (parse_key(p, &k) != 0)
        goto out;
    if (peek(p) != '=') {
        char d[32];
        fail_at(p, here(p), "expected '=' after key, found %s", describe(p, d, sizeof(d)));
        goto out;
    }
    adv(p);
    skip_ws(p);

    struct casty__toml *t = table;
    struct casty__toml_pos at = k.v[0].pos;
    for (size_t i = 0; i + 1 < k.n; i++) {
        struct kv *e = table_lookup(t, k.v[i].s, k.v[i].len);
        if (!e) {
            if (add_table(p, t, &k, i, CASTY__TOML_TABLE, ORIGIN_DOTTED, &t) != 0)
                goto out;
            continue;
        }
        struct casty__toml *x = e->val;
        if (x->kind != CASTY__TOML_TABLE) {
            fail_at(p, at, "key \"%s\" is %s, not a table", format_path(path, sizeof(path), &k, i + 1),
                    kind_article(x));
            goto out;
        }
        if (x->origin == ORIGIN_INLINE) {
            fail_at(p, at, "cannot add keys to inline table \"%s\"",
                    format_path(path, sizeof(path), &k, i + 1));
            goto out;
        }
        if (x->origin == ORIGIN_DEFINED) {
            fail_at(p, at, "cannot add keys to table \"%s\" with dotted keys outside its [header]",
                    format_path(path, sizeof(path), &k, i + 1));
            goto out;
        }
        if (x->origin == ORIGIN_IMPLICIT)
            x->origin = ORIGIN_DOTTED;
        t = x;
    }
    struct seg *last = &k.v[k.n - 1];
    if (table_lookup(t, last->s, last->len)) {
        fail_at(p, at, "duplicate key \"%s\"", format_path(path, sizeof(path), &k, k.n));
        goto out;
    }
    if (parse_value(p, (uint16_t)(t->depth + 1), &v) != 0)
        goto out;
    if (table_insert(t, last->s, last->len, last->pos, v) != 0) {
        node_free(v);
        oom(p);
        goto out;
    }
    last->owned = false;
out:
    keypath_free(&k);
    return p->rc;
}

/* [a.b.c] or [[a.b.c]] at the cursor; makes its table the current one. */
static int parse_header(struct parser *p)
{
    struct keypath k;
    char path[96];
    keypath_init(&k);
    struct casty__toml_pos at = here(p);
    adv(p);
    bool aot = peek(p) == '[';
    if (aot)
        adv(p);
    skip_ws(p);
    if (parse_key(p, &k) != 0)
        goto out;
    if (peek(p) != ']' || (aot && peek_at(p, 1) != ']')) {
        char d[32];
        fail_at(p, here(p), "expected '%s' to close the table header, found %s", aot ? "]]" : "]",
                describe(p, d, sizeof(d)));
        goto out;
    }
    adv_n(p, aot ? 2 : 1);

    struct casty__toml *t = p->root;
    for (size_t i = 0; i + 1 < k.n; i++) {
        struct kv *e = table_lookup(t, k.v[i].s, k.v[i].len);
        if (!e) {
            if (add_table(p, t, &k, i, CASTY__TOML_TABLE, ORIGIN_IMPLICIT, &t) != 0)
                goto out;
            continue;
        }
        struct casty__toml *x = e->val;
        if (x->kind == CASTY__TOML_ARRAY && x->origin == ORIGIN_TABLES) {
            t = x->u.arr.items[x->u.arr.len - 1];
            continue;
        }
        if (x->kind != CASTY__TOML_TABLE) {
            fail_at(p, at, "key \"%s\" is %s, not a table", format_path(path, sizeof(path), &k, i + 1),
                    x->kind == CASTY__TOML_ARRAY ? "an array value" : kind_article(x));
            goto out;
        }
        if (x->origin == ORIGIN_INLINE) {
            fail_at(p, at, "cannot add to inline table \"%s\"", format_path(path, sizeof(path), &k, i + 1));
            goto out;
        }
        t = x;
    }

    struct seg *last = &k.v[k.n - 1];
    struct kv *e = table_lookup(t, last->s, last->len);
    format_path(path, sizeof(path), &k, k.n);
    if (!aot) {
        if (!e) {
            if (add_table(p, t, &k, k.n - 1, CASTY__TOML_TABLE, ORIGIN_DEFINED, &p->cur) != 0)
                goto out;
            p->cur->pos = at;
            goto out;
        }
        struct casty__toml *x = e->val;
        if (x->kind == CASTY__TOML_TABLE && x->origin == ORIGIN_IMPLICIT) {
            x->origin = ORIGIN_DEFINED;
            x->pos = at;
            p->cur = x;
        } else if (x->kind == CASTY__TOML_TABLE && x->origin == ORIGIN_DEFINED) {
            fail_at(p, at, "table [%s] defined twice", path);
        } else if (x->kind == CASTY__TOML_TABLE && x->origin == ORIGIN_DOTTED) {
            fail_at(p, at, "table [%s] already defined by dotted keys", path);
        } else if (x->kind == CASTY__TOML_TABLE) {
            fail_at(p, at, "table [%s] already defined as an inline table", path);
        } else if (x->kind == CASTY__TOML_ARRAY && x->origin == ORIGIN_TABLES) {
            fail_at(p, at, "table [%s] already defined as an array of tables", path);
        } else {
            fail_at(p, at, "duplicate key \"%s\" (already %s)", path, kind_article(x));
        }
        goto out;
    }

    struct casty__toml *arr;
    if (!e) {
        if (add_table(p, t, &k, k.n - 1, CASTY__TOML_ARRAY, ORIGIN_TABLES, &arr) != 0)
            goto out;
        arr->pos = at;
    } else {
        arr = e->val;
        if (arr->kind != CASTY__TOML_ARRAY || arr->origin != ORIGIN_TABLES) {
            if (arr->kind == CASTY__TOML_ARRAY)
                fail_at(p, at, "cannot append to static array \"%s\" with [[%s]]", path, path);
            else if (arr->kind == CASTY__TOML_TABLE)
                fail_at(p, at, "[[%s]] but \"%s\" is already a table", path, path);
            else
                fail_at(p, at, "duplicate key \"%s\" (already %s)", path, kind_article(arr));
            goto out;
        }
    }
    struct casty__toml *elem;
    if (new_container(p, CASTY__TOML_TABLE, ORIGIN_DEFINED, (uint16_t)(arr->depth + 1), at, &elem) != 0)
        goto out;
    if (array_push(arr, elem) != 0) {
        node_free(elem);
        oom(p);
        goto out;
    }
    p->cur = elem;
out:
    keypath_free(&k);
    return p->rc;
}

/* After a key/value line or a header: optional whitespace and comment,
 * then the end of the line. */
static int end_of_line(struct parser *p, const char *after)
{
    if (skip_ws_comment(p) != 0)
        return p->rc;
    if (peek(p) < 0)
        return 0;
    if (at_newline(p)) {
        skip_newline(p);
        return 0;
    }
    char d[32];
    return fail_at(p, here(p), "expected end of line after %s, found %s", after,
                   describe(p, d, sizeof(d)));
}

/* toml = expression *( newline expression ), one line at a time. */
static int parse_document(struct parser *p)
{
    for (;;) {
        if (skip_ws_comment(p) != 0)
            return p->rc;
        int c = peek(p);
        if (c < 0)
            return 0;
        if (at_newline(p)) {
            skip_newline(p);
            continue;
        }
        if (c == '[') {
            if (parse_header(p) != 0 || end_of_line(p, "table header") != 0)
                return p->rc;
        } else {
            if (parse_keyval(p, p->cur) != 0 || end_of_line(p, "value") != 0)
                return p->rc;
        }
    }
}

int casty__toml_parse(const char *src, size_t len, struct casty__toml **root,
                      struct casty__toml_error *err)
{
    struct parser p = {.s = src, .len = len, .line = 1, .col = 1, .err = err};
    if (err) {
        err->line = 0;
        err->col = 0;
        err->msg[0] = '\0';
    }
    *root = NULL;
    if (!src && len > 0)
        return fail_at(&p, here(&p), "no input");
    if (len >= 3 && memcmp(src, "\xef\xbb\xbf", 3) == 0)
        p.pos = 3; /* a byte-order mark is allowed at the very start */
    if (check_encoding(&p) != 0)
        return p.rc;
    if (new_container(&p, CASTY__TOML_TABLE, ORIGIN_ROOT, 0, here(&p), &p.root) != 0)
        return p.rc;
    p.root->pos = (struct casty__toml_pos){1, 1};
    p.cur = p.root;
    parse_document(&p);
    if (p.c_locale != (locale_t)0)
        freelocale(p.c_locale);
    if (p.rc != 0) {
        node_free(p.root);
        return p.rc;
    }
    *root = p.root;
    return 0;
}

void casty__toml_free(struct casty__toml *root)
{
    node_free(root);
}

/* ---- accessors ------------------------------------------------------------- */

enum casty__toml_kind casty__toml_kind(const struct casty__toml *v)
{
    return (enum casty__toml_kind)v->kind;
}

const char *casty__toml_kind_name(enum casty__toml_kind kind)
{
    switch (kind) {
    case CASTY__TOML_TABLE: return "table";
    case CASTY__TOML_ARRAY: return "array";
    case CASTY__TOML_STRING: return "string";
    case CASTY__TOML_INTEGER: return "integer";
    case CASTY__TOML_FLOAT: return "float";
    case CASTY__TOML_BOOL: return "bool";
    case CASTY__TOML_DATETIME: return "datetime";
    case CASTY__TOML_DATETIME_LOCAL: return "datetime-local";
    case CASTY__TOML_DATE_LOCAL: return "date-local";
    case CASTY__TOML_TIME_LOCAL: return "time-local";
    }
    return "?";
}

struct casty__toml_pos casty__toml_pos(const struct casty__toml *v)
{
    return v->pos;
}

static bool is_table(const struct casty__toml *t)
{
    return t && t->kind == CASTY__TOML_TABLE;
}

size_t casty__toml_table_len(const struct casty__toml *t)
{
    return is_table(t) ? t->u.tab.len : 0;
}

const struct casty__toml *casty__toml_table_getn(const struct casty__toml *t, const char *key,
                                                 size_t keylen)
{
    if (!is_table(t) || !key)
        return NULL;
    const struct kv *e = table_lookup(t, key, keylen);
    return e ? e->val : NULL;
}

const struct casty__toml *casty__toml_table_get(const struct casty__toml *t, const char *key)
{
    return key ? casty__toml_table_getn(t, key, strlen(key)) : NULL;
}

bool casty__toml_table_find(const struct casty__toml *t, const char *key, size_t keylen,
                            size_t *index)
{
    if (!is_table(t) || !key)
        return false;
    const struct kv *e = table_lookup(t, key, keylen);
    if (!e)
        return false;
    if (index)
        *index = (size_t)(e - t->u.tab.items);
    return true;
}

const char *casty__toml_table_key_at(const struct casty__toml *t, size_t i, size_t *keylen)
{
    if (!is_table(t) || i >= t->u.tab.len) {
        if (keylen)
            *keylen = 0;
        return NULL;
    }
    if (keylen)
        *keylen = t->u.tab.items[i].keylen;
    return t->u.tab.items[i].key;
}

struct casty__toml_pos casty__toml_table_key_pos(const struct casty__toml *t, size_t i)
{
    if (!is_table(t) || i >= t->u.tab.len)
        return (struct casty__toml_pos){0, 0};
    return t->u.tab.items[i].pos;
}

const struct casty__toml *casty__toml_table_value_at(const struct casty__toml *t, size_t i)
{
    if (!is_table(t) || i >= t->u.tab.len)
        return NULL;
    return t->u.tab.items[i].val;
}

const struct casty__toml *casty__toml_get_path(const struct casty__toml *t, const char *path)
{
    if (!path)
        return NULL;
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        t = casty__toml_table_getn(t, path, n);
        if (!t || !dot)
            return t;
        path = dot + 1;
    }
}

size_t casty__toml_array_len(const struct casty__toml *a)
{
    return a && a->kind == CASTY__TOML_ARRAY ? a->u.arr.len : 0;
}

const struct casty__toml *casty__toml_array_at(const struct casty__toml *a, size_t i)
{
    if (!a || a->kind != CASTY__TOML_ARRAY || i >= a->u.arr.len)
        return NULL;
    return a->u.arr.items[i];
}

int casty__toml_string(const struct casty__toml *v, const char **s, size_t *len)
{
    if (!v || v->kind != CASTY__TOML_STRING)
        return CASTY_EINVAL;
    if (s)
        *s = v->u.str.ptr;
    if (len)
        *len = v->u.str.len;
    return 0;
}

int casty__toml_int(const struct casty__toml *v, int64_t *out)
{
    if (!v || v->kind != CASTY__TOML_INTEGER)
        return CASTY_EINVAL;
    *out = v->u.i;
    return 0;
}

int casty__toml_float(const struct casty__toml *v, double *out)
{
    if (!v || v->kind != CASTY__TOML_FLOAT)
        return CASTY_EINVAL;
    *out = v->u.f;
    return 0;
}

int casty__toml_number(const struct casty__toml *v, double *out)
{
    if (v && v->kind == CASTY__TOML_INTEGER) {
        *out = (double)v->u.i;
        return 0;
    }
    return casty__toml_float(v, out);
}

int casty__toml_bool(const struct casty__toml *v, bool *out)
{
    if (!v || v->kind != CASTY__TOML_BOOL)
        return CASTY_EINVAL;
    *out = v->u.b;
    return 0;
}

int casty__toml_datetime(const struct casty__toml *v, struct casty__toml_datetime *out)
{
    if (!v || v->kind < CASTY__TOML_DATETIME || v->kind > CASTY__TOML_TIME_LOCAL)
        return CASTY_EINVAL;
    *out = v->u.dt;
    return 0;
}
