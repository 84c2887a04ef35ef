/*
 * test_k8s.c — the Kubernetes API pieces (src/control/api/k8s_*.c) as pure functions: merge patch
 * (RFC 7386's examples), JSON patch (RFC 6902) and its errors, strategic merge directives,
 * label and field selectors, paging tokens, managedFields of updates, server-side apply's
 * ownership and conflicts, Table rows from the kinds' columns, the protobuf access review
 * (valid, truncated, garbage), and discovery documents.
 */
#include "unit.h"

#include "control/api/k8s.h"

#include "control/events.h"

#include <stdlib.h>
#include <string.h>

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v) fail_msg("bad JSON in the test: %s: %s", text, e.text);
    return v;
}

static void assert_json(const json_t *have, const char *want_text)
{
    json_t *want = J(want_text);
    if (!json_equal(have, want)) {
        char *h = json_dumps(have, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("have %s, want %s", h, want_text);
    }
    json_decref(want);
}

static void test_merge_patch_rfc7386(void **state)
{
    (void)state;
    static const char *cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
        {"{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":{\"b\":null,\"d\":3}}", "{\"a\":{\"c\":2,\"d\":3}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        json_t *t = J(cases[i][0]), *p = J(cases[i][1]);
        json_t *r = kp_k8s_merge_patch(t, p);
        assert_json(r, cases[i][2]);
        json_decref(r);
        json_decref(t);
        json_decref(p);
    }
}

static void test_json_patch_ops_and_errors(void **state)
{
    (void)state;
    char err[256];
    json_t *t = J("{\"spec\":{\"a\":1,\"l\":[1,2],\"x/y\":3,\"t~\":4}}");
    json_t *ops = J("[{\"op\":\"add\",\"path\":\"/spec/b\",\"value\":2},"
                    "{\"op\":\"replace\",\"path\":\"/spec/a\",\"value\":9},"
                    "{\"op\":\"add\",\"path\":\"/spec/l/-\",\"value\":3},"
                    "{\"op\":\"add\",\"path\":\"/spec/l/0\",\"value\":0},"
                    "{\"op\":\"remove\",\"path\":\"/spec/x~1y\"},"
                    "{\"op\":\"move\",\"from\":\"/spec/t~0\",\"path\":\"/spec/t\"},"
                    "{\"op\":\"copy\",\"from\":\"/spec/b\",\"path\":\"/spec/c\"},"
                    "{\"op\":\"test\",\"path\":\"/spec/c\",\"value\":2}]");
    json_t *r = kp_k8s_json_patch(t, ops, err, sizeof(err));
    assert_non_null(r);
    assert_json(r, "{\"spec\":{\"a\":9,\"b\":2,\"c\":2,\"l\":[0,1,2,3],\"t\":4}}");
    json_decref(r);
    json_decref(ops);
    static const char *bad[][2] = {
        {"[{\"op\":\"remove\",\"path\":\"/spec/nope\"}]", "operation 0 (remove /spec/nope)"},
        {"[{\"op\":\"test\",\"path\":\"/spec/a\",\"value\":2}]", "the value differs"},
        {"[{\"op\":\"add\",\"path\":\"/spec/l/7\",\"value\":2}]", "no such path"},
        {"[{\"op\":\"add\",\"path\":\"/spec/l/01\",\"value\":2}]", "no such path"},
        {"[{\"op\":\"add\",\"path\":\"/spec/a~2\",\"value\":2}]", "no such path"},
        {"[{\"op\":\"frob\",\"path\":\"/spec\"}]", "unknown op \"frob\""},
        {"[{\"op\":\"add\",\"path\":\"/spec/q\"}]", "\"value\" is required"},
        {"[{\"path\":\"/spec\"}]", "\"op\" and \"path\" are required"},
        {"[{\"op\":\"remove\",\"path\":\"\"}]", "whole document"},
        {"{\"op\":\"remove\"}", "must be an array"},
        {"[{\"op\":\"move\",\"from\":\"/spec/zz\",\"path\":\"/spec/q\"}]", "no such path"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        json_t *o = J(bad[i][0]);
        err[0] = 0;
        assert_null(kp_k8s_json_patch(t, o, err, sizeof(err)));
        if (!strstr(err, bad[i][1])) fail_msg("case %zu: %s", i, err);
        json_decref(o);
    }
    json_decref(t);
}

static void test_strategic_merge_directives(void **state)
{
    (void)state;
    char err[256];
    json_t *t = J("{\"data\":{\"a\":\"1\",\"b\":\"2\"},\"m\":{\"x\":1,\"y\":2},"
                  "\"l\":[\"p\",\"q\",\"r\"],\"k\":{\"x\":1}}");
    json_t *p = J("{\"data\":{\"a\":null,\"c\":\"3\"},\"m\":{\"$patch\":\"replace\",\"z\":3},"
                  "\"$deleteFromPrimitiveList/l\":[\"q\"],\"k\":{\"$patch\":\"delete\"},"
                  "\"$setElementOrder/l\":[\"r\",\"p\"]}");
    json_t *r = kp_k8s_strategic_patch(t, p, err, sizeof(err));
    assert_non_null(r);
    assert_json(r, "{\"data\":{\"b\":\"2\",\"c\":\"3\"},\"m\":{\"z\":3},\"l\":[\"p\",\"r\"]}");
    json_decref(r);
    json_decref(p);
    p = J("{\"m\":{\"$patch\":\"frob\"}}");
    assert_null(kp_k8s_strategic_patch(t, p, err, sizeof(err)));
    assert_non_null(strstr(err, "unknown $patch directive"));
    json_decref(p);
    p = J("{\"$patch\":\"delete\"}");
    assert_null(kp_k8s_strategic_patch(t, p, err, sizeof(err)));
    json_decref(p);
    p = J("{\"m\":{\"$retainKeys\":[\"y\"],\"w\":1}}");
    r = kp_k8s_strategic_patch(t, p, err, sizeof(err));
    assert_json(json_object_get(r, "m"), "{\"y\":2,\"w\":1}");
    json_decref(r);
    json_decref(p);
    json_decref(t);
}

static void test_selectors(void **state)
{
    (void)state;
    char err[256];
    json_t *o = J("{\"metadata\":{\"name\":\"t1\",\"namespace\":\"a\","
                  "\"labels\":{\"tier\":\"web\",\"env\":\"prod\"}}}");
    static const struct {
        const char *sel;
        int want;
    } labels[] = {
        {"", 1},
        {"tier=web", 1},
        {"tier==web,env=prod", 1},
        {"tier!=web", 0},
        {"tier!=db", 1},
        {"tier", 1},
        {"!tier", 0},
        {"!owner", 1},
        {"tier in (db, web)", 1},
        {"tier notin (db,web)", 0},
        {"env in (dev),tier=web", 0},
        {"tier in (web", -1},
        {"tier frob (web)", -1},
        {"tier web", -1},
        {"a,,b", -1},
    };
    for (size_t i = 0; i < sizeof(labels) / sizeof(*labels); i++) {
        int r = kp_k8s_label_match(o, labels[i].sel, err, sizeof(err));
        if (r != labels[i].want) fail_msg("label selector '%s': %d", labels[i].sel, r);
    }
    assert_int_equal(kp_k8s_field_match(o, "metadata.name=t1", err, sizeof(err)), 1);
    assert_int_equal(
        kp_k8s_field_match(o, "metadata.name==t1,metadata.namespace=a", err, sizeof(err)), 1);
    assert_int_equal(kp_k8s_field_match(o, "metadata.name!=t1", err, sizeof(err)), 0);
    assert_int_equal(kp_k8s_field_match(o, "metadata.namespace=b", err, sizeof(err)), 0);
    assert_int_equal(kp_k8s_field_match(o, "spec.pool=dev", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "field label not supported: spec.pool"));
    assert_int_equal(kp_k8s_field_match(o, "metadata.name", err, sizeof(err)), -1);
    json_decref(o);
}

static json_t *named_items(int n)
{
    json_t *items = json_array();
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%d", i);
        json_array_append_new(
            items, json_pack("{s:{s:s, s:s}}", "metadata", "name", name, "namespace", "ns"));
    }
    return items;
}

static void test_paging(void **state)
{
    (void)state;
    json_t *items = named_items(5);
    char *next;
    long remaining;
    assert_int_equal(kp_k8s_page(items, 2, NULL, &next, &remaining), 0);
    assert_int_equal(json_array_size(items), 2);
    assert_non_null(next);
    assert_int_equal(remaining, 3);
    json_decref(items);
    items = named_items(5);
    char *next2;
    assert_int_equal(kp_k8s_page(items, 2, next, &next2, &remaining), 0);
    assert_json(items, "[{\"metadata\":{\"name\":\"t2\",\"namespace\":\"ns\"}},"
                       "{\"metadata\":{\"name\":\"t3\",\"namespace\":\"ns\"}}]");
    json_decref(items);
    items = named_items(5);
    char *next3;
    assert_int_equal(kp_k8s_page(items, 0, next2, &next3, &remaining), 0);
    assert_int_equal(json_array_size(items), 1);
    assert_null(next3);
    json_decref(items);
    items = named_items(5);
    static const char *bad[] = {"zz", "6", "616", "00", "6e73"}; /* no '/' in the last */
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(kp_k8s_page(items, 1, bad[i], &next3, &remaining), -1);
    json_decref(items);
    free(next);
    free(next2);
}

static json_t *entry(const json_t *obj, const char *manager, const char *op)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "managedFields"), i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "manager")), manager) &&
            !strcmp(json_string_value(json_object_get(e, "operation")), op))
            return json_object_get(e, "fieldsV1");
    }
    return NULL;
}

