/* Invariant checks on a parse result, shared by the TOML fuzz target
 * (tests/fuzz/fuzz_toml.c) and its Criterion smoke test
 * (tests/test_toml_fuzz_smoke.c): whatever the input, a parse either
 * yields a well-formed tree or fails with a sane error. Each check returns
 * NULL when it holds, or what was violated. */
#ifndef CASTY_TEST_TOML_CHECK_H
#define CASTY_TEST_TOML_CHECK_H

#include <stddef.h>
#include <string.h>

#include "casty/error.h"
#include "toml.h"

/* Walks the tree: containers within the depth limit, every table key
 * unique (found at its own index) and NUL-terminated, strings
 * NUL-terminated, date/time fields in range. */
static inline const char *toml_check_tree(const struct casty__toml *v, int depth)
{
    if (!v)
        return "NULL node in tree";
    enum casty__toml_kind kind = casty__toml_kind(v);
    struct casty__toml_pos pos = casty__toml_pos(v);
    if (pos.line < 1 || pos.col < 1)
        return "node without a position";
    if ((kind == CASTY__TOML_TABLE || kind == CASTY__TOML_ARRAY) && depth > CASTY__TOML_MAX_DEPTH)
        return "container deeper than CASTY__TOML_MAX_DEPTH";
    switch (kind) {
    case CASTY__TOML_TABLE:
        for (size_t i = 0; i < casty__toml_table_len(v); i++) {
            size_t len, at;
            const char *key = casty__toml_table_key_at(v, i, &len);
            if (!key || key[len] != '\0')
                return "key not NUL-terminated";
            if (!casty__toml_table_find(v, key, len, &at) || at != i)
                return "key not unique or not found at its index";
            if (casty__toml_table_key_pos(v, i).line < 1)
                return "key without a position";
            const char *why = toml_check_tree(casty__toml_table_value_at(v, i), depth + 1);
            if (why)
                return why;
        }
        return NULL;
    case CASTY__TOML_ARRAY:
        for (size_t i = 0; i < casty__toml_array_len(v); i++) {
            const char *why = toml_check_tree(casty__toml_array_at(v, i), depth + 1);
            if (why)
                return why;
        }
        return NULL;
    case CASTY__TOML_STRING: {
        const char *s;
        size_t len;
        if (casty__toml_string(v, &s, &len) != 0 || !s || s[len] != '\0')
            return "string not NUL-terminated";
        return NULL;
    }
    case CASTY__TOML_INTEGER:
    case CASTY__TOML_FLOAT:
    case CASTY__TOML_BOOL:
        return NULL;
    case CASTY__TOML_DATETIME:
    case CASTY__TOML_DATETIME_LOCAL:
    case CASTY__TOML_DATE_LOCAL:
    case CASTY__TOML_TIME_LOCAL: {
        struct casty__toml_datetime dt;
        if (casty__toml_datetime(v, &dt) != 0)
            return "date/time getter refused its own kind";
        if (kind != CASTY__TOML_TIME_LOCAL && (dt.month < 1 || dt.month > 12 || dt.day < 1 || dt.day > 31))
            return "date out of range";
        if (dt.hour > 23 || dt.minute > 59 || dt.second > 60 || dt.nanosecond > 999999999)
            return "time out of range";
        return NULL;
    }
    }
    return "unknown node kind";
}

/* Checks the outcome of casty__toml_parse(src, len, &root, err) == rc. */
static inline const char *toml_check_result(const char *src, size_t len, int rc,
                                            const struct casty__toml *root,
                                            const struct casty__toml_error *err)
{
    if (rc == 0)
        return root ? toml_check_tree(root, 0) : "success without a root";
    if (root)
        return "failure left a root";
    if (rc != CASTY_EINVAL && rc != CASTY_ENOMEM)
        return "failure code is neither CASTY_EINVAL nor CASTY_ENOMEM";
    if (err->msg[0] == '\0' || memchr(err->msg, '\0', sizeof(err->msg)) == NULL)
        return "empty or unterminated error message";
    /* The error's line must exist and its column be at most one past the
     * line's last character (columns count code points). */
    size_t line = 1, chars = 0;
    for (size_t i = 0; i < len && line <= err->line; i++) {
        if (src[i] == '\n') {
            line++;
        } else if (line == err->line && ((unsigned char)src[i] & 0xc0) != 0x80) {
            chars++;
        }
    }
    if (err->line < 1 || err->col < 1 || line < err->line || err->col > chars + 1)
        return "error position outside the input";
    return NULL;
}

#endif
