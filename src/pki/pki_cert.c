/*
 * pki_cert.c — keys, the CA, issuing certificates, and reading them back.
 *
 * Divided into: errors and PEM helpers shared with pki_p12.c (kp_pki_fail, kp_pki_*_parse),
 * key generation, subject and SAN parsing (user input: checked, never passed to OpenSSL's
 * config-string parser, so "DNS:a,email:b" cannot smuggle in a second name), certificate
 * construction (one path for the CA and for leaves: serial, names, validity, key, then the
 * profile's extensions, then the signature), kp_pki_cert_info and kp_pki_key_matches.
 *
 * The certificate profile is described in pki.h.
 */
#include "pki/pki_int.h"

#include "auth/principal.h"
#include "core/buf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

/* notBefore is back-dated by this much: a client whose clock is a little behind ours still
 * accepts a certificate issued a moment ago. */
#define PKI_NOT_BEFORE_SKEW_S 300

/* Random bytes in a serial number (RFC 5280 allows up to 20 octets; CA/B asks for ≥ 64
 * random bits). */
#define PKI_SERIAL_BYTES 16

/* RDNs in a subject we parse: real subjects have a handful. */
#define PKI_SUBJECT_RDNS_MAX 16

/* Length of a DNS name in a SAN (RFC 1035). */
#define PKI_DNS_NAME_LEN_MAX 253

/* ------------------------------------------------------------------ errors and PEM */

int kp_pki_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        /* the reason string is static text chosen by OpenSSL ("bad decrypt", "wrong tag"):
         * never the data being processed. ERR_error_string's extra data is not used. */
        unsigned long e = ERR_peek_last_error();
        const char *reason = e ? ERR_reason_error_string(e) : NULL;
        if (reason && n >= 0 && (size_t)n < errlen)
            snprintf(err + n, errlen - (size_t)n, ": %s", reason);
    }
    ERR_clear_error();
    return -1;
}

/* A password callback that refuses: an encrypted key is an error, never a terminal prompt. */
static int pki_no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* A read-only memory BIO over pem (no copy), or NULL with err filled when pem is NULL,
 * empty or larger than KP_PKI_INPUT_BYTES_MAX. */
static BIO *pki_pem_bio(const char *pem, const char *what, char *err, size_t errlen)
{
    if (!pem || !*pem) {
        kp_pki_fail(err, errlen, "%s: empty", what);
        return NULL;
    }
    size_t len = strnlen(pem, KP_PKI_INPUT_BYTES_MAX + 1);
    if (len > KP_PKI_INPUT_BYTES_MAX) {
        kp_pki_fail(err, errlen, "%s: larger than %d bytes", what, KP_PKI_INPUT_BYTES_MAX);
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) kp_pki_fail(err, errlen, "%s: out of memory", what);
    return bio;
}

int kp_pki_certs_parse(const char *pem, const char *what, kp_pki_certs_t **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    BIO *bio = pki_pem_bio(pem, what, err, errlen);
    if (!bio) return -1;
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    while (certs && (x = PEM_read_bio_X509(bio, NULL, pki_no_password, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            break;
        }
    }
    /* reading past the last certificate fails with "no start line": the expected end. Any
     * other error is a damaged certificate. */
    unsigned long e = ERR_peek_last_error();
    int clean_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    BIO_free(bio);
    if (!certs || sk_X509_num(certs) == 0 || !clean_end) {
        sk_X509_pop_free(certs, X509_free);
        return kp_pki_fail(err, errlen, "%s: not a PEM certificate (or a damaged one)", what);
    }
    ERR_clear_error();
    *out = certs;
    return 0;
}

X509 *kp_pki_cert_parse(const char *pem, const char *what, char *err, size_t errlen)
{
    BIO *bio = pki_pem_bio(pem, what, err, errlen);
    if (!bio) return NULL;
    X509 *x = PEM_read_bio_X509(bio, NULL, pki_no_password, NULL);
    BIO_free(bio);
    if (!x) kp_pki_fail(err, errlen, "%s: not a PEM certificate", what);
    return x;
}

EVP_PKEY *kp_pki_key_parse(const char *pem, const char *what, char *err, size_t errlen)
{
    BIO *bio = pki_pem_bio(pem, what, err, errlen);
    if (!bio) return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, pki_no_password, NULL);
    BIO_free(bio);
    if (!k) kp_pki_fail(err, errlen, "%s: not an unencrypted PEM private key", what);
    return k;
}

