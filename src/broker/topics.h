/*
 * topics.h — the broker's topics: a name → topic map, partitions with their logs, and the
 * durable metadata behind them (one JSON file per topic under <log.dir>/meta/topics).
 *
 * Create: partition directories first, then the topic file written atomically — the file is
 * the commit point. Delete: the topic file is removed first, partition directories are
 * renamed to `<name>-<p>.<id>-delete` and removed when the last reference goes. On start,
 * partition directories that no topic file claims are leftovers of an interrupted create or
 * delete and are removed.
 *
 * Topics are reference counted: lookups return a referenced topic that stays valid (even if
 * deleted meanwhile) until kp_topic_put(). The map is guarded by a rwlock; partitions'
 * logs have their own locks.
 */
#ifndef KP_TOPICS_H
#define KP_TOPICS_H

#include "core/props.h"
#include "protocol/wire.h"
#include "replication/partition.h"
#include "storage/log.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct kp_topic kp_topic_t;
typedef struct kp_topics kp_topics_t;

/* Effective values of the configs the data path reads, recomputed whenever the topic's
 * configs change (so a produce never parses a string). Relaxed atomics: a request sees the
 * old or the new value, never a torn one. */
typedef struct kp_topic_settings {
    atomic_int max_message_bytes;
    atomic_int log_append_time; /* message.timestamp.type=LogAppendTime */
    atomic_int min_insync_replicas;
    atomic_int cleanup_delete;
    atomic_int cleanup_compact;
    atomic_llong retention_ms;
    atomic_llong retention_bytes;
    atomic_llong delete_retention_ms;
    atomic_llong min_compaction_lag_ms;
    atomic_llong max_compaction_lag_ms;
    atomic_llong min_cleanable_ratio_ppm; /* min.cleanable.dirty.ratio x 1e6 */
    atomic_llong file_delete_delay_ms;
    atomic_int compression_codec; /* compression.type: KP_CODEC_*, -1 for producer */
    /* message.timestamp.before/after.max.ms (or the deprecated difference.max.ms);
     * INT64_MAX: no bound, and no record is looked at */
    atomic_llong timestamp_before_max_ms;
    atomic_llong timestamp_after_max_ms;
} kp_topic_settings_t;

struct kp_topic {
    atomic_int refs;
    char *name;
    kp_uuid_t id;
    /* Partitions only grow (CreatePartitions): a bigger array is published before the count,
     * and replaced arrays live until the topic is freed, so a reader that loaded the count
     * and then the array always indexes a valid one. */
    _Atomic int32_t npartitions;
    kp_partition_t **_Atomic partitions;
    void *retired_arrays; /* older partition arrays, freed with the topic */
    kp_topic_settings_t eff;
    kp_props_t *configs; /* overrides only; guarded by kp_topics' lock */
    int internal;
    int deleted;
    int64_t created_ms;
    kp_topics_t *owner;
    kp_topic_t *hash_next;
};

typedef void (*kp_partition_hook_fn)(kp_partition_t *p, void *arg);

/* broker_props: the effective broker properties (copied). */
kp_topics_t *kp_topics_open(const char *data_dir, const kp_props_t *broker_props, char *err,
                            size_t errlen);
void kp_topics_close(kp_topics_t *t);
/* Called for each partition opened (now and later): the broker hooks HWM notifications. */
void kp_topics_set_partition_hook(kp_topics_t *t, kp_partition_hook_fn fn, void *arg);

kp_topic_t *kp_topics_get(kp_topics_t *t, kp_str_t name);
void kp_topic_ref(kp_topic_t *topic);
void kp_topic_put(kp_topic_t *topic);
/* A referenced partition of a referenced topic, or NULL. */
kp_partition_t *kp_topic_partition(kp_topic_t *topic, int32_t index);

/* Snapshot of every topic (referenced), sorted by name. Free with kp_topics_list_free. */
kp_topic_t **kp_topics_list(kp_topics_t *t, int *count);
void kp_topics_list_free(kp_topic_t **list, int count);
int kp_topics_count(kp_topics_t *t, int64_t *partitions);
/* max.broker.partitions (the name KIP-578 proposed for Kafka): the most partitions this
 * broker hosts, over every topic, internal ones included; a CreateTopics or
 * CreatePartitions beyond it is INVALID_PARTITIONS, before any file is opened. Unset, it
 * follows the open-file limit (RLIMIT_NOFILE, *files when not NULL): that limit less
 * KP_BROKER_FD_RESERVE, at least half of it (also what NULL props return). */
int64_t kp_topics_partitions_max(const kp_props_t *broker_props, int64_t *files);
/* Calls fn for every topic under the map's read lock, in no order: for short passes over
 * every topic (no copy, no references). fn must not create or delete topics. */
void kp_topics_foreach(kp_topics_t *t, void (*fn)(kp_topic_t *topic, void *arg), void *arg);

/* The topic map as the lower layers see it (replication/partition.h): lookups, partitions
 * and internal topics, nothing else. */
kp_partition_dir_t kp_topics_dir(kp_topics_t *t);

/* Kafka's topic name rule: 1..249 of [a-zA-Z0-9._-], not "." or "..". 0 when valid. */
int kp_topic_name_check(kp_str_t name, char *err, size_t errlen);

typedef struct kp_topic_spec {
    kp_str_t name;
    int32_t partitions;
    const char **config_keys;
    const char **config_values;
    int nconfigs;
    int internal;
    const uint8_t *id; /* 16 bytes (a replicated pool's topic id), or NULL: a random one */
} kp_topic_spec_t;

/* Creates a topic. Returns a Kafka error code; err gets a message for the client. */
int16_t kp_topics_create(kp_topics_t *t, const kp_topic_spec_t *spec, int validate_only, char *err,
                         size_t errlen);
int16_t kp_topics_delete(kp_topics_t *t, kp_str_t name, char *err, size_t errlen);

/* Replaces a topic's overrides (AlterConfigs: the given set becomes the whole set) or edits
 * them (IncrementalAlterConfigs ops: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT). Validates
 * everything first; nothing changes on an error. Stored durably, applied live. Returns a
 * Kafka error code with err filled. */
#define KP_CONFIG_REPLACE -1
int16_t kp_topics_alter_configs(kp_topics_t *t, kp_str_t name, const char **keys,
                                const char **values, const int8_t *ops, int n, int validate_only,
                                char *err, size_t errlen);
/* Grows a topic to `count` partitions (never shrinks: INVALID_PARTITIONS). */
int16_t kp_topics_add_partitions(kp_topics_t *t, kp_str_t name, int32_t count, int validate_only,
                                 char *err, size_t errlen);

/* Reads an effective config under the topics lock (value copied into buf). */
const char *kp_topic_config_get(kp_topic_t *topic, const char *name, char *buf, size_t buflen);
/* Replaces the broker properties topics inherit their defaults from (a dynamic broker
 * config changed): every topic's effective settings and every partition's storage settings
 * are recomputed before this returns. Thread-safe. */
void kp_topics_set_broker_props(kp_topics_t *t, const kp_props_t *broker_props);
/* Copies the topic's overrides into out (under the topics lock). */
void kp_topic_overrides_copy(kp_topic_t *topic, kp_props_t *out);

#endif
