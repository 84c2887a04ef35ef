/*
 * test_props.c — core/props: .properties parsing (separators, trimming, comments, CRLF, a
 * last line without newline), later keys and --set overriding earlier ones in place, errors
 * that name the line, and the typed getters with their range and syntax errors.
 */
#include "unit.h"

#include "core/limits.h"
#include "core/props.h"

static int parse(kp_props_t *p, const char *text, char *err, size_t errlen)
{
    err[0] = 0;
    return kp_props_parse(p, text, strlen(text), err, errlen);
}

static void test_parse_basic(void **state)
{
    kp_props_t *p = kp_props_new();
    char err[256];
    const char *text = "# a comment\n"
                       "! another comment\n"
                       "\n"
                       "   \t \n"
                       "broker.id=1\n"
                       "  log.dirs = /var/lib/kpool  \n"
                       "listeners: PLAINTEXT://127.0.0.1:9092\r\n"
                       "empty=\n"
                       "url=http://x?a=b\n"
                       "  # indented comment\n"
                       "last.line=no newline";
    assert_int_equal(parse(p, text, err, sizeof(err)), 0);
    assert_int_equal(kp_props_count(p), 6);
    assert_string_equal(kp_props_get(p, "broker.id"), "1");
    assert_string_equal(kp_props_get(p, "log.dirs"), "/var/lib/kpool");
    /* the first separator splits; ':' counts as one (Java properties) */
    assert_string_equal(kp_props_get(p, "listeners"), "PLAINTEXT://127.0.0.1:9092");
    assert_string_equal(kp_props_get(p, "empty"), "");
    assert_string_equal(kp_props_get(p, "url"), "http://x?a=b");
    assert_string_equal(kp_props_get(p, "last.line"), "no newline");
    assert_null(kp_props_get(p, "# a comment"));
    assert_null(kp_props_get(p, "missing"));
    assert_string_equal(kp_props_get_str(p, "missing", "dflt"), "dflt");
    assert_string_equal(kp_props_get_str(p, "broker.id", "dflt"), "1");
    /* insertion order is kept */
    const char *k, *v;
    kp_props_at(p, 0, &k, &v);
    assert_string_equal(k, "broker.id");
    kp_props_at(p, 5, &k, &v);
    assert_string_equal(k, "last.line");
    kp_props_free(p);
}

static void test_overrides(void **state)
{
    kp_props_t *p = kp_props_new();
    char err[256];
    assert_int_equal(parse(p, "a=1\nb=2\na=3\n", err, sizeof(err)), 0);
    assert_int_equal(kp_props_count(p), 2);
    assert_string_equal(kp_props_get(p, "a"), "3");
    /* a second file overrides the first */
    assert_int_equal(parse(p, "b=20\nc=30\n", err, sizeof(err)), 0);
    assert_int_equal(kp_props_count(p), 3);
    assert_string_equal(kp_props_get(p, "b"), "20");
    /* --set wins last and keeps the position */
    assert_int_equal(kp_props_set_kv(p, "a=from-cli", err, sizeof(err)), 0);
    assert_int_equal(kp_props_set_kv(p, "d=x=y", err, sizeof(err)), 0);
    assert_string_equal(kp_props_get(p, "a"), "from-cli");
    assert_string_equal(kp_props_get(p, "d"), "x=y");
    const char *k, *v;
    kp_props_at(p, 0, &k, &v);
    assert_string_equal(k, "a");
    assert_string_equal(v, "from-cli");
    assert_int_equal(kp_props_set_kv(p, "novalue", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "novalue"));
    assert_int_equal(kp_props_set_kv(p, "=x", err, sizeof(err)), -1);
    /* many keys (growth) */
    for (int i = 0; i < 100; i++) {
        char key[16], val[16];
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "%d", i * 7);
        kp_props_set(p, key, val);
    }
    assert_int_equal(kp_props_count(p), 104);
    assert_string_equal(kp_props_get(p, "k99"), "693");
    kp_props_free(p);
}

