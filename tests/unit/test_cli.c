/*
 * test_cli.c — the pure parts of the resource commands (src/cli/resources.c,
 * resource_print.c, client.c): kind names, REST paths, times and ages, manifests and
 * namespace defaulting, tables and describe from JSON fixtures, Warning headers, Status
 * errors and the config file. The HTTP side is tested against a fake API in
 * tests/integration/test_cli.py.
 */
#include "unit.h"

#include "cli/client.h"
#include "cli/resources.h"

#include <jansson.h>

/* 2026-11-27T07:00:00Z: the "now" of every rendering test. */
#define NOW ((time_t)1795762800)

static json_t *fixture(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v) fprintf(stderr, "fixture: %s (line %d)\n", e.text, e.line);
    assert_non_null(v);
    return v;
}

/* Renders into a NUL-terminated string the caller frees. */
static char *table_of(const char *kind, const char *items_json, int wide, int with_ns)
{
    const kp_kind_t *k = kp_kind_find(kind);
    assert_non_null(k);
    json_t *items = fixture(items_json);
    kp_buf_t b;
    kp_buf_init(&b);
    kp_table_render(k, items, wide, with_ns, NOW, &b);
    kp_buf_append(&b, "", 1);
    json_decref(items);
    return (char *)b.data;
}

/* ---- kinds ---- */