/* Copies a memory BIO's contents into a malloc'd string. */
static char *pki_bio_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0 || !data) return NULL;
    char *s = kp_xmalloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = 0;
    return s;
}

char *kp_pki_cert_to_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (bio && PEM_write_bio_X509(bio, x)) s = pki_bio_string(bio);
    BIO_free(bio);
    ERR_clear_error();
    return s;
}

char *kp_pki_key_to_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    char *s = NULL;
    if (bio && PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        s = pki_bio_string(bio);
    BIO_free(bio);
    ERR_clear_error();
    return s;
}

void kp_pki_secret_free(char *s)
{
    if (!s) return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* ------------------------------------------------------------------ keys */

int kp_pki_key_type_parse(const char *s, kp_pki_key_type_t *out)
{
    if (!strcasecmp(s, "ec-p256") || !strcasecmp(s, "ec") || !strcasecmp(s, "p-256")) {
        *out = KP_PKI_KEY_EC_P256;
        return 0;
    }
    if (!strcasecmp(s, "rsa-2048") || !strcasecmp(s, "rsa")) {
        *out = KP_PKI_KEY_RSA_2048;
        return 0;
    }
    return -1;
}

const char *kp_pki_key_type_name(kp_pki_key_type_t t)
{
    switch (t) {
    case KP_PKI_KEY_EC_P256:
        return "ec-p256";
    case KP_PKI_KEY_RSA_2048:
        return "rsa-2048";
    }
    return "unknown";
}

static EVP_PKEY *pki_key_generate(kp_pki_key_type_t t, char *err, size_t errlen)
{
    EVP_PKEY *k = NULL;
    switch (t) {
    case KP_PKI_KEY_EC_P256:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case KP_PKI_KEY_RSA_2048:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    default:
        kp_pki_fail(err, errlen, "key type %d is not ec-p256 or rsa-2048", (int)t);
        return NULL;
    }
    if (!k) kp_pki_fail(err, errlen, "cannot generate a %s key", kp_pki_key_type_name(t));
    return k;
}

/* ------------------------------------------------------------------ subject and SANs */

static int pki_hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads one attribute value of an RFC 4514 DN at *pp up to an unescaped ',' or the end,
 * unescaping into value (cap bytes); leading and trailing unescaped spaces are dropped.
 * Returns its length, or -1 with err filled. */
static int pki_dn_value(const char **pp, char *value, size_t cap, char *err, size_t errlen)
{
    const char *p = *pp;
    size_t n = 0, significant = 0;
    while (*p == ' ') p++;
    if (*p == '#')
        return kp_pki_fail(err, errlen, "subject: '#' (BER-encoded) values are not supported");
    for (; *p && *p != ','; p++) {
        int c = (unsigned char)*p, escaped = 0;
        if (c == '\\') {
            int hi = pki_hexval(p[1]), lo = hi >= 0 ? pki_hexval(p[2]) : -1;
            if (hi >= 0 && lo >= 0) {
                c = hi * 16 + lo;
                p += 2;
            } else if (p[1] && strchr(",+\"\\<>;=# ", p[1])) {
                c = (unsigned char)*++p;
            } else {
                return kp_pki_fail(err, errlen, "subject: bad escape '\\%c'", p[1] ? p[1] : ' ');
            }
            escaped = 1;
        } else if (strchr("+\"<>;", c)) {
            return kp_pki_fail(err, errlen,
                               "subject: unescaped '%c' (multi-valued RDNs and quoting are not "
                               "supported; escape it as \\%c)",
                               c, c);
        }
        /* a NUL or control character hidden in a name fools naive comparisons */
        if (c < 0x20 || c == 0x7f)
            return kp_pki_fail(err, errlen, "subject: control character 0x%02x", c);
        if (n + 1 >= cap) return kp_pki_fail(err, errlen, "subject: value too long");
        value[n++] = (char)c;
        if (escaped || c != ' ') significant = n;
    }
    *pp = p;
    value[significant] = 0;
    return (int)significant;
}

/* Parses an RFC 2253 / 4514 DN ("CN=app,O=kpool": most specific RDN first) into an
 * X509_NAME in certificate order. NULL with err filled. */
static X509_NAME *pki_subject_parse(const char *dn, char *err, size_t errlen)
{
    if (!dn || !*dn) {
        kp_pki_fail(err, errlen, "subject: empty (expected e.g. CN=team_app_0123abcd_1)");
        return NULL;
    }
    if (strnlen(dn, KP_PKI_SUBJECT_LEN_MAX) >= KP_PKI_SUBJECT_LEN_MAX) {
        kp_pki_fail(err, errlen, "subject: longer than %d characters", KP_PKI_SUBJECT_LEN_MAX - 1);
        return NULL;
    }
    X509_NAME *name = X509_NAME_new();
    if (!name) {
        kp_pki_fail(err, errlen, "subject: out of memory");
        return NULL;
    }
    char type[64], value[KP_PKI_SUBJECT_LEN_MAX];
    const char *p = dn;
    for (int rdns = 0;; rdns++) {
        while (*p == ' ') p++;
        size_t tl = 0;
        while (tl + 1 < sizeof(type) && (isalnum((unsigned char)*p) || *p == '.' || *p == '-'))
            type[tl++] = *p++;
        type[tl] = 0;
        while (*p == ' ') p++;
        if (tl == 0 || *p != '=') {
            kp_pki_fail(err, errlen, "subject: expected TYPE=value at offset %d of '%s'",
                        (int)(p - dn), dn);
            goto fail;
        }
        p++;
        int nid = OBJ_txt2nid(type);
        if (nid == NID_undef) {
            kp_pki_fail(err, errlen, "subject: unknown attribute type '%s'", type);
            goto fail;
        }
        int vl = pki_dn_value(&p, value, sizeof(value), err, errlen);
        if (vl < 0) goto fail;
        if (vl == 0) {
            kp_pki_fail(err, errlen, "subject: empty value for %s", type);
            goto fail;
        }
        if (rdns >= PKI_SUBJECT_RDNS_MAX) {
            kp_pki_fail(err, errlen, "subject: more than %d attributes", PKI_SUBJECT_RDNS_MAX);
            goto fail;
        }
        /* RFC 2253 lists the last RDN first: inserting each at position 0 restores the
         * certificate order. OpenSSL enforces each attribute's size rules (CN ≤ 64, C = 2). */
        if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (unsigned char *)value, vl, 0,
                                        0)) {
            kp_pki_fail(err, errlen, "subject: value of %s not accepted", type);
            goto fail;
        }
        if (*p != ',') break;
        p++;
    }
    return name;
