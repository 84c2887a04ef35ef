/*
 * log.h — the log of one partition: ordered segments, offsets, idempotent-producer state,
 * durability (flush waiters) and reads for Fetch.
 *
 * Offsets (all exclusive ends):
 *   log_start_offset <= high_watermark <= log_end_offset
 * log_end_offset (LEO) is the next offset to assign. In durable mode (log.flush.policy =
 * durable, the default) the high watermark is the fsynced end: a consumer never sees a record
 * that a power loss could take back, and acks=1 and acks=all are answered once the HWM covers
 * the batch (read-your-writes).
 * In page-cache mode HWM = LEO at append and acks=all is answered at once.
 *
 * Threading: any loop thread may append or read; one mutex per log serializes mutation and is
 * held only for in-memory work and the page-cache write of an append (no fsync under it).
 * The flusher thread fsyncs outside the lock. Callbacks (flush waiters, on_hwm) run on the
 * flusher thread or the appending thread, without the lock held; they must hand work to
 * their own loop (kp_loop_post) rather than touch loop-owned state.
 */
#ifndef KP_LOG_H
#define KP_LOG_H

#include "storage/producer_state.h"
#include "storage/segment.h"
#include "storage/txn_index.h"

#include <pthread.h>
#include <stdint.h>

typedef struct kp_log_config {
    int64_t segment_bytes;        /* segment.bytes */
    int64_t segment_ms;           /* segment.ms */
    int64_t segment_jitter_ms;    /* segment.jitter.ms: each segment rolls up to this early */
    int64_t segment_index_bytes;  /* segment.index.bytes: roll when an index would pass it */
    int32_t index_interval_bytes; /* index.interval.bytes */
    int durable;                  /* flush.policy: 1 durable, 0 page cache */
    /* Page-cache mode only (durable mode fsyncs before every ack anyway): queue an fsync
     * once this many messages are unflushed / this long after the last flush. INT64_MAX:
     * never (the defaults). */
    int64_t flush_messages; /* flush.messages */
    int64_t flush_ms;       /* flush.ms */
    int64_t producer_expiration_ms;
} kp_log_config_t;

void kp_log_config_defaults(kp_log_config_t *cfg);

typedef struct kp_flush_waiter kp_flush_waiter_t;
struct kp_flush_waiter {
    int64_t offset; /* satisfied when the flushed end > offset */
    /* err 0 or an errno; called without the log lock, possibly on the flusher thread */
    void (*done)(kp_flush_waiter_t *w, int err);
    kp_flush_waiter_t *next;
};

typedef struct kp_log kp_log_t;
typedef void (*kp_log_hwm_fn)(kp_log_t *log, void *arg);

struct kp_log {
    pthread_mutex_t lock;
    char *dir;
    kp_log_config_t cfg;
    kp_segment_t **segs;
    int nsegs, segs_cap;
    int64_t log_start_offset;
    int64_t log_end_offset;
    int64_t high_watermark;
    int64_t flushed_offset;
    int64_t last_flush_mono_ms; /* when flushed_offset last advanced (flush.ms) */
    int64_t roll_jitter_ms;     /* segment.jitter.ms drawn for the active segment */
    int32_t leader_epoch;
    kp_segment_t *hwm_seg; /* segment holding the HWM position (referenced) */
    int64_t hwm_pos;
    kp_pstate_t pstate;
    /* transactions: the lowest first offset of an open one (INT64_MAX: none), so the last
     * stable offset is min(first_unstable, HWM); and the aborted ones, in marker order */
    int64_t first_unstable;
    kp_aborted_list_t aborted;
    int offline;      /* a write or fsync failed: the partition refuses I/O */
    int flush_queued; /* on the flusher's queue */
    kp_log_t *flush_next;
    kp_flush_waiter_t *waiters;
    kp_log_hwm_fn on_hwm;
    void *on_hwm_arg;
    /* leader-epoch cache (Kafka's leader-epoch-checkpoint, kept in memory and rebuilt from
     * the batch headers on open): epoch_starts[i] is the first offset of epochs[i] */
    int32_t *epochs;
    int64_t *epoch_starts;
    int nepochs, epochs_cap;
};

/* Called when an I/O operation of a log fails because the device or file system did (EIO,
 * EROFS, ENODEV, ENXIO, ESTALE, EUCLEAN; not a full disk): dir is the log's directory, err
 * the errno. One process-wide hook
 * (the broker's: its log directory failed, docs/replication.md); it runs on the thread that
 * saw the failure with that log's lock held, so it must only note the failure. */
typedef void (*kp_log_failure_fn)(const char *dir, int err, void *arg);
void kp_log_set_failure_hook(kp_log_failure_fn fn, void *arg);
/* Takes the log offline (its directory failed): appends, reads and fsyncs are refused,
 * waiting flushes fail with EIO. */
