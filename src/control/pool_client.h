/*
 * pool_client.h — how the control plane talks to a pool: only the Kafka protocol, through
 * librdkafka's admin API, over TLS as a super user. Nothing here knows the pool is kpool,
 * so an Apache Kafka cluster works as a pool too.
 *
 * Every call blocks up to the client's timeout and returns 0, or -1 with a message a user
 * can act on in err ("pool dev unreachable at 127.0.0.1:9093: ..."). One client per pool,
 * used from the reconciler thread only.
 */
#ifndef KP_POOL_CLIENT_H
#define KP_POOL_CLIENT_H

#include "control/pool_types.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kp_pool_client kp_pool_client_t;

/* c: how to reach the pool (kp_pool_conn_t, pool_types.h). */
kp_pool_client_t *kp_pool_client_new(const kp_pool_conn_t *c, char *err, size_t errlen);
void kp_pool_client_free(kp_pool_client_t *pc);
/* While *flag is nonzero, calls stop waiting for the pool and fail ("stopping"). */
void kp_pool_client_set_cancel(kp_pool_client_t *pc, const int *flag);

/* A topic as the pool reports it. */
typedef struct kp_pool_topic {
    int exists;
    int32_t partitions;
    int16_t replication;
    char **config_keys; /* overrides only (source TOPIC_CONFIG) */
    char **config_values;
    int nconfigs;
} kp_pool_topic_t;

void kp_pool_topic_free(kp_pool_topic_t *t);
int kp_pool_describe_topic(kp_pool_client_t *pc, const char *name, kp_pool_topic_t *out, char *err,
                           size_t errlen);
/* A 64-bit fingerprint of what the pool holds for the topic: whether it exists, partitions,
 * replication, overrides and its literal ACL bindings, from the same cached answers as
 * kp_pool_describe_topic and kp_pool_describe_acls. Equal fingerprints: nothing a Topic
 * reconcile compares has moved (a drift check skips what did not change). 0 or -1. */
int kp_pool_topic_fingerprint(kp_pool_client_t *pc, const char *name, uint64_t *fp, char *err,
                              size_t errlen);
int kp_pool_create_topic(kp_pool_client_t *pc, const char *name, int32_t partitions,
                         int16_t replication, const char **keys, const char **values, int n,
                         char *err, size_t errlen);
/* Replaces the topic's overrides with exactly keys/values (AlterConfigs). */
int kp_pool_set_configs(kp_pool_client_t *pc, const char *name, const char **keys,
                        const char **values, int n, char *err, size_t errlen);
int kp_pool_add_partitions(kp_pool_client_t *pc, const char *name, int32_t total, char *err,
                           size_t errlen);
int kp_pool_delete_topic(kp_pool_client_t *pc, const char *name, char *err, size_t errlen);
/* Topic names of the pool (internal ones excluded). */
int kp_pool_list_topics(kp_pool_client_t *pc, char ***names, int *n, char *err, size_t errlen);

/* The pool's brokers as its Metadata shows them: the live ones, and the ones that
 * partitions name as replicas but Metadata does not list (down). Per broker: partitions it
 * leads, replicas it holds, and of those how many are out of the ISR (catching up); and the
 * log directories a live broker reports offline (DescribeLogDirs, asked of each live broker:
 * a broker whose disk failed keeps running and says which directory); the controller and
 * the brokers' racks (a Metadata v1 of its own: librdkafka 2.0 hides both; unknown when that
 * call fails, the rest still answered). */
typedef struct kp_pool_broker {
    int32_t id;
    char *host; /* NULL for a broker that is down */
    int port;
    int leaders, replicas, out_of_sync;
    char **offline_dirs; /* log directories it reports offline (DescribeLogDirs) */
    int noffline_dirs;
    char *rack; /* broker.rack, NULL when it has none or is down */
} kp_pool_broker_t;

typedef struct kp_pool_cluster {
    kp_pool_broker_t *brokers; /* live ones first, each group by id */
    int nbrokers, nlive;
    int partitions, under_replicated, offline;
    int32_t controller; /* the controller's broker id, -1 when none is known */
} kp_pool_cluster_t;

int kp_pool_describe_cluster(kp_pool_client_t *pc, kp_pool_cluster_t *out, char *err,
                             size_t errlen);
void kp_pool_cluster_free(kp_pool_cluster_t *c);

/* ACLs (kp_pool_acl_t, pool_types.h) matching (resource_type, name, pattern) — name NULL:
 * every name. */
int kp_pool_describe_acls(kp_pool_client_t *pc, int8_t resource_type, const char *name,
                          int8_t pattern_type, kp_pool_acl_t **out, int *n, char *err,
                          size_t errlen);
int kp_pool_create_acls(kp_pool_client_t *pc, const kp_pool_acl_t *acls, int n, char *err,
                        size_t errlen);
/* Deletes exactly these bindings. */
int kp_pool_delete_acls(kp_pool_client_t *pc, const kp_pool_acl_t *acls, int n, char *err,
                        size_t errlen);
void kp_pool_acls_free(kp_pool_acl_t *a, int n);

#endif
