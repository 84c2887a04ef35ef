/*
 * offsets.c — committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, DeleteGroups,
 * retention, and replay of __consumer_offsets on start.
 *
 * Records use Kafka's formats so the internal topic reads like Kafka's:
 *   key   (offset commit, version 1): int16 1 | string group | string topic | int32 partition
 *   value (version 3): int16 3 | int64 offset | int32 leader epoch | string metadata |
 *                      int64 commit timestamp
 *   a null value is a tombstone (offset deleted or expired).
 * Group metadata records (key version 2) share the topic; group_store.c writes and replays
 * them, this file only routes them there and writes their tombstones.
 * A commit is applied to the in-memory cache only after its batch is fsynced (or written, in
 * page-cache mode), so OffsetFetch never returns what a crash could take back.
 */
#include "group/group_int.h"
#include "group/group_record.h"

#include "auth/acl.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "replication/partition.h"
#include "storage/log_scan.h"
#include "storage/records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Java's String.hashCode over the group id (ASCII), as Kafka partitions groups. */
int32_t offsets_partition_for(const kp_coordinator_t *c, const char *group, size_t len)
{
    int32_t h = 0;
    for (size_t i = 0; i < len; i++) h = (int32_t)((uint32_t)h * 31u + (uint8_t)group[i]);
    int64_t a = h < 0 ? -(int64_t)h : h;
    return (int32_t)(a % c->cfg.offsets_partitions);
}

size_t offset_key(char *buf, size_t n, kp_str_t topic, int32_t partition)
{
    int len = snprintf(buf, n, "%.*s", topic.len, topic.ptr);
    if (len < 0 || (size_t)len + 5 > n) return 0;
    buf[len] = 0;
    memcpy(buf + len + 1, &partition, 4);
    return (size_t)len + 5;
}

void entry_free(offset_entry_t *e)
{
    if (!e) return;
    free(e->metadata);
    free(e);
}

void offsets_clear(group_t *g)
{
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&g->offsets, &it, NULL, NULL, &v)) entry_free(v);
    kp_hmap_free(&g->offsets);
    kp_hmap_init(&g->offsets);
}

