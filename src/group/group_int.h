/*
 * group_int.h — the coordinator's internal state, shared by coordinator.c (thread, dispatch,
 * ticks), membership.c (join/sync/heartbeat/leave), offsets.c (commit/fetch/expiry),
 * group_store.c (the group metadata record: writing it, restoring groups from it) and
 * group_owner.c (which team owns each group, and the access check every handler makes).
 *
 * @locality: everything here is touched only on the coordinator's thread.
 */
#ifndef KP_GROUP_INT_H
#define KP_GROUP_INT_H

#include "core/hmap.h"
#include "group/coordinator.h"
#include "kp_msgs.h"
#include "net/loop.h"
#include "protocol/errors.h"
#include "storage/log.h"
#include "storage/records.h"

#include <pthread.h>

/* Kafka's new-member join timeout: a member that joined (v4+ MEMBER_ID_REQUIRED flow or
 * awaiting its first generation) and never completes is dropped after this long. */
#define KP_NEW_MEMBER_JOIN_TIMEOUT_MS 300000
/* Coordinator tick: rebalance deadlines and expiry of pending member ids (bounds their
 * precision). Sessions have their own timers (member_touch). */
#define KP_COORD_TICK_MS 50

typedef enum {
    GS_EMPTY = 0,
    GS_PREPARING_REBALANCE,
    GS_COMPLETING_REBALANCE,
    GS_STABLE,
    GS_DEAD,
} group_state_t;

typedef struct protocol {
    char *name;
    uint8_t *metadata;
    int32_t metadata_len;
} protocol_t;

typedef struct member {
    char *id;
    char *instance_id; /* static membership (group.instance.id), or NULL */
    char *client_id;
    char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    protocol_t *protocols;
    int nprotocols;
    uint8_t *assignment;
    int32_t assignment_len;
    kp_group_call_t *join_req; /* awaiting the end of the join phase */
    kp_group_call_t *sync_req; /* awaiting the leader's assignment */
    int64_t last_heartbeat_ms;
    /* fires at last_heartbeat_ms + session_timeout_ms, so a member expires at its deadline
     * (not at the next tick); armed by member_touch, cancelled by member_free */
    kp_timer_t *session_timer;
    kp_coordinator_t *coord;
    struct group *group;
    int is_new;
    /* nonzero: join_req is a static member's rejoin answered once the group metadata record
     * naming its new member id is durable (the store's sequence number) */
    uint64_t join_store_seq;
    struct member *next;
} member_t;

typedef struct offset_entry {
    int64_t offset;
    int32_t leader_epoch;
    char *metadata; /* NULL: null metadata */
    int64_t commit_ms;
} offset_entry_t;

typedef struct group {
    char *id;
    group_state_t state;
    int32_t generation;
    char *protocol_type; /* NULL while nobody ever joined (standalone commits) */
    char *protocol;      /* selected protocol of the current generation */
    char *leader;        /* member id */
    member_t *members;
    int nmembers;
    kp_hmap_t pending; /* member ids handed out with MEMBER_ID_REQUIRED → deadline */
    int64_t state_since_ms;
    int64_t join_deadline_ms; /* PreparingRebalance completes by then */
    int64_t join_started_ms;
    int initial_join;         /* the rebalance started from Empty: group.initial.rebalance.delay */
    int64_t sync_deadline_ms; /* CompletingRebalance: members that never sync are dropped */
    kp_hmap_t offsets;        /* "topic\0partition" → offset_entry_t */
    int32_t offsets_partition;
    int has_metadata; /* a group metadata record was replayed for it */
    /* nonzero: the leader's assignment of this generation is being written; the group turns
     * Stable (and SyncGroups are answered) when that store completes */
    uint64_t sync_store_seq;
} group_t;

