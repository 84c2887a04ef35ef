/*
 * test_pki.c — pki/: the CA (profile, PEM round trip, load checks), issued certificates for
 * both key types verified with X509_verify_cert (purpose = EKU, expiry, not-yet-valid,
 * another CA, clamping to the CA's notAfter), subjects and SANs (parsing, escaping, every
 * rejection), PKCS#8 keys, PKCS#12 keystore and truststore (PKCS12_parse with the right and a
 * wrong password, algorithms, Java's trust attribute) and opening them again, whether a key
 * belongs to a certificate, certificate information, sealing
 * (round trip, every tampered byte, wrong key/aad/version, truncation), the master key file
 * (creation mode, refusal of group/other access, wrong size, fsync failure), random
 * passwords, and that no error message carries key material or leaves OpenSSL errors queued.
 */
#include "unit.h"

#include "auth/principal.h"
#include "pki/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#define DAY_S 86400

static const kp_pki_key_type_t key_types[] = {KP_PKI_KEY_EC_P256, KP_PKI_KEY_RSA_2048};

/* ---- helpers ---- */

static X509 *pem_cert(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(x);
    return x;
}

/* Every certificate of a PEM bundle (a typedef: clang-format misreads STACK_OF as a call). */
typedef STACK_OF(X509) cert_list_t;
static cert_list_t *pem_certs(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) sk_X509_push(sk, x);
    ERR_clear_error();
    BIO_free(bio);
    return sk;
}

/* The key of a PEM that must be unencrypted PKCS#8. */
static EVP_PKEY *pem_pkcs8_key(const char *pem)
{
    assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    PKCS8_PRIV_KEY_INFO *p8 = PEM_read_bio_PKCS8_PRIV_KEY_INFO(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(p8);
    EVP_PKEY *k = EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    assert_non_null(k);
    return k;
}

/* X509_verify_cert of leaf against ca_pem for purpose (X509_PURPOSE_SSL_*) at time at
 * (0: now). Returns X509_V_OK or the verification error. */
static int verify_at(const char *ca_pem, const char *leaf_pem, int purpose, time_t at)
{
    X509_STORE *store = X509_STORE_new();
    X509 *ca = pem_cert(ca_pem), *leaf = pem_cert(leaf_pem);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    if (at) X509_STORE_CTX_set_time(ctx, 0, at);
    int ok = X509_verify_cert(ctx);
    int e = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(leaf);
    ERR_clear_error();
    if (ok == 1) assert_int_equal(e, X509_V_OK);
    return ok == 1 ? X509_V_OK : e;
}

static int verify(const char *ca_pem, const char *leaf_pem, int purpose)
{
    return verify_at(ca_pem, leaf_pem, purpose, 0);
}

static int64_t asn1_epoch(const ASN1_TIME *t)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

/* err is a failure message: non-empty, free of PEM/key text, and OpenSSL's queue is empty. */
static void expect_clean_error(const char *err)
{
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, "-----"));
    assert_null(strstr(err, "PRIVATE"));
    assert_int_equal(ERR_peek_error(), 0);
}

static kp_pki_ca_t *make_ca(kp_pki_key_type_t kt, int days)
{
    char err[512];
    kp_pki_ca_t *ca = kp_pki_ca_create("kpool test CA", days, kt, err, sizeof(err));
    if (!ca) fail_msg("ca_create: %s", err);
    return ca;
}

static void issue_ok(const kp_pki_ca_t *ca, const kp_pki_issue_req_t *req, kp_pki_issued_t *out)
{
    char err[512];
    if (kp_pki_issue(ca, req, out, err, sizeof(err)) < 0) fail_msg("issue: %s", err);
}

/* Issues with req and expects a failure whose message contains want. */
static void issue_fails(const kp_pki_ca_t *ca, const kp_pki_issue_req_t *req, const char *want)
{
    char err[512] = "";
    kp_pki_issued_t out;
    assert_int_equal(kp_pki_issue(ca, req, &out, err, sizeof(err)), -1);
    assert_null(out.cert_pem);
    assert_null(out.key_pem);
    expect_clean_error(err);
    if (!strstr(err, want)) fail_msg("error '%s' does not mention '%s'", err, want);
}

static const char *const server_sans[] = {"IP:127.0.0.1", "DNS:localhost", "::1",
                                          "broker.example.com"};

static kp_pki_issue_req_t server_req(kp_pki_key_type_t kt)
{
    kp_pki_issue_req_t r = {.subject = "CN=broker,O=kpool",
                            .validity_days = 30,
                            .key_type = kt,
                            .usage = KP_PKI_USAGE_SERVER,
                            .sans = server_sans,
                            .nsans = 4};
    return r;
}

static kp_pki_issue_req_t client_req(kp_pki_key_type_t kt)
{
    kp_pki_issue_req_t r = {.subject = "CN=team_app_0123abcd_1",
                            .validity_days = 30,
                            .key_type = kt,
                            .usage = KP_PKI_USAGE_CLIENT};
    return r;
}

/* ---- the CA ---- */

static void check_ca_profile(X509 *x)
{
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_true(bc->ca);
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    ASN1_BIT_STRING_free(ku);
    assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_int_equal(X509_check_ca(x), 1);
    assert_int_equal(X509_check_issued(x, x), X509_V_OK); /* self-signed */
}

