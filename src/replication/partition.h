/*
 * partition.h — the partition layer between the request handlers and storage (issue 13
 * item 1; redpanda's partition_proxy): the handlers append, wait for a commit and read
 * through it, never through kp_log_* directly.
 *
 * Storage (storage/log.h) knows offsets and fsync: the log end offset and the flushed
 * offset. This layer decides what is *committed* — the high watermark a consumer may read
 * up to and an acks=all producer waits for — and how many replicas are in sync:
 *   - standalone (today's only mode): this broker is the only replica; HWM = the fsynced end
 *     in durable mode (log.flush.policy=durable), the log end in page-cache mode; the ISR is
 *     {this broker}, so acks=all with min.insync.replicas > 1 is NOT_ENOUGH_REPLICAS;
 *   - replicated (SPEC §11, docs/replication.md): HWM = min over the ISR — to come here,
 *     behind the same calls.
 *
 * Threading: as storage/log.h — any loop thread may call; waiters' done callbacks run on
 * the flusher thread or the calling thread and must post to their own loop.
 */
#ifndef KP_PARTITION_H
#define KP_PARTITION_H

#include "storage/log.h"

#include <stdint.h>

struct kp_topic;

typedef struct kp_partition {
    struct kp_topic *topic;
    int32_t index;
    kp_log_t *log;
} kp_partition_t;

/* What a produce with these acks may do here: 0, or the Kafka error to answer with
 * (NOT_ENOUGH_REPLICAS when acks=all and fewer than min_insync replicas are in sync). */
int16_t kp_partition_check_produce(kp_partition_t *p, int16_t acks, int min_insync);

/* The number of replicas in sync (standalone: 1). */
int kp_partition_isr_size(kp_partition_t *p);

/* Appends one validated batch as leader (offsets and leader epoch patched in place; the
 * idempotent-producer checks of storage/log.h apply). */
void kp_partition_append(kp_partition_t *p, uint8_t *batch, size_t len, kp_batch_info_t *info,
                         int64_t now_ms, kp_append_result_t *res);

/* acks=all: arms w to be called once every offset up to last_offset is committed (err 0)
 * or can no longer be (an errno). Returns 1 when w will be called, 0 when the offset is
 * committed as soon as appended (page-cache mode) and w is left alone. */
int kp_partition_wait_committed(kp_partition_t *p, int64_t last_offset, kp_flush_waiter_t *w);

/* A consumer's read: whole batches from the one holding offset, bounded by the high
 * watermark and max_bytes (the first batch whole with min_one, KIP-74). */
void kp_partition_read(kp_partition_t *p, int64_t offset, int64_t max_bytes, int min_one,
                       kp_log_read_t *out);

int64_t kp_partition_high_watermark(kp_partition_t *p);
void kp_partition_offsets(kp_partition_t *p, int64_t *log_start, int64_t *hwm, int64_t *leo);
/* ListOffsets: earliest (-2), latest (-1: the high watermark) or by timestamp. */
int64_t kp_partition_offset_for_time(kp_partition_t *p, int64_t ts, int64_t *ts_out);
/* The leader epoch clients see (ListOffsets, Metadata). */
int32_t kp_partition_leader_epoch(kp_partition_t *p);
/* DeleteRecords: 0, or KP_RETENTION_OUT_OF_RANGE / -1 (storage/retention.h). */
int kp_partition_delete_records(kp_partition_t *p, int64_t offset, int64_t *low_watermark);

/* Called after the high watermark advances (to wake long-polling fetches). */
void kp_partition_set_hwm_callback(kp_partition_t *p, kp_log_hwm_fn fn, void *arg);

#endif
