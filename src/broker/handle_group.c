/*
 * handle_group.c — the network side of the group APIs: decode on the connection's loop,
 * answer FindCoordinator here (this broker coordinates every group and transactional id; in a
 * replicated pool, the broker the pool chose does), and hand everything else to the group
 * coordinator (group/coordinator.h), which finishes the request later.
 */
#include "auth/acl.h"
#include "broker/replicated_pool.h"
#include "broker/request.h"
#include "group/coordinator.h"
#include "kp_msgs.h"

/* One key's answer: this node for an authorized group key, an error otherwise. */
static int16_t find_coordinator_one(kp_req_t *req, int8_t key_type, kp_str_t key, kp_str_t *message)
{
    *message = KP_STR_NULL;
    if (key_type == 1) /* this broker coordinates every transactional id too */
        return kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_TRANSACTIONAL_ID, key)
                   ? 0
                   : KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    if (key_type != 0) return KERR_INVALID_REQUEST;
    if (!kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_GROUP, key))
        return KERR_GROUP_AUTHORIZATION_FAILED;
    return 0;
}

/* v0-3 ask for one key; v4 (KIP-699) for several (CoordinatorKeys), answered one by one. */
int kp_handle_find_coordinator(kp_req_t *req)
{
    FindCoordinatorRequest in;
    if (FindCoordinatorRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    kp_broker_t *b = req->sess->broker;
    /* standalone: this broker; a replicated pool: the one repl chose (the lowest live id),
     * for groups and transactional ids alike, at its endpoint on this listener */
    int32_t node = b->cfg.node_id;
    kp_str_t host = kp_str_c(req->sess->listener->adv_host);
    int32_t port = req->sess->listener->adv_port;
    int16_t unavailable = 0;
    if (b->pool) {
        char *h = kp_req_alloc(req, 256);
        int pport = 0;
        if (!h || kp_rpool_group_coordinator(b->pool, req->sess->listener->name, &node, h, 256,
                                             &pport) < 0) {
            unavailable = KERR_COORDINATOR_NOT_AVAILABLE;
        } else {
            host = kp_str_c(h);
            port = pport;
        }
    }
    FindCoordinatorResponse out;
    FindCoordinatorResponse_init(&out);
    if (req->api_version < 4) {
        out.ErrorCode = find_coordinator_one(req, in.KeyType, in.Key, &out.ErrorMessage);
        if (!out.ErrorCode) out.ErrorCode = unavailable;
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
            co->ErrorCode = find_coordinator_one(req, in.KeyType, co->Key, &co->ErrorMessage);
            if (!co->ErrorCode) co->ErrorCode = unavailable;
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

#define GROUP_HANDLER(fn, Msg, op, check)                                                          \
    int fn(kp_req_t *req)                                                                          \
    {                                                                                              \
        Msg *in = kp_arena_alloc(&req->arena, sizeof(*in));                                        \
        if (!in || Msg##_decode(&req->body, req->api_version, &req->arena, in) < 0) return -1;     \
        if (check && group_refused(req, in->GroupId)) return 0;                                    \
        kp_coordinator_submit(req->sess->broker->coordinator, req, op, in);                        \
        return 0;                                                                                  \
    }

GROUP_HANDLER(kp_handle_join_group, JoinGroupRequest, KP_GROUP_OP_JOIN, 1)
GROUP_HANDLER(kp_handle_sync_group, SyncGroupRequest, KP_GROUP_OP_SYNC, 1)
GROUP_HANDLER(kp_handle_heartbeat, HeartbeatRequest, KP_GROUP_OP_HEARTBEAT, 1)
GROUP_HANDLER(kp_handle_leave_group, LeaveGroupRequest, KP_GROUP_OP_LEAVE, 1)
GROUP_HANDLER(kp_handle_offset_commit, OffsetCommitRequest, KP_GROUP_OP_COMMIT, 0)
GROUP_HANDLER(kp_handle_offset_fetch, OffsetFetchRequest, KP_GROUP_OP_FETCH, 0)
GROUP_HANDLER(kp_handle_offset_delete, OffsetDeleteRequest, KP_GROUP_OP_OFFSET_DELETE, 0)

int kp_handle_list_groups(kp_req_t *req)
{
    ListGroupsRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || ListGroupsRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    kp_coordinator_submit(req->sess->broker->coordinator, req, KP_GROUP_OP_LIST, in);
    return 0;
}

int kp_handle_describe_groups(kp_req_t *req)
{
    DescribeGroupsRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || DescribeGroupsRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    kp_coordinator_submit(req->sess->broker->coordinator, req, KP_GROUP_OP_DESCRIBE, in);
    return 0;
}

int kp_handle_delete_groups(kp_req_t *req)
{
    DeleteGroupsRequest *in = kp_arena_alloc(&req->arena, sizeof(*in));
    if (!in || DeleteGroupsRequest_decode(&req->body, req->api_version, &req->arena, in) < 0)
        return -1;
    kp_coordinator_submit(req->sess->broker->coordinator, req, KP_GROUP_OP_DELETE, in);
    return 0;
}
