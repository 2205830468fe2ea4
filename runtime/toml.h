/* Internal (not installed). A TOML 1.0 parser for casty's configuration:
 * bytes in, a read-only tree or one error out. Pure: no I/O, no globals, no
 * locale dependence; the caller reads the file and owns the bytes.
 *
 * The tree: every node is a table, an array or a scalar (string, integer,
 * float, bool, or one of the four date/time kinds). Tables keep their keys
 * in document order; each key and each value remembers where it started in
 * the source (1-based line and column, columns counted in code points), so
 * a configuration layer can point at the offending text. The whole tree is
 * owned by the root and freed by casty__toml_free(root); pointers into it
 * (nodes, key and string bytes) stay valid until then.
 *
 * Limits: the tree is at most CASTY__TOML_MAX_DEPTH containers deep (tables
 * and arrays, counting header and dotted-key tables as well as inline
 * ones); deeper input is rejected, so every recursive walk of a parsed tree
 * is bounded. Strings may contain NUL (from \u0000): lengths are explicit,
 * and a terminating NUL is always present after the bytes as well.
 *
 * Threads: a parsed tree is immutable; any number of threads may read one
 * concurrently. Parses share nothing. */
#ifndef CASTY_TOML_H
#define CASTY_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CASTY__TOML_MAX_DEPTH 128

enum casty__toml_kind {
    CASTY__TOML_TABLE,
    CASTY__TOML_ARRAY,
    CASTY__TOML_STRING,
    CASTY__TOML_INTEGER,
    CASTY__TOML_FLOAT,
    CASTY__TOML_BOOL,
    CASTY__TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
    CASTY__TOML_DATETIME_LOCAL, /* 1979-05-27T07:32:00 */
    CASTY__TOML_DATE_LOCAL,     /* 1979-05-27 */
    CASTY__TOML_TIME_LOCAL,     /* 07:32:00 */
};

/* Where a key or value starts: 1-based line, 1-based column in code points. */
struct casty__toml_pos {
    uint32_t line;
    uint32_t col;
};

/* Filled by a failed parse: where, and what, e.g. `duplicate key "port"`. */
struct casty__toml_error {
    uint32_t line;
    uint32_t col;
    char msg[160];
};

/* The fields a date/time kind has; the others are zero. Seconds may be 60
 * (a leap second, as RFC 3339 allows). Fractional seconds beyond 9 digits
 * are truncated; frac_digits is how many were written (capped at 9), so a
 * printer can echo "07:32:00.5" rather than "07:32:00.500000000". */
struct casty__toml_datetime {
    uint16_t year;           /* 0..9999 */
    uint8_t month;           /* 1..12 */
    uint8_t day;             /* 1..28/29/30/31 */
    uint8_t hour;            /* 0..23 */
    uint8_t minute;          /* 0..59 */
    uint8_t second;          /* 0..60 */
    uint8_t frac_digits;     /* 0: no fraction written */
    uint32_t nanosecond;     /* 0..999999999 */
    int16_t offset_minutes;  /* CASTY__TOML_DATETIME only: -1439..1439, Z is 0 */
};

struct casty__toml; /* a node; opaque */

/* Parses `len` bytes of `src` (UTF-8, an optional leading BOM; need not be
 * NUL-terminated). On success returns 0 and stores a new root table in
 * *root, which the caller frees with casty__toml_free(). On failure stores
 * NULL in *root, fills *err (when err is not NULL) with the position of the
 * first error and a message, and returns CASTY_EINVAL for a document that
 * is not valid TOML 1.0 (including one nested deeper than
 * CASTY__TOML_MAX_DEPTH) or CASTY_ENOMEM when memory ran out. Never reads
 * outside src[0..len). Any thread. */
int casty__toml_parse(const char *src, size_t len, struct casty__toml **root,
                      struct casty__toml_error *err);

/* Frees a tree returned by casty__toml_parse (NULL is a no-op). Only the
 * root may be freed; nodes inside it belong to it. */
