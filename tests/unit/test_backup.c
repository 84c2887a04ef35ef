/*
 * test_backup.c — control/backup_format: the checksum (computed, verified, independent of
 * formatting and gzip), damage refused (every single-bit flip of a plain and of a gzip
 * file), version and format checks, record bytes as JSON, file names, atomic writes under
 * injected faults (no partial file, no temp file), retention selection, and the store's
 * restore of objects with their uid and generation kept.
 */
#include "unit.h"

#include "control/backup_format.h"
#include "control/store.h"

#include <dirent.h>
#include <errno.h>

/* A small but complete backup document. */
static json_t *sample_doc(void)
{
    json_t *doc = json_pack(
        "{s:s, s:i, s:s, s:s, s:[{s:s, s:i, s:i, s:{s:s, s:s}}], s:[{s:s, s:s, s:s, s:s, s:s, "
        "s:s, s:s}], s:[], s:[{s:s, s:s, s:{s:s, s:s, s:s, s:i}, s:{s:s}}], s:{s:s, s:i, s:[]}}",
        "format", KP_BACKUP_FORMAT, "formatVersion", KP_BACKUP_FORMAT_VERSION, "pool", "dev",
        "createdAt", "2026-11-27T08:00:00.123Z", "topics", "name", "team.orders", "partitions", 3,
        "replicationFactor", 1, "configs", "retention.ms", "86400000", "cleanup.policy", "delete",
        "acls", "resourceType", "TOPIC", "resourceName", "team.orders", "patternType", "LITERAL",
        "principal", "User:CN=team_app_1234abcd_1", "host", "*", "operation", "READ", "permission",
        "ALLOW", "serviceUsers", "resources", "apiVersion", "kafka.nais.io/v1", "kind", "Topic",
        "metadata", "name", "orders", "namespace", "team", "uid",
        "6f1c1d2e-0000-4000-8000-000000000001", "generation", 2, "spec", "pool", "dev", "schemas",
        "topic", "_schemas", "partitions", 1, "records");
    json_t *rec = json_pack("{s:i, s:i}", "partition", 0, "offset", 0);
    const char *key = "{\"keytype\":\"SCHEMA\",\"subject\":\"s\",\"version\":1,\"magic\":1}";
    const char *value = "{\"subject\":\"s\",\"version\":1,\"id\":1,\"schema\":\"\\\"string\\\"\","
                        "\"deleted\":false}";
    kp_backup_bytes_put(rec, "key", key, strlen(key), 0);
    kp_backup_bytes_put(rec, "value", value, strlen(value), 0);
    json_array_append_new(json_object_get(json_object_get(doc, "schemas"), "records"), rec);
    assert_non_null(doc);
    assert_int_equal(kp_backup_seal(doc), 0);
    return doc;
}

static void test_checksum_computed_and_verified(void **state)
{
    (void)state;
    json_t *doc = sample_doc();
    const char *sum = json_string_value(json_object_get(doc, "checksum"));
    assert_non_null(sum);
    assert_int_equal(strlen(sum), 7 + 64);
    assert_true(!strncmp(sum, "sha256:", 7));
    char err[512];
    assert_int_equal(kp_backup_verify(doc, err, sizeof(err)), 0);
    /* the checksum does not depend on member order or formatting: every encoding verifies */
    for (int gz = 0; gz < 2; gz++) {
        kp_buf_t b;
        kp_buf_init(&b);
        kp_backup_encode(doc, gz, &b);
        if (gz) assert_true(b.data[0] == 0x1f && b.data[1] == 0x8b);
        json_t *back = kp_backup_decode(b.data, b.len, err, sizeof(err));
        assert_non_null(back);
        assert_int_equal(kp_backup_verify(back, err, sizeof(err)), 0);
        assert_true(json_equal(doc, back));
        json_decref(back);
        kp_buf_free(&b);
    }
    /* a re-serialization with other indentation verifies too */
    char *compact = json_dumps(doc, JSON_COMPACT);
    json_t *again = kp_backup_decode((const uint8_t *)compact, strlen(compact), err, sizeof(err));
    assert_int_equal(kp_backup_verify(again, err, sizeof(err)), 0);
    /* any change of content does not */
    json_object_set_new(json_array_get(json_object_get(again, "topics"), 0), "partitions",
                        json_integer(4));
    assert_int_equal(kp_backup_verify(again, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "checksum mismatch"));
    free(compact);
    json_decref(again);
    json_decref(doc);
}

