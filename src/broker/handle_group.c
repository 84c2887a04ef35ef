/*
 * handle_group.c — the network side of the group APIs: decode on the connection's loop,
 * answer FindCoordinator here (this broker coordinates every group), and hand everything else
 * to the group coordinator (group/coordinator.h), which finishes the request later.
 */
#include "auth/acl.h"
#include "broker/replicated_pool.h"
#include "broker/request.h"
#include "group/coordinator.h"
#include "kp_msgs.h"

int kp_handle_find_coordinator(kp_req_t *req)
{
    FindCoordinatorRequest in;
    if (FindCoordinatorRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    kp_broker_t *b = req->sess->broker;
    FindCoordinatorResponse out;
    FindCoordinatorResponse_init(&out);
    if (in.KeyType == 1) {
        out.ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
        out.ErrorMessage = KP_STR_LIT("transactions are not supported by this pool");
        out.NodeId = -1;
    } else if (in.KeyType != 0) {
        out.ErrorCode = KERR_INVALID_REQUEST;
        out.NodeId = -1;
    } else if (!kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_GROUP, in.Key)) {
        out.ErrorCode = KERR_GROUP_AUTHORIZATION_FAILED;
        out.NodeId = -1;
    } else if (b->pool) {
        char *host = kp_req_alloc(req, 256);
        int port = 0;
        if (!host || kp_rpool_group_coordinator(b->pool, req->sess->listener->name, &out.NodeId,
                                                host, 256, &port) < 0) {
            out.ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
            out.NodeId = -1;
        } else {
            out.Host = kp_str_c(host);
            out.Port = port;
        }
    } else {
        out.NodeId = b->cfg.node_id;
        out.Host = kp_str_c(req->sess->listener->adv_host);
        out.Port = req->sess->listener->adv_port;
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
