/*
 * handle_reassign.c — AlterPartitionReassignments (key 45) and ListPartitionReassignments
 * (key 46), v0 (flexible), KIP-455, and ElectLeaders (key 43, v0-2, KIP-460: preferred). The wire
 * side only: decoding, authorization (ALTER / DESCRIBE on CLUSTER, as Kafka), answers; the moves
 * themselves are broker/reassign_ctl.c's, through the pool's metadata store, so any broker of a
 * pool accepts them (Kafka's clients send them to the controller; every kpool broker answers the
 * same).
 *
 * A standalone broker has one replica of everything: a move is refused with
 * INVALID_REPLICA_ASSIGNMENT, a cancel with NO_REASSIGNMENT_IN_PROGRESS, the list is empty.
 */
#include "auth/acl.h"
#include "broker/broker.h"
#include "broker/reassign_ctl.h"
#include "broker/request.h"
#include "broker/topics.h"
#include "cluster/member.h"
#include "core/limits.h"
#include "kp_msgs.h"
#include "protocol/errors.h"

#include <stdio.h>
#include <string.h>

static kp_str_t req_strdup(kp_req_t *req, const char *s)
{
    size_t n = strlen(s);
    char *c = kp_req_alloc(req, n + 1);
    if (!c) return kp_str_c("");
    memcpy(c, s, n + 1);
    return (kp_str_t){c, (int32_t)n};
}

/* One topic of an AlterPartitionReassignments request into o. -1 on allocation failure. */
static int alter_topic(kp_req_t *req, kp_id_set_t live,
                       const AlterPartitionReassignmentsRequest_ReassignableTopic *in,
                       AlterPartitionReassignmentsResponse_ReassignableTopicResponse *o)
{
    kp_broker_t *b = req->sess->broker;
    AlterPartitionReassignmentsResponse_ReassignableTopicResponse_init(o);
    o->Name = in->Name;
    int32_t n = in->Partitions.count > 0 ? in->Partitions.count : 0;
    o->Partitions.items = kp_req_alloc(req, ((size_t)n + 1) * sizeof(*o->Partitions.items));
    kp_reassign_req_t *reqs = kp_req_alloc(req, ((size_t)n + 1) * sizeof(*reqs));
    if (!o->Partitions.items || !reqs) return -1;
    o->Partitions.count = n;
    for (int32_t i = 0; i < n; i++) {
        const AlterPartitionReassignmentsRequest_ReassignablePartition *p =
            &in->Partitions.items[i];
        memset(&reqs[i], 0, sizeof(reqs[i]));
        reqs[i].partition = p->PartitionIndex;
        reqs[i].target = p->Replicas.count >= 0 ? p->Replicas.items : NULL;
        reqs[i].ntarget = p->Replicas.count;
        if (p->Replicas.count == 0) {
            reqs[i].error = KERR_INVALID_REPLICA_ASSIGNMENT;
            snprintf(reqs[i].msg, sizeof(reqs[i].msg), "The target replicas are empty.");
        }
    }
    char name[KP_TOPIC_NAME_LEN_MAX + 1];
    int valid_name = in->Name.len > 0 && in->Name.len <= KP_TOPIC_NAME_LEN_MAX &&
                     !memchr(in->Name.ptr, 0, (size_t)in->Name.len);
    snprintf(name, sizeof(name), "%.*s", valid_name ? in->Name.len : 0, in->Name.ptr);
    if (!b->member || !valid_name) {
        for (int32_t i = 0; i < n; i++) {
            if (reqs[i].error) continue;
            reqs[i].error = !valid_name      ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                            : reqs[i].target ? KERR_INVALID_REPLICA_ASSIGNMENT
                                             : KERR_NO_REASSIGNMENT_IN_PROGRESS;
            snprintf(reqs[i].msg, sizeof(reqs[i].msg), "%s",
                     !valid_name ? "Invalid topic name."
                                 : "A standalone broker holds the only replica of every "
                                   "partition: there is nothing to move.");
        }
    } else {
        /* the requests already refused keep their error: move them out of the way */
        kp_reassign_req_t *todo = kp_req_alloc(req, ((size_t)n + 1) * sizeof(*todo));
        int32_t *where = kp_req_alloc(req, ((size_t)n + 1) * sizeof(*where));
        if (!todo || !where) return -1;
        int m = 0;
        for (int32_t i = 0; i < n; i++)
            if (!reqs[i].error) {
                where[m] = i;
                todo[m++] = reqs[i];
            }
        if (m > 0) kp_reassign_alter(kp_member_store(b->member), live, name, todo, m);
        for (int k = 0; k < m; k++) reqs[where[k]] = todo[k];
    }
    for (int32_t i = 0; i < n; i++) {
        AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *r =
            &o->Partitions.items[i];
        AlterPartitionReassignmentsResponse_ReassignablePartitionResponse_init(r);
        r->PartitionIndex = reqs[i].partition;
        r->ErrorCode = reqs[i].error;
        if (reqs[i].error) r->ErrorMessage = req_strdup(req, reqs[i].msg);
    }
    return 0;
}

