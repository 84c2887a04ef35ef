/*
 * tls_client.h — what our TLS clients check of the server they connect to (the pool's
 * brokers from the control plane, the CLI and a follower): besides the chain, that the
 * certificate names the address that was dialled, as librdkafka does by default
 * (ssl.endpoint.identification.algorithm=https) and Kafka's Java clients too.
 */
#ifndef KP_TLS_CLIENT_H
#define KP_TLS_CLIENT_H

#include <openssl/ssl.h>

/* Makes ssl's handshake (before SSL_connect) fail unless the server's certificate names
 * host: an iPAddress SAN equal to it when host is an IPv4 or IPv6 literal (brackets
 * allowed), else a dNSName SAN matching it (RFC 6125 wildcards), which is also sent as SNI.
 * The chain is verified only when the context has SSL_VERIFY_PEER. 0, or -1 when OpenSSL
 * refused host (an empty or over-long name). */
int kp_tls_client_expect_host(SSL *ssl, const char *host);

#endif
