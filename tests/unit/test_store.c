/*
 * test_store.c — the control plane store's tokens (src/control/store.c): admin and team
 * tokens, a team's token created once, rotated and revoked in one transaction each, the
 * teams list built from tokens and namespaces, revocations surviving a reopen, and a store
 * made before tokens could be revoked; reads that skip bodies (keys, one field, a get that
 * answers "unchanged" for a known resourceVersion) and kept prepared statements seeing every
 * write; the listeners told of every move of the resourceVersion (the watch hubs sleep on
 * them) and the data_version that moves only for another connection's commits.
 */
#include "unit.h"

#include "control/store.h"

#include <openssl/evp.h>
#include <sqlite3.h>

typedef struct fixture {
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
    kp_store_t *s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256];
    ut_tmpdir_make(f->dir, sizeof(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/kpool.db", f->dir);
    f->s = kp_store_open(f->path, err, sizeof(err));
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

/* The store's form of a token: hex SHA-256. */
static void sha256_hex(const char *token, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* 1 when token authenticates as team (NULL: as the admin), 0 when it is refused. */
static int token_is(kp_store_t *s, const char *token, const char *team)
{
    int admin = -1;
    char *ns = NULL;
    if (kp_store_token_lookup(s, token, &admin, &ns) < 0) return 0;
    int ok = team ? !admin && ns && !strcmp(ns, team) : admin && !ns;
    free(ns);
    assert_true(ok); /* a valid token never authenticates as someone else */
    return 1;
}

/* The store's row of one team; fails the test when there is none. */
static kp_store_team_t *team_row(kp_store_t *s, const char *name)
{
    kp_store_team_t *t;
    int n;
    assert_int_equal(kp_store_teams_list(s, name, &t, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(t->name, name);
    return t;
}

static void test_create_once_then_exists(void **state)
{
    fixture_t *f = *state;
    char admin[65], tok[65], again[65];
    assert_int_equal(kp_store_token_create(f->s, NULL, "admin", admin), 0);
    assert_int_equal(kp_store_team_token_create(f->s, "team-a", tok), KP_STORE_CREATED);
    assert_int_equal(strlen(tok), 64);
    assert_true(token_is(f->s, tok, "team-a"));
    /* a second create changes nothing: no second token, the first still works */
    memset(again, 'x', sizeof(again));
    assert_int_equal(kp_store_team_token_create(f->s, "team-a", again), KP_STORE_EXISTS);
    assert_int_equal(again[0], 0); /* nothing that looks like a token is handed out */
    assert_true(token_is(f->s, tok, "team-a"));
    kp_store_team_t *t = team_row(f->s, "team-a");
    assert_int_equal(t->tokens, 1);
    assert_int_equal(t->tokens_revoked, 0);
    assert_string_not_equal(t->token_created, "");
    assert_string_equal(t->last_revoked, "");
    kp_store_teams_free(t, 1);
    /* another team is independent; the admin token is no team */
    assert_int_equal(kp_store_team_token_create(f->s, "team-b", again), KP_STORE_CREATED);
    assert_true(token_is(f->s, admin, NULL));
    kp_store_team_t *all;
    int n;
    assert_int_equal(kp_store_teams_list(f->s, NULL, &all, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].name, "team-a");
    assert_string_equal(all[1].name, "team-b");
    kp_store_teams_free(all, n);
}

static void test_rotate_revokes_previous(void **state)
{
    fixture_t *f = *state;
    char t1[65], t2[65], other[65], t3[65];
    int revoked = -1;
    /* nothing to rotate yet */
    assert_int_equal(kp_store_team_token_rotate(f->s, "team-a", t2, &revoked), KP_STORE_NOT_FOUND);
    assert_int_equal(revoked, 0);
    assert_int_equal(kp_store_team_token_create(f->s, "team-a", t1), KP_STORE_CREATED);
    assert_int_equal(kp_store_team_token_create(f->s, "team-b", other), KP_STORE_CREATED);
    assert_int_equal(kp_store_team_token_rotate(f->s, "team-a", t2, &revoked), KP_STORE_UPDATED);
    assert_int_equal(revoked, 1);
    assert_string_not_equal(t1, t2);
    assert_false(token_is(f->s, t1, "team-a"));
    assert_true(token_is(f->s, t2, "team-a"));
    assert_true(token_is(f->s, other, "team-b")); /* other teams are not touched */
    /* rotating again revokes the second, not the long-gone first */
    assert_int_equal(kp_store_team_token_rotate(f->s, "team-a", t3, &revoked), KP_STORE_UPDATED);
    assert_int_equal(revoked, 1);
    assert_false(token_is(f->s, t2, "team-a"));
    assert_true(token_is(f->s, t3, "team-a"));
    kp_store_team_t *t = team_row(f->s, "team-a");
    assert_int_equal(t->tokens, 1);
    assert_int_equal(t->tokens_revoked, 2);
    assert_string_not_equal(t->last_revoked, "");
    kp_store_teams_free(t, 1);
}

static void test_revoke_all_then_create_again(void **state)
{
    fixture_t *f = *state;
    char t1[65], t2[65], t3[65];
    int revoked = -1;
    assert_int_equal(kp_store_team_tokens_revoke(f->s, "team-a", &revoked), KP_STORE_NOT_FOUND);
    assert_int_equal(kp_store_team_token_create(f->s, "team-a", t1), KP_STORE_CREATED);
    /* a token made the old way (before create refused a second one) is revoked too */
    assert_int_equal(kp_store_token_create(f->s, "team-a", "legacy", t2), 0);
    assert_int_equal(kp_store_team_tokens_revoke(f->s, "team-a", &revoked), KP_STORE_UPDATED);
    assert_int_equal(revoked, 2);
    assert_false(token_is(f->s, t1, "team-a"));
    assert_false(token_is(f->s, t2, "team-a"));
    assert_int_equal(kp_store_team_tokens_revoke(f->s, "team-a", &revoked), KP_STORE_NOT_FOUND);
    assert_int_equal(kp_store_team_token_rotate(f->s, "team-a", t3, &revoked), KP_STORE_NOT_FOUND);
    kp_store_team_t *t = team_row(f->s, "team-a"); /* still known, with no valid token */
    assert_int_equal(t->tokens, 0);
    assert_int_equal(t->tokens_revoked, 2);
    assert_string_equal(t->token_created, "");
    kp_store_teams_free(t, 1);
    /* after a revocation, create issues a fresh token; the revoked ones stay revoked */
    assert_int_equal(kp_store_team_token_create(f->s, "team-a", t3), KP_STORE_CREATED);
    assert_true(token_is(f->s, t3, "team-a"));
    assert_false(token_is(f->s, t1, "team-a"));
}

static void put_topic(kp_store_t *s, const char *ns, const char *name, const char *created)
{
    json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s}}", "apiVersion",
                            "kafka.nais.io/v1", "kind", "Topic", "metadata", "name", name,
                            "namespace", ns, "creationTimestamp", created, "spec", "pool", "dev");
    assert_int_equal(kp_store_restore(s, obj, 0), KP_STORE_CREATED);
    json_decref(obj);
}

static void test_list_joins_tokens_and_namespaces(void **state)
{
    fixture_t *f = *state;
    char tok[65];
    put_topic(f->s, "only-res", "a", "2020-01-02T00:00:00Z");
    put_topic(f->s, "only-res", "b", "2020-01-01T00:00:00Z");
    put_topic(f->s, "both", "c", "2020-05-01T00:00:00Z");
    assert_int_equal(kp_store_team_token_create(f->s, "both", tok), KP_STORE_CREATED);
    assert_int_equal(kp_store_team_token_create(f->s, "only-token", tok), KP_STORE_CREATED);
    /* cluster-scoped objects belong to no team */
    json_t *pool = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "kpool.dev/v1", "kind", "Pool",
                             "metadata", "name", "dev");
    json_t *out = NULL;
    assert_int_equal(kp_store_put(f->s, pool, -1, 0, &out), KP_STORE_CREATED);
    json_decref(out);
    json_decref(pool);
    kp_store_team_t *t;
    int n;
    assert_int_equal(kp_store_teams_list(f->s, NULL, &t, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(t[0].name, "both");
    assert_int_equal(t[0].tokens, 1);
    assert_int_equal(t[0].resources, 1);
    assert_string_equal(t[0].created, "2020-05-01T00:00:00Z"); /* its topic came first */
    assert_string_equal(t[1].name, "only-res");
    assert_int_equal(t[1].tokens, 0);
    assert_int_equal(t[1].resources, 2);
    assert_string_equal(t[1].created, "2020-01-01T00:00:00Z");
    assert_string_equal(t[1].token_created, "");
    assert_string_equal(t[2].name, "only-token");
    assert_int_equal(t[2].resources, 0);
    assert_string_equal(t[2].created, t[2].token_created);
    kp_store_teams_free(t, n);
    /* one by name; an unknown name is no row */
    assert_int_equal(kp_store_teams_list(f->s, "nobody", &t, &n), 0);
    assert_int_equal(n, 0);
    kp_store_teams_free(t, n);
}

static void test_revocation_survives_reopen(void **state)
{
    fixture_t *f = *state;
    char t1[65], t2[65];
    int revoked;
    assert_int_equal(kp_store_team_token_create(f->s, "team-a", t1), KP_STORE_CREATED);
    assert_int_equal(kp_store_team_token_rotate(f->s, "team-a", t2, &revoked), KP_STORE_UPDATED);
    kp_store_close(f->s);
    char err[256];
    f->s = kp_store_open(f->path, err, sizeof(err));
    assert_non_null(f->s);
    assert_false(token_is(f->s, t1, "team-a"));
    assert_true(token_is(f->s, t2, "team-a"));
    /* only hashes are stored: neither token appears in the database or its log, the hash
     * of the valid one does (so the search below looks at the right bytes) */
    kp_buf_t all;
    kp_buf_init(&all);
    for (int i = 0; i < 2; i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof(p), "%s%s", f->path, i ? "-wal" : "");
        FILE *db = fopen(p, "rb");
        if (!db && i) continue; /* no log right now */
        assert_non_null(db);
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), db)) > 0) kp_buf_append(&all, chunk, n);
        fclose(db);
    }
    char hash[65];
    sha256_hex(t2, hash);
    assert_non_null(memmem(all.data, all.len, hash, 64));
    assert_null(memmem(all.data, all.len, t1, 64));
    assert_null(memmem(all.data, all.len, t2, 64));
    kp_buf_free(&all);
}

