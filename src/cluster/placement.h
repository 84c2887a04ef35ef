/*
 * placement.h — the controller's decisions as pure functions: where replicas go, who leads
 * a partition, when the ISR shrinks or grows, what the high watermark is. No I/O, no
 * clock, no randomness of their own (the caller passes start indexes and times), so every
 * decision is unit-tested (tests/unit/test_placement.c) and the controller that applies
 * them through etcd stays thin.
 *
 * The algorithms are Kafka's, so a kpool pool places and elects as a Kafka cluster would:
 *   - replica assignment: AdminUtils.assignReplicasToBrokers (rack-unaware and rack-aware);
 *   - leader election: PartitionLeaderElectionAlgorithms (offline, controlled shutdown);
 *   - ISR: Partition.maybeShrinkIsr / maybeExpandIsr, HWM = min LEO over the ISR.
 */
#ifndef KP_PLACEMENT_H
#define KP_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

/* Replicas of one partition: more would be a typo in a replication factor. */
#define KP_REPLICAS_MAX 64
/* Brokers a placement considers. */
#define KP_PLACEMENT_BROKERS_MAX 4096

typedef struct kp_place_broker {
    int32_t id;
    const char *rack; /* NULL: no broker.rack */
} kp_place_broker_t;

/*
 * Assigns replicas for partitions [first_partition, first_partition + npartitions) with
 * replication factor rf over brokers (any order; sorted by id inside, as Kafka does).
 * start_index and replica_shift are Kafka's fixedStartIndex / nextReplicaShift seeds: pass
 * the same random value in [0, nbrokers) for both for a new topic (Kafka draws them at
 * random), or fixed ones for a reproducible layout. When every broker has a rack the layout
 * is rack-aware (each partition spread over as many racks as possible, leaders balanced
 * across racks); when none has, rack-unaware; a mix is refused unless ignore_racks is set
 * (then racks are ignored, as Kafka's --disable-rack-aware).
 *
 * out receives npartitions * rf broker ids, row per partition, preferred leader first.
 * 0, or -1 with err (rf < 1 or > brokers: Kafka's INVALID_REPLICATION_FACTOR; no brokers;
 * duplicate broker ids; mixed racks).
 */
int kp_placement_assign(const kp_place_broker_t *brokers, int nbrokers, int32_t npartitions, int rf,
                        int32_t first_partition, int start_index, int replica_shift,
                        int ignore_racks, int32_t *out, char *err, size_t errlen);

/* Kafka's rack-alternated broker order (racks sorted, ids sorted within a rack, one broker
 * from each rack in turn): out gets nbrokers ids. 0 or -1 (bad input). */
int kp_placement_rack_alternated(const kp_place_broker_t *brokers, int nbrokers, int32_t *out);

/* ---- leader election ---- */

/* A broker set given as a list of ids (small: membership tests are linear). */
typedef struct kp_id_set {
    const int32_t *ids;
    int n;
} kp_id_set_t;

int kp_id_set_has(kp_id_set_t s, int32_t id);

/*
 * Offline-partition election: the first replica, in assignment order, that is alive and in
 * the ISR. With none and unclean set, the first alive replica (it becomes the sole ISR
 * member: records only the old leader had are lost — why it is off by default). Returns
 * the leader, or -1 when nobody can lead (the partition stays offline). *unclean (may be
 * NULL) tells whether the unclean path was taken.
 */
int32_t kp_elect_leader(kp_id_set_t replicas, kp_id_set_t isr, kp_id_set_t live, int unclean,
                        int *was_unclean);
/* Controlled shutdown: the first replica alive, in the ISR and not shutting down; -1 if
 * none (the leader then stays where it is until it goes). */
int32_t kp_elect_leader_shutdown(kp_id_set_t replicas, kp_id_set_t isr, kp_id_set_t live,
                                 kp_id_set_t shutting_down);
/* Preferred-replica election: the first replica if it is alive and in the ISR, else -1. */
int32_t kp_elect_leader_preferred(kp_id_set_t replicas, kp_id_set_t isr, kp_id_set_t live);

/* ---- ISR and high watermark ---- */

/* What the leader knows of one replica (itself included). */
typedef struct kp_replica_state {
    int32_t id;
    int64_t leo;               /* log end offset (in durable mode: fsynced end offset) */
    int64_t last_caught_up_ms; /* last time it was caught up (kp_partition_replica_fetch) */
    /* its last fetch's offset under this leadership, -1 before its first: the lag figures of
     * /metrics only (leo is forgotten when it leaves the ISR; this is kept) */
    int64_t fetch_offset;
    /* the leader's end and the time at its previous fetch (0 before one): reaching that end
     * later means it was caught up as of then */
    int64_t prev_fetch_end, prev_fetch_ms;
} kp_replica_state_t;

/*
 * ISR shrink (Kafka's getOutOfSyncReplicas): every follower in isr that is not at the
 * leader's LEO and has not caught up for more than lag_max_ms (replica.lag.time.max.ms) is
 * dropped; the leader never is. A follower missing from replicas is out of sync: a new
 * leader seeds every replica with last_caught_up_ms = the time it took over, as Kafka. out (room
 * for isr.n) gets the new ISR in isr's order; returns its size. Equal to isr.n means no change.
 */
int kp_isr_shrink(kp_id_set_t isr, int32_t leader, const kp_replica_state_t *replicas, int n,
                  int64_t now_ms, int64_t lag_max_ms, int32_t *out);
/*
 * ISR expand (Kafka's isFollowerInSync): a replica of the assignment not in the ISR joins
 * once its LEO reached the high watermark and the start offset of the leader's current
 * epoch (so it has truncated any divergent tail). Returns the new ISR size in out (isr's
 * members first, joiners in assignment order).
 */
int kp_isr_expand(kp_id_set_t isr, kp_id_set_t assignment, const kp_replica_state_t *replicas,
                  int n, int64_t hwm, int64_t epoch_start_offset, int32_t *out);
/* The high watermark: the minimum LEO over the ISR (replicas unknown to the leader count as
 * offset 0, so an ISR member it has not heard from holds the HWM back). */
int64_t kp_isr_high_watermark(kp_id_set_t isr, const kp_replica_state_t *replicas, int n);

/* ---- partition state transitions ---- */

/* A partition's state as the controller keeps it in the metadata store. */
typedef struct kp_partition_state {
    int32_t leader;          /* -1: offline */
    int32_t leader_epoch;    /* bumped by every leader change */
    int32_t partition_epoch; /* bumped by every change of the state (Kafka's KIP-595 name) */
    int32_t isr[KP_REPLICAS_MAX];
    int nisr;
} kp_partition_state_t;

/* The state after electing leader with isr (leader -1: offline): leader epoch and
 * partition epoch both move on. An unclean election passes isr = {leader}. */
void kp_partition_state_elect(const kp_partition_state_t *cur, int32_t leader, const int32_t *isr,
                              int nisr, kp_partition_state_t *next);
/* The state after an ISR change by the same leader: only the partition epoch moves. */
void kp_partition_state_set_isr(const kp_partition_state_t *cur, const int32_t *isr, int nisr,
                                kp_partition_state_t *next);

#endif
