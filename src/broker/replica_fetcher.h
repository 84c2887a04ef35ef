/*
 * replica_fetcher.h — a follower's side of replication (SPEC §11): one thread per leader
 * broker fetches every partition this broker follows from that leader with Kafka's own
 * Fetch (replica id set), after truncating a divergent tail with OffsetsForLeaderEpoch the
 * first time it follows a leader epoch. Batches are appended with the leader's offsets and
 * epochs; in durable mode the next fetch (whose offset tells the leader how far this
 * replica is) waits until what was appended is fsynced, so the leader counts only fsynced
 * records toward the high watermark.
 *
 * The inter-broker listener is inter.broker.listener.name (default: the first listener),
 * found by name on the leader; over SSL the follower presents
 * replica.ssl.certificate.location (default: its ssl.certificate.location), which needs
 * ClusterAction when the authorizer is on (kpool up: a super user).
 */
#ifndef KP_REPLICA_FETCHER_H
#define KP_REPLICA_FETCHER_H

#include "broker/broker.h"

typedef struct kp_fetcher kp_fetcher_t;

/* NULL with err: the inter-broker listener is unknown, or its TLS client cannot be set up. */
kp_fetcher_t *kp_fetcher_new(kp_broker_t *b, char *err, size_t errlen);
/* Makes sure a thread fetches from leader (idempotent). Any thread. */
void kp_fetcher_follow(kp_fetcher_t *f, int32_t leader);
/* The transaction coordinator's marker for a partition another broker leads: WriteTxnMarkers
 * v0 (one marker, one partition) sent to `leader` over the inter-broker listener, blocking
 * (bounded by the connection's timeouts, about 5 s). The partition's error code (0: the
 * marker is in every in-sync replica of it), or -1 when the leader could not be reached or
 * answered nothing usable. Any thread but a loop's; not after kp_fetcher_free. */
int16_t kp_fetcher_write_marker(kp_fetcher_t *f, int32_t leader, int64_t producer_id,
                                int16_t producer_epoch, int commit, const char *topic,
                                int32_t partition);
/* Stops and joins every thread. */
void kp_fetcher_free(kp_fetcher_t *f);

#endif
