/*
 * txn_record.h — the records of __transaction_state, in Kafka's formats so the internal topic
 * reads like Kafka's:
 *   key   TransactionLogKey v0:   int16 version (0) | string transactional id
 *   value TransactionLogValue v0: int16 version | int64 producer id | int16 producer epoch |
 *         int32 transaction timeout ms | int8 status | nullable [] { string topic |
 *         [] int32 partition } | int64 last update ms | int64 start ms
 *   v1 is the same fields in the flexible encoding (compact strings and arrays, tagged fields,
 *   all skipped); we write v0 and read both. A null value is a tombstone (an expired id).
 * Statuses: 0 Empty, 1 Ongoing, 2 PrepareCommit, 3 PrepareAbort, 4 CompleteCommit,
 * 5 CompleteAbort, 6 Dead, 7 PrepareEpochFence.
 */
#ifndef KP_TXN_RECORD_H
#define KP_TXN_RECORD_H

#include "core/arena.h"
#include "core/buf.h"
#include "protocol/wire.h"

#include <stdint.h>

enum {
    KP_TXN_EMPTY = 0,
    KP_TXN_ONGOING = 1,
    KP_TXN_PREPARE_COMMIT = 2,
    KP_TXN_PREPARE_ABORT = 3,
    KP_TXN_COMPLETE_COMMIT = 4,
    KP_TXN_COMPLETE_ABORT = 5,
    KP_TXN_DEAD = 6,
    KP_TXN_PREPARE_EPOCH_FENCE = 7,
};

/* Kafka's state names (DescribeTransactions, ListTransactions filters), or NULL. */
const char *kp_txn_status_name(int status);
int kp_txn_status_parse(kp_str_t name); /* -1 when unknown */

typedef struct kp_txn_record_topic {
    kp_str_t topic;
    int32_t *partitions;
    int32_t npartitions;
} kp_txn_record_topic_t;

typedef struct kp_txn_record {
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    int8_t status;
    kp_txn_record_topic_t *topics;
    int32_t ntopics;
    int64_t last_update_ms;
    int64_t start_ms;
} kp_txn_record_t;

void kp_txn_record_key_encode(kp_buf_t *b, kp_str_t transactional_id);
/* 0 with *id pointing into p, or -1 (not a TransactionLogKey v0). */
int kp_txn_record_key_decode(const uint8_t *p, size_t len, kp_str_t *id);
void kp_txn_record_encode(kp_buf_t *b, const kp_txn_record_t *r);
/* 0, or -1 on malformed input or an unknown version. Strings point into p; arrays come from
 * arena. */
int kp_txn_record_decode(const uint8_t *p, size_t len, kp_arena_t *arena, kp_txn_record_t *r);

#endif
