/*
 * partition.h — the partition layer between the request handlers and storage (issue 13
 * item 1; redpanda's partition_proxy): the handlers append, wait for a commit and read
 * through it, never through storage's kp_log_* directly — nor do the coordinators, the topic
 * map (a partition's open/close/configs) or the replica fetchers: tools/check_layers.py
 * refuses a storage kp_log_* name outside storage/ and replication/.
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

#include "cluster/placement.h"
#include "protocol/wire.h"
#include "storage/log.h"
#include "storage/log_scan.h"
#include "storage/retention.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct kp_topic;
typedef struct kp_partition kp_partition_t;

/* Storage's types as the layers above see them: the same structs (storage/log.h), named for
 * the partition, so nothing above this layer names kp_log_* (checked by
 * tools/check_layers.py). */
typedef kp_log_config_t kp_partition_config_t; /* segment, flush and durability settings */
typedef kp_log_read_t kp_partition_read_t;     /* a read's batches, HWM, LSO */
/* Called after the high watermark advanced (to wake long-polling fetches). */
typedef void (*kp_partition_hwm_fn)(kp_partition_t *p, void *arg);

enum {
    KP_ROLE_NONE = 0, /* not a replica, or no state known yet */
    KP_ROLE_LEADER,
    KP_ROLE_FOLLOWER,
    KP_ROLE_OFFLINE, /* a replica of a partition without a leader */
};

/* A partition's replication state in a replicated pool (NULL in a standalone broker).
 * Guarded by lock; the log has its own. */
typedef struct kp_repl {
    pthread_mutex_t lock;
    int32_t self;
    int role;
    int32_t leader, leader_epoch, partition_epoch;
    int64_t version; /* the metadata store's version of the state applied */
    int32_t replicas[KP_REPLICAS_MAX];
    int nreplicas;
    int32_t isr[KP_REPLICAS_MAX];
    int nisr;
    /* leader: what it knows of each replica (itself included: its committed local end) */
    kp_replica_state_t rs[KP_REPLICAS_MAX];
    int64_t epoch_start;        /* leader: the LEO when it took over (ISR expand needs it) */
    int64_t hwm;                /* the replicated high watermark (follower: the leader's) */
    int min_insync;             /* the topic's min.insync.replicas, as last seen by a produce */
    kp_flush_waiter_t *waiters; /* acks=all waiting for hwm > offset (leader) */
    int64_t last_isr_attempt_ms;
    int32_t fetch_epoch;                /* follower: the leader epoch it last truncated for */
    int32_t throttled[KP_REPLICAS_MAX]; /* replicas a move adds (kp_partition_set_throttled) */
    int nthrottled;
    int64_t leader_hwm; /* follower: the leader's HWM its last fetch gave (-1: none yet) */
} kp_repl_t;

/* Traffic counters for /metrics (kpool_topic_*_total, summed per topic at scrape): relaxed
 * atomic adds, once per produced batch and once per partition of a Fetch response, never
 * per record. Replication traffic (follower fetches and appends) is not counted. */
typedef struct kp_partition_stats {
    atomic_llong bytes_in, records_in;   /* batches appended by Produce (acknowledged ones) */
    atomic_llong bytes_out, records_out; /* Fetch responses to consumers (handle_fetch.c) */
} kp_partition_stats_t;

struct kp_partition {
    struct kp_topic *topic;
    int32_t index;
    kp_log_t *log;
    kp_repl_t *repl; /* NULL: standalone */
    kp_partition_hwm_fn hwm_fn;
    void *hwm_arg;
    kp_partition_stats_t stats;
};

/* Finding partitions by topic name, for the layers below the broker that need a topic's
 * partitions (the group coordinator: __consumer_offsets, the topics a group commits to, the
 * high watermarks of its lag figures). The broker's topic map implements it
 * (broker/topics.h kp_topics_dir) and hands it over when it starts them. A topic is opaque
 * here and referenced: it and its partitions stay valid (even if deleted meanwhile) until
 * put. Thread-safe, as the topic map. */