/* A store written before tokens could be revoked: its tokens table has no revoked column. */
static void test_store_without_revoked_column(void **state)
{
    fixture_t *f = *state;
    kp_store_close(f->s);
    f->s = NULL;
    remove(f->path);
    const char *token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char hash[65];
    sha256_hex(token, hash);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "CREATE TABLE tokens(hash TEXT PRIMARY KEY, ns TEXT, description TEXT,"
             " created TEXT NOT NULL);"
             "INSERT INTO tokens VALUES('%s', 'old-team', 'team token', '2025-01-01T00:00:00Z');",
             hash);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[256], tok[65];
    f->s = kp_store_open(f->path, err, sizeof(err));
    assert_non_null(f->s);
    assert_true(token_is(f->s, token, "old-team"));
    assert_int_equal(kp_store_team_token_create(f->s, "old-team", tok), KP_STORE_EXISTS);
    int revoked;
    assert_int_equal(kp_store_team_tokens_revoke(f->s, "old-team", &revoked), KP_STORE_UPDATED);
    assert_int_equal(revoked, 1);
    assert_false(token_is(f->s, token, "old-team"));
}

/* Removing an object is a change: it takes a resourceVersion, so a watch (k8s_watch.c),
 * which follows the store's resourceVersion, sees the removal. */
