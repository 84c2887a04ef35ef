/*
 * test_registry_state.c — registry/registry_state: the `_schemas` record format (what we
 * write is Confluent's, and records written by others apply), planned writes applied back
 * (ids, versions, dedupe across subjects), every compatibility level with a concrete
 * history where the transitive and non-transitive forms disagree, soft and permanent
 * deletes with Confluent's error codes, config records and tombstones, malformed records.
 */
#include "unit.h"

#include "registry/registry_state.h"

#define REC(fields) "{\"type\":\"record\",\"name\":\"R\",\"fields\":[" fields "]}"

static void apply_batch(kp_reg_state_t *st, kp_reg_batch_t *b)
{
    char err[256];
    for (int i = 0; i < b->n; i++) {
        const kp_reg_record_t *r = &b->records[i];
        assert_int_equal(kp_reg_apply(st, r->key, strlen(r->key), r->value,
                                      r->value ? strlen(r->value) : 0, err, sizeof(err)),
                         0);
    }
    kp_reg_batch_free(b);
}

/* Registers text under subject: the id, or -(error code). */
static int reg(kp_reg_state_t *st, const char *subject, const char *text)
{
    kp_reg_candidate_t c;
    kp_reg_error_t e;
    if (kp_reg_candidate_parse(st, NULL, text, strlen(text), NULL, &c, &e) < 0) return -e.code;
    kp_reg_batch_t b = {0};
    int id, version;
    int rc = kp_reg_plan_register(st, subject, &c, &b, &id, &version, &e);
    kp_reg_candidate_free(&c);
    if (rc < 0) {
        kp_reg_batch_free(&b);
        return -e.code;
    }
    apply_batch(st, &b);
    return id;
}

static void set_level(kp_reg_state_t *st, const char *subject, kp_compat_t level)
{
    kp_reg_batch_t b = {0};
    kp_reg_plan_config(subject, level, &b);
    apply_batch(st, &b);
}

