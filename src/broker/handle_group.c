/*
 * handle_group.c — the network side of the group APIs: decode on the connection's loop,
 * authorize, answer FindCoordinator here (standalone: this broker coordinates every group and
 * transactional id; a replicated pool: the leader of the key's partition of
 * __consumer_offsets or __transaction_state), and make everything else a typed call of the
 * group coordinator (group/coordinator.h): the call says who asks (principal, client, the
 * ACL decisions through group_may), and its result comes back to group_done, which encodes
 * the response and finishes the request on its loop. The coordinator never sees the request
 * or the connection.
 */
#include "auth/acl.h"
#include "broker/replicated_pool.h"
#include "broker/request.h"
#include "group/coordinator.h"
#include "kp_msgs.h"
#include "net/conn.h"
#include "txn/txn_coordinator.h"

/* The coordinator of one key: 0 with node/host/port, or an error. Standalone: this broker
 * coordinates every group and transactional id. A replicated pool: the leader of the key's
 * partition of __consumer_offsets (key type 0) or __transaction_state (1), as Kafka. */
static int16_t find_coordinator_one(kp_req_t *req, int8_t key_type, kp_str_t key, kp_str_t *message,
                                    int32_t *node, kp_str_t *host, int32_t *port)
{
    *message = KP_STR_NULL;
    if (key_type == 1) {
        if (!kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_TRANSACTIONAL_ID, key))
            return KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if (key_type != 0) {
        return KERR_INVALID_REQUEST;
    } else if (!kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_GROUP, key)) {
        return KERR_GROUP_AUTHORIZATION_FAILED;
    }
    kp_broker_t *b = req->sess->broker;
    *node = b->cfg.node_id;
    *host = kp_str_c(req->sess->listener->adv_host);
    *port = req->sess->listener->adv_port;
    if (!b->pool) return 0;
    const char *topic = key_type ? KP_TXN_STATE_TOPIC : "__consumer_offsets";
    const char *setting =
        key_type ? "transaction.state.log.num.partitions" : "offsets.topic.num.partitions";
    /* validated at start (kp_coord_config_load, kp_txn_config_load); rf 0: min(3, live) */
    int64_t partitions = 50, rf = 0;
    kp_props_get_i64(b->cfg.props, setting, 50, 1, 1000, &partitions, NULL, 0);
    kp_props_get_i64(b->cfg.props,
                     key_type ? "transaction.state.log.replication.factor"
                              : "offsets.topic.replication.factor",
                     0, 1, 32767, &rf, NULL, 0);
    char *h = kp_req_alloc(req, 256);
    int hport = 0;
    if (!h) return KERR_COORDINATOR_NOT_AVAILABLE;
    int16_t rc = kp_rpool_find_coordinator(b->pool, topic, (int32_t)partitions, (int)rf,
                                           key.len > 0 ? key : KP_STR_LIT(""),
                                           req->sess->listener->name, node, h, 256, &hport);
    if (rc) return rc;
    *host = kp_str_c(h);
    *port = hport;
    return 0;
}