/* Every single-bit flip of the file is refused — by the parser, gzip's CRC or the checksum —
 * or leaves the document exactly as it was (gzip's header fields MTIME, XFL and OS are
 * outside its CRC and carry no content). */
static void flips_refused(int gz)
{
    json_t *doc = sample_doc();
    kp_buf_t b;
    kp_buf_init(&b);
    kp_backup_encode(doc, gz, &b);
    ut_rand_t r;
    ut_rand_seed(&r, 42);
    char err[512];
    for (size_t i = 0; i < b.len; i++) {
        int bit = i % 2 ? (int)ut_rand_below(&r, 8) : 0;
        b.data[i] ^= (uint8_t)(1u << bit);
        json_t *back = kp_backup_decode(b.data, b.len, err, sizeof(err));
        int refused =
            !back || kp_backup_verify(back, err, sizeof(err)) < 0 || (gz && json_equal(back, doc));
        if (!refused) fprintf(stderr, "flip of bit %d at byte %zu was not refused\n", bit, i);
        assert_true(refused);
        json_decref(back);
        b.data[i] ^= (uint8_t)(1u << bit);
    }
    /* and cutting the file short anywhere */
    for (size_t n = 0; n < b.len; n += 7) {
        json_t *back = kp_backup_decode(b.data, n, err, sizeof(err));
        assert_true(!back || kp_backup_verify(back, err, sizeof(err)) < 0);
        json_decref(back);
    }
    kp_buf_free(&b);
    json_decref(doc);
}

static void test_flipped_byte_refused_plain(void **state)
{
    (void)state;
    flips_refused(0);
}

static void test_flipped_byte_refused_gzip(void **state)
{
    (void)state;
    flips_refused(1);
}