struct kp_coordinator {
    kp_partition_dir_t dir; /* the broker's topics: __consumer_offsets, committed topics */
    kp_coord_config_t cfg;
    kp_loop_t *loop;
    pthread_t thread;
    int running;
    kp_hmap_t groups;               /* id → group_t */
    struct kp_topic *offsets_topic; /* a pool: NULL until the pool's topic is served here */
    /* A replicated pool (SPEC §11): this coordinator serves the groups of the
     * __consumer_offsets partitions this broker leads, loaded when it becomes their leader
     * (led_epoch[p] the leader epoch it loaded under, -1: not loaded) and dropped when it
     * stops leading them. Standalone: pool 0, every partition served. */
    int pool;
    int32_t *led_epoch; /* offsets_partitions entries once offsets_topic is known */
    int64_t next_retention_check_ms;
    kp_timer_t *tick;
    int pending_writes;      /* commits and group stores waiting for their flush: stop waits */
    uint64_t next_store_seq; /* numbers group stores, so a late completion is recognised */
    kp_hmap_t txn_pending;   /* producer id → its transactional offsets (txn_offsets.c) */
    /* group_owner.c: group id → owning team (malloc'd), and its journal */
    kp_hmap_t owners;
    struct kp_principal_rules *team_rules; /* group.ownership.team.rules */
    char *owners_path;
    int owners_fd; /* -1: in memory only */
    int64_t owners_size;
    size_t owners_records;
};

/* coordinator.c */
group_t *coord_group_get(kp_coordinator_t *c, kp_str_t id, int create);
void coord_group_remove(kp_coordinator_t *c, group_t *g);
/* Hands the call its result (the handler encodes it and finishes the request on its loop);
 * the call is gone after this. */
void coord_done(kp_group_call_t *call, kp_group_result_t result);
/* Partition p of __consumer_offsets, or NULL (a pool: not known here yet). */
kp_partition_t *coord_offsets_partition(const kp_coordinator_t *c, int32_t p);
const char *group_state_name(group_state_t s);
int64_t coord_now_ms(kp_coordinator_t *c);
char *coord_strdup(kp_str_t s); /* NULL for a null string */
/* Whether this coordinator serves the groups of __consumer_offsets partition p now
 * (standalone: always; a pool: while this broker leads p and has loaded it). */
int coord_serves(const kp_coordinator_t *c, int32_t partition);

/* group_owner.c — which team owns each group (docs/groups.md "Ownership") */
/* The ACL check (op on the group: the handler's call->may) and, unless group.ownership=shared
 * or the call is exempt (no authorizer, or the caller administers the cluster), the team
 * check: a group owned by another team is refused. With claim, an unowned group becomes the
 * caller's team's (durably, before this returns). 0, KERR_GROUP_AUTHORIZATION_FAILED, or
 * KERR_COORDINATOR_NOT_AVAILABLE (claim not stored). */
int16_t group_access(kp_coordinator_t *c, kp_group_call_t *req, kp_str_t group_id, int op,
                     int claim);
/* 0 when the group is owned by a team other than the caller's (ListGroups leaves it out). */
int group_visible(kp_coordinator_t *c, kp_group_call_t *req, const char *group_id);
/* Forgets the group's owner (DeleteGroups). 1 released, 0 it had none, -1 write failed. */
int group_owner_release(kp_coordinator_t *c, kp_str_t group_id);
/* Parses the team rules and replays <meta_dir>/group_owners.journal (meta_dir NULL: in
 * memory only). -1 with a message. group_owners_close frees everything (also after -1). */
int group_owners_open(kp_coordinator_t *c, const char *meta_dir, char *err, size_t errlen);
void group_owners_close(kp_coordinator_t *c);

/* membership.c */
void membership_join(kp_coordinator_t *c, kp_group_call_t *req, JoinGroupRequest *in);
void membership_sync(kp_coordinator_t *c, kp_group_call_t *req, SyncGroupRequest *in);
void membership_heartbeat(kp_coordinator_t *c, kp_group_call_t *req, HeartbeatRequest *in);
void membership_leave(kp_coordinator_t *c, kp_group_call_t *req, LeaveGroupRequest *in);
void membership_list(kp_coordinator_t *c, kp_group_call_t *req, ListGroupsRequest *in);
void membership_describe(kp_coordinator_t *c, kp_group_call_t *req, DescribeGroupsRequest *in);
void membership_tick(kp_coordinator_t *c, group_t *g, int64_t now);
/* Answers every waiting request of the group with err (shutdown). */
void membership_abort(kp_coordinator_t *c, group_t *g, int16_t err);
void member_free(member_t *m);
/* The member was heard from now: its session restarts (its expiry timer is re-armed). */
void member_touch(kp_coordinator_t *c, group_t *g, member_t *m);
member_t *group_find_member(group_t *g, const char *id, size_t idlen);
/* The member's metadata for protocol `name`, or NULL. */
const protocol_t *member_protocol(const member_t *m, const char *name);
/* Completions of group_store_assignment / group_store_static_join (err 0: durable). */
void membership_assignment_stored(kp_coordinator_t *c, group_t *g, int32_t generation, uint64_t seq,
                                  int err);