static void test_kind_names(void **state)
{
    static const struct {
        const char *typed, *kind;
    } cases[] = {
        {"topic", "Topic"},
        {"topics", "Topic"},
        {"Topic", "Topic"},
        {"TOPICS", "Topic"},
        {"topics.kafka.nais.io", "Topic"},
        {"stream", "Stream"},
        {"streams", "Stream"},
        {"aivenapplication", "AivenApplication"},
        {"aivenapplications", "AivenApplication"},
        {"aivenapp", "AivenApplication"},
        {"aivenapps", "AivenApplication"},
        {"application", "Application"},
        {"applications", "Application"},
        {"app", "Application"},
        {"apps", "Application"},
        {"pool", "Pool"},
        {"pools", "Pool"},
        {"secret", "Secret"},
        {"secrets", "Secret"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const kp_kind_t *k = kp_kind_find(cases[i].typed);
        assert_non_null(k);
        assert_string_equal(k->kind, cases[i].kind);
    }
    assert_null(kp_kind_find("widgets"));
    assert_null(kp_kind_find(""));
    assert_null(kp_kind_find("topic.aiven.nais.io")); /* wrong group */
    assert_null(kp_kind_find("topicss"));
    assert_null(kp_kind_find("aivenappx"));
    assert_int_equal(kp_kind_find("pool")->namespaced, 0);
    assert_int_equal(kp_kind_find("secret")->namespaced, 1);
}

static void test_kind_for_manifest(void **state)
{
    char err[256];
    const kp_kind_t *k = kp_kind_for("kafka.nais.io/v1", "Topic", err, sizeof(err));
    assert_non_null(k);
    assert_string_equal(k->plural, "topics");
    assert_non_null(kp_kind_for("nais.io/v1alpha1", "Application", err, sizeof(err)));
    assert_non_null(kp_kind_for("v1", "Secret", err, sizeof(err)));
    assert_null(kp_kind_for("kafka.nais.io/v2", "Topic", err, sizeof(err)));
    assert_non_null(strstr(err, "kafka.nais.io/v1"));
    assert_null(kp_kind_for("v1", "ConfigMap", err, sizeof(err)));
    assert_non_null(strstr(err, "unknown kind \"ConfigMap\""));
    assert_non_null(strstr(err, "Topic, Stream, AivenApplication"));
    assert_null(kp_kind_for("kafka.nais.io/v1", "topic", err, sizeof(err))); /* Kind is exact */

    kp_buf_t b;
    kp_buf_init(&b);
    kp_kind_ref(k, "orders", &b);
    kp_kind_ref(kp_kind_find("secret"), "creds", &b);
    kp_kind_ref(kp_kind_find("pool"), NULL, &b);
    kp_buf_append(&b, "", 1);
    assert_string_equal((char *)b.data, "topic.kafka.nais.io/orderssecret/credspool.kpool.dev");
    kp_buf_free(&b);
}

/* ---- paths ---- */

static void expect_path(const char *kind, const char *ns, const char *name, const char *sel,
                        const char *want)
{
    char err[256];
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(kp_resource_path(kp_kind_find(kind), ns, name, sel, &b, err, sizeof(err)), 0);
    kp_buf_append(&b, "", 1);
    assert_string_equal((char *)b.data, want);
    kp_buf_free(&b);
}

static void test_paths(void **state)
{
    expect_path("topic", "team-a", "orders", NULL,
                "/apis/kafka.nais.io/v1/namespaces/team-a/topics/orders");
    expect_path("topic", "team-a", NULL, NULL, "/apis/kafka.nais.io/v1/namespaces/team-a/topics");
    expect_path("topic", NULL, NULL, NULL, "/apis/kafka.nais.io/v1/topics");
    expect_path("app", "t", "x", NULL, "/apis/nais.io/v1alpha1/namespaces/t/applications/x");
    expect_path("aivenapp", "t", NULL, NULL,
                "/apis/aiven.nais.io/v1/namespaces/t/aivenapplications");
    expect_path("stream", "t", "s", NULL, "/apis/kafka.nais.io/v1/namespaces/t/streams/s");
    expect_path("secret", "team-a", "creds", NULL, "/api/v1/namespaces/team-a/secrets/creds");
    expect_path("secret", NULL, NULL, NULL, "/api/v1/secrets");
    /* cluster-scoped: the namespace is ignored */
    expect_path("pool", "team-a", "dev", NULL, "/apis/kpool.dev/v1/pools/dev");
    expect_path("pool", NULL, NULL, NULL, "/apis/kpool.dev/v1/pools");
    /* selectors and odd names are percent-encoded */
    expect_path("topic", "a", NULL, "app=shop,team=a",
                "/apis/kafka.nais.io/v1/namespaces/a/topics?labelSelector=app%3Dshop%2Cteam%3Da");
    expect_path("topic", "a", "x/../y?z", NULL,
                "/apis/kafka.nais.io/v1/namespaces/a/topics/x%2F..%2Fy%3Fz");
    expect_path("topic", "a", "o", "app=x", "/apis/kafka.nais.io/v1/namespaces/a/topics/o");

    char err[256];
    kp_buf_t b;
    kp_buf_init(&b);
    const kp_kind_t *k = kp_kind_find("topic");
    assert_int_equal(kp_resource_path(k, "a", "..", NULL, &b, err, sizeof(err)), -1);
    assert_int_equal(kp_resource_path(k, "a", "", NULL, &b, err, sizeof(err)), -1);
    assert_int_equal(kp_resource_path(k, ".", "x", NULL, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "namespace"));
    kp_buf_free(&b);
}

/* ---- times ---- */

static void test_time_parse(void **state)
{
    time_t t;
    assert_int_equal(kp_time_parse("2026-11-27T07:00:00Z", &t), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(kp_time_parse("2026-11-27T07:00:00.123456Z", &t), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(kp_time_parse("2026-11-27T09:30:00+02:30", &t), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(kp_time_parse("2026-11-27T06:00:00-01:00", &t), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(kp_time_parse("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    const char *bad[] = {"",
                         "2026-11-27",
                         "2026-11-27T07:00:00",
                         "2026-13-27T07:00:00Z",
                         "2026-11-27T07:00:00Zjunk",
                         "2026-11-27T07:00:00+0200",
                         "yesterday"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(kp_time_parse(bad[i], &t), -1);
    assert_int_equal(kp_time_parse(NULL, &t), -1);
}

static void test_age(void **state)
{
    static const struct {
        long long s;
        const char *want;
    } cases[] = {
        {-5, "<invalid>"},
        {-1, "0s"},
        {0, "0s"},
        {45, "45s"},
        {119, "119s"},
        {120, "2m"},
        {200, "3m20s"},
        {599, "9m59s"},
        {600, "10m"},
        {3 * 3600 - 1, "179m"},
        {3 * 3600, "3h"},
        {3 * 3600 + 25 * 60, "3h25m"},
        {8 * 3600, "8h"},
        {47 * 3600 + 59, "47h"},
        {48 * 3600, "2d"},
        {5 * 86400, "5d"},
        {5 * 86400 + 7 * 3600, "5d7h"},
        {8 * 86400, "8d"},
        {400 * 86400, "400d"},
        {730 * 86400, "2y"},
        {800 * 86400, "2y70d"},
        {3000LL * 86400, "8y"},
    };
    char out[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        kp_age_format(cases[i].s, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
    json_t *obj = fixture("{\"metadata\": {\"creationTimestamp\": \"2026-11-22T07:00:00Z\"}}");
    kp_age_of(obj, NOW, out, sizeof(out));
    assert_string_equal(out, "5d");
    json_decref(obj);
    obj = fixture("{\"metadata\": {}}");
    kp_age_of(obj, NOW, out, sizeof(out));
    assert_string_equal(out, "<unknown>");
    json_decref(obj);
}

/* ---- manifests ---- */

static const char multi_doc[] = "apiVersion: kafka.nais.io/v1\n"
                                "kind: Topic\n"
                                "metadata:\n"
                                "  name: orders\n"
                                "spec: {pool: dev}\n"
                                "---\n"
                                "---\n"
                                "# only a comment\n"
                                "---\n"
                                "apiVersion: kafka.nais.io/v1\n"
                                "kind: Topic\n"
                                "metadata: {name: payments, namespace: team-b}\n"
                                "---\n"
                                "apiVersion: v1\n"
                                "kind: List\n"
                                "items:\n"
                                "  - apiVersion: kpool.dev/v1\n"
                                "    kind: Pool\n"
                                "    metadata: {name: dev, namespace: x, resourceVersion: '9'}\n"
                                "  - apiVersion: nais.io/v1alpha1\n"
                                "    kind: Application\n"
                                "    metadata: {name: shop, resourceVersion: '7'}\n";

static const char *ns_of(const json_t *doc)
{
    return json_string_value(json_object_get(json_object_get(doc, "metadata"), "namespace"));
}

static void test_manifest_split_and_namespaces(void **state)
{
    char err[512];
    json_t *docs = json_array();
    assert_int_equal(
        kp_manifest_load(multi_doc, strlen(multi_doc), "m.yaml", docs, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(docs), 4); /* empty documents skipped, List expanded */

    /* no -n: the default namespace fills in, a document's own namespace stays */
    const kp_kind_t *k =
        kp_manifest_prepare(json_array_get(docs, 0), NULL, "team-a", err, sizeof(err));
    assert_non_null(k);
    assert_string_equal(k->kind, "Topic");
    assert_string_equal(ns_of(json_array_get(docs, 0)), "team-a");
    assert_non_null(kp_manifest_prepare(json_array_get(docs, 1), NULL, "team-a", err, sizeof(err)));
    assert_string_equal(ns_of(json_array_get(docs, 1)), "team-b");
    /* cluster-scoped: the namespace and the resourceVersion are dropped */
    json_t *pool = json_array_get(docs, 2);
    assert_non_null(kp_manifest_prepare(pool, "team-c", "team-a", err, sizeof(err)));
    assert_null(ns_of(pool));
    assert_null(json_object_get(json_object_get(pool, "metadata"), "resourceVersion"));
    /* -n fills in */
    json_t *app = json_array_get(docs, 3);
    assert_non_null(kp_manifest_prepare(app, "team-c", "team-a", err, sizeof(err)));
    assert_string_equal(ns_of(app), "team-c");
    assert_null(json_object_get(json_object_get(app, "metadata"), "resourceVersion"));
    /* -n equal to the document's namespace is fine; a different one is an error */
    json_t *t = json_deep_copy(json_array_get(docs, 1));
    assert_non_null(kp_manifest_prepare(t, "team-b", "team-a", err, sizeof(err)));
    assert_null(kp_manifest_prepare(t, "team-z", "team-a", err, sizeof(err)));
    assert_non_null(strstr(err, "\"team-b\" does not match the namespace \"team-z\""));
    json_decref(t);
    json_decref(docs);
}

static void expect_manifest_error(const char *text, const char *want)
{
    char err[512] = "";
    json_t *docs = json_array();
    assert_int_equal(kp_manifest_load(text, strlen(text), "f.yaml", docs, err, sizeof(err)), -1);
    if (!strstr(err, want)) fprintf(stderr, "got: %s\n", err);
    assert_non_null(strstr(err, want));
    json_decref(docs);
}

static void test_manifest_errors(void **state)
{
    expect_manifest_error("kind: Topic\nmetadata: {name: a}\n", "f.yaml: document 1: missing "
                                                                "apiVersion");
    expect_manifest_error("apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\n"
                          "apiVersion: v1\nkind: Secret\n",
                          "f.yaml: document 2: missing metadata.name");
    expect_manifest_error("- a\n- b\n", "document 1: not a mapping");
    expect_manifest_error("apiVersion: v1\nkind: Secret\nmetadata: {name: [x]}\n",
                          "missing metadata.name");
    expect_manifest_error("apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: 3}\n",
                          "metadata.namespace must be a string");
    expect_manifest_error("apiVersion: v1\nkind: List\nitems:\n  - {kind: Topic}\n",
                          "document 1, item 1: missing apiVersion");
    expect_manifest_error("spec: [unclosed\n", "f.yaml: line");

    /* JSON is accepted as it is */
    char err[256];
    json_t *docs = json_array();
    const char *js = "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": "
                     "\"s\"}, \"data\": {\"K\": \"dg==\"}}";
    assert_int_equal(kp_manifest_load(js, strlen(js), "s.json", docs, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(docs), 1);
    /* a known kind under an unknown version is refused when prepared */
    json_t *d = fixture("{\"apiVersion\": \"kafka.nais.io/v9\", \"kind\": \"Topic\", "
                        "\"metadata\": {\"name\": \"t\"}}");
    assert_null(kp_manifest_prepare(d, NULL, "a", err, sizeof(err)));
    assert_non_null(strstr(err, "kafka.nais.io/v9"));
    json_decref(d);
    json_decref(docs);
}

/* ---- tables ---- */

static const char topics_json[] =
    "[{\"metadata\": {\"name\": \"orders\", \"namespace\": \"team-a\","
    "  \"creationTimestamp\": \"2026-11-27T06:59:15Z\"},"
    " \"spec\": {\"pool\": \"dev\", \"config\": {\"partitions\": 3}},"
    " \"status\": {\"synchronizationState\": \"RolloutComplete\","
    "   \"fullyQualifiedName\": \"team-a.orders\", \"message\": \"ok\"}},"
    " {\"metadata\": {\"name\": \"payments-eu\", \"namespace\": \"team-bb\","
    "  \"creationTimestamp\": \"2026-11-22T07:00:00Z\"},"
    " \"spec\": {\"pool\": \"dev\", \"config\": {\"replication\": 1}},"
    " \"status\": {\"synchronizationState\": \"FailedPrepare\","
    "   \"fullyQualifiedName\": \"team-bb.payments-eu\","
    "   \"message\": \"line one\\nline\\u001b[31mtwo\"}},"
    " {\"metadata\": {\"name\": \"fresh\", \"namespace\": \"team-a\"}, \"spec\": {}}]";

static void test_table_topics(void **state)
{
    char *t = table_of("topics", topics_json, 0, 0);
    assert_string_equal(
        t, "NAME          POOL     STATE             FULLY QUALIFIED NAME   AGE\n"
           "orders        dev      RolloutComplete   team-a.orders          45s\n"
           "payments-eu   dev      FailedPrepare     team-bb.payments-eu    5d\n"
           "fresh         <none>   <none>            <none>                 <unknown>\n");
    free(t);
    t = table_of("topic", topics_json, 1, 1);
    /* wide adds the config and the message (control characters replaced); -A the namespace */
    assert_string_equal(
        t, "NAMESPACE   NAME          POOL     STATE             FULLY QUALIFIED NAME   AGE"
           "         PARTITIONS   REPLICATION   MESSAGE\n"
           "team-a      orders        dev      RolloutComplete   team-a.orders          45s"
           "         3            <default>     ok\n"
           "team-bb     payments-eu   dev      FailedPrepare     team-bb.payments-eu    5d"
           "          1            1             line one line [31mtwo\n"
           "team-a      fresh         <none>   <none>            <none>                 "
           "<unknown>   1            <default>     <none>\n");
    free(t);
    t = table_of("topics", "[]", 0, 0);
    assert_string_equal(t, "NAME   POOL   STATE   FULLY QUALIFIED NAME   AGE\n");
    free(t);
}

static void test_table_other_kinds(void **state)
{
    char *t = table_of("aivenapp",
                       "[{\"metadata\": {\"name\": \"shop\", \"creationTimestamp\": "
                       "\"2026-11-27T04:00:00Z\"}, \"spec\": {\"kafka\": {\"pool\": \"dev\", "
                       "\"secretName\": \"aiven-shop-1\"}}, \"status\": "
                       "{\"synchronizationState\": \"RolloutComplete\"}},"
                       "{\"metadata\": {\"name\": \"old\"}, \"spec\": {\"secretName\": \"legacy\","
                       "\"kafka\": {\"pool\": \"dev\"}}}]",
                       0, 0);
    assert_string_equal(t, "NAME   POOL   SECRET         STATE             AGE\n"
                           "shop   dev    aiven-shop-1   RolloutComplete   3h\n"
                           "old    dev    legacy         <none>            <unknown>\n");
    free(t);
    t = table_of("app",
                 "[{\"metadata\": {\"name\": \"shop\"}, \"spec\": {\"kafka\": {\"pool\": "
                 "\"dev\", \"streams\": true}}}]",
                 1, 0);
    assert_string_equal(t, "NAME   POOL   AGE         STREAMS\n"
                           "shop   dev    <unknown>   true\n");
    free(t);
    t = table_of("streams",
                 "[{\"metadata\": {\"name\": \"s\"}, \"spec\": {\"pool\": \"dev\"}, "
                 "\"status\": {\"synchronizationState\": \"RolloutComplete\"}}]",
                 0, 0);
    assert_string_equal(t, "NAME   POOL   STATE             AGE\n"
                           "s      dev    RolloutComplete   <unknown>\n");
    free(t);
    /* pools are cluster-scoped: no NAMESPACE column even with -A; arrays are joined */
    t = table_of("pools",
                 "[{\"metadata\": {\"name\": \"dev\"}, \"spec\": {\"bootstrapServers\":"
                 " [\"a:9093\", \"b:9093\"], \"embedded\": true, \"replication\": "
                 "{\"min\": 1, \"max\": 3, \"default\": 2}}}]",
                 1, 1);
    assert_string_equal(t, "NAME   BOOTSTRAP       EMBEDDED   AGE         REPLICATION             "
                           "SCHEMA REGISTRY\n"
                           "dev    a:9093,b:9093   true       <unknown>   min=1,default=2,max=3   "
                           "<none>\n");
    free(t);
}

static void test_table_secrets_hide_values(void **state)
{
    char *t = table_of("secrets",
                       "[{\"metadata\": {\"name\": \"creds\", \"labels\": {\"type\": "
                       "\"kpool.dev/kafka-credentials\"}}, \"data\": {\"KAFKA_PRIVATE_KEY\": "
                       "\"c2VjcmV0LXZhbHVl\", \"KAFKA_CA\": \"Y2E=\"}},"
                       "{\"metadata\": {\"name\": \"plain\"}, \"type\": \"Opaque\"}]",
                       0, 0);
    assert_string_equal(t, "NAME    TYPE                          DATA   AGE\n"
                           "creds   kpool.dev/kafka-credentials   2      <unknown>\n"
                           "plain   Opaque                        0      <unknown>\n");
    assert_null(strstr(t, "c2VjcmV0"));
    free(t);
}

static void test_table_teams(void **state)
{
    json_t *items =
        fixture("[{\"metadata\": {\"name\": \"team-a\", \"creationTimestamp\": "
                "\"2026-11-24T07:00:00Z\"}, \"status\": {\"tokens\": 1, \"revokedTokens\": 2, "
                "\"resources\": 4, \"tokenCreationTimestamp\": \"2026-11-27T06:00:00Z\"}},"
                "{\"metadata\": {\"name\": \"quiet\", \"creationTimestamp\": "
                "\"2026-11-27T06:59:00Z\"}, \"status\": {\"tokens\": 0, \"revokedTokens\": 1, "
                "\"resources\": 0}},"
                "{\"metadata\": {\"name\": \"odd\"}}]");
    kp_buf_t b;
    kp_buf_init(&b);
    kp_teams_table_render(items, 0, NOW, &b);
    kp_buf_append(&b, "", 1);
    assert_string_equal((char *)b.data, "NAME     TOKENS   CREATED     RESOURCES\n"
                                        "team-a   1        3d          4\n"
                                        "quiet    0        60s         0\n"
                                        "odd      0        <unknown>   0\n");
    kp_buf_reset(&b);
    kp_teams_table_render(items, 1, NOW, &b);
    kp_buf_append(&b, "", 1);
    /* wide: the newest valid token's age ("<none>" after a revocation) and the revoked count */
    assert_string_equal((char *)b.data,
                        "NAME     TOKENS   CREATED     RESOURCES   TOKEN AGE   REVOKED\n"
                        "team-a   1        3d          4           60m         2\n"
                        "quiet    0        60s         0           <none>      1\n"
                        "odd      0        <unknown>   0           <none>      0\n");
    kp_buf_free(&b);
    json_decref(items);
}

/* ---- describe ---- */

static char *describe_of(const char *kind, const char *obj_json)
{
    json_t *obj = fixture(obj_json);
    kp_buf_t b;
    kp_buf_init(&b);
    kp_describe_render(kp_kind_find(kind), obj, NOW, &b);
    kp_buf_append(&b, "", 1);
    json_decref(obj);
    return (char *)b.data;
}

static void test_describe_status(void **state)
{
    char *d = describe_of(
        "aivenapp",
        "{\"metadata\": {\"name\": \"shop\", \"namespace\": \"team-a\", \"generation\": 3,"
        " \"resourceVersion\": \"118\", \"creationTimestamp\": \"2026-11-27T06:00:00Z\","
        " \"labels\": {\"app\": \"shop\"}},"
        " \"spec\": {\"kafka\": {\"pool\": \"dev\"}},"
        " \"status\": {\"synchronizationState\": \"RolloutFailed\", \"observedGeneration\": 2,"
        "  \"conditions\": [{\"type\": \"AivenFailure\", \"status\": \"True\", \"reason\":"
        "  \"IssueCertificate\", \"message\": \"CA unreadable\\nsecond line\","
        "  \"lastUpdateTime\": \"2026-11-27T06:59:00Z\"}], \"synchronizationHash\": \"ab\"}}");
    assert_string_equal(d, "Name:              shop\n"
                           "Namespace:         team-a\n"
                           "Kind:              AivenApplication (aiven.nais.io/v1)\n"
                           "Labels:            app=shop\n"
                           "Annotations:       <none>\n"
                           "Created:           2026-11-27T06:00:00Z (60m ago)\n"
                           "Generation:        3\n"
                           "Resource Version:  118\n"
                           "Spec:\n"
                           "  kafka:\n"
                           "    pool: dev\n"
                           "Status:\n"
                           "  Synchronization State:  RolloutFailed\n"
                           "  Observed Generation:    2\n"
                           "  (generation 3 is not reconciled yet)\n"
                           "  Conditions:\n"
                           "    - Type:              AivenFailure\n"
                           "      Status:            True\n"
                           "      Reason:            IssueCertificate\n"
                           "      Message:           CA unreadable\n"
                           "                         second line\n"
                           "      Last Update Time:  2026-11-27T06:59:00Z\n"
                           "  synchronizationHash: ab\n");
    free(d);
    d = describe_of("topic", "{\"metadata\": {\"name\": \"t\", \"namespace\": \"a\", "
                             "\"deletionTimestamp\": \"2026-11-27T07:00:00Z\"}, \"spec\": "
                             "{\"pool\": \"dev\"}, \"status\": {\"synchronizationState\": "
                             "\"FailedPrepare\", \"message\": \"bad\", \"errors\": [\"e1\", "
                             "\"e2\"]}}");
    assert_non_null(strstr(d, "Deleting:          2026-11-27T07:00:00Z (deletion requested"));
    assert_non_null(strstr(d, "  Message:                bad\n"
                              "  Errors:\n"
                              "    - e1\n"
                              "    - e2\n"));
    free(d);
    d = describe_of("pool", "{\"metadata\": {\"name\": \"dev\"}, \"spec\": {\"embedded\": "
                            "true}, \"status\": {\"state\": \"Ready\", \"message\": \"ok\", "
                            "\"lastUpdateTime\": \"2026-11-27T06:59:00Z\", \"topics\": 4, "
                            "\"unmanagedTopicCount\": 2, \"unmanagedTopics\": [\"a.kept\", "
                            "\"b.made-directly\"]}}");
    assert_non_null(strstr(d, "Status:\n"
                              "  State:                  Ready\n"
                              "  Message:                ok\n"
                              "  Topics:                 4\n"
                              "  Unmanaged Topics:       2\n"
                              "  Last Update Time:       2026-11-27T06:59:00Z\n"
                              "  Not Owned By A Resource:\n"
                              "    - a.kept\n"
                              "    - b.made-directly\n"));
    assert_null(strstr(d, "unmanagedTopics"));
    free(d);
    d = describe_of("pool", "{\"metadata\": {\"name\": \"dev\"}}");
    assert_null(strstr(d, "Namespace:"));
    assert_non_null(strstr(d, "Spec:              <none>\n"));
    assert_non_null(strstr(d, "Status:            <none> (the control plane has not reconciled"));
    free(d);
}

static void test_describe_secret_sizes_only(void **state)
{
    char *d = describe_of("secret", "{\"metadata\": {\"name\": \"creds\", \"namespace\": \"a\"},"
                                    " \"type\": \"Opaque\", \"data\": {\"KAFKA_PRIVATE_KEY\": "
                                    "\"c2VjcmV0LXZhbHVl\", \"CA\": \"Y2E=\", \"X\": \"YQ\"}}");
    assert_non_null(strstr(d, "Type:              Opaque\n"
                              "Data:\n"
                              "  KAFKA_PRIVATE_KEY:  12 bytes\n"
                              "  CA:                 2 bytes\n"
                              "  X:                  1 bytes\n"));
    assert_null(strstr(d, "c2VjcmV0"));
    assert_null(strstr(d, "secret-value"));
    free(d);
}

/* ---- client: warnings, errors, config ---- */

static void test_warning_decode(void **state)
{
    char out[256];
    const char *v = " 299 - \"unknown field \\\"spec.foo\\\"\"\r\n";
    kp_client_warning_decode(v, strlen(v), out, sizeof(out));
    assert_string_equal(out, "unknown field \"spec.foo\"");
    v = "299 kpool/0.1 \"a\\\\b\" \"Sat, 01 Jan 2026 00:00:00 GMT\"";
    kp_client_warning_decode(v, strlen(v), out, sizeof(out));
    assert_string_equal(out, "a\\b");
    v = " not RFC 7234\x1b[2J ";
    kp_client_warning_decode(v, strlen(v), out, sizeof(out));
    assert_string_equal(out, "not RFC 7234 [2J");
    kp_client_warning_decode(v, strlen(v), out, 4);
    assert_string_equal(out, "not");
}

static void expect_error(long status, const char *body, const char *want)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_buf_append(&b, body, strlen(body));
    json_t *j = json_loads(body, 0, NULL);
    char out[512];
    kp_client_error_format(status, j, &b, out, sizeof(out));
    assert_string_equal(out, want);
    json_decref(j);
    kp_buf_free(&b);
}

static void test_error_format(void **state)
{
    expect_error(404,
                 "{\"kind\": \"Status\", \"apiVersion\": \"v1\", \"status\": \"Failure\", "
                 "\"code\": 404, \"reason\": \"NotFound\", \"message\": \"topics \\\"x\\\" not "
                 "found\"}",
                 "Error from server (NotFound): topics \"x\" not found");
    expect_error(409,
                 "{\"kind\": \"Status\", \"code\": 409, \"reason\": \"Conflict\", \"message\": "
                 "\"topics \\\"orders\\\": the object has been modified\"}",
                 "Error from server (Conflict): topics \"orders\": the object has been modified");
    expect_error(422,
                 "{\"kind\": \"Status\", \"code\": 422, \"reason\": \"Invalid\", \"details\": "
                 "{\"causes\": [{\"field\": \"metadata.name\", \"message\": \"must be DNS-1123\"},"
                 "{\"message\": \"second\"}]}}",
                 "Error from server (Invalid): metadata.name: must be DNS-1123; second");
    expect_error(401, "{\"kind\": \"Status\", \"code\": 401, \"message\": \"Unauthorized\"}",
                 "Error from server (Unauthorized): Unauthorized");
    expect_error(404, "<html>nginx</html>",
                 "Error from server (NotFound): the server could not find the requested "
                 "resource (is the server a kpool control plane?)");
    expect_error(502, "Bad gateway\nmore",
                 "Error from server (InternalError): HTTP 502: Bad "
                 "gateway");
    expect_error(503, "", "Error from server (ServiceUnavailable): HTTP 503");
    expect_error(400,
                 "{\"kind\": \"Status\", \"reason\": \"BadRequest\", \"message\": "
                 "\"line1\\nline2\\u001b\"}",
                 "Error from server (BadRequest): line1 line2 ");
}

static void test_config_load(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[512];
    ut_tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/config.yaml", dir);

    kp_client_config_t cfg;
    assert_int_equal(kp_client_config_load(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.file_found, 0);
    assert_string_equal(cfg.server, KP_CLIENT_SERVER_DEFAULT);
    assert_null(cfg.token);
    kp_client_config_free(&cfg);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("server: https://kpool.example:8443/\ntoken: abc\nca: pki/ca.crt\nnamespace: team-a\n"
          "extra: ignored\n",
          f);
    fclose(f);
    assert_int_equal(kp_client_config_load(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.file_found, 1);
    assert_string_equal(cfg.server, "https://kpool.example:8443/");
    assert_string_equal(cfg.token, "abc");
    assert_string_equal(cfg.namespace, "team-a");
    char want[PATH_MAX + 32];
    snprintf(want, sizeof(want), "%s/pki/ca.crt", dir);
    assert_string_equal(cfg.ca, want);
    kp_client_config_free(&cfg);

    f = fopen(path, "w");
    fputs("server: [not, a, string]\n", f);
    fclose(f);
    assert_int_equal(kp_client_config_load(&cfg, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'server' must be a string"));
    f = fopen(path, "w");
    fputs("server: \"unterminated\n", f);
    fclose(f);
    assert_int_equal(kp_client_config_load(&cfg, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid YAML"));

    /* $KPOOL_CONFIG wins over $HOME */
    char p2[PATH_MAX];
    setenv("KPOOL_CONFIG", "/x/y.yaml", 1);
    kp_client_config_path(p2, sizeof(p2));
    assert_string_equal(p2, "/x/y.yaml");
    unsetenv("KPOOL_CONFIG");
    setenv("HOME", "/home/u", 1);
    kp_client_config_path(p2, sizeof(p2));
    assert_string_equal(p2, "/home/u/.config/kpool/config.yaml");
    ut_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_kind_for_manifest),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_manifest_split_and_namespaces),
        cmocka_unit_test(test_manifest_errors),
        cmocka_unit_test(test_table_topics),
        cmocka_unit_test(test_table_other_kinds),
        cmocka_unit_test(test_table_secrets_hide_values),
        cmocka_unit_test(test_table_teams),
        cmocka_unit_test(test_describe_status),
        cmocka_unit_test(test_describe_secret_sizes_only),
        cmocka_unit_test(test_warning_decode),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_config_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
