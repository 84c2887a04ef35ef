/*
 * test_registry_avro.c — registry/avro_schema and registry/avro_compat: what the parser
 * accepts and refuses (with the place named), the canonical form (whitespace, key order and
 * name spelling dedupe; docs and defaults do not), and every schema-resolution rule with a
 * concrete reader/writer pair in both directions.
 */
#include "unit.h"

#include "registry/avro_compat.h"
#include "registry/avro_schema.h"

static kp_avro_schema_t *parse(const char *text)
{
    char err[600];
    kp_avro_schema_t *s = kp_avro_parse(text, strlen(text), NULL, NULL, 0, err, sizeof(err));
    if (!s) fprintf(stderr, "parse failed: %s\n  for %s\n", err, text);
    return s;
}

/* Asserts text is refused with an error containing want. */
static void refused(const char *text, const char *want)
{
    char err[600];
    kp_avro_schema_t *s = kp_avro_parse(text, strlen(text), NULL, NULL, 0, err, sizeof(err));
    if (s || !strstr(err, want))
        fprintf(stderr, "for %s\n  got: %s\n  want: %s\n", text, s ? "accepted" : err, want);
    assert_null(s);
    assert_non_null(strstr(err, want));
}

/* 1 when reader can read writer's data. */
static int reads(const char *reader, const char *writer)
{
    kp_avro_schema_t *r = parse(reader), *w = parse(writer);
    assert_non_null(r);
    assert_non_null(w);
    json_t *msgs = json_array();
    int ok = kp_avro_can_read(r, w, msgs);
    /* a failure always says why; success says nothing */
    assert_int_equal(ok, json_array_size(msgs) == 0);
    json_decref(msgs);
    kp_avro_schema_free(r);
    kp_avro_schema_free(w);
    return ok;
}

