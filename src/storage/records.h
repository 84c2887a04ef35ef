/*
 * records.h — building and walking the records inside a v2 record batch.
 *
 * The broker normally never looks inside batches (they are stored as produced). It does for
 * its own internal topics (committed offsets, later schemas and ACL changes), which it
 * writes uncompressed with kp_batch_builder and reads back with kp_records_next; for the
 * cleaner (kp_batch_filter); and on produce only when a topic config asks for it (a
 * compacted topic's key check, timestamp bounds, compression.type other than producer).
 */
#ifndef KP_RECORDS_H
#define KP_RECORDS_H

#include "core/buf.h"
#include "storage/batch.h"

#include <stdint.h>

typedef struct kp_batch_builder {
    kp_buf_t buf;
    int32_t count;
    int64_t base_timestamp;
    int64_t max_timestamp;
} kp_batch_builder_t;

/* A producer id/epoch/sequence of -1 makes a plain (non-idempotent) batch. */
void kp_batch_builder_init(kp_batch_builder_t *b, int64_t base_timestamp);
void kp_batch_builder_free(kp_batch_builder_t *b);
/* key/value with len -1 are null (a null value is a tombstone). */
void kp_batch_builder_add(kp_batch_builder_t *b, const void *key, int32_t keylen, const void *value,
                          int32_t valuelen, int64_t timestamp);
/* Writes the header and CRC; the batch is b->buf.data[0 .. b->buf.len). */
void kp_batch_builder_finish(kp_batch_builder_t *b);

typedef struct kp_record {
    const uint8_t *raw; /* the whole record, length prefix included */
    size_t rawlen;
    int64_t offset;
    int64_t timestamp;
    const uint8_t *key;
    int32_t keylen; /* -1: null */
    const uint8_t *value;
    int32_t valuelen; /* -1: null */
    int32_t nheaders;
} kp_record_t;

typedef struct kp_records_iter {
    kp_batch_info_t info;
    const uint8_t *p, *end;
    int32_t index;
    int err;
} kp_records_iter_t;

/* Starts walking an uncompressed batch of len bytes. -1 when compressed or malformed. */
int kp_records_begin(kp_records_iter_t *it, const uint8_t *batch, size_t len);
/* Walks records already decompressed (p..p+len) of the batch whose header is info. */
void kp_records_begin_raw(kp_records_iter_t *it, const kp_batch_info_t *info, const uint8_t *p,
                          size_t len);
/* 1 with *rec filled, 0 at the end, -1 on malformed data. */
int kp_records_next(kp_records_iter_t *it, kp_record_t *rec);

/* The first record of a stored batch (len bytes, header included) whose timestamp is at
 * least ts, decompressing if needed (at most max_bytes, into scratch): 1 with *offset and
 * *timestamp set, 0 when no record qualifies, -1 when the batch cannot be decoded. */
int kp_batch_first_at_or_after(const uint8_t *batch, size_t len, int64_t ts, int64_t *offset,
                               int64_t *timestamp, kp_buf_t *scratch, size_t max_bytes);

/* Keeps the records for which keep() returns nonzero, decompressing if needed (at most
 * max_bytes) and recompressing with the batch's codec. The result keeps the batch's base
 * offset, last offset delta, timestamps and producer fields, so no offset changes; only
 * recordsCount, length and CRC differ.
 * Returns KP_FILTER_ALL (nothing removed: reuse the batch as is), KP_FILTER_NONE (nothing
 * kept), KP_FILTER_SOME (the new batch is in out), or -1 (not decodable: keep as is). */
enum { KP_FILTER_ALL = 1, KP_FILTER_SOME = 2, KP_FILTER_NONE = 3 };
int kp_batch_filter(const uint8_t *batch, size_t len,
                    int (*keep)(const kp_record_t *rec, void *arg), void *arg, kp_buf_t *scratch,
                    kp_buf_t *out, size_t max_bytes);

/* Re-encodes a batch with `codec` (KP_CODEC_*), as a broker with compression.type set does:
 * decompresses (at most max_bytes, into scratch), checks that every record decodes, and
 * writes into out the same records compressed with codec. The header keeps base offset,
 * last offset delta, base and max timestamps, producer id/epoch/base sequence, records count
 * and the other attribute bits; only the codec bits, batchLength and CRC change, so the raw
 * record bytes (offset and timestamp deltas) stay valid.
 * Returns KP_RECOMPRESS_SAME (already in codec: store the batch as is), KP_RECOMPRESS_DONE
 * (the new batch is in out), or -1 (cannot be decoded: CORRUPT_MESSAGE). */
enum { KP_RECOMPRESS_SAME = 0, KP_RECOMPRESS_DONE = 1 };
int kp_batch_recompress(const uint8_t *batch, size_t len, int codec, kp_buf_t *scratch,
                        kp_buf_t *out, size_t max_bytes);

/* message.timestamp.before/after.max.ms: 0 when every record's timestamp (as the producer
 * set it; NO_TIMESTAMP (-1) skipped, as Kafka does) lies in [min_ts, max_ts], 1 when one
 * does not, -1 when the batch cannot be decoded. Compressed batches are decompressed (at
 * most max_bytes, into scratch). */
int kp_batch_timestamps_check(const uint8_t *batch, size_t len, int64_t min_ts, int64_t max_ts,
                              kp_buf_t *scratch, size_t max_bytes);

#endif
