/*
 * test_credentials.c — control/ naming and secrets at rest: the service user name rule
 * (SPEC 3: prefixes dropped, lengths, the uid-derived id, generation), the NAIS secret name rule
 * (SPEC 2.4: ISO week, at most 63 characters, distinct per generation and per object, the -<n>
 * suffix), and sealing Secret data (round trip, bound to the secret's namespace and name,
 * tampering and the wrong key refused, no plaintext in the sealed form), and the registry
 * password verifier.
 */
#include "unit.h"

#include "control/control_int.h"
#include "control/kinds.h"
#include "control/secrets.h"

#include <time.h>
#include <openssl/evp.h>

static void test_service_user_name_rule(void **state)
{
    (void)state;
    char out[128], want[128];
    kp_service_user_name("team-orders", "team-orders-api", "uid-1", 3, out, sizeof(out));
    /* the id: the first 4 bytes of SHA-256("kpool service user/" + uid), in hex */
    unsigned char md[32];
    unsigned mdlen;
    EVP_Digest("kpool service user/uid-1", 24, md, &mdlen, EVP_sha256(), NULL);
    snprintf(want, sizeof(want), "orders_api_%02x%02x%02x%02x_3", md[0], md[1], md[2], md[3]);
    assert_string_equal(out, want);
    /* "team" without a dash, app without the team prefix */
    kp_service_user_name("teamx", "billing", "u", 1, out, sizeof(out));
    assert_true(!strncmp(out, "x_billing_", 10));
    /* an app that is only the team name keeps its name */
    kp_service_user_name("myteam", "myteam", "u", 1, out, sizeof(out));
    assert_true(!strncmp(out, "myteam_myteam_", 14));
    /* the longest parts are cut to 20 and 30 characters: <= 64 with the suffix */
    char team[64], app[80];
    memset(team, 't', 63), team[63] = 0;
    memset(app, 'a', 79), app[79] = 0;
    kp_service_user_name(team, app, "u", 999999, out, sizeof(out));
    assert_true(strlen(out) <= 64);
    assert_int_equal(strchr(out, '_') - out, 20);
    /* generations differ only in the suffix */
    char g1[128], g2[128];
    kp_service_user_name("a", "b", "u", 1, g1, sizeof(g1));
    kp_service_user_name("a", "b", "u", 2, g2, sizeof(g2));
    assert_memory_equal(g1, g2, strlen(g1) - 1);
    assert_string_not_equal(g1, g2);
    /* two teams whose shortened parts coincide (and whose team+app concatenations are equal,
     * which gave the same CRC-32 under the old rule) differ by their objects' uids */
    char x[32], xy[40], y31[40], y32[40];
    memset(x, 'x', 21), x[21] = 0;
    snprintf(xy, sizeof(xy), "%sy", x);
    memset(y31, 'y', 31), y31[31] = 0;
    memset(y32, 'y', 32), y32[32] = 0;
    kp_service_user_name(x, y32, "5b0e4c52-0000-4000-8000-000000000001", 1, g1, sizeof(g1));
    kp_service_user_name(xy, y31, "5b0e4c52-0000-4000-8000-000000000002", 1, g2, sizeof(g2));
    assert_string_not_equal(g1, g2);
    assert_memory_equal(g1, g2, 20 + 1 + 30); /* the readable parts are the same */
}

static void test_secret_name_rule(void **state)
{
    (void)state;
    /* 2026-01-01 is a Thursday: ISO week 1 of 2026; 2027-01-01 (a Friday) is 2026-W53 */
    struct tm tm = {.tm_year = 2027 - 1900, .tm_mon = 0, .tm_mday = 1, .tm_hour = 12};
    time_t t = timegm(&tm);
    char a[128], b[128], c[128], d[128];
    kp_application_secret_name("team", "orders-api", "uid-1", 1, t, 0, a, sizeof(a));
    assert_true(!strncmp(a, "aiven-kafka-orders-api-", 23));
    assert_string_equal(a + strlen(a) - 8, "-2026-53");
    kp_application_secret_name("team", "orders-api", "uid-1", 2, t, 0, b, sizeof(b));
    kp_application_secret_name("team", "orders-api", "uid-2", 1, t, 0, c, sizeof(c));
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    kp_application_secret_name("team", "orders-api", "uid-1", 1, t, 2, d, sizeof(d));
    assert_int_equal(strlen(d), strlen(a) + 2);
    assert_string_equal(d + strlen(a), "-2");
    /* the longest app name still gives a valid name of at most 63 characters */
    char app[64];
    memset(app, 'x', 63), app[63] = 0;
    app[30] = '-'; /* a cut that would end in '-' is trimmed */
    char why[128];
    kp_application_secret_name("team", app, "u", 7, t, 99, d, sizeof(d));
    assert_true(strlen(d) <= 63);
    assert_int_equal(kp_name_check(d, 1, why, sizeof(why)), 0);
}