void membership_static_join_stored(kp_coordinator_t *c, group_t *g, const char *member_id,
                                   uint64_t seq, const char *reported_leader, int err);
/* 1 when some current member's consumer subscription names the topic. */
int group_subscribed_to(const group_t *g, const char *topic, size_t topiclen);

/* offsets.c */
void offsets_commit(kp_coordinator_t *c, kp_group_call_t *req, OffsetCommitRequest *in);
void offsets_fetch(kp_coordinator_t *c, kp_group_call_t *req, OffsetFetchRequest *in);
void offsets_delete(kp_coordinator_t *c, kp_group_call_t *req, OffsetDeleteRequest *in);
void offsets_delete_groups(kp_coordinator_t *c, kp_group_call_t *req, DeleteGroupsRequest *in);
void offsets_expire(kp_coordinator_t *c, int64_t now);
int offsets_load(kp_coordinator_t *c, char *err, size_t errlen);
/* A pool: reads partition p's groups and offsets (this broker just became its leader). 0,
 * or -1 (storage) with what was read left in place: the caller drops it again. */
int offsets_load_partition(kp_coordinator_t *c, int32_t p);
void offsets_clear(group_t *g);
int32_t offsets_partition_for(const kp_coordinator_t *c, const char *group, size_t len);
/* Finishes bb and appends it to g's __consumer_offsets partition; w (may be NULL) fires once
 * the batch is durable. 0, or -1 when nothing was written (w is then not called). */
int offsets_append(kp_coordinator_t *c, group_t *g, kp_batch_builder_t *bb, kp_flush_waiter_t *w);

/* offsets.c helpers shared with txn_offsets.c */
size_t offset_key(char *buf, size_t n, kp_str_t topic, int32_t partition);
void entry_free(offset_entry_t *e);
void encode_key(kp_buf_t *b, const char *group, kp_str_t topic, int32_t partition);
void encode_value(kp_buf_t *b, int64_t offset, int32_t epoch, kp_str_t metadata, int64_t ts);

/* txn_offsets.c — TxnOffsetCommit: offsets written as a transactional batch, pending per
 * producer until its transaction's marker applies or drops them */
void txn_offsets_commit(kp_coordinator_t *c, kp_group_call_t *req, TxnOffsetCommitRequest *in);
/* Replay: takes a transactional or control batch of __consumer_offsets (returns 1), else 0. */
int txn_offsets_replay(kp_coordinator_t *c, const uint8_t *batch, size_t len);
void txn_offsets_complete(kp_coordinator_t *c, int64_t producer_id, int commit);
/* 1 when an open transaction holds an offset of group for topic-partition (KIP-447: an
 * OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT for it). */
int txn_offsets_pending(kp_coordinator_t *c, kp_str_t group, kp_str_t topic, int32_t partition);
void txn_offsets_free(kp_coordinator_t *c);

/* group_store.c — the group metadata record (group_record.h) */
/* Writes g's metadata without waiting (the group became Empty): a record lost to a crash
 * only brings back the members of the previous record, who then expire. */
void group_store_write(kp_coordinator_t *c, group_t *g);
/* Writes the generation with the members' assignments (already in g's members, not yet
 * visible); membership_assignment_stored runs on the coordinator loop once it is durable —
 * or before this returns, with an error, when the write failed at once. */
void group_store_assignment(kp_coordinator_t *c, group_t *g);
/* Writes g after static member m took a new member id in a Stable group; m->join_req is
 * answered by membership_static_join_stored once durable (or at once on a failed write).
 * Takes reported_leader (may be NULL): the leader id that JoinGroup response names. */
void group_store_static_join(kp_coordinator_t *c, group_t *g, member_t *m, char *reported_leader);
/* Replay: applies one group metadata record (value NULL: tombstone) at offset. */
void group_store_replay(kp_coordinator_t *c, kp_str_t group_id, const uint8_t *value,
                        int32_t valuelen, int64_t offset);
/* After replay: restored members' sessions start now (only the groups of __consumer_offsets
 * partition `partition`, or every group when it is -1). Returns how many members there are. */
size_t group_store_restart_sessions(kp_coordinator_t *c, int32_t partition);

#endif
