/*
 * handle_txn.c — the network side of transactions (SPEC 12): decode, authorize (the
 * TransactionalId resource as in Kafka: WRITE to use an id, DESCRIBE to find or describe it),
 * hand a typed op to the transaction coordinator (txn/txn_coordinator.h), encode its result
 * back on the request's loop. WriteTxnMarkers and DescribeProducers go to storage directly.
 *
 * PRODUCER_FENCED is answered only at the versions that know it; older ones get
 * INVALID_PRODUCER_EPOCH, as Kafka's KafkaApis does (InitProducerId < 4, AddPartitionsToTxn,
 * AddOffsetsToTxn and EndTxn < 2).
 */
#include "auth/acl.h"
#include "broker/request.h"
#include "core/clock.h"
#include "core/logging.h"
#include "group/coordinator.h"
#include "kp_msgs.h"
#include "replication/partition.h"
#include "storage/txn_index.h"
#include "txn/txn_coordinator.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define OPERATION_NOT_ATTEMPTED 55

typedef struct txn_call {
    kp_txn_op_t op; /* first */
    kp_req_t *req;
    void *in;
    int remaining; /* DescribeTransactions: ops still out (coordinator thread) */
    struct txn_call *parent;
} txn_call_t;

static int16_t fenced_for(int16_t err, int16_t version, int16_t first_version_knowing)
{
    return err == KERR_PRODUCER_FENCED && version < first_version_knowing
               ? KERR_INVALID_PRODUCER_EPOCH
               : err;
}

static void respond_on_loop(kp_loop_t *loop, void *arg);

static void op_done(kp_txn_op_t *op)
{
    txn_call_t *call = (txn_call_t *)op;
    if (call->parent) {
        if (--call->parent->remaining > 0) return;
        call = call->parent;
    }
    kp_loop_post(call->req->sess->loop, respond_on_loop, call);
}

static txn_call_t *call_new(kp_req_t *req, kp_txn_op_kind_t kind, void *in)
{
    txn_call_t *call = kp_req_alloc(req, sizeof(*call));
    if (!call) return NULL;
    call->op.kind = kind;
    call->op.done = op_done;
    call->op.arena = &req->arena;
    call->req = req;
    call->in = in;
    return call;
}

static int16_t simple_error(kp_req_t *req, int16_t err)
{
    return fenced_for(err, req->api_version, req->api_key == KP_API_INIT_PRODUCER_ID ? 4 : 2);
}

typedef struct apt_req apt_req_t;
static void respond_add_partitions(kp_req_t *req, apt_req_t *ar);

static void respond_describe(kp_req_t *req, DescribeTransactionsRequest *in, txn_call_t *subs);

static void respond_list(kp_req_t *req, ListTransactionsRequest *in, kp_txn_op_t *op);

static void respond_on_loop(kp_loop_t *loop, void *arg)
{
    txn_call_t *call = arg;
    kp_req_t *req = call->req;
    kp_txn_op_t *op = &call->op;
    switch (op->kind) {
    case KP_TXN_OP_INIT: {
        InitProducerIdResponse out;
        InitProducerIdResponse_init(&out);
        out.ErrorCode = simple_error(req, op->error);
        if (!op->error) {
            out.ProducerId = op->record.producer_id;
            out.ProducerEpoch = op->record.producer_epoch;
        }
        kp_req_begin_response(req);
        InitProducerIdResponse_encode(&req->resp, req->api_version, &out);
        kp_req_finish(req);
        return;
    }
    case KP_TXN_OP_ADD_PARTITIONS: /* the request's parent call (apt_req_t) */
    case KP_TXN_OP_VERIFY:
        respond_add_partitions(req, call->in);
        return;
    case KP_TXN_OP_ADD_OFFSETS: {
        AddOffsetsToTxnResponse out;
        AddOffsetsToTxnResponse_init(&out);
        out.ErrorCode = simple_error(req, op->error);
        kp_req_begin_response(req);
        AddOffsetsToTxnResponse_encode(&req->resp, req->api_version, &out);
        kp_req_finish(req);
        return;
    }
    case KP_TXN_OP_END: {
        EndTxnResponse out;
        EndTxnResponse_init(&out);
        out.ErrorCode = simple_error(req, op->error);
        kp_req_begin_response(req);
        EndTxnResponse_encode(&req->resp, req->api_version, &out);
        kp_req_finish(req);
        return;
    }
    case KP_TXN_OP_DESCRIBE:
        respond_describe(req, call->in, call + 1);
        return;
    case KP_TXN_OP_LIST:
        respond_list(req, call->in, op);
        return;
    }
}