/* v0-3 ask for one key; v4 (KIP-699) for several (CoordinatorKeys), answered one by one. */
int kp_handle_find_coordinator(kp_req_t *req)
{
    FindCoordinatorRequest in;
    if (FindCoordinatorRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    int32_t node = -1, port = 0;
    kp_str_t host = KP_STR_NULL;
    FindCoordinatorResponse out;
    FindCoordinatorResponse_init(&out);
    if (req->api_version < 4) {
        out.ErrorCode =
            find_coordinator_one(req, in.KeyType, in.Key, &out.ErrorMessage, &node, &host, &port);
        out.NodeId = out.ErrorCode ? -1 : node;
        if (!out.ErrorCode) {
            out.Host = host;
            out.Port = port;
        }
    } else {
        int32_t n = in.CoordinatorKeys.count > 0 ? in.CoordinatorKeys.count : 0;
        out.Coordinators.items =
            kp_arena_calloc(&req->arena, (size_t)n + 1, sizeof(*out.Coordinators.items));
        if (!out.Coordinators.items) return -1;
        out.Coordinators.count = n;
        for (int32_t i = 0; i < n; i++) {
            FindCoordinatorResponse_Coordinator *co = &out.Coordinators.items[i];
            FindCoordinatorResponse_Coordinator_init(co);
            co->Key = in.CoordinatorKeys.items[i];
            co->ErrorCode = find_coordinator_one(req, in.KeyType, co->Key, &co->ErrorMessage, &node,
                                                 &host, &port);
            co->NodeId = co->ErrorCode ? -1 : node;
            if (!co->ErrorCode) {
                co->Host = host;
                co->Port = port;
            }
        }
    }
    kp_req_begin_response(req);
    FindCoordinatorResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* Membership requests need READ on the group; refused ones are answered here. */
static int group_refused(kp_req_t *req, kp_str_t group)
{
    if (kp_req_authorize(req, KP_OP_READ, KP_RES_GROUP, group)) return 0;
    kp_req_begin_response(req);
    switch (req->api_key) {
    case KP_API_JOIN_GROUP: {
        JoinGroupResponse out;
        JoinGroupResponse_init(&out);
        out.ErrorCode = KERR_GROUP_AUTHORIZATION_FAILED;
        JoinGroupResponse_encode(&req->resp, req->api_version, &out);
        break;
    }
    case KP_API_SYNC_GROUP: {
        SyncGroupResponse out;
        SyncGroupResponse_init(&out);
        out.ErrorCode = KERR_GROUP_AUTHORIZATION_FAILED;
        SyncGroupResponse_encode(&req->resp, req->api_version, &out);
        break;
    }
    case KP_API_HEARTBEAT: {
        HeartbeatResponse out;
        HeartbeatResponse_init(&out);
        out.ErrorCode = KERR_GROUP_AUTHORIZATION_FAILED;
        HeartbeatResponse_encode(&req->resp, req->api_version, &out);
        break;
    }
    default: {
        LeaveGroupResponse out;
        LeaveGroupResponse_init(&out);
        out.ErrorCode = KERR_GROUP_AUTHORIZATION_FAILED;
        LeaveGroupResponse_encode(&req->resp, req->api_version, &out);
        break;
    }
    }
    kp_req_finish(req);
    return 1;
}

/* ---- the typed coordinator calls ---- */

static void finish_task(kp_loop_t *loop, void *arg)
{
    kp_req_finish(arg);
}

static void finish_silent_task(kp_loop_t *loop, void *arg)
{
    kp_req_finish_silent(arg);
}

/* The coordinator's thread: encodes the call's result into its request (as the coordinator
 * did before it returned typed results) and finishes the request on the request's loop. */
static void group_done(kp_group_call_t *call, kp_group_result_t res)
{
    kp_req_t *req = call->handler_data;
    if (!res.any) {
        kp_loop_post(req->sess->loop, finish_silent_task, req);
        return;
    }
    kp_wr_t *w = &req->resp;
    int16_t v = req->api_version;
    kp_req_begin_response(req);
    switch (res.op) {
    case KP_GROUP_OP_JOIN:
        JoinGroupResponse_encode(w, v, res.join);
        break;
    case KP_GROUP_OP_SYNC:
        SyncGroupResponse_encode(w, v, res.sync);
        break;
    case KP_GROUP_OP_HEARTBEAT:
        HeartbeatResponse_encode(w, v, res.heartbeat);
        break;
    case KP_GROUP_OP_LEAVE:
        LeaveGroupResponse_encode(w, v, res.leave);
        break;
    case KP_GROUP_OP_COMMIT:
        OffsetCommitResponse_encode(w, v, res.commit);
        break;
    case KP_GROUP_OP_FETCH:
        OffsetFetchResponse_encode(w, v, res.fetch);
        break;
    case KP_GROUP_OP_LIST:
        ListGroupsResponse_encode(w, v, res.list);
        break;
    case KP_GROUP_OP_DESCRIBE:
        DescribeGroupsResponse_encode(w, v, res.describe);
        break;
    case KP_GROUP_OP_DELETE:
        DeleteGroupsResponse_encode(w, v, res.del);
        break;
    case KP_GROUP_OP_OFFSET_DELETE:
        OffsetDeleteResponse_encode(w, v, res.offset_delete);
        break;
    case KP_GROUP_OP_TXN_COMMIT:
        TxnOffsetCommitResponse_encode(w, v, res.txn_commit);
        break;
    }
    kp_loop_post(req->sess->loop, finish_task, req);
}

/* The ACL decisions the coordinator asks for: the request's principal and address.
 * Thread-safe (the authorizer has its own lock). */
static int group_may(const kp_group_call_t *call, int op, int type, kp_str_t name)
{
    return kp_req_authorize(call->handler_data, op, type, name);
}

struct kp_group_call *kp_req_group_call(kp_req_t *req)
{
    kp_group_call_t *call = kp_arena_calloc(&req->arena, 1, sizeof(*call));
    if (!call) return NULL;
    kp_session_t *s = req->sess;
    call->api_version = req->api_version;
    call->client_id = req->client_id;
    call->client_host = s->conn->peer_ip;
    call->principal = s->principal;
    call->arena = &req->arena;
    call->may = group_may;
    call->done = group_done;
    call->handler_data = req;
    return call;
}

static kp_coordinator_t *coordinator(kp_req_t *req)
{
    return req->sess->broker->coordinator;
}

int kp_handle_join_group(kp_req_t *req)
{
    JoinGroupRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || JoinGroupRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    if (group_refused(req, in->GroupId)) return 0;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_join(coordinator(req), call, in);
    return 0;
}

int kp_handle_sync_group(kp_req_t *req)
{
    SyncGroupRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || SyncGroupRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    if (group_refused(req, in->GroupId)) return 0;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_sync(coordinator(req), call, in);
    return 0;
}

int kp_handle_heartbeat(kp_req_t *req)
{
    HeartbeatRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || HeartbeatRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    if (group_refused(req, in->GroupId)) return 0;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_heartbeat(coordinator(req), call, in);
    return 0;
}

int kp_handle_leave_group(kp_req_t *req)
{
    LeaveGroupRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || LeaveGroupRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    if (group_refused(req, in->GroupId)) return 0;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_leave(coordinator(req), call, in);
    return 0;
}

/* The group and topic checks are the coordinator's (through group_may): a refused group or
 * topic is an error per partition, not per request. */
int kp_handle_offset_commit(kp_req_t *req)
{
    OffsetCommitRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || OffsetCommitRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_offset_commit(coordinator(req), call, in);
    return 0;
}

int kp_handle_offset_fetch(kp_req_t *req)
{
    OffsetFetchRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || OffsetFetchRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_offset_fetch(coordinator(req), call, in);
    return 0;
}

int kp_handle_offset_delete(kp_req_t *req)
{
    OffsetDeleteRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || OffsetDeleteRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_offset_delete(coordinator(req), call, in);
    return 0;
}

int kp_handle_list_groups(kp_req_t *req)
{
    ListGroupsRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || ListGroupsRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_list(coordinator(req), call, in);
    return 0;
}

int kp_handle_describe_groups(kp_req_t *req)
{
    DescribeGroupsRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || DescribeGroupsRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_describe(coordinator(req), call, in);
    return 0;
}

int kp_handle_delete_groups(kp_req_t *req)
{
    DeleteGroupsRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || DeleteGroupsRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    kp_group_call_t *call = kp_req_group_call(req);
    if (!call) return -1;
    kp_group_delete(coordinator(req), call, in);
    return 0;
}
