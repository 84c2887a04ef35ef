/*
 * txn_coordinator.h — the transaction coordinator (SPEC 12): transactional ids, their
 * producer ids and epochs, the partitions of each open transaction, and the two-phase end
 * (prepare, markers into every partition, complete).
 *
 * One coordinator per broker, on its own thread and event loop, owns every transactional id;
 * nothing else touches them. A handler decodes and authorizes, fills a typed kp_txn_op_t and
 * submits it; the coordinator decides and calls op->done on its own thread (the handler then
 * posts the encoding of its response back to the request's loop). The coordinator never sees
 * a connection.
 *
 * State lives in the compacted internal topic __transaction_state (Kafka's record formats,
 * txn_record.h), partitioned like __consumer_offsets: a transactional id belongs to
 * partition abs(javaHashCode(id)) % transaction.state.log.num.partitions. Every transition
 * is written before it is acted on or answered:
 *   InitProducerId   Empty (epoch bumped; an Ongoing transaction is aborted first)
 *   AddPartitions    Ongoing with the partitions
 *   EndTxn           PrepareCommit|PrepareAbort → markers written and fsynced into every
 *                    partition (group offsets applied) → CompleteCommit|CompleteAbort
 *                    appended, then answered (not waiting for its fsync: a crash before it
 *                    leaves Prepare*, which the restart completes again, the same way).
 * A transaction Ongoing past its transaction.timeout.ms is aborted by the coordinator with the
 * epoch bumped, fencing its producer (PRODUCER_FENCED on its next request). On start the log
 * is replayed: a Prepare* transaction is completed (its markers written again), an Ongoing
 * one keeps its start time and is aborted at its timeout unless its producer ends it. An id
 * idle (Empty, Complete*) for transactional.id.expiration.ms is forgotten (a tombstone).
 */
#ifndef KP_TXN_COORDINATOR_H
#define KP_TXN_COORDINATOR_H

#include "core/props.h"
#include "replication/partition.h"
#include "txn/txn_record.h"

#include <stdint.h>

#define KP_TXN_STATE_TOPIC "__transaction_state"

typedef struct kp_txn_coord kp_txn_coord_t;

typedef struct kp_txn_config {
    int32_t partitions;        /* transaction.state.log.num.partitions [50] */
    int32_t max_timeout_ms;    /* transaction.max.timeout.ms [900000] */
    int64_t abort_interval_ms; /* transaction.abort.timed.out.transaction.cleanup.interval.ms */
    int64_t id_expiration_ms;  /* transactional.id.expiration.ms [604800000] */
} kp_txn_config_t;

int kp_txn_config_load(kp_txn_config_t *cfg, const kp_props_t *props, char *err, size_t errlen);

/* What the coordinator uses of the broker, handed over by whoever starts it (the broker's
 * server.c): no broker type is seen here. */
struct kp_coordinator;
typedef struct kp_txn_env {
    /* the topics: __transaction_state, the partitions markers go to, __consumer_offsets */
    kp_partition_dir_t dir;
    /* the next producer id (durable blocks; broker/producer_id.c): -1 on storage failure */
    int64_t (*next_producer_id)(void *arg);
    void *next_producer_id_arg;
    /* the group coordinator that applies a committed transaction's offsets */
    struct kp_coordinator *groups;
    int pool; /* a replicated pool member: ids served per led partition */
} kp_txn_env_t;

/* Replays __transaction_state when it exists (it is created by the first InitProducerId
 * with a transactional id, as Kafka creates it on first use), starts the thread; in-doubt
 * transactions are completed on the coordinator's loop right after. NULL + err. */
kp_txn_coord_t *kp_txn_coord_start(const kp_txn_env_t *env, const kp_txn_config_t *cfg, char *err,
                                   size_t errlen);
void kp_txn_coord_stop(kp_txn_coord_t *c);

typedef enum {
    KP_TXN_OP_INIT,           /* in: id, timeout_ms, producer_id and epoch (the producer's
                                 current ones, InitProducerId v3+; -1: none); out: record's
                                 producer_id, producer_epoch */
    KP_TXN_OP_ADD_PARTITIONS, /* in: id, producer_id, epoch, topics */
    KP_TXN_OP_VERIFY,         /* in: id, producer_id, epoch, topics; out: verified (one per
                                 partition, in order: 0 or INVALID_TXN_STATE) */
    KP_TXN_OP_ADD_OFFSETS,    /* in: id, producer_id, epoch, group_id */
    KP_TXN_OP_END,            /* in: id, producer_id, epoch, commit */
    KP_TXN_OP_DESCRIBE,       /* in: id; out: record (arena), status */
    KP_TXN_OP_LIST,           /* out: list (arena) */
} kp_txn_op_kind_t;

typedef struct kp_txn_listed {
    kp_str_t id;
    int64_t producer_id;
    int status;
    int64_t start_ms; /* of the open transaction; -1 if none */
} kp_txn_listed_t;

typedef struct kp_txn_op kp_txn_op_t;
struct kp_txn_op {
    kp_txn_op_kind_t kind;
    kp_str_t id;
    int64_t producer_id;
    int16_t epoch;
    int32_t timeout_ms;
    int commit;
    const kp_txn_record_topic_t *topics;
    int32_t ntopics;
    kp_str_t group_id;
    kp_arena_t *arena; /* where DESCRIBE/LIST results are allocated */
    /* results (error is a Kafka code; PRODUCER_FENCED is for the handler to map per version) */
    int16_t error;
    kp_txn_record_t record; /* DESCRIBE, and INIT's producer id/epoch */
    kp_txn_listed_t *listed;
    int32_t nlisted;
    int16_t *verified; /* VERIFY: the caller's array, one per partition of topics */
    /* called on the coordinator's thread once the op is decided */
    void (*done)(kp_txn_op_t *op);
    void *arg;
};

void kp_txn_submit(kp_txn_coord_t *c, kp_txn_op_t *op);

/* A replicated pool: how a marker reaches a partition another broker leads (the broker's
 * WriteTxnMarkers client, replicated_pool.h kp_rpool_write_marker). Blocking; called on a
 * thread of its own; the partition's Kafka error, or -1 when not delivered (retried). Set
 * before the broker serves; without it such markers fail and are retried. */
typedef int16_t (*kp_txn_marker_fn)(void *arg, int32_t leader, int64_t producer_id,
                                    int16_t producer_epoch, int commit, const char *topic,
                                    int32_t partition);
void kp_txn_coord_set_marker_sender(kp_txn_coord_t *c, kp_txn_marker_fn fn, void *arg);

/* Partition of __transaction_state for a transactional id (Java's String.hashCode). */
int32_t kp_txn_partition_for(kp_str_t id, int32_t partitions);

#endif
