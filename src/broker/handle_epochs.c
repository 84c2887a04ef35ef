/*
 * handle_epochs.c — OffsetsForLeaderEpoch v0–v3 (KIP-101, KIP-320): for each partition, the
 * largest leader epoch <= the one asked that the leader's log knows, and the offset where it
 * ends (the next epoch's first offset, or the log end for the current epoch). A follower
 * truncates what lies beyond; a client finds out whether its position was truncated away.
 * Answered by the leader only (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
 * UNKNOWN_LEADER_EPOCH otherwise); unknown epochs answer -1 / -1 (UNDEFINED).
 */
#include "auth/acl.h"
#include "broker/request.h"
#include "kp_msgs.h"

int kp_handle_offsets_for_leader_epoch(kp_req_t *req)
{
    OffsetForLeaderEpochRequest in;
    if (OffsetForLeaderEpochRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    kp_broker_t *b = req->sess->broker;
    OffsetForLeaderEpochResponse out;
    OffsetForLeaderEpochResponse_init(&out);
    int32_t nt = in.Topics.count > 0 ? in.Topics.count : 0;
    out.Topics.count = nt;
    out.Topics.items = kp_req_alloc(req, (size_t)(nt + 1) * sizeof(*out.Topics.items));
    if (!out.Topics.items) return -1;
    int replica = in.ReplicaId >= 0;
    for (int32_t i = 0; i < nt; i++) {
        const OffsetForLeaderEpochRequest_OffsetForLeaderTopic *t = &in.Topics.items[i];
        OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *tr = &out.Topics.items[i];
        tr->Topic = t->Topic;
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        tr->Partitions.count = np;
        tr->Partitions.items = kp_req_alloc(req, (size_t)(np + 1) * sizeof(*tr->Partitions.items));
        if (!tr->Partitions.items) return -1;
        int allowed = replica ? kp_req_authorize(req, KP_OP_CLUSTER_ACTION, KP_RES_CLUSTER,
                                                 KP_STR_LIT(KP_CLUSTER_RESOURCE))
                              : kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_TOPIC, t->Topic);
        kp_topic_t *topic = allowed ? kp_topics_get(b->topics, t->Topic) : NULL;
        for (int32_t j = 0; j < np; j++) {
            const OffsetForLeaderEpochRequest_OffsetForLeaderPartition *p = &t->Partitions.items[j];
            OffsetForLeaderEpochResponse_EpochEndOffset *pr = &tr->Partitions.items[j];
            OffsetForLeaderEpochResponse_EpochEndOffset_init(pr);
            pr->Partition = p->Partition;
            kp_partition_t *part = topic ? kp_topic_partition(topic, p->Partition) : NULL;
            if (!allowed)
                pr->ErrorCode =
                    replica ? KERR_CLUSTER_AUTHORIZATION_FAILED : KERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!part)
                pr->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else
                pr->ErrorCode = kp_partition_epoch_end(part, p->CurrentLeaderEpoch, p->LeaderEpoch,
                                                       &pr->LeaderEpoch, &pr->EndOffset);
        }
        kp_topic_put(topic);
    }
    kp_req_begin_response(req);
    OffsetForLeaderEpochResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}
