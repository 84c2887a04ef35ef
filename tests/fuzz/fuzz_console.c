/*
 * fuzz_console.c — libFuzzer target for what the web console's endpoints take from outside:
 * request URLs (control/api/console.c's file lookup, control/api/api_console.c's routes) and the
 * bytes of records read from a pool (control/pool_browse.c's rendering as text or hex, and
 * registry/avro_decode.c's Avro decoding against a few schemas, a recursive one included).
 *
 * Checked: no crash for any input; a URL the console serves is never one with "..";
 * rendered bytes are a string or null, and decode back to exactly the input (text: the
 * same bytes; hex: two digits per byte), cut only beyond KP_BROWSE_VALUE_BYTES_MAX; a
 * decoded Avro datum is JSON that can be written out, a failure always says why.
 */
#include "control/pool_browse.h"
#include "control/api/api_console.h"
#include "control/api/console.h"
#include "registry/avro_decode.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_console: %s\n", what);
        abort();
    }
}

static int unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void check_bytes(const uint8_t *data, size_t size)
{
    const char *enc = NULL;
    int truncated = 0;
    json_t *j = kp_pool_browse_bytes_json(data, size, &enc, &truncated);
    check(j && enc, "no rendering");
    check(truncated == (size > KP_BROWSE_VALUE_BYTES_MAX), "truncated flag");
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (!strcmp(enc, "null")) {
        check(!data && json_is_null(j), "null for bytes");
    } else if (!strcmp(enc, "utf8")) {
        check(s && n <= size && !memcmp(s, data, n), "text differs from the bytes");
        check(truncated || n == size, "text cut without need");
    } else {
        check(!strcmp(enc, "hex") && s && n % 2 == 0 && n / 2 <= size, "hex shape");
        for (size_t i = 0; i < n / 2; i++) {
            int hi = unhex(s[2 * i]), lo = unhex(s[2 * i + 1]);
            check(hi >= 0 && lo >= 0 && (uint8_t)(hi * 16 + lo) == data[i], "hex differs");
        }
        check(truncated || n / 2 == size, "hex cut without need");
    }
    json_decref(j);
}

static const char *const schemas[] = {
    ("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
     "{\"name\":\"a\",\"type\":\"long\"},{\"name\":\"b\",\"type\":[\"null\",\"string\",\"bytes\"]},"
     "{\"name\":\"c\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
     "{\"name\":\"d\",\"type\":{\"type\":\"map\",\"values\":\"double\"}},"
     "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}},"
     "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}},"
     "{\"name\":\"g\",\"type\":\"boolean\"},{\"name\":\"h\",\"type\":\"float\"},"
     "{\"name\":\"i\",\"type\":\"int\"}]}"),
    ("{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"v\",\"type\":\"int\"},"
     "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}"),
    ("{\"type\":\"array\",\"items\":{\"type\":\"map\",\"values\":\"string\"}}"),
};
#define NSCHEMAS (sizeof(schemas) / sizeof(*schemas))

static void check_avro(const uint8_t *data, size_t size)
{
    static kp_avro_schema_t *parsed[NSCHEMAS];
    if (!parsed[0])
        for (size_t i = 0; i < NSCHEMAS; i++) {
            char err[256];
            parsed[i] =
                kp_avro_parse(schemas[i], strlen(schemas[i]), NULL, NULL, 0, err, sizeof(err));
            if (!parsed[i]) fprintf(stderr, "fuzz_console: schema %zu: %s\n", i, err);
            check(parsed[i] != NULL, "a built-in schema does not parse");
        }
    for (size_t i = 0; i < NSCHEMAS; i++) {
        char err[256] = "";
        json_t *v = kp_avro_decode(parsed[i]->root, data, size, err, sizeof(err));
        if (v) {
            char *text = json_dumps(v, JSON_ENCODE_ANY);
            check(text != NULL, "a decoded datum cannot be written as JSON");
            free(text);
            json_decref(v);
        } else {
            check(err[0] != 0, "a decoding failure without a reason");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    memcpy(url, data, size);
    url[size] = 0;
    if (kp_console_route(url)) check(!strstr(url, ".."), "a console file with ..");
    kp_api_console_route(url);
    free(url);
    check_bytes(data, size);
    check_avro(data, size);
    return 0;
}
