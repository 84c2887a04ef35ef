/*
 * test_principal.c — auth/principal: ssl.principal.mapping.rules with Kafka's syntax and
 * semantics (SslPrincipalMapper: the examples of the Kafka documentation, /L and /U, first
 * matching rule wins, no rule matching is an error, escaped slashes, back references that do
 * not exist are literal text, Java's replacement escapes), syntax errors, and
 * kp_cert_subject_rfc2253 on certificates built here with OpenSSL (most specific RDN first,
 * RFC 2253 escaping of , + " \ < > ; and of a leading # or space, UTF-8 kept as is).
 */
#include "unit.h"

#include "auth/principal.h"
#include "group/coordinator.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#define NO_MATCH "<no rule matched>"

/* Applies rules to dn; returns the mapped name (static buffer) or NO_MATCH. */
static const char *map(const char *rules, const char *dn)
{
    static char out[KP_PRINCIPAL_LEN_MAX];
    char err[256] = "";
    kp_principal_rules_t *r = kp_principal_rules_parse(rules, err, sizeof(err));
    if (!r) fail_msg("rules '%s' do not parse: %s", rules ? rules : "(null)", err);
    int rc = kp_principal_rules_apply(r, dn, out, sizeof(out));
    kp_principal_rules_free(r);
    return rc == 0 ? out : NO_MATCH;
}

static void test_default_keeps_the_dn(void **state)
{
    const char *dn = "CN=alice,OU=team,O=kpool";
    assert_string_equal(map(NULL, dn), dn);
    assert_string_equal(map("", dn), dn);
    assert_string_equal(map("DEFAULT", dn), dn);
    assert_string_equal(map("  DEFAULT  ", dn), dn);
}

/* The example of Kafka's documentation (ssl.principal.mapping.rules). */
#define KAFKA_DOC_RULES                                                                            \
    "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,"                                                       \
    "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"                           \
    "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,"                                                    \
    "DEFAULT"

static void test_kafka_documentation_examples(void **state)
{
    assert_string_equal(
        map(KAFKA_DOC_RULES,
            "CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"),
        "serviceuser");
    assert_string_equal(
        map(KAFKA_DOC_RULES, "CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"),
        "adminuser@admin");
    /* third rule: only a CN somewhere */
    assert_string_equal(map(KAFKA_DOC_RULES, "O=x,CN=Kafka1.Example.com,C=NO"),
                        "kafka1.example.com");
    /* nothing matches the RULEs: DEFAULT keeps the DN */
    assert_string_equal(map(KAFKA_DOC_RULES, "O=kpool,OU=ops"), "O=kpool,OU=ops");
    /* SslPrincipalMapperTest-style cases */
    assert_string_equal(
        map("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/", "CN=duke,OU=ServiceUsers,O=Org,C=US"), "duke");
    assert_string_equal(map("RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
                            "CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US"),
                        "duke@javasoft");
    assert_string_equal(map("RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
                            "CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US"),
                        "duke");
}

static void test_case_conversion(void **state)
{
    assert_string_equal(map("RULE:^CN=(.*?),.*$/$1/L", "CN=MiXeD-42,O=x"), "mixed-42");
    assert_string_equal(map("RULE:^CN=(.*?),.*$/$1/U", "CN=MiXeD-42,O=x"), "MIXED-42");
    assert_string_equal(map("RULE:^CN=(.*?),.*$/$1/", "CN=MiXeD-42,O=x"), "MiXeD-42");
    /* the flag converts the whole result, literal text included */
    assert_string_equal(map("RULE:^CN=(.*?),O=(.*)$/$1@$2.Example/L", "CN=A,O=B"), "a@b.example");
}

