/*
 * txn_offsets.c — TxnOffsetCommit (offsets committed inside a transaction) and their fate.
 *
 * As Kafka's GroupMetadataManager: the offsets are written to the group's __consumer_offsets
 * partition as a transactional batch of the producer (its id and epoch, no sequence), in the
 * usual offset commit record format, and are kept pending per producer, invisible to
 * OffsetFetch. The transaction coordinator writes the COMMIT or ABORT marker into that
 * partition and then calls kp_coordinator_txn_complete: a commit applies the pending offsets,
 * an abort drops them. Replay does the same from the log: a transactional batch makes
 * offsets pending, a marker applies or drops them; offsets still pending after replay wait
 * for the marker the transaction coordinator writes when it completes the transaction.
 *
 * @locality: coordinator thread (replay: the starting thread).
 */
#include "group/group_int.h"
#include "replication/partition.h"

#include "auth/acl.h"
#include "core/clock.h"
#include "core/logging.h"
#include "storage/txn_index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending_offset {
    char *group;
    char key[300];
    size_t keylen;
    offset_entry_t *entry;
} pending_offset_t;

typedef struct pending_list {
    pending_offset_t *items;
    int n, cap;
} pending_list_t;

static void pending_add(kp_coordinator_t *c, int64_t pid, const char *group, kp_str_t topic,
                        int32_t partition, offset_entry_t *e)
{
    pending_list_t *l = kp_hmap_get(&c->txn_pending, &pid, sizeof(pid));
    if (!l) {
        l = kp_xcalloc(1, sizeof(*l));
        kp_hmap_put(&c->txn_pending, &pid, sizeof(pid), l);
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = kp_xrealloc(l->items, (size_t)l->cap * sizeof(*l->items));
    }
    pending_offset_t *po = &l->items[l->n];
    po->keylen = offset_key(po->key, sizeof(po->key), topic, partition);
    if (!po->keylen) {
        entry_free(e);
        return;
    }
    po->group = kp_xstrdup(group);
    po->entry = e;
    l->n++;
}

int txn_offsets_pending(kp_coordinator_t *c, kp_str_t group, kp_str_t topic, int32_t partition)
{
    char key[300];
    size_t kl = offset_key(key, sizeof(key), topic, partition);
    if (!kl) return 0;
    size_t it = 0;
    const char *pid;
    size_t pidlen;
    void *v;
    while (kp_hmap_next(&c->txn_pending, &it, &pid, &pidlen, &v)) {
        const pending_list_t *l = v;
        for (int i = 0; i < l->n; i++) {
            const pending_offset_t *po = &l->items[i];
            if (po->keylen == kl && !memcmp(po->key, key, kl) &&
                kp_str_eq(kp_str_c(po->group), group))
                return 1;
        }
    }
    return 0;
}

void txn_offsets_complete(kp_coordinator_t *c, int64_t pid, int commit)
{
    pending_list_t *l = kp_hmap_del(&c->txn_pending, &pid, sizeof(pid));
    if (!l) return;
    for (int i = 0; i < l->n; i++) {
        pending_offset_t *po = &l->items[i];
        if (commit) {
            group_t *g = coord_group_get(c, kp_str_c(po->group), 1);
            entry_free(kp_hmap_put(&g->offsets, po->key, po->keylen, po->entry));
        } else {
            entry_free(po->entry);
        }
        free(po->group);
    }
    free(l->items);
    free(l);
}

void txn_offsets_free(kp_coordinator_t *c)
{
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&c->txn_pending, &it, NULL, NULL, &v)) {
        pending_list_t *l = v;
        for (int i = 0; i < l->n; i++) {
            entry_free(l->items[i].entry);
            free(l->items[i].group);
        }
        free(l->items);
        free(l);
    }
    kp_hmap_free(&c->txn_pending);
}

/* ---- the transaction coordinator's call ---- */

typedef struct complete_task {
    kp_coordinator_t *c;
    int64_t pid;
    int commit;
    void (*done)(void *arg);
    void *arg;
} complete_task_t;