fail:
    X509_NAME_free(name);
    return NULL;
}

/* A DNS name as a SAN: letters, digits, '-', '.', and a leading "*." wildcard label. */
static int pki_dns_name_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > PKI_DNS_NAME_LEN_MAX || s[0] == '.' || s[len - 1] == '.') return 0;
    if (!strncmp(s, "*.", 2)) s += 2;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.') return 0;
    return 1;
}

/* One SAN: "IP:addr", "DNS:name", or bare (an IPv4/IPv6 literal is an IP, else a name). */
static GENERAL_NAME *pki_san_parse(const char *s, char *err, size_t errlen)
{
    int ip;
    if (!strncasecmp(s, "IP:", 3)) {
        ip = 1;
        s += 3;
    } else if (!strncasecmp(s, "DNS:", 4)) {
        ip = 0;
        s += 4;
    } else {
        ASN1_OCTET_STRING *probe = a2i_IPADDRESS(s);
        ip = probe != NULL;
        ASN1_OCTET_STRING_free(probe);
        ERR_clear_error();
    }
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (!gn) goto oom;
    if (ip) {
        ASN1_OCTET_STRING *addr = a2i_IPADDRESS(s);
        if (!addr) {
            GENERAL_NAME_free(gn);
            kp_pki_fail(err, errlen, "subjectAltName: '%s' is not an IP address", s);
            return NULL;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, addr);
        return gn;
    }
    if (!pki_dns_name_valid(s)) {
        GENERAL_NAME_free(gn);
        kp_pki_fail(err, errlen, "subjectAltName: '%s' is not a DNS name or IP address", s);
        return NULL;
    }
    ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
    if (!dns || !ASN1_STRING_set(dns, s, (int)strlen(s))) {
        ASN1_IA5STRING_free(dns);
        GENERAL_NAME_free(gn);
        goto oom;
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
    return gn;
oom:
    kp_pki_fail(err, errlen, "subjectAltName: out of memory");
    return NULL;
}

static int pki_add_sans(X509 *x, const char *const *sans, size_t nsans, char *err, size_t errlen)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int rc = gens ? 0 : kp_pki_fail(err, errlen, "subjectAltName: out of memory");
    for (size_t i = 0; rc == 0 && i < nsans; i++) {
        GENERAL_NAME *gn = NULL;
        if (!sans[i])
            rc = kp_pki_fail(err, errlen, "subjectAltName %zu: NULL", i);
        else if (!(gn = pki_san_parse(sans[i], err, errlen)))
            rc = -1;
        else if (!sk_GENERAL_NAME_push(gens, gn))
            rc = kp_pki_fail(err, errlen, "subjectAltName: out of memory");
        if (rc < 0) GENERAL_NAME_free(gn);
    }
    if (rc == 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        rc = kp_pki_fail(err, errlen, "cannot add subjectAltName");
    GENERAL_NAMES_free(gens);
    return rc;
}

/* ------------------------------------------------------------------ building certificates */

/* A random positive serial of PKI_SERIAL_BYTES bytes (never zero). */
static int pki_serial_set(X509 *x)
{
    unsigned char rnd[PKI_SERIAL_BYTES];
    BIGNUM *bn = NULL;
    for (int tries = 0; tries < 4 && (!bn || BN_is_zero(bn)); tries++) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) break;
        BN_free(bn);
        bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    }
    ASN1_INTEGER *serial = bn && !BN_is_zero(bn) ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int ok = serial && X509_set_serialNumber(x, serial);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok ? 0 : -1;
}