static void test_first_matching_rule_wins_and_no_match_is_an_error(void **state)
{
    const char *rules = "RULE:^CN=(.*?),OU=a,.*$/first-$1/, RULE:^CN=(.*?),.*$/second-$1/";
    assert_string_equal(map(rules, "CN=x,OU=a,O=o"), "first-x");
    assert_string_equal(map(rules, "CN=x,OU=b,O=o"), "second-x");
    /* no DEFAULT: a DN no rule matches is refused */
    assert_string_equal(map(rules, "O=o,CN=x"), NO_MATCH);
    assert_string_equal(map("RULE:^CN=admin$/root/", "CN=administrator"), NO_MATCH);
    /* a rule must match the whole DN (Java's Matcher.matches), not a part of it */
    assert_string_equal(map("RULE:CN=admin/root/", "CN=admin,O=x"), NO_MATCH);
    assert_string_equal(map("RULE:CN=admin.*/root/", "CN=admin,O=x"), "root");
    /* DEFAULT in the middle: later rules are never reached */
    assert_string_equal(map("RULE:^O=(.*)$/$1/,DEFAULT,RULE:^CN=(.*)$/never/", "CN=z"), "CN=z");
    /* whitespace and newlines around the separating commas */
    assert_string_equal(map(" RULE:^CN=(.*?),.*$/$1/L ,\n\t DEFAULT ", "CN=Q,O=x"), "q");
}

static void test_escaped_slashes(void **state)
{
    /* "\/" is a slash inside the pattern and inside the replacement */
    assert_string_equal(map("RULE:^CN=(.*?)\\/(.*?),O=x$/$2\\/$1/", "CN=left/right,O=x"),
                        "right/left");
    assert_string_equal(map("RULE:^CN=([^,]*),OU=([^,]*),.*$/$2\\/$1/", "CN=app,OU=team,O=x"),
                        "team/app");
    /* an escaped backslash just before the delimiter ends the pattern (Kafka's tokenizer
     * reads "\\" as one escape): pattern ^CN=(.*)\\$ matches a DN ending in a backslash */
    assert_string_equal(map("RULE:^CN=(.*)\\\\$/$1/", "CN=odd\\"), "odd");
    assert_string_equal(map("RULE:^(.*)\\\\/$1/", "CN=odd\\"), "CN=odd");
}

static void test_replacement_escapes_and_back_references(void **state)
{
    /* Java replacement syntax: \$ is a dollar sign, \\ a backslash */
    assert_string_equal(map("RULE:^CN=(.*?),.*$/\\$$1/", "CN=duke,O=x"), "$duke");
    assert_string_equal(map("RULE:^CN=(.*?),.*$/a\\\\b-$1/", "CN=duke,O=x"), "a\\b-duke");
    /* group 0 is the whole DN */
    assert_string_equal(map("RULE:^CN=(.*?),.*$/<$0>/", "CN=duke,O=x"), "<CN=duke,O=x>");
    /* Kafka treats a back reference to a group that does not exist as literal text, and
     * takes "$12" as group 1 followed by "2" when there is no group 12 */
    assert_string_equal(map("RULE:^CN=(.*?),.*$/$1-$2/", "CN=duke,O=x"), "duke-$2");
    assert_string_equal(map("RULE:^CN=(.*?),.*$/$12/", "CN=duke,O=x"), "duke2");
    assert_string_equal(map("RULE:^CN=(.*?),O=(.*)$/$2$1/", "CN=duke,O=x"), "xduke");
}

static void test_syntax_errors(void **state)
{
    static const char *bad[] = {
        "RULE:^CN=(.*?)$/$1",   /* no closing slash */
        "RULE:^CN=(.*?)$",      /* no replacement */
        "RULE:^CN=((.*?)$/$1/", /* invalid regex */
        "FOO",                  /* neither RULE: nor DEFAULT */
        "DEFAULT,BAR",
        "RULE:^CN=(.*?)$/$1/, RULES:x/y/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        kp_principal_rules_t *r = kp_principal_rules_parse(bad[i], err, sizeof(err));
        if (r) fail_msg("'%s' parsed", bad[i]);
        assert_non_null(strstr(err, "ssl.principal.mapping.rules"));
    }
    char err[256] = "";
    assert_null(kp_principal_rules_parse("RULE:^CN=((.*?)$/$1/", err, sizeof(err)));
    assert_non_null(strstr(err, "^CN=((.*?)$")); /* the message names the pattern */
}