typedef struct kp_partition_dir {
    void *arg;
    /* Topic `name`, referenced, or NULL when there is none. */
    struct kp_topic *(*get)(void *arg, kp_str_t name);
    void (*put)(struct kp_topic *topic); /* NULL is ignored */
    int32_t (*npartitions)(struct kp_topic *topic);
    int (*internal)(struct kp_topic *topic); /* an internal topic (__consumer_offsets...) */
    /* Partition `index` of a referenced topic, or NULL when it has no such partition. */
    kp_partition_t *(*partition)(struct kp_topic *topic, int32_t index);
    /* Creates an internal topic with these config overrides: 0, or a Kafka error with err
     * filled (TOPIC_ALREADY_EXISTS when it exists). */
    int16_t (*create_internal)(void *arg, kp_str_t name, int32_t partitions, const char **keys,
                               const char **values, int nconfigs, char *err, size_t errlen);
} kp_partition_dir_t;

/* Errors a commit waiter may get besides errno values. */
/* leadership moved: NOT_LEADER_OR_FOLLOWER */
#define KP_COMMIT_NOT_LEADER (-1001)
/* the ISR fell below min.insync.replicas: NOT_ENOUGH_REPLICAS_AFTER_APPEND */
#define KP_COMMIT_AFTER_APPEND (-1002)
/* The Kafka error for a commit waiter's err (0 for 0). */
int16_t kp_partition_commit_error(int err);

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
/* acks=1: the same for this broker's own copy only — once it is fsynced in durable mode
 * (returns 1, w called later), at once in page-cache mode (returns 0, w left alone). */
int kp_partition_wait_local(kp_partition_t *p, int64_t last_offset, kp_flush_waiter_t *w);

/* A consumer's read: whole batches from the one holding offset, bounded by the high
 * watermark and max_bytes (the first batch whole with min_one, KIP-74). Leaders only in a
 * pool (kp_partition_check_leader first). */
void kp_partition_read(kp_partition_t *p, int64_t offset, int64_t max_bytes, int min_one,
                       kp_partition_read_t *out);

/* The same bounded by the last stable offset when committed (isolation_level=1:
 * read_committed); out->last_stable_offset is set either way, never above the HWM. */
void kp_partition_read_isolated(kp_partition_t *p, int64_t offset, int64_t max_bytes, int min_one,
                                int committed, kp_partition_read_t *out);
/* Aborted transactions overlapping [from, upto) (storage/log.h kp_log_aborted_txns). */
size_t kp_partition_aborted_txns(kp_partition_t *p, int64_t from, int64_t upto,
                                 kp_aborted_txn_t **out);
/* The last stable offset: min(first unstable offset, high watermark). */
int64_t kp_partition_last_stable_offset(kp_partition_t *p);

int64_t kp_partition_high_watermark(kp_partition_t *p);
void kp_partition_offsets(kp_partition_t *p, int64_t *log_start, int64_t *hwm, int64_t *leo);
/* ListOffsets: earliest (-2), latest (-1: the high watermark) or by timestamp. */
int64_t kp_partition_offset_for_time(kp_partition_t *p, int64_t ts, int64_t *ts_out);
/* The leader epoch clients see (ListOffsets, Metadata). */
int32_t kp_partition_leader_epoch(kp_partition_t *p);
/* DeleteRecords: 0, or KP_RETENTION_OUT_OF_RANGE / -1 (storage/retention.h). */
int kp_partition_delete_records(kp_partition_t *p, int64_t offset, int64_t *low_watermark);

/* Called after the high watermark advances (to wake long-polling fetches). */
void kp_partition_set_hwm_callback(kp_partition_t *p, kp_partition_hwm_fn fn, void *arg);

/* The log directory's failures (storage reports device and file-system errors of any log:
 * docs/replication.md, "Disk failure"): fn(dir, errno, arg) on any thread, possibly with a
 * log's lock held. NULL removes it. */
typedef kp_log_failure_fn kp_partition_failure_fn;
void kp_partition_set_failure_hook(kp_partition_failure_fn fn, void *arg);
/* Takes every partition's log offline at once (the directory failed): KAFKA_STORAGE_ERROR. */
void kp_partition_fail_all(void);
/* Whether p's log refuses I/O (its directory failed). */
int kp_partition_is_offline(const kp_partition_t *p);

/* ---- a partition's life (the topic map's) and this broker's copy of it ---- */

/* The storage defaults (storage/log.h kp_log_config_defaults). */
void kp_partition_config_defaults(kp_partition_config_t *cfg);
/* Opens (or creates) the partition's log in dir: a standalone partition of topic, no
 * replication state. NULL with errno. */
kp_partition_t *kp_partition_open(struct kp_topic *topic, int32_t index, const char *dir,
                                  const kp_partition_config_t *cfg, int64_t now_ms);
