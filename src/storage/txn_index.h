/*
 * txn_index.h — what storage knows about transactions: control records (the COMMIT/ABORT
 * markers a transaction coordinator writes into each partition) and the aborted-transaction
 * index, Kafka's `.txnindex` idea.
 *
 * Control batch (Kafka's format): attributes transactional|control, the producer id/epoch of
 * the transaction, base sequence -1, one record with
 *   key   int16 version (0) | int16 type (0 ABORT, 1 COMMIT)
 *   value int16 version (0) | int32 coordinator epoch
 *
 * Aborted-transaction entry (Kafka's AbortedTxn, 34 bytes, big-endian):
 *   int16 version (0) | int64 producer id | int64 first offset | int64 last offset (the ABORT
 *   marker) | int64 last stable offset (when the marker was written)
 * A `<base>.txnindex` file holds, in marker order, the entries whose marker lies in that
 * segment; it is written when the segment is sealed. The active segment's entries are rebuilt
 * on start by replaying its batch headers (and markers), like producer state.
 */
#ifndef KP_TXN_INDEX_H
#define KP_TXN_INDEX_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

#define KP_CONTROL_ABORT  0
#define KP_CONTROL_COMMIT 1

#define KP_TXNINDEX_ENTRY_BYTES 34

typedef struct kp_aborted_txn {
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset;
    int64_t last_stable_offset;
} kp_aborted_txn_t;

/* Parses the control record of a control batch (len bytes, header included): 0 with *type
 * and *coordinator_epoch set, -1 when the batch is not a well-formed control batch. Reads
 * only within len. */
int kp_control_batch_parse(const uint8_t *batch, size_t len, int16_t *type,
                           int32_t *coordinator_epoch);

/* Builds a control batch (base offset 0: the log assigns it) into out (appended). */
void kp_control_batch_build(kp_buf_t *out, int64_t producer_id, int16_t producer_epoch,
                            int16_t type, int32_t coordinator_epoch, int64_t timestamp_ms);

/* Writes into out (appended) the control batch of len bytes with Kafka 3's delete horizon
 * (KIP-534): baseTimestamp = horizon_ms and attribute KP_BATCH_ATTR_DELETE_HORIZON. The record
 * keeps its timestamp (its delta is taken from the horizon); offsets, producer fields and
 * maxTimestamp stay (time indexes and retention see the same batch). 0, or -1 when batch is
 * not a control batch of one plain record (out is left as it was). */
int kp_control_batch_set_delete_horizon(kp_buf_t *out, const uint8_t *batch, size_t len,
                                        int64_t horizon_ms);

/* Appends one encoded entry to out. */
void kp_txnindex_encode(kp_buf_t *out, const kp_aborted_txn_t *a);
/* Parses a .txnindex file's bytes into a malloc'd array (*out, *n; NULL/0 when empty).
 * 0, or -1 when the data is not a whole number of version-0 entries with sane offsets
 * (nothing is returned then). */
int kp_txnindex_parse(const uint8_t *data, size_t len, kp_aborted_txn_t **out, size_t *n);

/* A growable list of aborted transactions, ordered by last offset (marker order). */
typedef struct kp_aborted_list {
    kp_aborted_txn_t *items;
    size_t n, cap;
} kp_aborted_list_t;

void kp_aborted_list_free(kp_aborted_list_t *l);
/* Adds a (keeping the order; an entry with the same producer and last offset is kept once). */
void kp_aborted_list_add(kp_aborted_list_t *l, const kp_aborted_txn_t *a);
/* Drops entries whose marker is below offset (retention) or at/after end (truncation). */
void kp_aborted_list_trim(kp_aborted_list_t *l, int64_t below, int64_t end);

#endif
