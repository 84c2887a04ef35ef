/*
 * pki_p12.c — PKCS#12 key and trust stores for applications (client.keystore.p12 and
 * client.truststore.jks in a secret, SPEC §4).
 *
 * Algorithms are chosen explicitly (pki.h): PBES2 = PBKDF2(HMAC-SHA-256) + AES-256-CBC for
 * the shrouded key bag and for the encrypted certificate safe, and an HMAC-SHA-256 integrity
 * MAC, KP_PKI_P12_ITER iterations each. OpenSSL 3.0's PKCS12_create defaults happen to be
 * close to this, but defaults move between versions (and 1.1.1 used RC2/3DES + SHA-1), and
 * what Java and `openssl pkcs12` can open is a compatibility promise, so nothing is left to
 * them.
 *
 * Java's PKCS12 KeyStore turns a certificate bag without a key into a trustedCertEntry only
 * when the bag carries Oracle's trusted-key-usage attribute (OID 2.16.840.1.113894.746875.1.1)
 * — without it a truststore looks empty to Java. OpenSSL 3.0 has no NID for it, so it is
 * added by OID text.
 */
#include "pki/pki_int.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>

/* Oracle's "trusted key usage" attribute; its value is the EKU OIDs the certificate is
 * trusted for, here anyExtendedKeyUsage. */
#define PKI_JDK_TRUST_OID "2.16.840.1.113894.746875.1.1"

/* A list of safe bags (a typedef for clang-format, as kp_pki_certs_t). */
typedef STACK_OF(PKCS12_SAFEBAG) pki_bags_t;

/* Length of a store password: the PKCS#12 KDF converts it to BMPString (2 bytes a char). */
#define PKI_P12_PASSWORD_LEN_MAX 1024

static int pki_password_check(const char *password, char *err, size_t errlen)
{
    /* an empty password produces stores that Java and OpenSSL treat inconsistently (no
     * password vs. empty password): never make one */
    if (!password || !*password) return kp_pki_fail(err, errlen, "store password: empty");
    if (strnlen(password, PKI_P12_PASSWORD_LEN_MAX + 1) > PKI_P12_PASSWORD_LEN_MAX)
        return kp_pki_fail(err, errlen, "store password: longer than %d characters",
                           PKI_P12_PASSWORD_LEN_MAX);
    return 0;
}

/* Adds the SHA-256 MAC and writes the DER into out. Does not free p12. */
static int pki_p12_finish(PKCS12 *p12, const char *password, kp_buf_t *out, char *err,
                          size_t errlen)
{
    if (PKCS12_set_mac(p12, password, -1, NULL, 0, KP_PKI_P12_ITER, EVP_sha256()) != 1)
        return kp_pki_fail(err, errlen, "PKCS#12: cannot compute the MAC");
    int len = i2d_PKCS12(p12, NULL);
    if (len <= 0) return kp_pki_fail(err, errlen, "PKCS#12: cannot encode");
    kp_buf_reset(out);
    unsigned char *p = kp_buf_extend(out, (size_t)len);
    if (i2d_PKCS12(p12, &p) != len) {
        kp_buf_reset(out);
        return kp_pki_fail(err, errlen, "PKCS#12: cannot encode");
    }
    return 0;
}

/* Removes from chain every certificate equal to leaf (a full chain starts with it). */
static void pki_chain_drop_leaf(kp_pki_certs_t *chain, X509 *leaf)
{
    for (int i = sk_X509_num(chain) - 1; i >= 0; i--) {
        if (X509_cmp(sk_X509_value(chain, i), leaf) == 0) X509_free(sk_X509_delete(chain, i));
    }
}

int kp_pki_pkcs12_keystore(const char *cert_pem, const char *key_pem, const char *chain_pem,
                           const char *password, kp_buf_t *out, char *err, size_t errlen)
{
    if (pki_password_check(password, err, errlen) < 0) return -1;
    int rc = -1;
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *chain = NULL;
    PKCS12 *p12 = NULL;
    X509 *cert = kp_pki_cert_parse(cert_pem, "certificate", err, errlen);
    if (!cert) goto done;
    key = kp_pki_key_parse(key_pem, "private key", err, errlen);
    if (!key) goto done;
    if (X509_check_private_key(cert, key) != 1) {
        kp_pki_fail(err, errlen, "the private key does not belong to the certificate");
        goto done;
    }
    if (chain_pem && kp_pki_certs_parse(chain_pem, "chain", &chain, err, errlen) < 0) goto done;
    if (!chain && !(chain = sk_X509_new_null())) {
        kp_pki_fail(err, errlen, "out of memory");
        goto done;
    }
    pki_chain_drop_leaf(chain, cert);
    /* mac_iter -1: no MAC here; pki_p12_finish adds it with SHA-256 (PKCS12_create would
     * pick the digest itself) */
    p12 = PKCS12_create_ex(password, KP_PKI_P12_KEY_ALIAS, key, cert, chain, NID_aes_256_cbc,
                           NID_aes_256_cbc, KP_PKI_P12_ITER, -1, 0, NULL, NULL);
    if (!p12) {
        kp_pki_fail(err, errlen, "PKCS#12: cannot build the keystore");
        goto done;
    }
    rc = pki_p12_finish(p12, password, out, err, errlen);
done:
    PKCS12_free(p12);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    X509_free(cert);
    ERR_clear_error();
    return rc;
}