static void test_ca_create_and_load(void **state)
{
    for (size_t k = 0; k < 2; k++) {
        char err[512];
        kp_pki_ca_t *ca = make_ca(key_types[k], 365);
        char *cert = kp_pki_ca_cert_pem(ca), *key = kp_pki_ca_key_pem(ca);
        assert_non_null(cert);
        assert_non_null(key);
        X509 *x = pem_cert(cert);
        check_ca_profile(x);
        int64_t now = time(NULL);
        int64_t nb = asn1_epoch(X509_get0_notBefore(x)), na = asn1_epoch(X509_get0_notAfter(x));
        assert_true(nb <= now - 300 && nb >= now - 310);
        assert_true(na >= now + 365 * DAY_S - 10 && na <= now + 365 * DAY_S);
        EVP_PKEY *pk = pem_pkcs8_key(key);
        assert_int_equal(X509_check_private_key(x, pk), 1);
        assert_int_equal(EVP_PKEY_is_a(pk, k == 0 ? "EC" : "RSA"), 1);
        assert_int_equal(EVP_PKEY_get_bits(pk), k == 0 ? 256 : 2048);
        EVP_PKEY_free(pk);
        X509_free(x);

        /* a loaded CA issues certificates that verify against the original */
        kp_pki_ca_t *loaded = kp_pki_ca_load(cert, key, err, sizeof(err));
        if (!loaded) fail_msg("ca_load: %s", err);
        kp_pki_issue_req_t r = client_req(key_types[k]);
        kp_pki_issued_t leaf;
        issue_ok(loaded, &r, &leaf);
        assert_int_equal(verify(cert, leaf.cert_pem, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
        kp_pki_issued_free(&leaf);
        kp_pki_ca_free(loaded);
        free(cert);
        kp_pki_secret_free(key);
        kp_pki_ca_free(ca);
    }
}

static void test_ca_create_errors(void **state)
{
    char err[512];
    const char *long_cn = "0123456789012345678901234567890123456789012345678901234567890123456789";
    struct {
        const char *cn;
        int days;
        kp_pki_key_type_t kt;
        const char *want;
    } cases[] = {
        {"", 10, KP_PKI_KEY_EC_P256, "empty"},
        {NULL, 10, KP_PKI_KEY_EC_P256, "empty"},
        {"x", 0, KP_PKI_KEY_EC_P256, "validity"},
        {"x", KP_PKI_VALIDITY_DAYS_MAX + 1, KP_PKI_KEY_EC_P256, "validity"},
        {long_cn, 10, KP_PKI_KEY_EC_P256, "64"},
        {"x", 10, (kp_pki_key_type_t)7, "key type"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = 0;
        assert_null(kp_pki_ca_create(cases[i].cn, cases[i].days, cases[i].kt, err, sizeof(err)));
        expect_clean_error(err);
        if (!strstr(err, cases[i].want)) fail_msg("case %zu: '%s'", i, err);
    }
}

static void test_ca_load_errors(void **state)
{
    char err[512];
    kp_pki_ca_t *ca = make_ca(KP_PKI_KEY_EC_P256, 30), *other = make_ca(KP_PKI_KEY_EC_P256, 30);
    char *cert = kp_pki_ca_cert_pem(ca), *key = kp_pki_ca_key_pem(ca);
    char *other_key = kp_pki_ca_key_pem(other);
    kp_pki_issue_req_t r = client_req(KP_PKI_KEY_EC_P256);
    kp_pki_issued_t leaf;
    issue_ok(ca, &r, &leaf);

    /* an encrypted key is refused without prompting for a password */
    EVP_PKEY *pk = pem_pkcs8_key(key);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, pk, EVP_aes_256_cbc(), "pw", 2, NULL, NULL),
                     1);
    char *enc;
    long n = BIO_get_mem_data(bio, &enc);
    char *enc_key = kp_xstrndup(enc, (size_t)n);
    BIO_free(bio);
    EVP_PKEY_free(pk);

    struct {
        const char *cert, *key, *want;
    } cases[] = {
        {leaf.cert_pem, leaf.key_pem, "not a CA"},
        {cert, other_key, "does not belong"},
        {cert, enc_key, "unencrypted"},
        {"garbage", key, "not a PEM certificate"},
        {cert, "garbage", "private key"},
        {"", key, "empty"},
        {cert, NULL, "empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = 0;
        assert_null(kp_pki_ca_load(cases[i].cert, cases[i].key, err, sizeof(err)));
        expect_clean_error(err);
        if (!strstr(err, cases[i].want)) fail_msg("case %zu: '%s'", i, err);
    }
    free(enc_key);
    kp_pki_issued_free(&leaf);
    free(cert);
    kp_pki_secret_free(key);
    kp_pki_secret_free(other_key);
    kp_pki_ca_free(ca);
    kp_pki_ca_free(other);
}

/* ---- issued certificates ---- */

/* The leaf profile: CA:FALSE, key usage, one EKU, SKI, AKI = the CA's SKI. */
static void check_leaf_profile(X509 *x, X509 *ca, int server, int rsa)
{
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_false(bc->ca);
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    assert_int_equal(crit, 1);
    ASN1_BIT_STRING_free(ku);
    uint32_t want_ku = KU_DIGITAL_SIGNATURE | (rsa ? KU_KEY_ENCIPHERMENT : 0);
    assert_int_equal(X509_get_key_usage(x), want_ku);
    assert_int_equal(X509_get_extended_key_usage(x), server ? XKU_SSL_SERVER : XKU_SSL_CLIENT);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    assert_non_null(aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(ca)), 0);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_int_equal(X509_check_issued(ca, x), X509_V_OK);
    /* the serial: positive, 128 random bits (16 or, rarely, fewer significant bytes) */
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bytes(bn) >= 12 && BN_num_bytes(bn) <= 16);
    BN_free(bn);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_int_equal(EVP_PKEY_is_a(pub, rsa ? "RSA" : "EC"), 1);
}

static void check_server_sans(X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 4);
    static const unsigned char v4[] = {127, 0, 0, 1};
    GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
    assert_int_equal(g->type, GEN_IPADD);
    assert_int_equal(ASN1_STRING_length(g->d.iPAddress), 4);
    assert_memory_equal(ASN1_STRING_get0_data(g->d.iPAddress), v4, 4);
    g = sk_GENERAL_NAME_value(gens, 1);
    assert_int_equal(g->type, GEN_DNS);
    assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.dNSName), "localhost");
    g = sk_GENERAL_NAME_value(gens, 2); /* bare "::1" is an address */
    assert_int_equal(g->type, GEN_IPADD);
    assert_int_equal(ASN1_STRING_length(g->d.iPAddress), 16);
    g = sk_GENERAL_NAME_value(gens, 3); /* a bare name is a DNS name */
    assert_int_equal(g->type, GEN_DNS);
    GENERAL_NAMES_free(gens);
    /* what TLS clients check */
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "broker.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
}

