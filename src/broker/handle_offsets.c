/* handle_offsets.c — ListOffsets v0–v5: earliest (-2), latest (-1) and by timestamp. */
#include "auth/acl.h"
#include "broker/request.h"
#include "kp_msgs.h"

int kp_handle_list_offsets(kp_req_t *req)
{
    ListOffsetsRequest in;
    if (ListOffsetsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    kp_broker_t *b = req->sess->broker;
    ListOffsetsResponse out;
    ListOffsetsResponse_init(&out);
    int32_t nt = in.Topics.count > 0 ? in.Topics.count : 0;
    out.Topics.count = nt;
    out.Topics.items = kp_req_alloc(req, (size_t)(nt + 1) * sizeof(*out.Topics.items));
    if (!out.Topics.items) return -1;
    for (int32_t i = 0; i < nt; i++) {
        const ListOffsetsRequest_ListOffsetsTopic *t = &in.Topics.items[i];
        ListOffsetsResponse_ListOffsetsTopicResponse *tr = &out.Topics.items[i];
        tr->Name = t->Name;
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        tr->Partitions.count = np;
        tr->Partitions.items = kp_req_alloc(req, (size_t)(np + 1) * sizeof(*tr->Partitions.items));
        if (!tr->Partitions.items) return -1;
        int allowed = kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_TOPIC, t->Name);
        kp_topic_t *topic = allowed ? kp_topics_get(b->topics, t->Name) : NULL;
        for (int32_t j = 0; j < np; j++) {
            const ListOffsetsRequest_ListOffsetsPartition *p = &t->Partitions.items[j];
            ListOffsetsResponse_ListOffsetsPartitionResponse *pr = &tr->Partitions.items[j];
            ListOffsetsResponse_ListOffsetsPartitionResponse_init(pr);
            pr->PartitionIndex = p->PartitionIndex;
            kp_partition_t *part = topic ? kp_topic_partition(topic, p->PartitionIndex) : NULL;
            if (!allowed) {
                pr->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (!part) {
                pr->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            pr->ErrorCode = kp_partition_check_leader(part, p->CurrentLeaderEpoch);
            if (pr->ErrorCode) continue;
            int64_t ts_out = -1;
            int64_t off = kp_partition_offset_for_time(part, p->Timestamp, &ts_out);
            if (p->Timestamp == -1 && in.IsolationLevel == 1) /* read_committed: the LSO */
                off = kp_partition_last_stable_offset(part);
            else if (p->Timestamp >= 0 && in.IsolationLevel == 1 && off >= 0 &&
                     off >= kp_partition_last_stable_offset(part))
                off = -1; /* as Kafka: no unstable offset is given to a read_committed reader */
            pr->LeaderEpoch = kp_partition_leader_epoch(part);
            if (p->Timestamp >= 0) pr->Timestamp = off >= 0 ? ts_out : -1;
            pr->Offset = off;
            if (req->api_version == 0) {
                int64_t *arr = kp_req_alloc(req, sizeof(int64_t));
                if (!arr) {
                    kp_topic_put(topic);
                    return -1;
                }
                pr->OldStyleOffsets.items = arr;
                pr->OldStyleOffsets.count = 0;
                if (off >= 0 && p->MaxNumOffsets > 0) {
                    arr[0] = off;
                    pr->OldStyleOffsets.count = 1;
                }
            }
        }
        kp_topic_put(topic);
    }
    kp_req_begin_response(req);
    ListOffsetsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}