static void test_parse_refuses_invalid(void **state)
{
    (void)state;
    refused("{\"type\":", "not valid JSON");
    refused("\"foo\"", "unknown type \"foo\"");
    refused("{\"type\":\"record\",\"fields\":[]}", "needs a \"name\"");
    refused("{\"type\":\"record\",\"name\":\"R\"}", "needs a \"fields\" array");
    refused("{\"type\":\"record\",\"name\":\"1R\",\"fields\":[]}", "invalid name");
    refused("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
            "{\"name\":\"a\",\"type\":\"long\"}]}",
            "fields[1]: field \"a\" is defined twice");
    refused("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
            "\"default\":\"x\"}]}",
            "fields[0].default: default value must be an int");
    refused("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":[\"string\","
            "\"null\"],\"default\":null}]}",
            "default value must be string");
    refused("[\"int\",\"int\"]", "already has a branch of type int");
    refused("[\"int\",[\"long\"]]", "may not contain a union");
    refused("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}", "appears twice");
    refused("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}",
            "not a symbol");
    refused("{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}", "needs a \"size\"");
    refused("{\"type\":\"array\"}", "needs \"items\"");
    refused("{\"type\":\"record\",\"name\":\"int\",\"fields\":[]}", "cannot be redefined");
    refused("[{\"type\":\"fixed\",\"name\":\"F\",\"size\":1},{\"type\":\"fixed\",\"name\":\"F\","
            "\"size\":2}]",
            "defined twice");
    refused("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}],"
            "\"fields\":[]}",
            "not valid JSON"); /* duplicate keys */
    /* nesting bound */
    char deep[4096] = "";
    for (int i = 0; i < 100; i++) strcat(deep, "{\"type\":\"array\",\"items\":");
    strcat(deep, "\"int\"");
    for (int i = 0; i < 100; i++) strcat(deep, "}");
    refused(deep, "nested more than");
}

static void test_parse_names_and_references(void **state)
{
    (void)state;
    /* namespaces: nested types inherit, references resolve relative, then absolute */
    kp_avro_schema_t *s =
        parse("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a.b\",\"fields\":["
              "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}},"
              "{\"name\":\"e2\",\"type\":\"E\"},{\"name\":\"e3\",\"type\":\"a.b.E\"},"
              "{\"name\":\"next\",\"type\":[\"null\",\"R\"],\"default\":null}]}");
    assert_non_null(s);
    assert_string_equal(s->root->fullname, "a.b.R");
    assert_string_equal(s->root->fields[0].type->fullname, "a.b.E");
    assert_ptr_equal(s->root->fields[1].type, s->root->fields[0].type);
    assert_ptr_equal(s->root->fields[3].type->branches[1], s->root); /* recursion */
    kp_avro_schema_free(s);
}

static void test_canonical_dedupes_spelling_not_meaning(void **state)
{
    (void)state;
    const char *a =
        "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"fields\":"
        "[{\"name\":\"x\",\"type\":\"int\"},{\"name\":\"y\",\"type\":{\"type\":\"string\"}}]}";
    const char *b = "  {\"fields\": [ {\"type\":\"int\", \"name\":\"x\"},\n "
                    "{\"name\":\"y\",\"type\":\"string\"}],"
                    " \"name\": \"n.R\", \"type\": \"record\"}";
    const char *doc = "{\"type\":\"record\",\"name\":\"n.R\",\"doc\":\"hello\",\"fields\":"
                      "[{\"name\":\"x\",\"type\":\"int\"},{\"name\":\"y\",\"type\":\"string\"}]}";
    const char *def =
        "{\"type\":\"record\",\"name\":\"n.R\",\"fields\":"
        "[{\"name\":\"x\",\"type\":\"int\",\"default\":1},{\"name\":\"y\",\"type\":\"string\"}]}";
    kp_avro_schema_t *sa = parse(a), *sb = parse(b), *sd = parse(doc), *sf = parse(def);
    assert_string_equal(sa->canonical, sb->canonical);
    assert_string_equal(sa->canonical,
                        "{\"type\":\"record\",\"name\":\"n.R\",\"fields\":[{\"name\":\"x\","
                        "\"type\":\"int\"},{\"name\":\"y\",\"type\":\"string\"}]}");
    assert_string_not_equal(sa->canonical, sd->canonical);
    assert_string_not_equal(sa->canonical, sf->canonical);
    /* the canonical form parses to itself */
    kp_avro_schema_t *again = parse(sd->canonical);
    assert_string_equal(again->canonical, sd->canonical);
    kp_avro_schema_free(again);
    /* logical types and custom attributes are kept, sorted */
    kp_avro_schema_t *lt =
        parse("{\"type\":\"bytes\",\"scale\":2,\"precision\":4,\"logicalType\":\"decimal\"}");
    assert_string_equal(
        lt->canonical,
        "{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":4,\"scale\":2}");
    /* a null-namespace type inside a namespaced record keeps its namespace explicit */
    kp_avro_schema_t *nn =
        parse("{\"type\":\"record\",\"name\":\"a.R\",\"fields\":[{\"name\":\"f\",\"type\":"
              "{\"type\":\"fixed\",\"name\":\"F\",\"namespace\":\"\",\"size\":2}}]}");
    assert_non_null(strstr(nn->canonical, "\"name\":\"F\",\"namespace\":\"\""));
    kp_avro_schema_t *nn2 = parse(nn->canonical);
    assert_string_equal(nn2->canonical, nn->canonical);
    assert_string_equal(nn2->root->fields[0].type->fullname, "F");
    kp_avro_schema_free(nn);
    kp_avro_schema_free(nn2);
    kp_avro_schema_free(lt);
    kp_avro_schema_free(sa);
    kp_avro_schema_free(sb);
    kp_avro_schema_free(sd);
    kp_avro_schema_free(sf);
}

#define REC(fields) "{\"type\":\"record\",\"name\":\"R\",\"fields\":[" fields "]}"

static void test_compat_primitives_and_promotions(void **state)
{
    (void)state;
    assert_true(reads("\"int\"", "\"int\""));
    assert_true(reads("\"long\"", "\"int\""));
    assert_true(reads("\"float\"", "\"int\""));
    assert_true(reads("\"double\"", "\"int\""));
    assert_true(reads("\"float\"", "\"long\""));
    assert_true(reads("\"double\"", "\"long\""));
    assert_true(reads("\"double\"", "\"float\""));
    assert_true(reads("\"bytes\"", "\"string\""));
    assert_true(reads("\"string\"", "\"bytes\""));
    /* never narrowing */
    assert_false(reads("\"int\"", "\"long\""));
    assert_false(reads("\"long\"", "\"double\""));
    assert_false(reads("\"float\"", "\"double\""));
    assert_false(reads("\"string\"", "\"int\""));
    assert_false(reads("\"null\"", "\"boolean\""));
}

static void test_compat_records(void **state)
{
    (void)state;
    const char *v1 = REC("{\"name\":\"a\",\"type\":\"int\"}");
    const char *v2_nodefault =
        REC("{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"string\"}");
    const char *v2_default = REC(
        "{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"string\",\"default\":\"x\"}");
    /* a new field without default: the new reader cannot read old data (not BACKWARD) */
    assert_false(reads(v2_nodefault, v1));
    /* but old readers skip it (FORWARD) */
    assert_true(reads(v1, v2_nodefault));
    /* with a default both ways */
    assert_true(reads(v2_default, v1));
    assert_true(reads(v1, v2_default));
    /* removing a field without default: old readers break */
    assert_false(reads(v2_nodefault, v1));
    /* field type promotion inside a record */
    assert_true(reads(REC("{\"name\":\"a\",\"type\":\"long\"}"), v1));
    assert_false(reads(v1, REC("{\"name\":\"a\",\"type\":\"long\"}")));
    /* names must match (unqualified), or an alias */
    assert_true(reads("{\"type\":\"record\",\"name\":\"x.R\",\"fields\":[]}",
                      "{\"type\":\"record\",\"name\":\"y.R\",\"fields\":[]}"));
    assert_false(reads("{\"type\":\"record\",\"name\":\"S\",\"fields\":[]}", REC("")));
    assert_true(
        reads("{\"type\":\"record\",\"name\":\"S\",\"aliases\":[\"R\"],\"fields\":[]}", REC("")));
    /* field aliases rename */
    assert_true(reads(REC("{\"name\":\"b\",\"aliases\":[\"a\"],\"type\":\"int\"}"), v1));
    /* recursive records terminate */
    const char *list =
        "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\",\"type\":\"int\"},"
        "{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    const char *list_long =
        "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\",\"type\":\"long\"},"
        "{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    assert_true(reads(list_long, list));
    assert_false(reads(list, list_long));
}

static void test_compat_enums_fixed_arrays_maps(void **state)
{
    (void)state;
    const char *e2 = "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}";
    const char *e3 = "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}";
    const char *e3d =
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"],\"default\":\"A\"}";
    assert_true(reads(e3, e2));  /* reader has every writer symbol */
    assert_false(reads(e2, e3)); /* C unknown to the reader */
    assert_true(reads(e3d, e3)); /* unless the reader has a default */
    assert_false(reads("{\"type\":\"enum\",\"name\":\"F\",\"symbols\":[\"A\",\"B\"]}", e2));
    assert_true(reads("{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
                      "{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}"));
    assert_false(reads("{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
                       "{\"type\":\"fixed\",\"name\":\"F\",\"size\":8}"));
    assert_false(reads("{\"type\":\"fixed\",\"name\":\"G\",\"size\":4}",
                       "{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}"));
    assert_true(
        reads("{\"type\":\"array\",\"items\":\"long\"}", "{\"type\":\"array\",\"items\":\"int\"}"));
    assert_false(
        reads("{\"type\":\"array\",\"items\":\"int\"}", "{\"type\":\"array\",\"items\":\"long\"}"));
    assert_true(reads("{\"type\":\"map\",\"values\":\"double\"}",
                      "{\"type\":\"map\",\"values\":\"float\"}"));
    assert_false(
        reads("{\"type\":\"map\",\"values\":\"int\"}", "{\"type\":\"array\",\"items\":\"int\"}"));
}

static void test_compat_unions(void **state)
{
    (void)state;
    /* writer union: every branch must be readable */
    assert_true(reads("[\"null\",\"string\",\"long\"]", "[\"null\",\"int\"]"));
    assert_false(reads("[\"null\",\"string\"]", "[\"null\",\"int\"]"));
    /* reader union, plain writer: some branch reads it */
    assert_true(reads("[\"null\",\"long\"]", "\"int\""));
    assert_false(reads("[\"null\",\"string\"]", "\"int\""));
    /* plain reader, writer union: only when it reads every branch */
    assert_true(reads("\"long\"", "[\"int\",\"long\"]"));
    assert_false(reads("\"string\"", "[\"null\",\"string\"]"));
    /* adding a branch: old readers fail, new readers fine */
    assert_true(reads("[\"null\",\"string\",\"int\"]", "[\"null\",\"string\"]"));
    assert_false(reads("[\"null\",\"string\"]", "[\"null\",\"string\",\"int\"]"));
}

static void test_compat_messages(void **state)
{
    (void)state;
    kp_avro_schema_t *r =
        parse(REC("{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"string\"}"));
    kp_avro_schema_t *w = parse(REC("{\"name\":\"a\",\"type\":\"string\"}"));
    json_t *msgs = json_array();
    assert_false(kp_avro_can_read(r, w, msgs));
    assert_int_equal(json_array_size(msgs), 2); /* both problems, not just the first */
    assert_non_null(strstr(json_string_value(json_array_get(msgs, 0)), "TYPE_MISMATCH"));
    assert_non_null(strstr(json_string_value(json_array_get(msgs, 0)), "/fields/0/type"));
    assert_non_null(
        strstr(json_string_value(json_array_get(msgs, 1)), "READER_FIELD_MISSING_DEFAULT_VALUE"));
    json_decref(msgs);
    kp_avro_schema_free(r);
    kp_avro_schema_free(w);
}

static void test_references(void **state)
{
    (void)state;
    const char *ref = "{\"type\":\"record\",\"name\":\"com.x.Address\",\"fields\":[{\"name\":"
                      "\"city\",\"type\":\"string\"}]}";
    const char *main_text = "{\"type\":\"record\",\"name\":\"com.x.Person\",\"fields\":[{\"name\":"
                            "\"home\",\"type\":\"Address\"}]}";
    size_t len = strlen(ref);
    char err[400];
    kp_avro_schema_t *s =
        kp_avro_parse(main_text, strlen(main_text), &ref, &len, 1, err, sizeof(err));
    assert_non_null(s);
    /* the referenced type is named, not inlined */
    assert_string_equal(
        s->canonical,
        "{\"type\":\"record\",\"name\":\"com.x.Person\",\"fields\":[{\"name\":\"home\","
        "\"type\":\"com.x.Address\"}]}");
    kp_avro_schema_free(s);
    assert_null(kp_avro_parse(main_text, strlen(main_text), NULL, NULL, 0, err, sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_refuses_invalid),
        cmocka_unit_test(test_parse_names_and_references),
        cmocka_unit_test(test_canonical_dedupes_spelling_not_meaning),
        cmocka_unit_test(test_compat_primitives_and_promotions),
        cmocka_unit_test(test_compat_records),
        cmocka_unit_test(test_compat_enums_fixed_arrays_maps),
        cmocka_unit_test(test_compat_unions),
        cmocka_unit_test(test_compat_messages),
        cmocka_unit_test(test_references),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