static void put_str(kp_buf_t *b, const char *s, size_t n)
{
    uint8_t l[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    kp_buf_append(b, l, 2);
    kp_buf_append(b, s, n);
}
void encode_key(kp_buf_t *b, const char *group, kp_str_t topic, int32_t partition)
{
    b->len = 0;
    kp_buf_put_i16(b, 1);
    put_str(b, group, strlen(group));
    put_str(b, topic.ptr, (size_t)topic.len);
    kp_buf_put_i32(b, partition);
}

void encode_value(kp_buf_t *b, int64_t offset, int32_t epoch, kp_str_t metadata, int64_t ts)
{
    b->len = 0;
    kp_buf_put_i16(b, 3);
    kp_buf_put_i64(b, offset);
    kp_buf_put_i32(b, epoch);
    put_str(b, metadata.len > 0 ? metadata.ptr : "", metadata.len > 0 ? (size_t)metadata.len : 0);
    kp_buf_put_i64(b, ts);
}

int offsets_append(kp_coordinator_t *c, group_t *g, kp_batch_builder_t *bb, kp_flush_waiter_t *w)
{
    kp_partition_t *p = coord_offsets_partition(c, g->offsets_partition);
    if (!p) return -1;
    /* a pool: only into a partition this broker leads and serves (never a follower's copy) */
    if (!coord_serves(c, g->offsets_partition) || kp_partition_check_leader(p, -1))
        return KP_COMMIT_NOT_LEADER;
    kp_batch_builder_finish(bb);
    kp_batch_info_t info;
    if (kp_batch_validate(bb->buf.data, bb->buf.len, &info) != KP_BATCH_OK) return -1;
    kp_append_result_t res;
    kp_partition_append(p, bb->buf.data, bb->buf.len, &info, kp_wall_ms(), &res);
    if (res.status != KP_APPEND_OK) return -1;
    if (!w) return 0;
    if (!p->repl) { /* standalone: durable once fsynced (page cache: once written) */
        w->offset = res.last_offset;
        kp_partition_wait_flush(p, w);
        return 0;
    }
    /* a pool: as Kafka's offset commits (required acks -1), durable once the high watermark
     * covers it — every in-sync replica has it, so a failover cannot take it back; a lost
     * leadership fails w with KP_COMMIT_NOT_LEADER */
    kp_partition_wait_committed(p, res.last_offset, w);
    return 0;
}

/* ---- OffsetCommit ---- */

typedef struct commit_item {
    kp_str_t topic;
    int32_t partition;
    int64_t offset;
    int32_t epoch;
    kp_str_t metadata;
    int16_t *error;
} commit_item_t;

typedef struct commit_op {
    kp_flush_waiter_t w; /* first */
    kp_coordinator_t *c;
    kp_group_call_t *req;
    OffsetCommitResponse out;
    commit_item_t *items;
    int nitems;
    int64_t commit_ms;
    char *group_id;
    int err;
} commit_op_t;

static void commit_respond(commit_op_t *op)
{
    coord_done(op->req, (kp_group_result_t){.op = KP_GROUP_OP_COMMIT, .commit = &op->out});
}

static void commit_apply(kp_loop_t *loop, void *arg)
{
    commit_op_t *op = arg;
    kp_coordinator_t *c = op->c;
    c->pending_writes--;
    kp_str_t gid = kp_str_c(op->group_id);
    /* a pool: the partition may have moved to another coordinator meanwhile (its groups were
     * dropped here): the commit is the new coordinator's to know, the client asks it again */
    int16_t fail = op->err == KP_COMMIT_NOT_LEADER ? KERR_NOT_COORDINATOR
                   : op->err                       ? KERR_COORDINATOR_NOT_AVAILABLE
                   : !coord_serves(c, offsets_partition_for(c, gid.ptr, (size_t)gid.len))
                       ? KERR_NOT_COORDINATOR
                       : 0;
    group_t *g = fail ? NULL : coord_group_get(c, gid, 1);
    for (int i = 0; i < op->nitems; i++) {
        commit_item_t *it = &op->items[i];
        if (fail) {
            *it->error = fail;
            continue;
        }
        char key[300];
        size_t kl = offset_key(key, sizeof(key), it->topic, it->partition);
        offset_entry_t *e = kp_xcalloc(1, sizeof(*e));
        e->offset = it->offset;
        e->leader_epoch = it->epoch;
        e->metadata = coord_strdup(it->metadata);
        e->commit_ms = op->commit_ms;
        entry_free(kp_hmap_put(&g->offsets, key, kl, e));
    }
    free(op->group_id);
    commit_respond(op);
}

static void commit_flushed(kp_flush_waiter_t *w, int err)
{
    commit_op_t *op = (commit_op_t *)w;
    op->err = err;
    kp_loop_post(op->c->loop, commit_apply, op);
}

void offsets_commit(kp_coordinator_t *c, kp_group_call_t *req, OffsetCommitRequest *in)
{
    commit_op_t *op = kp_arena_calloc(req->arena, 1, sizeof(*op));
    if (!op) {
        coord_done(req, (kp_group_result_t){.op = req->op}); /* no answer */
        return;
    }
    op->c = c;
    op->req = req;
    OffsetCommitResponse_init(&op->out);
    int32_t nt = in->Topics.count > 0 ? in->Topics.count : 0, total = 0;
    op->out.Topics.count = nt;
    op->out.Topics.items =
        kp_arena_calloc(req->arena, (size_t)nt + 1, sizeof(*op->out.Topics.items));
    for (int32_t i = 0; i < nt; i++)
        total +=
            in->Topics.items[i].Partitions.count > 0 ? in->Topics.items[i].Partitions.count : 0;
    op->items = kp_arena_calloc(req->arena, (size_t)total + 1, sizeof(*op->items));
    if (!op->out.Topics.items || !op->items) {
        coord_done(req, (kp_group_result_t){.op = req->op}); /* no answer */
        return;
    }
    /* group-level checks (Kafka's order): group id, membership, generation, state */
    int16_t group_err = 0;
    group_t *g = NULL;
    if (in->GroupId.len <= 0) {
        group_err = KERR_INVALID_GROUP_ID;
    } else if ((group_err = group_access(c, req, in->GroupId, KP_OP_READ, 1)) != 0) {
        /* refused, or another team's group (the first team to commit owns it) */
    } else {
        g = coord_group_get(c, in->GroupId, 0);
        if (in->GenerationId < 0 && (!g || !g->members)) {
            /* a commit outside group management (simple consumer) */
        } else if (!g) {
            group_err = KERR_UNKNOWN_MEMBER_ID;
        } else {
            member_t *m = group_find_member(g, in->MemberId.ptr,
                                            (size_t)(in->MemberId.len > 0 ? in->MemberId.len : 0));
            if (in->GroupInstanceId.len >= 0 && m &&
                (!m->instance_id || !kp_str_eq_c(in->GroupInstanceId, m->instance_id)))
                group_err = KERR_FENCED_INSTANCE_ID;
            else if (!m)
                /* as Kafka, also for generation -1 with no member id: what an admin client's
                 * AlterConsumerGroupOffsets sends while the group has members */
                group_err = KERR_UNKNOWN_MEMBER_ID;
            else if (in->GenerationId != g->generation)
                group_err = KERR_ILLEGAL_GENERATION;
            else if (g->state == GS_COMPLETING_REBALANCE)
                /* as Kafka: PreparingRebalance still takes commits (members commit what they
                 * processed when their partitions are revoked, before rejoining) */
                group_err = KERR_REBALANCE_IN_PROGRESS;
            else
                member_touch(c, g, m);
        }
    }
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, kp_wall_ms());
    kp_buf_t key, value;
    kp_buf_init(&key);
    kp_buf_init(&value);
    int64_t now = kp_wall_ms();
    char gid[512];
    snprintf(gid, sizeof(gid), "%.*s", in->GroupId.len > 0 ? in->GroupId.len : 0,
             in->GroupId.ptr ? in->GroupId.ptr : "");
    for (int32_t i = 0; i < nt; i++) {
        const OffsetCommitRequest_OffsetCommitRequestTopic *t = &in->Topics.items[i];
        OffsetCommitResponse_OffsetCommitResponseTopic *tr = &op->out.Topics.items[i];
        tr->Name = t->Name;
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        tr->Partitions.count = np;
        tr->Partitions.items =
            kp_arena_calloc(req->arena, (size_t)np + 1, sizeof(*tr->Partitions.items));
        if (!tr->Partitions.items) {
            tr->Partitions.count = 0;
            continue;
        }
        int16_t topic_err = group_err;
        if (!topic_err && !req->may(req, KP_OP_READ, KP_RES_TOPIC, t->Name))
            topic_err = KERR_TOPIC_AUTHORIZATION_FAILED;
        struct kp_topic *topic = topic_err ? NULL : c->dir.get(c->dir.arg, t->Name);
        for (int32_t j = 0; j < np; j++) {
            const OffsetCommitRequest_OffsetCommitRequestPartition *p = &t->Partitions.items[j];
            OffsetCommitResponse_OffsetCommitResponsePartition *pr = &tr->Partitions.items[j];
            pr->PartitionIndex = p->PartitionIndex;
            if (topic_err) {
                pr->ErrorCode = topic_err;
                continue;
            }
            if (!topic || !c->dir.partition(topic, p->PartitionIndex) || t->Name.len > 249) {
                pr->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (p->CommittedMetadata.len > c->cfg.metadata_max_bytes) {
                pr->ErrorCode = 12; /* OFFSET_METADATA_TOO_LARGE */
                continue;
            }
            commit_item_t *it = &op->items[op->nitems++];
            it->topic = t->Name;
            it->partition = p->PartitionIndex;
            it->offset = p->CommittedOffset;
            it->epoch = p->CommittedLeaderEpoch;
            it->metadata = p->CommittedMetadata;
            it->error = &pr->ErrorCode;
            encode_key(&key, gid, t->Name, p->PartitionIndex);
            encode_value(&value, p->CommittedOffset, p->CommittedLeaderEpoch, p->CommittedMetadata,
                         now);
            kp_batch_builder_add(&bb, key.data, (int32_t)key.len, value.data, (int32_t)value.len,
                                 now);
        }
        c->dir.put(topic);
    }
    kp_buf_free(&key);
    kp_buf_free(&value);
    if (op->nitems == 0) {
        kp_batch_builder_free(&bb);
        commit_respond(op);
        return;
    }
    if (!g) g = coord_group_get(c, in->GroupId, 1);
    op->group_id = kp_xstrdup(gid);
    op->commit_ms = now;
    op->w.done = commit_flushed;
    c->pending_writes++;
    int arc = offsets_append(c, g, &bb, &op->w);
    if (arc < 0) {
        op->err = arc;
        commit_apply(c->loop, op);
    }
    kp_batch_builder_free(&bb);
}

/* ---- OffsetFetch ---- */

typedef OffsetFetchResponse_OffsetFetchResponseGroup fetch_group_t;
typedef OffsetFetchResponse_OffsetFetchResponseTopics fetch_topic_t;
typedef OffsetFetchResponse_OffsetFetchResponsePartitions fetch_partition_t;

/* The topics a request asks for, whichever version's structs hold them. */
typedef struct fetch_want {
    kp_str_t name;
    const int32_t *partitions;
    int32_t npartitions;
} fetch_want_t;

static void fetch_partition(group_t *g, kp_str_t topic, int32_t partition, fetch_partition_t *pr)
{
    OffsetFetchResponse_OffsetFetchResponsePartitions_init(pr);
    pr->PartitionIndex = partition;
    pr->CommittedOffset = -1;
    pr->Metadata = (kp_str_t){"", 0};
    if (!g) return;
    char key[300];
    size_t kl = offset_key(key, sizeof(key), topic, partition);
    offset_entry_t *e = kl ? kp_hmap_get(&g->offsets, key, kl) : NULL;
    if (!e) return;
    pr->CommittedOffset = e->offset;
    pr->CommittedLeaderEpoch = e->leader_epoch;
    pr->Metadata = e->metadata ? kp_str_c(e->metadata) : KP_STR_NULL;
}

/* RequireStable (v7+, KIP-447): an offset an open transaction is about to replace is not
 * answered; the consumer retries until the transaction completes. */
static void fetch_stable(kp_coordinator_t *c, kp_str_t group_id, kp_str_t topic,
                         fetch_partition_t *pr)
{
    if (!txn_offsets_pending(c, group_id, topic, pr->PartitionIndex)) return;
    pr->ErrorCode = KERR_UNSTABLE_OFFSET_COMMIT;
    pr->CommittedOffset = -1;
    pr->CommittedLeaderEpoch = -1;
    pr->Metadata = (kp_str_t){"", 0};
}

/* Every committed offset of g the caller may describe, grouped by topic. */
static void fetch_all(kp_coordinator_t *c, kp_group_call_t *req, group_t *g, kp_str_t group_id,
                      int require_stable, fetch_group_t *out)
{
    size_t n = kp_hmap_count(&g->offsets), it = 0, k = 0;
    out->Topics.items = kp_arena_calloc(req->arena, n + 1, sizeof(*out->Topics.items));
    const char *key;
    size_t kl;
    void *v;
    while (out->Topics.items && kp_hmap_next(&g->offsets, &it, &key, &kl, &v)) {
        kp_str_t topic = {key, (int32_t)strlen(key)};
        int32_t partition;
        memcpy(&partition, key + topic.len + 1, 4);
        if (!req->may(req, KP_OP_DESCRIBE, KP_RES_TOPIC, topic)) continue;
        fetch_topic_t *tr = NULL;
        for (size_t i = 0; i < k && !tr; i++)
            if (kp_str_eq(out->Topics.items[i].Name, topic)) tr = &out->Topics.items[i];
        if (!tr) {
            tr = &out->Topics.items[k++];
            tr->Name = topic;
            tr->Partitions.items =
                kp_arena_calloc(req->arena, n + 1, sizeof(*tr->Partitions.items));
            if (!tr->Partitions.items) break;
        }
        fetch_partition_t *pr = &tr->Partitions.items[tr->Partitions.count++];
        fetch_partition(g, topic, partition, pr);
        if (require_stable) fetch_stable(c, group_id, topic, pr);
    }
    out->Topics.count = out->Topics.items ? (int32_t)k : 0;
}

/* One group's offsets: the wanted topics (nwant -1: every topic the group committed). */
static void fetch_group(kp_coordinator_t *c, kp_group_call_t *req, kp_str_t group_id,
                        const fetch_want_t *want, int32_t nwant, int require_stable,
                        fetch_group_t *out)
{
    OffsetFetchResponse_OffsetFetchResponseGroup_init(out);
    out->GroupId = group_id;
    group_t *g = coord_group_get(c, group_id, 0);
    int16_t group_err = group_access(c, req, group_id, KP_OP_DESCRIBE, 0);
    if (group_err) g = NULL;
    out->ErrorCode = group_err;
    if (nwant < 0) {
        if (g) fetch_all(c, req, g, group_id, require_stable, out);
        return;
    }
    out->Topics.items = kp_arena_calloc(req->arena, (size_t)nwant + 1, sizeof(*out->Topics.items));
    out->Topics.count = out->Topics.items ? nwant : 0;
    for (int32_t i = 0; i < out->Topics.count; i++) {
        fetch_topic_t *tr = &out->Topics.items[i];
        tr->Name = want[i].name;
        int32_t np = want[i].npartitions > 0 ? want[i].npartitions : 0;
        tr->Partitions.items =
            kp_arena_calloc(req->arena, (size_t)np + 1, sizeof(*tr->Partitions.items));
        tr->Partitions.count = tr->Partitions.items ? np : 0;
        int16_t err = group_err;
        if (!err && !req->may(req, KP_OP_DESCRIBE, KP_RES_TOPIC, tr->Name))
            err = KERR_TOPIC_AUTHORIZATION_FAILED;
        for (int32_t j = 0; j < tr->Partitions.count; j++) {
            fetch_partition_t *pr = &tr->Partitions.items[j];
            fetch_partition(err ? NULL : g, tr->Name, want[i].partitions[j], pr);
            pr->ErrorCode = err;
            if (!err && require_stable) fetch_stable(c, group_id, tr->Name, pr);
        }
    }
}

/* v0-7 carry one group's answer at the top level. */
static void fetch_to_single(kp_group_call_t *req, const fetch_group_t *gr, OffsetFetchResponse *out)
{
    out->ErrorCode = gr->ErrorCode;
    out->Topics.items =
        kp_arena_calloc(req->arena, (size_t)gr->Topics.count + 1, sizeof(*out->Topics.items));
    out->Topics.count = out->Topics.items ? gr->Topics.count : 0;
    for (int32_t i = 0; i < out->Topics.count; i++) {
        const fetch_topic_t *t = &gr->Topics.items[i];
        OffsetFetchResponse_OffsetFetchResponseTopic *tr = &out->Topics.items[i];
        tr->Name = t->Name;
        tr->Partitions.items = kp_arena_calloc(req->arena, (size_t)t->Partitions.count + 1,
                                               sizeof(*tr->Partitions.items));
        tr->Partitions.count = tr->Partitions.items ? t->Partitions.count : 0;
        for (int32_t j = 0; j < tr->Partitions.count; j++) {
            const fetch_partition_t *p = &t->Partitions.items[j];
            OffsetFetchResponse_OffsetFetchResponsePartition *pr = &tr->Partitions.items[j];
            pr->PartitionIndex = p->PartitionIndex;
            pr->CommittedOffset = p->CommittedOffset;
            pr->CommittedLeaderEpoch = p->CommittedLeaderEpoch;
            pr->Metadata = p->Metadata;
            pr->ErrorCode = p->ErrorCode;
        }
    }
}

/* v0-7: one group (GroupId, Topics); v8 (KIP-709): several (Groups). RequireStable (v7+):
 * fetch_stable. */
void offsets_fetch(kp_coordinator_t *c, kp_group_call_t *req, OffsetFetchRequest *in)
{
    OffsetFetchResponse out;
    OffsetFetchResponse_init(&out);
    if (req->api_version < 8) {
        int32_t nt = in->Topics.count;
        fetch_want_t *want =
            kp_arena_calloc(req->arena, (size_t)(nt > 0 ? nt : 0) + 1, sizeof(*want));
        for (int32_t i = 0; i < nt && want; i++) {
            want[i].name = in->Topics.items[i].Name;
            want[i].partitions = in->Topics.items[i].PartitionIndexes.items;
            want[i].npartitions = in->Topics.items[i].PartitionIndexes.count;
        }
        fetch_group_t gr;
        fetch_group(c, req, in->GroupId, want, want ? nt : 0, in->RequireStable, &gr);
        fetch_to_single(req, &gr, &out);
    } else {
        int32_t ng = in->Groups.count > 0 ? in->Groups.count : 0;
        out.Groups.items = kp_arena_calloc(req->arena, (size_t)ng + 1, sizeof(*out.Groups.items));
        out.Groups.count = out.Groups.items ? ng : 0;
        for (int32_t i = 0; i < out.Groups.count; i++) {
            const OffsetFetchRequest_OffsetFetchRequestGroup *rg = &in->Groups.items[i];
            int32_t nt = rg->Topics.count;
            fetch_want_t *want =
                kp_arena_calloc(req->arena, (size_t)(nt > 0 ? nt : 0) + 1, sizeof(*want));
            for (int32_t j = 0; j < nt && want; j++) {
                want[j].name = rg->Topics.items[j].Name;
                want[j].partitions = rg->Topics.items[j].PartitionIndexes.items;
                want[j].npartitions = rg->Topics.items[j].PartitionIndexes.count;
            }
            fetch_group(c, req, rg->GroupId, want, want ? nt : 0, in->RequireStable,
                        &out.Groups.items[i]);
        }
    }
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_FETCH, .fetch = &out});
}

