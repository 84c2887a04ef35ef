/*
 * fuzz_registry_schema.c — libFuzzer target for what the schema registry parses from
 * clients and from the `_schemas` topic: Avro schemas (our parser, then libavro), JSON
 * schemas, and `_schemas` records.
 *
 * Input: first byte selects the mode, the rest is the text.
 *   0..127   an Avro schema. Checked: no crash; an accepted schema's canonical form parses
 *            again to the same canonical form (it is a fixed point, or dedupe would split);
 *            every schema can read its own data (resolution is reflexive).
 *   128..191 a JSON schema through kp_reg_candidate_parse; when the text holds a NUL, the
 *            two parts are a pair of JSON schemas for the compatibility checker, run in
 *            both directions. Checked: no crash, no endless work; an answer of "no" always
 *            comes with a message and "yes" with none; true reads anything and anything
 *            reads false.
 *   192..255 a `_schemas` record: key and value split at the first NUL; applied to a
 *            state that already holds a subject, then a schema is registered on top.
 */
#include "registry/avro_compat.h"
#include "registry/avro_schema.h"
#include "registry/json_compat.h"
#include "registry/registry_state.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_registry_schema: %s\n", what);
        abort();
    }
}

static void avro(const char *text, size_t len)
{
    char err[600];
    kp_avro_schema_t *s = kp_avro_parse(text, len, NULL, NULL, 0, err, sizeof(err));
    if (!s) {
        check(err[0] != 0, "refused without a message");
        return;
    }
    kp_avro_schema_t *again =
        kp_avro_parse(s->canonical, strlen(s->canonical), NULL, NULL, 0, err, sizeof(err));
    if (!again) fprintf(stderr, "canonical %s refused: %s\n", s->canonical, err);
    check(again != NULL, "the canonical form does not parse");
    check(!strcmp(again->canonical, s->canonical), "the canonical form is not a fixed point");
    check(kp_avro_can_read(s, again, NULL) == 1, "a schema cannot read its own data");
    kp_avro_schema_free(again);
    kp_avro_schema_free(s);
}

static int json_reads(json_t *reader, json_t *writer)
{
    json_t *msgs = json_array();
    int ok = kp_json_can_read(reader, writer, msgs);
    check(ok == (json_array_size(msgs) == 0), "the messages do not match the answer");
    check(kp_json_can_read(reader, writer, NULL) == ok, "the quiet answer differs");
    json_decref(msgs);
    return ok;
}

static void json_pair(const char *text, size_t len, const char *nul)
{
    size_t alen = (size_t)(nul - text);
    json_t *a = json_loadb(text, alen, JSON_DECODE_ANY, NULL);
    json_t *b = json_loadb(nul + 1, len - alen - 1, JSON_DECODE_ANY, NULL);
    if (a && b) {
        json_reads(a, b);
        json_reads(b, a);
        json_reads(a, a);
        if (json_is_object(a) || json_is_boolean(a)) {
            check(json_reads(json_true(), a) == 1, "true does not read everything");
            check(json_reads(a, json_false()) == 1, "false is not read by everything");
        }
    }
    json_decref(a);
    json_decref(b);
}

static void record(const char *data, size_t len)
{
    const char *nul = memchr(data, 0, len);
    size_t klen = nul ? (size_t)(nul - data) : len;
    kp_reg_state_t st;
    kp_reg_state_init(&st);
    char err[256];
    const char *k = "{\"keytype\":\"SCHEMA\",\"subject\":\"s\",\"version\":1,\"magic\":1}";
    const char *v = "{\"subject\":\"s\",\"version\":1,\"id\":1,\"schema\":\"\\\"int\\\"\"}";
    kp_reg_apply(&st, k, strlen(k), v, strlen(v), err, sizeof(err));
    kp_reg_apply(&st, data, klen, nul ? nul + 1 : NULL, nul ? len - klen - 1 : 0, err, sizeof(err));
    kp_reg_candidate_t c;
    kp_reg_error_t e;
    if (kp_reg_candidate_parse(&st, NULL, "\"long\"", 6, NULL, &c, &e) == 0) {
        kp_reg_batch_t b = {0};
        int id, version;
        if (kp_reg_plan_register(&st, "s", &c, &b, &id, &version, &e) == 0)
            check(id >= 1, "id below 1");
        kp_reg_batch_free(&b);
        kp_reg_candidate_free(&c);
    }
    kp_reg_state_free(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16) return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] < 128) {
        avro(text, len);
    } else if (data[0] < 192 && memchr(text, 0, len)) {
        json_pair(text, len, memchr(text, 0, len));
    } else if (data[0] < 192) {
        kp_reg_state_t st;
        kp_reg_state_init(&st);
        kp_reg_candidate_t c;
        kp_reg_error_t e;
        if (kp_reg_candidate_parse(&st, "JSON", text, len, NULL, &c, &e) == 0)
            kp_reg_candidate_free(&c);
        kp_reg_state_free(&st);
    } else {
        record(text, len);
    }
    return 0;
}
