/*
 * pool_acl_raw.h — requests sent without librdkafka, for what its admin API (2.0) lacks: ACLs
 * on TransactionalId resources (pool_client.c routes such ACLs here; the calls have
 * kp_pool_*_acls' contracts), and DescribeLogDirs (which directories a broker reports
 * failed, for the Pool status).
 */
#ifndef KP_POOL_ACL_RAW_H
#define KP_POOL_ACL_RAW_H

#include "control/pool_client.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kp_pool_raw kp_pool_raw_t;

/* A handle keeping one connection to the pool (opened on first use). conf's strings must
 * outlive it. */
kp_pool_raw_t *kp_pool_raw_new(const kp_pool_conn_t *conf);
void kp_pool_raw_free(kp_pool_raw_t *r);

int kp_pool_raw_create_acls(kp_pool_raw_t *c, const kp_pool_acl_t *acls, int n, char *err,
                            size_t errlen);
int kp_pool_raw_describe_acls(kp_pool_raw_t *c, int8_t resource_type, const char *name,
                              int8_t pattern_type, kp_pool_acl_t **out, int *n, char *err,
                              size_t errlen);
int kp_pool_raw_delete_acls(kp_pool_raw_t *c, const kp_pool_acl_t *acls, int n, char *err,
                            size_t errlen);

/* The log directories broker `hostport` reports offline (DescribeLogDirs v1 sent to it alone,
 * over conf's TLS, at most 5 s): *dirs (malloc'd strings, *n of them; none when every
 * directory is fine). 0, or -1 with err when the broker did not answer. */
int kp_pool_raw_offline_log_dirs(const kp_pool_conn_t *conf, const char *hostport, char ***dirs,
                                 int *n, char *err, size_t errlen);

#endif
