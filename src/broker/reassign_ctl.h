/*
 * reassign_ctl.h — partition reassignment in a replicated pool (KIP-455) through the
 * metadata store: the admin side (AlterPartitionReassignments, ListPartitionReassignments,
 * decoded by handle_reassign.c) and the controller's side (completing moves whose target
 * replicas caught up). The decisions are cluster/reassign.h's; the state lives only in the
 * store (each topic record's `reassigning` list), so a move survives the restart of any
 * broker, the controller included: whoever is controller next picks it up.
 *
 * Every call blocks on the store (bounded by its timeout) and must not run on a network
 * loop thread that must stay responsive... except the admin handlers, which block as every
 * pool admin request does (docs/replication.md).
 */
#ifndef KP_REASSIGN_CTL_H
#define KP_REASSIGN_CTL_H

#include "cluster/meta_store.h"

#include <stdint.h>

/* Moves of one partition asked for by AlterPartitionReassignments. */
typedef struct kp_reassign_req {
    int32_t partition;
    const int32_t *target; /* NULL: cancel the move in progress */
    int ntarget;
    int16_t error; /* out: a Kafka error code */
    char msg[256]; /* out: with error */
} kp_reassign_req_t;

/* Starts, replaces or cancels moves of partitions of topic (one CAS on its record, retried
 * on conflict). live: the live brokers a target may name. Fills each req's error. */
void kp_reassign_alter(kp_meta_store_t *s, kp_id_set_t live, const char *topic,
                       kp_reassign_req_t *reqs, int n);

/* One move in progress, as ListPartitionReassignments reports it. */
typedef struct kp_reassign_entry {
    char *topic;
    int32_t partition;
    int32_t replicas[KP_REPLICAS_MAX], adding[KP_REPLICAS_MAX], removing[KP_REPLICAS_MAX];
    int nreplicas, nadding, nremoving;
} kp_reassign_entry_t;

/* Every move in progress, sorted by topic then partition. 0, or a KP_META_E* with err. */
int kp_reassign_list(kp_meta_store_t *s, kp_reassign_entry_t **out, int *n, char *err,
                     size_t errlen);
void kp_reassign_entries_free(kp_reassign_entry_t *e, int n);

/* ElectLeaders (preferred): partition p of t (a record just read) gets its preferred
 * replica (the first of its replicas, reassign.h's order) as leader when that one is live
 * and in the ISR (CAS on the state read, retried on conflict). Returns 0 (elected),
 * ELECTION_NOT_NEEDED (it leads already), PREFERRED_LEADER_NOT_AVAILABLE, or
 * REQUEST_TIMED_OUT (the store), with msg. */
int16_t kp_reassign_elect_preferred(kp_meta_store_t *s, kp_id_set_t live, const kp_meta_topic_t *t,
                                    int32_t p, char *msg, size_t msglen);

/* auto.leader.rebalance.enable (Kafka's checkAndTriggerAutoLeaderRebalance), on the
 * controller every leader.imbalance.check.interval.seconds: for each broker, the share of
 * the partitions it is the preferred replica of that another broker leads; above
 * imbalance_pct percent, those partitions get their preferred leader back (when it is live
 * and in the ISR). Partitions being moved are left alone. Returns how many leaders moved. */
int kp_reassign_leader_imbalance_pass(kp_meta_store_t *s, const kp_meta_topic_t *topics,
                                      int ntopics, kp_id_set_t live, int64_t imbalance_pct);

/* The controller's periodic step over the topics it last read: a move whose target is all
 * in the ISR completes (the topic record's CAS), then the partition's state conforms to the
 * new assignment (a fenced CAS: leader and ISR within the target). Anything that fails is
 * decided again on the next step. */
void kp_reassign_controller_pass(kp_meta_store_t *s, const kp_meta_topic_t *topics, int ntopics,
                                 kp_id_set_t live);

#endif
