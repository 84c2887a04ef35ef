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

/* The team part for namespace ns: what a service user name holds before its first '_'. */
static void team_part(const char *ns, char *out, size_t n)
{
    char name[128];
    kp_service_user_name(ns, "app", "u", 1, name, sizeof(name));
    size_t l = (size_t)(strchr(name, '_') - name);
    snprintf(out, n, "%.*s", (int)l, name);
    char t[64];
    kp_service_user_team(ns, t, sizeof(t));
    assert_string_equal(t, out);
}

/* "<short>~" + the first 8 bytes of SHA-256("kpool team/" + ns), in hex */
static void hashed_team(const char *shortname, const char *ns, char *out, size_t n)
{
    char seed[128];
    int sl = snprintf(seed, sizeof(seed), "kpool team/%s", ns);
    unsigned char md[32];
    unsigned mdlen;
    EVP_Digest(seed, (size_t)sl, md, &mdlen, EVP_sha256(), NULL);
    int at = snprintf(out, n, "%s~", shortname);
    for (int i = 0; i < 8; i++) at += snprintf(out + at, n - (size_t)at, "%02x", md[i]);
}

static void test_service_user_name_rule(void **state)
{
    (void)state;
    char out[128], want[128], team[64];
    kp_service_user_name("team-orders", "team-orders-api", "uid-1", 3, out, sizeof(out));
    /* the id: the first 4 bytes of SHA-256("kpool service user/" + uid), in hex; a namespace
     * starting with "team-" is <rest, at most 8>~<hash of the namespace> */
    unsigned char md[32];
    unsigned mdlen;
    EVP_Digest("kpool service user/uid-1", 24, md, &mdlen, EVP_sha256(), NULL);
    hashed_team("orders", "team-orders", team, sizeof(team));
    snprintf(want, sizeof(want), "%s_api_%02x%02x%02x%02x_3", team, md[0], md[1], md[2], md[3]);
    assert_string_equal(out, want);
    /* "team" without a dash: hashed too; app without the namespace in front */
    kp_service_user_name("teamx", "billing", "u", 1, out, sizeof(out));
    hashed_team("x", "teamx", team, sizeof(team));
    snprintf(want, sizeof(want), "%s_billing_", team);
    assert_true(!strncmp(out, want, strlen(want)));
    /* an app that is only the team name keeps its name */
    kp_service_user_name("myteam", "myteam", "u", 1, out, sizeof(out));
    assert_true(!strncmp(out, "myteam_myteam_", 14));
    /* the longest: team part 8 + 1 + 16 = 25, app cut: <= 64 with the suffix */
    char longteam[64], app[80];
    memset(longteam, 't', 63), longteam[63] = 0;
    memset(app, 'a', 79), app[79] = 0;
    kp_service_user_name(longteam, app, "u", 999999, out, sizeof(out));
    assert_true(strlen(out) <= 64);
    assert_int_equal(strchr(out, '_') - out, 25);
    kp_service_user_name(longteam, app, "u", INT64_MAX, out, sizeof(out));
    assert_true(strlen(out) <= 64);
    /* generations differ only in the suffix */
    char g1[128], g2[128];
    kp_service_user_name("a", "b", "u", 1, g1, sizeof(g1));
    kp_service_user_name("a", "b", "u", 2, g2, sizeof(g2));
    assert_memory_equal(g1, g2, strlen(g1) - 1);
    assert_string_not_equal(g1, g2);
    /* two teams whose readable parts coincide (and whose team+app concatenations are equal,
     * which gave the same CRC-32 under the old rule) differ by their team parts and uids */
    char x[32], xy[40], y31[40], y32[40];
    memset(x, 'x', 21), x[21] = 0;
    snprintf(xy, sizeof(xy), "%sy", x);
    memset(y31, 'y', 31), y31[31] = 0;
    memset(y32, 'y', 32), y32[32] = 0;
    kp_service_user_name(x, y32, "5b0e4c52-0000-4000-8000-000000000001", 1, g1, sizeof(g1));
    kp_service_user_name(xy, y31, "5b0e4c52-0000-4000-8000-000000000002", 1, g2, sizeof(g2));
    assert_string_not_equal(g1, g2);
    assert_memory_equal(g1, g2, 8 + 1); /* the readable "xxxxxxxx~" */
    assert_memory_not_equal(g1, g2, 25);
}

/* The team part is exact or unique: two namespaces never share one, although the old rule
 * (drop "team-"/"team", cut at 20) gave x, team-x and teamx one team, and every namespace
 * sharing its first 20 characters one more. Namespaces the old rule wrote out whole keep
 * their team (the owners recorded for them stay theirs). */
static void test_service_user_team_is_unique(void **state)
{
    (void)state;
    char a[64], b[64], c[64], d[64], e[64];
    team_part("x", a, sizeof(a));
    team_part("team-x", b, sizeof(b));
    team_part("teamx", c, sizeof(c));
    assert_string_equal(a, "x"); /* unchanged from the old rule */
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(b, c);
    assert_non_null(strchr(b, '~'));
    assert_true(!strncmp(b, "x~", 2)); /* still readable */
    /* 20 characters: whole; 21 sharing those 20: hashed, and two such differ */
    team_part("abcdefghij-klmnopqrs", a, sizeof(a));
    assert_string_equal(a, "abcdefghij-klmnopqrs");
    team_part("abcdefghij-klmnopqrst", b, sizeof(b));
    team_part("abcdefghij-klmnopqrsu", c, sizeof(c));
    assert_string_not_equal(a, b);
    assert_string_not_equal(b, c);
    assert_true(!strncmp(b, "abcdefgh~", 9));
    assert_int_equal(strlen(b), 25);
    /* "team" alone, a namespace the old rule kept whole */
    team_part("team", d, sizeof(d));
    assert_string_equal(d, "team");
    /* characters a DNS label cannot hold (never a namespace, but never a plain team either) */
    team_part("A_b", e, sizeof(e));
    assert_non_null(strchr(e, '~'));
    assert_null(strchr(e, '_'));
    /* deterministic: the same namespace, the same team for every app and generation */
    /* the last: what docs/groups.md's `printf 'kpool team/%s' team-x | sha256sum | cut -c1-16`
     * gives */
    char t1[64], t2[64];
    kp_service_user_team("team-x", t1, sizeof(t1));
    kp_service_user_team("team-x", t2, sizeof(t2));
    assert_string_equal(t1, t2);
    assert_string_equal(t1, "x~aed156a58c23ea97");
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
        cmocka_unit_test(test_service_user_team_is_unique),
        cmocka_unit_test(test_secret_name_rule),
        cmocka_unit_test(test_secret_seal_round_trip_and_binding),
        cmocka_unit_test(test_registry_password_verifier),
        cmocka_unit_test(test_glob_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