static void test_remove_takes_a_resource_version(void **state)
{
    fixture_t *f = *state;
    json_t *obj = json_pack("{s:s, s:{s:s, s:s}}", "kind", "Topic", "metadata", "name", "t",
                            "namespace", "team-a"),
           *out = NULL, *items;
    assert_int_equal(kp_store_put(f->s, obj, -1, 0, &out), KP_STORE_CREATED);
    json_decref(out);
    json_decref(obj);
    int64_t before, after;
    assert_int_equal(kp_store_list(f->s, "Topic", NULL, &items, &before), KP_STORE_OK);
    json_decref(items);
    assert_int_equal(kp_store_remove(f->s, "Topic", "team-a", "t"), KP_STORE_OK);
    assert_int_equal(kp_store_list(f->s, "Topic", NULL, &items, &after), KP_STORE_OK);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
    assert_true(after == before + 1);
    /* removing what is not there changes nothing */
    assert_int_equal(kp_store_remove(f->s, "Topic", "team-a", "t"), KP_STORE_NOT_FOUND);
    assert_int_equal(kp_store_list(f->s, "Topic", NULL, &items, &after), KP_STORE_OK);
    json_decref(items);
    assert_true(after == before + 1);
}

static json_t *topic_obj(const char *ns, const char *name, const char *pool)
{
    return json_pack("{s:s, s:{s:s, s:s}, s:{s:s}}", "kind", "Topic", "metadata", "name", name,
                     "namespace", ns, "spec", "pool", pool);
}

