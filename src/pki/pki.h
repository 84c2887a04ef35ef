/*
 * pki.h — the pool's certificate authority, the certificates it issues, the PKCS#12 stores
 * handed to applications, and encryption at rest for the private keys the control plane keeps.
 *
 * Users: `kpool up` (creates the pool CA, the broker's server certificate and the control
 * plane's admin client certificate on first start) and the control plane (a client
 * certificate plus key/trust stores per service user, SPEC §3–4).
 *
 * Files:
 *   pki_cert.c  key generation, CA create/load, issuing, certificate information
 *   pki_p12.c   PKCS#12 keystore and truststore (making and opening them)
 *   pki_seal.c  AES-256-GCM sealing, the master key file, random passwords
 *
 * Conventions:
 *   - Text outputs (PEM) are malloc'd NUL-terminated strings owned by the caller. Anything
 *     holding a private key (key PEMs, opened plaintexts) must be released with
 *     kp_pki_secret_free / kp_pki_buf_wipe, which overwrite the bytes before freeing.
 *   - Binary outputs are written into a caller-owned kp_buf_t (replacing its contents).
 *   - Failures return -1 (or NULL) and describe the problem in err (which field, what was
 *     wrong, OpenSSL's reason). Messages never contain key material, passwords or PEM text.
 *     The thread's OpenSSL error queue is left empty, so a caller's later SSL_get_error()
 *     is not confused by our failures.
 *   - Every function is thread-safe (no shared state besides OpenSSL's own, which is).
 *
 * Certificate profile (RFC 5280): SHA-256 signatures; a random positive 128-bit serial;
 * notBefore = issuing time − 5 minutes (clients with a slow clock accept a fresh
 * certificate); CA: basicConstraints critical CA:TRUE, keyUsage critical keyCertSign+cRLSign,
 * subjectKeyIdentifier; leaf: basicConstraints critical CA:FALSE, keyUsage critical
 * digitalSignature (+keyEncipherment for RSA keys), extendedKeyUsage clientAuth or
 * serverAuth, subjectKeyIdentifier, authorityKeyIdentifier (the CA's key id), and
 * subjectAltName when given. A leaf never outlives its CA: its notAfter is clamped to the CA's.
 */
#ifndef KP_PKI_H
#define KP_PKI_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Size of a PEM or PKCS#12 input we parse (a certificate chain, a key). Larger inputs are
 * refused before OpenSSL sees them, so a corrupt store row cannot cost unbounded memory. */
#define KP_PKI_INPUT_BYTES_MAX (256 * 1024)

/* Length of a subject DN as text (RFC 2253). Kafka principals are built from it. */
#define KP_PKI_SUBJECT_LEN_MAX 1024

/* Validity of any certificate we make, in days (about 100 years): keeps notAfter
 * arithmetic far from overflow and catches a unit mistake (seconds passed as days). */
#define KP_PKI_VALIDITY_DAYS_MAX 36500

/* subjectAltName entries in one certificate: what a broker with many names could need,
 * bounded so a request cannot make an arbitrarily large certificate. */
#define KP_PKI_SANS_MAX 64

/* Password length for kp_pki_random_password (characters). 16 characters carry 96 bits. */
#define KP_PKI_PASSWORD_LEN_MIN 16
#define KP_PKI_PASSWORD_LEN_MAX 256

/* Plaintext size kp_pki_seal accepts: sealed values are keys and passwords, not data. */
#define KP_PKI_SEAL_BYTES_MAX (1024 * 1024)

/* PKCS#12 iteration count for PBKDF2 (key and certificate bags) and for the MAC key
 * derivation; the value keytool (JDK 17) uses for the same algorithms. */
#define KP_PKI_P12_ITER 10000

/* The friendly name (Java alias) of the key entry in a keystore. */
#define KP_PKI_P12_KEY_ALIAS "kpool"
/* The friendly name (Java alias) of the CA entry in a truststore. */
#define KP_PKI_P12_CA_ALIAS "ca"

