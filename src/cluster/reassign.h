/*
 * reassign.h — partition reassignment (KIP-455) as pure functions over a topic record and a
 * partition state: what a moving partition's replicas are, which are being added and
 * removed, when the move is complete, and how a partition state is made to conform to its
 * assignment after a move completes or is cancelled. No I/O: the controller
 * (broker/reassign.c) reads, decides with these, and writes through the metadata store.
 *
 * A move of partition p from its original replicas R (the topic's replicas row) to a target
 * T is stored in the topic record (kp_meta_topic_t.reassigning) until it completes; the
 * partition is meanwhile replicated on T ++ (R \ T), Kafka's order, so the replicas being
 * added fetch from the leader and join the ISR as any follower does. The move completes
 * once every replica of T is in the ISR: the row becomes T, the entry goes, and the state
 * conforms (ISR ∩ T, a leader elected from T when the old one is not in it). Cancelling
 * drops the entry: the row is still R, and the state conforms to R the same way.
 *
 * Moves keep the topic's replication factor (a row is replication_factor wide).
 */
#ifndef KP_REASSIGN_H
#define KP_REASSIGN_H

#include "cluster/meta_store.h"
#include "cluster/placement.h"

/* The move of partition p in progress, or NULL. */
const kp_meta_reassign_t *kp_reassign_find(const kp_meta_topic_t *t, int32_t p);

/* The replicas of partition p: T ++ (R \ T) while it moves, else its row. out has room for
 * KP_REPLICAS_MAX; returns the count. */
int kp_reassign_replicas(const kp_meta_topic_t *t, int32_t p, int32_t *out);
/* Replicas being added (T \ R) and removed (R \ T) by the move of p (0 when none). */
int kp_reassign_adding(const kp_meta_topic_t *t, int32_t p, int32_t *out);
int kp_reassign_removing(const kp_meta_topic_t *t, int32_t p, int32_t *out);

/* Starts (or replaces) the move of p to target (replication_factor ids). A target equal to
 * the row clears any move instead (moving back where it is). */
void kp_reassign_set(kp_meta_topic_t *t, int32_t p, const int32_t *target);
/* Drops the move of p (cancel): 1 if there was one. */
int kp_reassign_clear(kp_meta_topic_t *t, int32_t p);
/* Completes the move of p: the row becomes its target. 1 if there was one. */
int kp_reassign_complete(kp_meta_topic_t *t, int32_t p);

/* Whether every target replica is in the ISR (the move may complete). */
int kp_reassign_caught_up(const kp_meta_reassign_t *r, int rf, const kp_partition_state_t *st);

/* Checks a requested target: rf distinct ids, each a live broker. 0, or -1 with msg. */
int kp_reassign_validate(const int32_t *target, int n, int rf, kp_id_set_t live, char *msg,
                         size_t msglen);

/*
 * Makes a state conform to the assignment replicas (after a move completed or was
 * cancelled): ISR members outside it leave; a leader outside it is replaced by the first
 * replica that is live and in the remaining ISR (a new leader epoch). Returns 1 with next
 * when something changes, 0 when the state already conforms or no eligible leader exists
 * yet (decided again later).
 */
int kp_reassign_conform(kp_id_set_t replicas, const kp_partition_state_t *cur, kp_id_set_t live,
                        kp_partition_state_t *next);

#endif