/* Closes the log (destroy: removes its directory too), frees the replication state and p. */
void kp_partition_close(kp_partition_t *p, int destroy);
/* Applies changed storage settings (a topic's configs or the broker's defaults changed). */
void kp_partition_set_config(kp_partition_t *p, const kp_partition_config_t *cfg);
/* Renames the log's directory (a deleted topic's partitions move aside). 0 or -1 (errno). */
int kp_partition_rename_dir(kp_partition_t *p, const char *new_dir);

/* This broker's copy only, whatever the high watermark says: w (its offset set by the
 * caller) is called once the log is fsynced up to w->offset — from the flusher in durable
 * mode, at once in page-cache mode; always called. */
void kp_partition_wait_flush(kp_partition_t *p, kp_flush_waiter_t *w);
/* The local log's offsets: its start, its committed local end (fsynced in durable mode,
 * the LEO in page-cache mode; not bounded by a pool's high watermark) and its LEO. */
void kp_partition_log_offsets(kp_partition_t *p, int64_t *log_start, int64_t *local_end,
                              int64_t *leo);
/* The leader epoch of the local log's last batch, or -1. */
int32_t kp_partition_last_epoch(kp_partition_t *p);
/* Calls fn for every batch of the local log from offset `from` (storage/log_scan.h): 0, or
 * what fn returned to stop, or -1 on a read error. Replays of internal topics. */
int kp_partition_scan(kp_partition_t *p, int64_t from, kp_batch_fn fn, void *arg);
/* The bytes of the local log's segments (DescribeLogDirs). */
int64_t kp_partition_size_bytes(kp_partition_t *p);
/* The producers the local log knows (DescribeProducers): a malloc'd array in *out. */
size_t kp_partition_producers(kp_partition_t *p, kp_pstate_entry_t **out);
/* retention.ms / retention.bytes on the local log (storage/retention.h). */
int kp_partition_enforce_retention(kp_partition_t *p, const kp_retention_t *r, int64_t now_ms);
/* flush.ms in page-cache mode, over every partition with unflushed data (storage/log.h
 * kp_log_flush_interval_pass). */
int kp_partitions_flush_interval_pass(int64_t now_mono_ms, int *queued);

/* ---- replicated pools ---- */

/* Makes p a replicated partition of broker self (no role until a state is applied). */
void kp_partition_repl_init(kp_partition_t *p, int32_t self);
void kp_partition_repl_free(kp_partition_t *p);

/* Applies the partition's state from the metadata store: becomes leader (new epoch: the
 * log stamps it, followers' progress is reset), follower (pending acks=all fail with
 * NOT_LEADER_OR_FOLLOWER) or neither. replicas: the assignment. */
void kp_partition_apply_state(kp_partition_t *p, const int32_t *replicas, int nreplicas,
                              const kp_partition_state_t *st, int64_t version, int64_t now_ms);

/* A consumer's fetch or ListOffsets here: 0, NOT_LEADER_OR_FOLLOWER, or (current_epoch >= 0)
 * FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH. Standalone: 0. */
int16_t kp_partition_check_leader(kp_partition_t *p, int32_t current_epoch);

/* A follower's fetch (Fetch with replica_id): records its progress (fetch_offset is its
 * committed end), advances the high watermark, then reads from the leader's committed
 * local end. Returns a Kafka error (the read is left empty then). */
int16_t kp_partition_replica_fetch(kp_partition_t *p, int32_t replica, int32_t current_epoch,
                                   int64_t fetch_offset, int64_t max_bytes, int64_t now_ms,
                                   kp_log_read_t *out);

/* The replicas a partition move adds (cluster/reassign.h's adding set; none: n = 0): while
 * outside the ISR, their fetches are throttled (replication/throttle.h). */
void kp_partition_set_throttled(kp_partition_t *p, const int32_t *ids, int n);
/* Whether replica (this broker: p's own id) is being added by a move and is not in the ISR
 * yet, so that its fetches go through the replication throttles. */
int kp_partition_replica_throttled(kp_partition_t *p, int32_t replica);

/* OffsetsForLeaderEpoch as the leader answers it. 0 or a Kafka error. */
int16_t kp_partition_epoch_end(kp_partition_t *p, int32_t current_epoch, int32_t epoch,
                               int32_t *end_epoch, int64_t *end_offset);

/* The leader's periodic ISR check: fills next and returns 1 when the ISR should change
 * (shrink: a follower lagging more than lag_max_ms; expand: a replica caught up). */
