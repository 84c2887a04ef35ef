/*
 * producer_state.h — idempotent-producer state of one partition: for each producer id, its
 * epoch and the last KP_PRODUCER_BATCHES_MAX batches (sequence range and offsets).
 *
 * Semantics follow Kafka's broker: a retried batch identical in sequence range to one of the
 * last five is a duplicate and is answered with its original offset; a lower epoch is fenced
 * (INVALID_PRODUCER_EPOCH); a new epoch must start at sequence 0; otherwise the next batch
 * must continue the sequence exactly (OUT_OF_ORDER_SEQUENCE_NUMBER). An unknown producer is
 * accepted at any sequence (KIP-360: its state may have expired).
 *
 * Transactions: a transactional batch opens the producer's transaction in this partition
 * (txn_first_offset) unless one is open; a control batch (commit/abort marker) closes it. A
 * marker carries no sequence: only its epoch is checked (a lower one is fenced), and a higher
 * one (the coordinator bumped the epoch to abort) becomes the producer's epoch. A batch with
 * base sequence -1 (the group coordinator's transactional offsets) is checked the same way.
 *
 * Persistence: snapshots (written at segment roll) plus replay of the batch headers after the
 * snapshot rebuild the state on start. Not thread-safe: the owning log's lock covers it.
 */
#ifndef KP_PRODUCER_STATE_H
#define KP_PRODUCER_STATE_H

#include "core/limits.h"
#include "storage/batch.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kp_pstate_batch {
    int32_t first_seq, last_seq;
    int64_t first_offset, last_offset;
} kp_pstate_batch_t;

typedef struct kp_pstate_entry {
    int64_t producer_id; /* -1: empty slot */
    int16_t epoch;
    uint8_t count; /* batches remembered, newest last */
    kp_pstate_batch_t batches[KP_PRODUCER_BATCHES_MAX];
    int64_t last_timestamp_ms;
    int64_t txn_first_offset; /* first offset of its open transaction here, -1: none */
} kp_pstate_entry_t;

typedef struct kp_pstate {
    kp_pstate_entry_t *slots;
    size_t cap, count;
} kp_pstate_t;

typedef enum {
    KP_SEQ_OK = 0,
    KP_SEQ_DUPLICATE,
    KP_SEQ_OUT_OF_ORDER,
    KP_SEQ_INVALID_EPOCH,
} kp_seq_result_t;

void kp_pstate_init(kp_pstate_t *ps);
void kp_pstate_free(kp_pstate_t *ps);
void kp_pstate_clear(kp_pstate_t *ps);

/* Checks a batch of `b` (producer_id >= 0). On KP_SEQ_DUPLICATE, *dup_offset is the base
 * offset the original batch was given. */
kp_seq_result_t kp_pstate_check(const kp_pstate_t *ps, const kp_batch_info_t *b,
                                int64_t *dup_offset);
/* Records an appended batch (b->base_offset is the assigned offset). */
void kp_pstate_update(kp_pstate_t *ps, const kp_batch_info_t *b, int64_t now_ms);
/* The lowest first offset of an open transaction, INT64_MAX when none is open. */
int64_t kp_pstate_first_unstable(const kp_pstate_t *ps);
/* The entry of a producer id, or NULL. */
const kp_pstate_entry_t *kp_pstate_find(const kp_pstate_t *ps, int64_t producer_id);
/* Drops producers idle since before cutoff_ms (producer.id.expiration.ms), except those with
 * an open transaction (Kafka keeps them until the transaction ends). */
void kp_pstate_expire(kp_pstate_t *ps, int64_t cutoff_ms);

/* Snapshot: a checksummed binary file written atomically. */
int kp_pstate_write_snapshot(const kp_pstate_t *ps, const char *path);
/* 0 on success, -1 on a missing or corrupt file (ps left empty). */
int kp_pstate_read_snapshot(kp_pstate_t *ps, const char *path);

int32_t kp_seq_add(int32_t seq, int32_t delta);

#endif
