/*
 * replica_fetcher.h — a follower's side of replication (SPEC §11): one thread per leader
 * broker fetches every partition this broker follows from that leader with Kafka's own
 * Fetch (replica id set), after truncating a divergent tail with OffsetsForLeaderEpoch the
 * first time it follows a leader epoch. Batches are appended with the leader's offsets and
 * epochs; in durable mode the next fetch (whose offset tells the leader how far this
 * replica is) waits until what was appended is fsynced, so the leader counts only fsynced
 * records toward the high watermark.
 *
 * The inter-broker listener is the first PLAINTEXT listener (by name, on both sides).
 */
#ifndef KP_REPLICA_FETCHER_H
#define KP_REPLICA_FETCHER_H

#include "broker/broker.h"

typedef struct kp_fetcher kp_fetcher_t;

kp_fetcher_t *kp_fetcher_new(kp_broker_t *b);
/* Makes sure a thread fetches from leader (idempotent). Any thread. */
void kp_fetcher_follow(kp_fetcher_t *f, int32_t leader);
/* Stops and joins every thread. */
void kp_fetcher_free(kp_fetcher_t *f);

#endif
