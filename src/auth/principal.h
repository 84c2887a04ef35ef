/*
 * principal.h — who a connection is: Kafka's principal string ("User:CN=alice").
 *
 * TLS: the verified client certificate's subject as an RFC 2253 distinguished name (most
 * specific RDN first, as Java's X500Principal.getName() prints it), passed through
 * ssl.principal.mapping.rules with Kafka's syntax:
 *     RULE:<java regex>/<replacement with $1...>/[L|U], ..., DEFAULT
 * The first rule whose pattern matches the whole DN wins; DEFAULT keeps the DN; no match is
 * an authentication failure. Plaintext (or TLS without a client certificate) is
 * "User:ANONYMOUS".
 */
#ifndef KP_PRINCIPAL_H
#define KP_PRINCIPAL_H

#include <openssl/x509.h>
#include <stddef.h>

#define KP_PRINCIPAL_LEN_MAX   1024
#define KP_PRINCIPAL_ANONYMOUS "User:ANONYMOUS"

typedef struct kp_principal_rules kp_principal_rules_t;

/* NULL rules text means "DEFAULT". NULL with err filled on a syntax or regex error. */
kp_principal_rules_t *kp_principal_rules_parse(const char *text, char *err, size_t errlen);
void kp_principal_rules_free(kp_principal_rules_t *r);
/* Maps a DN to a user name; 0 on success, -1 when no rule matched. */
int kp_principal_rules_apply(const kp_principal_rules_t *r, const char *dn, char *out,
                             size_t outlen);
/* The subject of cert in RFC 2253 form. 0 or -1. */
int kp_cert_subject_rfc2253(X509 *cert, char *out, size_t outlen);

#endif