static void test_errors_name_the_line(void **state)
{
    char err[256];
    kp_props_t *p = kp_props_new();
    assert_int_equal(parse(p, "a=1\n# c\nno separator here\nb=2\n", err, sizeof(err)), -1);
    assert_string_equal(err, "line 3: expected key=value");
    kp_props_free(p);

    p = kp_props_new();
    assert_int_equal(parse(p, "a=1\n  = value\n", err, sizeof(err)), -1);
    assert_string_equal(err, "line 2: empty key");
    kp_props_free(p);

    p = kp_props_new();
    const char nul[] = "a=1\nb=2\nc=\0x\n";
    assert_int_equal(kp_props_parse(p, nul, sizeof(nul) - 1, err, sizeof(err)), -1);
    assert_string_equal(err, "line 3: contains a NUL byte");
    kp_props_free(p);

    /* a line longer than the limit */
    size_t n = KP_PROPERTY_LEN_MAX + 10;
    char *longline = malloc(n + 16);
    strcpy(longline, "ok=1\nk=");
    memset(longline + 7, 'v', n);
    longline[7 + n] = 0;
    p = kp_props_new();
    assert_int_equal(parse(p, longline, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2:"));
    assert_non_null(strstr(err, "longer than"));
    kp_props_free(p);
    /* exactly at the limit is fine */
    longline[KP_PROPERTY_LEN_MAX + 5] = 0;
    p = kp_props_new();
    assert_int_equal(parse(p, longline, err, sizeof(err)), 0);
    assert_int_equal(strlen(kp_props_get(p, "k")), KP_PROPERTY_LEN_MAX - 2);
    kp_props_free(p);
    free(longline);

    /* the error message is truncated to the buffer, never overflowing it */
    char tiny[8];
    p = kp_props_new();
    assert_int_equal(parse(p, "bad\n", tiny, sizeof(tiny)), -1);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    kp_props_free(p);
}

static void test_get_i64(void **state)
{
    kp_props_t *p = kp_props_new();
    char err[256];
    assert_int_equal(parse(p,
                           "port=9092\nneg=-5\nbig=9223372036854775807\nover=9223372036854775808\n"
                           "junk=12abc\nplus=+7\nhex=0x10\nempty=\nspace=1 2\n",
                           err, sizeof(err)),
                     0);
    int64_t v = 0;
    assert_int_equal(kp_props_get_i64(p, "port", 1, 1, 65535, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 9092);
    assert_int_equal(kp_props_get_i64(p, "missing", 42, 1, 65535, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 42);
    assert_int_equal(kp_props_get_i64(p, "neg", 0, -10, 10, &v, err, sizeof(err)), 0);
    assert_int_equal(v, -5);
    assert_int_equal(kp_props_get_i64(p, "big", 0, 0, INT64_MAX, &v, err, sizeof(err)), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(kp_props_get_i64(p, "plus", 0, 0, 10, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 7);

    v = 123;
    assert_int_equal(kp_props_get_i64(p, "port", 1, 1, 1024, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "port: 9092 is outside 1..1024");
    assert_int_equal(v, 123); /* untouched on error */
    assert_int_equal(kp_props_get_i64(p, "neg", 0, 0, 10, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "neg: -5 is outside 0..10");
    assert_int_equal(kp_props_get_i64(p, "over", 0, 0, INT64_MAX, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "over: '9223372036854775808' is not an integer");
    assert_int_equal(kp_props_get_i64(p, "junk", 0, 0, 100, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "junk: '12abc' is not an integer");
    assert_int_equal(kp_props_get_i64(p, "hex", 0, 0, 100, &v, err, sizeof(err)), -1);
    assert_int_equal(kp_props_get_i64(p, "empty", 0, 0, 100, &v, err, sizeof(err)), -1);
    assert_int_equal(kp_props_get_i64(p, "space", 0, 0, 100, &v, err, sizeof(err)), -1);

    /* kp_parse_i64 directly */
    assert_int_equal(kp_parse_i64(NULL, &v), -1);
    assert_int_equal(kp_parse_i64(" 5", &v), -1);
    assert_int_equal(kp_parse_i64("-9223372036854775808", &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(kp_parse_i64("-9223372036854775809", &v), -1);
    kp_props_free(p);
}

static void test_get_bool(void **state)
{
    kp_props_t *p = kp_props_new();
    char err[256];
    assert_int_equal(parse(p, "a=true\nb=FALSE\nc=True\nd=yes\ne=1\n", err, sizeof(err)), 0);
    int b = -1;
    assert_int_equal(kp_props_get_bool(p, "a", 0, &b, err, sizeof(err)), 0);
    assert_int_equal(b, 1);
    assert_int_equal(kp_props_get_bool(p, "b", 1, &b, err, sizeof(err)), 0);
    assert_int_equal(b, 0);
    assert_int_equal(kp_props_get_bool(p, "c", 0, &b, err, sizeof(err)), 0);
    assert_int_equal(b, 1);
    assert_int_equal(kp_props_get_bool(p, "missing", 1, &b, err, sizeof(err)), 0);
    assert_int_equal(b, 1);
    assert_int_equal(kp_props_get_bool(p, "d", 0, &b, err, sizeof(err)), -1);
    assert_string_equal(err, "d: 'yes' is not true or false");
    assert_int_equal(kp_props_get_bool(p, "e", 0, &b, err, sizeof(err)), -1);
    kp_props_free(p);
}

static void test_load_file(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[512];
    ut_tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/server.properties", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("num.partitions=3\n# x\nlog.retention.hours = 168\n", f);
    fclose(f);
    kp_props_t *p = kp_props_new();
    assert_int_equal(kp_props_load_file(p, path, err, sizeof(err)), 0);
    assert_string_equal(kp_props_get(p, "log.retention.hours"), "168");
    kp_props_free(p);

    /* an error in a file names the file and the line */
    f = fopen(path, "w");
    fputs("a=1\n\nbroken\n", f);
    fclose(f);
    p = kp_props_new();
    assert_int_equal(kp_props_load_file(p, path, err, sizeof(err)), -1);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s: line 3: expected key=value", path);
    assert_string_equal(err, want);
    kp_props_free(p);

    /* a missing file */
    snprintf(path, sizeof(path), "%s/nope.properties", dir);
    p = kp_props_new();
    assert_int_equal(kp_props_load_file(p, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nope.properties"));
    assert_non_null(strstr(err, "No such file"));
    kp_props_free(p);
    ut_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_get_i64),
        cmocka_unit_test(test_get_bool),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
