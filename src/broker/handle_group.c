/*
 * handle_group.c — the network side of the group APIs: decode on the connection's loop,
 * answer FindCoordinator here (this broker coordinates every group), and hand everything else
 * to the group coordinator (group/coordinator.h), which finishes the request later.
 */
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

#define GROUP_HANDLER(fn, Msg, op)                                                                 \
    int fn(kp_req_t *req)                                                                          \
    {                                                                                              \
        Msg *in = kp_arena_alloc(&req->arena, sizeof(*in));                                        \
        if (!in || Msg##_decode(&req->body, req->api_version, &req->arena, in) < 0) return -1;     \
        kp_coordinator_submit(req->sess->broker->coordinator, req, op, in);                        \
        return 0;                                                                                  \
    }

GROUP_HANDLER(kp_handle_join_group, JoinGroupRequest, KP_GROUP_OP_JOIN)
GROUP_HANDLER(kp_handle_sync_group, SyncGroupRequest, KP_GROUP_OP_SYNC)
GROUP_HANDLER(kp_handle_heartbeat, HeartbeatRequest, KP_GROUP_OP_HEARTBEAT)
GROUP_HANDLER(kp_handle_leave_group, LeaveGroupRequest, KP_GROUP_OP_LEAVE)
GROUP_HANDLER(kp_handle_offset_commit, OffsetCommitRequest, KP_GROUP_OP_COMMIT)
GROUP_HANDLER(kp_handle_offset_fetch, OffsetFetchRequest, KP_GROUP_OP_FETCH)
GROUP_HANDLER(kp_handle_list_groups, ListGroupsRequest, KP_GROUP_OP_LIST)
GROUP_HANDLER(kp_handle_describe_groups, DescribeGroupsRequest, KP_GROUP_OP_DESCRIBE)
GROUP_HANDLER(kp_handle_delete_groups, DeleteGroupsRequest, KP_GROUP_OP_DELETE)
GROUP_HANDLER(kp_handle_offset_delete, OffsetDeleteRequest, KP_GROUP_OP_OFFSET_DELETE)
