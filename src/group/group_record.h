/*
 * group_record.h — the group metadata record of __consumer_offsets, in Kafka's layout so
 * Kafka tooling that reads the topic understands it:
 *
 *   key   (version 2): int16 2 | string group
 *   value (version 3, what kpool writes; 0–2 are read too):
 *     int16 version | string protocol_type | int32 generation | nullable string protocol |
 *     nullable string leader | int64 current_state_timestamp (v2+) |
 *     int32 n members, each:
 *       string member_id | nullable string group_instance_id (v3+) | string client_id |
 *       string client_host | int32 rebalance_timeout (v1+) | int32 session_timeout |
 *       bytes subscription | bytes assignment
 *   a null value is a tombstone (the group was deleted).
 *
 * The subscription is the member's metadata for the group's chosen protocol only (as Kafka
 * stores it). Pure encode/decode: no coordinator state, so unit and fuzz tests call it alone.
 */
#ifndef KP_GROUP_RECORD_H
#define KP_GROUP_RECORD_H

#include "core/buf.h"
#include "protocol/wire.h"

#include <stddef.h>
#include <stdint.h>

#define KP_GROUP_RECORD_KEY_VERSION   2
#define KP_GROUP_RECORD_VALUE_VERSION 3 /* written; versions 0..3 are decoded */

typedef enum {
    KP_GROUP_RECORD_OK = 0,
    KP_GROUP_RECORD_TRUNCATED = -1,       /* short or malformed (a torn or foreign value) */
    KP_GROUP_RECORD_UNKNOWN_VERSION = -2, /* a version this broker does not know */
} kp_group_record_status_t;

typedef struct kp_group_record_member {
    kp_str_t member_id;
    kp_str_t group_instance_id; /* len -1: null (not a static member) */
    kp_str_t client_id;
    kp_str_t client_host;
    int32_t rebalance_timeout_ms; /* before v1: the session timeout */
    int32_t session_timeout_ms;
    kp_str_t subscription; /* protocol metadata of the chosen protocol */
    kp_str_t assignment;
} kp_group_record_member_t;

typedef struct kp_group_record {
    int16_t version;
    kp_str_t protocol_type; /* "" when no member ever joined */
    int32_t generation;
    kp_str_t protocol;                  /* null while the group is Empty */
    kp_str_t leader;                    /* null while the group is Empty */
    int64_t current_state_timestamp_ms; /* -1 before v2 */
    kp_group_record_member_t *members;  /* decode: malloc'd array, strings borrowed */
    int32_t nmembers;
} kp_group_record_t;

/* Appends the key for group_id to b. */
void kp_group_record_key_encode(kp_buf_t *b, const char *group_id);

/* Appends rec as a version 3 value to b (rec->version is ignored). Null strings where Kafka's
 * schema has no null (protocol type, member fields, bytes) are written empty. */
void kp_group_record_encode(kp_buf_t *b, const kp_group_record_t *rec);

/* Decodes a value. On KP_GROUP_RECORD_OK, rec's strings borrow from p (which must outlive
 * them) and rec->members is allocated: release it with kp_group_record_free. On an error rec
 * holds nothing to free. A forged member count cannot allocate more than len justifies.
 * Bytes after the last member are ignored (as Kafka's non-flexible readers do). */
kp_group_record_status_t kp_group_record_decode(const uint8_t *p, size_t len,
                                                kp_group_record_t *rec);

void kp_group_record_free(kp_group_record_t *rec);

#endif
