/*
 * batch.h — Kafka record batch v2 (magic 2): header layout, validation, in-place patching.
 *
 *   0 baseOffset int64 | 8 batchLength int32 | 12 partitionLeaderEpoch int32 | 16 magic int8
 *  17 crc uint32 (CRC-32C of bytes 21..end) | 21 attributes int16 | 23 lastOffsetDelta int32
 *  27 baseTimestamp int64 | 35 maxTimestamp int64 | 43 producerId int64 | 51 producerEpoch int16
 *  53 baseSequence int32 | 57 recordsCount int32 | 61 records...
 *
 * baseOffset and partitionLeaderEpoch sit before the CRC'd range, which is what lets the
 * broker assign offsets by patching 12 bytes in place without touching the checksum.
 */
#ifndef KP_BATCH_H
#define KP_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define KP_BATCH_HEADER_BYTES 61
#define KP_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */

#define KP_BATCH_ATTR_COMPRESSION_MASK 0x07
#define KP_BATCH_ATTR_LOG_APPEND_TIME  0x08
#define KP_BATCH_ATTR_TRANSACTIONAL    0x10
#define KP_BATCH_ATTR_CONTROL          0x20
/* Kafka 3 (KIP-534): baseTimestamp holds the delete horizon, set by the cleaner on a
 * transaction marker whose transaction has no data left (cleaner.c). */
#define KP_BATCH_ATTR_DELETE_HORIZON 0x40

typedef struct kp_batch_info {
    int64_t base_offset;
    int32_t batch_length; /* bytes after the batchLength field */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} kp_batch_info_t;

/* Outcome of validation; mapped to Kafka error codes by the broker. */
typedef enum {
    KP_BATCH_OK = 0,
    KP_BATCH_TRUNCATED,   /* fewer bytes than the header or batchLength says */
    KP_BATCH_BAD_MAGIC,   /* not magic 2 */
    KP_BATCH_BAD_CRC,     /* CRC-32C mismatch */
    KP_BATCH_BAD_LENGTH,  /* batchLength inconsistent with the bytes given */
    KP_BATCH_BAD_RECORDS, /* record framing, count or offset deltas inconsistent */
    KP_BATCH_BAD_CODEC,   /* compression codec 5..7 */
} kp_batch_status_t;

const char *kp_batch_status_str(kp_batch_status_t st);

/* Parses the fixed header (needs KP_BATCH_HEADER_BYTES); no validation. */
void kp_batch_parse_header(const uint8_t *p, kp_batch_info_t *out);

/* Validates one complete batch of exactly len bytes: length, magic, CRC, counts, and for
 * uncompressed batches the framing of every record. */
kp_batch_status_t kp_batch_validate(const uint8_t *p, size_t len, kp_batch_info_t *out);

/* Validates a batch as stored: length, magic and CRC only. Recovery uses this, because
 * compaction legitimately leaves batches with fewer records than their offset range. */
kp_batch_status_t kp_batch_validate_stored(const uint8_t *p, size_t len, kp_batch_info_t *out);

/* Size of the batch starting at p, from its length field, or -1 when fewer than 12 bytes. */
int64_t kp_batch_total_size(const uint8_t *p, size_t avail);

void kp_batch_set_base_offset(uint8_t *p, int64_t offset);
void kp_batch_set_leader_epoch(uint8_t *p, int32_t epoch);
/* Sets LogAppendTime: maxTimestamp = ts, attribute bit 3, and recomputes the CRC. */
void kp_batch_set_log_append_time(uint8_t *p, size_t len, int64_t ts);
/* Sets attributes and the producer fields, and recomputes the CRC (control batches). */
void kp_batch_set_producer(uint8_t *p, size_t len, int16_t attrs, int64_t producer_id,
                           int16_t epoch, int32_t base_sequence);

static inline int64_t kp_batch_last_offset(const kp_batch_info_t *b)
{
    return b->base_offset + b->last_offset_delta;
}

#endif