static kp_txn_coord_t *coord(kp_req_t *req)
{
    return req->sess->broker->txn_coordinator;
}

/* ---- InitProducerId with a transactional id (handle_admin.c hands it here) ---- */

int kp_handle_init_producer_id_txn(kp_req_t *req, InitProducerIdRequest *in)
{
    txn_call_t *call = call_new(req, KP_TXN_OP_INIT, in);
    if (!call) return -1;
    if (!kp_req_authorize(req, KP_OP_WRITE, KP_RES_TRANSACTIONAL_ID, in->TransactionalId))
        call->op.error = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    else if (in->TransactionalId.len == 0) /* as Kafka: an empty id is not a null one */
        call->op.error = KERR_INVALID_REQUEST;
    else if ((in->ProducerId == -1) != (in->ProducerEpoch == -1)) /* v3+: both or neither */
        call->op.error = KERR_INVALID_REQUEST;
    if (call->op.error) {
        respond_on_loop(req->sess->loop, call);
        return 0;
    }
    call->op.id = in->TransactionalId;
    call->op.timeout_ms = in->TransactionTimeoutMs;
    call->op.producer_id = in->ProducerId < 0 ? -1 : in->ProducerId; /* -1 below v3 */
    call->op.epoch = in->ProducerEpoch;
    kp_txn_submit(coord(req), &call->op);
    return 0;
}

/* ---- AddPartitionsToTxn ---- */

/* One transaction of an AddPartitionsToTxn request: the only one below v4; any number at
 * v4, which is broker to broker (KIP-890 part 1: a partition leader adds, or with VerifyOnly
 * checks, the partitions of transactions whose batches it is about to append). */
typedef struct apt_txn {
    txn_call_t call; /* first: the coordinator's op (topics, verified point below) */
    kp_txn_record_topic_t *topics;
    int32_t ntopics, npartitions;
    int16_t *errs; /* per partition in request order: its own error, 0 if none */
    int local;     /* decided here (errs hold it): not submitted */
} apt_txn_t;

struct apt_req {
    txn_call_t call; /* first: the parent, answered when its last child is */
    apt_txn_t *txns;
    int32_t ntxns;
    int16_t error; /* v4: the top-level error (CLUSTER_AUTHORIZATION_FAILED) */
};

/* The partition's answer: its own error, else its transaction's (mapped for old versions). */
static int16_t apt_partition_error(kp_req_t *req, const apt_txn_t *tx, int32_t k)
{
    if (tx->errs[k] || tx->local) return tx->errs[k];
    return simple_error(req, tx->call.op.error);
}

static int apt_topic_results(kp_req_t *req, const apt_txn_t *tx,
                             AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult **out,
                             int32_t *count)
{
    *out = kp_req_alloc(req, ((size_t)tx->ntopics + 1) * sizeof(**out));
    if (!*out) return -1;
    *count = tx->ntopics;
    int32_t k = 0;
    for (int32_t i = 0; i < tx->ntopics; i++) {
        AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult *tr = &(*out)[i];
        const kp_txn_record_topic_t *t = &tx->topics[i];
        tr->Name = t->topic;
        tr->Results.items =
            kp_req_alloc(req, ((size_t)t->npartitions + 1) * sizeof(*tr->Results.items));
        if (!tr->Results.items) return -1;
        tr->Results.count = t->npartitions;
        for (int32_t j = 0; j < t->npartitions; j++, k++) {
            tr->Results.items[j].PartitionIndex = t->partitions[j];
            tr->Results.items[j].ErrorCode = apt_partition_error(req, tx, k);
        }
    }
    return 0;
}

static void respond_add_partitions(kp_req_t *req, apt_req_t *ar)
{
    AddPartitionsToTxnResponse out;
    AddPartitionsToTxnResponse_init(&out);
    int failed = 0;
    if (req->api_version < 4) {
        failed = ar->ntxns == 1 &&
                 apt_topic_results(req, &ar->txns[0], &out.Results.items, &out.Results.count) < 0;
    } else {
        out.ErrorCode = ar->error;
        out.ResultsByTransaction.items =
            kp_req_alloc(req, ((size_t)ar->ntxns + 1) * sizeof(*out.ResultsByTransaction.items));
        failed = !out.ResultsByTransaction.items;
        for (int32_t i = 0; !failed && !ar->error && i < ar->ntxns; i++) {
            AddPartitionsToTxnResponse_AddPartitionsToTxnResult *r =
                &out.ResultsByTransaction.items[out.ResultsByTransaction.count++];
            r->TransactionalId = ar->txns[i].call.op.id;
            failed = apt_topic_results(req, &ar->txns[i], &r->TopicResults.items,
                                       &r->TopicResults.count) < 0;
        }
    }
    if (failed) {
        kp_req_finish_silent(req);
        kp_conn_close(req->sess->conn, "add partitions to txn allocation failed");
        return;
    }
    kp_req_begin_response(req);
    AddPartitionsToTxnResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
}

