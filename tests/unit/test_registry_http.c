/*
 * test_registry_http.c — registry/registry_http: requests through routing and the handlers
 * to the reply, without sockets (kp_registry_http_serve on an offline registry).
 *
 *   - subject names that cannot be subjects (invalid UTF-8, %00, control characters,
 *     1,025 bytes) answer 422/42208 on every endpoint that names a subject, and every reply
 *     is valid JSON (issue 12 items 2, 15: %FF crashed the process, a%00b was "a", a
 *     1,025-byte name answered 40401);
 *   - error messages that quote client text (a version, an id, a body) stay valid UTF-8;
 *   - tenancy (item 5): a team's service user changes only subjects under "<team>.";
 *     reads are open; the admin changes everything.
 */
#include "unit.h"

#include "registry/registry_int.h"

#include <jansson.h>

#define SCHEMA_BODY  "{\"schema\":\"{\\\"type\\\":\\\"string\\\"}\"}"
#define SCHEMA2_BODY "{\"schema\":\"{\\\"type\\\":\\\"long\\\"}\"}"

static kp_reg_caller_t team_user(const char *team)
{
    kp_reg_caller_t who = {0};
    snprintf(who.user, sizeof(who.user), "%s_app_1", team);
    snprintf(who.team, sizeof(who.team), "%s", team);
    return who;
}

static kp_reg_caller_t admin_user(void)
{
    kp_reg_caller_t who = {.admin = 1};
    snprintf(who.user, sizeof(who.user), "kpool-admin");
    return who;
}

/* Serves one request; returns the status, *code the error_code (0 without one), *body the
 * parsed reply (a new reference, or NULL when not JSON — which the test then fails). */
static unsigned call(kp_registry_t *r, const kp_reg_caller_t *who, const char *method,
                     const char *url, const char *query, const char *body, int *code, json_t **json)
{
    kp_reg_reply_t out;
    kp_registry_http_serve(r, who, method, url, query, body, body ? strlen(body) : 0, &out);
    assert_non_null(out.body);
    assert_non_null(out.type);
    json_error_t je;
    json_t *j = json_loads(out.body, JSON_DECODE_ANY, &je);
    if (!j) fail_msg("%s %s: reply is not JSON: %s", method, url, out.body);
    *code = (int)json_integer_value(json_object_get(j, "error_code"));
    free(out.body);
    if (json)
        *json = j;
    else
        json_decref(j);
    return out.status;
}