/* Adds one extension from a fixed configuration string (never user input). */
static int pki_ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate with everything but extensions and signature: v3, random serial, subject,
 * issuer (issuer NULL: self-signed), validity from issued_at, the subject's public key. */
static X509 *pki_cert_new(X509_NAME *subject, EVP_PKEY *key, X509 *issuer, int64_t issued_at,
                          int days, char *err, size_t errlen)
{
    X509 *x = X509_new();
    time_t t = (time_t)(issued_at ? issued_at : (int64_t)time(NULL));
    if (!x || !X509_set_version(x, X509_VERSION_3) || pki_serial_set(x) < 0 ||
        !X509_set_subject_name(x, subject) ||
        !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) ||
        !ASN1_TIME_adj(X509_getm_notBefore(x), t, 0, -PKI_NOT_BEFORE_SKEW_S) ||
        !ASN1_TIME_adj(X509_getm_notAfter(x), t, days, 0) || !X509_set_pubkey(x, key)) {
        X509_free(x);
        kp_pki_fail(err, errlen, "cannot build the certificate");
        return NULL;
    }
    return x;
}

static int pki_sign(X509 *x, EVP_PKEY *key, char *err, size_t errlen)
{
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        return kp_pki_fail(err, errlen, "cannot sign the certificate");
    return 0;
}

static int pki_days_check(int days, char *err, size_t errlen)
{
    if (days < 1 || days > KP_PKI_VALIDITY_DAYS_MAX)
        return kp_pki_fail(err, errlen, "validity: %d days is not between 1 and %d", days,
                           KP_PKI_VALIDITY_DAYS_MAX);
    return 0;
}

/* ------------------------------------------------------------------ the CA */