static void test_managed_fields_and_apply(void **state)
{
    (void)state;
    /* create by "a": every field is a's */
    json_t *v1 = J("{\"kind\":\"Topic\",\"metadata\":{\"name\":\"t\",\"labels\":{\"x\":\"1\"}},"
                   "\"spec\":{\"pool\":\"dev\",\"config\":{\"partitions\":1}}}");
    kp_k8s_fields_update(v1, NULL, "a", "kafka.nais.io/v1");
    assert_json(entry(v1, "a", "Update"),
                "{\"f:metadata\":{\"f:labels\":{\"f:x\":{}}},"
                "\"f:spec\":{\"f:pool\":{},\"f:config\":{\"f:partitions\":{}}}}");
    /* update by "b" of one field: b owns it, a no longer */
    json_t *v2 = json_deep_copy(v1);
    json_object_set_new(json_object_get(json_object_get(v2, "spec"), "config"), "partitions",
                        json_integer(3));
    kp_k8s_fields_update(v2, v1, "b", "kafka.nais.io/v1");
    assert_json(entry(v2, "b", "Update"), "{\"f:spec\":{\"f:config\":{\"f:partitions\":{}}}}");
    assert_json(entry(v2, "a", "Update"),
                "{\"f:metadata\":{\"f:labels\":{\"f:x\":{}}},\"f:spec\":{\"f:pool\":{}}}");
    /* apply by "c" changing b's field: a conflict naming b and the field */
    json_t *cfg = J("{\"kind\":\"Topic\",\"metadata\":{\"name\":\"t\"},"
                    "\"spec\":{\"pool\":\"dev\",\"config\":{\"partitions\":5}}}");
    json_t *conflicts = NULL;
    assert_null(kp_k8s_apply(v2, cfg, "c", 0, "kafka.nais.io/v1", &conflicts));
    assert_json(conflicts, "[{\"field\":\".spec.config.partitions\",\"manager\":\"b\"}]");
    json_decref(conflicts);
    /* forced: c takes it; pool is co-owned (same value, no conflict) */
    json_t *v3 = kp_k8s_apply(v2, cfg, "c", 1, "kafka.nais.io/v1", &conflicts);
    assert_non_null(v3);
    assert_null(conflicts);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(v3, "spec"), "config"), "partitions")),
                     5);
    assert_null(entry(v3, "b", "Update")); /* owned nothing any more: dropped */
    assert_json(entry(v3, "c", "Apply"),
                "{\"f:spec\":{\"f:pool\":{},\"f:config\":{\"f:partitions\":{}}}}");
    assert_json(entry(v3, "a", "Update"),
                "{\"f:metadata\":{\"f:labels\":{\"f:x\":{}}},\"f:spec\":{\"f:pool\":{}}}");
    /* c applies again without partitions: removed (nobody else owns it); pool stays (a has
     * it too) */
    json_t *cfg2 = J("{\"kind\":\"Topic\",\"metadata\":{\"name\":\"t\"},\"spec\":{}}");
    json_t *v4 = kp_k8s_apply(v3, cfg2, "c", 0, "kafka.nais.io/v1", &conflicts);
    assert_non_null(v4);
    assert_json(json_object_get(v4, "spec"), "{\"pool\":\"dev\",\"config\":{}}");
    json_decref(v1);
    json_decref(v2);
    json_decref(v3);
    json_decref(v4);
    json_decref(cfg);
    json_decref(cfg2);
}

