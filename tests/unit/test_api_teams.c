/*
 * test_api_teams.c — the teams endpoints' decisions (src/control/api/api_teams.c) without HTTP:
 * admin only, create once (409 naming rotate), rotate and revoke (404 without a token), the
 * Team and TeamList objects, and methods each path does not serve. The same endpoints are
 * driven over HTTP with the real binary in tests/integration/test_teams.py.
 */
#include "unit.h"

#include "control/api/api_teams.h"

#include <jansson.h>

typedef struct fixture {
    char dir[PATH_MAX];
    kp_store_t *s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char path[PATH_MAX + 16], err[256];
    ut_tmpdir_make(f->dir, sizeof(f->dir));
    snprintf(path, sizeof(path), "%s/kpool.db", f->dir);
    f->s = kp_store_open(path, err, sizeof(err));
    assert_non_null(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    kp_store_close(f->s);
    ut_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* One request as the admin (admin 1) or a team token (0); the answer, its code in *code. */
static json_t *ask(kp_store_t *s, int admin, const char *method, const char *name, int rotate,
                   const char *body, unsigned *code)
{
    kp_api_teams_req_t req = {
        .method = method,
        .name = name,
        .rotate = rotate,
        .admin = admin,
        .body = (const uint8_t *)body,
        .len = body ? strlen(body) : 0,
    };
    *code = 0;
    json_t *a = kp_api_teams_answer(s, &req, code);
    assert_non_null(a);
    return a;
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static long long status_int(const json_t *team, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(team, "status"), key));
}

/* a is a Status with code want, reason, and message_part (when given) in its message;
 * it carries no token. code is read after a was made (hence a pointer). Consumes a. */
static void assert_status(json_t *a, const unsigned *code, unsigned want, const char *reason,
                          const char *message_part)
{
    assert_int_equal(*code, want);
    assert_string_equal(str(a, "kind"), "Status");
    assert_string_equal(str(a, "reason"), reason);
    assert_int_equal(json_integer_value(json_object_get(a, "code")), want);
    if (message_part) assert_non_null(strstr(str(a, "message"), message_part));
    assert_null(json_object_get(a, "token"));
    json_decref(a);
}

static void test_team_token_is_forbidden(void **state)
{
    fixture_t *f = *state;
    unsigned code;
    static const struct {
        const char *method, *name, *body;
        int rotate;
    } reqs[] = {{"GET", NULL, NULL, 0},
                {"POST", NULL, "{\"name\": \"team-x\"}", 0},
                {"GET", "team-x", NULL, 0},
                {"POST", "team-x", NULL, 1},
                {"DELETE", "team-x", NULL, 0}};
    for (size_t i = 0; i < sizeof(reqs) / sizeof(*reqs); i++)
        assert_status(
            ask(f->s, 0, reqs[i].method, reqs[i].name, reqs[i].rotate, reqs[i].body, &code), &code,
            403, "Forbidden", "admin");
    /* and nothing was created on the way */
    json_t *a = ask(f->s, 1, "GET", NULL, 0, NULL, &code);
    assert_int_equal(code, 200);
    assert_int_equal(json_array_size(json_object_get(a, "items")), 0);
    json_decref(a);
}

static void test_create_twice_is_409_naming_rotate(void **state)
{
    fixture_t *f = *state;
    unsigned code;
    json_t *a = ask(f->s, 1, "POST", NULL, 0, "{\"name\": \"team-a\"}", &code);
    assert_int_equal(code, 201);
    assert_string_equal(str(a, "kind"), "Team");
    assert_string_equal(str(json_object_get(a, "metadata"), "name"), "team-a");
    assert_int_equal(strlen(str(a, "token")), 64);
    assert_int_equal(status_int(a, "tokens"), 1);
    json_decref(a);
    assert_status(ask(f->s, 1, "POST", NULL, 0, "{\"name\": \"team-a\"}", &code), &code, 409,
                  "AlreadyExists", "kpool team rotate team-a");
    /* metadata.name is accepted too; invalid names and bodies are refused */
    a = ask(f->s, 1, "POST", NULL, 0, "{\"metadata\": {\"name\": \"team-b\"}}", &code);
    assert_int_equal(code, 201);
    json_decref(a);
    assert_status(ask(f->s, 1, "POST", NULL, 0, "{\"name\": \"Bad_Name\"}", &code), &code, 422,
                  "Invalid", "Bad_Name");
    assert_status(ask(f->s, 1, "POST", NULL, 0, "{}", &code), &code, 422, "Invalid", "required");
    assert_status(ask(f->s, 1, "POST", NULL, 0, NULL, &code), &code, 400, "BadRequest", "empty");
    assert_status(ask(f->s, 1, "POST", NULL, 0, "{\"name\": [", &code), &code, 400, "BadRequest",
                  NULL);
}

static void test_rotate_and_revoke(void **state)
{
    fixture_t *f = *state;
    unsigned code;
    assert_status(ask(f->s, 1, "POST", "team-a", 1, NULL, &code), &code, 404, "NotFound",
                  "kpool team create team-a");
    assert_status(ask(f->s, 1, "DELETE", "team-a", 0, NULL, &code), &code, 404, "NotFound", NULL);
    assert_status(ask(f->s, 1, "GET", "team-a", 0, NULL, &code), &code, 404, "NotFound", NULL);
    json_t *a = ask(f->s, 1, "POST", NULL, 0, "{\"name\": \"team-a\"}", &code);
    char first[65];
    snprintf(first, sizeof(first), "%s", str(a, "token"));
    json_decref(a);

    a = ask(f->s, 1, "POST", "team-a", 1, NULL, &code);
    assert_int_equal(code, 200);
    assert_int_equal(json_integer_value(json_object_get(a, "revoked")), 1);
    assert_string_not_equal(str(a, "token"), first);
    assert_int_equal(status_int(a, "tokens"), 1);
    assert_int_equal(status_int(a, "revokedTokens"), 1);
    json_decref(a);
    int admin;
    char *ns = NULL;
    assert_int_equal(kp_store_token_lookup(f->s, first, &admin, &ns), -1);

    a = ask(f->s, 1, "DELETE", "team-a", 0, NULL, &code);
    assert_int_equal(code, 200);
    assert_int_equal(json_integer_value(json_object_get(a, "revoked")), 1);
    assert_null(json_object_get(a, "token"));
    assert_int_equal(status_int(a, "tokens"), 0);
    assert_int_equal(status_int(a, "revokedTokens"), 2);
    assert_non_null(json_object_get(json_object_get(a, "status"), "lastRevocationTimestamp"));
    assert_null(json_object_get(json_object_get(a, "status"), "tokenCreationTimestamp"));
    json_decref(a);
    /* still known (GET), nothing left to revoke or rotate */
    a = ask(f->s, 1, "GET", "team-a", 0, NULL, &code);
    assert_int_equal(code, 200);
    assert_int_equal(status_int(a, "tokens"), 0);
    json_decref(a);
    assert_status(ask(f->s, 1, "DELETE", "team-a", 0, NULL, &code), &code, 404, "NotFound", NULL);
    assert_status(ask(f->s, 1, "POST", "team-a", 1, NULL, &code), &code, 404, "NotFound", NULL);
}

static void test_list_and_methods(void **state)
{
    fixture_t *f = *state;
    unsigned code;
    json_decref(ask(f->s, 1, "POST", NULL, 0, "{\"name\": \"zeta\"}", &code));
    json_decref(ask(f->s, 1, "POST", NULL, 0, "{\"name\": \"alpha\"}", &code));
    json_t *a = ask(f->s, 1, "GET", NULL, 0, NULL, &code);
    assert_int_equal(code, 200);
    assert_string_equal(str(a, "kind"), "TeamList");
    json_t *items = json_object_get(a, "items");
    assert_int_equal(json_array_size(items), 2);
    json_t *first = json_array_get(items, 0);
    assert_string_equal(str(json_object_get(first, "metadata"), "name"), "alpha");
    assert_non_null(str(json_object_get(first, "metadata"), "creationTimestamp"));
    assert_null(json_object_get(first, "token")); /* a list never shows tokens */
    json_decref(a);
    assert_status(ask(f->s, 1, "PUT", NULL, 0, NULL, &code), &code, 405, "MethodNotAllowed", NULL);
    assert_status(ask(f->s, 1, "PUT", "alpha", 0, NULL, &code), &code, 405, "MethodNotAllowed",
                  NULL);
    assert_status(ask(f->s, 1, "POST", "alpha", 0, NULL, &code), &code, 405, "MethodNotAllowed",
                  NULL);
    assert_status(ask(f->s, 1, "GET", "alpha", 1, NULL, &code), &code, 405, "MethodNotAllowed",
                  NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_team_token_is_forbidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_twice_is_409_naming_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_and_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_methods, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
