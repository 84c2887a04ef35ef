/*
 * backup_kafka.h — the records of a topic (the schema registry's `_schemas`) read into a
 * backup and produced back at restore, through librdkafka over the pool's admin TLS
 * connection. Like pool_client.h, nothing here knows the pool is kpool.
 *
 * A record in JSON: {"partition": 0, "offset": 7, "timestamp": 1795000000000,
 * "key": "<text>" | "keyBase64": "..." | null, "value": ... | null (a tombstone)}
 * (see kp_backup_bytes_put). Each call makes its own client and destroys it before it
 * returns, so any thread may call them.
 */
#ifndef KP_BACKUP_KAFKA_H
#define KP_BACKUP_KAFKA_H

#include "control/pool_client.h"

#include <jansson.h>
#include <stddef.h>

/* Reads every record of topic from the start of each partition up to its high watermark as
 * it was when the call started, with assign() (no consumer group, nothing committed).
 * *records: a new JSON array in (partition, offset) order; *partitions: the topic's
 * partition count. A topic that does not exist is an empty array and 0 partitions. More
 * than KP_BACKUP_SCHEMA_RECORDS_MAX records, or no progress within the connection's
 * timeout, is an error. 0, or -1 with err. */
int kp_backup_topic_read(const kp_pool_conn_t *conn, const char *topic, json_t **records,
                         int *partitions, char *err, size_t errlen);

/* Number of records in topic (sum of high minus low watermarks); 0 when it does not exist.
 * 0 or -1 with err. */
int kp_backup_topic_count(const kp_pool_conn_t *conn, const char *topic, int64_t *count, char *err,
                          size_t errlen);

/* Produces records (the format above; offsets and timestamps are ignored) to topic, each to
 * its partition, in array order, with an idempotent producer and acks=all, and returns once
 * every one is acknowledged. 0, or -1 with err naming the first failure. */
int kp_backup_topic_write(const kp_pool_conn_t *conn, const char *topic, const json_t *records,
                          char *err, size_t errlen);

#endif