static void test_invalid_subjects_answer_42208(void **s)
{
    kp_registry_t *r = kp_registry_new_offline();
    kp_reg_caller_t who = team_user("team");
    int code;
    char long_name[1100];
    snprintf(long_name, sizeof(long_name), "/subjects/team.");
    memset(long_name + strlen(long_name), 'x', 1025 - 5);
    long_name[10 + 1025] = 0;
    strcat(long_name, "/versions");
    const char *bad[] = {"/subjects/%FF/versions",
                         "/subjects/a%00b/versions",
                         "/subjects/team.a%00b/versions",
                         "/subjects/%C3%28/versions",
                         "/subjects/%ED%A0%80/versions",
                         "/subjects/a%0Ab/versions",
                         "/subjects/%7F/versions/1",
                         "/subjects/%FF",
                         "/subjects/%FF/versions/1/schema",
                         "/config/%FF",
                         "/mode/%FF",
                         "/compatibility/subjects/%FF/versions",
                         long_name};
    const char *methods[] = {"GET", "POST", "DELETE", "PUT"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        for (size_t m = 0; m < 4; m++) {
            unsigned st = call(r, &who, methods[m], bad[i], NULL, SCHEMA_BODY, &code, NULL);
            if (st == 404 && code == 404) continue; /* no such endpoint for this method */
            if (st != 422 || code != 42208)
                fail_msg("%s %s -> %u/%d, want 422/42208", methods[m], bad[i], st, code);
        }
    /* a%00b is not the subject a: registering "team.a" then asking for "team.a%00b" */
    assert_int_equal(
        call(r, &who, "POST", "/subjects/team.a/versions", NULL, SCHEMA_BODY, &code, NULL), 200);
    assert_int_equal(
        call(r, &who, "GET", "/subjects/team.a%00b/versions/1", NULL, NULL, &code, NULL), 422);
    assert_int_equal(code, 42208);
    /* 1,024 bytes is still a name (not found), 1,025 is not one */
    char ok_name[1100];
    snprintf(ok_name, sizeof(ok_name), "/subjects/");
    memset(ok_name + 10, 'y', 1024);
    ok_name[10 + 1024] = 0;
    strcat(ok_name, "/versions");
    assert_int_equal(call(r, &who, "GET", ok_name, NULL, NULL, &code, NULL), 404);
    assert_int_equal(code, 40401);
    kp_registry_stop(r);
}

static void test_messages_quoting_client_text_stay_utf8(void **s)
{
    kp_registry_t *r = kp_registry_new_offline();
    kp_reg_caller_t who = admin_user();
    int code;
    json_t *j;
    assert_int_equal(call(r, &who, "POST", "/subjects/x/versions", NULL, SCHEMA_BODY, &code, NULL),
                     200);
    /* a version and an id of invalid UTF-8, a long version cut in the middle of a character */
    assert_int_equal(call(r, &who, "GET", "/subjects/x/versions/%FF%FE", NULL, NULL, &code, &j),
                     422);
    assert_int_equal(code, 42202);
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "\xef\xbf\xbd"));
    json_decref(j);
    assert_int_equal(call(r, &who, "GET", "/schemas/ids/%C3", NULL, NULL, &code, NULL), 404);
    assert_int_equal(code, 40403);
    char url[4096] = "/subjects/x/versions/";
    for (int i = 0; i < 600; i++) strcat(url, "%C3%A9");
    assert_int_equal(call(r, &who, "GET", url, NULL, NULL, &code, NULL), 422);
    /* a body that is not UTF-8: jansson's message quotes it */
    assert_int_equal(call(r, &who, "POST", "/subjects/x/versions", NULL, "\xff\xfe", &code, NULL),
                     422);
    assert_int_equal(call(r, &who, "POST", "/subjects/x/versions", NULL,
                          "{\"schema\":\"{\\\"type\\\":\\\"rec\xc3\"}", &code, NULL),
                     422);
    kp_registry_stop(r);
}

