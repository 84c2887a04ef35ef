/*
 * cleaner.h — log compaction for topics with cleanup.policy=compact (cleaner.c).
 *
 * Keeps the latest record of every key, drops tombstones (null values) once they are older
 * than delete.retention.ms, never changes an offset, and leaves the active segment alone.
 * Memory is fixed: one offset map of log.cleaner.dedupe.buffer.size and a few batch-sized
 * buffers. I/O is throttled to log.cleaner.io.max.bytes.per.second.
 */
#ifndef KP_CLEANER_H
#define KP_CLEANER_H

#include "storage/log.h"

typedef struct kp_cleaner_config {
    size_t dedupe_buffer_bytes;  /* log.cleaner.dedupe.buffer.size */
    int64_t io_bytes_per_second; /* log.cleaner.io.max.bytes.per.second (<= 0: unlimited) */
    size_t max_batch_bytes;      /* decompressed size beyond which a batch is kept as is */
} kp_cleaner_config_t;

typedef struct kp_compaction {
    int64_t delete_retention_ms;   /* delete.retention.ms */
    int64_t min_compaction_lag_ms; /* min.compaction.lag.ms */
    int64_t max_compaction_lag_ms; /* max.compaction.lag.ms */
    double min_cleanable_ratio;    /* min.cleanable.dirty.ratio */
} kp_compaction_t;

typedef struct kp_clean_stats {
    int segments;
    int64_t bytes_read, bytes_written;
    int64_t records_removed;
    int64_t tombstones_removed;
    int64_t markers_removed; /* COMMIT/ABORT control batches past their delete horizon */
    int64_t first_dirty_before, first_dirty_after;
} kp_clean_stats_t;

typedef struct kp_cleaner kp_cleaner_t;

kp_cleaner_t *kp_cleaner_new(const kp_cleaner_config_t *cfg);
void kp_cleaner_free(kp_cleaner_t *c);
/* Cleans the log if it is due (dirty ratio or max lag). Returns 1 when it cleaned, 0 when
 * nothing was due, -1 on an I/O error (the log is left as it was). Call from one thread at
 * a time per log (the log manager). */
int kp_cleaner_clean(kp_cleaner_t *c, kp_log_t *log, const kp_compaction_t *p, int64_t now_ms,
                     kp_clean_stats_t *st);

#endif