static void test_issue_chain(void **state)
{
    for (size_t k = 0; k < 2; k++) {
        kp_pki_key_type_t kt = key_types[k];
        kp_pki_ca_t *ca = make_ca(kt, 365);
        char *ca_pem = kp_pki_ca_cert_pem(ca);
        X509 *cax = pem_cert(ca_pem);
        kp_pki_issue_req_t sr = server_req(kt), cr = client_req(kt);
        kp_pki_issued_t server, client;
        issue_ok(ca, &sr, &server);
        issue_ok(ca, &cr, &client);

        /* the chain verifies, and the purpose check enforces the EKU */
        assert_int_equal(verify(ca_pem, server.cert_pem, X509_PURPOSE_SSL_SERVER), X509_V_OK);
        assert_int_equal(verify(ca_pem, client.cert_pem, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
        assert_int_equal(verify(ca_pem, server.cert_pem, X509_PURPOSE_SSL_CLIENT),
                         X509_V_ERR_INVALID_PURPOSE);
        assert_int_equal(verify(ca_pem, client.cert_pem, X509_PURPOSE_SSL_SERVER),
                         X509_V_ERR_INVALID_PURPOSE);

        X509 *sx = pem_cert(server.cert_pem), *cx = pem_cert(client.cert_pem);
        check_leaf_profile(sx, cax, 1, kt == KP_PKI_KEY_RSA_2048);
        check_leaf_profile(cx, cax, 0, kt == KP_PKI_KEY_RSA_2048);
        check_server_sans(sx);
        assert_null(X509_get_ext_d2i(cx, NID_subject_alt_name, NULL, NULL));
        assert_int_not_equal(
            ASN1_INTEGER_cmp(X509_get0_serialNumber(sx), X509_get0_serialNumber(cx)), 0);

        /* subject as the broker derives the principal */
        char dn[256];
        assert_int_equal(kp_cert_subject_rfc2253(sx, dn, sizeof(dn)), 0);
        assert_string_equal(dn, "CN=broker,O=kpool");
        assert_int_equal(kp_cert_subject_rfc2253(cx, dn, sizeof(dn)), 0);
        assert_string_equal(dn, "CN=team_app_0123abcd_1");

        /* validity: now - 5 min .. now + 30 days */
        int64_t now = time(NULL), nb = asn1_epoch(X509_get0_notBefore(cx));
        int64_t na = asn1_epoch(X509_get0_notAfter(cx));
        assert_true(nb <= now - 300 && nb >= now - 310);
        assert_true(na >= now + 30 * DAY_S - 10 && na <= now + 30 * DAY_S);

        /* keys: PKCS#8, of the requested type, matching the certificate */
        EVP_PKEY *sk = pem_pkcs8_key(server.key_pem), *ck = pem_pkcs8_key(client.key_pem);
        assert_int_equal(X509_check_private_key(sx, sk), 1);
        assert_int_equal(X509_check_private_key(cx, ck), 1);
        assert_int_equal(X509_check_private_key(cx, sk), 0);
        ERR_clear_error();
        EVP_PKEY_free(sk);
        EVP_PKEY_free(ck);

        /* chain: the certificate, then the CA */
        STACK_OF(X509) *chain = pem_certs(client.chain_pem);
        assert_int_equal(sk_X509_num(chain), 2);
        assert_int_equal(X509_cmp(sk_X509_value(chain, 0), cx), 0);
        assert_int_equal(X509_cmp(sk_X509_value(chain, 1), cax), 0);
        sk_X509_pop_free(chain, X509_free);

        X509_free(sx);
        X509_free(cx);
        X509_free(cax);
        kp_pki_issued_free(&server);
        kp_pki_issued_free(&client);
        assert_null(server.key_pem);
        free(ca_pem);
        kp_pki_ca_free(ca);
    }
}

static void test_issue_expiry(void **state)
{
    kp_pki_ca_t *ca = make_ca(KP_PKI_KEY_EC_P256, 365);
    char *ca_pem = kp_pki_ca_cert_pem(ca);
    int64_t now = time(NULL);

    /* issued ten days ago for one day: expired */
    kp_pki_issue_req_t r = client_req(KP_PKI_KEY_EC_P256);
    r.validity_days = 1;
    r.issued_at_s = now - 10 * DAY_S;
    kp_pki_issued_t expired;
    issue_ok(ca, &r, &expired);
    assert_int_equal(verify(ca_pem, expired.cert_pem, X509_PURPOSE_SSL_CLIENT),
                     X509_V_ERR_CERT_HAS_EXPIRED);
    /* valid from ten days ago (minus the skew) for one day */
    kp_pki_cert_info_t ei;
    char eerr[256];
    assert_int_equal(kp_pki_cert_info(expired.cert_pem, &ei, eerr, sizeof(eerr)), 0);
    assert_int_equal(ei.not_before_s, now - 10 * DAY_S - 300);
    assert_int_equal(ei.not_after_s, now - 9 * DAY_S);

    /* issued tomorrow: not yet valid; the 5-minute back-dating is the only slack */
    r.validity_days = 30;
    r.issued_at_s = now + DAY_S;
    kp_pki_issued_t future;
    issue_ok(ca, &r, &future);
    assert_int_equal(verify(ca_pem, future.cert_pem, X509_PURPOSE_SSL_CLIENT),
                     X509_V_ERR_CERT_NOT_YET_VALID);
    assert_int_equal(
        verify_at(ca_pem, future.cert_pem, X509_PURPOSE_SSL_CLIENT, (time_t)(now + DAY_S - 120)),
        X509_V_OK);

    /* a leaf never outlives its CA */
    kp_pki_ca_t *short_ca = make_ca(KP_PKI_KEY_EC_P256, 10);
    r.issued_at_s = 0;
    r.validity_days = 100;
    kp_pki_issued_t clamped;
    issue_ok(short_ca, &r, &clamped);
    char *short_pem = kp_pki_ca_cert_pem(short_ca);
    kp_pki_cert_info_t ci, li;
    char err[256];
    assert_int_equal(kp_pki_cert_info(short_pem, &ci, err, sizeof(err)), 0);
    assert_int_equal(kp_pki_cert_info(clamped.cert_pem, &li, err, sizeof(err)), 0);
    assert_int_equal(li.not_after_s, ci.not_after_s);

    /* a certificate of another CA does not verify */
    assert_int_equal(verify(ca_pem, clamped.cert_pem, X509_PURPOSE_SSL_CLIENT),
                     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

    free(short_pem);
    kp_pki_issued_free(&clamped);
    kp_pki_ca_free(short_ca);
    kp_pki_issued_free(&future);
    kp_pki_issued_free(&expired);
    free(ca_pem);
    kp_pki_ca_free(ca);
}

static void test_subjects(void **state)
{
    kp_pki_ca_t *ca = make_ca(KP_PKI_KEY_EC_P256, 30);
    struct {
        const char *in, *rfc2253;
    } ok[] = {
        {"CN=team_app_0123abcd_1", "CN=team_app_0123abcd_1"},
        {"CN=svc,OU=team,O=kpool", "CN=svc,OU=team,O=kpool"},
        {" CN = svc , O = kpool ", "CN=svc,O=kpool"},
        {"CN=acme\\, inc\\+co", "CN=acme\\, inc\\+co"},
        {"CN=a\\2cb", "CN=a\\,b"},
        {"commonName=x,C=NO", "CN=x,C=NO"},
        {"CN=\\ padded\\ ", "CN=\\ padded\\ "},
        {"CN=Bjørn", "CN=Bjørn"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        kp_pki_issue_req_t r = client_req(KP_PKI_KEY_EC_P256);
        r.subject = ok[i].in;
        kp_pki_issued_t out;
        issue_ok(ca, &r, &out);
        kp_pki_cert_info_t info;
        char err[256];
        assert_int_equal(kp_pki_cert_info(out.cert_pem, &info, err, sizeof(err)), 0);
        if (strcmp(info.subject, ok[i].rfc2253))
            fail_msg("'%s' -> '%s', want '%s'", ok[i].in, info.subject, ok[i].rfc2253);
        kp_pki_issued_free(&out);
    }
    struct {
        const char *in, *want;
    } bad[] = {
        {"", "empty"},
        {NULL, "empty"},
        {"CN", "TYPE=value"},
        {"=x", "TYPE=value"},
        {"XYZZY=x", "unknown attribute"},
        {"CN=", "empty value"},
        {"CN=a,", "TYPE=value"},
        {"CN=a+O=b", "multi-valued"},
        {"CN=\"q\"", "unescaped"},
        {"CN=a\\00b", "control character"},
        {"CN=a\\q", "bad escape"},
        {"CN=#04024869", "BER"},
        {"C=NOR", "value of C"},
        {"CN=0123456789012345678901234567890123456789012345678901234567890123456789",
         "value of CN"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kp_pki_issue_req_t r = client_req(KP_PKI_KEY_EC_P256);
        r.subject = bad[i].in;
        issue_fails(ca, &r, bad[i].want);
    }
    kp_pki_ca_free(ca);
}

static void test_issue_errors(void **state)
{
    kp_pki_ca_t *ca = make_ca(KP_PKI_KEY_EC_P256, 30);
    kp_pki_issue_req_t r = server_req(KP_PKI_KEY_EC_P256);
    r.nsans = 0;
    issue_fails(ca, &r, "at least one subjectAltName");

    const char *bad_sans[][1] = {{"IP:300.1.1.1"}, {"DNS:bad name"}, {"DNS:a,IP:1.2.3.4"},
                                 {"DNS:"},         {"email:a@b"},    {".leading.dot"}};
    const char *want[] = {"not an IP", "not a DNS", "not a DNS",
                          "not a DNS", "not a DNS", "not a DNS"};
    for (size_t i = 0; i < sizeof(bad_sans) / sizeof(bad_sans[0]); i++) {
        r = server_req(KP_PKI_KEY_EC_P256);
        r.sans = bad_sans[i];
        r.nsans = 1;
        issue_fails(ca, &r, want[i]);
    }
    const char *null_san[] = {NULL};
    r.sans = null_san;
    issue_fails(ca, &r, "NULL");
    r = server_req(KP_PKI_KEY_EC_P256);
    r.nsans = KP_PKI_SANS_MAX + 1;
    issue_fails(ca, &r, "at most");

    r = client_req(KP_PKI_KEY_EC_P256);
    r.validity_days = 0;
    issue_fails(ca, &r, "validity");
    r.validity_days = -5;
    issue_fails(ca, &r, "validity");
    r.validity_days = KP_PKI_VALIDITY_DAYS_MAX + 1;
    issue_fails(ca, &r, "validity");
    r = client_req(KP_PKI_KEY_EC_P256);
    r.usage = (kp_pki_usage_t)9;
    issue_fails(ca, &r, "usage");
    r = client_req((kp_pki_key_type_t)9);
    issue_fails(ca, &r, "key type");

    /* a wildcard DNS name and SANs on a client certificate are fine */
    const char *wild[] = {"*.pool.example"};
    r = server_req(KP_PKI_KEY_EC_P256);
    r.sans = wild;
    r.nsans = 1;
    kp_pki_issued_t out;
    issue_ok(ca, &r, &out);
    X509 *x = pem_cert(out.cert_pem);
    assert_int_equal(X509_check_host(x, "b1.pool.example", 0, 0, NULL), 1);
    X509_free(x);
    kp_pki_issued_free(&out);
    kp_pki_ca_free(ca);
}

static void test_key_type_parse(void **state)
{
    kp_pki_key_type_t t;
    assert_int_equal(kp_pki_key_type_parse("ec", &t), 0);
    assert_int_equal(t, KP_PKI_KEY_EC_P256);
    assert_int_equal(kp_pki_key_type_parse("RSA-2048", &t), 0);
    assert_int_equal(t, KP_PKI_KEY_RSA_2048);
    assert_int_equal(kp_pki_key_type_parse("dsa", &t), -1);
    assert_string_equal(kp_pki_key_type_name(KP_PKI_KEY_EC_P256), "ec-p256");
    assert_string_equal(kp_pki_key_type_name(KP_PKI_KEY_RSA_2048), "rsa-2048");
}

/* ---- certificate information ---- */

static void test_cert_info(void **state)
{
    char err[256];
    kp_pki_ca_t *ca = make_ca(KP_PKI_KEY_EC_P256, 30);
    char *ca_pem = kp_pki_ca_cert_pem(ca);
    kp_pki_issue_req_t r = client_req(KP_PKI_KEY_EC_P256);
    r.subject = "CN=svc,O=kpool";
    kp_pki_issued_t out;
    issue_ok(ca, &r, &out);

    kp_pki_cert_info_t info;
    assert_int_equal(kp_pki_cert_info(out.chain_pem, &info, err, sizeof(err)), 0);
    assert_string_equal(info.subject, "CN=svc,O=kpool");
    assert_string_equal(info.issuer, "CN=kpool test CA");
    assert_false(info.is_ca);
    X509 *x = pem_cert(out.cert_pem);
    assert_int_equal(info.not_after_s, asn1_epoch(X509_get0_notAfter(x)));
    assert_int_equal(info.not_before_s, asn1_epoch(X509_get0_notBefore(x)));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = BN_bn2hex(bn);
    assert_string_equal(info.serial_hex, hex);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);

    assert_int_equal(kp_pki_cert_info(ca_pem, &info, err, sizeof(err)), 0);
    assert_true(info.is_ca);
    assert_string_equal(info.subject, info.issuer);

    assert_int_equal(kp_pki_cert_info("nope", &info, err, sizeof(err)), -1);
    expect_clean_error(err);
    assert_int_equal(kp_pki_cert_info(out.key_pem, &info, err, sizeof(err)), -1);
    expect_clean_error(err);

    kp_pki_issued_free(&out);
    free(ca_pem);
    kp_pki_ca_free(ca);
}

/* ---- PKCS#12 ---- */

static PKCS12 *p12_decode(const kp_buf_t *b)
{
    const unsigned char *p = b->data;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)b->len);
    assert_non_null(p12);
    assert_ptr_equal(p, b->data + b->len);
    return p12;
}

/* The MAC is HMAC-SHA-256 with KP_PKI_P12_ITER iterations, and pw opens it. */
static void p12_check_mac(PKCS12 *p12, const char *pw)
{
    const X509_ALGOR *alg;
    const ASN1_INTEGER *iter;
    const ASN1_OBJECT *obj;
    PKCS12_get0_mac(NULL, &alg, NULL, &iter, p12);
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    assert_int_equal(OBJ_obj2nid(obj), NID_sha256);
    assert_int_equal(ASN1_INTEGER_get(iter), KP_PKI_P12_ITER);
    assert_int_equal(PKCS12_verify_mac(p12, pw, -1), 1);
    assert_int_equal(PKCS12_verify_mac(p12, "wrong password", -1), 0);
    ERR_clear_error();
}

static void test_pkcs12_keystore(void **state)
{
    for (size_t k = 0; k < 2; k++) {
        char err[512];
        kp_pki_ca_t *ca = make_ca(key_types[k], 30);
        char *ca_pem = kp_pki_ca_cert_pem(ca);
        kp_pki_issue_req_t r = client_req(key_types[k]);
        kp_pki_issued_t c;
        issue_ok(ca, &r, &c);
        char *pw = kp_pki_random_password(32);
        kp_buf_t ks;
        kp_buf_init(&ks);
        /* the full chain (leaf + CA): the leaf copy is dropped */
        if (kp_pki_pkcs12_keystore(c.cert_pem, c.key_pem, c.chain_pem, pw, &ks, err, sizeof(err)) <
            0)
            fail_msg("keystore: %s", err);

        PKCS12 *p12 = p12_decode(&ks);
        p12_check_mac(p12, pw);
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *cas = NULL;
        assert_int_equal(PKCS12_parse(p12, pw, &key, &cert, &cas), 1);
        X509 *want = pem_cert(c.cert_pem), *cax = pem_cert(ca_pem);
        assert_int_equal(X509_cmp(cert, want), 0);
        assert_int_equal(X509_check_private_key(cert, key), 1);
        assert_int_equal(sk_X509_num(cas), 1);
        assert_int_equal(X509_cmp(sk_X509_value(cas, 0), cax), 0);
        int alen = 0;
        const unsigned char *alias = X509_alias_get0(cert, &alen);
        assert_int_equal(alen, (int)strlen(KP_PKI_P12_KEY_ALIAS));
        assert_memory_equal(alias, KP_PKI_P12_KEY_ALIAS, (size_t)alen);
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(cas, X509_free);

        /* a wrong password opens nothing */
        key = NULL, cert = NULL, cas = NULL;
        assert_int_equal(PKCS12_parse(p12, "not-the-password", &key, &cert, &cas), 0);
        assert_null(key);
        ERR_clear_error();
        PKCS12_free(p12);

        /* without a chain: just the key and its certificate */
        assert_int_equal(
            kp_pki_pkcs12_keystore(c.cert_pem, c.key_pem, NULL, pw, &ks, err, sizeof(err)), 0);
        p12 = p12_decode(&ks);
        assert_int_equal(PKCS12_parse(p12, pw, &key, &cert, &cas), 1);
        assert_true(cas == NULL || sk_X509_num(cas) == 0);
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(cas, X509_free);
        PKCS12_free(p12);

        X509_free(want);
        X509_free(cax);
        kp_buf_free(&ks);
        kp_pki_secret_free(pw);
        kp_pki_issued_free(&c);
        free(ca_pem);
        kp_pki_ca_free(ca);
    }
}

static void test_pkcs12_keystore_errors(void **state)
{
    char err[512];
    kp_pki_ca_t *ca = make_ca(KP_PKI_KEY_EC_P256, 30);
    kp_pki_issue_req_t r = client_req(KP_PKI_KEY_EC_P256);
    kp_pki_issued_t a, b;
    issue_ok(ca, &r, &a);
    issue_ok(ca, &r, &b);
    kp_buf_t ks;
    kp_buf_init(&ks);
    struct {
        const char *cert, *key, *chain, *pw, *want;
    } cases[] = {
        {a.cert_pem, b.key_pem, NULL, "pw", "does not belong"},
        {a.cert_pem, a.key_pem, NULL, "", "password: empty"},
        {a.cert_pem, a.key_pem, NULL, NULL, "password: empty"},
        {a.cert_pem, a.key_pem, "junk", "pw", "chain"},
        {a.key_pem, a.key_pem, NULL, "pw", "certificate"},
        {a.cert_pem, a.cert_pem, NULL, "pw", "private key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = 0;
        assert_int_equal(kp_pki_pkcs12_keystore(cases[i].cert, cases[i].key, cases[i].chain,
                                                cases[i].pw, &ks, err, sizeof(err)),
                         -1);
        expect_clean_error(err);
        if (!strstr(err, cases[i].want)) fail_msg("case %zu: '%s'", i, err);
    }
    kp_buf_free(&ks);
    kp_pki_issued_free(&a);
    kp_pki_issued_free(&b);
    kp_pki_ca_free(ca);
}

/* The Java trusted-key-usage attribute on every certificate bag of the truststore. */
static void p12_check_jdk_trust(PKCS12 *p12, const char *pw, int want_bags)
{
    ASN1_OBJECT *trust = OBJ_txt2obj("2.16.840.1.113894.746875.1.1", 1);
    STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
    assert_non_null(safes);
    int bags_seen = 0;
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        /* the certificates are encrypted (PBES2), not plain data */
        assert_int_equal(OBJ_obj2nid(p7->type), NID_pkcs7_encrypted);
        STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7encdata(p7, pw, -1);
        assert_non_null(bags);
        for (int j = 0; j < sk_PKCS12_SAFEBAG_num(bags); j++) {
            const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, j);
            assert_int_equal(PKCS12_SAFEBAG_get_nid(bag), NID_certBag);
            const STACK_OF(X509_ATTRIBUTE) *attrs = PKCS12_SAFEBAG_get0_attrs(bag);
            int at = X509at_get_attr_by_OBJ(attrs, trust, -1);
            assert_true(at >= 0);
            X509_ATTRIBUTE *attr = X509at_get_attr(attrs, at);
            ASN1_TYPE *v = X509_ATTRIBUTE_get0_type(attr, 0);
            assert_int_equal(v->type, V_ASN1_OBJECT);
            assert_int_equal(OBJ_obj2nid(v->value.object), NID_anyExtendedKeyUsage);
            bags_seen++;
        }
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    assert_int_equal(bags_seen, want_bags);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    ASN1_OBJECT_free(trust);
}

static void test_pkcs12_truststore(void **state)
{
    char err[512];
    kp_pki_ca_t *ca = make_ca(KP_PKI_KEY_EC_P256, 30), *ca2 = make_ca(KP_PKI_KEY_RSA_2048, 30);
    char *ca_pem = kp_pki_ca_cert_pem(ca), *ca2_pem = kp_pki_ca_cert_pem(ca2);
    char *pw = kp_pki_random_password(24);
    kp_buf_t ts;
    kp_buf_init(&ts);
    if (kp_pki_pkcs12_truststore(ca_pem, pw, &ts, err, sizeof(err)) < 0)
        fail_msg("truststore: %s", err);
    PKCS12 *p12 = p12_decode(&ts);
    p12_check_mac(p12, pw);
    p12_check_jdk_trust(p12, pw, 1);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *cas = NULL;
    assert_int_equal(PKCS12_parse(p12, pw, &key, &cert, &cas), 1);
    assert_null(key);
    assert_null(cert);
    assert_int_equal(sk_X509_num(cas), 1);
    X509 *cax = pem_cert(ca_pem);
    assert_int_equal(X509_cmp(sk_X509_value(cas, 0), cax), 0);
    int alen = 0;
    const unsigned char *alias = X509_alias_get0(sk_X509_value(cas, 0), &alen);
    assert_int_equal(alen, 2);
    assert_memory_equal(alias, KP_PKI_P12_CA_ALIAS, 2);
    sk_X509_pop_free(cas, X509_free);
    cas = NULL;
    assert_int_equal(PKCS12_parse(p12, "wrong", &key, &cert, &cas), 0);
    ERR_clear_error();
    PKCS12_free(p12);

    /* a bundle of two CAs: both trusted */
    size_t l1 = strlen(ca_pem), l2 = strlen(ca2_pem);
    char *bundle = kp_xmalloc(l1 + l2 + 1);
    memcpy(bundle, ca_pem, l1);
    memcpy(bundle + l1, ca2_pem, l2 + 1);
    assert_int_equal(kp_pki_pkcs12_truststore(bundle, pw, &ts, err, sizeof(err)), 0);
    p12 = p12_decode(&ts);
    p12_check_jdk_trust(p12, pw, 2);
    PKCS12_free(p12);

    /* errors */
    assert_int_equal(kp_pki_pkcs12_truststore("junk", pw, &ts, err, sizeof(err)), -1);
    expect_clean_error(err);
    assert_int_equal(kp_pki_pkcs12_truststore(ca_pem, "", &ts, err, sizeof(err)), -1);
    expect_clean_error(err);
    /* a damaged certificate after a good one is an error, not silently dropped */
    char *damaged = kp_xmalloc(l1 + l2 + 1);
    memcpy(damaged, bundle, l1 + l2 + 1);
    damaged[l1 + 100] = damaged[l1 + 100] == 'A' ? 'B' : 'A';
    damaged[l1 + 101] = '*';
    assert_int_equal(kp_pki_pkcs12_truststore(damaged, pw, &ts, err, sizeof(err)), -1);
    expect_clean_error(err);

    free(damaged);
    free(bundle);
    X509_free(cax);
    kp_buf_free(&ts);
    kp_pki_secret_free(pw);
    free(ca_pem);
    free(ca2_pem);
    kp_pki_ca_free(ca);
    kp_pki_ca_free(ca2);
}

/* Opening the stores gives back what went in; a wrong password, junk or a damaged store
 * gives an error without key material. */
static void test_pkcs12_open(void **state)
{
    char err[512];
    kp_pki_ca_t *ca = make_ca(KP_PKI_KEY_EC_P256, 30);
    char *ca_pem = kp_pki_ca_cert_pem(ca);
    kp_pki_issue_req_t r = client_req(KP_PKI_KEY_RSA_2048);
    kp_pki_issued_t c;
    issue_ok(ca, &r, &c);
    char *pw = kp_pki_random_password(20);
    kp_buf_t ks, ts;
    kp_buf_init(&ks);
    kp_buf_init(&ts);
    assert_int_equal(
        kp_pki_pkcs12_keystore(c.cert_pem, c.key_pem, c.chain_pem, pw, &ks, err, sizeof(err)), 0);
    assert_int_equal(kp_pki_pkcs12_truststore(ca_pem, pw, &ts, err, sizeof(err)), 0);

    kp_pki_p12_contents_t got;
    if (kp_pki_pkcs12_open(ks.data, ks.len, pw, &got, err, sizeof(err)) < 0)
        fail_msg("open keystore: %s", err);
    assert_string_equal(got.cert_pem, c.cert_pem);
    assert_string_equal(got.others_pem, ca_pem);
    EVP_PKEY *want_key = pem_pkcs8_key(c.key_pem), *got_key = pem_pkcs8_key(got.key_pem);
    assert_int_equal(EVP_PKEY_eq(want_key, got_key), 1);
    EVP_PKEY_free(want_key);
    EVP_PKEY_free(got_key);
    assert_int_equal(kp_pki_key_matches(got.cert_pem, got.key_pem, err, sizeof(err)), 0);
    kp_pki_p12_contents_free(&got);
    assert_null(got.key_pem);

    if (kp_pki_pkcs12_open(ts.data, ts.len, pw, &got, err, sizeof(err)) < 0)
        fail_msg("open truststore: %s", err);
    assert_null(got.key_pem);
    assert_null(got.cert_pem);
    assert_string_equal(got.others_pem, ca_pem);
    kp_pki_p12_contents_free(&got);

    /* failures: the message says what is wrong, out stays empty */
    uint8_t junk[64];
    memset(junk, 0x30, sizeof(junk));
    kp_buf_t damaged;
    kp_buf_init(&damaged);
    kp_buf_append(&damaged, ks.data, ks.len);
    damaged.data[damaged.len / 2] ^= 0x5a;
    struct {
        const uint8_t *der;
        size_t len;
        const char *pw, *want;
    } bad[] = {
        {ks.data, ks.len, "wrong", "password does not open"},
        {ts.data, ts.len, "", "password does not open"},
        {ks.data, ks.len, NULL, "password does not open"},
        {junk, sizeof(junk), pw, "not a PKCS#12 store"},
        {ks.data, 0, pw, "empty"},
        {ks.data, KP_PKI_INPUT_BYTES_MAX + 1, pw, "larger than"},
        {damaged.data, damaged.len, pw, ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        err[0] = 0;
        memset(&got, 0xff, sizeof(got));
        assert_int_equal(
            kp_pki_pkcs12_open(bad[i].der, bad[i].len, bad[i].pw, &got, err, sizeof(err)), -1);
        assert_null(got.key_pem);
        assert_null(got.cert_pem);
        assert_null(got.others_pem);
        expect_clean_error(err);
        if (!strstr(err, bad[i].want)) fail_msg("case %zu: '%s'", i, err);
    }
    kp_buf_free(&damaged);
    kp_buf_free(&ks);
    kp_buf_free(&ts);
    kp_pki_secret_free(pw);
    kp_pki_issued_free(&c);
    free(ca_pem);
    kp_pki_ca_free(ca);
}

static void test_key_matches(void **state)
{
    char err[512];
    kp_pki_ca_t *ca = make_ca(KP_PKI_KEY_EC_P256, 30);
    kp_pki_issue_req_t r = client_req(KP_PKI_KEY_EC_P256);
    kp_pki_issued_t a, b;
    issue_ok(ca, &r, &a);
    issue_ok(ca, &r, &b);
    assert_int_equal(kp_pki_key_matches(a.cert_pem, a.key_pem, err, sizeof(err)), 0);
    /* a chain: the first certificate counts */
    assert_int_equal(kp_pki_key_matches(a.chain_pem, a.key_pem, err, sizeof(err)), 0);
    struct {
        const char *cert, *key, *want;
    } bad[] = {
        {a.cert_pem, b.key_pem, "does not belong to the certificate"},
        {a.key_pem, a.key_pem, "certificate: not a PEM certificate"},
        {a.cert_pem, a.cert_pem, "private key: not an unencrypted PEM private key"},
        {"", a.key_pem, "certificate: empty"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        err[0] = 0;
        assert_int_equal(kp_pki_key_matches(bad[i].cert, bad[i].key, err, sizeof(err)), -1);
        expect_clean_error(err);
        if (!strstr(err, bad[i].want)) fail_msg("case %zu: '%s'", i, err);
    }
    kp_pki_issued_free(&a);
    kp_pki_issued_free(&b);
    kp_pki_ca_free(ca);
}

/* ---- sealing ---- */

static void test_seal_roundtrip(void **state)
{
    char err[256];
    kp_pki_master_key_t key, other;
    ut_rand_t rnd;
    ut_rand_seed(&rnd, 42);
    ut_rand_fill(&rnd, key.bytes, sizeof(key.bytes));
    memcpy(&other, &key, sizeof(key));
    other.bytes[31] ^= 1;
    const char *aad = "secret/team/app/key";
    const char *plain = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n";
    size_t plen = strlen(plain);
    kp_buf_t sealed, again, opened;
    kp_buf_init(&sealed);
    kp_buf_init(&again);
    kp_buf_init(&opened);
    assert_int_equal(kp_pki_seal(&key, plain, plen, aad, strlen(aad), &sealed, err, sizeof(err)),
                     0);
    assert_int_equal(sealed.len, plen + KP_PKI_SEAL_OVERHEAD);
    assert_memory_equal(sealed.data, "KPS\x01", 4);
    assert_null(memmem(sealed.data, sealed.len, "PRIVATE", 7));
    assert_int_equal(
        kp_pki_open(&key, sealed.data, sealed.len, aad, strlen(aad), &opened, err, sizeof(err)), 0);
    assert_int_equal(opened.len, plen);
    assert_memory_equal(opened.data, plain, plen);

    /* a random nonce: sealing twice gives different bytes */
    assert_int_equal(kp_pki_seal(&key, plain, plen, aad, strlen(aad), &again, err, sizeof(err)), 0);
    assert_int_not_equal(memcmp(again.data, sealed.data, sealed.len), 0);

    /* wrong key, wrong aad, no aad */
    assert_int_equal(
        kp_pki_open(&other, sealed.data, sealed.len, aad, strlen(aad), &opened, err, sizeof(err)),
        -1);
    assert_int_equal(opened.len, 0);
    expect_clean_error(err);
    assert_non_null(strstr(err, "authentication failed"));
    assert_int_equal(kp_pki_open(&key, sealed.data, sealed.len, "secret/team/other/key", 21,
                                 &opened, err, sizeof(err)),
                     -1);
    assert_int_equal(kp_pki_open(&key, sealed.data, sealed.len, NULL, 0, &opened, err, sizeof(err)),
                     -1);

    /* every modified byte (header, nonce, ciphertext, tag) is detected */
    for (size_t i = 0; i < sealed.len; i++) {
        sealed.data[i] ^= 0x20;
        assert_int_equal(
            kp_pki_open(&key, sealed.data, sealed.len, aad, strlen(aad), &opened, err, sizeof(err)),
            -1);
        assert_int_equal(opened.len, 0);
        assert_null(strstr(err, "PRIVATE"));
        sealed.data[i] ^= 0x20;
    }
    /* truncation, at every length */
    for (size_t n = 0; n < sealed.len; n++)
        assert_int_equal(
            kp_pki_open(&key, sealed.data, n, aad, strlen(aad), &opened, err, sizeof(err)), -1);
    /* a future version is named as such */
    sealed.data[3] = 2;
    assert_int_equal(
        kp_pki_open(&key, sealed.data, sealed.len, aad, strlen(aad), &opened, err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "version 2"));
    sealed.data[3] = 1;
    assert_int_equal(
        kp_pki_open(&key, sealed.data, sealed.len, aad, strlen(aad), &opened, err, sizeof(err)), 0);

    /* empty plaintext, no aad */
    assert_int_equal(kp_pki_seal(&key, "", 0, NULL, 0, &sealed, err, sizeof(err)), 0);
    assert_int_equal(sealed.len, KP_PKI_SEAL_OVERHEAD);
    assert_int_equal(kp_pki_open(&key, sealed.data, sealed.len, NULL, 0, &opened, err, sizeof(err)),
                     0);
    assert_int_equal(opened.len, 0);

    /* limits */
    uint8_t *big = kp_xcalloc(1, KP_PKI_SEAL_BYTES_MAX + 1);
    assert_int_equal(
        kp_pki_seal(&key, big, KP_PKI_SEAL_BYTES_MAX + 1, NULL, 0, &sealed, err, sizeof(err)), -1);
    expect_clean_error(err);
    assert_int_equal(
        kp_pki_seal(&key, big, KP_PKI_SEAL_BYTES_MAX, NULL, 0, &sealed, err, sizeof(err)), 0);
    assert_int_equal(kp_pki_open(&key, sealed.data, sealed.len, NULL, 0, &opened, err, sizeof(err)),
                     0);
    assert_int_equal(opened.len, KP_PKI_SEAL_BYTES_MAX);
    free(big);
    assert_int_equal(kp_pki_seal(&key, "x", 1, NULL, 3, &sealed, err, sizeof(err)), -1);

    kp_pki_buf_wipe(&opened);
    assert_null(opened.data);
    kp_buf_free(&sealed);
    kp_buf_free(&again);
    kp_pki_master_key_wipe(&key);
}

/* ---- the master key file ---- */

static void test_master_key_file(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], err[512];
    ut_tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/master.key", dir);
    kp_pki_master_key_t a, b;

    /* created 0600, 32 bytes */
    assert_int_equal(kp_pki_master_key_load_or_create(path, &a, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, KP_PKI_MASTER_KEY_BYTES);
    /* loaded again: the same key; and nothing else left in the directory */
    assert_int_equal(kp_pki_master_key_load_or_create(path, &b, err, sizeof(err)), 0);
    assert_memory_equal(a.bytes, b.bytes, KP_PKI_MASTER_KEY_BYTES);
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1);

    /* readable or writable by group/others: refused, and the message says how to fix it */
    static const int bad_modes[] = {0640, 0604, 0620, 0602, 0644, 0666};
    for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        assert_int_equal(chmod(path, (mode_t)bad_modes[i]), 0);
        err[0] = 0;
        assert_int_equal(kp_pki_master_key_load_or_create(path, &b, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "chmod 600"));
        expect_clean_error(err);
    }
    assert_int_equal(chmod(path, 0400), 0); /* owner-only read is fine */
    assert_int_equal(kp_pki_master_key_load_or_create(path, &b, err, sizeof(err)), 0);
    assert_memory_equal(a.bytes, b.bytes, KP_PKI_MASTER_KEY_BYTES);
    assert_int_equal(chmod(path, 0600), 0);

    /* wrong size: refused, never silently replaced */
    assert_int_equal(truncate(path, 31), 0);
    assert_int_equal(kp_pki_master_key_load_or_create(path, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "expected exactly 32"));
    assert_int_equal(ut_file_size(path), 31);
    /* a directory in its place; a missing parent directory */
    char sub[PATH_MAX + 32];
    snprintf(sub, sizeof(sub), "%s/adir", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(kp_pki_master_key_load_or_create(sub, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));
    snprintf(sub, sizeof(sub), "%s/missing/master.key", dir);
    assert_int_equal(kp_pki_master_key_load_or_create(sub, &b, err, sizeof(err)), -1);
    expect_clean_error(err);

    /* fsync fails while creating: an error, and no key file (nor temp file) is left */
    snprintf(path, sizeof(path), "%s/second.key", dir);
    kp_fs = &kp_fs_faulty;
    kp_fs_faults.write_budget = -1;
    kp_fs_faults.fail_fsync = 1;
    assert_int_equal(kp_pki_master_key_load_or_create(path, &b, err, sizeof(err)), -1);
    kp_fs_faults.fail_fsync = 0;
    kp_fs = &kp_fs_posix;
    assert_non_null(strstr(err, "write"));
    assert_int_equal(access(path, F_OK), -1);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1);
    /* a new file gets a new key */
    assert_int_equal(kp_pki_master_key_load_or_create(path, &b, err, sizeof(err)), 0);
    assert_memory_not_equal(a.bytes, b.bytes, KP_PKI_MASTER_KEY_BYTES);

    kp_pki_master_key_wipe(&a);
    kp_pki_master_key_wipe(&b);
    ut_tmpdir_remove(dir);
}

/* ---- passwords ---- */

static void test_random_password(void **state)
{
    char *a = kp_pki_random_password(32), *b = kp_pki_random_password(32);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
    for (const char *p = a; *p; p++)
        assert_true((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
    kp_pki_secret_free(a);
    kp_pki_secret_free(b);
    assert_null(kp_pki_random_password(KP_PKI_PASSWORD_LEN_MIN - 1));
    assert_null(kp_pki_random_password(KP_PKI_PASSWORD_LEN_MAX + 1));
    char *m = kp_pki_random_password(KP_PKI_PASSWORD_LEN_MAX);
    assert_int_equal(strlen(m), KP_PKI_PASSWORD_LEN_MAX);
    /* every symbol turns up in a long enough sample (a constant or 5-bit generator would not) */
    int seen[256] = {0}, distinct = 0;
    for (int i = 0; i < 64; i++) {
        char *s = kp_pki_random_password(KP_PKI_PASSWORD_LEN_MAX);
        for (const char *p = s; *p; p++)
            if (!seen[(unsigned char)*p]++) distinct++;
        kp_pki_secret_free(s);
    }
    assert_int_equal(distinct, 64);
    kp_pki_secret_free(m);
    kp_pki_secret_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_create_and_load),
        cmocka_unit_test(test_ca_create_errors),
        cmocka_unit_test(test_ca_load_errors),
        cmocka_unit_test(test_issue_chain),
        cmocka_unit_test(test_issue_expiry),
        cmocka_unit_test(test_subjects),
        cmocka_unit_test(test_issue_errors),
        cmocka_unit_test(test_key_type_parse),
        cmocka_unit_test(test_cert_info),
        cmocka_unit_test(test_pkcs12_keystore),
        cmocka_unit_test(test_pkcs12_keystore_errors),
        cmocka_unit_test(test_pkcs12_truststore),
        cmocka_unit_test(test_pkcs12_open),
        cmocka_unit_test(test_key_matches),
        cmocka_unit_test(test_seal_roundtrip),
        cmocka_unit_test(test_master_key_file),
        cmocka_unit_test(test_random_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