static void test_output_too_small(void **state)
{
    kp_principal_rules_t *r = kp_principal_rules_parse("RULE:^CN=(.*?),.*$/$1/,DEFAULT", NULL, 0);
    assert_non_null(r);
    char out[8];
    assert_int_equal(kp_principal_rules_apply(r, "CN=abc,O=x", out, sizeof(out)), 0);
    assert_string_equal(out, "abc");
    assert_int_equal(kp_principal_rules_apply(r, "CN=abcdefghijk,O=x", out, sizeof(out)), -1);
    assert_int_equal(kp_principal_rules_apply(r, "O=a-long-default-dn", out, sizeof(out)), -1);
    kp_principal_rules_free(r);
}

/* ---- RFC 2253 subjects of real certificates ---- */

typedef struct rdn {
    const char *field;
    const char *value;
} rdn_t;

/* A self-signed certificate whose subject has the RDNs in the given order (first = least
 * specific, as `openssl req -subj /O=.../CN=...` writes them). */
static X509 *make_cert(const rdn_t *rdns, int n)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    for (int i = 0; i < n; i++)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, rdns[i].field, MBSTRING_UTF8,
                                                    (const unsigned char *)rdns[i].value, -1, -1,
                                                    0),
                         1);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    EVP_PKEY_free(key);
    return x;
}

static void expect_subject(const rdn_t *rdns, int n, const char *want)
{
    X509 *x = make_cert(rdns, n);
    char out[KP_PRINCIPAL_LEN_MAX];
    assert_int_equal(kp_cert_subject_rfc2253(x, out, sizeof(out)), 0);
    assert_string_equal(out, want);
    X509_free(x);
}

static void test_rfc2253_order(void **state)
{
    rdn_t r[] = {{"C", "NO"}, {"O", "kpool"}, {"OU", "team"}, {"CN", "alice"}};
    expect_subject(r, 4, "CN=alice,OU=team,O=kpool,C=NO");
    rdn_t one[] = {{"CN", "team-a_app-b_1a2b3c4d_0"}};
    expect_subject(one, 1, "CN=team-a_app-b_1a2b3c4d_0");
    /* other attribute types print by their short names */
    rdn_t more[] = {{"DC", "com"}, {"DC", "example"}, {"L", "Oslo"}, {"ST", "Oslo"}, {"UID", "u1"}};
    expect_subject(more, 5, "UID=u1,ST=Oslo,L=Oslo,DC=example,DC=com");
}

static void test_rfc2253_escaping(void **state)
{
    rdn_t comma[] = {{"O", "kpool"}, {"OU", "team"}, {"CN", "acme, inc+co"}};
    expect_subject(comma, 3, "CN=acme\\, inc\\+co,OU=team,O=kpool");
    rdn_t specials[] = {{"O", "a;b<c>d"}, {"CN", "q\"u\\o"}};
    expect_subject(specials, 2, "CN=q\\\"u\\\\o,O=a\\;b\\<c\\>d");
    /* a leading '#' or space and a trailing space are escaped; inner spaces are not */
    rdn_t edges[] = {{"O", " padded "}, {"CN", "#hash"}};
    expect_subject(edges, 2, "CN=\\#hash,O=\\ padded\\ ");
    /* UTF-8 stays UTF-8 (as Java's X500Principal prints it) */
    rdn_t utf8[] = {{"O", "Bl\xc3\xa5"
                          "b\xc3\xa6r"},
                    {"CN", "J\xc3\xbcrgen"}};
    expect_subject(utf8, 2,
                   "CN=J\xc3\xbcrgen,O=Bl\xc3\xa5"
                   "b\xc3\xa6r");
}