static void test_table_has_the_kinds_columns(void **state)
{
    (void)state;
    const kp_kind_t *k = NULL;
    for (size_t i = 0; i < kp_kinds_count; i++)
        if (!strcmp(kp_kinds[i].kind, "Topic")) k = &kp_kinds[i];
    assert_non_null(k);
    json_t *items = J("[{\"metadata\":{\"name\":\"orders\",\"namespace\":\"a\","
                      "\"creationTimestamp\":\"2020-01-01T00:00:00Z\"},"
                      "\"spec\":{\"pool\":\"dev\"},\"status\":{\"synchronizationState\":"
                      "\"RolloutComplete\",\"fullyQualifiedName\":\"a.orders\"}}]");
    json_t *t = kp_k8s_table(k, items, "7", NULL);
    json_t *defs = json_object_get(t, "columnDefinitions");
    assert_string_equal(json_string_value(json_object_get(json_array_get(defs, 0), "name")),
                        "NAME");
    assert_string_equal(json_string_value(json_object_get(json_array_get(defs, 3), "name")),
                        "FULLY QUALIFIED NAME");
    json_t *row = json_array_get(json_object_get(t, "rows"), 0);
    json_t *cells = json_object_get(row, "cells");
    assert_string_equal(json_string_value(json_array_get(cells, 0)), "orders");
    assert_string_equal(json_string_value(json_array_get(cells, 2)), "RolloutComplete");
    assert_string_equal(json_string_value(json_array_get(cells, 5)), "1"); /* the default */
    assert_string_equal(json_string_value(json_object_get(json_object_get(row, "object"), "kind")),
                        "PartialObjectMetadata");
    json_decref(t);
    t = kp_k8s_table(k, items, "7", "None");
    assert_null(json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object"));
    json_decref(t);
    json_decref(items);
    assert_true(
        kp_k8s_wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"));
    assert_false(kp_k8s_wants_table("application/json"));
    assert_false(kp_k8s_wants_table(NULL));
}

/* A protobuf length-delimited field. */
static size_t pb_field(uint8_t *out, int num, const uint8_t *data, size_t len)
{
    size_t n = 0;
    out[n++] = (uint8_t)(num << 3 | 2);
    out[n++] = (uint8_t)len; /* the test's messages are short */
    memcpy(out + n, data, len);
    return n + len;
}

static void test_access_review_protobuf(void **state)
{
    (void)state;
    uint8_t attrs[64], spec[80], raw[100], env[160];
    size_t a = 0;
    a += pb_field(attrs + a, 1, (const uint8_t *)"team-b", 6);
    a += pb_field(attrs + a, 2, (const uint8_t *)"create", 6);
    a += pb_field(attrs + a, 3, (const uint8_t *)"kafka.nais.io", 13);
    a += pb_field(attrs + a, 5, (const uint8_t *)"topics", 6);
    size_t s = pb_field(spec, 1, attrs, a);
    size_t r = pb_field(raw, 2, spec, s);
    memcpy(env, "k8s\0", 4);
    size_t e = 4 + pb_field(env + 4, 2, raw, r);
    json_t *obj = kp_k8s_access_review_from_protobuf(env, e);
    assert_json(obj, "{\"spec\":{\"resourceAttributes\":{\"namespace\":\"team-b\","
                     "\"verb\":\"create\",\"group\":\"kafka.nais.io\",\"resource\":\"topics\"}}}");
    json_decref(obj);
    for (size_t cut = 0; cut < e; cut++) { /* every truncation: an error or a subset */
        json_t *o = kp_k8s_access_review_from_protobuf(env, cut);
        json_decref(o);
    }
    assert_null(kp_k8s_access_review_from_protobuf((const uint8_t *)"k8s", 3));
    assert_null(kp_k8s_access_review_from_protobuf((const uint8_t *)"{\"a\":1}", 7));
    static const uint8_t bad[] = {'k', '8', 's', 0, 0x12, 0x7f, 0x01};
    assert_null(kp_k8s_access_review_from_protobuf(bad, sizeof(bad)));
}

/* A map entry {key = 1, value = 2}. */
static size_t pb_entry(uint8_t *out, int num, const char *k, const uint8_t *v, size_t vn)
{
    uint8_t e[64];
    size_t n = pb_field(e, 1, (const uint8_t *)k, strlen(k));
    n += pb_field(e + n, 2, v, vn);
    return pb_field(out, num, e, n);
}

static void test_secret_protobuf(void **state)
{
    (void)state;
    uint8_t md[96], raw[200], env[240];
    size_t m = 0;
    m += pb_field(md + m, 1, (const uint8_t *)"s1", 2);
    m += pb_field(md + m, 3, (const uint8_t *)"team-a", 6);
    m += pb_entry(md + m, 11, "app", (const uint8_t *)"x", 1);
    size_t r = pb_field(raw, 1, md, m);
    r += pb_entry(raw + r, 2, "bin", (const uint8_t *)"a\0\xff", 3); /* bytes: base64 */
    r += pb_entry(raw + r, 4, "plain", (const uint8_t *)"hello", 5);
    r += pb_field(raw + r, 3, (const uint8_t *)"Opaque", 6);
    raw[r++] = 5 << 3; /* immutable: a varint, skipped */
    raw[r++] = 1;
    memcpy(env, "k8s\0", 4);
    size_t e = 4 + pb_field(env + 4, 2, raw, r);
    json_t *obj = kp_k8s_secret_from_protobuf(env, e);
    assert_json(obj, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s1\","
                     "\"namespace\":\"team-a\",\"labels\":{\"app\":\"x\"}},\"data\":{\"bin\":"
                     "\"YQD/\"},\"stringData\":{\"plain\":\"hello\"},\"type\":\"Opaque\"}");
    json_decref(obj);
    for (size_t cut = 0; cut < e; cut++) json_decref(kp_k8s_secret_from_protobuf(env, cut));
    /* a NUL inside a name is not a Kubernetes string */
    uint8_t bad_md[16], bad_raw[32], bad[48];
    size_t bm = pb_field(bad_md, 1, (const uint8_t *)"a\0b", 3);
    size_t br = pb_field(bad_raw, 1, bad_md, bm);
    memcpy(bad, "k8s\0", 4);
    size_t be = 4 + pb_field(bad + 4, 2, bad_raw, br);
    assert_null(kp_k8s_secret_from_protobuf(bad, be));
}

static void test_discovery_documents(void **state)
{
    (void)state;
    json_t *body;
    unsigned code;
    assert_int_equal(kp_k8s_discovery("/apis/kafka.nais.io/v1", &body, &code), 1);
    assert_int_equal(code, 200);
    assert_string_equal(json_string_value(json_object_get(body, "groupVersion")),
                        "kafka.nais.io/v1");
    json_decref(body);
    assert_int_equal(kp_k8s_discovery("/apis", &body, &code), 1);
    assert_true(json_array_size(json_object_get(body, "groups")) >= 4);
    json_decref(body);
    assert_int_equal(kp_k8s_discovery("/openapi/v3/apis/kafka.nais.io/v1", &body, &code), 1);
    json_t *topic = json_object_get(json_object_get(json_object_get(body, "components"), "schemas"),
                                    "io.nais.kafka.v1.Topic");
    assert_non_null(topic);
    json_t *parts = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(topic, "properties"), "spec"),
                                "properties"),
                "config"),
            "properties"),
        "partitions");
    assert_string_equal(json_string_value(json_object_get(parts, "type")), "integer");
    json_decref(body);
    assert_int_equal(kp_k8s_discovery("/apis/kafka.nais.io/v2", &body, &code), 0);
    assert_int_equal(kp_k8s_discovery("/apis/nope.io", &body, &code), 0);
    assert_int_equal(kp_k8s_discovery("/openapi/v3/apis/nope.io/v1", &body, &code), 0);
    /* OpenAPI v2: Swagger 2.0 with the same schemas, and its protobuf (gnostic's Document:
     * field 1 swagger, 9 definitions) */
    assert_int_equal(kp_k8s_discovery("/openapi/v2", &body, &code), 1);
    assert_string_equal(json_string_value(json_object_get(body, "swagger")), "2.0");
    json_t *v2topic =
        json_object_get(json_object_get(body, "definitions"), "io.nais.kafka.v1.Topic");
    assert_non_null(v2topic);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(v2topic, "x-kubernetes-group-version-kind"), 0),
            "kind")),
        "Topic");
    size_t pblen;
    uint8_t *pb = kp_k8s_openapi_v2_protobuf(body, &pblen);
    assert_true(pblen > 1000);
    assert_memory_equal(pb,
                        "\x0a\x03"
                        "2.0",
                        5);
    assert_non_null(memmem(pb, pblen, "io.nais.kafka.v1.Topic", 22));
    assert_non_null(memmem(pb, pblen, "x-kubernetes-group-version-kind", 31));
    free(pb);
    json_decref(body);
    assert_int_equal(kp_k8s_discovery("/openapi/v2/x", &body, &code), 0);
}