/* Master key for kp_pki_seal / kp_pki_open (AES-256). */
#define KP_PKI_MASTER_KEY_BYTES 32

/* Sealed format, version 1:  "KPS" 0x01 | nonce (12) | ciphertext | GCM tag (16).
 * The 4-byte header is authenticated (as GCM additional data, with the caller's aad). */
#define KP_PKI_SEAL_HEADER_BYTES 4
#define KP_PKI_SEAL_NONCE_BYTES  12
#define KP_PKI_SEAL_TAG_BYTES    16
#define KP_PKI_SEAL_OVERHEAD                                                                       \
    (KP_PKI_SEAL_HEADER_BYTES + KP_PKI_SEAL_NONCE_BYTES + KP_PKI_SEAL_TAG_BYTES)

typedef enum {
    KP_PKI_KEY_EC_P256 = 0, /* default: small, fast, accepted by every Kafka client */
    KP_PKI_KEY_RSA_2048,
} kp_pki_key_type_t;

typedef enum {
    KP_PKI_USAGE_CLIENT = 0, /* extendedKeyUsage clientAuth */
    KP_PKI_USAGE_SERVER,     /* extendedKeyUsage serverAuth; needs at least one SAN */
} kp_pki_usage_t;

/* A CA: its private key and self-signed certificate (opaque). */
typedef struct kp_pki_ca kp_pki_ca_t;

/* What to issue. Zero-initialise, then set what you need: the zero values are an EC P-256
 * client certificate issued now. */
typedef struct kp_pki_issue_req {
    const char *subject; /* RFC 2253 DN, most specific RDN first: "CN=team_app_0123abcd_1",
                            "CN=broker,O=kpool". \-escapes as in RFC 4514; no '+' RDNs */
    int validity_days;   /* 1..KP_PKI_VALIDITY_DAYS_MAX */
    kp_pki_key_type_t key_type;
    kp_pki_usage_t usage;
    const char *const *sans; /* "IP:127.0.0.1", "DNS:broker.example", or bare (an address is
                                an IP, anything else a DNS name); nsans entries */
    size_t nsans;
    int64_t issued_at_s; /* the issuing time, epoch seconds; 0 = now. Tests back-date it to
                            make an expired certificate. */
} kp_pki_issue_req_t;

/* An issued certificate. Release with kp_pki_issued_free (wipes the key). */
typedef struct kp_pki_issued {
    char *cert_pem;  /* the certificate */
    char *key_pem;   /* its private key, unencrypted PKCS#8 ("BEGIN PRIVATE KEY") */
    char *chain_pem; /* the certificate followed by the CA certificate (ssl.certificate.location
                        for a broker, the chain for a keystore) */
} kp_pki_issued_t;

/* What kp_pki_cert_info reports. */
typedef struct kp_pki_cert_info {
    char subject[KP_PKI_SUBJECT_LEN_MAX]; /* RFC 2253, exactly as the broker's principal */
    char issuer[KP_PKI_SUBJECT_LEN_MAX];  /* RFC 2253 */
    char serial_hex[48];                  /* upper-case hex, no separators */
    int64_t not_before_s;                 /* epoch seconds */
    int64_t not_after_s;                  /* epoch seconds */
    int is_ca;                            /* basicConstraints CA:TRUE */
} kp_pki_cert_info_t;

/* ---- keys and certificates (pki_cert.c) ---- */

/* "ec-p256" / "ec" or "rsa-2048" / "rsa" (case-insensitive). 0, or -1 when unknown. */
int kp_pki_key_type_parse(const char *s, kp_pki_key_type_t *out);
const char *kp_pki_key_type_name(kp_pki_key_type_t t);

/* Creates a CA with a new key and a self-signed certificate whose subject is CN=cn.
 * Returns the CA (free with kp_pki_ca_free), or NULL with err filled. */
kp_pki_ca_t *kp_pki_ca_create(const char *cn, int validity_days, kp_pki_key_type_t key_type,
                              char *err, size_t errlen);

