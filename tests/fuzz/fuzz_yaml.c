/*
 * fuzz_yaml.c — libFuzzer target for the YAML/JSON reader (core/yamljson), which parses
 * every request body of the control plane API and every file given to `kpool apply -f`.
 *
 * Checked: no crash, leak or runaway memory for any input (aliases are bounded); an error
 * says where ("line L, column C"); a parsed document emitted as YAML and parsed again gives
 * the same value (what `kpool get -o yaml` prints, `kpool apply -f` must read back).
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
