/*
 * replicated_pool.h — a broker's part in a replicated pool's data (SPEC §11, docs/replication.md):
 * it applies the metadata store's topics and partition states to the local topics (creating and
 * deleting them, making partitions leaders or followers), runs the follower fetchers, proposes ISR
 * changes for the partitions it leads, and, while its broker is the controller, elects leaders for
 * partitions whose leader is gone and takes dead brokers out of ISRs. Admin requests that change
 * topics go through the store.
 *
 * One thread of its own applies changes (fed by the member's watch) and runs the periodic
 * work; no lock of it is held while talking to the store.
 */
#ifndef KP_REPLICATED_POOL_H
#define KP_REPLICATED_POOL_H

#include "auth/acl.h"
#include "broker/broker.h"

typedef struct kp_rpool kp_rpool_t;

/* After the member is open and the topics are loaded; starts nothing yet. */
kp_rpool_t *kp_rpool_new(kp_broker_t *b, char *err, size_t errlen);
/* After the broker registered: reads everything and starts the thread. */
int kp_rpool_start(kp_rpool_t *p, char *err, size_t errlen);
/* Waits until the pool thread applied its first full read of the store (every topic of the
 * pool known here), up to timeout_ms. 0, or -1 when it did not in time. */
int kp_rpool_wait_synced(kp_rpool_t *p, int64_t timeout_ms);
/* The broker serves: from now on /readyz is true only while no partition it follows lists
 * it outside the ISR (it is catching up). */
void kp_rpool_serving(kp_rpool_t *p);
/* Controlled shutdown: hands the leadership of every partition this broker leads to another
 * in-sync replica, then stops the thread and the fetchers. Idempotent. */
void kp_rpool_shutdown(kp_rpool_t *p);
void kp_rpool_free(kp_rpool_t *p);
/* The broker's log directory failed: the thread acts on it at once (any thread, also with a
 * log's lock held). */
void kp_rpool_wake(kp_rpool_t *p);

/* The partition hook of a pool broker: every partition gets replication state. */
void kp_rpool_partition_hook(kp_partition_t *part, void *broker);

/* CreateTopics in a pool: validated, placed over the live brokers (rack-aware when every
 * broker has broker.rack), written to the store, and answered once this broker has applied
 * it (or after 5 s). Returns a Kafka error code with msg. Blocks on the store. */
int16_t kp_rpool_create_topic(kp_rpool_t *p, const kp_topic_spec_t *spec, int rf, int validate_only,
                              char *msg, size_t msglen);
/* DeleteTopics in a pool: removed from the store (every broker then deletes its copy). */
int16_t kp_rpool_delete_topic(kp_rpool_t *p, kp_str_t name, char *msg, size_t msglen);
/* FindCoordinator in a pool: the leader of partition abs(hashCode(key)) % partitions of
 * the internal topic (__consumer_offsets for groups, __transaction_state for transactional
 * ids), at its endpoint on this listener, so coordination follows that partition's
 * leadership (SPEC §11). The topic is created through the store on first use (`partitions`
 * partitions, replication factor rf — refused while fewer brokers live, as Kafka — or
 * min(3, live brokers) when rf is 0), blocking on the store. 0 with id/host/port, or
 * COORDINATOR_NOT_AVAILABLE (no leader yet: the client asks again). */
int16_t kp_rpool_find_coordinator(kp_rpool_t *p, const char *topic, int32_t partitions, int rf,
                                  kp_str_t key, const char *listener, int32_t *id, char *host,
                                  size_t hostlen, int *port);
/* Whether a topic is one of the pool's (in its metadata store): local-only topics (a data
 * directory's topics from before it joined the pool) are not shown to clients. */
int kp_rpool_topic_known(kp_topic_t *t);
/* Whether this broker has applied the store's topics once since it started (until then a
 * topic it does not know may well exist in the pool). */
int kp_rpool_synced(kp_rpool_t *p);
/* Prometheus lines for /metrics: partitions this broker leads that are under-replicated or
 * under min.insync.replicas, partitions it holds without a leader, ISR shrinks/expands it
 * made, whether it is the controller, the controller's id. */
void kp_rpool_metrics(kp_rpool_t *p, struct kp_buf *out);
/* AlterConfigs / IncrementalAlterConfigs in a pool, after they were applied here: the
 * topic's resulting overrides are written to its record in the store (CAS), from where
 * every other broker applies them. A Kafka error with msg. Blocks on the store. */
int16_t kp_rpool_publish_configs(kp_rpool_t *p, kp_str_t name, char *msg, size_t msglen);
/* CreatePartitions in a pool: new partitions placed over the live brokers with the topic's
 * replication factor, written to the store, answered once they are served here. */
int16_t kp_rpool_add_partitions(kp_rpool_t *p, kp_str_t name, int32_t count, int validate_only,
                                char *msg, size_t msglen);
/* CreateAcls / DeleteAcls in a pool, after they were applied here: the bindings are added
 * to (removed from) the store, from where every other broker applies them. 0 or -1 with
 * msg. Blocks on the store. */
int kp_rpool_acls_added(kp_rpool_t *p, const kp_acl_t *acls, int n, char *msg, size_t msglen);
int kp_rpool_acl_removed(kp_rpool_t *p, const kp_acl_t *acl, char *msg, size_t msglen);
/* The transaction coordinator's marker for a partition led by broker `leader` (not this
 * one): WriteTxnMarkers sent there (replica_fetcher.h kp_fetcher_write_marker). Blocks for
 * up to about 5 s: call it from a thread of its own. The partition's error, or -1 (not
 * reachable, or this broker is shutting down). */
int16_t kp_rpool_write_marker(kp_rpool_t *p, int32_t leader, int64_t producer_id,
                              int16_t producer_epoch, int commit, const char *topic,
                              int32_t partition);
/* The number of live brokers (for default replication factors). */
int kp_rpool_live_brokers(kp_rpool_t *p);

#endif