static int64_t rv_of(json_t *obj)
{
    return atoll(
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion")));
}

/* A get for a known resourceVersion answers UNCHANGED without the object until the object
 * changes (a put, a status write), then the new object; NOT_FOUND once removed. */
static void test_get_if_changed(void **state)
{
    fixture_t *f = *state;
    json_t *obj = topic_obj("team-a", "t", "dev"), *out = NULL, *got = NULL;
    assert_int_equal(kp_store_put(f->s, obj, -1, 0, &out), KP_STORE_CREATED);
    int64_t rv0 = rv_of(out), rv = -1;
    json_decref(out);
    assert_int_equal(kp_store_get_if_changed(f->s, "Topic", "team-a", "t", -1, &got, &rv),
                     KP_STORE_OK);
    assert_non_null(got);
    assert_true(rv == rv0);
    json_decref(got);
    got = NULL;
    assert_int_equal(kp_store_get_if_changed(f->s, "Topic", "team-a", "t", rv0, &got, &rv),
                     KP_STORE_UNCHANGED);
    assert_null(got);
    assert_true(rv == rv0);
    json_t *status = json_pack("{s:s}", "synchronizationState", "RolloutComplete");
    assert_int_equal(kp_store_put_status(f->s, "Topic", "team-a", "t", status, NULL),
                     KP_STORE_UPDATED);
    json_decref(status);
    assert_int_equal(kp_store_get_if_changed(f->s, "Topic", "team-a", "t", rv0, &got, &rv),
                     KP_STORE_OK);
    assert_true(rv > rv0);
    assert_true(rv_of(got) == rv);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(got, "status"), "synchronizationState")),
        "RolloutComplete");
    json_decref(got);
    assert_int_equal(kp_store_remove(f->s, "Topic", "team-a", "t"), KP_STORE_OK);
    got = NULL;
    assert_int_equal(kp_store_get_if_changed(f->s, "Topic", "team-a", "t", rv, &got, &rv),
                     KP_STORE_NOT_FOUND);
    assert_null(got);
    json_decref(obj);
}

/* Keys and one field of every object of a kind, sorted, without the bodies; each read sees
 * the writes before it (the statements are kept prepared between calls). */