static json_t *secret(const char *ns, const char *name)
{
    return json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s}}", "kind", "Secret", "metadata", "name",
                     name, "namespace", ns, "data", "KAFKA_PRIVATE_KEY",
                     "c2VjcmV0LWtleQ==", "KAFKA_BROKERS", "aG9zdDo5MDkz");
}

static void test_secret_seal_round_trip_and_binding(void **state)
{
    (void)state;
    kp_pki_master_key_t mk, other;
    memset(mk.bytes, 7, sizeof(mk.bytes));
    memset(other.bytes, 8, sizeof(other.bytes));
    char err[256];
    json_t *s = secret("a", "creds");
    json_t *orig = json_deep_copy(json_object_get(s, "data"));
    assert_int_equal(kp_secret_seal(&mk, s, err, sizeof(err)), 0);
    assert_null(json_object_get(s, "data"));
    const char *sealed = json_string_value(json_object_get(s, "sealedData"));
    assert_non_null(sealed);
    assert_null(strstr(sealed, "c2VjcmV0LWtleQ")); /* not merely re-encoded */
    json_t *copy = json_deep_copy(s);
    assert_int_equal(kp_secret_open(&mk, copy, err, sizeof(err)), 0);
    assert_true(json_equal(json_object_get(copy, "data"), orig));
    assert_null(json_object_get(copy, "sealedData"));
    json_decref(copy);
    /* moved to another name or namespace: refused */
    copy = json_deep_copy(s);
    json_object_set_new(json_object_get(copy, "metadata"), "namespace", json_string("b"));
    assert_int_equal(kp_secret_open(&mk, copy, err, sizeof(err)), -1);
    assert_null(strstr(err, "secret-key"));
    json_decref(copy);
    /* the wrong key, and a flipped character */
    copy = json_deep_copy(s);
    assert_int_equal(kp_secret_open(&other, copy, err, sizeof(err)), -1);
    json_decref(copy);
    copy = json_deep_copy(s);
    char *t = strdup(sealed);
    t[20] = t[20] == 'A' ? 'B' : 'A';
    json_object_set_new(copy, "sealedData", json_string(t));
    free(t);
    assert_int_equal(kp_secret_open(&mk, copy, err, sizeof(err)), -1);
    json_decref(copy);
    /* data that is not a map is refused; a secret without data is left alone */
    json_t *bad =
        json_pack("{s:{s:s, s:s}, s:s}", "metadata", "name", "x", "namespace", "a", "data", "x");
    assert_int_equal(kp_secret_seal(&mk, bad, err, sizeof(err)), -1);
    json_decref(bad);
    json_t *empty = json_pack("{s:{s:s, s:s}}", "metadata", "name", "x", "namespace", "a");
    assert_int_equal(kp_secret_seal(&mk, empty, err, sizeof(err)), 0);
    assert_int_equal(kp_secret_open(&mk, empty, err, sizeof(err)), 0);
    json_decref(empty);
    json_decref(orig);
    json_decref(s);
}

static void test_registry_password_verifier(void **state)
{
    (void)state;
    char h1[KP_PKI_PASSWORD_HASH_LEN], h2[KP_PKI_PASSWORD_HASH_LEN];
    assert_int_equal(kp_pki_password_hash("s3cret-Password_0123456789abcdef", h1), 0);
    assert_int_equal(kp_pki_password_hash("s3cret-Password_0123456789abcdef", h2), 0);
    assert_string_not_equal(h1, h2); /* salted */
    assert_null(strstr(h1, "s3cret"));
    assert_true(kp_pki_password_verify("s3cret-Password_0123456789abcdef", h1));
    assert_true(kp_pki_password_verify("s3cret-Password_0123456789abcdef", h2));
    assert_false(kp_pki_password_verify("s3cret-Password_0123456789abcdeF", h1));
    assert_false(kp_pki_password_verify("", h1));
    assert_false(kp_pki_password_verify(NULL, h1));
    assert_false(kp_pki_password_verify("x", NULL));
    assert_false(kp_pki_password_verify("x", "sha256$short$abc"));
    assert_false(kp_pki_password_verify("x", "md5$whatever"));
    h1[strlen(h1) - 1] ^= 1; /* a damaged digest */
    assert_false(kp_pki_password_verify("s3cret-Password_0123456789abcdef", h1));
}

static void test_glob_match(void **state)
{
    (void)state;
    assert_true(kp_glob_match("*", "anything"));
    assert_true(kp_glob_match("*", ""));
    assert_true(kp_glob_match("orders-*", "orders-api"));
    assert_false(kp_glob_match("orders-*", "billing"));
    assert_true(kp_glob_match("*-api", "orders-api"));
    assert_true(kp_glob_match("a*b*c", "axxbyyc"));
    assert_false(kp_glob_match("a*b*c", "axxbyy"));
    assert_true(kp_glob_match("billing", "billing"));
    assert_false(kp_glob_match("billing", "billing2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_user_name_rule),
        cmocka_unit_test(test_secret_name_rule),
        cmocka_unit_test(test_secret_seal_round_trip_and_binding),
        cmocka_unit_test(test_registry_password_verifier),
        cmocka_unit_test(test_glob_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