/* Events: recorded, counted when repeated, bounded, served with involvedObject selectors. */
static void test_events(void **state)
{
    (void)state;
    kp_events_reset();
    int64_t rv0 = kp_events_rv();
    assert_true(rv0 > (int64_t)1 << 50); /* above any earlier process's */
    json_t *topic = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}}", "apiVersion",
                              "kafka.nais.io/v1", "kind", "Topic", "metadata", "name", "t1",
                              "namespace", "ns1", "uid", "u-1", "resourceVersion", "7");
    json_t *pool = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "kpool.dev/v1", "kind", "Pool",
                             "metadata", "name", "dev");
    kp_event_record(topic, "Normal", "RolloutComplete", "synchronized (%d partitions)", 3);
    kp_event_record(topic, "Normal", "RolloutComplete", "synchronized (%d partitions)", 3);
    kp_event_record(topic, "Warning", "FailedPrepare", "spec.config.partitions: %s", "bad");
    kp_event_record(pool, "Normal", "Ready", "reachable");
    int64_t rv;
    json_t *all = kp_events_list(NULL, &rv);
    assert_int_equal(json_array_size(all), 3); /* the repeat is counted, not added */
    assert_int_equal(rv - rv0, 4);
    json_decref(all);
    json_t *ns1 = kp_events_list("ns1", &rv);
    assert_int_equal(json_array_size(ns1), 2);
    json_t *first = json_array_get(ns1, 0);
    assert_string_equal(json_string_value(json_object_get(first, "reason")), "RolloutComplete");
    assert_int_equal(json_integer_value(json_object_get(first, "count")), 2);
    json_t *io = json_object_get(first, "involvedObject");
    assert_string_equal(json_string_value(json_object_get(io, "uid")), "u-1");
    assert_string_equal(json_string_value(json_object_get(io, "kind")), "Topic");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(first, "source"), "component")),
        "kpool-controller");
    json_decref(ns1);
    json_t *dflt = kp_events_list("default", &rv); /* a cluster-scoped object's */
    assert_int_equal(json_array_size(dflt), 1);
    json_decref(dflt);

    /* served: kubectl describe's field selector, a Table, a name, bad input */
    kp_k8s_events_req_t q = {.ns = "ns1",
                             .field_selector =
                                 "involvedObject.name=t1,involvedObject.namespace="
                                 "ns1,involvedObject.kind=Topic,involvedObject.uid=u-1",
                             .limit = "500"};
    unsigned code;
    json_t *body = kp_k8s_events_answer(&q, &code);
    assert_int_equal(code, 200);
    assert_string_equal(json_string_value(json_object_get(body, "kind")), "EventList");
    assert_int_equal(json_array_size(json_object_get(body, "items")), 2);
    json_decref(body);
    q.field_selector = "type=Warning,source=kpool-controller";
    body = kp_k8s_events_answer(&q, &code);
    assert_int_equal(json_array_size(json_object_get(body, "items")), 1);
    json_decref(body);
    q.field_selector = "involvedObject.uid=other";
    body = kp_k8s_events_answer(&q, &code);
    assert_int_equal(json_array_size(json_object_get(body, "items")), 0);
    json_decref(body);
    q.field_selector = "spec.x=1";
    body = kp_k8s_events_answer(&q, &code);
    assert_int_equal(code, 400);
    json_decref(body);
    q.field_selector = NULL;
    q.limit = "1";
    body = kp_k8s_events_answer(&q, &code);
    assert_int_equal(json_array_size(json_object_get(body, "items")), 1);
    assert_non_null(json_object_get(json_object_get(body, "metadata"), "continue"));
    json_decref(body);
    q.limit = NULL;
    q.table = 1;
    body = kp_k8s_events_answer(&q, &code);
    assert_string_equal(json_string_value(json_object_get(body, "kind")), "Table");
    json_t *cells = json_object_get(json_array_get(json_object_get(body, "rows"), 0), "cells");
    assert_string_equal(json_string_value(json_array_get(cells, 3)), "topic/t1");
    json_decref(body);
    q.table = 0;
    q.name = "t1.nope";
    body = kp_k8s_events_answer(&q, &code);
    assert_int_equal(code, 404);
    json_decref(body);

    char ns[64], name[64];
    assert_int_equal(kp_k8s_events_route("/api/v1/events", ns, sizeof(ns), name, sizeof(name)), 1);
    assert_string_equal(ns, "");
    assert_int_equal(
        kp_k8s_events_route("/api/v1/namespaces/a/events/b", ns, sizeof(ns), name, sizeof(name)),
        1);
    assert_string_equal(name, "b");
    assert_int_equal(
        kp_k8s_events_route("/api/v1/namespaces/a/events/b/c", ns, sizeof(ns), name, sizeof(name)),
        0);
    assert_int_equal(kp_k8s_events_route("/api/v1/events/b", ns, sizeof(ns), name, sizeof(name)),
                     0);
    assert_int_equal(kp_k8s_events_route("/api/v1/secrets", ns, sizeof(ns), name, sizeof(name)), 0);

    /* bounded: the oldest go beyond KP_EVENTS_MAX */
    for (int i = 0; i < KP_EVENTS_MAX + 10; i++)
        kp_event_record(topic, "Normal", "Tick", "tick %d", i);
    all = kp_events_list(NULL, &rv);
    assert_int_equal(json_array_size(all), KP_EVENTS_MAX);
    json_decref(all);
    kp_events_reset();
    json_decref(topic);
    json_decref(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_patch_rfc7386),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_json_patch_ops_and_errors),
        cmocka_unit_test(test_strategic_merge_directives),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_paging),
        cmocka_unit_test(test_managed_fields_and_apply),
        cmocka_unit_test(test_table_has_the_kinds_columns),
        cmocka_unit_test(test_access_review_protobuf),
        cmocka_unit_test(test_secret_protobuf),
        cmocka_unit_test(test_discovery_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