/* ---- group metadata tombstone (the record itself: group_store.c) ---- */

static void tombstone_group(kp_coordinator_t *c, group_t *g)
{
    kp_buf_t key;
    kp_buf_init(&key);
    kp_group_record_key_encode(&key, g->id);
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, kp_wall_ms());
    kp_batch_builder_add(&bb, key.data, (int32_t)key.len, NULL, -1, bb.base_timestamp);
    if (offsets_append(c, g, &bb, NULL) < 0)
        kp_warn("group", "group %s: could not write the group tombstone", g->id);
    kp_batch_builder_free(&bb);
    kp_buf_free(&key);
}

/* ---- deletion ---- */

/* Writes tombstones for the given keys of g and drops them from the cache. No waiting: a
 * tombstone lost to a crash only brings back an offset the user deleted. */
static void tombstone(kp_coordinator_t *c, group_t *g, const char **keys, const size_t *lens, int n)
{
    if (n == 0) return;
    kp_batch_builder_t bb;
    int64_t now = kp_wall_ms();
    kp_batch_builder_init(&bb, now);
    kp_buf_t kb;
    kp_buf_init(&kb);
    for (int i = 0; i < n; i++) {
        kp_str_t topic = {keys[i], (int32_t)strlen(keys[i])};
        int32_t partition;
        memcpy(&partition, keys[i] + topic.len + 1, 4);
        encode_key(&kb, g->id, topic, partition);
        kp_batch_builder_add(&bb, kb.data, (int32_t)kb.len, NULL, -1, now);
    }
    if (offsets_append(c, g, &bb, NULL) < 0)
        kp_warn("group", "group %s: could not write offset tombstones", g->id);
    kp_buf_free(&kb);
    kp_batch_builder_free(&bb);
    for (int i = 0; i < n; i++) entry_free(kp_hmap_del(&g->offsets, keys[i], lens[i]));
}