int kp_handle_alter_partition_reassignments(kp_req_t *req)
{
    AlterPartitionReassignmentsRequest in;
    if (AlterPartitionReassignmentsRequest_decode(&req->body, req->api_version, &req->arena, &in) <
        0)
        return -1;
    AlterPartitionReassignmentsResponse out;
    AlterPartitionReassignmentsResponse_init(&out);
    kp_broker_t *b = req->sess->broker;
    if (!kp_req_authorize(req, KP_OP_ALTER, KP_RES_CLUSTER, KP_STR_LIT(KP_CLUSTER_RESOURCE))) {
        out.ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
        out.ErrorMessage = kp_str_c("ALTER on the cluster is required to move partitions.");
    } else {
        int32_t nt = in.Topics.count > 0 ? in.Topics.count : 0;
        out.Responses.items = kp_req_alloc(req, ((size_t)nt + 1) * sizeof(*out.Responses.items));
        if (!out.Responses.items) return -1;
        kp_member_view_t *v = b->member ? kp_member_view(b->member) : NULL;
        int32_t ids[KP_PLACEMENT_BROKERS_MAX];
        int nids = 0;
        for (int i = 0; v && i < v->nbrokers && nids < KP_PLACEMENT_BROKERS_MAX; i++)
            if (!v->brokers[i].offline_dir) /* its log directory failed: holds nothing */
                ids[nids++] = v->brokers[i].id;
        if (v) kp_member_view_put(v);
        int failed = 0;
        for (int32_t i = 0; i < nt && !failed; i++)
            failed = alter_topic(req, (kp_id_set_t){ids, nids}, &in.Topics.items[i],
                                 &out.Responses.items[out.Responses.count++]);
        if (failed) return -1;
    }
    kp_req_begin_response(req);
    AlterPartitionReassignmentsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* Whether the request asks for e (Topics null: every move). */
static int wanted(const ListPartitionReassignmentsRequest *in, const kp_reassign_entry_t *e)
{
    if (in->Topics.count < 0) return 1;
    for (int32_t i = 0; i < in->Topics.count; i++) {
        const ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics *t =
            &in->Topics.items[i];
        if (t->Name.len != (int32_t)strlen(e->topic) ||
            memcmp(t->Name.ptr, e->topic, (size_t)t->Name.len))
            continue;
        for (int32_t k = 0; k < t->PartitionIndexes.count; k++)
            if (t->PartitionIndexes.items[k] == e->partition) return 1;
    }
    return 0;
}

static int32_t *req_ids(kp_req_t *req, const int32_t *ids, int n)
{
    int32_t *c = kp_req_alloc(req, ((size_t)n + 1) * sizeof(*c));
    if (c) memcpy(c, ids, (size_t)n * sizeof(*c));
    return c;
}

/* The moves in es that the request asks for, grouped by topic (es is sorted). */
static int list_fill(kp_req_t *req, const ListPartitionReassignmentsRequest *in,
                     const kp_reassign_entry_t *es, int n, ListPartitionReassignmentsResponse *out)
{
    out->Topics.items = kp_req_alloc(req, ((size_t)n + 1) * sizeof(*out->Topics.items));
    if (!out->Topics.items) return -1;
    ListPartitionReassignmentsResponse_OngoingTopicReassignment *t = NULL;
    for (int i = 0; i < n; i++) {
        const kp_reassign_entry_t *e = &es[i];
        if (!wanted(in, e)) continue;
        if (!t || strcmp(t->Name.ptr, e->topic)) {
            t = &out->Topics.items[out->Topics.count++];
            ListPartitionReassignmentsResponse_OngoingTopicReassignment_init(t);
            t->Name = req_strdup(req, e->topic);
            t->Partitions.items = kp_req_alloc(req, ((size_t)n + 1) * sizeof(*t->Partitions.items));
            if (!t->Partitions.items) return -1;
        }
        ListPartitionReassignmentsResponse_OngoingPartitionReassignment *p =
            &t->Partitions.items[t->Partitions.count++];
        ListPartitionReassignmentsResponse_OngoingPartitionReassignment_init(p);
        p->PartitionIndex = e->partition;
        p->Replicas.items = req_ids(req, e->replicas, e->nreplicas);
        p->Replicas.count = e->nreplicas;
        p->AddingReplicas.items = req_ids(req, e->adding, e->nadding);
        p->AddingReplicas.count = e->nadding;
        p->RemovingReplicas.items = req_ids(req, e->removing, e->nremoving);
        p->RemovingReplicas.count = e->nremoving;
        if (!p->Replicas.items || !p->AddingReplicas.items || !p->RemovingReplicas.items) return -1;
    }
    return 0;
}

int kp_handle_list_partition_reassignments(kp_req_t *req)
{
    ListPartitionReassignmentsRequest in;
    if (ListPartitionReassignmentsRequest_decode(&req->body, req->api_version, &req->arena, &in) <
        0)
        return -1;
    ListPartitionReassignmentsResponse out;
    ListPartitionReassignmentsResponse_init(&out);
    kp_broker_t *b = req->sess->broker;
    kp_reassign_entry_t *es = NULL;
    int n = 0, failed = 0;
    char err[512];
    if (!kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_CLUSTER, KP_STR_LIT(KP_CLUSTER_RESOURCE))) {
        out.ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
        out.ErrorMessage = kp_str_c("DESCRIBE on the cluster is required to list moves.");
    } else if (b->member &&
               kp_reassign_list(kp_member_store(b->member), &es, &n, err, sizeof(err)) != 0) {
        out.ErrorCode = KERR_REQUEST_TIMED_OUT;
        out.ErrorMessage = req_strdup(req, err);
    } else {
        failed = list_fill(req, &in, es, n, &out);
    }
    if (!failed) {
        kp_req_begin_response(req);
        ListPartitionReassignmentsResponse_encode(&req->resp, req->api_version, &out);
        kp_req_finish(req);
    }
    kp_reassign_entries_free(es, n);
    return failed ? -1 : 0;
}

