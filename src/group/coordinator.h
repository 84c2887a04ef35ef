/*
 * coordinator.h — the consumer group coordinator (classic protocol) and committed offsets.
 *
 * One coordinator per broker, running on its own thread and event loop, owns every group and
 * every committed offset; nothing else touches them. It takes typed calls and returns typed
 * results (redpanda's group_manager is the model): the request handler (broker/handle_group.c,
 * handle_txn.c) decodes the request, decides what the caller may do, and calls kp_group_join()
 * & co. with the decoded request and a kp_group_call_t describing the caller; the coordinator
 * decides and hands the result to the call's `done` callback, which the handler uses to encode
 * the response. The coordinator never sees the connection, the wire or the authorizer. Calls
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

#include "core/arena.h"
#include "core/buf.h"
#include "core/props.h"
#include "kp_msgs.h"
#include "protocol/wire.h"
#include "replication/partition.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kp_coordinator kp_coordinator_t;

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

/* Starts the coordinator thread over the broker's topics (dir, copied), with the group owners
 * journal under <log_dir>/meta. Standalone (pool 0): creates __consumer_offsets if needed and
 * replays it first. A replicated pool (pool 1): __consumer_offsets is the pool's, and each of
 * its partitions is loaded when this broker becomes its leader. NULL with a message. */
kp_coordinator_t *kp_coordinator_start(const kp_partition_dir_t *dir, const char *log_dir, int pool,
                                       const kp_coord_config_t *cfg, char *err, size_t errlen);
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

/* A call's typed result: the response of its op (`op` says which member is set). A NULL
 * pointer means the call could not be answered (its arena was exhausted): the handler
 * finishes the request without a response. Borrowed: valid only during the done callback,
 * its arrays allocated in the call's arena. */
typedef struct kp_group_result {
    kp_group_op_t op;
    union {
        const void *any; /* NULL: no answer */
        const JoinGroupResponse *join;
        const SyncGroupResponse *sync;
        const HeartbeatResponse *heartbeat;
        const LeaveGroupResponse *leave;
        const OffsetCommitResponse *commit;
        const OffsetFetchResponse *fetch;
        const ListGroupsResponse *list;
        const DescribeGroupsResponse *describe;
        const DeleteGroupsResponse *del;
        const OffsetDeleteResponse *offset_delete;
        const TxnOffsetCommitResponse *txn_commit;
    };
} kp_group_result_t;

typedef struct kp_group_call kp_group_call_t;

/* One group request as the coordinator sees it: who asks, and where the result goes. Filled
 * by the handler, allocated in (and living as long as) the request's arena; the coordinator
 * owns it from the kp_group_* call until it calls done exactly once, on its own thread. */
struct kp_group_call {
    kp_group_op_t op;        /* set by the kp_group_* entry point */
    int16_t api_version;     /* what the result may carry (e.g. v9+ SkipAssignment) */
    kp_str_t client_id;      /* the request header's client id (member ids, DescribeGroups) */
    const char *client_host; /* the caller's address (DescribeGroups) */
    const char *principal;   /* "User:<name>": its team owns the groups it claims */
    kp_arena_t *arena;       /* the result's arrays are allocated here */
    /* The handler's ACL decision for op on a resource (auth/acl.h KP_OP_*, KP_RES_*): 1
     * allowed (with no authorizer: always). The coordinator asks it for what only it knows,
     * in the order Kafka checks: the group of a call, the topics of a group's commits, the
     * groups ListGroups lists, and ALTER on the cluster (its administrators are exempt from
     * group.ownership). Called on the coordinator's thread. */
    int (*may)(const kp_group_call_t *call, int op, int resource_type, kp_str_t name);
    /* Receives the result on the coordinator's thread; the handler encodes it there and
     * finishes the request on the request's loop. */
    void (*done)(kp_group_call_t *call, kp_group_result_t result);
    void *handler_data; /* the handler's (its request); never touched by the coordinator */
};

/* The typed entry points: each hands the decoded request (in the call's arena) to the
 * coordinator's thread and returns at once; call->done receives the result later. After the
 * call the caller must not touch `call` or `in` again. Any thread. */
void kp_group_join(kp_coordinator_t *c, kp_group_call_t *call, JoinGroupRequest *in);
void kp_group_sync(kp_coordinator_t *c, kp_group_call_t *call, SyncGroupRequest *in);
void kp_group_heartbeat(kp_coordinator_t *c, kp_group_call_t *call, HeartbeatRequest *in);
void kp_group_leave(kp_coordinator_t *c, kp_group_call_t *call, LeaveGroupRequest *in);
void kp_group_list(kp_coordinator_t *c, kp_group_call_t *call, ListGroupsRequest *in);
void kp_group_describe(kp_coordinator_t *c, kp_group_call_t *call, DescribeGroupsRequest *in);
void kp_group_delete(kp_coordinator_t *c, kp_group_call_t *call, DeleteGroupsRequest *in);
void kp_group_offset_commit(kp_coordinator_t *c, kp_group_call_t *call, OffsetCommitRequest *in);
void kp_group_offset_fetch(kp_coordinator_t *c, kp_group_call_t *call, OffsetFetchRequest *in);
void kp_group_offset_delete(kp_coordinator_t *c, kp_group_call_t *call, OffsetDeleteRequest *in);
/* TxnOffsetCommit: the offsets stay pending until the producer's transaction ends
 * (kp_coordinator_txn_complete). The handler has checked WRITE on the transactional id. */
void kp_group_txn_offset_commit(kp_coordinator_t *c, kp_group_call_t *call,
                                TxnOffsetCommitRequest *in);

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