/* Fills tx from one transaction's fields and makes Kafka's per-partition checks: any
 * failure answers every other partition with OPERATION_NOT_ATTEMPTED and adds nothing.
 * Clients (v0-3) need WRITE on the TransactionalId and on each topic; brokers (v4) were
 * authorized for CLUSTER_ACTION instead. -1: out of memory. */
static int apt_txn_prepare(kp_req_t *req, apt_txn_t *tx, kp_str_t id, int64_t producer_id,
                           int16_t epoch, int verify_only,
                           const AddPartitionsToTxnRequest_AddPartitionsToTxnTopic *topics,
                           int32_t ntopics)
{
    int client = req->api_version < 4;
    tx->call.op.kind = verify_only ? KP_TXN_OP_VERIFY : KP_TXN_OP_ADD_PARTITIONS;
    tx->call.op.done = op_done;
    tx->call.op.arena = &req->arena;
    tx->call.req = req;
    tx->call.op.id = id;
    tx->call.op.producer_id = producer_id;
    tx->call.op.epoch = epoch;
    tx->ntopics = ntopics > 0 ? ntopics : 0;
    tx->topics = kp_req_alloc(req, ((size_t)tx->ntopics + 1) * sizeof(*tx->topics));
    if (!tx->topics) return -1;
    for (int32_t i = 0; i < tx->ntopics; i++)
        tx->npartitions += topics[i].Partitions.count > 0 ? topics[i].Partitions.count : 0;
    tx->errs = kp_req_alloc(req, ((size_t)tx->npartitions + 1) * sizeof(*tx->errs));
    if (!tx->errs) return -1;
    tx->call.op.topics = tx->topics;
    tx->call.op.ntopics = tx->ntopics;
    tx->call.op.verified = tx->errs;
    if (client && !kp_req_authorize(req, KP_OP_WRITE, KP_RES_TRANSACTIONAL_ID, id)) {
        tx->local = 1;
        for (int32_t k = 0; k < tx->npartitions; k++)
            tx->errs[k] = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if (id.len <= 0) { /* as Kafka's coordinator */
        tx->local = 1;
        for (int32_t k = 0; k < tx->npartitions; k++) tx->errs[k] = KERR_INVALID_REQUEST;
    }
    int any = 0, k = 0;
    for (int32_t i = 0; i < tx->ntopics; i++) {
        const AddPartitionsToTxnRequest_AddPartitionsToTxnTopic *t = &topics[i];
        tx->topics[i].topic = t->Name;
        tx->topics[i].partitions = t->Partitions.items;
        tx->topics[i].npartitions = t->Partitions.count > 0 ? t->Partitions.count : 0;
        if (tx->local) continue;
        int allowed = !client || kp_req_authorize(req, KP_OP_WRITE, KP_RES_TOPIC, t->Name);
        kp_topic_t *topic = allowed ? kp_topics_get(req->sess->broker->topics, t->Name) : NULL;
        for (int32_t j = 0; j < tx->topics[i].npartitions; j++, k++) {
            if (!allowed)
                tx->errs[k] = KERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!topic || !kp_topic_partition(topic, t->Partitions.items[j]))
                tx->errs[k] = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (topic->internal && client)
                tx->errs[k] = KERR_INVALID_TOPIC_EXCEPTION;
            any |= tx->errs[k] != 0;
        }
        kp_topic_put(topic);
    }
    if (any) {
        tx->local = 1;
        for (k = 0; k < tx->npartitions; k++)
            if (!tx->errs[k]) tx->errs[k] = OPERATION_NOT_ATTEMPTED;
    }
    return 0;
}