/* ---- ElectLeaders (key 43) ---- */

/* The live brokers of b's view into ids (room for KP_PLACEMENT_BROKERS_MAX), without those
 * whose log directory failed. */
static kp_id_set_t live_set(kp_broker_t *b, int32_t *ids)
{
    int n = 0;
    kp_member_view_t *v = b->member ? kp_member_view(b->member) : NULL;
    for (int i = 0; v && i < v->nbrokers && n < KP_PLACEMENT_BROKERS_MAX; i++)
        if (!v->brokers[i].offline_dir) ids[n++] = v->brokers[i].id;
    if (v) kp_member_view_put(v);
    return (kp_id_set_t){ids, n};
}

/* Elections for partitions of one topic record (parts NULL: every partition, and those that
 * need none are left out, as Kafka). -1 on allocation failure. */
static int elect_topic(kp_req_t *req, kp_id_set_t live, int8_t type, const kp_meta_topic_t *t,
                       kp_str_t name, const int32_t *parts, int32_t nparts,
                       ElectLeadersResponse_ReplicaElectionResult *o)
{
    kp_broker_t *b = req->sess->broker;
    ElectLeadersResponse_ReplicaElectionResult_init(o);
    o->Topic = name;
    int32_t n = parts ? nparts : (t ? t->partitions : 0);
    o->PartitionResult.items =
        kp_req_alloc(req, ((size_t)n + 1) * sizeof(*o->PartitionResult.items));
    if (!o->PartitionResult.items) return -1;
    for (int32_t i = 0; i < n; i++) {
        int32_t p = parts ? parts[i] : i;
        char msg[512] = "";
        int16_t err;
        if (!t || p < 0 || p >= t->partitions) {
            err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(msg, sizeof(msg), "No such partition in the pool.");
        } else if (type != 0) {
            err = KERR_INVALID_REQUEST;
            snprintf(msg, sizeof(msg),
                     "Only preferred elections (type 0) are served: an "
                     "unclean election is unclean.leader.election.enable's.");
        } else {
            err = kp_reassign_elect_preferred(kp_member_store(b->member), live, t, p, msg,
                                              sizeof(msg));
        }
        if (!parts && err == KERR_ELECTION_NOT_NEEDED) continue;
        ElectLeadersResponse_PartitionResult *r =
            &o->PartitionResult.items[o->PartitionResult.count++];
        ElectLeadersResponse_PartitionResult_init(r);
        r->PartitionId = p;
        r->ErrorCode = err;
        if (err) r->ErrorMessage = req_strdup(req, msg);
    }
    return 0;
}

