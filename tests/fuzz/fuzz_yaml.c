/*
 * fuzz_yaml.c — libFuzzer target for the YAML/JSON reader (core/yamljson), which parses
 * every request body of the control plane API and every file given to `kpool apply -f`.
 *
 * Checked: no crash, leak or runaway memory for any input (aliases are bounded); an error
 * says where ("line L, column C"); a parsed document emitted as YAML and parsed again gives
 * the same value (what `kpool get -o yaml` prints, `kpool apply -f` must read back); no
 * document nests deeper than KP_YAML_DEPTH_MAX (aliases expanded), so jansson (2048 levels)
 * reads back whatever the API stored.
 */
#include "core/buf.h"
#include "core/yamljson.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_yaml: %s\n", what);
        abort();
    }
}

/* Levels of collections in v (a scalar is 0). */
static int depth_of(const json_t *v)
{
    if (!json_is_array(v) && !json_is_object(v)) return 0;
    int max = 0;
    size_t i;
    const char *k;
    json_t *c;
    json_array_foreach(v, i, c) /* nothing for an object */
    {
        int d = depth_of(c);
        if (d > max) max = d;
    }
    json_object_foreach((json_t *)v, k, c) /* nothing for an array */
    {
        int d = depth_of(c);
        if (d > max) max = d;
    }
    return max + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    err[0] = 0;
    json_t *docs = kp_yaml_parse_all((const char *)data, size, err, sizeof(err));
    if (!docs) {
        check(err[0] != 0, "an error without a message");
        return 0;
    }
    check(json_is_array(docs), "parse_all did not return an array");
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        check(depth_of(d) <= KP_YAML_DEPTH_MAX, "a document nested deeper than the limit");
        kp_buf_t out;
        kp_buf_init(&out);
        kp_yaml_emit(d, &out);
        char err2[512];
        json_t *again = kp_yaml_parse_one((const char *)out.data, out.len, err2, sizeof(err2));
        if (!again) {
            fprintf(stderr, "fuzz_yaml: re-parse failed: %s\n%.*s\n", err2, (int)out.len,
                    (const char *)out.data);
            abort();
        }
        check(json_equal(again, d), "emit + parse changed the value");
        json_decref(again);
        kp_buf_free(&out);
    }
    json_decref(docs);
    return 0;
}
