/*
 * tls.h — TLS listeners: the server context (certificate, key, client CA, client auth mode)
 * and the TLS transport for kp_conn_t (see conn_tls.c).
 *
 * Key material is read from the PEM files once, at start, and never logged; errors name the
 * file and what failed, not its content.
 */
#ifndef KP_TLS_H
#define KP_TLS_H

#include "net/conn.h"

#include <openssl/x509.h>

typedef enum {
    KP_TLS_CLIENT_AUTH_NONE = 0,
    KP_TLS_CLIENT_AUTH_REQUESTED,
    KP_TLS_CLIENT_AUTH_REQUIRED,
} kp_tls_client_auth_t;

typedef struct kp_tls_config {
    const char *ca_path;      /* ssl.ca.location: CA bundle that signs client certificates */
    const char *cert_path;    /* ssl.certificate.location: server chain, PEM */
    const char *key_path;     /* ssl.key.location: server key, PEM (PKCS#8 or traditional) */
    const char *key_password; /* ssl.key.password, for an encrypted key (optional) */
    kp_tls_client_auth_t client_auth;
} kp_tls_config_t;

typedef struct kp_tls_ctx kp_tls_ctx_t;

/* TLS 1.2 and 1.3, AES-128-GCM first, session tickets (see conn_tls.c), kernel TLS probed and
 * logged. NULL with err filled. */
kp_tls_ctx_t *kp_tls_server_ctx_new(const kp_tls_config_t *cfg, char *err, size_t errlen);
void kp_tls_ctx_free(kp_tls_ctx_t *t);
/* Transport state for an accepted socket (pass as tp_state with kp_transport_tls). */
void *kp_tls_conn_new(kp_tls_ctx_t *t, int fd);
/* The verified client certificate after the handshake, or NULL (borrowed). */
X509 *kp_tls_peer_cert(kp_conn_t *c);
/* "none" | "requested" | "required" (Kafka's ssl.client.auth). */
int kp_tls_client_auth_parse(const char *s, kp_tls_client_auth_t *out);

extern const kp_transport_t kp_transport_tls;

#endif