/* The request's elections in a pool into out. -1 on allocation failure. */
static int elect_pool(kp_req_t *req, const ElectLeadersRequest *in, ElectLeadersResponse *out)
{
    kp_broker_t *b = req->sess->broker;
    kp_meta_store_t *s = kp_member_store(b->member);
    int32_t ids[KP_PLACEMENT_BROKERS_MAX];
    kp_id_set_t live = live_set(b, ids);
    char err[512];
    int failed = 0;
    if (in->TopicPartitions.count < 0) {
        kp_meta_topic_t *topics;
        int nt;
        if (kp_meta_topics_list(s, &topics, &nt, err, sizeof(err)) != 0) {
            out->ErrorCode = KERR_REQUEST_TIMED_OUT;
            return 0;
        }
        out->ReplicaElectionResults.items =
            kp_req_alloc(req, ((size_t)nt + 1) * sizeof(*out->ReplicaElectionResults.items));
        for (int i = 0; i < nt && !failed; i++) {
            ElectLeadersResponse_ReplicaElectionResult *o =
                &out->ReplicaElectionResults.items[out->ReplicaElectionResults.count];
            failed = !out->ReplicaElectionResults.items ||
                     elect_topic(req, live, in->ElectionType, &topics[i],
                                 req_strdup(req, topics[i].name), NULL, 0, o);
            if (!failed && o->PartitionResult.count > 0) out->ReplicaElectionResults.count++;
        }
        kp_meta_topics_free(topics, nt);
        return failed ? -1 : 0;
    }
    int32_t nt = in->TopicPartitions.count;
    out->ReplicaElectionResults.items =
        kp_req_alloc(req, ((size_t)nt + 1) * sizeof(*out->ReplicaElectionResults.items));
    if (!out->ReplicaElectionResults.items) return -1;
    for (int32_t i = 0; i < nt && !failed; i++) {
        const ElectLeadersRequest_TopicPartitions *tp = &in->TopicPartitions.items[i];
        char name[KP_TOPIC_NAME_LEN_MAX + 1];
        int valid = tp->Topic.len > 0 && tp->Topic.len <= KP_TOPIC_NAME_LEN_MAX &&
                    !memchr(tp->Topic.ptr, 0, (size_t)tp->Topic.len);
        snprintf(name, sizeof(name), "%.*s", valid ? tp->Topic.len : 0, tp->Topic.ptr);
        kp_meta_topic_t t;
        int have = valid && kp_meta_topic_get(s, name, &t, err, sizeof(err)) == 0;
        failed =
            elect_topic(req, live, in->ElectionType, have ? &t : NULL, tp->Topic,
                        tp->Partitions.items, tp->Partitions.count > 0 ? tp->Partitions.count : 0,
                        &out->ReplicaElectionResults.items[out->ReplicaElectionResults.count++]);
        if (have) kp_meta_topic_free(&t);
    }
    return failed ? -1 : 0;
}

int kp_handle_elect_leaders(kp_req_t *req)
{
    ElectLeadersRequest in;
    if (ElectLeadersRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    ElectLeadersResponse out;
    ElectLeadersResponse_init(&out);
    kp_broker_t *b = req->sess->broker;
    if (!kp_req_authorize(req, KP_OP_ALTER, KP_RES_CLUSTER, KP_STR_LIT(KP_CLUSTER_RESOURCE))) {
        out.ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
    } else if (!b->member) {
        /* standalone: this broker leads everything it has, its only replica */
        out.ErrorCode = 0;
    } else if (elect_pool(req, &in, &out) < 0) {
        return -1;
    }
    kp_req_begin_response(req);
    ElectLeadersResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}