static void tombstone_all(kp_coordinator_t *c, group_t *g)
{
    size_t n = kp_hmap_count(&g->offsets), it = 0;
    const char **keys = kp_xcalloc(n + 1, sizeof(char *));
    size_t *lens = kp_xcalloc(n + 1, sizeof(size_t));
    char **copies = kp_xcalloc(n + 1, sizeof(char *));
    const char *k;
    size_t kl;
    int i = 0;
    while (kp_hmap_next(&g->offsets, &it, &k, &kl, NULL)) {
        copies[i] = kp_xmalloc(kl);
        memcpy(copies[i], k, kl);
        keys[i] = copies[i];
        lens[i++] = kl;
    }
    tombstone(c, g, keys, lens, i);
    for (int j = 0; j < i; j++) free(copies[j]);
    free(copies);
    free(keys);
    free(lens);
}

/* Sessions expire by a timer on the coordinator's loop, and the loop runs the requests of a
 * wake-up before its due timers: on a busy machine a delete that came after a member's
 * session deadline found the member still there (NON_EMPTY_GROUP) because the timer had not
 * run yet. A delete first expires whatever is due, so "empty" is judged at its own time. */
static void expire_due(kp_coordinator_t *c, group_t *g)
{
    if (g && g->state != GS_DEAD) membership_tick(c, g, coord_now_ms(c));
}