kp_pki_ca_t *kp_pki_ca_create(const char *cn, int validity_days, kp_pki_key_type_t key_type,
                              char *err, size_t errlen)
{
    if (pki_days_check(validity_days, err, errlen) < 0) return NULL;
    if (!cn || !*cn) {
        kp_pki_fail(err, errlen, "CA common name: empty");
        return NULL;
    }
    X509_NAME *name = X509_NAME_new();
    if (!name || !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                             (const unsigned char *)cn, -1, -1, 0)) {
        X509_NAME_free(name);
        kp_pki_fail(err, errlen, "CA common name '%s' not accepted (at most 64 characters)", cn);
        return NULL;
    }
    kp_pki_ca_t *ca = kp_xcalloc(1, sizeof(*ca));
    ca->key = pki_key_generate(key_type, err, errlen);
    if (ca->key) ca->cert = pki_cert_new(name, ca->key, NULL, 0, validity_days, err, errlen);
    X509_NAME_free(name);
    if (!ca->cert) goto fail;
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca->cert, ca->cert, NULL, NULL, 0);
    if (pki_ext_add(ca->cert, &ctx, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        pki_ext_add(ca->cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        pki_ext_add(ca->cert, &ctx, NID_subject_key_identifier, "hash") < 0) {
        kp_pki_fail(err, errlen, "cannot add the CA extensions");
        goto fail;
    }
    if (pki_sign(ca->cert, ca->key, err, errlen) < 0) goto fail;
    return ca;
fail:
    kp_pki_ca_free(ca);
    return NULL;
}

kp_pki_ca_t *kp_pki_ca_load(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
    kp_pki_ca_t *ca = kp_xcalloc(1, sizeof(*ca));
    ca->cert = kp_pki_cert_parse(cert_pem, "CA certificate", err, errlen);
    if (!ca->cert) goto fail;
    ca->key = kp_pki_key_parse(key_pem, "CA private key", err, errlen);
    if (!ca->key) goto fail;
    if (X509_check_ca(ca->cert) != 1) {
        kp_pki_fail(err, errlen,
                    "CA certificate: not a CA (needs basicConstraints CA:TRUE and "
                    "keyUsage keyCertSign)");
        goto fail;
    }
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        kp_pki_fail(err, errlen, "CA private key does not belong to the CA certificate");
        goto fail;
    }
    return ca;
fail:
    kp_pki_ca_free(ca);
    return NULL;
}

void kp_pki_ca_free(kp_pki_ca_t *ca)
{
    if (!ca) return;
    EVP_PKEY_free(ca->key); /* OpenSSL clears private key material when freeing */
    X509_free(ca->cert);
    free(ca);
}

char *kp_pki_ca_cert_pem(const kp_pki_ca_t *ca)
{
    return kp_pki_cert_to_pem(ca->cert);
}

char *kp_pki_ca_key_pem(const kp_pki_ca_t *ca)
{
    return kp_pki_key_to_pem(ca->key);
}

/* ------------------------------------------------------------------ issuing */

static int pki_req_check(const kp_pki_issue_req_t *req, char *err, size_t errlen)
{
    if (pki_days_check(req->validity_days, err, errlen) < 0) return -1;
    if (req->usage != KP_PKI_USAGE_CLIENT && req->usage != KP_PKI_USAGE_SERVER)
        return kp_pki_fail(err, errlen, "usage %d is not client or server", (int)req->usage);
    if (req->nsans > KP_PKI_SANS_MAX)
        return kp_pki_fail(err, errlen, "subjectAltName: %zu entries, at most %d", req->nsans,
                           KP_PKI_SANS_MAX);
    if (req->nsans && !req->sans) return kp_pki_fail(err, errlen, "subjectAltName: NULL list");
    /* clients check a server's name against its SANs only (the CN fallback is gone) */
    if (req->usage == KP_PKI_USAGE_SERVER && req->nsans == 0)
        return kp_pki_fail(err, errlen,
                           "a server certificate needs at least one "
                           "subjectAltName (IP address or DNS name)");
    return 0;
}