static void complete_on_loop(kp_loop_t *loop, void *arg)
{
    complete_task_t *t = arg;
    txn_offsets_complete(t->c, t->pid, t->commit);
    t->done(t->arg);
    free(t);
}

void kp_coordinator_txn_complete(kp_coordinator_t *c, int64_t producer_id, int commit,
                                 void (*done)(void *arg), void *arg)
{
    complete_task_t *t = kp_xmalloc(sizeof(*t));
    *t = (complete_task_t){c, producer_id, commit, done, arg};
    kp_loop_post(c->loop, complete_on_loop, t);
}

/* ---- replay ---- */

int txn_offsets_replay(kp_coordinator_t *c, const uint8_t *batch, size_t len)
{
    if (len < KP_BATCH_HEADER_BYTES) return 0;
    kp_batch_info_t info;
    kp_batch_parse_header(batch, &info);
    if (!(info.attributes & (KP_BATCH_ATTR_TRANSACTIONAL | KP_BATCH_ATTR_CONTROL))) return 0;
    if (info.attributes & KP_BATCH_ATTR_CONTROL) {
        int16_t type;
        int32_t cepoch;
        if (kp_control_batch_parse(batch, len, &type, &cepoch) == 0)
            txn_offsets_complete(c, info.producer_id, type == KP_CONTROL_COMMIT);
        return 1;
    }
    kp_records_iter_t it;
    if (kp_records_begin(&it, batch, len) < 0) return 1;
    kp_record_t rec;
    while (kp_records_next(&it, &rec) == 1) {
        if (rec.keylen < 0 || rec.valuelen < 0) continue;
        kp_rd_t r;
        kp_rd_init(&r, rec.key, (size_t)rec.keylen);
        int16_t kv = kp_rd_i16(&r);
        kp_str_t group = kp_rd_string(&r, 0, 0);
        kp_str_t topic = kp_rd_string(&r, 0, 0);
        int32_t partition = kp_rd_i32(&r);
        kp_rd_t v;
        kp_rd_init(&v, rec.value, (size_t)rec.valuelen);
        int16_t vv = kp_rd_i16(&v);
        offset_entry_t e = {.leader_epoch = -1};
        e.offset = kp_rd_i64(&v);
        if (vv >= 3) e.leader_epoch = kp_rd_i32(&v);
        kp_str_t meta = kp_rd_string(&v, 0, 1);
        e.commit_ms = kp_rd_i64(&v);
        if (r.err || v.err || (kv != 0 && kv != 1) || vv < 0 || vv > 3 || topic.len > 249 ||
            group.len <= 0)
            continue;
        offset_entry_t *ne = kp_xmalloc(sizeof(*ne));
        *ne = e;
        ne->metadata = coord_strdup(meta);
        char gid[512];
        snprintf(gid, sizeof(gid), "%.*s", group.len, group.ptr);
        pending_add(c, info.producer_id, gid, topic, partition, ne);
    }
    return 1;
}

/* ---- TxnOffsetCommit ---- */

typedef struct item {
    kp_str_t topic;
    int32_t partition;
    int64_t offset;
    int32_t epoch;
    kp_str_t metadata;
    int16_t *error;
} item_t;

typedef struct txn_commit_op {
    kp_flush_waiter_t w; /* first */
    kp_coordinator_t *c;
    kp_group_call_t *req;
    TxnOffsetCommitResponse out;
    item_t *items;
    int nitems;
    int64_t pid, commit_ms;
    char gid[512];
    int err;
} txn_commit_op_t;

static void respond(txn_commit_op_t *op)
{
    coord_done(op->req, (kp_group_result_t){.op = KP_GROUP_OP_TXN_COMMIT, .txn_commit = &op->out});
}

static void fail_items(txn_commit_op_t *op, int16_t err)
{
    for (int i = 0; i < op->nitems; i++) *op->items[i].error = err;
}