int kp_handle_add_partitions_to_txn(kp_req_t *req)
{
    AddPartitionsToTxnRequest *in = kp_req_alloc(req, sizeof(*in));
    apt_req_t *ar = kp_req_alloc(req, sizeof(*ar));
    if (!in || !ar ||
        AddPartitionsToTxnRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    int v4 = req->api_version >= 4;
    ar->ntxns = v4 ? (in->Transactions.count > 0 ? in->Transactions.count : 0) : 1;
    ar->txns = kp_req_alloc(req, ((size_t)ar->ntxns + 1) * sizeof(*ar->txns));
    if (!ar->txns) return -1;
    ar->call.op.kind = KP_TXN_OP_ADD_PARTITIONS;
    ar->call.req = req;
    ar->call.in = ar;
    if (v4 && !kp_req_authorize(req, KP_OP_CLUSTER_ACTION, KP_RES_CLUSTER,
                                KP_STR_LIT(KP_CLUSTER_RESOURCE))) {
        ar->error = KERR_CLUSTER_AUTHORIZATION_FAILED; /* as Kafka: top level, no results */
        respond_add_partitions(req, ar);
        return 0;
    }
    int submit = 0;
    for (int32_t i = 0; i < ar->ntxns; i++) {
        apt_txn_t *tx = &ar->txns[i];
        int rc;
        if (v4) {
            const AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction *t =
                &in->Transactions.items[i];
            rc = apt_txn_prepare(req, tx, t->TransactionalId, t->ProducerId, t->ProducerEpoch,
                                 t->VerifyOnly, t->Topics.items, t->Topics.count);
        } else {
            rc = apt_txn_prepare(req, tx, in->TransactionalId, in->ProducerId, in->ProducerEpoch, 0,
                                 in->Topics.items, in->Topics.count);
        }
        if (rc < 0) return -1;
        submit += !tx->local;
    }
    if (!submit) {
        respond_add_partitions(req, ar);
        return 0;
    }
    /* as DescribeTransactions: the children are answered one after another on the
     * coordinator's thread, the last one posts the parent's answer */
    ar->call.remaining = submit;
    for (int32_t i = 0; i < ar->ntxns; i++) {
        if (ar->txns[i].local) continue;
        ar->txns[i].call.parent = &ar->call;
        kp_txn_submit(coord(req), &ar->txns[i].call.op);
    }
    return 0;
}

/* ---- AddOffsetsToTxn, EndTxn ---- */

int kp_handle_add_offsets_to_txn(kp_req_t *req)
{
    AddOffsetsToTxnRequest *in = kp_req_alloc(req, sizeof(*in));
    if (!in || AddOffsetsToTxnRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    txn_call_t *call = call_new(req, KP_TXN_OP_ADD_OFFSETS, in);
    if (!call) return -1;
    if (!kp_req_authorize(req, KP_OP_WRITE, KP_RES_TRANSACTIONAL_ID, in->TransactionalId))
        call->op.error = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    else if (!kp_req_authorize(req, KP_OP_READ, KP_RES_GROUP, in->GroupId))
        call->op.error = KERR_GROUP_AUTHORIZATION_FAILED;
    if (call->op.error) {
        respond_on_loop(req->sess->loop, call);
        return 0;
    }
    call->op.id = in->TransactionalId;
    call->op.producer_id = in->ProducerId;
    call->op.epoch = in->ProducerEpoch;
    call->op.group_id = in->GroupId;
    kp_txn_submit(coord(req), &call->op);
    return 0;
}

int kp_handle_end_txn(kp_req_t *req)
{
    EndTxnRequest *in = kp_req_alloc(req, sizeof(*in));
    if (!in || EndTxnRequest_decode(&req->body, req->api_version, &req->arena, in) < 0) return -1;
    txn_call_t *call = call_new(req, KP_TXN_OP_END, in);
    if (!call) return -1;
    if (!kp_req_authorize(req, KP_OP_WRITE, KP_RES_TRANSACTIONAL_ID, in->TransactionalId)) {
        call->op.error = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        respond_on_loop(req->sess->loop, call);
        return 0;
    }
    call->op.id = in->TransactionalId;
    call->op.producer_id = in->ProducerId;
    call->op.epoch = in->ProducerEpoch;
    call->op.commit = in->Committed;
    kp_txn_submit(coord(req), &call->op);
    return 0;
}

/* ---- TxnOffsetCommit: the group coordinator writes them ---- */

int kp_handle_txn_offset_commit(kp_req_t *req)
{
    TxnOffsetCommitRequest *in = kp_req_alloc(req, sizeof(*in));
    if (!in || TxnOffsetCommitRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    if (!kp_req_authorize(req, KP_OP_WRITE, KP_RES_TRANSACTIONAL_ID, in->TransactionalId)) {
        TxnOffsetCommitResponse out;
        TxnOffsetCommitResponse_init(&out);
        int32_t nt = in->Topics.count > 0 ? in->Topics.count : 0;
        out.Topics.items = kp_req_alloc(req, ((size_t)nt + 1) * sizeof(*out.Topics.items));
        if (!out.Topics.items) return -1;
        out.Topics.count = nt;
        for (int32_t i = 0; i < nt; i++) {
            TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic *tr = &out.Topics.items[i];
            int32_t np =
                in->Topics.items[i].Partitions.count > 0 ? in->Topics.items[i].Partitions.count : 0;
            tr->Name = in->Topics.items[i].Name;
            tr->Partitions.items =
                kp_req_alloc(req, ((size_t)np + 1) * sizeof(*tr->Partitions.items));
            if (!tr->Partitions.items) return -1;
            tr->Partitions.count = np;
            for (int32_t j = 0; j < np; j++) {
                tr->Partitions.items[j].PartitionIndex =
                    in->Topics.items[i].Partitions.items[j].PartitionIndex;
                tr->Partitions.items[j].ErrorCode = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            }
        }
        kp_req_begin_response(req);
        TxnOffsetCommitResponse_encode(&req->resp, req->api_version, &out);
        kp_req_finish(req);
        return 0;
    }
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_txn_offset_commit(req->sess->broker->coordinator, call, in);
    return 0;
}

/* ---- WriteTxnMarkers (inter-broker; CLUSTER_ACTION) ---- */

/* A request's markers in flight: answered when the last one is committed. */
typedef struct markers_call {
    kp_req_t *req;
    WriteTxnMarkersResponse out;
    atomic_int remaining; /* markers waited for, plus one held while they are queued */
} markers_call_t;

typedef struct marker_wait {
    kp_flush_waiter_t w; /* first */
    markers_call_t *call;
    int16_t *error;
    kp_broker_t *b;
    int64_t producer_id;
    int commit;
    int group; /* a __consumer_offsets partition: its group coordinator applies the offsets */
} marker_wait_t;

static void markers_respond(kp_loop_t *loop, void *arg)
{
    markers_call_t *mc = arg;
    kp_req_begin_response(mc->req);
    WriteTxnMarkersResponse_encode(&mc->req->resp, mc->req->api_version, &mc->out);
    kp_req_finish(mc->req);
}

static void markers_release(markers_call_t *mc)
{
    if (atomic_fetch_sub(&mc->remaining, 1) == 1)
        kp_loop_post(mc->req->sess->loop, markers_respond, mc);
}

static void marker_group_applied(void *arg)
{
    markers_release(arg);
}

/* Any thread: the marker is committed (in every in-sync replica) or failed. */
static void marker_committed(kp_flush_waiter_t *w, int err)
{
    marker_wait_t *mw = (marker_wait_t *)w;
    *mw->error = kp_partition_commit_error(err);
    if (!err && mw->group) { /* as the coordinator's own markers (txn_coordinator.c) */
        kp_coordinator_txn_complete(mw->b->coordinator, mw->producer_id, mw->commit,
                                    marker_group_applied, mw->call);
        return;
    }
    markers_release(mw->call);
}

/* One partition's marker: appended (leaders only) and, in a pool, waited for until the high
 * watermark covers it, so the coordinator completes a transaction only once its markers
 * survive a failover. */
static void marker_write(kp_req_t *req, markers_call_t *mc, kp_partition_t *p,
                         const WriteTxnMarkersRequest_WritableTxnMarker *mk, kp_buf_t *batch,
                         int16_t *error)
{
    int64_t now = kp_wall_ms();
    batch->len = 0;
    kp_control_batch_build(batch, mk->ProducerId, mk->ProducerEpoch,
                           mk->TransactionResult ? KP_CONTROL_COMMIT : KP_CONTROL_ABORT,
                           mk->CoordinatorEpoch, now);
    kp_batch_info_t info;
    kp_append_result_t res;
    res.status = KP_APPEND_STORAGE_ERROR;
    int16_t lerr = kp_partition_check_leader(p, -1); /* a replicated pool: leaders only */
    if (lerr) {
        *error = lerr;
        return;
    }
    if (kp_batch_validate(batch->data, batch->len, &info) == KP_BATCH_OK)
        kp_partition_append(p, batch->data, batch->len, &info, now, &res);
    *error = res.status == KP_APPEND_OK              ? 0
             : res.status == KP_APPEND_INVALID_EPOCH ? KERR_INVALID_PRODUCER_EPOCH
                                                     : KERR_KAFKA_STORAGE_ERROR;
    if (res.status != KP_APPEND_OK || !p->repl) return;
    marker_wait_t *mw = kp_req_alloc(req, sizeof(*mw));
    if (!mw) {
        *error = KERR_KAFKA_STORAGE_ERROR;
        return;
    }
    memset(mw, 0, sizeof(*mw));
    mw->w.done = marker_committed;
    mw->call = mc;
    mw->error = error;
    mw->b = req->sess->broker;
    mw->producer_id = mk->ProducerId;
    mw->commit = mk->TransactionResult != 0;
    mw->group = p->topic->internal && !strcmp(p->topic->name, "__consumer_offsets");
    atomic_fetch_add(&mc->remaining, 1);
    kp_partition_wait_committed(p, res.last_offset, &mw->w);
}

int kp_handle_write_txn_markers(kp_req_t *req)
{
    WriteTxnMarkersRequest in;
    if (WriteTxnMarkersRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    kp_broker_t *b = req->sess->broker;
    int allowed = kp_req_authorize(req, KP_OP_CLUSTER_ACTION, KP_RES_CLUSTER,
                                   KP_STR_LIT(KP_CLUSTER_RESOURCE));
    markers_call_t *mc = kp_req_alloc(req, sizeof(*mc));
    if (!mc) return -1;
    mc->req = req;
    atomic_init(&mc->remaining, 1);
    WriteTxnMarkersResponse *out = &mc->out;
    WriteTxnMarkersResponse_init(out);
    int32_t nm = in.Markers.count > 0 ? in.Markers.count : 0;
    out->Markers.items = kp_req_alloc(req, ((size_t)nm + 1) * sizeof(*out->Markers.items));
    if (!out->Markers.items) return -1;
    out->Markers.count = nm;
    kp_buf_t batch;
    kp_buf_init(&batch);
    for (int32_t m = 0; m < nm; m++) {
        WriteTxnMarkersRequest_WritableTxnMarker *mk = &in.Markers.items[m];
        WriteTxnMarkersResponse_WritableTxnMarkerResult *mr = &out->Markers.items[m];
        mr->ProducerId = mk->ProducerId;
        int32_t nt = mk->Topics.count > 0 ? mk->Topics.count : 0;
        mr->Topics.items = kp_req_alloc(req, ((size_t)nt + 1) * sizeof(*mr->Topics.items));
        if (!mr->Topics.items) break;
        mr->Topics.count = nt;
        for (int32_t i = 0; i < nt; i++) {
            WriteTxnMarkersRequest_WritableTxnMarkerTopic *t = &mk->Topics.items[i];
            WriteTxnMarkersResponse_WritableTxnMarkerTopicResult *tr = &mr->Topics.items[i];
            tr->Name = t->Name;
            int32_t np = t->PartitionIndexes.count > 0 ? t->PartitionIndexes.count : 0;
            tr->Partitions.items =
                kp_req_alloc(req, ((size_t)np + 1) * sizeof(*tr->Partitions.items));
            if (!tr->Partitions.items) continue;
            tr->Partitions.count = np;
            kp_topic_t *topic = allowed ? kp_topics_get(b->topics, t->Name) : NULL;
            for (int32_t j = 0; j < np; j++) {
                int32_t pi = t->PartitionIndexes.items[j];
                tr->Partitions.items[j].PartitionIndex = pi;
                kp_partition_t *p = topic ? kp_topic_partition(topic, pi) : NULL;
                if (!allowed)
                    tr->Partitions.items[j].ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
                else if (!p)
                    tr->Partitions.items[j].ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                else
                    marker_write(req, mc, p, mk, &batch, &tr->Partitions.items[j].ErrorCode);
            }
            kp_topic_put(topic);
        }
    }
    kp_buf_free(&batch);
    /* answered here when nothing waits (standalone, errors), else by the last commit; the
     * request is only touched again on its own loop */
    if (atomic_fetch_sub(&mc->remaining, 1) == 1) markers_respond(NULL, mc);
    return 0;
}

/* ---- DescribeProducers ---- */

int kp_handle_describe_producers(kp_req_t *req)
{
    DescribeProducersRequest in;
    if (DescribeProducersRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    kp_broker_t *b = req->sess->broker;
    DescribeProducersResponse out;
    DescribeProducersResponse_init(&out);
    int32_t nt = in.Topics.count > 0 ? in.Topics.count : 0;
    out.Topics.items = kp_req_alloc(req, ((size_t)nt + 1) * sizeof(*out.Topics.items));
    if (!out.Topics.items) return -1;
    out.Topics.count = nt;
    for (int32_t i = 0; i < nt; i++) {
        DescribeProducersRequest_TopicRequest *t = &in.Topics.items[i];
        DescribeProducersResponse_TopicResponse *tr = &out.Topics.items[i];
        tr->Name = t->Name;
        int32_t np = t->PartitionIndexes.count > 0 ? t->PartitionIndexes.count : 0;
        tr->Partitions.items = kp_req_alloc(req, ((size_t)np + 1) * sizeof(*tr->Partitions.items));
        if (!tr->Partitions.items) return -1;
        tr->Partitions.count = np;
        int allowed = kp_req_authorize(req, KP_OP_READ, KP_RES_TOPIC, t->Name);
        kp_topic_t *topic = allowed ? kp_topics_get(b->topics, t->Name) : NULL;
        for (int32_t j = 0; j < np; j++) {
            DescribeProducersResponse_PartitionResponse *pr = &tr->Partitions.items[j];
            DescribeProducersResponse_PartitionResponse_init(pr);
            pr->PartitionIndex = t->PartitionIndexes.items[j];
            kp_partition_t *p = topic ? kp_topic_partition(topic, pr->PartitionIndex) : NULL;
            if (!allowed) {
                pr->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (!p) {
                pr->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            kp_pstate_entry_t *es;
            size_t n = kp_partition_producers(p, &es);
            pr->ActiveProducers.items =
                kp_req_alloc(req, (n + 1) * sizeof(*pr->ActiveProducers.items));
            if (!pr->ActiveProducers.items) {
                free(es);
                kp_topic_put(topic);
                return -1;
            }
            pr->ActiveProducers.count = (int32_t)n;
            for (size_t k = 0; k < n; k++) {
                DescribeProducersResponse_ProducerState *ps = &pr->ActiveProducers.items[k];
                ps->ProducerId = es[k].producer_id;
                ps->ProducerEpoch = es[k].epoch;
                ps->LastSequence = es[k].count ? es[k].batches[es[k].count - 1].last_seq : -1;
                ps->LastTimestamp = es[k].last_timestamp_ms;
                ps->CoordinatorEpoch = -1;
                ps->CurrentTxnStartOffset = es[k].txn_first_offset;
            }
            free(es);
        }
        kp_topic_put(topic);
    }
    kp_req_begin_response(req);
    DescribeProducersResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* ---- DescribeTransactions, ListTransactions ---- */

int kp_handle_describe_transactions(kp_req_t *req)
{
    DescribeTransactionsRequest *in = kp_req_alloc(req, sizeof(*in));
    if (!in ||
        DescribeTransactionsRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    int32_t n = in->TransactionalIds.count > 0 ? in->TransactionalIds.count : 0;
    /* the parent and its n children, contiguous: children follow the parent */
    txn_call_t *calls = kp_req_alloc(req, ((size_t)n + 1) * sizeof(*calls));
    if (!calls) return -1;
    txn_call_t *parent = &calls[0];
    parent->op.kind = KP_TXN_OP_DESCRIBE;
    parent->req = req;
    parent->in = in;
    int submit = 0;
    for (int32_t i = 0; i < n; i++) {
        txn_call_t *ch = &calls[i + 1];
        ch->op.kind = KP_TXN_OP_DESCRIBE;
        ch->op.id = in->TransactionalIds.items[i];
        ch->op.arena = &req->arena;
        ch->op.done = op_done;
        ch->req = req;
        if (!kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_TRANSACTIONAL_ID, ch->op.id))
            ch->op.error = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        else
            submit++;
    }
    if (!submit) {
        respond_describe(req, in, calls + 1);
        return 0;
    }
    /* the arena is only touched by the coordinator thread until the last child is done:
     * the children are submitted together and answered one after another there */
    parent->remaining = submit;
    for (int32_t i = 0; i < n; i++) {
        txn_call_t *ch = &calls[i + 1];
        if (ch->op.error) continue;
        ch->parent = parent;
        kp_txn_submit(coord(req), &ch->op);
    }
    return 0;
}

static void respond_describe(kp_req_t *req, DescribeTransactionsRequest *in, txn_call_t *subs)
{
    DescribeTransactionsResponse out;
    DescribeTransactionsResponse_init(&out);
    int32_t n = in->TransactionalIds.count > 0 ? in->TransactionalIds.count : 0;
    out.TransactionStates.items =
        kp_req_alloc(req, ((size_t)n + 1) * sizeof(*out.TransactionStates.items));
    if (out.TransactionStates.items) out.TransactionStates.count = n;
    for (int32_t i = 0; i < out.TransactionStates.count; i++) {
        DescribeTransactionsResponse_TransactionState *ts = &out.TransactionStates.items[i];
        kp_txn_op_t *op = &subs[i].op;
        ts->TransactionalId = op->id;
        ts->ErrorCode = op->error;
        ts->TransactionState = KP_STR_LIT("");
        ts->ProducerId = -1;
        ts->ProducerEpoch = -1;
        if (op->error) continue;
        const char *st = kp_txn_status_name(op->record.status);
        ts->TransactionState = kp_str_c(st ? st : "");
        ts->TransactionTimeoutMs = op->record.timeout_ms;
        ts->TransactionStartTimeMs = op->record.start_ms;
        ts->ProducerId = op->record.producer_id;
        ts->ProducerEpoch = op->record.producer_epoch;
        int32_t nt = op->record.ntopics;
        ts->Topics.items = kp_req_alloc(req, ((size_t)nt + 1) * sizeof(*ts->Topics.items));
        if (!ts->Topics.items) continue;
        ts->Topics.count = nt;
        for (int32_t k = 0; k < nt; k++) {
            ts->Topics.items[k].Topic = op->record.topics[k].topic;
            ts->Topics.items[k].Partitions.items = op->record.topics[k].partitions;
            ts->Topics.items[k].Partitions.count = op->record.topics[k].npartitions;
        }
    }
    kp_req_begin_response(req);
    DescribeTransactionsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
}

int kp_handle_list_transactions(kp_req_t *req)
{
    ListTransactionsRequest *in = kp_req_alloc(req, sizeof(*in));
    if (!in || ListTransactionsRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    txn_call_t *call = call_new(req, KP_TXN_OP_LIST, in);
    if (!call) return -1;
    kp_txn_submit(coord(req), &call->op);
    return 0;
}

static void respond_list(kp_req_t *req, ListTransactionsRequest *in, kp_txn_op_t *op)
{
    ListTransactionsResponse out;
    ListTransactionsResponse_init(&out);
    out.ErrorCode = op->error;
    int32_t nf = in->StateFilters.count > 0 ? in->StateFilters.count : 0;
    int *states = kp_req_alloc(req, ((size_t)nf + 1) * sizeof(int));
    out.UnknownStateFilters.items = kp_req_alloc(req, ((size_t)nf + 1) * sizeof(kp_str_t));
    out.TransactionStates.items =
        kp_req_alloc(req, ((size_t)op->nlisted + 1) * sizeof(*out.TransactionStates.items));
    if (!states || !out.UnknownStateFilters.items || !out.TransactionStates.items) {
        kp_req_finish_silent(req);
        kp_conn_close(req->sess->conn, "list transactions allocation failed");
        return;
    }
    int nknown = 0;
    int64_t now_ms = kp_wall_ms();
    for (int32_t i = 0; i < nf; i++) {
        int s = kp_txn_status_parse(in->StateFilters.items[i]);
        if (s < 0)
            out.UnknownStateFilters.items[out.UnknownStateFilters.count++] =
                in->StateFilters.items[i];
        else
            states[nknown++] = s;
    }
    for (int32_t i = 0; i < op->nlisted; i++) {
        const kp_txn_listed_t *l = &op->listed[i];
        if (!kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_TRANSACTIONAL_ID, l->id)) continue;
        int ok = nknown == 0; /* as Kafka: only the known states filter */
        for (int k = 0; k < nknown; k++) ok |= states[k] == l->status;
        ok &= l->status != KP_TXN_DEAD;
        if (in->ProducerIdFilters.count > 0) {
            int pid_ok = 0;
            for (int32_t k = 0; k < in->ProducerIdFilters.count; k++)
                pid_ok |= in->ProducerIdFilters.items[k] == l->producer_id;
            ok &= pid_ok;
        }
        /* v1 (KIP-994): only transactions running longer than the filter; as Kafka, one
         * without a start time (-1) counts as running since the epoch */
        if (in->DurationFilter >= 0 && now_ms - l->start_ms <= in->DurationFilter) ok = 0;
        if (!ok) continue;
        ListTransactionsResponse_TransactionState *ts =
            &out.TransactionStates.items[out.TransactionStates.count++];
        ts->TransactionalId = l->id;
        ts->ProducerId = l->producer_id;
        const char *st = kp_txn_status_name(l->status);
        ts->TransactionState = kp_str_c(st ? st : "");
    }
    kp_req_begin_response(req);
    ListTransactionsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
}