int kp_partition_isr_update(kp_partition_t *p, int64_t now_ms, int64_t lag_max_ms,
                            kp_partition_state_t *next, int64_t *version);

/* A follower's append of a batch fetched from the leader of leader_epoch: refused
 * (KP_APPEND_OUT_OF_ORDER, nothing written) unless this broker still follows that epoch, so
 * a fetch that was in flight across a leader change cannot add the old leader's records. */
void kp_partition_append_replica(kp_partition_t *p, int32_t leader_epoch, const uint8_t *batch,
                                 size_t len, const kp_batch_info_t *info, int64_t now_ms,
                                 kp_append_result_t *res);

/* Takes back an acks=all waiter registered by kp_partition_wait_committed that has not
 * completed yet (the produce request's timeout): 1 when it was still waiting (its callback
 * will not run), 0 when it completed or is completing (its callback runs or ran). */
int kp_partition_cancel_wait(kp_partition_t *p, kp_flush_waiter_t *w);

/* A follower whose end is below the leader's log start offset drops its log and starts
 * empty at leader_start (kp_log_restart_at) — only while it still follows leader_epoch, and
 * only when leader_start is above its LEO or its log is empty. 0, or -1 (storage failure,
 * no longer that epoch's follower, or not allowed). */
int kp_partition_restart_at(kp_partition_t *p, int32_t leader_epoch, int64_t leader_start,
                            int64_t now_ms);

/* A follower moves its log start offset up to the leader's (DeleteRecords and retention on
 * the leader reach the followers this way, as in Kafka), never beyond its own committed
 * end. */
void kp_partition_follower_log_start(kp_partition_t *p, int32_t leader_epoch, int64_t leader_start);

/* A follower cuts its divergent tail (kp_log_truncate) — only while it still follows
 * leader_epoch. The new LEO, or -1 (storage failure or no longer that epoch's follower). */
int64_t kp_partition_truncate(kp_partition_t *p, int32_t leader_epoch, int64_t offset,
                              int64_t now_ms);

/* A follower learned the leader's high watermark (kept, capped at its own committed end, as
 * where it starts should it become leader). */
void kp_partition_follower_progress(kp_partition_t *p, int32_t leader_epoch, int64_t leader_hwm);

/* This broker's log directory failed (the log is offline, storage/log.h kp_log_fail_all):
 * acks=all requests waiting here fail with KAFKA_STORAGE_ERROR — they were not acknowledged,
 * and the producer retries at the new leader. From then on every request for the partition
 * is answered KAFKA_STORAGE_ERROR (kp_partition_check_leader / _check_produce / the replica
 * fetch / OffsetsForLeaderEpoch), whatever its role. */
void kp_partition_storage_failed(kp_partition_t *p);

/* Replication lag of one follower as its leader sees it (/metrics, kpool_replica_lag_*). */
typedef struct kp_replica_lag {
    int32_t id;                 /* the follower's broker id */
    int64_t messages;           /* the leader's LEO minus the follower's last fetch offset */
    int64_t since_caught_up_ms; /* now minus the last time a fetch of it reached the end;
                                 * 0 while its last fetch offset is the end */
} kp_replica_lag_t;
/* Leader: fills out (room for KP_REPLICAS_MAX) with the lag of each follower in the
 * assignment (one not fetched yet under this leadership counts from the log start) and
 * returns how many; 0 when not the leader. now_ms: kp_wall_ms(), as the replica fetches. Reads
 * what the follower fetches record already: nothing is added to the fetch path. */
int kp_partition_replica_lags(kp_partition_t *p, int64_t now_ms, kp_replica_lag_t *out);
/* Follower: the leader's high watermark as its last fetch response gave it minus this
 * log's end offset (>= 0: Kafka's FetcherLagMetrics ConsumerLag); -1 when not a follower or
 * no fetch answered under this leadership yet. */
int64_t kp_partition_fetcher_lag(kp_partition_t *p);

/* A snapshot of the state for Metadata. */
typedef struct kp_repl_view {
    int role;
    int32_t leader, leader_epoch;
    int32_t replicas[KP_REPLICAS_MAX];
    int nreplicas;
    int32_t isr[KP_REPLICAS_MAX];
    int nisr;
} kp_repl_view_t;
void kp_partition_view(kp_partition_t *p, kp_repl_view_t *v);

#endif
