/* toml-decode: the decoder the toml-test suite drives. Reads TOML on stdin,
 * parses it with casty's parser (runtime/toml.c) and prints the suite's
 * tagged JSON on stdout: tables as objects, arrays as arrays, every scalar
 * as {"type": T, "value": S}. Exit 0 on success; on invalid input prints
 * "toml-decode: LINE:COL: MESSAGE" on stderr and exits 1 (2 when stdin
 * cannot be read or memory runs out). It does no checking of its own: all
 * of that is the parser's. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casty/error.h"
#include "toml.h"

static int read_all(FILE *f, char **out, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* A JSON string: the bytes are valid UTF-8 (the parser checked), so only
 * quotes, backslashes and control characters need escaping. */
static void put_string(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\b': fputs("\\b", stdout); break;
        case '\f': fputs("\\f", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (c < 0x20 || c == 0x7f)
                printf("\\u%04x", c);
            else
                putchar(c);
        }
    }
    putchar('"');
}

/* The shortest %g spelling that reads back as the same double. */
static void format_float(double f, char *buf, size_t cap)
{
    if (isnan(f)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, f);
        if (strtod(buf, NULL) == f)
            return;
    }
}

static void format_datetime(enum casty__toml_kind kind, const struct casty__toml_datetime *dt,
                            char *buf, size_t cap)
{
    size_t o = 0;
    if (kind != CASTY__TOML_TIME_LOCAL)
        o += (size_t)snprintf(buf + o, cap - o, "%04u-%02u-%02u", dt->year, dt->month, dt->day);
    if (kind == CASTY__TOML_DATE_LOCAL)
        return;
    if (kind != CASTY__TOML_TIME_LOCAL)
        buf[o++] = 'T';
    o += (size_t)snprintf(buf + o, cap - o, "%02u:%02u:%02u", dt->hour, dt->minute, dt->second);
    if (dt->frac_digits > 0) {
        uint32_t v = dt->nanosecond;
        for (unsigned d = dt->frac_digits; d < 9; d++)
            v /= 10;
        o += (size_t)snprintf(buf + o, cap - o, ".%0*u", (int)dt->frac_digits, (unsigned)v);
    }
    if (kind == CASTY__TOML_DATETIME) {
        int off = dt->offset_minutes;
        if (off == 0)
            snprintf(buf + o, cap - o, "Z");
        else
            snprintf(buf + o, cap - o, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
    }
}

static void put_value(const struct casty__toml *v);

static void put_tagged(const char *type, const char *value)
{
    printf("{\"type\": \"%s\", \"value\": ", type);
    put_string(value, strlen(value));
    putchar('}');
}

/* Recursion is bounded: the parser rejects trees deeper than
 * CASTY__TOML_MAX_DEPTH. */
static void put_value(const struct casty__toml *v)
{
    enum casty__toml_kind kind = casty__toml_kind(v);
    char buf[96];
    switch (kind) {
    case CASTY__TOML_TABLE: {
        size_t n = casty__toml_table_len(v);
        putchar('{');
        for (size_t i = 0; i < n; i++) {
            size_t klen;
            const char *key = casty__toml_table_key_at(v, i, &klen);
            if (i > 0)
                putchar(',');
            put_string(key, klen);
            putchar(':');
            put_value(casty__toml_table_value_at(v, i));
        }
        putchar('}');
        break;
    }
    case CASTY__TOML_ARRAY: {
        size_t n = casty__toml_array_len(v);
        putchar('[');
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                putchar(',');
            put_value(casty__toml_array_at(v, i));
        }
        putchar(']');
        break;
    }
    case CASTY__TOML_STRING: {
        const char *s = "";
        size_t len = 0;
        casty__toml_string(v, &s, &len);
        printf("{\"type\": \"string\", \"value\": ");
        put_string(s, len);
        putchar('}');
        break;
    }
    case CASTY__TOML_INTEGER: {
        int64_t i = 0;
        casty__toml_int(v, &i);
        snprintf(buf, sizeof(buf), "%" PRId64, i);
        put_tagged("integer", buf);
        break;
    }
    case CASTY__TOML_FLOAT: {
        double f = 0;
        casty__toml_float(v, &f);
        format_float(f, buf, sizeof(buf));
        put_tagged("float", buf);
        break;
    }
    case CASTY__TOML_BOOL: {
        bool b = false;
        casty__toml_bool(v, &b);
        put_tagged("bool", b ? "true" : "false");
        break;
    }
    default: {
        struct casty__toml_datetime dt = {0};
        casty__toml_datetime(v, &dt);
        format_datetime(kind, &dt, buf, sizeof(buf));
        put_tagged(casty__toml_kind_name(kind), buf);
        break;
    }
    }
}

int main(void)
{
    char *src;
    size_t len;
    if (read_all(stdin, &src, &len) != 0) {
        fprintf(stderr, "toml-decode: cannot read stdin\n");
        return 2;
    }
    struct casty__toml *root;
    struct casty__toml_error err;
    int rc = casty__toml_parse(src, len, &root, &err);
    free(src);
    if (rc != 0) {
        fprintf(stderr, "toml-decode: %u:%u: %s\n", (unsigned)err.line, (unsigned)err.col, err.msg);
        return rc == CASTY_EINVAL ? 1 : 2;
    }
    put_value(root);
    putchar('\n');
    casty__toml_free(root);
    return fflush(stdout) == 0 ? 0 : 2;
}
