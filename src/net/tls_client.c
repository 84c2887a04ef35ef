/* tls_client.c — the server identity our TLS clients verify (see tls_client.h). */
#include "net/tls_client.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

int kp_tls_client_expect_host(SSL *ssl, const char *host)
{
    char bare[64]; /* the longest IPv6 literal is 45 characters */
    size_t len = host ? strlen(host) : 0;
    if (len == 0) return -1;
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(bare)) {
        snprintf(bare, sizeof(bare), "%.*s", (int)(len - 2), host + 1);
        host = bare;
    }
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    if (is_ip) return X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1 ? 0 : -1;
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1) return -1;
    SSL_set_tlsext_host_name(ssl, (char *)host); /* SNI: names only (RFC 6066) */
    return 0;
}
