/*
 * fuzz_console.c — libFuzzer target for what the web console's endpoints take from outside:
 * request URLs (http/console.c's file lookup, http/api_console.c's routes) and the bytes of
 * records read from a pool (control/pool_browse.c's rendering as text or hex).
 *
 * Checked: no crash for any input; a URL the console serves is never one with "..";
 * rendered bytes are a string or null, and decode back to exactly the input (text: the
 * same bytes; hex: two digits per byte), cut only beyond KP_BROWSE_VALUE_BYTES_MAX.
 */
#include "control/pool_browse.h"
#include "http/api_console.h"
#include "http/console.h"

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
    return 0;
}