static void applied(kp_loop_t *loop, void *arg)
{
    txn_commit_op_t *op = arg;
    kp_coordinator_t *c = op->c;
    c->pending_writes--;
    if (op->err) {
        fail_items(op, KERR_COORDINATOR_NOT_AVAILABLE);
    } else {
        for (int i = 0; i < op->nitems; i++) {
            item_t *it = &op->items[i];
            offset_entry_t *e = kp_xcalloc(1, sizeof(*e));
            e->offset = it->offset;
            e->leader_epoch = it->epoch;
            e->metadata = coord_strdup(it->metadata);
            e->commit_ms = op->commit_ms;
            pending_add(c, op->pid, op->gid, it->topic, it->partition, e);
        }
    }
    respond(op);
}

static void flushed(kp_flush_waiter_t *w, int err)
{
    txn_commit_op_t *op = (txn_commit_op_t *)w;
    op->err = err;
    kp_loop_post(op->c->loop, applied, op);
}

/* TxnOffsetCommit v3+ (KIP-447): a producer that names its consumer's generation, member or
 * instance id is checked against the group as Kafka's validateOffsetCommit checks
 * transactional commits: the static member of the instance id must be that member
 * (FENCED_INSTANCE_ID) and exist (UNKNOWN_MEMBER_ID), the member must belong to the group
 * (UNKNOWN_MEMBER_ID; also for an unknown group) and the generation be the group's
 * (ILLEGAL_GENERATION). No REBALANCE_IN_PROGRESS: a member commits what it processed. Older
 * versions, and v3 without them (generation -1, no member), are not checked. */
static int16_t txn_member_check(kp_coordinator_t *c, const TxnOffsetCommitRequest *in)
{
    if (in->GenerationId < 0 && in->MemberId.len <= 0 && in->GroupInstanceId.len < 0) return 0;
    group_t *g = coord_group_get(c, in->GroupId, 0);
    if (!g) return KERR_UNKNOWN_MEMBER_ID;
    if (in->GroupInstanceId.len >= 0) {
        member_t *stat = NULL;
        for (member_t *m = g->members; m && !stat; m = m->next)
            if (m->instance_id && kp_str_eq_c(in->GroupInstanceId, m->instance_id)) stat = m;
        if (!stat) return KERR_UNKNOWN_MEMBER_ID;
        if (!kp_str_eq_c(in->MemberId, stat->id)) return KERR_FENCED_INSTANCE_ID;
    }
    if (!group_find_member(g, in->MemberId.ptr,
                           (size_t)(in->MemberId.len > 0 ? in->MemberId.len : 0)))
        return KERR_UNKNOWN_MEMBER_ID;
    if (in->GenerationId != g->generation) return KERR_ILLEGAL_GENERATION;
    return 0;
}