void offsets_delete_groups(kp_coordinator_t *c, kp_group_call_t *req, DeleteGroupsRequest *in)
{
    DeleteGroupsResponse out;
    DeleteGroupsResponse_init(&out);
    int32_t n = in->GroupsNames.count > 0 ? in->GroupsNames.count : 0;
    out.Results.items = kp_arena_calloc(req->arena, (size_t)n + 1, sizeof(*out.Results.items));
    out.Results.count = out.Results.items ? n : 0;
    for (int32_t i = 0; i < out.Results.count; i++) {
        DeleteGroupsResponse_DeletableGroupResult *r = &out.Results.items[i];
        r->GroupId = in->GroupsNames.items[i];
        group_t *g = coord_group_get(c, r->GroupId, 0);
        r->ErrorCode = group_access(c, req, r->GroupId, KP_OP_DELETE, 0);
        if (r->ErrorCode) continue;
        expire_due(c, g);
        if (g && g->state != GS_DEAD && (g->members || kp_hmap_count(&g->pending))) {
            r->ErrorCode = KERR_NON_EMPTY_GROUP;
            continue;
        }
        /* deleting a group releases its name: the next team to use it owns it */
        int released = group_owner_release(c, r->GroupId);
        if (released < 0) {
            r->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
        } else if (!g || g->state == GS_DEAD) {
            /* gone already (its offsets expired): releasing its owner is what was asked */
            r->ErrorCode = released ? 0 : KERR_GROUP_ID_NOT_FOUND;
        } else {
            tombstone_all(c, g);
            tombstone_group(c, g);
            kp_info("group", "deleted group %s", g->id);
            coord_group_remove(c, g);
        }
    }
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_DELETE, .del = &out});
}

