/*
 * coordinator.h — the consumer group coordinator (classic protocol) and committed offsets.
 *
 * One coordinator per broker, running on its own thread and event loop, owns every group and
 * every committed offset; nothing else touches them. A network loop decodes a group request
 * and hands it over with kp_coordinator_submit(); the coordinator answers it (encoding the
 * response into the request) and posts the completion back to the request's loop. Requests
 * that must wait — JoinGroup until the rebalance completes, SyncGroup until the leader's
 * assignment arrives, OffsetCommit until its records are fsynced — simply stay with the
 * coordinator until then.
 *
 * Offsets and group metadata live in the compacted internal topic __consumer_offsets (Kafka's
 * record formats: offset commit key v1, value v3; group metadata key v2, value v3 with members
 * and assignments; tombstones on delete and expiry), replayed on start: a restarted broker
 * knows each group's generation, members and assignments, so members that keep heartbeating
 * continue without a rebalance.
 *
 * A group id belongs to the first team that uses it (group.ownership, docs/groups.md): the
 * owners are kept in <log.dir>/meta/group_owners.journal, and every group request of another
 * team is refused with GROUP_AUTHORIZATION_FAILED.
 */
#ifndef KP_COORDINATOR_H
#define KP_COORDINATOR_H

#include "broker/broker.h"
#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kp_coordinator kp_coordinator_t;
typedef struct kp_req kp_req_t;

/* The team of a kpool service user (docs/groups.md): its name is
 * <team>_<app>_<8 hex digits>_<generation>[-<n>], seen as "CN=<name>" with the default
 * ssl.principal.mapping.rules; <team> is the namespace, or <short>~<16 hex digits> for one
 * not written out whole (credentials.c, kp_service_user_team), never the same for two
 * namespaces. Names issued by older kpools (<team> the namespace without a leading "team-",
 * cut at 20) match the second branch, as before. */
#define KP_TEAM_RULES_DEFAULT                                                                      \
    "RULE:^(?:CN=)?([a-z0-9-]*~[0-9a-f]{16}|[a-z0-9-]+)_[a-z0-9-]*_[0-9a-f]{8}_[0-9]+(?:-[0-9]+)?" \
    "$/"                                                                                           \
    "$1/"

typedef struct kp_coord_config {
    int32_t offsets_partitions;         /* offsets.topic.num.partitions [50] */
    int64_t offsets_retention_ms;       /* offsets.retention.minutes [10080] */
    int64_t retention_check_ms;         /* offsets.retention.check.interval.ms [600000] */
    int32_t min_session_timeout_ms;     /* group.min.session.timeout.ms [6000] */
    int32_t max_session_timeout_ms;     /* group.max.session.timeout.ms [1800000] */
    int32_t initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms [3000] */
    int32_t max_group_size;             /* group.max.size [2147483647] */
    int32_t metadata_max_bytes;         /* offset.metadata.max.bytes [4096] */
    int ownership_shared;               /* group.ownership [team]: shared turns it off */
    char team_rules[2048];              /* group.ownership.team.rules */
} kp_coord_config_t;

/* Reads the group.* / offsets.* properties. -1 with a message on a bad value. */
int kp_coord_config_load(kp_coord_config_t *cfg, const kp_props_t *props, char *err, size_t errlen);

/* Creates __consumer_offsets if needed, replays it, starts the coordinator thread. */
kp_coordinator_t *kp_coordinator_start(kp_broker_t *b, const kp_coord_config_t *cfg, char *err,
                                       size_t errlen);
/* Stops the thread; pending requests are answered with COORDINATOR_NOT_AVAILABLE. */
void kp_coordinator_stop(kp_coordinator_t *c);

typedef enum {
    KP_GROUP_OP_JOIN,
    KP_GROUP_OP_SYNC,
    KP_GROUP_OP_HEARTBEAT,
    KP_GROUP_OP_LEAVE,
    KP_GROUP_OP_COMMIT,
    KP_GROUP_OP_FETCH,
    KP_GROUP_OP_LIST,
    KP_GROUP_OP_DESCRIBE,
    KP_GROUP_OP_DELETE,
    KP_GROUP_OP_OFFSET_DELETE,
    KP_GROUP_OP_TXN_COMMIT, /* TxnOffsetCommit */
} kp_group_op_t;

/* Hands a decoded request (msg lives in the request's arena) to the coordinator. After this
 * call the caller must not touch req again: it is finished on its loop by the coordinator. */
void kp_coordinator_submit(kp_coordinator_t *c, kp_req_t *req, kp_group_op_t op, void *msg);

/* The transaction coordinator's entry point: the COMMIT (commit=1) or ABORT marker of
 * producer_id's transaction is durable in __consumer_offsets; its pending transactional
 * offsets are applied or dropped on the coordinator's thread, then done(arg) is called
 * there. Any thread. */
void kp_coordinator_txn_complete(kp_coordinator_t *c, int64_t producer_id, int commit,
                                 void (*done)(void *arg), void *arg);

/* Appends kpool_consumergroup_committed_offset, _lag and _series_dropped (group_metrics.c)
 * for the groups this coordinator holds. Waits for the coordinator's thread (bounded); any
 * other thread. */
void kp_coordinator_render_lag(kp_coordinator_t *c, kp_buf_t *out);
#endif
