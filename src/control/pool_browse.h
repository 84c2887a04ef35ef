/*
 * pool_browse.h — what the web console reads from a pool that the resources do not hold: a
 * topic's partitions with their offsets, the consumer groups that committed offsets on it
 * with their lag, and its records (the message browser). Like pool_client.h it speaks only
 * Kafka (librdkafka, the control plane's super-user certificate), so any Kafka pool works.
 *
 * Each call opens its own short-lived client, so it may run on any API thread; it blocks up
 * to the connection's timeout. Answers are JSON documents (new references) for the API to
 * send as they are (docs/api.md, "Console"); NULL with a message in err when the pool
 * cannot be reached or refused, and *missing set when the topic is not in the pool (yet).
 */
#ifndef KP_POOL_BROWSE_H
#define KP_POOL_BROWSE_H

#include "control/pool_client.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The message browser returns at most this many records per request: it bounds the memory
 * and the time one request takes. */
#define KP_BROWSE_LIMIT_MAX 500
/* A key, value or header value longer than this is cut (and flagged "truncated"). */
#define KP_BROWSE_VALUE_BYTES_MAX (64 * 1024)
/* Consumer groups looked at per request (each costs an OffsetFetch). */
#define KP_BROWSE_GROUPS_MAX 256
/* Partitions described per request (each costs two ListOffsets). */
#define KP_BROWSE_PARTITIONS_MAX 1024

typedef struct kp_browse_query {
    int limit;            /* 1..KP_BROWSE_LIMIT_MAX */
    int32_t partition;    /* -1: every partition */
    int64_t offset;       /* >= 0: from this offset on (per partition read); -1: unset */
    int64_t timestamp_ms; /* >= 0: from the first record at or after this time; -1: unset */
} kp_browse_query_t;

/* {"partitions": [{partition, leader, replicas, isr, startOffset, endOffset, records}],
 *  "records": total} */
json_t *kp_pool_browse_partitions(const kp_pool_conn_t *c, const char *topic, int *missing,
                                  char *err, size_t errlen);

/* {"items": [{group, state, members, lag, partitions: [{partition, committedOffset,
 *  endOffset, lag}]}]}: the groups with a committed offset on the topic, by name. */
json_t *kp_pool_browse_groups(const kp_pool_conn_t *c, const char *topic, int *missing, char *err,
                              size_t errlen);

/* {"items": [{partition, offset, timestamp, timestampType, key, value, headers}]}: without
 * offset or timestamp the newest q->limit records (newest first), else the first q->limit
 * records from there (oldest first). Bytes are shown as text when they are valid UTF-8
 * ("keyEncoding"/"valueEncoding": "utf8"), else as hex ("hex"); null stays null. */
json_t *kp_pool_browse_messages(const kp_pool_conn_t *c, const char *topic,
                                const kp_browse_query_t *q, int *missing, char *err, size_t errlen);

/* The pool's health as its metadata tells it: {"brokers": [{id, host, port}], "topics",
 * "partitions", "underReplicatedPartitions" (fewer in-sync
 * replicas than replicas), "offlinePartitions" (no leader)}; internal topics included. */
json_t *kp_pool_browse_health(const kp_pool_conn_t *c, char *err, size_t errlen);

/* Record bytes as JSON (a new reference): text when valid UTF-8 without control characters
 * other than tab and newlines (*encoding "utf8"), else lowercase hex ("hex"); NULL ptr is
 * null ("null"). Beyond KP_BROWSE_VALUE_BYTES_MAX bytes it is cut (at a character boundary
 * for text) and *truncated set. */
json_t *kp_pool_browse_bytes_json(const void *ptr, size_t len, const char **encoding,
                                  int *truncated);

#endif