void offsets_delete(kp_coordinator_t *c, kp_group_call_t *req, OffsetDeleteRequest *in)
{
    OffsetDeleteResponse out;
    OffsetDeleteResponse_init(&out);
    group_t *g = coord_group_get(c, in->GroupId, 0);
    int32_t nt = in->Topics.count > 0 ? in->Topics.count : 0;
    out.ErrorCode = group_access(c, req, in->GroupId, KP_OP_DELETE, 0);
    if (!out.ErrorCode) expire_due(c, g); /* "subscribed" is judged at this request's time */
    if (out.ErrorCode) {
        nt = 0;
    } else if (!g || g->state == GS_DEAD) {
        out.ErrorCode = KERR_GROUP_ID_NOT_FOUND;
        nt = 0;
    }
    out.Topics.items = kp_arena_calloc(req->arena, (size_t)nt + 1, sizeof(*out.Topics.items));
    out.Topics.count = out.Topics.items ? nt : 0;
    for (int32_t i = 0; i < out.Topics.count; i++) {
        const OffsetDeleteRequest_OffsetDeleteRequestTopic *t = &in->Topics.items[i];
        OffsetDeleteResponse_OffsetDeleteResponseTopic *tr = &out.Topics.items[i];
        tr->Name = t->Name;
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        tr->Partitions.items =
            kp_arena_calloc(req->arena, (size_t)np + 1, sizeof(*tr->Partitions.items));
        tr->Partitions.count = tr->Partitions.items ? np : 0;
        int subscribed =
            group_subscribed_to(g, t->Name.ptr, (size_t)(t->Name.len > 0 ? t->Name.len : 0));
        int allowed = req->may(req, KP_OP_READ, KP_RES_TOPIC, t->Name);
        for (int32_t j = 0; j < tr->Partitions.count; j++) {
            OffsetDeleteResponse_OffsetDeleteResponsePartition *pr = &tr->Partitions.items[j];
            pr->PartitionIndex = t->Partitions.items[j].PartitionIndex;
            if (!allowed) {
                pr->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (subscribed) {
                pr->ErrorCode = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
                continue;
            }
            char key[300];
            size_t kl = offset_key(key, sizeof(key), t->Name, pr->PartitionIndex);
            if (kl && kp_hmap_get(&g->offsets, key, kl)) {
                const char *keys[1] = {key};
                size_t lens[1] = {kl};
                tombstone(c, g, keys, lens, 1);
            }
        }
    }
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_OFFSET_DELETE, .offset_delete = &out});
}