static void test_keys_and_fields(void **state)
{
    fixture_t *f = *state;
    const char *names[][3] = {
        {"team-b", "x", "prod"}, {"team-a", "z", "dev"}, {"team-a", "a", "dev"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *obj = topic_obj(names[i][0], names[i][1], names[i][2]), *out = NULL;
        assert_int_equal(kp_store_put(f->s, obj, -1, 0, &out), KP_STORE_CREATED);
        json_decref(out);
        json_decref(obj);
    }
    /* a Topic without a string spec.pool, and another kind that must not show */
    json_t *obj = json_pack("{s:s, s:{s:s, s:s}, s:{s:i}}", "kind", "Topic", "metadata", "name",
                            "n", "namespace", "team-c", "spec", "pool", 3),
           *out = NULL;
    assert_int_equal(kp_store_put(f->s, obj, -1, 0, &out), KP_STORE_CREATED);
    json_decref(out);
    json_decref(obj);
    obj = json_pack("{s:s, s:{s:s, s:s}, s:{s:s}}", "kind", "Stream", "metadata", "name", "s",
                    "namespace", "team-a", "spec", "pool", "dev");
    assert_int_equal(kp_store_put(f->s, obj, -1, 0, &out), KP_STORE_CREATED);
    json_decref(out);
    json_decref(obj);

    kp_store_key_t *k;
    size_t n;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(kp_store_keys(f->s, "Topic", &k, &n), 0);
        assert_int_equal(n, 4 - round);
        assert_string_equal(k[0].ns, "team-a");
        assert_string_equal(k[0].name, "a");
        assert_string_equal(k[1].name, "z");
        assert_string_equal(k[2].ns, "team-b");
        json_t *got = NULL;
        assert_int_equal(kp_store_get(f->s, "Topic", k[1].ns, k[1].name, &got), KP_STORE_OK);
        assert_true(rv_of(got) == k[1].rv);
        json_decref(got);
        kp_store_keys_free(k, n);
        assert_int_equal(kp_store_remove(f->s, "Topic", "team-c", "n"),
                         round ? KP_STORE_NOT_FOUND : KP_STORE_OK);
    }
    kp_store_field_t *fl;
    assert_int_equal(kp_store_fields(f->s, "Topic", "$.spec.pool", &fl, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(fl[0].value, "dev");
    assert_string_equal(fl[1].value, "dev");
    assert_string_equal(fl[2].key.name, "x");
    assert_string_equal(fl[2].value, "prod");
    kp_store_fields_free(fl, n);
    assert_int_equal(kp_store_fields(f->s, "Topic", "$.spec.missing", &fl, &n), 0);
    assert_int_equal(n, 3);
    assert_null(fl[0].value);
    kp_store_fields_free(fl, n);
    assert_int_equal(kp_store_keys(f->s, "Nothing", &k, &n), 0);
    assert_int_equal(n, 0);
    kp_store_keys_free(k, n);
}

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

/* Every write that moves the resourceVersion tells the listeners (specs, statuses, removals,
 * restores); reads and writes that change nothing do not; an unlistened one hears nothing
 * more. The data_version stays put for the store's own writes and moves when another
 * connection (another process) commits, as kp_store_rv then shows. */
static void test_listeners_and_data_version(void **state)
{
    fixture_t *f = *state;
    int calls = 0, other = 0;
    assert_int_equal(kp_store_listen(f->s, count_call, &calls), 0);
    assert_int_equal(kp_store_listen(f->s, count_call, &other), 0);
    int64_t version = kp_store_data_version(f->s);
    assert_true(version >= 0);
    assert_int_equal(kp_store_rv(f->s), 0);
    json_t *obj = topic_obj("team-a", "t", "dev"), *out = NULL;
    assert_int_equal(kp_store_put(f->s, obj, -1, 0, &out), KP_STORE_CREATED);
    json_decref(out);
    assert_int_equal(calls, 1);
    assert_int_equal(kp_store_rv(f->s), 1);
    assert_int_equal(kp_store_put(f->s, obj, -1, 0, &out), KP_STORE_UNCHANGED);
    json_decref(out);
    json_t *items;
    assert_int_equal(kp_store_list(f->s, "Topic", NULL, &items, NULL), KP_STORE_OK);
    json_decref(items);
    assert_int_equal(calls, 1);
    json_t *status = json_pack("{s:s}", "synchronizationState", "RolloutComplete");
    assert_int_equal(kp_store_put_status(f->s, "Topic", "team-a", "t", status, NULL),
                     KP_STORE_UPDATED);
    assert_int_equal(kp_store_put_status(f->s, "Topic", "team-a", "t", status, NULL),
                     KP_STORE_UNCHANGED);
    json_decref(status);
    assert_int_equal(calls, 2);
    assert_int_equal(kp_store_restore(f->s, obj, 1), KP_STORE_UPDATED);
    assert_int_equal(calls, 3);
    kp_store_unlisten(f->s, count_call, &other);
    assert_int_equal(kp_store_remove(f->s, "Topic", "team-a", "t"), KP_STORE_OK);
    assert_int_equal(calls, 4);
    assert_int_equal(other, 3);
    assert_int_equal(kp_store_rv(f->s), 4);
    assert_true(kp_store_data_version(f->s) == version);
    /* another connection commits: the data_version moves, no listener is told */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value='9' WHERE key='rv'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_true(kp_store_data_version(f->s) != version);
    assert_int_equal(kp_store_rv(f->s), 9);
    assert_int_equal(calls, 4);
    kp_store_unlisten(f->s, count_call, &calls);
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_once_then_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_revokes_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_all_then_create_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_joins_tokens_and_namespaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_without_revoked_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_takes_a_resource_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_if_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_and_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listeners_and_data_version, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