void kp_log_set_offline(kp_log_t *log);
/* Takes every log of the process offline at once (the broker's one log directory failed);
 * there is no way back but a restart. Any thread. */
void kp_log_fail_all(void);
/* Whether log refuses I/O (its own failure or kp_log_fail_all). */
int kp_log_is_offline(const kp_log_t *log);

/* Opens (creating if needed) the log in dir, recovering as described in log.c. */
kp_log_t *kp_log_open(const char *dir, const kp_log_config_t *cfg, int64_t now_ms);
/* Seals nothing, fsyncs the active segment, frees. Waiters still queued get ESHUTDOWN. */
void kp_log_close(kp_log_t *log);
/* Marks every segment for deletion and frees the log (topic deletion). */
void kp_log_destroy(kp_log_t *log);
void kp_log_set_config(kp_log_t *log, const kp_log_config_t *cfg);
/* Renames the log's directory (topic deletion moves it aside). 0 or -1 (errno). */
int kp_log_rename_dir(kp_log_t *log, const char *new_dir);

typedef enum {
    KP_APPEND_OK = 0,
    KP_APPEND_DUPLICATE,      /* answered with the original offset */
    KP_APPEND_OUT_OF_ORDER,   /* OUT_OF_ORDER_SEQUENCE_NUMBER */
    KP_APPEND_INVALID_EPOCH,  /* INVALID_PRODUCER_EPOCH */
    KP_APPEND_STORAGE_ERROR,  /* KAFKA_STORAGE_ERROR: the log went offline */
    KP_APPEND_INVALID_RECORD, /* a control batch without a readable marker */
} kp_append_status_t;

typedef struct kp_append_result {
    kp_append_status_t status;
    int64_t base_offset;
    int64_t last_offset;
    int64_t log_start_offset;
} kp_append_result_t;

/* Appends one validated batch (info from kp_batch_validate), patching its base offset and
 * leader epoch in place. Thread-safe. */
void kp_log_append(kp_log_t *log, uint8_t *batch, size_t len, kp_batch_info_t *info, int64_t now_ms,
                   kp_append_result_t *res);

/* Calls w->done once the flushed end passes w->offset (at once, on this thread, when it
 * already has or the log is in page-cache mode). */
void kp_log_wait_flush(kp_log_t *log, kp_flush_waiter_t *w);

/* The flusher: fsyncs the active segment up to the current LEO, advances the flushed end
 * (and the HWM in durable mode), completes waiters. Called by the flusher threads. */
void kp_log_flush(kp_log_t *log);

typedef struct kp_log_read {
    int error;         /* 0, or KP_READ_OUT_OF_RANGE / KP_READ_STORAGE */
    kp_segment_t *seg; /* referenced when len > 0: release with kp_segment_put */
    int64_t pos, len;
    int64_t high_watermark, log_start_offset, log_end_offset;
    int64_t last_stable_offset;
} kp_log_read_t;

#define KP_READ_OUT_OF_RANGE 1
#define KP_READ_STORAGE      2

/* Reads up to max_bytes of whole or partial batches starting at the batch holding offset,
 * bounded by the HWM. With min_one, at least the first batch is returned whole even if larger
 * than max_bytes (KIP-74). */
void kp_log_read(kp_log_t *log, int64_t offset, int64_t max_bytes, int min_one, kp_log_read_t *out);
/* The same, bounded by the last stable offset when committed (isolation_level=1:
 * read_committed); out->last_stable_offset is set either way. */
void kp_log_read_isolated(kp_log_t *log, int64_t offset, int64_t max_bytes, int min_one,
                          int committed, kp_log_read_t *out);
/* Aborted transactions overlapping [from, upto): their marker at or after from and their
 * first offset below upto (what a read_committed Fetch returns with its data). A malloc'd
 * array in *out (NULL when none); returns the count. */
size_t kp_log_aborted_txns(kp_log_t *log, int64_t from, int64_t upto, kp_aborted_txn_t **out);
/* The cleaner removed every record of these aborted transactions (a[i].producer_id and
 * a[i].last_offset, the ABORT marker's offset; the markers lie in the sealed segment based at
 * seg_base): forgets them, so a read_committed Fetch no longer returns them, and rewrites that
 * segment's .txnindex (removed when empty). 0, or -1 on an I/O error. */
int kp_log_forget_aborted(kp_log_t *log, int64_t seg_base, const kp_aborted_txn_t *a, size_t n);
/* The last stable offset: below it every transaction is decided. */
int64_t kp_log_last_stable_offset(kp_log_t *log);
/* The producers of this partition (DescribeProducers): a malloc'd copy of the entries in
 * *out; returns the count. */
size_t kp_log_producers(kp_log_t *log, kp_pstate_entry_t **out);