/* ---- retention ---- */

void offsets_expire(kp_coordinator_t *c, int64_t now)
{
    size_t n = kp_hmap_count(&c->groups), it = 0, k = 0;
    group_t **list = kp_xmalloc((n + 1) * sizeof(*list));
    void *v;
    while (kp_hmap_next(&c->groups, &it, NULL, NULL, &v)) list[k++] = v;
    int64_t retention = c->cfg.offsets_retention_ms;
    for (size_t i = 0; i < k; i++) {
        group_t *g = list[i];
        if (g->members || kp_hmap_count(&g->pending)) continue;
        /* Kafka (KIP-211): offsets of an empty group expire together, `retention` after its
         * last commit; for standalone commits each offset expires on its own */
        size_t cnt = kp_hmap_count(&g->offsets), oit = 0;
        const char **keys = kp_xcalloc(cnt + 1, sizeof(char *));
        size_t *lens = kp_xcalloc(cnt + 1, sizeof(size_t));
        char **copies = kp_xcalloc(cnt + 1, sizeof(char *));
        int64_t newest = 0;
        const char *key;
        size_t kl;
        void *ev;
        while (kp_hmap_next(&g->offsets, &oit, &key, &kl, &ev)) {
            offset_entry_t *e = ev;
            if (e->commit_ms > newest) newest = e->commit_ms;
        }
        int m = 0;
        oit = 0;
        while (kp_hmap_next(&g->offsets, &oit, &key, &kl, &ev)) {
            offset_entry_t *e = ev;
            int64_t basis = g->protocol_type ? newest : e->commit_ms;
            if (basis + retention > now) continue;
            copies[m] = kp_xmalloc(kl);
            memcpy(copies[m], key, kl);
            keys[m] = copies[m];
            lens[m++] = kl;
        }
        if (m) {
            kp_info("group", "group %s: expiring %d committed offsets (offsets.retention.minutes)",
                    g->id, m);
            tombstone(c, g, keys, lens, m);
        }
        for (int j = 0; j < m; j++) free(copies[j]);
        free(copies);
        free(keys);
        free(lens);
        if (kp_hmap_count(&g->offsets) == 0 && g->state == GS_EMPTY) {
            tombstone_group(c, g);
            coord_group_remove(c, g);
        }
    }
    free(list);
}

/* ---- replay ---- */