static void test_rfc2253_then_rules(void **state)
{
    rdn_t r[] = {{"O", "kpool"}, {"OU", "ServiceUsers"}, {"CN", "Svc-One"}};
    X509 *x = make_cert(r, 3);
    char dn[KP_PRINCIPAL_LEN_MAX], name[KP_PRINCIPAL_LEN_MAX];
    assert_int_equal(kp_cert_subject_rfc2253(x, dn, sizeof(dn)), 0);
    kp_principal_rules_t *rules =
        kp_principal_rules_parse("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT", NULL, 0);
    assert_int_equal(kp_principal_rules_apply(rules, dn, name, sizeof(name)), 0);
    assert_string_equal(name, "svc-one");
    /* a buffer too small for the subject */
    char small[8];
    assert_int_equal(kp_cert_subject_rfc2253(x, small, sizeof(small)), -1);
    kp_principal_rules_free(rules);
    X509_free(x);
}

/* group.ownership.team.rules' default (docs/groups.md): the team part of kpool's service
 * user names, with or without the CN= that the default mapping rules keep. */
static void test_group_team_rule_default(void **state)
{
    const char *r = KP_TEAM_RULES_DEFAULT;
    assert_string_equal(map(r, "CN=team-a_shop_1a2b3c4d_1"), "team-a");
    assert_string_equal(map(r, "a_orders-api_0badc0de_12-3"), "a");
    assert_string_equal(map(r, "CN=b__deadbeef_7"), "b"); /* an app part cut to nothing */
    assert_string_equal(map(r, "CN=alice,OU=team,O=kpool"), NO_MATCH);
    assert_string_equal(map(r, "CN=team-a_shop_XYZ_1"), NO_MATCH);
    assert_string_equal(map(r, "CN=team-a_shop_1a2b3c4d_1,O=x"), NO_MATCH);
    assert_string_equal(map(r, "ANONYMOUS"), NO_MATCH);
    /* a hashed team part (credentials.c kp_service_user_team) is the team whole, so team-x
     * and x (or two long namespaces sharing 20 characters) are two teams */
    assert_string_equal(map(r, "CN=x~0123456789abcdef_shop_1a2b3c4d_1"), "x~0123456789abcdef");
    assert_string_equal(map(r, "CN=x_shop_1a2b3c4d_1"), "x");
    assert_string_equal(map(r, "CN=abcdefgh~fedcba9876543210_a_1a2b3c4d_2-2"),
                        "abcdefgh~fedcba9876543210");
    assert_string_equal(map(r, "CN=~fedcba9876543210_a_1a2b3c4d_2"), "~fedcba9876543210");
    /* only a '~' followed by exactly 16 hex digits */
    assert_string_equal(map(r, "CN=x~0123_shop_1a2b3c4d_1"), NO_MATCH);
    assert_string_equal(map(r, "CN=x~0123456789abcdef0_shop_1a2b3c4d_1"), NO_MATCH);
    assert_string_equal(map(r, "CN=x~~0123456789abcdef_shop_1a2b3c4d_1"), NO_MATCH);
    /* docs/groups.md's transition rule: team-x's new users keep team-x's old team "x" */
    char keep[4096];
    snprintf(keep, sizeof(keep), "RULE:^(?:CN=)?x~aed156a58c23ea97_.*$/x/,%s", r);
    assert_string_equal(map(keep, "CN=x~aed156a58c23ea97_shop_1a2b3c4d_2"), "x");
    assert_string_equal(map(keep, "CN=x_shop_1a2b3c4d_1"), "x");
    assert_string_equal(map(keep, "CN=y~0123456789abcdef_shop_1a2b3c4d_1"), "y~0123456789abcdef");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_keeps_the_dn),
        cmocka_unit_test(test_kafka_documentation_examples),
        cmocka_unit_test(test_case_conversion),
        cmocka_unit_test(test_first_matching_rule_wins_and_no_match_is_an_error),
        cmocka_unit_test(test_escaped_slashes),
        cmocka_unit_test(test_replacement_escapes_and_back_references),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_output_too_small),
        cmocka_unit_test(test_rfc2253_order),
        cmocka_unit_test(test_rfc2253_escaping),
        cmocka_unit_test(test_rfc2253_then_rules),
        cmocka_unit_test(test_group_team_rule_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