/* ListOffsets: earliest (-2), latest (-1) or first offset with timestamp >= ts. Returns the
 * offset (with *ts_out the batch max timestamp, -1 when unknown) or -1 if none. */
int64_t kp_log_offset_for_time(kp_log_t *log, int64_t ts, int64_t *ts_out);

void kp_log_offsets(kp_log_t *log, int64_t *log_start, int64_t *hwm, int64_t *leo);

/* Sets the callback invoked after the HWM advances (to wake long-polling fetches). */
void kp_log_set_hwm_callback(kp_log_t *log, kp_log_hwm_fn fn, void *arg);

/* Seals the active segment and starts a new one (retention rolls an expired active
 * segment before deleting it). @locks: log->lock held. 0 or -1 (the log goes offline). */
int kp_log_roll_locked(kp_log_t *log, int64_t now_ms);

/* The flush.ms pass (page-cache mode), run every log.flush.scheduler.interval.ms by the
 * log manager: queues an fsync for the flusher for each log whose last flush is at least
 * its flush.ms old and that has unflushed data. It visits only the logs that have unflushed
 * data and a finite flush.ms (appends list them), never every partition of the broker.
 * Never blocks on I/O. Returns how many logs it visited; *queued (may be NULL) how many
 * fsyncs it queued. Thread-safe; all logs of the process. */
int kp_log_flush_interval_pass(int64_t now_mono_ms, int *queued);

/* ---- replication (replication/partition.c) ---- */

/* As kp_log_read, but also bounded by `upto` (exclusive; a batch boundary at or below the
 * HWM): a leader serves consumers up to the replicated high watermark. */
void kp_log_read_upto(kp_log_t *log, int64_t offset, int64_t max_bytes, int min_one, int64_t upto,
                      kp_log_read_t *out);

/* As kp_log_read, but bounded by the log end instead of the HWM: a leader serves its
 * followers what it has written, in durable mode before its own fsync (as Kafka's followers
 * fetch up to the leader's LEO). Each replica's copy counts toward the HWM only once it is
 * fsynced on that replica, so the leader's fsync and its followers' run at the same time
 * instead of one after the other. */
void kp_log_read_replica(kp_log_t *log, int64_t offset, int64_t max_bytes, kp_log_read_t *out);

/* A follower's append: the batch keeps the offsets and leader epoch the leader gave it and
 * must start at the LEO (KP_APPEND_OUT_OF_ORDER otherwise); producer state and the epoch
 * cache follow it without checks (the leader made them). Thread-safe. */
void kp_log_append_replica(kp_log_t *log, const uint8_t *batch, size_t len,
                           const kp_batch_info_t *info, int64_t now_ms, kp_append_result_t *res);

/* Becoming leader of epoch: later appends carry it, and the epoch cache records that it
 * starts at the current LEO. */
void kp_log_set_leader_epoch(kp_log_t *log, int32_t epoch);

/* OffsetsForLeaderEpoch: the largest epoch <= epoch this log knows and the offset where it
 * ends (the next epoch's start, or the LEO for the latest). -1 / -1 when the log knows no
 * epoch that old. */
void kp_log_epoch_end(kp_log_t *log, int32_t epoch, int32_t *end_epoch, int64_t *end_offset);
/* The epoch of the last batch (or -1 for an empty log). */
int32_t kp_log_last_epoch(kp_log_t *log);

/* Cuts the log back to `offset` (a follower's divergent tail after a leader change):
 * segments above it are deleted, the one holding it is cut at the batch boundary at or
 * below it and rescanned, producer state and epoch cache rebuilt. Returns the new LEO, or
 * -1 (the log goes offline). Rare; does its I/O under the log lock. */
int64_t kp_log_truncate(kp_log_t *log, int64_t offset, int64_t now_ms);

/* Drops the whole log and starts it empty at `offset` (Kafka's truncateFullyAndStartAt: a
 * follower whose end is below the leader's log start offset, whose missing records the
 * leader no longer has): every segment and producer snapshot is deleted, producer state,
 * aborted transactions and the epoch cache are cleared, and log start = LEO = committed
 * end = offset. 0, or -1 (the log goes offline). Rare; does its I/O under the log lock. */
int kp_log_restart_at(kp_log_t *log, int64_t offset, int64_t now_ms);

/* Flusher threads (group commit): start n threads; logs are queued when they have data to
 * fsync. kp_flusher_stop() drains the queue first. */
int kp_flusher_start(int nthreads);
/* Grows or shrinks the pool to n >= 1 threads (log.flush.threads changed at run time); a
 * leaving thread finishes its fsync first, and queued logs go to the others. 0 or -1 (a
 * thread could not start; the pool keeps the ones that did). */
int kp_flusher_resize(int nthreads);
void kp_flusher_stop(void);

#endif
