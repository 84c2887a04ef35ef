/*
 * fuzz_props.c — libFuzzer target for the .properties parser (core/props), which reads
 * operator files and --set values.
 *
 * Checked: no crash for any input; an error says which line; a successful parse yields keys
 * and values that are trimmed, free of newlines and NULs, keys without separators that do not
 * start a comment; writing them back as "key=value" lines and parsing again gives the same
 * properties; the typed getters accept or reject every value without crashing.
 */
#include "core/buf.h"
#include "core/props.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_props: %s\n", what);
        abort();
    }
}

static int trimmed(const char *s)
{
    size_t n = strlen(s);
    return n == 0 || (!isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kp_props_t *p = kp_props_new();
    char err[256];
    err[0] = 0;
    if (kp_props_parse(p, (const char *)data, size, err, sizeof(err)) < 0) {
        check(strncmp(err, "line ", 5) == 0, "error without a line number");
        kp_props_free(p);
        return 0;
    }
    kp_buf_t out;
    kp_buf_init(&out);
    size_t n = kp_props_count(p);
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        kp_props_at(p, i, &k, &v);
        check(k[0] != 0, "empty key");
        check(k[0] != '#' && k[0] != '!', "key starts a comment");
        check(!strpbrk(k, "=:\n"), "separator or newline in key");
        check(!strchr(v, '\n'), "newline in value");
        check(trimmed(k) && trimmed(v), "untrimmed");
        check(kp_props_get(p, k) == v, "get does not find the key");
        int64_t x;
        int b;
        kp_props_get_i64(p, k, 0, INT64_MIN, INT64_MAX, &x, err, sizeof(err));
        kp_props_get_bool(p, k, 0, &b, err, sizeof(err));
        kp_buf_appendf(&out, "%s=%s\n", k, v);
    }
    kp_props_t *q = kp_props_new();
    check(kp_props_parse(q, (const char *)out.data, out.len, err, sizeof(err)) == 0,
          "re-parse of written properties failed");
    check(kp_props_count(q) == n, "re-parse count");
    for (size_t i = 0; i < n; i++) {
        const char *k, *v, *k2, *v2;
        kp_props_at(p, i, &k, &v);
        kp_props_at(q, i, &k2, &v2);
        check(strcmp(k, k2) == 0 && strcmp(v, v2) == 0, "re-parse differs");
    }
    kp_props_free(q);
    kp_buf_free(&out);
    kp_props_free(p);
    return 0;
}