/* Adds cert to bags as a trusted certificate named alias. 0 or -1. */
static int pki_trusted_bag_add(pki_bags_t **bags, X509 *cert, const char *alias)
{
    PKCS12_SAFEBAG *bag = PKCS12_add_cert(bags, cert);
    if (!bag || !PKCS12_add_friendlyname_asc(bag, alias, -1)) return -1;
    /* len -1 with a non-string type: the value is the ASN1_OBJECT itself */
    const ASN1_OBJECT *any_eku = OBJ_nid2obj(NID_anyExtendedKeyUsage);
    if (!PKCS12_add1_attr_by_txt(bag, PKI_JDK_TRUST_OID, V_ASN1_OBJECT,
                                 (const unsigned char *)any_eku, -1))
        return -1;
    return 0;
}

int kp_pki_pkcs12_truststore(const char *ca_pem, const char *password, kp_buf_t *out, char *err,
                             size_t errlen)
{
    if (pki_password_check(password, err, errlen) < 0) return -1;
    int rc = -1;
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    PKCS12 *p12 = NULL;
    STACK_OF(X509) *cas = NULL;
    if (kp_pki_certs_parse(ca_pem, "CA certificate", &cas, err, errlen) < 0) goto done;
    for (int i = 0; i < sk_X509_num(cas); i++) {
        char alias[32];
        if (i == 0)
            snprintf(alias, sizeof(alias), "%s", KP_PKI_P12_CA_ALIAS);
        else
            snprintf(alias, sizeof(alias), "%s-%d", KP_PKI_P12_CA_ALIAS, i + 1);
        if (pki_trusted_bag_add(&bags, sk_X509_value(cas, i), alias) < 0) {
            kp_pki_fail(err, errlen, "PKCS#12: cannot add CA certificate %d", i + 1);
            goto done;
        }
    }
    if (!PKCS12_add_safe(&safes, bags, NID_aes_256_cbc, KP_PKI_P12_ITER, password) ||
        !(p12 = PKCS12_add_safes(safes, 0))) {
        kp_pki_fail(err, errlen, "PKCS#12: cannot build the truststore");
        goto done;
    }
    rc = pki_p12_finish(p12, password, out, err, errlen);
done:
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    sk_X509_pop_free(cas, X509_free);
    ERR_clear_error();
    return rc;
}

/* ------------------------------------------------------------------ opening a store */

/* The certificates of certs as one PEM bundle, in order, into *out (NULL when there are
 * none). 0, or -1 when out of memory. */
static int pki_certs_to_pem(kp_pki_certs_t *certs, char **out)
{
    *out = NULL;
    kp_buf_t b;
    kp_buf_init(&b);
    for (int i = 0; i < sk_X509_num(certs); i++) {
        char *pem = kp_pki_cert_to_pem(sk_X509_value(certs, i));
        if (!pem) {
            kp_buf_free(&b);
            return -1;
        }
        kp_buf_append(&b, pem, strlen(pem));
        free(pem);
    }
    if (!b.len) return 0;
    kp_buf_append(&b, "", 1);
    *out = (char *)b.data; /* the buffer's storage becomes the caller's string */
    return 0;
}

void kp_pki_p12_contents_free(kp_pki_p12_contents_t *c)
{
    kp_pki_secret_free(c->key_pem);
    free(c->cert_pem);
    free(c->others_pem);
    memset(c, 0, sizeof(*c));
}

int kp_pki_pkcs12_open(const uint8_t *der, size_t len, const char *password,
                       kp_pki_p12_contents_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!der || !len) return kp_pki_fail(err, errlen, "PKCS#12: empty");
    if (len > KP_PKI_INPUT_BYTES_MAX)
        return kp_pki_fail(err, errlen, "PKCS#12: larger than %d bytes", KP_PKI_INPUT_BYTES_MAX);
    if (!password) password = "";
    int rc = -1;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *others = NULL;
    const unsigned char *p = der;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (!p12) {
        kp_pki_fail(err, errlen, "not a PKCS#12 store");
        goto done;
    }
    /* checked first for its own message: PKCS12_parse says the same, less plainly */
    if (PKCS12_mac_present(p12) && PKCS12_verify_mac(p12, password, -1) != 1) {
        kp_pki_fail(err, errlen, "PKCS#12: the password does not open the store");
        goto done;
    }
    if (PKCS12_parse(p12, password, &key, &cert, &others) != 1) {
        kp_pki_fail(err, errlen, "PKCS#12: cannot open the store");
        goto done;
    }
    if ((key && !(out->key_pem = kp_pki_key_to_pem(key))) ||
        (cert && !(out->cert_pem = kp_pki_cert_to_pem(cert))) ||
        pki_certs_to_pem(others, &out->others_pem) < 0) {
        kp_pki_p12_contents_free(out);
        kp_pki_fail(err, errlen, "PKCS#12: out of memory");
        goto done;
    }
    rc = 0;
done:
    sk_X509_pop_free(others, X509_free);
    X509_free(cert);
    EVP_PKEY_free(key);
    PKCS12_free(p12);
    ERR_clear_error();
    return rc;
}
