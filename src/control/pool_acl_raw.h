/*
 * pool_acl_raw.h — requests sent without librdkafka, for what its admin API (2.0) lacks: ACLs
 * on TransactionalId resources (pool_client.c routes such ACLs here; the calls have
 * kp_pool_*_acls' contracts), and DescribeLogDirs (which directories a broker reports
 * failed, for the Pool status).
 */
#ifndef KP_POOL_ACL_RAW_H
#define KP_POOL_ACL_RAW_H

#include "control/pool_types.h"

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

/* The pool's controller and its brokers' racks, from one Metadata v1 for no topic (librdkafka
 * 2.0's metadata call gives neither): *controller (-1: none known), and per live broker its
 * id and rack (ids, racks: malloc'd, *n of them; racks[i] malloc'd, NULL without a rack).
 * 0, or -1 with err (nothing returned). Freed with kp_pool_raw_racks_free. */
int kp_pool_raw_controller_racks(kp_pool_raw_t *c, int32_t *controller, int32_t **ids,
                                 char ***racks, int *n, char *err, size_t errlen);
void kp_pool_raw_racks_free(int32_t *ids, char **racks, int n);
/* The parsing half: a Metadata v1 response body (after the correlation id). */
int kp_pool_raw_parse_controller_racks(const uint8_t *p, size_t len, int32_t *controller,
                                       int32_t **ids, char ***racks, int *n, char *err,
                                       size_t errlen);

/* One topic of a DescribeConfigs answer: its error (0, or a Kafka error code with message,
 * NULL when the pool gave none) or its overrides (entries whose source is
 * DYNAMIC_TOPIC_CONFIG; a NULL value as ""), keys and values NULL-terminated. */
typedef struct kp_pool_raw_topic_cfg {
    char *name;
    int16_t error;
    char *message;
    int nconfigs;
    char **keys, **values;
} kp_pool_raw_topic_cfg_t;

/* One DescribeConfigs v1 of n topics without synonyms (librdkafka's admin API always asks
 * for them; a drift check only needs each topic's overrides). 0 with *out (*nout topics, as
 * the pool answered them; free with kp_pool_raw_topic_cfgs_free), or -1 with err when the
 * pool gave no usable answer. */
int kp_pool_raw_describe_topic_configs(kp_pool_raw_t *c, const char *const *names, int n,
                                       kp_pool_raw_topic_cfg_t **out, int *nout, char *err,
                                       size_t errlen);
void kp_pool_raw_topic_cfgs_free(kp_pool_raw_topic_cfg_t *t, int n);
/* The parsing half: a DescribeConfigs v1 response body (after the correlation id). */
int kp_pool_raw_parse_topic_configs(const uint8_t *p, size_t len, kp_pool_raw_topic_cfg_t **out,
                                    int *nout, char *err, size_t errlen);

#endif