/* The leaf profile's extensions (see pki.h). */
static int pki_leaf_extensions(X509 *x, const kp_pki_ca_t *ca, const kp_pki_issue_req_t *req,
                               EVP_PKEY *key, char *err, size_t errlen)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
    int rsa = EVP_PKEY_is_a(key, "RSA");
    if (pki_ext_add(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        pki_ext_add(x, &ctx, NID_key_usage,
                    rsa ? "critical,digitalSignature,keyEncipherment"
                        : "critical,digitalSignature") < 0 ||
        pki_ext_add(x, &ctx, NID_ext_key_usage,
                    req->usage == KP_PKI_USAGE_SERVER ? "serverAuth" : "clientAuth") < 0 ||
        pki_ext_add(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
        pki_ext_add(x, &ctx, NID_authority_key_identifier, "keyid:always") < 0)
        return kp_pki_fail(err, errlen, "cannot add the certificate extensions");
    if (req->nsans && pki_add_sans(x, req->sans, req->nsans, err, errlen) < 0) return -1;
    /* a certificate cannot be valid longer than the CA that signed it */
    const ASN1_TIME *ca_end = X509_get0_notAfter(ca->cert);
    if (ASN1_TIME_compare(X509_get0_notAfter(x), ca_end) > 0 && !X509_set1_notAfter(x, ca_end))
        return kp_pki_fail(err, errlen, "cannot set notAfter");
    return 0;
}

int kp_pki_issue(const kp_pki_ca_t *ca, const kp_pki_issue_req_t *req, kp_pki_issued_t *out,
                 char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (pki_req_check(req, err, errlen) < 0) return -1;
    X509_NAME *name = pki_subject_parse(req->subject, err, errlen);
    if (!name) return -1;
    EVP_PKEY *key = pki_key_generate(req->key_type, err, errlen);
    X509 *x = NULL;
    int rc = -1;
    if (!key) goto done;
    x = pki_cert_new(name, key, ca->cert, req->issued_at_s, req->validity_days, err, errlen);
    if (!x || pki_leaf_extensions(x, ca, req, key, err, errlen) < 0 ||
        pki_sign(x, ca->key, err, errlen) < 0)
        goto done;
    out->cert_pem = kp_pki_cert_to_pem(x);
    out->key_pem = kp_pki_key_to_pem(key);
    char *ca_pem = kp_pki_cert_to_pem(ca->cert);
    if (!out->cert_pem || !out->key_pem || !ca_pem) {
        free(ca_pem);
        kp_pki_issued_free(out);
        kp_pki_fail(err, errlen, "cannot encode the certificate or key");
        goto done;
    }
    size_t cl = strlen(out->cert_pem), al = strlen(ca_pem);
    out->chain_pem = kp_xmalloc(cl + al + 1);
    memcpy(out->chain_pem, out->cert_pem, cl);
    memcpy(out->chain_pem + cl, ca_pem, al + 1);
    free(ca_pem);
    rc = 0;
done:
    X509_free(x);
    EVP_PKEY_free(key);
    X509_NAME_free(name);
    ERR_clear_error();
    return rc;
}

void kp_pki_issued_free(kp_pki_issued_t *out)
{
    if (!out) return;
    free(out->cert_pem);
    kp_pki_secret_free(out->key_pem);
    free(out->chain_pem);
    memset(out, 0, sizeof(*out));
}

/* ------------------------------------------------------------------ reading certificates */

/* Issuer in the same RFC 2253 form kp_cert_subject_rfc2253 prints subjects in. */
static int pki_name_rfc2253(X509_NAME *name, char *out, size_t outlen)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = -1;
    if (bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *data;
        long len = BIO_get_mem_data(bio, &data);
        if (len >= 0 && (size_t)len < outlen) {
            memcpy(out, data, (size_t)len);
            out[len] = 0;
            rc = 0;
        }
    }
    BIO_free(bio);
    return rc;
}

static int pki_time_epoch(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int kp_pki_cert_info(const char *pem, kp_pki_cert_info_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    X509 *x = kp_pki_cert_parse(pem, "certificate", err, errlen);
    if (!x) return -1;
    int rc = -1;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    /* the subject exactly as the broker derives principals from it */
    if (kp_cert_subject_rfc2253(x, out->subject, sizeof(out->subject)) < 0 ||
        pki_name_rfc2253(X509_get_issuer_name(x), out->issuer, sizeof(out->issuer)) < 0) {
        kp_pki_fail(err, errlen, "certificate: subject or issuer longer than %d characters",
                    KP_PKI_SUBJECT_LEN_MAX - 1);
        goto done;
    }
    if (!hex || strlen(hex) >= sizeof(out->serial_hex)) {
        kp_pki_fail(err, errlen, "certificate: unusable serial number");
        goto done;
    }
    snprintf(out->serial_hex, sizeof(out->serial_hex), "%s", hex);
    if (pki_time_epoch(X509_get0_notBefore(x), &out->not_before_s) < 0 ||
        pki_time_epoch(X509_get0_notAfter(x), &out->not_after_s) < 0) {
        kp_pki_fail(err, errlen, "certificate: unreadable validity dates");
        goto done;
    }
    out->is_ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
    rc = 0;
done:
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

int kp_pki_key_matches(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    X509 *x = kp_pki_cert_parse(cert_pem, "certificate", err, errlen);
    if (!x || !(key = kp_pki_key_parse(key_pem, "private key", err, errlen))) goto done;
    if (X509_check_private_key(x, key) != 1) {
        kp_pki_fail(err, errlen, "the private key does not belong to the certificate");
        goto done;
    }
    rc = 0;
done:
    EVP_PKEY_free(key);
    X509_free(x);
    ERR_clear_error();
    return rc;
}