void txn_offsets_commit(kp_coordinator_t *c, kp_group_call_t *req, TxnOffsetCommitRequest *in)
{
    txn_commit_op_t *op = kp_arena_calloc(req->arena, 1, sizeof(*op));
    int32_t nt = in->Topics.count > 0 ? in->Topics.count : 0, total = 0;
    for (int32_t i = 0; i < nt; i++)
        total +=
            in->Topics.items[i].Partitions.count > 0 ? in->Topics.items[i].Partitions.count : 0;
    if (op) {
        op->out.Topics.items =
            kp_arena_calloc(req->arena, (size_t)nt + 1, sizeof(*op->out.Topics.items));
        op->items = kp_arena_calloc(req->arena, (size_t)total + 1, sizeof(*op->items));
    }
    if (!op || !op->out.Topics.items || !op->items) {
        coord_done(req, (kp_group_result_t){.op = req->op}); /* no answer */
        return;
    }
    op->c = c;
    op->req = req;
    op->pid = in->ProducerId;
    op->out.Topics.count = nt;
    int16_t group_err = 0;
    if (in->GroupId.len <= 0)
        group_err = KERR_INVALID_GROUP_ID;
    else /* READ on the group, and the group's owner (group_owner.c), as OffsetCommit */
        group_err = group_access(c, req, in->GroupId, KP_OP_READ, 1);
    if (!group_err) group_err = txn_member_check(c, in);
    snprintf(op->gid, sizeof(op->gid), "%.*s", in->GroupId.len > 0 ? in->GroupId.len : 0,
             in->GroupId.ptr ? in->GroupId.ptr : "");
    int64_t now = kp_wall_ms();
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, now);
    kp_buf_t key, value;
    kp_buf_init(&key);
    kp_buf_init(&value);
    for (int32_t i = 0; i < nt; i++) {
        const TxnOffsetCommitRequest_TxnOffsetCommitRequestTopic *t = &in->Topics.items[i];
        TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic *tr = &op->out.Topics.items[i];
        tr->Name = t->Name;
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        tr->Partitions.items =
            kp_arena_calloc(req->arena, (size_t)np + 1, sizeof(*tr->Partitions.items));
        if (!tr->Partitions.items) continue;
        tr->Partitions.count = np;
        int16_t topic_err = group_err;
        if (!topic_err && !req->may(req, KP_OP_READ, KP_RES_TOPIC, t->Name))
            topic_err = KERR_TOPIC_AUTHORIZATION_FAILED;
        struct kp_topic *topic = topic_err ? NULL : c->dir.get(c->dir.arg, t->Name);
        for (int32_t j = 0; j < np; j++) {
            const TxnOffsetCommitRequest_TxnOffsetCommitRequestPartition *p =
                &t->Partitions.items[j];
            TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition *pr = &tr->Partitions.items[j];
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
            item_t *it = &op->items[op->nitems++];
            *it = (item_t){t->Name,
                           p->PartitionIndex,
                           p->CommittedOffset,
                           p->CommittedLeaderEpoch,
                           p->CommittedMetadata,
                           &pr->ErrorCode};
            encode_key(&key, op->gid, t->Name, p->PartitionIndex);
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
        respond(op);
        return;
    }
    kp_batch_builder_finish(&bb);
    kp_batch_set_producer(bb.buf.data, bb.buf.len, KP_BATCH_ATTR_TRANSACTIONAL, in->ProducerId,
                          in->ProducerEpoch, -1);
    int32_t part = offsets_partition_for(c, op->gid, strlen(op->gid));
    kp_partition_t *p = coord_offsets_partition(c, part);
    kp_batch_info_t info;
    kp_append_result_t res;
    res.status = KP_APPEND_STORAGE_ERROR;
    /* a pool: only into a partition this broker leads and serves (group_access checked it;
     * leadership may have moved since) */
    if (p && (!coord_serves(c, part) || kp_partition_check_leader(p, -1))) p = NULL;
    if (p && kp_batch_validate(bb.buf.data, bb.buf.len, &info) == KP_BATCH_OK)
        kp_partition_append(p, bb.buf.data, bb.buf.len, &info, now, &res);
    kp_batch_builder_free(&bb);
    if (res.status != KP_APPEND_OK) {
        /* a lower epoch: the producer was fenced (the handler's version mapping is not
         * needed here: TxnOffsetCommit v0-1 take INVALID_PRODUCER_EPOCH, v2 PRODUCER_FENCED) */
        fail_items(
            op, res.status == KP_APPEND_INVALID_EPOCH
                    ? (req->api_version >= 2 ? KERR_PRODUCER_FENCED : KERR_INVALID_PRODUCER_EPOCH)
                    : KERR_COORDINATOR_NOT_AVAILABLE);
        respond(op);
        return;
    }
    op->commit_ms = now;
    op->w.offset = res.last_offset;
    op->w.done = flushed;
    c->pending_writes++;
    if (p->repl) /* a pool: answered once every in-sync replica has it (required acks -1) */
        kp_partition_wait_committed(p, res.last_offset, &op->w);
    else
        kp_partition_wait_flush(p, &op->w);
}
