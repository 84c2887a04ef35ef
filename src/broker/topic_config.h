/*
 * topic_config.h — the schema of topic configs: names, types, ranges, the broker property
 * that supplies each default (Kafka's synonyms), and validation.
 *
 * A topic stores only its overrides; the effective value is override → broker property →
 * built-in default, which is also the `source` DescribeConfigs reports.
 */
#ifndef KP_TOPIC_CONFIG_H
#define KP_TOPIC_CONFIG_H

#include "core/props.h"
#include "replication/partition.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KP_CT_LONG,
    KP_CT_INT,
    KP_CT_DOUBLE,
    KP_CT_BOOL,
    KP_CT_STRING, /* one of `allowed` when set */
    KP_CT_LIST,   /* comma-separated, each one of `allowed` */
} kp_config_type_t;

typedef struct kp_config_def {
    const char *name;        /* topic config */
    const char *broker_name; /* broker property giving the default (NULL: none) */
    kp_config_type_t type;
    const char *default_value;
    int64_t min, max; /* for LONG/INT; DOUBLE uses them as 0..1 bounds */
    const char *const *allowed;
} kp_config_def_t;

/* Config sources as DescribeConfigs reports them. */
#define KP_CONFIG_SOURCE_TOPIC                  1
#define KP_CONFIG_SOURCE_DYNAMIC_BROKER         2 /* AlterConfigs on this broker's id */
#define KP_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER 3 /* AlterConfigs on the default ("") */
#define KP_CONFIG_SOURCE_STATIC_BROKER          4
#define KP_CONFIG_SOURCE_DEFAULT                5

extern const kp_config_def_t kp_topic_config_defs[];
extern const size_t kp_topic_config_defs_count;

const kp_config_def_t *kp_topic_config_find(const char *name);
/* 0 when valid; otherwise -1 with a message naming the key, the rule and the value. */
int kp_topic_config_validate(const char *name, const char *value, char *err, size_t errlen);
/* Effective value and its source. */
const char *kp_topic_config_value(const kp_config_def_t *def, const kp_props_t *overrides,
                                  const kp_props_t *broker, int *source);
int64_t kp_topic_config_i64(const char *name, const kp_props_t *overrides,
                            const kp_props_t *broker);
/* compression.type value → KP_CODEC_* (storage/compress.h), or -1 for "producer" (store as
 * produced) and anything unknown. */
int kp_topic_config_codec(const char *value);
/* Effective message.timestamp.before.max.ms / after.max.ms: each one, when set (not
 * INT64_MAX), else message.timestamp.difference.max.ms, as Kafka 3.6+ resolves them. */
void kp_topic_timestamp_bounds(const kp_props_t *overrides, const kp_props_t *broker,
                               int64_t *before_ms, int64_t *after_ms);
/* One IncrementalAlterConfigs operation on a set of configs: 0 SET, 1 DELETE, 2 APPEND,
 * 3 SUBTRACT (the last two only when is_list; they start from `base` when props has no
 * value for key). 0, or -1 with err filled. The caller validates the result. */
int kp_config_op_apply(kp_props_t *props, const char *key, int is_list, int8_t op,
                       const char *value, const char *base, char *err, size_t errlen);
/* Fills the storage settings of a topic from its effective configs. */
void kp_topic_log_config(kp_partition_config_t *out, const kp_props_t *overrides,
                         const kp_props_t *broker);

#endif