static void test_format_and_version_checked(void **state)
{
    (void)state;
    char err[512];
    json_t *doc = sample_doc();
    json_object_set_new(doc, "formatVersion", json_integer(KP_BACKUP_FORMAT_VERSION + 1));
    kp_backup_seal(doc);
    assert_int_equal(kp_backup_verify(doc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "newer"));
    json_object_set_new(doc, "format", json_string("something-else"));
    assert_int_equal(kp_backup_verify(doc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a kpool backup"));
    json_decref(doc);
    doc = sample_doc();
    json_object_del(doc, "checksum");
    assert_int_equal(kp_backup_verify(doc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "checksum is missing"));
    json_decref(doc);
    assert_null(kp_backup_decode((const uint8_t *)"", 0, err, sizeof(err)));
    assert_null(kp_backup_decode((const uint8_t *)"[1]", 3, err, sizeof(err)));
    assert_null(kp_backup_decode((const uint8_t *)"{\"a\":", 5, err, sizeof(err)));
    assert_non_null(strstr(err, "not valid JSON"));
}

static void test_record_bytes(void **state)
{
    (void)state;
    json_t *o = json_object();
    const uint8_t bin[] = {0x00, 0xff, 0xfe, 'a', 0x80};
    kp_backup_bytes_put(o, "key", "text", 4, 0);
    kp_backup_bytes_put(o, "value", bin, sizeof(bin), 0);
    kp_backup_bytes_put(o, "k2", NULL, 0, 1);
    kp_backup_bytes_put(o, "k3", "", 0, 0);
    assert_string_equal(json_string_value(json_object_get(o, "key")), "text");
    assert_non_null(json_object_get(o, "valueBase64"));
    assert_true(json_is_null(json_object_get(o, "k2")));
    uint8_t *p;
    size_t n;
    assert_int_equal(kp_backup_bytes_get(o, "value", &p, &n), 0);
    assert_int_equal(n, sizeof(bin));
    assert_memory_equal(p, bin, n);
    free(p);
    for (size_t len = 0; len < sizeof(bin); len++) { /* every padding case */
        json_t *x = json_object();
        kp_backup_bytes_put(x, "v", bin + 1, len, 0);
        assert_int_equal(kp_backup_bytes_get(x, "v", &p, &n), 0);
        assert_int_equal(n, len);
        if (len) assert_memory_equal(p, bin + 1, len);
        free(p);
        json_decref(x);
    }
    assert_int_equal(kp_backup_bytes_get(o, "k2", &p, &n), 0);
    assert_null(p);
    assert_int_equal(kp_backup_bytes_get(o, "k3", &p, &n), 0);
    assert_non_null(p);
    assert_int_equal(n, 0);
    free(p);
    assert_int_equal(kp_backup_bytes_get(o, "missing", &p, &n), -1);
    json_object_set_new(o, "badBase64", json_string("abc"));
    assert_int_equal(kp_backup_bytes_get(o, "bad", &p, &n), -1);
    json_decref(o);
}

static void test_file_names(void **state)
{
    (void)state;
    char name[128], pool[64];
    int64_t t = 1795766400123LL, back;
    kp_backup_file_name("dev-pool", t, 1, name, sizeof(name));
    assert_true(!strncmp(name, "dev-pool-", 9));
    assert_string_equal(name + strlen(name) - 13, ".123Z.json.gz");
    assert_int_equal(kp_backup_file_parse(name, pool, sizeof(pool), &back), 0);
    assert_string_equal(pool, "dev-pool");
    assert_int_equal(back, t);
    kp_backup_file_name("dev", t, 0, name, sizeof(name));
    assert_int_equal(kp_backup_file_parse(name, pool, sizeof(pool), &back), 0);
    assert_int_equal(back, t);
    const char *bad[] = {"dev.json",
                         ".dev-20261127T080000.123Z.json.tmp",
                         "-20261127T080000.123Z.json",
                         "dev-20261127T080000.123.json",
                         "dev-2026112xT080000.123Z.json",
                         "dev-20261127T080000.123Z.yaml",
                         "dev_20261127T080000.123Z.json"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(kp_backup_file_parse(bad[i], pool, sizeof(pool), &back), -1);
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_atomic_write_leaves_no_partial_file(void **state)
{
    (void)state;
    char dir[PATH_MAX], err[512], path[PATH_MAX + 64];
    ut_tmpdir_make(dir, sizeof(dir));
    json_t *doc = sample_doc();
    kp_buf_t b;
    kp_buf_init(&b);
    kp_backup_encode(doc, 0, &b);
    kp_fs = &kp_fs_faulty;
    /* disk full part way, at every size up to the whole file: nothing stays behind */
    for (int64_t budget = 0; budget < (int64_t)b.len; budget += 97) {
        kp_fs_faults.write_budget = budget;
        assert_int_equal(kp_backup_file_write(dir, "dev-20261127T080000.123Z.json", b.data, b.len,
                                              err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "No space"));
        assert_int_equal(dir_entries(dir), 0);
    }
    kp_fs_faults.write_budget = -1;
    kp_fs_faults.fail_fsync = 1;
    assert_int_equal(
        kp_backup_file_write(dir, "dev-20261127T080000.123Z.json", b.data, b.len, err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "fsync"));
    assert_int_equal(dir_entries(dir), 0);
    kp_fs_faults.fail_fsync = 0;
    /* a good write: the file, whole, and no temp file */
    assert_int_equal(
        kp_backup_file_write(dir, "dev-20261127T080000.123Z.json", b.data, b.len, err, sizeof(err)),
        0);
    assert_int_equal(dir_entries(dir), 1);
    snprintf(path, sizeof(path), "%s/dev-20261127T080000.123Z.json", dir);
    size_t size = 0;
    json_t *back = kp_backup_file_read(path, &size, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(size, b.len);
    assert_int_equal(kp_backup_verify(back, err, sizeof(err)), 0);
    /* a failed later write leaves the earlier file as it was */
    kp_fs_faults.write_budget = 10;
    assert_int_equal(
        kp_backup_file_write(dir, "dev-20261127T090000.123Z.json", b.data, b.len, err, sizeof(err)),
        -1);
    kp_fs_faults.write_budget = -1;
    assert_int_equal(dir_entries(dir), 1);
    assert_int_equal(ut_file_size(path), (int64_t)b.len);
    kp_fs = &kp_fs_posix;
    json_decref(back);
    json_decref(doc);
    kp_buf_free(&b);
    ut_tmpdir_remove(dir);
}

static void test_retention_selection(void **state)
{
    (void)state;
    const int64_t day = 86400000, now = 100 * day;
    /* newest first: now, -1h, -1d-1, -3d, -8d, -9d */
    int64_t t[] = {now, now - 3600000, now - day - 1, now - 3 * day, now - 8 * day, now - 9 * day};
    int ok[6] = {1, 1, 1, 1, 1, 1}, del[6];
    /* no limits: keep everything */
    assert_int_equal(kp_backup_retention_select(t, ok, 6, now, 0, 0, del), 0);
    /* by count */
    assert_int_equal(kp_backup_retention_select(t, ok, 6, now, 2, 0, del), 4);
    assert_true(!del[0] && !del[1] && del[2] && del[3] && del[4] && del[5]);
    /* by age: older than 7 days */
    assert_int_equal(kp_backup_retention_select(t, ok, 6, now, 0, 7, del), 2);
    assert_true(!del[3] && del[4] && del[5]);
    /* both: either limit deletes */
    assert_int_equal(kp_backup_retention_select(t, ok, 6, now, 4, 1, del), 4);
    assert_true(!del[0] && !del[1] && del[2] && del[3]);
    /* the newest good backup is kept even when it is past both limits */
    int bad_first[6] = {0, 0, 0, 0, 0, 1};
    assert_int_equal(kp_backup_retention_select(t, bad_first, 6, now, 1, 1, del), 4);
    assert_true(!del[0] && del[1] && del[2] && del[3] && del[4] && !del[5]);
    /* all old: the newest good one stays */
    int64_t old[] = {now - 30 * day, now - 31 * day};
    int ok2[2] = {1, 1}, del2[2];
    assert_int_equal(kp_backup_retention_select(old, ok2, 2, now, 0, 7, del2), 1);
    assert_true(!del2[0] && del2[1]);
    assert_int_equal(kp_backup_retention_select(old, ok2, 0, now, 1, 1, del2), 0);
}

static void test_acl_names(void **state)
{
    (void)state;
    for (int v = 0; v < 16; v++) {
        const char *n = kp_backup_acl_operation_name(v);
        if (n) assert_int_equal(kp_backup_acl_operation_value(n), v);
    }
    assert_string_equal(kp_backup_acl_resource_name(2), "TOPIC");
    assert_string_equal(kp_backup_acl_pattern_name(4), "PREFIXED");
    assert_string_equal(kp_backup_acl_permission_name(3), "ALLOW");
    assert_int_equal(kp_backup_acl_resource_value("GROUP"), 3);
    assert_int_equal(kp_backup_acl_operation_value("IDEMPOTENT_WRITE"), 12);
    assert_int_equal(kp_backup_acl_permission_value("nope"), -1);
    assert_null(kp_backup_acl_operation_name(99));
}

static void test_store_restore_keeps_identity(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 16], err[256];
    ut_tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/kpool.db", dir);
    kp_store_t *s = kp_store_open(path, err, sizeof(err));
    assert_non_null(s);
    json_t *obj =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:i, s:s, s:s}, s:{s:s}, s:{s:s}}", "apiVersion",
                  "aiven.nais.io/v1", "kind", "AivenApplication", "metadata", "name", "app",
                  "namespace", "team", "uid", "the-uid", "generation", 7, "creationTimestamp",
                  "2026-01-01T00:00:00Z", "resourceVersion", "999", "spec", "secretName", "x",
                  "status", "synchronizationState", "RolloutComplete");
    assert_int_equal(kp_store_restore(s, obj, 0), KP_STORE_CREATED);
    json_t *got = NULL;
    assert_int_equal(kp_store_get(s, "AivenApplication", "team", "app", &got), KP_STORE_OK);
    json_t *md = json_object_get(got, "metadata");
    assert_string_equal(json_string_value(json_object_get(md, "uid")), "the-uid");
    assert_int_equal(json_integer_value(json_object_get(md, "generation")), 7);
    assert_string_equal(json_string_value(json_object_get(md, "creationTimestamp")),
                        "2026-01-01T00:00:00Z");
    assert_string_not_equal(json_string_value(json_object_get(md, "resourceVersion")), "999");
    assert_null(json_object_get(got, "status"));
    json_decref(got);
    /* present: kept unless replace */
    assert_int_equal(kp_store_restore(s, obj, 0), KP_STORE_EXISTS);
    assert_int_equal(kp_store_restore(s, obj, 1), KP_STORE_UPDATED);
    json_decref(obj);
    kp_store_close(s);
    ut_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_computed_and_verified),
        cmocka_unit_test(test_flipped_byte_refused_plain),
        cmocka_unit_test(test_flipped_byte_refused_gzip),
        cmocka_unit_test(test_format_and_version_checked),
        cmocka_unit_test(test_record_bytes),
        cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_atomic_write_leaves_no_partial_file),
        cmocka_unit_test(test_retention_selection),
        cmocka_unit_test(test_acl_names),
        cmocka_unit_test(test_store_restore_keeps_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