typedef struct load_ctx {
    kp_coordinator_t *c;
    int64_t records;
    int64_t skipped; /* records this broker cannot read: one warning for all of them */
} load_ctx_t;

static int load_batch(const uint8_t *batch, size_t len, void *arg)
{
    load_ctx_t *lc = arg;
    if (txn_offsets_replay(lc->c, batch, len)) return 0; /* transactional (txn_offsets.c) */
    kp_records_iter_t it;
    if (kp_records_begin(&it, batch, len) < 0) return 0; /* not ours (compressed): skip */
    kp_record_t rec;
    while (kp_records_next(&it, &rec) == 1) {
        kp_rd_t r;
        kp_rd_init(&r, rec.key, (size_t)(rec.keylen > 0 ? rec.keylen : 0));
        int16_t kv = kp_rd_i16(&r);
        kp_str_t group = kp_rd_string(&r, 0, 0);
        if (r.err) {
            lc->skipped++;
            continue;
        }
        if (kv == KP_GROUP_RECORD_KEY_VERSION) {
            group_store_replay(lc->c, group, rec.valuelen >= 0 ? rec.value : NULL, rec.valuelen,
                               rec.offset);
            continue;
        }
        if (kv != 0 && kv != 1) {
            lc->skipped++;
            continue;
        }
        kp_str_t topic = kp_rd_string(&r, 0, 0);
        int32_t partition = kp_rd_i32(&r);
        if (r.err || topic.len > 249) {
            lc->skipped++;
            continue;
        }
        char key[300];
        size_t kl = offset_key(key, sizeof(key), topic, partition);
        if (!kl) continue;
        group_t *g = coord_group_get(lc->c, group, rec.valuelen >= 0);
        if (!g) continue;
        if (rec.valuelen < 0) {
            entry_free(kp_hmap_del(&g->offsets, key, kl));
            continue;
        }
        kp_rd_t v;
        kp_rd_init(&v, rec.value, (size_t)rec.valuelen);
        int16_t vv = kp_rd_i16(&v);
        offset_entry_t e = {.leader_epoch = -1};
        e.offset = kp_rd_i64(&v);
        if (vv >= 3) e.leader_epoch = kp_rd_i32(&v);
        kp_str_t meta = kp_rd_string(&v, 0, 1);
        e.commit_ms = kp_rd_i64(&v);
        if (v.err || vv < 0 || vv > 3) {
            lc->skipped++;
            continue;
        }
        offset_entry_t *ne = kp_xmalloc(sizeof(*ne));
        *ne = e;
        ne->metadata = coord_strdup(meta);
        entry_free(kp_hmap_put(&g->offsets, key, kl, ne));
        lc->records++;
    }
    return 0;
}

/* Groups of partition p (every partition when p < 0) whose offsets were all deleted. */
static void drop_empty_groups(kp_coordinator_t *c, int32_t p)
{
    size_t n = kp_hmap_count(&c->groups), it = 0, k = 0;
    group_t **list = kp_xmalloc((n + 1) * sizeof(*list));
    void *v;
    while (kp_hmap_next(&c->groups, &it, NULL, NULL, &v)) list[k++] = v;
    for (size_t i = 0; i < k; i++)
        if ((p < 0 || list[i]->offsets_partition == p) && kp_hmap_count(&list[i]->offsets) == 0 &&
            !list[i]->has_metadata)
            coord_group_remove(c, list[i]);
    free(list);
}

int offsets_load(kp_coordinator_t *c, char *err, size_t errlen)
{
    load_ctx_t lc = {c, 0, 0};
    for (int32_t p = 0; p < c->dir.npartitions(c->offsets_topic); p++) {
        kp_partition_t *part = coord_offsets_partition(c, p);
        if (kp_partition_scan(part, 0, load_batch, &lc) < 0) {
            snprintf(err, errlen, "cannot read __consumer_offsets-%d", p);
            return -1;
        }
    }
    if (lc.skipped)
        kp_warn("group", "skipped %lld records of __consumer_offsets this broker cannot read",
                (long long)lc.skipped);
    drop_empty_groups(c, -1);
    return 0;
}

int offsets_load_partition(kp_coordinator_t *c, int32_t p)
{
    load_ctx_t lc = {c, 0, 0};
    kp_partition_t *part = coord_offsets_partition(c, p);
    if (!part || kp_partition_scan(part, 0, load_batch, &lc) < 0) return -1;
    if (lc.skipped)
        kp_warn("group", "skipped %lld records of __consumer_offsets-%d this broker cannot read",
                (long long)lc.skipped, p);
    drop_empty_groups(c, p);
    return 0;
}