/* Loads a CA from its certificate PEM and its unencrypted private key PEM (PKCS#8 or
 * traditional). Refuses a certificate that is not a CA, cannot sign certificates, or does
 * not match the key. NULL with err filled. */
kp_pki_ca_t *kp_pki_ca_load(const char *cert_pem, const char *key_pem, char *err, size_t errlen);

void kp_pki_ca_free(kp_pki_ca_t *ca);

/* The CA certificate as PEM (malloc'd; free()). NULL only when out of memory. */
char *kp_pki_ca_cert_pem(const kp_pki_ca_t *ca);
/* The CA private key as unencrypted PKCS#8 PEM (malloc'd; kp_pki_secret_free()). Store it
 * sealed or in a 0600 file. NULL only when out of memory. */
char *kp_pki_ca_key_pem(const kp_pki_ca_t *ca);

/* Issues a certificate with a new key, signed by ca. On success returns 0 and fills out
 * (release with kp_pki_issued_free); -1 with err filled and out zeroed otherwise. */
int kp_pki_issue(const kp_pki_ca_t *ca, const kp_pki_issue_req_t *req, kp_pki_issued_t *out,
                 char *err, size_t errlen);
void kp_pki_issued_free(kp_pki_issued_t *out);

/* Reads the first certificate of pem. 0, or -1 with err filled. */
int kp_pki_cert_info(const char *pem, kp_pki_cert_info_t *out, char *err, size_t errlen);

/* 0 when key_pem is an unencrypted private key that belongs to the first certificate of
 * cert_pem; -1 with err otherwise (which input does not parse, or "the private key does not
 * belong to the certificate"). */
int kp_pki_key_matches(const char *cert_pem, const char *key_pem, char *err, size_t errlen);

/* Overwrites a secret string (a key PEM, a password) and frees it. NULL is a no-op. */
void kp_pki_secret_free(char *s);

/* ---- PKCS#12 stores (pki_p12.c) ----
 *
 * Both use PBES2 (PBKDF2 with HMAC-SHA-256, AES-256-CBC) for the key and the certificate
 * bags and an HMAC-SHA-256 MAC, KP_PKI_P12_ITER iterations each. Set explicitly rather than
 * taken from OpenSSL's defaults: these open with `openssl pkcs12` (OpenSSL 1.1.1 and 3.x)
 * and with Java 11.0.12+ / 17 (the legacy 3DES/RC2 defaults of older tools do not open
 * with OpenSSL 3 without its legacy provider). */

/* A keystore: the key (friendly name KP_PKI_P12_KEY_ALIAS) with cert_pem and the
 * certificates of chain_pem (the CA; a copy of the leaf in the chain is skipped). chain_pem
 * may be NULL. Writes the DER into out (replacing its contents). 0, or -1 with err filled. */
int kp_pki_pkcs12_keystore(const char *cert_pem, const char *key_pem, const char *chain_pem,
                           const char *password, kp_buf_t *out, char *err, size_t errlen);

/* A truststore holding every certificate of ca_pem as a trusted certificate (friendly name
 * KP_PKI_P12_CA_ALIAS, then "ca-2", ...), marked with Java's trusted-key-usage attribute so
 * Java's PKCS12 KeyStore lists it as a trustedCertEntry (the same thing OpenSSL 3.2's
 * `pkcs12 -jdktrust anyExtendedKeyUsage` does). 0, or -1 with err filled. */
int kp_pki_pkcs12_truststore(const char *ca_pem, const char *password, kp_buf_t *out, char *err,
                             size_t errlen);

/* What a PKCS#12 store holds, as PEM; each NULL when the store has none. */
typedef struct kp_pki_p12_contents {
    char *key_pem;    /* the private key, unencrypted PKCS#8 (wiped by the free) */
    char *cert_pem;   /* the certificate that belongs to the key */
    char *others_pem; /* every other certificate: a keystore's chain, a truststore's CAs */
} kp_pki_p12_contents_t;

