/*
 * test_avro_decode.c — registry/avro_decode.c: Avro binary data shown as JSON. Every type,
 * unions as their branch's value, blocks with byte sizes, and the bounds on outside input
 * (short data, bad indexes, 64-bit overflow, item counts, nesting of recursive records).
 */
#include "unit.h"

#include "registry/avro_decode.h"

static kp_avro_schema_t *schema(const char *text)
{
    char err[256];
    kp_avro_schema_t *s = kp_avro_parse(text, strlen(text), NULL, NULL, 0, err, sizeof(err));
    if (!s) fail_msg("schema: %s", err);
    return s;
}

/* The decoding of data as compact JSON text (malloc'd), or "ERR: <message>". */
static char *decode(const char *schema_text, const uint8_t *data, size_t len)
{
    kp_avro_schema_t *s = schema(schema_text);
    char err[256] = "";
    json_t *v = kp_avro_decode(s->root, data, len, err, sizeof(err));
    char *out;
    if (v) {
        out = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(v);
    } else {
        assert_true(err[0] != 0);
        out = malloc(strlen(err) + 6);
        sprintf(out, "ERR: %s", err);
    }
    kp_avro_schema_free(s);
    return out;
}

#define DECODES_TO(schema_text, bytes, want)                                                       \
    do {                                                                                           \
        static const uint8_t d_[] = bytes;                                                         \
        char *got_ = decode(schema_text, d_, sizeof(d_) - 1);                                      \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_primitives(void **state)
{
    DECODES_TO("\"null\"", "", "null");
    DECODES_TO("\"boolean\"", "\x01", "true");
    DECODES_TO("\"int\"", "\x03", "-2");
    DECODES_TO("\"long\"", "\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", "9223372036854775807");
    DECODES_TO("\"long\"", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "-9223372036854775808");
    DECODES_TO("\"float\"", "\x00\x00\xc0\x3f", "1.5");
    DECODES_TO("\"double\"", "\x00\x00\x00\x00\x00\x00\xf8\x7f", "\"NaN\"");
    DECODES_TO("\"string\"", "\x06t\xc3\xa9", "\"t\xc3\xa9\"");
    DECODES_TO("\"string\"", "\x04\xff\xfe", "\"fffe\""); /* not UTF-8: hex */
    DECODES_TO("\"bytes\"", "\x04\x00\xab", "\"00ab\"");
    DECODES_TO("{\"type\":\"fixed\",\"name\":\"F\",\"size\":2}", "\x01\x02", "\"0102\"");
    DECODES_TO("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}", "\x02", "\"B\"");
}

static void test_complex(void **state)
{
    const char *rec = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                      "{\"name\":\"id\",\"type\":\"long\"},"
                      "{\"name\":\"opt\",\"type\":[\"null\",\"string\"]},"
                      "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"int\"}},"
                      "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"boolean\"}}]}";
    /* id 7, opt = "hi", xs = [1, 2] in one block, m = {"k": true} */
    DECODES_TO(rec, "\x0e\x02\x04hi\x04\x02\x04\x00\x02\x02k\x01\x00",
               "{\"id\":7,\"opt\":\"hi\",\"xs\":[1,2],\"m\":{\"k\":true}}");
    /* opt null; xs as a block with a negative count and its byte size, then a second block */
    DECODES_TO(rec, "\x0e\x00\x03\x04\x02\x04\x02\x06\x00\x00",
               "{\"id\":7,\"opt\":null,\"xs\":[1,2,3],\"m\":{}}");
    const char *list = "{\"type\":\"record\",\"name\":\"N\",\"fields\":[{\"name\":\"v\","
                       "\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"N\"]}]}";
    DECODES_TO(list, "\x02\x02\x04\x00", "{\"v\":1,\"next\":{\"v\":2,\"next\":null}}");
}

static void test_bad_input(void **state)
{
    DECODES_TO("\"boolean\"", "\x02", "ERR: at byte 1: boolean byte 2");
    DECODES_TO("\"int\"", "\xfe\xff\xff\xff\x1f", "ERR: at byte 5: int out of range");
    DECODES_TO("\"long\"", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
               "ERR: at byte 10: a number beyond 64 bits");
    DECODES_TO("\"long\"", "\x80", "ERR: at byte 1: a number runs past the end of the data");
    DECODES_TO("\"string\"",
               "\x0a"
               "ab",
               "ERR: at byte 1: 5 bytes needed, 2 left");
    DECODES_TO("\"bytes\"", "\x01", "ERR: at byte 1: negative length -1");
    DECODES_TO("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}", "\x02",
               "ERR: at byte 1: enum index 1");
    DECODES_TO("[\"null\",\"int\"]", "\x04", "ERR: at byte 1: union branch 2");
    DECODES_TO("\"int\"", "\x02\x00", "ERR: at byte 1: 1 bytes left after the datum");
    /* a billion nulls take no bytes: the item bound stops it */
    DECODES_TO("{\"type\":\"array\",\"items\":\"null\"}", "\x80\xa8\xd6\xb9\x07",
               "ERR: at byte 5: more than 100000 array or map items");
    /* a recursive record nested past the bound */
    const char *list = "{\"type\":\"record\",\"name\":\"N\",\"fields\":[{\"name\":\"next\","
                       "\"type\":[\"null\",\"N\"]}]}";
    uint8_t deep[200];
    memset(deep, 2, sizeof(deep));
    char *got = decode(list, deep, sizeof(deep));
    assert_non_null(strstr(got, "nested deeper than"));
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primitives),
        cmocka_unit_test(test_complex),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
