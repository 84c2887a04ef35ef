/* handle_records.c — DeleteRecords v0–1: moves partitions' log start offsets (DELETE on the
 * topic, as Kafka). As Kafka: internal topics are refused (INVALID_TOPIC_EXCEPTION), so are
 * topics whose cleanup.policy lacks "delete" (POLICY_VIOLATION), and a failed partition
 * reports low watermark -1. */
#include "auth/acl.h"
#include "broker/request.h"
#include "kp_msgs.h"
#include "storage/retention.h"

int kp_handle_delete_records(kp_req_t *req)
{
    DeleteRecordsRequest in;
    if (DeleteRecordsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    kp_broker_t *b = req->sess->broker;
    DeleteRecordsResponse out;
    DeleteRecordsResponse_init(&out);
    int32_t nt = in.Topics.count > 0 ? in.Topics.count : 0;
    out.Topics.items = kp_arena_calloc(&req->arena, (size_t)nt + 1, sizeof(*out.Topics.items));
    if (!out.Topics.items) return -1;
    out.Topics.count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const DeleteRecordsRequest_DeleteRecordsTopic *t = &in.Topics.items[i];
        DeleteRecordsResponse_DeleteRecordsTopicResult *tr = &out.Topics.items[i];
        tr->Name = t->Name;
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        tr->Partitions.items =
            kp_arena_calloc(&req->arena, (size_t)np + 1, sizeof(*tr->Partitions.items));
        if (!tr->Partitions.items) return -1;
        tr->Partitions.count = np;
        int allowed = kp_req_authorize(req, KP_OP_DELETE, KP_RES_TOPIC, t->Name);
        kp_topic_t *topic = allowed ? kp_topics_get(b->topics, t->Name) : NULL;
        for (int32_t j = 0; j < np; j++) {
            DeleteRecordsResponse_DeleteRecordsPartitionResult *pr = &tr->Partitions.items[j];
            pr->PartitionIndex = t->Partitions.items[j].PartitionIndex;
            pr->LowWatermark = -1;
            kp_partition_t *p = topic ? kp_topic_partition(topic, pr->PartitionIndex) : NULL;
            if (!allowed) {
                pr->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED;
            } else if (topic && topic->internal) {
                pr->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
            } else if (!p) {
                pr->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else if (!atomic_load_explicit(&topic->eff.cleanup_delete, memory_order_relaxed)) {
                pr->ErrorCode = KERR_POLICY_VIOLATION;
            } else if ((pr->ErrorCode = kp_partition_check_leader(p, -1)) != 0) {
                /* a pool: the leader's log only (followers keep theirs: docs/replication.md) */
            } else {
                int64_t low;
                int rc = kp_partition_delete_records(p, t->Partitions.items[j].Offset, &low);
                pr->ErrorCode = rc == KP_RETENTION_OUT_OF_RANGE ? KERR_OFFSET_OUT_OF_RANGE
                                : rc                            ? KERR_KAFKA_STORAGE_ERROR
                                                                : 0;
                if (!rc) pr->LowWatermark = low;
            }
        }
        kp_topic_put(topic);
    }
    kp_req_begin_response(req);
    DeleteRecordsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}
