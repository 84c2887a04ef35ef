/*
 * pki_int.h — what the pki_*.c files share and nobody else needs: the CA structure, error
 * formatting that drains OpenSSL's error queue, and bounded PEM parsing.
 *
 * Parsing never prompts for a password (an encrypted key is an error) and never echoes its
 * input into an error message.
 */
#ifndef KP_PKI_INT_H
#define KP_PKI_INT_H

#include "pki/pki.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

struct kp_pki_ca {
    EVP_PKEY *key; /* owned */
    X509 *cert;    /* owned; self-signed, CA:TRUE, keyCertSign */
};

/* Writes the formatted message into err, followed by ": <reason>" of the most recent OpenSSL
 * error when there is one (a fixed string such as "bad decrypt": never data), then empties
 * the thread's error queue. Always returns -1. */
int kp_pki_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A list of certificates. A typedef because clang-format cannot tell that STACK_OF(X509) in
 * a parameter list is a type. */
typedef STACK_OF(X509) kp_pki_certs_t;

/* Every certificate in pem, in order (at least one), into *out (free with
 * sk_X509_pop_free(, X509_free)). `what` names the input in messages ("chain", "CA
 * certificate"). 0, or -1 with err filled and *out NULL. */
int kp_pki_certs_parse(const char *pem, const char *what, kp_pki_certs_t **out, char *err,
                       size_t errlen);

/* The first certificate in pem. NULL with err filled. */
X509 *kp_pki_cert_parse(const char *pem, const char *what, char *err, size_t errlen);

/* The first private key in pem (PKCS#8 or traditional, unencrypted). NULL with err filled. */
EVP_PKEY *kp_pki_key_parse(const char *pem, const char *what, char *err, size_t errlen);

/* x as PEM, malloc'd. NULL only when out of memory. */
char *kp_pki_cert_to_pem(X509 *x);

/* key as unencrypted PKCS#8 PEM, malloc'd (kp_pki_secret_free). The intermediate copy lives
 * in a secure-memory BIO, wiped when freed. NULL only when out of memory. */
char *kp_pki_key_to_pem(EVP_PKEY *key);

#endif
