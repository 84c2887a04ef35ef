/*
 * segment.h — one log segment: `<base>.log` (record batches as received, offsets patched),
 * `<base>.index` (sparse: relative offset → byte position, every index.interval.bytes) and
 * `<base>.timeindex` (max timestamp so far → relative offset), Kafka's file layout.
 *
 * The active segment keeps its indexes in memory only; they are written (and fsynced, after
 * the log itself) when the segment is sealed at roll. A sealed segment with valid index
 * files opens without a scan; the active segment is always scanned and CRC-validated on
 * start, which is what recovery of a torn tail relies on.
 *
 * Reference counted (kp_ref_t first): a Fetch response that splices a file region holds a
 * reference, so a segment deleted by retention stays readable until that response is sent.
 * @locks: mutation under the owning log's lock; fd, base_offset and sealed data are
 * immutable and may be read without it.
 */
#ifndef KP_SEGMENT_H
#define KP_SEGMENT_H

#include "protocol/wire.h"
#include "storage/batch.h"

#include <stdint.h>

typedef struct kp_index_entry {
    uint32_t rel_offset;
    uint32_t pos;
} kp_index_entry_t;

typedef struct kp_time_entry {
    int64_t timestamp;
    uint32_t rel_offset;
} kp_time_entry_t;

typedef struct kp_segment {
    kp_ref_t ref; /* first member: responses hold &seg->ref */
    int64_t base_offset;
    int64_t next_offset; /* one past the last offset of the last batch */
    int fd;
    int64_t size; /* bytes of complete batches */
    kp_index_entry_t *idx;
    uint32_t nidx, idx_cap;
    kp_time_entry_t *tidx;
    uint32_t ntidx, tidx_cap;
    int64_t bytes_since_index;
    int64_t max_timestamp;
    int64_t max_timestamp_offset;
    int64_t first_batch_timestamp; /* -1 when empty: segment.ms counts from here */
    int64_t created_ms;
    int sealed;
    int deleted; /* when the last reference goes, unlink the files */
    char *path;  /* directory + "/" + 20-digit base offset, no extension */
} kp_segment_t;

/* Result of scanning a segment's bytes. */
typedef struct kp_scan_result {
    int64_t valid_bytes; /* bytes of complete, valid batches from the start */
    int truncated;       /* bytes after valid_bytes were dropped */
    const char *why;     /* reason for truncation */
} kp_scan_result_t;

kp_segment_t *kp_segment_create(const char *dir, int64_t base_offset, int64_t now_ms);
/* Opens an existing segment. With `scan`, every batch is read and CRC-checked, the in-memory
 * indexes are rebuilt and a torn or corrupt tail is truncated (reported in *res). Without,
 * index files are loaded (a missing or invalid one falls back to a scan). NULL on I/O error. */
kp_segment_t *kp_segment_open(const char *dir, int64_t base_offset, int scan,
                              int32_t index_interval_bytes, int64_t now_ms, kp_scan_result_t *res);
/* As kp_segment_open, but a full scan also requires batches to be contiguous (each base
 * offset = the previous batch's end, the first = the segment's base) wherever the previous
 * end is >= contiguous_from. Below that offset compaction may have left gaps; above it a
 * gap can only be damage to the base offset, which the CRC does not cover. */
kp_segment_t *kp_segment_open_strict(const char *dir, int64_t base_offset, int scan,
                                     int32_t index_interval_bytes, int64_t now_ms,
                                     int64_t contiguous_from, kp_scan_result_t *res);
void kp_segment_put(kp_segment_t *seg);

/* Appends one batch (already validated, offsets assigned). 0 or -1 (errno); on -1 the file is
 * cut back to its previous size when possible (-2 if even that failed). */
int kp_segment_append(kp_segment_t *seg, const uint8_t *batch, size_t len,
                      const kp_batch_info_t *info, int32_t index_interval_bytes);
/* Largest indexed position whose offset is <= offset. @locks: log lock held. */
void kp_segment_index_floor(const kp_segment_t *seg, int64_t offset, int64_t *pos);
/* Position of the first batch whose last offset >= offset, scanning from `from` up to
 * `limit`. Returns 0 with *pos and *batch_len, 1 when no such batch before limit, -1 on I/O
 * error. Safe without the log lock (reads below limit are immutable). */
int kp_segment_find(const kp_segment_t *seg, int64_t offset, int64_t from, int64_t limit,
                    int64_t *pos, int64_t *batch_len, int64_t *batch_base);
/* Offset of the first batch with max timestamp >= ts (time index, then scan), with *ts_out
 * that batch's max timestamp; -1 if none. */
int64_t kp_segment_offset_for_time(const kp_segment_t *seg, int64_t ts, int64_t limit,
                                   int64_t *ts_out);
/* Writes index files and fsyncs log and indexes; the segment becomes read-only. */
int kp_segment_seal(kp_segment_t *seg);
int kp_segment_flush(kp_segment_t *seg);

#endif