/* Opens a PKCS#12 store of len bytes (DER, at most KP_PKI_INPUT_BYTES_MAX) with password:
 * the reverse of the two functions above, for whoever is handed only the stores (`kpool
 * probe --from-env` in a Java application's environment). 0 with out filled (release it
 * with kp_pki_p12_contents_free), or -1 with err and out empty: not PKCS#12, the password
 * does not open it (the MAC does not verify), a bag that cannot be decrypted. */
int kp_pki_pkcs12_open(const uint8_t *der, size_t len, const char *password,
                       kp_pki_p12_contents_t *out, char *err, size_t errlen);
void kp_pki_p12_contents_free(kp_pki_p12_contents_t *c);

/* ---- sealing, master key, passwords (pki_seal.c) ---- */

typedef struct kp_pki_master_key {
    uint8_t bytes[KP_PKI_MASTER_KEY_BYTES];
} kp_pki_master_key_t;

/* Loads the master key from path (exactly KP_PKI_MASTER_KEY_BYTES raw bytes), or, when the
 * file does not exist, creates it with fresh random bytes: a 0600 temporary file, written
 * and fsynced, published with link(2) (a rename that never replaces: when two processes
 * race, both end up with the winner's key) and the directory fsynced. Refuses a key file
 * that is not a regular file, is readable or writable by group/others, belongs to another
 * user, or has the wrong size. The directory must exist. 0, or -1 with err filled.
 * Wipe the key with kp_pki_master_key_wipe when done. */
int kp_pki_master_key_load_or_create(const char *path, kp_pki_master_key_t *out, char *err,
                                     size_t errlen);
void kp_pki_master_key_wipe(kp_pki_master_key_t *key);

/* Encrypts plain (at most KP_PKI_SEAL_BYTES_MAX bytes) with AES-256-GCM and a random nonce
 * into out (replacing its contents; KP_PKI_SEAL_OVERHEAD bytes longer). aad (may be NULL
 * when aadlen is 0) is authenticated but not stored: pass what identifies the value (say,
 * "secret/<ns>/<name>/key") so a sealed value cannot be moved to another record. 0 or -1. */
int kp_pki_seal(const kp_pki_master_key_t *key, const void *plain, size_t len, const void *aad,
                size_t aadlen, kp_buf_t *out, char *err, size_t errlen);

/* Decrypts what kp_pki_seal made, with the same aad, into out (replacing its contents; its
 * storage never holds a partial plaintext after a failure — wipe it with kp_pki_buf_wipe
 * when done). -1 with err filled for an unknown version, a truncated value, the wrong key or
 * aad, or any modified byte. */
int kp_pki_open(const kp_pki_master_key_t *key, const void *sealed, size_t len, const void *aad,
                size_t aadlen, kp_buf_t *out, char *err, size_t errlen);

/* Overwrites a buffer's whole capacity and frees it (the buffer is then empty). */
void kp_pki_buf_wipe(kp_buf_t *b);

/* A random password of length characters from the URL-safe alphabet [A-Za-z0-9_-]
 * (6 bits each, from RAND_bytes). length in KP_PKI_PASSWORD_LEN_MIN..MAX. Returns a malloc'd
 * string (kp_pki_secret_free), or NULL when length is out of range or the RNG failed. */
char *kp_pki_random_password(size_t length);

/* A stored verifier for a random password (the registry's basic-auth credentials):
 * "sha256$<salt hex>$<digest hex>" with a 16-byte random salt. A salted SHA-256 suffices
 * because the passwords are machine-made with >= 96 bits; a slow KDF would only slow every
 * authenticated request. out must hold KP_PKI_PASSWORD_HASH_LEN bytes. 0 or -1. */
#define KP_PKI_PASSWORD_HASH_LEN 112
int kp_pki_password_hash(const char *password, char out[KP_PKI_PASSWORD_HASH_LEN]);
/* 1 when password matches the verifier (constant time in the digest), else 0. */
int kp_pki_password_verify(const char *password, const char *verifier);

#endif