void casty__toml_free(struct casty__toml *root);

/* The kind of `v`, which must not be NULL. */
enum casty__toml_kind casty__toml_kind(const struct casty__toml *v);

/* "table", "array", "string", "integer", "float", "bool", "datetime",
 * "datetime-local", "date-local", "time-local" (the toml-test tags), or
 * "?" for a value outside the enum. Static string. */
const char *casty__toml_kind_name(enum casty__toml_kind kind);

/* Where `v` (not NULL) starts in the source: a value where its text
 * starts, a [table] or [[table]] element at its header, an implicit or
 * dotted-key table at the key part that made it. The root is at 1:1. */
struct casty__toml_pos casty__toml_pos(const struct casty__toml *v);

/* ---- tables (every function here returns 0 / NULL for a non-table) ---- */

size_t casty__toml_table_len(const struct casty__toml *t);

/* The value under `key` (NUL-terminated), or NULL when `t` is NULL, not a
 * table, or has no such key. Takes NULL so lookups chain:
 * casty__toml_table_get(casty__toml_table_get(root, "server"), "port"). */
const struct casty__toml *casty__toml_table_get(const struct casty__toml *t, const char *key);

/* As casty__toml_table_get, for a key of `keylen` bytes (may hold NUL). */
const struct casty__toml *casty__toml_table_getn(const struct casty__toml *t, const char *key,
                                                 size_t keylen);

/* Finds `key` and stores its index (for the *_at functions) in *index.
 * Returns false when absent or `t` is not a table. */
bool casty__toml_table_find(const struct casty__toml *t, const char *key, size_t keylen,
                            size_t *index);

/* The i-th key in document order (0 <= i < len); its length in *keylen when
 * keylen is not NULL. NULL (and a length of 0) when i is out of range. */
const char *casty__toml_table_key_at(const struct casty__toml *t, size_t i, size_t *keylen);

/* Where the i-th key was written (for a dotted key, that segment). {0, 0}
 * when i is out of range. */
struct casty__toml_pos casty__toml_table_key_pos(const struct casty__toml *t, size_t i);

const struct casty__toml *casty__toml_table_value_at(const struct casty__toml *t, size_t i);

/* Follows a dotted path of bare keys ("server.tls.port") from table `t`.
 * Segments are split at '.', with no quoting; use the functions above for
 * keys that contain dots. NULL when any step is missing or not a table. */
const struct casty__toml *casty__toml_get_path(const struct casty__toml *t, const char *path);

/* ---- arrays ---- */

/* Element count; 0 for a non-array. */
size_t casty__toml_array_len(const struct casty__toml *a);

/* The i-th element, or NULL when out of range or `a` is not an array. */
const struct casty__toml *casty__toml_array_at(const struct casty__toml *a, size_t i);

/* ---- scalars: each returns 0 and stores the value, or CASTY_EINVAL
 * (storing nothing) when `v` is NULL or of another kind. ---- */

/* The bytes (valid UTF-8, NUL-terminated, may contain NUL) and their
 * length (when len is not NULL). Owned by the tree. */
int casty__toml_string(const struct casty__toml *v, const char **s, size_t *len);
int casty__toml_int(const struct casty__toml *v, int64_t *out);
/* A float only: integers are refused, so a config can tell 1 from 1.0
 * when it cares (casty__toml_number takes either). */
int casty__toml_float(const struct casty__toml *v, double *out);
/* An integer or a float as a double, for settings such as
 * "timeout_seconds = 5" where either spelling should do. Integers beyond
 * 2^53 round to the nearest double. */
int casty__toml_number(const struct casty__toml *v, double *out);
int casty__toml_bool(const struct casty__toml *v, bool *out);
/* Any of the four date/time kinds; casty__toml_kind() says which fields
 * are meaningful. */
int casty__toml_datetime(const struct casty__toml *v, struct casty__toml_datetime *out);

#endif