static void test_team_changes_only_its_subjects(void **s)
{
    kp_registry_t *r = kp_registry_new_offline();
    kp_reg_caller_t alpha = team_user("alpha"), beta = team_user("beta"), admin = admin_user();
    int code;
    json_t *j;
    /* alpha's own subjects: topic name strategy and anything under its prefix */
    const char *mine[] = {
        "/subjects/alpha.orders-value/versions", "/subjects/alpha.orders-key/versions",
        "/subjects/alpha.orders-no.nav.Order/versions", "/subjects/alpha.events.Order/versions"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(call(r, &alpha, "POST", mine[i], NULL, SCHEMA_BODY, &code, NULL), 200);
    /* beta may read them ... */
    assert_int_equal(
        call(r, &beta, "GET", "/subjects/alpha.orders-value/versions/1", NULL, NULL, &code, NULL),
        200);
    assert_int_equal(
        call(r, &beta, "POST", "/subjects/alpha.orders-value", NULL, SCHEMA_BODY, &code, NULL),
        200);
    assert_int_equal(call(r, &beta, "POST", "/compatibility/subjects/alpha.orders-value/versions",
                          NULL, SCHEMA2_BODY, &code, NULL),
                     200);
    assert_int_equal(call(r, &beta, "GET", "/config/alpha.orders-value", "defaultToGlobal=true",
                          NULL, &code, NULL),
                     200);
    /* ... but not change them, nor create subjects outside its prefix */
    struct {
        const char *method, *url, *query, *body;
    } writes[] = {
        {"PUT", "/config/alpha.orders-value", NULL, "{\"compatibility\":\"NONE\"}"},
        {"DELETE", "/config/alpha.orders-value", NULL, NULL},
        {"POST", "/subjects/alpha.orders-value/versions", NULL, SCHEMA2_BODY},
        {"DELETE", "/subjects/alpha.orders-value", NULL, NULL},
        {"DELETE", "/subjects/alpha.orders-value", "permanent=true", NULL},
        {"DELETE", "/subjects/alpha.orders-value/versions/1", NULL, NULL},
        {"DELETE", "/subjects/alpha.orders-value/versions/latest", "permanent=true", NULL},
        {"POST", "/subjects/alpha/versions", NULL, SCHEMA_BODY},
        {"POST", "/subjects/alpha./versions", NULL, SCHEMA_BODY},
        {"POST", "/subjects/alphabet.x-value/versions", NULL, SCHEMA_BODY},
        {"POST", "/subjects/orders-value/versions", NULL, SCHEMA_BODY},
        {"PUT", "/config/unowned", NULL, "{\"compatibility\":\"NONE\"}"},
        {"PUT", "/config", NULL, "{\"compatibility\":\"NONE\"}"},
        {"PUT", "/mode/alpha.orders-value", NULL, "{\"mode\":\"READONLY\"}"},
        {"DELETE", "/mode/alpha.orders-value", NULL, NULL},
        {"PUT", "/mode", NULL, "{\"mode\":\"IMPORT\"}"},
    };
    for (size_t i = 0; i < sizeof(writes) / sizeof(*writes); i++) {
        unsigned st = call(r, &beta, writes[i].method, writes[i].url, writes[i].query,
                           writes[i].body, &code, &j);
        if (st != 403 || code != 40301)
            fail_msg("beta %s %s -> %u/%d, want 403/40301", writes[i].method, writes[i].url, st,
                     code);
        json_decref(j);
    }
    /* nothing changed: one version, no level of its own */
    assert_int_equal(
        call(r, &beta, "GET", "/subjects/alpha.orders-value/versions", NULL, NULL, &code, &j), 200);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    assert_int_equal(call(r, &beta, "GET", "/config/alpha.orders-value", NULL, NULL, &code, NULL),
                     404);
    assert_int_equal(code, 40408);
    /* the owner and the admin may */
    assert_int_equal(call(r, &alpha, "PUT", "/config/alpha.orders-value", NULL,
                          "{\"compatibility\":\"NONE\"}", &code, NULL),
                     200);
    assert_int_equal(
        call(r, &alpha, "DELETE", "/subjects/alpha.orders-key", NULL, NULL, &code, NULL), 200);
    assert_int_equal(call(r, &alpha, "DELETE", "/subjects/alpha.orders-key", "permanent=true", NULL,
                          &code, NULL),
                     200);
    assert_int_equal(
        call(r, &admin, "POST", "/subjects/beta.x-value/versions", NULL, SCHEMA_BODY, &code, NULL),
        200);
    assert_int_equal(
        call(r, &admin, "DELETE", "/subjects/alpha.orders-value", NULL, NULL, &code, NULL), 200);
    assert_int_equal(
        call(r, &admin, "PUT", "/config", NULL, "{\"compatibility\":\"FULL\"}", &code, NULL), 200);
    /* modes cannot be changed, by anyone: READWRITE only */
    assert_int_equal(call(r, &alpha, "PUT", "/mode/alpha.orders-value", NULL,
                          "{\"mode\":\"READONLY\"}", &code, NULL),
                     422);
    assert_int_equal(code, 42205);
    assert_int_equal(call(r, &admin, "PUT", "/mode", NULL, "{\"mode\":\"IMPORT\"}", &code, NULL),
                     422);
    assert_int_equal(code, 42205);
    kp_registry_stop(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_subjects_answer_42208),
        cmocka_unit_test(test_messages_quoting_client_text_stay_utf8),
        cmocka_unit_test(test_team_changes_only_its_subjects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
