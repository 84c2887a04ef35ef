/*
 * test_utf8.c — core/utf8 (validation, the lossy conversion, kp_json_text), the API's reply
 * builder on any bytes (control/api/api_reply), the name rule's message (a whole character, never
 * one byte of it) and the YAML reader's nesting limit, the pieces that keep one request
 * from taking the process down (issue 12).
 */
#include "unit.h"

#include "control/kinds.h"
#include "core/utf8.h"
#include "core/yamljson.h"
#include "control/api/api_reply.h"

static void test_char_len_and_valid(void **state)
{
    (void)state;
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"a", 1), 1);
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"\xc3\xa9", 2), 2);
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"\xff", 1), 0);
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"\xe9t", 2), 0);        /* latin-1 */
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"\xc3", 1), 0);         /* cut */
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"\xc0\xaf", 2), 0);     /* overlong */
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"\xed\xa0\x80", 3), 0); /* D800 */
    assert_int_equal(kp_utf8_char_len((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
    assert_true(kp_utf8_valid("\xc3\xa9t\xc3\xa9", 5));
    assert_false(kp_utf8_valid("\xe9t\xe9", 3));
}

static void test_json_text_never_null(void **state)
{
    (void)state;
    json_t *v = kp_json_text("a\xff"
                             "b\xc3");
    assert_non_null(v);
    assert_string_equal(json_string_value(v), "a\xef\xbf\xbd"
                                              "b\xef\xbf\xbd");
    json_decref(v);
    v = kp_json_text(NULL);
    assert_string_equal(json_string_value(v), "");
    json_decref(v);
    v = kp_json_text("\xc3\xa9t\xc3\xa9");
    assert_string_equal(json_string_value(v), "\xc3\xa9t\xc3\xa9");
    json_decref(v);
}

static void test_status_and_reply_text_on_any_bytes(void **state)
{
    (void)state;
    json_t *s = kp_api_statusf(404, "NotFound", "topics \"%s\" not found", "\xff\xfe");
    unsigned code = 404;
    size_t len;
    char *text = kp_api_reply_text(s, &code, &len);
    assert_int_equal(code, 404);
    assert_true(kp_utf8_valid(text, len));
    assert_non_null(strstr(text, "topics \\\"\xef\xbf\xbd\xef\xbf\xbd\\\" not found"));
    free(text);
    json_decref(s);
    /* no body at all: a 500 Status, not a crash */
    text = kp_api_reply_text(NULL, &code, &len);
    assert_int_equal(code, 500);
    assert_non_null(strstr(text, "\"InternalError\""));
    free(text);
    char hdr[256];
    kp_api_warning_value("spec.x\xc3\xa9\"y\\", hdr, sizeof(hdr));
    assert_string_equal(hdr, "299 - \"unknown field \\\"spec.x??\\\"y\\\\\\\"\"");
}

static void test_name_rule_message_is_utf8(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(kp_name_check("\xc3\xa9t\xc3\xa9", 0, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "(found '\xc3\xa9')"));
    assert_int_equal(kp_name_check("\xe9t\xe9", 0, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "(found byte 0xe9)"));
    assert_true(kp_utf8_valid(why, strlen(why)));
    assert_int_equal(kp_name_check("Ab", 1, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "(found 'A')"));
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[depth * 2] = 0;
    return s;
}

static void test_yaml_nesting_limit(void **state)
{
    (void)state;
    char err[256];
    char *ok = nested(KP_YAML_DEPTH_MAX), *deep = nested(KP_YAML_DEPTH_MAX + 1);
    char *huge = nested(100000);
    json_t *v = kp_yaml_parse_one(ok, strlen(ok), err, sizeof(err));
    assert_non_null(v);
    /* what the limit allows, jansson (the store's reader) reads back */
    char *text = json_dumps(v, JSON_COMPACT);
    json_t *back = json_loads(text, 0, NULL);
    assert_non_null(back);
    json_decref(back);
    free(text);
    json_decref(v);
    assert_null(kp_yaml_parse_one(deep, strlen(deep), err, sizeof(err)));
    assert_non_null(strstr(err, "collections nest deeper than 1000 levels"));
    assert_null(kp_yaml_parse_one(huge, strlen(huge), err, sizeof(err)));
    assert_non_null(strstr(err, "collections nest deeper than 1000 levels"));
    /* an alias does not get a value past the limit either */
    const char *alias_doc = "a: &x [[[[1]]]]\nb: *x\n";
    v = kp_yaml_parse_one(alias_doc, strlen(alias_doc), err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    /* an alias of a 600-deep value placed 600 levels down would nest 1,201 deep */
    char *a600 = nested(600);
    kp_buf_t doc;
    kp_buf_init(&doc);
    kp_buf_appendf(&doc, "a: &x %.600s%.600s\nb: %.600s*x%.600s\n", a600, a600 + 600, a600,
                   a600 + 600);
    assert_null(kp_yaml_parse_one((const char *)doc.data, doc.len, err, sizeof(err)));
    assert_non_null(strstr(err, "nest too deeply"));
    kp_buf_free(&doc);
    free(a600);
    free(ok);
    free(deep);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_char_len_and_valid),
        cmocka_unit_test(test_json_text_never_null),
        cmocka_unit_test(test_status_and_reply_text_on_any_bytes),
        cmocka_unit_test(test_name_rule_message_is_utf8),
        cmocka_unit_test(test_yaml_nesting_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
