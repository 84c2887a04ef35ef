/*
 * pool_types.h — what the pool client (pool_client.h) and the requests it sends without
 * librdkafka (pool_acl_raw.h) share: how to reach a pool and an ACL binding. Types only, so
 * that the raw requests do not depend on the client that uses them.
 */
#ifndef KP_POOL_TYPES_H
#define KP_POOL_TYPES_H

#include <stdint.h>

typedef struct kp_pool_conn {
    const char *bootstrap; /* host:port,... */
    const char *ca_path;   /* PEM; NULL with cert/key NULL means PLAINTEXT */
    const char *cert_path;
    const char *key_path;
    int timeout_ms;
} kp_pool_conn_t;

/* An ACL binding (Kafka's enums, see src/auth/acl.h). */
typedef struct kp_pool_acl {
    int8_t resource_type, pattern_type, operation, permission;
    char *resource_name, *principal, *host;
} kp_pool_acl_t;

#endif