static void test_records_are_confluents(void **state)
{
    (void)state;
    kp_reg_state_t st;
    kp_reg_state_init(&st);
    kp_reg_candidate_t c;
    kp_reg_error_t e;
    const char *text = REC("{\"name\":\"a\",\"type\":\"int\"}");
    assert_int_equal(kp_reg_candidate_parse(&st, "AVRO", text, strlen(text), NULL, &c, &e), 0);
    kp_reg_batch_t b = {0};
    int id, version;
    assert_int_equal(kp_reg_plan_register(&st, "s-value", &c, &b, &id, &version, &e), 0);
    assert_int_equal(id, 1);
    assert_int_equal(version, 1);
    assert_int_equal(b.n, 1);
    json_t *k = json_loads(b.records[0].key, 0, NULL), *v = json_loads(b.records[0].value, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(k, "keytype")), "SCHEMA");
    assert_string_equal(json_string_value(json_object_get(k, "subject")), "s-value");
    assert_int_equal(json_integer_value(json_object_get(k, "version")), 1);
    assert_int_equal(json_integer_value(json_object_get(k, "magic")), 1);
    assert_int_equal(json_integer_value(json_object_get(v, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(v, "schema")), c.text);
    assert_null(json_object_get(v, "schemaType")); /* AVRO is the default, omitted */
    assert_true(json_is_false(json_object_get(v, "deleted")));
    json_decref(k);
    json_decref(v);
    /* planning changes nothing until the records come back */
    assert_null(kp_reg_subject(&st, "s-value"));
    apply_batch(&st, &b);
    kp_reg_subject_t *s = kp_reg_subject(&st, "s-value");
    assert_non_null(s);
    assert_int_equal(kp_reg_version_find(s, -1, 0)->id, 1);
    kp_reg_candidate_free(&c);
    /* a record as Confluent writes it (its own spelling, a JSON type) applies, and the Avro
     * text becomes canonical so it dedupes with ours */
    const char *key = "{\"keytype\":\"SCHEMA\",\"subject\":\"other\",\"version\":1,\"magic\":1}";
    const char *val =
        "{\"subject\":\"other\",\"version\":1,\"id\":7,\"schema\":\"{\\\"type\\\": \\\"record\\\", "
        "\\\"name\\\": \\\"R\\\", \\\"fields\\\": [{\\\"name\\\": \\\"a\\\", \\\"type\\\": "
        "\\\"int\\\"}]}\","
        "\"deleted\":false}";
    char err[256];
    assert_int_equal(kp_reg_apply(&st, key, strlen(key), val, strlen(val), err, sizeof(err)), 0);
    assert_int_equal(st.max_id, 7);
    assert_int_equal(reg(&st, "third", text), 1); /* lowest id of the identical text wins: ours */
    const char *jkey = "{\"keytype\":\"SCHEMA\",\"subject\":\"j\",\"version\":1,\"magic\":1}";
    const char *jval =
        "{\"subject\":\"j\",\"version\":1,\"id\":8,\"schemaType\":\"JSON\",\"schema\":\"{}\"}";
    assert_int_equal(kp_reg_apply(&st, jkey, strlen(jkey), jval, strlen(jval), err, sizeof(err)),
                     0);
    assert_string_equal(kp_reg_schema_by_id(&st, 8)->type, "JSON");
    /* NOOP and unknown key types are skipped; garbage is reported and ignored */
    const char *noop = "{\"keytype\":\"NOOP\",\"magic\":0}";
    assert_int_equal(kp_reg_apply(&st, noop, strlen(noop), NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(kp_reg_apply(&st, "xx", 2, "yy", 2, err, sizeof(err)), -1);
    const char *badv = "{\"subject\":\"j\",\"version\":2,\"schema\":\"{}\"}"; /* no id */
    const char *badk = "{\"keytype\":\"SCHEMA\",\"subject\":\"j\",\"version\":2,\"magic\":1}";
    assert_int_equal(kp_reg_apply(&st, badk, strlen(badk), badv, strlen(badv), err, sizeof(err)),
                     -1);
    assert_int_equal(kp_reg_subject(&st, "j")->nversions, 1);
    kp_reg_state_free(&st);
}

static void test_ids_versions_and_dedupe(void **state)
{
    (void)state;
    kp_reg_state_t st;
    kp_reg_state_init(&st);
    const char *a = REC("{\"name\":\"a\",\"type\":\"int\"}");
    const char *a2 = "{ \"fields\": [{\"type\": \"int\", \"name\": \"a\"}], \"name\": \"R\", "
                     "\"type\": \"record\" }";
    const char *ab =
        REC("{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"int\",\"default\":0}");
    assert_int_equal(reg(&st, "s", a), 1);
    assert_int_equal(reg(&st, "s", a2), 1); /* same schema: same id, no new version */
    assert_int_equal(kp_reg_subject(&st, "s")->nversions, 1);
    assert_int_equal(reg(&st, "s", ab), 2);
    assert_int_equal(reg(&st, "t", a), 1); /* another subject reuses the id */
    assert_int_equal(reg(&st, "s", a), 1); /* an older live version: its id, nothing new */
    assert_int_equal(kp_reg_subject(&st, "s")->nversions, 2);
    assert_int_equal(reg(&st, "u", "\"string\""), 3);
    assert_int_equal(reg(&st, "u", "{\"type\":\"nope\"}"), -42201);
    kp_reg_state_free(&st);
}

/* Sets up subject s with the given history at level NONE, then switches to level and
 * asks whether cand is accepted. */
static int accepted(kp_compat_t level, const char *const *history, int n, const char *cand)
{
    kp_reg_state_t st;
    kp_reg_state_init(&st);
    set_level(&st, "s", KP_COMPAT_NONE);
    for (int i = 0; i < n; i++) assert_true(reg(&st, "s", history[i]) > 0);
    set_level(&st, "s", level);
    int id = reg(&st, "s", cand);
    assert_true(id > 0 || id == -409);
    kp_reg_state_free(&st);
    return id > 0;
}

static void test_every_level(void **state)
{
    (void)state;
    /* BACKWARD: the new schema reads data of the latest; transitive: of every version */
    const char *b_hist[] = {REC("{\"name\":\"a\",\"type\":\"int\"}"), REC("")};
    const char *b_cand = REC("{\"name\":\"a\",\"type\":\"string\",\"default\":\"\"}");
    assert_true(accepted(KP_COMPAT_BACKWARD, b_hist, 2, b_cand));
    assert_false(accepted(KP_COMPAT_BACKWARD_TRANSITIVE, b_hist, 2, b_cand)); /* v1's int a */
    assert_true(accepted(KP_COMPAT_NONE, b_hist, 2, "\"boolean\""));
    assert_false(accepted(KP_COMPAT_BACKWARD, b_hist, 2, REC("{\"name\":\"z\",\"type\":\"int\"}")));
    /* FORWARD: the latest reads data of the new schema; transitive: every version does */
    const char *f_hist[] = {REC("{\"name\":\"a\",\"type\":\"int\"}"),
                            REC("{\"name\":\"a\",\"type\":\"int\",\"default\":0}")};
    const char *f_cand = REC("");
    assert_true(accepted(KP_COMPAT_FORWARD, f_hist, 2, f_cand));
    assert_false(accepted(KP_COMPAT_FORWARD_TRANSITIVE, f_hist, 2, f_cand)); /* v1 needs a */
    assert_false(
        accepted(KP_COMPAT_BACKWARD, f_hist, 1,
                 REC("{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"int\"}")));
    assert_true(
        accepted(KP_COMPAT_FORWARD, f_hist, 1,
                 REC("{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"int\"}")));
    /* FULL: both directions against the latest; transitive: against all */
    const char *full_hist[] = {REC("{\"name\":\"a\",\"type\":\"int\"}"),
                               REC("{\"name\":\"a\",\"type\":\"int\",\"default\":0}")};
    const char *full_cand = REC("{\"name\":\"b\",\"type\":\"int\",\"default\":0}");
    assert_true(accepted(KP_COMPAT_FULL, full_hist, 2, full_cand));
    assert_false(accepted(KP_COMPAT_FULL_TRANSITIVE, full_hist, 2, full_cand));
    /* FULL refuses what only one direction allows */
    assert_false(accepted(KP_COMPAT_FULL, full_hist, 1, REC("{\"name\":\"a\",\"type\":\"long\"}")));
    assert_true(
        accepted(KP_COMPAT_BACKWARD, full_hist, 1, REC("{\"name\":\"a\",\"type\":\"long\"}")));
    assert_false(
        accepted(KP_COMPAT_FORWARD, full_hist, 1, REC("{\"name\":\"a\",\"type\":\"long\"}")));
    /* soft-deleted versions do not count */
    kp_reg_state_t st;
    kp_reg_state_init(&st);
    assert_true(reg(&st, "s", REC("{\"name\":\"a\",\"type\":\"int\"}")) > 0);
    kp_reg_batch_t b = {0};
    json_t *deleted;
    kp_reg_error_t e;
    assert_int_equal(kp_reg_plan_delete_subject(&st, "s", 0, &b, &deleted, &e), 0);
    json_decref(deleted);
    apply_batch(&st, &b);
    assert_true(reg(&st, "s", "\"string\"") > 0);
    assert_int_equal(kp_reg_version_find(kp_reg_subject(&st, "s"), -1, 0)->version, 2);
    /* JSON schemas are checked (object -> string changes the type); NONE accepts anything */
    kp_reg_candidate_t c;
    assert_int_equal(kp_reg_candidate_parse(&st, "JSON", "{\"type\":\"object\"}", 17, NULL, &c, &e),
                     0);
    int id, version;
    assert_int_equal(kp_reg_plan_register(&st, "j", &c, &b, &id, &version, &e), 0);
    apply_batch(&st, &b);
    kp_reg_candidate_free(&c);
    assert_int_equal(kp_reg_candidate_parse(&st, "JSON", "{\"type\":\"string\"}", 17, NULL, &c, &e),
                     0);
    assert_int_equal(kp_reg_plan_register(&st, "j", &c, &b, &id, &version, &e), -1);
    assert_int_equal(e.code, 409);
    set_level(&st, "j", KP_COMPAT_NONE);
    assert_int_equal(kp_reg_plan_register(&st, "j", &c, &b, &id, &version, &e), 0);
    kp_reg_batch_free(&b);
    kp_reg_candidate_free(&c);
    kp_reg_state_free(&st);
}

static void test_deletes_and_config(void **state)
{
    (void)state;
    kp_reg_state_t st;
    kp_reg_state_init(&st);
    const char *v1 = REC("{\"name\":\"a\",\"type\":\"int\"}");
    const char *v2 =
        REC("{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"int\",\"default\":0}");
    assert_int_equal(reg(&st, "s", v1), 1);
    assert_int_equal(reg(&st, "s", v2), 2);
    kp_reg_batch_t b = {0};
    kp_reg_error_t e;
    int dv;
    json_t *deleted;
    /* permanent needs soft first */
    assert_int_equal(kp_reg_plan_delete_version(&st, "s", 1, 1, &b, &dv, &e), -1);
    assert_int_equal(e.code, 40407);
    assert_int_equal(kp_reg_plan_delete_version(&st, "s", 9, 0, &b, &dv, &e), -1);
    assert_int_equal(e.code, 40402);
    assert_int_equal(kp_reg_plan_delete_version(&st, "x", 1, 0, &b, &dv, &e), -1);
    assert_int_equal(e.code, 40401);
    assert_int_equal(kp_reg_plan_delete_version(&st, "s", 1, 0, &b, &dv, &e), 0);
    apply_batch(&st, &b);
    assert_int_equal(kp_reg_plan_delete_version(&st, "s", 1, 0, &b, &dv, &e), -1);
    assert_int_equal(e.code, 40406);
    assert_non_null(kp_reg_schema_by_id(&st, 1)); /* soft: still readable by id */
    assert_int_equal(kp_reg_plan_delete_version(&st, "s", 1, 1, &b, &dv, &e), 0);
    apply_batch(&st, &b);
    assert_null(kp_reg_schema_by_id(&st, 1)); /* permanent and unused: gone */
    /* subject */
    assert_int_equal(kp_reg_plan_delete_subject(&st, "s", 1, &b, &deleted, &e), -1);
    assert_int_equal(e.code, 40405);
    assert_int_equal(kp_reg_plan_delete_subject(&st, "s", 0, &b, &deleted, &e), 0);
    assert_int_equal(json_array_size(deleted), 1);
    json_decref(deleted);
    apply_batch(&st, &b);
    assert_false(kp_reg_subject_live(kp_reg_subject(&st, "s")));
    assert_int_equal(kp_reg_plan_delete_subject(&st, "s", 0, &b, &deleted, &e), -1);
    assert_int_equal(e.code, 40404);
    assert_int_equal(kp_reg_plan_delete_subject(&st, "s", 1, &b, &deleted, &e), 0);
    json_decref(deleted);
    apply_batch(&st, &b);
    assert_null(kp_reg_subject(&st, "s"));
    /* ids are never reused, even after everything is gone ... */
    assert_int_equal(reg(&st, "s", "\"bytes\""), 3);
    /* ... nor after a replay of a compacted topic that lost the highest id's records: the
     * watermark written before a permanent delete remembers it */
    kp_reg_state_t fresh;
    kp_reg_state_init(&fresh);
    const char *nk = "{\"keytype\":\"NOOP\",\"magic\":0}", *nv = "{\"maxId\":2}";
    char err[128];
    assert_int_equal(kp_reg_apply(&fresh, nk, strlen(nk), nv, strlen(nv), err, sizeof(err)), 0);
    assert_int_equal(reg(&fresh, "s", "\"int\""), 3);
    kp_reg_state_free(&fresh);
    /* config: subject level, global level, tombstones back to the defaults */
    assert_int_equal(kp_reg_level(&st, kp_reg_subject(&st, "s")), KP_COMPAT_BACKWARD);
    set_level(&st, NULL, KP_COMPAT_FULL);
    assert_int_equal(kp_reg_level(&st, kp_reg_subject(&st, "s")), KP_COMPAT_FULL);
    set_level(&st, "s", KP_COMPAT_NONE);
    assert_int_equal(kp_reg_level(&st, kp_reg_subject(&st, "s")), KP_COMPAT_NONE);
    set_level(&st, "s", KP_COMPAT_UNSET);
    assert_int_equal(kp_reg_level(&st, kp_reg_subject(&st, "s")), KP_COMPAT_FULL);
    set_level(&st, NULL, KP_COMPAT_UNSET);
    assert_int_equal(kp_reg_level(&st, NULL), KP_COMPAT_BACKWARD);
    /* a level for a subject without versions is kept, and is not a subject */
    set_level(&st, "future", KP_COMPAT_FORWARD);
    assert_int_equal(kp_reg_subject(&st, "future")->compat, KP_COMPAT_FORWARD);
    assert_false(kp_reg_subject_live(kp_reg_subject(&st, "future")));
    kp_compat_t l;
    assert_int_equal(kp_compat_parse("FULL_TRANSITIVE", &l), 0);
    assert_int_equal(l, KP_COMPAT_FULL_TRANSITIVE);
    assert_int_equal(kp_compat_parse("full", &l), -1);
    kp_reg_state_free(&st);
}

static void test_references(void **state)
{
    (void)state;
    kp_reg_state_t st;
    kp_reg_state_init(&st);
    const char *addr = "{\"type\":\"record\",\"name\":\"x.Address\",\"fields\":[{\"name\":\"city\","
                       "\"type\":\"string\"}]}";
    assert_int_equal(reg(&st, "address", addr), 1);
    const char *person = "{\"type\":\"record\",\"name\":\"x.Person\",\"fields\":[{\"name\":\"a\","
                         "\"type\":\"Address\"}]}";
    json_t *refs =
        json_pack("[{s:s, s:s, s:i}]", "name", "x.Address", "subject", "address", "version", 1);
    kp_reg_candidate_t c;
    kp_reg_error_t e;
    assert_int_equal(kp_reg_candidate_parse(&st, NULL, person, strlen(person), refs, &c, &e), 0);
    kp_reg_batch_t b = {0};
    int id, version;
    assert_int_equal(kp_reg_plan_register(&st, "person", &c, &b, &id, &version, &e), 0);
    apply_batch(&st, &b);
    kp_reg_schema_t *sc = kp_reg_schema_by_id(&st, id);
    assert_int_equal(json_array_size(sc->references), 1);
    assert_non_null(sc->avro); /* parsed again at apply, with the reference resolved */
    kp_reg_candidate_free(&c);
    json_decref(refs);
    refs = json_pack("[{s:s, s:s, s:i}]", "name", "x.Address", "subject", "address", "version", 5);
    assert_int_equal(kp_reg_candidate_parse(&st, NULL, person, strlen(person), refs, &c, &e), -1);
    assert_int_equal(e.code, 40402);
    json_decref(refs);
    kp_reg_state_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_are_confluents),
        cmocka_unit_test(test_ids_versions_and_dedupe),
        cmocka_unit_test(test_every_level),
        cmocka_unit_test(test_deletes_and_config),
        cmocka_unit_test(test_references),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
